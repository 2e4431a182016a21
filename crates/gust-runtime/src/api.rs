//! The Runtime API (`/2018-06-01/runtime/...`) of one execution environment.
//!
//! Each environment gets its own listener on loopback; its address is the environment's
//! `AWS_LAMBDA_RUNTIME_API`. The engine hands invocations in with [`RuntimeApi::dispatch`];
//! the runtime long-polls `next`, then posts `response` or `error`, which completes the
//! invocation's [`InvocationResult`]. The first `next` (or an `init/error`) completes the
//! INIT phase. An event is handed out at most once, and every invocation handed out gets a
//! result: a post broken off mid-body, or a `next` while one is unanswered, fails it.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::extensions::{Extensions, FunctionInfo, InitState, Refused};
use crate::telemetry::Telemetry;

/// The largest response a runtime may post (6 MiB + 100 bytes, as Lambda).
pub const MAX_RESPONSE_BYTES: usize = 6_291_556;
/// The largest streamed response (Lambda's 200 MB).
pub const MAX_STREAMED_BYTES: usize = 200 * 1024 * 1024;
/// Most connections open to one environment's Runtime API at once, admitted or waiting for
/// their ownership check. A runtime uses one or two; beyond the limit a connection is
/// closed as soon as it is accepted, before any work is spawned for it, so a function
/// cannot make the server hold thousands of connections, tasks and buffers for it.
pub const MAX_CONNECTIONS: usize = 32;
/// Ownership checks read `/proc` on the blocking pool: at most this many run at once in the
/// whole server (and at most one per environment), so a flood of connections cannot grow
/// the blocking pool or take the CPU from everything else.
const CONCURRENT_CHECKS: usize = 2;
static CHECK_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(CONCURRENT_CHECKS);
/// At most one warning about refused connections per environment this often.
const REFUSAL_REPORT_INTERVAL: Duration = Duration::from_secs(5);
/// Header buffer: runtimes send X-Ray error causes of up to about 1 MiB in a header.
const MAX_HEADER_BUFFER: usize = 4 * 1024 * 1024;
const PREFIX: &str = "/2018-06-01/runtime";
const EXTENSION_PREFIX: &str = "/2020-01-01/extension/";
const TELEMETRY_PATH: &str = "/2022-07-01/telemetry";
/// The Logs API, which the Telemetry API superseded (and which Lambda still serves).
const LOGS_PATH: &str = "/2020-08-15/logs";

/// One event for the runtime, with the `next` headers Lambda sends.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// The event bytes.
    pub payload: Bytes,
    /// `Lambda-Runtime-Deadline-Ms`: Unix epoch milliseconds.
    pub deadline_ms: u64,
    /// `Lambda-Runtime-Invoked-Function-Arn`.
    pub invoked_function_arn: String,
    /// `Lambda-Runtime-Trace-Id`.
    pub trace_id: String,
    /// `Lambda-Runtime-Client-Context` (decoded JSON text).
    pub client_context: Option<String>,
    /// `Lambda-Runtime-Cognito-Identity`.
    pub cognito_identity: Option<String>,
}

/// How the runtime finished an invocation.
#[derive(Debug, PartialEq, Eq)]
pub enum InvocationResult {
    /// `POST …/response`.
    Response(Bytes),
    /// `POST …/response` with `Lambda-Runtime-Function-Response-Mode: streaming`: the
    /// response goes on arriving after this (the invocation is over at its last part).
    Streaming(StreamedResponse),
    /// `POST …/error`: the body as the invoke caller will see it.
    Error {
        /// The error JSON (with any X-Ray `errorCause` removed).
        body: Bytes,
        /// `Lambda-Runtime-Function-Error-Type`, when sent.
        error_type: Option<String>,
    },
    /// The posted response was larger than [`MAX_RESPONSE_BYTES`].
    ResponseTooLarge,
    /// The connection broke before the posted response (or error) was complete: the
    /// runtime died or gave up mid-post (Lambda's `Runtime.TruncatedResponse`).
    Truncated,
    /// The runtime asked for the next invocation without answering this one.
    Abandoned,
}

/// A response the runtime streams.
#[derive(Debug)]
pub struct StreamedResponse {
    /// The runtime's `Content-Type` (`application/octet-stream` when it sent none).
    pub content_type: String,
    /// The body's parts as they arrive; the last is [`StreamPart::End`].
    pub parts: mpsc::Receiver<StreamPart>,
}

impl PartialEq for StreamedResponse {
    /// Streams compare by content type (their parts are still to come).
    fn eq(&self, other: &Self) -> bool {
        self.content_type == other.content_type
    }
}

impl Eq for StreamedResponse {}

/// One part of a streamed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamPart {
    /// Bytes of the body, as the runtime wrote them.
    Data(Bytes),
    /// The body ended: completely, or with an error.
    End(Result<(), StreamFailure>),
}

/// How a streamed response failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamFailure {
    /// The runtime reported an error in the trailers.
    Function {
        /// `Lambda-Runtime-Function-Error-Type`.
        error_type: String,
        /// The decoded `Lambda-Runtime-Function-Error-Body` (the error JSON).
        body: Bytes,
    },
    /// More than [`MAX_STREAMED_BYTES`].
    TooLarge,
    /// The connection broke before the body ended.
    Truncated,
}

/// How INIT ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitOutcome {
    /// The runtime asked for its first invocation.
    Ready,
    /// `POST /runtime/init/error`.
    Failed {
        /// The error JSON.
        body: Bytes,
        /// `Lambda-Runtime-Function-Error-Type`, when sent.
        error_type: Option<String>,
    },
}

/// How a SnapStart environment's restore ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreOutcome {
    /// The runtime ran its after-restore hooks and asked for its first invocation.
    Ready,
    /// `POST /runtime/restore/error` (an after-restore hook failed).
    Failed {
        /// The error JSON.
        body: Bytes,
        /// `Lambda-Runtime-Function-Error-Type`, when sent.
        error_type: Option<String>,
    },
}

/// The SnapStart side of an environment (`/runtime/restore/…`).
#[derive(Debug, Default)]
struct Snap {
    /// The environment is a SnapStart one: `restore/next` is allowed (once).
    enabled: bool,
    /// The runtime called `restore/next` (the snapshot point).
    asked: bool,
    /// What `restore/next` waits on; opened by [`RuntimeApi::restore`].
    gate: Option<oneshot::Receiver<()>>,
    open: Option<oneshot::Sender<()>>,
    /// Where the restore's end goes: the runtime's next `next` or `restore/error`.
    outcome: Option<oneshot::Sender<RestoreOutcome>>,
}

type Dispatch = (Invocation, oneshot::Sender<InvocationResult>);

#[derive(Debug)]
struct Shared {
    queue: tokio::sync::Mutex<mpsc::Receiver<Dispatch>>,
    /// The invocation handed out and not answered yet.
    current: Mutex<Option<(Invocation, oneshot::Sender<InvocationResult>)>>,
    init: Mutex<Option<oneshot::Sender<InitOutcome>>>,
    /// Cancels the `next` that is waiting, when a newer one arrives: a runtime asks one at a
    /// time, so the older one was abandoned (its connection broke) and must not take an event.
    waiting: Mutex<Option<oneshot::Sender<()>>>,
    /// One ownership check at a time for this environment.
    checking: tokio::sync::Mutex<()>,
    refusals: Mutex<Refusals>,
    /// The Extensions API's state.
    extensions: Arc<Extensions>,
    /// The Telemetry API's subscribers.
    telemetry: Arc<Telemetry>,
    /// The runtime has asked for its first event (INIT then waits for extensions only).
    runtime_ready: std::sync::atomic::AtomicBool,
    /// SnapStart's restore state.
    snap: Mutex<Snap>,
}

