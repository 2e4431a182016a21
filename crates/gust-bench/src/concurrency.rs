//! Concurrency figures: what admission costs a warm invoke (a function with reserved
//! concurrency beside one without), and a burst of first invokes of one function on
//! on-demand environments beside the same burst on provisioned ones.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::json;

use crate::{burst, client, create, ms, percentile, row, start_server, zip, Args, Runtime, Target};

impl Target {
    async fn put_json(
        &self,
        what: &str,
        expected: u16,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> Result<()> {
        self.expect(what, expected, method, path, serde_json::to_vec(&body)?)
            .await
            .map(drop)
    }
}

/// A fresh server with room for a burst's environments (each declares 1,769 MB of the
/// memory budget; they use far less).
pub(crate) fn fresh(args: &Args) -> Result<(crate::Server, Target)> {
    let server = start_server(&args.gust, &["--memory-budget", "600G"])?;
    let target = Target {
        http: client(),
        address: server.address,
        credentials: Some(server.credentials.clone()),
    };
    Ok((server, target))
}

pub(crate) async fn run(args: &Args, python: &Runtime) -> Result<()> {
    let (_server, target) = fresh(args)?;
    admission_cost(&target, python, args).await?;
    if args.storm > 0 {
        provisioned_burst(args, python, args.storm).await?;
    }
    Ok(())
}

/// Warm invokes of a function with a reservation (admission checks it and counts against
/// it) in alternating blocks with a function without one.
async fn admission_cost(target: &Target, python: &Runtime, args: &Args) -> Result<()> {
    create(target, python, "plain").await?;
    create(target, python, "reserved").await?;
    target
        .put_json(
            "reserve",
            200,
            "PUT",
            "/2017-10-31/functions/reserved/concurrency",
            json!({"ReservedConcurrentExecutions": 10}),
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    target.invoke("plain").await?;
    target.invoke("reserved").await?;
    let (mut with, mut without) = (Vec::new(), Vec::new());
    let block = (args.warm / 10).max(50);
    for _ in 0..5 {
        for (name, into) in [("reserved", &mut with), ("plain", &mut without)] {
            for _ in 0..block {
                let started = Instant::now();
                target.invoke(name).await?;
                into.push(started.elapsed());
            }
        }
    }
    with.sort();
    without.sort();
    row(
        "warm invoke p50 / p99 with reserved concurrency (admission against the reservation)",
        format!(
            "{:.3} / {:.3} ms",
            ms(percentile(&with, 0.5)),
            ms(percentile(&with, 0.99))
        ),
        format!(
            "{:.3} / {:.3} ms without a reservation",
            ms(percentile(&without, 0.5)),
            ms(percentile(&without, 0.99))
        ),
        format!(
            "{:+.3} ms p50",
            ms(percentile(&with, 0.5)) - ms(percentile(&without, 0.5))
        ),
    );
    Ok(())
}

/// `n` first invokes at once of a function with no environment, and the same burst on a
/// version with `n` provisioned environments (after they are READY).
async fn provisioned_burst(args: &Args, python: &Runtime, n: usize) -> Result<()> {
    // Each invocation holds its environment for 8 s (longer than the burst takes to start),
    // so the burst needs n of them.
    let holding = Runtime {
        package: zip(&[(
            "app.py",
            b"import time\ndef handler(event, context):\n    time.sleep(8)\n",
            0o644,
        )])?,
        ..python.clone()
    };
    // Each on a server of its own, so neither pays for the other's environments.
    let (cold_server, target) = fresh(args)?;
    create(&target, &holding, "cold-burst").await?;
    long_timeout(&target, "cold-burst").await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (cold, cold_failed) = burst(&target, "cold-burst", n).await;
    drop(cold_server);
    let (_server, target) = fresh(args)?;
    let target = &target;
    create(target, &holding, "pc-burst").await?;
    long_timeout(target, "pc-burst").await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Less the 8 s each invocation holds its environment.
    let creating = cold.saturating_sub(Duration::from_secs(8));
    // Provision n environments of version 1 and wait until they are initialised.
    target
        .put_json(
            "publish",
            201,
            "POST",
            "/2015-03-31/functions/pc-burst/versions",
            json!({}),
        )
        .await?;
    let started = Instant::now();
    target
        .put_json(
            "provision",
            202,
            "PUT",
            "/2019-09-30/functions/pc-burst:1/provisioned-concurrency",
            json!({"ProvisionedConcurrentExecutions": n}),
        )
        .await?;
    loop {
        let (status, body) = target
            .send(
                "GET",
                "/2019-09-30/functions/pc-burst:1/provisioned-concurrency",
                Vec::new(),
            )
            .await?;
        let config: serde_json::Value = serde_json::from_slice(&body)?;
        match config["Status"].as_str() {
            Some("READY") => break,
            Some("IN_PROGRESS") if started.elapsed() < Duration::from_secs(300) => {}
            _ => bail!("provisioning {n} environments: {status} {config}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let provisioning = started.elapsed();
    let (warm, warm_failed) = burst(target, "pc-burst:1", n).await;
    row(
        &format!("burst of {n} first invokes (8 s each) of one function, time to the last answer (environments created per second)"),
        format!(
            "{:.2} s, {:.0} environments/s ({cold_failed} failed)",
            cold.as_secs_f64(),
            n as f64 / creating.as_secs_f64().max(0.001)
        ),
        format!(
            "{:.3} s with {n} provisioned environments ({warm_failed} failed)",
            warm.as_secs_f64()
        ),
        format!("{:.1}x", cold.as_secs_f64() / warm.as_secs_f64().max(0.001)),
    );
    row(
        &format!("provisioning {n} environments, PUT to READY"),
        format!(
            "{:.2} s, {:.0} environments/s",
            provisioning.as_secs_f64(),
            n as f64 / provisioning.as_secs_f64().max(0.001)
        ),
        format!(
            "{:.2} s, the same number of on-demand cold starts at once",
            creating.as_secs_f64()
        ),
        format!(
            "{:.1}x",
            provisioning.as_secs_f64() / creating.as_secs_f64().max(0.001)
        ),
    );
    Ok(())
}

/// Lets a function run past the default 3 seconds.
async fn long_timeout(target: &Target, function: &str) -> Result<()> {
    target
        .put_json(
            "timeout",
            200,
            "PUT",
            &format!("/2015-03-31/functions/{function}/configuration"),
            json!({"Timeout": 30}),
        )
        .await
}
