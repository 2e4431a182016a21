//! The embedded store: one SQLite database (WAL, `synchronous=FULL`). Writes are API calls,
//! firings and delivery outcomes, so one connection behind a mutex serves. Scalar fields are
//! columns; nested ones (tags, a target, a flexible window, a dead-letter message) are JSON.

use gust_store::sqlite::{at, json, ms, query_all};
use std::path::Path;
use std::sync::Mutex;

use gust_store::sqlite::open_versioned;
use rusqlite::{params, Connection, Row};

use crate::delivery::PendingDelivery;
use crate::error::SchedulerError;
use crate::model::{ActionAfterCompletion, GroupState, Schedule, ScheduleGroup, ScheduleState};
use crate::store::{Change, SchedulerStore, Snapshot};

/// The schema's version (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS schedule_groups (
    account TEXT NOT NULL,
    name TEXT NOT NULL,
    arn TEXT NOT NULL,
    created_ms INTEGER,
    modified_ms INTEGER,
    tags TEXT NOT NULL,
    client_token TEXT,
    PRIMARY KEY (account, name)
);
CREATE TABLE IF NOT EXISTS schedules (
    account TEXT NOT NULL,
    group_name TEXT NOT NULL,
    name TEXT NOT NULL,
    arn TEXT NOT NULL,
    expression TEXT NOT NULL,
    timezone TEXT,
    start_ms INTEGER,
    end_ms INTEGER,
    description TEXT,
    state TEXT NOT NULL,
    kms_key_arn TEXT,
    action_after_completion TEXT NOT NULL,
    flexible_time_window TEXT NOT NULL,
    target TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL,
    client_token TEXT,
    evaluated_ms INTEGER NOT NULL,
    last_fired_ms INTEGER,
    PRIMARY KEY (account, group_name, name)
);
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    schedule_arn TEXT NOT NULL,
    group_arn TEXT NOT NULL,
    target TEXT NOT NULL,
    scheduled_ms INTEGER NOT NULL,
    due_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    dead_letter TEXT
);
";

