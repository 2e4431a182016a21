//! Event source mappings at work: Lambda's SQS poller.
//!
//! The control plane keeps the mappings; [`Pollers`] reads them every second through the
//! [`Host`] (the binary, over every account's control plane), runs the enabled ones and
//! tells the host when a change has been applied (`Creating`/`Updating` → `Enabled` or
//! `Disabled`). Each mapping has a few workers; each worker long-polls the queue, gathers a
//! batch (up to `BatchSize`, the batching window, or 6 MB), deletes the messages its
//! filters drop, invokes the function with the SQS event, and deletes what was processed:
//! the whole batch on success, all but the reported failures with
//! `ReportBatchItemFailures`, nothing on a function error (the messages become visible
//! again after the queue's visibility timeout, so its redrive policy sees them). A
//! throttled batch is retried with back-off while its messages are still invisible.
//! Workers are added while batches come full, up to `MaximumConcurrency`, and leave when
//! the queue is empty.

mod batch;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gust_model::mapping::{MappingSettings, MappingState};
use gust_model::pattern::EventPattern;
use gust_sqs::{Caller, QueueAddress, ReceiveOptions, Sqs};
use tokio::sync::watch;

pub use batch::{failed_items, record};

/// A boxed future (the host interface is object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How often the mappings are read again (a change or a disable takes effect within it).
pub const RECONCILE_PERIOD: Duration = Duration::from_secs(1);
/// Workers per mapping when `MaximumConcurrency` is not set (Lambda scales further; one
/// host gains nothing past its cores and the function's concurrency).
const DEFAULT_MAX_WORKERS: usize = 16;
/// How long a mapping's workers use the queue's settings before reading them again.
const QUEUE_SETTINGS_TTL: Duration = Duration::from_secs(5);
/// Workers a mapping starts with.
const INITIAL_WORKERS: usize = 5;
/// The longest a receive waits for a message.
const LONG_POLL_S: i64 = 20;

/// A mapping as the pollers run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveMapping {
    /// The account it belongs to (the function's and the queue's).
    pub account: String,
    /// `UUID`.
    pub uuid: String,
    /// The function, version or alias invoked (an ARN).
    pub function_arn: String,
    /// The queue's ARN.
    pub queue_arn: String,
    /// Settings.
    pub settings: MappingSettings,
    /// Where it is in its life.
    pub state: MappingState,
    /// Its `LastModified` (milliseconds): a new value means new settings.
    pub version_ms: i64,
}

/// What an invocation of a batch came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The function returned this.
    Response(Bytes),
    /// The function failed (an unhandled error, a timeout, a crash).
    FunctionError,
    /// No capacity now (reserved or account concurrency, the host's memory).
    Throttled,
    /// It could not be invoked at all (no such function, ...).
    Failed(String),
    /// The batch continues a recursive loop the function does not allow: it is not
    /// invoked.
    Recursive,
}

/// What the pollers need from the server.
pub trait Host: Send + Sync + std::fmt::Debug {
    /// Every mapping of every account; `None` when they could not all be read (the
    /// pollers then keep what they run).
    fn mappings(&self) -> BoxFuture<'_, Option<Vec<ActiveMapping>>>;
    /// The pollers applied the mapping as of `version_ms`: it may settle.
    fn settle<'a>(&'a self, account: &'a str, uuid: &'a str, version_ms: i64) -> BoxFuture<'a, ()>;
    /// Records `LastProcessingResult`.
    fn record<'a>(&'a self, account: &'a str, uuid: &'a str, result: &'a str) -> BoxFuture<'a, ()>;
    /// Invokes the function synchronously with a batch; `trace` is the first record's
    /// `AWSTraceHeader`, if any.
    fn invoke<'a>(
        &'a self,
        account: &'a str,
        function_arn: &'a str,
        payload: Bytes,
        trace: Option<String>,
    ) -> BoxFuture<'a, Outcome>;
}

/// A running mapping.
#[derive(Debug)]
struct Running {
    version_ms: i64,
    stop: watch::Sender<bool>,
}

