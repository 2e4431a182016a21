//! Function output on its way into the store: callers hand events to a bounded queue and
//! return; one writer thread commits everything queued in one transaction per batch.
//! The queue holds at most [`PENDING_MAX`] bytes (counting events being committed):
//! past that a caller waits for the writer, so a function printing without end slows down
//! rather than growing the server's memory.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use gust_model::Clock;

use crate::model::NewEvent;
use crate::store::{Append, LogsStore};

/// Bytes of events queued or being committed at most.
pub const PENDING_MAX: usize = 32 * 1024 * 1024;

/// Bytes committed in one transaction at most (more waits for the next).
const BATCH_MAX: usize = 8 * 1024 * 1024;

/// How long the writer gathers output before committing it, once commits come often
/// (unless a flush waits or a large batch is ready): many small transactions cost the
/// server far more CPU and write-ahead log than a few larger ones, and readers still see
/// output within this.
const GATHER: std::time::Duration = std::time::Duration::from_millis(100);

/// Commits in one second after which the writer gathers: below it (a quiet server) output
/// is committed as soon as it arrives, so little is in memory if the server is killed.
const BUSY_COMMITS_PER_SECOND: u32 = 20;

/// The largest message kept whole: CloudWatch's 256 KiB event size less its 26-byte
/// overhead. Longer function output is cut there, as Lambda does.
pub const MESSAGE_MAX: usize = 262_144 - 26;

/// The bytes an event counts for: its message and 26 bytes of overhead.
pub fn event_size(message: &str) -> usize {
    message.len() + 26
}

