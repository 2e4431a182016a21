//! The service over the real embedded store in temporary directories.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use time::OffsetDateTime;

use crate::service::{ListQuery, ListStart, PutObject};
use crate::*;

#[derive(Debug)]
struct TestClock(Mutex<OffsetDateTime>);

impl gust_model::Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

impl TestClock {
    fn advance(&self, seconds: i64) {
        *self.0.lock().unwrap() += time::Duration::seconds(seconds);
    }
}

/// A body arriving in pieces, possibly breaking off.
struct Chunks(VecDeque<Result<Bytes, String>>);

impl futures_core::Stream for Chunks {
    type Item = Result<Bytes, String>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.pop_front())
    }
}

fn body(data: &[u8]) -> Chunks {
    Chunks(
        data.chunks(7000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect(),
    )
}

struct Env {
    dir: tempfile::TempDir,
    s3: Arc<S3>,
    clock: Arc<TestClock>,
}

const ALICE: &str = "111111111111";
const BOB: &str = "222222222222";

fn alice() -> Caller {
    Caller::account(ALICE)
}

fn bob() -> Caller {
    Caller::account(BOB)
}

fn db(dir: &Path) -> PathBuf {
    dir.join("s3.db")
}

fn objects(dir: &Path) -> PathBuf {
    dir.join("s3").join("objects")
}

fn open(dir: &Path, clock: &Arc<TestClock>) -> (Arc<LocalStore>, Arc<S3>) {
    let store = Arc::new(LocalStore::open(&db(dir), &objects(dir)).unwrap());
    let s3 = S3::new(store.clone(), clock.clone(), "us-east-1");
    (store, s3)
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock(Mutex::new(
        OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap(),
    )));
    let (_, s3) = open(dir.path(), &clock);
    Env { dir, s3, clock }
}

impl Env {
    async fn bucket(&self, name: &str) {
        self.s3.create_bucket(&alice(), name, None).await.unwrap();
    }

    async fn put(&self, bucket: &str, key: &str, data: &[u8]) -> ObjectInfo {
        self.s3
            .put_object(
                &alice(),
                PutObject {
                    bucket: bucket.into(),
                    key: key.into(),
                    content_length: Some(data.len() as u64),
                    ..Default::default()
                },
                body(data),
            )
            .await
            .unwrap()
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, S3Error> {
        self.s3
            .read_object_bytes(ALICE, bucket, key, None, u64::MAX)
            .await
            .map(|(_, bytes)| bytes)
    }

    /// Every file under the objects directory, relative to it.
    fn files(&self) -> Vec<String> {
        let root = objects(self.dir.path());
        let mut found = Vec::new();
        for shard in std::fs::read_dir(&root).unwrap() {
            let shard = shard.unwrap().path();
            for file in std::fs::read_dir(&shard).unwrap() {
                let path = file.unwrap().path();
                found.push(path.strip_prefix(&root).unwrap().display().to_string());
            }
        }
        found.sort();
        found
    }

    async fn keys(&self, bucket: &str, query: ListQuery) -> (Vec<String>, Vec<String>, Listing) {
        let listing = self.s3.list_objects(&alice(), bucket, query).await.unwrap();
        (
            listing.objects.iter().map(|o| o.key.clone()).collect(),
            listing.common_prefixes.clone(),
            listing,
        )
    }
}

#[tokio::test]
async fn buckets_follow_s3_rules() {
    let env = env();
    let s3 = &env.s3;
    let created = s3.create_bucket(&alice(), "photos", None).await.unwrap();
    assert_eq!(created.account, ALICE);
    assert_eq!(created.region, "us-east-1");
    assert_eq!(
        s3.create_bucket(&alice(), "photos", None).await,
        Err(S3Error::BucketAlreadyOwnedByYou)
    );
    // Names are global across the server's accounts.
    assert_eq!(
        s3.create_bucket(&bob(), "photos", None).await,
        Err(S3Error::BucketAlreadyExists)
    );
    assert_eq!(
        s3.create_bucket(&alice(), "Bad_Name", None).await,
        Err(S3Error::InvalidBucketName)
    );
    assert!(matches!(
        s3.create_bucket(&alice(), "elsewhere", Some("eu-west-1"))
            .await,
        Err(S3Error::InvalidLocationConstraint(_))
    ));
    assert!(matches!(
        s3.create_bucket(&alice(), "elsewhere", Some("us-east-1"))
            .await,
        Err(S3Error::InvalidLocationConstraint(_))
    ));
    // Another account's bucket is refused, not hidden.
    assert_eq!(
        s3.head_bucket(&bob(), "photos").await,
        Err(S3Error::AccessDenied)
    );
    assert_eq!(
        s3.head_bucket(&alice(), "nothing-here").await,
        Err(S3Error::NoSuchBucket)
    );
    s3.create_bucket(&bob(), "bobs", None).await.unwrap();
    let names = |list: Vec<BucketInfo>| list.into_iter().map(|b| b.name).collect::<Vec<_>>();
    assert_eq!(
        names(s3.list_buckets(&alice(), None).await.unwrap()),
        ["photos"]
    );
    assert_eq!(
        names(s3.list_buckets(&bob(), None).await.unwrap()),
        ["bobs"]
    );
    assert!(s3.list_buckets(&bob(), Some("x")).await.unwrap().is_empty());
    // Deleting: not another's, not a non-empty one.
    assert_eq!(
        s3.delete_bucket(&bob(), "photos").await,
        Err(S3Error::AccessDenied)
    );
    env.put("photos", "a", b"x").await;
    assert_eq!(
        s3.delete_bucket(&alice(), "photos").await,
        Err(S3Error::BucketNotEmpty)
    );
    s3.delete_object(&alice(), "photos", "a", None)
        .await
        .unwrap();
    // Uploads in progress go with the bucket.
    let upload = s3
        .create_upload(&alice(), "photos", "big", ObjectMeta::default(), Vec::new())
        .await
        .unwrap();
    s3.upload_part(
        &alice(),
        "photos",
        "big",
        &upload.upload_id,
        1,
        None,
        None,
        body(b"part"),
    )
    .await
    .unwrap();
    s3.delete_bucket(&alice(), "photos").await.unwrap();
    assert!(env.files().is_empty());
    assert_eq!(
        s3.head_bucket(&alice(), "photos").await,
        Err(S3Error::NoSuchBucket)
    );
    // The name is free again, for anyone.
    s3.create_bucket(&bob(), "photos", None).await.unwrap();
}

#[tokio::test]
async fn regional_servers_need_their_constraint() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock(Mutex::new(OffsetDateTime::UNIX_EPOCH)));
    let store = Arc::new(LocalStore::open(&db(dir.path()), &objects(dir.path())).unwrap());
    let s3 = S3::new(store, clock, "eu-west-1");
    assert_eq!(
        s3.create_bucket(&alice(), "abc", None).await,
        Err(S3Error::IllegalLocationConstraint)
    );
    let bucket = s3
        .create_bucket(&alice(), "abc", Some("eu-west-1"))
        .await
        .unwrap();
    assert_eq!(bucket.region, "eu-west-1");
}

