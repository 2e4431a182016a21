//! `gust serve`: parse the configuration once, wire the crates, listen, and shut down
//! gracefully on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use gust_api::{ApiConfig, Auth, Credentials};
use gust_control::ControlPlane;
use gust_model::{Scope, SystemClock};
use gust_store::Store;

use crate::datadir::{self, CredentialSource, ServerInfo};

/// Options of `gust serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9070")]
    listen: SocketAddr,
    /// Where functions, code and credentials are kept.
    #[arg(long, env = "GUST_DATA_DIR", default_value = ".gust-data")]
    data_dir: PathBuf,
    /// Region in ARNs and the one clients should sign for.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Account id in ARNs.
    #[arg(long, default_value = "000000000000")]
    account_id: String,
    /// Turn off request authentication (local experiments only: anyone who can reach the
    /// port can then run code on this host).
    #[arg(long)]
    no_auth: bool,
    /// Access key id clients sign with (with GUST_SECRET_ACCESS_KEY; default: generated
    /// on first start and stored in the data directory).
    #[arg(long, env = "GUST_ACCESS_KEY_ID", hide_env_values = true)]
    access_key_id: Option<String>,
    /// Secret access key (with GUST_ACCESS_KEY_ID).
    #[arg(long, env = "GUST_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: Option<String>,
    /// Shut down execution environments idle this long (e.g. 30s, 5m, 15m).
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    idle_timeout: Duration,
    /// Do not use cgroups even where the host has them (memory is then kept by a watchdog,
    /// and CPU, process limits and freezing are off).
    #[arg(long)]
    no_cgroups: bool,
    /// Do not limit CPU in proportion to memory (for development machines).
    #[arg(long)]
    no_cpu_quota: bool,
    /// Run environments without namespaces, as the server's user on the host's filesystem
    /// (for debugging a runtime; isolation is on by default where the host allows it).
    #[arg(long)]
    no_isolation: bool,
    /// Environments' network: `host` (outbound connections, as Lambda outside a VPC) or
    /// `none` (loopback only, in a network namespace per environment).
    #[arg(long, default_value = "host", value_parser = parse_network)]
    sandbox_network: gust_sandbox::isolate::NetworkMode,
    /// Primed environments (isolated, host network): runtime identifiers to prime at start,
    /// e.g. `python3.11,nodejs20.x` (any other Python or Node.js runtime is primed after its
    /// first cold start), or `off` to start every environment afresh.
    #[arg(long, default_value = "", value_parser = parse_prestart)]
    prestart: Prestart,
    /// Most primed environments kept per runtime (their number follows the recent cold-start
    /// rate between one and this).
    #[arg(long, default_value_t = 8)]
    prestart_max: usize,
    /// Python spares' runtimes forked from a zygote per runtime (a loaded interpreter)
    /// instead of each starting its own interpreter: `on` (as root) or `off`.
    #[arg(long, default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    zygotes: bool,
    /// Each account's concurrency limit: invocations in flight at once, as Lambda's
    /// account quota (reserved and provisioned concurrency come out of it).
    #[arg(long, default_value_t = gust_model::limits::ACCOUNT_CONCURRENT_EXECUTIONS)]
    concurrency_limit: u32,
    /// Memory execution environments may hold in all (the sum of their `MemorySize`),
    /// e.g. 16G or 4096M; at the budget idle environments are evicted and then invokes
    /// throttled. Default: the host's memory (or the server's cgroup limit) less a fifth,
    /// at least 1 GiB of it.
    #[arg(long, value_parser = parse_memory)]
    memory_budget: Option<u64>,
    /// How fast one function may add environments (Lambda: 1000 every 10 seconds).
    #[arg(long, default_value = "1000/10s")]
    scaling_rate: gust_engine::ScalingRate,
    /// Replaced by --memory-budget and --concurrency-limit.
    #[arg(long, hide = true)]
    max_environments: Option<String>,
    /// Most client connections open at once; at the limit the one idle longest is closed
    /// to make room for a new one.
    #[arg(long, default_value_t = 4096)]
    max_connections: usize,
    /// A connection must send a complete request head within this long of opening or of
    /// its previous response (slow headers and idle keep-alive connections are closed).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    header_timeout: Duration,
    /// A request body that sends nothing for this long is abandoned (408).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    body_timeout: Duration,
    /// More accounts: a JSON file listing `{"account_id", "access_key_id",
    /// "secret_access_key"}` objects. Each account has its own functions and layers (under
    /// `<data-dir>/accounts/<id>`); the server's own key stays the default account.
    #[arg(long)]
    accounts: Option<PathBuf>,
    /// URL prefixes SNS `http`/`https` subscriptions may deliver to (repeatable; none by
    /// default, so topics reach nothing outside this server unless allowed).
    #[arg(long = "sns-http-allow")]
    sns_http_allow: Vec<String>,
    /// One second of SNS's delivery retry schedule; shorten it for development and tests.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    sns_retry_base: Duration,
    /// The delay before an asynchronous event's first retry (the second waits twice as
    /// long), as Lambda's minute; shorten it for development and tests.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    async_retry_base: Duration,
    /// Application Auto Scaling's metric period: target tracking samples utilisation this
    /// often (AWS: one minute); shorten it for development and tests.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    autoscaling_period: Duration,
    /// The first retry delay of EventBridge's and Scheduler's deliveries (later ones
    /// double); shorten it for development and tests.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    events_retry_base: Duration,
    /// The domain of host-based function URLs and HTTP API endpoints
    /// (`<id>.lambda-url.<region>.<domain>`), e.g. `example.com` or
    /// `http://gust.test:9070`, for a wildcard DNS name and a reverse proxy in front.
    /// Without it URLs are path-based on the server's own address, which works with no DNS
    /// set-up; both forms are always served.
    #[arg(long, value_parser = gust_api::front::UrlDomain::parse)]
    url_domain: Option<gust_api::front::UrlDomain>,
    /// Run a runtime id on this interpreter (repeatable), e.g.
    /// `--runtime python3.12=/opt/python/3.12/bin/python3.12`; it must be of the version the
    /// id names. Other ids are found on PATH and in pyenv, uv, mise, asdf and nvm installs
    /// (`gust runtimes` lists them).
    #[arg(long = "runtime", value_name = "ID=PATH", value_parser = crate::cli::runtimes::parse_runtime_flag)]
    runtime: Vec<(String, PathBuf)>,
    /// Where Gust-installed Node.js releases and the AWS SDKs are (`gust runtimes install`);
    /// default `<data-dir>/runtimes`. Servers may share one.
    #[arg(long, env = "GUST_RUNTIMES_DIR", value_name = "DIR")]
    runtimes_dir: Option<PathBuf>,
    /// Who may read the Prometheus metrics at `/metrics`: anyone who reaches the listener
    /// (`open`), only with `Authorization: Bearer <--metrics-token>` (`token`), or nobody.
    /// Default: `open` on a loopback listener, `off` on any other (function names and
    /// counts are not for whoever reaches the port).
    #[arg(long, value_enum)]
    metrics_access: Option<MetricsAccess>,
    /// The bearer token `/metrics` requires with `--metrics-access token`.
    #[arg(long, env = "GUST_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// A JSON price table for usage and cost (`gust usage`); default: AWS's public prices.
    #[arg(long, value_name = "FILE")]
    prices: Option<PathBuf>,
    /// How long CloudWatch metrics are kept (`15d`, `36h`); older datapoints are removed.
    #[arg(long, default_value = "15d", value_parser = parse_duration)]
    metrics_retention: Duration,
    #[command(flatten)]
    otlp: gust_otel::OtlpArgs,
}

