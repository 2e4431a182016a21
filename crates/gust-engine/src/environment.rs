//! One execution environment: a runtime process with its own Runtime API, serving one
//! function revision, one invocation at a time.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use gust_model::{FunctionName, FunctionVersion};
use gust_runtime::RuntimeApi;
use gust_sandbox::{Controls, SandboxProcess};
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, watch};

use crate::capacity::Lease;
use crate::collector::Collector;

/// Lifecycle of an environment. Transitions are methods; anything else is a bug reported as
/// [`InvalidTransition`], never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvState {
    /// INIT: the runtime is starting and has not asked for work yet.
    Initializing,
    /// Warm, waiting in the pool.
    Idle,
    /// Running an invocation.
    Busy,
    /// SHUTDOWN done (or killed): its processes are gone or going.
    Dead,
}

/// A state change the lifecycle does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("environment cannot go from {from:?} to {to:?}")]
pub struct InvalidTransition {
    /// Where it was.
    pub from: EnvState,
    /// Where it was asked to go.
    pub to: EnvState,
}

impl EnvState {
    /// The next state for `to`, if the move is legal.
    pub fn transition(self, to: EnvState) -> Result<EnvState, InvalidTransition> {
        use EnvState::*;
        match (self, to) {
            // A cold start goes straight from INIT to its first INVOKE.
            (Initializing, Idle) | (Initializing, Busy) | (Idle, Busy) | (Busy, Idle) => Ok(to),
            (Initializing | Idle | Busy, Dead) => Ok(Dead),
            _ => Err(InvalidTransition { from: self, to }),
        }
    }
}

/// How to stop the process.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stop {
    /// SIGKILL now (timeouts, failures).
    Kill,
    /// SIGTERM, then SIGKILL after the grace period (SHUTDOWN).
    Terminate(Duration),
}

#[derive(Debug)]
pub(crate) struct Environment {
    pub function: FunctionName,
    pub version: FunctionVersion,
    pub revision: String,
    pub generation: u64,
    pub stream: String,
    pub controls: Controls,
    pub api: RuntimeApi,
    pub collector: Collector,
    /// The provisioned-concurrency configuration (its qualifier) this environment was
    /// started for; `None` for an on-demand environment.
    pub provisioned: Option<String>,
    /// The runtime's description (`INIT_START`/`RESTORE_START`'s `Runtime Version`).
    pub runtime: String,
    /// Its share of the host's memory budget, given back when it is shut down.
    memory: Mutex<Option<Lease>>,
    state: Mutex<EnvState>,
    init_duration: Mutex<Option<Duration>>,
    restore_duration: Mutex<Option<Duration>>,
    last_used: Mutex<Instant>,
    /// When it started (an environment is retired before its credentials expire).
    born: Instant,
    stop: mpsc::UnboundedSender<Stop>,
    exit: watch::Receiver<Option<String>>,
    oom: Arc<std::sync::atomic::AtomicBool>,
    /// Peak memory (KiB) read just before the process's cgroup was removed.
    final_peak_kib: Arc<std::sync::atomic::AtomicU64>,
    /// Idle periods and whether the cgroup is frozen (see [`Environment::idle_begins`]).
    freezer: Mutex<Freezer>,
    /// The leader's pid (the runtime's, or an isolated environment's supervisor's).
    leader: u32,
    /// The external extensions' processes, by name: each pidfd is readable once its
    /// process has exited (see [`crate::extensions::watch`]).
    extension_processes: Mutex<Vec<(String, Arc<AsyncFd<OwnedFd>>)>>,
}

#[derive(Debug, Default)]
struct Freezer {
    /// Counts idle periods: a freeze planned for an earlier period is stale.
    period: u64,
    frozen: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Describes an exit as Lambda does (`exit status 1`, `signal: killed`).
fn describe_exit(status: std::io::Result<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("signal: {}", signal_name(signal)),
            (None, None) => "exited".to_owned(),
        },
        Err(error) => format!("unknown exit ({error})"),
    }
}

/// A signal as Go (Lambda's init) names it in `signal: …`.
fn signal_name(signal: i32) -> String {
    match signal {
        1 => "hangup",
        2 => "interrupt",
        3 => "quit",
        4 => "illegal instruction",
        5 => "trace/breakpoint trap",
        6 => "aborted",
        7 => "bus error",
        8 => "floating point exception",
        9 => "killed",
        10 => "user defined signal 1",
        11 => "segmentation fault",
        12 => "user defined signal 2",
        13 => "broken pipe",
        14 => "alarm clock",
        15 => "terminated",
        other => return format!("signal {other}"),
    }
    .to_owned()
}

/// The error message of a runtime that exited (`describe_exit`'s text) as Lambda words it:
/// a clean exit without an answer gives no reason.
pub(crate) fn exit_error(exit: &str) -> String {
    if exit == "exit status 0" {
        "Runtime exited without providing a reason".to_owned()
    } else {
        format!("Runtime exited with error: {exit}")
    }
}

