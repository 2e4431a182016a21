//! The invoke path: find or start an execution environment for a function, hand it the
//! event through the Runtime API, enforce the timeout, and record START/END/REPORT.
//!
//! Environments are pooled per function; an idle one of the current revision is reused
//! (most recently used first), otherwise a new one is cold-started, so concurrent invokes
//! never queue behind each other. A change to the function bumps the pool's generation:
//! idle environments of the old code are shut down at once and busy ones after their
//! current invoke. A reaper shuts down environments idle longer than the idle timeout.

mod admission;
mod capacity;
mod collector;
mod environment;
mod extensions;
pub mod logs;
mod observe;
mod platform;
mod pools;
mod provisioned;
mod snapstart;
mod startup;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gust_model::{FunctionConfig, FunctionName, FunctionState, FunctionVersion, Scope};
use gust_runtime::{Invocation, InvocationResult, RuntimeRegistry};
use gust_sandbox::Sandbox;
use gust_store::Store;

pub use crate::admission::ConcurrencySnapshot;
pub use crate::capacity::{Capacity, ScalingRate};
use crate::collector::now_ms;
pub use crate::environment::{EnvState as EnvironmentState, InvalidTransition};
use crate::environment::{Environment, Stop};
pub use crate::logs::{LogEvent, LogSink, LogStore};
use crate::pools::{Pool, PoolKey, Slot};
pub use crate::provisioned::{ProvisionedStatus, INIT_FAILURE};

/// How long INIT may take at least (Lambda's on-demand INIT limit); a longer function
/// timeout extends it.
const INIT_TIMEOUT_MIN: Duration = Duration::from_secs(10);
/// How often the memory watchdog samples an invocation's processes (no cgroups).
const WATCHDOG_PERIOD: Duration = Duration::from_millis(20);
/// How long an environment stays idle before it is frozen.
const FREEZE_AFTER: Duration = Duration::from_millis(100);
/// SIGTERM grace at SHUTDOWN.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(300);
/// How long an invoke waits for an environment (one freeing up, or its turn to start one)
/// before it is throttled.
const QUEUE_WAIT_MAX: Duration = Duration::from_secs(10);
/// How long an invoke waits for the host's memory (an environment of its function coming
/// back, or one shutting down) before it is throttled.
const CAPACITY_WAIT_MAX: Duration = Duration::from_secs(2);
/// `X-Amz-Log-Result` carries at most this much of the end of the log.
pub const LOG_TAIL_BYTES: usize = 4096;

/// What the engine is configured with.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Region and account (for ARNs and `AWS_REGION`).
    pub scope: Scope,
    /// Environments idle this long are shut down.
    pub idle_timeout: Duration,
    /// The account's concurrency limit: invocations in flight at once.
    pub concurrency_limit: usize,
    /// The host's memory budget, shared by every account's engine.
    pub capacity: Arc<Capacity>,
    /// How fast one function may add environments.
    pub scaling_rate: ScalingRate,
    /// Where logs are kept when there is no `log_sink`.
    pub logs_dir: PathBuf,
    /// Where environments' output goes (the server's CloudWatch Logs); files under
    /// `logs_dir` when `None`.
    pub log_sink: Option<Arc<dyn LogSink>>,
    /// Who is told of invocations, throttles and the engine's gauges.
    pub observer: Arc<dyn gust_model::observe::Observer>,
    /// How functions reach this server's APIs (none: they get no credentials).
    pub services: Option<Arc<dyn ServiceAccess>>,
}

