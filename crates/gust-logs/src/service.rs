//! The service: CloudWatch Logs' semantics over a [`LogsStore`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Weak};

use gust_model::Clock;

use crate::error::LogsError;
use crate::filter::FilterPattern;
use crate::ingest::{event_size, Ingest, MESSAGE_MAX};
use crate::model::{
    Event, EventsPage, FilterQuery, GetEventsQuery, GroupQuery, LogGroup, LogStream, NewEvent,
    Page, Position, PutOutcome, Rejected, StreamOrder, StreamQuery, DAY_MS, RETENTION_DAYS,
};
use crate::sqlite::SqliteStore;
use crate::store::{Append, Budget, LogsStore, Rows, Scan};

/// PutLogEvents' batch size at most (message bytes plus 26 per event).
pub const BATCH_BYTES_MAX: usize = 1_048_576;
/// Events a page of GetLogEvents / FilterLogEvents holds at most.
pub const EVENTS_LIMIT_MAX: usize = 10_000;
/// Bytes of messages a page holds at most.
const PAGE_BYTES_MAX: usize = 1_048_576;
/// Events one FilterLogEvents call looks at before answering with a token to go on.
const SCAN_MAX: usize = 100_000;
/// Rows read from the store at a time while filtering, and their bytes at most.
const SCAN_CHUNK: Budget = Budget {
    events: 500,
    bytes: 1_048_576,
};
/// Bytes of events one [`Logs::tail`] call returns at most (its caller pages on).
pub const TAIL_BYTES_MAX: usize = 1_048_576;
/// How far ahead of now an event may be.
const TOO_NEW_MS: i64 = 2 * 3_600_000;
/// How far behind now an event may be.
const TOO_OLD_MS: i64 = 14 * DAY_MS;
/// The span of one PutLogEvents batch at most.
const SPAN_MAX_MS: i64 = 24 * 3_600_000;
/// Tags a log group has at most.
const TAGS_MAX: usize = 50;
/// How often the sweeper applies retention.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// The logs of every account.
#[derive(Debug)]
pub struct Logs {
    store: Arc<dyn LogsStore>,
    ingest: Ingest,
    clock: Arc<dyn Clock>,
    region: String,
    sweeping: std::sync::atomic::AtomicBool,
}

impl Drop for Logs {
    fn drop(&mut self) {
        // Function output accepted so far is committed before the store goes.
        self.ingest.shutdown();
    }
}

fn now_ms(clock: &dyn Clock) -> i64 {
    gust_store::sqlite::ms(clock.now())
}

fn bad_token() -> LogsError {
    LogsError::invalid("The specified nextToken is invalid.")
}

fn parse_position(text: &str) -> Option<Position> {
    let (timestamp, id) = text.split_once('/')?;
    Some(Position {
        timestamp: timestamp.parse().ok()?,
        id: id.parse().ok()?,
    })
}

fn position(event: &Event) -> Position {
    Position {
        timestamp: event.timestamp,
        id: event.id,
    }
}

fn token(kind: char, at: Position) -> String {
    format!("{kind}/{}/{}", at.timestamp, at.id)
}

impl Logs {
    /// Logs kept in the SQLite database at `path`, retention applied every minute.
    pub fn open(path: &Path, clock: Arc<dyn Clock>, region: &str) -> Result<Arc<Self>, LogsError> {
        let store = SqliteStore::open(path)?;
        let logs = Self::with_store(Arc::new(store), clock, region)?;
        logs.start_sweeper();
        Ok(logs)
    }

