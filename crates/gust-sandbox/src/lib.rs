//! Starting and stopping the processes of execution environments.
//!
//! The engine asks a [`Sandbox`] to start a runtime process from a [`SpawnSpec`] and gets a
//! [`SandboxProcess`] back: it can wait for it, measure its memory, freeze and thaw it, and
//! end it together with every process it started. [`ProcessSandbox`] runs each environment
//! as its own process group and, where the host allows, in its own cgroup ([`cgroup`]) with
//! Lambda's memory, CPU and process limits, and where the host allows it in namespaces of
//! its own with Lambda's filesystem, as an unprivileged user under a seccomp filter
//! ([`isolate`]).
//!
//! This is the only crate with `unsafe`: the `pre_exec` hook that joins the cgroup, the
//! fork of the environment's init, and a few `ioctl`/`prctl` calls.
#![allow(unsafe_code)]

pub mod cgroup;
pub mod isolate;
pub mod seccomp;
mod supervisor;
mod zygote;

use std::collections::HashSet;
use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::killpg;
pub use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// Why a process could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The program could not be executed.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// What was started.
        program: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Duplicating the output descriptor failed.
    #[error("cannot set up process output: {0}")]
    Output(#[source] std::io::Error),
    /// The environment's cgroup could not be set up.
    #[error(transparent)]
    Cgroup(#[from] cgroup::CgroupError),
    /// The environment's namespaces could not be set up.
    #[error(transparent)]
    Isolate(#[from] isolate::IsolateError),
}

/// Everything needed to start one environment's runtime process.
#[derive(Debug)]
pub struct SpawnSpec {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments (without the program).
    pub args: Vec<OsString>,
    /// The complete environment (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// Working directory (the code root), as the runtime sees it.
    pub cwd: PathBuf,
    /// Where stdout and stderr both go (one pipe, so their lines stay in order).
    pub output: OwnedFd,
    /// A unique name for the environment (its cgroup's).
    pub id: String,
    /// The function's memory, MB: the memory limit and the CPU share follow it.
    pub memory_mb: u32,
    /// Size of the private `/tmp`, MB (the function's ephemeral storage).
    pub tmp_mb: u32,
    /// Host paths the environment sees read-only: the code at `/var/task`, the bootstraps at
    /// `/var/runtime`, layers under `/opt`, and interpreters outside the system directories.
    pub binds: Vec<isolate::Bind>,
    /// The network namespace to run in (from [`Sandbox::private_network`]), if any.
    pub netns: Option<OwnedFd>,
    /// External extensions (`/opt/extensions/…` as the environment sees them), started
    /// before the runtime with its user, environment, directory and limits. One exiting
    /// does not end the environment; ending the environment ends them.
    pub extensions: Vec<PathBuf>,
    /// Where the extensions' stdout and stderr go: a pipe of their own, so their lines are
    /// told from the runtime's (the Telemetry API's `extension` type); `None`: `output`.
    pub extension_output: Option<OwnedFd>,
    /// A primed spare claimed for this environment ([`Sandbox::take_primed`]): it is handed
    /// the rest of the environment instead of a runtime being started, and `output` is the
    /// write end of the spare's own pipe (used if the spare cannot take it after all).
    pub primed: Option<Primed>,
}

/// What a *primed* spare is made from: one runtime's program, arguments, fixed variables
/// and binds, everything an environment of it has before its function is known. It is
/// also the spare's launch key: a spare serves only an environment that would start the
/// same process ([`PrimeSpec::accepts`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PrimeSpec {
    /// The runtime's identifier, for logs and reports.
    pub label: String,
    /// The interpreter.
    pub program: PathBuf,
    /// Its arguments (the bootstrap's), as an environment's.
    pub args: Vec<OsString>,
    /// The variables every environment of the runtime starts with (`PATH`, `LANG`,
    /// `LD_LIBRARY_PATH`, `AWS_EXECUTION_ENV`, `NODE_PATH`, ...).
    pub env: Vec<(String, String)>,
    /// The binds every environment of the runtime has (`/var/runtime`, the interpreter's
    /// home); the function's (`/var/task`, `/opt`) come at the hand-over.
    pub binds: Vec<isolate::Bind>,
    /// A *staged* spare (custom runtimes, `provided*`, whose program is the function's
    /// own): its init builds the root but starts nothing; at the hand-over it mounts the
    /// function's binds and `/tmp`, pivots, drops its privileges and executes `program`
    /// with the environment's variables, exactly as a fresh environment's init does. No
    /// process has started before the hand-over, so any variable is accepted.
    pub staged: bool,
    /// The runtime can be forked once loaded (Python): its spares' runtimes are forked
    /// from a zygote of this key when the sandbox has zygotes on.
    pub fork: bool,
}

/// Variables (by prefix) that act when a process starts: the interpreters' options, the
/// dynamic loader, the locale, the allocator. An environment with any of them set
/// otherwise than its primed spare was started with is started afresh.
const STARTUP_PREFIXES: &[&str] = &[
    "PYTHON", "NODE_", "LD_", "LC_", "UV_", "MALLOC_", "GLIBC_", "OPENSSL_",
];
/// The same, by name.
const STARTUP_NAMES: &[&str] = &[
    "LANG",
    "LANGUAGE",
    "HOME",
    // glibc's locale files, read by the `setlocale` Python calls at start.
    "LOCPATH",
    "AWS_LAMBDA_EXEC_WRAPPER",
    isolate::HANDOVER_VAR,
];
/// Fixed variables a bootstrap applies again after the hand-over (`time.tzset()`, Node's
/// `TZ` setter) or that only later lookups read: a function may set these and still use a
/// primed spare.
const ADJUSTABLE: &[&str] = &["TZ", "PATH", "AWS_XRAY_CONTEXT_MISSING"];
/// Where a function's binds may go in a primed spare: the sealed root has these as empty
/// mount points.
const HANDOVER_MOUNT_POINTS: &[&str] = &["/var/task", "/opt"];

/// Names under a [`STARTUP_PREFIXES`] prefix that nothing reads at start: only the
/// function's own code does (most Node.js functions set `NODE_ENV`).
const READ_LATER: &[&str] = &["NODE_ENV"];

fn acts_at_start(name: &str) -> bool {
    !READ_LATER.contains(&name)
        && (STARTUP_NAMES.contains(&name) || STARTUP_PREFIXES.iter().any(|p| name.starts_with(p)))
}

impl PrimeSpec {
    /// Whether a function's own `variables` let its environment use a spare primed with
    /// this spec: none overrides a fixed one (but [`ADJUSTABLE`]) or sets one that acts at
    /// process start.
    pub fn admits<'a>(&self, variables: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
        if self.staged {
            return true;
        }
        variables.into_iter().all(
            |(name, value)| match self.env.iter().find(|(n, _)| n == name) {
                Some((_, fixed)) => fixed == value || ADJUSTABLE.contains(&name),
                None => !acts_at_start(name),
            },
        )
    }

    /// Whether `spec` would start exactly the process a spare primed with this spec runs:
    /// the same program and arguments, every fixed variable as it was (but the adjustable
    /// ones), no other variable that acts at start, the same binds plus the function's on
    /// the hand-over mount points, and the host's network.
    pub fn accepts(&self, spec: &SpawnSpec) -> bool {
        let fixed_kept = self.staged
            || self.env.iter().all(|(name, value)| {
                ADJUSTABLE.contains(&name.as_str())
                    || spec.env.iter().any(|(n, v)| n == name && v == value)
            });
        spec.program == self.program
            && spec.args == self.args
            && spec.netns.is_none()
            && fixed_kept
            && self.admits(spec.env.iter().map(|(n, v)| (n.as_str(), v.as_str())))
            && self.binds.iter().all(|b| spec.binds.contains(b))
            && spec
                .binds
                .iter()
                .filter(|b| !self.binds.contains(b))
                .all(|b| {
                    HANDOVER_MOUNT_POINTS
                        .iter()
                        .any(|p| b.target == Path::new(p))
                })
    }
}

