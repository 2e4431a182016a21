//! Isolated environments' supervisors: starting one (in the environment's cgroup, with
//! an empty environment), handing it the environment over its socket, waiting for its
//! report that the runtime started, and keeping one *spare* started ahead of need.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use crate::{
    cgroup, isolate, prepare_child, ProcessSandbox, ProcessSandboxConfig, SandboxError,
    SandboxProcess, SpawnSpec,
};

/// An isolated environment's supervisor, started with `--await-spec` (in the
/// environment's cgroup, if any) and waiting on `control` for the environment: it never
/// sees the function's variables in its own environment or on its command line. Started
/// ahead of need, it is a *spare*: joining a cgroup waits for an RCU grace period in the
/// kernel (about 15 ms on cgroup v1 here), which a spare pays before anyone is waiting.
#[derive(Debug)]
struct Supervisor {
    child: tokio::process::Child,
    pid: u32,
    cgroup: Option<Arc<cgroup::EnvCgroup>>,
    control: std::os::unix::net::UnixStream,
}

impl Supervisor {
    /// Starts one, in `cgroup` (which is removed again if the start fails).
    fn start(
        isolation: &isolate::Isolation,
        cgroup: Option<Arc<cgroup::EnvCgroup>>,
    ) -> Result<Supervisor, SandboxError> {
        let result = (|| {
            let procs = match &cgroup {
                Some(cgroup) => cgroup.procs_files()?,
                None => Vec::new(),
            };
            let (control, theirs) =
                std::os::unix::net::UnixStream::pair().map_err(SandboxError::Output)?;
            let mut command = std::process::Command::new(&isolation.init_program);
            command
                .args([isolate::INIT_ARG, isolate::AWAIT_ARG])
                .env_clear()
                .current_dir("/")
                .stdin(Stdio::from(OwnedFd::from(theirs)))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own group, so ending the environment ends everything it started.
                .process_group(0);
            prepare_child(&mut command, procs, None);
            let mut command = tokio::process::Command::from(command);
            command.kill_on_drop(true);
            let child = command.spawn().map_err(|source| SandboxError::Spawn {
                program: isolation.init_program.clone(),
                source,
            })?;
            Ok(Supervisor {
                pid: child.id().unwrap_or(0),
                child,
                cgroup: cgroup.clone(),
                control,
            })
        })();
        if result.is_err() {
            if let Some(cgroup) = &cgroup {
                cgroup.remove();
            }
        }
        result
    }

