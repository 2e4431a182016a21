//! The store's interface: what the service needs from durable storage, so a distributed
//! store could stand in for the embedded one ([`crate::sqlite`]). Every write is durable
//! when its call returns.

use std::collections::BTreeMap;

use crate::error::LogsError;
use crate::model::{Event, LogGroup, LogStream, NewEvent, Position};

/// Events to add to one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Append {
    /// The account.
    pub account: String,
    /// The log group.
    pub group: String,
    /// The log stream.
    pub stream: String,
    /// The events.
    pub events: Vec<NewEvent>,
    /// When they were received (epoch ms).
    pub ingestion_ms: i64,
    /// Create the group and stream when missing (function output) rather than fail.
    pub create: bool,
}

/// Which events of a group a scan reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan<'a> {
    /// Only these streams (none: all).
    pub streams: &'a [String],
    /// Only streams whose names start so.
    pub prefix: Option<&'a str>,
    /// Timestamps at or after this.
    pub from_ms: i64,
    /// Timestamps at or before this.
    pub to_ms: i64,
}

/// How much one read returns at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Events.
    pub events: usize,
    /// Bytes, each event counting its message plus 26 (CloudWatch's event size). The
    /// first event is returned whatever its size, so a read always makes progress.
    pub bytes: usize,
}

/// Events a read returned, in the read's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    /// The events.
    pub events: Vec<Event>,
    /// The budget ran out before the events in range did.
    pub more: bool,
}

/// Durable storage for CloudWatch Logs.
pub trait LogsStore: Send + Sync + std::fmt::Debug {
    /// Creates a group; `ResourceAlreadyExists` when the name is taken.
    fn create_group(&self, group: &LogGroup) -> Result<(), LogsError>;

    /// Deletes a group with its streams and events; `false` when there was none.
    fn delete_group(&self, account: &str, name: &str) -> Result<bool, LogsError>;

    /// A group.
    fn group(&self, account: &str, name: &str) -> Result<Option<LogGroup>, LogsError>;

    /// An account's groups in name order, names starting with `prefix`.
    fn groups(&self, account: &str, prefix: Option<&str>) -> Result<Vec<LogGroup>, LogsError>;

    /// Sets or clears a group's retention; `false` when there is no such group.
    fn set_retention(
        &self,
        account: &str,
        name: &str,
        days: Option<u32>,
    ) -> Result<bool, LogsError>;

    /// Replaces a group's tags; `false` when there is no such group.
    fn set_tags(
        &self,
        account: &str,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<bool, LogsError>;

    /// Creates a stream; errors when the group is missing or the stream exists.
    fn create_stream(
        &self,
        account: &str,
        group: &str,
        name: &str,
        created_ms: i64,
    ) -> Result<(), LogsError>;

    /// Deletes a stream with its events; errors when the group or stream is missing.
    fn delete_stream(&self, account: &str, group: &str, name: &str) -> Result<(), LogsError>;

    /// A group's streams (any order); `None` when the group is missing.
    fn streams(&self, account: &str, group: &str) -> Result<Option<Vec<LogStream>>, LogsError>;

    /// Adds events to streams, each append on its own (one failing does not stop the
    /// others); each result is the stream's new sequence number.
    fn append(&self, appends: Vec<Append>) -> Result<Vec<Result<i64, LogsError>>, LogsError>;

    /// Events of one stream with timestamps in `from_ms..=to_ms`, as many as `budget`
    /// allows, ordered by (timestamp, id): forward from after `cursor` (oldest first), or
    /// backward from before it (newest first). `None` when the stream is missing.
    /// Memory stays within the budget (plus one event) however many events are in range.
    #[allow(clippy::too_many_arguments)]
    fn read_stream(
        &self,
        account: &str,
        group: &str,
        stream: &str,
        range: (i64, i64),
        cursor: Option<Position>,
        backward: bool,
        budget: Budget,
    ) -> Result<Option<Rows>, LogsError>;

    /// Events of a group after `after`, as many as `budget` allows, ordered by
    /// (timestamp, id) across streams. `None` when the group is missing. Memory stays
    /// within the budget (plus one event) however many events are in range.
    fn read_group(
        &self,
        account: &str,
        group: &str,
        scan: &Scan<'_>,
        after: Option<Position>,
        budget: Budget,
    ) -> Result<Option<Rows>, LogsError>;

    /// Deletes a group's events with timestamps before `before_ms`; how many went.
    fn expire(&self, account: &str, group: &str, before_ms: i64) -> Result<u64, LogsError>;

    /// Every group with a retention policy: (account, name, days).
    fn retained_groups(&self) -> Result<Vec<(String, String, u32)>, LogsError>;
}
