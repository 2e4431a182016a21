//! Gust's EventBridge: event buses, rules (event patterns and schedules), targets, and
//! `PutEvents`, for every account.
//!
//! - Buses: the `default` bus always exists; custom buses are created and deleted.
//! - Rules on a bus match events with an event pattern ([`gust_model::pattern`]); rules on
//!   the default bus may instead fire on a schedule (`rate(…)`, `cron(…)`, UTC) with
//!   EventBridge's "Scheduled Event".
//! - Targets (up to five per rule) get the event, a constant input, a part of it
//!   (`InputPath`) or a template filled from it (`InputTransformer`), through
//!   [`gust_model::targets::Deliver`], acting as `events.amazonaws.com` for the rule.
//! - Deliveries are durable: an accepted event's deliveries are in the store before
//!   `PutEvents` returns, and the worker ([`Events::start`]) retries them with back-off
//!   within the target's `RetryPolicy`, then sends the event to the target's dead-letter
//!   queue, or drops it with a warning.
//!
//! No HTTP: the API layer's JSON adapter turns requests into [`Events`] calls. Everything
//! but the deliveries is kept in memory and written through to an [`EventsStore`] (SQLite by
//! default) before an operation returns.

pub mod error;
pub mod model;
mod service;
pub mod sqlite;
pub mod store;
mod transform;
mod worker;

pub use error::EventsError;
pub use model::{
    CreateBusInput, EventBus, EventsArn, InputTransformer, Page, Paged, PutEventsEntry,
    PutEventsOutput, PutEventsResultEntry, PutRuleInput, RetryPolicy, Rule, RuleState, Target,
    TargetFailure, DEFAULT_BUS,
};
pub use service::{
    Events, EventsConfig, MAX_BUSES, MAX_ENTRIES, MAX_ENTRIES_SIZE, MAX_RULES_PER_BUS, MAX_TAGS,
    MAX_TARGETS_PER_RULE,
};
pub use store::EventsStore;

#[cfg(test)]
mod tests;
