//! Environment start-up (INIT): unpacking code and layers, the runtime's environment
//! variables and filesystem view, spawning it in the sandbox and waiting for its first
//! `next` (or its init error, exit or INIT timeout).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gust_model::{FunctionConfig, FunctionVersion, LogFormat};
use gust_runtime::{InitOutcome, RuntimeApi, View};
use gust_sandbox::isolate::Bind;
use gust_sandbox::SpawnSpec;

use crate::capacity::Lease;
use crate::collector::Collector;
use crate::environment::{EnvState, Environment, Parts, Stop};
use crate::{
    ms, platform_error, random_hex, tail, Engine, EngineError, InvokeOutcome, INIT_TIMEOUT_MIN,
};

/// An INIT that did not end with the runtime ready.
pub(crate) struct InitFailure {
    pub(crate) body: Bytes,
    pub(crate) environment: Option<Arc<Environment>>,
    pub(crate) collector: Option<Collector>,
}

/// Where an environment runs and why it was started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placement {
    /// In a network namespace of its own (the API is reached inside it).
    pub private_network: bool,
    /// Started ahead of requests for provisioned concurrency.
    pub provisioned: bool,
    /// A SnapStart environment (INIT then the snapshot point).
    pub snapshot: bool,
}

/// `AWS_LAMBDA_INITIALIZATION_TYPE` (and telemetry's `initializationType`) of an
/// environment started for provisioned concurrency, as a SnapStart snapshot, or on demand.
fn initialization_type(provisioned: bool, snapshot: bool) -> &'static str {
    if snapshot {
        "snap-start"
    } else if provisioned {
        "provisioned-concurrency"
    } else {
        "on-demand"
    }
}

/// Resolves with why the environment could not be started, if its init says so.
async fn failed_to_start(
    report: &mut Option<gust_sandbox::StartReport>,
) -> gust_sandbox::SandboxError {
    match report {
        Some(report) => report.failure().await,
        None => std::future::pending().await,
    }
}

fn is_primed(primed: &Option<gust_sandbox::Primed>) -> bool {
    primed.is_some()
}

/// The variables every environment of a runtime starts with, whatever its function: the
/// part of the environment a primed spare is started with (`gust_sandbox::PrimeSpec`).
pub(crate) fn fixed_variables(view: &View, launch: &gust_runtime::Launch) -> Vec<(String, String)> {
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
                rt = view.runtime_dir.display(),
                task = view.task_root.display(),
                opt = view.opt_dir.display()
            ),
        ),
        ("LANG".into(), "en_US.UTF-8".into()),
        ("TZ".into(), ":UTC".into()),
        ("AWS_XRAY_CONTEXT_MISSING".into(), "LOG_ERROR".into()),
        (
            "AWS_XRAY_DAEMON_ADDRESS".into(),
            format!("{XRAY_DAEMON_IP}:{XRAY_DAEMON_PORT}"),
        ),
        // The runtime starts in the code's directory, as a shell would have said.
        ("PWD".into(), view.task_root.display().to_string()),
    ];
    env.extend(launch.env.iter().cloned());
    env
}

pub(crate) fn log_stream_name(version: FunctionVersion) -> String {
    let date = time::OffsetDateTime::now_utc().date();
    format!(
        "{:04}/{:02}/{:02}/[{version}]{}",
        date.year(),
        u8::from(date.month()),
        date.day(),
        random_hex(16)
    )
}

impl Engine {
    pub(crate) fn environment_variables(
        &self,
        config: &FunctionConfig,
        api: &RuntimeApi,
        view: &View,
        stream: &str,
        launch: &gust_runtime::Launch,
        placement: Placement,
    ) -> Vec<(String, String)> {
        let Placement {
            private_network,
            provisioned,
            snapshot,
        } = placement;
        let scope = &self.inner.config.scope;
        let runtime_dir = &view.runtime_dir;
        let code_dir = &view.task_root;
        let mut env = fixed_variables(view, launch);
        if config.log_format == LogFormat::Json {
            env.push(("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()));
            let level = config
                .log_levels
                .as_ref()
                .map_or("INFO", |l| l.application.as_str());
            env.push(("AWS_LAMBDA_LOG_LEVEL".into(), level.to_owned()));
        }
        // SDKs inside the function call this server (overridable, as any SDK setting).
        let services = self.inner.config.services.as_ref();
        if let Some((endpoint, port)) = services.and_then(|s| s.endpoint()) {
            let url = if private_network {
                format!("http://127.0.0.1:{}", namespace_api_port(port))
            } else {
                endpoint
            };
            env.push(("AWS_ENDPOINT_URL".into(), url));
        }
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
            (
                "AWS_LAMBDA_INITIALIZATION_TYPE".into(),
                initialization_type(provisioned, snapshot).into(),
            ),
            ("AWS_REGION".into(), scope.region.clone()),
            ("AWS_DEFAULT_REGION".into(), scope.region.clone()),
            ("_AWS_XRAY_DAEMON_ADDRESS".into(), XRAY_DAEMON_IP.into()),
            ("_AWS_XRAY_DAEMON_PORT".into(), XRAY_DAEMON_PORT.to_string()),
        ]);
        if let Some(services) = services {
            env.extend(services.credentials(&config.role, config.name.as_str()));
        }
        env
    }

