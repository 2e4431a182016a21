//! The storage interface: what S3's semantics need from durable storage. The embedded
//! implementation is [`crate::sqlite::LocalStore`] (SQLite metadata, one file per body); a
//! distributed store implements the same trait. Every write method is one atomic step: it
//! either happens completely and durably before it returns, or not at all.
//!
//! Bodies are written before the metadata that points at them: [`ObjectStore::stage`] gives
//! a temporary body, [`ObjectStore::seal`] makes it durable under its id, and only then
//! does a metadata write reference it. A body no committed row references is garbage the
//! store may remove at any start; a body a committed write replaced or removed is removed
//! after that commit.

use std::fmt::Debug;
use std::ops::Bound;
use std::path::PathBuf;

use crate::conditions::WriteCondition;
use crate::error::S3Error;
use crate::model::{BucketInfo, Caller, ClaimedEvent, ObjectInfo, PartInfo, Tags, UploadInfo};

/// A body being written: a temporary file. Dropped without being sealed (a failed or
/// interrupted upload), it is removed.
#[derive(Debug)]
pub struct Staged {
    /// The id the body will have once sealed.
    pub id: String,
    /// The file being written.
    pub file: std::fs::File,
    /// Where the file lies until it is sealed.
    pub temp_path: PathBuf,
    sealed: bool,
}

impl Staged {
    /// A staged body (for store implementations).
    pub fn new(id: String, file: std::fs::File, temp_path: PathBuf) -> Self {
        Staged {
            id,
            file,
            temp_path,
            sealed: false,
        }
    }

    /// Marks the body sealed: it is no longer removed on drop (for store implementations,
    /// once the body is in place under its id).
    pub fn mark_sealed(&mut self) {
        self.sealed = true;
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.sealed {
            let _ = std::fs::remove_file(&self.temp_path);
        }
    }
}

/// An object and the body it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// The object.
    pub info: ObjectInfo,
    /// Its body's id.
    pub body: String,
}

/// A part and the body it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    /// The part.
    pub info: PartInfo,
    /// Its body's id.
    pub body: String,
}

/// The event a write records (in the write's own transaction) when its bucket has a
/// notification configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDraft {
    /// S3's event name (see [`crate::model::event_names`]).
    pub name: &'static str,
    /// Who made the change.
    pub requester: Caller,
    /// When, ms since the epoch.
    pub time_ms: i64,
}

/// The multipart upload a write completes: it must still exist with exactly these parts'
/// bodies, and it goes (with all its parts) in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The upload.
    pub upload_id: String,
    /// `(part number, body id)` of the parts the object was made of.
    pub parts: Vec<(u32, String)>,
}

/// One object write.
#[derive(Debug, Clone)]
pub struct ObjectWrite {
    /// The object (its body sealed). On failure the store removes the body.
    pub object: StoredObject,
    /// Checked against the current object in the writing transaction.
    pub condition: WriteCondition,
    /// The event to record.
    pub event: EventDraft,
    /// The upload this write completes, if any.
    pub completion: Option<Completion>,
}

/// Durable storage of buckets, objects, uploads and the event outbox.
pub trait ObjectStore: Send + Sync + Debug {
    /// A new temporary body.
    fn stage(&self) -> Result<Staged, S3Error>;
    /// Makes a staged body durable under its id; returns the id.
    fn seal(&self, staged: Staged) -> Result<String, S3Error>;
    /// Opens a sealed body for reading; `None` when it is gone (replaced meanwhile).
    fn open_body(&self, id: &str) -> Result<Option<std::fs::File>, S3Error>;
    /// Removes a sealed body no committed row references.
    fn discard_body(&self, id: &str);

    /// Creates a bucket: `BucketAlreadyOwnedByYou` / `BucketAlreadyExists` when the name
    /// is taken.
    fn create_bucket(&self, bucket: &BucketInfo) -> Result<(), S3Error>;
    /// A bucket by name.
    fn bucket(&self, name: &str) -> Result<Option<BucketInfo>, S3Error>;
    /// An account's buckets, by name.
    fn buckets(&self, account: &str) -> Result<Vec<BucketInfo>, S3Error>;
    /// Deletes an empty bucket (`BucketNotEmpty` otherwise) and its uploads in progress.
    fn delete_bucket(&self, name: &str) -> Result<(), S3Error>;
    /// Sets or clears a bucket's notification configuration (opaque here). Writes record
    /// events only while their bucket has one.
    fn set_notification(&self, bucket: &str, config: Option<&str>) -> Result<(), S3Error>;
    /// A bucket's notification configuration.
    fn notification(&self, bucket: &str) -> Result<Option<String>, S3Error>;

    /// An object.
    fn object(&self, bucket: &str, key: &str) -> Result<Option<StoredObject>, S3Error>;
    /// Writes (creates or replaces) an object; the replaced body is removed after the
    /// commit.
    fn put_object(&self, write: ObjectWrite) -> Result<(), S3Error>;
    /// Deletes objects; for each key, whether it existed. Bodies go after the commit.
    fn delete_objects(
        &self,
        bucket: &str,
        keys: &[String],
        event: &EventDraft,
    ) -> Result<Vec<bool>, S3Error>;
    /// Objects of a bucket with keys in `(from, below)` in byte order, at most `limit`.
    fn list_objects(
        &self,
        bucket: &str,
        from: Bound<&[u8]>,
        below: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<ObjectInfo>, S3Error>;
    /// Replaces an object's tags (`NoSuchKey` when it is gone).
    fn set_tags(
        &self,
        bucket: &str,
        key: &str,
        tags: &Tags,
        event: &EventDraft,
    ) -> Result<(), S3Error>;

    /// Records a new multipart upload.
    fn create_upload(&self, upload: &UploadInfo) -> Result<(), S3Error>;
    /// An upload by id.
    fn upload(&self, upload_id: &str) -> Result<Option<UploadInfo>, S3Error>;
    /// Records (or replaces) a part of an upload (`NoSuchUpload` when it is gone, and then
    /// the body is removed); a replaced part's body is removed after the commit.
    fn put_part(&self, upload_id: &str, part: StoredPart) -> Result<(), S3Error>;
    /// An upload's parts, by number.
    fn parts(&self, upload_id: &str) -> Result<Vec<StoredPart>, S3Error>;
    /// Removes an upload and its parts (`NoSuchUpload` when it is gone).
    fn abort_upload(&self, upload_id: &str) -> Result<(), S3Error>;
    /// A bucket's uploads in progress, by key then initiation.
    fn uploads(&self, bucket: &str) -> Result<Vec<UploadInfo>, S3Error>;

    /// Takes up to `max` unclaimed (or lease-expired) events, oldest first, leasing them
    /// for `lease_ms`.
    fn claim_events(
        &self,
        now_ms: i64,
        max: usize,
        lease_ms: i64,
    ) -> Result<Vec<ClaimedEvent>, S3Error>;
    /// Removes delivered events.
    fn ack_events(&self, ids: &[i64]) -> Result<(), S3Error>;
    /// Ends every lease (at start: what a previous run had claimed is claimable again).
    fn release_events(&self) -> Result<(), S3Error>;
    /// Events in the outbox.
    fn pending_events(&self) -> Result<u64, S3Error>;
}
