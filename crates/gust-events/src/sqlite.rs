//! The embedded store: one SQLite database (WAL, `synchronous=FULL`). Scalar fields are
//! columns; tags, targets and a bus's settings are JSON. One connection behind a mutex:
//! writes are API calls, accepted events and delivery outcomes, each one short transaction.

pub(crate) use gust_store::sqlite::{at, json, ms, query_all};
use std::path::Path;
use std::sync::Mutex;

use gust_store::sqlite::open_versioned;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::EventsError;
use crate::model::{EventBus, Rule, RuleState};
use crate::store::{Change, Delivery, EventsStore, NewDelivery, Snapshot};

/// The schema's version (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS buses (
    account TEXT NOT NULL,
    name TEXT NOT NULL,
    arn TEXT NOT NULL,
    description TEXT,
    settings TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL,
    tags TEXT NOT NULL,
    PRIMARY KEY (account, name)
);
CREATE TABLE IF NOT EXISTS rules (
    account TEXT NOT NULL,
    bus TEXT NOT NULL,
    name TEXT NOT NULL,
    arn TEXT NOT NULL,
    event_pattern TEXT,
    schedule_expression TEXT,
    state TEXT NOT NULL,
    description TEXT,
    role_arn TEXT,
    tags TEXT NOT NULL,
    targets TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    schedule_from_ms INTEGER,
    last_fired_ms INTEGER,
    PRIMARY KEY (account, bus, name)
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    rule_arn TEXT NOT NULL,
    target_id TEXT NOT NULL,
    target_arn TEXT NOT NULL,
    payload TEXT NOT NULL,
    event TEXT NOT NULL,
    message_group_id TEXT,
    dead_letter_arn TEXT,
    max_retries INTEGER NOT NULL,
    max_age_seconds INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    next_ms INTEGER NOT NULL,
    failure TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(next_ms, id);
";

/// The SQLite store.
#[derive(Debug)]
pub struct SqliteStore {
    connection: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, EventsError> {
        let connection = open_versioned(path, "events", SCHEMA, SCHEMA_VERSION)
            .map_err(|error| error.into_error(EventsError::Internal))?;
        Ok(SqliteStore {
            connection: Mutex::new(connection),
        })
    }

    fn connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Milliseconds since the epoch.
/// The instant of milliseconds since the epoch.
fn bus_row(row: &Row<'_>) -> rusqlite::Result<EventBus> {
    Ok(EventBus {
        account: row.get(0)?,
        name: row.get(1)?,
        arn: row.get(2)?,
        description: row.get(3)?,
        settings: json(&row.get::<_, String>(4)?)?,
        created: at(row.get(5)?),
        modified: at(row.get(6)?),
        tags: json(&row.get::<_, String>(7)?)?,
    })
}

fn rule_row(row: &Row<'_>) -> rusqlite::Result<Rule> {
    Ok(Rule {
        account: row.get(0)?,
        bus: row.get(1)?,
        name: row.get(2)?,
        arn: row.get(3)?,
        event_pattern: row.get(4)?,
        schedule_expression: row.get(5)?,
        state: RuleState::parse(&row.get::<_, String>(6)?).unwrap_or(RuleState::Disabled),
        description: row.get(7)?,
        role_arn: row.get(8)?,
        tags: json(&row.get::<_, String>(9)?)?,
        targets: json(&row.get::<_, String>(10)?)?,
        created: at(row.get(11)?),
        schedule_from: row.get::<_, Option<i64>>(12)?.map(at),
        last_fired: row.get::<_, Option<i64>>(13)?.map(at),
    })
}

fn delivery_row(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    let failure: Option<String> = row.get(14)?;
    Ok(Delivery {
        id: row.get(0)?,
        delivery: NewDelivery {
            account: row.get(1)?,
            rule_arn: row.get(2)?,
            target_id: row.get(3)?,
            target_arn: row.get(4)?,
            payload: row.get(5)?,
            event: row.get(6)?,
            message_group_id: row.get(7)?,
            dead_letter_arn: row.get(8)?,
            max_retries: row.get(9)?,
            max_age_seconds: row.get(10)?,
            created_ms: row.get(11)?,
        },
        attempts: row.get(12)?,
        next_ms: row.get(13)?,
        failure: failure.as_deref().map(json).transpose()?,
    })
}

fn apply(tx: &rusqlite::Transaction<'_>, change: &Change) -> Result<(), EventsError> {
    match change {
        Change::PutBus(b) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO buses (account, name, arn, description, settings, \
                 created_ms, modified_ms, tags) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                b.account,
                b.name,
                b.arn,
                b.description,
                serde_json::to_string(&b.settings)?,
                ms(b.created),
                ms(b.modified),
                serde_json::to_string(&b.tags)?,
            ])?;
        }
        Change::DeleteBus { account, name } => {
            tx.prepare_cached("DELETE FROM rules WHERE account = ?1 AND bus = ?2")?
                .execute(params![account, name])?;
            tx.prepare_cached("DELETE FROM buses WHERE account = ?1 AND name = ?2")?
                .execute(params![account, name])?;
        }
        Change::PutRule(r) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO rules (account, bus, name, arn, event_pattern, \
                 schedule_expression, state, description, role_arn, tags, targets, created_ms, \
                 schedule_from_ms, last_fired_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?
            .execute(params![
                r.account,
                r.bus,
                r.name,
                r.arn,
                r.event_pattern,
                r.schedule_expression,
                r.state.as_str(),
                r.description,
                r.role_arn,
                serde_json::to_string(&r.tags)?,
                serde_json::to_string(&r.targets)?,
                ms(r.created),
                r.schedule_from.map(ms),
                r.last_fired.map(ms),
            ])?;
        }
        Change::DeleteRule { account, bus, name } => {
            tx.prepare_cached("DELETE FROM rules WHERE account = ?1 AND bus = ?2 AND name = ?3")?
                .execute(params![account, bus, name])?;
        }
        Change::AddDelivery(d) => {
            tx.prepare_cached(
                "INSERT INTO deliveries (account, rule_arn, target_id, target_arn, payload, \
                 event, message_group_id, dead_letter_arn, max_retries, max_age_seconds, \
                 created_ms, attempts, next_ms, failure) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, ?11, NULL)",
            )?
            .execute(params![
                d.account,
                d.rule_arn,
                d.target_id,
                d.target_arn,
                d.payload,
                d.event,
                d.message_group_id,
                d.dead_letter_arn,
                d.max_retries,
                d.max_age_seconds,
                d.created_ms,
            ])?;
        }
        Change::FinishDelivery(id) => {
            tx.prepare_cached("DELETE FROM deliveries WHERE id = ?1")?
                .execute(params![id])?;
        }
        Change::RetryDelivery {
            id,
            attempts,
            next_ms,
            failure,
        } => {
            let failure = failure.as_ref().map(serde_json::to_string).transpose()?;
            tx.prepare_cached(
                "UPDATE deliveries SET attempts = ?2, next_ms = ?3, \
                 failure = COALESCE(?4, failure) WHERE id = ?1",
            )?
            .execute(params![id, attempts, next_ms, failure])?;
        }
    }
    Ok(())
}