    /// INIT: unpack the code, start the Runtime API and the runtime, and wait for its first
    /// `next`. `Ok(Err(_))` is a function-level init failure.
    pub(crate) async fn cold_start(
        &self,
        config: &FunctionConfig,
        generation: u64,
        lease: Lease,
    ) -> Result<Result<Arc<Environment>, InitFailure>, EngineError> {
        self.inner.live.fetch_add(1, Ordering::Relaxed);
        let result = self
            .start_environment(config, generation, lease, None, config.snap_start_on())
            .await;
        match &result {
            Ok(Ok(_)) => {}
            // A failed INIT leaves no environment behind.
            _ => {
                self.inner.live.fetch_sub(1, Ordering::Relaxed);
            }
        }
        result
    }

    /// INIT of one environment holding `lease` of the memory budget; `provisioned` names
    /// the provisioned-concurrency configuration it is started for (ahead of requests);
    /// `snapshot`: a SnapStart environment, whose INIT ends at the snapshot point
    /// (`restore/next`) and which is restored before its first invocation.
    pub(crate) async fn start_environment(
        &self,
        config: &FunctionConfig,
        generation: u64,
        lease: Lease,
        provisioned: Option<&str>,
        snapshot: bool,
    ) -> Result<Result<Arc<Environment>, InitFailure>, EngineError> {
        let started = Instant::now();
        let store = Arc::clone(&self.inner.store);
        let digest = config.code.digest;
        let layers: Vec<gust_model::CodeDigest> =
            config.layers.iter().map(|l| l.code.digest).collect();
        let (code_dir, opt_dir) = match store.unpacked_already(&digest, &layers) {
            Some(unpacked) => unpacked,
            None => tokio::task::spawn_blocking(move || {
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
            })?,
        };
        let stream = log_stream_name(config.version);
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
        let launch = self.inner.registry.launch_with_layers(
            &config.runtime,
            &code_dir,
            opt_dir.as_deref(),
            &view,
        );
        // A spare primed for this runtime, if the function may use one: its runtime's
        // output pipe becomes the environment's.
        let primed = launch
            .as_ref()
            .ok()
            .and_then(|launch| self.take_primed(config, launch, &view));
        let (reader, writer, primed) = match primed {
            Some(claimed) => (claimed.reader, claimed.writer, Some(claimed.primed)),
            None => {
                let (reader, writer) =
                    std::io::pipe().map_err(|e| EngineError::Internal(format!("pipe: {e}")))?;
                (reader.into(), writer.into(), None)
            }
        };
        let claimed_at = (started.elapsed(), is_primed(&primed));
        let collector = Collector::start(
            reader,
            (config.name.to_string(), config.log_group.clone()),
            stream.clone(),
            Arc::clone(&self.inner.log_sink),
        )
        .map_err(|e| EngineError::Internal(format!("log collector: {e}")))?;
        let launch = match launch {
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
        let launch = exec_wrapper(launch, config);
        // The cold start's log is part of its first invocation's log tail; a provisioned
        // environment's INIT happens before any invocation.
        let init_start = crate::platform::init_start(config, &launch.description);
        collector.first(init_start, provisioned.is_none() && !snapshot);
        // Without a network of its own, the environment's Runtime API listens inside the
        // environment's network namespace (made on a thread of its own).
        let sandbox = Arc::clone(&self.inner.sandbox);
        let services = self.inner.config.services.clone();
        let api_port: Vec<u16> = services
            .as_ref()
            .and_then(|s| s.endpoint())
            .map(|(_, port)| namespace_api_port(port))
            .into_iter()
            .collect();
        let listening_at = started.elapsed();
        // (On the host's network there is none to make: no hop to the blocking pool.)
        let network = if sandbox.private_networks() {
            tokio::task::spawn_blocking(move || sandbox.private_network(&api_port))
                .await
                .map_err(|e| EngineError::Internal(e.to_string()))?
                .map_err(|e| EngineError::Internal(format!("environment network: {e}")))?
        } else {
            None
        };
        let mut attached = None;
        let (api, init, netns) = match network {
            Some(mut network) => {
                // The server's API, served inside the namespace at the address it has on
                // the host: functions without a network still reach it, and only it.
                if let (Some(services), Some(listener)) = (&services, network.extra.pop()) {
                    attached = Some(services.bridge(listener));
                }
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
        let mut binds = vec![Bind {
            source: code_dir.clone(),
            target: view.task_root.clone(),
        }];
        if let Some(opt) = &opt_dir {
            binds.push(Bind {
                source: opt.clone(),
                target: view.opt_dir.clone(),
            });
        }
        binds.extend(self.runtime_binds(&view, &launch));
        let extensions = crate::extensions::prepare(
            &api,
            &collector,
            config,
            &self.inner.config.scope.account_id,
            opt_dir.as_deref(),
            &view.opt_dir,
            &launch.description,
            initialization_type(provisioned.is_some(), snapshot),
            netns.as_ref(),
        );
        if snapshot {
            api.enable_snap_start();
        }
        // The extensions write to a pipe of their own: their lines are `extension`
        // telemetry, the runtime's `function`.
        let extension_output = if extensions.is_empty() {
            None
        } else {
            let (reader, writer) =
                std::io::pipe().map_err(|e| EngineError::Internal(format!("pipe: {e}")))?;
            collector
                .extensions(reader.into())
                .map_err(|e| EngineError::Internal(format!("log collector: {e}")))?;
            Some(writer.into())
        };
        let spec = SpawnSpec {
            program: launch.program.clone(),
            args: launch.args.clone(),
            env: self.environment_variables(
                config,
                &api,
                &view,
                &stream,
                &launch,
                Placement {
                    private_network: netns.is_some(),
                    provisioned: provisioned.is_some(),
                    snapshot,
                },
            ),
            cwd: view.task_root.clone(),
            output: writer,
            id: random_hex(8),
            memory_mb: config.memory_mb,
            tmp_mb: config.ephemeral_mb,
            binds,
            netns,
            extensions,
            extension_output,
            primed,
        };
        let sandbox = Arc::clone(&self.inner.sandbox);
        let spawning_at = started.elapsed();
        let spawned = tokio::task::spawn_blocking(move || sandbox.spawn(spec))
            .await
            .map_err(|e| EngineError::Internal(format!("spawn task failed: {e}")))?;
        let spawned_at = started.elapsed();
        let mut process = match spawned {
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
        // The init's report, when the spawn did not wait for it: awaited with the
        // runtime's first request (a failure to start the bootstrap is the same error).
        let mut report = process.take_report();
        let controls = process.controls(self.inner.sandbox.cpu_quota(config.memory_mb));
        // Only the environment's own processes may use its Runtime API (on the host's
        // network, other environments share its loopback).
        let owner = controls.clone();
        api.admit(Arc::new(move |local, peer| {
            let checking = Instant::now();
            let owned = owner.owns_connection(local, peer);
            tracing::debug!(
                target: "gust::coldstart",
                owned,
                took_us = checking.elapsed().as_micros() as u64,
                "connection check"
            );
            owned
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
            attached,
            provisioned: provisioned.map(str::to_owned),
            memory: lease,
            runtime: launch.description.clone(),
        }));
        let init_timeout = INIT_TIMEOUT_MIN.max(Duration::from_secs(u64::from(config.timeout_s)));
        // Said in the log as a spawn that fails says it (the init's own line is there too).
        let not_started = |error: gust_sandbox::SandboxError| {
            let message = format!("Error: {error}");
            env.collector.platform(vec![message.clone()]);
            InitOutcome::Failed {
                body: platform_error("Runtime.InvalidEntrypoint", message),
                error_type: Some("Runtime.InvalidEntrypoint".into()),
            }
        };
        let outcome = tokio::select! {
            biased;
            outcome = init => outcome.ok(),
            error = failed_to_start(&mut report) => Some(not_started(error)),
            _ = env.exited() => None,
            () = tokio::time::sleep(init_timeout) => {
                env.collector.platform(vec![format!("INIT timed out after {:.2} seconds", init_timeout.as_secs_f64())]);
                Some(InitOutcome::Failed {
                    body: platform_error("Sandbox.Timedout", format!("Error: INIT timed out after {:.2} seconds", init_timeout.as_secs_f64())),
                    error_type: Some("Sandbox.Timedout".into()),
                })
            }
        };
        let outcome = match (outcome, &mut report) {
            // An init that could not start the bootstrap says why, then ends: its word,
            // already sent, rather than its exit.
            (None, Some(report)) => {
                tokio::time::timeout(Duration::from_millis(100), report.outcome())
                    .await
                    .ok()
                    .flatten()
                    .map(not_started)
            }
            (outcome, _) => outcome,
        };
        let init_duration = started.elapsed();
        // Where a cold start's time goes (`GUST_LOG=gust::coldstart=debug`).
        tracing::debug!(
            target: "gust::coldstart",
            function = %config.name,
            primed = claimed_at.1,
            code_and_claim_us = claimed_at.0.as_micros() as u64,
            api_listener_from_us = listening_at.as_micros() as u64,
            spawn_from_us = spawning_at.as_micros() as u64,
            spawned_us = spawned_at.as_micros() as u64,
            first_next_us = init_duration.as_micros() as u64,
            "cold start"
        );
        crate::extensions::init_ended(
            &env,
            config,
            outcome.as_ref(),
            init_duration,
            initialization_type(provisioned.is_some(), snapshot),
        );
        match outcome {
            Some(InitOutcome::Ready) => {
                // Only an on-demand environment's first invocation waited for its INIT.
                if provisioned.is_none() && !snapshot {
                    env.set_init_duration(init_duration);
                }
                if snapshot {
                    // The snapshot's INIT is reported in the function's log, not to an
                    // invocation.
                    env.collector.platform(vec![format!(
                        "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: success",
                        ms(init_duration)
                    )]);
                }
                // INIT ran unthrottled; invocations get the function's CPU share. Written
                // on the blocking pool: a cgroup write can wait on the kernel's cgroup mutex
                // behind spares being made or removed, and the first invocation need not
                // wait for the quota (~30 µs of two writes) to be dispatched. (An
                // environment gone by then makes the write fail with a warning.)
                let controls = env.controls.clone();
                tokio::task::spawn_blocking(move || controls.limit_cpu());
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
                let message = format!("Error: {}", crate::environment::exit_error(&exit));
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

    /// The binds every environment of `launch`'s runtime has, whatever its function (the
    /// bootstraps, the interpreter's home): a primed spare has them from the start, and an
    /// environment with any other bind than these, `/var/task` and `/opt` is started afresh
    /// (so a bind every environment of a runtime gets belongs here).
    pub(crate) fn runtime_binds(&self, view: &View, launch: &gust_runtime::Launch) -> Vec<Bind> {
        let mut binds = vec![Bind {
            source: self.inner.registry.runtime_dir().to_owned(),
            target: view.runtime_dir.clone(),
        }];
        if let Some(home) = &launch.interpreter_home {
            if !gust_sandbox::isolate::visible_by_default(home) {
                binds.push(Bind {
                    source: home.clone(),
                    target: home.clone(),
                });
            }
        }
        // The SDKs under /var/runtime and a Gust-installed Node.js at /var/lang (after
        // /var/runtime: some are mounted inside it).
        binds.extend(launch.extra_binds.iter().map(|(source, target)| Bind {
            source: source.clone(),
            target: target.clone(),
        }));
        binds
    }

    /// What a spare primed for `runtime` is started with: `launch`'s program, arguments
    /// and fixed variables, and its runtime's binds. For `provided*` runtimes (whose
    /// program is the function's own) the spare is *staged*: its root is built, nothing is
    /// started. `None` when the sandbox does not prime.
    pub(crate) fn prime_spec(
        &self,
        runtime: &gust_model::Runtime,
        launch: &gust_runtime::Launch,
        view: &View,
    ) -> Option<gust_sandbox::PrimeSpec> {
        if !self.inner.sandbox.primes() {
            return None;
        }
        Some(gust_sandbox::PrimeSpec {
            label: runtime.id().to_owned(),
            program: launch.program.clone(),
            args: launch.args.clone(),
            env: fixed_variables(view, launch),
            binds: self.runtime_binds(view, launch),
            staged: runtime.family() == gust_model::RuntimeFamily::Provided,
            fork: runtime.family() == gust_model::RuntimeFamily::Python,
        })
    }

    /// Claims a spare primed for `config`'s runtime when the function's own variables allow
    /// it (none acts at process start); the runtime is then kept primed from now on.
    fn take_primed(
        &self,
        config: &FunctionConfig,
        launch: &gust_runtime::Launch,
        view: &View,
    ) -> Option<gust_sandbox::Claimed> {
        let key = self.prime_spec(&config.runtime, launch, view)?;
        let variables = config.environment.iter().flatten();
        if !key.admits(variables.map(|(k, v)| (k.as_str(), v.as_str()))) {
            return None;
        }
        self.inner.sandbox.take_primed(&key)
    }

    /// Keeps a spare primed for each of `runtimes` (the server's `--prestart`).
    pub fn prestart(&self, runtimes: &[gust_model::Runtime]) {
        let view = View::lambda();
        for runtime in runtimes {
            let launch = if runtime.family() == gust_model::RuntimeFamily::Provided {
                // The program is the package's bootstrap, at the same path for every function.
                Ok(gust_runtime::Launch {
                    program: view.task_root.join("bootstrap"),
                    args: Vec::new(),
                    env: Vec::new(),
                    bin_dir: None,
                    description: String::new(),
                    interpreter_home: None,
                    extra_binds: Vec::new(),
                })
            } else {
                self.inner
                    .registry
                    .launch(runtime, std::path::Path::new("/"), &view)
            };
            match launch {
                Ok(launch) => {
                    if let Some(key) = self.prime_spec(runtime, &launch, &view) {
                        self.inner.sandbox.prime(&key);
                    }
                }
                Err(error) => tracing::warn!(runtime = runtime.id(), %error, "cannot prestart"),
            }
        }
    }

    /// An invocation whose environment failed INIT: START/END/REPORT around the failure.
    pub(crate) async fn init_failed(
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
                    .begin(crate::platform::start(config, request_id))
                    .await;
                collector
                    .end(crate::platform::end(
                        config,
                        config.memory_mb,
                        &crate::platform::Report {
                            request_id,
                            duration: Duration::ZERO,
                            init: None,
                            restore: None,
                            max_memory_mb: 0,
                            status: crate::platform::Status::Error(None),
                        },
                    ))
                    .await
            }
            None => String::new(),
        };
        // The invocation's qualifier is not known here: it counts without `Resource`.
        self.observe_invoked(
            config,
            crate::observe::Ended {
                qualifier: None,
                duration: Duration::ZERO,
                cold_start: None,
                error: true,
                provisioned: false,
                request_id: request_id.to_owned(),
                trace: None,
                caller_parent: None,
            },
        );
        InvokeOutcome {
            body: failure.body,
            function_error: true,
            log_tail: tail(&log),
            executed_version: config.version.to_string(),
            request_id: request_id.to_owned(),
        }
    }
}

/// Where the server's API listens inside an environment's own network namespace: its port
/// on the host, unless that is the Runtime API's (9001).
/// `AWS_LAMBDA_EXEC_WRAPPER` on a managed runtime: the runtime's command line is handed to
/// the wrapper script, through the same few lines of shell Lambda's runtimes start with (so
/// a missing wrapper exits 127 and a non-executable one 126, with Lambda's message in the
/// log). Custom runtimes (`provided*`) ignore the variable, as on Lambda.
fn exec_wrapper(launch: gust_runtime::Launch, config: &FunctionConfig) -> gust_runtime::Launch {
    let wrapped = config.runtime.family() != gust_model::RuntimeFamily::Provided
        && config
            .environment
            .as_ref()
            .is_some_and(|vars| vars.get(EXEC_WRAPPER).is_some_and(|w| !w.is_empty()));
    if !wrapped {
        return launch;
    }
    const SCRIPT: &str = r#"wrapper="$AWS_LAMBDA_EXEC_WRAPPER"
if [ ! -f "$wrapper" ]; then echo "$wrapper: does not exist"; exit 127; fi
if [ ! -x "$wrapper" ]; then echo "$wrapper: is not an executable"; exit 126; fi
exec "$wrapper" "$@""#;
    let mut args: Vec<std::ffi::OsString> = vec![
        "-c".into(),
        SCRIPT.into(),
        "bootstrap".into(),
        launch.program.clone().into(),
    ];
    args.extend(launch.args.iter().cloned());
    gust_runtime::Launch {
        program: "/bin/sh".into(),
        args,
        description: format!("{} through {EXEC_WRAPPER}", launch.description),
        ..launch
    }
}

/// Where Lambda's X-Ray daemon listens (link-local; Gust runs none, so segments an SDK
/// sends there are dropped as on a function without active tracing).
const XRAY_DAEMON_IP: &str = "169.254.79.129";
const XRAY_DAEMON_PORT: u16 = 2000;

const EXEC_WRAPPER: &str = "AWS_LAMBDA_EXEC_WRAPPER";

fn namespace_api_port(port: u16) -> u16 {
    use gust_sandbox::isolate::RUNTIME_API_PORT;
    if port == RUNTIME_API_PORT {
        RUNTIME_API_PORT + 1
    } else {
        port
    }
}