/// Why a connection was closed unanswered.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// [`MAX_CONNECTIONS`] were open already.
    OverLimit,
    /// The ownership check did not trace it to the environment's processes.
    Outside,
}

/// Refused connections not reported yet: a flood of them gives one warning line every
/// [`REFUSAL_REPORT_INTERVAL`] with the counts, not one line each.
#[derive(Debug)]
struct Refusals {
    /// The listener's address: which environment.
    address: SocketAddr,
    over_limit: u64,
    outside: u64,
    last_report: Option<Instant>,
}

impl Refusals {
    fn note(&mut self, refusal: Refusal) {
        match refusal {
            Refusal::OverLimit => self.over_limit += 1,
            Refusal::Outside => self.outside += 1,
        }
        if self
            .last_report
            .is_none_or(|last| last.elapsed() >= REFUSAL_REPORT_INTERVAL)
        {
            self.report();
            self.last_report = Some(Instant::now());
        }
    }

    fn report(&mut self) {
        if self.over_limit + self.outside > 0 {
            tracing::warn!(
                address = %self.address,
                "Runtime API: refused {} connection(s) since the last report: {} from outside the environment, {} over the limit of {MAX_CONNECTIONS} per environment",
                self.over_limit + self.outside,
                self.outside,
                self.over_limit,
            );
        }
        self.over_limit = 0;
        self.outside = 0;
    }
}

impl Drop for Refusals {
    /// What was refused after the last report is reported when the API closes.
    fn drop(&mut self) {
        self.report();
    }
}

/// The Runtime API of one environment; dropping it (and every [`RuntimeApi::serving`]) closes
/// the listener and every connection.
pub struct RuntimeApi {
    address: SocketAddr,
    sender: mpsc::Sender<Dispatch>,
    shared: Arc<Shared>,
    server: Arc<Serving>,
    peers: tokio::sync::watch::Sender<Option<PeerCheck>>,
}

impl std::fmt::Debug for RuntimeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeApi")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// Whether a connection to the listener at the first address, from the second, comes
/// from the environment itself. Runs on a blocking thread (it may read `/proc`).
pub type PeerCheck = Arc<dyn Fn(SocketAddr, SocketAddr) -> bool + Send + Sync>;

