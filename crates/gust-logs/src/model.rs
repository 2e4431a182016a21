//! The domain: log groups, streams and events as the service sees them.

use std::collections::BTreeMap;

/// The retention periods PutRetentionPolicy accepts, in days.
pub const RETENTION_DAYS: &[u32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// A log group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogGroup {
    /// The owning account.
    pub account: String,
    /// The name.
    pub name: String,
    /// When it was created (epoch ms).
    pub created_ms: i64,
    /// Days events are kept; `None` keeps them forever.
    pub retention_days: Option<u32>,
    /// `STANDARD`, `INFREQUENT_ACCESS`…
    pub class: String,
    /// The KMS key given at creation (kept, never used).
    pub kms_key_id: Option<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Bytes of events stored (UTF-8 message bytes).
    pub stored_bytes: i64,
}

/// A log stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStream {
    /// The name.
    pub name: String,
    /// When it was created (epoch ms).
    pub created_ms: i64,
    /// The earliest event timestamp put (epoch ms).
    pub first_event_ms: Option<i64>,
    /// The latest event timestamp put (epoch ms).
    pub last_event_ms: Option<i64>,
    /// When events were last put (epoch ms).
    pub last_ingestion_ms: Option<i64>,
    /// Bumped with every PutLogEvents (the sequence token's basis).
    pub sequence: i64,
}

/// An event to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Its timestamp (epoch ms).
    pub timestamp: i64,
    /// The message.
    pub message: String,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The store's id: unique, increasing in the order events were stored.
    pub id: i64,
    /// Its stream's name.
    pub stream: String,
    /// Its timestamp (epoch ms).
    pub timestamp: i64,
    /// When it was stored (epoch ms).
    pub ingestion_ms: i64,
    /// The message.
    pub message: String,
}

impl Event {
    /// The `eventId` the API shows: fixed-width digits ordering like the events.
    pub fn event_id(&self) -> String {
        format!("{:020}{:020}", self.timestamp.max(0), self.id.max(0))
    }
}

/// Where a read starts: after (forward) or before (backward) this event position, or
/// at one end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Timestamp (epoch ms).
    pub timestamp: i64,
    /// Event id.
    pub id: i64,
}

/// Events rejected by PutLogEvents (indices into the request's events).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rejected {
    /// The first event newer than 2 hours ahead (inclusive).
    pub too_new_start: Option<usize>,
    /// The end of the events older than 14 days (exclusive).
    pub too_old_end: Option<usize>,
    /// The end of the events older than the group's retention (exclusive).
    pub expired_end: Option<usize>,
}

impl Rejected {
    /// Whether nothing was rejected.
    pub fn is_empty(&self) -> bool {
        *self == Rejected::default()
    }
}

/// PutLogEvents' outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    /// The next sequence token (ignored by the service, returned for old clients).
    pub next_sequence_token: String,
    /// What was rejected.
    pub rejected: Rejected,
}

/// DescribeLogStreams' order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamOrder {
    /// By name.
    Name,
    /// By the last event's timestamp.
    LastEventTime,
}

/// A page of anything and the token for the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// The next page's token, when there is one.
    pub next_token: Option<String>,
}

/// GetLogEvents' answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsPage {
    /// Events, oldest first.
    pub events: Vec<Event>,
    /// `nextForwardToken`.
    pub next_forward_token: String,
    /// `nextBackwardToken`.
    pub next_backward_token: String,
}

/// What GetLogEvents reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetEventsQuery {
    /// Events at or after this time (epoch ms).
    pub start_ms: Option<i64>,
    /// Events before this time (epoch ms).
    pub end_ms: Option<i64>,
    /// A token from an earlier answer.
    pub next_token: Option<String>,
    /// At most this many events (10,000 and 1 MB at most).
    pub limit: Option<usize>,
    /// Start with the oldest events when there is no token.
    pub start_from_head: bool,
}

/// What FilterLogEvents reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterQuery {
    /// Only these streams.
    pub stream_names: Vec<String>,
    /// Only streams whose names start so.
    pub stream_prefix: Option<String>,
    /// Events at or after this time (epoch ms).
    pub start_ms: Option<i64>,
    /// Events at or before this time (epoch ms).
    pub end_ms: Option<i64>,
    /// The filter pattern (empty: every event).
    pub pattern: String,
    /// A token from an earlier answer.
    pub next_token: Option<String>,
    /// At most this many events (10,000 at most).
    pub limit: Option<usize>,
}

/// What DescribeLogGroups lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupQuery {
    /// Names starting so.
    pub prefix: Option<String>,
    /// Names containing this (case-insensitive).
    pub pattern: Option<String>,
    /// Only this class.
    pub class: Option<String>,
    /// A token from an earlier answer.
    pub next_token: Option<String>,
    /// At most this many (50 at most).
    pub limit: Option<usize>,
}

/// What DescribeLogStreams lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamQuery {
    /// Names starting so.
    pub prefix: Option<String>,
    /// The order.
    pub order: StreamOrder,
    /// Reverse it.
    pub descending: bool,
    /// A token from an earlier answer.
    pub next_token: Option<String>,
    /// At most this many (50 at most).
    pub limit: Option<usize>,
}
