//! The Telemetry API (`PUT /2022-07-01/telemetry`) of one environment: an extension
//! subscribes a local HTTP listener to `platform`, `function` and `extension` events, and
//! Gust POSTs them there as JSON arrays of `{"time","type","record"}` in batches bounded by
//! the subscription's `buffering` (`maxItems`, `maxBytes`, `timeoutMs`). The older Logs
//! API (`PUT /2020-08-15/logs`) subscribes the same way and gets the same events in its own
//! shapes ([`logs_events`]); an environment's extensions use one API or the other.
//!
//! Emitting never waits: each subscriber has a queue bounded in bytes ([`QUEUE_BYTES`]),
//! drained by a task of its own that connects (through the environment's [`Connect`]: the
//! host's loopback, or a thread that entered the environment's network namespace) and
//! posts, each delivery bounded by [`DELIVERY_TIMEOUT`]. Events that do not fit are dropped
//! and counted; the subscriber's next batch starts with Lambda's `platform.logsDropped`
//! record saying how many (`droppedRecords`, `droppedBytes`, `reason`). Events emitted
//! during INIT before a subscription are kept (when extensions are expected, up to
//! [`BACKLOG`] events and [`BACKLOG_BYTES`]) and replayed to subscribers that subscribe
//! during INIT, so they see `platform.initStart`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// Opens a TCP connection to a listener inside the environment (blocking).
pub type Connect = Arc<dyn Fn(SocketAddr) -> std::io::Result<std::net::TcpStream> + Send + Sync>;

/// Schema versions Lambda accepts.
const SCHEMA_VERSIONS: &[&str] = &["2022-07-01", "2022-12-13", "2025-01-29"];
/// The Logs API's schema versions: `2021-03-18` adds `platform.runtimeDone`.
const LOGS_SCHEMA_VERSIONS: &[&str] = &["2020-08-15", "2021-03-18"];
/// Bytes queued for one subscriber (each event's JSON plus [`EVENT_OVERHEAD`]) before new
/// events are dropped: a listener that stops reading costs the server this much, no more.
pub const QUEUE_BYTES: usize = 4 << 20;
/// What one queued event costs beyond its text (its allocation and the queue's slot), so
/// that many tiny events are bounded too.
const EVENT_OVERHEAD: usize = 64;
/// Events kept from INIT for subscribers to come.
pub const BACKLOG: usize = 1_000;
/// Bytes of events kept from INIT for subscribers to come.
pub const BACKLOG_BYTES: usize = 1 << 20;
/// How long one delivery may take. A listener that accepts but does not answer holds its
/// queue up this long per batch (meanwhile events beyond [`QUEUE_BYTES`] are dropped); a
/// listener frozen with its environment has the batch in its socket's buffer already.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(3);
/// `platform.logsDropped`'s `reason`.
const DROPPED_REASON: &str =
    "Some logs were dropped because the downstream consumer is slower than the logs production rate";

/// What kind of telemetry an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `platform.*`.
    Platform,
    /// The function's output.
    Function,
    /// Extensions' output.
    Extension,
}

impl Kind {
    fn bit(self) -> u8 {
        match self {
            Kind::Platform => 1,
            Kind::Function => 2,
            Kind::Extension => 4,
        }
    }
}

/// A subscription's buffering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffering {
    /// `maxItems`.
    pub max_items: usize,
    /// `maxBytes`.
    pub max_bytes: usize,
    /// `timeoutMs`.
    pub timeout_ms: u64,
}

impl Default for Buffering {
    fn default() -> Self {
        Buffering {
            max_items: 1_000,
            max_bytes: 262_144,
            timeout_ms: 1_000,
        }
    }
}

/// Which API a subscription came through, so which record shapes its listener gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// The Telemetry API (`/2022-07-01/telemetry`).
    Telemetry,
    /// The Logs API (`/2020-08-15/logs`); `runtime_done` with schema `2021-03-18`.
    Logs { runtime_done: bool },
}

impl Api {
    /// The API's name, for messages.
    fn name(self) -> &'static str {
        match self {
            Api::Telemetry => "Telemetry API",
            Api::Logs { .. } => "Logs API",
        }
    }

    fn same_as(self, other: Api) -> bool {
        matches!(
            (self, other),
            (Api::Telemetry, Api::Telemetry) | (Api::Logs { .. }, Api::Logs { .. })
        )
    }
}

/// A valid subscription request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Where to POST: the listener's port and the request path.
    pub port: u16,
    /// The path (with query).
    pub path: String,
    /// The `Host` header to send.
    pub host: String,
    /// Subscribed kinds, as a bit set of [`Kind`]s.
    kinds: u8,
    /// `types` as sent, for the platform's log line.
    pub types: Vec<String>,
    /// Batching.
    pub buffering: Buffering,
    /// The API it came through.
    pub api: Api,
}

