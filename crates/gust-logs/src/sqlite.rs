//! The embedded store: one SQLite database (WAL, `synchronous=FULL`). Writes go through one
//! writer thread with group commit (concurrent PutLogEvents calls share an fsync); reads use
//! their own connection, which WAL lets run beside the writer.
//!
//! Events carry their group's and stream's row ids, indexed by (group, timestamp, id) for
//! reads across a group and retention, and by (stream, timestamp, id) for one stream.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use gust_store::group_commit::{GroupCommit, RunError};
use gust_store::sqlite::{json, open_versioned};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::LogsError;
use crate::ingest::event_size;
use crate::model::{Event, LogGroup, LogStream, Position};
use crate::store::{Append, Budget, LogsStore, Rows, Scan};

/// The schema's version (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS groups (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    name TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    retention_days INTEGER,
    class TEXT NOT NULL,
    kms_key_id TEXT,
    tags TEXT NOT NULL,
    UNIQUE (account, name)
);
CREATE TABLE IF NOT EXISTS streams (
    id INTEGER PRIMARY KEY,
    group_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    first_event_ms INTEGER,
    last_event_ms INTEGER,
    last_ingestion_ms INTEGER,
    sequence INTEGER NOT NULL,
    stored_bytes INTEGER NOT NULL,
    UNIQUE (group_id, name)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    group_id INTEGER NOT NULL,
    stream_id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    ingestion_ms INTEGER NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_group ON events(group_id, ts, id);
CREATE INDEX IF NOT EXISTS events_by_stream ON events(stream_id, ts, id);
";

/// The SQLite store.
#[derive(Debug)]
pub struct SqliteStore {
    writer: GroupCommit,
    reader: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, LogsError> {
        let connection = open_versioned(path, "logs", SCHEMA, SCHEMA_VERSION)
            .map_err(|error| error.into_error(LogsError::Internal))?;
        let reader = Connection::open(path)?;
        reader.busy_timeout(std::time::Duration::from_secs(5))?;
        let writer = GroupCommit::start(connection, "logs-store").map_err(|error| {
            tracing::error!(%error, "cannot start the log store's writer");
            LogsError::internal()
        })?;
        Ok(SqliteStore {
            writer,
            reader: Mutex::new(reader),
        })
    }

    fn read(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while reading leaves nothing half-done: the lock is still safe to use.
        self.reader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write<R: Send + 'static>(
        &self,
        job: impl FnOnce(&Connection) -> Result<R, LogsError> + Send + 'static,
    ) -> Result<R, LogsError> {
        self.writer.run(job).map_err(|error| match error {
            RunError::Job(error) => error,
            RunError::Commit(cause) => {
                tracing::error!(%cause, "log store commit failed");
                LogsError::internal()
            }
            RunError::Stopped => {
                tracing::error!("log store writer stopped");
                LogsError::internal()
            }
        })
    }
}

const GROUP_COLUMNS: &str = "g.account, g.name, g.created_ms, g.retention_days, g.class, \
    g.kms_key_id, g.tags, (SELECT COALESCE(SUM(s.stored_bytes), 0) FROM streams s WHERE s.group_id = g.id)";

fn group_row(row: &Row<'_>) -> rusqlite::Result<LogGroup> {
    Ok(LogGroup {
        account: row.get(0)?,
        name: row.get(1)?,
        created_ms: row.get(2)?,
        retention_days: row.get(3)?,
        class: row.get(4)?,
        kms_key_id: row.get(5)?,
        tags: json(&row.get::<_, String>(6)?)?,
        stored_bytes: row.get(7)?,
    })
}

fn stream_row(row: &Row<'_>) -> rusqlite::Result<LogStream> {
    Ok(LogStream {
        name: row.get(0)?,
        created_ms: row.get(1)?,
        first_event_ms: row.get(2)?,
        last_event_ms: row.get(3)?,
        last_ingestion_ms: row.get(4)?,
        sequence: row.get(5)?,
    })
}

fn event_row(row: &Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        id: row.get(0)?,
        stream: row.get(1)?,
        timestamp: row.get(2)?,
        ingestion_ms: row.get(3)?,
        message: row.get(4)?,
    })
}

/// Takes rows while `budget` lasts. Rows are stepped one at a time, so what lies past the
/// budget is never loaded (but for the one row that shows there is more).
fn take(
    rows: impl Iterator<Item = rusqlite::Result<Event>>,
    budget: Budget,
) -> rusqlite::Result<Rows> {
    let mut events = Vec::new();
    let mut bytes = 0usize;
    for row in rows {
        let event = row?;
        let size = event_size(&event.message);
        if events.len() >= budget.events
            || (!events.is_empty() && bytes.saturating_add(size) > budget.bytes)
        {
            return Ok(Rows { events, more: true });
        }
        bytes = bytes.saturating_add(size);
        events.push(event);
    }
    Ok(Rows {
        events,
        more: false,
    })
}