/// A primed spare claimed for one environment (put it in [`SpawnSpec::primed`]); dropped
/// unused, the spare is discarded.
#[derive(Debug)]
pub struct Primed {
    key: PrimeSpec,
    spare: Option<supervisor::PrimedSpare>,
    /// No spare was ready: one is forked from this zygote at the hand-over (a fork and
    /// the sandbox's set-up, instead of a new interpreter's start).
    zygote: Option<Arc<zygote::Zygote>>,
}

impl Drop for Primed {
    fn drop(&mut self) {
        if let Some(spare) = self.spare.take() {
            spare.discard();
        }
    }
}

/// What [`Sandbox::take_primed`] gives: the spare, and its output pipe's ends. The read
/// end is the environment's log; the write end goes in [`SpawnSpec::output`].
#[derive(Debug)]
pub struct Claimed {
    /// The spare.
    pub primed: Primed,
    /// Its runtime's stdout and stderr.
    pub reader: OwnedFd,
    /// The pipe's write end (for a fresh start if the spare cannot be used).
    pub writer: OwnedFd,
}

/// Starts environment processes.
pub trait Sandbox: Send + Sync + std::fmt::Debug {
    /// Starts the process described by `spec`; it blocks (call it off the async workers)
    /// until the runtime has been executed (unisolated, or a primed runtime handed its
    /// environment) or, for a fresh or staged isolated environment, until the environment
    /// has been sent: its init's report is then [`SandboxProcess::take_report`]'s.
    fn spawn(&self, spec: SpawnSpec) -> Result<SandboxProcess, SandboxError>;
    /// A one-line description for the startup report.
    fn describe(&self) -> String;
    /// Whether spares are primed per runtime ([`Sandbox::take_primed`] can give one).
    fn primes(&self) -> bool {
        false
    }
    /// Claims a spare primed for `key`, if one is ready, and keeps `key` primed from now
    /// on (refilling on a thread).
    fn take_primed(&self, key: &PrimeSpec) -> Option<Claimed> {
        let _ = key;
        None
    }
    /// Keeps at least one spare primed for `key` (at server start, for `--prestart`).
    fn prime(&self, key: &PrimeSpec) {
        let _ = key;
    }
    /// Primed spares ready now, per runtime label, and the host pids of their supervisors
    /// and of the zygotes.
    fn primed_spares(&self) -> (Vec<(String, usize)>, Vec<u32>) {
        (Vec::new(), Vec::new())
    }
    /// Releases what the sandbox holds on the host (at server shutdown, after every
    /// environment has been stopped).
    fn close(&self) {}
    /// The CPU quota an environment of `memory_mb` gets after INIT, if any.
    fn cpu_quota(&self, memory_mb: u32) -> Option<cgroup::CpuQuota> {
        let _ = memory_mb;
        None
    }
    /// Whether environments see Lambda's filesystem (`/var/task`, `/var/runtime`, ...)
    /// rather than the host's: the paths in a [`SpawnSpec`] are then the environment's.
    fn isolated(&self) -> bool {
        false
    }
    /// Whether environments get a network namespace of their own
    /// ([`Sandbox::private_network`] gives one; else it gives none, without blocking).
    fn private_networks(&self) -> bool {
        false
    }
    /// A network namespace of the environment's own with the Runtime API's listener in it
    /// (and listeners on `extra_ports`), when environments have no network.
    fn private_network(
        &self,
        extra_ports: &[u16],
    ) -> Result<Option<isolate::PrivateNetwork>, SandboxError> {
        let _ = extra_ports;
        Ok(None)
    }
}

/// A started environment process (the leader of its own process group).
#[derive(Debug)]
pub struct SandboxProcess {
    child: tokio::process::Child,
    pid: u32,
    cgroup: Option<Arc<cgroup::EnvCgroup>>,
    /// The leader has been waited for: its pid (the group's id) may be reused once the
    /// group is empty, so the group is no longer signalled where a cgroup can do it.
    reaped: bool,
    /// In a network namespace of its own (which its supervisor may not have joined yet).
    private_network: bool,
    /// The init's report, when [`Sandbox::spawn`] did not wait for it.
    report: Option<StartReport>,
}

/// The report of an isolated environment handed over without waiting for it (a fresh or
/// staged one; a primed runtime's is waited for in [`Sandbox::spawn`]): its init says
/// whether it could start the runtime while the server goes on (admits the runtime's
/// connections, waits for its first `next`), instead of a thread being woken for it before
/// anything else can happen.
#[derive(Debug)]
pub struct StartReport {
    program: PathBuf,
    /// The socket, until it is first read (then registered with the async runtime).
    socket: Option<std::os::unix::net::UnixStream>,
    reading: Option<tokio::net::UnixStream>,
    received: Vec<u8>,
}

impl StartReport {
    pub(crate) fn new(program: PathBuf, socket: std::os::unix::net::UnixStream) -> StartReport {
        StartReport {
            program,
            socket: Some(socket),
            reading: None,
            received: Vec::new(),
        }
    }

