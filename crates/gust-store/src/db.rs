//! SQLite access: connection set-up, migrations and the function queries.

use std::path::Path;

use gust_model::{CodeDigest, FunctionConfig, FunctionName, Tags};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::record::FunctionRecord;
use crate::{AccountUsage, FunctionPage, StoreError};

/// Migrations in order; `PRAGMA user_version` counts how many have been applied.
const MIGRATIONS: &[&str] = &[
    // 1: functions and their tags.
    "CREATE TABLE functions (
        name TEXT PRIMARY KEY NOT NULL,
        revision_id TEXT NOT NULL,
        code_sha256 TEXT NOT NULL,
        code_size INTEGER NOT NULL,
        record TEXT NOT NULL
    ) STRICT;
    CREATE INDEX functions_by_code ON functions(code_sha256);
    CREATE TABLE function_tags (
        function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (function_name, key)
    ) STRICT;",
    // 2: published versions (immutable snapshots, numbers never reused) and aliases.
    "ALTER TABLE functions ADD COLUMN last_version INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE function_versions (
        function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        revision_id TEXT NOT NULL,
        code_sha256 TEXT NOT NULL,
        code_size INTEGER NOT NULL,
        record TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        PRIMARY KEY (function_name, version)
    ) STRICT;
    CREATE INDEX function_versions_by_code ON function_versions(code_sha256);
    CREATE TABLE aliases (
        function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
        name TEXT NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (function_name, name)
    ) STRICT;",
    // 3: layers, their versions (hidden when deleted, kept while functions use them) and
    // their permission statements.
    "CREATE TABLE layers (
        name TEXT PRIMARY KEY NOT NULL,
        last_version INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE layer_versions (
        layer_name TEXT NOT NULL REFERENCES layers(name),
        version INTEGER NOT NULL,
        code_sha256 TEXT NOT NULL,
        code_size INTEGER NOT NULL,
        record TEXT NOT NULL,
        policy_revision TEXT NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (layer_name, version)
    ) STRICT;
    CREATE INDEX layer_versions_by_code ON layer_versions(code_sha256);
    CREATE TABLE layer_version_statements (
        layer_name TEXT NOT NULL,
        version INTEGER NOT NULL,
        statement_id TEXT NOT NULL,
        statement TEXT NOT NULL,
        PRIMARY KEY (layer_name, version, statement_id),
        FOREIGN KEY (layer_name, version) REFERENCES layer_versions(layer_name, version)
            ON DELETE CASCADE
    ) STRICT;",
    // 4: functions' resource-based policies, per qualifier ('' for the function itself).
    "CREATE TABLE function_policies (
        function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
        qualifier TEXT NOT NULL,
        statement_id TEXT NOT NULL,
        statement TEXT NOT NULL,
        PRIMARY KEY (function_name, qualifier, statement_id)
    ) STRICT;",
    // 5: small per-function settings (recursion, runtime management), per qualifier.
    "CREATE TABLE function_settings (
        function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
        qualifier TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (function_name, qualifier, key)
    ) STRICT;",
    // 6: event source mappings; the record is the mapping's JSON (settings and state).
    "CREATE TABLE event_source_mappings (
        uuid TEXT PRIMARY KEY,
        function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
        source_arn TEXT NOT NULL,
        record TEXT NOT NULL
    ) STRICT;
    CREATE INDEX event_source_mappings_by_function ON event_source_mappings(function_name);",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(crate) fn open(path: &Path) -> Result<Connection, StoreError> {
    let mut connection = Connection::open(path)?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a acknowledged change survives power loss, not just a process crash.
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&mut connection)?;
    Ok(connection)
}

fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    let current: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(current).unwrap_or(0))
    {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tracing::info!(version = index + 1, "applied schema migration");
    }
    tx.commit()?;
    Ok(())
}

fn record_json(config: &FunctionConfig) -> String {
    // Serialising plain strings and numbers cannot fail.
    serde_json::to_string(&FunctionRecord::from_config(config)).unwrap_or_default()
}

