//! Event source mapping figures: messages per second from a queue through a no-op
//! function to deletion, beside a client draining the same backlog itself (receive ten,
//! delete the batch, eight at once) in the same run; and how soon a message sent to a
//! queue with an idle mapping starts its function, beside a warm synchronous invoke.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::concurrency::fresh;
use crate::{create, latency, ms, percentile, row, zip, Args, Runtime, Target};

const MESSAGES: usize = 20_000;
const CONCURRENCY: usize = 8;

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

impl Target {
    async fn queue(&self, name: &str) -> Result<(String, String)> {
        let url = self.sqs("CreateQueue", json!({"QueueName": name})).await?["QueueUrl"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let arn = self
            .sqs(
                "GetQueueAttributes",
                json!({"QueueUrl": url, "AttributeNames": ["QueueArn"]}),
            )
            .await?["Attributes"]["QueueArn"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Ok((url, arn))
    }

    /// Messages waiting or in flight.
    async fn backlog(&self, url: &str) -> Result<u64> {
        let attributes = self
            .sqs(
                "GetQueueAttributes",
                json!({"QueueUrl": url, "AttributeNames": ["All"]}),
            )
            .await?;
        let n = |name: &str| {
            attributes["Attributes"][name]
                .as_str()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(n("ApproximateNumberOfMessages") + n("ApproximateNumberOfMessagesNotVisible"))
    }

    async fn fill(&self, url: &str, count: usize) -> Result<()> {
        let per_sender = count / CONCURRENCY;
        let mut senders = Vec::new();
        for _ in 0..CONCURRENCY {
            let (t, u) = (self.clone(), url.to_owned());
            senders.push(tokio::spawn(async move {
                for _ in 0..per_sender / 10 {
                    let entries: Vec<Value> = (0..10)
                        .map(|i| json!({"Id": i.to_string(), "MessageBody": "{\"n\": 1}"}))
                        .collect();
                    t.sqs(
                        "SendMessageBatch",
                        json!({"QueueUrl": u, "Entries": entries}),
                    )
                    .await?;
                }
                Ok::<_, anyhow::Error>(())
            }));
        }
        for sender in senders {
            sender.await??;
        }
        Ok(())
    }

    async fn map(&self, function: &str, queue_arn: &str) -> Result<()> {
        let body = json!({"FunctionName": function, "EventSourceArn": queue_arn, "BatchSize": 10});
        self.expect(
            "create mapping",
            202,
            "POST",
            "/2015-03-31/event-source-mappings",
            serde_json::to_vec(&body)?,
        )
        .await
        .map(drop)
    }
}

pub(crate) async fn run(args: &Args, python: &Runtime) -> Result<()> {
    let (_server, target) = fresh(args)?;
    throughput(&target, python).await?;
    start_latency(&target, python).await
}

async fn throughput(target: &Target, python: &Runtime) -> Result<()> {
    // The floor: eight clients draining a backlog themselves.
    let (floor_url, _) = target.queue("esm-floor").await?;
    target.fill(&floor_url, MESSAGES).await?;
    let started = Instant::now();
    let floor_url = Arc::new(floor_url);
    let mut consumers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (t, u) = (target.clone(), Arc::clone(&floor_url));
        consumers.push(tokio::spawn(async move {
            loop {
                let got = t
                    .sqs(
                        "ReceiveMessage",
                        json!({"QueueUrl": *u, "MaxNumberOfMessages": 10}),
                    )
                    .await?;
                let Some(messages) = got["Messages"].as_array().filter(|m| !m.is_empty()) else {
                    return Ok::<_, anyhow::Error>(());
                };
                let entries: Vec<Value> = messages
                    .iter()
                    .enumerate()
                    .map(|(i, m)| json!({"Id": i.to_string(), "ReceiptHandle": m["ReceiptHandle"]}))
                    .collect();
                t.sqs(
                    "DeleteMessageBatch",
                    json!({"QueueUrl": *u, "Entries": entries}),
                )
                .await?;
            }
        }));
    }
    for consumer in consumers {
        consumer.await??;
    }
    let floor = MESSAGES as f64 / started.elapsed().as_secs_f64();

    create(target, python, "esm-noop").await?;
    let (url, arn) = target.queue("esm-bench").await?;
    target.fill(&url, MESSAGES).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    target.map("esm-noop", &arn).await?;
    while target.backlog(&url).await? > 0 {
        if started.elapsed() > Duration::from_secs(300) {
            bail!("the mapping did not drain the queue");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rate = MESSAGES as f64 / started.elapsed().as_secs_f64();
    row(
        &format!("event source mapping: {MESSAGES} messages from a queue through a no-op Python function to deletion (batch 10)"),
        format!("{rate:.0} messages/s"),
        format!("{floor:.0} messages/s drained by {CONCURRENCY} clients (receive 10, delete the batch)"),
        format!("{:.1}% of the floor", 100.0 * rate / floor),
    );
    Ok(())
}

async fn start_latency(target: &Target, python: &Runtime) -> Result<()> {
    let stamping = Runtime {
        package: zip(&[(
            "app.py",
            b"import time\ndef handler(event, context):\n    print('STARTED %.6f' % time.time())\n",
            0o644,
        )])?,
        ..python.clone()
    };
    create(target, &stamping, "esm-latency").await?;
    let (url, arn) = target.queue("esm-latency").await?;
    target.map("esm-latency", &arn).await?;
    // Warm: the mapping polling and an environment ready.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut samples = Vec::new();
    let mut seen = 0;
    for round in 0..51 {
        let sent = unix_now();
        target
            .sqs("SendMessage", json!({"QueueUrl": url, "MessageBody": "go"}))
            .await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let started = loop {
            let (_, body) = target
                .send("GET", "/_gust/logs/esm-latency", Vec::new())
                .await?;
            let logs: Value = serde_json::from_slice(&body)?;
            let stamps: Vec<f64> = logs["events"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| {
                    e["message"]
                        .as_str()?
                        .trim()
                        .strip_prefix("STARTED ")?
                        .parse()
                        .ok()
                })
                .collect();
            if stamps.len() > seen {
                seen = stamps.len();
                break stamps[stamps.len() - 1];
            }
            if Instant::now() > deadline {
                bail!("the message did not start the function");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        // The first round only warms the environment.
        if round > 0 {
            samples.push(Duration::from_secs_f64((started - sent).max(0.0)));
        }
    }
    samples.sort();
    let t = target.clone();
    let (warm_p50, warm_p99) = latency(200, || {
        let t = t.clone();
        async move { t.invoke("esm-latency").await }
    })
    .await?;
    row(
        "SendMessage to the function starting, idle mapping, p50 / p99",
        format!(
            "{:.2} / {:.2} ms",
            ms(percentile(&samples, 0.5)),
            ms(percentile(&samples, 0.99))
        ),
        format!(
            "{:.2} / {:.2} ms a warm synchronous invoke of the same function",
            ms(warm_p50),
            ms(warm_p99)
        ),
        format!(
            "{:.1}x a warm invoke",
            ms(percentile(&samples, 0.5)) / ms(warm_p50).max(0.001)
        ),
    );
    Ok(())
}
