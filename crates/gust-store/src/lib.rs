//! Gust's embedded state: function metadata in SQLite (WAL, versioned schema) and code
//! packages as content-addressed blobs on disk.
//!
//! This crate is the only one that knows the storage engine and the stored record format.
//! Callers hand in and get back `gust-model` types.

mod blobs;
mod db;
pub mod group_commit;
mod layers;
pub mod package;
mod record;
pub mod sqlite;
mod versions;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use gust_model::{Alias, CodeDigest, FunctionConfig, FunctionName, Tags};

pub use blobs::StagedBlob;
pub use db::SCHEMA_VERSION;
pub use package::{PackageError, PackageSummary};
pub use versions::RevisionMove;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused an operation.
    #[error("metadata database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A stored package could not be unpacked (stored before a check that now refuses it,
    /// or damaged on disk).
    #[error("unpack code: {0}")]
    Unpack(#[from] crate::package::PackageError),
    /// A layer version a function was to use is gone.
    #[error("layer version {0} is gone")]
    LayerGone(String),
    /// A published version an alias was to route to does not exist.
    #[error("version {0} not found")]
    VersionNotFound(u64),
    /// A version cannot be deleted while aliases route to it.
    #[error("version is used by aliases {aliases:?}")]
    VersionInUse {
        /// The aliases routing to it.
        aliases: Vec<String>,
    },
    /// A function with that name exists.
    #[error("function {0} already exists")]
    AlreadyExists(String),
    /// No function with that name.
    #[error("function {0} not found")]
    NotFound(String),
    /// The stored revision is not the one the change was based on.
    #[error("function {0} changed concurrently")]
    RevisionMismatch(String),
    /// A stored record could not be read back.
    #[error("stored record for {name} is unreadable: {reason}")]
    CorruptRecord {
        /// Which function.
        name: String,
        /// What was wrong.
        reason: String,
    },
    /// The database was written by a newer Gust.
    #[error("data directory schema version {found} is newer than this Gust supports ({supported}); upgrade Gust")]
    SchemaTooNew {
        /// Version on disk.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
}

impl StoreError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }
}

/// A page of functions and where the next one starts.
#[derive(Debug)]
pub struct FunctionPage {
    /// Functions in name order.
    pub functions: Vec<FunctionConfig>,
    /// The marker for the next page, when there is one.
    pub next_marker: Option<String>,
}

/// Totals for GetAccountSettings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountUsage {
    /// Bytes of code stored for all functions (each function's zip counted once).
    pub total_code_size: u64,
    /// Number of functions.
    pub function_count: u64,
}

/// The metadata database and the blob directory of one data directory.
///
/// Invariant: a blob is deleted only while the database lock is held and no function row
/// references it, and a staged blob is moved into place under the same lock right before
/// the row referencing it is written; so no committed row ever points at a missing blob.
#[derive(Debug)]
pub struct Store {
    db: Mutex<rusqlite::Connection>,
    blobs: blobs::BlobDir,
}

impl Store {
    /// Opens (creating and migrating as needed) the store under `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::io(format!("create {}", data_dir.display()), e))?;
        let connection = db::open(&data_dir.join("gust.db"))?;
        let blobs = blobs::BlobDir::open(&data_dir.join("code"))?;
        let store = Store {
            db: Mutex::new(connection),
            blobs,
        };
        store.collect_unpacked()?;
        store.collect_layers()?;
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions roll
        // back on drop), so a poisoned lock is still safe to use.
        self.db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Hashes and writes a package to a temporary file, outside any lock.
    pub fn stage_package(&self, zip: &[u8]) -> Result<StagedBlob, StoreError> {
        self.blobs.stage(zip)
    }

    /// Where a committed package lives on disk.
    pub fn code_path(&self, digest: &CodeDigest) -> PathBuf {
        self.blobs.path(digest)
    }

    /// Inserts a new function; exactly one of concurrent inserts of a name succeeds.
    pub fn insert_function(
        &self,
        config: &FunctionConfig,
        tags: &Tags,
        code: StagedBlob,
    ) -> Result<(), StoreError> {
        let mut connection = self.lock();
        self.layers_still_there(config)?;
        self.blobs.commit(code)?;
        let inserted = db::insert_function(&mut connection, config, tags);
        if inserted.is_err() {
            // The loser of a name race must not leave its package behind.
            self.collect_blob(&connection, &config.code.digest)?;
        }
        inserted
    }

