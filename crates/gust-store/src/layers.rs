//! SQLite queries for layers (schema version 3).
//!
//! `layers.last_version` only grows, so a version number is never reused. A deleted layer
//! version is hidden at once, but its row (and so its package) stays while a function or a
//! published version still uses its code: those keep working, as on Lambda. Rows nothing
//! uses any more are removed when they are deleted, and at start.

use gust_model::{CodeDigest, CodeRef, LayerVersion};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::record::LayerVersionRecord;
use crate::StoreError;

fn number(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}

type LayerRow = (String, i64, String, i64, String);

const COLUMNS: &str = "layer_name, version, code_sha256, code_size, record";

fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<LayerRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn decode((name, version, sha, size, record): LayerRow) -> Result<LayerVersion, StoreError> {
    let key = format!("layer {name}:{version}");
    let corrupt = |reason: String| StoreError::CorruptRecord {
        name: key.clone(),
        reason,
    };
    let record: LayerVersionRecord =
        serde_json::from_str(&record).map_err(|e| corrupt(e.to_string()))?;
    let code = CodeRef {
        digest: CodeDigest::from_hex(&sha).ok_or_else(|| corrupt(format!("bad digest {sha}")))?,
        size: u64::try_from(size).unwrap_or(0),
    };
    let version = u64::try_from(version).unwrap_or(0);
    record.into_layer(name, version, code).map_err(corrupt)
}

/// Inserts the next version of layer `name` (made by `make` from its number).
pub(crate) fn publish(
    connection: &mut Connection,
    name: &str,
    policy_revision: &str,
    make: impl FnOnce(u64) -> LayerVersion,
) -> Result<LayerVersion, StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO layers (name, last_version) VALUES (?1, 0) ON CONFLICT(name) DO NOTHING",
        [name],
    )?;
    let last: i64 = tx.query_row(
        "SELECT last_version FROM layers WHERE name = ?1",
        [name],
        |r| r.get(0),
    )?;
    let layer = make(u64::try_from(last).unwrap_or(0) + 1);
    tx.execute(
        "INSERT INTO layer_versions (layer_name, version, code_sha256, code_size, record, policy_revision)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            name,
            number(layer.version),
            layer.code.digest.to_hex(),
            i64::try_from(layer.code.size).unwrap_or(i64::MAX),
            serde_json::to_string(&LayerVersionRecord::from_layer(&layer)).unwrap_or_default(),
            policy_revision,
        ],
    )?;
    tx.execute(
        "UPDATE layers SET last_version = ?2 WHERE name = ?1",
        params![name, number(layer.version)],
    )?;
    tx.commit()?;
    Ok(layer)
}

/// A layer version that has not been deleted.
pub(crate) fn get(
    connection: &Connection,
    name: &str,
    version: u64,
) -> Result<Option<LayerVersion>, StoreError> {
    connection
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM layer_versions WHERE layer_name = ?1 AND version = ?2 AND deleted = 0"
        ))?
        .query_row(params![name, number(version)], read)
        .optional()?
        .map(decode)
        .transpose()
}

/// The versions of `name` not deleted, newest first.
pub(crate) fn versions(
    connection: &Connection,
    name: &str,
) -> Result<Vec<LayerVersion>, StoreError> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM layer_versions WHERE layer_name = ?1 AND deleted = 0 ORDER BY version DESC"
    ))?;
    let rows = statement
        .query_map([name], read)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(decode).collect()
}

/// Every version not deleted, by layer name, newest first within a layer.
pub(crate) fn all(connection: &Connection) -> Result<Vec<LayerVersion>, StoreError> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM layer_versions WHERE deleted = 0 ORDER BY layer_name, version DESC"
    ))?;
    let rows = statement
        .query_map([], read)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(decode).collect()
}

/// Whether a function or a published version references code `hex` as a layer.
fn used_by_functions(connection: &Connection, hex: &str) -> Result<bool, StoreError> {
    let pattern = format!("%\"sha256\":\"{hex}\"%");
    Ok(connection.query_row(
        "SELECT EXISTS(SELECT 1 FROM functions WHERE record LIKE ?1)
             OR EXISTS(SELECT 1 FROM function_versions WHERE record LIKE ?1)",
        [pattern],
        |r| r.get(0),
    )?)
}