/// The listener's task: it ends when the last handle to it goes (the API's, and any
/// [`RuntimeApi::serving`] keeps).
#[derive(Debug)]
pub struct Serving(tokio::task::JoinHandle<()>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The runtime is gone: nothing will answer an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the environment's Runtime API is closed")]
pub struct Closed;

/// The listener's queue of connections not yet accepted (the kernel caps it at
/// `net.core.somaxconn`). Past it the kernel drops a connection's SYN and the client's
/// `connect` waits a second for its retransmission: a runtime opening connections in a
/// burst (the hardening test's thousand at a time) stalled a second per drop with std's and
/// tokio's 128 and 1,024. Connections over [`MAX_CONNECTIONS`] are still closed as soon as
/// they are accepted; the queue only keeps them from being dropped unanswered.
const LISTEN_BACKLOG: i32 = 4096;

impl RuntimeApi {
    /// Listens on `ip` (an ephemeral port) and returns the API and the INIT outcome to await.
    pub async fn start(ip: IpAddr) -> std::io::Result<(Self, oneshot::Receiver<InitOutcome>)> {
        Self::from_listener(std::net::TcpListener::bind((ip, 0))?)
    }

    /// Serves on a listener made elsewhere (inside an environment's network namespace).
    pub fn from_listener(
        listener: std::net::TcpListener,
    ) -> std::io::Result<(Self, oneshot::Receiver<InitOutcome>)> {
        // Listening again only sets the queue's length.
        socket2::SockRef::from(&listener).listen(LISTEN_BACKLOG)?;
        listener.set_nonblocking(true)?;
        Self::serve_on(tokio::net::TcpListener::from_std(listener)?)
    }

    fn serve_on(
        listener: tokio::net::TcpListener,
    ) -> std::io::Result<(Self, oneshot::Receiver<InitOutcome>)> {
        let address = listener.local_addr()?;
        let (sender, receiver) = mpsc::channel(1);
        let (init_tx, init_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(receiver),
            current: Mutex::new(None),
            init: Mutex::new(Some(init_tx)),
            waiting: Mutex::new(None),
            checking: tokio::sync::Mutex::new(()),
            refusals: Mutex::new(Refusals {
                address,
                over_limit: 0,
                outside: 0,
                last_report: None,
            }),
            extensions: Arc::default(),
            telemetry: Arc::default(),
            runtime_ready: std::sync::atomic::AtomicBool::new(false),
            snap: Mutex::default(),
        });
        let (peers, admitted) = tokio::sync::watch::channel(None);
        let server = Arc::new(Serving(tokio::spawn(serve(
            listener,
            Arc::clone(&shared),
            admitted,
        ))));
        Ok((
            RuntimeApi {
                address,
                sender,
                shared,
                server,
                peers,
            },
            init_rx,
        ))
    }

    /// `host:port` for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Starts serving connections that `check` admits: until then, connections wait (the
    /// check needs the environment's processes, which exist only after the listener).
    pub fn admit(&self, check: PeerCheck) {
        let _ = self.peers.send(Some(check));
    }

    /// Keeps the API serving while the returned value lives, also after the API itself is
    /// dropped (extensions talk to it until the environment's processes are gone).
    pub fn serving(&self) -> Arc<Serving> {
        Arc::clone(&self.server)
    }

    /// The environment's extensions (the Extensions API's state).
    pub fn extensions(&self) -> &Arc<Extensions> {
        &self.shared.extensions
    }

    /// The environment's Telemetry API subscribers.
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.shared.telemetry
    }

    /// Sets what extensions' `register` answers and which external extensions (file
    /// names) INIT waits for; call before the environment starts.
    pub fn expect_extensions(&self, info: FunctionInfo, names: Vec<String>) {
        if !names.is_empty() {
            self.shared.telemetry.keep_init_events();
        }
        self.shared.extensions.expect(info, names);
    }

    /// INIT is over (either way): extension registration closes and the events kept for
    /// telemetry subscribers to come are dropped.
    pub fn end_init(&self) {
        self.shared.extensions.close_registration();
        self.shared.telemetry.end_init();
    }

    /// Makes this a SnapStart environment (call before the runtime starts): its runtime
    /// ends INIT with `restore/next`, which answers only once [`RuntimeApi::restore`] is
    /// called.
    pub fn enable_snap_start(&self) {
        let (open, gate) = oneshot::channel();
        let mut snap = lock(&self.shared.snap);
        snap.enabled = true;
        snap.gate = Some(gate);
        snap.open = Some(open);
    }

    /// Restores a SnapStart environment: answers the runtime's waiting `restore/next`; the
    /// receiver completes when the runtime asks for its first invocation (its after-restore
    /// hooks ran) or reports `restore/error`. A runtime that never called `restore/next`
    /// (it ended INIT with `next`) is restored at once.
    pub fn restore(&self) -> oneshot::Receiver<RestoreOutcome> {
        let (tx, rx) = oneshot::channel();
        let mut snap = lock(&self.shared.snap);
        match snap.open.take() {
            Some(open) if snap.asked => {
                snap.outcome = Some(tx);
                let _ = open.send(());
            }
            _ => {
                // The snapshot point is past: a later `restore/next` is refused (403), not
                // left waiting on a gate that can no longer open.
                snap.enabled = false;
                let _ = tx.send(RestoreOutcome::Ready);
            }
        }
        rx
    }

    /// Queues an invocation for the runtime's next `next`; the receiver completes when the
    /// runtime posts its result.
    pub async fn dispatch(
        &self,
        invocation: Invocation,
    ) -> Result<oneshot::Receiver<InvocationResult>, Closed> {
        let (tx, rx) = oneshot::channel();
        self.sender
            .send((invocation, tx))
            .await
            .map_err(|_| Closed)?;
        Ok(rx)
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    admitted: tokio::sync::watch::Receiver<Option<PeerCheck>>,
) {
    // Connection tasks live in this set, so aborting the server ends them too.
    let mut connections = JoinSet::new();
    let Ok(local) = listener.local_addr() else {
        return;
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                // Over the limit: closed here (dropped), with no task, check or buffer.
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    drop(stream);
                    lock(&shared.refusals).note(Refusal::OverLimit);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let shared = Arc::clone(&shared);
                let mut admitted = admitted.clone();
                connections.spawn(async move {
                    // Held until the connection ends.
                    let _slot = slot;
                    let Some(check) = admitted.wait_for(Option::is_some).await.ok().and_then(|c| c.clone()) else {
                        return;
                    };
                    if !owned(&shared, check, local, peer).await {
                        lock(&shared.refusals).note(Refusal::Outside);
                        return;
                    }
                    let service = hyper::service::service_fn(move |request| {
                        let shared = Arc::clone(&shared);
                        async move { Ok::<_, Infallible>(handle(&shared, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .max_buf_size(MAX_HEADER_BUFFER)
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Runs `check` for one connection: one at a time per environment, and at most
/// [`CONCURRENT_CHECKS`] in the server, each on the blocking pool (it reads `/proc`).
async fn owned(shared: &Shared, check: PeerCheck, local: SocketAddr, peer: SocketAddr) -> bool {
    let _turn = shared.checking.lock().await;
    let Ok(slot) = CHECK_SLOTS.acquire().await else {
        return false;
    };
    // The slot moves into the blocking task: it is released when the check has run, even if
    // this connection's task is aborted meanwhile.
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        check(local, peer)
    })
    .await
    .unwrap_or(false)
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn api_error(status: StatusCode, error_type: &str, message: &str) -> Response<Full<Bytes>> {
    json_response(
        status,
        serde_json::json!({ "errorMessage": message, "errorType": error_type }),
    )
}

fn accepted() -> Response<Full<Bytes>> {
    json_response(StatusCode::ACCEPTED, serde_json::json!({ "status": "OK" }))
}

async fn handle(shared: &Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    if let Some(rest) = path.strip_prefix(EXTENSION_PREFIX) {
        return extension_request(shared, rest, request).await;
    }
    if path.trim_end_matches('/') == TELEMETRY_PATH {
        let parse = crate::telemetry::parse_subscription;
        return telemetry_request(shared, request, "Telemetry API", parse).await;
    }
    if path.trim_end_matches('/') == LOGS_PATH {
        let parse = crate::telemetry::parse_logs_subscription;
        return telemetry_request(shared, request, "Logs API", parse).await;
    }
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return api_error(
            StatusCode::NOT_FOUND,
            "UnknownOperation",
            "Unknown Runtime API path",
        );
    };
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match (request.method(), segments.as_slice()) {
        (&Method::GET, ["invocation", "next"]) => next(shared).await,
        (&Method::POST, ["invocation", id, "response"]) => {
            let id = (*id).to_owned();
            response(shared, &id, request).await
        }
        (&Method::POST, ["invocation", id, "error"]) => {
            let id = (*id).to_owned();
            error(shared, &id, request).await
        }
        (&Method::POST, ["init", "error"]) => init_error(shared, request).await,
        (&Method::GET, ["restore", "next"]) => restore_next(shared).await,
        (&Method::POST, ["restore", "error"]) => restore_error(shared, request).await,
        _ => api_error(
            StatusCode::NOT_FOUND,
            "UnknownOperation",
            "Unknown Runtime API path",
        ),
    }
}

/// The runtime is ready for work: INIT ends (with extensions, once they are ready too).
fn runtime_ready(shared: &Shared) {
    if !shared.extensions.active() {
        if let Some(init) = lock(&shared.init).take() {
            let _ = init.send(InitOutcome::Ready);
        }
    } else if !shared
        .runtime_ready
        .swap(true, std::sync::atomic::Ordering::AcqRel)
    {
        finish_init(shared);
    }
}

fn invalid_state(from: &str, to: &str) -> Response<Full<Bytes>> {
    api_error(
        StatusCode::FORBIDDEN,
        "InvalidStateTransition",
        &format!("State transition from {from} to {to} failed for runtime. Error: State transition is not allowed"),
    )
}

/// `GET /runtime/restore/next` (SnapStart): INIT and the before-snapshot hooks are done;
/// answers once the environment is restored.
async fn restore_next(shared: &Shared) -> Response<Full<Bytes>> {
    let gate = {
        let mut snap = lock(&shared.snap);
        if !snap.enabled || snap.asked {
            return invalid_state("Ready", "RestoreReady");
        }
        snap.asked = true;
        snap.gate.take()
    };
    runtime_ready(shared);
    let opened = match gate {
        Some(gate) => gate.await.is_ok(),
        None => false,
    };
    if opened {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::OK;
        response
    } else {
        api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceUnavailable",
            "The environment is shutting down",
        )
    }
}

/// `POST /runtime/restore/error` (SnapStart): an after-restore hook failed.
async fn restore_error(shared: &Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let error_type = error_type_header(&request);
    let body = read_body(request, MAX_RESPONSE_BYTES)
        .await
        .unwrap_or_default();
    let Some(outcome) = lock(&shared.snap).outcome.take() else {
        return invalid_state("Ready", "RestoreError");
    };
    let _ = outcome.send(RestoreOutcome::Failed { body, error_type });
    accepted()
}

async fn next(shared: &Shared) -> Response<Full<Bytes>> {
    // A restored SnapStart runtime asking for work: its restore is over.
    if let Some(outcome) = lock(&shared.snap).outcome.take() {
        let _ = outcome.send(RestoreOutcome::Ready);
    }
    // With extensions, INIT ends when they are ready too; this `next` just waits.
    runtime_ready(shared);
    // An event is handed out at most once. A runtime asks for the next event only after
    // answering the last one, so one still unanswered was lost by the runtime: it fails
    // now, and this request waits for a new event. (Handing it out again let a runtime
    // that keeps failing receive the same event forever.)
    if let Some((_, responder)) = lock(&shared.current).take() {
        let _ = responder.send(InvocationResult::Abandoned);
    }
    let (cancel_tx, mut cancel_rx) = oneshot::channel();
    if let Some(older) = lock(&shared.waiting).replace(cancel_tx) {
        let _ = older.send(());
    }
    let dispatched = tokio::select! {
        mut queue = shared.queue.lock() => tokio::select! {
            dispatched = queue.recv() => dispatched,
            _ = &mut cancel_rx => return api_error(StatusCode::CONFLICT, "Superseded", "A newer request for the next invocation replaced this one"),
        },
        _ = &mut cancel_rx => return api_error(StatusCode::CONFLICT, "Superseded", "A newer request for the next invocation replaced this one"),
    };
    let Some((invocation, responder)) = dispatched else {
        return api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceUnavailable",
            "The environment is shutting down",
        );
    };
    if shared.extensions.active() {
        shared.extensions.invoke(
            &invocation.request_id,
            invocation.deadline_ms,
            &invocation.invoked_function_arn,
            &invocation.trace_id,
        );
    }
    *lock(&shared.current) = Some((invocation.clone(), responder));
    next_response(invocation)
}

/// The `next` answer for `invocation`, with Lambda's headers.
fn next_response(invocation: Invocation) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(invocation.payload));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut set = |name: &'static str, value: &str| {
        // Every value here is ASCII (ids, numbers, ARNs, and JSON through `ascii_json`).
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("lambda-runtime-aws-request-id", &invocation.request_id);
    set(
        "lambda-runtime-deadline-ms",
        &invocation.deadline_ms.to_string(),
    );
    set(
        "lambda-runtime-invoked-function-arn",
        &invocation.invoked_function_arn,
    );
    set("lambda-runtime-trace-id", &invocation.trace_id);
    if let Some(context) = &invocation.client_context {
        set("lambda-runtime-client-context", &ascii_json(context));
    }
    if let Some(identity) = &invocation.cognito_identity {
        set("lambda-runtime-cognito-identity", &ascii_json(identity));
    }
    response
}

/// JSON text rewritten as printable ASCII with the same value: characters beyond ASCII and
/// DEL become `\uXXXX` escapes, and line breaks (whitespace between tokens in valid JSON)
/// become spaces. A header carries that byte-exact to every runtime client, where raw UTF-8
/// would be read as Latin-1 by most HTTP stacks (Python's, Node's) and DEL is not allowed
/// in a header at all.
fn ascii_json(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\r' | '\n' => out.push(' '),
            ' '..='~' | '\t' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The responder of the invocation a post answers. Whatever ends the post, the invocation
/// gets a result: dropped unanswered (hyper drops the handler when the connection breaks
/// mid-body), it sends [`InvocationResult::Truncated`].
struct Answer(Option<oneshot::Sender<InvocationResult>>);

impl Answer {
    fn send(mut self, result: InvocationResult) {
        if let Some(responder) = self.0.take() {
            let _ = responder.send(result);
        }
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        if let Some(responder) = self.0.take() {
            let _ = responder.send(InvocationResult::Truncated);
        }
    }
}

/// Takes the responder of invocation `id`, if it is the one in flight.
fn take_current(shared: &Shared, id: &str) -> Option<Answer> {
    let mut current = lock(&shared.current);
    match current.as_ref() {
        Some((invocation, _)) if invocation.request_id == id => {
            current.take().map(|(_, responder)| Answer(Some(responder)))
        }
        _ => None,
    }
}

fn error_type_header(request: &Request<Incoming>) -> Option<String> {
    request
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Why a body could not be read.
#[derive(Debug, PartialEq, Eq)]
enum BodyError {
    TooLarge,
    /// The connection broke mid-body (the runtime died while posting).
    Broken,
}

async fn read_body(request: Request<Incoming>, limit: usize) -> Result<Bytes, BodyError> {
    Limited::new(request.into_body(), limit)
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .map_err(|error| {
            if error.is::<http_body_util::LengthLimitError>() {
                BodyError::TooLarge
            } else {
                BodyError::Broken
            }
        })
}

fn invalid_id() -> Response<Full<Bytes>> {
    api_error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        "Invalid request ID",
    )
}

// Each handler reads the body before answering, so the connection stays usable
// (keep-alive) whatever the answer is. The invocation is taken before the body is read:
// if the connection breaks meanwhile, the dropped `Answer` still fails it (left in
// `current`, the next `next` would have found it unanswered).

async fn response(shared: &Shared, id: &str, request: Request<Incoming>) -> Response<Full<Bytes>> {
    match request
        .headers()
        .get("lambda-runtime-function-response-mode")
        .map(HeaderValue::as_bytes)
    {
        None => {}
        Some(b"streaming") => return streamed_response(shared, id, request).await,
        Some(_) => {
            // Read the body first so the connection stays usable.
            let _ = read_body(request, MAX_RESPONSE_BYTES).await;
            return api_error(
                StatusCode::BAD_REQUEST,
                "InvalidFunctionResponseMode",
                "Invalid function response mode",
            );
        }
    }
    let answer = take_current(shared, id);
    let body = read_body(request, MAX_RESPONSE_BYTES).await;
    let Some(answer) = answer else {
        return invalid_id();
    };
    match body {
        Ok(body) => {
            answer.send(InvocationResult::Response(body));
            accepted()
        }
        Err(BodyError::Broken) => {
            answer.send(InvocationResult::Truncated);
            api_error(StatusCode::BAD_REQUEST, "InvalidRequest", "Incomplete body")
        }
        Err(BodyError::TooLarge) => {
            answer.send(InvocationResult::ResponseTooLarge);
            api_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &format!("Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."),
            )
        }
    }
}

/// Parts buffered between the runtime and the engine: a slow reader slows the runtime's
/// writes down rather than growing memory.
const STREAM_BUFFER: usize = 16;

/// A streamed response: the engine gets the stream at once and each chunk as it arrives;
/// trailers carry a mid-stream error. Answered 202 once the body has ended.
async fn streamed_response(
    shared: &Shared,
    id: &str,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let Some(answer) = take_current(shared, id) else {
        let _ = read_body(request, MAX_RESPONSE_BYTES).await;
        return invalid_id();
    };
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    answer.send(InvocationResult::Streaming(StreamedResponse {
        content_type,
        parts: rx,
    }));
    let mut body = request.into_body();
    let mut total = 0usize;
    let mut end: Result<(), StreamFailure> = Ok(());
    let mut too_large = false;
    loop {
        match body.frame().await {
            None => break,
            Some(Err(_)) => {
                end = Err(StreamFailure::Truncated);
                break;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    if too_large {
                        continue;
                    }
                    total += data.len();
                    if total > MAX_STREAMED_BYTES {
                        // Keep reading (and dropping) so the runtime's post completes.
                        too_large = true;
                        end = Err(StreamFailure::TooLarge);
                        continue;
                    }
                    // The engine may be gone (the caller left); the runtime is still read.
                    let _ = tx.send(StreamPart::Data(data)).await;
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        if let Some(failure) = trailer_failure(&trailers) {
                            if end.is_ok() {
                                end = Err(failure);
                            }
                        }
                    }
                }
            },
        }
    }
    let truncated = matches!(end, Err(StreamFailure::Truncated));
    let _ = tx.send(StreamPart::End(end)).await;
    if truncated {
        api_error(StatusCode::BAD_REQUEST, "InvalidRequest", "Incomplete body")
    } else if too_large {
        api_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            &format!("Exceeded maximum allowed payload size ({MAX_STREAMED_BYTES} bytes)."),
        )
    } else {
        accepted()
    }
}

