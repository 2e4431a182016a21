//! The embedded store: one SQLite database (WAL, `synchronous=FULL`). Writes are rare (API
//! calls, scheduled firings, scaling decisions), so one connection behind a mutex serves.
//! Scalar fields are columns; nested ones (suspended state, tags, a policy's configuration
//! and alarms) are JSON.

use gust_store::sqlite::{at, json, ms, query_all};
use std::path::Path;
use std::sync::Mutex;

use gust_store::sqlite::open_versioned;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::AutoscalingError;
use crate::model::{
    ActivityStatus, Resource, ScalableTarget, ScalingActivity, ScalingPolicy, ScheduledAction,
};
use crate::store::{AutoscalingStore, Change, Snapshot, ACTIVITY_HISTORY};

/// The schema's version (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS targets (
    account TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    min_capacity INTEGER NOT NULL,
    max_capacity INTEGER NOT NULL,
    suspended TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    arn TEXT NOT NULL,
    tags TEXT NOT NULL,
    PRIMARY KEY (account, resource_id)
);
CREATE TABLE IF NOT EXISTS scheduled_actions (
    account TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    name TEXT NOT NULL,
    arn TEXT NOT NULL,
    schedule TEXT NOT NULL,
    timezone TEXT,
    start_ms INTEGER,
    end_ms INTEGER,
    min_capacity INTEGER,
    max_capacity INTEGER,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    evaluated_ms INTEGER NOT NULL,
    last_fired_ms INTEGER,
    PRIMARY KEY (account, resource_id, name)
);
CREATE TABLE IF NOT EXISTS policies (
    account TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    name TEXT NOT NULL,
    arn TEXT NOT NULL,
    policy_type TEXT NOT NULL,
    configuration TEXT NOT NULL,
    alarms TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    last_scale_out_ms INTEGER,
    last_scale_in_ms INTEGER,
    PRIMARY KEY (account, resource_id, name)
);
CREATE TABLE IF NOT EXISTS activities (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    id TEXT NOT NULL,
    description TEXT NOT NULL,
    cause TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER,
    status TEXT NOT NULL,
    status_message TEXT
);
CREATE INDEX IF NOT EXISTS activities_target ON activities(account, resource_id, seq);
";