/// `--metrics-access`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum MetricsAccess {
    Off,
    Open,
    Token,
}

/// The Prometheus exporter's access setting; `token` needs a non-empty token.
fn metrics_access(args: &ServeArgs) -> Result<gust_metrics::prometheus::Access> {
    use gust_metrics::prometheus::Access;
    let default = if args.listen.ip().is_loopback() {
        MetricsAccess::Open
    } else {
        MetricsAccess::Off
    };
    Ok(match args.metrics_access.unwrap_or(default) {
        MetricsAccess::Off => Access::Off,
        MetricsAccess::Open => Access::Open,
        MetricsAccess::Token => match args.metrics_token.as_deref().map(str::trim) {
            Some(token) if !token.is_empty() => Access::Token(token.to_owned()),
            _ => bail!("--metrics-access token needs --metrics-token (or GUST_METRICS_TOKEN)"),
        },
    })
}

/// One more account, as `--accounts` lists it.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountEntry {
    account_id: String,
    access_key_id: String,
    secret_access_key: String,
}

fn read_accounts(
    path: &std::path::Path,
    default: &Scope,
    default_key: &str,
) -> Result<Vec<AccountEntry>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the accounts file {}", path.display()))?;
    let entries: Vec<AccountEntry> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON list of accounts", path.display()))?;
    let mut ids = std::collections::HashSet::from([default.account_id.clone()]);
    let mut keys = std::collections::HashSet::from([default_key.to_owned()]);
    for entry in &entries {
        Scope::parse(&default.region, &entry.account_id)
            .map_err(|e| anyhow::anyhow!("account {:?}: {e}", entry.account_id))?;
        if !ids.insert(entry.account_id.clone()) {
            bail!(
                "account {} is listed twice (or is the server's own)",
                entry.account_id
            );
        }
        if !keys.insert(entry.access_key_id.clone()) {
            bail!(
                "access key {} is given to two accounts",
                entry.access_key_id
            );
        }
        if entry.secret_access_key.is_empty() {
            bail!(
                "account {} has an empty secret access key",
                entry.account_id
            );
        }
    }
    Ok(entries)
}

/// Every account's control plane, for the planes to reach each other's shared layers.
/// Filled once all planes exist; weak, so the planes and the directory do not keep each
/// other alive.
#[derive(Debug, Default)]
struct AccountDirectory {
    planes: std::sync::OnceLock<std::collections::HashMap<String, std::sync::Weak<ControlPlane>>>,
}

