//! Asynchronous invocation: Lambda's event queue. An accepted event is stored durably in a
//! queue of its function before the caller gets its 202; a dispatcher runs events as
//! capacity allows, retries function errors `MaximumRetryAttempts` times (about one and two
//! minutes apart, scaled by [`AsyncConfig::retry_base`]), backs off on throttles and system
//! errors, gives up at the maximum event age, and routes the outcome: the invocation record
//! to the on-success or on-failure destination, the original event to the dead-letter
//! queue. Nothing accepted is dropped silently: an event that cannot be routed anywhere is
//! logged as dropped.
//!
//! Storage is the SQS store's interface (`gust_sqs::store::QueueStore`, in a database of its
//! own), so a distributed store serves both. An event is a message; its state (attempts,
//! stage) lives in message attributes, and a state change is a new message followed by the
//! deletion of the old one, so a crash between the two repeats a step (at least once) and
//! never loses one. A claimed event stays invisible while its attempt runs; after a crash it
//! becomes visible again and runs again.
//!
//! The functions, their settings and the destinations are reached through [`Runner`], which
//! the binary implements over the control planes, the engines, SQS and SNS.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gust_model::observe::{FunctionKey, Observation};
use gust_model::Clock;
use gust_sqs::attributes::QueueConfig;
use gust_sqs::message::{AttributeValue, Attributes};
use gust_sqs::store::{Claim, NewMessage, QueueStore, Receipt, StoredMessage};
use serde_json::{json, Value};
use tokio::sync::{Notify, Semaphore};

/// A boxed future, for the [`Runner`] trait.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Message attributes of a delivery: `(name, data type, value)`.
pub type DeliveryAttributes = Vec<(String, String, String)>;

/// Largest asynchronous payload (1 MB).
pub const MAX_PAYLOAD: usize = 1_048_576;

/// Why an event was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsyncError {
    /// The queue store failed; the event was not accepted.
    #[error("the event queue is unavailable: {0}")]
    Store(String),
}

/// An event as accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncEvent {
    /// The function's account.
    pub account: String,
    /// The function's name.
    pub function: String,
    /// The qualifier invoked (a version or an alias), if any.
    pub qualifier: Option<String>,
    /// The event (JSON text).
    pub payload: String,
    /// Its request id, kept across attempts.
    pub request_id: String,
    /// The trace header it came with (its chain, for recursive loop detection).
    pub trace: Option<String>,
}

impl AsyncEvent {
    /// The function it is for, as observations name it.
    fn key(&self) -> FunctionKey {
        FunctionKey {
            account: self.account.clone(),
            function: self.function.clone(),
            qualifier: self.qualifier.clone(),
        }
    }
}

/// The settings an event runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSettings {
    /// Retries of a function error.
    pub retries: u32,
    /// Oldest an event may get, seconds.
    pub max_age_seconds: u32,
    /// Where success records go.
    pub on_success: Option<String>,
    /// Where failure records go.
    pub on_failure: Option<String>,
    /// Where the original event goes after the last failure.
    pub dead_letter: Option<String>,
    /// The function's ARN with the qualifier invoked.
    pub function_arn: String,
    /// `RecursiveLoop: Allow`: the function may run on in a loop.
    pub recursion_allowed: bool,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The function ran; `error` is its error type when it failed (`Unhandled` errors,
    /// timeouts, out of memory).
    Ran {
        /// The response or error body.
        body: String,
        /// The version that ran.
        executed_version: String,
        /// The function error, if any.
        error: Option<String>,
    },
    /// No capacity now.
    Throttled,
    /// The function (or the qualifier) no longer exists.
    Gone,
    /// The platform failed (retried like a throttle).
    Failed(String),
}

