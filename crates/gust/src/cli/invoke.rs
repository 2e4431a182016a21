//! `gust invoke NAME [--payload JSON|@file] [--log|--async]` and `gust logs NAME [--follow] [--since 10m]`.

use anyhow::{bail, Context, Result};
use base64::Engine;
use serde_json::Value;

use super::{block_on, output};
use crate::client::{encode_label, Client};
use crate::ConnectArgs;

#[derive(Debug, clap::Args)]
pub struct InvokeArgs {
    /// Function name or ARN.
    name: String,
    /// The event: JSON text, or @FILE to read it from a file (default `{}`).
    #[arg(long)]
    payload: Option<String>,
    /// Also print the end of this invocation's log.
    #[arg(long, conflicts_with = "asynchronous")]
    log: bool,
    /// Queue the event (`InvocationType: Event`) and return once it is accepted; print
    /// its request id.
    #[arg(long = "async")]
    asynchronous: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Function name.
    name: String,
    /// Keep printing new lines as they arrive (Ctrl-C to stop).
    #[arg(long, short)]
    follow: bool,
    /// Only lines newer than this (e.g. 30s, 10m, 2h).
    #[arg(long, value_parser = crate::serve::parse_duration)]
    since: Option<std::time::Duration>,
    #[command(flatten)]
    connect: ConnectArgs,
}

fn read_payload(payload: Option<&str>) -> Result<Vec<u8>> {
    match payload {
        None => Ok(b"{}".to_vec()),
        Some(path) if path.starts_with('@') => std::fs::read(&path[1..])
            .with_context(|| format!("cannot read payload file {}", &path[1..])),
        Some(text) => Ok(text.as_bytes().to_vec()),
    }
}

pub fn run_invoke(args: InvokeArgs) -> Result<()> {
    block_on(invoke(args))?
}

async fn invoke(args: InvokeArgs) -> Result<()> {
    let client = Client::connect(&args.connect)?;
    let payload = read_payload(args.payload.as_deref())?;
    let log_type = if args.log { "Tail" } else { "None" };
    let invocation_type = if args.asynchronous {
        "Event"
    } else {
        "RequestResponse"
    };
    let answer = client
        .send(
            "POST",
            &format!(
                "/2015-03-31/functions/{}/invocations",
                encode_label(&args.name)
            ),
            "",
            payload,
            &[
                ("x-amz-log-type", log_type),
                ("x-amz-invocation-type", invocation_type),
            ],
        )
        .await?;
    let header = |name: &str| answer.headers.get(name).and_then(|v| v.to_str().ok());
    if args.asynchronous {
        let request_id = header("x-amzn-requestid").unwrap_or_default();
        if args.connect.json {
            output::json(&serde_json::json!({"StatusCode": 202, "RequestId": request_id}))?;
        } else {
            println!("accepted: request {request_id}");
        }
        return Ok(());
    }
    let function_error = header("x-amz-function-error").map(str::to_owned);
    let log = header("x-amz-log-result")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let body: Value = serde_json::from_slice(&answer.bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&answer.bytes).into_owned()));
    if args.connect.json {
        output::json(&serde_json::json!({
            "StatusCode": 200,
            "FunctionError": function_error,
            "ExecutedVersion": header("x-amz-executed-version"),
            "LogResult": log,
            "Payload": body,
        }))?;
    } else {
        println!("{}", serde_json::to_string_pretty(&body)?);
        if let Some(log) = &log {
            eprintln!("--- log ---\n{}", log.trim_end());
        }
    }
    if let Some(kind) = function_error {
        bail!("the function failed ({kind})");
    }
    Ok(())
}

pub fn run_logs(args: LogsArgs) -> Result<()> {
    block_on(logs(args))?
}

fn format_time(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            ))
            .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// How far back `gust logs --follow` looks again on each poll: a line is stamped when the
/// server reads it but may be stored after later lines of another environment (START
/// waits for the invocation's next output), so the newest position alone would skip it.
const FOLLOW_LOOKBACK_MS: i64 = 10_000;

async fn logs(args: LogsArgs) -> Result<()> {
    let client = Client::connect(&args.connect)?;
    let now_ms = i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(0);
    let first = args.since.map_or(0, |d| {
        now_ms - i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
    });
    let mut since = first;
    // The position of the last event of a page: the next page starts after it, so events
    // sharing a timestamp across a page boundary are neither repeated nor skipped.
    let mut after_id: Option<i64> = None;
    // Events printed within the look-back window (id → timestamp), not printed twice.
    let mut printed: std::collections::HashMap<i64, i64> = std::collections::HashMap::new();
    let mut newest = first;
    loop {
        let query = match after_id {
            Some(id) => format!("since={since}&after_id={id}"),
            None => format!("since={since}"),
        };
        let page = client
            .call(
                "GET",
                &format!("/_gust/logs/{}", encode_label(&args.name)),
                &query,
                None,
            )
            .await?;
        let events: &[Value] = page["events"].as_array().map_or(&[], Vec::as_slice);
        for event in events {
            let at = event["timestamp"].as_i64().unwrap_or(0);
            // Without --follow, what was logged before the command started.
            if !args.follow && at > now_ms {
                return Ok(());
            }
            if let Some(id) = event["id"].as_i64() {
                if printed.insert(id, at).is_some() {
                    continue;
                }
            }
            newest = newest.max(at);
            if args.connect.json {
                println!("{event}");
            } else {
                let stream = event["stream"].as_str().unwrap_or("");
                let short = stream.rsplit(']').next().unwrap_or(stream);
                let short = &short[..short.len().min(8)];
                println!(
                    "{} {short} {}",
                    format_time(at),
                    event["message"].as_str().unwrap_or("")
                );
            }
        }
        let next = &page["next"];
        if let (Some(at), Some(id)) = (next["since"].as_i64(), next["after_id"].as_i64()) {
            since = at;
            after_id = Some(id);
        }
        // A page is cut at a byte budget: ask again at once while there is more.
        if page["more"].as_bool() == Some(true) && !events.is_empty() {
            continue;
        }
        if !args.follow {
            return Ok(());
        }
        // Caught up: the next poll looks back a while, skipping what was printed.
        since = (newest - FOLLOW_LOOKBACK_MS).max(first);
        after_id = None;
        printed.retain(|_, at| *at >= since);
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_sources() {
        assert_eq!(read_payload(None).unwrap(), b"{}");
        assert_eq!(read_payload(Some("[1]")).unwrap(), b"[1]");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("event.json");
        std::fs::write(&file, "{\"a\":1}").unwrap();
        assert_eq!(
            read_payload(Some(&format!("@{}", file.display()))).unwrap(),
            b"{\"a\":1}"
        );
        assert!(read_payload(Some("@/nonexistent/file")).is_err());
    }

    #[test]
    fn times_are_utc_with_millis() {
        assert_eq!(format_time(1_764_037_614_123), "2025-11-25T02:26:54.123Z");
    }
}
