//! The semantics of each operation over an [`ObjectStore`]: who may touch which bucket,
//! names and limits, bodies written and hashed as they stream in, conditions, ranges,
//! listings, multipart rules, and the events writes record.

use std::io::{Read, Seek, Write};
use std::ops::Bound;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_core::Stream;
use gust_model::Clock;
use md5::{Digest, Md5};
use tokio::sync::Notify;

use crate::conditions::{self, ByteRange, Conditions, WriteCondition};
use crate::error::S3Error;
use crate::model::{
    event_names, BucketInfo, Caller, ClaimedEvent, ObjectInfo, ObjectMeta, PartInfo, Tags,
    UploadInfo, DEFAULT_CONTENT_TYPE,
};
use crate::names;
use crate::store::{
    Completion, EventDraft, ObjectStore, ObjectWrite, Staged, StoredObject, StoredPart,
};

/// The largest object one `PutObject` (or one part) may be: 5 GiB.
pub const MAX_PUT_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// The largest object `CopyObject` copies: 5 GiB.
pub const MAX_COPY_BYTES: u64 = MAX_PUT_BYTES;
/// Every part but the last is at least 5 MiB.
pub const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;
/// Part numbers are 1..=10,000.
pub const MAX_PART_NUMBER: u32 = 10_000;
/// The most keys a listing returns, and the most one `DeleteObjects` deletes.
pub const MAX_KEYS: usize = 1000;

/// Bodies are written in pieces of this size, off the async threads.
const WRITE_BUFFER: usize = 1024 * 1024;
/// Rows a listing reads from the store at once.
const LIST_BATCH: usize = 1000;

/// A `PutObject`.
#[derive(Debug, Clone, Default)]
pub struct PutObject {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// Headers and user metadata to store.
    pub meta: ObjectMeta,
    /// Tags (`x-amz-tagging`, see [`names::parse_tagging_header`]).
    pub tags: Tags,
    /// The declared length (`Content-Length`, or the decoded length of a chunked upload):
    /// a body of another length is refused.
    pub content_length: Option<u64>,
    /// `Content-MD5`, checked against the body.
    pub content_md5: Option<String>,
    /// `If-Match` / `If-None-Match`.
    pub condition: WriteCondition,
}

/// A read (`GetObject`) ready to stream.
#[derive(Debug)]
pub struct ObjectRead {
    /// The object.
    pub info: ObjectInfo,
    /// Its body, positioned at `start`.
    pub file: std::fs::File,
    /// First byte sent.
    pub start: u64,
    /// Bytes to send.
    pub length: u64,
    /// The inclusive span of a range request (206).
    pub range: Option<(u64, u64)>,
}

/// How the copy's destination gets its headers, metadata and tags.
#[derive(Debug, Clone, Default)]
pub struct CopyObject {
    /// Source bucket.
    pub source_bucket: String,
    /// Source key.
    pub source_key: String,
    /// Source version (`null` or none: buckets are not versioned).
    pub source_version: Option<String>,
    /// `x-amz-copy-source-if-*`.
    pub source_conditions: Conditions,
    /// Destination bucket.
    pub bucket: String,
    /// Destination key.
    pub key: String,
    /// `MetadataDirective: REPLACE`: these headers and metadata instead of the source's.
    pub replace_meta: Option<ObjectMeta>,
    /// A storage class given with `COPY` (the source's other headers kept).
    pub storage_class: Option<String>,
    /// `TaggingDirective: REPLACE`: these tags instead of the source's.
    pub replace_tags: Option<Tags>,
    /// The destination's `If-Match` / `If-None-Match`.
    pub condition: WriteCondition,
}

/// Where a listing starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ListStart {
    /// At the first key.
    #[default]
    Beginning,
    /// After this key (`StartAfter`, `Marker`).
    After(String),
    /// Where a previous page ended (`ContinuationToken`).
    Token(String),
}

/// A listing request.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only keys beginning with this.
    pub prefix: String,
    /// Group keys sharing a prefix up to this into common prefixes.
    pub delimiter: Option<String>,
    /// Keys plus common prefixes, at most (capped at 1,000).
    pub max_keys: usize,
    /// Where to start.
    pub start: ListStart,
}

/// A page of a listing.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Objects, in key order.
    pub objects: Vec<ObjectInfo>,
    /// Common prefixes, in order.
    pub common_prefixes: Vec<String>,
    /// More follow.
    pub is_truncated: bool,
    /// Where the next page starts (`NextContinuationToken`), when truncated.
    pub next_token: Option<String>,
    /// The last key or common prefix of this page (`NextMarker`), when truncated.
    pub next_marker: Option<String>,
}

/// One key of a `DeleteObjects`: its key and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteEntry {
    /// The key.
    pub key: String,
    /// The version asked for.
    pub version: Option<String>,
}

/// A key `DeleteObjects` could not delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteFailure {
    /// The key.
    pub key: String,
    /// The version asked for.
    pub version: Option<String>,
    /// S3's code.
    pub code: String,
    /// S3's message.
    pub message: String,
}

/// A checked `CompleteMultipartUpload`, ready to be carried out.
#[derive(Debug, Clone)]
pub struct CompletionPlan {
    info: ObjectInfo,
    chosen: Vec<StoredPart>,
    upload_id: String,
    caller: Caller,
}

impl CompletionPlan {
    /// The object it will make (its time is set when it is made).
    pub fn object(&self) -> &ObjectInfo {
        &self.info
    }
}

/// A page of an upload's parts.
#[derive(Debug, Clone)]
pub struct PartsListing {
    /// The upload.
    pub upload: UploadInfo,
    /// Parts after the marker, by number.
    pub parts: Vec<PartInfo>,
    /// More follow.
    pub is_truncated: bool,
    /// The last part number of this page, when truncated.
    pub next_marker: Option<u32>,
}