/// The columns of a function row, in the order `?1`…`?5` of the statements below.
fn row_values(config: &FunctionConfig) -> (&str, &str, String, i64, String) {
    (
        config.name.as_str(),
        &config.revision_id,
        config.code.digest.to_hex(),
        size_i64(config.code.size),
        record_json(config),
    )
}

fn size_i64(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

pub(crate) fn insert_function(
    connection: &mut Connection,
    config: &FunctionConfig,
    tags: &Tags,
) -> Result<(), StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let inserted = tx.execute(
        "INSERT INTO functions (name, revision_id, code_sha256, code_size, record)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(name) DO NOTHING",
        row_values(config),
    )?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(config.name.to_string()));
    }
    write_tags(&tx, &config.name, tags)?;
    tx.commit()?;
    Ok(())
}

fn write_tags(
    tx: &rusqlite::Transaction<'_>,
    name: &FunctionName,
    tags: &Tags,
) -> Result<(), StoreError> {
    let mut statement = tx.prepare_cached(
        "INSERT INTO function_tags (function_name, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT(function_name, key) DO UPDATE SET value = excluded.value",
    )?;
    for (key, value) in tags {
        statement.execute(params![name.as_str(), key, value])?;
    }
    Ok(())
}

pub(crate) type Row = (String, String, String, i64, String);

pub(crate) fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

pub(crate) fn decode_row(
    (name, revision_id, sha, size, record): Row,
) -> Result<FunctionConfig, StoreError> {
    let corrupt = |reason: String| StoreError::CorruptRecord {
        name: name.clone(),
        reason,
    };
    let record: FunctionRecord =
        serde_json::from_str(&record).map_err(|e| corrupt(e.to_string()))?;
    record
        .into_config(&name, revision_id, &sha, size)
        .map_err(corrupt)
}

pub(crate) fn get_function(
    connection: &Connection,
    name: &FunctionName,
) -> Result<Option<(FunctionConfig, Tags)>, StoreError> {
    let row = connection
        .prepare_cached("SELECT name, revision_id, code_sha256, code_size, record FROM functions WHERE name = ?1")?
        .query_row([name.as_str()], read_row)
        .optional()?;
    let Some(row) = row else {
        return Ok(None);
    };
    let config = decode_row(row)?;
    let mut statement = connection
        .prepare_cached("SELECT key, value FROM function_tags WHERE function_name = ?1")?;
    let tags = statement
        .query_map([name.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Tags, _>>()?;
    Ok(Some((config, tags)))
}

pub(crate) fn list_functions(
    connection: &Connection,
    marker: Option<&str>,
    limit: usize,
) -> Result<FunctionPage, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT name, revision_id, code_sha256, code_size, record FROM functions
         WHERE name > ?1 ORDER BY name LIMIT ?2",
    )?;
    // One extra row tells whether another page follows.
    let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
    let rows = statement
        .query_map(params![marker.unwrap_or(""), fetch], read_row)?
        .collect::<Result<Vec<_>, _>>()?;
    let more = rows.len() > limit;
    let functions = rows
        .into_iter()
        .take(limit)
        .map(decode_row)
        .collect::<Result<Vec<_>, _>>()?;
    let next_marker = if more {
        functions.last().map(|f| f.name.to_string())
    } else {
        None
    };
    Ok(FunctionPage {
        functions,
        next_marker,
    })
}