/// The SQL `LIMIT` for a budget: one row more than it takes, to tell whether there is more.
fn sql_limit(budget: Budget) -> i64 {
    i64::try_from(budget.events.saturating_add(1)).unwrap_or(i64::MAX)
}

fn group_id(connection: &Connection, account: &str, name: &str) -> rusqlite::Result<Option<i64>> {
    connection
        .prepare_cached("SELECT id FROM groups WHERE account = ?1 AND name = ?2")?
        .query_row(params![account, name], |r| r.get(0))
        .optional()
}

fn stream_id(connection: &Connection, group: i64, name: &str) -> rusqlite::Result<Option<i64>> {
    connection
        .prepare_cached("SELECT id FROM streams WHERE group_id = ?1 AND name = ?2")?
        .query_row(params![group, name], |r| r.get(0))
        .optional()
}

fn insert_stream(
    connection: &Connection,
    group: i64,
    name: &str,
    created_ms: i64,
) -> rusqlite::Result<i64> {
    connection
        .prepare_cached(
            "INSERT INTO streams (group_id, name, created_ms, sequence, stored_bytes)
             VALUES (?1, ?2, ?3, 0, 0)",
        )?
        .execute(params![group, name, created_ms])?;
    Ok(connection.last_insert_rowid())
}

fn insert_group(connection: &Connection, group: &LogGroup) -> Result<i64, LogsError> {
    connection
        .prepare_cached(
            "INSERT INTO groups (account, name, created_ms, retention_days, class, kms_key_id, tags)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            group.account,
            group.name,
            group.created_ms,
            group.retention_days,
            group.class,
            group.kms_key_id,
            serde_json::to_string(&group.tags)?,
        ])?;
    Ok(connection.last_insert_rowid())
}