/// Everything an environment is made of.
pub(crate) struct Parts {
    pub function: FunctionName,
    pub version: FunctionVersion,
    pub revision: String,
    pub generation: u64,
    pub stream: String,
    pub api: RuntimeApi,
    pub collector: Collector,
    pub process: SandboxProcess,
    pub controls: Controls,
    /// Whatever must live as long as the process (the API served in its network).
    pub attached: Option<Box<dyn std::any::Any + Send + Sync>>,
    pub provisioned: Option<String>,
    pub memory: Lease,
    pub runtime: String,
}

impl Environment {
    /// Takes ownership of the process: a supervisor task waits for it and stops it on request.
    pub(crate) fn new(parts: Parts) -> Self {
        let Parts {
            function,
            version,
            revision,
            generation,
            stream,
            api,
            collector,
            mut process,
            controls,
            attached,
            provisioned,
            memory,
            runtime,
        } = parts;
        let leader = process.pid();
        let (stop_tx, mut stop_rx) = mpsc::unbounded_channel();
        let (exit_tx, exit_rx) = watch::channel(None);
        let oom = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let final_peak_kib = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (oom_flag, peak, supervised) = (
            Arc::clone(&oom),
            Arc::clone(&final_peak_kib),
            controls.clone(),
        );
        let (extensions, telemetry) = (Arc::clone(api.extensions()), Arc::clone(api.telemetry()));
        // The log stays open until the processes are gone: what they write while shutting
        // down (an extension's SHUTDOWN, a SIGTERM handler) is kept.
        let (output, serving) = (collector.clone(), api.serving());
        tokio::spawn(async move {
            let _attached = attached;
            let (_output, _serving) = (output, serving);
            let description = tokio::select! {
                status = process.wait() => describe_exit(status),
                Some(stop) = stop_rx.recv() => {
                    match stop {
                        Stop::Kill => process.kill().await,
                        Stop::Terminate(grace) => {
                            // Extensions subscribed to SHUTDOWN get it, and their grace, first.
                            crate::extensions::before_shutdown(&extensions, &telemetry, &supervised)
                                .await;
                            process.terminate(grace).await
                        }
                    }
                    "signal: killed".to_owned()
                }
            };
            // Read what the cgroup knows before it is removed with the environment.
            peak.store(
                supervised.peak_memory_kib(),
                std::sync::atomic::Ordering::Relaxed,
            );
            if supervised.out_of_memory() {
                oom_flag.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            // The leader is gone; make sure nothing it started lingers, and remove its cgroup.
            process.kill().await;
            let _ = exit_tx.send(Some(description));
        });
        Environment {
            function,
            version,
            revision,
            generation,
            stream,
            controls,
            api,
            collector,
            provisioned,
            runtime,
            memory: Mutex::new(Some(memory)),
            state: Mutex::new(EnvState::Initializing),
            init_duration: Mutex::new(None),
            restore_duration: Mutex::new(None),
            last_used: Mutex::new(Instant::now()),
            born: Instant::now(),
            stop: stop_tx,
            exit: exit_rx,
            oom,
            final_peak_kib,
            freezer: Mutex::new(Freezer::default()),
            leader,
            extension_processes: Mutex::default(),
        }
    }

    /// The leader's pid.
    pub(crate) fn leader(&self) -> u32 {
        self.leader
    }

    /// Watches these external extensions' processes (pidfds), by name.
    pub(crate) fn watch_extensions(&self, processes: Vec<(String, AsyncFd<OwnedFd>)>) {
        *lock(&self.extension_processes) = processes
            .into_iter()
            .map(|(name, pidfd)| (name, Arc::new(pidfd)))
            .collect();
    }

    /// The first watched extension found exited, polling each with `cx`.
    fn poll_extension_exit(
        watched: &[(String, Arc<AsyncFd<OwnedFd>>)],
        cx: &mut std::task::Context<'_>,
    ) -> Poll<String> {
        for (name, pidfd) in watched {
            // Readable (or failing): the process is gone.
            if pidfd.poll_read_ready(cx).is_ready() {
                return Poll::Ready(name.clone());
            }
        }
        Poll::Pending
    }

    /// Waits until a watched external extension's process exits; its name. Never returns
    /// for an environment without any.
    pub(crate) async fn extension_exited(&self) -> String {
        let watched = lock(&self.extension_processes).clone();
        std::future::poll_fn(|cx| Self::poll_extension_exit(&watched, cx)).await
    }

    /// The name of a watched external extension whose process has exited already, if any.
    pub(crate) fn extension_gone(&self) -> Option<String> {
        let watched = lock(&self.extension_processes);
        if watched.is_empty() {
            return None;
        }
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match Self::poll_extension_exit(&watched, &mut cx) {
            Poll::Ready(name) => Some(name),
            Poll::Pending => None,
        }
    }

    pub(crate) fn transition(&self, to: EnvState) -> Result<(), InvalidTransition> {
        let mut state = lock(&self.state);
        *state = state.transition(to)?;
        Ok(())
    }

    /// Starts an idle period; returns its number for [`Environment::freeze_if_idle`].
    pub(crate) fn idle_begins(&self) -> u64 {
        let mut freezer = lock(&self.freezer);
        freezer.period += 1;
        freezer.period
    }

    /// Freezes the environment after `after` if it is then still in idle period `period`
    /// (back-to-back invokes skip the freeze/thaw round trip).
    pub(crate) fn freeze_later(self: &Arc<Self>, period: u64, after: Duration) {
        let env = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            env.freeze_if_idle(period);
        });
    }

    /// Freezes the environment if it is still in idle period `period`.
    pub(crate) fn freeze_if_idle(&self, period: u64) {
        let mut freezer = lock(&self.freezer);
        if freezer.period == period && !freezer.frozen && *lock(&self.state) == EnvState::Idle {
            self.controls.freeze();
            freezer.frozen = true;
        }
    }

    /// Ends the idle period (the environment was taken): thaws it if it was frozen.
    pub(crate) fn idle_ends(&self) {
        let mut freezer = lock(&self.freezer);
        freezer.period += 1;
        if freezer.frozen {
            self.controls.thaw();
            freezer.frozen = false;
        }
    }

    pub(crate) fn set_restore_duration(&self, duration: Duration) {
        *lock(&self.restore_duration) = Some(duration);
    }

    /// A SnapStart environment's restore duration, the first time it is asked for.
    pub(crate) fn take_restore_duration(&self) -> Option<Duration> {
        lock(&self.restore_duration).take()
    }

    pub(crate) fn set_init_duration(&self, duration: Duration) {
        *lock(&self.init_duration) = Some(duration);
    }

    /// The INIT duration, the first time it is asked for (only the first invoke reports it).
    pub(crate) fn take_init_duration(&self) -> Option<Duration> {
        lock(&self.init_duration).take()
    }

    pub(crate) fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    /// How long ago it started.
    pub(crate) fn age(&self) -> Duration {
        self.born.elapsed()
    }

    pub(crate) fn idle_for(&self) -> Duration {
        lock(&self.last_used).elapsed()
    }

    /// Peak memory of the environment's processes, MB (rounded up).
    pub(crate) fn max_memory_mb(&self) -> u64 {
        let live = self.controls.peak_memory_kib();
        let last = self
            .final_peak_kib
            .load(std::sync::atomic::Ordering::Relaxed);
        live.max(last).div_ceil(1024)
    }

    /// Whether the runtime process has exited already.
    pub(crate) fn has_exited(&self) -> bool {
        self.exit.borrow().is_some()
    }

    /// Whether the kernel killed a process of this environment for exceeding its memory
    /// (recorded before the cgroup is removed).
    pub(crate) fn out_of_memory(&self) -> bool {
        self.oom.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits (at most `limit`) for the process to exit; how it exited, if it did.
    pub(crate) async fn exited_within(&self, limit: Duration) -> String {
        tokio::time::timeout(limit, self.exited())
            .await
            .unwrap_or_else(|_| "Runtime failed without exiting".to_owned())
    }

    /// Waits until the runtime process has exited; returns how it exited.
    pub(crate) async fn exited(&self) -> String {
        let mut exit = self.exit.clone();
        let description = match exit.wait_for(Option::is_some).await {
            Ok(value) => value.clone().unwrap_or_default(),
            Err(_) => "exited".to_owned(),
        };
        description
    }

    /// The memory budget it holds, MiB (none once it is dead).
    pub(crate) fn memory_mb(&self) -> u64 {
        lock(&self.memory).as_ref().map_or(0, Lease::mb)
    }

    /// Stops the process and marks the environment dead; `true` only for the call that
    /// made it dead (so it is counted once).
    pub(crate) fn stop(&self, how: Stop) -> bool {
        let first = self.transition(EnvState::Dead).is_ok();
        let _ = self.stop.send(how);
        if first {
            // The process is going: its memory may be planned for another.
            drop(lock(&self.memory).take());
        }
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_and_illegal_transitions() {
        use EnvState::*;
        assert_eq!(Initializing.transition(Idle), Ok(Idle));
        assert_eq!(Idle.transition(Busy), Ok(Busy));
        assert_eq!(Busy.transition(Idle), Ok(Idle));
        assert_eq!(Busy.transition(Dead), Ok(Dead));
        assert_eq!(Initializing.transition(Busy), Ok(Busy));
        assert!(Busy.transition(Initializing).is_err());
        assert!(Dead.transition(Idle).is_err());
        assert!(Idle.transition(Idle).is_err());
        assert!(Dead.transition(Dead).is_err());
    }
}