/// Returns the digest the function referenced before.
pub(crate) fn replace_function(
    connection: &mut Connection,
    config: &FunctionConfig,
    expected_revision: &str,
) -> Result<CodeDigest, StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: Option<(String, String)> = tx
        .query_row(
            "SELECT revision_id, code_sha256 FROM functions WHERE name = ?1",
            [config.name.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((revision, old_sha)) = current else {
        return Err(StoreError::NotFound(config.name.to_string()));
    };
    if revision != expected_revision {
        return Err(StoreError::RevisionMismatch(config.name.to_string()));
    }
    tx.execute(
        "UPDATE functions SET revision_id = ?2, code_sha256 = ?3, code_size = ?4, record = ?5 WHERE name = ?1",
        row_values(config),
    )?;
    tx.commit()?;
    CodeDigest::from_hex(&old_sha).ok_or_else(|| StoreError::CorruptRecord {
        name: config.name.to_string(),
        reason: format!("bad code digest {old_sha:?}"),
    })
}

/// Deletes a function with its versions and aliases; returns the digests they referenced
/// (`None` when there was no such function).
pub(crate) fn delete_function(
    connection: &mut Connection,
    name: &FunctionName,
) -> Result<Option<Vec<CodeDigest>>, StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut digests = crate::versions::version_digests(&tx, name)?;
    let sha: Option<String> = tx
        .query_row(
            "DELETE FROM functions WHERE name = ?1 RETURNING code_sha256",
            [name.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    tx.commit()?;
    let Some(sha) = sha else {
        return Ok(None);
    };
    digests.extend(CodeDigest::from_hex(&sha));
    Ok(Some(digests))
}

/// Gives a function a new revision (a tag change); `false` when there is no function.
fn touch(
    tx: &rusqlite::Transaction<'_>,
    name: &FunctionName,
    revision: &str,
) -> Result<bool, StoreError> {
    Ok(tx.execute(
        "UPDATE functions SET revision_id = ?2 WHERE name = ?1",
        params![name.as_str(), revision],
    )? > 0)
}

pub(crate) fn put_tags(
    connection: &mut Connection,
    name: &FunctionName,
    tags: &Tags,
    revision: &str,
) -> Result<(), StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if !touch(&tx, name, revision)? {
        return Err(StoreError::NotFound(name.to_string()));
    }
    write_tags(&tx, name, tags)?;
    tx.commit()?;
    Ok(())
}

pub(crate) fn remove_tags(
    connection: &mut Connection,
    name: &FunctionName,
    keys: &[String],
    revision: &str,
) -> Result<(), StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    touch(&tx, name, revision)?;
    {
        let mut statement =
            tx.prepare_cached("DELETE FROM function_tags WHERE function_name = ?1 AND key = ?2")?;
        for key in keys {
            statement.execute(params![name.as_str(), key])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(crate) fn is_code_referenced(
    connection: &Connection,
    digest: &CodeDigest,
) -> Result<bool, StoreError> {
    Ok(connection.query_row(
        "SELECT EXISTS(SELECT 1 FROM functions WHERE code_sha256 = ?1)
             OR EXISTS(SELECT 1 FROM function_versions WHERE code_sha256 = ?1)
             OR EXISTS(SELECT 1 FROM layer_versions WHERE code_sha256 = ?1)
             OR EXISTS(SELECT 1 FROM functions WHERE record LIKE ?2)
             OR EXISTS(SELECT 1 FROM function_versions WHERE record LIKE ?2)",
        // The last two: a layer a function uses (another account's is kept as a copy that
        // only the function's record names).
        params![
            digest.to_hex(),
            format!("%\"sha256\":\"{}\"%", digest.to_hex())
        ],
        |r| r.get(0),
    )?)
}

pub(crate) fn account_usage(connection: &Connection) -> Result<AccountUsage, StoreError> {
    let (size, count): (i64, i64) = connection.query_row(
        "SELECT COALESCE(SUM(code_size), 0)
                + (SELECT COALESCE(SUM(code_size), 0) FROM function_versions)
                + (SELECT COALESCE(SUM(code_size), 0) FROM layer_versions WHERE deleted = 0),
                COUNT(*)
         FROM functions",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(AccountUsage {
        total_code_size: u64::try_from(size).unwrap_or(0),
        function_count: u64::try_from(count).unwrap_or(0),
    })
}

/// Every qualifier's value of one setting of a function, by qualifier.
pub(crate) fn settings_by_key(
    connection: &Connection,
    name: &FunctionName,
    key: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT qualifier, value FROM function_settings WHERE function_name = ?1 AND key = ?2 ORDER BY qualifier",
    )?;
    let rows = statement
        .query_map(params![name.as_str(), key], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Stores a mapping (insert or replace); `NotFound` without the function.
pub(crate) fn put_mapping(
    connection: &mut Connection,
    uuid: &str,
    name: &FunctionName,
    source_arn: &str,
    record: &str,
) -> Result<(), StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    require_function(&tx, name)?;
    tx.execute(
        "INSERT INTO event_source_mappings (uuid, function_name, source_arn, record) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(uuid) DO UPDATE SET function_name = excluded.function_name,
             source_arn = excluded.source_arn, record = excluded.record",
        params![uuid, name.as_str(), source_arn, record],
    )?;
    tx.commit()?;
    Ok(())
}

/// Replaces an existing mapping's function and record; `false` when it is gone (a
/// change never brings a deleted mapping back).
pub(crate) fn update_mapping(
    connection: &Connection,
    uuid: &str,
    name: &FunctionName,
    record: &str,
) -> Result<bool, StoreError> {
    Ok(connection.execute(
        "UPDATE event_source_mappings SET function_name = ?2, record = ?3 WHERE uuid = ?1",
        params![uuid, name.as_str(), record],
    )? > 0)
}

/// Every mapping: (uuid, function, source ARN, record), oldest first.
pub(crate) fn mappings(
    connection: &Connection,
) -> Result<Vec<(String, String, String, String)>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT uuid, function_name, source_arn, record FROM event_source_mappings ORDER BY rowid",
    )?;
    let rows = statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Removes a mapping; whether it existed.
pub(crate) fn delete_mapping(connection: &Connection, uuid: &str) -> Result<bool, StoreError> {
    Ok(connection.execute(
        "DELETE FROM event_source_mappings WHERE uuid = ?1",
        params![uuid],
    )? > 0)
}

/// One setting of every function and qualifier that has it: (function, qualifier, value).
pub(crate) fn settings_everywhere(
    connection: &Connection,
    key: &str,
) -> Result<Vec<(String, String, String)>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT function_name, qualifier, value FROM function_settings WHERE key = ?1
         ORDER BY function_name, qualifier",
    )?;
    let rows = statement
        .query_map(params![key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// One setting of every function that has it (its `$LATEST`/unqualified value).
pub(crate) fn settings_with_key(
    connection: &Connection,
    key: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT function_name, value FROM function_settings WHERE key = ?1 AND qualifier = ''",
    )?;
    let rows = statement
        .query_map(params![key], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// A function setting (`None` when unset).
pub(crate) fn get_setting(
    connection: &Connection,
    name: &FunctionName,
    qualifier: &str,
    key: &str,
) -> Result<Option<String>, StoreError> {
    Ok(connection
        .prepare_cached(
            "SELECT value FROM function_settings WHERE function_name = ?1 AND qualifier = ?2 AND key = ?3",
        )?
        .query_row(params![name.as_str(), qualifier, key], |r| r.get(0))
        .optional()?)
}

/// Sets (or, for `None`, clears) function settings together; `NotFound` without the
/// function.
pub(crate) fn put_settings(
    connection: &mut Connection,
    name: &FunctionName,
    qualifier: &str,
    settings: &[(&str, Option<&str>)],
) -> Result<(), StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    require_function(&tx, name)?;
    for (key, value) in settings {
        match value {
            Some(value) => tx.execute(
                "INSERT INTO function_settings (function_name, qualifier, key, value) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(function_name, qualifier, key) DO UPDATE SET value = excluded.value",
                params![name.as_str(), qualifier, key, value],
            )?,
            None => tx.execute(
                "DELETE FROM function_settings WHERE function_name = ?1 AND qualifier = ?2 AND key = ?3",
                params![name.as_str(), qualifier, key],
            )?,
        };
    }
    tx.commit()?;
    Ok(())
}

/// Sets a function setting; `NotFound` without the function.
pub(crate) fn put_setting(
    connection: &mut Connection,
    name: &FunctionName,
    qualifier: &str,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    put_settings(connection, name, qualifier, &[(key, Some(value))])
}

/// `NotFound` unless function `name` exists.
pub(crate) fn require_function(
    connection: &Connection,
    name: &FunctionName,
) -> Result<(), StoreError> {
    let exists: bool = connection.query_row(
        "SELECT EXISTS(SELECT 1 FROM functions WHERE name = ?1)",
        [name.as_str()],
        |r| r.get(0),
    )?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::NotFound(name.to_string()))
    }
}
