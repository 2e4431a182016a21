//! The embedded store: one SQLite database (WAL, `synchronous=FULL`). Writes are API calls
//! only, so one connection behind a mutex serves. Each resource is a row keyed by its
//! account, API and id, holding the record as JSON (a deployment's record carries its
//! snapshot of routes and integrations).

use std::path::Path;
use std::sync::Mutex;

use gust_store::sqlite::{json, open_versioned, query_all};
use rusqlite::{params, Row};

use crate::error::ApigwError;
use crate::store::{ApigwStore, Change, Owner, Snapshot};

/// The schema's version (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS apis (
    account TEXT NOT NULL,
    api_id TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (account, api_id)
);
CREATE TABLE IF NOT EXISTS routes (
    account TEXT NOT NULL,
    api_id TEXT NOT NULL,
    id TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (account, api_id, id)
);
CREATE TABLE IF NOT EXISTS integrations (
    account TEXT NOT NULL,
    api_id TEXT NOT NULL,
    id TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (account, api_id, id)
);
CREATE TABLE IF NOT EXISTS stages (
    account TEXT NOT NULL,
    api_id TEXT NOT NULL,
    id TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (account, api_id, id)
);
CREATE TABLE IF NOT EXISTS deployments (
    account TEXT NOT NULL,
    api_id TEXT NOT NULL,
    id TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (account, api_id, id)
);
";

/// The tables of an API's resources (all but `apis`).
const CHILD_TABLES: [&str; 4] = ["routes", "integrations", "stages", "deployments"];

/// The SQLite store.
#[derive(Debug)]
pub struct SqliteStore {
    connection: Mutex<rusqlite::Connection>,
}

impl SqliteStore {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, ApigwError> {
        let connection = open_versioned(path, "apigw", SCHEMA, SCHEMA_VERSION)
            .map_err(|error| error.into_error(ApigwError::Internal))?;
        Ok(SqliteStore {
            connection: Mutex::new(connection),
        })
    }

    fn connection(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn owned<T: serde::de::DeserializeOwned>(row: &Row<'_>) -> rusqlite::Result<(Owner, T)> {
    Ok((
        Owner {
            account: row.get(0)?,
            api_id: row.get(1)?,
        },
        json(&row.get::<_, String>(2)?)?,
    ))
}

fn put(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    owner: &Owner,
    id: &str,
    record: &impl serde::Serialize,
) -> Result<(), ApigwError> {
    tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {table} (account, api_id, id, record) VALUES (?1, ?2, ?3, ?4)"
    ))?
    .execute(params![
        owner.account,
        owner.api_id,
        id,
        serde_json::to_string(record)?
    ])?;
    Ok(())
}

fn delete(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    owner: &Owner,
    id: &str,
) -> Result<(), ApigwError> {
    tx.prepare_cached(&format!(
        "DELETE FROM {table} WHERE account = ?1 AND api_id = ?2 AND id = ?3"
    ))?
    .execute(params![owner.account, owner.api_id, id])?;
    Ok(())
}

fn apply(tx: &rusqlite::Transaction<'_>, change: &Change) -> Result<(), ApigwError> {
    match change {
        Change::PutApi(api) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO apis (account, api_id, record) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![
                api.account,
                api.api_id,
                serde_json::to_string(api)?
            ])?;
        }
        Change::DeleteApi(owner) => {
            tx.prepare_cached("DELETE FROM apis WHERE account = ?1 AND api_id = ?2")?
                .execute(params![owner.account, owner.api_id])?;
            for table in CHILD_TABLES {
                tx.prepare_cached(&format!(
                    "DELETE FROM {table} WHERE account = ?1 AND api_id = ?2"
                ))?
                .execute(params![owner.account, owner.api_id])?;
            }
        }
        Change::PutRoute(owner, route) => put(tx, "routes", owner, &route.route_id, route)?,
        Change::DeleteRoute(owner, id) => delete(tx, "routes", owner, id)?,
        Change::PutIntegration(owner, integration) => put(
            tx,
            "integrations",
            owner,
            &integration.integration_id,
            integration,
        )?,
        Change::DeleteIntegration(owner, id) => delete(tx, "integrations", owner, id)?,
        Change::PutStage(owner, stage) => put(tx, "stages", owner, &stage.stage_name, stage)?,
        Change::DeleteStage(owner, name) => delete(tx, "stages", owner, name)?,
        Change::PutDeployment(owner, deployment) => put(
            tx,
            "deployments",
            owner,
            &deployment.deployment_id,
            deployment,
        )?,
        Change::DeleteDeployment(owner, id) => delete(tx, "deployments", owner, id)?,
    }
    Ok(())
}

impl ApigwStore for SqliteStore {
    fn load(&self) -> Result<Snapshot, ApigwError> {
        let connection = self.connection();
        let children = |table: &str| format!("SELECT account, api_id, record FROM {table}");
        Ok(Snapshot {
            apis: query_all(&connection, "SELECT record FROM apis", |row| {
                json(&row.get::<_, String>(0)?)
            })?,
            routes: query_all(&connection, &children("routes"), owned)?,
            integrations: query_all(&connection, &children("integrations"), owned)?,
            stages: query_all(&connection, &children("stages"), owned)?,
            deployments: query_all(&connection, &children("deployments"), owned)?,
        })
    }

    fn commit(&self, changes: &[Change]) -> Result<(), ApigwError> {
        let mut connection = self.connection();
        let tx = connection.transaction()?;
        for change in changes {
            apply(&tx, change)?;
        }
        tx.commit()?;
        Ok(())
    }
}
