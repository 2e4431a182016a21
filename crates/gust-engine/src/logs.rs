//! Function logs: the [`LogSink`] collectors write to, and [`LogStore`], the sink of an
//! engine without a log service (one file per function under `logs/`, one JSON line per
//! log event `{"t": epoch-ms, "s": stream, "m": message}`, bounded by rotating to `.1`).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Where environments' output goes: the function's log group (`LoggingConfig.LogGroup`,
/// `/aws/lambda/<name>` by default), one stream per environment. Called from the
/// collectors, off the invocation's critical path but on the runtime: implementations
/// must not block for long (back-pressure for a bounded buffer is fine).
pub trait LogSink: Send + Sync + std::fmt::Debug {
    /// Appends `events` (epoch milliseconds, line) of an environment of `function`.
    fn append(&self, function: &str, group: &str, stream: &str, events: Vec<(i64, String)>);
}

impl LogSink for LogStore {
    fn append(&self, function: &str, _group: &str, stream: &str, events: Vec<(i64, String)>) {
        let events: Vec<LogEvent> = events
            .into_iter()
            .map(|(timestamp_ms, message)| LogEvent {
                timestamp_ms,
                stream: stream.to_owned(),
                message,
            })
            .collect();
        LogStore::append(self, function, &events);
    }
}

/// Size at which a function's log file is rotated; at most twice this is kept.
pub const ROTATE_BYTES: u64 = 8 * 1024 * 1024;

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEvent {
    /// Unix epoch milliseconds.
    #[serde(rename = "t")]
    pub timestamp_ms: i64,
    /// Log stream (one per environment).
    #[serde(rename = "s")]
    pub stream: String,
    /// The line, without its newline.
    #[serde(rename = "m")]
    pub message: String,
}

#[derive(Debug)]
struct OpenLog {
    file: File,
    size: u64,
}

/// Appends and reads function logs.
#[derive(Debug)]
pub struct LogStore {
    dir: PathBuf,
    open: Mutex<HashMap<String, OpenLog>>,
}

impl LogStore {
    /// Logs kept under `dir`.
    pub fn new(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(LogStore {
            dir: dir.to_owned(),
            open: Mutex::new(HashMap::new()),
        })
    }

    fn path(&self, function: &str) -> PathBuf {
        self.dir.join(format!("{function}.log"))
    }

    /// Appends events of `function`: one write per batch, split where the file rotates, so
    /// no file grows past [`ROTATE_BYTES`] by more than one line, however large the batch.
    pub fn append(&self, function: &str, events: &[LogEvent]) {
        if events.is_empty() {
            return;
        }
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(error) = self.append_locked(&mut open, function, events) {
            tracing::warn!(function, %error, "cannot write function log");
            open.remove(function);
        }
    }

    fn append_locked(
        &self,
        open: &mut HashMap<String, OpenLog>,
        function: &str,
        events: &[LogEvent],
    ) -> std::io::Result<()> {
        let path = self.path(function);
        if !open.contains_key(function) {
            let file = OpenOptions::new().create(true).append(true).open(&path)?;
            let size = file.metadata()?.len();
            open.insert(function.to_owned(), OpenLog { file, size });
        }
        let Some(log) = open.get_mut(function) else {
            return Ok(());
        };
        let mut text = Vec::new();
        for event in events {
            let Ok(mut line) = serde_json::to_vec(event) else {
                continue;
            };
            line.push(b'\n');
            let size = log.size + text.len() as u64;
            if size > 0 && size + line.len() as u64 > ROTATE_BYTES {
                log.file.write_all(&text)?;
                text.clear();
                std::fs::rename(&path, path.with_extension("log.1"))?;
                log.file = OpenOptions::new().create(true).append(true).open(&path)?;
                log.size = 0;
            }
            text.extend_from_slice(&line);
        }
        log.file.write_all(&text)?;
        log.size += text.len() as u64;
        Ok(())
    }

    /// Events of `function` at or after `since_ms`, oldest first, at most `limit` of the
    /// newest ones.
    pub fn read(&self, function: &str, since_ms: i64, limit: usize) -> Vec<LogEvent> {
        let current = self.path(function);
        let mut events = Vec::new();
        for path in [current.with_extension("log.1"), current] {
            let Ok(file) = File::open(&path) else {
                continue;
            };
            for line in BufReader::new(file).lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str::<LogEvent>(&line) {
                    if event.timestamp_ms >= since_ms {
                        events.push(event);
                    }
                }
            }
        }
        let skip = events.len().saturating_sub(limit);
        events.split_off(skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(t: i64, m: &str) -> LogEvent {
        LogEvent {
            timestamp_ms: t,
            stream: "s".into(),
            message: m.into(),
        }
    }

    #[test]
    fn append_read_filter_and_limit() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogStore::new(dir.path()).unwrap();
        logs.append("f", &[event(1, "a"), event(2, "b")]);
        logs.append("f", &[event(3, "c\twith tab")]);
        logs.append("g", &[event(1, "other")]);
        assert_eq!(
            logs.read("f", 0, 100),
            vec![event(1, "a"), event(2, "b"), event(3, "c\twith tab")]
        );
        assert_eq!(logs.read("f", 2, 100).len(), 2);
        assert_eq!(logs.read("f", 0, 1), vec![event(3, "c\twith tab")]);
        assert!(logs.read("missing", 0, 10).is_empty());
    }

    #[test]
    fn rotation_bounds_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogStore::new(dir.path()).unwrap();
        let big = "x".repeat(64 * 1024);
        for i in 0..300 {
            logs.append("f", &[event(i, &big)]);
        }
        let total: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(total <= 2 * ROTATE_BYTES, "{total}");
        let kept = logs.read("f", 0, usize::MAX);
        assert_eq!(
            kept.last().unwrap().timestamp_ms,
            299,
            "newest events are kept"
        );
    }

    #[test]
    fn one_giant_batch_is_split_where_the_file_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogStore::new(dir.path()).unwrap();
        // Control characters are escaped six-fold in JSON: 100 such events are ~150 MB.
        let control = "\u{1}".repeat(256 * 1024);
        let batch: Vec<LogEvent> = (0..100).map(|i| event(i, &control)).collect();
        logs.append("f", &batch);
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let size = entry.unwrap().metadata().unwrap().len();
            assert!(size <= ROTATE_BYTES, "{size}");
        }
        assert_eq!(
            logs.read("f", 0, usize::MAX).last().unwrap().timestamp_ms,
            99
        );
    }
}