/// Every mapping's pollers.
#[derive(Debug)]
pub struct Pollers {
    sqs: Arc<Sqs>,
    host: Arc<dyn Host>,
    region: String,
    running: Mutex<HashMap<String, Running>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Pollers {
    /// Pollers reading `sqs` for the mappings `host` keeps.
    pub fn new(sqs: Arc<Sqs>, host: Arc<dyn Host>) -> Arc<Self> {
        let region = sqs.region().to_owned();
        Arc::new(Pollers {
            sqs,
            host,
            region,
            running: Mutex::new(HashMap::new()),
        })
    }

    /// Reads the mappings every [`RECONCILE_PERIOD`] and runs what is enabled.
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let pollers = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(RECONCILE_PERIOD);
            loop {
                ticker.tick().await;
                pollers.reconcile().await;
            }
        })
    }

    /// Stops every mapping's workers (server shutdown).
    pub fn stop_all(&self) {
        for (_, running) in lock(&self.running).drain() {
            let _ = running.stop.send(true);
        }
    }

    /// One pass: start what is enabled and new or changed, stop what is not, settle.
    pub async fn reconcile(self: &Arc<Self>) {
        let Some(mappings) = self.host.mappings().await else {
            return;
        };
        let mut settle = Vec::new();
        {
            let mut running = lock(&self.running);
            let wanted: HashMap<&str, &ActiveMapping> = mappings
                .iter()
                .filter(|m| m.state.polls() && m.settings.enabled)
                .map(|m| (m.uuid.as_str(), m))
                .collect();
            running.retain(|uuid, run| {
                let keep = wanted
                    .get(uuid.as_str())
                    .is_some_and(|m| m.version_ms == run.version_ms);
                if !keep {
                    let _ = run.stop.send(true);
                }
                keep
            });
            for (uuid, mapping) in wanted {
                if running.contains_key(uuid) {
                    continue;
                }
                let (stop, stopped) = watch::channel(false);
                running.insert(
                    uuid.to_owned(),
                    Running {
                        version_ms: mapping.version_ms,
                        stop,
                    },
                );
                let pollers = Arc::clone(self);
                let mapping = mapping.clone();
                tokio::spawn(async move { pollers.run_mapping(mapping, stopped).await });
            }
            for mapping in &mappings {
                if matches!(
                    mapping.state,
                    MappingState::Creating
                        | MappingState::Updating
                        | MappingState::Enabling
                        | MappingState::Disabling
                ) {
                    settle.push(mapping.clone());
                }
            }
        }
        for mapping in settle {
            self.host
                .settle(&mapping.account, &mapping.uuid, mapping.version_ms)
                .await;
        }
    }

    /// Runs one mapping until it is stopped: its first worker, and more while batches
    /// come full.
    async fn run_mapping(self: Arc<Self>, mapping: ActiveMapping, stopped: watch::Receiver<bool>) {
        let Some(queue) = self.sqs.parse_arn(&mapping.queue_arn) else {
            self.host
                .record(
                    &mapping.account,
                    &mapping.uuid,
                    "PROBLEM: The event source queue is not in this region.",
                )
                .await;
            return;
        };
        let filters: Vec<EventPattern> = mapping
            .settings
            .filters
            .iter()
            .filter_map(|p| EventPattern::parse(p).ok())
            .collect();
        let shared = Arc::new(Worker {
            pollers: Arc::clone(&self),
            caller: Caller::account(&mapping.account, &mapping.account),
            queue,
            mapping,
            filters,
            workers: AtomicUsize::new(0),
            throttled_at: Mutex::new(None),
            queue_cache: Mutex::new(None),
        });
        // Lambda starts a mapping with five pollers; the spare ones leave after a long
        // poll that finds nothing.
        for _ in 0..INITIAL_WORKERS.min(shared.max_workers()) {
            shared.spawn_worker(stopped.clone());
        }
    }
}