#[tokio::test]
async fn put_get_head_with_metadata() {
    let env = env();
    env.bucket("bkt").await;
    let mut meta = ObjectMeta {
        content_type: Some("text/plain".into()),
        cache_control: Some("max-age=60".into()),
        content_disposition: Some("attachment".into()),
        content_encoding: Some("identity".into()),
        content_language: Some("en".into()),
        expires_ms: Some(1_800_000_000_000),
        ..Default::default()
    };
    meta.user.insert("colour".into(), "blue".into());
    let info = env
        .s3
        .put_object(
            &alice(),
            PutObject {
                bucket: "bkt".into(),
                key: "hello.txt".into(),
                meta: meta.clone(),
                tags: names::parse_tagging_header("k=v").unwrap(),
                content_length: Some(11),
                content_md5: Some("XrY7u+Ae7tCTyyK7j1rNww==".into()),
                ..Default::default()
            },
            body(b"hello world"),
        )
        .await
        .unwrap();
    assert_eq!(info.etag, "5eb63bbbe01eeed093cb22bb8f5acdc3");
    assert_eq!(info.quoted_etag(), "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"");
    let (head, span) = env
        .s3
        .head_object(
            &alice(),
            "bkt",
            "hello.txt",
            None,
            &Conditions::default(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(span, None);
    assert_eq!(head.meta, meta);
    assert_eq!(head.tags, vec![("k".to_owned(), "v".to_owned())]);
    assert_eq!(head.size, 11);
    assert_eq!(env.get("bkt", "hello.txt").await.unwrap(), b"hello world");
    // No content type: S3's default.
    let plain = env.put("bkt", "plain", b"").await;
    assert_eq!(
        plain.meta.content_type.as_deref(),
        Some(DEFAULT_CONTENT_TYPE)
    );
    assert_eq!(plain.etag, "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(env.get("bkt", "plain").await.unwrap(), b"");
    assert_eq!(env.get("bkt", "missing").await, Err(S3Error::NoSuchKey));
    // Bob cannot read Alice's object.
    assert_eq!(
        env.s3
            .read_object_bytes(BOB, "bkt", "hello.txt", None, 100)
            .await,
        Err(S3Error::AccessDenied)
    );
    assert_eq!(
        env.s3
            .read_object_bytes(ALICE, "bkt", "hello.txt", None, 5)
            .await,
        Err(S3Error::ObjectTooLarge { size: 11, max: 5 })
    );
    assert_eq!(
        env.s3
            .read_object_bytes(ALICE, "bkt", "hello.txt", Some("3HL4kqtJlcpXroDTDmJ"), 100)
            .await,
        Err(S3Error::InvalidVersion)
    );
    assert_eq!(
        env.s3
            .read_object_bytes(ALICE, "bkt", "hello.txt", Some("null"), 100)
            .await
            .unwrap()
            .1,
        b"hello world"
    );
}

#[tokio::test]
async fn bad_bodies_leave_nothing() {
    let env = env();
    env.bucket("bkt").await;
    let put = |length: Option<u64>, md5: Option<&str>| PutObject {
        bucket: "bkt".into(),
        key: "k".into(),
        content_length: length,
        content_md5: md5.map(str::to_owned),
        ..Default::default()
    };
    // Shorter than declared.
    assert_eq!(
        env.s3
            .put_object(&alice(), put(Some(20), None), body(b"short"))
            .await,
        Err(S3Error::IncompleteBody)
    );
    // Longer than declared.
    assert_eq!(
        env.s3
            .put_object(&alice(), put(Some(2), None), body(b"longer"))
            .await,
        Err(S3Error::IncompleteBody)
    );
    // A digest of other bytes.
    assert_eq!(
        env.s3
            .put_object(
                &alice(),
                put(None, Some("XrY7u+Ae7tCTyyK7j1rNww==")),
                body(b"hello")
            )
            .await,
        Err(S3Error::BadDigest)
    );
    assert_eq!(
        env.s3
            .put_object(&alice(), put(None, Some("xx")), body(b"hello"))
            .await,
        Err(S3Error::InvalidDigest)
    );
    // A body that breaks off half way (a client gone, a bad chunk signature).
    let mut broken = body(&vec![7u8; 3 * 1024 * 1024]);
    broken.0.push_back(Err("connection reset".into()));
    assert_eq!(
        env.s3.put_object(&alice(), put(None, None), broken).await,
        Err(S3Error::IncompleteBody)
    );
    assert_eq!(
        env.s3
            .put_object(&alice(), put(Some(MAX_PUT_BYTES + 1), None), body(b""))
            .await,
        Err(S3Error::EntityTooLarge)
    );
    // A put whose future is dropped mid-body (the connection closed).
    let pending = Chunks(VecDeque::from([Ok(Bytes::from(vec![
        1u8;
        3 * 1024 * 1024
    ]))]));
    struct Stall(Option<Chunks>);
    impl futures_core::Stream for Stall {
        type Item = Result<Bytes, String>;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            match self.0.as_mut().and_then(|c| c.0.pop_front()) {
                Some(item) => Poll::Ready(Some(item)),
                None => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            }
        }
    }
    let me = alice();
    let stalled = env
        .s3
        .put_object(&me, put(None, None), Stall(Some(pending)));
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), stalled)
            .await
            .is_err()
    );
    // Give the blocking pool a moment to finish the write it had started.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(env.get("bkt", "k").await, Err(S3Error::NoSuchKey));
    assert!(env.files().is_empty(), "{:?}", env.files());
}

