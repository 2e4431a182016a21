//! Gust's object storage: the semantics of Amazon S3 — buckets (global names, an owning
//! account, a region), objects with their content headers, user metadata and tags,
//! conditional and ranged reads, copies, listings (v1 and v2, with delimiters and
//! continuation), multipart uploads — over a durable [`ObjectStore`]. No HTTP: the API
//! layer (`gust-api/src/s3.rs`, on the `s3s` crate) turns requests into [`S3`] calls.
//!
//! Access: a bucket is reached only by its owning account; another account's bucket is
//! `AccessDenied`. Gust has no bucket policies, ACLs or access points yet.
//!
//! Invariants:
//! - An acknowledged write is durable: its body is fsynced and renamed into place, then
//!   its metadata committed (`synchronous=FULL`), then it is answered. An interrupted or
//!   failed write leaves no object and, once the store has started again, no file.
//! - Bodies are named by random ids, never by keys, so no key (`../`, `%2F`, very long,
//!   any Unicode) names a path.
//! - Bodies stream in and out in bounded pieces: no object is held in memory, and
//!   completing a multipart upload concatenates its parts with the kernel's copy.
//! - While a bucket has a notification configuration, each object change records an
//!   [`ObjectEvent`] in the store's outbox in the change's own transaction: a committed
//!   change always has its event, and a crash cannot lose one. Consumers
//!   [`S3::claim_events`] (leased), deliver, and [`S3::ack_events`].
//! - Buckets are not versioned: the only version is `null`.

pub mod conditions;
pub mod error;
pub mod model;
pub mod names;
mod service;
pub mod sqlite;
pub mod store;

pub use conditions::{ByteRange, Conditions, EtagMatch, WriteCondition};
pub use error::S3Error;
pub use model::{
    event_names, BucketInfo, Caller, ClaimedEvent, ObjectEvent, ObjectInfo, ObjectMeta, PartInfo,
    Tags, UploadInfo, DEFAULT_CONTENT_TYPE,
};
pub use service::{
    CompletionPlan, CopyObject, DeleteEntry, DeleteFailure, ListQuery, ListStart, Listing,
    ObjectRead, PartsListing, PutObject, UploadsListing, UploadsQuery, MAX_COPY_BYTES, MAX_KEYS,
    MAX_PART_NUMBER, MAX_PUT_BYTES, MIN_PART_BYTES, S3,
};
pub use sqlite::LocalStore;
pub use store::ObjectStore;

#[cfg(test)]
mod tests;