/// Parses and validates a subscription body (Lambda's ranges); the error is the message of
/// a 400 `ValidationError`.
pub fn parse_subscription(body: &[u8]) -> Result<Subscription, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("Invalid JSON: {e}"))?;
    let schema = value
        .get("schemaVersion")
        .and_then(|v| v.as_str())
        .ok_or("schemaVersion is required")?;
    if !SCHEMA_VERSIONS.contains(&schema) {
        return Err(format!(
            "Unsupported schemaVersion {schema:?}: use one of {}",
            SCHEMA_VERSIONS.join(", ")
        ));
    }
    subscription(&value, Api::Telemetry, 1_000)
}

/// Parses and validates a Logs API subscription body: the Telemetry API's, with an
/// optional `schemaVersion` of its own and `maxItems` 10,000 by default.
pub fn parse_logs_subscription(body: &[u8]) -> Result<Subscription, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("Invalid JSON: {e}"))?;
    let runtime_done = match value.get("schemaVersion") {
        None | Some(serde_json::Value::Null) => false,
        Some(schema) => match schema.as_str() {
            Some("2020-08-15") => false,
            Some("2021-03-18") => true,
            _ => {
                return Err(format!(
                    "Unsupported schemaVersion {schema}: use one of {}",
                    LOGS_SCHEMA_VERSIONS.join(", ")
                ))
            }
        },
    };
    subscription(&value, Api::Logs { runtime_done }, 10_000)
}

/// What both APIs' subscriptions say past their schema version.
fn subscription(
    value: &serde_json::Value,
    api: Api,
    default_max_items: u64,
) -> Result<Subscription, String> {
    let destination = value
        .get("destination")
        .and_then(|v| v.as_object())
        .ok_or("destination is required")?;
    match destination.get("protocol").and_then(|v| v.as_str()) {
        Some("HTTP") => {}
        Some("TCP") => {
            return Err(
                "destination.protocol TCP is not supported by Gust; subscribe with HTTP".into(),
            )
        }
        _ => return Err("destination.protocol must be HTTP or TCP".into()),
    }
    let uri = destination
        .get("URI")
        .and_then(|v| v.as_str())
        .ok_or("destination.URI is required")?;
    let (host, port, path) = parse_uri(uri)?;
    let types: Vec<String> = value
        .get("types")
        .and_then(|v| v.as_array())
        .ok_or("types is required")?
        .iter()
        .map(|t| t.as_str().map(str::to_owned).ok_or("types must be strings"))
        .collect::<Result<_, _>>()?;
    let mut kinds = 0;
    for kind in &types {
        kinds |= match kind.as_str() {
            "platform" => Kind::Platform.bit(),
            "function" => Kind::Function.bit(),
            "extension" => Kind::Extension.bit(),
            other => {
                return Err(format!(
                    "Invalid type {other:?}: use platform, function or extension"
                ))
            }
        };
    }
    let mut buffering = Buffering {
        max_items: default_max_items as usize,
        ..Buffering::default()
    };
    if let Some(b) = value.get("buffering").filter(|b| !b.is_null()) {
        let field = |name: &str, min: u64, max: u64, default: u64| -> Result<u64, String> {
            match b.get(name) {
                None | Some(serde_json::Value::Null) => Ok(default),
                Some(v) => match v.as_u64() {
                    Some(n) if (min..=max).contains(&n) => Ok(n),
                    _ => Err(format!(
                        "buffering.{name} must be an integer from {min} to {max}"
                    )),
                },
            }
        };
        buffering = Buffering {
            max_items: field("maxItems", 1_000, 10_000, default_max_items)? as usize,
            max_bytes: field("maxBytes", 262_144, 1_048_576, 262_144)? as usize,
            timeout_ms: field("timeoutMs", 25, 30_000, 1_000)?,
        };
    }
    Ok(Subscription {
        port,
        path,
        host,
        kinds,
        types,
        buffering,
        api,
    })
}

/// One event in the Logs API's shapes, and whether only schema `2021-03-18` has it.
struct LogsEvent {
    text: Arc<str>,
    runtime_done: bool,
}

