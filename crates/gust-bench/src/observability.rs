//! What watching costs: the warm invoke path of this build (function output shipped to
//! CloudWatch Logs, every invocation counted in CloudWatch metrics, usage and Prometheus)
//! against a baseline build without them (`--baseline-gust`), measured in alternation on
//! two servers; and a function printing 50 MB: the server's peak memory growth while its
//! output is stored, and how fast it is stored.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::{create, latency, ms, row, start_server, throughput, zip, Args, Runtime, Target};

fn target(server: &crate::Server) -> Target {
    Target {
        http: crate::client(),
        address: server.address,
        credentials: Some(server.credentials.clone()),
    }
}

/// `VmHWM` or `VmRSS` of a process, in KiB.
fn memory_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no {field} for {pid}"))
}

/// Warm Python latency and c=8 throughput, this build against the baseline, in rounds.
async fn warm_path(args: &Args, python: &Runtime, baseline: &Path) -> Result<()> {
    let current = start_server(&args.gust, &[])?;
    let before = start_server(baseline, &[])?;
    let targets = [target(&current), target(&before)];
    for t in &targets {
        create(t, python, python.function).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        t.invoke(python.function).await?;
    }
    let rounds = 4;
    let mut p50 = [Vec::new(), Vec::new()];
    let mut p99 = [Vec::new(), Vec::new()];
    let mut rps = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for (i, t) in targets.iter().enumerate() {
            let name = python.function;
            let (a, b) = latency(args.warm / rounds, || {
                let t = t.clone();
                async move { t.invoke(name).await }
            })
            .await?;
            p50[i].push(ms(a));
            p99[i].push(ms(b));
            let t = t.clone();
            rps[i].push(
                throughput(8, args.seconds / 2.0, move || {
                    let t = t.clone();
                    async move { t.invoke(name).await }
                })
                .await?,
            );
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a50, b50) = (median(&mut p50[0]), median(&mut p50[1]));
    let (a99, b99) = (median(&mut p99[0]), median(&mut p99[1]));
    let (arps, brps) = (median(&mut rps[0]), median(&mut rps[1]));
    row(
        "Python warm invoke p50 / p99, logs and metrics on (median of 4 alternating rounds)",
        format!("{a50:.3} / {a99:.3} ms"),
        format!("{b50:.3} / {b99:.3} ms (baseline build)"),
        format!("{:+.3} ms p50", a50 - b50),
    );
    row(
        "Python throughput c=8, logs and metrics on",
        format!("{arps:.0} invokes/s"),
        format!("{brps:.0} invokes/s (baseline build)"),
        format!("{:.1}% of the baseline", 100.0 * arps / brps),
    );
    Ok(())
}

/// A function printing `megabytes` MB in 100-byte lines (on a fresh server): the server's
/// peak RSS growth until the last line is stored.
async fn printed(args: &Args, megabytes: usize) -> Result<()> {
    let server = start_server(&args.gust, &[])?;
    let t = target(&server);
    let printer = Runtime {
        label: "printer",
        function: "bench-print",
        runtime: "python3.11",
        handler: "app.handler",
        package: zip(&[(
            "app.py",
            b"import sys\nLINE = 'x' * 99 + '\\n'\ndef handler(event, context):\n    \
              for _ in range(event['mb'] * 10):\n        sys.stdout.write(LINE * 1000)\n    \
              sys.stdout.flush()\n    return 'done'\n",
            0o644,
        )])?,
        floor: (String::new(), Vec::new()),
    };
    create(&t, &printer, printer.function).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pid = server.child.id();
    let rss_before = memory_kib(pid, "VmRSS:")?;
    let hwm_before = memory_kib(pid, "VmHWM:")?;
    let start = Instant::now();
    t.expect(
        "invoke bench-print",
        200,
        "POST",
        "/2015-03-31/functions/bench-print/invocations",
        serde_json::to_vec(&serde_json::json!({ "mb": megabytes }))?,
    )
    .await?;
    let answered = start.elapsed();
    // Stored once the newest event of the environment's stream is the invocation's REPORT.
    let logs = |operation: &'static str, body: serde_json::Value| {
        let t = t.clone();
        async move {
            let target = format!("Logs_20140328.{operation}");
            let (status, answer) = t
                .request(
                    "POST",
                    "/",
                    &[
                        ("x-amz-target", target.as_str()),
                        ("content-type", "application/x-amz-json-1.1"),
                    ],
                    serde_json::to_vec(&body)?,
                    "logs",
                )
                .await?;
            if status != 200 {
                bail!("{operation}: {status} {}", String::from_utf8_lossy(&answer));
            }
            Ok::<serde_json::Value, anyhow::Error>(serde_json::from_slice(&answer)?)
        }
    };
    let group = "/aws/lambda/bench-print";
    let streams = logs(
        "DescribeLogStreams",
        serde_json::json!({ "logGroupName": group }),
    )
    .await?;
    let Some(stream) = streams["logStreams"][0]["logStreamName"].as_str() else {
        bail!("no log stream: {streams}");
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let stored = loop {
        let newest = logs(
            "GetLogEvents",
            serde_json::json!({ "logGroupName": group, "logStreamName": stream, "limit": 1 }),
        )
        .await?;
        let message = newest["events"][0]["message"].as_str().unwrap_or_default();
        if message.starts_with("REPORT RequestId") {
            break start.elapsed();
        }
        if Instant::now() > deadline {
            bail!("the REPORT line was not stored in 120 s (newest: {message:.80})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let hwm_after = memory_kib(pid, "VmHWM:")?;
    let growth_mib = (hwm_after.saturating_sub(hwm_before.max(rss_before))) as f64 / 1024.0;
    row(
        &format!("{megabytes} MB printed by one invocation: server peak RSS growth until stored"),
        format!("{growth_mib:.1} MiB"),
        format!("{megabytes} MB printed"),
        format!("{:.2}x the output", growth_mib / megabytes as f64),
    );
    row(
        &format!("{megabytes} MB printed: invoke answered / last line stored"),
        format!(
            "{:.2} s / {:.2} s",
            answered.as_secs_f64(),
            stored.as_secs_f64()
        ),
        "—".into(),
        format!("{:.0} MB/s stored", megabytes as f64 / stored.as_secs_f64()),
    );
    Ok(())
}

pub(crate) async fn run(args: &Args, python: &Runtime) -> Result<()> {
    match &args.baseline_gust {
        Some(baseline) => warm_path(args, python, baseline).await?,
        None => eprintln!("note: no --baseline-gust; skipping the warm-path comparison"),
    }
    // Bounded: the growth for 500 MB is no more than for 50 MB.
    printed(args, 50).await?;
    printed(args, 500).await
}
