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
        self.logs.ingest(&self.account, group, stream, events);
    }
}
