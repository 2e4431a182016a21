//! Primed environments (`--prestart`): cold start per runtime with priming on and off,
//! each beside the bare interpreter's start; a burst of first invokes on a new function
//! (environments created per second) on both; and the memory (PSS) of an idle environment
//! that started from a primed spare, of one started afresh, and of a primed spare waiting.
//!
//! Three servers run side by side: one with `--prestart python3.11,nodejs20.x` (Python's
//! spares forked from a zygote; native environments staged), the same with `--zygotes off`
//! (Python's spares each start their interpreter), and one with `--prestart off`; cold
//! starts alternate between them, one at a time, each after the previous environment is
//! gone (250 ms, which also lets the primed spare be refilled). SnapStart: a Python
//! function with an INIT of its own, restored from its published version's snapshot
//! against the same function's on-demand cold start.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::{
    create, create_with, ms, percentile, process_start, retire, row, start_server, zip, Args,
    Runtime, Target,
};

fn target(server: &crate::Server) -> Target {
    Target {
        http: crate::client(),
        address: server.address,
        credentials: Some(server.credentials.clone()),
    }
}

/// Every descendant of `pid` (through each thread's `children`).
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut stack = vec![pid];
    while let Some(pid) = stack.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            if let Ok(children) = std::fs::read_to_string(task.path().join("children")) {
                for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                    found.push(child);
                    stack.push(child);
                }
            }
        }
    }
    found
}

fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// An environment as the host sees it: its supervisor and everything under it.
struct Tree {
    pids: Vec<u32>,
    /// The runtime's working directory (`/` while a primed spare waits).
    cwd: Option<std::path::PathBuf>,
    /// Its initial environment (a primed runtime's lacks the function's variables).
    environ: Vec<u8>,
}

