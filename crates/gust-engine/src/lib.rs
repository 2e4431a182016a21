//! The invoke path: find or start an execution environment for a function, hand it the
//! event through the Runtime API, enforce the timeout, and record START/END/REPORT.
//!
//! Environments are pooled per function; an idle one of the current revision is reused
//! (most recently used first), otherwise a new one is cold-started, so concurrent invokes
//! never queue behind each other. A change to the function bumps the pool's generation:
//! idle environments of the old code are shut down at once and busy ones after their
//! current invoke. A reaper shuts down environments idle longer than the idle timeout.

mod collector;
mod environment;
pub mod logs;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gust_model::{FunctionConfig, FunctionName, FunctionState, FunctionVersion, LogFormat, Scope};
use gust_runtime::{InitOutcome, Invocation, InvocationResult, RuntimeApi, RuntimeRegistry, View};
use gust_sandbox::isolate::Bind;
use gust_sandbox::{Sandbox, SpawnSpec};
use gust_store::Store;

use crate::collector::{now_ms, Collector};
use crate::environment::{EnvState, Environment, Parts, Stop};
pub use crate::environment::{EnvState as EnvironmentState, InvalidTransition};
pub use crate::logs::{LogEvent, LogStore};

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
/// `X-Amz-Log-Result` carries at most this much of the end of the log.
pub const LOG_TAIL_BYTES: usize = 4096;

/// What the engine is configured with.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Region and account (for ARNs and `AWS_REGION`).
    pub scope: Scope,
    /// Environments idle this long are shut down.
    pub idle_timeout: Duration,
    /// At most this many environments at once (Lambda's account concurrency).
    pub max_environments: usize,
    /// Where logs are kept.
    pub logs_dir: PathBuf,
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
}

/// The result of a synchronous invocation.
#[derive(Debug, Clone)]
pub struct InvokeOutcome {
    /// The response or error JSON.
    pub body: Bytes,
    /// Whether `body` is a function error (`X-Amz-Function-Error: Unhandled`).
    pub function_error: bool,
    /// The end of this invocation's log (START … REPORT), at most [`LOG_TAIL_BYTES`].
    pub log_tail: String,
    /// `X-Amz-Executed-Version`.
    pub executed_version: String,
    /// The request id the runtime saw.
    pub request_id: String,
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
    /// The function's stored package could not be unpacked.
    #[error("Lambda could not unzip the deployment package: {0}")]
    InvalidZipFile(String),
    /// The server failed (store, sockets).
    #[error("{0}")]
    Internal(String),
}

/// Environments are pooled per function version: a published version's never change.
type PoolKey = (FunctionName, FunctionVersion);

#[derive(Debug, Default)]
struct Pool {
    generation: u64,
    config: Option<Arc<FunctionConfig>>,
    idle: Vec<Arc<Environment>>,
    /// Signalled when an environment enters `idle`: invokes waiting for one take it.
    released: Arc<tokio::sync::Notify>,
}

/// What an invoke got to run on.
enum Slot<'a> {
    /// An idle environment of the current revision.
    Warm(Arc<Environment>),
    /// The right to start one (INITs at once are bounded).
    Cold(tokio::sync::SemaphorePermit<'a>),
}