impl gust_control::Accounts for AccountDirectory {
    fn plane(&self, account: &str) -> Option<Arc<ControlPlane>> {
        self.planes.get()?.get(account)?.upgrade()
    }
}

/// An account's store, engine and control plane, its data under `dir`.
struct PlaneParts<'a> {
    dir: &'a std::path::Path,
    scope: Scope,
    sandbox: &'a Arc<dyn gust_sandbox::Sandbox>,
    registry: gust_runtime::RuntimeRegistry,
    clock: Arc<SystemClock>,
    directory: Arc<AccountDirectory>,
    access: Arc<crate::bridge::Shared>,
    /// Where its functions' output goes.
    log_sink: Arc<dyn gust_engine::LogSink>,
    /// Who watches its invocations.
    observer: Arc<dyn gust_model::observe::Observer>,
}

fn start_plane(
    parts: PlaneParts<'_>,
    args: &ServeArgs,
    capacity: &Arc<gust_engine::Capacity>,
) -> Result<gust_api::Plane> {
    let store = Arc::new(
        Store::open(parts.dir)
            .with_context(|| format!("cannot open the store in {}", parts.dir.display()))?,
    );
    let registry = parts.registry;
    let catalog = registry.catalog();
    let engine = gust_engine::Engine::new(
        gust_engine::EngineConfig {
            scope: parts.scope.clone(),
            idle_timeout: args.idle_timeout,
            concurrency_limit: args.concurrency_limit as usize,
            capacity: Arc::clone(capacity),
            scaling_rate: args.scaling_rate,
            logs_dir: parts.dir.join("logs"),
            log_sink: Some(Arc::clone(&parts.log_sink)),
            observer: Arc::clone(&parts.observer),
            services: Some(Arc::new(crate::bridge::FunctionAccess {
                shared: Arc::clone(&parts.access),
                account: parts.scope.account_id.clone(),
            })),
        },
        Arc::clone(&store),
        Arc::clone(parts.sandbox),
        registry,
    )
    .context("cannot start the engine")?;
    let control = Arc::new(
        ControlPlane::new(store, parts.scope.clone(), catalog, parts.clock)
            .with_observer(Arc::new(EngineObserver(engine.clone())))
            .with_accounts(parts.directory)
            .with_concurrency_limit(args.concurrency_limit),
    );
    // Reserved concurrency is enforced by the engine from the stored reservations.
    for (name, reserved) in control
        .reservations()
        .context("cannot read reserved concurrency")?
    {
        engine.set_reserved_concurrency(&name, Some(reserved));
    }
    // Provisioned environments are started again from the stored configurations.
    let provisioned: std::collections::BTreeSet<gust_model::FunctionName> = control
        .all_provisioned()
        .context("cannot read provisioned concurrency")?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    for name in provisioned {
        control
            .sync_provisioned(&name)
            .context("cannot read provisioned concurrency")?;
    }
    let recovered = control
        .recover()
        .context("cannot recover interrupted function updates")?;
    if recovered > 0 {
        tracing::warn!(
            recovered,
            account = %parts.scope.account_id,
            "finished function transitions a previous run left half done"
        );
    }
    Ok(gust_api::Plane { control, engine })
}

/// Parses `500ms`, `30s`, `5m`, `1h`, `15d` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30s, 5m or 15m"))?;
    let seconds_per = match unit {
        "ms" => None,
        "" | "s" => Some(1),
        "m" => Some(60),
        "h" => Some(3600),
        "d" => Some(86_400),
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use ms, s, m, h or d)"
            ))
        }
    };
    let duration = match seconds_per {
        None => Duration::from_millis(value),
        Some(per) => Duration::from_secs(
            value
                .checked_mul(per)
                .ok_or_else(|| format!("{text:?} is too long"))?,
        ),
    };
    if duration.is_zero() {
        return Err("the duration must be more than zero".into());
    }
    Ok(duration)
}

/// Parses `4096`, `4096M`, `16G` (MiB without a unit).
fn parse_memory(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 4096M or 16G"))?;
    let mb = match unit.to_ascii_uppercase().as_str() {
        "" | "M" | "MB" | "MIB" => value,
        "G" | "GB" | "GIB" => value
            .checked_mul(1024)
            .ok_or_else(|| format!("{text:?} is too large"))?,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use M or G)")),
    };
    if mb < gust_model::limits::MEMORY_MIN_MB as u64 {
        return Err(format!(
            "a budget of {mb} MiB cannot hold one environment ({} MiB at least)",
            gust_model::limits::MEMORY_MIN_MB
        ));
    }
    Ok(mb)
}

/// The host's memory (or the server's own cgroup limit, when lower) less a reserve of a
/// fifth, at least 1 GiB, for the server and everything else.
fn default_memory_budget_mb() -> Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").context("/proc/meminfo")?;
    let total_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no MemTotal in /proc/meminfo")?;
    let mut total_mb = total_kib / 1024;
    // A server confined to a cgroup (a container) has that much at most.
    if let Ok(limit) = std::fs::read_to_string("/sys/fs/cgroup/memory.max") {
        if let Ok(bytes) = limit.trim().parse::<u64>() {
            total_mb = total_mb.min(bytes / (1024 * 1024));
        }
    }
    let reserve = (total_mb / 5).max(1024);
    Ok(total_mb
        .saturating_sub(reserve)
        .max(gust_model::limits::MEMORY_MIN_MB as u64))
}

