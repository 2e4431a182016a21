//! Usage and cost, as the seed's section 14 counts them (being written).

use std::path::Path;
use std::sync::Arc;

use gust_model::observe::{Observation, Observer};
use gust_model::Clock;

/// Why usage could not be read or kept.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// The store failed.
    #[error("{0}")]
    Internal(String),
}

/// Requests and GB-seconds per account, month, function and architecture.
#[derive(Debug)]
pub struct Usage {
    #[allow(dead_code)]
    clock: Arc<dyn Clock>,
}

impl Usage {
    /// Usage kept in the SQLite database at `path`.
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Arc<Self>, UsageError> {
        let _ = path;
        Ok(Arc::new(Usage { clock }))
    }
}

impl Observer for Usage {
    fn observe(&self, _observation: Observation) {}
}