#[derive(Debug)]
struct Inner {
    config: EngineConfig,
    store: Arc<Store>,
    sandbox: Arc<dyn Sandbox>,
    registry: RuntimeRegistry,
    logs: Arc<LogStore>,
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

fn trace_id() -> String {
    let seconds = time::OffsetDateTime::now_utc().unix_timestamp();
    format!(
        "Root=1-{seconds:08x}-{};Parent={};Sampled=0",
        random_hex(12),
        random_hex(8)
    )
}

fn log_stream_name(version: FunctionVersion) -> String {
    let date = time::OffsetDateTime::now_utc().date();
    format!(
        "{:04}/{:02}/{:02}/[{version}]{}",
        date.year(),
        u8::from(date.month()),
        date.day(),
        random_hex(16)
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

/// An INIT that did not end with the runtime ready.
struct InitFailure {
    body: Bytes,
    environment: Option<Arc<Environment>>,
    collector: Option<Collector>,
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
        Ok(Engine {
            inner: Arc::new(Inner {
                config,
                store,
                sandbox,
                registry,
                logs,
                pools: Mutex::new(HashMap::new()),
                live: AtomicUsize::new(0),
                inits: tokio::sync::Semaphore::new(concurrent_inits()),
                closing: std::sync::atomic::AtomicBool::new(false),
                deletions: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }

    /// The function logs.
    pub fn logs(&self) -> &LogStore {
        &self.inner.logs
    }

    /// How many environments exist now.
    pub fn live_environments(&self) -> usize {
        self.inner.live.load(Ordering::Relaxed)
    }

    /// Idle environments of `function` (for tests and `gust doctor`).
    pub fn idle_environments(&self, function: &FunctionName) -> usize {
        lock(&self.inner.pools)
            .iter()
            .filter(|((name, _), _)| name == function)
            .map(|(_, pool)| pool.idle.len())
            .sum()
    }

    /// Starts the reaper that shuts down environments idle longer than the idle timeout.
    pub fn start_reaper(&self) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        let period = (self.inner.config.idle_timeout / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(5));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            loop {
                ticker.tick().await;
                engine.reap();
            }
        })
    }

    fn reap(&self) {
        let timeout = self.inner.config.idle_timeout;
        let mut expired = Vec::new();
        for pool in lock(&self.inner.pools).values_mut() {
            let (old, keep): (Vec<_>, Vec<_>) = pool
                .idle
                .drain(..)
                .partition(|env| env.idle_for() >= timeout);
            pool.idle = keep;
            expired.extend(old);
        }
        for env in expired {
            tracing::debug!(function = %env.function, stream = %env.stream, "idle timeout: shutting down environment");
            self.shut_down(&env, Stop::Terminate(SHUTDOWN_GRACE));
        }
    }

    /// Shuts down the environment idle longest; `false` if none is idle.
    fn evict_one_idle(&self) -> bool {
        let victim = {
            let mut pools = lock(&self.inner.pools);
            let oldest = pools
                .iter()
                .flat_map(|(name, pool)| {
                    pool.idle
                        .iter()
                        .enumerate()
                        .map(move |(i, env)| (name.clone(), i, env.idle_for()))
                })
                .max_by_key(|(_, _, idle)| *idle);
            oldest.and_then(|(name, index, _)| {
                pools.get_mut(&name).map(|pool| pool.idle.remove(index))
            })
        };
        match victim {
            Some(env) => {
                self.shut_down(&env, Stop::Kill);
                true
            }
            None => false,
        }
    }

    fn shut_down(&self, env: &Environment, how: Stop) {
        if env.stop(how) {
            self.inner.live.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// `$LATEST` changed: new invokes use new environments; idle ones on the old code
    /// are shut down now, busy ones when their invoke ends.
    pub fn function_changed(&self, function: &FunctionName) {
        let key = (function.clone(), FunctionVersion::Latest);
        self.retire(&key, |k| k == &key);
    }

    /// A published version is gone: its pool goes, and its environments with it.
    pub fn version_deleted(&self, function: &FunctionName, version: u64) {
        let key = (function.clone(), FunctionVersion::Published(version));
        self.remove_pools(|k| k == &key);
    }

    /// The function is gone, with all its versions: their pools go.
    pub fn function_deleted(&self, function: &FunctionName) {
        self.remove_pools(|(name, _)| name == function);
    }

    /// Removes the pools `which` selects (a function or version that is gone), shutting
    /// their idle environments down; busy ones find no pool when they finish and stop.
    fn remove_pools(&self, which: impl Fn(&PoolKey) -> bool) {
        let idle: Vec<Arc<Environment>> = {
            let mut pools = lock(&self.inner.pools);
            self.inner.deletions.fetch_add(1, Ordering::SeqCst);
            let keys: Vec<PoolKey> = pools.keys().filter(|k| which(k)).cloned().collect();
            keys.iter()
                .filter_map(|k| pools.remove(k))
                .flat_map(|pool| pool.idle)
                .collect()
        };
        for env in idle {
            self.shut_down(&env, Stop::Terminate(SHUTDOWN_GRACE));
        }
    }

    /// Bumps the generation of the pools `which` selects. `key`'s pool is made first if
    /// there is none, so a configuration read racing the change is not cached as current.
    fn retire(&self, key: &PoolKey, which: impl Fn(&PoolKey) -> bool) {
        let idle: Vec<Arc<Environment>> = {
            let mut pools = lock(&self.inner.pools);
            pools.entry(key.clone()).or_default();
            let mut idle = Vec::new();
            for (key, pool) in pools.iter_mut().filter(|(key, _)| which(key)) {
                tracing::trace!(function = %key.0, version = %key.1, "retiring environments");
                pool.generation += 1;
                pool.config = None;
                idle.append(&mut pool.idle);
            }
            idle
        };
        for env in idle {
            self.shut_down(&env, Stop::Terminate(SHUTDOWN_GRACE));
        }
    }

    /// Shuts every idle environment down (server shutdown); busy ones are shut down when
    /// their invocation ends.
    pub async fn shutdown(&self) {
        self.inner.closing.store(true, Ordering::Relaxed);
        let all: Vec<Arc<Environment>> = lock(&self.inner.pools)
            .values_mut()
            .flat_map(|p| std::mem::take(&mut p.idle))
            .collect();
        for env in &all {
            self.shut_down(env, Stop::Terminate(SHUTDOWN_GRACE));
        }
        for env in &all {
            let _ = tokio::time::timeout(Duration::from_secs(2), env.exited()).await;
        }
        let sandbox = Arc::clone(&self.inner.sandbox);
        let _ = tokio::task::spawn_blocking(move || sandbox.close()).await;
    }

    /// The current configuration of a function version (cached per generation).
    async fn config(&self, key: &PoolKey) -> Result<(Arc<FunctionConfig>, u64), EngineError> {
        let deletions = self.inner.deletions.load(Ordering::SeqCst);
        let generation = {
            let pools = lock(&self.inner.pools);
            match pools.get(key) {
                Some(Pool {
                    generation,
                    config: Some(config),
                    ..
                }) => return Ok((Arc::clone(config), *generation)),
                Some(pool) => pool.generation,
                None => 0,
            }
        };
        let Some(config) = self.load(key).await? else {
            return Err(EngineError::NotFound(key.0.clone()));
        };
        let config = Arc::new(config);
        let mut pools = lock(&self.inner.pools);
        let pool = pools.entry(key.clone()).or_default();
        // Only cache what is still current: a change since the read bumped the generation,
        // a deletion the counter (the pool read before may be gone, and this one new).
        if pool.generation == generation && self.inner.deletions.load(Ordering::SeqCst) == deletions
        {
            pool.config = Some(Arc::clone(&config));
        }
        Ok((config, generation))
    }

    /// The stored configuration of a function version.
    async fn load(&self, key: &PoolKey) -> Result<Option<FunctionConfig>, EngineError> {
        let store = Arc::clone(&self.inner.store);
        let (name, version) = key.clone();
        tokio::task::spawn_blocking(move || match version {
            FunctionVersion::Latest => store.get_function(&name).map(|f| f.map(|(c, _)| c)),
            FunctionVersion::Published(n) => store.get_version(&name, n),
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))?
        .map_err(|e| EngineError::Internal(e.to_string()))
    }

    /// Runs one synchronous invocation. It runs to completion in its own task even if the
    /// caller goes away, so its environment is always released or shut down.
    pub async fn invoke(&self, request: InvokeRequest) -> Result<InvokeOutcome, EngineError> {
        let engine = self.clone();
        tokio::spawn(async move { engine.invoke_inner(request).await })
            .await
            .map_err(|e| EngineError::Internal(format!("invocation task failed: {e}")))?
    }

    async fn invoke_inner(&self, request: InvokeRequest) -> Result<InvokeOutcome, EngineError> {
        let key = (request.function.clone(), request.version);
        let (mut config, mut generation) = self.config(&key).await?;
        match config.state {
            FunctionState::Active => {}
            other => return Err(EngineError::NotReady(other.as_str())),
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        let env = match self.acquire(&config, generation).await? {
            Slot::Warm(env) => env,
            Slot::Cold(_init) => {
                let started = match self.cold_start(&config, generation).await {
                    // The function changed under this invoke (its old code may be gone
                    // already): start again from the current configuration, once.
                    // (An unpack failure too: the package may have gone with the change.)
                    Err(EngineError::Internal(cause) | EngineError::InvalidZipFile(cause))
                        if self.changed_since(&config).await =>
                    {
                        tracing::debug!(function = %config.name, %cause, "function changed during a cold start; retrying");
                        self.retire(&key, |k| k == &key);
                        (config, generation) = self.config(&key).await?;
                        self.cold_start(&config, generation).await?
                    }
                    other => other?,
                };
                match started {
                    Ok(env) => env,
                    Err(failure) => {
                        return Ok(self.init_failed(&config, &request_id, failure).await)
                    }
                }
            }
        };
        Ok(self.run(&config, env, request, request_id).await)
    }

    /// An idle environment, or the right to start one. While INITs are at their bound the
    /// invoke waits, and takes an environment that frees up meanwhile (the wait counts
    /// toward neither its INIT nor its timeout); waiting past [`QUEUE_WAIT_MAX`] throttles.
    async fn acquire(
        &self,
        config: &FunctionConfig,
        generation: u64,
    ) -> Result<Slot<'_>, EngineError> {
        let released = Arc::clone(
            &lock(&self.inner.pools)
                .entry((config.name.clone(), config.version))
                .or_default()
                .released,
        );
        let deadline = tokio::time::Instant::now() + QUEUE_WAIT_MAX;
        loop {
            // Registered before looking, so a release in between is not missed.
            let notified = released.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(env) = self.take_idle(config, generation) {
                return Ok(Slot::Warm(env));
            }
            let permit = match self.inner.inits.try_acquire() {
                Ok(permit) => permit,
                Err(_) => tokio::select! {
                    () = &mut notified => continue,
                    permit = self.inner.inits.acquire() => {
                        permit.map_err(|e| EngineError::Internal(e.to_string()))?
                    }
                    () = tokio::time::sleep_until(deadline) => {
                        return Err(EngineError::TooManyEnvironments)
                    }
                },
            };
            // One may have freed up while this invoke waited for its turn.
            if let Some(env) = self.take_idle(config, generation) {
                return Ok(Slot::Warm(env));
            }
            return Ok(Slot::Cold(permit));
        }
    }

    /// Whether the stored configuration is newer than `config`.
    async fn changed_since(&self, config: &FunctionConfig) -> bool {
        let current = self.load(&(config.name.clone(), config.version)).await;
        !matches!(current, Ok(Some(stored)) if stored.revision_id == config.revision_id)
    }

    fn take_idle(&self, config: &FunctionConfig, generation: u64) -> Option<Arc<Environment>> {
        let mut stale = Vec::new();
        let found = {
            let mut pools = lock(&self.inner.pools);
            let pool = pools.get_mut(&(config.name.clone(), config.version))?;
            let mut found = None;
            while let Some(env) = pool.idle.pop() {
                // A runtime that died while idle (a crash after answering) is not reused.
                if env.generation == generation
                    && env.revision == config.revision_id
                    && !env.has_exited()
                    && env.transition(EnvState::Busy).is_ok()
                {
                    found = Some(env);
                    break;
                }
                stale.push(env);
            }
            found
        };
        for env in stale {
            self.shut_down(&env, Stop::Terminate(SHUTDOWN_GRACE));
        }
        if let Some(env) = &found {
            env.idle_ends();
        }
        found
    }

    fn release(&self, env: Arc<Environment>) {
        if self.inner.closing.load(Ordering::Relaxed) {
            self.shut_down(&env, Stop::Terminate(SHUTDOWN_GRACE));
            return;
        }

        let current = {
            let mut pools = lock(&self.inner.pools);
            match pools.get_mut(&(env.function.clone(), env.version)) {
                Some(pool)
                    if pool.generation == env.generation
                        && env.transition(EnvState::Idle).is_ok() =>
                {
                    env.touch();
                    let period = env.idle_begins();
                    pool.idle.push(Arc::clone(&env));
                    pool.released.notify_one();
                    // Frozen once it has stayed idle a moment: idle environments use no CPU
                    // and their threads do not run, while back-to-back invokes skip the
                    // freeze/thaw round trip.
                    let idle = Arc::clone(&env);
                    tokio::spawn(async move {
                        tokio::time::sleep(FREEZE_AFTER).await;
                        idle.freeze_if_idle(period);
                    });
                    true
                }
                _ => false,
            }
        };
        if !current {
            self.shut_down(&env, Stop::Terminate(SHUTDOWN_GRACE));
        }
    }

    fn environment_variables(
        &self,
        config: &FunctionConfig,
        api: &RuntimeApi,
        view: &View,
        stream: &str,
        launch: &gust_runtime::Launch,
    ) -> Vec<(String, String)> {
        let scope = &self.inner.config.scope;
        let runtime_dir = &view.runtime_dir;
        let code_dir = &view.task_root;
        let bin = launch
            .bin_dir
            .as_ref()
            .map(|d| format!("{}:", d.display()))
            .unwrap_or_default();
        let mut env: Vec<(String, String)> = vec![
            (
                "PATH".into(),
                format!(
                    "{bin}/usr/local/bin:/usr/bin/:/bin:{}/bin",
                    view.opt_dir.display()
                ),
            ),
            (
                "LD_LIBRARY_PATH".into(),
                format!(
                    "/var/lang/lib:/lib64:/usr/lib64:{rt}:{rt}/lib:{task}:{task}/lib:{opt}/lib",
                    rt = runtime_dir.display(),
                    task = code_dir.display(),
                    opt = view.opt_dir.display()
                ),
            ),
            ("LANG".into(), "en_US.UTF-8".into()),
            ("TZ".into(), ":UTC".into()),
            ("AWS_XRAY_CONTEXT_MISSING".into(), "LOG_ERROR".into()),
        ];
        if config.log_format == LogFormat::Json {
            env.push(("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()));
        }
        env.extend(launch.env.iter().cloned());
        // The function's own variables override the overridable ones above...
        if let Some(vars) = &config.environment {
            for (key, value) in vars {
                env.retain(|(k, _)| k != key);
                env.push((key.clone(), value.clone()));
            }
        }
        // ...and never the reserved ones below (validation refuses them anyway).
        env.extend([
            ("AWS_LAMBDA_RUNTIME_API".into(), api.address().to_string()),
            ("_HANDLER".into(), config.handler.clone()),
            ("LAMBDA_TASK_ROOT".into(), code_dir.display().to_string()),
            (
                "LAMBDA_RUNTIME_DIR".into(),
                runtime_dir.display().to_string(),
            ),
            ("AWS_LAMBDA_FUNCTION_NAME".into(), config.name.to_string()),
            (
                "AWS_LAMBDA_FUNCTION_VERSION".into(),
                config.version.to_string(),
            ),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
                config.memory_mb.to_string(),
            ),
            ("AWS_LAMBDA_LOG_GROUP_NAME".into(), config.log_group.clone()),
            ("AWS_LAMBDA_LOG_STREAM_NAME".into(), stream.to_owned()),
            ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "on-demand".into()),
            ("AWS_REGION".into(), scope.region.clone()),
            ("AWS_DEFAULT_REGION".into(), scope.region.clone()),
        ]);
        env
    }

    /// INIT: unpack the code, start the Runtime API and the runtime, and wait for its first
    /// `next`. `Ok(Err(_))` is a function-level init failure.
    async fn cold_start(
        &self,
        config: &FunctionConfig,
        generation: u64,
    ) -> Result<Result<Arc<Environment>, InitFailure>, EngineError> {
        let live = self.inner.live.fetch_add(1, Ordering::Relaxed);
        // At the limit, an idle environment (of any function) makes room before the invoke
        // is refused: only running invocations count against the account's concurrency.
        if live >= self.inner.config.max_environments && !self.evict_one_idle() {
            self.inner.live.fetch_sub(1, Ordering::Relaxed);
            return Err(EngineError::TooManyEnvironments);
        }
        let result = self.start_environment(config, generation).await;
        match &result {
            Ok(Ok(_)) => {}
            // A failed INIT leaves no environment behind.
            _ => {
                self.inner.live.fetch_sub(1, Ordering::Relaxed);
            }
        }
        result
    }

    async fn start_environment(
        &self,
        config: &FunctionConfig,
        generation: u64,
    ) -> Result<Result<Arc<Environment>, InitFailure>, EngineError> {
        let started = Instant::now();
        let store = Arc::clone(&self.inner.store);
        let digest = config.code.digest;
        let layers: Vec<gust_model::CodeDigest> =
            config.layers.iter().map(|l| l.code.digest).collect();
        let (code_dir, opt_dir) = tokio::task::spawn_blocking(move || {
            let code = store.unpacked_code(&digest)?;
            let opt = if layers.is_empty() {
                None
            } else {
                Some(store.unpacked_layers(&layers)?)
            };
            Ok::<_, gust_store::StoreError>((code, opt))
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))?
        .map_err(|e| match e {
            gust_store::StoreError::Unpack(package) => {
                EngineError::InvalidZipFile(package.to_string())
            }
            other => EngineError::Internal(other.to_string()),
        })?;
        let stream = log_stream_name(config.version);
        let (reader, writer) =
            std::io::pipe().map_err(|e| EngineError::Internal(format!("pipe: {e}")))?;
        let collector = Collector::start(
            reader.into(),
            config.name.to_string(),
            stream.clone(),
            Arc::clone(&self.inner.logs),
        )
        .map_err(|e| EngineError::Internal(format!("log collector: {e}")))?;

        let view = if self.inner.sandbox.isolated() {
            View::lambda()
        } else {
            // Without isolation nothing is mounted at /opt: the runtime is pointed at the
            // layers' tree where it is.
            View {
                task_root: code_dir.clone(),
                runtime_dir: self.inner.registry.runtime_dir().to_owned(),
                opt_dir: opt_dir.clone().unwrap_or_else(|| "/opt".into()),
            }
        };
        let launch = match self
            .inner
            .registry
            .launch(&config.runtime, &code_dir, &view)
        {
            Ok(launch) => launch,
            Err(error) => {
                let message = format!("Error: {error}");
                collector
                    .begin(vec![
                        format!("{message}\n{}", error.error_type()).replace('\n', "\t")
                    ])
                    .await;
                return Ok(Err(InitFailure {
                    body: platform_error(error.error_type(), message),
                    environment: None,
                    collector: Some(collector),
                }));
            }
        };
        // The cold start's log is part of its first invocation's log tail.
        collector
            .begin(vec![format!(
                "INIT_START Runtime Version: {}",
                launch.description
            )])
            .await;
        // Without a network of its own, the environment's Runtime API listens inside the
        // environment's network namespace (made on a thread of its own).
        let sandbox = Arc::clone(&self.inner.sandbox);
        let network = tokio::task::spawn_blocking(move || sandbox.private_network())
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?
            .map_err(|e| EngineError::Internal(format!("environment network: {e}")))?;
        let (api, init, netns) = match network {
            Some(network) => {
                let (api, init) = RuntimeApi::from_listener(network.listener)
                    .map_err(|e| EngineError::Internal(format!("runtime API listener: {e}")))?;
                (api, init, Some(network.namespace))
            }
            None => {
                let (api, init) = RuntimeApi::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
                    .await
                    .map_err(|e| EngineError::Internal(format!("runtime API listener: {e}")))?;
                (api, init, None)
            }
        };
        let mut binds = vec![
            Bind {
                source: code_dir.clone(),
                target: view.task_root.clone(),
            },
            Bind {
                source: self.inner.registry.runtime_dir().to_owned(),
                target: view.runtime_dir.clone(),
            },
        ];
        if let Some(opt) = &opt_dir {
            binds.push(Bind {
                source: opt.clone(),
                target: view.opt_dir.clone(),
            });
        }
        if let Some(home) = &launch.interpreter_home {
            if !gust_sandbox::isolate::visible_by_default(home) {
                binds.push(Bind {
                    source: home.clone(),
                    target: home.clone(),
                });
            }
        }
        let spec = SpawnSpec {
            program: launch.program.clone(),
            args: launch.args.clone(),
            env: self.environment_variables(config, &api, &view, &stream, &launch),
            cwd: view.task_root.clone(),
            output: writer.into(),
            id: random_hex(8),
            memory_mb: config.memory_mb,
            tmp_mb: config.ephemeral_mb,
            binds,
            netns,
        };
        let sandbox = Arc::clone(&self.inner.sandbox);
        let spawned = tokio::task::spawn_blocking(move || sandbox.spawn(spec))
            .await
            .map_err(|e| EngineError::Internal(format!("spawn task failed: {e}")))?;
        let process = match spawned {
            Ok(process) => process,
            Err(error) => {
                let message = format!("Error: {error}");
                collector.begin(vec![message.clone()]).await;
                return Ok(Err(InitFailure {
                    body: platform_error("Runtime.InvalidEntrypoint", message),
                    environment: None,
                    collector: Some(collector),
                }));
            }
        };
        let controls = process.controls(self.inner.sandbox.cpu_quota(config.memory_mb));
        // Only the environment's own processes may use its Runtime API (on the host's
        // network, other environments share its loopback).
        let owner = controls.clone();
        api.admit(Arc::new(move |local, peer| {
            owner.owns_connection(local, peer)
        }));
        let env = Arc::new(Environment::new(Parts {
            function: config.name.clone(),
            version: config.version,
            revision: config.revision_id.clone(),
            generation,
            stream,
            api,
            collector,
            process,
            controls,
        }));
        let init_timeout = INIT_TIMEOUT_MIN.max(Duration::from_secs(u64::from(config.timeout_s)));
        let outcome = tokio::select! {
            biased;
            outcome = init => outcome.ok(),
            _ = env.exited() => None,
            () = tokio::time::sleep(init_timeout) => {
                env.collector.platform(vec![format!("INIT timed out after {:.2} seconds", init_timeout.as_secs_f64())]);
                Some(InitOutcome::Failed {
                    body: platform_error("Sandbox.Timedout", format!("Error: INIT timed out after {:.2} seconds", init_timeout.as_secs_f64())),
                    error_type: Some("Sandbox.Timedout".into()),
                })
            }
        };
        let init_duration = started.elapsed();
        match outcome {
            Some(InitOutcome::Ready) => {
                env.set_init_duration(init_duration);
                // INIT ran unthrottled; invocations get the function's CPU share.
                env.controls.limit_cpu();
                env.transition(EnvState::Busy)
                    .map_err(|e| EngineError::Internal(e.to_string()))?;
                Ok(Ok(env))
            }
            Some(InitOutcome::Failed { body, error_type }) => {
                let kind = error_type.unwrap_or_else(|| "Runtime.Unknown".into());
                env.collector.platform(vec![format!(
                    "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: error\tError Type: {kind}",
                    ms(init_duration)
                )]);
                let _ = env.stop(Stop::Kill);
                Ok(Err(InitFailure {
                    body,
                    environment: Some(env),
                    collector: None,
                }))
            }
            None => {
                let exit = env.exited().await;
                let message = format!("Error: Runtime exited with error: {exit}");
                env.collector.platform(vec![
                    format!(
                        "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: error\tError Type: Runtime.ExitError",
                        ms(init_duration)
                    ),
                ]);
                let _ = env.stop(Stop::Kill);
                Ok(Err(InitFailure {
                    body: platform_error("Runtime.ExitError", message),
                    environment: Some(env),
                    collector: None,
                }))
            }
        }
    }

    /// An invocation whose environment failed INIT: START/END/REPORT around the failure.
    async fn init_failed(
        &self,
        config: &FunctionConfig,
        request_id: &str,
        failure: InitFailure,
    ) -> InvokeOutcome {
        let collector = failure
            .collector
            .as_ref()
            .or_else(|| failure.environment.as_ref().map(|e| &e.collector));
        let log = match collector {
            Some(collector) => {
                collector
                    .begin(vec![format!(
                        "START RequestId: {request_id} Version: {}",
                        config.version
                    )])
                    .await;
                collector
                    .end(vec![
                        format!("END RequestId: {request_id}"),
                        format!(
                            "REPORT RequestId: {request_id}\tDuration: 0.00 ms\tBilled Duration: 0 ms\tMemory Size: {} MB\tMax Memory Used: 0 MB\tStatus: error\t",
                            config.memory_mb
                        ),
                    ])
                    .await
            }
            None => String::new(),
        };
        InvokeOutcome {
            body: failure.body,
            function_error: true,
            log_tail: tail(&log),
            executed_version: config.version.to_string(),
            request_id: request_id.to_owned(),
        }
    }

    /// INVOKE in a ready environment.
    async fn run(
        &self,
        config: &FunctionConfig,
        env: Arc<Environment>,
        request: InvokeRequest,
        request_id: String,
    ) -> InvokeOutcome {
        let timeout = Duration::from_secs(u64::from(config.timeout_s));
        let deadline_ms = u64::try_from(now_ms()).unwrap_or(0) + timeout.as_millis() as u64;
        env.collector
            .begin(vec![format!(
                "START RequestId: {request_id} Version: {}",
                config.version
            )])
            .await;
        let started = Instant::now();
        let invocation = Invocation {
            request_id: request_id.clone(),
            payload: request.payload,
            deadline_ms,
            invoked_function_arn: request.invoked_arn,
            trace_id: trace_id(),
            client_context: request.client_context,
            cognito_identity: None,
        };
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
        let duration = started.elapsed();
        let max_memory = env.max_memory_mb();
        let init = env.take_init_duration();
        let (body, function_error, healthy, mut lines, status) = match finish {
            Finish::Result(InvocationResult::Response(body)) => (body, false, true, vec![], None),
            Finish::Result(InvocationResult::Error { body, .. }) => {
                (body, true, true, vec![], None)
            }
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
                None,
            ),
            Finish::Result(
                result @ (InvocationResult::Truncated | InvocationResult::Abandoned),
            ) => {
                // The runtime broke off mid-invocation: the environment is not reused.
                self.shut_down(&env, Stop::Kill);
                env.exited_within(Duration::from_secs(2)).await;
                let (kind, reason) = if result == InvocationResult::Truncated {
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
                    Some(format!("Status: error\tError Type: {kind}")),
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
                    Some("Status: timeout".to_owned()),
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
                    Some("Status: error\tError Type: Runtime.OutOfMemory".to_owned()),
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
                let message =
                    format!("RequestId: {request_id} Error: Runtime exited with error: {exit}");
                (
                    platform_error(kind, message.clone()),
                    true,
                    false,
                    vec![format!("{message}\t{kind}")],
                    Some(format!("Status: error\tError Type: {kind}")),
                )
            }
        };
        let init_ms = init.map_or(0.0, ms);
        let billed = (ms(duration) + init_ms).ceil() as u64;
        let mut report = format!(
            "REPORT RequestId: {request_id}\tDuration: {:.2} ms\tBilled Duration: {billed} ms\tMemory Size: {} MB\tMax Memory Used: {max_memory} MB\t",
            ms(duration),
            config.memory_mb
        );
        if let Some(init) = init {
            report.push_str(&format!("Init Duration: {:.2} ms\t", ms(init)));
        }
        if let Some(status) = status {
            report.push_str(&status);
            report.push('\t');
        }
        lines.push(format!("END RequestId: {request_id}"));
        lines.push(report);
        let log = env.collector.end(lines).await;
        if healthy {
            self.release(env);
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
        let name = log_stream_name(FunctionVersion::Latest);
        assert_eq!(name.len(), "2025/11/25/[$LATEST]".len() + 32, "{name}");
        assert!(name.contains("/[$LATEST]"));
        assert!(log_stream_name(FunctionVersion::Published(3)).contains("/[3]"));
        let trace = trace_id();
        assert!(
            trace.starts_with("Root=1-")
                && trace.contains(";Parent=")
                && trace.ends_with(";Sampled=0")
        );
    }
}