/// Names this server's cgroups after its data directory, so a restart finds (and clears)
/// what a crashed run of the same server left behind, and two servers never share.
fn instance_id(data_dir: &std::path::Path) -> String {
    use sha2::Digest;
    let path = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
    hex::encode(&sha2::Sha256::digest(path.as_os_str().as_encoded_bytes())[..6])
}

fn parse_network(text: &str) -> Result<gust_sandbox::isolate::NetworkMode, String> {
    text.parse()
}

/// `--prestart`: off, or the runtimes to prime at start.
#[derive(Debug, Clone)]
enum Prestart {
    Off,
    Runtimes(Vec<gust_model::Runtime>),
}

fn parse_prestart(text: &str) -> Result<Prestart, String> {
    if text.trim() == "off" {
        return Ok(Prestart::Off);
    }
    text.split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(|id| gust_model::Runtime::parse(id).map_err(|e| format!("{id}: {e}")))
        .collect::<Result<Vec<_>, _>>()
        .map(Prestart::Runtimes)
}

/// `on` or `off`.
fn parse_on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(format!("{other:?}: on or off")),
    }
}

/// Namespaces and Lambda's filesystem for environments, tried once at start so the report
/// says what actually works on this host.
fn isolation(
    data_dir: &std::path::Path,
    off: bool,
    network: gust_sandbox::isolate::NetworkMode,
) -> Result<gust_sandbox::isolate::Isolation, String> {
    if off {
        return Err("turned off with --no-isolation".into());
    }
    let init_program = gust_sandbox::isolate::init_program(
        std::env::current_exe().map_err(|e| format!("cannot find the gust binary: {e}"))?,
    );
    let staging = data_dir.join("sandbox").join("root");
    let isolation = gust_sandbox::isolate::Isolation::for_host(init_program, staging, network);
    let rootless = isolation.rootless;
    if rootless && network == gust_sandbox::isolate::NetworkMode::None {
        return Err("the server is not root, and --sandbox-network none needs it".into());
    }
    std::fs::create_dir_all(&isolation.staging)
        .map_err(|e| format!("cannot create {}: {e}", isolation.staging.display()))?;
    isolation.probe().map_err(|reason| {
        if rootless {
            format!("the server is not root and cannot isolate through a user namespace: {reason}")
        } else {
            reason
        }
    })?;
    if network == gust_sandbox::isolate::NetworkMode::None {
        gust_sandbox::isolate::private_network(0, &[])
            .map_err(|e| format!("--sandbox-network none: {e}"))?;
    }
    Ok(isolation)
}

/// Tells the engine about committed function changes.
#[derive(Debug)]
struct EngineObserver(gust_engine::Engine);

impl gust_control::FunctionObserver for EngineObserver {
    fn function_changed(&self, name: &gust_model::FunctionName) {
        self.0.function_changed(name);
    }

    fn function_deleted(&self, name: &gust_model::FunctionName) {
        self.0.function_deleted(name);
    }

    fn version_deleted(&self, name: &gust_model::FunctionName, version: u64) {
        self.0.version_deleted(name, version);
    }

    fn version_published(&self, name: &gust_model::FunctionName, version: u64) {
        self.0.version_published(name, version);
    }

    fn provisioned_changed(
        &self,
        name: &gust_model::FunctionName,
        configs: &[(String, Vec<(u64, u32)>)],
    ) {
        self.0.set_provisioned(name, configs);
    }
}

