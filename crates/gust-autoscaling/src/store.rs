//! The store's interface: what the service needs from durable storage. The service keeps
//! everything in memory (this process is the only writer) and writes through: [`load`] once
//! at start, then [`commit`] for every change. The embedded implementation is SQLite
//! ([`crate::sqlite`]); a distributed store implements the same two methods.
//!
//! [`load`]: AutoscalingStore::load
//! [`commit`]: AutoscalingStore::commit

use crate::error::AutoscalingError;
use crate::model::{ScalableTarget, ScalingActivity, ScalingPolicy, ScheduledAction};

/// How many scaling activities are kept per target (the newest).
pub const ACTIVITY_HISTORY: usize = 100;

/// Everything stored.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Scalable targets.
    pub targets: Vec<ScalableTarget>,
    /// Scheduled actions.
    pub actions: Vec<ScheduledAction>,
    /// Scaling policies.
    pub policies: Vec<ScalingPolicy>,
    /// Scaling activities, oldest first.
    pub activities: Vec<ScalingActivity>,
}

/// One change.
#[derive(Debug, Clone)]
pub enum Change {
    /// Creates or replaces a target.
    PutTarget(ScalableTarget),
    /// Deletes a target with its scheduled actions and policies (its activities stay).
    DeleteTarget {
        /// Account.
        account: String,
        /// `ResourceId`.
        resource_id: String,
    },
    /// Creates or replaces a scheduled action.
    PutAction(ScheduledAction),
    /// Deletes a scheduled action.
    DeleteAction {
        /// Account.
        account: String,
        /// `ResourceId`.
        resource_id: String,
        /// Name.
        name: String,
    },
    /// Creates or replaces a scaling policy.
    PutPolicy(ScalingPolicy),
    /// Deletes a scaling policy.
    DeletePolicy {
        /// Account.
        account: String,
        /// `ResourceId`.
        resource_id: String,
        /// Name.
        name: String,
    },
    /// Records an activity, keeping the target's newest [`ACTIVITY_HISTORY`].
    AddActivity(ScalingActivity),
}

/// Durable storage for Application Auto Scaling.
pub trait AutoscalingStore: Send + Sync + std::fmt::Debug {
    /// Everything stored.
    fn load(&self) -> Result<Snapshot, AutoscalingError>;

    /// Applies changes atomically and durably: all of them are on disk when this returns
    /// `Ok`, and none of them when it returns an error.
    fn commit(&self, changes: &[Change]) -> Result<(), AutoscalingError>;
}