/// The functions, their settings and the destinations.
pub trait Runner: Send + Sync + std::fmt::Debug {
    /// The settings that apply to an event (`None`: the function is gone).
    fn settings<'a>(&'a self, event: &'a AsyncEvent) -> BoxFuture<'a, Option<EventSettings>>;
    /// Runs one attempt of an event.
    fn run<'a>(&'a self, event: &'a AsyncEvent) -> BoxFuture<'a, Attempt>;
    /// Sends `body` to a destination (queue, topic or function) of `account`, with message
    /// attributes `(name, data type, value)` where the destination takes them.
    fn deliver<'a>(
        &'a self,
        account: &'a str,
        destination: &'a str,
        body: String,
        attributes: DeliveryAttributes,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// How the dispatcher behaves.
#[derive(Debug, Clone)]
pub struct AsyncConfig {
    /// Lambda waits about one minute before the first retry and two before the second;
    /// this is that minute (shorten it for development and tests).
    pub retry_base: Duration,
    /// Events running at once, over all functions.
    pub concurrency: usize,
    /// Who is told of events received, their age, drops and failed deliveries.
    pub observer: Arc<dyn gust_model::observe::Observer>,
}

impl Default for AsyncConfig {
    fn default() -> Self {
        AsyncConfig {
            retry_base: Duration::from_secs(60),
            concurrency: 64,
            observer: Arc::new(gust_model::observe::NoObserver),
        }
    }
}

/// Events of one function claimed at once, at most.
const PACE_MAX: usize = 10;

/// A queue's running events and how many may run.
#[derive(Debug, Clone, Copy)]
struct Pace {
    running: usize,
    limit: usize,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            running: 0,
            limit: PACE_MAX,
        }
    }
}

/// A claimed event stays invisible this long (longer than any function's timeout).
const ATTEMPT_VISIBILITY_MS: i64 = 16 * 60 * 1000;
/// Longest back-off after a throttle or a platform error.
const MAX_BACKOFF_MS: i64 = 5 * 60 * 1000;
/// Attempts to deliver a record or a dead letter before it is logged as dropped.
const DELIVERY_ATTEMPTS: u32 = 20;
/// Bytes of an error message a dead letter carries.
const ERROR_MESSAGE_MAX: usize = 1024;

/// Message attribute names of an event's state.
mod key {
    pub const ACCOUNT: &str = "Account";
    pub const FUNCTION: &str = "Function";
    pub const QUALIFIER: &str = "Qualifier";
    pub const REQUEST_ID: &str = "RequestId";
    pub const ENQUEUED: &str = "EnqueuedAt";
    pub const ATTEMPTS: &str = "Attempts";
    pub const SETBACKS: &str = "Setbacks";
    pub const STAGE: &str = "Stage";
    pub const DESTINATION: &str = "Destination";
    pub const DELIVERY_ATTRIBUTES: &str = "DeliveryAttributes";
    pub const TRACE: &str = "Trace";
}

/// The queue of asynchronous events and its dispatcher.
#[derive(Debug)]
pub struct AsyncInvoker {
    store: Arc<dyn QueueStore>,
    runner: Arc<dyn Runner>,
    clock: Arc<dyn Clock>,
    config: AsyncConfig,
    /// Queue ids by (account, function).
    queues: Mutex<HashMap<(String, String), i64>>,
    /// Per queue: events running now, and how many may (learnt from throttles: a function
    /// with reserved concurrency must not have more claimed than it may run).
    pace: Mutex<HashMap<i64, Pace>>,
    wake: Notify,
    permits: Arc<Semaphore>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn string(value: impl Into<String>) -> AttributeValue {
    AttributeValue {
        data_type: "String".into(),
        string_value: Some(value.into()),
        binary_value: None,
    }
}

fn text<'a>(attributes: &'a Attributes, name: &str) -> Option<&'a str> {
    attributes.get(name).and_then(|a| a.string_value.as_deref())
}