/// A `ListMultipartUploads` request.
#[derive(Debug, Clone, Default)]
pub struct UploadsQuery {
    /// Only keys beginning with this.
    pub prefix: String,
    /// Group keys into common prefixes.
    pub delimiter: Option<String>,
    /// Start after this key (and, with `upload_id_marker`, within it).
    pub key_marker: Option<String>,
    /// Start after this upload of `key_marker`.
    pub upload_id_marker: Option<String>,
    /// Uploads plus common prefixes, at most (capped at 1,000).
    pub max_uploads: usize,
}

/// A page of uploads in progress.
#[derive(Debug, Clone, Default)]
pub struct UploadsListing {
    /// Uploads, by key then initiation.
    pub uploads: Vec<UploadInfo>,
    /// Common prefixes.
    pub common_prefixes: Vec<String>,
    /// More follow.
    pub is_truncated: bool,
    /// Where the next page starts.
    pub next_key_marker: Option<String>,
    /// Where the next page starts.
    pub next_upload_id_marker: Option<String>,
}

/// The object storage service.
#[derive(Debug)]
pub struct S3 {
    store: Arc<dyn ObjectStore>,
    clock: Arc<dyn Clock>,
    region: String,
    signal: Arc<Notify>,
}

impl S3 {
    /// The service over `store`, serving `region`.
    pub fn new(store: Arc<dyn ObjectStore>, clock: Arc<dyn Clock>, region: &str) -> Arc<Self> {
        Arc::new(S3 {
            store,
            clock,
            region: region.to_owned(),
            signal: Arc::new(Notify::new()),
        })
    }

