//! What the service hands out and takes in: buckets, objects, uploads, parts, tags, the
//! caller, and the events an object change produces.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// An object's tags, in the order they were given (keys are unique).
pub type Tags = Vec<(String, String)>;

/// Who makes a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The account acted in (the signing key's, or the session's).
    pub account: String,
    /// The principal: an access key id, or an assumed role's id (`AROA…:session`).
    pub principal: String,
    /// The client's address, when known.
    pub source_ip: Option<String>,
}

impl Caller {
    /// An account's own caller (principal = account), without an address.
    pub fn account(account: &str) -> Self {
        Caller {
            account: account.to_owned(),
            principal: account.to_owned(),
            source_ip: None,
        }
    }
}

/// A bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketInfo {
    /// Its (global) name.
    pub name: String,
    /// The owning account.
    pub account: String,
    /// Its region (this server's).
    pub region: String,
    /// When it was created.
    pub created: OffsetDateTime,
}

/// An object's stored headers: the content headers S3 keeps and user metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// `Content-Type` (S3's default `binary/octet-stream` when none was given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `Cache-Control`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// `Content-Disposition`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    /// `Content-Encoding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// `Content-Language`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    /// `Expires`, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
    /// The storage class asked for (kept and reported; it changes nothing here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// User metadata (`x-amz-meta-<name>`), names in lower case.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user: BTreeMap<String, String>,
}

/// The content type S3 gives an object stored without one.
pub const DEFAULT_CONTENT_TYPE: &str = "binary/octet-stream";

/// An object as stored (its current, and only, version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its bucket.
    pub bucket: String,
    /// Its key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// The ETag without quotes: hex MD5, or for a multipart object the MD5 of its parts'
    /// binary MD5s and `-<parts>`.
    pub etag: String,
    /// When it was last written.
    pub last_modified: OffsetDateTime,
    /// Stored headers and user metadata.
    pub meta: ObjectMeta,
    /// Its tags.
    pub tags: Tags,
    /// Parts of a multipart object.
    pub parts: Option<u32>,
    /// The owning account (the bucket's).
    pub owner: String,
}

impl ObjectInfo {
    /// The ETag as headers and XML carry it (quoted).
    pub fn quoted_etag(&self) -> String {
        format!("\"{}\"", self.etag)
    }
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadInfo {
    /// The upload id.
    pub upload_id: String,
    /// Its bucket.
    pub bucket: String,
    /// The key it will create.
    pub key: String,
    /// When it was created.
    pub initiated: OffsetDateTime,
    /// Headers and metadata the object will have.
    pub meta: ObjectMeta,
    /// Tags the object will have.
    pub tags: Tags,
    /// The initiating principal.
    pub initiator: String,
    /// The owning account (the bucket's).
    pub owner: String,
}

/// An uploaded part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    /// 1..=10000.
    pub number: u32,
    /// Size in bytes.
    pub size: u64,
    /// Hex MD5 of the part, without quotes.
    pub etag: String,
    /// When it was uploaded.
    pub last_modified: OffsetDateTime,
}

/// A change to an object, recorded in the store's outbox in the same transaction as the
/// change itself (so a committed change always has its event, and an event never
/// describes a change that did not commit). Field names follow S3's event records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectEvent {
    /// The bucket's owning account.
    pub account: String,
    /// The bucket's region.
    pub region: String,
    /// The bucket.
    pub bucket: String,
    /// The key (not URL-encoded).
    pub key: String,
    /// The object's size (0 for removals).
    pub size: u64,
    /// The object's ETag without quotes (empty for removals).
    pub etag: String,
    /// Always `None`: buckets are not versioned.
    pub version_id: Option<String>,
    /// Upper-case hex, increasing with every event this store records (16 digits).
    pub sequencer: String,
    /// S3's name without the `s3:` prefix: `ObjectCreated:Put`, `ObjectCreated:Copy`,
    /// `ObjectCreated:CompleteMultipartUpload`, `ObjectRemoved:Delete`,
    /// `ObjectTagging:Put`, `ObjectTagging:Delete`.
    pub event_name: String,
    /// When the change was made, ms since the epoch.
    pub time_ms: i64,
    /// Who made it: the account.
    pub requester_account: String,
    /// Who made it: the principal (access key id or assumed role id).
    pub requester_principal: String,
    /// The client's address, when known.
    pub source_ip: Option<String>,
}

impl ObjectEvent {
    /// When the change was made.
    pub fn time(&self) -> OffsetDateTime {
        gust_store::sqlite::at(self.time_ms)
    }
}

/// Event names.
pub mod event_names {
    /// `PutObject`.
    pub const PUT: &str = "ObjectCreated:Put";
    /// `CopyObject`.
    pub const COPY: &str = "ObjectCreated:Copy";
    /// `CompleteMultipartUpload`.
    pub const COMPLETE_MULTIPART: &str = "ObjectCreated:CompleteMultipartUpload";
    /// `DeleteObject`, `DeleteObjects`.
    pub const DELETE: &str = "ObjectRemoved:Delete";
    /// `PutObjectTagging`.
    pub const TAGGING_PUT: &str = "ObjectTagging:Put";
    /// `DeleteObjectTagging`.
    pub const TAGGING_DELETE: &str = "ObjectTagging:Delete";
}

/// An outbox event taken by a consumer: it stays in the outbox (invisible to other claims
/// until its lease ends) until acknowledged by `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedEvent {
    /// The outbox row; pass it to `ack_events`.
    pub id: i64,
    /// The event.
    pub event: ObjectEvent,
}