/// A Telemetry API event as the Logs API gives it: none for what it does not have (INIT
/// and restore phases, `platform.telemetrySubscription`), `platform.end` then a slimmer
/// `platform.report` for a report, `platform.start` with the request and version only,
/// `platform.runtimeDone` with its status (schema `2021-03-18` only), and log lines with
/// their newline.
fn logs_events(time: &str, event_type: &str, record: &serde_json::Value) -> Vec<LogsEvent> {
    use serde_json::json;
    let event = |event_type: &str, record: serde_json::Value, runtime_done: bool| LogsEvent {
        text: json!({"time": time, "type": event_type, "record": record})
            .to_string()
            .into(),
        runtime_done,
    };
    let request_id = || record.get("requestId").cloned().unwrap_or_default();
    match event_type {
        "function" | "extension" => {
            let line = match record {
                serde_json::Value::String(line) => format!("{line}\n"),
                other => format!("{other}\n"),
            };
            vec![event(event_type, json!(line), false)]
        }
        "platform.start" => vec![event(
            event_type,
            json!({"requestId": request_id(), "version": record.get("version").cloned().unwrap_or_default()}),
            false,
        )],
        "platform.runtimeDone" => vec![event(
            event_type,
            json!({"requestId": request_id(), "status": record.get("status").cloned().unwrap_or_default()}),
            true,
        )],
        "platform.report" => {
            let mut metrics = serde_json::Map::new();
            for name in [
                "durationMs",
                "billedDurationMs",
                "memorySizeMB",
                "maxMemoryUsedMB",
                "initDurationMs",
            ] {
                if let Some(value) = record.get("metrics").and_then(|m| m.get(name)) {
                    metrics.insert(name.to_owned(), value.clone());
                }
            }
            vec![
                event("platform.end", json!({"requestId": request_id()}), false),
                event(
                    event_type,
                    json!({"requestId": request_id(), "metrics": metrics}),
                    false,
                ),
            ]
        }
        "platform.extension"
        | "platform.logsSubscription"
        | "platform.logsDropped"
        | "platform.fault" => vec![event(event_type, record.clone(), false)],
        _ => Vec::new(),
    }
}

/// `http://sandbox.localdomain:PORT/path` (or `sandbox`, `localhost`, `127.0.0.1`): the
/// listener must be the environment's own.
fn parse_uri(uri: &str) -> Result<(String, u16, String), String> {
    let rest = uri
        .strip_prefix("http://")
        .ok_or_else(|| format!("destination.URI {uri:?} must start with http://"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| format!("destination.URI {uri:?} needs a port"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("destination.URI {uri:?} has an invalid port"))?;
    if !matches!(
        host,
        "sandbox.localdomain" | "sandbox" | "localhost" | "127.0.0.1"
    ) {
        return Err(format!(
            "destination.URI {uri:?} must name the environment's own listener (sandbox.localdomain)"
        ));
    }
    Ok((authority.to_owned(), port, path.to_owned()))
}

enum Item {
    Event(Arc<str>),
    Flush(oneshot::Sender<()>),
}

#[derive(Debug)]
struct Subscriber {
    agent: String,
    api: Api,
    kinds: u8,
    types: Vec<String>,
    queue: mpsc::UnboundedSender<ItemBox>,
    budget: Arc<Budget>,
    task: tokio::task::JoinHandle<()>,
}

/// One subscriber's queue's size in bytes, and what it dropped since its last batch.
#[derive(Debug, Default)]
struct Budget {
    queued: AtomicUsize,
    dropped_records: AtomicU64,
    dropped_bytes: AtomicU64,
}

impl Budget {
    /// Takes `text`'s room in the queue; `false` (and the event counted as dropped) when
    /// it does not fit.
    fn take(&self, text: &str) -> bool {
        let cost = text.len() + EVENT_OVERHEAD;
        let fits = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                (queued + cost <= QUEUE_BYTES).then_some(queued + cost)
            })
            .is_ok();
        if !fits {
            self.dropped(1, text.len() as u64);
        }
        fits
    }

    /// Gives `text`'s room back (it left the queue).
    fn give(&self, text: &str) {
        self.queued
            .fetch_sub(text.len() + EVENT_OVERHEAD, Ordering::AcqRel);
    }

    fn dropped(&self, records: u64, bytes: u64) {
        self.dropped_records.fetch_add(records, Ordering::Relaxed);
        self.dropped_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The `platform.logsDropped` event for what was dropped since the last one, if any.
    fn take_dropped(&self) -> Option<Arc<str>> {
        let records = self.dropped_records.swap(0, Ordering::Relaxed);
        let bytes = self.dropped_bytes.swap(0, Ordering::Relaxed);
        (records > 0).then(|| {
            serde_json::json!({
                "time": now(),
                "type": "platform.logsDropped",
                "record": {
                    "droppedBytes": bytes,
                    "droppedRecords": records,
                    "reason": DROPPED_REASON,
                },
            })
            .to_string()
            .into()
        })
    }
}

impl Subscriber {
    /// Queues the event in this subscriber's API's shapes: `text` (the Telemetry API's) or
    /// `logs`' (the Logs API's).
    fn deliver(&self, text: &Arc<str>, logs: &[LogsEvent]) {
        match self.api {
            Api::Telemetry => self.push(text),
            Api::Logs { runtime_done } => {
                for event in logs.iter().filter(|e| runtime_done || !e.runtime_done) {
                    self.push(&event.text);
                }
            }
        }
    }

    /// Queues `text` if it fits the budget (else it is counted as dropped).
    fn push(&self, text: &Arc<str>) {
        if self.budget.take(text) {
            if let Err(mpsc::error::SendError(ItemBox(Item::Event(text)))) =
                self.queue.send(ItemBox(Item::Event(Arc::clone(text))))
            {
                self.budget.give(&text);
            }
        }
    }
}

/// Now, as telemetry's `time` (`2022-10-12T00:00:00.000Z`).
fn now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (days, rest) = (now.as_secs() / 86_400, now.as_secs() % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60,
        now.subsec_millis()
    )
}

