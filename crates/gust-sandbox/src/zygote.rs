//! Zygotes: for a runtime that can be forked once loaded (Python), one process per launch
//! key with the interpreter and Gust's bootstrap already loaded, which forks the runtime
//! of each primed spare instead of the spare's init starting a new interpreter (the SOCK
//! approach). A spare then costs a fork and the sandbox's own set-up, not an
//! interpreter's start.
//!
//! The zygote is started like a supervisor, with [`isolate::InitSpec::zygote`]: in a
//! mount namespace of its own, `chroot`ed into a root built as a primed spare's (so every
//! module path it loaded is the same inside environments), as root and in the host's pid
//! namespace. A primed spare's init built with [`isolate::InitSpec::forked`] sends its
//! namespaces and pipes to the server, which passes them here with the environment's
//! output, cgroups and process group ([`Zygote::fork`]); the zygote's side is
//! `bootstrap/python/gust_zygote.py` in gust-runtime.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::{cgroup, isolate, ProcessSandboxConfig, SandboxError};

/// What a forked spare's init sends: its mount, uts, ipc and pid namespaces, the
/// hand-over pipe's read end and the ready pipe's write end.
const FROM_INIT: usize = 6;

/// Most runtimes one zygote forks, and its longest service, before it is replaced.
const MAX_FORKS: u64 = 500;
const MAX_AGE: Duration = Duration::from_secs(10 * 60);

/// How long a zygote may take to load (an interpreter's start and the bootstrap's imports).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running zygote and its control socket (`SOCK_SEQPACKET`: one request per packet).
#[derive(Debug)]
pub(crate) struct Zygote {
    /// The zygote's process (the supervisor it was started as, after its exec); killed
    /// when dropped. The runtimes it forked are their inits' children and live on.
    process: Mutex<Option<tokio::process::Child>>,
    pub(crate) pid: u32,
    control: OwnedFd,
    /// The seccomp filters each forked runtime applies: each one's length in
    /// instructions, and all their instructions (`struct sock_filter`, native order).
    filter_lengths: Vec<usize>,
    filter_bytes: Vec<u8>,
    dead: AtomicBool,
    started: std::time::Instant,
    forks: std::sync::atomic::AtomicU64,
}