    /// Why the environment could not be started (the init's `E` and reason: the error a
    /// waited-for spawn returns). Never resolves when the runtime was started, nor when
    /// the supervisor ended without a word (its exit tells). Cancel-safe; may be called
    /// again.
    pub async fn failure(&mut self) -> SandboxError {
        match self.outcome().await {
            Some(error) => error,
            None => std::future::pending().await,
        }
    }

    /// The report once the supervisor has closed its socket (at once after it exited):
    /// the init's reason if it said `E`, else `None`. Cancel-safe.
    pub async fn outcome(&mut self) -> Option<SandboxError> {
        use tokio::io::AsyncReadExt;
        if let Some(socket) = self.socket.take() {
            self.reading = socket
                .set_nonblocking(true)
                .and_then(|()| tokio::net::UnixStream::from_std(socket))
                .ok();
        }
        while let Some(socket) = &mut self.reading {
            match socket.read_buf(&mut self.received).await {
                Ok(read) if read > 0 && self.received.len() < 64 * 1024 => {}
                _ => self.reading = None,
            }
        }
        match self.received.split_first() {
            Some((b'E', reason)) => Some(SandboxError::Spawn {
                program: self.program.clone(),
                source: std::io::Error::other(String::from_utf8_lossy(reason).into_owned()),
            }),
            _ => None,
        }
    }
}

/// Controls on a running environment that outlive the handle used to wait for it.
#[derive(Debug, Clone)]
pub struct Controls {
    pid: u32,
    cgroup: Option<Arc<cgroup::EnvCgroup>>,
    cpu_quota: Option<cgroup::CpuQuota>,
    /// The socket inodes the environment's processes held at the last scan of their
    /// descriptors (shared by every clone): see [`Controls::owns_connection`].
    sockets: Arc<std::sync::Mutex<HashSet<u64>>>,
    /// The environment shares this process's network namespace: a connection's socket is
    /// looked up by the kernel (`sock_diag`) rather than in `/proc/<pid>/net/tcp`.
    same_network: bool,
}

impl Controls {
    /// Peak memory of the environment's processes together, KiB: the cgroup's peak when
    /// there is one, else `VmHWM` over the process tree.
    pub fn peak_memory_kib(&self) -> u64 {
        match self.cgroup.as_ref().and_then(|c| c.peak_memory_bytes()) {
            Some(bytes) => bytes.div_ceil(1024),
            None => peak_memory_kib(Path::new("/proc"), self.pid),
        }
    }

    /// Whether the environment has a cgroup (memory is then enforced by the kernel).
    pub fn has_cgroup(&self) -> bool {
        self.cgroup.is_some()
    }

    /// Memory the environment's processes use now, KiB (for the watchdog without cgroups).
    pub fn current_memory_kib(&self) -> u64 {
        current_memory_kib(Path::new("/proc"), self.pid)
    }

    /// Whether the kernel killed a process of the environment for using too much memory.
    pub fn out_of_memory(&self) -> bool {
        self.cgroup.as_ref().is_some_and(|c| c.oom_kills() > 0)
    }

    /// Whether the TCP connection from `peer` to `local` (the Runtime API's listener) was
    /// opened by one of the environment's processes. With the host's network, every
    /// environment's Runtime API is on the same loopback: this keeps one function from
    /// taking another's events or answering for it.
    ///
    /// The peer's socket is found in the kernel's table (one read per connection); scanning
    /// the environment's descriptors for it costs a read per descriptor, so the scan is done
    /// only for a socket it has not seen yet, newest process and newest descriptor first
    /// (where a connection just opened is), and it records every socket it read on the way:
    /// a burst of connections opened together costs about one scan. A socket inode names
    /// one socket for its whole life, so a recorded one is still the environment's (unlike a
    /// peer port, which another process may bind once the environment closed it).
    pub fn owns_connection(&self, local: SocketAddr, peer: SocketAddr) -> bool {
        let proc_root = Path::new("/proc");
        // Asked of the kernel by the connection's addresses where the environment shares
        // this process's network (a lookup: reading `net/tcp` walks the whole hash table,
        // ~1.5 ms here); else the leader's view of the kernel's table, its network
        // namespace's, which is the environment's own with `--sandbox-network none`.
        let inode = match self.same_network.then(|| diag_socket_inode(peer, local)) {
            Some(Ok(inode)) => inode,
            // No sock_diag (a kernel without it, a seccomp'd server): the table.
            Some(Err(_)) | None => {
                tcp_socket_inode(&proc_root.join(self.pid.to_string()), peer, local)
            }
        };
        let Some(inode) = inode else {
            return false;
        };
        let lock = || {
            self.sockets
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if lock().contains(&inode) {
            return true;
        }
        let mut pids: Vec<u32> = match &self.cgroup {
            Some(cgroup) => cgroup
                .pids()
                .into_iter()
                .filter_map(|p| u32::try_from(p).ok())
                .collect(),
            None => process_tree(proc_root, self.pid),
        };
        // Newest first (while pids have not wrapped): the runtime, or what it started, is
        // younger than the supervisor and the init, which hold no TCP socket; the scan stops
        // at the socket's holder.
        pids.sort_unstable_by(|a, b| b.cmp(a));
        let mut held = HashSet::new();
        let mut owned = false;
        for pid in pids {
            owned = scan_for_socket(proc_root, pid, inode, &mut held);
            if owned || held.len() >= MAX_RECORDED_SOCKETS {
                break;
            }
        }
        // Replaced, not merged: sockets closed since the last scan are forgotten (inode
        // numbers are reused once the kernel's counter wraps), so what is recorded is what
        // the processes scanned held at the last scan.
        *lock() = held;
        owned
    }

    /// Applies the CPU quota (after INIT, which runs unthrottled).
    pub fn limit_cpu(&self) {
        if let (Some(cgroup), Some(quota)) = (&self.cgroup, self.cpu_quota) {
            if let Err(error) = cgroup.set_cpu_quota(Some(quota)) {
                tracing::warn!(%error, "cannot apply the CPU quota");
            }
        }
    }

    /// Stops the environment's processes between invocations.
    pub fn freeze(&self) {
        if let Some(cgroup) = &self.cgroup {
            if let Err(error) = cgroup.freeze() {
                tracing::warn!(%error, "cannot freeze environment");
            }
        }
    }

    /// Lets them run again.
    pub fn thaw(&self) {
        if let Some(cgroup) = &self.cgroup {
            cgroup.thaw();
        }
    }
}

impl SandboxProcess {
    /// The leader's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The init's report when [`Sandbox::spawn`] did not wait for it: the environment is
    /// then started only if [`StartReport::failure`] does not resolve.
    pub fn take_report(&mut self) -> Option<StartReport> {
        self.report.take()
    }

