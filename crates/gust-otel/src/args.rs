//! `gust serve`'s OpenTelemetry flags, named and defaulted as OTel SDKs read them.

use crate::{traces_endpoint, Config, OtelError, OtlpExporter, Protocol};

/// OpenTelemetry trace export (OTLP over HTTP); off without an endpoint.
#[derive(Debug, Clone, clap::Args)]
pub struct OtlpArgs {
    /// Export a span per invocation to this OTLP/HTTP base URL (`/v1/traces` is
    /// appended), e.g. http://127.0.0.1:4318. Only http:// for now.
    #[arg(
        long = "otlp-endpoint",
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        value_name = "URL"
    )]
    pub endpoint: Option<String>,
    /// The full OTLP traces URL, used as it is (overrides --otlp-endpoint).
    #[arg(
        long = "otlp-traces-endpoint",
        env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        value_name = "URL"
    )]
    pub traces_endpoint: Option<String>,
    /// The OTLP encoding: http/protobuf or http/json.
    // Checked only when export is on: a stray `grpc` in the environment must not stop
    // a server that exports nothing.
    #[arg(
        long = "otlp-protocol",
        env = "OTEL_EXPORTER_OTLP_PROTOCOL",
        default_value = "http/protobuf"
    )]
    pub protocol: String,
    /// The `service.name` resource attribute of exported spans.
    #[arg(
        long = "otel-service-name",
        env = "OTEL_SERVICE_NAME",
        default_value = "gust"
    )]
    pub service_name: String,
}

impl OtlpArgs {
    /// The exporter these flags ask for, started; `None` when no endpoint is set.
    pub fn exporter(&self, region: &str) -> Result<Option<OtlpExporter>, OtelError> {
        let Some(endpoint) =
            traces_endpoint(self.endpoint.as_deref(), self.traces_endpoint.as_deref())
        else {
            return Ok(None);
        };
        let mut config = Config::new(endpoint, region);
        config.protocol = Protocol::parse(&self.protocol)?;
        config.service_name = self.service_name.clone();
        OtlpExporter::start(config).map(Some)
    }
}
