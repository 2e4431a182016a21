//! S3 figures: `PutObject` and `GetObject` of 4 KiB objects (objects per second at c=1/8)
//! beside the bare HTTP request rate with a 4 KiB body, and of 16 MiB objects (MiB per
//! second at c=1/4) beside writing and fsyncing a 16 MiB file on the data directory's
//! filesystem and reading it back; then how soon a bucket notification starts its function
//! once `PutObject` returns, beside a warm synchronous invoke of the same function.
//!
//! Requests are SigV4-signed for `s3` with the body's real SHA-256 (declared in
//! `x-amz-content-sha256`, as S3 requires): the bench hashes each body once to sign it, and
//! the server (s3s) hashes it once more to check it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use gust_api::sigv4;
use http_body_util::{BodyExt, Full};
use serde_json::json;

use crate::{latency, ms, row, throughput, zip, Args, Runtime, Target};

const SMALL: usize = 4 << 10;
const LARGE: usize = 16 << 20;
const MIB: f64 = (1 << 20) as f64;
/// Concurrency levels for small objects (requests are short: eight keep both cores busy).
const SMALL_LEVELS: [usize; 2] = [1, 8];
/// Concurrency levels for large objects (each caller holds a 16 MiB body in flight).
const LARGE_LEVELS: [usize; 2] = [1, 4];
/// Large objects (and floor files) are written over this many names in turn, so the disk
/// holds a bounded amount and each write also replaces (frees) an older one.
const LARGE_KEYS: u64 = 8;
/// Puts whose notification is timed.
const NOTIFIED: usize = 100;
const BUCKET: &str = "bench-s3";
const NOTIFY_BUCKET: &str = "bench-s3-notify";
const FUNCTION: &str = "bench-s3-stamp";

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// `n` bytes that do not compress (xorshift).
fn noise(n: usize, seed: u64) -> Bytes {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(n);
    Bytes::from(out)
}

/// A body and the SHA-256 it is signed with (computed once; `sigv4::sign` hashes the body
/// again for each request, as a client signing its payload does).
#[derive(Clone)]
struct Payload {
    body: Bytes,
    hash: Arc<str>,
}

impl Payload {
    fn new(body: Bytes) -> Self {
        let hash = sigv4::payload_hash(&body).into();
        Payload { body, hash }
    }

    fn empty() -> Self {
        Payload {
            body: Bytes::new(),
            hash: sigv4::EMPTY_SHA256.into(),
        }
    }
}

impl Target {
    /// An S3 request (path-style) that must answer 2xx; returns the response body's length
    /// (the body is read frame by frame and dropped).
    async fn s3_call(&self, method: &str, path: &str, payload: &Payload) -> Result<u64> {
        let authority = self.address.to_string();
        let mut headers = vec![
            ("host".to_owned(), authority.clone()),
            ("x-amz-content-sha256".to_owned(), payload.hash.to_string()),
        ];
        let credentials = self.credentials.as_ref().context("S3 needs credentials")?;
        let (raw_path, raw_query) = path.split_once('?').unwrap_or((path, ""));
        let parts = sigv4::RequestParts {
            method,
            raw_path,
            raw_query,
            headers: &headers,
        };
        let (authorization, date) = sigv4::sign(
            &parts,
            &payload.body,
            credentials,
            "us-east-1",
            "s3",
            time::OffsetDateTime::now_utc(),
        );
        headers.push(("x-amz-date".into(), date));
        headers.push(("authorization".into(), authorization));
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("http://{authority}{path}"));
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let response = self
            .http
            .request(request.body(Full::new(payload.body.clone()))?)
            .await?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        if !(200..300).contains(&status) {
            let text = body.collect().await?.to_bytes();
            bail!(
                "{method} {path}: {status} {}",
                String::from_utf8_lossy(&text)
            );
        }
        let mut length = 0u64;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                length += data.len() as u64;
            }
        }
        Ok(length)
    }

    async fn put_object(&self, bucket: &str, key: &str, payload: &Payload) -> Result<()> {
        self.s3_call("PUT", &format!("/{bucket}/{key}"), payload)
            .await
            .map(|_| ())
    }

    /// Reads an object whole; it must be `size` bytes.
    async fn get_object(&self, bucket: &str, key: &str, size: usize) -> Result<()> {
        let length = self
            .s3_call("GET", &format!("/{bucket}/{key}"), &Payload::empty())
            .await?;
        if length != size as u64 {
            bail!("GET {bucket}/{key}: {length} bytes, expected {size}");
        }
        Ok(())
    }

    async fn create_bucket(&self, bucket: &str) -> Result<()> {
        self.s3_call("PUT", &format!("/{bucket}"), &Payload::empty())
            .await
            .map(|_| ())
    }
}