/// The SQLite store.
#[derive(Debug)]
pub struct SqliteStore {
    connection: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, AutoscalingError> {
        let connection = open_versioned(path, "autoscaling", SCHEMA, SCHEMA_VERSION)
            .map_err(|error| error.into_error(AutoscalingError::InternalService))?;
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

fn resource(id: &str) -> rusqlite::Result<Resource> {
    Resource::parse(id).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn capacity(value: Option<i64>) -> Option<u32> {
    value.and_then(|v| u32::try_from(v).ok())
}

fn target_row(row: &Row<'_>) -> rusqlite::Result<ScalableTarget> {
    Ok(ScalableTarget {
        account: row.get(0)?,
        resource: resource(&row.get::<_, String>(1)?)?,
        min_capacity: capacity(row.get(2)?).unwrap_or(0),
        max_capacity: capacity(row.get(3)?).unwrap_or(0),
        suspended: json(&row.get::<_, String>(4)?)?,
        created: at(row.get(5)?),
        arn: row.get(6)?,
        tags: json(&row.get::<_, String>(7)?)?,
    })
}

fn action_row(row: &Row<'_>) -> rusqlite::Result<ScheduledAction> {
    Ok(ScheduledAction {
        account: row.get(0)?,
        resource: resource(&row.get::<_, String>(1)?)?,
        name: row.get(2)?,
        arn: row.get(3)?,
        schedule: row.get(4)?,
        timezone: row.get(5)?,
        start: row.get::<_, Option<i64>>(6)?.map(at),
        end: row.get::<_, Option<i64>>(7)?.map(at),
        min_capacity: capacity(row.get(8)?),
        max_capacity: capacity(row.get(9)?),
        created: at(row.get(10)?),
        updated: at(row.get(11)?),
        evaluated_until: at(row.get(12)?),
        last_fired: row.get::<_, Option<i64>>(13)?.map(at),
    })
}

fn policy_row(row: &Row<'_>) -> rusqlite::Result<ScalingPolicy> {
    Ok(ScalingPolicy {
        account: row.get(0)?,
        resource: resource(&row.get::<_, String>(1)?)?,
        name: row.get(2)?,
        arn: row.get(3)?,
        policy_type: row.get(4)?,
        tracking: json(&row.get::<_, String>(5)?)?,
        alarms: json(&row.get::<_, String>(6)?)?,
        created: at(row.get(7)?),
        last_scale_out: row.get::<_, Option<i64>>(8)?.map(at),
        last_scale_in: row.get::<_, Option<i64>>(9)?.map(at),
    })
}

fn activity_row(row: &Row<'_>) -> rusqlite::Result<ScalingActivity> {
    Ok(ScalingActivity {
        account: row.get(0)?,
        resource: resource(&row.get::<_, String>(1)?)?,
        id: row.get(2)?,
        description: row.get(3)?,
        cause: row.get(4)?,
        start: at(row.get(5)?),
        end: row.get::<_, Option<i64>>(6)?.map(at),
        status: ActivityStatus::parse(&row.get::<_, String>(7)?).unwrap_or(ActivityStatus::Failed),
        status_message: row.get(8)?,
    })
}

fn apply(tx: &rusqlite::Transaction<'_>, change: &Change) -> Result<(), AutoscalingError> {
    match change {
        Change::PutTarget(t) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO targets (account, resource_id, min_capacity, max_capacity, \
                 suspended, created_ms, arn, tags) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                t.account,
                t.resource.id(),
                t.min_capacity,
                t.max_capacity,
                serde_json::to_string(&t.suspended)?,
                ms(t.created),
                t.arn,
                serde_json::to_string(&t.tags)?,
            ])?;
        }
        Change::DeleteTarget {
            account,
            resource_id,
        } => {
            for table in ["targets", "scheduled_actions", "policies"] {
                tx.prepare_cached(&format!(
                    "DELETE FROM {table} WHERE account = ?1 AND resource_id = ?2"
                ))?
                .execute(params![account, resource_id])?;
            }
        }
        Change::PutAction(a) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO scheduled_actions (account, resource_id, name, arn, schedule, \
                 timezone, start_ms, end_ms, min_capacity, max_capacity, created_ms, updated_ms, \
                 evaluated_ms, last_fired_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?
            .execute(params![
                a.account,
                a.resource.id(),
                a.name,
                a.arn,
                a.schedule,
                a.timezone,
                a.start.map(ms),
                a.end.map(ms),
                a.min_capacity,
                a.max_capacity,
                ms(a.created),
                ms(a.updated),
                ms(a.evaluated_until),
                a.last_fired.map(ms),
            ])?;
        }
        Change::DeleteAction {
            account,
            resource_id,
            name,
        } => {
            tx.prepare_cached(
                "DELETE FROM scheduled_actions WHERE account = ?1 AND resource_id = ?2 AND name = ?3",
            )?
            .execute(params![account, resource_id, name])?;
        }
        Change::PutPolicy(p) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO policies (account, resource_id, name, arn, policy_type, \
                 configuration, alarms, created_ms, last_scale_out_ms, last_scale_in_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                p.account,
                p.resource.id(),
                p.name,
                p.arn,
                p.policy_type,
                serde_json::to_string(&p.tracking)?,
                serde_json::to_string(&p.alarms)?,
                ms(p.created),
                p.last_scale_out.map(ms),
                p.last_scale_in.map(ms),
            ])?;
        }
        Change::DeletePolicy {
            account,
            resource_id,
            name,
        } => {
            tx.prepare_cached(
                "DELETE FROM policies WHERE account = ?1 AND resource_id = ?2 AND name = ?3",
            )?
            .execute(params![account, resource_id, name])?;
        }
        Change::AddActivity(a) => {
            let resource_id = a.resource.id();
            tx.prepare_cached(
                "INSERT INTO activities (account, resource_id, id, description, cause, start_ms, \
                 end_ms, status, status_message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                a.account,
                resource_id,
                a.id,
                a.description,
                a.cause,
                ms(a.start),
                a.end.map(ms),
                a.status.as_str(),
                a.status_message,
            ])?;
            // Only the newest are kept.
            let oldest_kept: Option<i64> = tx
                .prepare_cached(
                    "SELECT seq FROM activities WHERE account = ?1 AND resource_id = ?2 \
                     ORDER BY seq DESC LIMIT 1 OFFSET ?3",
                )?
                .query_row(
                    params![a.account, resource_id, ACTIVITY_HISTORY as i64 - 1],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(seq) = oldest_kept {
                tx.prepare_cached(
                    "DELETE FROM activities WHERE account = ?1 AND resource_id = ?2 AND seq < ?3",
                )?
                .execute(params![a.account, resource_id, seq])?;
            }
        }
    }
    Ok(())
}

impl AutoscalingStore for SqliteStore {
    fn load(&self) -> Result<Snapshot, AutoscalingError> {
        let connection = self.connection();
        Ok(Snapshot {
            targets: query_all(
                &connection,
                "SELECT account, resource_id, min_capacity, max_capacity, suspended, created_ms, \
                 arn, tags FROM targets",
                target_row,
            )?,
            actions: query_all(
                &connection,
                "SELECT account, resource_id, name, arn, schedule, timezone, start_ms, end_ms, \
                 min_capacity, max_capacity, created_ms, updated_ms, evaluated_ms, last_fired_ms \
                 FROM scheduled_actions",
                action_row,
            )?,
            policies: query_all(
                &connection,
                "SELECT account, resource_id, name, arn, policy_type, configuration, alarms, \
                 created_ms, last_scale_out_ms, last_scale_in_ms FROM policies",
                policy_row,
            )?,
            activities: query_all(
                &connection,
                "SELECT account, resource_id, id, description, cause, start_ms, end_ms, status, \
                 status_message FROM activities ORDER BY seq",
                activity_row,
            )?,
        })
    }

    fn commit(&self, changes: &[Change]) -> Result<(), AutoscalingError> {
        let mut connection = self.connection();
        let tx = connection.transaction()?;
        for change in changes {
            apply(&tx, change)?;
        }
        tx.commit()?;
        Ok(())
    }
}
