//! Gust's CloudWatch Logs (skeleton: being written).

use std::path::Path;
use std::sync::Arc;

use gust_model::Clock;

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    /// The store failed.
    #[error("{0}")]
    Internal(String),
}

/// The logs of every account.
#[derive(Debug)]
pub struct Logs {
    #[allow(dead_code)]
    clock: Arc<dyn Clock>,
    #[allow(dead_code)]
    region: String,
}

impl Logs {
    /// Logs kept in the SQLite database at `path`.
    pub fn open(path: &Path, clock: Arc<dyn Clock>, region: &str) -> Result<Arc<Self>, LogsError> {
        let _ = path;
        Ok(Arc::new(Logs {
            clock,
            region: region.to_owned(),
        }))
    }
}
