//! Queue figures: durable `SendMessageBatch` messages per second, receive-then-delete round
//! trips per second, and how soon a long poll returns once a message is sent. Floors from
//! the same run: the bare HTTP request rate and latency (what the protocol costs with no
//! work at all) and the disk's synchronous-write rate (what durability costs at least per
//! commit; group commit is what lets many messages share one).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::{latency, ms, percentile, row, throughput, Args, Target};

const CONCURRENCY: usize = 8;

impl Target {
    pub(crate) async fn sqs(&self, operation: &str, input: Value) -> Result<Value> {
        let target = format!("AmazonSQS.{operation}");
        let (status, body) = self
            .request(
                "POST",
                "/",
                &[
                    ("content-type", "application/x-amz-json-1.0"),
                    ("x-amz-target", &target),
                ],
                serde_json::to_vec(&input)?,
                "sqs",
            )
            .await?;
        if status != 200 {
            bail!("{operation}: {status} {}", String::from_utf8_lossy(&body));
        }
        Ok(serde_json::from_slice(&body)?)
    }
}

/// Synchronous 4 KiB writes per second to a file in the temporary directory (where the
/// benchmark's servers keep their data).
fn fsync_rate(seconds: f64) -> Result<f64> {
    let mut file = tempfile::tempfile()?;
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

pub(crate) async fn run(target: &Target, floor: &Target, args: &Args) -> Result<()> {
    let url = target
        .sqs("CreateQueue", json!({"QueueName": "bench"}))
        .await?["QueueUrl"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let url = Arc::new(url);
    let bare = floor.clone();
    let floor_rps = throughput(CONCURRENCY, args.seconds, move || {
        let t = bare.clone();
        async move { t.send("POST", "/", b"{}".to_vec()).await.map(|_| ()) }
    })
    .await?;
    let disk = fsync_rate(args.seconds.min(2.0))?;

    // Durable sends: ten 100-byte messages a request, eight senders.
    let body = "x".repeat(100);
    let (t, u) = (target.clone(), Arc::clone(&url));
    let batches = throughput(CONCURRENCY, args.seconds, move || {
        let (t, u, body) = (t.clone(), Arc::clone(&u), body.clone());
        async move {
            let entries: Vec<Value> = (0..10)
                .map(|i| json!({"Id": i.to_string(), "MessageBody": body}))
                .collect();
            let sent = t
                .sqs(
                    "SendMessageBatch",
                    json!({"QueueUrl": *u, "Entries": entries}),
                )
                .await?;
            if sent["Successful"].as_array().map_or(0, Vec::len) != 10 {
                bail!("a batch entry failed: {sent}");
            }
            Ok(())
        }
    })
    .await?;
    row(
        &format!("SQS durable SendMessageBatch (10 x 100 B, c={CONCURRENCY})"),
        format!("{:.0} messages/s", batches * 10.0),
        format!(
            "{:.0} req/s bare HTTP; {:.0} fdatasync/s on the disk",
            floor_rps, disk
        ),
        format!(
            "{:.1}% of the bare request rate; {:.1} messages per disk sync",
            100.0 * batches / floor_rps,
            batches * 10.0 / disk
        ),
    );

    // Receive one, delete it: the consumer's round trip, over the backlog just sent.
    let (t, u) = (target.clone(), Arc::clone(&url));
    let round_trips = throughput(CONCURRENCY, args.seconds, move || {
        let (t, u) = (t.clone(), Arc::clone(&u));
        async move {
            let got = t
                .sqs(
                    "ReceiveMessage",
                    json!({"QueueUrl": *u, "MaxNumberOfMessages": 1}),
                )
                .await?;
            let Some(handle) = got["Messages"][0]["ReceiptHandle"].as_str() else {
                bail!("the backlog ran out: raise the send time or lower --seconds");
            };
            t.sqs(
                "DeleteMessage",
                json!({"QueueUrl": *u, "ReceiptHandle": handle}),
            )
            .await?;
            Ok(())
        }
    })
    .await?;
    row(
        &format!("SQS receive + delete round trips (c={CONCURRENCY})"),
        format!("{round_trips:.0} messages/s"),
        format!("{:.0} req pairs/s bare HTTP", floor_rps / 2.0),
        format!("{:.1}% of the floor", 200.0 * round_trips / floor_rps),
    );

    // Long-poll wake-up: a waiting receive returns this long after a send completes.
    let wake_url = target
        .sqs("CreateQueue", json!({"QueueName": "bench-wake"}))
        .await?["QueueUrl"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut samples = Vec::new();
    for _ in 0..200 {
        let (t, u) = (target.clone(), wake_url.clone());
        let waiting = tokio::spawn(async move {
            let got = t
                .sqs(
                    "ReceiveMessage",
                    json!({"QueueUrl": u, "WaitTimeSeconds": 20}),
                )
                .await?;
            let returned = Instant::now();
            if let Some(handle) = got["Messages"][0]["ReceiptHandle"].as_str() {
                t.sqs(
                    "DeleteMessage",
                    json!({"QueueUrl": u, "ReceiptHandle": handle}),
                )
                .await?;
            }
            Ok::<_, anyhow::Error>(returned)
        });
        // Let the receive reach its wait.
        tokio::time::sleep(Duration::from_millis(5)).await;
        target
            .sqs(
                "SendMessage",
                json!({"QueueUrl": wake_url, "MessageBody": "wake"}),
            )
            .await?;
        let sent = Instant::now();
        let returned = waiting.await??;
        samples.push(returned.saturating_duration_since(sent));
    }
    samples.sort();
    let bare = floor.clone();
    let (floor_p50, floor_p99) = latency(200, || {
        let t = bare.clone();
        async move { t.send("POST", "/", b"{}".to_vec()).await.map(|_| ()) }
    })
    .await?;
    row(
        "SQS long-poll wake-up after the send returns p50 / p99",
        format!(
            "{:.3} / {:.3} ms",
            ms(percentile(&samples, 0.5)),
            ms(percentile(&samples, 0.99))
        ),
        format!(
            "{:.3} / {:.3} ms bare HTTP request",
            ms(floor_p50),
            ms(floor_p99)
        ),
        format!(
            "{:.1}x a bare request",
            ms(percentile(&samples, 0.5)) / ms(floor_p50).max(0.001)
        ),
    );
    Ok(())
}
