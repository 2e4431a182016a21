//! What watches the platform, put together for the server: the CloudWatch metrics, usage
//! and Prometheus observers behind one, and function output routed to CloudWatch Logs.

use std::sync::Arc;

use gust_model::observe::{Gauges, Observation, Observer};

/// Tells every observer in turn.
#[derive(Debug)]
pub struct FanOut(pub Vec<Arc<dyn Observer>>);

impl Observer for FanOut {
    fn observe(&self, observation: Observation) {
        if let Some((last, rest)) = self.0.split_last() {
            for observer in rest {
                observer.observe(observation.clone());
            }
            last.observe(observation);
        }
    }

    fn gauges(&self, gauges: &Gauges, at: time::OffsetDateTime) {
        for observer in &self.0 {
            observer.gauges(gauges, at);
        }
    }
}

/// An account's function output, into its CloudWatch Logs groups.
#[derive(Debug)]
pub struct FunctionLogs {
    pub logs: Arc<gust_logs::Logs>,
    pub account: String,
}

impl gust_engine::LogSink for FunctionLogs {
    fn append(&self, _function: &str, group: &str, stream: &str, events: Vec<(i64, String)>) {
        let bytes: usize = events.iter().map(|(_, m)| gust_logs::event_size(m)).sum();
        // Collectors run on the async runtime: when the queue may be full (the caller then
        // waits for the writer), the wait must not take a runtime worker with it.
        let may_wait = self.logs.pending_bytes() + bytes > gust_logs::PENDING_MAX / 2;
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if may_wait && multi_thread {
            tokio::task::block_in_place(|| {
                self.logs.ingest(&self.account, group, stream, events);
            });
        } else {
            self.logs.ingest(&self.account, group, stream, events);
        }
    }
}
