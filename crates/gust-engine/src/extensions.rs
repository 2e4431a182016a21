//! Lambda extensions and the Telemetry API, as the invoke path sees them: finding the
//! external extensions a function's layers bring (`/opt/extensions`), the platform's
//! `EXTENSION`/`TELEMETRY` lines at the end of INIT, `platform.*` telemetry events, the
//! wait for extensions after an invocation, and SHUTDOWN's grace.
//!
//! An environment without extensions pays one atomic load per check here.

use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gust_model::{FunctionConfig, LogFormat};
use gust_runtime::extensions::{Extensions, FunctionInfo};
use gust_runtime::telemetry::{Api, Connect, Kind, Telemetry};
use gust_runtime::{InitOutcome, RuntimeApi};
use serde_json::json;

use crate::collector::Collector;
use crate::environment::Environment;
use crate::platform::Status;

/// How long external extensions have after SHUTDOWN (Lambda's limit with external
/// extensions registered); the runtime's SIGTERM grace follows.
pub(crate) const SHUTDOWN_EXTENSIONS_GRACE: Duration = Duration::from_millis(2_000);
/// How long buffered telemetry may take to go out before SHUTDOWN is sent.
const TELEMETRY_FLUSH: Duration = Duration::from_millis(500);

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Now, as telemetry's `time` (`2022-10-12T00:00:00.000Z`).
pub(crate) fn timestamp() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .unwrap_or_default()
}

/// The executables in `<opt>/extensions` (the stacked layers' tree), by name as Lambda
/// starts them: file names in order.
pub(crate) fn discover(opt_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(opt_dir.join("extensions")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            std::fs::metadata(e.path())
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// A connector that reaches listeners inside the network namespace `namespace` (from a
/// short-lived thread that joined it: a socket keeps the namespace it was made in).
fn namespace_connect(namespace: OwnedFd) -> Connect {
    let namespace = Arc::new(namespace);
    Arc::new(move |address| {
        let namespace = Arc::clone(&namespace);
        std::thread::spawn(move || {
            nix::sched::setns(&*namespace, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)?;
            std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2))
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("connect thread panicked")))
    })
}

/// Before the spawn: tells the Runtime API which external extensions INIT waits for and
/// how telemetry listeners are reached, connects the log collector to telemetry, and
/// emits `platform.initStart`. Returns the extensions' programs as the environment sees
/// them (`<view opt>/extensions/<name>`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare(
    api: &RuntimeApi,
    collector: &Collector,
    config: &FunctionConfig,
    account: &str,
    opt_dir: Option<&Path>,
    view_opt: &Path,
    runtime_version: &str,
    init_type: &'static str,
    netns: Option<&OwnedFd>,
) -> Vec<PathBuf> {
    let names = opt_dir.map(discover).unwrap_or_default();
    let programs = names
        .iter()
        .map(|name| view_opt.join("extensions").join(name))
        .collect();
    api.expect_extensions(
        FunctionInfo {
            function_name: config.name.to_string(),
            function_version: config.version.to_string(),
            handler: config.handler.clone(),
            account_id: account.to_owned(),
        },
        names,
    );
    let connect = match netns {
        None => Some(gust_runtime::telemetry::host_connect()),
        Some(fd) => fd.try_clone().ok().map(namespace_connect),
    };
    api.telemetry().set_connect(connect);
    collector.attach(Arc::clone(api.telemetry()));
    api.telemetry().emit(
        Kind::Platform,
        &timestamp(),
        "platform.initStart",
        json!({
            "initializationType": init_type,
            "phase": "init",
            "runtimeVersion": runtime_version,
            "functionName": config.name.as_str(),
            "functionVersion": config.version.to_string(),
        }),
    );
    programs
}