    /// The region buckets are created in.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The store underneath.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    fn now_ms(&self) -> i64 {
        gust_store::sqlite::ms(self.clock.now())
    }

    /// Runs a store call off the async threads. Once started it runs to its end even if
    /// the caller goes away (a commit is never left half done).
    async fn blocking<R: Send + 'static>(
        &self,
        job: impl FnOnce(&dyn ObjectStore) -> Result<R, S3Error> + Send + 'static,
    ) -> Result<R, S3Error> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || job(store.as_ref()))
            .await
            .map_err(S3Error::internal)?
    }

    fn draft(&self, name: &'static str, caller: &Caller) -> EventDraft {
        EventDraft {
            name,
            requester: caller.clone(),
            time_ms: self.now_ms(),
        }
    }

    /// The bucket, if the caller owns it: `NoSuchBucket`, or `AccessDenied` for another
    /// account's (Gust has no bucket policies or ACLs).
    pub async fn owned_bucket(&self, caller: &Caller, name: &str) -> Result<BucketInfo, S3Error> {
        let name = name.to_owned();
        let bucket = self
            .blocking(move |s| s.bucket(&name))
            .await?
            .ok_or(S3Error::NoSuchBucket)?;
        if bucket.account != caller.account {
            return Err(S3Error::AccessDenied);
        }
        Ok(bucket)
    }

    // --- Buckets -------------------------------------------------------------------

    /// `CreateBucket`. `location` is the `LocationConstraint`: none in `us-east-1`, this
    /// server's region elsewhere.
    pub async fn create_bucket(
        &self,
        caller: &Caller,
        name: &str,
        location: Option<&str>,
    ) -> Result<BucketInfo, S3Error> {
        names::check_bucket_name(name)?;
        match location.filter(|l| !l.is_empty()) {
            None if self.region != "us-east-1" => return Err(S3Error::IllegalLocationConstraint),
            Some(l) if l != self.region || l == "us-east-1" => {
                return Err(S3Error::InvalidLocationConstraint(format!(
                    "The {l} location constraint is incompatible for the region specific endpoint this request was sent to."
                )))
            }
            _ => {}
        }
        let bucket = BucketInfo {
            name: name.to_owned(),
            account: caller.account.clone(),
            region: self.region.clone(),
            created: self.clock.now(),
        };
        let record = bucket.clone();
        self.blocking(move |s| s.create_bucket(&record)).await?;
        Ok(bucket)
    }

    /// `DeleteBucket`: only an empty bucket; its uploads in progress go with it.
    pub async fn delete_bucket(&self, caller: &Caller, name: &str) -> Result<(), S3Error> {
        self.owned_bucket(caller, name).await?;
        let name = name.to_owned();
        self.blocking(move |s| s.delete_bucket(&name)).await
    }

    /// `HeadBucket`, `GetBucketLocation`.
    pub async fn head_bucket(&self, caller: &Caller, name: &str) -> Result<BucketInfo, S3Error> {
        self.owned_bucket(caller, name).await
    }

    /// `ListBuckets`: the caller's buckets, by name, optionally those beginning with
    /// `prefix`.
    pub async fn list_buckets(
        &self,
        caller: &Caller,
        prefix: Option<&str>,
    ) -> Result<Vec<BucketInfo>, S3Error> {
        let account = caller.account.clone();
        let mut buckets = self.blocking(move |s| s.buckets(&account)).await?;
        if let Some(prefix) = prefix {
            buckets.retain(|b| b.name.starts_with(prefix));
        }
        Ok(buckets)
    }

    /// Sets or clears a bucket's notification configuration (opaque to this crate). While
    /// a bucket has one, every object write in it records an [`crate::ObjectEvent`] in
    /// the outbox, in the write's own transaction.
    pub async fn set_bucket_notification(
        &self,
        caller: &Caller,
        bucket: &str,
        config: Option<String>,
    ) -> Result<(), S3Error> {
        self.owned_bucket(caller, bucket).await?;
        let bucket = bucket.to_owned();
        self.blocking(move |s| s.set_notification(&bucket, config.as_deref()))
            .await
    }

    /// A bucket's notification configuration.
    pub async fn bucket_notification(
        &self,
        caller: &Caller,
        bucket: &str,
    ) -> Result<Option<String>, S3Error> {
        self.owned_bucket(caller, bucket).await?;
        let bucket = bucket.to_owned();
        self.blocking(move |s| s.notification(&bucket)).await
    }

    // --- Objects -------------------------------------------------------------------

    /// `PutObject`: the body is written to a temporary file as it arrives (hashed on the
    /// way, never held in memory), made durable, and only then committed; the answer comes
    /// after the commit.
    pub async fn put_object<S, E>(
        &self,
        caller: &Caller,
        put: PutObject,
        body: S,
    ) -> Result<ObjectInfo, S3Error>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: std::fmt::Display,
    {
        names::check_key(&put.key)?;
        names::check_user_metadata(&put.meta.user)?;
        names::check_tags(&put.tags)?;
        if put.content_length.is_some_and(|l| l > MAX_PUT_BYTES) {
            return Err(S3Error::EntityTooLarge);
        }
        if let Some(md5) = &put.content_md5 {
            conditions::check_content_md5_form(md5)?;
        }
        let bucket = self.owned_bucket(caller, &put.bucket).await?;
        let received = self
            .receive(body, MAX_PUT_BYTES, put.content_length)
            .await?;
        if let Some(md5) = &put.content_md5 {
            conditions::check_content_md5(md5, &received.md5)?;
        }
        let mut meta = put.meta;
        meta.content_type
            .get_or_insert_with(|| DEFAULT_CONTENT_TYPE.to_owned());
        let info = ObjectInfo {
            bucket: put.bucket,
            key: put.key,
            size: received.size,
            etag: received.md5.clone(),
            last_modified: self.clock.now(),
            meta,
            tags: put.tags,
            parts: None,
            owner: bucket.account,
        };
        let event = self.draft(event_names::PUT, caller);
        let condition = put.condition;
        let stored = info.clone();
        self.blocking(move |s| {
            let body = s.seal(received.staged)?;
            s.put_object(ObjectWrite {
                object: StoredObject { info: stored, body },
                condition,
                event,
                completion: None,
            })
        })
        .await?;
        self.signal.notify_one();
        Ok(info)
    }

    /// Reads a body into a staged file: hashed, counted, limited.
    async fn receive<S, E>(
        &self,
        mut body: S,
        limit: u64,
        expected: Option<u64>,
    ) -> Result<Received, S3Error>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: std::fmt::Display,
    {
        let staged = self.blocking(|s| s.stage()).await?;
        let mut sink = Sink {
            state: Some((staged, Md5::new())),
            buffer: Vec::with_capacity(WRITE_BUFFER),
            size: 0,
        };
        while let Some(chunk) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_next(cx)).await {
            let chunk = chunk.map_err(|error| {
                tracing::debug!(%error, "an object body broke off");
                S3Error::IncompleteBody
            })?;
            sink.size += chunk.len() as u64;
            if sink.size > limit {
                return Err(S3Error::EntityTooLarge);
            }
            if expected.is_some_and(|e| sink.size > e) {
                return Err(S3Error::IncompleteBody);
            }
            sink.buffer.extend_from_slice(&chunk);
            if sink.buffer.len() >= WRITE_BUFFER {
                sink.flush().await?;
            }
        }
        if expected.is_some_and(|e| sink.size != e) {
            return Err(S3Error::IncompleteBody);
        }
        sink.flush().await?;
        let (staged, md5) = sink
            .state
            .take()
            .ok_or_else(|| S3Error::internal("no body"))?;
        Ok(Received {
            staged,
            size: sink.size,
            md5: hex::encode(md5.finalize()),
        })
    }

    /// Finds an object, retrying when its body was replaced between the lookup and the
    /// open.
    async fn find(
        &self,
        bucket: &str,
        key: &str,
        open: bool,
    ) -> Result<(StoredObject, Option<std::fs::File>), S3Error> {
        for _ in 0..5 {
            let (bucket, key) = (bucket.to_owned(), key.to_owned());
            let found = self
                .blocking(move |s| {
                    let Some(object) = s.object(&bucket, &key)? else {
                        return Err(S3Error::NoSuchKey);
                    };
                    if !open {
                        return Ok(Some((object, None)));
                    }
                    Ok(s.open_body(&object.body)?.map(|f| (object, Some(f))))
                })
                .await?;
            if let Some(found) = found {
                return Ok(found);
            }
        }
        Err(S3Error::internal("an object body kept changing"))
    }

    /// `HeadObject`: the object (after its conditions) and the span a range selects.
    pub async fn head_object(
        &self,
        caller: &Caller,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        conditions: &Conditions,
        range: Option<ByteRange>,
    ) -> Result<(ObjectInfo, Option<(u64, u64)>), S3Error> {
        check_version(version)?;
        self.owned_bucket(caller, bucket).await?;
        let (object, _) = self.find(bucket, key, false).await?;
        conditions.check_read(&object.info.etag, object.info.last_modified)?;
        let span = range.map(|r| r.resolve(object.info.size)).transpose()?;
        Ok((object.info, span))
    }

    /// `GetObject`: the object (after its conditions) with its body open at the range.
    pub async fn get_object(
        &self,
        caller: &Caller,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        conditions: &Conditions,
        range: Option<ByteRange>,
    ) -> Result<ObjectRead, S3Error> {
        check_version(version)?;
        self.owned_bucket(caller, bucket).await?;
        let (object, file) = self.find(bucket, key, true).await?;
        let mut file = file.ok_or_else(|| S3Error::internal("no body"))?;
        conditions.check_read(&object.info.etag, object.info.last_modified)?;
        let span = range.map(|r| r.resolve(object.info.size)).transpose()?;
        let (start, length) = match span {
            Some((first, last)) => (first, last - first + 1),
            None => (0, object.info.size),
        };
        if start > 0 {
            file.seek(std::io::SeekFrom::Start(start))?;
        }
        Ok(ObjectRead {
            info: object.info,
            file,
            start,
            length,
            range: span,
        })
    }

    /// Stores a small object another service writes (Lambda's failure records), as
    /// `account`, which must own the bucket.
    pub async fn put_bytes(
        &self,
        account: &str,
        bucket: &str,
        key: &str,
        content_type: &str,
        bytes: Bytes,
    ) -> Result<ObjectInfo, S3Error> {
        /// A body of one chunk.
        struct Once(Option<Bytes>);
        impl Stream for Once {
            type Item = Result<Bytes, std::convert::Infallible>;
            fn poll_next(
                mut self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Self::Item>> {
                std::task::Poll::Ready(self.0.take().map(Ok))
            }
        }
        let put = PutObject {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            meta: ObjectMeta {
                content_type: Some(content_type.to_owned()),
                ..ObjectMeta::default()
            },
            content_length: Some(bytes.len() as u64),
            ..PutObject::default()
        };
        self.put_object(&Caller::account(account), put, Once(Some(bytes)))
            .await
    }

    /// An object's body for another service (Lambda's code from S3), at most `max` bytes,
    /// read as `account` (which must own the bucket).
    pub async fn read_object_bytes(
        &self,
        account: &str,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        max: u64,
    ) -> Result<(ObjectInfo, Vec<u8>), S3Error> {
        let read = self
            .get_object(
                &Caller::account(account),
                bucket,
                key,
                version,
                &Conditions::default(),
                None,
            )
            .await?;
        if read.info.size > max {
            return Err(S3Error::ObjectTooLarge {
                size: read.info.size,
                max,
            });
        }
        let ObjectRead { info, mut file, .. } = read;
        let size = info.size;
        let bytes = tokio::task::spawn_blocking(move || {
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            file.read_to_end(&mut bytes).map(|_| bytes)
        })
        .await
        .map_err(S3Error::internal)??;
        Ok((info, bytes))
    }

    /// An object's open body for another service that streams it (read as `account`).
    pub async fn open_object(
        &self,
        account: &str,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<(ObjectInfo, std::fs::File), S3Error> {
        let read = self
            .get_object(
                &Caller::account(account),
                bucket,
                key,
                version,
                &Conditions::default(),
                None,
            )
            .await?;
        Ok((read.info, read.file))
    }

    /// `DeleteObject`: succeeds whether or not the key exists.
    pub async fn delete_object(
        &self,
        caller: &Caller,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<(), S3Error> {
        check_version(version)?;
        self.owned_bucket(caller, bucket).await?;
        let (bucket, keys) = (bucket.to_owned(), vec![key.to_owned()]);
        let event = self.draft(event_names::DELETE, caller);
        self.blocking(move |s| s.delete_objects(&bucket, &keys, &event))
            .await?;
        self.signal.notify_one();
        Ok(())
    }

    /// `DeleteObjects`: up to 1,000 keys in one commit; each key deleted or failed.
    pub async fn delete_objects(
        &self,
        caller: &Caller,
        bucket: &str,
        entries: Vec<DeleteEntry>,
    ) -> Result<Vec<Result<DeleteEntry, DeleteFailure>>, S3Error> {
        if entries.is_empty() || entries.len() > MAX_KEYS {
            return Err(S3Error::MalformedXml);
        }
        self.owned_bucket(caller, bucket).await?;
        let mut outcomes: Vec<Option<Result<DeleteEntry, DeleteFailure>>> =
            Vec::with_capacity(entries.len());
        let mut keys = Vec::new();
        for entry in &entries {
            let failure = |error: S3Error| DeleteFailure {
                key: entry.key.clone(),
                version: entry.version.clone(),
                code: error.code().to_owned(),
                message: error.to_string(),
            };
            if let Err(error) = check_version(entry.version.as_deref()) {
                outcomes.push(Some(Err(failure(error))));
            } else if let Err(error) = names::check_key(&entry.key) {
                outcomes.push(Some(Err(failure(error))));
            } else {
                outcomes.push(None);
                keys.push(entry.key.clone());
            }
        }
        let (name, event) = (bucket.to_owned(), self.draft(event_names::DELETE, caller));
        self.blocking(move |s| s.delete_objects(&name, &keys, &event))
            .await?;
        self.signal.notify_one();
        Ok(entries
            .into_iter()
            .zip(outcomes)
            .map(|(entry, outcome)| outcome.unwrap_or(Ok(entry)))
            .collect())
    }

    /// `CopyObject`: the source's body copied (by the kernel where it can) into a new one.
    pub async fn copy_object(
        &self,
        caller: &Caller,
        copy: CopyObject,
    ) -> Result<ObjectInfo, S3Error> {
        names::check_key(&copy.key)?;
        check_version(copy.source_version.as_deref())?;
        if let Some(meta) = &copy.replace_meta {
            names::check_user_metadata(&meta.user)?;
        }
        if let Some(tags) = &copy.replace_tags {
            names::check_tags(tags)?;
        }
        self.owned_bucket(caller, &copy.source_bucket).await?;
        let bucket = self.owned_bucket(caller, &copy.bucket).await?;
        let (source, file) = self
            .find(&copy.source_bucket, &copy.source_key, true)
            .await?;
        let mut file = file.ok_or_else(|| S3Error::internal("no body"))?;
        copy.source_conditions
            .check_copy_source(&source.info.etag, source.info.last_modified)?;
        let same = copy.source_bucket == copy.bucket && copy.source_key == copy.key;
        if same && copy.replace_meta.is_none() && copy.storage_class.is_none() {
            return Err(S3Error::InvalidRequest("This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.".into()));
        }
        if source.info.size > MAX_COPY_BYTES {
            return Err(S3Error::InvalidRequest(format!(
                "The specified copy source is larger than the maximum allowable size for a copy source: {MAX_COPY_BYTES}"
            )));
        }
        let mut meta = copy
            .replace_meta
            .unwrap_or_else(|| source.info.meta.clone());
        if copy.storage_class.is_some() {
            meta.storage_class = copy.storage_class;
        }
        meta.content_type
            .get_or_insert_with(|| DEFAULT_CONTENT_TYPE.to_owned());
        let mut info = ObjectInfo {
            bucket: copy.bucket,
            key: copy.key,
            size: source.info.size,
            // A single-part source's bytes have its MD5; a multipart source's copy is one
            // part, whose MD5 is computed while copying.
            etag: source.info.etag.clone(),
            last_modified: self.clock.now(),
            meta,
            tags: copy.replace_tags.unwrap_or(source.info.tags),
            parts: None,
            owner: bucket.account,
        };
        let rehash = source.info.etag.contains('-');
        let event = self.draft(event_names::COPY, caller);
        let condition = copy.condition;
        let size = source.info.size;
        let mut stored = info.clone();
        let etag = self
            .blocking(move |s| {
                let mut staged = s.stage()?;
                let etag = if rehash {
                    Some(copy_hashed(&mut file, &mut staged.file, size)?)
                } else {
                    let copied = std::io::copy(&mut (&mut file).take(size), &mut staged.file)?;
                    if copied != size {
                        return Err(S3Error::internal("the copy source ended early"));
                    }
                    None
                };
                if let Some(etag) = &etag {
                    stored.etag = etag.clone();
                }
                let body = s.seal(staged)?;
                s.put_object(ObjectWrite {
                    object: StoredObject { info: stored, body },
                    condition,
                    event,
                    completion: None,
                })?;
                Ok(etag)
            })
            .await?;
        if let Some(etag) = etag {
            info.etag = etag;
        }
        self.signal.notify_one();
        Ok(info)
    }

    /// `ListObjectsV2` and `ListObjects`: keys in UTF-8 byte order, grouped by the
    /// delimiter into common prefixes.
    pub async fn list_objects(
        &self,
        caller: &Caller,
        bucket: &str,
        query: ListQuery,
    ) -> Result<Listing, S3Error> {
        self.owned_bucket(caller, bucket).await?;
        let max_keys = query.max_keys.min(MAX_KEYS);
        let prefix = query.prefix.clone().into_bytes();
        let upper = successor(&prefix);
        let at_least_prefix = |bound: Bound<Vec<u8>>| -> Bound<Vec<u8>> {
            match &bound {
                Bound::Included(k) | Bound::Excluded(k) if k.as_slice() < prefix.as_slice() => {
                    Bound::Included(prefix.clone())
                }
                Bound::Unbounded => Bound::Included(prefix.clone()),
                _ => bound,
            }
        };
        // A marker that is itself a common prefix (`NextMarker` of a delimited page) ends
        // that prefix: it is not listed again.
        let marker_prefix = match &query.start {
            ListStart::After(key) => Some(key.clone()),
            _ => None,
        };
        let mut lower = match &query.start {
            ListStart::Beginning => Bound::Unbounded,
            ListStart::After(key) => Bound::Excluded(key.clone().into_bytes()),
            ListStart::Token(token) => match decode_token(token)? {
                Resume::After(key) => Bound::Excluded(key),
                Resume::Past(prefix) => match successor(&prefix) {
                    Some(next) => Bound::Included(next),
                    None => return Ok(Listing::default()),
                },
            },
        };
        lower = at_least_prefix(lower);
        let delimiter = query.delimiter.clone().filter(|d| !d.is_empty());
        let mut listing = Listing::default();
        if max_keys == 0 {
            return Ok(listing);
        }
        let mut count = 0usize;
        let mut last: Option<Resume> = None;
        'scan: loop {
            let (name, from, below) = (bucket.to_owned(), lower.clone(), upper.clone());
            let batch = self
                .blocking(move |s| {
                    let from = match &from {
                        Bound::Included(k) => Bound::Included(k.as_slice()),
                        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
                        Bound::Unbounded => Bound::Unbounded,
                    };
                    s.list_objects(&name, from, below.as_deref(), LIST_BATCH)
                })
                .await?;
            let full = batch.len() == LIST_BATCH;
            let mut restart = None;
            for object in batch {
                if count == max_keys {
                    listing.is_truncated = true;
                    break 'scan;
                }
                let rest = object.key.get(query.prefix.len()..).unwrap_or("");
                if let Some(at) = delimiter.as_ref().and_then(|d| rest.find(d.as_str())) {
                    let end = query.prefix.len() + at + delimiter.as_ref().map_or(0, String::len);
                    let common = object.key[..end].to_owned();
                    restart = Some(successor(common.as_bytes()));
                    if marker_prefix.as_ref() == Some(&common) {
                        break;
                    }
                    count += 1;
                    last = Some(Resume::Past(common.clone().into_bytes()));
                    listing.common_prefixes.push(common);
                    break;
                }
                count += 1;
                lower = Bound::Excluded(object.key.clone().into_bytes());
                last = Some(Resume::After(object.key.clone().into_bytes()));
                listing.objects.push(object);
            }
            match restart {
                Some(Some(next)) => lower = Bound::Included(next),
                Some(None) => break,
                None if !full => break,
                None => {}
            }
        }
        if listing.is_truncated {
            if let Some(last) = last {
                listing.next_marker = Some(match &last {
                    Resume::After(k) | Resume::Past(k) => String::from_utf8_lossy(k).into_owned(),
                });
                listing.next_token = Some(encode_token(&last));
            }
        }
        Ok(listing)
    }

    /// `GetObjectTagging`.
    pub async fn get_tags(
        &self,
        caller: &Caller,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<Tags, S3Error> {
        check_version(version)?;
        self.owned_bucket(caller, bucket).await?;
        let (object, _) = self.find(bucket, key, false).await?;
        Ok(object.info.tags)
    }

    /// `PutObjectTagging` (an empty set is `DeleteObjectTagging`).
    pub async fn put_tags(
        &self,
        caller: &Caller,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        tags: Tags,
    ) -> Result<(), S3Error> {
        check_version(version)?;
        names::check_tags(&tags)?;
        self.owned_bucket(caller, bucket).await?;
        let name = if tags.is_empty() {
            event_names::TAGGING_DELETE
        } else {
            event_names::TAGGING_PUT
        };
        let event = self.draft(name, caller);
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.blocking(move |s| s.set_tags(&bucket, &key, &tags, &event))
            .await?;
        self.signal.notify_one();
        Ok(())
    }

    // --- Multipart uploads ----------------------------------------------------------

    /// `CreateMultipartUpload`.
    pub async fn create_upload(
        &self,
        caller: &Caller,
        bucket: &str,
        key: &str,
        mut meta: ObjectMeta,
        tags: Tags,
    ) -> Result<UploadInfo, S3Error> {
        names::check_key(key)?;
        names::check_user_metadata(&meta.user)?;
        names::check_tags(&tags)?;
        let owner = self.owned_bucket(caller, bucket).await?.account;
        meta.content_type
            .get_or_insert_with(|| DEFAULT_CONTENT_TYPE.to_owned());
        let mut id = [0u8; 24];
        getrandom::fill(&mut id).map_err(S3Error::internal)?;
        let upload = UploadInfo {
            upload_id: hex::encode(id),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            initiated: self.clock.now(),
            meta,
            tags,
            initiator: caller.principal.clone(),
            owner,
        };
        let record = upload.clone();
        self.blocking(move |s| s.create_upload(&record)).await?;
        Ok(upload)
    }

    /// The upload `upload_id` of this bucket and key.
    async fn find_upload(
        &self,
        caller: &Caller,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<UploadInfo, S3Error> {
        self.owned_bucket(caller, bucket).await?;
        let id = upload_id.to_owned();
        let upload = self
            .blocking(move |s| s.upload(&id))
            .await?
            .filter(|u| u.bucket == bucket && u.key == key)
            .ok_or(S3Error::NoSuchUpload)?;
        Ok(upload)
    }

    /// `UploadPart`: the part is streamed to its own file.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part<S, E>(
        &self,
        caller: &Caller,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: i32,
        content_length: Option<u64>,
        content_md5: Option<&str>,
        body: S,
    ) -> Result<PartInfo, S3Error>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: std::fmt::Display,
    {
        let number = check_part_number(number)?;
        if content_length.is_some_and(|l| l > MAX_PUT_BYTES) {
            return Err(S3Error::EntityTooLarge);
        }
        if let Some(md5) = content_md5 {
            conditions::check_content_md5_form(md5)?;
        }
        self.find_upload(caller, bucket, key, upload_id).await?;
        let received = self.receive(body, MAX_PUT_BYTES, content_length).await?;
        if let Some(md5) = content_md5 {
            conditions::check_content_md5(md5, &received.md5)?;
        }
        let part = PartInfo {
            number,
            size: received.size,
            etag: received.md5.clone(),
            last_modified: self.clock.now(),
        };
        let (info, id) = (part.clone(), upload_id.to_owned());
        self.blocking(move |s| {
            let body = s.seal(received.staged)?;
            s.put_part(&id, StoredPart { info, body })
        })
        .await?;
        Ok(part)
    }

    /// `UploadPartCopy`: a part copied from (a range of) an object.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part_copy(
        &self,
        caller: &Caller,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: i32,
        source: (&str, &str, Option<&str>),
        source_conditions: &Conditions,
        source_range: Option<&str>,
    ) -> Result<PartInfo, S3Error> {
        let number = check_part_number(number)?;
        let (source_bucket, source_key, source_version) = source;
        check_version(source_version)?;
        self.find_upload(caller, bucket, key, upload_id).await?;
        self.owned_bucket(caller, source_bucket).await?;
        let (object, file) = self.find(source_bucket, source_key, true).await?;
        let mut file = file.ok_or_else(|| S3Error::internal("no body"))?;
        source_conditions.check_copy_source(&object.info.etag, object.info.last_modified)?;
        let size = object.info.size;
        let (start, length) = match source_range {
            None => (0, size),
            Some(text) => {
                let invalid = || {
                    S3Error::InvalidArgument(format!(
                        "Range specified is not valid for source object of size: {size}"
                    ))
                };
                match ByteRange::parse(text) {
                    Some(ByteRange::From {
                        first,
                        last: Some(last),
                    }) if last < size => (first, last - first + 1),
                    _ => return Err(invalid()),
                }
            }
        };
        if length > MAX_PUT_BYTES {
            return Err(S3Error::EntityTooLarge);
        }
        let id = upload_id.to_owned();
        let now = self.clock.now();
        let part = self
            .blocking(move |s| {
                let mut staged = s.stage()?;
                file.seek(std::io::SeekFrom::Start(start))?;
                let etag = copy_hashed(&mut file, &mut staged.file, length)?;
                let part = PartInfo {
                    number,
                    size: length,
                    etag,
                    last_modified: now,
                };
                let body = s.seal(staged)?;
                s.put_part(
                    &id,
                    StoredPart {
                        info: part.clone(),
                        body,
                    },
                )?;
                Ok(part)
            })
            .await?;
        Ok(part)
    }

    /// `CompleteMultipartUpload`: [`S3::plan_completion`], then [`S3::finish_completion`].
    pub async fn complete_upload(
        &self,
        caller: &Caller,
        bucket: &str,
        key: &str,
        upload_id: &str,
        listed: Vec<(i32, String)>,
        condition: WriteCondition,
    ) -> Result<ObjectInfo, S3Error> {
        let plan = self
            .plan_completion(caller, bucket, key, upload_id, listed)
            .await?;
        self.finish_completion(plan, condition).await
    }

    /// Checks a completion: the listed parts `(number, ETag)` must be in ascending order
    /// (`InvalidPartOrder`), uploaded with those ETags (`InvalidPart`), and each but the
    /// last at least 5 MiB (`EntityTooSmall`). Fast: no body is read.
    pub async fn plan_completion(
        &self,
        caller: &Caller,
        bucket: &str,
        key: &str,
        upload_id: &str,
        listed: Vec<(i32, String)>,
    ) -> Result<CompletionPlan, S3Error> {
        if listed.is_empty() {
            return Err(S3Error::MalformedXml);
        }
        let upload = self.find_upload(caller, bucket, key, upload_id).await?;
        let mut previous = 0i64;
        for (number, _) in &listed {
            if i64::from(*number) <= previous {
                return Err(S3Error::InvalidPartOrder);
            }
            previous = i64::from(*number);
        }
        let id = upload_id.to_owned();
        let stored = self.blocking(move |s| s.parts(&id)).await?;
        let mut chosen: Vec<StoredPart> = Vec::with_capacity(listed.len());
        for (number, etag) in &listed {
            let etag = etag.trim().trim_matches('"');
            let part = stored
                .iter()
                .find(|p| i64::from(p.info.number) == i64::from(*number) && p.info.etag == etag)
                .ok_or(S3Error::InvalidPart)?;
            chosen.push(part.clone());
        }
        if chosen[..chosen.len() - 1]
            .iter()
            .any(|p| p.info.size < MIN_PART_BYTES)
        {
            return Err(S3Error::EntityTooSmall);
        }
        let etags: Vec<&str> = chosen.iter().map(|p| p.info.etag.as_str()).collect();
        let info = ObjectInfo {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            size: chosen.iter().map(|p| p.info.size).sum(),
            etag: conditions::multipart_etag(&etags)?,
            last_modified: self.clock.now(),
            meta: upload.meta,
            tags: upload.tags,
            parts: Some(chosen.len() as u32),
            owner: upload.owner,
        };
        Ok(CompletionPlan {
            info,
            chosen,
            upload_id: upload_id.to_owned(),
            caller: caller.clone(),
        })
    }

    /// Carries out a completion: the chosen parts are concatenated into the object's body
    /// by streaming (the kernel copies; no part is held in memory), which is made durable
    /// and committed together with the upload's removal. Takes as long as copying the
    /// object's size takes.
    pub async fn finish_completion(
        &self,
        plan: CompletionPlan,
        condition: WriteCondition,
    ) -> Result<ObjectInfo, S3Error> {
        let CompletionPlan {
            mut info,
            chosen,
            upload_id,
            caller,
        } = plan;
        info.last_modified = self.clock.now();
        let event = self.draft(event_names::COMPLETE_MULTIPART, &caller);
        let stored_info = info.clone();
        self.blocking(move |s| {
            let mut staged = s.stage()?;
            for part in &chosen {
                let mut file = s.open_body(&part.body)?.ok_or(S3Error::InvalidPart)?;
                let copied =
                    std::io::copy(&mut (&mut file).take(part.info.size), &mut staged.file)?;
                if copied != part.info.size {
                    return Err(S3Error::internal("a part's body is shorter than recorded"));
                }
            }
            let body = s.seal(staged)?;
            s.put_object(ObjectWrite {
                object: StoredObject {
                    info: stored_info,
                    body,
                },
                condition,
                event,
                completion: Some(Completion {
                    upload_id,
                    parts: chosen
                        .iter()
                        .map(|p| (p.info.number, p.body.clone()))
                        .collect(),
                }),
            })
        })
        .await?;
        self.signal.notify_one();
        Ok(info)
    }

    /// `AbortMultipartUpload`: the upload and its parts go.
    pub async fn abort_upload(
        &self,
        caller: &Caller,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), S3Error> {
        self.find_upload(caller, bucket, key, upload_id).await?;
        let id = upload_id.to_owned();
        self.blocking(move |s| s.abort_upload(&id)).await
    }

    /// `ListParts`: parts after `marker`, at most `max` (capped at 1,000).
    pub async fn list_parts(
        &self,
        caller: &Caller,
        bucket: &str,
        key: &str,
        upload_id: &str,
        marker: u32,
        max: usize,
    ) -> Result<PartsListing, S3Error> {
        let upload = self.find_upload(caller, bucket, key, upload_id).await?;
        let id = upload_id.to_owned();
        let parts = self.blocking(move |s| s.parts(&id)).await?;
        let max = max.min(MAX_KEYS);
        let mut after: Vec<PartInfo> = parts
            .into_iter()
            .map(|p| p.info)
            .filter(|p| p.number > marker)
            .collect();
        let is_truncated = after.len() > max;
        after.truncate(max);
        let next_marker = is_truncated.then(|| after.last().map_or(marker, |p| p.number));
        Ok(PartsListing {
            upload,
            parts: after,
            is_truncated,
            next_marker,
        })
    }

    /// `ListMultipartUploads`.
    pub async fn list_uploads(
        &self,
        caller: &Caller,
        bucket: &str,
        query: UploadsQuery,
    ) -> Result<UploadsListing, S3Error> {
        self.owned_bucket(caller, bucket).await?;
        let name = bucket.to_owned();
        let uploads = self.blocking(move |s| s.uploads(&name)).await?;
        let max = query.max_uploads.min(MAX_KEYS);
        let mut listing = UploadsListing::default();
        let mut passed_marker = query.upload_id_marker.is_none();
        let mut count = 0;
        for upload in uploads {
            if !upload.key.starts_with(&query.prefix) {
                continue;
            }
            if let Some(key_marker) = &query.key_marker {
                if upload.key < *key_marker {
                    continue;
                }
                if upload.key == *key_marker {
                    match &query.upload_id_marker {
                        None => continue,
                        Some(marker) if !passed_marker => {
                            if upload.upload_id == *marker {
                                passed_marker = true;
                            }
                            continue;
                        }
                        Some(_) => {}
                    }
                }
            }
            let rest = &upload.key[query.prefix.len()..];
            let common = query
                .delimiter
                .as_ref()
                .filter(|d| !d.is_empty())
                .and_then(|d| {
                    rest.find(d.as_str())
                        .map(|at| upload.key[..query.prefix.len() + at + d.len()].to_owned())
                });
            if let Some(common) = common {
                // A key marker that is a common prefix (the last page ended on it) skips
                // the keys under it, or paging would return it for ever.
                if listing.common_prefixes.last() == Some(&common)
                    || query.key_marker.as_ref() == Some(&common)
                {
                    continue;
                }
                if count == max {
                    listing.is_truncated = true;
                    break;
                }
                count += 1;
                listing.next_key_marker = Some(common.clone());
                listing.next_upload_id_marker = None;
                listing.common_prefixes.push(common);
                continue;
            }
            if count == max {
                listing.is_truncated = true;
                break;
            }
            count += 1;
            listing.next_key_marker = Some(upload.key.clone());
            listing.next_upload_id_marker = Some(upload.upload_id.clone());
            listing.uploads.push(upload);
        }
        if !listing.is_truncated {
            listing.next_key_marker = None;
            listing.next_upload_id_marker = None;
        }
        Ok(listing)
    }

    // --- The event outbox ------------------------------------------------------------

    /// Woken (`notify_one`) after every write that may have recorded events; a consumer
    /// waits on it between claims (with a timeout, for leases that end).
    pub fn event_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.signal)
    }

    /// Claims up to `max` events for `lease` (oldest first); unacknowledged ones are
    /// claimable again when the lease ends.
    pub async fn claim_events(
        &self,
        max: usize,
        lease: std::time::Duration,
    ) -> Result<Vec<ClaimedEvent>, S3Error> {
        let now = self.now_ms();
        let lease = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        self.blocking(move |s| s.claim_events(now, max, lease))
            .await
    }

    /// Acknowledges (removes) delivered events.
    pub async fn ack_events(&self, ids: Vec<i64>) -> Result<(), S3Error> {
        self.blocking(move |s| s.ack_events(&ids)).await
    }

    /// Makes every claimed event claimable again (at start).
    pub async fn release_events(&self) -> Result<(), S3Error> {
        self.blocking(|s| s.release_events()).await
    }
}