/// The error a streamed response's trailers report, if any.
fn trailer_failure(trailers: &hyper::HeaderMap) -> Option<StreamFailure> {
    use base64::Engine as _;
    let error_type = trailers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())?
        .to_owned();
    let body = trailers
        .get("lambda-runtime-function-error-body")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .ok()
        })
        .map(Bytes::from)
        .unwrap_or_else(|| {
            Bytes::from(
                serde_json::json!({"errorType": error_type, "errorMessage": error_type})
                    .to_string(),
            )
        });
    Some(StreamFailure::Function { error_type, body })
}

/// Removes the X-Ray `errorCause` the error-cause content type carries (as Lambda does).
fn strip_error_cause(content_type: Option<&str>, body: Bytes) -> Bytes {
    if content_type != Some("application/vnd.aws.lambda.error.cause+json") {
        return body;
    }
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.remove("errorCause");
            Bytes::from(serde_json::Value::Object(map).to_string())
        }
        _ => body,
    }
}

async fn error(shared: &Shared, id: &str, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let error_type = error_type_header(&request);
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let answer = take_current(shared, id);
    let body = read_body(request, MAX_RESPONSE_BYTES).await;
    let Some(answer) = answer else {
        return invalid_id();
    };
    let body = match body {
        Ok(body) => body,
        Err(BodyError::TooLarge) => Bytes::from_static(
            br#"{"errorMessage":"Error payload too large","errorType":"Runtime.ErrorTooLarge"}"#,
        ),
        Err(BodyError::Broken) => {
            answer.send(InvocationResult::Truncated);
            return api_error(StatusCode::BAD_REQUEST, "InvalidRequest", "Incomplete body");
        }
    };
    let body = strip_error_cause(content_type.as_deref(), body);
    answer.send(InvocationResult::Error { body, error_type });
    accepted()
}

