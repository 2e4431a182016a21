//! SQLite queries for published versions and aliases (schema version 2).
//!
//! A version row is an immutable snapshot of `$LATEST` at publish time; `functions.last_version`
//! counts the numbers handed out, so a number is never reused after a deletion. An alias
//! row names the versions it routes to; a version an alias routes to cannot be deleted,
//! and an alias cannot be pointed at a version that does not exist (both checked in the
//! writing transaction).

use gust_model::{Alias, CodeDigest, FunctionConfig, FunctionName, FunctionVersion};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::db::{decode_row, read_row, Row};
use crate::record::{fingerprint, AliasRecord, FunctionRecord};
use crate::StoreError;

const VERSION_COLUMNS: &str = "function_name, revision_id, code_sha256, code_size, record, version";

fn decode_version(row: (Row, i64)) -> Result<FunctionConfig, StoreError> {
    let (row, version) = row;
    let mut config = decode_row(row)?;
    config.version = FunctionVersion::Published(u64::try_from(version).unwrap_or(0));
    Ok(config)
}

fn read_version_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Row, i64)> {
    Ok((read_row(row)?, row.get(5)?))
}

fn version_i64(number: u64) -> i64 {
    i64::try_from(number).unwrap_or(i64::MAX)
}

/// Publishes `latest` (whose stored revision must still be `latest.revision_id`): the
/// snapshot `make` builds for the next number, or — when nothing changed since the newest
/// published version — that version again. Returns the version and whether it is new.
pub(crate) fn publish_version(
    connection: &mut Connection,
    latest: &FunctionConfig,
    make: impl FnOnce(u64) -> FunctionConfig,
) -> Result<(FunctionConfig, bool), StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: Option<(String, i64)> = tx
        .query_row(
            "SELECT revision_id, last_version FROM functions WHERE name = ?1",
            [latest.name.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((revision, last_version)) = current else {
        return Err(StoreError::NotFound(latest.name.to_string()));
    };
    if revision != latest.revision_id {
        return Err(StoreError::RevisionMismatch(latest.name.to_string()));
    }
    let print = fingerprint(latest);
    let newest = tx
        .query_row(
            &format!(
                "SELECT {VERSION_COLUMNS}, fingerprint FROM function_versions
                 WHERE function_name = ?1 ORDER BY version DESC LIMIT 1"
            ),
            [latest.name.as_str()],
            |r| Ok((read_version_row(r)?, r.get::<_, String>(6)?)),
        )
        .optional()?;
    if let Some((row, newest_print)) = newest {
        if newest_print == print {
            return Ok((decode_version(row)?, false));
        }
    }
    let number = u64::try_from(last_version).unwrap_or(0) + 1;
    let version = make(number);
    tx.execute(
        "INSERT INTO function_versions
           (function_name, version, revision_id, code_sha256, code_size, record, fingerprint)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            version.name.as_str(),
            version_i64(number),
            version.revision_id,
            version.code.digest.to_hex(),
            i64::try_from(version.code.size).unwrap_or(i64::MAX),
            serde_json::to_string(&FunctionRecord::from_config(&version)).unwrap_or_default(),
            print,
        ],
    )?;
    tx.execute(
        "UPDATE functions SET last_version = ?2 WHERE name = ?1",
        params![latest.name.as_str(), version_i64(number)],
    )?;
    tx.commit()?;
    Ok((version, true))
}

pub(crate) fn get_version(
    connection: &Connection,
    name: &FunctionName,
    number: u64,
) -> Result<Option<FunctionConfig>, StoreError> {
    connection
        .prepare_cached(&format!(
            "SELECT {VERSION_COLUMNS} FROM function_versions WHERE function_name = ?1 AND version = ?2"
        ))?
        .query_row(params![name.as_str(), version_i64(number)], read_version_row)
        .optional()?
        .map(decode_version)
        .transpose()
}

/// Every published version of `name`, oldest first.
pub(crate) fn list_versions(
    connection: &Connection,
    name: &FunctionName,
) -> Result<Vec<FunctionConfig>, StoreError> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS} FROM function_versions WHERE function_name = ?1 ORDER BY version"
    ))?;
    let rows = statement
        .query_map([name.as_str()], read_version_row)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(decode_version).collect()
}

