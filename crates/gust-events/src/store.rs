//! The store's interface: what the service needs from durable storage. Buses and rules are
//! kept in memory (this process is the only writer) and written through: [`load`] once at
//! start, then [`commit`] for every change. Deliveries live only in the store: they are
//! added with the change that makes them (an accepted `PutEvents`, a scheduled firing) and
//! the worker reads them back with [`due`]. The embedded implementation is SQLite
//! ([`crate::sqlite`]).
//!
//! [`load`]: EventsStore::load
//! [`commit`]: EventsStore::commit
//! [`due`]: EventsStore::due

use serde::{Deserialize, Serialize};

use crate::error::EventsError;
use crate::model::{EventBus, Rule};

/// Everything stored but the deliveries.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Event buses.
    pub buses: Vec<EventBus>,
    /// Rules, with their targets.
    pub rules: Vec<Rule>,
}

/// Why a delivery ended up for the dead-letter queue: EventBridge's DLQ message attributes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Failure {
    /// `ERROR_CODE`.
    pub error_code: String,
    /// `ERROR_MESSAGE`.
    pub error_message: String,
    /// `EXHAUSTED_RETRY_CONDITION`: `MaximumRetryAttempts` or `MaximumEventAgeInSeconds`
    /// when retries ran out, absent for a failure that is not retried.
    pub exhausted_retry_condition: Option<String>,
    /// `RETRY_ATTEMPTS`.
    pub retry_attempts: u32,
}

/// A delivery to add: one event for one target of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The rule's account.
    pub account: String,
    /// The rule's ARN (the delivery's source ARN).
    pub rule_arn: String,
    /// The target's `Id`.
    pub target_id: String,
    /// The target's ARN.
    pub target_arn: String,
    /// What the target receives.
    pub payload: String,
    /// The event (the dead-letter queue receives it).
    pub event: String,
    /// A FIFO queue target's message group.
    pub message_group_id: Option<String>,
    /// The target's dead-letter queue.
    pub dead_letter_arn: Option<String>,
    /// Retries allowed after the first attempt.
    pub max_retries: u32,
    /// How old the event may get, in seconds.
    pub max_age_seconds: u32,
    /// When the event was received (milliseconds since the epoch); its age counts from here.
    pub created_ms: i64,
}

/// A stored delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The store's id.
    pub id: i64,
    /// What to deliver.
    pub delivery: NewDelivery,
    /// Attempts so far (in the current stage).
    pub attempts: u32,
    /// When the next attempt is due (milliseconds since the epoch).
    pub next_ms: i64,
    /// Delivering to the dead-letter queue rather than the target; `failure` says why.
    pub failure: Option<Failure>,
}

/// One change.
#[derive(Debug, Clone)]
pub enum Change {
    /// Creates or replaces a bus.
    PutBus(EventBus),
    /// Deletes a bus with its rules.
    DeleteBus {
        /// Account.
        account: String,
        /// Name.
        name: String,
    },
    /// Creates or replaces a rule (with its targets).
    PutRule(Rule),
    /// Deletes a rule.
    DeleteRule {
        /// Account.
        account: String,
        /// Bus name.
        bus: String,
        /// Name.
        name: String,
    },
    /// Adds a delivery, due at once.
    AddDelivery(NewDelivery),
    /// Removes a delivery that is done.
    FinishDelivery(i64),
    /// Reschedules a delivery.
    RetryDelivery {
        /// The delivery.
        id: i64,
        /// Attempts so far in its stage.
        attempts: u32,
        /// When it is next due (milliseconds since the epoch).
        next_ms: i64,
        /// Set when the delivery moves to its dead-letter queue.
        failure: Option<Failure>,
    },
}

/// Durable storage for EventBridge.
pub trait EventsStore: Send + Sync + std::fmt::Debug {
    /// Every bus and rule.
    fn load(&self) -> Result<Snapshot, EventsError>;

    /// Applies changes atomically and durably: all of them are on disk when this returns
    /// `Ok`, and none of them when it returns an error.
    fn commit(&self, changes: &[Change]) -> Result<(), EventsError>;

    /// Up to `limit` deliveries due at `now_ms`, earliest first, and when the first one not
    /// yet due is.
    fn due(&self, now_ms: i64, limit: usize) -> Result<(Vec<Delivery>, Option<i64>), EventsError>;
}
