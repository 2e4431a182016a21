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
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
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
}

/// The ingestion queue and its writer thread.
#[derive(Debug)]
pub(crate) struct Ingest {
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Ingest {
    pub(crate) fn start(store: Arc<dyn LogsStore>, clock: Arc<dyn Clock>) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let for_writer = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("logs-ingest".into())
            .spawn(move || write_loop(&for_writer, store.as_ref()))?;
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
        while state.bytes > 0 && state.bytes + bytes > PENDING_MAX && !state.closing {
            state = self.shared.wait(state);
        }
        if state.closing {
            tracing::warn!(group, stream, "log ingestion has stopped; events dropped");
            return;
        }
        state.enqueued += 1;
        let sequence = state.enqueued;
        state.bytes += bytes;
        state.queue.push_back(Queued {
            append,
            bytes,
            sequence,
        });
        drop(state);
        self.shared.changed.notify_all();
    }

    /// Waits until everything queued before this call is committed.
    pub(crate) fn flush(&self) {
        let mut state = self.shared.lock();
        let target = state.enqueued;
        while state.done < target {
            if state.closing && self.writer_gone() {
                return;
            }
            state = self.shared.wait(state);
        }
    }

    fn writer_gone(&self) -> bool {
        self.writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_none_or(JoinHandle::is_finished)
    }

    /// Bytes queued or being committed (for tests and metrics).
    pub(crate) fn pending_bytes(&self) -> usize {
        self.shared.lock().bytes
    }

    /// Commits what is queued and stops the writer.
    pub(crate) fn shutdown(&self) {
        self.shared.lock().closing = true;
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

fn write_loop(shared: &Shared, store: &dyn LogsStore) {
    loop {
        let (batch, bytes, last) = {
            let mut state = shared.lock();
            while state.queue.is_empty() && !state.closing {
                state = shared.wait(state);
            }
            if state.queue.is_empty() {
                return;
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
                batch.push(queued.append);
            }
            (batch, bytes, last)
        };
        match store.append(batch) {
            Ok(results) => {
                for error in results.into_iter().filter_map(Result::err) {
                    tracing::error!(%error, "function output could not be stored");
                }
            }
            // The caller is long gone: the events are lost, the server goes on.
            Err(error) => tracing::error!(%error, "function output could not be stored"),
        }
        let mut state = shared.lock();
        state.bytes = state.bytes.saturating_sub(bytes);
        state.done = last;
        drop(state);
        shared.changed.notify_all();
    }
}
