//! What the platform reports about the work it does, for whoever watches it (CloudWatch
//! metrics, Prometheus, usage and cost). The engine and the asynchronous invoker emit
//! these; they know nothing of who listens, and emitting never blocks or fails.

use std::time::Duration;

use time::OffsetDateTime;

use crate::function::Architecture;

/// Which function (and which of its versions or aliases) an observation is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionKey {
    /// The function's account.
    pub account: String,
    /// The function's name.
    pub function: String,
    /// The qualifier the caller used (an alias name or a version number), as Lambda's
    /// `Resource` dimension names it (`name:qualifier`); `None` for `$LATEST` or none.
    pub qualifier: Option<String>,
}

/// One completed invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// Which function.
    pub key: FunctionKey,
    /// The version that ran (`$LATEST` or a number).
    pub executed_version: String,
    /// When it ended.
    pub at: OffsetDateTime,
    /// How long the function ran (REPORT's `Duration`).
    pub duration: Duration,
    /// REPORT's `Billed Duration`, in milliseconds.
    pub billed_ms: u64,
    /// The function's memory, in MB.
    pub memory_mb: u32,
    /// Its architecture (prices differ).
    pub architecture: Architecture,
    /// Whether it ended in a function error (handled, unhandled, timeout, crash).
    pub error: bool,
    /// `Init Duration` (or `Restore Duration`) when this invocation started an
    /// environment.
    pub cold_start: Option<Duration>,
    /// Whether it ran on provisioned concurrency.
    pub provisioned: bool,
    /// The request id the runtime saw.
    pub request_id: String,
    /// The trace header it ran with (`Root=1-…;Parent=…;Sampled=…`), as the runtime saw
    /// it in `_X_AMZN_TRACE_ID`.
    pub trace: Option<String>,
    /// The caller's own segment (`Parent=` of the trace header it sent), when it sent one:
    /// the span this invocation hangs under.
    pub caller_parent: Option<String>,
}

/// Something the platform observed.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// An invocation completed.
    Invoked(Invocation),
    /// An invocation was refused for concurrency or rate (`TooManyRequestsException`).
    Throttled {
        /// Which function.
        key: FunctionKey,
        /// When.
        at: OffsetDateTime,
    },
    /// An asynchronous event was queued (`AsyncEventsReceived`).
    AsyncReceived {
        /// Which function.
        key: FunctionKey,
        /// When.
        at: OffsetDateTime,
    },
    /// An asynchronous event was taken for an attempt, this long after it was queued
    /// (`AsyncEventAge`).
    AsyncAge {
        /// Which function.
        key: FunctionKey,
        /// When.
        at: OffsetDateTime,
        /// Its age.
        age: Duration,
    },
    /// An asynchronous event was dropped without being processed (`AsyncEventsDropped`).
    AsyncDropped {
        /// Which function.
        key: FunctionKey,
        /// When.
        at: OffsetDateTime,
    },
    /// A failed event could not be sent to the dead-letter queue (`DeadLetterErrors`).
    DeadLetterError {
        /// Which function.
        key: FunctionKey,
        /// When.
        at: OffsetDateTime,
    },
    /// A record could not be sent to an on-success or on-failure destination
    /// (`DestinationDeliveryFailures`).
    DestinationFailure {
        /// Which function.
        key: FunctionKey,
        /// When.
        at: OffsetDateTime,
    },
}

/// A point-in-time reading of one account's engine, taken periodically.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Gauges {
    /// The account.
    pub account: String,
    /// Invocations in flight in the account (`ConcurrentExecutions`).
    pub concurrent: u32,
    /// Of those, in functions without reserved concurrency
    /// (`UnreservedConcurrentExecutions`).
    pub unreserved: u32,
    /// Per function: (name, in flight, provisioned environments in use, provisioned
    /// environments configured).
    pub functions: Vec<FunctionGauges>,
    /// Environments by state (`idle`, `busy`, `initializing`, `snapshot`, ...), host-wide.
    pub environments: Vec<(String, u32)>,
}

/// One function's part of [`Gauges`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FunctionGauges {
    /// The function's name.
    pub function: String,
    /// Invocations in flight.
    pub concurrent: u32,
    /// Of those, on provisioned concurrency (`ProvisionedConcurrentExecutions`).
    pub provisioned_in_use: u32,
    /// Provisioned concurrency ready (the denominator of
    /// `ProvisionedConcurrencyUtilization`); 0 without any.
    pub provisioned_ready: u32,
    /// The memory of its provisioned environments, in MB (provisioned GB-seconds).
    pub memory_mb: u32,
    /// Their architecture.
    pub architecture: Option<Architecture>,
}

/// Whoever watches. Implementations must be cheap and never block: they are called on
/// the invoke path.
pub trait Observer: Send + Sync + std::fmt::Debug {
    /// Something happened.
    fn observe(&self, observation: Observation);
    /// A periodic reading (every few seconds).
    fn gauges(&self, _gauges: &Gauges, _at: OffsetDateTime) {}
}

/// Watches nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl Observer for NoObserver {
    fn observe(&self, _observation: Observation) {}
}
