//! The Telemetry API (`PUT /2022-07-01/telemetry`) of one environment: an extension
//! subscribes a local HTTP listener to `platform`, `function` and `extension` events, and
//! Gust POSTs them there as JSON arrays of `{"time","type","record"}` in batches bounded by
//! the subscription's `buffering` (`maxItems`, `maxBytes`, `timeoutMs`).
//!
//! Emitting never waits: each subscriber has a bounded queue, drained by a task of its own
//! that connects (through the environment's [`Connect`]: the host's loopback, or a thread
//! that entered the environment's network namespace) and posts. A queue that is full drops
//! events. Events emitted during INIT before a subscription are kept (when extensions are
//! expected) and replayed to subscribers that subscribe during INIT, so they see
//! `platform.initStart`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// Opens a TCP connection to a listener inside the environment (blocking).
pub type Connect = Arc<dyn Fn(SocketAddr) -> std::io::Result<std::net::TcpStream> + Send + Sync>;

/// Schema versions Lambda accepts.
const SCHEMA_VERSIONS: &[&str] = &["2022-07-01", "2022-12-13", "2025-01-29"];
/// Events queued for one subscriber before new ones are dropped.
const QUEUE: usize = 10_000;
/// Events kept from INIT for subscribers to come.
const BACKLOG: usize = 1_000;
/// How long one delivery may take (the extension's listener may be frozen with its
/// environment; the batch is delivered when it thaws).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

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
    let mut buffering = Buffering::default();
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
            max_items: field("maxItems", 1_000, 10_000, 1_000)? as usize,
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
    })
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
    kinds: u8,
    types: Vec<String>,
    queue: mpsc::Sender<ItemBox>,
    task: tokio::task::JoinHandle<()>,
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

struct Hub {
    subscribers: Vec<Subscriber>,
    backlog: Option<Vec<(u8, Arc<str>)>>,
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
        lock(&self.hub).backlog = Some(Vec::new());
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
        if let Some(backlog) = &mut hub.backlog {
            if backlog.len() < BACKLOG {
                backlog.push((bit, Arc::clone(&text)));
            }
        }
        for subscriber in &hub.subscribers {
            if subscriber.kinds & bit != 0 {
                // Full: dropped (delivery never holds the invocation up).
                let _ = subscriber
                    .queue
                    .try_send(ItemBox(Item::Event(Arc::clone(&text))));
            }
        }
    }

    /// Subscribes `agent` (replacing its earlier subscription).
    pub fn subscribe(&self, agent: &str, subscription: &Subscription) -> Result<(), String> {
        let mut hub = lock(&self.hub);
        let Some(connect) = hub.connect.clone() else {
            return Err("The Telemetry API is not available in this environment".into());
        };
        hub.subscribers.retain(|s| s.agent != agent);
        let (tx, rx) = mpsc::channel(QUEUE);
        if let Some(backlog) = &hub.backlog {
            for (bit, text) in backlog {
                if subscription.kinds & bit != 0 {
                    let _ = tx.try_send(ItemBox(Item::Event(Arc::clone(text))));
                }
            }
        }
        let task = tokio::spawn(deliver(rx, subscription.clone(), connect));
        hub.subscribers.push(Subscriber {
            agent: agent.to_owned(),
            kinds: subscription.kinds,
            types: subscription.types.clone(),
            queue: tx,
            task,
        });
        self.active.store(true, Ordering::Release);
        Ok(())
    }

    /// Each subscribed extension's name and subscribed `types`.
    pub fn subscriptions(&self) -> Vec<(String, Vec<String>)> {
        lock(&self.hub)
            .subscribers
            .iter()
            .map(|s| (s.agent.clone(), s.types.clone()))
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
                    s.queue.try_send(ItemBox(Item::Flush(tx))).ok().map(|()| rx)
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

/// One subscriber's delivery loop: batches by count, bytes and time.
async fn deliver(mut rx: mpsc::Receiver<ItemBox>, subscription: Subscription, connect: Connect) {
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
        match item {
            Item::Event(text) => {
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

    #[tokio::test]
    async fn events_are_batched_and_posted_to_the_listener() {
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
}