    /// Sends the environment: the payload's length with the output descriptor (and the
    /// network namespace's) attached, then the payload, then end-of-file.
    fn hand_over(&mut self, spec: &SpawnSpec, payload: &[u8]) -> std::io::Result<()> {
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
        use std::io::Write;
        let mut fds = vec![spec.output.as_raw_fd()];
        fds.extend(spec.netns.as_ref().map(AsRawFd::as_raw_fd));
        let header = (payload.len() as u64).to_le_bytes();
        let sent = sendmsg::<()>(
            self.control.as_raw_fd(),
            &[std::io::IoSlice::new(&header)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(std::io::Error::from)?;
        self.control.write_all(&header[sent..])?;
        self.control.write_all(payload)?;
        self.control.shutdown(std::net::Shutdown::Write)
    }

    /// Waits until the supervisor reports that the runtime started, or why the environment
    /// could not be set up (a mount, a bad `#!` line, ...).
    fn wait_started(&mut self) -> std::io::Result<()> {
        use std::io::Read;
        self.control
            .set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut answer = Vec::new();
        (&self.control).take(64 * 1024).read_to_end(&mut answer)?;
        match answer.split_first() {
            Some((b'S', _)) => Ok(()),
            Some((b'E', reason)) => Err(std::io::Error::other(
                String::from_utf8_lossy(reason).into_owned(),
            )),
            _ => Err(std::io::Error::other(
                "the environment's supervisor ended before starting the runtime",
            )),
        }
    }

    fn into_process(self) -> SandboxProcess {
        SandboxProcess {
            child: self.child,
            pid: self.pid,
            cgroup: self.cgroup,
            reaped: false,
        }
    }

    /// Ends it (it never ran anything) and removes its cgroup, off the caller's thread:
    /// waiting for a v1 cgroup to empty sleeps.
    fn discard(self) {
        let runtime = tokio::runtime::Handle::try_current().ok();
        std::thread::spawn(move || {
            let _guard = runtime.as_ref().map(tokio::runtime::Handle::enter);
            self.discard_now();
        });
    }

    fn discard_now(self) {
        if let Some(cgroup) = &self.cgroup {
            cgroup.kill_all();
        }
        drop(self.child);
        if let Some(cgroup) = &self.cgroup {
            cgroup.remove();
        }
    }
}

/// At most one spare, refilled on a thread after each use.
#[derive(Debug, Default)]
pub(crate) struct Spares {
    slot: std::sync::Mutex<Option<Supervisor>>,
    filling: std::sync::atomic::AtomicBool,
    closed: std::sync::atomic::AtomicBool,
    made: std::sync::atomic::AtomicU64,
}

impl ProcessSandbox {
    /// Starts a spare supervisor, in a cgroup of its own if there are cgroups.
    fn make_spare(config: &ProcessSandboxConfig, n: u64) -> Result<Supervisor, SandboxError> {
        let Ok(isolation) = &config.isolation else {
            return Err(SandboxError::Output(std::io::Error::other(
                "spares need isolation",
            )));
        };
        let cgroup = match &config.cgroups {
            Ok(cgroups) => {
                let limits = cgroup::Limits {
                    memory_bytes: 128 << 20,
                    cpu_quota: None,
                    pids_max: config.pids_max,
                };
                Some(Arc::new(cgroups.create(&format!("spare-{n}"), &limits)?))
            }
            Err(_) => None,
        };
        Supervisor::start(isolation, cgroup)
    }

    /// Makes a spare on a thread of its own if there is none and none is coming.
    fn refill(&self) {
        use std::sync::atomic::Ordering;
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.spares.closed.load(Ordering::Acquire)
            || self.spares.filling.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let spares = Arc::clone(&self.spares);
        let config = self.config.clone();
        std::thread::spawn(move || {
            // Child processes are registered with the async runtime that reaps them.
            let _guard = runtime.enter();
            let n = spares.made.fetch_add(1, Ordering::Relaxed);
            match Self::make_spare(&config, n) {
                Ok(spare) if !spares.closed.load(Ordering::Acquire) => {
                    *spares.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(spare);
                }
                Ok(spare) => spare.discard_now(),
                Err(error) => tracing::warn!(%error, "cannot start a spare environment"),
            }
            spares.filling.store(false, Ordering::Release);
        });
    }

    /// Takes the spare, if there is one, and starts making the next.
    fn take_spare(&self) -> Option<Supervisor> {
        let spare = self
            .spares
            .slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        self.refill();
        spare
    }

    /// An isolated environment: a spare supervisor, else one of its own, handed `spec`.
    pub(crate) fn spawn_isolated(
        &self,
        isolation: &isolate::Isolation,
        spec: SpawnSpec,
    ) -> Result<SandboxProcess, SandboxError> {
        let limits = cgroup::Limits {
            memory_bytes: u64::from(spec.memory_mb) << 20,
            // INIT runs unthrottled; the quota is applied once the runtime is ready.
            cpu_quota: None,
            pids_max: self.config.pids_max,
        };
        let payload = isolation.hand_over_payload(&spec, self.config.seccomp.is_ok());
        if let Some(mut spare) = self.take_spare() {
            let sent = match &spare.cgroup {
                Some(cgroup) => cgroup.apply(&limits).map_err(std::io::Error::other),
                None => Ok(()),
            }
            .and_then(|()| spare.hand_over(&spec, &payload));
            match sent {
                // The supervisor holds its own copies of the descriptors now.
                Ok(()) => return Self::started(spare, spec),
                Err(error) => {
                    tracing::warn!(%error, "spare environment unusable; starting one directly");
                    spare.discard();
                }
            }
        }
        let cgroup = match &self.config.cgroups {
            Ok(cgroups) => Some(Arc::new(cgroups.create(&spec.id, &limits)?)),
            Err(_) => None,
        };
        let mut supervisor = Supervisor::start(isolation, cgroup)?;
        match supervisor.hand_over(&spec, &payload) {
            Ok(()) => Self::started(supervisor, spec),
            Err(source) => {
                supervisor.discard();
                Err(SandboxError::Spawn {
                    program: spec.program,
                    source,
                })
            }
        }
    }

    /// The environment of a supervisor that has its spec, once its runtime is running.
    fn started(
        mut supervisor: Supervisor,
        spec: SpawnSpec,
    ) -> Result<SandboxProcess, SandboxError> {
        match supervisor.wait_started() {
            Ok(()) => Ok(supervisor.into_process()),
            Err(source) => {
                supervisor.discard();
                Err(SandboxError::Spawn {
                    program: spec.program,
                    source,
                })
            }
        }
    }

    /// Ends the spare and stops making new ones (at server shutdown).
    pub(crate) fn close_spares(&self) {
        self.spares
            .closed
            .store(true, std::sync::atomic::Ordering::Release);
        // A spare being made right now is discarded by its thread; wait for it, so the
        // cgroups below are removed after it.
        for _ in 0..500 {
            if !self
                .spares
                .filling
                .load(std::sync::atomic::Ordering::Acquire)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(spare) = self
            .spares
            .slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            spare.discard_now();
        }
    }
}
