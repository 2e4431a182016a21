//! The embedded store: metadata in one SQLite database (WAL, `synchronous=FULL`) written by
//! one thread with group commit, and each body in its own file under the objects
//! directory, named by a random id (never by its key, so no key can reach outside the
//! directory): `objects/<first two hex digits>/<id>`, written as `<id>.tmp` first.
//!
//! A write is durable in this order: the body is written and fsynced as `<id>.tmp`,
//! renamed to `<id>` and the directory fsynced; then the metadata row that points at it is
//! committed. A crash before the commit leaves a body no row references, which the next
//! start removes (as it removes every `.tmp` file). Replaced and deleted bodies are removed
//! after the commit that dropped them (or, after a crash, at the next start).

use std::collections::HashSet;
use std::io::Write;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use gust_store::group_commit::{GroupCommit, RunError};
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::S3Error;
use crate::model::{
    BucketInfo, ClaimedEvent, ObjectEvent, ObjectInfo, ObjectMeta, PartInfo, Tags, UploadInfo,
};
use crate::store::{EventDraft, ObjectStore, ObjectWrite, Staged, StoredObject, StoredPart};

/// The schema's version (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    notification TEXT
);
CREATE INDEX IF NOT EXISTS buckets_account ON buckets(account, name);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL,
    key BLOB NOT NULL,
    body TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    modified_ms INTEGER NOT NULL,
    meta TEXT NOT NULL,
    tags TEXT NOT NULL,
    parts INTEGER,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key BLOB NOT NULL,
    initiated_ms INTEGER NOT NULL,
    meta TEXT NOT NULL,
    tags TEXT NOT NULL,
    initiator TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_bucket ON uploads(bucket, key, initiated_ms);
CREATE TABLE IF NOT EXISTS parts (
    upload TEXT NOT NULL,
    number INTEGER NOT NULL,
    body TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    modified_ms INTEGER NOT NULL,
    PRIMARY KEY (upload, number)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL,
    claimed_until_ms INTEGER NOT NULL DEFAULT 0
);
";

/// What a start found and cleared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    /// Temporary files of interrupted writes.
    pub temporary: usize,
    /// Bodies no row referenced (written before a crash, or replaced before one).
    pub orphans: usize,
}

/// The embedded store.
#[derive(Debug)]
pub struct LocalStore {
    writer: GroupCommit,
    reader: Mutex<Connection>,
    objects: PathBuf,
    collected: Collected,
}

impl LocalStore {
    /// Opens (creating) the database at `db` and the body directory `objects`, and clears
    /// what an interrupted run left: temporary files and bodies no row references.
    pub fn open(db: &Path, objects: &Path) -> Result<Self, S3Error> {
        let open = || {
            gust_store::sqlite::open_versioned(db, "s3", SCHEMA, SCHEMA_VERSION)
                .map_err(|e| e.into_error(S3Error::Internal))
        };
        let reader = open()?;
        let writer = open()?;
        std::fs::create_dir_all(objects)?;
        for shard in 0..=255u8 {
            std::fs::create_dir_all(objects.join(hex::encode([shard])))?;
        }
        sync_dir(objects)?;
        let collected = collect(&reader, objects)?;
        if collected != Collected::default() {
            tracing::info!(
                temporary = collected.temporary,
                orphans = collected.orphans,
                "removed object bodies an interrupted run left"
            );
        }
        let writer = GroupCommit::start(writer, "gust-s3-writer")
            .map_err(|e| S3Error::internal(format!("cannot start the writer: {e}")))?;
        Ok(LocalStore {
            writer,
            reader: Mutex::new(reader),
            objects: objects.to_owned(),
            collected,
        })
    }

    /// What the start cleared.
    pub fn collected(&self) -> Collected {
        self.collected
    }

    /// Where a body lies (for tests and tools: the body of a committed object).
    pub fn body_path(&self, id: &str) -> Option<PathBuf> {
        body_id_ok(id).then(|| self.objects.join(&id[..2]).join(id))
    }

    fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce(&Connection) -> Result<R, S3Error> + Send + 'static,
    ) -> Result<R, S3Error> {
        self.writer.run(job).map_err(|error| match error {
            RunError::Job(error) => error,
            RunError::Commit(cause) => S3Error::Internal(format!("commit: {cause}")),
            RunError::Stopped => S3Error::Internal("the object store has stopped".into()),
        })
    }

    fn read<R>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> Result<R, S3Error> {
        let connection = self
            .reader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(f(&connection)?)
    }

    fn remove_bodies(&self, ids: &[String]) {
        for id in ids {
            self.discard_body(id);
        }
    }
}

