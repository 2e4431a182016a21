//! Gust's EventBridge Scheduler (`scheduler`), per account:
//!
//! - Schedule groups (the `default` group always exists; deleting a group deletes its
//!   schedules) and their tags.
//! - Schedules: `at(…)`, `rate(…)` and `cron(…)` expressions evaluated in a time zone with
//!   [`gust_model::schedule`] (EventBridge Scheduler's daylight-saving rules), start and end
//!   dates, a flexible time window, `ENABLED`/`DISABLED`, and `ActionAfterCompletion`.
//! - Targets: Lambda functions, SQS queues, SNS topics and EventBridge event buses, reached
//!   through [`gust_model::targets::Deliver`] as [`Principal::Scheduler`] with the schedule's
//!   ARN as the source. The payload is the target's `Input` with its context attributes
//!   (`<aws.scheduler.scheduled-time>`…) replaced, or `{}` when there is none.
//! - Delivery: durable ([`delivery`]): a firing is committed before its target is tried,
//!   retried with exponential back-off within the target's `RetryPolicy`, and sent to the
//!   target's dead-letter queue on failure.
//!
//! No HTTP: the API layer's REST-JSON adapter turns requests into [`Scheduler`] calls.
//! Everything is kept in memory and written through to a [`SchedulerStore`] (SQLite by
//! default) before an operation returns. The driver ([`Scheduler::start`], or
//! [`Scheduler::tick`] in tests) takes time from the injected [`gust_model::Clock`].
//!
//! The dead-letter message's attributes (`ERROR_CODE`, `ERROR_MESSAGE`, `RETRY_ATTEMPTS`…,
//! see [`delivery::dead_letter_attributes`]) are computed and kept with the message, but
//! `Delivery` cannot carry message attributes yet, so the queue receives the body only;
//! and `DeliveryError` carries no error code, so `ERROR_CODE` is
//! [`delivery::TARGET_ERROR_CODE`].
//!
//! [`Principal::Scheduler`]: gust_model::targets::Principal::Scheduler

pub mod delivery;
mod driver;
pub mod error;
pub mod model;
mod service;
pub mod sqlite;
pub mod store;

pub use error::SchedulerError;
pub use model::{
    ActionAfterCompletion, DeadLetterConfig, EventBridgeParameters, FlexibleMode,
    FlexibleTimeWindow, FlexibleTimeWindowInput, GroupState, Page, Paged, RetryPolicy,
    RetryPolicyInput, Schedule, ScheduleFilter, ScheduleGroup, ScheduleInput, ScheduleState,
    SqsParameters, Target, TargetInput, DEFAULT_GROUP,
};
pub use service::{Scheduler, SchedulerConfig, MAX_GROUPS, MAX_SCHEDULES};
pub use store::SchedulerStore;

#[cfg(test)]
mod tests;