    /// Logs kept in `store`.
    pub fn with_store(
        store: Arc<dyn LogsStore>,
        clock: Arc<dyn Clock>,
        region: &str,
    ) -> Result<Arc<Self>, LogsError> {
        let ingest = Ingest::start(Arc::clone(&store), Arc::clone(&clock)).map_err(|error| {
            tracing::error!(%error, "cannot start log ingestion");
            LogsError::internal()
        })?;
        Ok(Arc::new(Logs {
            store,
            ingest,
            clock,
            region: region.to_owned(),
            sweeping: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// The region ARNs name.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// A log group's ARN (`logGroupArn`, without the trailing `:*`).
    pub fn group_arn(&self, account: &str, group: &str) -> String {
        format!("arn:aws:logs:{}:{account}:log-group:{group}", self.region)
    }

    /// A log stream's ARN.
    pub fn stream_arn(&self, account: &str, group: &str, stream: &str) -> String {
        format!(
            "arn:aws:logs:{}:{account}:log-group:{group}:log-stream:{stream}",
            self.region
        )
    }

    /// The group a `logGroupIdentifier` (a name or an ARN of `account`) names.
    pub fn group_of_identifier(
        &self,
        account: &str,
        identifier: &str,
    ) -> Result<String, LogsError> {
        if !identifier.starts_with("arn:") {
            return Ok(identifier.to_owned());
        }
        self.group_of_arn(account, identifier)
    }

    /// The group a log group ARN (with or without `:*`) names.
    pub fn group_of_arn(&self, account: &str, arn: &str) -> Result<String, LogsError> {
        let parts: Vec<&str> = arn.splitn(7, ':').collect();
        let [_arn, _partition, service, _region, owner, kind, rest] = parts.as_slice() else {
            return Err(LogsError::invalid(format!("Invalid ARN: {arn}")));
        };
        if *service != "logs" || *kind != "log-group" || rest.is_empty() {
            return Err(LogsError::invalid(format!("Invalid ARN: {arn}")));
        }
        if *owner != account {
            return Err(LogsError::group_not_found());
        }
        let name = rest.strip_suffix(":*").unwrap_or(rest);
        Ok(name.to_owned())
    }

    fn existing_group(&self, account: &str, name: &str) -> Result<LogGroup, LogsError> {
        self.store
            .group(account, name)?
            .ok_or_else(LogsError::group_not_found)
    }

    // -----------------------------------------------------------------------------------
    // Log groups.

    /// CreateLogGroup.
    pub fn create_log_group(
        &self,
        account: &str,
        name: &str,
        tags: BTreeMap<String, String>,
        class: Option<&str>,
        kms_key_id: Option<&str>,
    ) -> Result<(), LogsError> {
        if tags.len() > TAGS_MAX {
            return Err(too_many_tags());
        }
        self.store.create_group(&LogGroup {
            account: account.to_owned(),
            name: name.to_owned(),
            created_ms: now_ms(self.clock.as_ref()),
            retention_days: None,
            class: class.unwrap_or("STANDARD").to_owned(),
            kms_key_id: kms_key_id.map(str::to_owned),
            tags,
            stored_bytes: 0,
        })
    }

    /// DeleteLogGroup (its streams and events go with it).
    pub fn delete_log_group(&self, account: &str, name: &str) -> Result<(), LogsError> {
        if self.store.delete_group(account, name)? {
            Ok(())
        } else {
            Err(LogsError::group_not_found())
        }
    }

    /// A log group.
    pub fn log_group(&self, account: &str, name: &str) -> Result<LogGroup, LogsError> {
        self.existing_group(account, name)
    }

    /// DescribeLogGroups: groups in name order; the token is the last name given.
    pub fn describe_log_groups(
        &self,
        account: &str,
        query: &GroupQuery,
    ) -> Result<Page<LogGroup>, LogsError> {
        if query.prefix.is_some() && query.pattern.is_some() {
            return Err(LogsError::invalid(
                "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.",
            ));
        }
        let limit = query.limit.unwrap_or(50).clamp(1, 50);
        let pattern = query.pattern.as_deref().map(str::to_lowercase);
        let mut groups: Vec<LogGroup> = self
            .store
            .groups(account, query.prefix.as_deref())?
            .into_iter()
            .filter(|g| {
                query
                    .next_token
                    .as_deref()
                    .is_none_or(|after| g.name.as_str() > after)
            })
            .filter(|g| {
                pattern
                    .as_deref()
                    .is_none_or(|p| g.name.to_lowercase().contains(p))
            })
            .filter(|g| query.class.as_deref().is_none_or(|c| g.class == c))
            .take(limit + 1)
            .collect();
        let next_token = if groups.len() > limit {
            groups.truncate(limit);
            groups.last().map(|g| g.name.clone())
        } else {
            None
        };
        Ok(Page {
            items: groups,
            next_token,
        })
    }

    // -----------------------------------------------------------------------------------
    // Log streams.

    /// CreateLogStream.
    pub fn create_log_stream(
        &self,
        account: &str,
        group: &str,
        name: &str,
    ) -> Result<(), LogsError> {
        self.store
            .create_stream(account, group, name, now_ms(self.clock.as_ref()))
    }

    /// DeleteLogStream (its events go with it).
    pub fn delete_log_stream(
        &self,
        account: &str,
        group: &str,
        name: &str,
    ) -> Result<(), LogsError> {
        self.store.delete_stream(account, group, name)
    }

    /// DescribeLogStreams; the token is an offset into the order asked for.
    pub fn describe_log_streams(
        &self,
        account: &str,
        group: &str,
        query: &StreamQuery,
    ) -> Result<Page<LogStream>, LogsError> {
        if query.order == StreamOrder::LastEventTime && query.prefix.is_some() {
            return Err(LogsError::invalid(
                "Cannot order by LastEventTime with a logStreamNamePrefix.",
            ));
        }
        let offset = match &query.next_token {
            None => 0,
            Some(token) => token
                .strip_prefix("o/")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(bad_token)?,
        };
        let limit = query.limit.unwrap_or(50).clamp(1, 50);
        let mut streams: Vec<LogStream> = self
            .store
            .streams(account, group)?
            .ok_or_else(LogsError::group_not_found)?
            .into_iter()
            .filter(|s| {
                query
                    .prefix
                    .as_deref()
                    .is_none_or(|p| s.name.starts_with(p))
            })
            .collect();
        match query.order {
            StreamOrder::Name => streams.sort_by(|a, b| a.name.cmp(&b.name)),
            StreamOrder::LastEventTime => streams.sort_by(|a, b| {
                (a.last_event_ms.unwrap_or(0), &a.name)
                    .cmp(&(b.last_event_ms.unwrap_or(0), &b.name))
            }),
        }
        if query.descending {
            streams.reverse();
        }
        let total = streams.len();
        let items: Vec<LogStream> = streams.into_iter().skip(offset).take(limit).collect();
        let next_token =
            (offset + items.len() < total).then(|| format!("o/{}", offset + items.len()));
        Ok(Page { items, next_token })
    }

    // -----------------------------------------------------------------------------------
    // Events.

    /// PutLogEvents: returns once the accepted events are durably committed.
    pub fn put_log_events(
        &self,
        account: &str,
        group: &str,
        stream: &str,
        events: Vec<NewEvent>,
    ) -> Result<PutOutcome, LogsError> {
        let size: usize = events.iter().map(|e| event_size(&e.message)).sum();
        if size > BATCH_BYTES_MAX {
            return Err(LogsError::invalid(format!(
                "Upload too large: {size} bytes exceeds limit of {BATCH_BYTES_MAX}"
            )));
        }
        if let Some(big) = events.iter().find(|e| e.message.len() > MESSAGE_MAX) {
            return Err(LogsError::invalid(format!(
                "Log event too large: {} bytes exceeds limit of 262144",
                event_size(&big.message)
            )));
        }
        if events.iter().any(|e| e.message.is_empty()) {
            return Err(LogsError::invalid("Log event message cannot be empty."));
        }
        if events.windows(2).any(|w| w[1].timestamp < w[0].timestamp) {
            return Err(LogsError::invalid(
                "Log events in a single PutLogEvents request must be in chronological order.",
            ));
        }
        if let (Some(first), Some(last)) = (events.first(), events.last()) {
            if last.timestamp.saturating_sub(first.timestamp) > SPAN_MAX_MS {
                return Err(LogsError::invalid(
                    "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.",
                ));
            }
        }
        let group_record = self.existing_group(account, group)?;
        let now = now_ms(self.clock.as_ref());
        let too_old_before = now - TOO_OLD_MS;
        let expired_before = group_record
            .retention_days
            .map(|days| now - i64::from(days) * DAY_MS);
        let too_new_after = now + TOO_NEW_MS;
        let mut rejected = Rejected::default();
        let old = events
            .iter()
            .take_while(|e| e.timestamp < too_old_before)
            .count();
        if old > 0 {
            rejected.too_old_end = Some(old);
        }
        let mut skip = old;
        if let Some(before) = expired_before {
            let expired = events.iter().take_while(|e| e.timestamp < before).count();
            if expired > 0 {
                rejected.expired_end = Some(expired);
            }
            skip = skip.max(expired);
        }
        let keep_until = events
            .iter()
            .position(|e| e.timestamp > too_new_after)
            .unwrap_or(events.len());
        if keep_until < events.len() {
            rejected.too_new_start = Some(keep_until);
        }
        let accepted: Vec<NewEvent> = events.into_iter().take(keep_until).skip(skip).collect();
        let append = Append {
            account: account.to_owned(),
            group: group.to_owned(),
            stream: stream.to_owned(),
            events: accepted,
            ingestion_ms: now,
            create: false,
        };
        let sequence = self
            .store
            .append(vec![append])?
            .pop()
            .unwrap_or_else(|| Err(LogsError::internal()))?;
        Ok(PutOutcome {
            next_sequence_token: format!("{sequence:056}"),
            rejected,
        })
    }

    /// GetLogEvents. Tokens are `f/<timestamp>/<id>` (events after that position) and
    /// `b/<timestamp>/<id>` (events before it); at either end the token passed comes back.
    pub fn get_log_events(
        &self,
        account: &str,
        group: &str,
        stream: &str,
        query: &GetEventsQuery,
    ) -> Result<EventsPage, LogsError> {
        let limit = query
            .limit
            .unwrap_or(EVENTS_LIMIT_MAX)
            .clamp(1, EVENTS_LIMIT_MAX);
        // startTime is inclusive, endTime exclusive.
        let range = (
            query.start_ms.unwrap_or(i64::MIN),
            query.end_ms.map_or(i64::MAX, |end| end.saturating_sub(1)),
        );
        let (cursor, backward) = match query.next_token.as_deref() {
            None => (None, !query.start_from_head),
            Some(token) => {
                let (kind, rest) = token.split_at_checked(2).ok_or_else(bad_token)?;
                let at = parse_position(rest).ok_or_else(bad_token)?;
                match kind {
                    "f/" => (Some(at), false),
                    "b/" => (Some(at), true),
                    _ => return Err(bad_token()),
                }
            }
        };
        // A page holds 1 MB at most: the store stops there, keeping the events nearest
        // the cursor.
        let budget = Budget {
            events: limit,
            bytes: PAGE_BYTES_MAX,
        };
        let mut events = self
            .store
            .read_stream(account, group, stream, range, cursor, backward, budget)?
            .ok_or_else(|| match self.store.group(account, group) {
                Ok(Some(_)) => LogsError::stream_not_found(),
                Ok(None) => LogsError::group_not_found(),
                Err(error) => error,
            })?
            .events;
        if backward {
            events.reverse();
        }
        let (next_forward_token, next_backward_token) = match (events.first(), events.last()) {
            (Some(first), Some(last)) => (token('f', position(last)), token('b', position(first))),
            _ => match (query.next_token.as_deref(), cursor) {
                (Some(passed), Some(at)) if !backward => (
                    passed.to_owned(),
                    token(
                        'b',
                        Position {
                            timestamp: at.timestamp,
                            id: at.id.saturating_add(1),
                        },
                    ),
                ),
                (Some(passed), Some(at)) => (
                    token(
                        'f',
                        Position {
                            timestamp: at.timestamp,
                            id: at.id.saturating_sub(1),
                        },
                    ),
                    passed.to_owned(),
                ),
                _ => (
                    token(
                        'f',
                        Position {
                            timestamp: i64::MIN,
                            id: i64::MIN,
                        },
                    ),
                    token(
                        'b',
                        Position {
                            timestamp: i64::MAX,
                            id: i64::MAX,
                        },
                    ),
                ),
            },
        };
        Ok(EventsPage {
            events,
            next_forward_token,
            next_backward_token,
        })
    }

    /// FilterLogEvents: matching events of a group in (timestamp, id) order across
    /// streams. The token (`e/<timestamp>/<id>`) is the position of the last event looked
    /// at; it is absent once every event in range has been looked at.
    pub fn filter_log_events(
        &self,
        account: &str,
        group: &str,
        query: &FilterQuery,
    ) -> Result<Page<Event>, LogsError> {
        if !query.stream_names.is_empty() && query.stream_prefix.is_some() {
            return Err(LogsError::invalid(
                "logStreamNames and logStreamNamePrefix are mutually exclusive parameters.",
            ));
        }
        let pattern = FilterPattern::parse(&query.pattern)
            .map_err(|_| LogsError::invalid("Invalid filter pattern"))?;
        let limit = query
            .limit
            .unwrap_or(EVENTS_LIMIT_MAX)
            .clamp(1, EVENTS_LIMIT_MAX);
        let mut cursor = match query.next_token.as_deref() {
            None => None,
            Some(token) => Some(
                token
                    .strip_prefix("e/")
                    .and_then(parse_position)
                    .ok_or_else(bad_token)?,
            ),
        };
        let scan = Scan {
            streams: &query.stream_names,
            prefix: query.stream_prefix.as_deref(),
            from_ms: query.start_ms.unwrap_or(i64::MIN),
            to_ms: query.end_ms.unwrap_or(i64::MAX),
        };
        let mut found = Vec::new();
        let mut bytes = 0;
        let mut scanned = 0;
        let more = 'scan: loop {
            let Rows { events, more } = self
                .store
                .read_group(account, group, &scan, cursor, SCAN_CHUNK)?
                .ok_or_else(LogsError::group_not_found)?;
            let mut events = events.into_iter().peekable();
            while let Some(event) = events.next() {
                if pattern.matches(&event.message) {
                    let size = event_size(&event.message);
                    if !found.is_empty() && bytes + size > PAGE_BYTES_MAX {
                        // It opens the next page: the cursor stays before it.
                        break 'scan true;
                    }
                    bytes += size;
                    cursor = Some(position(&event));
                    found.push(event);
                    if found.len() >= limit {
                        // Another event in range means another page.
                        break 'scan events.peek().is_some() || more;
                    }
                } else {
                    cursor = Some(position(&event));
                }
                scanned += 1;
            }
            if !more {
                break false;
            }
            if scanned >= SCAN_MAX {
                break true;
            }
        };
        Ok(Page {
            items: found,
            next_token: if more {
                cursor.map(|at| token('e', at))
            } else {
                None
            },
        })
    }

    // -----------------------------------------------------------------------------------
    // Retention.

    /// PutRetentionPolicy: events older than the period are deleted at once, and from then
    /// on by the sweeper.
    pub fn put_retention_policy(
        &self,
        account: &str,
        group: &str,
        days: u32,
    ) -> Result<(), LogsError> {
        if !RETENTION_DAYS.contains(&days) {
            return Err(LogsError::invalid(format!(
                "1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                RETENTION_DAYS.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            )));
        }
        if !self.store.set_retention(account, group, Some(days))? {
            return Err(LogsError::group_not_found());
        }
        let before = now_ms(self.clock.as_ref()) - i64::from(days) * DAY_MS;
        self.store.expire(account, group, before)?;
        Ok(())
    }

    /// DeleteRetentionPolicy: events are kept forever again.
    pub fn delete_retention_policy(&self, account: &str, group: &str) -> Result<(), LogsError> {
        if self.store.set_retention(account, group, None)? {
            Ok(())
        } else {
            Err(LogsError::group_not_found())
        }
    }

    /// Deletes every event older than its group's retention at `now`; how many went.
    pub fn sweep(&self, now: time::OffsetDateTime) -> Result<u64, LogsError> {
        let now = gust_store::sqlite::ms(now);
        let mut deleted = 0;
        for (account, group, days) in self.store.retained_groups()? {
            deleted += self
                .store
                .expire(&account, &group, now - i64::from(days) * DAY_MS)?;
        }
        Ok(deleted)
    }

    /// Starts a thread applying retention every minute, for as long as the service lives
    /// (once: later calls do nothing; [`Logs::open`] starts it).
    pub fn start_sweeper(self: &Arc<Self>) {
        if self
            .sweeping
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        let weak: Weak<Self> = Arc::downgrade(self);
        let started = std::thread::Builder::new()
            .name("logs-sweeper".into())
            .spawn(move || loop {
                std::thread::sleep(SWEEP_EVERY);
                let Some(logs) = weak.upgrade() else {
                    return;
                };
                if let Err(error) = logs.sweep(logs.clock.now()) {
                    tracing::error!(%error, "applying log retention failed");
                }
            });
        if let Err(error) = started {
            tracing::error!(%error, "cannot start the log retention sweeper");
        }
    }

    // -----------------------------------------------------------------------------------
    // Tags.

    /// A group's tags.
    pub fn tags(&self, account: &str, group: &str) -> Result<BTreeMap<String, String>, LogsError> {
        Ok(self.existing_group(account, group)?.tags)
    }

    /// Adds or replaces tags on a group.
    pub fn tag(
        &self,
        account: &str,
        group: &str,
        tags: BTreeMap<String, String>,
    ) -> Result<(), LogsError> {
        let mut current = self.existing_group(account, group)?.tags;
        current.extend(tags);
        if current.len() > TAGS_MAX {
            return Err(too_many_tags());
        }
        self.set_tags(account, group, &current)
    }

    /// Removes tags from a group.
    pub fn untag(&self, account: &str, group: &str, keys: &[String]) -> Result<(), LogsError> {
        let mut current = self.existing_group(account, group)?.tags;
        for key in keys {
            current.remove(key);
        }
        self.set_tags(account, group, &current)
    }

    fn set_tags(
        &self,
        account: &str,
        group: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), LogsError> {
        if self.store.set_tags(account, group, tags)? {
            Ok(())
        } else {
            Err(LogsError::group_not_found())
        }
    }

    // -----------------------------------------------------------------------------------
    // Function output and reading for the CLI.

    /// Function output for a stream of a group, both created on first use. Never fails:
    /// returns once the events are queued (waiting only while the queue is full); they are
    /// committed within moments, and [`Logs::flush`] waits for that.
    pub fn ingest(&self, account: &str, group: &str, stream: &str, events: Vec<(i64, String)>) {
        self.ingest.push(account, group, stream, events);
    }

    /// Waits until everything ingested before this call is committed.
    pub fn flush(&self) {
        self.ingest.flush();
    }

    /// Bytes of ingested events not yet committed.
    pub fn pending_bytes(&self) -> usize {
        self.ingest.pending_bytes()
    }

    /// Events of a group with timestamps at or after `since_ms` (and, with `after`, after
    /// that position), oldest first across its streams: up to `limit` of them and
    /// [`TAIL_BYTES_MAX`] bytes (none when the group is missing). Passing the last event's
    /// position as the next `after` follows the group without skipping or repeating any.
    pub fn tail(
        &self,
        account: &str,
        group: &str,
        since_ms: i64,
        after: Option<Position>,
        limit: usize,
    ) -> Rows {
        let scan = Scan {
            streams: &[],
            prefix: None,
            from_ms: since_ms,
            to_ms: i64::MAX,
        };
        let budget = Budget {
            events: limit,
            bytes: TAIL_BYTES_MAX,
        };
        match self.store.read_group(account, group, &scan, after, budget) {
            Ok(rows) => rows.unwrap_or_default(),
            Err(error) => {
                tracing::error!(%error, "reading log events failed");
                Rows::default()
            }
        }
    }
}

fn too_many_tags() -> LogsError {
    LogsError::TooManyTags("A resource can have no more than 50 tags.".into())
}
