//! Gust's CloudWatch Logs: log groups, streams and events of every account, filter
//! patterns, retention and tags, kept in SQLite behind [`LogsStore`]. Function output
//! arrives through [`Logs::ingest`], batched by a background writer. No HTTP: the
//! protocol adapter lives in `gust-api`.

mod error;
pub mod filter;
mod ingest;
mod model;
mod service;
pub mod sqlite;
mod store;

#[cfg(test)]
mod tests;

pub use error::LogsError;
pub use filter::{FilterPattern, PatternError};
pub use ingest::{event_size, MESSAGE_MAX, PENDING_MAX};
pub use model::{
    Event, EventsPage, FilterQuery, GetEventsQuery, GroupQuery, LogGroup, LogStream, NewEvent,
    Page, Position, PutOutcome, Rejected, StreamOrder, StreamQuery, DAY_MS, RETENTION_DAYS,
};
pub use service::{Logs, BATCH_BYTES_MAX, EVENTS_LIMIT_MAX, TAIL_BYTES_MAX};
pub use store::{Append, Budget, LogsStore, Rows, Scan};