/// Boxed so the enum's channel is `Debug`.
struct ItemBox(Item);

impl std::fmt::Debug for ItemBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Item")
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Events kept from INIT for subscribers to come (bounded by [`BACKLOG`] and
/// [`BACKLOG_BYTES`]), and what did not fit.
#[derive(Default)]
struct Backlog {
    /// Each event's kind, its Telemetry API text and its Logs API events.
    events: Vec<(u8, Arc<str>, Vec<LogsEvent>)>,
    bytes: usize,
    dropped_records: u64,
    dropped_bytes: u64,
}

struct Hub {
    subscribers: Vec<Subscriber>,
    backlog: Option<Backlog>,
    connect: Option<Connect>,
}

/// The telemetry of one environment.
pub struct Telemetry {
    active: AtomicBool,
    hub: Mutex<Hub>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("active", &self.active())
            .finish_non_exhaustive()
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            active: AtomicBool::new(false),
            hub: Mutex::new(Hub {
                subscribers: Vec::new(),
                backlog: None,
                connect: None,
            }),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Connects to `address` on the host's loopback.
pub fn host_connect() -> Connect {
    Arc::new(|address| std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)))
}

impl Telemetry {
    /// Whether anything would be done with an event (the warm path's only check).
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// How subscribers' listeners are reached; `None` refuses subscriptions.
    pub fn set_connect(&self, connect: Option<Connect>) {
        lock(&self.hub).connect = connect;
    }

    /// Keeps events from now until [`Telemetry::end_init`] for subscribers to come.
    pub fn keep_init_events(&self) {
        lock(&self.hub).backlog = Some(Backlog::default());
        self.active.store(true, Ordering::Release);
    }

    /// INIT is over: the kept events go; without subscribers, emitting stops.
    pub fn end_init(&self) {
        let mut hub = lock(&self.hub);
        hub.backlog = None;
        if hub.subscribers.is_empty() {
            self.active.store(false, Ordering::Release);
        }
    }

    /// Sends one event to the subscribers of its kind (and keeps it during INIT).
    pub fn emit(&self, kind: Kind, time: &str, event_type: &str, record: serde_json::Value) {
        if !self.active() {
            return;
        }
        let text: Arc<str> =
            serde_json::json!({"time": time, "type": event_type, "record": record})
                .to_string()
                .into();
        let bit = kind.bit();
        let mut hub = lock(&self.hub);
        // The Logs API's shapes, made only when a subscriber (or one to come) needs them.
        let logs = if hub.backlog.is_some()
            || hub
                .subscribers
                .iter()
                .any(|s| s.kinds & bit != 0 && s.api != Api::Telemetry)
        {
            logs_events(time, event_type, &record)
        } else {
            Vec::new()
        };
        for subscriber in &hub.subscribers {
            if subscriber.kinds & bit != 0 {
                // Past the budget: dropped and counted (delivery never holds the
                // invocation up).
                subscriber.deliver(&text, &logs);
            }
        }
        if let Some(backlog) = &mut hub.backlog {
            if backlog.events.len() < BACKLOG && backlog.bytes + text.len() <= BACKLOG_BYTES {
                backlog.bytes += text.len();
                backlog.events.push((bit, text, logs));
            } else {
                backlog.dropped_records += 1;
                backlog.dropped_bytes += text.len() as u64;
            }
        }
    }

    /// Subscribes `agent` (replacing its earlier subscription). An environment's
    /// subscriptions all come through one API, as on Lambda.
    pub fn subscribe(&self, agent: &str, subscription: &Subscription) -> Result<(), String> {
        let mut hub = lock(&self.hub);
        let Some(connect) = hub.connect.clone() else {
            return Err(format!(
                "The {} is not available in this environment",
                subscription.api.name()
            ));
        };
        if let Some(other) = hub
            .subscribers
            .iter()
            .find(|s| !s.api.same_as(subscription.api))
        {
            return Err(format!(
                "Extension {} subscribed with the {}: the extensions of an environment use either the Telemetry API or the Logs API",
                other.agent,
                other.api.name()
            ));
        }
        hub.subscribers.retain(|s| s.agent != agent);
        let (tx, rx) = mpsc::unbounded_channel();
        let budget = Arc::new(Budget::default());
        let task = tokio::spawn(deliver(
            rx,
            subscription.clone(),
            connect,
            Arc::clone(&budget),
        ));
        let subscriber = Subscriber {
            agent: agent.to_owned(),
            api: subscription.api,
            kinds: subscription.kinds,
            types: subscription.types.clone(),
            queue: tx,
            budget,
            task,
        };
        if let Some(backlog) = &hub.backlog {
            if backlog.dropped_records > 0 {
                subscriber
                    .budget
                    .dropped(backlog.dropped_records, backlog.dropped_bytes);
            }
            for (bit, text, logs) in &backlog.events {
                if subscription.kinds & bit != 0 {
                    subscriber.deliver(text, logs);
                }
            }
        }
        hub.subscribers.push(subscriber);
        self.active.store(true, Ordering::Release);
        Ok(())
    }

