//! OpenTelemetry trace export: an [`Observer`] that turns each completed invocation into
//! OTLP spans (see [`span`]) and sends them in batches to an OTLP/HTTP receiver
//! (`/v1/traces`, protobuf or JSON) from a thread of its own.
//!
//! Only plain `http://` endpoints are supported: the workspace has no TLS client, and a
//! collector beside the server is the usual setup.

pub mod span;

mod args;
mod export;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gust_model::observe::{Invocation, Observation, Observer};
use tokio::sync::mpsc;

pub use args::OtlpArgs;

/// What can go wrong setting the exporter up.
#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    /// The endpoint is not a URL.
    #[error("invalid OTLP endpoint {0:?}: {1}")]
    Endpoint(String, String),
    /// An `https://` endpoint.
    #[error("OTLP endpoint {0:?}: https is not supported yet; use http:// (a local collector)")]
    Https(String),
    /// A protocol other than `http/protobuf` and `http/json`.
    #[error(
        "unsupported OTLP protocol {0:?}: use http/protobuf or http/json (grpc is not supported)"
    )]
    Protocol(String),
    /// The export thread could not start.
    #[error("cannot start the OTLP export thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// How spans are encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// `http/protobuf` (`application/x-protobuf`): OTel's default.
    #[default]
    HttpProtobuf,
    /// `http/json` (`application/json`).
    HttpJson,
}

impl Protocol {
    /// Reads `OTEL_EXPORTER_OTLP_PROTOCOL`'s spelling.
    pub fn parse(text: &str) -> Result<Protocol, OtelError> {
        match text.trim() {
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            "http/json" => Ok(Protocol::HttpJson),
            other => Err(OtelError::Protocol(other.to_owned())),
        }
    }
}

/// Where the traces go: a base endpoint gets `/v1/traces` appended (the OTel spec for
/// `OTEL_EXPORTER_OTLP_ENDPOINT`); a traces endpoint is used as it is.
pub fn traces_endpoint(base: Option<&str>, traces: Option<&str>) -> Option<String> {
    match (traces, base) {
        (Some(traces), _) if !traces.trim().is_empty() => Some(traces.trim().to_owned()),
        (_, Some(base)) if !base.trim().is_empty() => {
            Some(format!("{}/v1/traces", base.trim().trim_end_matches('/')))
        }
        _ => None,
    }
}

/// The exporter's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The full traces URL (`http://host:4318/v1/traces`).
    pub endpoint: String,
    /// The encoding.
    pub protocol: Protocol,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// The region the functions run in (`cloud.region`, ARNs).
    pub region: String,
    /// Invocations waiting to be exported; more are dropped (and counted).
    pub queue: usize,
    /// Invocations per request at most.
    pub batch: usize,
    /// How long a batch waits for more before it is sent.
    pub delay: Duration,
    /// How long one request may take.
    pub timeout: Duration,
}

impl Config {
    /// OTel's batch processor defaults (queue 2048, batch 512, 10 s timeout), with a
    /// shorter delay so traces show up promptly.
    pub fn new(endpoint: String, region: &str) -> Config {
        Config {
            endpoint,
            protocol: Protocol::default(),
            service_name: "gust".to_owned(),
            region: region.to_owned(),
            queue: 2048,
            batch: 512,
            delay: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
        }
    }
}

/// What the exporter has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Invocations dropped because the queue was full.
    pub dropped: u64,
    /// Spans the receiver accepted.
    pub exported: u64,
    /// Spans lost to failed requests.
    pub failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    dropped: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
}

/// Sends a span per invocation to an OTLP/HTTP receiver. Observing only queues: a full
/// queue drops the invocation rather than slow the invoke path.
#[derive(Debug)]
pub struct OtlpExporter {
    queue: mpsc::Sender<Invocation>,
    counters: Arc<Counters>,
}

impl OtlpExporter {
    /// Starts the export thread. It ends once the exporter is dropped and the queue is
    /// drained.
    pub fn start(config: Config) -> Result<OtlpExporter, OtelError> {
        let target = export::Target::new(&config)?;
        let (exporter, receiver) = OtlpExporter::unstarted(config.queue);
        let counters = Arc::clone(&exporter.counters);
        std::thread::Builder::new()
            .name("gust-otlp".to_owned())
            .spawn(move || export::run(target, config, receiver, counters))?;
        Ok(exporter)
    }

    /// An exporter whose queue nobody drains yet.
    fn unstarted(capacity: usize) -> (OtlpExporter, mpsc::Receiver<Invocation>) {
        let (queue, receiver) = mpsc::channel(capacity.max(1));
        let exporter = OtlpExporter {
            queue,
            counters: Arc::default(),
        };
        (exporter, receiver)
    }

    /// What it has done so far.
    pub fn stats(&self) -> Stats {
        Stats {
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            exported: self.counters.exported.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
        }
    }
}

impl Observer for OtlpExporter {
    fn observe(&self, observation: Observation) {
        if let Observation::Invoked(invocation) = observation {
            // Spans are built on the export thread: here only a move into the queue.
            if self.queue.try_send(invocation).is_err() {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests;