impl EventsStore for SqliteStore {
    fn load(&self) -> Result<Snapshot, EventsError> {
        let connection = self.connection();
        Ok(Snapshot {
            buses: query_all(
                &connection,
                "SELECT account, name, arn, description, settings, created_ms, modified_ms, tags \
                 FROM buses",
                bus_row,
            )?,
            rules: query_all(
                &connection,
                "SELECT account, bus, name, arn, event_pattern, schedule_expression, state, \
                 description, role_arn, tags, targets, created_ms, schedule_from_ms, \
                 last_fired_ms FROM rules",
                rule_row,
            )?,
        })
    }

    fn commit(&self, changes: &[Change]) -> Result<(), EventsError> {
        let mut connection = self.connection();
        let tx = connection.transaction()?;
        for change in changes {
            apply(&tx, change)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn due(&self, now_ms: i64, limit: usize) -> Result<(Vec<Delivery>, Option<i64>), EventsError> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(
            "SELECT id, account, rule_arn, target_id, target_arn, payload, event, \
             message_group_id, dead_letter_arn, max_retries, max_age_seconds, created_ms, \
             attempts, next_ms, failure FROM deliveries WHERE next_ms <= ?1 \
             ORDER BY next_ms, id LIMIT ?2",
        )?;
        let due = statement
            .query_map(params![now_ms, limit as i64], delivery_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let next: Option<i64> = connection
            .prepare_cached("SELECT MIN(next_ms) FROM deliveries WHERE next_ms > ?1")?
            .query_row(params![now_ms], |r| r.get(0))
            .optional()?
            .flatten();
        Ok((due, next))
    }
}
