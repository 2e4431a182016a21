//! The store's interface: what the service needs from durable storage. The service keeps
//! everything in memory (this process is the only writer) and writes through: [`load`] once
//! at start, then [`commit`] for every change. The embedded implementation is SQLite
//! ([`crate::sqlite`]).
//!
//! [`load`]: SchedulerStore::load
//! [`commit`]: SchedulerStore::commit

use crate::delivery::PendingDelivery;
use crate::error::SchedulerError;
use crate::model::{Schedule, ScheduleGroup};

/// Everything stored.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Schedule groups (the `default` group only once tagged).
    pub groups: Vec<ScheduleGroup>,
    /// Schedules, with their progress.
    pub schedules: Vec<Schedule>,
    /// Deliveries not yet done.
    pub deliveries: Vec<PendingDelivery>,
}

/// One change.
#[derive(Debug, Clone)]
pub enum Change {
    /// Creates or replaces a group.
    PutGroup(ScheduleGroup),
    /// Deletes a group and its schedules.
    DeleteGroup {
        /// Account.
        account: String,
        /// Name.
        name: String,
    },
    /// Creates or replaces a schedule.
    PutSchedule(Box<Schedule>),
    /// Deletes a schedule.
    DeleteSchedule {
        /// Account.
        account: String,
        /// Group.
        group: String,
        /// Name.
        name: String,
    },
    /// Creates or replaces a pending delivery.
    PutDelivery(Box<PendingDelivery>),
    /// Removes a delivery (done, or given up).
    DeleteDelivery(String),
}

/// Durable storage for EventBridge Scheduler.
pub trait SchedulerStore: Send + Sync + std::fmt::Debug {
    /// Everything stored.
    fn load(&self) -> Result<Snapshot, SchedulerError>;

    /// Applies changes atomically and durably: all of them are on disk when this returns
    /// `Ok`, and none of them when it returns an error.
    fn commit(&self, changes: &[Change]) -> Result<(), SchedulerError>;
}
