//! Opening a service's own SQLite database the way every Gust store does: WAL,
//! `synchronous=FULL`, a busy timeout, and a single schema of `CREATE … IF NOT EXISTS`
//! statements stamped with the build's schema version (`PRAGMA user_version`), refusing a
//! database written by a newer build.

use std::path::Path;

use rusqlite::Connection;

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// SQLite refused an operation.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer build.
    #[error("the {what} database has schema version {found}, newer than this build's {supported}")]
    SchemaTooNew {
        /// Whose database (`autoscaling`, `events`…).
        what: String,
        /// The version on disk.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
}

impl OpenError {
    /// This error as a crate's own: SQLite's through its `From<rusqlite::Error>`, a newer
    /// schema's message through `too_new`.
    pub fn into_error<E: From<rusqlite::Error>>(self, too_new: impl FnOnce(String) -> E) -> E {
        match self {
            OpenError::Sqlite(error) => error.into(),
            newer @ OpenError::SchemaTooNew { .. } => too_new(newer.to_string()),
        }
    }
}

/// Opens (creating) the database at `path` (`what` names it in errors), executes `schema`
/// and sets its version to `version`, unless the database's version is newer.
pub fn open_versioned(
    path: &Path,
    what: &str,
    schema: &str,
    version: i64,
) -> Result<Connection, OpenError> {
    let connection = Connection::open(path)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: an acknowledged change survives power loss, not just a process crash.
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    let found: i64 = connection.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > version {
        return Err(OpenError::SchemaTooNew {
            what: what.to_owned(),
            found,
            supported: version,
        });
    }
    connection.execute_batch(schema)?;
    connection.pragma_update(None, "user_version", version)?;
    Ok(connection)
}

/// Epoch milliseconds of `at` (how the stores keep times).
pub fn ms(at: time::OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The time `ms` epoch milliseconds name (the epoch for one out of range).
pub fn at(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// A JSON column read into `T` (a conversion failure of column 0 when it does not parse).
pub fn json<T: serde::de::DeserializeOwned>(text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Every row `sql` selects, read by `row`.
pub fn query_all<T>(
    connection: &Connection,
    sql: &str,
    row: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut statement = connection.prepare(sql)?;
    let rows = statement.query_map([], row)?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY);";

    #[test]
    fn creates_stamps_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let connection = open_versioned(&path, "x", SCHEMA, 2).unwrap();
        connection
            .execute("INSERT INTO t VALUES ('a')", [])
            .unwrap();
        let mode: String = connection
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(connection);
        let connection = open_versioned(&path, "x", SCHEMA, 2).unwrap();
        let version: i64 = connection
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 2);
        let rows: i64 = connection
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        drop(open_versioned(&path, "x", SCHEMA, 3).unwrap());
        let error = open_versioned(&path, "x", SCHEMA, 2).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the x database has schema version 3, newer than this build's 2"
        );
    }
}