/// A body received into a staged file.
#[derive(Debug)]
struct Received {
    staged: Staged,
    size: u64,
    md5: String,
}

/// Writes buffered pieces of a body on the blocking pool, hashing them there.
struct Sink {
    /// The file and the hash so far (away while a piece is being written).
    state: Option<(Staged, Md5)>,
    buffer: Vec<u8>,
    size: u64,
}

impl Sink {
    async fn flush(&mut self) -> Result<(), S3Error> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let (mut staged, mut md5) = self
            .state
            .take()
            .ok_or_else(|| S3Error::internal("a body write was interrupted"))?;
        let buffer = std::mem::replace(&mut self.buffer, Vec::with_capacity(WRITE_BUFFER));
        let (staged, md5) = tokio::task::spawn_blocking(move || {
            md5.update(&buffer);
            staged.file.write_all(&buffer).map(|()| (staged, md5))
        })
        .await
        .map_err(S3Error::internal)??;
        self.state = Some((staged, md5));
        Ok(())
    }
}

/// Copies `length` bytes, returning their hex MD5.
fn copy_hashed(
    from: &mut std::fs::File,
    to: &mut std::fs::File,
    length: u64,
) -> Result<String, S3Error> {
    let mut md5 = Md5::new();
    let mut buffer = vec![0u8; WRITE_BUFFER];
    let mut left = length;
    while left > 0 {
        let want = usize::try_from(left.min(WRITE_BUFFER as u64)).unwrap_or(WRITE_BUFFER);
        let read = from.read(&mut buffer[..want])?;
        if read == 0 {
            return Err(S3Error::internal("the copy source ended early"));
        }
        md5.update(&buffer[..read]);
        to.write_all(&buffer[..read])?;
        left -= read as u64;
    }
    Ok(hex::encode(md5.finalize()))
}