    /// Waits for the leader to exit.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.child.wait().await;
        self.reaped |= status.is_ok();
        status
    }

    /// Sends `signal` to the whole process group; a group that is gone already is fine.
    pub fn signal_group(&self, signal: Signal) {
        let Ok(pid) = i32::try_from(self.pid) else {
            return;
        };
        if let Err(error) = killpg(Pid::from_raw(pid), signal) {
            if error != nix::errno::Errno::ESRCH {
                tracing::warn!(pid, %error, ?signal, "cannot signal environment processes");
            }
        }
    }

    /// SIGKILLs everything the environment started (its cgroup, else its process group),
    /// reaps the leader and removes the cgroup.
    pub async fn kill(&mut self) {
        if let Some(cgroup) = &self.cgroup {
            // Frozen processes cannot die until thawed.
            cgroup.thaw();
            cgroup.kill_all();
        }
        if !(self.reaped && self.cgroup.is_some()) {
            self.signal_group(Signal::SIGKILL);
        }
        let _ = self.wait().await;
        if let Some(cgroup) = self.cgroup.take() {
            let _ = tokio::task::spawn_blocking(move || {
                cgroup.kill_all();
                cgroup.remove();
            })
            .await;
        }
    }

    /// SIGTERM, then SIGKILL after `grace` if the leader is still running.
    pub async fn terminate(&mut self, grace: Duration) {
        if let Some(cgroup) = &self.cgroup {
            cgroup.thaw();
        }
        if !self.reaped {
            self.signal_group(Signal::SIGTERM);
        }
        if tokio::time::timeout(grace, self.wait()).await.is_err() {
            tracing::debug!(pid = self.pid, "runtime ignored SIGTERM; killing");
        }
        self.kill().await;
    }

    /// Handles to the environment's limits and freezer.
    pub fn controls(&self, cpu_quota: Option<cgroup::CpuQuota>) -> Controls {
        Controls {
            pid: self.pid,
            cgroup: self.cgroup.clone(),
            cpu_quota,
            sockets: Arc::default(),
            same_network: !self.private_network,
        }
    }
}

/// Sums `VmHWM` over `pid` and its descendants, found through each process's main-thread
/// `children` list (children started from other threads are missed; cgroups will give the
/// exact peak). Kept to a few small reads: it runs after every invocation.
pub fn peak_memory_kib(proc_root: &Path, pid: u32) -> u64 {
    tree_memory_kib(proc_root, pid, "VmHWM:")
}

/// Sums the current `VmRSS` over `pid` and its descendants (the memory watchdog's reading
/// where there are no cgroups).
pub fn current_memory_kib(proc_root: &Path, pid: u32) -> u64 {
    tree_memory_kib(proc_root, pid, "VmRSS:")
}

fn tree_memory_kib(proc_root: &Path, pid: u32, field: &str) -> u64 {
    process_tree(proc_root, pid)
        .into_iter()
        .map(|pid| {
            std::fs::read_to_string(proc_root.join(pid.to_string()).join("status"))
                .ok()
                .and_then(|status| {
                    status
                        .lines()
                        .find_map(|l| l.strip_prefix(field))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                })
                .unwrap_or(0)
        })
        .sum()
}

/// `pid` and its descendants, found through each process's main-thread `children` list
/// (children started from other threads are missed; cgroups give the exact set).
fn process_tree(proc_root: &Path, pid: u32) -> Vec<u32> {
    let mut tree = Vec::new();
    let mut stack = vec![pid];
    while let Some(pid) = stack.pop() {
        if tree.len() >= 4096 {
            break;
        }
        tree.push(pid);
        let children = proc_root
            .join(pid.to_string())
            .join("task")
            .join(pid.to_string())
            .join("children");
        if let Ok(children) = std::fs::read_to_string(children) {
            stack.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    tree
}

/// The inode of the TCP socket whose local end is `local` and remote end `remote`, from
/// the kernel's table (`net/tcp` or `net/tcp6` under `proc_root`: `/proc` or `/proc/<pid>`
/// for that process's network namespace).
pub fn tcp_socket_inode(proc_root: &Path, local: SocketAddr, remote: SocketAddr) -> Option<u64> {
    fn hex(address: SocketAddr) -> String {
        match address.ip() {
            // The kernel prints the address's bytes as native-endian words.
            IpAddr::V4(ip) => format!(
                "{:08X}:{:04X}",
                u32::from_ne_bytes(ip.octets()),
                address.port()
            ),
            IpAddr::V6(ip) => {
                let words: String = ip
                    .octets()
                    .chunks_exact(4)
                    .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
                    .collect();
                format!("{words}:{:04X}", address.port())
            }
        }
    }
    let table = if local.is_ipv4() {
        "net/tcp"
    } else {
        "net/tcp6"
    };
    let (local, remote) = (hex(local), hex(remote));
    std::fs::read_to_string(proc_root.join(table))
        .ok()?
        .lines()
        .skip(1)
        .find_map(|line| {
            // sl, local_address, rem_address, then six fields before the inode.
            let mut fields = line.split_whitespace().skip(1);
            if fields.next() != Some(local.as_str()) || fields.next() != Some(remote.as_str()) {
                return None;
            }
            fields.nth(6)?.parse().ok()
        })
}

/// The inode of the TCP socket whose local end is `local` and remote end `remote`, in this
/// process's network namespace, asked of the kernel through `NETLINK_SOCK_DIAG` (an exact
/// lookup of one socket, `inet_diag_req_v2` without `NLM_F_DUMP`).
pub fn diag_socket_inode(local: SocketAddr, remote: SocketAddr) -> std::io::Result<Option<u64>> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockProtocol, SockType};
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLM_F_REQUEST: u16 = 1;
    const NLMSG_ERROR: u16 = 2;
    if local.is_ipv4() != remote.is_ipv4() {
        return Ok(None);
    }
    let address = |a: SocketAddr| -> [u8; 16] {
        let mut bytes = [0u8; 16];
        match a.ip() {
            IpAddr::V4(ip) => bytes[..4].copy_from_slice(&ip.octets()),
            IpAddr::V6(ip) => bytes = ip.octets(),
        }
        bytes
    };
    let mut request = Vec::with_capacity(72);
    request.extend(72u32.to_ne_bytes());
    request.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    request.extend(NLM_F_REQUEST.to_ne_bytes());
    request.extend(1u32.to_ne_bytes()); // sequence
    request.extend(0u32.to_ne_bytes()); // port id: the kernel's
    let family = if local.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    request.extend([family as u8, libc::IPPROTO_TCP as u8, 0, 0]);
    request.extend(u32::MAX.to_ne_bytes()); // every state
    request.extend(local.port().to_be_bytes());
    request.extend(remote.port().to_be_bytes());
    request.extend(address(local));
    request.extend(address(remote));
    request.extend(0u32.to_ne_bytes()); // any interface
    request.extend([0xff; 8]); // INET_DIAG_NOCOOKIE
    let netlink = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )?;
    if nix::unistd::write(&netlink, &request)? != request.len() {
        return Err(std::io::Error::other("short write to sock_diag"));
    }
    // The answer is queued before the request's write returns.
    let mut answer = [0u8; 512];
    let length = nix::unistd::read(&netlink, &mut answer)?;
    let field = |range: std::ops::Range<usize>| -> std::io::Result<[u8; 4]> {
        answer[..length]
            .get(range)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| std::io::Error::other("short answer from sock_diag"))
    };
    let kind = u16::from_ne_bytes([answer[4], answer[5]]);
    match kind {
        // nlmsghdr (16), then inet_diag_msg: family, state, timer, retrans, the socket's
        // id (48), expires, rqueue, wqueue, uid, inode.
        SOCK_DIAG_BY_FAMILY => Ok(Some(u64::from(u32::from_ne_bytes(field(84..88)?)))),
        NLMSG_ERROR => match -i32::from_ne_bytes(field(16..20)?) {
            libc::ENOENT => Ok(None),
            errno => Err(std::io::Error::from_raw_os_error(errno)),
        },
        other => Err(std::io::Error::other(format!("sock_diag answered {other}"))),
    }
}