/// The code every published version of `name` uses (to collect after the function goes).
pub(crate) fn version_digests(
    tx: &Transaction<'_>,
    name: &FunctionName,
) -> Result<Vec<CodeDigest>, StoreError> {
    let mut statement = tx.prepare_cached(
        "SELECT DISTINCT code_sha256 FROM function_versions WHERE function_name = ?1",
    )?;
    let digests = statement
        .query_map([name.as_str()], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(digests
        .iter()
        .filter_map(|hex| CodeDigest::from_hex(hex))
        .collect())
}

/// Deletes a version no alias routes to; returns its code, `None` when there was none.
pub(crate) fn delete_version(
    connection: &mut Connection,
    name: &FunctionName,
    number: u64,
) -> Result<Option<CodeDigest>, StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let using: Vec<String> = aliases_in(&tx, name)?
        .into_iter()
        .filter(|a| a.routes_to(number))
        .map(|a| a.name)
        .collect();
    if !using.is_empty() {
        return Err(StoreError::VersionInUse { aliases: using });
    }
    let sha: Option<String> = tx
        .query_row(
            "DELETE FROM function_versions WHERE function_name = ?1 AND version = ?2
             RETURNING code_sha256",
            params![name.as_str(), version_i64(number)],
            |r| r.get(0),
        )
        .optional()?;
    drop_policy(&tx, name, &number.to_string())?;
    tx.commit()?;
    Ok(sha.as_deref().and_then(CodeDigest::from_hex))
}

fn aliases_in(connection: &Connection, function: &FunctionName) -> Result<Vec<Alias>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT name, record FROM aliases WHERE function_name = ?1 ORDER BY name",
    )?;
    let rows = statement
        .query_map([function.as_str()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(name, record)| decode_alias(function, name, &record))
        .collect()
}

fn decode_alias(function: &FunctionName, name: String, record: &str) -> Result<Alias, StoreError> {
    let key = format!("{function}:{name}");
    let corrupt = |reason: String| StoreError::CorruptRecord {
        name: key.clone(),
        reason,
    };
    let record: AliasRecord = serde_json::from_str(record).map_err(|e| corrupt(e.to_string()))?;
    record.into_alias(name).map_err(corrupt)
}

/// Checks that `name` exists and that every version `alias` routes to is published.
fn check_targets(
    tx: &Transaction<'_>,
    function: &FunctionName,
    alias: &Alias,
) -> Result<(), StoreError> {
    crate::db::require_function(tx, function)?;
    for version in alias.versions() {
        if let FunctionVersion::Published(number) = version {
            let published: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM function_versions WHERE function_name = ?1 AND version = ?2)",
                params![function.as_str(), version_i64(number)],
                |r| r.get(0),
            )?;
            if !published {
                return Err(StoreError::VersionNotFound(number));
            }
        }
    }
    Ok(())
}

fn alias_json(alias: &Alias) -> String {
    serde_json::to_string(&AliasRecord::from_alias(alias)).unwrap_or_default()
}

pub(crate) fn insert_alias(
    connection: &mut Connection,
    function: &FunctionName,
    alias: &Alias,
) -> Result<(), StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    check_targets(&tx, function, alias)?;
    let inserted = tx.execute(
        "INSERT INTO aliases (function_name, name, record) VALUES (?1, ?2, ?3)
         ON CONFLICT(function_name, name) DO NOTHING",
        params![function.as_str(), alias.name, alias_json(alias)],
    )?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(alias.name.clone()));
    }
    tx.commit()?;
    Ok(())
}

pub(crate) fn get_alias(
    connection: &Connection,
    function: &FunctionName,
    name: &str,
) -> Result<Option<Alias>, StoreError> {
    let record: Option<String> = connection
        .prepare_cached("SELECT record FROM aliases WHERE function_name = ?1 AND name = ?2")?
        .query_row(params![function.as_str(), name], |r| r.get(0))
        .optional()?;
    record
        .map(|record| decode_alias(function, name.to_owned(), &record))
        .transpose()
}

pub(crate) fn list_aliases(
    connection: &Connection,
    function: &FunctionName,
) -> Result<Vec<Alias>, StoreError> {
    aliases_in(connection, function)
}

/// Replaces an alias whose stored revision is still `expected_revision`.
pub(crate) fn replace_alias(
    connection: &mut Connection,
    function: &FunctionName,
    alias: &Alias,
    expected_revision: &str,
) -> Result<(), StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some(current) = get_alias(&tx, function, &alias.name)? else {
        return Err(StoreError::NotFound(format!("{function}:{}", alias.name)));
    };
    if current.revision_id != expected_revision {
        return Err(StoreError::RevisionMismatch(alias.name.clone()));
    }
    check_targets(&tx, function, alias)?;
    tx.execute(
        "UPDATE aliases SET record = ?3 WHERE function_name = ?1 AND name = ?2",
        params![function.as_str(), alias.name, alias_json(alias)],
    )?;
    tx.commit()?;
    Ok(())
}