#[tokio::test]
async fn crash_leftovers_are_not_objects() {
    let env = env();
    env.bucket("bkt").await;
    env.put("bkt", "kept", b"kept").await;
    let store = env.s3.store().clone();
    // A write interrupted before its rename: a temporary file.
    let staged = store.stage().unwrap();
    std::fs::write(&staged.temp_path, b"partial").unwrap();
    let temp = staged.temp_path.clone();
    std::mem::forget(staged);
    // A write interrupted between its rename and its commit: a body nothing references.
    let mut sealed = store.stage().unwrap();
    std::io::Write::write_all(&mut sealed.file, b"orphan").unwrap();
    let orphan = store.seal(sealed).unwrap();
    assert_eq!(env.files().len(), 3);
    drop(store);
    let (store, s3) = open(env.dir.path(), &env.clock);
    assert_eq!(
        store.collected(),
        sqlite::Collected {
            temporary: 1,
            orphans: 1
        }
    );
    assert!(!temp.exists());
    assert!(store.body_path(&orphan).is_some_and(|p| !p.exists()));
    let listing = s3
        .list_objects(
            &alice(),
            "bkt",
            ListQuery {
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listing.objects.len(), 1);
    assert_eq!(
        s3.read_object_bytes(ALICE, "bkt", "kept", None, 100)
            .await
            .unwrap()
            .1,
        b"kept"
    );
}

#[tokio::test]
async fn keys_never_name_paths() {
    let env = env();
    env.bucket("bkt").await;
    let long = "k/".repeat(511) + "zz";
    assert_eq!(long.len(), 1024);
    let keys = [
        "../../../../etc/passwd",
        "..",
        "/absolute",
        "a%2F..%2F..%2Fescape",
        "%2e%2e/%2e%2e/x",
        "dir/../../x",
        "\u{0}nul",
        "ünïcödé/日本語/🙂",
        "back\\slash\\..\\..",
        long.as_str(),
    ];
    for (i, key) in keys.iter().enumerate() {
        env.put("bkt", key, format!("body {i}").as_bytes()).await;
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            env.get("bkt", key).await.unwrap(),
            format!("body {i}").as_bytes()
        );
    }
    // Every file is a body id in a shard of the objects directory, nothing else anywhere.
    let files = env.files();
    assert_eq!(files.len(), keys.len());
    for file in &files {
        let (shard, id) = file.split_once('/').unwrap();
        assert_eq!(shard.len(), 2);
        assert_eq!(id.len(), 32);
        assert!(id.starts_with(shard));
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    let mut everything = Vec::new();
    fn walk(dir: &Path, into: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, into);
            } else {
                into.push(path);
            }
        }
    }
    walk(env.dir.path(), &mut everything);
    for path in everything {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            path.starts_with(objects(env.dir.path())) || name.starts_with("s3.db"),
            "{}",
            path.display()
        );
    }
    assert_eq!(
        env.s3
            .put_object(
                &alice(),
                PutObject {
                    bucket: "bkt".into(),
                    key: long + "x",
                    ..Default::default()
                },
                body(b""),
            )
            .await,
        Err(S3Error::KeyTooLong)
    );
}

#[tokio::test]
async fn replaced_and_deleted_bodies_go() {
    let env = env();
    env.bucket("bkt").await;
    env.put("bkt", "k", b"one").await;
    let first = env.files();
    let second = env.put("bkt", "k", b"two").await;
    assert_eq!(second.etag, conditions::md5_hex(b"two"));
    let files = env.files();
    assert_eq!(files.len(), 1);
    assert_ne!(files, first);
    assert_eq!(env.get("bkt", "k").await.unwrap(), b"two");
    env.s3
        .delete_object(&alice(), "bkt", "k", None)
        .await
        .unwrap();
    assert!(env.files().is_empty());
    // Deleting again (or a key never written) succeeds.
    env.s3
        .delete_object(&alice(), "bkt", "k", None)
        .await
        .unwrap();
    env.s3
        .delete_object(&alice(), "bkt", "never", None)
        .await
        .unwrap();
    assert_eq!(
        env.s3.delete_object(&bob(), "bkt", "k", None).await,
        Err(S3Error::AccessDenied)
    );
}

#[tokio::test]
async fn delete_objects_reports_each_key() {
    let env = env();
    env.bucket("bkt").await;
    for key in ["a", "bkt", "cpy"] {
        env.put("bkt", key, key.as_bytes()).await;
    }
    let entry = |key: &str, version: Option<&str>| DeleteEntry {
        key: key.into(),
        version: version.map(str::to_owned),
    };
    let outcomes = env
        .s3
        .delete_objects(
            &alice(),
            "bkt",
            vec![
                entry("a", None),
                entry("missing", None),
                entry("bkt", Some("v123")),
                entry("cpy", Some("null")),
            ],
        )
        .await
        .unwrap();
    assert_eq!(outcomes[0], Ok(entry("a", None)));
    assert_eq!(outcomes[1], Ok(entry("missing", None)));
    let failure = outcomes[2].clone().unwrap_err();
    assert_eq!(failure.key, "bkt");
    assert_eq!(failure.code, "InvalidArgument");
    assert_eq!(outcomes[3], Ok(entry("cpy", Some("null"))));
    assert_eq!(env.get("bkt", "bkt").await.unwrap(), b"bkt");
    assert_eq!(env.get("bkt", "a").await, Err(S3Error::NoSuchKey));
    assert_eq!(
        env.s3.delete_objects(&alice(), "bkt", Vec::new()).await,
        Err(S3Error::MalformedXml)
    );
    let too_many = (0..1001).map(|i| entry(&i.to_string(), None)).collect();
    assert_eq!(
        env.s3.delete_objects(&alice(), "bkt", too_many).await,
        Err(S3Error::MalformedXml)
    );
}