/// What every worker of one mapping shares.
#[derive(Debug)]
struct Worker {
    pollers: Arc<Pollers>,
    caller: Caller,
    queue: QueueAddress,
    mapping: ActiveMapping,
    filters: Vec<EventPattern>,
    workers: AtomicUsize,
    throttled_at: Mutex<Option<Instant>>,
    /// The queue's settings as last read: when, visibility timeout, has a DLQ.
    queue_cache: Mutex<Option<(Instant, Duration, bool)>>,
}

/// A batch as received.
struct Gathered {
    messages: Vec<gust_sqs::Received>,
    /// When the first message was received (its visibility runs from then).
    received_at: Instant,
    /// The queue's visibility timeout.
    visibility: Duration,
}

/// The next wait after a failed batch: from half a second, doubling to ten.
fn next_backoff(current: Duration) -> Duration {
    if current.is_zero() {
        Duration::from_millis(500)
    } else {
        (current * 2).min(Duration::from_secs(10))
    }
}

impl Worker {
    fn max_workers(&self) -> usize {
        self.mapping
            .settings
            .maximum_concurrency
            .map_or(DEFAULT_MAX_WORKERS, |n| n as usize)
    }

    /// Starts a worker whose place in `workers` is already counted.
    fn spawn_counted(self: &Arc<Self>, stopped: watch::Receiver<bool>) {
        let worker = Arc::clone(self);
        tokio::spawn(async move {
            if !worker.work(stopped).await {
                worker.workers.fetch_sub(1, Ordering::SeqCst);
            }
        });
    }

    fn spawn_worker(self: &Arc<Self>, stopped: watch::Receiver<bool>) {
        self.workers.fetch_add(1, Ordering::SeqCst);
        self.spawn_counted(stopped);
    }