/// Only the current version exists (buckets are not versioned): `null` or none.
fn check_version(version: Option<&str>) -> Result<(), S3Error> {
    match version {
        None | Some("null") => Ok(()),
        Some(_) => Err(S3Error::InvalidVersion),
    }
}

fn check_part_number(number: i32) -> Result<u32, S3Error> {
    match u32::try_from(number) {
        Ok(n) if (1..=MAX_PART_NUMBER).contains(&n) => Ok(n),
        _ => Err(S3Error::InvalidArgument(
            "Part number must be an integer between 1 and 10000, inclusive".into(),
        )),
    }
}

/// The least byte string greater than every string beginning with `prefix`; `None` when
/// there is none (an empty prefix, or all `0xFF`).
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut next = prefix.to_vec();
    while let Some(last) = next.pop() {
        if last < 0xFF {
            next.push(last + 1);
            return Some(next);
        }
    }
    None
}

/// Where a continuation token resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resume {
    /// After this key.
    After(Vec<u8>),
    /// After every key beginning with this common prefix.
    Past(Vec<u8>),
}

fn encode_token(resume: &Resume) -> String {
    use base64::Engine;
    let (tag, key) = match resume {
        Resume::After(k) => (b'k', k),
        Resume::Past(k) => (b'p', k),
    };
    let mut raw = vec![tag];
    raw.extend_from_slice(key);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_token(token: &str) -> Result<Resume, S3Error> {
    use base64::Engine;
    let invalid =
        || S3Error::InvalidArgument("The continuation token provided is incorrect".into());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid())?;
    match raw.split_first() {
        Some((b'k', key)) => Ok(Resume::After(key.to_vec())),
        Some((b'p', key)) => Ok(Resume::Past(key.to_vec())),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successors() {
        assert_eq!(successor(b"a/"), Some(b"a0".to_vec()));
        assert_eq!(successor(b""), None);
        assert_eq!(successor(&[0x61, 0xFF]), Some(vec![0x62]));
        assert_eq!(successor(&[0xFF]), None);
    }

    #[test]
    fn tokens_round_trip() {
        for resume in [
            Resume::After(b"a/b".to_vec()),
            Resume::Past("é/".as_bytes().to_vec()),
        ] {
            assert_eq!(decode_token(&encode_token(&resume)).unwrap(), resume);
        }
        assert!(decode_token("!!").is_err());
        assert!(decode_token("").is_err());
    }
}