    /// Reads a function and its tags.
    pub fn get_function(
        &self,
        name: &FunctionName,
    ) -> Result<Option<(FunctionConfig, Tags)>, StoreError> {
        db::get_function(&self.lock(), name)
    }

    /// Lists functions in name order, starting after `marker`.
    pub fn list_functions(
        &self,
        marker: Option<&str>,
        limit: usize,
    ) -> Result<FunctionPage, StoreError> {
        db::list_functions(&self.lock(), marker, limit)
    }

    /// Replaces a function's configuration if its stored revision is still `expected_revision`
    /// (compare-and-swap), committing `new_code` first when given and dropping the old
    /// package when nothing references it any more.
    pub fn replace_function(
        &self,
        config: &FunctionConfig,
        expected_revision: &str,
        new_code: Option<StagedBlob>,
    ) -> Result<(), StoreError> {
        let mut connection = self.lock();
        self.layers_still_there(config)?;
        let committed_new_code = new_code.is_some();
        if let Some(code) = new_code {
            self.blobs.commit(code)?;
        }
        let old_digest = match db::replace_function(&mut connection, config, expected_revision) {
            Ok(old) => old,
            Err(error) => {
                // A lost race must not leave the package it brought behind.
                if committed_new_code {
                    self.collect_blob(&connection, &config.code.digest)?;
                }
                return Err(error);
            }
        };
        if old_digest != config.code.digest {
            self.collect_blob(&connection, &old_digest)?;
        }
        Ok(())
    }

    /// Checks, under the lock, that every layer package `config` uses is still stored: a
    /// layer version deleted (and collected) since it was resolved must not leave a
    /// function pointing at nothing.
    fn layers_still_there(&self, config: &FunctionConfig) -> Result<(), StoreError> {
        match config
            .layers
            .iter()
            .find(|l| !self.blobs.path(&l.code.digest).is_file())
        {
            Some(gone) => Err(StoreError::LayerGone(gone.arn.clone())),
            None => Ok(()),
        }
    }