async fn init_error(shared: &Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let error_type = error_type_header(&request);
    let body = read_body(request, MAX_RESPONSE_BYTES)
        .await
        .unwrap_or_default();
    let Some(init) = lock(&shared.init).take() else {
        return api_error(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            "State transition from Ready to InitError failed for runtime. Error: State transition is not allowed",
        );
    };
    let _ = init.send(InitOutcome::Failed { body, error_type });
    accepted()
}

/// Ends INIT when it can: at once when an extension failed, else when the runtime and
/// every extension are ready.
fn finish_init(shared: &Shared) {
    let state = shared.extensions.init_state();
    let outcome = match state {
        InitState::Waiting => return,
        InitState::Ready => {
            if !shared
                .runtime_ready
                .load(std::sync::atomic::Ordering::Acquire)
            {
                return;
            }
            InitOutcome::Ready
        }
        InitState::Failed(name, error_type, kind) => InitOutcome::Failed {
            body: Bytes::from(
                serde_json::json!({
                    "errorType": kind,
                    "errorMessage": format!("Extension {name} failed to initialize: {error_type}"),
                })
                .to_string(),
            ),
            error_type: Some(kind.to_owned()),
        },
    };
    if let Some(init) = lock(&shared.init).take() {
        let _ = init.send(outcome);
    }
}

fn refused(refused: Refused) -> Response<Full<Bytes>> {
    api_error(
        StatusCode::from_u16(refused.status).unwrap_or(StatusCode::FORBIDDEN),
        refused.error_type,
        &refused.message,
    )
}

fn header<'a>(request: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Requests to the Extensions API carry small JSON bodies.
const MAX_EXTENSION_BODY: usize = 1024 * 1024;

async fn extension_request(
    shared: &Shared,
    rest: &str,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let extensions = &shared.extensions;
    let id = header(&request, "lambda-extension-identifier").map(str::to_owned);
    match (request.method().clone(), rest.trim_end_matches('/')) {
        (Method::POST, "register") => {
            let name = header(&request, "lambda-extension-name")
                .unwrap_or_default()
                .to_owned();
            let account = header(&request, "lambda-extension-accept-feature")
                .is_some_and(|f| f.split(',').any(|f| f.trim() == "accountId"));
            let body = read_body(request, MAX_EXTENSION_BODY)
                .await
                .unwrap_or_default();
            match extensions.register(&name, &body, account) {
                Ok((id, answer)) => {
                    let mut response = json_response(StatusCode::OK, answer);
                    if let Ok(value) = HeaderValue::from_str(&id) {
                        response.headers_mut().insert(
                            HeaderName::from_static("lambda-extension-identifier"),
                            value,
                        );
                    }
                    response
                }
                Err(error) => refused(error),
            }
        }
        (Method::GET, "event/next") => {
            let checked = extensions
                .check_id(id.as_deref())
                .and_then(|_| extensions.next_begins(id.as_deref().unwrap_or_default()));
            let wake = match checked {
                Ok(wake) => wake,
                Err(error) => return refused(error),
            };
            finish_init(shared);
            let id = id.unwrap_or_default();
            let event = extensions.next_event(&id, &wake).await;
            let mut response = Response::new(Full::new(event));
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            if let Ok(value) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
                headers.insert(
                    HeaderName::from_static("lambda-extension-event-identifier"),
                    value,
                );
            }
            response
        }
        (Method::POST, which @ ("init/error" | "exit/error")) => {
            let exit = which == "exit/error";
            let error_type =
                header(&request, "lambda-extension-function-error-type").map(str::to_owned);
            let _ = read_body(request, MAX_EXTENSION_BODY).await;
            if let Err(error) = extensions.check_id(id.as_deref()) {
                return refused(error);
            }
            let Some(error_type) = error_type else {
                return api_error(
                    StatusCode::FORBIDDEN,
                    "Extension.MissingHeader",
                    "Lambda-Extension-Function-Error-Type not found",
                );
            };
            match extensions.report_error(id.as_deref().unwrap_or_default(), &error_type, exit) {
                Ok(()) => {
                    finish_init(shared);
                    accepted()
                }
                Err(error) => refused(error),
            }
        }
        _ => api_error(
            StatusCode::NOT_FOUND,
            "UnknownOperation",
            "Unknown Extensions API path",
        ),
    }
}