#[tokio::test]
async fn ranges_and_conditions() {
    let env = env();
    env.bucket("bkt").await;
    let data: Vec<u8> = (0..100u8).collect();
    let info = env.put("bkt", "k", &data).await;
    let read = |conditions: Conditions, range: Option<&'static str>| {
        let s3 = env.s3.clone();
        async move {
            let read = s3
                .get_object(
                    &alice(),
                    "bkt",
                    "k",
                    None,
                    &conditions,
                    range.and_then(ByteRange::parse),
                )
                .await?;
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(
                &mut std::io::Read::take(read.file, read.length),
                &mut bytes,
            )
            .unwrap();
            Ok::<_, S3Error>((read.range, bytes))
        }
    };
    let none = Conditions::default;
    assert_eq!(
        read(none(), Some("bytes=10-19")).await.unwrap(),
        (Some((10, 19)), data[10..20].to_vec())
    );
    assert_eq!(
        read(none(), Some("bytes=95-")).await.unwrap(),
        (Some((95, 99)), data[95..].to_vec())
    );
    assert_eq!(
        read(none(), Some("bytes=-3")).await.unwrap(),
        (Some((97, 99)), data[97..].to_vec())
    );
    assert_eq!(
        read(none(), Some("bytes=90-500")).await.unwrap().1,
        data[90..].to_vec()
    );
    assert_eq!(
        read(none(), Some("bytes=100-")).await,
        Err(S3Error::InvalidRange { size: 100 })
    );
    // An unparseable range is ignored: the whole object.
    assert_eq!(
        read(none(), Some("bytes=9-1")).await.unwrap(),
        (None, data.clone())
    );
    let etag = info.quoted_etag();
    let modified = info.last_modified;
    let with = |f: &dyn Fn(&mut Conditions)| {
        let mut c = Conditions::default();
        f(&mut c);
        c
    };
    assert!(
        read(with(&|c| c.if_match = Some(EtagMatch::parse(&etag))), None)
            .await
            .is_ok()
    );
    assert_eq!(
        read(
            with(&|c| c.if_match = Some(EtagMatch::parse("\"other\""))),
            None
        )
        .await,
        Err(S3Error::PreconditionFailed)
    );
    assert_eq!(
        read(
            with(&|c| c.if_none_match = Some(EtagMatch::parse(&etag))),
            None
        )
        .await,
        Err(S3Error::NotModified)
    );
    assert_eq!(
        read(with(&|c| c.if_modified_since = Some(modified)), None).await,
        Err(S3Error::NotModified)
    );
    assert!(read(
        with(&|c| c.if_modified_since = Some(modified - time::Duration::seconds(1))),
        None
    )
    .await
    .is_ok());
    assert_eq!(
        read(
            with(&|c| c.if_unmodified_since = Some(modified - time::Duration::seconds(1))),
            None
        )
        .await,
        Err(S3Error::PreconditionFailed)
    );
    // Conditions come before the range.
    assert_eq!(
        read(
            with(&|c| c.if_none_match = Some(EtagMatch::Any)),
            Some("bytes=500-")
        )
        .await,
        Err(S3Error::NotModified)
    );
    // HEAD reports the span.
    let (_, span) = env
        .s3
        .head_object(
            &alice(),
            "bkt",
            "k",
            None,
            &Conditions::default(),
            ByteRange::parse("bytes=0-0"),
        )
        .await
        .unwrap();
    assert_eq!(span, Some((0, 0)));
    // Conditional writes: If-None-Match: * creates only.
    let create_only = PutObject {
        bucket: "bkt".into(),
        key: "k".into(),
        condition: WriteCondition {
            if_none_match: Some(EtagMatch::Any),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(
        env.s3
            .put_object(&alice(), create_only.clone(), body(b"x"))
            .await,
        Err(S3Error::PreconditionFailed)
    );
    assert!(env.files().len() == 1, "the refused body is gone");
    let fresh = PutObject {
        key: "fresh".into(),
        ..create_only
    };
    env.s3
        .put_object(&alice(), fresh, body(b"x"))
        .await
        .unwrap();
    let replace_if = PutObject {
        bucket: "bkt".into(),
        key: "k".into(),
        condition: WriteCondition {
            if_match: Some(EtagMatch::parse(&etag)),
            ..Default::default()
        },
        ..Default::default()
    };
    env.s3
        .put_object(&alice(), replace_if.clone(), body(b"y"))
        .await
        .unwrap();
    assert_eq!(
        env.s3.put_object(&alice(), replace_if, body(b"z")).await,
        Err(S3Error::PreconditionFailed)
    );
}

#[tokio::test]
async fn copies() {
    let env = env();
    env.bucket("bkt").await;
    env.bucket("cpy").await;
    env.s3.create_bucket(&bob(), "bobs", None).await.unwrap();
    let mut meta = ObjectMeta {
        content_type: Some("text/plain".into()),
        ..Default::default()
    };
    meta.user.insert("a".into(), "1".into());
    let source = env
        .s3
        .put_object(
            &alice(),
            PutObject {
                bucket: "bkt".into(),
                key: "src".into(),
                meta: meta.clone(),
                tags: vec![("t".into(), "1".into())],
                ..Default::default()
            },
            body(b"copy me"),
        )
        .await
        .unwrap();
    env.clock.advance(5);
    let copy = |key: &str| CopyObject {
        source_bucket: "bkt".into(),
        source_key: "src".into(),
        bucket: "cpy".into(),
        key: key.into(),
        ..Default::default()
    };
    let copied = env.s3.copy_object(&alice(), copy("dst")).await.unwrap();
    assert_eq!(copied.etag, source.etag);
    assert_eq!(copied.meta, meta);
    assert_eq!(copied.tags, source.tags);
    assert!(copied.last_modified > source.last_modified);
    assert_eq!(env.get("cpy", "dst").await.unwrap(), b"copy me");
    // REPLACE takes the request's metadata and tags.
    let replaced = env
        .s3
        .copy_object(
            &alice(),
            CopyObject {
                replace_meta: Some(ObjectMeta::default()),
                replace_tags: Some(Vec::new()),
                ..copy("dst2")
            },
        )
        .await
        .unwrap();
    assert_eq!(
        replaced.meta.content_type.as_deref(),
        Some(DEFAULT_CONTENT_TYPE)
    );
    assert!(replaced.meta.user.is_empty());
    assert!(replaced.tags.is_empty());
    // Onto itself only with a change.
    let onto_itself = CopyObject {
        bucket: "bkt".into(),
        key: "src".into(),
        ..copy("")
    };
    assert!(matches!(
        env.s3.copy_object(&alice(), onto_itself.clone()).await,
        Err(S3Error::InvalidRequest(_))
    ));
    env.s3
        .copy_object(
            &alice(),
            CopyObject {
                replace_meta: Some(meta.clone()),
                ..onto_itself
            },
        )
        .await
        .unwrap();
    // Source conditions fail with 412.
    let conditions = Conditions {
        if_none_match: Some(EtagMatch::parse(&source.etag)),
        ..Default::default()
    };
    assert_eq!(
        env.s3
            .copy_object(
                &alice(),
                CopyObject {
                    source_conditions: conditions,
                    ..copy("dst3")
                }
            )
            .await,
        Err(S3Error::PreconditionFailed)
    );
    // Not from or into another account's bucket.
    assert_eq!(
        env.s3
            .copy_object(
                &alice(),
                CopyObject {
                    bucket: "bobs".into(),
                    ..copy("x")
                }
            )
            .await,
        Err(S3Error::AccessDenied)
    );
    assert_eq!(
        env.s3
            .copy_object(
                &alice(),
                CopyObject {
                    source_key: "nope".into(),
                    ..copy("x")
                }
            )
            .await,
        Err(S3Error::NoSuchKey)
    );
}

#[tokio::test]
async fn listings() {
    let env = env();
    env.bucket("bkt").await;
    let keys = [
        "a.txt",
        "photos/2024/jan.jpg",
        "photos/2024/feb.jpg",
        "photos/2025/mar.jpg",
        "photos/index.html",
        "z",
        "é",
        "photos/ü/x",
    ];
    for key in keys {
        env.put("bkt", key, key.as_bytes()).await;
    }
    let all = ListQuery {
        max_keys: 1000,
        ..Default::default()
    };
    let (found, _, listing) = env.keys("bkt", all.clone()).await;
    let mut sorted: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(found, sorted);
    assert!(!listing.is_truncated);
    assert_eq!(listing.objects[0].size, 5);
    assert_eq!(listing.objects[0].owner, ALICE);
    // Delimiter at the top.
    let (found, prefixes, _) = env
        .keys(
            "bkt",
            ListQuery {
                delimiter: Some("/".into()),
                ..all.clone()
            },
        )
        .await;
    assert_eq!(found, ["a.txt", "z", "é"]);
    assert_eq!(prefixes, ["photos/"]);
    // Prefix and delimiter.
    let (found, prefixes, _) = env
        .keys(
            "bkt",
            ListQuery {
                prefix: "photos/".into(),
                delimiter: Some("/".into()),
                ..all.clone()
            },
        )
        .await;
    assert_eq!(found, ["photos/index.html"]);
    assert_eq!(prefixes, ["photos/2024/", "photos/2025/", "photos/ü/"]);
    // Paging by two with a delimiter: prefixes count as keys and tokens skip past them.
    let mut query = ListQuery {
        prefix: "photos/".into(),
        delimiter: Some("/".into()),
        max_keys: 2,
        ..Default::default()
    };
    let mut pages = Vec::new();
    loop {
        let (found, prefixes, listing) = env.keys("bkt", query.clone()).await;
        pages.push((found, prefixes));
        if !listing.is_truncated {
            assert!(listing.next_token.is_none());
            break;
        }
        query.start = ListStart::Token(listing.next_token.unwrap());
    }
    assert_eq!(
        pages,
        vec![
            (
                vec![],
                vec!["photos/2024/".to_owned(), "photos/2025/".to_owned()]
            ),
            (
                vec!["photos/index.html".to_owned()],
                vec!["photos/ü/".to_owned()]
            ),
        ]
    );
    // Paging without a delimiter, one key at a time.
    let mut query = ListQuery {
        max_keys: 1,
        ..Default::default()
    };
    let mut seen = Vec::new();
    loop {
        let (found, _, listing) = env.keys("bkt", query.clone()).await;
        seen.extend(found);
        if !listing.is_truncated {
            break;
        }
        assert_eq!(
            listing.next_marker.as_deref(),
            seen.last().map(String::as_str)
        );
        query.start = ListStart::Token(listing.next_token.unwrap());
    }
    assert_eq!(seen, sorted);
    // StartAfter / Marker.
    let (found, _, _) = env
        .keys(
            "bkt",
            ListQuery {
                start: ListStart::After("photos/index.html".into()),
                ..all.clone()
            },
        )
        .await;
    assert_eq!(found, ["photos/ü/x", "z", "é"]);
    let (found, prefixes, _) = env
        .keys(
            "bkt",
            ListQuery {
                start: ListStart::After("photos/2024/feb.jpg".into()),
                delimiter: Some("/".into()),
                ..all.clone()
            },
        )
        .await;
    assert_eq!(prefixes, ["photos/"]);
    assert_eq!(found, ["z", "é"]);
    // A marker that is a common prefix (v1's NextMarker) goes past it.
    let (found, prefixes, _) = env
        .keys(
            "bkt",
            ListQuery {
                start: ListStart::After("photos/".into()),
                delimiter: Some("/".into()),
                ..all.clone()
            },
        )
        .await;
    assert!(prefixes.is_empty());
    assert_eq!(found, ["z", "é"]);
    // No keys at all.
    let (found, prefixes, listing) = env
        .keys(
            "bkt",
            ListQuery {
                max_keys: 0,
                ..all.clone()
            },
        )
        .await;
    assert!(found.is_empty() && prefixes.is_empty() && !listing.is_truncated);
    assert!(matches!(
        env.s3
            .list_objects(
                &alice(),
                "bkt",
                ListQuery {
                    start: ListStart::Token("***".into()),
                    ..all.clone()
                }
            )
            .await,
        Err(S3Error::InvalidArgument(_))
    ));
    assert_eq!(
        env.s3.list_objects(&bob(), "bkt", all).await.unwrap_err(),
        S3Error::AccessDenied
    );
}

#[tokio::test]
async fn listings_page_through_many_keys() {
    let env = env();
    env.bucket("bkt").await;
    for i in 0..2100 {
        env.put("bkt", &format!("dir{}/k{i:05}", i % 3), b"").await;
    }
    let mut query = ListQuery {
        max_keys: 1000,
        ..Default::default()
    };
    let mut total = 0;
    loop {
        let listing = env
            .s3
            .list_objects(&alice(), "bkt", query.clone())
            .await
            .unwrap();
        total += listing.objects.len();
        if !listing.is_truncated {
            break;
        }
        query.start = ListStart::Token(listing.next_token.unwrap());
    }
    assert_eq!(total, 2100);
    let (_, prefixes, listing) = env
        .keys(
            "bkt",
            ListQuery {
                delimiter: Some("/".into()),
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await;
    assert_eq!(prefixes, ["dir0/", "dir1/", "dir2/"]);
    assert!(!listing.is_truncated);
}

#[tokio::test]
async fn tagging() {
    let env = env();
    env.bucket("bkt").await;
    env.put("bkt", "k", b"x").await;
    assert!(env
        .s3
        .get_tags(&alice(), "bkt", "k", None)
        .await
        .unwrap()
        .is_empty());
    let tags = vec![
        ("a".to_owned(), "1".to_owned()),
        ("bkt".to_owned(), "2".to_owned()),
    ];
    env.s3
        .put_tags(&alice(), "bkt", "k", None, tags.clone())
        .await
        .unwrap();
    assert_eq!(
        env.s3.get_tags(&alice(), "bkt", "k", None).await.unwrap(),
        tags
    );
    assert!(matches!(
        env.s3
            .put_tags(
                &alice(),
                "bkt",
                "k",
                None,
                vec![("aws:x".into(), "1".into())]
            )
            .await,
        Err(S3Error::InvalidTag(_))
    ));
    assert_eq!(
        env.s3.put_tags(&alice(), "bkt", "nope", None, tags).await,
        Err(S3Error::NoSuchKey)
    );
    env.s3
        .put_tags(&alice(), "bkt", "k", None, Vec::new())
        .await
        .unwrap();
    assert!(env
        .s3
        .get_tags(&alice(), "bkt", "k", None)
        .await
        .unwrap()
        .is_empty());
}

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn multipart_uploads() {
    let env = env();
    env.bucket("bkt").await;
    let s3 = &env.s3;
    let mut meta = ObjectMeta {
        content_type: Some("video/mp4".into()),
        ..Default::default()
    };
    meta.user.insert("m".into(), "1".into());
    let upload = s3
        .create_upload(
            &alice(),
            "bkt",
            "big",
            meta.clone(),
            vec![("t".into(), "v".into())],
        )
        .await
        .unwrap();
    let id = upload.upload_id.clone();
    let one = vec![1u8; 5 * MIB];
    let two = vec![2u8; 5 * MIB];
    let three = b"tail".to_vec();
    let p1 = s3
        .upload_part(
            &alice(),
            "bkt",
            "big",
            &id,
            1,
            Some(one.len() as u64),
            None,
            body(&one),
        )
        .await
        .unwrap();
    assert_eq!(p1.etag, conditions::md5_hex(&one));
    // A part uploaded again replaces the first (and its body).
    s3.upload_part(&alice(), "bkt", "big", &id, 2, None, None, body(b"small"))
        .await
        .unwrap();
    let p2 = s3
        .upload_part(&alice(), "bkt", "big", &id, 2, None, None, body(&two))
        .await
        .unwrap();
    let p3 = s3
        .upload_part(&alice(), "bkt", "big", &id, 3, None, None, body(&three))
        .await
        .unwrap();
    // A part we will not use.
    s3.upload_part(&alice(), "bkt", "big", &id, 7, None, None, body(b"unused"))
        .await
        .unwrap();
    assert_eq!(env.files().len(), 4);
    for bad in [0, 10_001, -1] {
        assert!(matches!(
            s3.upload_part(&alice(), "bkt", "big", &id, bad, None, None, body(b"x"))
                .await,
            Err(S3Error::InvalidArgument(_))
        ));
    }
    assert_eq!(
        s3.upload_part(&alice(), "bkt", "other-key", &id, 1, None, None, body(b"x"))
            .await,
        Err(S3Error::NoSuchUpload)
    );
    // Listing parts, paged.
    let page = s3
        .list_parts(&alice(), "bkt", "big", &id, 0, 2)
        .await
        .unwrap();
    assert_eq!(
        page.parts.iter().map(|p| p.number).collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(page.is_truncated);
    assert_eq!(page.next_marker, Some(2));
    let page = s3
        .list_parts(&alice(), "bkt", "big", &id, 2, 2)
        .await
        .unwrap();
    assert_eq!(
        page.parts.iter().map(|p| p.number).collect::<Vec<_>>(),
        [3, 7]
    );
    assert!(!page.is_truncated);
    let uploads = s3
        .list_uploads(
            &alice(),
            "bkt",
            UploadsQuery {
                max_uploads: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(uploads.uploads.len(), 1);
    assert_eq!(uploads.uploads[0].upload_id, id);
    // Completion's rules.
    let q = |e: &str| format!("\"{e}\"");
    let me = alice();
    let complete = |parts: Vec<(i32, String)>| {
        s3.complete_upload(&me, "bkt", "big", &id, parts, WriteCondition::default())
    };
    assert_eq!(complete(Vec::new()).await, Err(S3Error::MalformedXml));
    assert_eq!(
        complete(vec![(2, q(&p2.etag)), (1, q(&p1.etag))]).await,
        Err(S3Error::InvalidPartOrder)
    );
    assert_eq!(
        complete(vec![(1, q(&p1.etag)), (1, q(&p1.etag))]).await,
        Err(S3Error::InvalidPartOrder)
    );
    assert_eq!(
        complete(vec![(1, q(&p1.etag)), (2, q(&p1.etag))]).await,
        Err(S3Error::InvalidPart)
    );
    assert_eq!(
        complete(vec![(1, q(&p1.etag)), (4, q(&p2.etag))]).await,
        Err(S3Error::InvalidPart)
    );
    assert_eq!(
        complete(vec![
            (3, q(&p3.etag)),
            (7, q(&conditions::md5_hex(b"unused")))
        ])
        .await,
        Err(S3Error::EntityTooSmall)
    );
    let object = complete(vec![
        (1, q(&p1.etag)),
        (2, p2.etag.clone()),
        (3, q(&p3.etag)),
    ])
    .await
    .unwrap();
    let mut digests = Vec::new();
    for data in [&one, &two, &three] {
        digests.extend(md5::Digest::finalize(
            <md5::Md5 as md5::Digest>::new_with_prefix(data),
        ));
    }
    assert_eq!(object.etag, format!("{}-3", conditions::md5_hex(&digests)));
    assert_eq!(object.size, (10 * MIB + 4) as u64);
    assert_eq!(object.parts, Some(3));
    assert_eq!(object.meta, meta);
    let data = env.get("bkt", "big").await.unwrap();
    assert_eq!(data.len(), 10 * MIB + 4);
    assert!(data[..5 * MIB].iter().all(|&b| b == 1));
    assert!(data[5 * MIB..10 * MIB].iter().all(|&b| b == 2));
    assert_eq!(&data[10 * MIB..], b"tail");
    // The upload and every part file are gone; only the object's body is left.
    assert_eq!(env.files().len(), 1);
    assert_eq!(
        complete(vec![(1, q(&p1.etag))]).await,
        Err(S3Error::NoSuchUpload)
    );
    assert_eq!(
        s3.list_parts(&alice(), "bkt", "big", &id, 0, 10)
            .await
            .unwrap_err(),
        S3Error::NoSuchUpload
    );
    // Copying a multipart object makes a single-part one with the bytes' MD5.
    let copy = s3
        .copy_object(
            &alice(),
            CopyObject {
                source_bucket: "bkt".into(),
                source_key: "big".into(),
                bucket: "bkt".into(),
                key: "copy".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(copy.etag, conditions::md5_hex(&data));
    assert_eq!(copy.parts, None);
    assert_eq!(
        s3.head_object(&alice(), "bkt", "copy", None, &Conditions::default(), None)
            .await
            .unwrap()
            .0
            .etag,
        copy.etag
    );
}

#[tokio::test]
async fn multipart_abort_copy_and_listing() {
    let env = env();
    env.bucket("bkt").await;
    let s3 = &env.s3;
    env.put("bkt", "source", b"0123456789").await;
    let upload = s3
        .create_upload(&alice(), "bkt", "dir/x", ObjectMeta::default(), Vec::new())
        .await
        .unwrap();
    let part = s3
        .upload_part_copy(
            &alice(),
            "bkt",
            "dir/x",
            &upload.upload_id,
            1,
            ("bkt", "source", None),
            &Conditions::default(),
            Some("bytes=2-5"),
        )
        .await
        .unwrap();
    assert_eq!(part.size, 4);
    assert_eq!(part.etag, conditions::md5_hex(b"2345"));
    assert!(matches!(
        s3.upload_part_copy(
            &alice(),
            "bkt",
            "dir/x",
            &upload.upload_id,
            2,
            ("bkt", "source", None),
            &Conditions::default(),
            Some("bytes=5-10"),
        )
        .await,
        Err(S3Error::InvalidArgument(_))
    ));
    let second = s3
        .create_upload(&alice(), "bkt", "dir/y", ObjectMeta::default(), Vec::new())
        .await
        .unwrap();
    let third = s3
        .create_upload(&alice(), "bkt", "top", ObjectMeta::default(), Vec::new())
        .await
        .unwrap();
    let listing = s3
        .list_uploads(
            &alice(),
            "bkt",
            UploadsQuery {
                delimiter: Some("/".into()),
                max_uploads: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listing.common_prefixes, ["dir/"]);
    assert_eq!(listing.uploads.len(), 1);
    assert_eq!(listing.uploads[0].upload_id, third.upload_id);
    let page = s3
        .list_uploads(
            &alice(),
            "bkt",
            UploadsQuery {
                max_uploads: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(page.is_truncated);
    let rest = s3
        .list_uploads(
            &alice(),
            "bkt",
            UploadsQuery {
                key_marker: page.next_key_marker.clone(),
                upload_id_marker: page.next_upload_id_marker.clone(),
                max_uploads: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        rest.uploads
            .iter()
            .map(|u| u.key.as_str())
            .collect::<Vec<_>>(),
        ["dir/y", "top"]
    );
    // Aborting removes the upload and its part files.
    assert_eq!(env.files().len(), 2);
    s3.abort_upload(&alice(), "bkt", "dir/x", &upload.upload_id)
        .await
        .unwrap();
    assert_eq!(env.files().len(), 1);
    assert_eq!(
        s3.abort_upload(&alice(), "bkt", "dir/x", &upload.upload_id)
            .await,
        Err(S3Error::NoSuchUpload)
    );
    assert_eq!(
        s3.abort_upload(&bob(), "bkt", "dir/y", &second.upload_id)
            .await,
        Err(S3Error::AccessDenied)
    );
}

#[tokio::test]
async fn events_are_recorded_with_their_writes() {
    let env = env();
    env.bucket("bkt").await;
    env.bucket("quiet").await;
    // Without a notification configuration nothing is recorded.
    env.put("bkt", "before", b"x").await;
    assert_eq!(env.s3.store().pending_events().unwrap(), 0);
    env.s3
        .set_bucket_notification(&alice(), "bkt", Some("{\"any\":true}".into()))
        .await
        .unwrap();
    assert_eq!(
        env.s3
            .bucket_notification(&alice(), "bkt")
            .await
            .unwrap()
            .as_deref(),
        Some("{\"any\":true}")
    );
    assert_eq!(
        env.s3.set_bucket_notification(&bob(), "bkt", None).await,
        Err(S3Error::AccessDenied)
    );
    let caller = Caller {
        account: ALICE.into(),
        principal: "AKIDALICE".into(),
        source_ip: Some("127.0.0.1".into()),
    };
    let signal = env.s3.event_signal();
    let info = env
        .s3
        .put_object(
            &caller,
            PutObject {
                bucket: "bkt".into(),
                key: "new file.txt".into(),
                ..Default::default()
            },
            body(b"hello"),
        )
        .await
        .unwrap();
    // The signal holds a permit for a consumer not yet waiting.
    tokio::time::timeout(std::time::Duration::from_secs(1), signal.notified())
        .await
        .unwrap();
    env.put("quiet", "q", b"x").await;
    env.s3
        .copy_object(
            &alice(),
            CopyObject {
                source_bucket: "bkt".into(),
                source_key: "new file.txt".into(),
                bucket: "bkt".into(),
                key: "copy".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    env.s3
        .put_tags(
            &alice(),
            "bkt",
            "copy",
            None,
            vec![("a".into(), "bkt".into())],
        )
        .await
        .unwrap();
    env.s3
        .delete_object(&alice(), "bkt", "copy", None)
        .await
        .unwrap();
    // Deleting what is not there records nothing.
    env.s3
        .delete_object(&alice(), "bkt", "copy", None)
        .await
        .unwrap();
    let upload = env
        .s3
        .create_upload(&alice(), "bkt", "mp", ObjectMeta::default(), Vec::new())
        .await
        .unwrap();
    let part = env
        .s3
        .upload_part(
            &alice(),
            "bkt",
            "mp",
            &upload.upload_id,
            1,
            None,
            None,
            body(b"p"),
        )
        .await
        .unwrap();
    env.s3
        .complete_upload(
            &alice(),
            "bkt",
            "mp",
            &upload.upload_id,
            vec![(1, part.etag)],
            WriteCondition::default(),
        )
        .await
        .unwrap();
    let claimed = env
        .s3
        .claim_events(100, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let names: Vec<&str> = claimed
        .iter()
        .map(|c| c.event.event_name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            event_names::PUT,
            event_names::COPY,
            event_names::TAGGING_PUT,
            event_names::DELETE,
            event_names::COMPLETE_MULTIPART
        ]
    );
    let first = &claimed[0].event;
    assert_eq!(first.bucket, "bkt");
    assert_eq!(first.key, "new file.txt");
    assert_eq!(first.size, 5);
    assert_eq!(first.etag, info.etag);
    assert_eq!(first.account, ALICE);
    assert_eq!(first.region, "us-east-1");
    assert_eq!(first.requester_principal, "AKIDALICE");
    assert_eq!(first.source_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(first.version_id, None);
    assert_eq!(first.time(), env.clock.now_at());
    let sequencers: Vec<&str> = claimed.iter().map(|c| c.event.sequencer.as_str()).collect();
    let mut sorted = sequencers.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, sequencers, "sequencers increase");
    assert!(sequencers
        .iter()
        .all(|s| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())));
    assert_eq!(claimed[3].event.size, 0);
    assert!(claimed[4].event.etag.ends_with("-1"));
    // Leased: not claimable again until the lease ends or it is acknowledged.
    assert!(env
        .s3
        .claim_events(100, std::time::Duration::from_secs(30))
        .await
        .unwrap()
        .is_empty());
    env.s3
        .ack_events(vec![claimed[0].id, claimed[1].id])
        .await
        .unwrap();
    env.clock.advance(31);
    let again = env
        .s3
        .claim_events(2, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|c| c.id).collect::<Vec<_>>(),
        [claimed[2].id, claimed[3].id]
    );
    // Events outlive a restart, and a restart can release leases at once.
    drop(again);
    let s3 = env.s3.clone();
    drop(s3);
    let (store, s3) = open(env.dir.path(), &env.clock);
    assert_eq!(store.pending_events().unwrap(), 3);
    s3.release_events().await.unwrap();
    let after = s3
        .claim_events(100, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(after.len(), 3);
    s3.ack_events(after.iter().map(|c| c.id).collect())
        .await
        .unwrap();
    assert_eq!(store.pending_events().unwrap(), 0);
    // Clearing the configuration stops recording.
    s3.set_bucket_notification(&alice(), "bkt", None)
        .await
        .unwrap();
    s3.delete_object(&alice(), "bkt", "mp", None).await.unwrap();
    assert_eq!(store.pending_events().unwrap(), 0);
}

impl TestClock {
    fn now_at(&self) -> OffsetDateTime {
        let now = *self.0.lock().unwrap();
        gust_store::sqlite::at(gust_store::sqlite::ms(now))
    }
}