#[derive(Debug)]
struct Queued {
    append: Append,
    bytes: usize,
    sequence: u64,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Queued>,
    /// Bytes queued or being committed.
    bytes: usize,
    /// Appends queued so far (the last one's sequence number).
    enqueued: u64,
    /// Every append up to this sequence number is committed (or was dropped on error).
    done: u64,
    closing: bool,
    /// The writer thread has ended (shut down, or panicked): nothing will be committed.
    stopped: bool,
    /// Callers waiting in `flush`: the writer commits at once rather than gathering.
    flushing: usize,
    /// Times the writer woke while gathering (for tests: appends must not wake it).
    #[cfg(test)]
    gathering_wakeups: usize,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// The writer waits on it: signalled only when there is something for it to do now
    /// (output in an empty queue, a batch half full, a flush, the end), not for every
    /// append while it gathers (a wake-up per append cost a context switch per invoke).
    work: Condvar,
    /// Callers wait on it: signalled after each commit (room in the queue, appends done)
    /// and when the writer stops.
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is plain counters and a queue, consistent at every unlock.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed
            .wait(guard)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn wait_for_work<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.work
            .wait(guard)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What the writer does with a batch (the store's `append`, or a stand-in in tests).
type Commit = Box<dyn FnMut(Vec<Append>) + Send>;

/// The ingestion queue and its writer thread.
#[derive(Debug)]
pub(crate) struct Ingest {
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Ingest {
    pub(crate) fn start(store: Arc<dyn LogsStore>, clock: Arc<dyn Clock>) -> std::io::Result<Self> {
        Self::start_with(clock, Box::new(move |batch| commit(store.as_ref(), batch)))
    }

    fn start_with(clock: Arc<dyn Clock>, commit: Commit) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let for_writer = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("logs-ingest".into())
            .spawn(move || {
                let _stopped = Stopped(&for_writer);
                write_loop(&for_writer, commit);
            })?;
        Ok(Ingest {
            shared,
            clock,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Queues events for a stream (created with its group when missing). Waits only while
    /// the queue is full.
    pub(crate) fn push(
        &self,
        account: &str,
        group: &str,
        stream: &str,
        events: Vec<(i64, String)>,
    ) {
        let events: Vec<NewEvent> = events
            .into_iter()
            .filter(|(_, message)| !message.is_empty())
            .map(|(timestamp, mut message)| {
                if message.len() > MESSAGE_MAX {
                    let mut cut = MESSAGE_MAX;
                    while !message.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    message.truncate(cut);
                }
                NewEvent { timestamp, message }
            })
            .collect();
        if events.is_empty() {
            return;
        }
        let bytes: usize = events.iter().map(|e| event_size(&e.message)).sum();
        let append = Append {
            account: account.to_owned(),
            group: group.to_owned(),
            stream: stream.to_owned(),
            events,
            ingestion_ms: gust_store::sqlite::ms(self.clock.now()),
            create: true,
        };
        let mut state = self.shared.lock();
        // An empty queue takes anything, so one append larger than the bound still goes.
        while state.bytes > 0
            && state.bytes + bytes > PENDING_MAX
            && !state.closing
            && !state.stopped
        {
            state = self.shared.wait(state);
        }
        if state.closing || state.stopped {
            tracing::warn!(group, stream, "log ingestion has stopped; events dropped");
            return;
        }
        state.enqueued += 1;
        let sequence = state.enqueued;
        let was_empty = state.queue.is_empty();
        let half_full = state.bytes < BATCH_MAX / 2 && state.bytes + bytes >= BATCH_MAX / 2;
        state.bytes += bytes;
        state.queue.push_back(Queued {
            append,
            bytes,
            sequence,
        });
        drop(state);
        if was_empty || half_full {
            self.shared.work.notify_one();
        }
    }

    /// Waits until everything queued before this call is committed.
    pub(crate) fn flush(&self) {
        let mut state = self.shared.lock();
        let target = state.enqueued;
        state.flushing += 1;
        self.shared.work.notify_one();
        // Once the writer is gone, what it had not committed never will be.
        while state.done < target && !state.stopped {
            state = self.shared.wait(state);
        }
        state.flushing -= 1;
    }

    /// Bytes queued or being committed (for tests and metrics).
    pub(crate) fn pending_bytes(&self) -> usize {
        self.shared.lock().bytes
    }

    /// Commits what is queued and stops the writer.
    pub(crate) fn shutdown(&self) {
        self.shared.lock().closing = true;
        self.shared.work.notify_one();
        self.shared.changed.notify_all();
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            if handle.join().is_err() {
                tracing::error!("the log ingestion writer panicked");
            }
        }
    }
}

/// Marks the writer stopped and wakes every waiter when the writer thread ends, however
/// it ends (a panic unwinds through this too).
struct Stopped<'a>(&'a Shared);

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        self.0.lock().stopped = true;
        self.0.changed.notify_all();
    }
}

fn commit(store: &dyn LogsStore, batch: Vec<Append>) {
    match store.append(batch) {
        Ok(results) => {
            for error in results.into_iter().filter_map(Result::err) {
                tracing::error!(%error, "function output could not be stored");
            }
        }
        // The caller is long gone: the events are lost, the server goes on.
        Err(error) => tracing::error!(%error, "function output could not be stored"),
    }
}

/// Adds `append` to `batch`, into an earlier append of the same stream when there is one
/// (one lookup and one stream update per stream and batch, not per collector write).
fn push_merged(batch: &mut Vec<Append>, append: Append) {
    let same = batch.iter_mut().rev().find(|a| {
        a.account == append.account
            && a.group == append.group
            && a.stream == append.stream
            && a.create == append.create
    });
    match same {
        Some(earlier) => {
            earlier.ingestion_ms = earlier.ingestion_ms.max(append.ingestion_ms);
            earlier.events.extend(append.events);
        }
        None => batch.push(append),
    }
}

fn write_loop(shared: &Shared, mut commit: Commit) {
    let mut last_commit = std::time::Instant::now();
    // Commits in the current one-second window, to tell a busy server from a quiet one.
    let mut window = (std::time::Instant::now(), 0u32);
    loop {
        let (batch, bytes, last) = {
            let mut state = shared.lock();
            while state.queue.is_empty() && !state.closing {
                state = shared.wait_for_work(state);
            }
            if state.queue.is_empty() {
                return;
            }
            // When busy, gather for a while after the last commit, unless someone waits.
            let busy = window.1 >= BUSY_COMMITS_PER_SECOND;
            while busy && !state.closing && state.flushing == 0 {
                let left = GATHER.saturating_sub(last_commit.elapsed());
                if left.is_zero() || state.bytes >= BATCH_MAX / 2 {
                    break;
                }
                state = shared
                    .work
                    .wait_timeout(state, left)
                    .map(|(guard, _)| guard)
                    .unwrap_or_else(|poisoned| poisoned.into_inner().0);
                #[cfg(test)]
                {
                    state.gathering_wakeups += 1;
                }
            }
            let mut batch = Vec::new();
            let mut bytes = 0;
            let mut last = 0;
            while let Some(next) = state.queue.front() {
                if !batch.is_empty() && bytes + next.bytes > BATCH_MAX {
                    break;
                }
                let Some(queued) = state.queue.pop_front() else {
                    break;
                };
                bytes += queued.bytes;
                last = queued.sequence;
                push_merged(&mut batch, queued.append);
            }
            (batch, bytes, last)
        };
        last_commit = std::time::Instant::now();
        if window.0.elapsed() >= std::time::Duration::from_secs(1) {
            window = (last_commit, 0);
        }
        window.1 += 1;
        commit(batch);
        let mut state = shared.lock();
        state.bytes = state.bytes.saturating_sub(bytes);
        state.done = last;
        drop(state);
        shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[derive(Debug)]
    struct Fixed;

    impl Clock for Fixed {
        fn now(&self) -> time::OffsetDateTime {
            time::OffsetDateTime::UNIX_EPOCH
        }
    }

    /// 1 MiB of output.
    fn chunk() -> Vec<(i64, String)> {
        (0..16).map(|_| (0, "x".repeat(64 * 1024))).collect()
    }

    /// Once commits come often the writer gathers: appends made meanwhile do not wake it
    /// (each one did, a context switch per invoke) and go in one batch, and a flush commits
    /// them at once.
    #[test]
    fn a_busy_writer_gathers_appends_until_a_flush() {
        let batches = Arc::new(Mutex::new(Vec::<usize>::new()));
        let seen = Arc::clone(&batches);
        let ingest = Ingest::start_with(
            Arc::new(Fixed),
            Box::new(move |batch: Vec<Append>| {
                let events = batch.iter().map(|a| a.events.len()).sum();
                seen.lock().unwrap().push(events);
            }),
        )
        .unwrap();
        let line = || vec![(0, "line".to_owned())];
        // Busy: a commit for each flushed append.
        for _ in 0..BUSY_COMMITS_PER_SECOND {
            ingest.push("a", "g", "s", line());
            ingest.flush();
        }
        let before = batches.lock().unwrap().len();
        for _ in 0..50 {
            ingest.push("a", "g", "s", line());
        }
        // Woken by the gathering time running out or the flush, never by an append.
        let wakeups = ingest.shared.lock().gathering_wakeups;
        assert!(
            wakeups <= 2,
            "{wakeups} wake-ups while gathering 50 appends"
        );
        ingest.flush();
        let batches = batches.lock().unwrap();
        let after: Vec<usize> = batches[before..].to_vec();
        assert_eq!(after.iter().sum::<usize>(), 50, "every append committed");
        // One batch, or two if the gathering time ran out between appends.
        assert!(
            after.len() <= 2,
            "gathered, not committed one by one: {after:?}"
        );
        drop(batches);
        ingest.shutdown();
    }

    /// A writer that dies on its first batch must release `flush` and full-queue `push`.
    #[test]
    fn a_dead_writer_releases_waiters() {
        let (started, wait_started) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let ingest = Arc::new(
            Ingest::start_with(
                Arc::new(Fixed),
                Box::new(move |_| {
                    let _ = started.send(());
                    let _ = released.recv();
                    panic!("the store broke");
                }),
            )
            .unwrap(),
        );
        // The writer takes the first append and stalls; the queue then fills up.
        ingest.push("a", "g", "s", chunk());
        wait_started.recv().unwrap();
        let per_push = 16 * (64 * 1024 + 26);
        while ingest.pending_bytes() + per_push <= PENDING_MAX {
            ingest.push("a", "g", "s", chunk());
        }
        let (done, finished) = mpsc::channel();
        for _ in 0..2 {
            let ingest = Arc::clone(&ingest);
            let done = done.clone();
            std::thread::spawn(move || {
                ingest.push("a", "g", "s", chunk());
                done.send("push").unwrap();
            });
        }
        {
            let ingest = Arc::clone(&ingest);
            std::thread::spawn(move || {
                ingest.flush();
                done.send("flush").unwrap();
            });
        }
        assert!(
            finished.recv_timeout(Duration::from_millis(200)).is_err(),
            "waiters wait while the writer lives"
        );
        release.send(()).unwrap();
        let mut woke: Vec<&str> = (0..3)
            .map(|_| finished.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        woke.sort_unstable();
        assert_eq!(woke, ["flush", "push", "push"]);
        // Later calls return at once too.
        ingest.push("a", "g", "s", chunk());
        ingest.flush();
        ingest.shutdown();
    }
}