    /// Another worker, when batches come full and nothing was throttled lately (counted
    /// in one step, so the maximum holds).
    fn maybe_scale_up(self: &Arc<Self>, stopped: &watch::Receiver<bool>) {
        let recently_throttled =
            lock(&self.throttled_at).is_some_and(|at| at.elapsed() < Duration::from_secs(5));
        let max = self.max_workers();
        if !recently_throttled
            && self
                .workers
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n < max).then_some(n + 1)
                })
                .is_ok()
        {
            self.spawn_counted(stopped.clone());
        }
    }

    /// Leaves if it is not the last worker (checked and counted out in one step, so the
    /// last one always stays).
    fn leave_if_spare(&self) -> bool {
        self.workers
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n > 1).then(|| n - 1)
            })
            .is_ok()
    }

    /// Polls until stopped; `true` when it counted itself out already.
    async fn work(self: &Arc<Self>, mut stopped: watch::Receiver<bool>) -> bool {
        // After a failed batch the worker waits before the next (the queue would otherwise
        // be run through, every message's receive count going up).
        let mut backoff = Duration::ZERO;
        loop {
            if *stopped.borrow() {
                return false;
            }
            if !backoff.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stopped.changed() => return false,
                }
            }
            let (gathered, problem) = self.gather(&mut stopped).await;
            if let Some(problem) = &problem {
                self.record(&format!("PROBLEM: {problem}")).await;
            }
            let Some(gathered) = gathered else {
                if problem.is_some() {
                    backoff = next_backoff(backoff);
                    continue;
                }
                // Nothing came in a whole long poll: spare workers leave.
                if self.leave_if_spare() {
                    return true;
                }
                continue;
            };
            let full = gathered.messages.len() >= self.mapping.settings.batch_size as usize;
            // What is in hand is processed even when the mapping is being stopped.
            let succeeded = self.process(gathered, &stopped).await;
            backoff = if succeeded {
                Duration::ZERO
            } else {
                next_backoff(backoff)
            };
            if full && succeeded {
                self.maybe_scale_up(&stopped);
            }
        }
    }

    /// Receives one batch: up to `BatchSize` messages, or what arrives within the batching
    /// window after the first (kept well inside the queue's visibility timeout), or 6 MB.
    /// Returns what it gathered (`None` when a long poll found nothing) and, if a receive
    /// failed, why; a stop ends the gathering with what is in hand.
    async fn gather(
        &self,
        stopped: &mut watch::Receiver<bool>,
    ) -> (Option<Gathered>, Option<String>) {
        let settings = &self.mapping.settings;
        let want = settings.batch_size as usize;
        let mut messages: Vec<gust_sqs::Received> = Vec::new();
        let mut excess: Vec<String> = Vec::new();
        let mut bytes = 0usize;
        let mut first_at = None;
        let mut problem = None;
        let (visibility, _) = self.queue_settings().await;
        let window = Duration::from_secs(u64::from(settings.window_s)).min(visibility / 2);
        loop {
            let wait = match first_at {
                None => LONG_POLL_S,
                Some(at) => {
                    let left = window.saturating_sub(Instant::now().duration_since(at));
                    if left.is_zero() {
                        break;
                    }
                    (left.as_secs_f64().ceil() as i64).min(LONG_POLL_S)
                }
            };
            let options = ReceiveOptions {
                max: Some((want - messages.len()).min(10) as i64),
                visibility_timeout: None,
                wait_seconds: Some(wait),
                system_attribute_names: vec!["All".into()],
                message_attribute_names: vec!["All".into()],
                attempt_id: None,
            };
            let received = tokio::select! {
                received = self.pollers.sqs.receive(&self.caller, &self.queue, &options) => received,
                _ = stopped.changed() => break,
            };
            let received = match received {
                Ok(received) => received,
                Err(error) => {
                    problem = Some(error.to_string());
                    break;
                }
            };
            if received.is_empty() {
                if first_at.is_none() {
                    return (None, None);
                }
                continue;
            }
            first_at.get_or_insert_with(Instant::now);
            for message in received {
                // The record's own fields count too (an estimate per message).
                let size = message.body.len() + 1024;
                if bytes + size > gust_model::mapping::BATCH_BYTES_MAX && !messages.is_empty() {
                    excess.push(message.receipt_handle);
                    continue;
                }
                bytes += size;
                messages.push(message);
            }
            if !excess.is_empty() || messages.len() >= want || window.is_zero() || *stopped.borrow()
            {
                break;
            }
        }
        // Messages past the 6 MB payload go back to the queue at once.
        if !excess.is_empty() {
            let entries: Vec<(String, i64)> = excess.into_iter().map(|h| (h, 0)).collect();
            let _ = self
                .pollers
                .sqs
                .change_visibility(&self.caller, &self.queue, &entries)
                .await;
        }
        (
            first_at.map(|received_at| Gathered {
                messages,
                received_at,
                visibility,
            }),
            problem,
        )
    }

    async fn record(&self, result: &str) {
        self.pollers
            .host
            .record(&self.mapping.account, &self.mapping.uuid, result)
            .await;
    }

    async fn delete(&self, handles: Vec<String>) {
        for chunk in handles.chunks(10) {
            if let Err(error) = self
                .pollers
                .sqs
                .delete(&self.caller, &self.queue, chunk)
                .await
            {
                tracing::warn!(mapping = %self.mapping.uuid, %error, "cannot delete processed messages");
            }
        }
    }

    /// Filters, invokes and deletes one batch; whether the function succeeded with it.
    async fn process(&self, gathered: Gathered, stopped: &watch::Receiver<bool>) -> bool {
        let region = &self.pollers.region;
        let mut records = Vec::new();
        let mut dropped = Vec::new();
        for message in &gathered.messages {
            let record = record(message, &self.mapping.queue_arn, region);
            if self.filters.is_empty()
                || self
                    .filters
                    .iter()
                    .any(|f| f.matches(&batch::filter_view(&record)))
            {
                records.push((message, record));
            } else {
                dropped.push(message.receipt_handle.clone());
            }
        }
        // Messages no filter matches are deleted, as Lambda does.
        if !dropped.is_empty() {
            self.delete(dropped).await;
        }
        if records.is_empty() {
            return true;
        }
        let trace = records
            .first()
            .and_then(|(m, _)| m.attributes.get("AWSTraceHeader").cloned());
        let payload = Bytes::from(
            serde_json::json!({
                "Records": records.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>()
            })
            .to_string(),
        );
        let (_, redrive) = self.queue_settings().await;
        // Throttled invokes are retried while the function would still have time to run
        // before the messages come back (the queue's timeout is at least the function's).
        let deadline = gathered.received_at + gathered.visibility / 2;
        let mut backoff = Duration::from_millis(100);
        let outcome = loop {
            let outcome = self
                .pollers
                .host
                .invoke(
                    &self.mapping.account,
                    &self.mapping.function_arn,
                    payload.clone(),
                    trace.clone(),
                )
                .await;
            if outcome != Outcome::Throttled {
                break outcome;
            }
            *lock(&self.throttled_at) = Some(Instant::now());
            // Retried while the messages are still ours; after that they come back.
            if Instant::now() + backoff >= deadline || *stopped.borrow() {
                break outcome;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        };
        match outcome {
            Outcome::Response(body) => {
                let ids: Vec<&str> = records.iter().map(|(m, _)| m.message_id.as_str()).collect();
                let keep = if self.mapping.settings.report_item_failures {
                    failed_items(&body, &ids)
                } else {
                    Some(Vec::new())
                };
                match keep {
                    Some(failed) => {
                        let failed: std::collections::HashSet<String> =
                            failed.into_iter().collect();
                        let handles: Vec<String> = records
                            .iter()
                            .filter(|(m, _)| !failed.contains(&m.message_id))
                            .map(|(m, _)| m.receipt_handle.clone())
                            .collect();
                        self.delete(handles).await;
                        let result = if failed.is_empty() {
                            "OK"
                        } else {
                            "PROBLEM: Function reported failures for some records."
                        };
                        self.record(result).await;
                        true
                    }
                    None => {
                        self.record(
                            "PROBLEM: Function returned an invalid partial batch response.",
                        )
                        .await;
                        false
                    }
                }
            }
            Outcome::FunctionError => {
                self.record("PROBLEM: Function call failed").await;
                false
            }
            // Stopped: the messages go to the queue's dead-letter queue when it has one
            // (they come back until its maxReceiveCount), else they are dropped.
            Outcome::Recursive => {
                if !redrive {
                    let handles = records
                        .iter()
                        .map(|(m, _)| m.receipt_handle.clone())
                        .collect();
                    self.delete(handles).await;
                }
                self.record("PROBLEM: Recursive invocation loop detected and stopped.")
                    .await;
                false
            }
            Outcome::Throttled => {
                self.record("PROBLEM: Function call throttled").await;
                false
            }
            Outcome::Failed(reason) => {
                self.record(&format!("PROBLEM: {reason}")).await;
                false
            }
        }
    }

    /// The queue's visibility timeout (a batch's messages are ours for that long), and
    /// whether it has a dead-letter queue; read again every few seconds, not per batch.
    async fn queue_settings(&self) -> (Duration, bool) {
        if let Some((at, visibility, redrive)) = *lock(&self.queue_cache) {
            if at.elapsed() < QUEUE_SETTINGS_TTL {
                return (visibility, redrive);
            }
        }
        let attributes = self
            .pollers
            .sqs
            .get_attributes(
                &self.caller,
                &self.queue,
                &["VisibilityTimeout".into(), "RedrivePolicy".into()],
            )
            .await
            .unwrap_or_default();
        let seconds = attributes
            .get("VisibilityTimeout")
            .and_then(|v| v.parse().ok())
            .unwrap_or(30);
        let settings = (
            Duration::from_secs(seconds),
            attributes.contains_key("RedrivePolicy"),
        );
        *lock(&self.queue_cache) = Some((Instant::now(), settings.0, settings.1));
        settings
    }
}

#[cfg(test)]
mod tests;