fn environments(server_pid: u32) -> Vec<Tree> {
    let mut trees = Vec::new();
    for pid in descendants(server_pid) {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if !cmdline.windows(12).any(|w| w == b"--await-spec") {
            continue;
        }
        let mut pids = vec![pid];
        pids.extend(descendants(pid));
        // The runtime: the deepest process (supervisor → init → runtime).
        let runtime = pids.get(2).copied();
        trees.push(Tree {
            cwd: runtime.and_then(|r| std::fs::read_link(format!("/proc/{r}/cwd")).ok()),
            environ: runtime
                .and_then(|r| std::fs::read(format!("/proc/{r}/environ")).ok())
                .unwrap_or_default(),
            pids,
        });
    }
    trees
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn tree_pss(tree: &Tree) -> u64 {
    tree.pids.iter().map(|p| pss_kib(*p)).sum()
}

/// One invoke of each of `functions`, all at once: the time to the last answer, failures.
async fn spread(target: &Target, functions: &[String]) -> (Duration, usize) {
    let started = Instant::now();
    let calls: Vec<_> = functions
        .iter()
        .map(|name| {
            let t = target.clone();
            let name = name.clone();
            tokio::spawn(async move { t.invoke(&name).await })
        })
        .collect();
    let mut failed = 0;
    for call in calls {
        if !matches!(call.await, Ok(Ok(()))) {
            failed += 1;
        }
    }
    (started.elapsed(), failed)
}

pub(crate) async fn run(args: &Args, runtimes: &[Runtime]) -> Result<()> {
    let budget = ["--memory-budget", "600G"];
    let on_server = start_server(
        &args.gust,
        &["--prestart", "python3.11,nodejs20.x", budget[0], budget[1]],
    )?;
    let off_server = start_server(&args.gust, &["--prestart", "off", budget[0], budget[1]])?;
    let unforked_server = start_server(
        &args.gust,
        &[
            "--prestart",
            "python3.11,nodejs20.x",
            "--zygotes",
            "off",
            budget[0],
            budget[1],
        ],
    )?;
    let (on, off, unforked) = (
        target(&on_server),
        target(&off_server),
        target(&unforked_server),
    );
    // Let the prestarted spares be made.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    for runtime in runtimes {
        let name = runtime.function;
        // Zygotes are Python's only: the third server is measured for Python alone.
        let forks = runtime.runtime.starts_with("python");
        create(&on, runtime, name).await?;
        create(&off, runtime, name).await?;
        if forks {
            create(&unforked, runtime, name).await?;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        on.invoke(name).await?;
        off.invoke(name).await?;
        if forks {
            unforked.invoke(name).await?;
        }
        let (mut primed, mut fresh, mut exec_primed) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..args.cold {
            let mut servers = vec![(&on, &mut primed), (&off, &mut fresh)];
            if forks {
                servers.push((&unforked, &mut exec_primed));
            }
            for (t, samples) in servers {
                retire(t, name, 3000 + round).await?;
                tokio::time::sleep(Duration::from_millis(250)).await;
                let start = Instant::now();
                t.invoke(name).await?;
                samples.push(start.elapsed());
            }
        }
        primed.sort();
        fresh.sort();
        exec_primed.sort();
        let (program, floor_args) = &runtime.floor;
        let floor_args: Vec<&str> = floor_args.iter().map(String::as_str).collect();
        let floor = process_start(program, &floor_args, args.cold)?;
        let bare = Path::new(program)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let p = |s: &[Duration]| (ms(percentile(s, 0.5)), ms(percentile(s, 0.99)));
        let ((p50, p99), (f50, f99)) = (p(&primed), p(&fresh));
        row(
            &format!("{} cold start p50 / p99, priming on", runtime.label),
            format!("{p50:.1} / {p99:.1} ms"),
            format!(
                "{:.1} / {:.1} ms (`{bare}` start)",
                ms(floor.0),
                ms(floor.1)
            ),
            format!("{:.2}x the bare start", p50 / ms(floor.0).max(0.001)),
        );
        if forks {
            let (z50, z99) = p(&exec_primed);
            row(
                &format!(
                    "{} cold start p50 / p99, priming on, zygotes off",
                    runtime.label
                ),
                format!("{z50:.1} / {z99:.1} ms"),
                format!(
                    "{:.1} / {:.1} ms (`{bare}` start)",
                    ms(floor.0),
                    ms(floor.1)
                ),
                format!(
                    "{:.2}x the bare start; forking from the zygote: {:+.1} ms p50",
                    z50 / ms(floor.0).max(0.001),
                    p50 - z50
                ),
            );
        }
        row(
            &format!("{} cold start p50 / p99, priming off", runtime.label),
            format!("{f50:.1} / {f99:.1} ms"),
            format!(
                "{:.1} / {:.1} ms (`{bare}` start)",
                ms(floor.0),
                ms(floor.1)
            ),
            format!(
                "{:.2}x the bare start; priming saves {:.1} ms p50",
                f50 / ms(floor.0).max(0.001),
                f50 - p50
            ),
        );
    }

    if runtimes.iter().any(|r| r.runtime.starts_with("python")) {
        snap_start(&on, args).await?;
    }

    if args.storm > 0 {
        if let Some(python) = runtimes.iter().find(|r| r.runtime.starts_with("python")) {
            let (mut figures, mut floors) = (Vec::new(), Vec::new());
            let configurations = [
                (&on, "on", &on_server),
                (&unforked, "on, zygotes off", &unforked_server),
                (&off, "off", &off_server),
            ];
            for (t, label, server) in configurations {
                // One function per invoke: each needs an environment of its own.
                let names: Vec<String> = (0..args.storm)
                    .map(|i| format!("burst-{}-{i}", label.replace([',', ' '], "")))
                    .collect();
                for name in &names {
                    create(t, python, name).await?;
                }
                tokio::time::sleep(Duration::from_millis(1000)).await;
                let working = |trees: Vec<Tree>| {
                    trees
                        .iter()
                        .filter(|t| t.cwd.as_deref() == Some(Path::new("/var/task")))
                        .count()
                };
                let before = working(environments(server.child.id()));
                let (cold, failed) = spread(t, &names).await;
                let made = working(environments(server.child.id())).saturating_sub(before);
                let (warm, _) = spread(t, &names).await;
                figures.push((cold, failed, made));
                floors.push(warm);
            }
            for (i, label) in ["on", "on, zygotes off", "off"].into_iter().enumerate() {
                let (cold, failed, made) = figures[i];
                row(
                    &format!(
                        "burst: {} first invokes at once on {} new Python functions, priming {label}",
                        args.storm, args.storm
                    ),
                    format!(
                        "{:.2} s; {made} environments started, {:.0} environments/s ({failed} failed)",
                        cold.as_secs_f64(),
                        made as f64 / cold.as_secs_f64()
                    ),
                    format!("{:.2} s, the same burst warm", floors[i].as_secs_f64()),
                    format!(
                        "{:.1}x",
                        cold.as_secs_f64() / floors[i].as_secs_f64().max(0.001)
                    ),
                );
            }
        }
    }

    // Memory: an idle environment of each kind (frozen after its invoke), and a spare.
    for runtime in runtimes
        .iter()
        .filter(|r| !r.runtime.starts_with("provided"))
    {
        let name = format!("{}-memory", runtime.function);
        let forks = runtime.runtime.starts_with("python");
        create(&on, runtime, &name).await?;
        create(&off, runtime, &name).await?;
        if forks {
            create(&unforked, runtime, &name).await?;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        on.invoke(&name).await?;
        off.invoke(&name).await?;
        if forks {
            unforked.invoke(&name).await?;
        }
        // Idle and frozen, and the spare used refilled.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let marker = format!("AWS_LAMBDA_FUNCTION_NAME={name}");
        let on_trees = environments(on_server.child.id());
        let off_trees = environments(off_server.child.id());
        // Claimed primed environments work in /var/task; their initial environment is the
        // spare's. Fresh ones carry the function's name from the start.
        let kib = |trees: &[Tree], pick: &dyn Fn(&Tree) -> bool| {
            let picked: Vec<u64> = trees.iter().filter(|t| pick(t)).map(tree_pss).collect();
            (
                picked.len(),
                picked.iter().sum::<u64>() / picked.len().max(1) as u64,
            )
        };
        let execution_env = format!("AWS_EXECUTION_ENV=AWS_Lambda_{}", runtime.runtime);
        let is_runtime = |t: &Tree| contains(&t.environ, &execution_env);
        let (n_primed, primed_kib) = kib(&on_trees, &|t| {
            is_runtime(t)
                && contains(&t.environ, "_GUST_HANDOVER_FD")
                && t.cwd.as_deref() == Some(Path::new("/var/task"))
        });
        let (n_spare, spare_kib) = kib(&on_trees, &|t| {
            is_runtime(t)
                && contains(&t.environ, "_GUST_HANDOVER_FD")
                // Not pivoted yet: its directory is the root's on the host.
                && t.cwd.as_deref() != Some(Path::new("/var/task"))
        });
        let (n_fresh, fresh_kib) = kib(&off_trees, &|t| contains(&t.environ, &marker));
        row(
            &format!(
                "{} idle environment PSS (supervisor + init + runtime), primed then used",
                runtime.label
            ),
            format!("{:.1} MiB ({n_primed} seen)", primed_kib as f64 / 1024.0),
            format!(
                "{:.1} MiB started afresh ({n_fresh} seen)",
                fresh_kib as f64 / 1024.0
            ),
            format!(
                "{:+.1} MiB",
                (primed_kib as f64 - fresh_kib as f64) / 1024.0
            ),
        );
        row(
            &format!("{} primed spare waiting, PSS", runtime.label),
            format!("{:.1} MiB each ({n_spare} seen)", spare_kib as f64 / 1024.0),
            "—".into(),
            "—".into(),
        );
        if forks {
            let trees = environments(unforked_server.child.id());
            let (n_used, used_kib) = kib(&trees, &|t| {
                is_runtime(t)
                    && contains(&t.environ, "_GUST_HANDOVER_FD")
                    && t.cwd.as_deref() == Some(Path::new("/var/task"))
            });
            let (n_waiting, waiting_kib) = kib(&trees, &|t| {
                is_runtime(t)
                    && contains(&t.environ, "_GUST_HANDOVER_FD")
                    && t.cwd.as_deref() != Some(Path::new("/var/task"))
            });
            row(
                &format!(
                    "{} idle environment PSS, primed with zygotes off, then used",
                    runtime.label
                ),
                format!("{:.1} MiB ({n_used} seen)", used_kib as f64 / 1024.0),
                format!(
                    "{:.1} MiB forked from the zygote (above)",
                    primed_kib as f64 / 1024.0
                ),
                format!(
                    "{:+.1} MiB for forking",
                    (primed_kib as f64 - used_kib as f64) / 1024.0
                ),
            );
            row(
                &format!(
                    "{} primed spare waiting with zygotes off, PSS",
                    runtime.label
                ),
                format!(
                    "{:.1} MiB each ({n_waiting} seen)",
                    waiting_kib as f64 / 1024.0
                ),
                format!("{:.1} MiB forked (above)", spare_kib as f64 / 1024.0),
                format!(
                    "{:+.1} MiB for forking",
                    (spare_kib as f64 - waiting_kib as f64) / 1024.0
                ),
            );
        }
    }
    Ok(())
}

/// What the SnapStart function's module does at INIT (standing for imports and set-up).
const SNAP_INIT: Duration = Duration::from_millis(200);

/// SnapStart (`ApplyOn: PublishedVersions`): each round changes the configuration, cold
/// starts `$LATEST` on demand (INIT runs in the invoke), publishes that configuration as a
/// version (its INIT and snapshot are made ahead) and times the version's first invoke (a
/// restore: a fork of the snapshot, the after-restore hooks).
async fn snap_start(target: &Target, args: &Args) -> Result<()> {
    let name = "bench-snap";
    let module = format!(
        "import time\ntime.sleep({})\ndef handler(event, context):\n    return None\n",
        SNAP_INIT.as_secs_f64()
    );
    let runtime = Runtime {
        label: "Python 3.12",
        function: name,
        // Lambda offers SnapStart from Python 3.12.
        runtime: "python3.12",
        handler: "app.handler",
        package: zip(&[("app.py", module.as_bytes(), 0o644)])?,
        floor: (String::new(), Vec::new()),
    };
    let snap_start = serde_json::json!({"SnapStart": {"ApplyOn": "PublishedVersions"}});
    create_with(target, &runtime, name, snap_start).await?;
    let (mut on_demand, mut restored) = (Vec::new(), Vec::new());
    for round in 0..args.cold {
        retire(target, name, 5000 + round).await?;
        tokio::time::sleep(Duration::from_millis(250)).await;
        let start = Instant::now();
        target.invoke(name).await?;
        on_demand.push(start.elapsed());
        let answer = target
            .expect(
                &format!("publish {name}"),
                201,
                "POST",
                &format!("/2015-03-31/functions/{name}/versions"),
                b"{}".to_vec(),
            )
            .await?;
        let published: serde_json::Value = serde_json::from_slice(&answer)?;
        let version = published["Version"].as_str().unwrap_or("1").to_owned();
        // The version's INIT and snapshot are made after PublishVersion returns.
        tokio::time::sleep(SNAP_INIT + Duration::from_millis(800)).await;
        let start = Instant::now();
        target.invoke(&format!("{name}:{version}")).await?;
        restored.push(start.elapsed());
    }
    on_demand.sort();
    restored.sort();
    let p = |s: &[Duration]| (ms(percentile(s, 0.5)), ms(percentile(s, 0.99)));
    let ((r50, r99), (o50, o99)) = (p(&restored), p(&on_demand));
    row(
        &format!(
            "Python 3.12 cold start p50 / p99, {} ms INIT, SnapStart (a published version restored)",
            SNAP_INIT.as_millis()
        ),
        format!("{r50:.1} / {r99:.1} ms"),
        format!("{o50:.1} / {o99:.1} ms on demand (`$LATEST`)"),
        format!("{:.2}x; the snapshot saves {:.1} ms p50", r50 / o50.max(0.001), o50 - r50),
    );
    Ok(())
}