fn append_one(
    connection: &Connection,
    append: &Append,
) -> Result<Result<i64, LogsError>, LogsError> {
    let group = match group_id(connection, &append.account, &append.group)? {
        Some(id) => id,
        None if append.create => insert_group(
            connection,
            &LogGroup {
                account: append.account.clone(),
                name: append.group.clone(),
                created_ms: append.ingestion_ms,
                retention_days: None,
                class: "STANDARD".into(),
                kms_key_id: None,
                tags: BTreeMap::new(),
                stored_bytes: 0,
            },
        )?,
        None => return Ok(Err(LogsError::group_not_found())),
    };
    let stream = match stream_id(connection, group, &append.stream)? {
        Some(id) => id,
        None if append.create => {
            insert_stream(connection, group, &append.stream, append.ingestion_ms)?
        }
        None => return Ok(Err(LogsError::stream_not_found())),
    };
    let mut insert = connection.prepare_cached(
        "INSERT INTO events (group_id, stream_id, ts, ingestion_ms, message) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut bytes: i64 = 0;
    for event in &append.events {
        insert.execute(params![
            group,
            stream,
            event.timestamp,
            append.ingestion_ms,
            event.message
        ])?;
        bytes += i64::try_from(event.message.len()).unwrap_or(i64::MAX);
    }
    let first = append.events.iter().map(|e| e.timestamp).min();
    let last = append.events.iter().map(|e| e.timestamp).max();
    let sequence: i64 = connection
        .prepare_cached(
            "UPDATE streams SET
                first_event_ms = CASE WHEN ?2 IS NULL THEN first_event_ms
                    ELSE MIN(COALESCE(first_event_ms, ?2), ?2) END,
                last_event_ms = CASE WHEN ?3 IS NULL THEN last_event_ms
                    ELSE MAX(COALESCE(last_event_ms, ?3), ?3) END,
                last_ingestion_ms = ?4,
                sequence = sequence + 1,
                stored_bytes = stored_bytes + ?5
             WHERE id = ?1 RETURNING sequence",
        )?
        .query_row(
            params![stream, first, last, append.ingestion_ms, bytes],
            |r| r.get(0),
        )?;
    Ok(Ok(sequence))
}

impl LogsStore for SqliteStore {
    fn create_group(&self, group: &LogGroup) -> Result<(), LogsError> {
        let group = group.clone();
        self.write(move |c| {
            if group_id(c, &group.account, &group.name)?.is_some() {
                return Err(LogsError::group_exists());
            }
            insert_group(c, &group).map(|_| ())
        })
    }

    fn delete_group(&self, account: &str, name: &str) -> Result<bool, LogsError> {
        let (account, name) = (account.to_owned(), name.to_owned());
        self.write(move |c| {
            let Some(id) = group_id(c, &account, &name)? else {
                return Ok(false);
            };
            c.execute("DELETE FROM events WHERE group_id = ?1", [id])?;
            c.execute("DELETE FROM streams WHERE group_id = ?1", [id])?;
            c.execute("DELETE FROM groups WHERE id = ?1", [id])?;
            Ok(true)
        })
    }

    fn group(&self, account: &str, name: &str) -> Result<Option<LogGroup>, LogsError> {
        let sql =
            format!("SELECT {GROUP_COLUMNS} FROM groups g WHERE g.account = ?1 AND g.name = ?2");
        Ok(self
            .read()
            .prepare_cached(&sql)?
            .query_row(params![account, name], group_row)
            .optional()?)
    }

    fn groups(&self, account: &str, prefix: Option<&str>) -> Result<Vec<LogGroup>, LogsError> {
        let sql = format!(
            "SELECT {GROUP_COLUMNS} FROM groups g WHERE g.account = ?1
             AND substr(g.name, 1, length(?2)) = ?2 ORDER BY g.name"
        );
        let connection = self.read();
        let mut statement = connection.prepare_cached(&sql)?;
        let rows = statement.query_map(params![account, prefix.unwrap_or("")], group_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn set_retention(
        &self,
        account: &str,
        name: &str,
        days: Option<u32>,
    ) -> Result<bool, LogsError> {
        let (account, name) = (account.to_owned(), name.to_owned());
        self.write(move |c| {
            let changed = c.execute(
                "UPDATE groups SET retention_days = ?3 WHERE account = ?1 AND name = ?2",
                params![account, name, days],
            )?;
            Ok(changed > 0)
        })
    }

    fn set_tags(
        &self,
        account: &str,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<bool, LogsError> {
        let (account, name) = (account.to_owned(), name.to_owned());
        let tags = serde_json::to_string(tags)?;
        self.write(move |c| {
            let changed = c.execute(
                "UPDATE groups SET tags = ?3 WHERE account = ?1 AND name = ?2",
                params![account, name, tags],
            )?;
            Ok(changed > 0)
        })
    }

    fn create_stream(
        &self,
        account: &str,
        group: &str,
        name: &str,
        created_ms: i64,
    ) -> Result<(), LogsError> {
        let (account, group, name) = (account.to_owned(), group.to_owned(), name.to_owned());
        self.write(move |c| {
            let group = group_id(c, &account, &group)?.ok_or_else(LogsError::group_not_found)?;
            if stream_id(c, group, &name)?.is_some() {
                return Err(LogsError::stream_exists());
            }
            insert_stream(c, group, &name, created_ms)?;
            Ok(())
        })
    }

    fn delete_stream(&self, account: &str, group: &str, name: &str) -> Result<(), LogsError> {
        let (account, group, name) = (account.to_owned(), group.to_owned(), name.to_owned());
        self.write(move |c| {
            let group = group_id(c, &account, &group)?.ok_or_else(LogsError::group_not_found)?;
            let stream = stream_id(c, group, &name)?.ok_or_else(LogsError::stream_not_found)?;
            c.execute("DELETE FROM events WHERE stream_id = ?1", [stream])?;
            c.execute("DELETE FROM streams WHERE id = ?1", [stream])?;
            Ok(())
        })
    }

    fn streams(&self, account: &str, group: &str) -> Result<Option<Vec<LogStream>>, LogsError> {
        let connection = self.read();
        let Some(group) = group_id(&connection, account, group)? else {
            return Ok(None);
        };
        let mut statement = connection.prepare_cached(
            "SELECT name, created_ms, first_event_ms, last_event_ms, last_ingestion_ms, sequence
             FROM streams WHERE group_id = ?1",
        )?;
        let rows = statement.query_map([group], stream_row)?;
        Ok(Some(rows.collect::<rusqlite::Result<Vec<_>>>()?))
    }

    fn append(&self, appends: Vec<Append>) -> Result<Vec<Result<i64, LogsError>>, LogsError> {
        self.write(move |c| appends.iter().map(|a| append_one(c, a)).collect())
    }

    fn read_stream(
        &self,
        account: &str,
        group: &str,
        stream: &str,
        range: (i64, i64),
        cursor: Option<Position>,
        backward: bool,
        budget: Budget,
    ) -> Result<Option<Rows>, LogsError> {
        let connection = self.read();
        let Some(group) = group_id(&connection, account, group)? else {
            return Ok(None);
        };
        let Some(stream_id) = stream_id(&connection, group, stream)? else {
            return Ok(None);
        };
        // Without a cursor, a read starts at the matching end of the range.
        let cursor = cursor.unwrap_or(if backward {
            Position {
                timestamp: i64::MAX,
                id: i64::MAX,
            }
        } else {
            Position {
                timestamp: i64::MIN,
                id: i64::MIN,
            }
        });
        let sql = if backward {
            "SELECT e.id, ?6, e.ts, e.ingestion_ms, e.message FROM events e
             WHERE e.stream_id = ?1 AND e.ts >= ?2 AND e.ts <= ?3 AND (e.ts, e.id) < (?4, ?5)
             ORDER BY e.ts DESC, e.id DESC LIMIT ?7"
        } else {
            "SELECT e.id, ?6, e.ts, e.ingestion_ms, e.message FROM events e
             WHERE e.stream_id = ?1 AND e.ts >= ?2 AND e.ts <= ?3 AND (e.ts, e.id) > (?4, ?5)
             ORDER BY e.ts, e.id LIMIT ?7"
        };
        let mut statement = connection.prepare_cached(sql)?;
        let limit = sql_limit(budget);
        let rows = statement.query_map(
            params![
                stream_id,
                range.0,
                range.1,
                cursor.timestamp,
                cursor.id,
                stream,
                limit
            ],
            event_row,
        )?;
        Ok(Some(take(rows, budget)?))
    }

    fn read_group(
        &self,
        account: &str,
        group: &str,
        scan: &Scan<'_>,
        after: Option<Position>,
        budget: Budget,
    ) -> Result<Option<Rows>, LogsError> {
        let connection = self.read();
        let Some(group) = group_id(&connection, account, group)? else {
            return Ok(None);
        };
        let after = after.unwrap_or(Position {
            timestamp: i64::MIN,
            id: i64::MIN,
        });
        let mut sql = String::from(
            "SELECT e.id, s.name, e.ts, e.ingestion_ms, e.message FROM events e
             JOIN streams s ON s.id = e.stream_id
             WHERE e.group_id = ?1 AND e.ts >= ?2 AND e.ts <= ?3 AND (e.ts, e.id) > (?4, ?5)
             AND substr(s.name, 1, length(?6)) = ?6",
        );
        let limit = sql_limit(budget);
        let mut values: Vec<rusqlite::types::Value> = vec![
            group.into(),
            scan.from_ms.into(),
            scan.to_ms.into(),
            after.timestamp.into(),
            after.id.into(),
            scan.prefix.unwrap_or("").to_owned().into(),
            limit.into(),
        ];
        if !scan.streams.is_empty() {
            let placeholders: Vec<String> = (0..scan.streams.len())
                .map(|i| format!("?{}", i + 8))
                .collect();
            sql.push_str(&format!(" AND s.name IN ({})", placeholders.join(", ")));
            values.extend(scan.streams.iter().map(|s| s.clone().into()));
        }
        sql.push_str(" ORDER BY e.ts, e.id LIMIT ?7");
        let mut statement = connection.prepare_cached(&sql)?;
        let rows = statement.query_map(rusqlite::params_from_iter(values), event_row)?;
        Ok(Some(take(rows, budget)?))
    }

    fn expire(&self, account: &str, group: &str, before_ms: i64) -> Result<u64, LogsError> {
        let (account, group) = (account.to_owned(), group.to_owned());
        self.write(move |c| {
            let Some(group) = group_id(c, &account, &group)? else {
                return Ok(0);
            };
            // Stored bytes shrink by what goes.
            c.execute(
                "UPDATE streams SET stored_bytes = MAX(0, stored_bytes - (
                    SELECT COALESCE(SUM(length(CAST(e.message AS BLOB))), 0) FROM events e
                    WHERE e.stream_id = streams.id AND e.ts < ?2))
                 WHERE group_id = ?1",
                params![group, before_ms],
            )?;
            let deleted = c.execute(
                "DELETE FROM events WHERE group_id = ?1 AND ts < ?2",
                params![group, before_ms],
            )?;
            Ok(deleted as u64)
        })
    }

    fn retained_groups(&self) -> Result<Vec<(String, String, u32)>, LogsError> {
        let connection = self.read();
        let mut statement = connection.prepare_cached(
            "SELECT account, name, retention_days FROM groups WHERE retention_days IS NOT NULL",
        )?;
        let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
