//! Asynchronous invocation figures: durable accepts per second (`InvocationType: Event`,
//! each answered 202 once the event is committed) beside the bare HTTP request rate, and
//! how soon an accepted event starts on an idle warm function beside a warm synchronous
//! invoke of the same function.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use serde_json::json;

use crate::{latency, ms, percentile, row, throughput, zip, Args, Runtime, Target};

const CONCURRENCY: usize = 8;

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

impl Target {
    async fn invoke_event(&self, function: &str) -> Result<()> {
        let (status, body) = self
            .request(
                "POST",
                &format!("/2015-03-31/functions/{function}/invocations"),
                &[("x-amz-invocation-type", "Event")],
                b"{}".to_vec(),
                "lambda",
            )
            .await?;
        if status != 202 {
            bail!("event: {status} {}", String::from_utf8_lossy(&body));
        }
        Ok(())
    }
}

pub(crate) async fn run(target: &Target, floor: &Target, args: &Args) -> Result<()> {
    let stamp = Runtime {
        label: "Python",
        function: "bench-events",
        runtime: "python3.12",
        handler: "app.handler",
        package: zip(&[(
            "app.py",
            b"import time\ndef handler(event, context):\n    return {'started': time.time()}\n",
            0o644,
        )])?,
        floor: (String::new(), Vec::new()),
    };
    crate::create(target, &stamp, stamp.function).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    target.invoke(stamp.function).await?;

    let bare = floor.clone();
    let floor_rps = throughput(CONCURRENCY, args.seconds, move || {
        let t = bare.clone();
        async move { t.send("POST", "/", b"{}".to_vec()).await.map(|_| ()) }
    })
    .await?;
    // Accepts alone: the function is held at reserved concurrency 0, so its events wait
    // (a throttled claim now and then) rather than run on the same two cores.
    let records = target
        .sqs("CreateQueue", json!({"QueueName": "bench-drained"}))
        .await?["QueueUrl"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let records_arn = target
        .sqs(
            "GetQueueAttributes",
            json!({"QueueUrl": records, "AttributeNames": ["QueueArn"]}),
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
            "/2019-09-25/functions/bench-events/event-invoke-config",
            serde_json::to_vec(
                &json!({"DestinationConfig": {"OnSuccess": {"Destination": records_arn}}}),
            )?,
        )
        .await?;
    target
        .expect(
            "reserve 0",
            200,
            "PUT",
            "/2017-10-31/functions/bench-events/concurrency",
            serde_json::to_vec(&json!({"ReservedConcurrentExecutions": 0}))?,
        )
        .await?;
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (t, counted) = (target.clone(), std::sync::Arc::clone(&count));
    let accepts = throughput(CONCURRENCY, args.seconds, move || {
        let (t, counted) = (t.clone(), std::sync::Arc::clone(&counted));
        async move {
            t.invoke_event("bench-events").await?;
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        }
    })
    .await?;
    row(
        &format!("async Invoke accepted durably (202s, c={CONCURRENCY})"),
        format!("{accepts:.0} events/s"),
        format!("{floor_rps:.0} req/s bare HTTP"),
        format!("{:.1}% of the floor", 100.0 * accepts / floor_rps),
    );
    // Then let them run: the backlog drained, each with its record on a queue.
    let backlog = count.load(std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    target
        .expect(
            "unreserve",
            204,
            "DELETE",
            "/2017-10-31/functions/bench-events/concurrency",
            Vec::new(),
        )
        .await?;
    loop {
        let attributes = target
            .sqs(
                "GetQueueAttributes",
                json!({"QueueUrl": records, "AttributeNames": ["ApproximateNumberOfMessages"]}),
            )
            .await?;
        let done: u64 = attributes["Attributes"]["ApproximateNumberOfMessages"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if done >= backlog {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the backlog did not drain: {done} of {backlog}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained = backlog as f64 / started.elapsed().as_secs_f64();
    row(
        &format!("async backlog of {backlog} events run, each record delivered to a queue"),
        format!("{drained:.0} events/s"),
        "—".into(),
        "—".into(),
    );

    // Queue-to-start: the record of each event (on a destination queue) carries the time
    // its handler started; the backlog of the accept figure runs first.
    let queue = target
        .sqs("CreateQueue", json!({"QueueName": "bench-records"}))
        .await?["QueueUrl"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let arn = target
        .sqs(
            "GetQueueAttributes",
            json!({"QueueUrl": queue, "AttributeNames": ["QueueArn"]}),
        )
        .await?["Attributes"]["QueueArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let config = json!({"DestinationConfig": {"OnSuccess": {"Destination": arn}}});
    let stamp_fn = Runtime {
        function: "bench-stamp",
        ..stamp
    };
    crate::create(target, &stamp_fn, stamp_fn.function).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    target
        .expect(
            "event invoke config",
            200,
            "PUT",
            "/2019-09-25/functions/bench-stamp/event-invoke-config",
            serde_json::to_vec(&config)?,
        )
        .await?;
    target.invoke(stamp_fn.function).await?;
    let mut samples = Vec::new();
    for _ in 0..100 {
        let accepted = unix_now();
        target.invoke_event("bench-stamp").await?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if Instant::now() > deadline {
                bail!("an event's record did not arrive");
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
            if let Some(started) = record["responsePayload"]["started"].as_f64() {
                samples.push(Duration::from_secs_f64((started - accepted).max(0.0)));
                break;
            }
        }
        // Let the environment go idle again.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    samples.sort();
    let t = target.clone();
    let (sync_p50, sync_p99) = latency(200, || {
        let t = t.clone();
        async move { t.invoke("bench-stamp").await }
    })
    .await?;
    row(
        "async event accepted → handler started (idle warm function) p50 / p99",
        format!(
            "{:.2} / {:.2} ms",
            ms(percentile(&samples, 0.5)),
            ms(percentile(&samples, 0.99))
        ),
        format!(
            "{:.2} / {:.2} ms warm sync invoke, whole round trip",
            ms(sync_p50),
            ms(sync_p99)
        ),
        format!(
            "{:.1}x a warm sync invoke",
            ms(percentile(&samples, 0.5)) / ms(sync_p50).max(0.001)
        ),
    );
    Ok(())
}