/// A body id: 32 lower-case hex digits (so a path built from it stays in its shard).
fn body_id_ok(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn new_body_id() -> Result<String, S3Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(S3Error::internal)?;
    Ok(hex::encode(bytes))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Removes temporary files and unreferenced bodies.
fn collect(connection: &Connection, objects: &Path) -> Result<Collected, S3Error> {
    let mut referenced: HashSet<String> = HashSet::new();
    for sql in ["SELECT body FROM objects", "SELECT body FROM parts"] {
        let mut statement = connection.prepare(sql)?;
        let rows = statement.query_map([], |r| r.get::<_, String>(0))?;
        for row in rows {
            referenced.insert(row?);
        }
    }
    let mut collected = Collected::default();
    for shard in std::fs::read_dir(objects)? {
        let shard = shard?;
        if !shard.file_type()?.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(shard.path())? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                std::fs::remove_file(entry.path())?;
                collected.temporary += 1;
            } else if !referenced.contains(name.as_ref()) {
                std::fs::remove_file(entry.path())?;
                collected.orphans += 1;
            }
        }
    }
    Ok(collected)
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".into())
}

fn key_text(bytes: Vec<u8>) -> rusqlite::Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(e))
    })
}

const BUCKET_COLUMNS: &str = "name, account, region, created_ms";

fn bucket_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<BucketInfo> {
    Ok(BucketInfo {
        name: row.get(0)?,
        account: row.get(1)?,
        region: row.get(2)?,
        created: gust_store::sqlite::at(row.get(3)?),
    })
}

const OBJECT_COLUMNS: &str =
    "o.bucket, o.key, o.body, o.size, o.etag, o.modified_ms, o.meta, o.tags, o.parts, b.account";

fn object_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredObject> {
    let meta: String = row.get(6)?;
    let tags: String = row.get(7)?;
    Ok(StoredObject {
        info: ObjectInfo {
            bucket: row.get(0)?,
            key: key_text(row.get(1)?)?,
            size: row.get::<_, i64>(3)? as u64,
            etag: row.get(4)?,
            last_modified: gust_store::sqlite::at(row.get(5)?),
            meta: gust_store::sqlite::json(&meta)?,
            tags: gust_store::sqlite::json(&tags)?,
            parts: row.get::<_, Option<i64>>(8)?.map(|p| p as u32),
            owner: row.get(9)?,
        },
        body: row.get(2)?,
    })
}

const UPLOAD_COLUMNS: &str =
    "u.id, u.bucket, u.key, u.initiated_ms, u.meta, u.tags, u.initiator, b.account";

fn upload_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<UploadInfo> {
    let meta: String = row.get(4)?;
    let tags: String = row.get(5)?;
    Ok(UploadInfo {
        upload_id: row.get(0)?,
        bucket: row.get(1)?,
        key: key_text(row.get(2)?)?,
        initiated: gust_store::sqlite::at(row.get(3)?),
        meta: gust_store::sqlite::json::<ObjectMeta>(&meta)?,
        tags: gust_store::sqlite::json::<Tags>(&tags)?,
        initiator: row.get(6)?,
        owner: row.get(7)?,
    })
}

fn part_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredPart> {
    Ok(StoredPart {
        info: PartInfo {
            number: row.get::<_, i64>(0)? as u32,
            size: row.get::<_, i64>(1)? as u64,
            etag: row.get(2)?,
            last_modified: gust_store::sqlite::at(row.get(3)?),
        },
        body: row.get(4)?,
    })
}