impl Zygote {
    /// Starts the zygote of `key` and waits until it has loaded.
    pub(crate) fn start(
        config: &ProcessSandboxConfig,
        key: &crate::PrimeSpec,
    ) -> Result<Zygote, SandboxError> {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        let fail = |what: &str, source: std::io::Error| SandboxError::Spawn {
            program: key.program.clone(),
            source: std::io::Error::other(format!("zygote: {what}: {source}")),
        };
        let Ok(isolation) = &config.isolation else {
            return Err(fail(
                "start",
                std::io::Error::other("zygotes need isolation"),
            ));
        };
        if isolation.rootless {
            return Err(fail("start", std::io::Error::other("zygotes need root")));
        }
        let (control, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| fail("socket", e.into()))?;
        let mut supervisor = crate::supervisor::Supervisor::start(isolation, None)?;
        // Its output is the server's stderr: a zygote's own failures are the operator's.
        let stderr = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| fail("stderr", e))?;
        let sent = supervisor
            .send(
                &[stderr.as_raw_fd(), theirs.as_raw_fd()],
                &isolation.zygote_payload(key),
            )
            .and_then(|()| supervisor.shutdown_write());
        drop((stderr, theirs));
        if let Err(error) = sent {
            supervisor.discard_now();
            return Err(fail("hand over", error));
        }
        let mut ready = [0u8; 16];
        match receive(&control, &mut ready, START_TIMEOUT) {
            Ok(5) if &ready[..5] == b"ready" => {}
            other => {
                let reason = match supervisor.wait_report() {
                    Ok(Err(reason)) => reason,
                    _ => format!("it did not start ({other:?})"),
                };
                supervisor.discard_now();
                return Err(fail("start", std::io::Error::other(reason)));
            }
        }
        let filters = match &config.seccomp {
            Ok(filters) => filters.as_slice(),
            Err(_) => &[],
        };
        let mut filter_bytes = Vec::new();
        for instruction in filters.iter().flatten() {
            filter_bytes.extend(instruction.code.to_ne_bytes());
            filter_bytes.extend([instruction.jt, instruction.jf]);
            filter_bytes.extend(instruction.k.to_ne_bytes());
        }
        let (pid, process) = supervisor.into_child();
        tracing::debug!(runtime = %key.label, pid, "zygote started");
        Ok(Zygote {
            process: Mutex::new(Some(process)),
            pid,
            control,
            filter_lengths: filters.iter().map(Vec::len).collect(),
            filter_bytes,
            dead: AtomicBool::new(false),
            started: std::time::Instant::now(),
            forks: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Whether it is due for replacement: every runtime it forks shares its address-space
    /// layout, stack canary, pointer guard and string-hash secret, so it serves at most
    /// [`MAX_FORKS`] runtimes or for [`MAX_AGE`] (a new one costs an interpreter's start).
    pub(crate) fn worn_out(&self) -> bool {
        self.forks.load(Ordering::Relaxed) >= MAX_FORKS || self.started.elapsed() >= MAX_AGE
    }

    /// Whether it can no longer fork (it exited, or a request could not be sent).
    pub(crate) fn is_dead(&self) -> bool {
        if self.dead.load(Ordering::Acquire) {
            return true;
        }
        let exited = self
            .process
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .is_none_or(|child| !matches!(child.try_wait(), Ok(None)));
        if exited {
            self.dead.store(true, Ordering::Release);
        }
        exited
    }

    /// Asks it to fork a runtime into the primed environment whose init sent `handed`
    /// (its namespaces and pipes, [`isolate`]'s `fork_from_zygote`), with `output` as its
    /// stdout and stderr, in `cgroup` and the process group `pgid` (the supervisor's). The
    /// init hears from the runtime itself whether it is ready. A `warm` runtime (a spare
    /// kept for later) rehearses its cold start's first steps before it is claimed; one
    /// forked for a claim waiting now does not (in a burst that is CPU the claims need).
    pub(crate) fn fork(
        &self,
        isolation: &isolate::Isolation,
        handed: &[OwnedFd],
        output: BorrowedFd<'_>,
        cgroup: Option<&cgroup::EnvCgroup>,
        pgid: u32,
        warm: bool,
    ) -> std::io::Result<()> {
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
        let procs = match cgroup {
            Some(cgroup) => cgroup.procs_files().map_err(std::io::Error::other)?,
            None => Vec::new(),
        };
        let root = isolation
            .staging
            .to_str()
            .ok_or_else(|| std::io::Error::other("a staging path that is not UTF-8"))?;
        if handed.len() != FROM_INIT || pgid == 0 {
            return Err(std::io::Error::other(format!(
                "a fork request with {} descriptors from the init, process group {pgid}",
                handed.len()
            )));
        }
        let header = serde_json::json!({
            "cgroups": procs.len(),
            "warm": warm,
            "root": root,
            "uid": isolation.uid,
            "gid": isolation.gid,
            "pgid": pgid,
            "nofile": isolate::NOFILE_LIMIT,
            "filters": self.filter_lengths,
        });
        let mut request = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
        request.push(b'\n');
        request.extend(&self.filter_bytes);
        let mut fds: Vec<RawFd> = handed.iter().map(AsRawFd::as_raw_fd).collect();
        fds.push(output.as_raw_fd());
        fds.extend(procs.iter().map(AsRawFd::as_raw_fd));
        self.forks.fetch_add(1, Ordering::Relaxed);
        let sent = sendmsg::<()>(
            self.control.as_raw_fd(),
            &[std::io::IoSlice::new(&request)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        );
        match sent {
            Ok(n) if n == request.len() => Ok(()),
            Ok(_) => {
                self.dead.store(true, Ordering::Release);
                Err(std::io::Error::other("a fork request was cut short"))
            }
            Err(error) => {
                self.dead.store(true, Ordering::Release);
                Err(error.into())
            }
        }
    }
}

/// One packet from `socket` into `buffer`, waiting at most `timeout`.
fn receive(socket: &OwnedFd, buffer: &mut [u8], timeout: Duration) -> std::io::Result<usize> {
    let mut poll = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd, owned by this frame, for the duration of the call.
    match unsafe { libc::poll(&mut poll, 1, millis) } {
        0 => Err(std::io::ErrorKind::TimedOut.into()),
        n if n < 0 => Err(std::io::Error::last_os_error()),
        _ => nix::sys::socket::recv(
            socket.as_raw_fd(),
            buffer,
            nix::sys::socket::MsgFlags::empty(),
        )
        .map_err(std::io::Error::from),
    }
}
