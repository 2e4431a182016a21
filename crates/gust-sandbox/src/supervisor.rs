//! Isolated environments' supervisors: starting one (in the environment's cgroup, with
//! an empty environment), handing it the environment over its socket (its report that the
//! runtime started is the caller's to await, but a primed runtime's), and keeping one
//! *spare* started ahead of need.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use crate::{
    cgroup, isolate, ProcessSandbox, ProcessSandboxConfig, SandboxError, SandboxProcess, SpawnSpec,
};

/// An isolated environment's supervisor, started with `--await-spec` (in the
/// environment's cgroup, if any) and waiting on `control` for the environment: it never
/// sees the function's variables in its own environment or on its command line. Started
/// ahead of need, it is a *spare*: joining a cgroup waits for an RCU grace period in the
/// kernel (about 15 ms on cgroup v1 here), which a spare pays before anyone is waiting.
#[derive(Debug)]
pub(crate) struct Supervisor {
    child: tokio::process::Child,
    pid: u32,
    cgroup: Option<Arc<cgroup::EnvCgroup>>,
    control: std::os::unix::net::UnixStream,
}

impl Supervisor {
    /// Starts one, in `cgroup` (which is removed again if the start fails).
    pub(crate) fn start(
        isolation: &isolate::Isolation,
        cgroup: Option<Arc<cgroup::EnvCgroup>>,
    ) -> Result<Supervisor, SandboxError> {
        let result = (|| {
            let (control, theirs) =
                std::os::unix::net::UnixStream::pair().map_err(SandboxError::Output)?;
            let mut command = std::process::Command::new(&isolation.init_program);
            command.args([isolate::INIT_ARG, isolate::AWAIT_ARG]);
            // Joined by the supervisor itself, first thing: no `pre_exec` hook, so the
            // server spawns it without copying its own address space (`posix_spawn`).
            for procs in cgroup.iter().flat_map(|c| c.procs_paths()) {
                command.arg(isolate::JOIN_ARG).arg(procs);
            }
            command
                .env_clear()
                .current_dir("/")
                .stdin(Stdio::from(OwnedFd::from(theirs)))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own group, so ending the environment ends everything it started.
                .process_group(0);
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
    /// extensions' output and the network namespace's, when there are) attached, then the
    /// payload, then end-of-file.
    fn hand_over(&mut self, spec: &SpawnSpec, payload: &[u8]) -> std::io::Result<()> {
        let mut fds = vec![spec.output.as_raw_fd()];
        fds.extend(spec.extension_output.as_ref().map(AsRawFd::as_raw_fd));
        fds.extend(spec.netns.as_ref().map(AsRawFd::as_raw_fd));
        self.send(&fds, payload)?;
        self.control.shutdown(std::net::Shutdown::Write)
    }

    /// The payload's length (with `fds` attached, if any), then the payload.
    pub(crate) fn send(
        &mut self,
        fds: &[std::os::fd::RawFd],
        payload: &[u8],
    ) -> std::io::Result<()> {
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
        use std::io::Write;
        let header = (payload.len() as u64).to_le_bytes();
        let rights = [ControlMessage::ScmRights(fds)];
        let sent = sendmsg::<()>(
            self.control.as_raw_fd(),
            &[std::io::IoSlice::new(&header)],
            if fds.is_empty() { &[] } else { &rights },
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(std::io::Error::from)?;
        self.control.write_all(&header[sent..])?;
        self.control.write_all(payload)
    }

    /// Ends the message to the supervisor (it reads until end-of-file).
    pub(crate) fn shutdown_write(&mut self) -> std::io::Result<()> {
        self.control.shutdown(std::net::Shutdown::Write)
    }

    /// Its host pid and process (a zygote's, which the supervisor became).
    pub(crate) fn into_child(self) -> (u32, tokio::process::Child) {
        (self.pid, self.child)
    }

    /// Primes it: sends the runtime's part of the environment with `output` (the spare's
    /// own pipe) and waits until its runtime was started in prime mode. A *forked* spare's
    /// init first asks (`Z`, with its namespaces and pipes) for its runtime, which
    /// `zygote` forks.
    fn prime(
        &mut self,
        isolation: &isolate::Isolation,
        output: &OwnedFd,
        payload: &[u8],
        zygote: Option<(&crate::zygote::Zygote, bool)>,
    ) -> std::io::Result<()> {
        use std::io::Read;
        self.send(&[output.as_raw_fd()], payload)?;
        self.control
            .set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut answer = [0u8; 1];
        let (read, handed) = self.receive_fds(&mut answer)?;
        if read == 1 && answer[0] == b'Z' {
            let Some((zygote, warm)) = zygote else {
                return Err(std::io::Error::other("a forked spare without a zygote"));
            };
            use std::os::fd::AsFd;
            zygote.fork(
                isolation,
                &handed,
                output.as_fd(),
                self.cgroup.as_deref(),
                self.pid,
                warm,
            )?;
            drop(handed);
        } else {
            drop(handed);
            // Not a request: the answer itself.
            return self.primed_answer((read == 1).then_some(answer[0]));
        }
        let read = (&self.control).read(&mut answer)?;
        self.primed_answer((read == 1).then_some(answer[0]))
    }

    /// One byte from the supervisor, with the descriptors sent with it.
    fn receive_fds(&mut self, byte: &mut [u8; 1]) -> std::io::Result<(usize, Vec<OwnedFd>)> {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        use std::os::fd::FromRawFd;
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 8]);
        let mut iov = [std::io::IoSliceMut::new(byte)];
        let message = recvmsg::<()>(
            self.control.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(std::io::Error::from)?;
        let mut fds = Vec::new();
        for control in message.cmsgs().map_err(std::io::Error::from)? {
            if let ControlMessageOwned::ScmRights(received) = control {
                // SAFETY: each descriptor was just received and is owned by nothing else.
                fds.extend(
                    received
                        .into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        Ok((message.bytes, fds))
    }

    /// What a primed supervisor's answer `byte` means (`None`: it ended).
    fn primed_answer(&mut self, byte: Option<u8>) -> std::io::Result<()> {
        use std::io::Read;
        match byte {
            Some(b'S') => Ok(()),
            None => Err(std::io::Error::other(
                "the supervisor ended before priming its runtime",
            )),
            Some(_) => {
                let mut reason = Vec::new();
                (&self.control).take(64 * 1024).read_to_end(&mut reason)?;
                Err(std::io::Error::other(
                    String::from_utf8_lossy(&reason).into_owned(),
                ))
            }
        }
    }

    /// The supervisor's report: `Ok(Ok(()))` when the runtime started, `Ok(Err(reason))`
    /// when the init said why the environment could not be set up, `Err` when the report
    /// could not be read (the supervisor ended, a timeout).
    pub(crate) fn wait_report(&mut self) -> std::io::Result<Result<(), String>> {
        use std::io::Read;
        self.control
            .set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut answer = Vec::new();
        (&self.control).take(64 * 1024).read_to_end(&mut answer)?;
        match answer.split_first() {
            Some((b'S', _)) => Ok(Ok(())),
            Some((b'E', reason)) => Ok(Err(String::from_utf8_lossy(reason).into_owned())),
            _ => Err(std::io::Error::other(
                "the environment's supervisor ended before starting the runtime",
            )),
        }
    }

    /// The environment's process for `spec`; its report still to come (see
    /// [`crate::StartReport`]) when `reporting`.
    fn into_process(self, spec: &SpawnSpec, reporting: bool) -> SandboxProcess {
        SandboxProcess {
            child: self.child,
            pid: self.pid,
            cgroup: self.cgroup,
            reaped: false,
            private_network: spec.netns.is_some(),
            report: reporting.then(|| crate::StartReport::new(spec.program.clone(), self.control)),
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

    pub(crate) fn discard_now(self) {
        if let Some(cgroup) = &self.cgroup {
            cgroup.kill_all();
        }
        drop(self.child);
        if let Some(cgroup) = &self.cgroup {
            cgroup.remove();
        }
    }
}

/// Runs its closure when dropped: a refill's flags are cleared however its task ends,
/// also when the blocking pool drops it unrun (the runtime shutting down).
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// At most one spare, refilled on the blocking pool after each use.
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

    /// Makes a spare on the blocking pool if there is none and none is coming.
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
        let filled = {
            let spares = Arc::clone(&spares);
            OnDrop(move || spares.filling.store(false, Ordering::Release))
        };
        // On the blocking pool (whose threads are in the async runtime that reaps child
        // processes): an idle thread is woken rather than a new one made on the claim's path.
        runtime.spawn_blocking(move || {
            let _filled = filled;
            let n = spares.made.fetch_add(1, Ordering::Relaxed);
            match Self::make_spare(&config, n) {
                Ok(spare) if !spares.closed.load(Ordering::Acquire) => {
                    *spares.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(spare);
                }
                Ok(spare) => spare.discard_now(),
                Err(error) => tracing::warn!(%error, "cannot start a spare environment"),
            }
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
        mut spec: SpawnSpec,
    ) -> Result<SandboxProcess, SandboxError> {
        if let Some(primed) = spec.primed.take() {
            if let Some(process) = self.hand_over_primed(isolation, primed, &spec)? {
                return Ok(process);
            }
        }
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
                // The supervisor holds its own copies of the descriptors now; its report
                // is the caller's to await.
                Ok(()) => return Ok(spare.into_process(&spec, true)),
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
            Ok(()) => Ok(supervisor.into_process(&spec, true)),
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
        self.close_primed();
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

/// How long a claim counts towards a launch key's number of primed spares.
const CLAIM_WINDOW: Duration = Duration::from_secs(10);
/// Claims in the window per primed spare kept (beyond the first).
const CLAIMS_PER_SPARE: usize = 5;
/// How long after a claim its key's next spare is made (the claimed one's cold start
/// goes first; a claim that finds none ready forks one itself, or starts afresh).
const REFILL_AFTER_CLAIM: Duration = Duration::from_millis(20);
/// Priming a key that failed this many times in a row stops.
const MAX_PRIME_FAILURES: u32 = 3;

/// A primed spare: a supervisor whose runtime was started in prime mode, and both ends of
/// the pipe its output goes to (the sandbox keeps the write end until the hand-over, so
/// a failed hand-over can start the environment afresh on the same pipe).
#[derive(Debug)]
pub(crate) struct PrimedSpare {
    supervisor: Supervisor,
    reader: OwnedFd,
    writer: OwnedFd,
}

impl PrimedSpare {
    pub(crate) fn discard(self) {
        self.supervisor.discard();
    }
}

/// The primed spares of one launch key.
#[derive(Debug, Default)]
struct Pool {
    ready: std::collections::VecDeque<PrimedSpare>,
    filling: bool,
    claims: std::collections::VecDeque<std::time::Instant>,
    target: usize,
    failures: u32,
    /// When priming last failed (to try again after [`PRIME_RETRY_AFTER`]).
    failed_at: Option<std::time::Instant>,
    /// When a spare was last claimed.
    last_claim: Option<std::time::Instant>,
    /// The key's zygote, once started (replaced when dead or worn out,
    /// `Zygote::worn_out`; the runtimes it forked are their inits' and outlive it).
    zygote: Option<Arc<crate::zygote::Zygote>>,
    /// When forking last failed (spares are primed without the zygote for
    /// [`PRIME_RETRY_AFTER`]).
    zygote_failed_at: Option<std::time::Instant>,
}

/// A runtime's spares are let go when none has been claimed for this long (the default
/// idle timeout of environments).
const SPARE_UNUSED_FOR: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// How long a runtime whose priming kept failing is started afresh before priming is tried
/// again (a failure may have been passing: memory, a full disk).
const PRIME_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

impl Pool {
    /// Whether forking failed within [`PRIME_RETRY_AFTER`] (spares are primed without
    /// the zygote meanwhile).
    fn forking_failed_lately(&self, now: std::time::Instant) -> bool {
        self.zygote_failed_at
            .is_some_and(|at| now.duration_since(at) < PRIME_RETRY_AFTER)
    }

    /// The zygote to fork from now: alive, and forking has not failed lately.
    fn live_zygote(&self, now: std::time::Instant) -> Option<Arc<crate::zygote::Zygote>> {
        if self.forking_failed_lately(now) {
            return None;
        }
        self.zygote.as_ref().filter(|z| !z.is_dead()).cloned()
    }

    /// Whether priming has failed too often lately to try now.
    fn given_up(&mut self, now: std::time::Instant) -> bool {
        if self.failures < MAX_PRIME_FAILURES {
            return false;
        }
        if self
            .failed_at
            .is_some_and(|at| now.duration_since(at) >= PRIME_RETRY_AFTER)
        {
            self.failures = 0;
            return false;
        }
        true
    }

    /// Spares to keep: one, and one more per [`CLAIMS_PER_SPARE`] recent claims, up to `max`.
    fn retarget(&mut self, now: std::time::Instant, max: usize) {
        while self
            .claims
            .front()
            .is_some_and(|t| now.duration_since(*t) > CLAIM_WINDOW)
        {
            self.claims.pop_front();
        }
        // One is kept while the runtime is in use; a runtime whose spare has not been
        // claimed for [`SPARE_UNUSED_FOR`] keeps none (one primed at start-up, never
        // claimed, is kept: the operator asked for it).
        let unused = self
            .claims
            .back()
            .copied()
            .or(self.last_claim)
            .is_some_and(|last| now.duration_since(last) > SPARE_UNUSED_FOR);
        self.target = if unused {
            0
        } else {
            self.claims.len().div_ceil(CLAIMS_PER_SPARE).clamp(1, max)
        };
    }
}

/// Primed spares by launch key, refilled on a thread per key.
#[derive(Debug, Default)]
pub(crate) struct PrimedPools {
    pools: std::sync::Mutex<std::collections::HashMap<crate::PrimeSpec, Pool>>,
    fillers: std::sync::atomic::AtomicUsize,
    janitor: std::sync::atomic::AtomicBool,
}

impl PrimedPools {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<crate::PrimeSpec, Pool>> {
        self.pools.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Primed spares ready now, by key label (for reports and tests).
    pub(crate) fn ready(&self) -> Vec<(String, usize)> {
        self.lock()
            .iter()
            .map(|(key, pool)| (key.label.clone(), pool.ready.len()))
            .collect()
    }

    /// The host pids of every ready primed spare's supervisor and of every zygote.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.lock()
            .values()
            .flat_map(|pool| {
                pool.ready
                    .iter()
                    .map(|s| s.supervisor.pid)
                    .chain(pool.zygote.as_ref().map(|z| z.pid))
            })
            .collect()
    }
}

impl ProcessSandbox {
    /// Whether primed spares are made: on with isolation on the host's network.
    pub(crate) fn primes(&self) -> bool {
        self.config.primed_max > 0
            && self
                .config
                .isolation
                .as_ref()
                .is_ok_and(|i| i.network == isolate::NetworkMode::Host)
            && tokio::runtime::Handle::try_current().is_ok()
    }

    /// Keeps at least one spare primed for `key` from now on.
    pub(crate) fn keep_primed(&self, key: &crate::PrimeSpec) {
        if !self.primes() {
            return;
        }
        {
            let mut pools = self.primed.lock();
            let pool = pools.entry(key.clone()).or_default();
            pool.target = pool.target.max(1);
        }
        self.fill(key);
    }

    /// Claims a primed spare for `key`, if one is ready, and refills (a key never seen
    /// before is kept primed from now on).
    pub(crate) fn claim_primed(&self, key: &crate::PrimeSpec) -> Option<crate::Claimed> {
        if !self.primes() {
            return None;
        }
        let (spare, zygote) = {
            let mut pools = self.primed.lock();
            let pool = pools.entry(key.clone()).or_default();
            let now = std::time::Instant::now();
            pool.claims.push_back(now);
            pool.last_claim = Some(now);
            pool.retarget(now, self.config.primed_max);
            let spare = pool.ready.pop_front();
            // None ready (a burst): fork one at the hand-over if the key has a zygote.
            let zygote = match spare {
                None => pool.live_zygote(now),
                Some(_) => None,
            };
            (spare, zygote)
        };
        self.fill(key);
        let (reader, writer) = match &spare {
            Some(spare) => (
                spare.reader.try_clone().ok()?,
                spare.writer.try_clone().ok()?,
            ),
            None => {
                zygote.as_ref()?;
                let (reader, writer) = std::io::pipe().ok()?;
                (reader.into(), writer.into())
            }
        };
        Some(crate::Claimed {
            reader,
            writer,
            primed: crate::Primed {
                key: key.clone(),
                spare,
                zygote,
            },
        })
    }

    /// Makes primed spares for `key` on the blocking pool until it has its target.
    fn fill(&self, key: &crate::PrimeSpec) {
        use std::sync::atomic::Ordering;
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.spares.closed.load(Ordering::Acquire) {
            return;
        }
        {
            let mut pools = self.primed.lock();
            let Some(pool) = pools.get_mut(key) else {
                return;
            };
            if pool.filling
                || pool.given_up(std::time::Instant::now())
                || pool.ready.len() >= pool.target
            {
                return;
            }
            pool.filling = true;
        }
        self.start_janitor(&runtime);
        let (spares, primed, config, key) = (
            Arc::clone(&self.spares),
            Arc::clone(&self.primed),
            self.config.clone(),
            key.clone(),
        );
        primed.fillers.fetch_add(1, Ordering::AcqRel);
        let filled = {
            let (primed, key) = (Arc::clone(&primed), key.clone());
            OnDrop(move || {
                if let Some(pool) = primed.lock().get_mut(&key) {
                    pool.filling = false;
                }
                primed.fillers.fetch_sub(1, Ordering::AcqRel);
            })
        };
        // On the blocking pool: see `refill`.
        runtime.spawn_blocking(move || {
            let _filled = filled;
            loop {
                // A spare made while a claimed one is being handed over takes its CPU
                // (two cores: ~3 ms of a 6 ms cold start); the next comes a little later.
                let claimed = primed.lock().get(&key).and_then(|pool| pool.last_claim);
                if let Some(wait) =
                    claimed.and_then(|at| REFILL_AFTER_CLAIM.checked_sub(at.elapsed()))
                {
                    std::thread::sleep(wait);
                }
                let n = spares.made.fetch_add(1, Ordering::Relaxed);
                let zygote = Self::zygote_for(&primed, &config, &key);
                let made = Self::make_primed(&config, &key, n, zygote.as_deref());
                let mut pools = primed.lock();
                let Some(pool) = pools.get_mut(&key) else {
                    break;
                };
                if made.is_err() && zygote.is_some() {
                    pool.zygote_failed_at = Some(std::time::Instant::now());
                }
                match made {
                    Ok(spare) if !spares.closed.load(Ordering::Acquire) => {
                        pool.failures = 0;
                        pool.ready.push_back(spare);
                    }
                    Ok(spare) => {
                        drop(pools);
                        spare.supervisor.discard_now();
                        break;
                    }
                    Err(error) => {
                        pool.failures += 1;
                        pool.failed_at = Some(std::time::Instant::now());
                        tracing::warn!(%error, runtime = %key.label, failures = pool.failures, "cannot prime an environment");
                    }
                }
                if spares.closed.load(Ordering::Acquire)
                    || pool.failures >= MAX_PRIME_FAILURES
                    || pool.ready.len() >= pool.target
                {
                    pool.filling = false;
                    break;
                }
            }
        });
    }

    /// The zygote to fork `key`'s runtimes from, started if need be: none when the
    /// runtime is not forkable, zygotes are off, or forking failed lately.
    fn zygote_for(
        primed: &PrimedPools,
        config: &ProcessSandboxConfig,
        key: &crate::PrimeSpec,
    ) -> Option<Arc<crate::zygote::Zygote>> {
        if !key.fork || key.staged || !config.zygotes {
            return None;
        }
        {
            let mut pools = primed.lock();
            let pool = pools.get_mut(key)?;
            let now = std::time::Instant::now();
            if pool.forking_failed_lately(now) {
                return None;
            }
            if let Some(zygote) = pool.live_zygote(now).filter(|z| !z.worn_out()) {
                return Some(zygote);
            }
            if pool.zygote.take().is_some_and(|z| z.is_dead()) {
                tracing::warn!(runtime = %key.label, "zygote gone; starting another");
            }
            // A worn-out one ends once the last claim using it has forked.
        }
        let started = crate::zygote::Zygote::start(config, key);
        let mut pools = primed.lock();
        let pool = pools.get_mut(key)?;
        match started {
            Ok(zygote) => {
                let zygote = Arc::new(zygote);
                pool.zygote = Some(Arc::clone(&zygote));
                Some(zygote)
            }
            Err(error) => {
                tracing::warn!(%error, runtime = %key.label, "cannot start a zygote; priming without one");
                pool.zygote_failed_at = Some(std::time::Instant::now());
                None
            }
        }
    }

    /// A spare supervisor, primed for `key` (its runtime forked by `zygote`, if any).
    fn make_primed(
        config: &ProcessSandboxConfig,
        key: &crate::PrimeSpec,
        n: u64,
        zygote: Option<&crate::zygote::Zygote>,
    ) -> Result<PrimedSpare, SandboxError> {
        let (reader, writer) = std::io::pipe().map_err(SandboxError::Output)?;
        let (reader, writer) = (OwnedFd::from(reader), OwnedFd::from(writer));
        let supervisor =
            Self::primed_supervisor(config, key, n, zygote.map(|z| (z, true)), &writer)?;
        Ok(PrimedSpare {
            supervisor,
            reader,
            writer,
        })
    }

    /// A spare supervisor whose runtime was started (or forked by `zygote`, warmed up or
    /// not) in prime mode for `key`, writing to `output`.
    fn primed_supervisor(
        config: &ProcessSandboxConfig,
        key: &crate::PrimeSpec,
        n: u64,
        zygote: Option<(&crate::zygote::Zygote, bool)>,
        output: &OwnedFd,
    ) -> Result<Supervisor, SandboxError> {
        let Ok(isolation) = &config.isolation else {
            return Err(SandboxError::Output(std::io::Error::other(
                "priming needs isolation",
            )));
        };
        let mut supervisor = Self::make_spare(config, n)?;
        let payload = isolation.prime_payload(key, config.seccomp.is_ok(), zygote.is_some());
        match supervisor.prime(isolation, output, &payload, zygote) {
            Ok(()) => Ok(supervisor),
            Err(source) => {
                supervisor.discard_now();
                Err(SandboxError::Spawn {
                    program: key.program.clone(),
                    source,
                })
            }
        }
    }

    /// Once per sandbox: a thread that shrinks each key's spares to what its recent claims
    /// call for (one while in use, none once unused for [`SPARE_UNUSED_FOR`]), every two
    /// seconds, until the sandbox closes.
    fn start_janitor(&self, runtime: &tokio::runtime::Handle) {
        use std::sync::atomic::Ordering;
        if self.primed.janitor.swap(true, Ordering::AcqRel) {
            return;
        }
        let (spares, primed, max) = (
            Arc::clone(&self.spares),
            Arc::clone(&self.primed),
            self.config.primed_max,
        );
        let runtime = runtime.clone();
        std::thread::spawn(move || {
            let _guard = runtime.enter();
            while !spares.closed.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_secs(2));
                let now = std::time::Instant::now();
                let mut excess = Vec::new();
                for pool in primed.lock().values_mut() {
                    pool.retarget(now, max);
                    while pool.ready.len() > pool.target {
                        excess.extend(pool.ready.pop_back());
                    }
                }
                for spare in excess {
                    spare.supervisor.discard_now();
                }
            }
        });
    }

    /// Hands the rest of `spec` to the primed (or staged) spare claimed for it. `None`
    /// when the spare cannot take it (it is discarded; nothing of the function ran): the
    /// environment is then started afresh on the same output pipe. A staged spare's init
    /// that says why it could not start the environment failed where a fresh one would
    /// (the function's bootstrap, its binds): that is the spawn's error.
    pub(crate) fn hand_over_primed(
        &self,
        isolation: &isolate::Isolation,
        mut primed: crate::Primed,
        spec: &SpawnSpec,
    ) -> Result<Option<SandboxProcess>, SandboxError> {
        if !primed.key.accepts(spec) {
            tracing::debug!(runtime = %primed.key.label, "environment not eligible for its primed spare");
            return Ok(None);
        }
        let mut supervisor = match (primed.spare.take(), primed.zygote.take()) {
            (Some(spare), _) => {
                let PrimedSpare {
                    supervisor,
                    reader,
                    writer,
                } = spare;
                drop((reader, writer));
                supervisor
            }
            (None, Some(zygote)) => {
                let started = std::time::Instant::now();
                let n = self
                    .spares
                    .made
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                match Self::primed_supervisor(
                    &self.config,
                    &primed.key,
                    n,
                    Some((&zygote, false)),
                    &spec.output,
                ) {
                    Ok(supervisor) => {
                        tracing::debug!(
                            target: "gust::coldstart",
                            forked_us = started.elapsed().as_micros() as u64,
                            "spare forked on demand"
                        );
                        supervisor
                    }
                    Err(error) => {
                        tracing::warn!(%error, runtime = %primed.key.label, "cannot fork an environment; starting one afresh");
                        return Ok(None);
                    }
                }
            }
            (None, None) => return Ok(None),
        };
        let limits = cgroup::Limits {
            memory_bytes: u64::from(spec.memory_mb) << 20,
            cpu_quota: None,
            pids_max: self.config.pids_max,
        };
        let payload = isolation.hand_over_payload(spec, self.config.seccomp.is_ok());
        let started = std::time::Instant::now();
        let handed = match &supervisor.cgroup {
            Some(cgroup) => cgroup.apply(&limits).map_err(std::io::Error::other),
            None => Ok(()),
        }
        .and_then(|()| {
            let limited = started.elapsed();
            let extension_output: Vec<_> = spec
                .extension_output
                .as_ref()
                .map(AsRawFd::as_raw_fd)
                .into_iter()
                .collect();
            supervisor.send(&extension_output, &payload)?;
            supervisor.control.shutdown(std::net::Shutdown::Write)?;
            // A staged init's report (after it started the function's bootstrap) is
            // awaited by the caller alongside the bootstrap's first request: nothing
            // waits for a thread to be woken for it first. A primed runtime's init reports
            // before waking the runtime, and a spare that cannot take the environment is
            // replaced by a fresh start, so that report is waited for here.
            let report = if primed.key.staged {
                Ok(())
            } else {
                supervisor.wait_report()?
            };
            // `GUST_LOG=gust::coldstart=debug`: the cgroup's limits, then (primed) the
            // init's mounts, pivot and privilege drop until the runtime has its environment.
            tracing::debug!(
                target: "gust::coldstart",
                staged = primed.key.staged,
                cgroup_limits_us = limited.as_micros() as u64,
                handed_over_us = started.elapsed().as_micros() as u64,
                "primed hand-over"
            );
            Ok(report)
        });
        match handed {
            Ok(Ok(())) => Ok(Some(supervisor.into_process(spec, primed.key.staged))),
            Ok(Err(reason)) => {
                tracing::warn!(error = %reason, runtime = %primed.key.label, "primed environment unusable; starting one afresh");
                supervisor.discard();
                Ok(None)
            }
            Err(error) => {
                tracing::warn!(%error, runtime = %primed.key.label, "primed environment unusable; starting one afresh");
                supervisor.discard();
                Ok(None)
            }
        }
    }

    /// Ends every primed spare (at shutdown, after `closed` is set).
    pub(crate) fn close_primed(&self) {
        for _ in 0..500 {
            if self
                .primed
                .fillers
                .load(std::sync::atomic::Ordering::Acquire)
                == 0
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let spares: Vec<PrimedSpare> = self
            .primed
            .lock()
            .values_mut()
            .flat_map(|pool| pool.ready.drain(..))
            .collect();
        for spare in spares {
            spare.supervisor.discard_now();
        }
        let zygotes: Vec<_> = self
            .primed
            .lock()
            .values_mut()
            .filter_map(|pool| pool.zygote.take())
            .collect();
        drop(zygotes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn spares_follow_claims_and_go_when_unused() {
        let t0 = Instant::now();
        let mut pool = Pool::default();
        pool.retarget(t0, 8);
        assert_eq!(pool.target, 1, "primed at start-up, never claimed: kept");
        for i in 0..12 {
            let at = t0 + Duration::from_millis(i * 100);
            pool.claims.push_back(at);
            pool.last_claim = Some(at);
        }
        pool.retarget(t0 + Duration::from_secs(2), 8);
        assert_eq!(pool.target, 12usize.div_ceil(CLAIMS_PER_SPARE).clamp(1, 8));
        pool.retarget(t0 + Duration::from_secs(60), 8);
        assert_eq!(pool.target, 1, "in use lately: one");
        pool.retarget(t0 + SPARE_UNUSED_FOR + Duration::from_secs(5), 8);
        assert_eq!(pool.target, 0, "unused: none");
    }

    #[test]
    fn priming_is_tried_again_after_failures() {
        let t0 = Instant::now();
        let mut pool = Pool {
            failures: MAX_PRIME_FAILURES,
            failed_at: Some(t0),
            ..Pool::default()
        };
        assert!(pool.given_up(t0 + Duration::from_secs(1)));
        assert!(!pool.given_up(t0 + PRIME_RETRY_AFTER));
        assert_eq!(pool.failures, 0);
    }
}