/// Synchronous 4 KiB writes per second to a file in `dir`.
fn fsync_rate(dir: &Path, seconds: f64) -> Result<f64> {
    let mut file = tempfile::tempfile_in(dir)?;
    let block = [7u8; 4096];
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        file.write_all(&block)?;
        file.sync_data()?;
        count += 1;
    }
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

/// Writes `data` to a new file and fsyncs it.
fn write_synced(path: &Path, data: &[u8]) -> Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(data)?;
    file.sync_all()?;
    Ok(())
}

/// Reads a file whole through a 256 KiB buffer; returns its length.
fn read_whole(path: &Path) -> Result<u64> {
    let mut file = std::fs::File::open(path)?;
    let mut buffer = vec![0u8; 256 << 10];
    let mut length = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(length);
        }
        length += n as u64;
    }
}

/// The disk floor for large objects at `concurrency`: 16 MiB files written and fsynced
/// (each write removing the file written `LARGE_KEYS` writes before, as a put replacing an
/// object does), then files read back; both in files per second.
async fn disk_floor(
    dir: &Path,
    body: &Bytes,
    concurrency: usize,
    seconds: f64,
) -> Result<(f64, f64)> {
    let counter = Arc::new(AtomicU64::new(0));
    let (d, b, c) = (dir.to_path_buf(), body.clone(), Arc::clone(&counter));
    let writes = throughput(concurrency, seconds, move || {
        let (d, b, c) = (d.clone(), b.clone(), Arc::clone(&c));
        async move {
            tokio::task::spawn_blocking(move || {
                let n = c.fetch_add(1, Ordering::Relaxed);
                write_synced(&d.join(format!("w{n}")), &b)?;
                if let Some(old) = n.checked_sub(LARGE_KEYS) {
                    let _ = std::fs::remove_file(d.join(format!("w{old}")));
                }
                Ok(())
            })
            .await?
        }
    })
    .await?;
    // The files the write phase left (the last `LARGE_KEYS` ones), in turn.
    let (d, last) = (dir.to_path_buf(), counter.load(Ordering::Relaxed));
    let next = Arc::new(AtomicU64::new(0));
    let reads = throughput(concurrency, seconds, move || {
        let (d, next) = (d.clone(), Arc::clone(&next));
        async move {
            tokio::task::spawn_blocking(move || {
                let n = last - 1 - next.fetch_add(1, Ordering::Relaxed) % LARGE_KEYS.min(last);
                let length = read_whole(&d.join(format!("w{n}")))?;
                if length != LARGE as u64 {
                    bail!("floor file w{n}: {length} bytes");
                }
                Ok(())
            })
            .await?
        }
    })
    .await?;
    Ok((writes, reads))
}

/// The directory the servers' data directories are made in (`tempfile::tempdir`).
fn data_parent() -> PathBuf {
    std::env::temp_dir()
}

