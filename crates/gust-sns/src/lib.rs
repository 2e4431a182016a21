//! Gust's topics: the semantics of Amazon SNS — topics (standard and FIFO), subscriptions
//! for SQS queues, Lambda functions and HTTP endpoints, filter policies, raw and
//! `MessageStructure=json` delivery, signed envelopes, retries and dead-letter queues —
//! over a durable [`TopicStore`]. No HTTP server: the query-protocol adapter turns requests
//! into [`Sns`] calls and serves [`Sns::signing_certificate_pem`]. SQS and Lambda targets
//! are reached through the binary's [`Deliverer`]; HTTP endpoints directly (http:// only:
//! there is no TLS client, so https:// deliveries fail permanently).
//!
//! Invariants:
//! - A publish returns only after the message and one pending delivery per matching
//!   confirmed subscription are committed to the store: a crash after the answer loses
//!   nothing, and [`Sns::start`] resumes whatever is pending.
//! - A delivery leaves the store only when it succeeded, or when it failed for good and
//!   was handed to the subscription's dead-letter queue (itself retried) or logged as
//!   dropped. Never silently.
//! - Deliveries of one FIFO message group to one subscription happen one at a time, in
//!   publish order; a failing one holds the later ones back.
//! - Every delivery carries a snapshot of its subscription (endpoint, raw delivery,
//!   dead-letter queue, HTTP policy) taken at publish time; unsubscribing or deleting the
//!   topic drops its pending deliveries.
//! - Time comes from the [`gust_model::Clock`] given; retry delays scale with
//!   [`SnsConfig::retry_base`].

pub mod delivery;
pub mod error;
pub mod filter;
pub mod message;
mod service;
pub mod signing;
pub mod sqlite;
pub mod store;
mod worker;

pub use delivery::{BoxFuture, Deliverer, DeliveryError, SqsDelivery};
pub use error::SnsError;
pub use filter::{FilterPolicy, FilterScope};
pub use message::{MessageAttribute, MessageAttributes};
pub use service::{
    default_policy, BatchEntry, BatchFailure, BatchSuccess, Caller, PublishRequest, PublishResult,
    Sns, SnsConfig, SubscriptionSummary, PENDING_CONFIRMATION,
};
pub use sqlite::SqliteTopics;
pub use store::TopicStore;

#[cfg(test)]
mod tests;