fn number(attributes: &Attributes, name: &str) -> i64 {
    text(attributes, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// An event's state, read back from its message.
#[derive(Debug, Clone)]
struct Stored {
    event: AsyncEvent,
    enqueued_ms: i64,
    /// Attempts that reached the function.
    attempts: i64,
    /// Throttles and platform errors so far.
    setbacks: i64,
    /// `Some(destination)` when the event is a record or dead letter to deliver.
    delivery: Option<(String, DeliveryAttributes)>,
}

impl Stored {
    fn read(message: &StoredMessage) -> Option<Self> {
        let a = &message.attributes;
        let delivery = match text(a, key::STAGE) {
            Some("deliver") => Some((
                text(a, key::DESTINATION)?.to_owned(),
                text(a, key::DELIVERY_ATTRIBUTES)
                    .and_then(|t| serde_json::from_str(t).ok())
                    .unwrap_or_default(),
            )),
            _ => None,
        };
        Some(Stored {
            event: AsyncEvent {
                account: text(a, key::ACCOUNT)?.to_owned(),
                function: text(a, key::FUNCTION)?.to_owned(),
                qualifier: text(a, key::QUALIFIER).map(str::to_owned),
                payload: message.body.clone(),
                request_id: text(a, key::REQUEST_ID)?.to_owned(),
                trace: text(a, key::TRACE).map(str::to_owned),
            },
            enqueued_ms: number(a, key::ENQUEUED),
            attempts: number(a, key::ATTEMPTS),
            setbacks: number(a, key::SETBACKS),
            delivery,
        })
    }

    fn message(&self, now_ms: i64, visible_ms: i64) -> NewMessage {
        let mut attributes = Attributes::new();
        attributes.insert(key::ACCOUNT.into(), string(&self.event.account));
        attributes.insert(key::FUNCTION.into(), string(&self.event.function));
        if let Some(qualifier) = &self.event.qualifier {
            attributes.insert(key::QUALIFIER.into(), string(qualifier));
        }
        attributes.insert(key::REQUEST_ID.into(), string(&self.event.request_id));
        if let Some(trace) = &self.event.trace {
            attributes.insert(key::TRACE.into(), string(trace));
        }
        attributes.insert(key::ENQUEUED.into(), string(self.enqueued_ms.to_string()));
        attributes.insert(key::ATTEMPTS.into(), string(self.attempts.to_string()));
        attributes.insert(key::SETBACKS.into(), string(self.setbacks.to_string()));
        if let Some((destination, extra)) = &self.delivery {
            attributes.insert(key::STAGE.into(), string("deliver"));
            attributes.insert(key::DESTINATION.into(), string(destination));
            attributes.insert(
                key::DELIVERY_ATTRIBUTES.into(),
                string(serde_json::to_string(extra).unwrap_or_default()),
            );
        }
        NewMessage {
            message_id: self.event.request_id.clone(),
            body: self.event.payload.clone(),
            attributes,
            system_attributes: Attributes::new(),
            md5_of_body: String::new(),
            md5_of_attributes: None,
            sender: "lambda".into(),
            sent_ms: now_ms,
            visible_ms,
            group_id: None,
            deduplication_id: None,
            dedup_key: None,
        }
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    // Uniqueness, not secrecy, is what trace ids need.
    let _ = getrandom::fill(&mut buffer);
    buffer.iter().map(|b| format!("{b:02x}")).collect()
}

fn timestamp(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// The payload as JSON (it always is: the API checks it), or as a string.
fn as_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

impl AsyncInvoker {
    /// An invoker over `store`.
    pub fn new(
        store: Arc<dyn QueueStore>,
        runner: Arc<dyn Runner>,
        clock: Arc<dyn Clock>,
        config: AsyncConfig,
    ) -> Arc<Self> {
        let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
        Arc::new(AsyncInvoker {
            store,
            runner,
            clock,
            config,
            queues: Mutex::new(HashMap::new()),
            pace: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            permits,
        })
    }

    fn now_ms(&self) -> i64 {
        (self.clock.now().unix_timestamp_nanos() / 1_000_000) as i64
    }

    async fn blocking<R: Send + 'static>(
        &self,
        job: impl FnOnce(&dyn QueueStore) -> Result<R, gust_sqs::SqsError> + Send + 'static,
    ) -> Result<R, AsyncError> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || job(store.as_ref()))
            .await
            .map_err(|e| AsyncError::Store(e.to_string()))?
            .map_err(|e| AsyncError::Store(e.to_string()))
    }

    /// The queue of a function, created on first use.
    async fn queue(&self, account: &str, function: &str) -> Result<i64, AsyncError> {
        let key = (account.to_owned(), function.to_owned());
        if let Some(id) = lock(&self.queues).get(&key) {
            return Ok(*id);
        }
        let (account, name) = key.clone();
        let id = self
            .blocking(move |store| {
                let config = QueueConfig::from_map(BTreeMap::new());
                let queue = store.create_queue(&account, &name, &config, &BTreeMap::new(), 0, 0)?;
                Ok(match queue {
                    Ok(record) | Err(record) => record.id,
                })
            })
            .await?;
        lock(&self.queues).insert(key, id);
        Ok(id)
    }

    fn observe(
        &self,
        event: &AsyncEvent,
        kind: fn(FunctionKey, time::OffsetDateTime) -> Observation,
    ) {
        self.config
            .observer
            .observe(kind(event.key(), self.clock.now()));
    }

    /// Accepts an event: returns once it is on disk.
    pub async fn enqueue(&self, event: AsyncEvent) -> Result<(), AsyncError> {
        let queue = self.queue(&event.account, &event.function).await?;
        let now = self.now_ms();
        let stored = Stored {
            event,
            enqueued_ms: now,
            attempts: 0,
            setbacks: 0,
            delivery: None,
        };
        let message = stored.message(now, now);
        let observed = stored.event.clone();
        self.blocking(move |store| store.send(queue, vec![message], 0))
            .await?;
        self.observe(&observed, |key, at| Observation::AsyncReceived { key, at });
        self.wake.notify_one();
        Ok(())
    }

    /// Starts the dispatcher; `accounts` are searched for events left by an earlier run.
    pub fn start(self: &Arc<Self>, accounts: Vec<String>) {
        let invoker = Arc::clone(self);
        tokio::spawn(async move {
            for account in accounts {
                let owned = account.clone();
                if let Ok(queues) = invoker
                    .blocking(move |store| store.queues(&owned, ""))
                    .await
                {
                    let now = invoker.now_ms();
                    for queue in queues {
                        // Attempts the previous run had started ended with it: run them
                        // again now rather than after their visibility timeout.
                        let id = queue.id;
                        if let Ok(released) = invoker
                            .blocking(move |store| store.release_in_flight(id, now))
                            .await
                        {
                            if released > 0 {
                                tracing::info!(released, function = %queue.name,
                                    "asynchronous events interrupted by the last stop run again");
                            }
                        }
                        lock(&invoker.queues).insert((account.clone(), queue.name), queue.id);
                    }
                }
            }
            invoker.dispatch().await;
        });
    }

    async fn dispatch(self: Arc<Self>) {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let queues: Vec<i64> = lock(&self.queues).values().copied().collect();
            let mut next_ms: Option<i64> = None;
            for queue in queues {
                if self.permits.available_permits() == 0 {
                    break;
                }
                let free = {
                    let pace = lock(&self.pace);
                    let pace = pace.get(&queue).copied().unwrap_or_default();
                    self.permits
                        .available_permits()
                        .min(pace.limit.saturating_sub(pace.running))
                };
                if free == 0 {
                    continue;
                }
                let now = self.now_ms();
                let claim = Claim {
                    now_ms: now,
                    max: free,
                    visibility_ms: ATTEMPT_VISIBILITY_MS,
                    expired_before_ms: i64::MIN,
                    fifo: false,
                    redrive: None,
                };
                let claimed = match self.blocking(move |store| store.claim(queue, &claim)).await {
                    Ok(claimed) => claimed,
                    Err(error) => {
                        tracing::error!(%error, "asynchronous events: cannot read the queue");
                        continue;
                    }
                };
                if let Some(at) = claimed.next_visible_ms {
                    next_ms = Some(next_ms.map_or(at, |n| n.min(at)));
                }
                lock(&self.pace).entry(queue).or_default().running += claimed.messages.len();
                for message in claimed.messages {
                    let Ok(permit) = Arc::clone(&self.permits).acquire_owned().await else {
                        return;
                    };
                    let invoker = Arc::clone(&self);
                    tokio::spawn(async move {
                        invoker.handle(queue, message).await;
                        if let Some(pace) = lock(&invoker.pace).get_mut(&queue) {
                            pace.running = pace.running.saturating_sub(1);
                        }
                        drop(permit);
                        invoker.wake.notify_one();
                    });
                }
            }
            let wait = next_ms
                .map(|at| Duration::from_millis((at - self.now_ms()).clamp(1, 1000) as u64))
                .unwrap_or(Duration::from_secs(1));
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Replaces a claimed message by `next` (visible at `visible_ms`): the new one is
    /// stored first, so a crash in between repeats a step rather than losing one.
    async fn replace(&self, queue: i64, message: &StoredMessage, next: Option<(Stored, i64)>) {
        let now = self.now_ms();
        if let Some((stored, visible_ms)) = next {
            let new = stored.message(now, visible_ms);
            if let Err(error) = self
                .blocking(move |store| store.send(queue, vec![new], 0))
                .await
            {
                // The old message stays; it runs again when its visibility ends.
                tracing::error!(%error, "asynchronous events: cannot store an event's next step");
                return;
            }
        }
        if let Ok(receipt) = Receipt::decode(&message.receipt_handle) {
            let _ = self
                .blocking(move |store| store.delete_messages(queue, &[receipt]))
                .await;
        }
    }

    /// The step that delivers `body` (a record or a dead letter) for `event`.
    fn delivery_step(
        &self,
        event: &AsyncEvent,
        destination: String,
        body: String,
        attributes: DeliveryAttributes,
    ) -> Stored {
        Stored {
            event: AsyncEvent {
                payload: body,
                ..event.clone()
            },
            enqueued_ms: self.now_ms(),
            attempts: 0,
            setbacks: 0,
            delivery: Some((destination, attributes)),
        }
    }

    fn backoff_ms(&self, setbacks: i64) -> i64 {
        // A tenth of a second doubling up to about a minute, scaled as retries are (the
        // base is a minute); the pace above keeps throttles rare, so this rarely grows.
        let tenth = (self.config.retry_base.as_millis() as i64 / 600).max(1);
        (tenth << setbacks.clamp(0, 10)).min(MAX_BACKOFF_MS)
    }

    async fn handle(&self, queue: i64, message: StoredMessage) {
        let Some(stored) = Stored::read(&message) else {
            tracing::error!(message = %message.message_id, "asynchronous events: an unreadable event is dropped");
            self.replace(queue, &message, None).await;
            return;
        };
        let now = self.now_ms();
        if let Some((destination, attributes)) = &stored.delivery {
            let delivered = self
                .runner
                .deliver(
                    &stored.event.account,
                    destination,
                    stored.event.payload.clone(),
                    attributes.clone(),
                )
                .await;
            if delivered.is_err() {
                // A dead letter carries the event's request id as an attribute; a record
                // for a destination carries none.
                if attributes.iter().any(|(name, _, _)| name == "RequestID") {
                    self.observe(&stored.event, |key, at| Observation::DeadLetterError {
                        key,
                        at,
                    });
                } else {
                    self.observe(&stored.event, |key, at| Observation::DestinationFailure {
                        key,
                        at,
                    });
                }
            }
            let next = match delivered {
                Ok(()) => None,
                Err(error) if stored.setbacks + 1 >= i64::from(DELIVERY_ATTEMPTS) => {
                    tracing::error!(
                        request_id = %stored.event.request_id, %destination, %error,
                        "asynchronous invocation: a record could not be delivered and is dropped"
                    );
                    None
                }
                Err(error) => {
                    tracing::warn!(request_id = %stored.event.request_id, %destination, %error,
                        "asynchronous invocation: delivery failed; retrying");
                    let mut again = stored.clone();
                    again.setbacks += 1;
                    let at = now + self.backoff_ms(again.setbacks);
                    Some((again, at))
                }
            };
            self.replace(queue, &message, next).await;
            return;
        }
        let Some(settings) = self.runner.settings(&stored.event).await else {
            tracing::warn!(request_id = %stored.event.request_id, function = %stored.event.function,
                "asynchronous invocation: the function no longer exists; the event is dropped");
            self.replace(queue, &message, None).await;
            return;
        };
        if now - stored.enqueued_ms > i64::from(settings.max_age_seconds) * 1000 {
            self.fail(
                queue,
                &message,
                &stored,
                &settings,
                "EventAgeExceeded",
                None,
            )
            .await;
            return;
        }
        // The chain this event belongs to: a function invoked again and again through its
        // own events (directly or through topics) is a loop, stopped as Lambda stops it.
        let (trace, count) = gust_model::trace::advance(
            stored.event.trace.as_deref(),
            &format!("{}:{}", stored.event.account, stored.event.function),
            &format!("1-{:08x}-{}", now / 1000, random_hex(12)),
            &random_hex(8),
        );
        if count > gust_model::trace::RECURSION_LIMIT && !settings.recursion_allowed {
            tracing::warn!(
                function = %settings.function_arn, request_id = %stored.event.request_id,
                "Lambda has detected that the function is part of a recursive loop and stopped its invocation (RecursiveLoop: Terminate)"
            );
            self.fail(
                queue,
                &message,
                &stored,
                &settings,
                "RecursiveInvocationException",
                None,
            )
            .await;
            return;
        }
        let age = Duration::from_millis(u64::try_from(now - stored.enqueued_ms).unwrap_or(0));
        self.config.observer.observe(Observation::AsyncAge {
            key: stored.event.key(),
            at: self.clock.now(),
            age,
        });
        let attempt = self
            .runner
            .run(&AsyncEvent {
                trace: Some(trace),
                ..stored.event.clone()
            })
            .await;
        {
            // Additive increase, multiplicative decrease: a throttle means the function
            // runs all it may, so claim no more than runs now; a success allows one more.
            let mut pace = lock(&self.pace);
            let pace = pace.entry(queue).or_default();
            pace.limit = match attempt {
                Attempt::Throttled => pace.running.saturating_sub(1).max(1),
                Attempt::Ran { .. } => (pace.limit + 1).min(PACE_MAX),
                _ => pace.limit,
            };
        }
        match attempt {
            Attempt::Ran {
                body,
                executed_version,
                error: None,
            } => {
                let mut next = None;
                if let Some(destination) = &settings.on_success {
                    let record = self.record(
                        &stored,
                        &settings,
                        "Success",
                        stored.attempts + 1,
                        Some((&body, &executed_version, None)),
                    );
                    next = Some(self.delivery_step(
                        &stored.event,
                        destination.clone(),
                        record,
                        Vec::new(),
                    ));
                }
                self.replace(queue, &message, next.map(|s| (s, now))).await;
            }
            Attempt::Ran {
                body,
                executed_version,
                error: Some(error),
            } => {
                let attempts = stored.attempts + 1;
                if attempts <= i64::from(settings.retries) {
                    let mut again = stored.clone();
                    again.attempts = attempts;
                    let delay = self.config.retry_base.as_millis() as i64 * attempts;
                    self.replace(queue, &message, Some((again, now + delay)))
                        .await;
                } else {
                    let mut last = stored.clone();
                    last.attempts = attempts;
                    self.fail(
                        queue,
                        &message,
                        &last,
                        &settings,
                        "RetriesExhausted",
                        Some((&body, &executed_version, Some(&error))),
                    )
                    .await;
                }
            }
            Attempt::Throttled | Attempt::Failed(_) => {
                let mut again = stored.clone();
                again.setbacks += 1;
                let at = now + self.backoff_ms(again.setbacks);
                self.replace(queue, &message, Some((again, at))).await;
            }
            Attempt::Gone => {
                tracing::warn!(request_id = %stored.event.request_id, function = %stored.event.function,
                    "asynchronous invocation: the function no longer exists; the event is dropped");
                self.observe(&stored.event, |key, at| Observation::AsyncDropped {
                    key,
                    at,
                });
                self.replace(queue, &message, None).await;
            }
        }
    }

    /// Lambda's invocation record.
    fn record(
        &self,
        stored: &Stored,
        settings: &EventSettings,
        condition: &str,
        invoke_count: i64,
        response: Option<(&str, &str, Option<&str>)>,
    ) -> String {
        let mut record = json!({
            "version": "1.0",
            "timestamp": timestamp(self.now_ms()),
            "requestContext": {
                "requestId": stored.event.request_id,
                "functionArn": settings.function_arn,
                "condition": condition,
                "approximateInvokeCount": invoke_count,
            },
            "requestPayload": as_json(&stored.event.payload),
        });
        if let Some((body, version, error)) = response {
            let mut context = json!({"statusCode": 200, "executedVersion": version});
            if let Some(error) = error {
                context["functionError"] = json!(error);
            }
            record["responseContext"] = context;
            record["responsePayload"] = as_json(body);
        }
        record.to_string()
    }

    /// The last failure: the event to the dead-letter queue, the record to the on-failure
    /// destination, each delivered (and retried) as a step of its own.
    async fn fail(
        &self,
        queue: i64,
        message: &StoredMessage,
        stored: &Stored,
        settings: &EventSettings,
        condition: &str,
        response: Option<(&str, &str, Option<&str>)>,
    ) {
        self.observe(&stored.event, |key, at| Observation::AsyncDropped {
            key,
            at,
        });
        let mut steps = Vec::new();
        if let Some(target) = &settings.dead_letter {
            let error_message = response
                .and_then(|(body, _, _)| {
                    as_json(body)
                        .get("errorMessage")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| condition.to_owned());
            let mut error_message: String = error_message;
            while error_message.len() > ERROR_MESSAGE_MAX {
                error_message.pop();
            }
            let attributes = vec![
                (
                    "RequestID".to_owned(),
                    "String".to_owned(),
                    stored.event.request_id.clone(),
                ),
                (
                    "ErrorCode".to_owned(),
                    "Number".to_owned(),
                    "200".to_owned(),
                ),
                (
                    "ErrorMessage".to_owned(),
                    "String".to_owned(),
                    error_message,
                ),
            ];
            steps.push(self.delivery_step(
                &stored.event,
                target.clone(),
                stored.event.payload.clone(),
                attributes,
            ));
        }
        if let Some(destination) = &settings.on_failure {
            let record = self.record(stored, settings, condition, stored.attempts, response);
            steps.push(self.delivery_step(&stored.event, destination.clone(), record, Vec::new()));
        }
        if steps.is_empty() {
            tracing::warn!(
                request_id = %stored.event.request_id, function = %settings.function_arn, %condition,
                "asynchronous invocation: the event failed and has no dead-letter queue or destination; dropped"
            );
        }
        let now = self.now_ms();
        // The second step (if any) is stored first; the replacement stores the other and
        // removes the event.
        if steps.len() == 2 {
            let extra = steps.pop().map(|s| s.message(now, now));
            if let Some(extra) = extra {
                if self
                    .blocking(move |store| store.send(queue, vec![extra], 0))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        self.replace(queue, message, steps.pop().map(|s| (s, now)))
            .await;
    }
}

#[cfg(test)]
mod tests;
