//! Gust's queues: the semantics of Amazon SQS — visibility timeouts, receipt handles,
//! delays, retention, dead-letter redrive and move tasks, FIFO order per message group with
//! deduplication — over a durable [`QueueStore`]. No HTTP: the API layer's protocol
//! adapters (JSON 1.0 and query/XML) turn requests into [`Sqs`] calls.
//!
//! Invariants:
//! - A send returns only after its messages are committed to the store; a receive's claim
//!   (new receipt, receive count, invisibility) is committed before the messages are
//!   returned; a delete with a stale receipt deletes nothing.
//! - A FIFO message group has at most one receive in flight; order within a group is the
//!   order of sends.

pub mod attributes;
pub mod error;
pub mod message;
mod service;
pub mod sqlite;
pub mod store;

pub use error::SqsError;
pub use service::{check_batch_ids, Caller, MoveTask, QueueAddress, ReceiveOptions, Received, Sqs};

#[cfg(test)]
mod tests;
