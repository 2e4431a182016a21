//! The platform's own log lines (INIT_START, START, END, REPORT): Lambda's text lines, or —
//! for a function logging in JSON — its `platform.*` records, kept only when the function's
//! `SystemLogLevel` lets INFO through.

use std::time::Duration;

use gust_model::{FunctionConfig, LogFormat};
use serde_json::{json, Value};

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// How an invocation ended, for REPORT.
#[derive(Debug, Clone)]
pub(crate) enum Status {
    Success,
    Timeout,
    /// With the error type, when there is one.
    Error(Option<String>),
}

/// What REPORT says.
#[derive(Debug)]
pub(crate) struct Report<'a> {
    pub request_id: &'a str,
    pub duration: Duration,
    pub init: Option<Duration>,
    /// A SnapStart environment's restore, reported by its first invocation.
    pub restore: Option<Duration>,
    pub max_memory_mb: u64,
    pub status: Status,
}

/// JSON records, or `None` for text lines. Platform records are INFO: a `SystemLogLevel`
/// of WARN keeps none of them.
fn json_records(config: &FunctionConfig) -> Option<bool> {
    match config.log_format {
        LogFormat::Text => None,
        LogFormat::Json => Some(
            config
                .log_levels
                .as_ref()
                .is_none_or(|l| l.system != "WARN"),
        ),
    }
}

fn record(kind: &str, record: Value) -> String {
    let time = time::OffsetDateTime::now_utc()
        .format(&time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .unwrap_or_default();
    json!({"time": time, "type": kind, "record": record}).to_string()
}

/// `INIT_START` at a cold start.
pub(crate) fn init_start(config: &FunctionConfig, runtime: &str) -> Vec<String> {
    match json_records(config) {
        None => vec![format!("INIT_START Runtime Version: {runtime}")],
        Some(false) => Vec::new(),
        Some(true) => vec![record(
            "platform.initStart",
            json!({
                "initializationType": "on-demand",
                "phase": "init",
                "runtimeVersion": runtime,
                "functionName": config.name.as_str(),
                "functionVersion": config.version.to_string(),
            }),
        )],
    }
}

/// `RESTORE_START` when a SnapStart environment is restored.
pub(crate) fn restore_start(config: &FunctionConfig, runtime: &str) -> Vec<String> {
    match json_records(config) {
        None => vec![format!("RESTORE_START Runtime Version: {runtime}")],
        Some(false) => Vec::new(),
        Some(true) => vec![record(
            "platform.restoreStart",
            json!({
                "runtimeVersion": runtime,
                "functionName": config.name.as_str(),
                "functionVersion": config.version.to_string(),
            }),
        )],
    }
}

/// `RESTORE_REPORT` when a restore ended; `error` is the error type of a failed one.
pub(crate) fn restore_report(
    config: &FunctionConfig,
    duration: Duration,
    error: Option<&str>,
) -> Vec<String> {
    match json_records(config) {
        None => {
            let mut line = format!("RESTORE_REPORT Restore Duration: {:.2} ms", ms(duration));
            if let Some(kind) = error {
                line.push_str(&format!("\tStatus: error\tError Type: {kind}"));
            }
            vec![line]
        }
        Some(false) => Vec::new(),
        Some(true) => {
            let mut record_ = json!({
                "status": if error.is_some() { "error" } else { "success" },
                "metrics": {"durationMs": (ms(duration) * 1000.0).round() / 1000.0},
            });
            if let Some(kind) = error {
                record_["errorType"] = json!(kind);
            }
            vec![record("platform.restoreReport", record_)]
        }
    }
}

/// `START` of an invocation.
pub(crate) fn start(config: &FunctionConfig, request_id: &str) -> Vec<String> {
    match json_records(config) {
        None => vec![format!(
            "START RequestId: {request_id} Version: {}",
            config.version
        )],
        Some(false) => Vec::new(),
        Some(true) => vec![record(
            "platform.start",
            json!({"requestId": request_id, "version": config.version.to_string()}),
        )],
    }
}

/// `END` and `REPORT` of an invocation.
pub(crate) fn end(config: &FunctionConfig, memory_mb: u32, report: &Report<'_>) -> Vec<String> {
    let init_ms = report.init.map_or(0.0, ms);
    let billed = (ms(report.duration) + init_ms).ceil() as u64;
    let restore_ms = report.restore.map(ms);
    match json_records(config) {
        None => {
            let mut line = format!(
                "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {billed} ms\tMemory Size: {memory_mb} MB\tMax Memory Used: {} MB\t",
                report.request_id,
                ms(report.duration),
                report.max_memory_mb
            );
            if let Some(init) = report.init {
                line.push_str(&format!("Init Duration: {:.2} ms\t", ms(init)));
            }
            if let Some(restore) = restore_ms {
                line.push_str(&format!(
                    "Restore Duration: {restore:.2} ms\tBilled Restore Duration: {} ms\t",
                    restore.ceil() as u64
                ));
            }
            match &report.status {
                Status::Success => {}
                Status::Timeout => line.push_str("Status: timeout\t"),
                Status::Error(None) => line.push_str("Status: error\t"),
                Status::Error(Some(kind)) => {
                    line.push_str(&format!("Status: error\tError Type: {kind}\t"));
                }
            }
            vec![format!("END RequestId: {}", report.request_id), line]
        }
        Some(false) => Vec::new(),
        Some(true) => {
            let (status, error_type) = match &report.status {
                Status::Success => ("success", None),
                Status::Timeout => ("timeout", None),
                Status::Error(kind) => ("error", kind.as_deref()),
            };
            let mut metrics = json!({
                "durationMs": (ms(report.duration) * 1000.0).round() / 1000.0,
                "billedDurationMs": billed,
                "memorySizeMB": memory_mb,
                "maxMemoryUsedMB": report.max_memory_mb,
            });
            if report.init.is_some() {
                metrics["initDurationMs"] = json!((init_ms * 1000.0).round() / 1000.0);
            }
            if let Some(restore) = restore_ms {
                metrics["restoreDurationMs"] = json!((restore * 1000.0).round() / 1000.0);
                metrics["billedRestoreDurationMs"] = json!(restore.ceil() as u64);
            }
            let mut done = json!({"requestId": report.request_id, "status": status});
            let mut full =
                json!({"requestId": report.request_id, "metrics": metrics, "status": status});
            if let Some(kind) = error_type {
                done["errorType"] = json!(kind);
                full["errorType"] = json!(kind);
            }
            vec![
                record("platform.runtimeDone", done),
                record("platform.report", full),
            ]
        }
    }
}