/// A pidfd for process `pid` (`pidfd_open`), registered with the tokio reactor (call it
/// in a runtime): readable once the process has exited, and never another process's, even
/// if the pid is reused. Used to watch an environment's external extensions.
pub fn watch_exit(pid: u32) -> std::io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    use std::os::fd::FromRawFd;
    let pid = libc::pid_t::try_from(pid).map_err(|_| std::io::Error::other("pid out of range"))?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; nothing
    // is read from or written to this process's memory.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = std::os::fd::RawFd::try_from(fd).map_err(|_| std::io::Error::other("bad pidfd"))?;
    // SAFETY: the kernel just returned this descriptor, and nothing else owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: the descriptor is owned by the `AsyncFd` from here on: it stays open and the
    // same until the `AsyncFd` drops it.
    unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE)
    }
    .map_err(|e| e.into_parts().1)
}

/// Most socket inodes [`Controls::owns_connection`] records per environment.
const MAX_RECORDED_SOCKETS: usize = 65_536;

/// Adds the socket inodes `pid` holds to `held`, its newest descriptors (the highest
/// numbers) first, and stops at `inode`: whether `pid` holds it. A connection being checked
/// was just opened, so its descriptor is usually the process's highest, and each
/// descriptor read costs a `readlink` (a fresh process's first ones ~5 µs each).
fn scan_for_socket(proc_root: &Path, pid: u32, inode: u64, held: &mut HashSet<u64>) -> bool {
    let dir = proc_root.join(pid.to_string()).join("fd");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return false;
    };
    let mut fds: Vec<u32> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable_by(|a, b| b.cmp(a));
    for fd in fds {
        if held.len() >= MAX_RECORDED_SOCKETS {
            break;
        }
        let Ok(target) = std::fs::read_link(dir.join(fd.to_string())) else {
            continue;
        };
        let Some(socket) = target
            .to_str()
            .and_then(|t| t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok())
        else {
            continue;
        };
        held.insert(socket);
        if socket == inode {
            return true;
        }
    }
    false
}

/// Starts `extensions` beside the runtime `pid` (not isolated): in its process group and
/// cgroup, with its environment, directory, output and seccomp filter. Failures are written
/// to the output (the extension then never registers and INIT reports it).
fn start_extensions(
    extensions: &[PathBuf],
    env: &[(String, String)],
    cwd: &Path,
    output: &OwnedFd,
    pid: u32,
    cgroup: &Option<Arc<cgroup::EnvCgroup>>,
    config: &ProcessSandboxConfig,
) {
    for program in extensions {
        let started = (|| -> std::io::Result<()> {
            let procs = match cgroup {
                Some(cgroup) => cgroup.procs_files().map_err(std::io::Error::other)?,
                None => Vec::new(),
            };
            let mut command = std::process::Command::new(program);
            command
                .current_dir(cwd)
                .env_clear()
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(Stdio::from(output.try_clone()?))
                .stderr(Stdio::from(output.try_clone()?))
                .process_group(i32::try_from(pid).unwrap_or(0));
            prepare_child(&mut command, procs, config.seccomp.as_ref().ok().cloned());
            // Reaped by tokio once it exits (the handle is not kept).
            tokio::process::Command::from(command).spawn().map(drop)
        })();
        if let Err(error) = started {
            let line = format!(
                "Extension {} could not be started: {error}\n",
                program.display()
            );
            let _ = nix::unistd::write(output, line.as_bytes());
        }
    }
}

/// Where the host allows it, each environment gets its own cgroup.
#[derive(Debug, Clone)]
pub struct ProcessSandboxConfig {
    /// Cgroups to place environments in, or why there are none.
    pub cgroups: Result<cgroup::Cgroups, String>,
    /// Whether CPU is limited in proportion to memory (off for development machines).
    pub proportional_cpu: bool,
    /// Most processes and threads per environment.
    pub pids_max: u64,
    /// Compiled seccomp filters applied to every runtime, or why there are none.
    pub seccomp: Result<Arc<Vec<seccompiler::BpfProgram>>, String>,
    /// Namespaces and Lambda's filesystem, or why environments run without them.
    pub isolation: Result<isolate::Isolation, String>,
    /// Most primed spares kept per launch key (0: none are primed).
    pub primed_max: usize,
    /// Whether primed spares of forkable runtimes ([`PrimeSpec::fork`]) get their runtime
    /// forked from a zygote (as root only).
    pub zygotes: bool,
}

/// Each environment is a process group of the server's user, in its own cgroup when the
/// host has a writable hierarchy.
#[derive(Debug)]
pub struct ProcessSandbox {
    config: ProcessSandboxConfig,
    spares: Arc<supervisor::Spares>,
    primed: Arc<supervisor::PrimedPools>,
}