/// The `p` percentile of sorted samples (ms; they may be negative).
fn percentile_ms(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

pub(crate) async fn run(target: &Target, floor: &Target, args: &Args) -> Result<()> {
    target.create_bucket(BUCKET).await?;
    let small = Payload::new(noise(SMALL, 1));
    let large = Payload::new(noise(LARGE, 2));

    // Small objects: new keys for puts; gets over the first 256 of them.
    let mut floor_rps = Vec::new();
    for concurrency in SMALL_LEVELS {
        let bare = floor.clone();
        let body = small.body.to_vec();
        floor_rps.push(
            throughput(concurrency, args.seconds, move || {
                let (t, body) = (bare.clone(), body.clone());
                async move { t.send("POST", "/", body).await.map(|_| ()) }
            })
            .await?,
        );
    }
    let parent = data_parent();
    let disk = fsync_rate(&parent, args.seconds.min(2.0))?;
    let written = Arc::new(AtomicU64::new(0));
    for (i, concurrency) in SMALL_LEVELS.into_iter().enumerate() {
        let (t, p, w) = (target.clone(), small.clone(), Arc::clone(&written));
        let rate = throughput(concurrency, args.seconds, move || {
            let (t, p, w) = (t.clone(), p.clone(), Arc::clone(&w));
            async move {
                let n = w.fetch_add(1, Ordering::Relaxed);
                t.put_object(BUCKET, &format!("small/{n}"), &p).await
            }
        })
        .await?;
        row(
            &format!("S3 PutObject 4 KiB, new keys (c={concurrency})"),
            format!("{rate:.0} objects/s"),
            format!(
                "{:.0} req/s bare HTTP POST of 4 KiB; {disk:.0} fdatasync/s on the disk",
                floor_rps[i]
            ),
            format!(
                "{:.1}% of the bare request rate; {:.1} fdatasyncs' time per put",
                100.0 * rate / floor_rps[i],
                disk / rate
            ),
        );
    }
    let keys = written.load(Ordering::Relaxed).min(256);
    for (i, concurrency) in SMALL_LEVELS.into_iter().enumerate() {
        let t = target.clone();
        let next = Arc::new(AtomicU64::new(0));
        let rate = throughput(concurrency, args.seconds, move || {
            let (t, next) = (t.clone(), Arc::clone(&next));
            async move {
                let n = next.fetch_add(1, Ordering::Relaxed) % keys;
                t.get_object(BUCKET, &format!("small/{n}"), SMALL).await
            }
        })
        .await?;
        row(
            &format!("S3 GetObject 4 KiB (c={concurrency})"),
            format!("{rate:.0} objects/s"),
            format!("{:.0} req/s bare HTTP POST of 4 KiB", floor_rps[i]),
            format!("{:.1}% of the floor", 100.0 * rate / floor_rps[i]),
        );
    }

    // Large objects, beside the disk in the same directory as the servers' data.
    let floor_dir = tempfile::tempdir_in(&parent)?;
    let started = Instant::now();
    let _ = sigv4::payload_hash(&large.body);
    let hash_time = started.elapsed();
    row(
        "SHA-256 of 16 MiB in the bench (signing; s3s checks it again)",
        format!("{:.1} ms", ms(hash_time)),
        "—".into(),
        "—".into(),
    );
    let mut disk_floors = Vec::new();
    for concurrency in LARGE_LEVELS {
        disk_floors
            .push(disk_floor(floor_dir.path(), &large.body, concurrency, args.seconds).await?);
    }
    let counter = Arc::new(AtomicU64::new(0));
    for (i, concurrency) in LARGE_LEVELS.into_iter().enumerate() {
        let (t, p, c) = (target.clone(), large.clone(), Arc::clone(&counter));
        let rate = throughput(concurrency, args.seconds, move || {
            let (t, p, c) = (t.clone(), p.clone(), Arc::clone(&c));
            async move {
                let n = c.fetch_add(1, Ordering::Relaxed) % LARGE_KEYS;
                t.put_object(BUCKET, &format!("large/{n}"), &p).await
            }
        })
        .await?;
        let floor_rate = disk_floors[i].0;
        row(
            &format!("S3 PutObject 16 MiB (c={concurrency})"),
            format!("{:.0} MiB/s", rate * LARGE as f64 / MIB),
            format!(
                "{:.0} MiB/s write + fsync of a 16 MiB file",
                floor_rate * LARGE as f64 / MIB
            ),
            format!("{:.1}% of the disk", 100.0 * rate / floor_rate),
        );
    }
    let keys = counter.load(Ordering::Relaxed).min(LARGE_KEYS);
    for (i, concurrency) in LARGE_LEVELS.into_iter().enumerate() {
        let t = target.clone();
        let next = Arc::new(AtomicU64::new(0));
        let rate = throughput(concurrency, args.seconds, move || {
            let (t, next) = (t.clone(), Arc::clone(&next));
            async move {
                let n = next.fetch_add(1, Ordering::Relaxed) % keys;
                t.get_object(BUCKET, &format!("large/{n}"), LARGE).await
            }
        })
        .await?;
        let floor_rate = disk_floors[i].1;
        row(
            &format!("S3 GetObject 16 MiB (c={concurrency})"),
            format!("{:.0} MiB/s", rate * LARGE as f64 / MIB),
            format!(
                "{:.0} MiB/s read of a 16 MiB file just written",
                floor_rate * LARGE as f64 / MIB
            ),
            format!("{:.1}% of the disk", 100.0 * rate / floor_rate),
        );
    }
    drop(floor_dir);

    notification(target, &small).await
}

/// `PutObject` returned → the notified function's handler started, over `NOTIFIED` puts,
/// each after the previous one's function finished (the handler's start time comes back in
/// its success record on a queue, as in the async-invoke figure).
async fn notification(target: &Target, body: &Payload) -> Result<()> {
    let stamp = Runtime {
        label: "Python",
        function: FUNCTION,
        runtime: "python3.12",
        handler: "app.handler",
        package: zip(&[(
            "app.py",
            b"import time\ndef handler(event, context):\n    started = time.time()\n    return {'started': started, 'key': event['Records'][0]['s3']['object']['key']}\n",
            0o644,
        )])?,
        floor: (String::new(), Vec::new()),
    };
    crate::create(target, &stamp, FUNCTION).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let queue = target
        .sqs("CreateQueue", json!({"QueueName": "bench-s3-records"}))
        .await?["QueueUrl"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let queue_arn = target
        .sqs(
            "GetQueueAttributes",
            json!({"QueueUrl": queue, "AttributeNames": ["QueueArn"]}),
        )
        .await?["Attributes"]["QueueArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    target
        .expect(
            "event invoke config",
            200,
            "PUT",
            &format!("/2019-09-25/functions/{FUNCTION}/event-invoke-config"),
            serde_json::to_vec(
                &json!({"DestinationConfig": {"OnSuccess": {"Destination": queue_arn}}}),
            )?,
        )
        .await?;
    let permission = json!({
        "StatementId": "s3", "Action": "lambda:InvokeFunction",
        "Principal": "s3.amazonaws.com", "SourceArn": format!("arn:aws:s3:::{NOTIFY_BUCKET}"),
    });
    target
        .expect(
            "add permission",
            201,
            "POST",
            &format!("/2015-03-31/functions/{FUNCTION}/policy"),
            serde_json::to_vec(&permission)?,
        )
        .await?;
    let (status, answer) = target
        .send(
            "GET",
            &format!("/2015-03-31/functions/{FUNCTION}"),
            Vec::new(),
        )
        .await?;
    if status != 200 {
        bail!(
            "get function: {status} {}",
            String::from_utf8_lossy(&answer)
        );
    }
    let function_arn = serde_json::from_slice::<serde_json::Value>(&answer)?["Configuration"]
        ["FunctionArn"]
        .as_str()
        .context("no FunctionArn")?
        .to_owned();
    target.create_bucket(NOTIFY_BUCKET).await?;
    // On the wire a `LambdaFunctionConfiguration` is `CloudFunctionConfiguration`, its ARN
    // `CloudFunction` (as boto3 sends it).
    let config = format!(
        "<NotificationConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <CloudFunctionConfiguration><Id>bench</Id>\
         <CloudFunction>{function_arn}</CloudFunction>\
         <Event>s3:ObjectCreated:*</Event></CloudFunctionConfiguration>\
         </NotificationConfiguration>"
    );
    target
        .s3_call(
            "PUT",
            &format!("/{NOTIFY_BUCKET}?notification"),
            &Payload::new(Bytes::from(config)),
        )
        .await
        .context("put bucket notification configuration")?;
    target.invoke(FUNCTION).await?;

    // Signed ms from the put's return (and from its send) to the handler's start.
    let (mut after_return, mut after_send) = (Vec::new(), Vec::new());
    for i in 0..NOTIFIED + 5 {
        let key = format!("n/{i}");
        let sent = unix_now();
        target.put_object(NOTIFY_BUCKET, &key, body).await?;
        let returned = unix_now();
        let deadline = Instant::now() + Duration::from_secs(20);
        let started = loop {
            if Instant::now() > deadline {
                bail!("the notification of {key} did not arrive");
            }
            let got = target
                .sqs(
                    "ReceiveMessage",
                    json!({"QueueUrl": queue, "WaitTimeSeconds": 5}),
                )
                .await?;
            let Some(message) = got["Messages"].get(0) else {
                continue;
            };
            let handle = message["ReceiptHandle"].as_str().unwrap_or_default();
            target
                .sqs(
                    "DeleteMessage",
                    json!({"QueueUrl": queue, "ReceiptHandle": handle}),
                )
                .await?;
            let record: serde_json::Value =
                serde_json::from_str(message["Body"].as_str().unwrap_or("{}"))?;
            let payload = &record["responsePayload"];
            if payload["key"].as_str() == Some(key.as_str()) {
                if let Some(started) = payload["started"].as_f64() {
                    break started;
                }
            }
        };
        // The first few warm the path (the worker, the invoke queue).
        if i >= 5 {
            after_return.push((started - returned) * 1000.0);
            after_send.push((started - sent) * 1000.0);
        }
        // Let the environment go idle again.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    after_return.sort_by(f64::total_cmp);
    after_send.sort_by(f64::total_cmp);
    let t = target.clone();
    let (sync_p50, sync_p99) = latency(200, || {
        let t = t.clone();
        async move { t.invoke(FUNCTION).await }
    })
    .await?;
    let p50 = percentile_ms(&after_return, 0.5);
    row(
        &format!("S3 PutObject returned → notified function started p50 / p99 ({NOTIFIED} puts, idle warm function)"),
        format!("{p50:.2} / {:.2} ms", percentile_ms(&after_return, 0.99)),
        format!(
            "{:.2} / {:.2} ms warm sync invoke, whole round trip",
            ms(sync_p50),
            ms(sync_p99)
        ),
        format!("{:.1}x a warm sync invoke", p50 / ms(sync_p50).max(0.001)),
    );
    row(
        "… the same from the PutObject's send p50 / p99",
        format!(
            "{:.2} / {:.2} ms",
            percentile_ms(&after_send, 0.5),
            percentile_ms(&after_send, 0.99)
        ),
        "—".into(),
        "—".into(),
    );
    Ok(())
}