/// INIT ended (`outcome` `None`: the runtime exited): the platform's `EXTENSION` and
/// `TELEMETRY` lines, the INIT telemetry events, and registration closes.
pub(crate) fn init_ended(
    env: &Environment,
    config: &FunctionConfig,
    outcome: Option<&InitOutcome>,
    duration: Duration,
    init_type: &'static str,
) {
    let extensions = env.api.extensions();
    let telemetry = env.api.telemetry();
    if !extensions.active() && !telemetry.active() {
        env.api.end_init();
        return;
    }
    let json_logs = config.log_format == LogFormat::Json;
    let mut lines = Vec::new();
    let now = timestamp();
    let mut extension_line = |name: &str, state: &str, events: &[&str], error: Option<&str>| {
        let record = json!({"name": name, "state": state, "events": events});
        let mut record = record;
        if let Some(error) = error {
            record["errorType"] = json!(error);
        }
        if json_logs {
            lines.push(
                json!({"time": now, "type": "platform.extension", "record": record}).to_string(),
            );
        } else {
            let mut line = format!(
                "EXTENSION\tName: {name}\tState: {state}\tEvents: [{}]",
                events.join(", ")
            );
            if let Some(error) = error {
                line.push_str(&format!("\tError Type: {error}"));
            }
            lines.push(line);
        }
        telemetry.emit(Kind::Platform, &now, "platform.extension", record);
    };
    for agent in extensions.summary() {
        extension_line(
            &agent.name,
            agent.state,
            &agent.events,
            agent.error_type.as_deref(),
        );
    }
    for name in extensions.missing() {
        extension_line(&name, "Launched", &[], None);
    }
    for (name, types, api) in telemetry.subscriptions() {
        let record = json!({"name": name, "state": "Subscribed", "types": types});
        let (event_type, line) = match api {
            Api::Telemetry => ("platform.telemetrySubscription", "TELEMETRY"),
            Api::Logs { .. } => ("platform.logsSubscription", "LOGS"),
        };
        if json_logs {
            lines.push(json!({"time": now, "type": event_type, "record": record}).to_string());
        } else {
            let shown: Vec<String> = types
                .iter()
                .map(|t| {
                    let mut c = t.chars();
                    c.next()
                        .map(|f| f.to_uppercase().chain(c).collect())
                        .unwrap_or_default()
                })
                .collect();
            lines.push(format!(
                "{line}\tName: {name}\tState: Subscribed\tTypes: [{}]",
                shown.join(", ")
            ));
        }
        telemetry.emit(Kind::Platform, &now, event_type, record);
    }
    // Platform records are INFO: a JSON log's `SystemLogLevel` of WARN keeps none.
    let quiet = json_logs
        && config
            .log_levels
            .as_ref()
            .is_some_and(|l| l.system == "WARN");
    if !lines.is_empty() && !quiet {
        env.collector.platform(lines);
    }
    let (status, error_type) = match outcome {
        Some(InitOutcome::Ready) => ("success", None),
        Some(InitOutcome::Failed { error_type, .. }) => ("error", error_type.clone()),
        None => ("failure", Some("Runtime.ExitError".to_owned())),
    };
    let mut done = json!({
        "initializationType": init_type,
        "phase": "init",
        "status": status,
        "spans": [],
    });
    let mut report = json!({
        "initializationType": init_type,
        "phase": "init",
        "status": status,
        "metrics": {"durationMs": (ms(duration) * 1000.0).round() / 1000.0},
        "spans": [],
    });
    if let Some(kind) = error_type {
        done["errorType"] = json!(kind);
        report["errorType"] = json!(kind);
    }
    telemetry.emit(Kind::Platform, &now, "platform.initRuntimeDone", done);
    telemetry.emit(Kind::Platform, &now, "platform.initReport", report);
    env.api.end_init();
    if matches!(outcome, Some(InitOutcome::Ready)) {
        watch(env);
    }
}

/// Starts watching the environment's external extensions' processes, so that one exiting
/// is seen at once (Lambda then resets the environment): see [`extension_processes`].
fn watch(env: &Environment) {
    let mut names: Vec<String> = env
        .api
        .extensions()
        .summary()
        .into_iter()
        .filter(|a| a.external)
        .map(|a| a.name)
        .chain(env.api.extensions().missing())
        .collect();
    if names.is_empty() {
        return;
    }
    // The order they were started in.
    names.sort();
    let found = extension_processes(Path::new("/proc"), env.leader(), std::process::id());
    // One process per name: they pair up in start order. Otherwise (one could not start)
    // by the program on each one's command line (a launcher may have exec'd another).
    let named: Vec<(String, u32)> = if found.len() == names.len() {
        names
            .into_iter()
            .zip(found.into_iter().map(|(pid, _)| pid))
            .collect()
    } else {
        found
            .into_iter()
            .filter_map(|(pid, cmdline)| {
                names
                    .iter()
                    .find(|name| {
                        let program = format!("/extensions/{name}");
                        cmdline.iter().any(|arg| arg.ends_with(&program))
                    })
                    .map(|name| (name.clone(), pid))
            })
            .collect()
    };
    let pidfds = named
        .into_iter()
        .filter_map(|(name, pid)| match gust_sandbox::watch_exit(pid) {
            Ok(pidfd) => Some((name, pidfd)),
            Err(error) => {
                tracing::debug!(%error, pid, "cannot watch an extension's process");
                None
            }
        })
        .collect();
    env.watch_extensions(pidfds);
}

