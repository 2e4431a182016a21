//! Collects an environment's output (stdout and stderr share one pipe) into the function's
//! log, interleaved in order with the platform's START/END/REPORT lines, and captures each
//! invocation's part for `X-Amz-Log-Result`. External extensions write to a pipe of their
//! own ([`Collector::extensions`]): their lines go to the same log, and to the Telemetry
//! API as `extension` events rather than `function` ones.
//!
//! Order matters: the runtime writes its output before it posts its result, so when the
//! engine marks the end of an invocation the collector first drains whatever the pipe holds
//! (a non-blocking read on a duplicate of the read end), then writes END and REPORT.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot};

use crate::logs::LogSink;

/// The longest log event; longer output is split (CloudWatch's event limit is 256 KiB).
const MAX_EVENT_BYTES: usize = 256 * 1024;
/// Output held before it is written to the log.
const PENDING_BYTES_MAX: usize = 1024 * 1024;

/// Platform lines, and what they mark in the invocation's capture.
struct Mark {
    lines: Vec<String>,
    /// Read what the pipe holds before writing `lines` (so it lands before them).
    drain: bool,
    begin_capture: bool,
    /// The invocation's end: its capture is over (and sent, to a sender).
    ending: bool,
    end_capture: Option<oneshot::Sender<String>>,
    applied: Option<oneshot::Sender<()>>,
}

impl Mark {
    /// Plain lines, after what the pipe holds.
    fn lines(lines: Vec<String>) -> Self {
        Mark {
            lines,
            drain: true,
            begin_capture: false,
            ending: false,
            end_capture: None,
            applied: None,
        }
    }
}

enum Command {
    Mark(Mark),
    /// The environment's Telemetry API: output lines go to its `function` subscribers.
    Attach(Arc<gust_runtime::telemetry::Telemetry>),
    /// The extensions' own pipe, read by the same task after the runtime's.
    Extensions(pipe::Receiver),
}

/// Whose output a line is.
#[derive(Clone, Copy)]
enum Source {
    Runtime,
    Extensions,
}

/// Handle to an environment's collector task; dropping the last one ends the task.
#[derive(Debug, Clone)]
pub(crate) struct Collector {
    commands: mpsc::UnboundedSender<Command>,
}

pub(crate) fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

impl Collector {
    /// Starts collecting from `reader` into `function`'s log `group` under `stream`.
    pub(crate) fn start(
        reader: OwnedFd,
        (function, group): (String, String),
        stream: String,
        logs: Arc<dyn LogSink>,
    ) -> std::io::Result<Self> {
        let receiver = pipe::Receiver::from_owned_fd(reader)?;
        // Shares the non-blocking file description, so reads on it never wait.
        let drain = File::from(receiver.as_fd().try_clone_to_owned()?);
        let (commands, rx) = mpsc::unbounded_channel();
        let state = State {
            function,
            group,
            stream,
            logs,
            partial: Vec::new(),
            extension_partial: Vec::new(),
            capture: None,
            pending: Vec::new(),
            pending_bytes: 0,
            telemetry: None,
        };
        tokio::spawn(run(receiver, drain, rx, state));
        Ok(Collector { commands })
    }

    /// Collects the external extensions' output from `reader` too (a pipe of their own),
    /// in the same task, read when there is nothing of the runtime's to read (so a chatty
    /// extension waits on its pipe, as the runtime does, and never outruns the log). Their
    /// lines are not ordered against START/END marks: they are read as they come.
    pub(crate) fn extensions(&self, reader: OwnedFd) -> std::io::Result<()> {
        let receiver = pipe::Receiver::from_owned_fd(reader)?;
        let _ = self.commands.send(Command::Extensions(receiver));
        Ok(())
    }

    /// Sends the environment's output lines to `telemetry` too (when it has subscribers).
    pub(crate) fn attach(&self, telemetry: Arc<gust_runtime::telemetry::Telemetry>) {
        let _ = self.commands.send(Command::Attach(telemetry));
    }

    /// Writes platform lines (after draining the runtime's output so far).
    pub(crate) fn platform(&self, lines: Vec<String>) {
        let _ = self.commands.send(Command::Mark(Mark::lines(lines)));
    }