/// Records `event` for an object of `bucket` if the bucket has a notification
/// configuration, with the next sequencer.
fn record_event(
    connection: &Connection,
    bucket: &str,
    key: &str,
    size: u64,
    etag: &str,
    draft: &EventDraft,
) -> Result<(), S3Error> {
    let found: Option<(String, String, Option<String>)> = connection
        .query_row(
            "SELECT account, region, notification FROM buckets WHERE name = ?1",
            [bucket],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((account, region, Some(_))) = found else {
        return Ok(());
    };
    let sequence: i64 = connection.query_row(
        "INSERT INTO counters (name, value) VALUES ('sequencer', 1)
         ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
        [],
        |r| r.get(0),
    )?;
    let event = ObjectEvent {
        account,
        region,
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        size,
        etag: etag.to_owned(),
        version_id: None,
        sequencer: format!("{sequence:016X}"),
        event_name: draft.name.to_owned(),
        time_ms: draft.time_ms,
        requester_account: draft.requester.account.clone(),
        requester_principal: draft.requester.principal.clone(),
        source_ip: draft.requester.source_ip.clone(),
    };
    connection.execute("INSERT INTO events (event) VALUES (?1)", [to_json(&event)])?;
    Ok(())
}

fn bucket_exists(connection: &Connection, bucket: &str) -> Result<bool, S3Error> {
    Ok(connection
        .query_row(
            "SELECT 1 FROM buckets WHERE name = ?1",
            [bucket],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

impl ObjectStore for LocalStore {
    fn stage(&self) -> Result<Staged, S3Error> {
        let id = new_body_id()?;
        let path = self.objects.join(&id[..2]).join(format!("{id}.tmp"));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .open(&path)?;
        Ok(Staged::new(id, file, path))
    }

    fn seal(&self, mut staged: Staged) -> Result<String, S3Error> {
        staged.file.flush()?;
        staged.file.sync_all()?;
        let shard = self.objects.join(&staged.id[..2]);
        std::fs::rename(&staged.temp_path, shard.join(&staged.id))?;
        staged.mark_sealed();
        if let Err(error) = sync_dir(&shard) {
            self.discard_body(&staged.id);
            return Err(error.into());
        }
        Ok(staged.id.clone())
    }

    fn open_body(&self, id: &str) -> Result<Option<std::fs::File>, S3Error> {
        let Some(path) = self.body_path(id) else {
            return Ok(None);
        };
        match std::fs::File::open(path) {
            Ok(file) => Ok(Some(file)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    fn discard_body(&self, id: &str) {
        if let Some(path) = self.body_path(id) {
            if let Err(error) = std::fs::remove_file(&path) {
                if error.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(%error, path = %path.display(), "cannot remove an object body");
                }
            }
        }
    }

    fn create_bucket(&self, bucket: &BucketInfo) -> Result<(), S3Error> {
        let bucket = bucket.clone();
        self.run(move |c| {
            let owner: Option<String> = c
                .query_row("SELECT account FROM buckets WHERE name = ?1", [&bucket.name], |r| r.get(0))
                .optional()?;
            match owner {
                Some(owner) if owner == bucket.account => Err(S3Error::BucketAlreadyOwnedByYou),
                Some(_) => Err(S3Error::BucketAlreadyExists),
                None => {
                    c.execute(
                        "INSERT INTO buckets (name, account, region, created_ms) VALUES (?1, ?2, ?3, ?4)",
                        params![
                            bucket.name,
                            bucket.account,
                            bucket.region,
                            gust_store::sqlite::ms(bucket.created)
                        ],
                    )?;
                    Ok(())
                }
            }
        })
    }

    fn bucket(&self, name: &str) -> Result<Option<BucketInfo>, S3Error> {
        self.read(|c| {
            c.query_row(
                &format!("SELECT {BUCKET_COLUMNS} FROM buckets WHERE name = ?1"),
                [name],
                bucket_row,
            )
            .optional()
        })
    }

    fn buckets(&self, account: &str) -> Result<Vec<BucketInfo>, S3Error> {
        self.read(|c| {
            let mut statement = c.prepare(&format!(
                "SELECT {BUCKET_COLUMNS} FROM buckets WHERE account = ?1 ORDER BY name"
            ))?;
            let rows = statement.query_map([account], bucket_row)?;
            rows.collect()
        })
    }

    fn delete_bucket(&self, name: &str) -> Result<(), S3Error> {
        let name = name.to_owned();
        let bodies = self.run(move |c| {
            if !bucket_exists(c, &name)? {
                return Err(S3Error::NoSuchBucket);
            }
            let any: Option<i64> = c
                .query_row("SELECT 1 FROM objects WHERE bucket = ?1 LIMIT 1", [&name], |r| r.get(0))
                .optional()?;
            if any.is_some() {
                return Err(S3Error::BucketNotEmpty);
            }
            let mut bodies = Vec::new();
            {
                let mut statement = c.prepare(
                    "SELECT p.body FROM parts p JOIN uploads u ON u.id = p.upload WHERE u.bucket = ?1",
                )?;
                let rows = statement.query_map([&name], |r| r.get::<_, String>(0))?;
                for row in rows {
                    bodies.push(row?);
                }
            }
            c.execute(
                "DELETE FROM parts WHERE upload IN (SELECT id FROM uploads WHERE bucket = ?1)",
                [&name],
            )?;
            c.execute("DELETE FROM uploads WHERE bucket = ?1", [&name])?;
            c.execute("DELETE FROM buckets WHERE name = ?1", [&name])?;
            Ok(bodies)
        })?;
        self.remove_bodies(&bodies);
        Ok(())
    }

    fn set_notification(&self, bucket: &str, config: Option<&str>) -> Result<(), S3Error> {
        let (bucket, config) = (bucket.to_owned(), config.map(str::to_owned));
        self.run(move |c| {
            let changed = c.execute(
                "UPDATE buckets SET notification = ?2 WHERE name = ?1",
                params![bucket, config],
            )?;
            if changed == 0 {
                return Err(S3Error::NoSuchBucket);
            }
            Ok(())
        })
    }

    fn notification(&self, bucket: &str) -> Result<Option<String>, S3Error> {
        let found: Option<Option<String>> = self.read(|c| {
            c.query_row(
                "SELECT notification FROM buckets WHERE name = ?1",
                [bucket],
                |r| r.get(0),
            )
            .optional()
        })?;
        found.ok_or(S3Error::NoSuchBucket)
    }

    fn object(&self, bucket: &str, key: &str) -> Result<Option<StoredObject>, S3Error> {
        self.read(|c| {
            c.query_row(
                &format!(
                    "SELECT {OBJECT_COLUMNS} FROM objects o JOIN buckets b ON b.name = o.bucket
                     WHERE o.bucket = ?1 AND o.key = ?2"
                ),
                params![bucket, key.as_bytes()],
                object_row,
            )
            .optional()
        })
    }

    fn put_object(&self, write: ObjectWrite) -> Result<(), S3Error> {
        let new_body = write.object.body.clone();
        let result = self.run(move |c| {
            let object = &write.object;
            let info = &object.info;
            // The bucket must still be the one the write was checked against: deleted and
            // created again by another account while the body arrived, it is not.
            let owner: Option<String> = c
                .query_row(
                    "SELECT account FROM buckets WHERE name = ?1",
                    [&info.bucket],
                    |r| r.get(0),
                )
                .optional()?;
            match owner {
                None => return Err(S3Error::NoSuchBucket),
                Some(owner) if owner != info.owner => return Err(S3Error::AccessDenied),
                Some(_) => {}
            }
            let current: Option<(String, String)> = c
                .query_row(
                    "SELECT body, etag FROM objects WHERE bucket = ?1 AND key = ?2",
                    params![info.bucket, info.key.as_bytes()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            write
                .condition
                .check(current.as_ref().map(|(_, etag)| etag.as_str()))?;
            let mut removed: Vec<String> = current.map(|(body, _)| body).into_iter().collect();
            if let Some(completion) = &write.completion {
                let mut statement = c.prepare(
                    "SELECT number, size, etag, modified_ms, body FROM parts WHERE upload = ?1",
                )?;
                let parts: Vec<StoredPart> = statement
                    .query_map([&completion.upload_id], part_row)?
                    .collect::<rusqlite::Result<_>>()?;
                let exists: bool = c
                    .query_row(
                        "SELECT 1 FROM uploads WHERE id = ?1",
                        [&completion.upload_id],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some();
                if !exists {
                    return Err(S3Error::NoSuchUpload);
                }
                for (number, body) in &completion.parts {
                    if !parts
                        .iter()
                        .any(|p| p.info.number == *number && &p.body == body)
                    {
                        // A part was uploaded again meanwhile.
                        return Err(S3Error::InvalidPart);
                    }
                }
                removed.extend(parts.into_iter().map(|p| p.body));
                c.execute(
                    "DELETE FROM parts WHERE upload = ?1",
                    [&completion.upload_id],
                )?;
                c.execute("DELETE FROM uploads WHERE id = ?1", [&completion.upload_id])?;
            }
            c.execute(
                "INSERT INTO objects (bucket, key, body, size, etag, modified_ms, meta, tags, parts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT(bucket, key) DO UPDATE SET body = excluded.body, size = excluded.size,
                   etag = excluded.etag, modified_ms = excluded.modified_ms, meta = excluded.meta,
                   tags = excluded.tags, parts = excluded.parts",
                params![
                    info.bucket,
                    info.key.as_bytes(),
                    object.body,
                    info.size as i64,
                    info.etag,
                    gust_store::sqlite::ms(info.last_modified),
                    to_json(&info.meta),
                    to_json(&info.tags),
                    info.parts.map(i64::from),
                ],
            )?;
            record_event(
                c,
                &info.bucket,
                &info.key,
                info.size,
                &info.etag,
                &write.event,
            )?;
            Ok(removed)
        });
        match result {
            Ok(removed) => {
                self.remove_bodies(&removed);
                Ok(())
            }
            Err(error) => {
                self.discard_body(&new_body);
                Err(error)
            }
        }
    }

    fn delete_objects(
        &self,
        bucket: &str,
        keys: &[String],
        event: &EventDraft,
    ) -> Result<Vec<bool>, S3Error> {
        let (bucket, keys, event) = (bucket.to_owned(), keys.to_vec(), event.clone());
        let (existed, bodies) = self.run(move |c| {
            if !bucket_exists(c, &bucket)? {
                return Err(S3Error::NoSuchBucket);
            }
            let mut existed = Vec::with_capacity(keys.len());
            let mut bodies = Vec::new();
            for key in &keys {
                let body: Option<String> = c
                    .query_row(
                        "DELETE FROM objects WHERE bucket = ?1 AND key = ?2 RETURNING body",
                        params![bucket, key.as_bytes()],
                        |r| r.get(0),
                    )
                    .optional()?;
                existed.push(body.is_some());
                if let Some(body) = body {
                    bodies.push(body);
                    record_event(c, &bucket, key, 0, "", &event)?;
                }
            }
            Ok((existed, bodies))
        })?;
        self.remove_bodies(&bodies);
        Ok(existed)
    }

    fn list_objects(
        &self,
        bucket: &str,
        from: Bound<&[u8]>,
        below: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<ObjectInfo>, S3Error> {
        let (lower_op, lower): (&str, &[u8]) = match from {
            Bound::Included(k) => (">=", k),
            Bound::Excluded(k) => (">", k),
            Bound::Unbounded => (">=", b""),
        };
        let upper = below.map_or("", |_| "AND o.key < ?3");
        let sql = format!(
            "SELECT {OBJECT_COLUMNS} FROM objects o JOIN buckets b ON b.name = o.bucket
             WHERE o.bucket = ?1 AND o.key {lower_op} ?2 {upper} ORDER BY o.key LIMIT ?4"
        );
        self.read(|c| {
            let mut statement = c.prepare(&sql)?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = match below {
                Some(below) => {
                    statement.query_map(params![bucket, lower, below, limit], object_row)?
                }
                None => statement.query_map(
                    params![bucket, lower, rusqlite::types::Null, limit],
                    object_row,
                )?,
            };
            rows.map(|r| r.map(|o| o.info)).collect()
        })
    }

    fn set_tags(
        &self,
        bucket: &str,
        key: &str,
        tags: &Tags,
        event: &EventDraft,
    ) -> Result<(), S3Error> {
        let (bucket, key, tags, event) = (
            bucket.to_owned(),
            key.to_owned(),
            tags.clone(),
            event.clone(),
        );
        self.run(move |c| {
            let found: Option<(i64, String)> = c
                .query_row(
                    "UPDATE objects SET tags = ?3 WHERE bucket = ?1 AND key = ?2 RETURNING size, etag",
                    params![bucket, key.as_bytes(), to_json(&tags)],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((size, etag)) = found else {
                return Err(S3Error::NoSuchKey);
            };
            record_event(c, &bucket, &key, size as u64, &etag, &event)
        })
    }

    fn create_upload(&self, upload: &UploadInfo) -> Result<(), S3Error> {
        let upload = upload.clone();
        self.run(move |c| {
            if !bucket_exists(c, &upload.bucket)? {
                return Err(S3Error::NoSuchBucket);
            }
            c.execute(
                "INSERT INTO uploads (id, bucket, key, initiated_ms, meta, tags, initiator)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    upload.upload_id,
                    upload.bucket,
                    upload.key.as_bytes(),
                    gust_store::sqlite::ms(upload.initiated),
                    to_json(&upload.meta),
                    to_json(&upload.tags),
                    upload.initiator,
                ],
            )?;
            Ok(())
        })
    }

    fn upload(&self, upload_id: &str) -> Result<Option<UploadInfo>, S3Error> {
        self.read(|c| {
            c.query_row(
                &format!(
                    "SELECT {UPLOAD_COLUMNS} FROM uploads u JOIN buckets b ON b.name = u.bucket
                     WHERE u.id = ?1"
                ),
                [upload_id],
                upload_row,
            )
            .optional()
        })
    }

    fn put_part(&self, upload_id: &str, part: StoredPart) -> Result<(), S3Error> {
        let new_body = part.body.clone();
        let upload_id = upload_id.to_owned();
        let result = self.run(move |c| {
            let exists = c
                .query_row("SELECT 1 FROM uploads WHERE id = ?1", [&upload_id], |_| {
                    Ok(())
                })
                .optional()?
                .is_some();
            if !exists {
                return Err(S3Error::NoSuchUpload);
            }
            let replaced: Option<String> = c
                .query_row(
                    "SELECT body FROM parts WHERE upload = ?1 AND number = ?2",
                    params![upload_id, part.info.number],
                    |r| r.get(0),
                )
                .optional()?;
            c.execute(
                "INSERT INTO parts (upload, number, body, size, etag, modified_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(upload, number) DO UPDATE SET body = excluded.body,
                   size = excluded.size, etag = excluded.etag, modified_ms = excluded.modified_ms",
                params![
                    upload_id,
                    part.info.number,
                    part.body,
                    part.info.size as i64,
                    part.info.etag,
                    gust_store::sqlite::ms(part.info.last_modified),
                ],
            )?;
            Ok(replaced)
        });
        match result {
            Ok(replaced) => {
                self.remove_bodies(&replaced.into_iter().collect::<Vec<_>>());
                Ok(())
            }
            Err(error) => {
                self.discard_body(&new_body);
                Err(error)
            }
        }
    }

    fn parts(&self, upload_id: &str) -> Result<Vec<StoredPart>, S3Error> {
        self.read(|c| {
            let mut statement = c.prepare(
                "SELECT number, size, etag, modified_ms, body FROM parts WHERE upload = ?1 ORDER BY number",
            )?;
            let rows = statement.query_map([upload_id], part_row)?;
            rows.collect()
        })
    }

    fn abort_upload(&self, upload_id: &str) -> Result<(), S3Error> {
        let upload_id = upload_id.to_owned();
        let bodies = self.run(move |c| {
            let deleted = c.execute("DELETE FROM uploads WHERE id = ?1", [&upload_id])?;
            if deleted == 0 {
                return Err(S3Error::NoSuchUpload);
            }
            let mut statement = c.prepare("DELETE FROM parts WHERE upload = ?1 RETURNING body")?;
            let bodies: Vec<String> = statement
                .query_map([&upload_id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(bodies)
        })?;
        self.remove_bodies(&bodies);
        Ok(())
    }

    fn uploads(&self, bucket: &str) -> Result<Vec<UploadInfo>, S3Error> {
        self.read(|c| {
            let mut statement = c.prepare(&format!(
                "SELECT {UPLOAD_COLUMNS} FROM uploads u JOIN buckets b ON b.name = u.bucket
                 WHERE u.bucket = ?1 ORDER BY u.key, u.initiated_ms, u.id"
            ))?;
            let rows = statement.query_map([bucket], upload_row)?;
            rows.collect()
        })
    }

    fn claim_events(
        &self,
        now_ms: i64,
        max: usize,
        lease_ms: i64,
    ) -> Result<Vec<ClaimedEvent>, S3Error> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.run(move |c| {
            let mut statement = c.prepare(
                "UPDATE events SET claimed_until_ms = ?1
                 WHERE id IN (SELECT id FROM events WHERE claimed_until_ms <= ?2 ORDER BY id LIMIT ?3)
                 RETURNING id, event",
            )?;
            let rows = statement.query_map(params![now_ms + lease_ms, now_ms, max], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut claimed = Vec::new();
            for row in rows {
                let (id, text) = row?;
                let event: ObjectEvent = gust_store::sqlite::json(&text)?;
                claimed.push(ClaimedEvent { id, event });
            }
            claimed.sort_by_key(|e| e.id);
            Ok(claimed)
        })
    }

    fn ack_events(&self, ids: &[i64]) -> Result<(), S3Error> {
        let ids = ids.to_vec();
        self.run(move |c| {
            let mut statement = c.prepare("DELETE FROM events WHERE id = ?1")?;
            for id in ids {
                statement.execute([id])?;
            }
            Ok(())
        })
    }

    fn release_events(&self) -> Result<(), S3Error> {
        self.run(|c| {
            c.execute(
                "UPDATE events SET claimed_until_ms = 0 WHERE claimed_until_ms != 0",
                [],
            )?;
            Ok(())
        })
    }

    fn pending_events(&self) -> Result<u64, S3Error> {
        self.read(|c| c.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0)))
            .map(|n| n as u64)
    }
}