/// Deletes an alias; `false` when there was none.
pub(crate) fn delete_alias(
    connection: &mut Connection,
    function: &FunctionName,
    name: &str,
) -> Result<bool, StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let deleted = tx.execute(
        "DELETE FROM aliases WHERE function_name = ?1 AND name = ?2",
        params![function.as_str(), name],
    )?;
    drop_policy(&tx, function, name)?;
    tx.commit()?;
    Ok(deleted > 0)
}

/// A function's policy statements for `qualifier` (`""`: the function itself), in the
/// order they were added.
pub(crate) fn policy(
    connection: &Connection,
    function: &FunctionName,
    qualifier: &str,
) -> Result<Vec<String>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT statement FROM function_policies
         WHERE function_name = ?1 AND qualifier = ?2 ORDER BY rowid",
    )?;
    let rows = statement
        .query_map(params![function.as_str(), qualifier], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(rows)
}

/// Adds a statement; `AlreadyExists` when the id is taken, `NotFound` without the function.
pub(crate) fn add_statement(
    connection: &mut Connection,
    function: &FunctionName,
    qualifier: &str,
    statement_id: &str,
    statement: &str,
    revision: &RevisionMove<'_>,
) -> Result<(), StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    move_revision(&tx, function, qualifier, revision)?;
    crate::db::require_function(&tx, function)?;
    // The version or alias the statement is for must still exist (it may have been deleted
    // since it was looked up, and a later one of the same name must not inherit this).
    if !qualifier.is_empty() {
        let target: bool = match qualifier.parse::<u64>() {
            Ok(number) => tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM function_versions WHERE function_name = ?1 AND version = ?2)",
                params![function.as_str(), version_i64(number)],
                |r| r.get(0),
            )?,
            Err(_) => tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM aliases WHERE function_name = ?1 AND name = ?2)",
                params![function.as_str(), qualifier],
                |r| r.get(0),
            )?,
        };
        if !target {
            return Err(StoreError::NotFound(format!("{function}:{qualifier}")));
        }
    }
    let inserted = tx.execute(
        "INSERT INTO function_policies (function_name, qualifier, statement_id, statement)
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        params![function.as_str(), qualifier, statement_id, statement],
    )?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(statement_id.to_owned()));
    }
    tx.commit()?;
    Ok(())
}

/// Removes a statement; `false` when there was none.
pub(crate) fn remove_statement(
    connection: &mut Connection,
    function: &FunctionName,
    qualifier: &str,
    statement_id: &str,
    revision: &RevisionMove<'_>,
) -> Result<bool, StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    move_revision(&tx, function, qualifier, revision)?;
    let removed = tx.execute(
        "DELETE FROM function_policies
         WHERE function_name = ?1 AND qualifier = ?2 AND statement_id = ?3",
        params![function.as_str(), qualifier, statement_id],
    )? > 0;
    if removed {
        tx.commit()?;
    }
    Ok(removed)
}

/// A policy change's effect on the function's revision: the change is refused unless the
/// revision is still `expected` (when given), and moves it to `new`.
#[derive(Debug, Clone, Copy)]
pub struct RevisionMove<'a> {
    /// The caller's `RevisionId` precondition.
    pub expected: Option<&'a str>,
    /// The revision after the change.
    pub new: &'a str,
}

/// For the function's own policy (`qualifier` empty), checks and moves `$LATEST`'s
/// revision inside the policy change's transaction; a version's or alias's policy leaves
/// it alone (the precondition is checked by the control plane).
fn move_revision(
    tx: &Transaction<'_>,
    function: &FunctionName,
    qualifier: &str,
    revision: &RevisionMove<'_>,
) -> Result<(), StoreError> {
    if !qualifier.is_empty() {
        return Ok(());
    }
    let current: Option<String> = tx
        .query_row(
            "SELECT revision_id FROM functions WHERE name = ?1",
            [function.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    let Some(current) = current else {
        return Err(StoreError::NotFound(function.to_string()));
    };
    if revision.expected.is_some_and(|e| e != current) {
        return Err(StoreError::RevisionMismatch(function.to_string()));
    }
    tx.execute(
        "UPDATE functions SET revision_id = ?2 WHERE name = ?1",
        params![function.as_str(), revision.new],
    )?;
    Ok(())
}

/// Drops the policy of a version or alias that is gone.
pub(crate) fn drop_policy(
    connection: &Connection,
    function: &FunctionName,
    qualifier: &str,
) -> Result<(), StoreError> {
    connection.execute(
        "DELETE FROM function_policies WHERE function_name = ?1 AND qualifier = ?2",
        params![function.as_str(), qualifier],
    )?;
    // The qualifier's settings (provisioned concurrency, event invoke configuration) go
    // with it.
    connection.execute(
        "DELETE FROM function_settings WHERE function_name = ?1 AND qualifier = ?2",
        params![function.as_str(), qualifier],
    )?;
    Ok(())
}
