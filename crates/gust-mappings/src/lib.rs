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
    /// Every mapping of every account.
    fn mappings(&self) -> BoxFuture<'_, Vec<ActiveMapping>>;
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
        let mappings = self.host.mappings().await;
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
}

/// A batch as received.
struct Gathered {
    messages: Vec<gust_sqs::Received>,
    /// When the first message was received (its visibility runs from then).
    received_at: Instant,
}

impl Worker {
    fn max_workers(&self) -> usize {
        self.mapping
            .settings
            .maximum_concurrency
            .map_or(DEFAULT_MAX_WORKERS, |n| n as usize)
    }

    fn spawn_worker(self: &Arc<Self>, stopped: watch::Receiver<bool>) {
        self.workers.fetch_add(1, Ordering::SeqCst);
        let worker = Arc::clone(self);
        tokio::spawn(async move {
            worker.work(stopped).await;
            worker.workers.fetch_sub(1, Ordering::SeqCst);
        });
    }

    /// Another worker, when batches come full and nothing was throttled lately.
    fn maybe_scale_up(self: &Arc<Self>, stopped: &watch::Receiver<bool>) {
        let recently_throttled =
            lock(&self.throttled_at).is_some_and(|at| at.elapsed() < Duration::from_secs(5));
        if !recently_throttled && self.workers.load(Ordering::SeqCst) < self.max_workers() {
            self.spawn_worker(stopped.clone());
        }
    }

    async fn work(self: &Arc<Self>, mut stopped: watch::Receiver<bool>) {
        loop {
            if *stopped.borrow() {
                return;
            }
            let gathered = tokio::select! {
                gathered = self.gather() => gathered,
                _ = stopped.changed() => return,
            };
            let gathered = match gathered {
                Ok(Some(gathered)) => gathered,
                // Nothing came in a whole long poll: spare workers leave.
                Ok(None) => {
                    if self.workers.load(Ordering::SeqCst) > 1 {
                        return;
                    }
                    continue;
                }
                Err(problem) => {
                    self.record(&format!("PROBLEM: {problem}")).await;
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(5)) => {}
                        _ = stopped.changed() => return,
                    }
                    continue;
                }
            };
            if gathered.messages.len() >= self.mapping.settings.batch_size as usize {
                self.maybe_scale_up(&stopped);
            }
            self.process(gathered, &stopped).await;
        }
    }

    /// Receives one batch: up to `BatchSize` messages, or what arrives within the batching
    /// window after the first, or 6 MB. `None` when a long poll found nothing.
    async fn gather(&self) -> Result<Option<Gathered>, String> {
        let settings = &self.mapping.settings;
        let want = settings.batch_size as usize;
        let mut messages: Vec<gust_sqs::Received> = Vec::new();
        let mut bytes = 0usize;
        let mut first_at = None;
        let window = Duration::from_secs(u64::from(settings.window_s));
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
            let received = self
                .pollers
                .sqs
                .receive(&self.caller, &self.queue, &options)
                .await
                .map_err(|e| e.to_string())?;
            if received.is_empty() {
                if first_at.is_none() {
                    return Ok(None);
                }
                continue;
            }
            first_at.get_or_insert_with(Instant::now);
            for message in received {
                bytes += message.body.len();
                messages.push(message);
            }
            if messages.len() >= want
                || bytes >= gust_model::mapping::BATCH_BYTES_MAX / 2
                || window.is_zero()
            {
                break;
            }
        }
        Ok(first_at.map(|received_at| Gathered {
            messages,
            received_at,
        }))
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

    /// Filters, invokes and deletes one batch.
    async fn process(&self, gathered: Gathered, stopped: &watch::Receiver<bool>) {
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
            return;
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
        let (visibility, redrive) = self.queue_settings().await;
        let deadline = gathered.received_at + visibility.saturating_sub(Duration::from_secs(1));
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
                    }
                    None => {
                        self.record(
                            "PROBLEM: Function returned an invalid partial batch response.",
                        )
                        .await;
                    }
                }
            }
            Outcome::FunctionError => self.record("PROBLEM: Function call failed").await,
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
            }
            Outcome::Throttled => self.record("PROBLEM: Function call throttled").await,
            Outcome::Failed(reason) => self.record(&format!("PROBLEM: {reason}")).await,
        }
    }

    /// The queue's visibility timeout (a batch's messages are ours for that long), and
    /// whether it has a dead-letter queue.
    async fn queue_settings(&self) -> (Duration, bool) {
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
        (
            Duration::from_secs(seconds),
            attributes.contains_key("RedrivePolicy"),
        )
    }
}

#[cfg(test)]
mod tests;
