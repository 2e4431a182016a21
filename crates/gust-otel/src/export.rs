//! The export thread: batches queued invocations, builds their spans and POSTs them to
//! the receiver with hyper on a small runtime of its own (isolated from the server's).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use gust_model::observe::Invocation;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message;
use tokio::sync::mpsc;

use crate::span::{invocation_spans, string};
use crate::{Config, Counters, OtelError, Protocol};

/// A checked endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    uri: Uri,
}

impl Target {
    pub(crate) fn new(config: &Config) -> Result<Target, OtelError> {
        let uri: Uri = config
            .endpoint
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| {
                OtelError::Endpoint(config.endpoint.clone(), e.to_string())
            })?;
        match uri.scheme_str() {
            Some("http") if uri.host().is_some() => Ok(Target { uri }),
            Some("https") => Err(OtelError::Https(config.endpoint.clone())),
            _ => Err(OtelError::Endpoint(
                config.endpoint.clone(),
                "expected http://host[:port][/path]".to_owned(),
            )),
        }
    }
}

/// The request body for a batch of invocations.
pub(crate) fn request(config: &Config, batch: &[Invocation]) -> ExportTraceServiceRequest {
    let spans = batch
        .iter()
        .flat_map(|invocation| invocation_spans(invocation, &config.region))
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    string("service.name", &config.service_name),
                    string("cloud.provider", "aws"),
                    string("cloud.platform", "aws_lambda"),
                    string("cloud.region", &config.region),
                ],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "gust".to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..InstrumentationScope::default()
                }),
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

/// The body and its content type.
pub(crate) fn encode(
    protocol: Protocol,
    request: &ExportTraceServiceRequest,
) -> (Bytes, &'static str) {
    match protocol {
        Protocol::HttpProtobuf => (
            Bytes::from(request.encode_to_vec()),
            "application/x-protobuf",
        ),
        // Serialising generated messages cannot fail (no maps with non-string keys).
        Protocol::HttpJson => (
            Bytes::from(serde_json::to_vec(request).unwrap_or_default()),
            "application/json",
        ),
    }
}

/// The thread's body: until the exporter is dropped, gather up to `batch` invocations or
/// whatever arrived within `delay` of the first, and send them.
pub(crate) fn run(
    target: Target,
    config: Config,
    mut receiver: mpsc::Receiver<Invocation>,
    counters: Arc<Counters>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("OTLP export disabled: cannot start its runtime: {e}");
            return;
        }
    };
    runtime.block_on(async move {
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let mut batch = Vec::with_capacity(config.batch);
        loop {
            let Some(first) = receiver.recv().await else {
                break;
            };
            batch.push(first);
            let deadline = tokio::time::Instant::now() + config.delay;
            while batch.len() < config.batch {
                match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(Some(invocation)) => batch.push(invocation),
                    Ok(None) | Err(_) => break,
                }
            }
            let body = request(&config, &batch);
            let spans = body
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len() as u64)
                .sum::<u64>();
            batch.clear();
            match send(&client, &target, &config, &body).await {
                Ok(()) => {
                    counters.exported.fetch_add(spans, Ordering::Relaxed);
                }
                Err(e) => {
                    // Lost, not retried: traces are best effort and a dead collector
                    // must not pile work up here.
                    let before = counters.failed.fetch_add(spans, Ordering::Relaxed);
                    if before == 0 {
                        tracing::warn!(endpoint = %target.uri, "OTLP export failed: {e}");
                    } else {
                        tracing::debug!(endpoint = %target.uri, "OTLP export failed: {e}");
                    }
                }
            }
        }
    });
}

async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    target: &Target,
    config: &Config,
    body: &ExportTraceServiceRequest,
) -> Result<(), String> {
    let (bytes, content_type) = encode(config.protocol, body);
    let request = hyper::Request::post(target.uri.clone())
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(bytes))
        .map_err(|e| e.to_string())?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        // Read the body so the connection can be reused.
        let _ = response.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered {status}"))
        }
    };
    tokio::time::timeout(config.timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {:?}", config.timeout))?
}