/// The external extensions' processes of the environment whose leader is `leader`, in the
/// order they started, with their command lines. Isolated, they are the children of the
/// environment's pid 1 (the leader's child) that lead a process group of their own (the
/// runtime does not); otherwise this server (`server`) started them beside the runtime,
/// in its process group.
pub(crate) fn extension_processes(
    proc: &Path,
    leader: u32,
    server: u32,
) -> Vec<(u32, Vec<String>)> {
    let read = |pid: u32, file: &str| std::fs::read(proc.join(pid.to_string()).join(file)).ok();
    // Every thread's list: a child is listed under the thread that started it.
    let children = |pid: u32| -> Vec<u32> {
        let Ok(tasks) = std::fs::read_dir(proc.join(pid.to_string()).join("task")) else {
            return Vec::new();
        };
        tasks
            .filter_map(Result::ok)
            .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
            .flat_map(|list| {
                list.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect()
    };
    // (process group, start time)
    let stat = |pid: u32| -> Option<(u32, u64)> {
        let text = String::from_utf8(read(pid, "stat")?).ok()?;
        let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
        Some((fields.get(2)?.parse().ok()?, fields.get(19)?.parse().ok()?))
    };
    let namespace_init = |pid: u32| {
        read(pid, "status")
            .and_then(|status| {
                let status = String::from_utf8_lossy(&status).into_owned();
                let ids: Vec<String> = status
                    .lines()
                    .find_map(|l| l.strip_prefix("NSpid:"))?
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect();
                Some(ids.len() > 1 && ids.last().is_some_and(|id| id == "1"))
            })
            .unwrap_or(false)
    };
    let (parent, group) = match children(leader).into_iter().find(|c| namespace_init(*c)) {
        Some(init) => (init, None),
        None => (server, Some(leader)),
    };
    let mut found: Vec<(u64, u32)> = children(parent)
        .into_iter()
        .filter(|pid| *pid != leader)
        .filter_map(|pid| {
            let (pgrp, started) = stat(pid)?;
            (pgrp == group.unwrap_or(pid)).then_some((started, pid))
        })
        .collect();
    found.sort_unstable();
    found
        .into_iter()
        .map(|(_, pid)| {
            let cmdline = read(pid, "cmdline").unwrap_or_default();
            let args = cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            (pid, args)
        })
        .collect()
}

/// An external extension's process exited while the environment was in an invocation:
/// the platform's lines, as Lambda logs an extension crash (`EXTENSION ... State:
/// Crashed`, then the request's `Extension.Crash`).
pub(crate) fn crashed(
    env: &Environment,
    config: &FunctionConfig,
    request_id: &str,
    name: &str,
) -> Vec<String> {
    let events: Vec<&str> = env
        .api
        .extensions()
        .summary()
        .into_iter()
        .find(|a| a.name == name)
        .map(|a| a.events)
        .unwrap_or_default();
    let extension = if config.log_format == LogFormat::Json {
        json!({
            "time": timestamp(),
            "type": "platform.extension",
            "record": {"name": name, "state": "Crashed", "events": events, "errorType": "Extension.Crash"},
        })
        .to_string()
    } else {
        format!(
            "EXTENSION\tName: {name}\tState: Crashed\tEvents: [{}]",
            events.join(", ")
        )
    };
    vec![
        extension,
        format!("RequestId: {request_id} Error: extension {name} exited\tExtension.Crash"),
    ]
}

fn tracing_context(trace_id: &str) -> serde_json::Value {
    json!({"type": "X-Amzn-Trace-Id", "value": trace_id})
}

/// `platform.start`.
pub(crate) fn start(env: &Environment, config: &FunctionConfig, request_id: &str, trace_id: &str) {
    let telemetry = env.api.telemetry();
    if telemetry.active() {
        telemetry.emit(
            Kind::Platform,
            &timestamp(),
            "platform.start",
            json!({
                "requestId": request_id,
                "version": config.version.to_string(),
                "tracing": tracing_context(trace_id),
            }),
        );
    }
}

fn status_fields(status: &Status) -> (&'static str, Option<&str>) {
    match status {
        Status::Success => ("success", None),
        Status::Timeout => ("timeout", None),
        Status::Error(kind) => ("error", kind.as_deref()),
    }
}

/// `platform.runtimeDone`: the runtime answered (or failed) after `duration`.
pub(crate) fn runtime_done(
    env: &Environment,
    request_id: &str,
    status: &Status,
    function_error: bool,
    duration: Duration,
    produced_bytes: usize,
) {
    let telemetry = env.api.telemetry();
    if !telemetry.active() {
        return;
    }
    let (mut status, error_type) = status_fields(status);
    if function_error && status == "success" {
        status = "error";
    }
    let mut record = json!({
        "requestId": request_id,
        "status": status,
        "metrics": {
            "durationMs": (ms(duration) * 1000.0).round() / 1000.0,
            "producedBytes": produced_bytes,
        },
        "spans": [],
    });
    match error_type {
        Some(kind) => record["errorType"] = json!(kind),
        None if function_error => record["errorType"] = json!("Unhandled"),
        None => {}
    }
    telemetry.emit(Kind::Platform, &timestamp(), "platform.runtimeDone", record);
}

/// `platform.report`.
pub(crate) fn report(env: &Environment, memory_mb: u32, request: &crate::platform::Report<'_>) {
    let telemetry = env.api.telemetry();
    if !telemetry.active() {
        return;
    }
    let init_ms = request.init.map_or(0.0, ms);
    let billed = (ms(request.duration) + init_ms).ceil() as u64;
    let (status, error_type) = status_fields(&request.status);
    let mut metrics = json!({
        "durationMs": (ms(request.duration) * 1000.0).round() / 1000.0,
        "billedDurationMs": billed,
        "memorySizeMB": memory_mb,
        "maxMemoryUsedMB": request.max_memory_mb,
    });
    if request.init.is_some() {
        metrics["initDurationMs"] = json!((init_ms * 1000.0).round() / 1000.0);
    }
    let mut record = json!({
        "requestId": request.request_id,
        "status": status,
        "metrics": metrics,
        "spans": [],
    });
    if let Some(kind) = error_type {
        record["errorType"] = json!(kind);
    }
    telemetry.emit(Kind::Platform, &timestamp(), "platform.report", record);
}

/// SHUTDOWN for the extensions subscribed to it: buffered telemetry goes out, then the
/// event, then up to [`SHUTDOWN_EXTENSIONS_GRACE`] for each to call `next` again. The
/// runtime's SIGTERM follows (the caller's).
pub(crate) async fn before_shutdown(
    extensions: &Extensions,
    telemetry: &Telemetry,
    controls: &gust_sandbox::Controls,
) {
    if !extensions.active() && !telemetry.active() {
        return;
    }
    // A frozen environment cannot answer.
    controls.thaw();
    telemetry.flush(TELEMETRY_FLUSH).await;
    if !extensions.subscribed(true) {
        return;
    }
    let deadline_ms = u64::try_from(crate::collector::now_ms()).unwrap_or(0)
        + SHUTDOWN_EXTENSIONS_GRACE.as_millis() as u64;
    if extensions.shutdown("spindown", deadline_ms) {
        let _ = tokio::time::timeout(SHUTDOWN_EXTENSIONS_GRACE, extensions.wait_idle(true)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn extensions_beside_the_runtime_are_found_and_their_exit_seen() {
        use std::os::unix::process::CommandExt;
        let sleep = |group: u32, seconds: &str| {
            std::process::Command::new("sleep")
                .arg(seconds)
                .process_group(i32::try_from(group).unwrap())
                .spawn()
                .unwrap()
        };
        // A "runtime" leading its group, two "extensions" in it, one process elsewhere.
        let mut runtime = sleep(0, "30");
        let leader = runtime.id();
        let mut first = sleep(leader, "30");
        std::thread::sleep(Duration::from_millis(20));
        let mut second = sleep(leader, "0.3");
        let mut other = sleep(0, "30");
        let found = extension_processes(Path::new("/proc"), leader, std::process::id());
        let pids: Vec<u32> = found.iter().map(|(pid, _)| *pid).collect();
        assert_eq!(pids, [first.id(), second.id()]);
        assert_eq!(found[0].1, ["sleep", "30"]);
        // A pidfd is readable once its process exits.
        let pidfd = gust_sandbox::watch_exit(second.id()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), pidfd.readable())
            .await
            .unwrap()
            .unwrap()
            .retain_ready();
        for child in [&mut runtime, &mut first, &mut second, &mut other] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    #[test]
    fn extensions_are_the_executables_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let extensions = dir.path().join("extensions");
        std::fs::create_dir(&extensions).unwrap();
        for (name, mode) in [("zeta", 0o755), ("alpha", 0o555), ("data.txt", 0o644)] {
            let path = extensions.join(name);
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        std::fs::create_dir(extensions.join("pkg")).unwrap();
        assert_eq!(discover(dir.path()), ["alpha", "zeta"]);
        assert!(discover(&dir.path().join("missing")).is_empty());
    }
}