    /// The first lines of a new environment's log (INIT_START), sent before its runtime
    /// has the environment. Nothing is drained before them (what the pipe may hold, a
    /// primed spare's output, is INIT's too) and the collector reads nothing before its
    /// first mark, so everything the runtime writes lands after them without waiting for
    /// the collector to apply them (its task, just started, is woken on another thread:
    /// ~60 µs of a cold start). `capture`: the first invocation's log tail starts here (an
    /// on-demand cold start).
    pub(crate) fn first(&self, lines: Vec<String>, capture: bool) {
        let _ = self.commands.send(Command::Mark(Mark {
            drain: false,
            begin_capture: capture,
            ..Mark::lines(lines)
        }));
    }

    /// Starts capturing an invocation's log, beginning with `lines` (INIT_START on a cold
    /// start, else START); a capture already running (the cold start's) goes on. Returns
    /// once applied, so output the runtime produces afterwards lands after these lines.
    pub(crate) async fn begin(&self, lines: Vec<String>) {
        let (tx, rx) = oneshot::channel();
        let sent = self.commands.send(Command::Mark(Mark {
            begin_capture: true,
            applied: Some(tx),
            ..Mark::lines(lines)
        }));
        if sent.is_ok() {
            let _ = rx.await;
        }
    }

    /// Writes `lines` (END, REPORT) and returns everything captured since [`begin`].
    pub(crate) async fn end(&self, lines: Vec<String>) -> String {
        let (tx, rx) = oneshot::channel();
        let sent = self.commands.send(Command::Mark(Mark {
            ending: true,
            end_capture: Some(tx),
            ..Mark::lines(lines)
        }));
        if sent.is_err() {
            return String::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Writes `lines` (END, REPORT) without waiting for them: for an invocation whose
    /// caller did not ask for its log. They are queued, so whatever is marked after them
    /// (the next START) comes after them, and what the runtime wrote before them is drained
    /// first when they are applied.
    pub(crate) fn end_unseen(&self, lines: Vec<String>) {
        let _ = self.commands.send(Command::Mark(Mark {
            ending: true,
            ..Mark::lines(lines)
        }));
    }
}

struct State {
    function: String,
    group: String,
    stream: String,
    logs: Arc<dyn LogSink>,
    partial: Vec<u8>,
    /// The extensions' unfinished line.
    extension_partial: Vec<u8>,
    capture: Option<String>,
    pending: Vec<(i64, String)>,
    /// Message bytes in `pending`.
    pending_bytes: usize,
    telemetry: Option<Arc<gust_runtime::telemetry::Telemetry>>,
}

impl State {
    /// A line of the environment's own output: `function` telemetry from the runtime's
    /// pipe, `extension` telemetry from the extensions'.
    fn output(&mut self, source: Source, message: String) {
        if let Some(telemetry) = self.telemetry.as_ref().filter(|t| t.active()) {
            let (kind, name) = match source {
                Source::Runtime => (gust_runtime::telemetry::Kind::Function, "function"),
                Source::Extensions => (gust_runtime::telemetry::Kind::Extension, "extension"),
            };
            telemetry.emit(
                kind,
                &crate::extensions::timestamp(),
                name,
                serde_json::Value::String(message.clone()),
            );
        }
        self.line(message);
    }

    fn partial(&mut self, source: Source) -> &mut Vec<u8> {
        match source {
            Source::Runtime => &mut self.partial,
            Source::Extensions => &mut self.extension_partial,
        }
    }

    fn line(&mut self, message: String) {
        if let Some(capture) = &mut self.capture {
            capture.push_str(&message);
            capture.push('\n');
            // Only the tail is ever used: keep memory bounded for chatty functions.
            if capture.len() > 64 * 1024 {
                let mut cut = capture.len() - 16 * 1024;
                while !capture.is_char_boundary(cut) {
                    cut += 1;
                }
                capture.drain(..cut);
            }
        }
        // Bounded by bytes too: a function writing giant lines fast must not grow the
        // server's memory by a thousand of them.
        if self.pending.len() >= 1024 || self.pending_bytes >= PENDING_BYTES_MAX {
            self.write();
        }
        self.pending_bytes += message.len();
        self.pending.push((now_ms(), message));
    }

    fn bytes(&mut self, data: &[u8]) {
        self.bytes_of(Source::Runtime, data);
    }

    fn bytes_of(&mut self, source: Source, mut data: &[u8]) {
        while let Some(end) = data.iter().position(|b| *b == b'\n') {
            let partial = self.partial(source);
            partial.extend_from_slice(&data[..end]);
            let line = String::from_utf8_lossy(partial).into_owned();
            partial.clear();
            self.output(source, line);
            data = &data[end + 1..];
        }
        self.partial(source).extend_from_slice(data);
        if self.partial(source).len() >= MAX_EVENT_BYTES {
            self.flush_partial_of(source);
        }
    }

    fn flush_partial(&mut self) {
        self.flush_partial_of(Source::Runtime);
    }

    fn flush_partial_of(&mut self, source: Source) {
        let partial = self.partial(source);
        if !partial.is_empty() {
            let line = String::from_utf8_lossy(partial).into_owned();
            partial.clear();
            self.output(source, line);
        }
    }

    fn write(&mut self) {
        self.pending_bytes = 0;
        let events = std::mem::take(&mut self.pending);
        self.logs
            .append(&self.function, &self.group, &self.stream, events);
    }
}

/// `receiver` is readable (never resolves without one).
async fn readable(receiver: Option<&pipe::Receiver>) -> std::io::Result<()> {
    match receiver {
        Some(receiver) => receiver.readable().await,
        None => std::future::pending().await,
    }
}

async fn run(
    receiver: pipe::Receiver,
    mut drain: File,
    mut rx: mpsc::UnboundedReceiver<Command>,
    mut state: State,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    let mut eof = false;
    let mut extensions: Option<pipe::Receiver> = None;
    // Nothing is read before the first mark (a new environment's first lines, sent before
    // anything starts): a task that runs before that mark is queued must not take what a
    // primed spare left in the pipe ahead of it.
    let mut marked = false;
    loop {
        tokio::select! {
            // Commands first: a mark sent before output was produced must be applied before
            // that output is read.
            biased;
            command = rx.recv() => {
                let (lines, drain_first, begin_capture, ending, end_capture, applied) = match command {
                    Some(Command::Mark(Mark { lines, drain, begin_capture, ending, end_capture, applied })) => {
                        marked = true;
                        (lines, drain, begin_capture, ending, end_capture, applied)
                    }
                    Some(Command::Attach(telemetry)) => {
                        state.telemetry = Some(telemetry);
                        continue;
                    }
                    Some(Command::Extensions(receiver)) => {
                        extensions = Some(receiver);
                        continue;
                    }
                    None => {
                        // The environment is gone: keep what it wrote last.
                        // Bounded: a process that is still writing is being killed.
                        for _ in 0..64 {
                            match drain.read(&mut buffer) {
                                Ok(n) if n > 0 && !eof => state.bytes(&buffer[..n]),
                                _ => break,
                            }
                        }
                        if let Some(receiver) = &extensions {
                            for _ in 0..64 {
                                match receiver.try_read(&mut buffer) {
                                    Ok(n) if n > 0 => state.bytes_of(Source::Extensions, &buffer[..n]),
                                    _ => break,
                                }
                            }
                        }
                        break;
                    }
                };
                if !eof && drain_first {
                    loop {
                        match drain.read(&mut buffer) {
                            Ok(0) => { eof = true; break; }
                            Ok(n) => state.bytes(&buffer[..n]),
                            Err(_) => break,
                        }
                    }
                }
                if ending {
                    state.flush_partial();
                }
                if begin_capture && state.capture.is_none() {
                    state.capture = Some(String::new());
                }
                for line in lines {
                    state.line(line);
                }
                if ending {
                    let captured = state.capture.take().unwrap_or_default();
                    if let Some(ack) = end_capture {
                        let _ = ack.send(captured);
                    }
                }
                // START waits for the invocation's next write (output or END): one write
                // per invocation on the warm path instead of two.
                if ending || !begin_capture {
                    state.write();
                }
                if let Some(applied) = applied {
                    let _ = applied.send(());
                }
            }
            ready = receiver.readable(), if !eof && marked => {
                if ready.is_err() {
                    eof = true;
                    continue;
                }
                loop {
                    match receiver.try_read(&mut buffer) {
                        Ok(0) => { eof = true; state.flush_partial(); break; }
                        Ok(n) => state.bytes(&buffer[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(_) => { eof = true; break; }
                    }
                }
                state.write();
            }
            // Last: the extensions' pipe, one buffer at a time.
            ready = readable(extensions.as_ref()), if extensions.is_some() && marked => {
                let ended = match (ready, &extensions) {
                    (Ok(()), Some(receiver)) => match receiver.try_read(&mut buffer) {
                        Ok(0) => true,
                        Ok(n) => { state.bytes_of(Source::Extensions, &buffer[..n]); false }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
                        Err(_) => true,
                    },
                    _ => true,
                };
                if ended {
                    state.flush_partial_of(Source::Extensions);
                    extensions = None;
                }
                state.write();
            }
        }
    }
    state.flush_partial();
    state.flush_partial_of(Source::Extensions);
    state.write();
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::logs::LogStore;

    /// A collector of function `f`'s output into a log store of its own, and the write end
    /// of the runtime's pipe.
    fn collecting() -> (
        tempfile::TempDir,
        Arc<LogStore>,
        Collector,
        std::io::PipeWriter,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let logs = Arc::new(LogStore::new(dir.path()).unwrap());
        let (reader, writer) = std::io::pipe().unwrap();
        let collector = Collector::start(
            reader.into(),
            ("f".into(), "/aws/lambda/f".into()),
            "stream-1".into(),
            logs.clone(),
        )
        .unwrap();
        (dir, logs, collector, writer)
    }

    /// The messages in `f`'s log, once the collector has had a moment to write them.
    async fn logged(logs: &LogStore) -> Vec<String> {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        logs.read("f", 0, 100)
            .into_iter()
            .map(|e| e.message)
            .collect()
    }

    /// INIT_START is not waited for: output the runtime writes at once, or that was in the
    /// pipe already (a primed spare's), comes after it, in the first invocation's capture,
    /// even when the collector's task ran before the lines were sent.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_first_lines_precede_everything_the_runtime_writes() {
        let (_dir, logs, collector, mut writer) = collecting();
        writer.write_all(b"primed\n").unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        collector.first(vec!["INIT_START".into()], true);
        writer.write_all(b"init\n").unwrap();
        collector.begin(vec!["START".into()]).await;
        let captured = collector.end(vec!["END".into()]).await;
        assert_eq!(captured, "INIT_START\nprimed\ninit\nSTART\nEND\n");
        drop((writer, collector));
        let messages = logged(&logs).await;
        assert_eq!(messages, ["INIT_START", "primed", "init", "START", "END"]);
    }

    /// An end nobody waits for is still in order, and ends its invocation's capture: the
    /// next invocation's tail has only its own lines.
    #[tokio::test]
    async fn an_unseen_end_keeps_the_order_and_ends_the_capture() {
        let (_dir, logs, collector, mut writer) = collecting();
        collector.begin(vec!["START 1".into()]).await;
        writer.write_all(b"one\n").unwrap();
        collector.end_unseen(vec!["END 1".into()]);
        collector.begin(vec!["START 2".into()]).await;
        writer.write_all(b"two\n").unwrap();
        let captured = collector.end(vec!["END 2".into()]).await;
        assert_eq!(captured, "START 2\ntwo\nEND 2\n");
        drop((writer, collector));
        let messages = logged(&logs).await;
        assert_eq!(
            messages,
            ["START 1", "one", "END 1", "START 2", "two", "END 2"]
        );
    }

    #[tokio::test]
    async fn output_before_the_end_mark_is_in_the_capture_in_order() {
        let (_dir, logs, collector, mut writer) = collecting();
        collector.platform(vec!["INIT_START".into()]);
        collector.begin(vec!["START".into()]).await;
        writer.write_all(b"hello\nno newline at the end").unwrap();
        let captured = collector.end(vec!["END".into(), "REPORT".into()]).await;
        assert_eq!(
            captured,
            "START\nhello\nno newline at the end\nEND\nREPORT\n"
        );
        writer.write_all(b"after\n").unwrap();
        drop(writer);
        collector.platform(vec!["SHUTDOWN".into()]);
        let messages = logged(&logs).await;
        assert_eq!(
            messages,
            [
                "INIT_START",
                "START",
                "hello",
                "no newline at the end",
                "END",
                "REPORT",
                "after",
                "SHUTDOWN"
            ]
        );
    }

    #[tokio::test]
    async fn the_extensions_pipe_goes_to_the_same_log_and_ends_with_its_last_line() {
        let (_dir, logs, collector, mut writer) = collecting();
        let (extension_reader, mut extension_writer) = std::io::pipe().unwrap();
        collector.extensions(extension_reader.into()).unwrap();
        extension_writer
            .write_all(b"extension line\nunfinished")
            .unwrap();
        writer.write_all(b"runtime line\n").unwrap();
        drop(extension_writer);
        let messages = || -> Vec<String> {
            let mut messages: Vec<String> = logs
                .read("f", 0, 100)
                .into_iter()
                .map(|e| e.message)
                .collect();
            messages.sort();
            messages
        };
        for _ in 0..100 {
            collector.platform(Vec::new());
            if messages().len() == 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(messages(), ["extension line", "runtime line", "unfinished"]);
        drop(writer);
    }
}