/// Joins the cgroup (`procs`) and applies seccomp `filters`, between fork and exec.
fn prepare_child(
    command: &mut std::process::Command,
    procs: Vec<OwnedFd>,
    filters: Option<Arc<Vec<seccompiler::BpfProgram>>>,
) {
    if procs.is_empty() && filters.is_none() {
        return;
    }
    // SAFETY: the hook runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed. It only calls write(2) on descriptors
    // opened before the fork (with a static buffer), then prctl(2) and seccomp(2) with
    // filters compiled before the fork; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            for fd in &procs {
                // "0" moves the writing process itself into the cgroup.
                nix::unistd::write(fd.as_fd(), b"0").map_err(std::io::Error::from)?;
            }
            // Last: after this, the child can no longer do what the setup needed.
            for filter in filters.iter().flat_map(|f| f.iter()) {
                seccompiler::apply_filter(filter)
                    .map_err(|_| std::io::Error::from_raw_os_error(libc::EPERM))?;
            }
            Ok(())
        });
    }
}

impl Default for ProcessSandbox {
    fn default() -> Self {
        ProcessSandbox::new(ProcessSandboxConfig {
            cgroups: Err("not requested".into()),
            proportional_cpu: false,
            pids_max: 1024,
            seccomp: Err("not requested".into()),
            isolation: Err("not requested".into()),
            primed_max: 0,
            zygotes: false,
        })
    }
}

impl ProcessSandbox {
    /// A sandbox with `config`.
    pub fn new(config: ProcessSandboxConfig) -> Self {
        ProcessSandbox {
            config,
            spares: Arc::default(),
            primed: Arc::default(),
        }
    }

    /// What is enforced and what is not, one line per protection, for the startup report
    /// and `gust doctor`.
    pub fn report(&self) -> Vec<(String, bool, String)> {
        let mut lines = Vec::new();
        match &self.config.cgroups {
            Ok(cgroups) => {
                let version = match cgroups.version() {
                    cgroup::CgroupVersion::V1 => "v1",
                    cgroup::CgroupVersion::V2 => "v2",
                };
                lines.push(("cgroups".into(), true, format!("{version}: memory limit = MemorySize, pids limit {}, freezer for idle environments", self.config.pids_max)));
                lines.push((
                    "cpu".into(),
                    self.config.proportional_cpu,
                    if self.config.proportional_cpu {
                        "quota proportional to memory (1,769 MB = 1 vCPU), applied after INIT"
                            .into()
                    } else {
                        "no quota (--no-cpu-quota): functions may use every core".into()
                    },
                ));
            }
            Err(reason) => {
                lines.push(("cgroups".into(), false, format!("unavailable ({reason}): memory is kept by a watchdog that samples each invocation's processes every 20 ms and kills them past MemorySize; CPU and process limits are NOT enforced and idle environments are not frozen")));
            }
        }
        match &self.config.seccomp {
            Ok(_) => lines.push(("seccomp".into(), true, "no_new_privs; mount, ptrace, kexec, module loading, bpf, keyrings, reboot, namespace creation and clock changes refused (EPERM)".into())),
            Err(reason) => lines.push(("seccomp".into(), false, format!("unavailable ({reason}): runtimes may call mount, ptrace, bpf, ... as far as their user is allowed"))),
        }
        match &self.config.isolation {
            Ok(isolation) => {
                let namespaces = if isolation.rootless { "rootless: user, pid, mount, IPC and UTS namespaces" } else { "pid, mount, IPC and UTS namespaces" };
                lines.push(("isolation".into(), true, format!("{namespaces}; uid {} without capabilities; Lambda's filesystem: /var/task, /var/runtime and /opt read-only, /tmp a tmpfs of EphemeralStorage, a fresh /proc, the host's system directories read-only", isolation.uid)));
                lines.push(match isolation.network {
                    isolate::NetworkMode::Host => ("network".into(), true, "host network: outbound connections allowed, as Lambda outside a VPC (--sandbox-network none for loopback only)".into()),
                    isolate::NetworkMode::None => ("network".into(), true, "none: each environment has its own network namespace with loopback only, where its Runtime API listens".into()),
                });
                lines.push(match (self.config.primed_max, isolation.network) {
                    (0, _) => ("prestart".into(), false, "off (--prestart off): every environment starts its runtime afresh".into()),
                    (_, isolate::NetworkMode::None) => ("prestart".into(), false, "off with --sandbox-network none: every environment starts its runtime afresh".into()),
                    (max, _) => ("prestart".into(), true, format!("Python and Node.js runtimes primed and custom runtimes' sandboxes staged ahead of cold starts (1 to {max} spares per runtime, by the recent cold-start rate)")),
                });
            }
            Err(reason) => lines.push(("isolation".into(), false, format!("unavailable ({reason}): functions run as the server's user, see its filesystem and processes, and share its network"))),
        }
        lines
    }
}