/// Hides a layer version (idempotent) and drops its permissions; the row goes too when no
/// function uses its code. Returns the digest when the row went.
pub(crate) fn delete(
    connection: &mut Connection,
    name: &str,
    version: u64,
) -> Result<Option<CodeDigest>, StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let sha: Option<String> = tx
        .query_row(
            "UPDATE layer_versions SET deleted = 1 WHERE layer_name = ?1 AND version = ?2
             RETURNING code_sha256",
            params![name, number(version)],
            |r| r.get(0),
        )
        .optional()?;
    tx.execute(
        "DELETE FROM layer_version_statements WHERE layer_name = ?1 AND version = ?2",
        params![name, number(version)],
    )?;
    let mut removed = None;
    if let Some(sha) = sha {
        if !used_by_functions(&tx, &sha)? {
            tx.execute(
                "DELETE FROM layer_versions WHERE layer_name = ?1 AND version = ?2",
                params![name, number(version)],
            )?;
            removed = CodeDigest::from_hex(&sha);
        }
    }
    tx.commit()?;
    Ok(removed)
}

/// Removes deleted layer versions nothing uses any more; returns their digests.
pub(crate) fn collect_deleted(connection: &mut Connection) -> Result<Vec<CodeDigest>, StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let deleted: Vec<(String, i64, String)> = {
        let mut statement = tx.prepare(
            "SELECT layer_name, version, code_sha256 FROM layer_versions WHERE deleted = 1",
        )?;
        let rows = statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        rows
    };
    let mut removed = Vec::new();
    for (name, version, sha) in deleted {
        if !used_by_functions(&tx, &sha)? {
            tx.execute(
                "DELETE FROM layer_versions WHERE layer_name = ?1 AND version = ?2",
                params![name, version],
            )?;
            removed.extend(CodeDigest::from_hex(&sha));
        }
    }
    tx.commit()?;
    Ok(removed)
}

/// A layer version's permission statements (JSON texts, in the order added) and the
/// policy's revision; `None` when the version does not exist.
pub(crate) fn policy(
    connection: &Connection,
    name: &str,
    version: u64,
) -> Result<Option<(Vec<String>, String)>, StoreError> {
    let revision: Option<String> = connection
        .query_row(
            "SELECT policy_revision FROM layer_versions
             WHERE layer_name = ?1 AND version = ?2 AND deleted = 0",
            params![name, number(version)],
            |r| r.get(0),
        )
        .optional()?;
    let Some(revision) = revision else {
        return Ok(None);
    };
    let mut statement = connection.prepare_cached(
        "SELECT statement FROM layer_version_statements
         WHERE layer_name = ?1 AND version = ?2 ORDER BY rowid",
    )?;
    let statements = statement
        .query_map(params![name, number(version)], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(Some((statements, revision)))
}

/// What a permission change needs to hold.
pub(crate) struct PolicyChange<'a> {
    pub name: &'a str,
    pub version: u64,
    pub statement_id: &'a str,
    pub expected_revision: Option<&'a str>,
    pub new_revision: &'a str,
}

/// Checks the version exists and its policy revision; returns the new revision.
fn begin_change(
    tx: &rusqlite::Transaction<'_>,
    change: &PolicyChange<'_>,
) -> Result<String, StoreError> {
    let revision: Option<String> = tx
        .query_row(
            "SELECT policy_revision FROM layer_versions
             WHERE layer_name = ?1 AND version = ?2 AND deleted = 0",
            params![change.name, number(change.version)],
            |r| r.get(0),
        )
        .optional()?;
    let Some(revision) = revision else {
        return Err(StoreError::NotFound(format!(
            "{}:{}",
            change.name, change.version
        )));
    };
    if change.expected_revision.is_some_and(|r| r != revision) {
        return Err(StoreError::RevisionMismatch(change.name.to_owned()));
    }
    tx.execute(
        "UPDATE layer_versions SET policy_revision = ?3 WHERE layer_name = ?1 AND version = ?2",
        params![change.name, number(change.version), change.new_revision],
    )?;
    Ok(change.new_revision.to_owned())
}

/// Adds a statement; `AlreadyExists` for a statement id in use.
pub(crate) fn add_statement(
    connection: &mut Connection,
    change: &PolicyChange<'_>,
    statement: &str,
) -> Result<String, StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let revision = begin_change(&tx, change)?;
    let inserted = tx.execute(
        "INSERT INTO layer_version_statements (layer_name, version, statement_id, statement)
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        params![
            change.name,
            number(change.version),
            change.statement_id,
            statement
        ],
    )?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(change.statement_id.to_owned()));
    }
    tx.commit()?;
    Ok(revision)
}

/// Removes a statement; `NotFound` when the version or the statement does not exist.
pub(crate) fn remove_statement(
    connection: &mut Connection,
    change: &PolicyChange<'_>,
) -> Result<(), StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    begin_change(&tx, change)?;
    let removed = tx.execute(
        "DELETE FROM layer_version_statements
         WHERE layer_name = ?1 AND version = ?2 AND statement_id = ?3",
        params![change.name, number(change.version), change.statement_id],
    )?;
    if removed == 0 {
        return Err(StoreError::NotFound(change.statement_id.to_owned()));
    }
    tx.commit()?;
    Ok(())
}