    /// Each subscribed extension's name, subscribed `types` and API.
    pub fn subscriptions(&self) -> Vec<(String, Vec<String>, Api)> {
        lock(&self.hub)
            .subscribers
            .iter()
            .map(|s| (s.agent.clone(), s.types.clone(), s.api))
            .collect()
    }

    /// Sends what every subscriber has buffered now; returns when each batch was delivered
    /// (or `limit` passed).
    pub async fn flush(&self, limit: Duration) {
        if !self.active() {
            return;
        }
        let acks: Vec<oneshot::Receiver<()>> = {
            let hub = lock(&self.hub);
            hub.subscribers
                .iter()
                .filter_map(|s| {
                    let (tx, rx) = oneshot::channel();
                    s.queue.send(ItemBox(Item::Flush(tx))).ok().map(|()| rx)
                })
                .collect()
        };
        let _ = tokio::time::timeout(limit, async {
            for ack in acks {
                let _ = ack.await;
            }
        })
        .await;
    }
}

/// One subscriber's delivery loop: batches by count, bytes and time. A batch after events
/// were dropped starts with `platform.logsDropped`.
async fn deliver(
    mut rx: mpsc::UnboundedReceiver<ItemBox>,
    subscription: Subscription,
    connect: Connect,
    budget: Arc<Budget>,
) {
    let timeout = Duration::from_millis(subscription.buffering.timeout_ms);
    let mut batch: Vec<Arc<str>> = Vec::new();
    let mut bytes = 0usize;
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let item = match deadline {
            Some(at) => match tokio::time::timeout_at(at, rx.recv()).await {
                Ok(item) => item,
                Err(_) => {
                    post(&subscription, &connect, std::mem::take(&mut batch)).await;
                    bytes = 0;
                    deadline = None;
                    continue;
                }
            },
            None => rx.recv().await,
        };
        let Some(ItemBox(item)) = item else {
            post(&subscription, &connect, batch).await;
            return;
        };
        if let Some(dropped) = budget.take_dropped() {
            bytes += dropped.len();
            batch.push(dropped);
            deadline.get_or_insert_with(|| tokio::time::Instant::now() + timeout);
        }
        match item {
            Item::Event(text) => {
                budget.give(&text);
                if !batch.is_empty() && bytes + text.len() > subscription.buffering.max_bytes {
                    post(&subscription, &connect, std::mem::take(&mut batch)).await;
                    bytes = 0;
                    deadline = None;
                }
                bytes += text.len();
                batch.push(text);
                deadline.get_or_insert_with(|| tokio::time::Instant::now() + timeout);
                if batch.len() >= subscription.buffering.max_items {
                    post(&subscription, &connect, std::mem::take(&mut batch)).await;
                    bytes = 0;
                    deadline = None;
                }
            }
            Item::Flush(ack) => {
                post(&subscription, &connect, std::mem::take(&mut batch)).await;
                bytes = 0;
                deadline = None;
                let _ = ack.send(());
            }
        }
    }
}