impl Sandbox for ProcessSandbox {
    fn spawn(&self, spec: SpawnSpec) -> Result<SandboxProcess, SandboxError> {
        if let Ok(isolation) = &self.config.isolation {
            return self.spawn_isolated(isolation, spec);
        }
        let stderr = spec.output.try_clone().map_err(SandboxError::Output)?;
        let extension_output = match spec.extension_output {
            Some(output) => Some(output),
            None => (!spec.extensions.is_empty())
                .then(|| spec.output.try_clone().map_err(SandboxError::Output))
                .transpose()?,
        };
        let cgroup = match &self.config.cgroups {
            Ok(cgroups) => {
                let limits = cgroup::Limits {
                    memory_bytes: u64::from(spec.memory_mb) << 20,
                    // INIT runs unthrottled; the quota is applied once the runtime is ready.
                    cpu_quota: None,
                    pids_max: self.config.pids_max,
                };
                Some(Arc::new(cgroups.create(&spec.id, &limits)?))
            }
            Err(_) => None,
        };
        let procs = match &cgroup {
            Some(cgroup) => cgroup.procs_files()?,
            None => Vec::new(),
        };
        let mut command = std::process::Command::new(&spec.program);
        command.args(&spec.args).current_dir(&spec.cwd);
        let filters = self.config.seccomp.as_ref().ok().cloned();
        command
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(spec.output))
            .stderr(Stdio::from(stderr))
            // Its own group, so ending the environment ends everything it started.
            .process_group(0);
        prepare_child(&mut command, procs, filters);
        let mut command = tokio::process::Command::from(command);
        command.kill_on_drop(true);
        let child = match command.spawn() {
            Ok(child) => child,
            Err(source) => {
                if let Some(cgroup) = &cgroup {
                    cgroup.remove();
                }
                return Err(SandboxError::Spawn {
                    program: spec.program.clone(),
                    source,
                });
            }
        };
        let pid = child.id().unwrap_or(0);
        if let Some(output) = &extension_output {
            start_extensions(
                &spec.extensions,
                &spec.env,
                &spec.cwd,
                output,
                pid,
                &cgroup,
                &self.config,
            );
        }
        Ok(SandboxProcess {
            child,
            pid,
            cgroup,
            reaped: false,
            private_network: false,
            report: None,
        })
    }

    fn isolated(&self) -> bool {
        self.config.isolation.is_ok()
    }

    fn primes(&self) -> bool {
        ProcessSandbox::primes(self)
    }

    fn take_primed(&self, key: &PrimeSpec) -> Option<Claimed> {
        self.claim_primed(key)
    }

    fn prime(&self, key: &PrimeSpec) {
        self.keep_primed(key);
    }

    fn primed_spares(&self) -> (Vec<(String, usize)>, Vec<u32>) {
        (self.primed.ready(), self.primed.pids())
    }

    fn private_networks(&self) -> bool {
        self.config
            .isolation
            .as_ref()
            .is_ok_and(|i| i.network == isolate::NetworkMode::None)
    }

    fn private_network(
        &self,
        extra_ports: &[u16],
    ) -> Result<Option<isolate::PrivateNetwork>, SandboxError> {
        match &self.config.isolation {
            Ok(isolation) if isolation.network == isolate::NetworkMode::None => {
                // Lambda's Runtime API address: the namespace is the environment's alone.
                Ok(Some(isolate::private_network(
                    isolate::RUNTIME_API_PORT,
                    extra_ports,
                )?))
            }
            _ => Ok(None),
        }
    }

    fn close(&self) {
        self.close_spares();
        if let Ok(cgroups) = &self.config.cgroups {
            cgroups.close();
        }
    }

    fn cpu_quota(&self, memory_mb: u32) -> Option<cgroup::CpuQuota> {
        (self.config.proportional_cpu && self.config.cgroups.is_ok())
            .then(|| cgroup::CpuQuota::for_memory(memory_mb))
    }

    fn describe(&self) -> String {
        self.report()
            .iter()
            .map(|(name, on, text)| format!("{name}: {} {text}", if *on { "on," } else { "OFF," }))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn spec(script: &str, output: OwnedFd) -> SpawnSpec {
        SpawnSpec {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![
                ("GREETING".into(), "hello".into()),
                ("PATH".into(), "/usr/bin:/bin".into()),
            ],
            cwd: std::env::temp_dir(),
            output,
            id: "test".into(),
            memory_mb: 128,
            tmp_mb: 16,
            binds: Vec::new(),
            netns: None,
            extensions: Vec::new(),
            extension_output: None,
            primed: None,
        }
    }

    #[tokio::test]
    async fn a_start_report_resolves_only_with_the_inits_reason() {
        use std::io::Write;
        use std::time::Duration;
        let wait = Duration::from_millis(50);
        // `S`: never resolves, even after the supervisor ended.
        let (ours, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut report = StartReport::new("/var/task/bootstrap".into(), ours);
        theirs.write_all(b"S").unwrap();
        drop(theirs);
        assert!(tokio::time::timeout(wait, report.failure()).await.is_err());
        // Read to its end at once once the supervisor is gone (after an exit): no reason.
        let read = tokio::time::timeout(Duration::from_secs(5), report.outcome()).await;
        assert!(matches!(read, Ok(None)));
        // Nothing yet: the wait is cancelled, and asked again once the reason was sent.
        let (ours, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut report = StartReport::new("/var/task/bootstrap".into(), ours);
        assert!(tokio::time::timeout(wait, report.failure()).await.is_err());
        theirs.write_all(b"Eexec /var/task/bootstrap: ").unwrap();
        assert!(tokio::time::timeout(wait, report.failure()).await.is_err());
        theirs.write_all(b"No such file or directory").unwrap();
        drop(theirs);
        let error = report.failure().await.to_string();
        assert_eq!(
            error,
            "cannot start /var/task/bootstrap: exec /var/task/bootstrap: No such file or directory"
        );
        assert_eq!(report.failure().await.to_string(), error, "asked again");
        assert_eq!(report.outcome().await.map(|e| e.to_string()), Some(error));
        // Ended without a word: its exit tells.
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut report = StartReport::new("b".into(), ours);
        drop(theirs);
        assert!(tokio::time::timeout(wait, report.failure()).await.is_err());
    }

    #[tokio::test]
    async fn output_env_and_exit_status() {
        let (mut reader, writer) = std::io::pipe().unwrap();
        let mut process = ProcessSandbox::default()
            .spawn(spec(
                "echo $GREETING; echo err >&2; echo ${HOME:-unset}; exit 3",
                writer.into(),
            ))
            .unwrap();
        let status = process.wait().await.unwrap();
        assert_eq!(status.code(), Some(3));
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "hello\nerr\nunset\n", "env is exactly what was given");
    }

    #[tokio::test]
    async fn kill_ends_the_whole_group() {
        let (_reader, writer) = std::io::pipe().unwrap();
        let mut process = ProcessSandbox::default()
            .spawn(spec("sleep 30 & sleep 30 & wait", writer.into()))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let pid = process.pid();
        assert!(peak_memory_kib(Path::new("/proc"), pid) > 0);
        process.terminate(Duration::from_millis(200)).await;
        // No process of the group is left (orphans are reaped by init shortly after).
        let group = nix::unistd::Pid::from_raw(pid as i32);
        let mut gone = false;
        for _ in 0..100 {
            if killpg(group, None) == Err(nix::errno::Errno::ESRCH) {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gone, "process group {pid} still has members");
    }

    #[test]
    fn a_connection_is_traced_to_the_process_holding_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(local).unwrap();
        let (_server_side, peer) = listener.accept().unwrap();
        let proc_root = Path::new("/proc");
        let inode =
            tcp_socket_inode(proc_root, peer, local).expect("the client's socket is listed");
        let mut held = HashSet::new();
        assert!(scan_for_socket(
            proc_root,
            std::process::id(),
            inode,
            &mut held
        ));
        assert!(held.contains(&inode));
        assert!(
            !scan_for_socket(proc_root, 1, inode, &mut HashSet::new()) || std::process::id() == 1
        );
        // The server side is another socket: the lookup is by direction.
        assert_ne!(tcp_socket_inode(proc_root, local, peer), Some(inode));
        // The kernel's own lookup finds the same sockets.
        assert_eq!(diag_socket_inode(peer, local).unwrap(), Some(inode));
        assert_eq!(
            diag_socket_inode(local, peer).unwrap(),
            tcp_socket_inode(proc_root, local, peer)
        );
        assert_eq!(
            diag_socket_inode(SocketAddr::from(([127, 0, 0, 1], 1)), local).unwrap(),
            None
        );
        drop(client);
    }

    #[tokio::test]
    async fn connections_are_traced_to_the_environment_with_one_scan_per_burst() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let (_reader, writer) = std::io::pipe().unwrap();
        // The environment opens three connections at once and holds them.
        let script = format!(
            "exec python3 -c 'import socket, time; s = [socket.create_connection((\"127.0.0.1\", {})) for _ in range(3)]; time.sleep(30)'",
            local.port()
        );
        let mut process = ProcessSandbox::default()
            .spawn(spec(&script, writer.into()))
            .unwrap();
        let controls = process.controls(None);
        let peers: Vec<SocketAddr> = (0..3).map(|_| listener.accept().unwrap().1).collect();
        assert!(controls.owns_connection(local, peers[0]));
        // That scan saw all three: the other two are answered from it.
        let recorded = controls.sockets.lock().unwrap().len();
        assert!(recorded >= 3, "{recorded}");
        assert!(controls.owns_connection(local, peers[1]));
        assert!(controls.owns_connection(local, peers[2]));
        // A connection this test process opened is not the environment's.
        let _mine = std::net::TcpStream::connect(local).unwrap();
        let (_, outsider) = listener.accept().unwrap();
        assert!(!controls.owns_connection(local, outsider));
        // Nor is an address with no connection at all.
        assert!(!controls.owns_connection(local, SocketAddr::from(([127, 0, 0, 1], 1))));
        process.kill().await;
    }

    #[test]
    fn a_primed_spare_serves_only_the_process_it_would_start() {
        let bind = |source: &str, target: &str| isolate::Bind {
            source: source.into(),
            target: target.into(),
        };
        let key = PrimeSpec {
            label: "python3.11".into(),
            program: "/usr/bin/python3.11".into(),
            args: vec!["-u".into(), "/var/runtime/python/bootstrap.py".into()],
            env: vec![
                ("LANG".into(), "en_US.UTF-8".into()),
                ("TZ".into(), ":UTC".into()),
            ],
            binds: vec![bind("/data/runtime", "/var/runtime")],
            staged: false,
            fork: true,
        };
        let (_reader, writer) = std::io::pipe().unwrap();
        let mut full = spec("", writer.into());
        full.program = key.program.clone();
        full.args = key.args.clone();
        full.env = vec![
            ("LANG".into(), "en_US.UTF-8".into()),
            ("TZ".into(), "Asia/Tokyo".into()),
            ("CUSTOM".into(), "x".into()),
        ];
        full.binds = vec![
            bind("/data/code/1", "/var/task"),
            bind("/data/runtime", "/var/runtime"),
            bind("/data/layers/1", "/opt"),
        ];
        assert!(key.accepts(&full));
        assert!(key.admits([
            ("TZ", "Asia/Tokyo"),
            ("CUSTOM", "x"),
            ("NODE_ENV", "production")
        ]));
        // Variables that act at process start, or a fixed one changed or missing.
        for (name, value) in [
            ("PYTHONPATH", "/x"),
            ("NODE_OPTIONS", "--x"),
            ("LD_PRELOAD", "/x.so"),
            ("LOCPATH", "/var/task/locale"),
            ("LC_ALL", "C"),
            ("LANG", "C"),
            ("AWS_LAMBDA_EXEC_WRAPPER", "/opt/wrapper"),
            ("_GUST_HANDOVER_FD", "4"),
        ] {
            assert!(!key.admits([(name, value)]), "{name}");
            let mut other = spec("", full.output.try_clone().unwrap());
            other.program = full.program.clone();
            other.args = full.args.clone();
            other.binds = full.binds.clone();
            other.env = full.env.clone();
            other.env.retain(|(n, _)| n != name);
            other.env.push((name.into(), value.into()));
            assert!(!key.accepts(&other), "{name}");
        }
        let without_lang = SpawnSpec {
            env: vec![("TZ".into(), ":UTC".into())],
            output: full.output.try_clone().unwrap(),
            binds: full.binds.clone(),
            ..spec_for(&key)
        };
        assert!(!key.accepts(&without_lang));
        // Another program or arguments, a bind elsewhere, a network namespace.
        let mut args = spec_for(&key);
        args.args.push("extra".into());
        assert!(!key.accepts(&args));
        let mut binds = spec_for(&key);
        binds.binds.push(bind("/data/x", "/var/other"));
        assert!(!key.accepts(&binds));
        let mut missing = spec_for(&key);
        missing.binds.clear();
        assert!(!key.accepts(&missing));
        assert!(key.accepts(&spec_for(&key)));

        // A staged spare started nothing: any variable is fine, but not another program,
        // other binds or a network namespace.
        let staged = PrimeSpec {
            label: "provided.al2023".into(),
            program: "/var/task/bootstrap".into(),
            args: Vec::new(),
            staged: true,
            ..key.clone()
        };
        let mut own = spec_for(&staged);
        own.env = vec![
            ("LD_PRELOAD".into(), "/var/task/x.so".into()),
            ("LANG".into(), "C".into()),
        ];
        own.binds.push(bind("/data/code/1", "/var/task"));
        assert!(staged.accepts(&own));
        assert!(staged.admits([("LD_PRELOAD", "/x.so"), ("TZ", "x")]));
        own.binds.push(bind("/data/x", "/var/other"));
        assert!(!staged.accepts(&own));
        let mut program = spec_for(&staged);
        program.program = "/bin/sh".into();
        assert!(!staged.accepts(&program));
    }

    fn spec_for(key: &PrimeSpec) -> SpawnSpec {
        let (_reader, writer) = std::io::pipe().unwrap();
        SpawnSpec {
            program: key.program.clone(),
            args: key.args.clone(),
            env: key.env.clone(),
            binds: key.binds.clone(),
            ..spec("", writer.into())
        }
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (_reader, writer) = std::io::pipe().unwrap();
            let mut s = spec("", writer.into());
            s.program = "/nonexistent/bootstrap".into();
            assert!(matches!(
                ProcessSandbox::default().spawn(s),
                Err(SandboxError::Spawn { .. })
            ));
        });
    }
}