/// A subscription through the Telemetry API or the Logs API (`api`, whose body `parse`
/// reads).
async fn telemetry_request(
    shared: &Shared,
    request: Request<Incoming>,
    api: &str,
    parse: fn(&[u8]) -> Result<crate::telemetry::Subscription, String>,
) -> Response<Full<Bytes>> {
    if request.method() != Method::PUT {
        return api_error(
            StatusCode::NOT_FOUND,
            "UnknownOperation",
            &format!("Unknown {api} operation"),
        );
    }
    let id = header(&request, "lambda-extension-identifier").map(str::to_owned);
    let body = read_body(request, MAX_EXTENSION_BODY)
        .await
        .unwrap_or_default();
    let name = match shared.extensions.check_id(id.as_deref()) {
        Ok(name) => name,
        Err(error) => return refused(error),
    };
    let subscribed =
        parse(&body).and_then(|subscription| shared.telemetry.subscribe(&name, &subscription));
    match subscribed {
        Ok(()) => {
            let mut response = Response::new(Full::new(Bytes::from_static(b"OK")));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            response
        }
        Err(message) => api_error(StatusCode::BAD_REQUEST, "ValidationError", &message),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    #[test]
    fn ascii_json_keeps_the_value_and_only_printable_ascii() {
        let text = "{\"custom\":\n{\"a\":\"é日😀\u{7f}\",\t\"b\":\"x\\\"y\"}}";
        let ascii = ascii_json(text);
        assert!(
            ascii
                .bytes()
                .all(|b| b == b'\t' || (b' '..=b'~').contains(&b)),
            "{ascii}"
        );
        assert!(ascii.contains(r"\u00e9\u65e5\ud83d\ude00\u007f"), "{ascii}");
        let before: serde_json::Value = serde_json::from_str(text).unwrap();
        let after: serde_json::Value = serde_json::from_str(&ascii).unwrap();
        assert_eq!(before, after);
        assert!(HeaderValue::from_str(&ascii).is_ok());
    }

    /// An API on loopback that admits every connection.
    async fn open_api() -> (RuntimeApi, oneshot::Receiver<InitOutcome>) {
        let (api, init) = RuntimeApi::start(IpAddr::from([127, 0, 0, 1]))
            .await
            .unwrap();
        api.admit(Arc::new(|_, _| true));
        (api, init)
    }

    /// Sends one raw HTTP/1.1 request on `stream`; returns (status, headers text, body).
    async fn request(
        stream: &mut TcpStream,
        method: &str,
        path: &str,
        headers: &str,
        body: &[u8],
    ) -> (u16, String, Vec<u8>) {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n{headers}\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        read_response(stream).await
    }

    /// Reads one HTTP/1.1 response from `stream`: (status, headers text, body).
    async fn read_response(stream: &mut TcpStream) -> (u16, String, Vec<u8>) {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed");
            buffer.extend_from_slice(&chunk[..n]);
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..end]).to_string();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(|v| v.parse().unwrap())
                    })
                    .unwrap_or(0);
                if buffer.len() >= end + 4 + length {
                    let status = head[9..12].parse().unwrap();
                    return (status, head, buffer[end + 4..end + 4 + length].to_vec());
                }
            }
        }
    }

    fn invocation(id: &str) -> Invocation {
        Invocation {
            request_id: id.into(),
            payload: Bytes::from_static(b"{\"k\":1}"),
            deadline_ms: 1_700_000_000_000,
            invoked_function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
            trace_id: "Root=1-0-0".into(),
            client_context: Some("{\"custom\":{}}".into()),
            cognito_identity: None,
        }
    }

    /// Queues an invocation and lets the runtime take it with `next`.
    async fn next_invocation(
        api: &RuntimeApi,
        runtime: &mut TcpStream,
        id: &str,
    ) -> oneshot::Receiver<InvocationResult> {
        let result = api.dispatch(invocation(id)).await.unwrap();
        let (status, _, _) = request(
            runtime,
            "GET",
            "/2018-06-01/runtime/invocation/next",
            "",
            b"",
        )
        .await;
        assert_eq!(status, 200);
        result
    }

    #[tokio::test]
    async fn next_response_error_and_their_failures() {
        let (api, init) = open_api().await;
        let mut runtime = TcpStream::connect(api.address()).await.unwrap();

        // The first `next` ends INIT; it then waits for an invocation.
        let first = api.dispatch(invocation("req-1")).await.unwrap();
        let (status, head, body) = request(
            &mut runtime,
            "GET",
            "/2018-06-01/runtime/invocation/next",
            "",
            b"",
        )
        .await;
        assert_eq!(init.await.unwrap(), InitOutcome::Ready);
        assert_eq!(status, 200);
        assert_eq!(body, b"{\"k\":1}");
        let head = head.to_ascii_lowercase();
        assert!(head.contains("lambda-runtime-aws-request-id: req-1"));
        assert!(head.contains("lambda-runtime-deadline-ms: 1700000000000"));
        assert!(head.contains(
            "lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:000000000000:function:f"
        ));
        assert!(head.contains("lambda-runtime-trace-id: root=1-0-0"));
        assert!(head.contains("lambda-runtime-client-context: {\"custom\":{}}"));

        // An unknown id is refused; the right one is accepted once (keep-alive throughout).
        let (status, _, body) = request(
            &mut runtime,
            "POST",
            "/2018-06-01/runtime/invocation/nope/response",
            "",
            b"1",
        )
        .await;
        assert_eq!(status, 400);
        assert!(String::from_utf8_lossy(&body).contains("InvalidRequestID"));
        let (status, _, body) = request(
            &mut runtime,
            "POST",
            "/2018-06-01/runtime/invocation/req-1/response",
            "",
            b"\"done\"",
        )
        .await;
        assert_eq!(
            (status, body.as_slice()),
            (202, b"{\"status\":\"OK\"}".as_slice())
        );
        assert_eq!(
            first.await.unwrap(),
            InvocationResult::Response(Bytes::from_static(b"\"done\""))
        );
        let (status, _, _) = request(
            &mut runtime,
            "POST",
            "/2018-06-01/runtime/invocation/req-1/response",
            "",
            b"again",
        )
        .await;
        assert_eq!(status, 400, "an answered id cannot be answered again");

        // An error with an X-Ray cause header of about 1 MiB, and the error-cause body type.
        let second = next_invocation(&api, &mut runtime, "req-2").await;
        let cause = format!(
            "lambda-runtime-function-xray-error-cause: {}\r\n",
            "c".repeat(1024 * 1024)
        );
        let headers = format!("{cause}lambda-runtime-function-error-type: Boom\r\ncontent-type: application/vnd.aws.lambda.error.cause+json\r\n");
        let error_body =
            br#"{"errorMessage":"m","errorType":"Boom","stackTrace":[],"errorCause":{"x":1}}"#;
        let (status, _, _) = request(
            &mut runtime,
            "POST",
            "/2018-06-01/runtime/invocation/req-2/error",
            &headers,
            error_body,
        )
        .await;
        assert_eq!(status, 202);
        match second.await.unwrap() {
            InvocationResult::Error { body, error_type } => {
                assert_eq!(error_type.as_deref(), Some("Boom"));
                let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(
                    value,
                    serde_json::json!({"errorMessage":"m","errorType":"Boom","stackTrace":[]})
                );
            }
            other => panic!("{other:?}"),
        }

        // A response over 6 MiB + 100 bytes: 413 to the runtime, ResponseTooLarge to the caller.
        let third = next_invocation(&api, &mut runtime, "req-3").await;
        let big = vec![b'x'; MAX_RESPONSE_BYTES + 1];
        let (status, _, body) = request(
            &mut runtime,
            "POST",
            "/2018-06-01/runtime/invocation/req-3/response",
            "",
            &big,
        )
        .await;
        assert_eq!(status, 413);
        assert!(String::from_utf8_lossy(&body).contains("RequestEntityTooLarge"));
        assert_eq!(third.await.unwrap(), InvocationResult::ResponseTooLarge);
    }

    #[tokio::test]
    async fn an_abandoned_next_does_not_take_the_event() {
        let (api, _init) = open_api().await;
        // A runtime's client gives up on a long poll without closing the connection (a
        // client-side read timeout) and asks again on a new one.
        let mut abandoned = TcpStream::connect(api.address()).await.unwrap();
        abandoned
            .write_all(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut runtime = TcpStream::connect(api.address()).await.unwrap();
        runtime
            .write_all(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        // The abandoned request is answered as superseded...
        let (status, _, _) = read_response(&mut abandoned).await;
        assert_eq!(status, 409);
        // ...and the event, dispatched after, reaches the newer one. (Had it reached the
        // abandoned request first, it would have been handed out: a later `next` fails it,
        // see a_next_without_an_answer_fails_the_unanswered_invocation.)
        let result = api.dispatch(invocation("req-9")).await.unwrap();
        let (status, head, _) = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            read_response(&mut runtime),
        )
        .await
        .expect("the event went to the abandoned request");
        assert_eq!(status, 200);
        assert!(head
            .to_ascii_lowercase()
            .contains("lambda-runtime-aws-request-id: req-9"));
        let (status, _, _) = request(
            &mut runtime,
            "POST",
            "/2018-06-01/runtime/invocation/req-9/response",
            "",
            b"1",
        )
        .await;
        assert_eq!(status, 202);
        assert_eq!(
            result.await.unwrap(),
            InvocationResult::Response(Bytes::from_static(b"1"))
        );
        drop(abandoned);
    }

    /// Whether the server closed `stream` (within a second) without answering.
    async fn closed_by_server(stream: &mut TcpStream) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(1), stream.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_are_closed_at_once() {
        let (api, _init) = open_api().await;
        let mut held = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            let mut stream = TcpStream::connect(api.address()).await.unwrap();
            // Each is admitted and served.
            let (status, _, _) =
                request(&mut stream, "GET", "/2018-06-01/runtime/unknown", "", b"").await;
            assert_eq!(status, 404);
            held.push(stream);
        }
        let mut over = TcpStream::connect(api.address()).await.unwrap();
        assert!(
            closed_by_server(&mut over).await,
            "a connection over the limit is closed"
        );
        // Closing one makes room for another.
        drop(held.pop());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let mut again = TcpStream::connect(api.address()).await.unwrap();
        let (status, _, _) =
            request(&mut again, "GET", "/2018-06-01/runtime/unknown", "", b"").await;
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn ownership_checks_run_one_at_a_time_per_environment() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (api, _init) = RuntimeApi::start(IpAddr::from([127, 0, 0, 1]))
            .await
            .unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let checked = Arc::new(AtomicUsize::new(0));
        let (r, m, c) = (
            Arc::clone(&running),
            Arc::clone(&most),
            Arc::clone(&checked),
        );
        api.admit(Arc::new(move |_, _| {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(10));
            r.fetch_sub(1, Ordering::SeqCst);
            // Every other connection is refused.
            c.fetch_add(1, Ordering::SeqCst) % 2 == 0
        }));
        let mut streams = Vec::new();
        for _ in 0..20 {
            streams.push(TcpStream::connect(api.address()).await.unwrap());
        }
        for _ in 0..200 {
            if checked.load(Ordering::SeqCst) == 20 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(checked.load(Ordering::SeqCst), 20);
        assert_eq!(most.load(Ordering::SeqCst), 1);
        let mut refused = 0;
        for stream in &mut streams {
            // A refused one may be closed before this is written.
            let _ = stream
                .write_all(b"GET /2018-06-01/runtime/unknown HTTP/1.1\r\nhost: x\r\n\r\n")
                .await;
            if closed_by_server(stream).await {
                refused += 1;
            }
        }
        assert_eq!(refused, 10);
    }

    #[test]
    fn refusals_are_reported_at_most_once_per_interval() {
        let mut refusals = Refusals {
            address: SocketAddr::from(([127, 0, 0, 1], 9001)),
            over_limit: 0,
            outside: 0,
            last_report: None,
        };
        refusals.note(Refusal::Outside);
        assert_eq!(
            (refusals.over_limit, refusals.outside),
            (0, 0),
            "the first is reported"
        );
        for _ in 0..1000 {
            refusals.note(Refusal::OverLimit);
        }
        refusals.note(Refusal::Outside);
        assert_eq!(
            (refusals.over_limit, refusals.outside),
            (1000, 1),
            "the rest wait"
        );
        refusals.last_report = Instant::now().checked_sub(REFUSAL_REPORT_INTERVAL);
        refusals.note(Refusal::OverLimit);
        assert_eq!(
            (refusals.over_limit, refusals.outside),
            (0, 0),
            "reported after the interval"
        );
    }

    #[tokio::test]
    async fn a_post_broken_off_mid_body_fails_the_invocation_at_once() {
        // Closed outright (hyper may drop the handler mid-body) or half-closed (the body
        // read fails): either way the invocation fails, and its event is not handed out again.
        for close_outright in [true, false] {
            let (api, _init) = open_api().await;
            let mut runtime = TcpStream::connect(api.address()).await.unwrap();
            for (id, body) in [("req-1", "response"), ("req-2", "error")] {
                let result = next_invocation(&api, &mut runtime, id).await;
                let head = format!("POST /2018-06-01/runtime/invocation/{id}/{body} HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n");
                runtime.write_all(head.as_bytes()).await.unwrap();
                runtime.write_all(b"{\"part\"").await.unwrap();
                if close_outright {
                    drop(runtime);
                } else {
                    runtime.shutdown().await.unwrap();
                }
                let outcome = tokio::time::timeout(std::time::Duration::from_secs(5), result)
                    .await
                    .expect("the invocation fails at once");
                assert_eq!(outcome.unwrap(), InvocationResult::Truncated, "{id}");
                runtime = TcpStream::connect(api.address()).await.unwrap();
            }
            // The next `next` waits for a new event rather than getting either again.
            let mut asking = TcpStream::connect(api.address()).await.unwrap();
            asking
                .write_all(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .unwrap();
            let mut byte = [0u8; 1];
            assert!(
                tokio::time::timeout(
                    std::time::Duration::from_millis(300),
                    asking.read(&mut byte)
                )
                .await
                .is_err(),
                "an event already handed out was handed out again"
            );
        }
    }

    #[tokio::test]
    async fn a_next_without_an_answer_fails_the_unanswered_invocation() {
        let (api, _init) = open_api().await;
        let mut runtime = TcpStream::connect(api.address()).await.unwrap();
        let first = next_invocation(&api, &mut runtime, "req-1").await;
        // Asked again without answering req-1: req-1 fails and the request gets req-2.
        let second = api.dispatch(invocation("req-2")).await.unwrap();
        let (status, head, _) = request(
            &mut runtime,
            "GET",
            "/2018-06-01/runtime/invocation/next",
            "",
            b"",
        )
        .await;
        assert_eq!(status, 200);
        assert!(head
            .to_ascii_lowercase()
            .contains("lambda-runtime-aws-request-id: req-2"));
        assert_eq!(first.await.unwrap(), InvocationResult::Abandoned);
        // A late answer to req-1 is refused; req-2 is answered normally.
        let (status, _, _) = request(
            &mut runtime,
            "POST",
            "/2018-06-01/runtime/invocation/req-1/response",
            "",
            b"1",
        )
        .await;
        assert_eq!(status, 400);
        let (status, _, _) = request(
            &mut runtime,
            "POST",
            "/2018-06-01/runtime/invocation/req-2/response",
            "",
            b"2",
        )
        .await;
        assert_eq!(status, 202);
        assert_eq!(
            second.await.unwrap(),
            InvocationResult::Response(Bytes::from_static(b"2"))
        );
    }

    #[tokio::test]
    async fn init_waits_for_extensions_and_invoke_events_reach_them() {
        let (api, mut init) = open_api().await;
        api.expect_extensions(
            FunctionInfo {
                function_name: "f".into(),
                function_version: "$LATEST".into(),
                handler: "app.handler".into(),
                account_id: "000000000000".into(),
            },
            vec!["ext".into()],
        );
        // The runtime asks first: INIT is not over while the extension has not registered.
        let mut runtime = TcpStream::connect(api.address()).await.unwrap();
        runtime
            .write_all(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(init.try_recv().is_err());
        let mut ext = TcpStream::connect(api.address()).await.unwrap();
        let (status, head, body) = request(
            &mut ext,
            "POST",
            "/2020-01-01/extension/register",
            "lambda-extension-name: ext\r\n",
            br#"{"events":["INVOKE"]}"#,
        )
        .await;
        assert_eq!(status, 200);
        let id = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("lambda-extension-identifier: ")
                    .map(str::to_owned)
            })
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["functionName"], "f");
        assert!(
            init.try_recv().is_err(),
            "registered, but has not asked for an event"
        );
        // Its first `next` ends INIT; the INVOKE event reaches it with the runtime's.
        let header = format!("lambda-extension-identifier: {id}\r\n");
        ext.write_all(
            format!("GET /2020-01-01/extension/event/next HTTP/1.1\r\nhost: x\r\n{header}\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        assert_eq!(init.await.unwrap(), InitOutcome::Ready);
        let result = api.dispatch(invocation("req-1")).await.unwrap();
        let (status, _, _) = read_response(&mut runtime).await;
        assert_eq!(status, 200);
        let (status, _, event) = read_response(&mut ext).await;
        assert_eq!(status, 200);
        let event: serde_json::Value = serde_json::from_slice(&event).unwrap();
        assert_eq!(
            (event["eventType"].as_str(), event["requestId"].as_str()),
            (Some("INVOKE"), Some("req-1"))
        );
        let (status, _, _) = request(
            &mut runtime,
            "POST",
            "/2018-06-01/runtime/invocation/req-1/response",
            "",
            b"1",
        )
        .await;
        assert_eq!(status, 202);
        assert!(result.await.is_ok());
        assert!(
            !api.extensions().idle(false),
            "the extension has not asked again"
        );
        // Registration is closed after INIT; unknown identifiers are refused.
        api.end_init();
        let mut other = TcpStream::connect(api.address()).await.unwrap();
        let (status, _, body) = request(
            &mut other,
            "POST",
            "/2020-01-01/extension/register",
            "lambda-extension-name: late\r\n",
            b"{}",
        )
        .await;
        assert_eq!(status, 403);
        assert!(String::from_utf8_lossy(&body).contains("Extension.RegistrationClosed"));
        let (status, _, body) = request(
            &mut other,
            "PUT",
            "/2022-07-01/telemetry",
            "lambda-extension-identifier: 00000000-0000-4000-8000-000000000000\r\n",
            b"{}",
        )
        .await;
        assert_eq!(status, 403);
        assert!(String::from_utf8_lossy(&body).contains("Extension.UnknownExtensionIdentifier"));
        let (status, _, body) =
            request(&mut other, "PUT", "/2022-07-01/telemetry", &header, b"{}").await;
        assert_eq!(status, 400);
        assert!(String::from_utf8_lossy(&body).contains("ValidationError"));
        // Asking again: the extension is done with the invocation.
        other
            .write_all(
                format!("GET /2020-01-01/extension/event/next HTTP/1.1\r\nhost: x\r\n{header}\r\n")
                    .as_bytes(),
            )
            .await
            .unwrap();
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            api.extensions().wait_idle(false),
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn snap_start_restore_next_ends_init_and_waits_for_the_restore() {
        // Not a SnapStart environment: refused.
        let (api, _init) = open_api().await;
        let mut runtime = TcpStream::connect(api.address()).await.unwrap();
        let (status, _, _) = request(
            &mut runtime,
            "GET",
            "/2018-06-01/runtime/restore/next",
            "",
            b"",
        )
        .await;
        assert_eq!(status, 403);

        let (api, init) = open_api().await;
        api.enable_snap_start();
        let address = api.address();
        let waiting = tokio::spawn(async move {
            let mut runtime = TcpStream::connect(address).await.unwrap();
            let answer = request(
                &mut runtime,
                "GET",
                "/2018-06-01/runtime/restore/next",
                "",
                b"",
            )
            .await;
            (runtime, answer)
        });
        assert_eq!(init.await.unwrap(), InitOutcome::Ready);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "restore/next answers only at the restore"
        );
        let restored = api.restore();
        let (mut runtime, (status, _, body)) = waiting.await.unwrap();
        assert_eq!(status, 200);
        assert!(body.is_empty());
        // A second restore/next is refused; the first `next` completes the restore.
        let (status, _, _) = request(
            &mut runtime,
            "GET",
            "/2018-06-01/runtime/restore/next",
            "",
            b"",
        )
        .await;
        assert_eq!(status, 403);
        let sent = tokio::spawn(async move {
            request(
                &mut runtime,
                "GET",
                "/2018-06-01/runtime/invocation/next",
                "",
                b"",
            )
            .await
        });
        assert_eq!(restored.await.unwrap(), RestoreOutcome::Ready);
        sent.abort();
    }

    #[tokio::test]
    async fn snap_start_restore_next_after_a_restore_it_missed_is_refused() {
        let (api, _init) = open_api().await;
        api.enable_snap_start();
        // The runtime never reached the snapshot point: restored at once.
        assert_eq!(api.restore().await.unwrap(), RestoreOutcome::Ready);
        let mut runtime = TcpStream::connect(api.address()).await.unwrap();
        let (status, _, body) = request(
            &mut runtime,
            "GET",
            "/2018-06-01/runtime/restore/next",
            "",
            b"",
        )
        .await;
        assert_eq!(status, 403);
        assert!(String::from_utf8_lossy(&body).contains("InvalidStateTransition"));
    }

    #[tokio::test]
    async fn snap_start_restore_error_fails_the_restore() {
        let (api, init) = open_api().await;
        api.enable_snap_start();
        let address = api.address();
        let waiting = tokio::spawn(async move {
            let mut runtime = TcpStream::connect(address).await.unwrap();
            let _ = request(
                &mut runtime,
                "GET",
                "/2018-06-01/runtime/restore/next",
                "",
                b"",
            )
            .await;
            runtime
        });
        assert_eq!(init.await.unwrap(), InitOutcome::Ready);
        let restored = api.restore();
        let mut runtime = waiting.await.unwrap();
        let (status, _, _) = request(
            &mut runtime,
            "POST",
            "/2018-06-01/runtime/restore/error",
            "Lambda-Runtime-Function-Error-Type: Runtime.AfterRestoreError\r\n",
            b"{\"errorType\":\"Runtime.AfterRestoreError\"}",
        )
        .await;
        assert_eq!(status, 202);
        assert_eq!(
            restored.await.unwrap(),
            RestoreOutcome::Failed {
                body: Bytes::from_static(b"{\"errorType\":\"Runtime.AfterRestoreError\"}"),
                error_type: Some("Runtime.AfterRestoreError".into()),
            }
        );
    }

    #[tokio::test]
    async fn init_error_then_no_second_init_error() {
        let (api, init) = open_api().await;
        let mut runtime = TcpStream::connect(api.address()).await.unwrap();
        let headers = "lambda-runtime-function-error-type: Runtime.ImportModuleError\r\n";
        let (status, _, _) = request(
            &mut runtime,
            "POST",
            "/2018-06-01/runtime/init/error",
            headers,
            b"{\"errorType\":\"x\"}",
        )
        .await;
        assert_eq!(status, 202);
        assert_eq!(
            init.await.unwrap(),
            InitOutcome::Failed {
                body: Bytes::from_static(b"{\"errorType\":\"x\"}"),
                error_type: Some("Runtime.ImportModuleError".into())
            }
        );
        let (status, _, _) = request(
            &mut runtime,
            "POST",
            "/2018-06-01/runtime/init/error",
            "",
            b"{}",
        )
        .await;
        assert_eq!(status, 403);
        let (status, _, _) =
            request(&mut runtime, "GET", "/2018-06-01/runtime/unknown", "", b"").await;
        assert_eq!(status, 404);
    }
}