/// The SQLite store.
#[derive(Debug)]
pub struct SqliteStore {
    connection: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, SchedulerError> {
        let connection = open_versioned(path, "scheduler", SCHEMA, SCHEMA_VERSION)
            .map_err(|error| error.into_error(SchedulerError::InternalServer))?;
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

fn group_row(row: &Row<'_>) -> rusqlite::Result<ScheduleGroup> {
    Ok(ScheduleGroup {
        account: row.get(0)?,
        name: row.get(1)?,
        arn: row.get(2)?,
        state: GroupState::Active,
        created: row.get::<_, Option<i64>>(3)?.map(at),
        modified: row.get::<_, Option<i64>>(4)?.map(at),
        tags: json(&row.get::<_, String>(5)?)?,
        client_token: row.get(6)?,
    })
}

fn schedule_row(row: &Row<'_>) -> rusqlite::Result<Schedule> {
    Ok(Schedule {
        account: row.get(0)?,
        group: row.get(1)?,
        name: row.get(2)?,
        arn: row.get(3)?,
        expression: row.get(4)?,
        timezone: row.get(5)?,
        start: row.get::<_, Option<i64>>(6)?.map(at),
        end: row.get::<_, Option<i64>>(7)?.map(at),
        description: row.get(8)?,
        state: ScheduleState::parse(&row.get::<_, String>(9)?).unwrap_or_default(),
        kms_key_arn: row.get(10)?,
        action_after_completion: ActionAfterCompletion::parse(&row.get::<_, String>(11)?)
            .unwrap_or_default(),
        flexible_time_window: json(&row.get::<_, String>(12)?)?,
        target: json(&row.get::<_, String>(13)?)?,
        created: at(row.get(14)?),
        modified: at(row.get(15)?),
        client_token: row.get(16)?,
        evaluated_until: at(row.get(17)?),
        last_fired: row.get::<_, Option<i64>>(18)?.map(at),
    })
}

fn delivery_row(row: &Row<'_>) -> rusqlite::Result<PendingDelivery> {
    Ok(PendingDelivery {
        id: row.get(0)?,
        account: row.get(1)?,
        schedule_arn: row.get(2)?,
        group_arn: row.get(3)?,
        target: json(&row.get::<_, String>(4)?)?,
        scheduled: at(row.get(5)?),
        due: at(row.get(6)?),
        attempts: row.get(7)?,
        expires: at(row.get(8)?),
        dead_letter: match row.get::<_, Option<String>>(9)? {
            Some(text) => Some(json(&text)?),
            None => None,
        },
    })
}

fn apply(tx: &rusqlite::Transaction<'_>, change: &Change) -> Result<(), SchedulerError> {
    match change {
        Change::PutGroup(g) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO schedule_groups (account, name, arn, created_ms, \
                 modified_ms, tags, client_token) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                g.account,
                g.name,
                g.arn,
                g.created.map(ms),
                g.modified.map(ms),
                serde_json::to_string(&g.tags)?,
                g.client_token,
            ])?;
        }
        Change::DeleteGroup { account, name } => {
            tx.prepare_cached("DELETE FROM schedule_groups WHERE account = ?1 AND name = ?2")?
                .execute(params![account, name])?;
            tx.prepare_cached("DELETE FROM schedules WHERE account = ?1 AND group_name = ?2")?
                .execute(params![account, name])?;
        }
        Change::PutSchedule(s) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO schedules (account, group_name, name, arn, expression, \
                 timezone, start_ms, end_ms, description, state, kms_key_arn, \
                 action_after_completion, flexible_time_window, target, created_ms, modified_ms, \
                 client_token, evaluated_ms, last_fired_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, \
                 ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
            )?
            .execute(params![
                s.account,
                s.group,
                s.name,
                s.arn,
                s.expression,
                s.timezone,
                s.start.map(ms),
                s.end.map(ms),
                s.description,
                s.state.as_str(),
                s.kms_key_arn,
                s.action_after_completion.as_str(),
                serde_json::to_string(&s.flexible_time_window)?,
                serde_json::to_string(&s.target)?,
                ms(s.created),
                ms(s.modified),
                s.client_token,
                ms(s.evaluated_until),
                s.last_fired.map(ms),
            ])?;
        }
        Change::DeleteSchedule {
            account,
            group,
            name,
        } => {
            tx.prepare_cached(
                "DELETE FROM schedules WHERE account = ?1 AND group_name = ?2 AND name = ?3",
            )?
            .execute(params![account, group, name])?;
        }
        Change::PutDelivery(d) => {
            let dead_letter = match &d.dead_letter {
                Some(letter) => Some(serde_json::to_string(letter)?),
                None => None,
            };
            tx.prepare_cached(
                "INSERT OR REPLACE INTO deliveries (id, account, schedule_arn, group_arn, target, \
                 scheduled_ms, due_ms, attempts, expires_ms, dead_letter) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                d.id,
                d.account,
                d.schedule_arn,
                d.group_arn,
                serde_json::to_string(&d.target)?,
                ms(d.scheduled),
                ms(d.due),
                d.attempts,
                ms(d.expires),
                dead_letter,
            ])?;
        }
        Change::DeleteDelivery(id) => {
            tx.prepare_cached("DELETE FROM deliveries WHERE id = ?1")?
                .execute(params![id])?;
        }
    }
    Ok(())
}

impl SchedulerStore for SqliteStore {
    fn load(&self) -> Result<Snapshot, SchedulerError> {
        let connection = self.connection();
        Ok(Snapshot {
            groups: query_all(
                &connection,
                "SELECT account, name, arn, created_ms, modified_ms, tags, client_token \
                 FROM schedule_groups",
                group_row,
            )?,
            schedules: query_all(
                &connection,
                "SELECT account, group_name, name, arn, expression, timezone, start_ms, end_ms, \
                 description, state, kms_key_arn, action_after_completion, flexible_time_window, \
                 target, created_ms, modified_ms, client_token, evaluated_ms, last_fired_ms \
                 FROM schedules",
                schedule_row,
            )?,
            deliveries: query_all(
                &connection,
                "SELECT id, account, schedule_arn, group_arn, target, scheduled_ms, due_ms, \
                 attempts, expires_ms, dead_letter FROM deliveries ORDER BY scheduled_ms",
                delivery_row,
            )?,
        })
    }

    fn commit(&self, changes: &[Change]) -> Result<(), SchedulerError> {
        let mut connection = self.connection();
        let tx = connection.transaction()?;
        for change in changes {
            apply(&tx, change)?;
        }
        tx.commit()?;
        Ok(())
    }
}
