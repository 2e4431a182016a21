//! Gust's Application Auto Scaling for the one resource Gust has: Lambda provisioned
//! concurrency (`ServiceNamespace` `lambda`, `ScalableDimension`
//! `lambda:function:ProvisionedConcurrency`, `ResourceId` `function:<name>:<qualifier>`).
//!
//! - Scalable targets: register (create or update), deregister (with the target's scheduled
//!   actions and policies), describe; registering brings a configured function's requested
//!   provisioned concurrency within `[MinCapacity, MaxCapacity]`.
//! - Scheduled actions (`at`, `rate`, `cron` in a time zone, via
//!   [`gust_model::schedule`]): when one fires, the target's bounds become the action's and
//!   the current provisioned concurrency is brought within them.
//! - Target tracking policies on `LambdaProvisionedConcurrencyUtilization` ([`tracking`]).
//! - Scaling activities: a bounded recent history per target.
//!
//! No HTTP: the API layer's JSON adapter turns requests into [`Autoscaling`] calls. The
//! function's provisioned concurrency is reached through [`Provisioned`], which the binary
//! implements over the control plane and engine. Everything is kept in memory and written
//! through to an [`AutoscalingStore`] (SQLite by default) before an operation returns; a
//! scheduled action's progress is stored with each firing, so a restart never fires one
//! twice.

pub mod error;
pub mod model;
mod service;
pub mod sqlite;
pub mod store;
pub mod tracking;

pub use error::AutoscalingError;
pub use model::{
    Alarm, Filter, Page, Paged, PolicyCreated, PutScalingPolicy, PutScheduledAction,
    RegisterTarget, Resource, ScalableTarget, ScalingActivity, ScalingPolicy, ScheduledAction,
    SuspendedState, SuspendedUpdate, TargetTracking, TargetTrackingInput,
};
pub use service::{Autoscaling, MAX_POLICIES, MAX_SCHEDULED_ACTIONS, MAX_TAGS, MAX_TARGETS};
pub use store::AutoscalingStore;

/// Lambda's provisioned concurrency, as Application Auto Scaling sees it.
pub trait Provisioned: Send + Sync + std::fmt::Debug {
    /// Whether `function:qualifier` exists in `account`.
    fn exists(&self, account: &str, function: &str, qualifier: &str) -> Result<bool, String>;
    /// The requested provisioned concurrency, `None` when there is no config.
    fn requested(
        &self,
        account: &str,
        function: &str,
        qualifier: &str,
    ) -> Result<Option<u32>, String>;
    /// Sets the requested provisioned concurrency (0 deletes the config).
    fn set_requested(
        &self,
        account: &str,
        function: &str,
        qualifier: &str,
        requested: u32,
    ) -> Result<(), String>;
    /// Utilisation now, 0.0..=1.0 (busy provisioned environments / allocated); `None` when
    /// none is allocated.
    fn utilization(&self, account: &str, function: &str, qualifier: &str) -> Option<f64>;
}

#[cfg(test)]
mod tests;