    /// Deletes a function with its versions and aliases; `Ok(false)` when there was none.
    pub fn delete_function(&self, name: &FunctionName) -> Result<bool, StoreError> {
        let mut connection = self.lock();
        match db::delete_function(&mut connection, name)? {
            Some(digests) => {
                for digest in digests {
                    self.collect_blob(&connection, &digest)?;
                }
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Publishes `latest` as the next version (built by `make` from its number), unless
    /// nothing changed since the newest version: then that one. `true` when new.
    pub fn publish_version(
        &self,
        latest: &FunctionConfig,
        make: impl FnOnce(u64) -> FunctionConfig,
    ) -> Result<(FunctionConfig, bool), StoreError> {
        versions::publish_version(&mut self.lock(), latest, make)
    }

    /// A published version.
    pub fn get_version(
        &self,
        name: &FunctionName,
        number: u64,
    ) -> Result<Option<FunctionConfig>, StoreError> {
        versions::get_version(&self.lock(), name, number)
    }

    /// Every published version of a function, oldest first.
    pub fn list_versions(&self, name: &FunctionName) -> Result<Vec<FunctionConfig>, StoreError> {
        versions::list_versions(&self.lock(), name)
    }

    /// Deletes a published version no alias routes to; `Ok(false)` when there was none.
    pub fn delete_version(&self, name: &FunctionName, number: u64) -> Result<bool, StoreError> {
        let mut connection = self.lock();
        match versions::delete_version(&mut connection, name, number)? {
            Some(digest) => {
                self.collect_blob(&connection, &digest)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Publishes the next version of layer `name` with `code`, built by `make` from its number.
    pub fn publish_layer_version(
        &self,
        name: &str,
        code: StagedBlob,
        policy_revision: &str,
        make: impl FnOnce(u64) -> gust_model::LayerVersion,
    ) -> Result<gust_model::LayerVersion, StoreError> {
        let mut connection = self.lock();
        let digest = code.code.digest;
        self.blobs.commit(code)?;
        let published = layers::publish(&mut connection, name, policy_revision, make);
        if published.is_err() {
            self.collect_blob(&connection, &digest)?;
        }
        published
    }

    /// A layer version (not deleted).
    pub fn get_layer_version(
        &self,
        name: &str,
        version: u64,
    ) -> Result<Option<gust_model::LayerVersion>, StoreError> {
        layers::get(&self.lock(), name, version)
    }

    /// A layer's versions (not deleted), newest first.
    pub fn list_layer_versions(
        &self,
        name: &str,
    ) -> Result<Vec<gust_model::LayerVersion>, StoreError> {
        layers::versions(&self.lock(), name)
    }

    /// Every layer version not deleted, by name, newest first within a layer.
    pub fn all_layer_versions(&self) -> Result<Vec<gust_model::LayerVersion>, StoreError> {
        layers::all(&self.lock())
    }

    /// Deletes a layer version (idempotent); functions using it keep its code.
    pub fn delete_layer_version(&self, name: &str, version: u64) -> Result<(), StoreError> {
        let mut connection = self.lock();
        if let Some(digest) = layers::delete(&mut connection, name, version)? {
            self.collect_blob(&connection, &digest)?;
        }
        Ok(())
    }

    /// Removes deleted layer versions no function uses any more (at start).
    fn collect_layers(&self) -> Result<(), StoreError> {
        let mut connection = self.lock();
        for digest in layers::collect_deleted(&mut connection)? {
            self.collect_blob(&connection, &digest)?;
        }
        Ok(())
    }

    /// A layer version's permission statements and policy revision.
    pub fn layer_version_policy(
        &self,
        name: &str,
        version: u64,
    ) -> Result<Option<(Vec<String>, String)>, StoreError> {
        layers::policy(&self.lock(), name, version)
    }

    /// Adds a permission statement to a layer version (`revisions`: the expected one, if
    /// any, and the new one); returns the new policy revision.
    pub fn add_layer_version_statement(
        &self,
        name: &str,
        version: u64,
        statement_id: &str,
        statement: &str,
        revisions: (Option<&str>, &str),
    ) -> Result<String, StoreError> {
        let change = layers::PolicyChange {
            name,
            version,
            statement_id,
            expected_revision: revisions.0,
            new_revision: revisions.1,
        };
        layers::add_statement(&mut self.lock(), &change, statement)
    }

    /// Removes a permission statement from a layer version (`revisions` as for adding).
    pub fn remove_layer_version_statement(
        &self,
        name: &str,
        version: u64,
        statement_id: &str,
        revisions: (Option<&str>, &str),
    ) -> Result<(), StoreError> {
        let change = layers::PolicyChange {
            name,
            version,
            statement_id,
            expected_revision: revisions.0,
            new_revision: revisions.1,
        };
        layers::remove_statement(&mut self.lock(), &change)
    }

    /// The layers `digests` unpacked in order into one tree, for `/opt` (shared, read-only).
    pub fn unpacked_layers(&self, digests: &[CodeDigest]) -> Result<PathBuf, StoreError> {
        self.blobs.layered(digests)
    }

    /// Bytes a stored package unpacks to.
    pub fn unzipped_size(&self, digest: &CodeDigest) -> Result<u64, StoreError> {
        let summary = package::inspect_file(&self.blobs.path(digest), u64::MAX)?;
        Ok(summary.unzipped_size)
    }

    /// A function setting for a qualifier (`""`: the function itself).
    pub fn function_setting(
        &self,
        function: &FunctionName,
        qualifier: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        db::get_setting(&self.lock(), function, qualifier, key)
    }

    /// One unqualified setting of every function that has it, by function name.
    pub fn settings_with_key(&self, key: &str) -> Result<Vec<(String, String)>, StoreError> {
        db::settings_with_key(&self.lock(), key)
    }

    /// Stores an event source mapping's record (insert or replace).
    pub fn put_mapping(
        &self,
        uuid: &str,
        function: &FunctionName,
        source_arn: &str,
        record: &str,
    ) -> Result<(), StoreError> {
        db::put_mapping(&mut self.lock(), uuid, function, source_arn, record)
    }

    /// Replaces an existing event source mapping's record; `false` when it is gone.
    pub fn update_mapping(
        &self,
        uuid: &str,
        function: &FunctionName,
        record: &str,
    ) -> Result<bool, StoreError> {
        db::update_mapping(&self.lock(), uuid, function, record)
    }

    /// Every event source mapping: (uuid, function, source ARN, record), oldest first.
    pub fn mappings(&self) -> Result<Vec<(String, String, String, String)>, StoreError> {
        db::mappings(&self.lock())
    }

    /// Removes an event source mapping; whether it existed.
    pub fn delete_mapping(&self, uuid: &str) -> Result<bool, StoreError> {
        db::delete_mapping(&self.lock(), uuid)
    }

    /// One setting wherever it is set: (function, qualifier, value).
    pub fn settings_everywhere(
        &self,
        key: &str,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        db::settings_everywhere(&self.lock(), key)
    }

    /// Every qualifier's value of one setting, by qualifier.
    pub fn function_settings_by_key(
        &self,
        function: &FunctionName,
        key: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        db::settings_by_key(&self.lock(), function, key)
    }

    /// Sets a function setting.
    pub fn put_function_setting(
        &self,
        function: &FunctionName,
        qualifier: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        db::put_setting(&mut self.lock(), function, qualifier, key, value)
    }

    /// Sets (or, for `None`, clears) several function settings in one transaction.
    pub fn put_function_settings(
        &self,
        function: &FunctionName,
        qualifier: &str,
        settings: &[(&str, Option<&str>)],
    ) -> Result<(), StoreError> {
        db::put_settings(&mut self.lock(), function, qualifier, settings)
    }

    /// A function's policy statements for a qualifier (`""`: the function itself).
    pub fn function_policy(
        &self,
        function: &FunctionName,
        qualifier: &str,
    ) -> Result<Vec<String>, StoreError> {
        versions::policy(&self.lock(), function, qualifier)
    }

    /// Adds a statement to a function's policy for a qualifier.
    pub fn add_function_statement(
        &self,
        function: &FunctionName,
        qualifier: &str,
        statement_id: &str,
        statement: &str,
        revision: &RevisionMove<'_>,
    ) -> Result<(), StoreError> {
        versions::add_statement(
            &mut self.lock(),
            function,
            qualifier,
            statement_id,
            statement,
            revision,
        )
    }

    /// Removes a statement from a function's policy; `Ok(false)` when there was none.
    pub fn remove_function_statement(
        &self,
        function: &FunctionName,
        qualifier: &str,
        statement_id: &str,
        revision: &RevisionMove<'_>,
    ) -> Result<bool, StoreError> {
        versions::remove_statement(
            &mut self.lock(),
            function,
            qualifier,
            statement_id,
            revision,
        )
    }

    /// Adds an alias; its versions must be published.
    pub fn insert_alias(&self, function: &FunctionName, alias: &Alias) -> Result<(), StoreError> {
        versions::insert_alias(&mut self.lock(), function, alias)
    }

    /// Reads an alias.
    pub fn get_alias(
        &self,
        function: &FunctionName,
        name: &str,
    ) -> Result<Option<Alias>, StoreError> {
        versions::get_alias(&self.lock(), function, name)
    }

    /// A function's aliases in name order.
    pub fn list_aliases(&self, function: &FunctionName) -> Result<Vec<Alias>, StoreError> {
        versions::list_aliases(&self.lock(), function)
    }

    /// Replaces an alias if its stored revision is still `expected_revision`.
    pub fn replace_alias(
        &self,
        function: &FunctionName,
        alias: &Alias,
        expected_revision: &str,
    ) -> Result<(), StoreError> {
        versions::replace_alias(&mut self.lock(), function, alias, expected_revision)
    }

    /// Deletes an alias; `Ok(false)` when there was none.
    pub fn delete_alias(&self, function: &FunctionName, name: &str) -> Result<bool, StoreError> {
        versions::delete_alias(&mut self.lock(), function, name)
    }

    /// Adds or overwrites tags; the function's revision becomes `revision`.
    pub fn put_tags(
        &self,
        name: &FunctionName,
        tags: &Tags,
        revision: &str,
    ) -> Result<(), StoreError> {
        db::put_tags(&mut self.lock(), name, tags, revision)
    }

    /// Removes tags (unknown keys are ignored); the function's revision becomes `revision`.
    pub fn remove_tags(
        &self,
        name: &FunctionName,
        keys: &[String],
        revision: &str,
    ) -> Result<(), StoreError> {
        db::remove_tags(&mut self.lock(), name, keys, revision)
    }

    /// The package's contents unpacked under `code/unpacked/<hex>` (once per digest; shared,
    /// read-only, by every environment running that code).
    pub fn unpacked_code(&self, digest: &CodeDigest) -> Result<PathBuf, StoreError> {
        self.blobs.unpacked(digest)
    }

    /// The code's and the layers' unpacked trees when both are there already: a cold start
    /// then needs no trip to a blocking thread (a stat each; `None`: unpack first).
    pub fn unpacked_already(
        &self,
        digest: &CodeDigest,
        layers: &[CodeDigest],
    ) -> Option<(PathBuf, Option<PathBuf>)> {
        let code = self.blobs.unpacked_already(digest)?;
        if layers.is_empty() {
            return Some((code, None));
        }
        Some((code, Some(self.blobs.layered_already(layers)?)))
    }

    /// Function count and code size.
    pub fn account_usage(&self) -> Result<AccountUsage, StoreError> {
        db::account_usage(&self.lock())
    }

    /// Removes unpacked code no function references any more. Done at start only, because a
    /// running environment may still be reading the old code of a function being updated.
    fn collect_unpacked(&self) -> Result<(), StoreError> {
        let connection = self.lock();
        for digest in self.blobs.unpacked_digests()? {
            if !db::is_code_referenced(&connection, &digest)? {
                self.blobs.remove_unpacked(&digest)?;
            }
        }
        // Packages nothing references any more (a layer copy a function stopped using, an
        // import whose function was never created): removed at start, like unpacked code.
        for digest in self.blobs.digests()? {
            self.collect_blob(&connection, &digest)?;
        }
        Ok(())
    }

    /// Stores a package at once (a copy of another account's layer version, before the
    /// function that uses it is written); what no record ends up referencing is removed at
    /// the next start.
    pub fn import_package(&self, zip: &[u8]) -> Result<gust_model::CodeRef, StoreError> {
        let staged = self.blobs.stage(zip)?;
        let code = staged.code.clone();
        let _connection = self.lock();
        self.blobs.commit(staged)?;
        Ok(code)
    }

    /// A stored package's bytes.
    pub fn read_package(&self, digest: &CodeDigest) -> Result<Vec<u8>, StoreError> {
        std::fs::read(self.blobs.path(digest)).map_err(|e| StoreError::io("read package", e))
    }

    fn collect_blob(
        &self,
        connection: &rusqlite::Connection,
        digest: &CodeDigest,
    ) -> Result<(), StoreError> {
        if !db::is_code_referenced(connection, digest)? {
            self.blobs.remove(digest)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use gust_model::{CodeRef, FunctionUpdate, RuntimeCatalog, RuntimeFamily};
    use time::OffsetDateTime;

    use super::*;

    fn config(store: &Store, name: &str, zip: &[u8]) -> (FunctionConfig, StagedBlob) {
        let staged = store.stage_package(zip).unwrap();
        let code: CodeRef = staged.code.clone();
        let settings = FunctionUpdate {
            runtime: Some("python3.12".into()),
            role: Some("arn:aws:iam::123456789012:role/r".into()),
            handler: Some("app.handler".into()),
            environment: Some([("K1".to_string(), "v".to_string())].into()),
            ..FunctionUpdate::default()
        };
        let config = FunctionConfig::create(
            FunctionName::parse(name).unwrap(),
            &settings,
            code,
            &RuntimeCatalog::new(vec![RuntimeFamily::Python]),
            format!("rev-{name}"),
            OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        )
        .unwrap();
        (config, staged)
    }

    #[test]
    fn functions_round_trip_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (f, staged) = config(&store, "f", b"zip-bytes");
        let tags: Tags = [("team".to_string(), "a".to_string())].into();
        store.insert_function(&f, &tags, staged).unwrap();
        assert!(store.code_path(&f.code.digest).exists());
        drop(store);

        let store = Store::open(dir.path()).unwrap();
        let (got, got_tags) = store.get_function(&f.name).unwrap().unwrap();
        assert_eq!(got, f);
        assert_eq!(got_tags, tags);
        assert_eq!(
            store.account_usage().unwrap(),
            AccountUsage {
                total_code_size: 9,
                function_count: 1
            }
        );
    }

    #[test]
    fn exactly_one_insert_of_a_name_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (f, staged) = config(&store, "f", b"one");
        store.insert_function(&f, &Tags::new(), staged).unwrap();
        let (f2, staged2) = config(&store, "f", b"two");
        assert!(matches!(
            store.insert_function(&f2, &Tags::new(), staged2),
            Err(StoreError::AlreadyExists(_))
        ));
        // The losing package is not left behind: only "one" is stored.
        assert_eq!(
            std::fs::read_dir(dir.path().join("code/sha256"))
                .unwrap()
                .count(),
            1
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("code/staging"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn replace_is_compare_and_swap_and_collects_old_code() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (f, staged) = config(&store, "f", b"old");
        store.insert_function(&f, &Tags::new(), staged).unwrap();
        let old_path = store.code_path(&f.code.digest);

        let new_staged = store.stage_package(b"new").unwrap();
        let mut changed = f.clone();
        changed.code = new_staged.code.clone();
        changed.revision_id = "rev-2".into();
        let stale = store.replace_function(&changed, "not-the-revision", None);
        assert!(matches!(stale, Err(StoreError::RevisionMismatch(_))));
        store
            .replace_function(&changed, "rev-f", Some(new_staged))
            .unwrap();
        assert!(!old_path.exists(), "unreferenced package is removed");
        assert!(store.code_path(&changed.code.digest).exists());
        assert_eq!(
            store.get_function(&f.name).unwrap().unwrap().0.revision_id,
            "rev-2"
        );
    }

    #[test]
    fn shared_code_is_kept_until_the_last_reference_goes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, sa) = config(&store, "a", b"same");
        let (b, sb) = config(&store, "b", b"same");
        store.insert_function(&a, &Tags::new(), sa).unwrap();
        store.insert_function(&b, &Tags::new(), sb).unwrap();
        assert!(store.delete_function(&a.name).unwrap());
        assert!(store.code_path(&b.code.digest).exists());
        assert!(store.delete_function(&b.name).unwrap());
        assert!(!store.code_path(&b.code.digest).exists());
        assert!(!store.delete_function(&b.name).unwrap());
    }

    #[test]
    fn code_is_unpacked_once_and_collected_at_start_when_unreferenced() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        writer
            .start_file("app.py", zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(b"X = 1\n").unwrap();
        let zip = writer.finish().unwrap().into_inner();
        let (f, staged) = config(&store, "f", &zip);
        store.insert_function(&f, &Tags::new(), staged).unwrap();
        assert_eq!(store.unpacked_already(&f.code.digest, &[]), None);
        let unpacked = store.unpacked_code(&f.code.digest).unwrap();
        assert_eq!(
            std::fs::read_to_string(unpacked.join("app.py")).unwrap(),
            "X = 1\n"
        );
        assert_eq!(store.unpacked_code(&f.code.digest).unwrap(), unpacked);
        // Unpacked now: found without unpacking; with layers only once they are too.
        assert_eq!(
            store.unpacked_already(&f.code.digest, &[]),
            Some((unpacked.clone(), None))
        );
        assert_eq!(
            store.unpacked_already(&f.code.digest, &[f.code.digest]),
            None
        );
        let layers = store.unpacked_layers(&[f.code.digest]).unwrap();
        assert_eq!(
            store.unpacked_already(&f.code.digest, &[f.code.digest]),
            Some((unpacked.clone(), Some(layers)))
        );
        store.delete_function(&f.name).unwrap();
        assert!(unpacked.exists(), "kept while the server runs");
        drop(store);
        drop(Store::open(dir.path()).unwrap());
        assert!(!unpacked.exists(), "collected at the next start");
    }

    #[test]
    fn paging_and_tags() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for name in ["c", "a", "b"] {
            let (f, s) = config(&store, name, name.as_bytes());
            store.insert_function(&f, &Tags::new(), s).unwrap();
        }
        let page = store.list_functions(None, 2).unwrap();
        let names: Vec<_> = page.functions.iter().map(|f| f.name.to_string()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(page.next_marker.as_deref(), Some("b"));
        let page = store.list_functions(Some("b"), 2).unwrap();
        assert_eq!(page.functions.len(), 1);
        assert_eq!(page.next_marker, None);

        let name = FunctionName::parse("a").unwrap();
        store
            .put_tags(&name, &[("k".to_string(), "1".to_string())].into(), "r2")
            .unwrap();
        store
            .put_tags(&name, &[("k".to_string(), "2".to_string())].into(), "r3")
            .unwrap();
        assert_eq!(store.get_function(&name).unwrap().unwrap().1["k"], "2");
        store
            .remove_tags(&name, &["k".into(), "unknown".into()], "r4")
            .unwrap();
        assert!(store.get_function(&name).unwrap().unwrap().1.is_empty());
        let missing = FunctionName::parse("zz").unwrap();
        assert!(matches!(
            store.put_tags(&missing, &Tags::new(), "r5"),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let connection = rusqlite::Connection::open(dir.path().join("gust.db")).unwrap();
        connection
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(connection);
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::SchemaTooNew { .. })
        ));
    }
}