/// How code in an environment reaches this server's own APIs with plain SDK calls:
/// credentials for its function's role, the endpoint, and — when environments have no
/// network — the API served inside the environment's own network namespace.
pub trait ServiceAccess: Send + Sync + std::fmt::Debug {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` for an
    /// environment of `function` running as `role`.
    fn credentials(&self, role: &str, function: &str) -> Vec<(String, String)>;
    /// The API's address as environments on the host's network reach it, and its port.
    fn endpoint(&self) -> Option<(String, u16)>;
    /// Serves the API on `listener` (bound inside an environment's network namespace)
    /// until the returned value is dropped.
    fn bridge(&self, listener: std::net::TcpListener) -> Box<dyn std::any::Any + Send + Sync>;
}

/// An invocation as the API hands it over.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    /// Which function.
    pub function: FunctionName,
    /// Which of its versions runs (an alias is resolved before the engine).
    pub version: FunctionVersion,
    /// The ARN the caller used (`Lambda-Runtime-Invoked-Function-Arn`).
    pub invoked_arn: String,
    /// The event.
    pub payload: Bytes,
    /// Decoded `X-Amz-Client-Context`.
    pub client_context: Option<String>,
    /// The request id the runtime sees (an asynchronous event keeps its own across
    /// attempts); a new one when `None`.
    pub request_id: Option<String>,
    /// The trace header the runtime sees (`Lambda-Runtime-Trace-Id`, which runtimes put in
    /// `_X_AMZN_TRACE_ID`); a new root when `None`.
    pub trace_id: Option<String>,
    /// The caller's segment (`Parent=` of the header it sent), for tracing.
    pub caller_parent: Option<String>,
    /// The caller wants the log's tail (`LogType: Tail`): only then does the answer wait
    /// until END and REPORT are in the log.
    pub log_tail: bool,
}

/// The result of a synchronous invocation.
#[derive(Debug, Clone)]
pub struct InvokeOutcome {
    /// The response or error JSON.
    pub body: Bytes,
    /// Whether `body` is a function error (`X-Amz-Function-Error: Unhandled`).
    pub function_error: bool,
    /// The end of this invocation's log (START … REPORT), at most [`LOG_TAIL_BYTES`], when
    /// the request asked for it (`InvokeRequest::log_tail`; an INIT that failed gives it
    /// always).
    pub log_tail: String,
    /// `X-Amz-Executed-Version`.
    pub executed_version: String,
    /// The request id the runtime saw.
    pub request_id: String,
}

/// A response the function streams, as the caller receives it: the head at once, the
/// body's chunks as the runtime writes them.
#[derive(Debug)]
pub struct ResponseStream {
    /// The runtime's content type.
    pub content_type: String,
    /// `X-Amz-Executed-Version`.
    pub executed_version: String,
    /// The request id the runtime saw.
    pub request_id: String,
    /// The body's chunks, then one [`StreamEvent::Complete`].
    pub events: tokio::sync::mpsc::Receiver<StreamEvent>,
}

/// One event of a [`ResponseStream`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// Body bytes.
    Chunk(Bytes),
    /// The invocation is over.
    Complete {
        /// `(ErrorCode, ErrorDetails)` when it failed: the error's type and its JSON.
        error: Option<(String, String)>,
        /// The end of the invocation's log, as for `X-Amz-Log-Result`.
        log_tail: String,
    },
}

/// How an invocation that may stream answered.
#[derive(Debug)]
pub enum Invoked {
    /// The function answered at once (or failed before streaming).
    Buffered(InvokeOutcome),
    /// The function streams its response.
    Streaming(ResponseStream),
}

/// Why an invocation could not be run at all (function errors are outcomes, not these).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No such function.
    #[error("function {0} not found")]
    NotFound(FunctionName),
    /// The function cannot be invoked in its current state.
    #[error("The operation cannot be performed at this time. The function is currently in the following state: {0}")]
    NotReady(&'static str),
    /// Every environment slot is taken.
    #[error("Rate Exceeded.")]
    TooManyEnvironments,
    /// Concurrency admission refused the invocation; the reason is Lambda's `Reason`.
    #[error("Rate Exceeded.")]
    Throttled(&'static str),
    /// The function's stored package could not be unpacked.
    #[error("Lambda could not unzip the deployment package: {0}")]
    InvalidZipFile(String),
    /// The server failed (store, sockets).
    #[error("{0}")]
    Internal(String),
}

#[derive(Debug)]
struct Inner {
    config: EngineConfig,
    store: Arc<Store>,
    sandbox: Arc<dyn Sandbox>,
    registry: RuntimeRegistry,
    logs: Arc<LogStore>,
    log_sink: Arc<dyn LogSink>,
    pools: Mutex<HashMap<PoolKey, Pool>>,
    live: AtomicUsize,
    /// Bounds the INITs running at once: a burst of cold starts on a small host otherwise
    /// starts hundreds together, each too slow to finish its INIT in time.
    inits: tokio::sync::Semaphore,
    /// Set at server shutdown: environments coming back from an invoke are shut down.
    closing: std::sync::atomic::AtomicBool,
    /// Counts deletions (of functions and versions): a configuration read while one
    /// happened is not cached, since the pool it would go to may have been removed.
    deletions: std::sync::atomic::AtomicU64,
    admission: Arc<Mutex<admission::Admission>>,
    scaling: Mutex<capacity::Scaling>,
    /// Wakes the provisioner (a configuration changed, a provisioned environment died).
    provisioner: tokio::sync::Notify,
}

/// The execution engine of one server.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// INITs at once: enough to keep every core busy while others wait on I/O.
fn concurrent_inits() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get) * 2
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    if getrandom::fill(&mut buffer).is_err() {
        // Uniqueness, not secrecy, is what these ids need.
        buffer = uuid::Uuid::new_v4().as_bytes()[..bytes.min(16)].to_vec();
    }
    hex::encode(buffer)
}

/// A new trace root (`1-<seconds>-<24 hex>`).
pub fn trace_root() -> String {
    let seconds = time::OffsetDateTime::now_utc().unix_timestamp();
    format!("1-{seconds:08x}-{}", random_hex(12))
}

/// A new trace segment id (`Parent=`).
pub fn trace_parent() -> String {
    random_hex(8)
}

fn trace_id() -> String {
    let seconds = time::OffsetDateTime::now_utc().unix_timestamp();
    format!(
        "Root=1-{seconds:08x}-{};Parent={};Sampled=0",
        random_hex(12),
        random_hex(8)
    )
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Lambda's error body for platform-detected failures.
fn platform_error(error_type: &str, message: String) -> Bytes {
    Bytes::from(serde_json::json!({ "errorType": error_type, "errorMessage": message }).to_string())
}

/// The last [`LOG_TAIL_BYTES`] of `log`, cut at a character boundary.
fn tail(log: &str) -> String {
    let mut start = log.len().saturating_sub(LOG_TAIL_BYTES);
    while !log.is_char_boundary(start) {
        start += 1;
    }
    log[start..].to_owned()
}

/// `InvokeComplete`'s `(ErrorCode, ErrorDetails)` for an error body: its `errorType`
/// (`Unhandled` when it has none) and the body itself.
pub fn stream_error(body: &[u8]) -> (String, String) {
    let code = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("errorType")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "Unhandled".to_owned());
    (code, String::from_utf8_lossy(body).into_owned())
}

/// Where a streaming invocation's head goes once the runtime starts streaming.
type StreamHead = tokio::sync::oneshot::Sender<ResponseStream>;
/// Chunks buffered between the engine and a streaming caller.
const STREAM_EVENTS_BUFFERED: usize = 16;

/// What happened to one invocation inside an environment.
enum Finish {
    Result(InvocationResult),
    TimedOut,
    Crashed(String),
    /// The watchdog saw the environment use more than its memory (no cgroups).
    OverMemory,
}

/// Without cgroups, memory is kept by watching the process tree and killing it past the
/// limit; returns when the limit is exceeded. With cgroups the kernel does it: never returns.
async fn memory_watchdog(env: &Environment, limit_kib: u64) {
    if env.controls.has_cgroup() {
        return std::future::pending().await;
    }
    let mut ticker = tokio::time::interval(WATCHDOG_PERIOD);
    loop {
        ticker.tick().await;
        if env.controls.current_memory_kib() > limit_kib {
            return;
        }
    }
}

impl Engine {
    /// An engine running environments through `sandbox`, with runtimes from `registry`.
    pub fn new(
        config: EngineConfig,
        store: Arc<Store>,
        sandbox: Arc<dyn Sandbox>,
        registry: RuntimeRegistry,
    ) -> std::io::Result<Self> {
        let logs = Arc::new(LogStore::new(&config.logs_dir)?);
        let log_sink = config
            .log_sink
            .clone()
            .unwrap_or_else(|| Arc::clone(&logs) as Arc<dyn LogSink>);
        let capacity = Arc::clone(&config.capacity);
        let engine = Engine {
            inner: Arc::new(Inner {
                config,
                store,
                sandbox,
                registry,
                logs,
                log_sink,
                pools: Mutex::new(HashMap::new()),
                live: AtomicUsize::new(0),
                inits: tokio::sync::Semaphore::new(concurrent_inits()),
                closing: std::sync::atomic::AtomicBool::new(false),
                deletions: std::sync::atomic::AtomicU64::new(0),
                admission: Arc::default(),
                scaling: Mutex::default(),
                provisioner: tokio::sync::Notify::new(),
            }),
        };
        capacity.register(&engine.inner);
        Ok(engine)
    }

    /// Invocations in flight now, per function and for the account, and throttles so far
    /// by reason.
    pub fn concurrency(&self) -> ConcurrencySnapshot {
        lock(&self.inner.admission).snapshot()
    }

    /// Whether a function's version exists (read through the engine's configuration
    /// cache, so asking again is cheap).
    pub async fn exists(
        &self,
        function: &FunctionName,
        version: FunctionVersion,
    ) -> Result<(), EngineError> {
        self.config(&(function.clone(), version)).await.map(|_| ())
    }

    /// Sets (or clears) a function's reserved concurrency, which admission enforces.
    pub fn set_reserved_concurrency(&self, function: &FunctionName, reserved: Option<u32>) {
        lock(&self.inner.admission).set_reserved(function, reserved);
    }

    /// The function logs.
    pub fn logs(&self) -> &LogStore {
        &self.inner.logs
    }

    /// How many environments exist now.
    pub fn live_environments(&self) -> usize {
        self.inner.live.load(Ordering::Relaxed)
    }

    /// Shuts every idle environment down (server shutdown); busy ones are shut down when
    /// their invocation ends.
    pub async fn shutdown(&self) {
        self.inner.closing.store(true, Ordering::Relaxed);
        let all = self.take_all_idle();
        for env in &all {
            self.shut_down(env, Stop::Terminate(SHUTDOWN_GRACE));
        }
        for env in &all {
            // Extensions subscribed to SHUTDOWN have their grace before the runtime's.
            let _ = tokio::time::timeout(
                Duration::from_secs(2) + extensions::SHUTDOWN_EXTENSIONS_GRACE,
                env.exited(),
            )
            .await;
        }
        let sandbox = Arc::clone(&self.inner.sandbox);
        let _ = tokio::task::spawn_blocking(move || sandbox.close()).await;
    }

    /// Runs one synchronous invocation. It runs to completion in its own task even if the
    /// caller goes away, so its environment is always released or shut down.
    pub async fn invoke(&self, request: InvokeRequest) -> Result<InvokeOutcome, EngineError> {
        let engine = self.clone();
        tokio::spawn(async move { engine.invoke_inner(request, None).await })
            .await
            .map_err(|e| EngineError::Internal(format!("invocation task failed: {e}")))?
    }

    /// Runs one invocation whose response may stream (`InvokeWithResponseStream`,
    /// function URLs in `RESPONSE_STREAM` mode): returns as soon as the runtime starts
    /// streaming, with the rest arriving on the stream; a function that answers at once
    /// (or fails first) gives its buffered outcome. The invocation runs to its end either
    /// way, also when the caller stops reading.
    pub async fn invoke_streaming(&self, request: InvokeRequest) -> Result<Invoked, EngineError> {
        let (head_tx, head_rx) = tokio::sync::oneshot::channel();
        let engine = self.clone();
        let task = tokio::spawn(async move { engine.invoke_inner(request, Some(head_tx)).await });
        match head_rx.await {
            Ok(stream) => Ok(Invoked::Streaming(stream)),
            // The head's sender went unused: the invocation ended without streaming.
            Err(_) => task
                .await
                .map_err(|e| EngineError::Internal(format!("invocation task failed: {e}")))?
                .map(Invoked::Buffered),
        }
    }

    async fn invoke_inner(
        &self,
        request: InvokeRequest,
        stream_to: Option<StreamHead>,
    ) -> Result<InvokeOutcome, EngineError> {
        let function = request.function.clone();
        let invoked_arn = request.invoked_arn.clone();
        let result = self.admitted_invoke(request, stream_to).await;
        if let Err(error @ (EngineError::Throttled(_) | EngineError::TooManyEnvironments)) = &result
        {
            if let EngineError::Throttled(reason) = error {
                lock(&self.inner.admission).throttled(&function, reason);
            }
            self.observe_throttled(function.as_str(), &invoked_arn);
        }
        result
    }

    async fn admitted_invoke(
        &self,
        request: InvokeRequest,
        stream_to: Option<StreamHead>,
    ) -> Result<InvokeOutcome, EngineError> {
        // Held until the invocation ends: reserved and account concurrency.
        let admitted = admission::admit(
            &self.inner.admission,
            &request.function,
            self.inner.config.concurrency_limit,
        )?;
        let key = (request.function.clone(), request.version);
        let (mut config, mut generation) = self.config(&key).await?;
        match config.state {
            FunctionState::Active => {}
            other => return Err(EngineError::NotReady(other.as_str())),
        }
        let request_id = request
            .request_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        // SnapStart: a cold start restores an environment initialised ahead (its memory
        // is already held; no INIT slot is needed).
        let snapshot = if config.snap_start_on() {
            match self.take_idle(&config, generation) {
                Some(env) => Some(Ok(env)),
                None => match self.take_snapshot(&config, generation) {
                    Some(env) => {
                        let runtime = env.runtime.clone();
                        match self.restore(&config, env, &runtime).await {
                            snapstart::Restored::Ready(env) => Some(Ok(env)),
                            snapstart::Restored::Failed(failure) => {
                                Some(Err(self.init_failed(&config, &request_id, failure).await))
                            }
                            // Not the function's fault: an ordinary cold start instead
                            // (whose own restore is not retried).
                            snapstart::Restored::Lost(_) => {
                                tracing::debug!(function = %config.name, "snapshot restore lost; cold start instead");
                                None
                            }
                        }
                    }
                    None => None,
                },
            }
        } else {
            None
        };
        let snapshot = match snapshot {
            Some(Ok(env)) => Some(env),
            Some(Err(outcome)) => return Ok(outcome),
            None => None,
        };
        let env = match snapshot {
            Some(env) => env,
            None => match self.acquire(&config, generation).await? {
                Slot::Warm(env) => env,
                Slot::Cold(_init, lease) => {
                    let started = match self.cold_start(&config, generation, lease).await {
                        // The function changed under this invoke (its old code may be gone
                        // already): start again from the current configuration, once.
                        // (An unpack failure too: the package may have gone with the change.)
                        Err(EngineError::Internal(cause) | EngineError::InvalidZipFile(cause))
                            if self.changed_since(&config).await =>
                        {
                            tracing::debug!(function = %config.name, %cause, "function changed during a cold start; retrying");
                            self.retire(&key, |k| k == &key);
                            (config, generation) = self.config(&key).await?;
                            let lease = self
                                .inner
                                .config
                                .capacity
                                .take_or_evict(u64::from(config.memory_mb), Some((self, &key)))
                                .ok_or(EngineError::Throttled("HostCapacityExceeded"))?;
                            self.cold_start(&config, generation, lease).await?
                        }
                        other => other?,
                    };
                    match started {
                        // A SnapStart version's cold start without a ready snapshot: INIT, the
                        // snapshot point, then the restore, in this invocation.
                        Ok(env) if config.snap_start_on() => {
                            match self.restored(&config, env, &request_id).await? {
                                Ok(env) => env,
                                Err(outcome) => return Ok(outcome),
                            }
                        }
                        Ok(env) => env,
                        Err(failure) => {
                            return Ok(self.init_failed(&config, &request_id, failure).await)
                        }
                    }
                }
            },
        };
        Ok(self
            .run(&config, env, request, request_id, stream_to, admitted)
            .await)
    }

    /// A SnapStart environment restored for `request_id`'s invocation; a failed restore is
    /// the invocation's outcome.
    async fn restored(
        &self,
        config: &FunctionConfig,
        env: Arc<Environment>,
        request_id: &str,
    ) -> Result<Result<Arc<Environment>, InvokeOutcome>, EngineError> {
        let runtime = env.runtime.clone();
        Ok(match self.restore(config, env, &runtime).await {
            snapstart::Restored::Ready(env) => Ok(env),
            snapstart::Restored::Failed(failure) | snapstart::Restored::Lost(failure) => {
                Err(self.init_failed(config, request_id, failure).await)
            }
        })
    }

    /// Carries a streamed response to its caller (or, for a caller that did not ask for a
    /// stream, collects it up to the buffered limit) until it ends, racing the same
    /// timeout, exit and memory limit as a buffered answer. Returns how it ended, and the
    /// caller's stream to complete once the log is written.
    async fn pump(
        &self,
        config: &FunctionConfig,
        env: &Environment,
        streamed: gust_runtime::StreamedResponse,
        deadline: Instant,
        request_id: &str,
        stream_to: Option<StreamHead>,
    ) -> (Finish, Option<tokio::sync::mpsc::Sender<StreamEvent>>) {
        use gust_runtime::{StreamFailure, StreamPart};
        let mut parts = streamed.parts;
        let events = stream_to.and_then(|head| {
            let (tx, rx) = tokio::sync::mpsc::channel(STREAM_EVENTS_BUFFERED);
            head.send(ResponseStream {
                content_type: streamed.content_type.clone(),
                executed_version: config.version.to_string(),
                request_id: request_id.to_owned(),
                events: rx,
            })
            .ok()
            .map(|()| tx)
        });
        let mut collected = bytes::BytesMut::new();
        let mut over_limit = false;
        // One of each for the whole stream: the watchdog's ticks and the exit are not
        // restarted per chunk, and a chunk waiting on a slow caller still sees them.
        let exited = env.exited();
        let watchdog = memory_watchdog(env, u64::from(config.memory_mb) * 1024);
        let expired = tokio::time::sleep_until(deadline.into());
        tokio::pin!(exited, watchdog, expired);
        let ended = loop {
            let part = tokio::select! {
                biased;
                part = parts.recv() => part,
                exit = &mut exited => return (Finish::Crashed(exit), events),
                () = &mut expired => return (Finish::TimedOut, events),
                () = &mut watchdog => return (Finish::OverMemory, events),
            };
            match part {
                Some(StreamPart::Data(data)) => match &events {
                    // A caller that went away does not stop the function; one that stopped
                    // reading holds it up to its timeout, no longer.
                    Some(tx) => tokio::select! {
                        _ = tx.send(StreamEvent::Chunk(data)) => {}
                        exit = &mut exited => return (Finish::Crashed(exit), events),
                        () = &mut expired => return (Finish::TimedOut, events),
                        () = &mut watchdog => return (Finish::OverMemory, events),
                    },
                    None if collected.len() + data.len() > gust_runtime::MAX_RESPONSE_BYTES => {
                        over_limit = true;
                    }
                    None => collected.extend_from_slice(&data),
                },
                Some(StreamPart::End(end)) => break end,
                None => break Err(StreamFailure::Truncated),
            }
        };
        let finish = match ended {
            Ok(()) if over_limit => Finish::Result(InvocationResult::ResponseTooLarge),
            Ok(()) => Finish::Result(InvocationResult::Response(collected.freeze())),
            Err(StreamFailure::Function { error_type, body }) => {
                Finish::Result(InvocationResult::Error {
                    body,
                    error_type: Some(error_type),
                })
            }
            Err(StreamFailure::TooLarge) => Finish::Result(InvocationResult::ResponseTooLarge),
            Err(StreamFailure::Truncated) => Finish::Result(InvocationResult::Truncated),
        };
        (finish, events)
    }

    /// INVOKE in a ready environment.
    async fn run(
        &self,
        config: &FunctionConfig,
        env: Arc<Environment>,
        request: InvokeRequest,
        request_id: String,
        stream_to: Option<StreamHead>,
        admitted: admission::Admitted,
    ) -> InvokeOutcome {
        let timeout = Duration::from_secs(u64::from(config.timeout_s));
        let deadline_ms = u64::try_from(now_ms()).unwrap_or(0) + timeout.as_millis() as u64;
        env.collector
            .begin(platform::start(config, &request_id))
            .await;
        let started = Instant::now();
        let qualifier = observe::qualifier_of(&request.invoked_arn);
        let caller_parent = request.caller_parent.clone();
        let log_tail = request.log_tail;
        let invocation = Invocation {
            request_id: request_id.clone(),
            payload: request.payload,
            deadline_ms,
            invoked_function_arn: request.invoked_arn,
            trace_id: request.trace_id.unwrap_or_else(trace_id),
            client_context: request.client_context,
            cognito_identity: None,
        };
        extensions::start(&env, config, &request_id, &invocation.trace_id);
        let trace = invocation.trace_id.clone();
        let finish = match env.api.dispatch(invocation).await {
            // Nothing will answer: stop the runtime, then report how it ended (bounded, so the
            // caller always gets an answer).
            Err(_) => {
                self.shut_down(&env, Stop::Kill);
                Finish::Crashed(env.exited_within(Duration::from_secs(2)).await)
            }
            Ok(result) => tokio::select! {
                biased;
                result = result => match result {
                    Ok(result) => Finish::Result(result),
                    // The responder was dropped unanswered: the Runtime API is gone.
                    Err(_) => {
                        self.shut_down(&env, Stop::Kill);
                        Finish::Crashed(env.exited_within(Duration::from_secs(2)).await)
                    }
                },
                exit = env.exited() => Finish::Crashed(exit),
                () = tokio::time::sleep(timeout) => Finish::TimedOut,
                () = memory_watchdog(&env, u64::from(config.memory_mb) * 1024) => Finish::OverMemory,
            },
        };
        let (finish, events) = match finish {
            Finish::Result(InvocationResult::Streaming(streamed)) => {
                self.pump(
                    config,
                    &env,
                    streamed,
                    started + timeout,
                    &request_id,
                    stream_to,
                )
                .await
            }
            other => (other, None),
        };
        let duration = started.elapsed();
        let max_memory = env.max_memory_mb();
        let init = env.take_init_duration();
        let restore = env.take_restore_duration();
        let (body, function_error, healthy, mut lines, status) = match finish {
            Finish::Result(InvocationResult::Response(body)) => {
                (body, false, true, vec![], platform::Status::Success)
            }
            Finish::Result(InvocationResult::Error { body, .. }) => {
                (body, true, true, vec![], platform::Status::Success)
            }
            // `pump` turned every stream into one of the other results.
            Finish::Result(InvocationResult::Streaming(_)) => (
                platform_error("Runtime.Unknown", "unexpected stream".into()),
                true,
                true,
                vec![],
                platform::Status::Success,
            ),
            Finish::Result(InvocationResult::ResponseTooLarge) => (
                platform_error(
                    "Function.ResponseSizeTooLarge",
                    format!(
                        "Response payload size exceeded maximum allowed payload size ({} bytes).",
                        gust_runtime::MAX_RESPONSE_BYTES
                    ),
                ),
                true,
                true,
                vec![],
                platform::Status::Success,
            ),
            Finish::Result(
                result @ (InvocationResult::Truncated | InvocationResult::Abandoned),
            ) => {
                // The runtime broke off mid-invocation: the environment is not reused.
                self.shut_down(&env, Stop::Kill);
                env.exited_within(Duration::from_secs(2)).await;
                let (kind, reason) = if matches!(result, InvocationResult::Truncated) {
                    (
                        "Runtime.TruncatedResponse",
                        "the runtime's connection closed before its response was complete",
                    )
                } else {
                    (
                        "Runtime.Unknown",
                        "the runtime asked for the next invocation without answering this one",
                    )
                };
                let message = format!("RequestId: {request_id} Error: {reason}");
                (
                    platform_error(kind, message.clone()),
                    true,
                    false,
                    vec![format!("{message}\t{kind}")],
                    platform::Status::Error(Some(kind.to_owned())),
                )
            }
            Finish::TimedOut => {
                self.shut_down(&env, Stop::Kill);
                // Wait for it to be gone, so everything it wrote is in the log before END.
                env.exited_within(Duration::from_secs(2)).await;
                let seconds = format!("{:.2}", timeout.as_secs_f64());
                let stamp = time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                (
                    platform_error(
                        "Sandbox.Timedout",
                        format!(
                            "RequestId: {request_id} Error: Task timed out after {seconds} seconds"
                        ),
                    ),
                    true,
                    false,
                    vec![format!(
                        "{stamp} {request_id} Task timed out after {seconds} seconds"
                    )],
                    platform::Status::Timeout,
                )
            }
            Finish::OverMemory => {
                self.shut_down(&env, Stop::Kill);
                let message = format!(
                    "RequestId: {request_id} Error: Runtime exited with error: signal: killed"
                );
                (
                    platform_error("Runtime.OutOfMemory", message.clone()),
                    true,
                    false,
                    vec![format!("{message}\tRuntime.OutOfMemory")],
                    platform::Status::Error(Some("Runtime.OutOfMemory".to_owned())),
                )
            }
            Finish::Crashed(exit) => {
                // Read before the cgroup goes away with the environment.
                let kind = if env.out_of_memory() || env.controls.out_of_memory() {
                    "Runtime.OutOfMemory"
                } else {
                    "Runtime.ExitError"
                };
                self.shut_down(&env, Stop::Kill);
                let message = format!(
                    "RequestId: {request_id} Error: {}",
                    environment::exit_error(&exit)
                );
                (
                    platform_error(kind, message.clone()),
                    true,
                    false,
                    vec![format!("{message}\t{kind}")],
                    platform::Status::Error(Some(kind.to_owned())),
                )
            }
        };
        extensions::runtime_done(
            &env,
            &request_id,
            &status,
            function_error,
            duration,
            body.len(),
        );
        self.observe_invoked(
            config,
            observe::Ended {
                qualifier,
                duration,
                cold_start: init.or(restore),
                error: function_error,
                provisioned: env.provisioned.is_some(),
                request_id: request_id.clone(),
                trace: Some(trace),
                caller_parent,
            },
        );
        let log = if healthy && env.api.extensions().subscribed(false) {
            // The caller has its answer now; END, REPORT, the environment's release and the
            // concurrency it holds wait for the extensions to finish with the INVOKE event.
            let log = env.collector.end(lines).await;
            self.complete_after_extensions(
                config,
                env,
                request_id.clone(),
                (started, started + timeout),
                (init, restore),
                admitted,
            );
            log
        } else {
            let report = platform::Report {
                request_id: &request_id,
                duration,
                init,
                restore,
                max_memory_mb: max_memory,
                status,
            };
            extensions::report(&env, config.memory_mb, &report);
            lines.extend(platform::end(config, config.memory_mb, &report));
            // Queued before the release, so they precede the next START either way.
            let log = if log_tail {
                env.collector.end(lines).await
            } else {
                env.collector.end_unseen(lines);
                String::new()
            };
            if let Some(name) = healthy.then(|| env.extension_gone()).flatten() {
                // An extension exited (one not subscribed to INVOKE): Lambda resets the
                // environment.
                tracing::debug!(function = %config.name, extension = %name, "extension exited; environment retired");
                self.shut_down(&env, Stop::Terminate(SHUTDOWN_GRACE));
            } else if healthy {
                self.release(env);
            }
            drop(admitted);
            log
        };
        if let Some(events) = events {
            let error = function_error.then(|| stream_error(&body));
            // Delivered on its own: a caller slow to read it does not hold the invocation's
            // concurrency.
            let complete = StreamEvent::Complete {
                error,
                log_tail: tail(&log),
            };
            tokio::spawn(async move {
                let _ = events.send(complete).await;
            });
        }
        InvokeOutcome {
            body,
            function_error,
            log_tail: tail(&log),
            executed_version: config.version.to_string(),
            request_id,
        }
    }
}

impl Engine {
    /// The end of an invocation whose runtime has answered while extensions subscribed to
    /// INVOKE are still working on it: it is complete when each has called `next` again
    /// (bounded by the function's timeout, after which the environment is not reused). An
    /// external extension whose process exits ends it at once, as `Extension.Crash`, and
    /// the environment is not reused (Lambda resets it).
    fn complete_after_extensions(
        &self,
        config: &FunctionConfig,
        env: Arc<Environment>,
        request_id: String,
        (started, deadline): (Instant, Instant),
        (init, restore): (Option<Duration>, Option<Duration>),
        admitted: admission::Admitted,
    ) {
        let engine = self.clone();
        let config = config.clone();
        tokio::spawn(async move {
            let _admitted = admitted;
            let mut crashed = None;
            let done = tokio::select! {
                biased;
                () = env.api.extensions().wait_idle(false) => true,
                name = env.extension_exited() => {
                    crashed = Some(name);
                    false
                }
                _ = env.exited() => false,
                () = tokio::time::sleep_until(deadline.into()) => false,
            };
            // One that asked for its next event and then exited is as gone.
            let crashed = crashed.or_else(|| env.extension_gone());
            let mut lines = Vec::new();
            let status = match &crashed {
                Some(name) => {
                    lines = extensions::crashed(&env, &config, &request_id, name);
                    platform::Status::Error(Some("Extension.Crash".to_owned()))
                }
                None if done => platform::Status::Success,
                None => platform::Status::Timeout,
            };
            let report = platform::Report {
                request_id: &request_id,
                duration: started.elapsed(),
                init,
                restore,
                max_memory_mb: env.max_memory_mb(),
                status,
            };
            extensions::report(&env, config.memory_mb, &report);
            lines.extend(platform::end(&config, config.memory_mb, &report));
            env.collector.platform(lines);
            if crashed.is_some() {
                // Not reused; the other extensions get SHUTDOWN first.
                engine.shut_down(&env, Stop::Terminate(SHUTDOWN_GRACE));
            } else if done && !env.api.extensions().broken() {
                engine.release(env);
            } else {
                engine.shut_down(&env, Stop::Kill);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_4k_on_a_char_boundary() {
        let short = "START\nEND\n";
        assert_eq!(tail(short), short);
        let long = format!("{}{}", "é".repeat(3000), "end");
        let t = tail(&long);
        assert!(t.len() <= LOG_TAIL_BYTES && t.ends_with("end"));
    }

    #[test]
    fn stream_names_look_like_lambdas() {
        let name = crate::startup::log_stream_name(FunctionVersion::Latest);
        assert_eq!(name.len(), "2025/11/25/[$LATEST]".len() + 32, "{name}");
        assert!(name.contains("/[$LATEST]"));
        assert!(crate::startup::log_stream_name(FunctionVersion::Published(3)).contains("/[3]"));
        let trace = trace_id();
        assert!(
            trace.starts_with("Root=1-")
                && trace.contains(";Parent=")
                && trace.ends_with(";Sampled=0")
        );
    }
}
