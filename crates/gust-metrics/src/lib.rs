//! Gust's CloudWatch metrics, Prometheus exposition, usage and cost (skeleton: being written).

pub mod prometheus;
pub mod usage;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gust_model::Clock;

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The store failed.
    #[error("{0}")]
    Internal(String),
}

/// The metrics of every account.
#[derive(Debug)]
pub struct Metrics {
    #[allow(dead_code)]
    clock: Arc<dyn Clock>,
    #[allow(dead_code)]
    region: String,
    #[allow(dead_code)]
    retention: Duration,
}

impl Metrics {
    /// Metrics kept in the SQLite database at `path` for `retention`.
    pub fn open(
        path: &Path,
        clock: Arc<dyn Clock>,
        region: &str,
        retention: Duration,
    ) -> Result<Arc<Self>, MetricsError> {
        let _ = path;
        Ok(Arc::new(Metrics {
            clock,
            region: region.to_owned(),
            retention,
        }))
    }
}

impl gust_model::observe::Observer for Metrics {
    fn observe(&self, _observation: gust_model::observe::Observation) {}
}