/// POSTs one batch; a listener not up yet gets a few more tries, then the batch is dropped.
async fn post(subscription: &Subscription, connect: &Connect, batch: Vec<Arc<str>>) {
    if batch.is_empty() {
        return;
    }
    let mut body = String::with_capacity(batch.iter().map(|t| t.len() + 1).sum::<usize>() + 2);
    body.push('[');
    for (i, text) in batch.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(text);
    }
    body.push(']');
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        subscription.path,
        subscription.host,
        body.len()
    );
    let address = SocketAddr::from(([127, 0, 0, 1], subscription.port));
    for attempt in 0..3u64 {
        let connect = Arc::clone(connect);
        let stream = tokio::task::spawn_blocking(move || connect(address)).await;
        let Ok(Ok(stream)) = stream else {
            tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
            continue;
        };
        let sent = tokio::time::timeout(DELIVERY_TIMEOUT, async {
            stream.set_nonblocking(true)?;
            let mut stream = tokio::net::TcpStream::from_std(stream)?;
            stream.write_all(request.as_bytes()).await?;
            // The answer's status line; what it says does not matter.
            let mut head = [0u8; 64];
            let _ = stream.read(&mut head).await?;
            Ok::<_, std::io::Error>(())
        })
        .await;
        if !matches!(sent, Ok(Err(_))) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
    }
    tracing::debug!(
        port = subscription.port,
        "telemetry listener unreachable; batch dropped"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_are_validated_as_lambda_does() {
        let ok = parse_subscription(
            br#"{"schemaVersion":"2022-12-13","destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:4243/t?x=1"},"types":["platform","function"],"buffering":{"maxItems":1000,"maxBytes":262144,"timeoutMs":25}}"#,
        )
        .unwrap();
        assert_eq!((ok.port, ok.path.as_str()), (4243, "/t?x=1"));
        assert_eq!(ok.host, "sandbox.localdomain:4243");
        assert_eq!(ok.buffering.timeout_ms, 25);
        assert_eq!(ok.kinds, 3);
        let defaults = parse_subscription(
            br#"{"schemaVersion":"2022-07-01","destination":{"protocol":"HTTP","URI":"http://sandbox:1"},"types":["extension"]}"#,
        )
        .unwrap();
        assert_eq!(defaults.buffering, Buffering::default());
        assert_eq!(defaults.path, "/");
        for bad in [
            r#"{"destination":{"protocol":"HTTP","URI":"http://sandbox:1"},"types":[]}"#,
            r#"{"schemaVersion":"2021-01-01","destination":{"protocol":"HTTP","URI":"http://sandbox:1"},"types":[]}"#,
            r#"{"schemaVersion":"2022-12-13","destination":{"protocol":"TCP","URI":"http://sandbox:1"},"types":[]}"#,
            r#"{"schemaVersion":"2022-12-13","destination":{"protocol":"HTTP","URI":"http://example.com:1"},"types":[]}"#,
            r#"{"schemaVersion":"2022-12-13","destination":{"protocol":"HTTP","URI":"http://sandbox"},"types":[]}"#,
            r#"{"schemaVersion":"2022-12-13","destination":{"protocol":"HTTP","URI":"http://sandbox:1"},"types":["logs"]}"#,
            r#"{"schemaVersion":"2022-12-13","destination":{"protocol":"HTTP","URI":"http://sandbox:1"},"types":[],"buffering":{"maxItems":10}}"#,
            r#"{"schemaVersion":"2022-12-13","destination":{"protocol":"HTTP","URI":"http://sandbox:1"},"types":[],"buffering":{"timeoutMs":10}}"#,
            r#"{"schemaVersion":"2022-12-13","destination":{"protocol":"HTTP","URI":"http://sandbox:1"},"types":[],"buffering":{"maxBytes":1}}"#,
        ] {
            assert!(parse_subscription(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    fn subscription(port: u16) -> Subscription {
        let body = format!(
            r#"{{"schemaVersion":"2022-12-13","destination":{{"protocol":"HTTP","URI":"http://sandbox.localdomain:{port}/in"}},"types":["platform","function"],"buffering":{{"timeoutMs":25}}}}"#
        );
        parse_subscription(body.as_bytes()).unwrap()
    }

    /// Reads one POST's JSON body from `stream`.
    async fn read_post(stream: &mut tokio::net::TcpStream) -> serde_json::Value {
        let mut received = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the request ended early");
            received.extend_from_slice(&chunk[..n]);
            let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&received[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            if received.len() >= end + 4 + length {
                return serde_json::from_slice(&received[end + 4..end + 4 + length]).unwrap();
            }
        }
    }

    #[test]
    fn times_are_utc_with_milliseconds() {
        let time = now();
        assert_eq!(time.len(), "2022-10-12T00:00:00.000Z".len(), "{time}");
        assert!(time.starts_with("20") && time.ends_with('Z') && time.as_bytes()[10] == b'T');
    }

    #[tokio::test]
    async fn a_queue_is_bounded_in_bytes_and_reports_what_it_dropped() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let telemetry = Telemetry::default();
        telemetry.set_connect(Some(host_connect()));
        telemetry.subscribe("ext", &subscription(port)).unwrap();
        // 64 MiB of function output while the delivery task has not run (this test's
        // runtime is single-threaded): only the budget's worth is kept.
        let line = "x".repeat(256 * 1024);
        for _ in 0..256 {
            telemetry.emit(Kind::Function, "t", "function", serde_json::json!(line));
        }
        let budget = Arc::clone(&lock(&telemetry.hub).subscribers[0].budget);
        let queued = budget.queued.load(Ordering::Acquire);
        assert!(
            queued <= QUEUE_BYTES && queued > QUEUE_BYTES / 2,
            "{queued}"
        );
        let dropped = budget.dropped_records.load(Ordering::Relaxed);
        assert!(
            dropped >= 256 - (QUEUE_BYTES / line.len()) as u64,
            "{dropped}"
        );
        // The first batch delivered says what was dropped, then carries what was kept.
        let (mut stream, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
            .await
            .unwrap()
            .unwrap();
        let events = read_post(&mut stream).await;
        let first = &events[0];
        assert_eq!(first["type"], "platform.logsDropped");
        assert_eq!(first["record"]["droppedRecords"], dropped);
        assert!(first["record"]["droppedBytes"].as_u64().unwrap() >= dropped * line.len() as u64);
        assert!(first["record"]["reason"]
            .as_str()
            .unwrap()
            .contains("dropped"));
        // (The events kept follow, in this batch or, too big to join it, the next.)
        // Counted once: the next batch does not repeat it.
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        let (mut stream, _) = listener.accept().await.unwrap();
        let events = read_post(&mut stream).await;
        assert_eq!(events[0]["type"], "function");
        assert_eq!(budget.dropped_records.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_listener_that_never_answers_holds_a_batch_up_for_the_delivery_timeout_only() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let telemetry = Telemetry::default();
        telemetry.set_connect(Some(host_connect()));
        telemetry.subscribe("ext", &subscription(port)).unwrap();
        telemetry.emit(Kind::Platform, "t", "platform.start", serde_json::json!({}));
        let flushed = telemetry.flush(DELIVERY_TIMEOUT * 3);
        tokio::pin!(flushed);
        // Accepted, never read nor answered.
        let (_silent, _) = tokio::select! {
            accepted = listener.accept() => accepted.unwrap(),
            () = &mut flushed => panic!("flushed without a delivery"),
        };
        let started = tokio::time::Instant::now();
        flushed.await;
        let waited = started.elapsed();
        assert!(
            waited >= DELIVERY_TIMEOUT && waited < DELIVERY_TIMEOUT * 2,
            "{waited:?}"
        );
    }

    #[test]
    fn the_init_backlog_is_bounded_in_bytes() {
        let telemetry = Telemetry::default();
        telemetry.keep_init_events();
        let line = "y".repeat(100 * 1024);
        for _ in 0..100 {
            telemetry.emit(Kind::Function, "t", "function", serde_json::json!(line));
        }
        let hub = lock(&telemetry.hub);
        let backlog = hub.backlog.as_ref().unwrap();
        assert!(backlog.bytes <= BACKLOG_BYTES, "{}", backlog.bytes);
        assert_eq!(backlog.events.len() + backlog.dropped_records as usize, 100);
        assert!(backlog.dropped_records > 80);
        let kept: usize = backlog.events.iter().map(|(_, t, _)| t.len()).sum();
        assert_eq!(kept, backlog.bytes);
    }

    /// A listener, and telemetry in INIT that has emitted `platform.initStart` and a
    /// function line before anyone subscribed.
    async fn in_init_with_a_listener() -> (tokio::net::TcpListener, u16, Telemetry) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let telemetry = Telemetry::default();
        telemetry.set_connect(Some(host_connect()));
        telemetry.keep_init_events();
        telemetry.emit(
            Kind::Platform,
            "t0",
            "platform.initStart",
            serde_json::json!({}),
        );
        telemetry.emit(Kind::Function, "t0", "function", serde_json::json!("early"));
        (listener, port, telemetry)
    }

    #[tokio::test]
    async fn events_are_batched_and_posted_to_the_listener() {
        let (listener, port, telemetry) = in_init_with_a_listener().await;
        let body = format!(
            r#"{{"schemaVersion":"2022-12-13","destination":{{"protocol":"HTTP","URI":"http://sandbox.localdomain:{port}/in"}},"types":["platform"],"buffering":{{"timeoutMs":25}}}}"#
        );
        telemetry
            .subscribe("ext", &parse_subscription(body.as_bytes()).unwrap())
            .unwrap();
        telemetry.end_init();
        telemetry.emit(
            Kind::Platform,
            "t1",
            "platform.start",
            serde_json::json!({"requestId": "r"}),
        );
        telemetry.emit(
            Kind::Function,
            "t1",
            "function",
            serde_json::json!("not subscribed"),
        );
        let (mut stream, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
            .await
            .unwrap()
            .unwrap();
        let mut received = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await.unwrap();
            received.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&received);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .unwrap()
                    .parse()
                    .unwrap();
                if body.len() >= length {
                    assert!(head.starts_with("POST /in HTTP/1.1"));
                    let events: serde_json::Value = serde_json::from_str(body).unwrap();
                    let types: Vec<&str> = events
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| e["type"].as_str().unwrap())
                        .collect();
                    assert_eq!(types, ["platform.initStart", "platform.start"]);
                    break;
                }
            }
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
    }

    fn logs_subscription(port: u16, schema: &str) -> Subscription {
        let body = format!(
            r#"{{{schema}"destination":{{"protocol":"HTTP","URI":"http://sandbox.localdomain:{port}/logs"}},"types":["platform","function"],"buffering":{{"timeoutMs":25}}}}"#
        );
        parse_logs_subscription(body.as_bytes()).unwrap()
    }

    #[test]
    fn logs_api_subscriptions_have_their_own_schema_versions_and_defaults() {
        let plain = logs_subscription(1, "");
        assert_eq!(
            plain.api,
            Api::Logs {
                runtime_done: false
            }
        );
        assert_eq!(plain.buffering.max_items, 10_000);
        let newer = logs_subscription(1, r#""schemaVersion":"2021-03-18","#);
        assert_eq!(newer.api, Api::Logs { runtime_done: true });
        let error = parse_logs_subscription(
            br#"{"schemaVersion":"2022-07-01","destination":{"protocol":"HTTP","URI":"http://sandbox:1"},"types":["platform"]}"#,
        )
        .unwrap_err();
        assert!(error.contains("2020-08-15, 2021-03-18"), "{error}");
        // The Telemetry API's schema versions stay required there.
        assert!(parse_subscription(
            br#"{"destination":{"protocol":"HTTP","URI":"http://sandbox:1"},"types":["platform"]}"#
        )
        .is_err());
    }

    #[test]
    fn telemetry_events_in_the_logs_apis_shapes() {
        let texts =
            |event_type: &str, record: serde_json::Value| -> Vec<(serde_json::Value, bool)> {
                logs_events("t", event_type, &record)
                    .into_iter()
                    .map(|e| (serde_json::from_str(&e.text).unwrap(), e.runtime_done))
                    .collect()
            };
        assert!(texts("platform.initStart", serde_json::json!({"phase": "init"})).is_empty());
        assert!(texts("platform.telemetrySubscription", serde_json::json!({})).is_empty());
        assert_eq!(
            texts(
                "platform.start",
                serde_json::json!({"requestId": "r", "version": "$LATEST", "tracing": {}})
            ),
            [(
                serde_json::json!({"time": "t", "type": "platform.start", "record": {"requestId": "r", "version": "$LATEST"}}),
                false
            )]
        );
        assert_eq!(
            texts("function", serde_json::json!("hello")),
            [(
                serde_json::json!({"time": "t", "type": "function", "record": "hello\n"}),
                false
            )]
        );
        assert_eq!(
            texts(
                "platform.runtimeDone",
                serde_json::json!({"requestId": "r", "status": "success", "metrics": {}})
            ),
            [(
                serde_json::json!({"time": "t", "type": "platform.runtimeDone", "record": {"requestId": "r", "status": "success"}}),
                true
            )]
        );
        let report = texts(
            "platform.report",
            serde_json::json!({"requestId": "r", "status": "success", "metrics": {
                "durationMs": 1.5, "billedDurationMs": 2, "memorySizeMB": 128,
                "maxMemoryUsedMB": 40, "initDurationMs": 3.25}}),
        );
        assert_eq!(
            report,
            [
                (
                    serde_json::json!({"time": "t", "type": "platform.end", "record": {"requestId": "r"}}),
                    false
                ),
                (
                    serde_json::json!({"time": "t", "type": "platform.report", "record": {"requestId": "r", "metrics": {
                        "durationMs": 1.5, "billedDurationMs": 2, "memorySizeMB": 128,
                        "maxMemoryUsedMB": 40, "initDurationMs": 3.25}}}),
                    false
                )
            ]
        );
    }

    #[tokio::test]
    async fn an_environment_subscribes_through_one_api_and_logs_subscribers_get_its_shapes() {
        let (listener, port, telemetry) = in_init_with_a_listener().await;
        telemetry
            .subscribe("logs-ext", &logs_subscription(port, ""))
            .unwrap();
        let error = telemetry
            .subscribe("other", &subscription(port))
            .unwrap_err();
        assert!(
            error.contains("logs-ext subscribed with the Logs API"),
            "{error}"
        );
        telemetry.end_init();
        telemetry.emit(
            Kind::Platform,
            "t1",
            "platform.runtimeDone",
            serde_json::json!({"requestId": "r", "status": "success"}),
        );
        telemetry.emit(
            Kind::Platform,
            "t1",
            "platform.report",
            serde_json::json!({"requestId": "r", "metrics": {"durationMs": 1.0}}),
        );
        let (mut stream, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
            .await
            .unwrap()
            .unwrap();
        let mut seen: Vec<serde_json::Value> = Vec::new();
        // One batch or more, until the report.
        loop {
            let batch = read_post(&mut stream).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await;
            seen.extend(batch.as_array().unwrap().iter().cloned());
            if seen.iter().any(|e| e["type"] == "platform.report") {
                break;
            }
            let (next, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
                .await
                .unwrap()
                .unwrap();
            stream = next;
        }
        let types: Vec<&str> = seen.iter().map(|e| e["type"].as_str().unwrap()).collect();
        // No INIT phase and no runtimeDone (schema 2020-08-15); the replayed line has its newline.
        assert_eq!(
            types,
            ["function", "platform.end", "platform.report"],
            "{seen:?}"
        );
        assert_eq!(seen[0]["record"], "early\n");
    }
}