pub fn run(mut args: ServeArgs) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            // s3s logs every client error (a missing key, a bad signature) as an error;
            // Gust logs the S3 failures that are its own.
            tracing_subscriber::EnvFilter::try_from_env("GUST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,s3s=off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let scope = Scope::parse(&args.region, &args.account_id).map_err(|e| anyhow::anyhow!("{e}"))?;
    if args.max_environments.is_some() {
        bail!(
            "--max-environments was replaced: --memory-budget bounds the environments the host \
             holds (by their MemorySize), --concurrency-limit the invocations in flight per account"
        );
    }
    let budget_mb = match args.memory_budget {
        Some(mb) => mb,
        None => default_memory_budget_mb().context("cannot read the host's memory")?,
    };
    let capacity = gust_engine::Capacity::new(budget_mb);
    let explicit = match (args.access_key_id.take(), args.secret_access_key.take()) {
        (Some(access_key_id), Some(secret_access_key)) => Some(Credentials {
            access_key_id,
            secret_access_key,
        }),
        (None, None) => None,
        _ => bail!("set both GUST_ACCESS_KEY_ID and GUST_SECRET_ACCESS_KEY, or neither"),
    };
    datadir::create(&args.data_dir)?;
    // Absolute from here on: environments are set up from `/`, and every path the server
    // hands them (code, bootstraps, the sandbox root) is under the data directory.
    args.data_dir = std::fs::canonicalize(&args.data_dir)
        .with_context(|| format!("cannot resolve {}", args.data_dir.display()))?;
    // One discovery of the host's interpreters, shared by every account's engine.
    let registry = gust_runtime::RuntimeRegistry::open(crate::cli::runtimes::registry_config(
        &args.data_dir,
        args.runtimes_dir.as_deref(),
        &args.runtime,
    ))
    .context("cannot set up the runtimes")?;
    let catalog = registry.catalog();
    let isolation = isolation(&args.data_dir, args.no_isolation, args.sandbox_network);
    if let (gust_sandbox::isolate::NetworkMode::None, Err(reason)) =
        (args.sandbox_network, &isolation)
    {
        bail!(
            "--sandbox-network none needs isolated environments, which are unavailable: {reason}"
        );
    }
    let sandbox = Arc::new(gust_sandbox::ProcessSandbox::new(
        gust_sandbox::ProcessSandboxConfig {
            cgroups: if args.no_cgroups {
                Err("turned off with --no-cgroups".to_owned())
            } else {
                gust_sandbox::cgroup::Cgroups::open(
                    std::path::Path::new("/sys/fs/cgroup"),
                    &instance_id(&args.data_dir),
                )
            },
            proportional_cpu: !args.no_cpu_quota,
            pids_max: 1024,
            seccomp: gust_sandbox::seccomp::filters().map(Arc::new),
            isolation,
            primed_max: match args.prestart {
                Prestart::Off => 0,
                Prestart::Runtimes(_) => args.prestart_max,
            },
            zygotes: args.zygotes,
        },
    ));
    let protections = sandbox.report();
    let sandbox: Arc<dyn gust_sandbox::Sandbox> = sandbox;
    let (credentials, source) = datadir::server_credentials(&args.data_dir, explicit)?;
    let clock = Arc::new(SystemClock);
    // CloudWatch Logs and metrics of every account.
    let logs = gust_logs::Logs::open(&args.data_dir.join("logs.db"), clock.clone(), &scope.region)
        .map_err(|e| anyhow::anyhow!("cannot open the log store: {e}"))?;
    let metrics = gust_metrics::Metrics::open(
        &args.data_dir.join("metrics.db"),
        clock.clone(),
        &scope.region,
        args.metrics_retention,
    )
    .map_err(|e| anyhow::anyhow!("cannot open the metric store: {e}"))?;
    let prices = match &args.prices {
        Some(path) => {
            gust_metrics::usage::Prices::load(path).map_err(|e| anyhow::anyhow!("{e}"))?
        }
        None => gust_metrics::usage::Prices::default(),
    };
    let usage = gust_metrics::usage::Usage::open_with_prices(
        &args.data_dir.join("usage.db"),
        clock.clone(),
        prices,
    )
    .map_err(|e| anyhow::anyhow!("cannot open the usage store: {e}"))?;
    let prometheus = Arc::new(gust_metrics::prometheus::Exporter::with_access(
        metrics_access(&args)?,
    ));
    let mut observers = vec![
        Arc::clone(&metrics) as Arc<dyn gust_model::observe::Observer>,
        Arc::clone(&usage) as Arc<dyn gust_model::observe::Observer>,
        Arc::clone(&prometheus) as Arc<dyn gust_model::observe::Observer>,
    ];
    if let Some(exporter) = args.otlp.exporter(&scope.region)? {
        observers.push(Arc::new(exporter));
    }
    let observer: Arc<dyn gust_model::observe::Observer> =
        Arc::new(crate::observability::FanOut(observers));
    let others = match &args.accounts {
        Some(path) => read_accounts(path, &scope, &credentials.access_key_id)?,
        None => Vec::new(),
    };
    if args.no_auth && !others.is_empty() {
        bail!("--accounts needs authentication: requests name their account by their key");
    }
    // The default account keeps the data directory's own layout; the others live under
    // accounts/<id>.
    let directory = Arc::new(AccountDirectory::default());
    let sessions = Arc::new(gust_sts::Issuer::new(datadir::persistent_key(
        &args.data_dir,
        "sts.key",
    )?));
    let access = Arc::new(crate::bridge::Shared {
        sessions: Arc::clone(&sessions),
        clock: clock.clone(),
        endpoint: std::sync::OnceLock::new(),
        router: std::sync::OnceLock::new(),
        header_timeout: args.header_timeout,
    });
    let mut planes = vec![start_plane(
        PlaneParts {
            dir: &args.data_dir,
            scope: scope.clone(),
            sandbox: &sandbox,
            registry: registry.clone(),
            clock: clock.clone(),
            directory: Arc::clone(&directory),
            access: Arc::clone(&access),
            log_sink: Arc::new(crate::observability::FunctionLogs {
                logs: Arc::clone(&logs),
                account: scope.account_id.clone(),
            }),
            observer: Arc::clone(&observer),
        },
        &args,
        &capacity,
    )?];
    let mut keys = vec![gust_api::AccountKey {
        credentials: credentials.clone(),
        account_id: scope.account_id.clone(),
    }];
    for entry in others {
        let dir = args.data_dir.join("accounts").join(&entry.account_id);
        datadir::create(&dir)?;
        let account_scope =
            Scope::parse(&scope.region, &entry.account_id).map_err(|e| anyhow::anyhow!("{e}"))?;
        planes.push(start_plane(
            PlaneParts {
                dir: &dir,
                scope: account_scope,
                sandbox: &sandbox,
                registry: registry.clone(),
                clock: clock.clone(),
                directory: Arc::clone(&directory),
                access: Arc::clone(&access),
                log_sink: Arc::new(crate::observability::FunctionLogs {
                    logs: Arc::clone(&logs),
                    account: entry.account_id.clone(),
                }),
                observer: Arc::clone(&observer),
            },
            &args,
            &capacity,
        )?);
        keys.push(gust_api::AccountKey {
            credentials: Credentials {
                access_key_id: entry.access_key_id,
                secret_access_key: entry.secret_access_key,
            },
            account_id: entry.account_id,
        });
    }
    let _ = directory.planes.set(
        planes
            .iter()
            .map(|p| (p.account_id().to_owned(), Arc::downgrade(&p.control)))
            .collect(),
    );
    let engines: Vec<gust_engine::Engine> = planes.iter().map(|p| p.engine.clone()).collect();
    // Primed spares are the sandbox's, shared by every account's engine; primed once the
    // async runtime runs (spares are made on threads that enter it).
    let prestart = match (&args.prestart, engines.first()) {
        (Prestart::Runtimes(runtimes), Some(engine)) => Some((engine.clone(), runtimes.clone())),
        _ => None,
    };
    let account_count = planes.len();
    let auth = if args.no_auth {
        Auth::Disabled
    } else {
        Auth::SigV4(keys)
    };
    // Queues of every account share one store; each queue is keyed by its account.
    let queue_store = gust_sqs::sqlite::SqliteQueues::open(&args.data_dir.join("sqs.db"))
        .map_err(|e| anyhow::anyhow!("cannot open the queue store: {e}"))?;
    let sqs = gust_sqs::Sqs::new(Arc::new(queue_store), clock.clone(), &scope.region);
    let topic_store = gust_sns::SqliteTopics::open(&args.data_dir.join("sns.db"))
        .map_err(|e| anyhow::anyhow!("cannot open the topic store: {e}"))?;
    let api_config = ApiConfig {
        auth,
        code_url_key: datadir::random_key()?,
        clock: clock.clone(),
        body_timeout: args.body_timeout,
        upload_dir: datadir::upload_dir(&args.data_dir)?,
        sessions: Arc::clone(&sessions),
        url_domain: args.url_domain.clone(),
    };
    let by_account: std::collections::HashMap<String, gust_api::Plane> = planes
        .iter()
        .map(|p| (p.account_id().to_owned(), p.clone()))
        .collect();
    // Lambda's asynchronous event queue: a store of its own, behind the queues' interface.
    let event_store = gust_sqs::sqlite::SqliteQueues::open(&args.data_dir.join("async.db"))
        .map_err(|e| anyhow::anyhow!("cannot open the event queue: {e}"))?;
    // One set of targets serves SNS's deliveries and the event queue's runs.
    let targets = Arc::new(crate::delivery::Targets {
        planes: by_account.clone(),
        sqs: Arc::clone(&sqs),
        sns: std::sync::OnceLock::new(),
        events: std::sync::OnceLock::new(),
        eventbridge: std::sync::OnceLock::new(),
        s3: std::sync::OnceLock::new(),
    });
    let events = gust_async::AsyncInvoker::new(
        Arc::new(event_store),
        Arc::clone(&targets) as Arc<dyn gust_async::Runner>,
        clock.clone(),
        gust_async::AsyncConfig {
            retry_base: args.async_retry_base,
            concurrency: (args.concurrency_limit as usize).clamp(1, 64),
            observer: Arc::clone(&observer),
        },
    );
    let _ = targets.events.set(Arc::downgrade(&events));
    // Application Auto Scaling: scalable targets, scheduled actions and policies of every
    // account, scaling provisioned concurrency through the planes.
    let autoscaling = gust_autoscaling::Autoscaling::open(
        &args.data_dir.join("autoscaling.db"),
        clock.clone(),
        &scope.region,
        Arc::new(crate::scaling::LambdaProvisioned {
            planes: by_account.clone(),
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the autoscaling store: {e}"))?;
    // EventBridge and its Scheduler hand their targets to the same deliveries.
    let eventbridge = gust_events::Events::open(
        &args.data_dir.join("events.db"),
        clock.clone(),
        &scope.region,
        Arc::clone(&targets) as Arc<dyn gust_model::targets::Deliver>,
        gust_events::EventsConfig {
            retry_base: args.events_retry_base,
            ..Default::default()
        },
    )
    .map_err(|e| anyhow::anyhow!("cannot open the EventBridge store: {e}"))?;
    let _ = targets.eventbridge.set(Arc::downgrade(&eventbridge));
    let scheduler = gust_scheduler::Scheduler::open(
        &args.data_dir.join("scheduler.db"),
        clock.clone(),
        &scope.region,
        Arc::clone(&targets) as Arc<dyn gust_model::targets::Deliver>,
        gust_scheduler::SchedulerConfig {
            retry_base_delay: args.events_retry_base,
            ..Default::default()
        },
    )
    .map_err(|e| anyhow::anyhow!("cannot open the Scheduler store: {e}"))?;
    // HTTP APIs' control plane; the HTTP front serves them from its memory.
    let apigw = gust_apigw::Apigw::open(
        &args.data_dir.join("apigw.db"),
        clock.clone(),
        &scope.region,
    )
    .map_err(|e| anyhow::anyhow!("cannot open the API Gateway store: {e}"))?;
    // S3's buckets and objects of every account: metadata in s3.db, bodies under s3/objects.
    let objects = gust_s3::LocalStore::open(
        &args.data_dir.join("s3.db"),
        &args.data_dir.join("s3").join("objects"),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the object store: {e}"))?;
    let s3 = gust_s3::S3::new(Arc::new(objects), clock.clone(), &scope.region);
    let _ = targets.s3.set(Arc::clone(&s3));
    let accounts: Vec<String> = by_account.keys().cloned().collect();
    // The most environments the budget holds (all at Lambda's smallest MemorySize).
    let max_environments =
        usize::try_from(budget_mb / gust_model::limits::MEMORY_MIN_MB as u64).unwrap_or(usize::MAX);
    let max_connections = connection_budget(args.max_connections, max_environments);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        if let Some((engine, runtimes)) = &prestart {
            engine.prestart(runtimes);
        }
        sqs.start_sweeper();
        logs.start_sweeper();
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let address = listener.local_addr()?;
        let endpoint = format!("http://{address}");
        // Functions reach the API where the host does; an unspecified listen address is
        // reached on loopback.
        let reachable = if address.ip().is_unspecified() {
            format!("http://127.0.0.1:{}", address.port())
        } else {
            endpoint.clone()
        };
        let _ = access.endpoint.set((reachable.clone(), address.port()));
        // Topics sign with a key kept in the data directory and name URLs under the
        // address clients reach.
        let mut sns_config =
            gust_sns::SnsConfig::new(&reachable, &args.data_dir.join("sns-signing-key.pem"));
        sns_config.http_allow = args.sns_http_allow.clone();
        sns_config.retry_base = args.sns_retry_base;
        let sns = gust_sns::Sns::new(
            Arc::new(topic_store),
            clock.clone(),
            &scope.region,
            Arc::clone(&targets) as Arc<dyn gust_sns::Deliverer>,
            sns_config,
        )
        .map_err(|e| anyhow::anyhow!("cannot start topics: {e}"))?;
        sns.start();
        let _ = targets.sns.set(Arc::clone(&sns));
        events.start(accounts);
        let router = gust_api::router(
            planes,
            api_config,
            gust_api::Services {
                sqs: Arc::clone(&sqs),
                sns,
                events: Arc::clone(&events),
                autoscaling: Arc::clone(&autoscaling),
                eventbridge: Arc::clone(&eventbridge),
                scheduler: Arc::clone(&scheduler),
                apigw: Arc::clone(&apigw),
                s3: Arc::clone(&s3),
                s3_destinations: Some(Arc::clone(&targets) as Arc<dyn gust_model::targets::Deliver>),
                logs: Arc::clone(&logs),
                metrics: Arc::clone(&metrics),
                usage: Arc::clone(&usage),
                prometheus: Arc::clone(&prometheus),
            },
        );
        // Bucket notifications: the events gust-s3 commits with object changes, delivered.
        tokio::spawn(crate::s3_events::run(
            Arc::clone(&s3),
            Arc::clone(&targets) as Arc<dyn gust_model::targets::Deliver>,
        ));
        eventbridge.start();
        let scheduling = scheduler.start();
        let scaler = Arc::clone(&autoscaling).run(args.autoscaling_period);
        // Event source mappings: pollers read every account's mappings and their queues.
        let pollers = gust_mappings::Pollers::new(
            Arc::clone(&sqs),
            Arc::new(crate::mappings::MappingHost {
                planes: by_account.clone(),
            }),
        );
        let polling = pollers.start();
        let _ = access.router.set(router.clone());
        datadir::write_server_info(
            &args.data_dir,
            &ServerInfo {
                endpoint: endpoint.clone(),
                region: scope.region.clone(),
                account_id: scope.account_id.clone(),
                no_auth: args.no_auth,
            },
        )?;
        eprintln!(
            "Execution environments (idle timeout {:?}):",
            args.idle_timeout
        );
        for (name, on, text) in &protections {
            eprintln!("  {name:<10} {} {text}", if *on { "on " } else { "OFF" });
        }
        let reapers: Vec<_> = engines
            .iter()
            .flat_map(|e| {
                [
                    e.start_reaper(),
                    e.start_provisioner(),
                    e.start_gauges(Duration::from_secs(1)),
                ]
            })
            .collect();
        // SnapStart versions stored before this start get their snapshot environments.
        for engine in &engines {
            let engine = engine.clone();
            tokio::spawn(async move { engine.discover_snap_start().await });
        }
        eprintln!(
            "Memory budget for environments: {budget_mb} MiB (--memory-budget); concurrency limit {} per account",
            args.concurrency_limit
        );
        if account_count > 1 {
            eprintln!("Accounts: {account_count} (--accounts)");
        }
        print_banner(
            &endpoint,
            &args.data_dir,
            &scope,
            &catalog,
            &credentials,
            source,
            args.no_auth,
        );
        gust_api::server::serve(
            listener,
            router,
            gust_api::server::ConnectionLimits {
                max_connections,
                header_timeout: args.header_timeout,
            },
            shutdown_signal(),
        )
        .await;
        scaler.abort();
        scheduling.abort();
        polling.abort();
        pollers.stop_all();
        for reaper in reapers {
            reaper.abort();
        }
        for engine in &engines {
            engine.shutdown().await;
        }
        // What functions wrote last and what was counted last, on disk before exiting.
        logs.flush();
        datadir::remove_server_info(&args.data_dir);
        tracing::info!("stopped");
        Ok(())
    })
}

/// Descriptors each environment may hold in the server (its output pipe, Runtime API
/// listener and connections, cgroup files while it starts).
const FDS_PER_ENVIRONMENT: u64 = 8;
/// Descriptors kept for everything else (the store, logs, code packages, the spare).
const FDS_RESERVED: u64 = 512;

/// Raises the open-file limit to the hard limit and returns the connection cap that fits
/// in it beside the environments, so client connections alone can never exhaust it.
fn connection_budget(wanted: usize, max_environments: usize) -> usize {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let limit = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Err(_) => return wanted,
    };
    // Environments get at most half of what is left after the reserve, so a large memory
    // budget cannot leave clients without connections.
    let spare = limit.saturating_sub(FDS_RESERVED);
    let environments = FDS_PER_ENVIRONMENT * max_environments as u64;
    if environments > spare / 2 {
        tracing::warn!(
            open_files = limit,
            environments = spare / 2 / FDS_PER_ENVIRONMENT,
            "the open-file limit holds fewer environments than the memory budget could"
        );
    }
    let others = FDS_RESERVED + environments.min(spare / 2);
    let room = usize::try_from(limit.saturating_sub(others)).unwrap_or(usize::MAX);
    if room < wanted {
        let cap = room.max(64);
        tracing::warn!(
            open_files = limit,
            wanted,
            cap,
            "the open-file limit leaves room for fewer client connections than --max-connections"
        );
        return cap;
    }
    wanted
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot watch SIGTERM; stop with Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

fn print_banner(
    endpoint: &str,
    data_dir: &std::path::Path,
    scope: &Scope,
    catalog: &gust_model::RuntimeCatalog,
    credentials: &Credentials,
    source: CredentialSource,
    no_auth: bool,
) {
    let mut out = String::new();
    out.push_str(&format!(
        "Gust is listening on {endpoint} (region {}, account {})\n",
        scope.region, scope.account_id
    ));
    out.push_str(&format!("Data directory: {}\n", data_dir.display()));
    out.push_str(&format!(
        "Runtimes on this host: {}\n",
        catalog.supported_ids().join(", ")
    ));
    if no_auth {
        out.push_str(
            "\nWARNING: authentication is OFF (--no-auth). Anyone who can reach this port can deploy and run code\n\
             as this user. Use it only for local experiments on a trusted machine.\n",
        );
    } else {
        let origin = match source {
            CredentialSource::Environment => {
                "from GUST_ACCESS_KEY_ID / GUST_SECRET_ACCESS_KEY".to_owned()
            }
            CredentialSource::Stored => {
                format!("stored in {}", data_dir.join("credentials.json").display())
            }
            CredentialSource::Created => format!(
                "created now and stored in {} (readable by you only)",
                data_dir.join("credentials.json").display()
            ),
        };
        out.push_str(&format!(
            "\nRequests must be SigV4-signed. Credentials {origin}. For the aws CLI and boto3:\n\
             \x20 export AWS_ACCESS_KEY_ID={}\n\
             \x20 export AWS_SECRET_ACCESS_KEY={}\n\
             \x20 export AWS_DEFAULT_REGION={}\n\
             \x20 aws lambda list-functions --endpoint-url {endpoint}\n",
            credentials.access_key_id, credentials.secret_access_key, scope.region
        ));
    }
    out.push_str(
        "The gust CLI finds this server by itself when run with the same data directory.
",
    );
    eprint!("{out}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(parse_duration("15d"), Ok(Duration::from_secs(15 * 86_400)));
        assert!(
            parse_duration("18446744073709551615d").is_err(),
            "no overflow"
        );
    }

    #[test]
    fn memory_budgets() {
        assert_eq!(parse_memory("4096"), Ok(4096));
        assert_eq!(parse_memory("512M"), Ok(512));
        assert_eq!(parse_memory("16G"), Ok(16 * 1024));
        assert_eq!(parse_memory("2gib"), Ok(2048));
        assert!(parse_memory("64M").is_err(), "smaller than one environment");
        assert!(parse_memory("12T").is_err());
        assert!(parse_memory("lots").is_err());
        assert!(parse_memory("99999999999999999999G").is_err());
        assert!(default_memory_budget_mb().unwrap() >= 128);
    }
}
