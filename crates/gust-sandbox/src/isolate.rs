//! Namespaces and Lambda's filesystem for one environment.
//!
//! The server starts each isolated environment as `gust __sandbox-init …` ([`INIT_ARG`]),
//! already in its cgroup. That process (the *supervisor*, in the host's pid namespace)
//! creates new mount, UTS, IPC and pid namespaces (and joins the environment's network
//! namespace when there is one), then forks the environment's *init*, pid 1 of the new pid
//! namespace. The init builds the root filesystem on a tmpfs:
//!
//! - the host's system directories (`/usr`, `/lib*`, `/bin`, `/sbin`) and a few files of
//!   `/etc` (loader cache, DNS, certificates, time zone) read-only;
//! - `/var/task` (the code), `/var/runtime` (the bootstraps), `/opt` (layers) and any
//!   interpreter directory read-only, from [`Bind`]s;
//! - a private `/tmp`, a tmpfs of exactly the function's ephemeral storage;
//! - a minimal `/dev` and a fresh `/proc` that shows only the environment's processes;
//!
//! pivots into it, makes the root read-only, drops to an unprivileged user with no
//! capabilities, applies `no_new_privs` and the seccomp filter, and starts the runtime.
//! It then reaps orphans until the runtime exits, reports the runtime's exit status to the
//! supervisor, and exits: the kernel then kills whatever is left in the namespace, and the
//! mounts and tmpfs go with it. The supervisor exits with the runtime's status (re-raising
//! its signal), so the engine sees the runtime's own exit.
//!
//! Signals: the engine signals the environment's process group. The supervisor ignores
//! SIGTERM (it waits for the runtime), the init is pid 1 and ignores signals it has no
//! handler for, and the runtime gets them as it would on Lambda. SIGKILL ends everything.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{kill, signal, SigHandler, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Gid, Pid, Uid};

/// The first argument that makes the `gust` binary act as an environment's supervisor.
pub const INIT_ARG: &str = "__sandbox-init";

/// The argument (after [`INIT_ARG`]) of a spare supervisor, which waits for its
/// environment on stdin.
pub const AWAIT_ARG: &str = "--await-spec";

/// After [`AWAIT_ARG`], each followed by a `cgroup.procs` file the supervisor writes `0` to
/// before anything else (its cgroups: the server starts it with `posix_spawn`, which
/// cannot, rather than forking its own large address space for each environment).
pub const JOIN_ARG: &str = "--join";

/// The descriptor a primed runtime reads its environment from ([`HANDOVER_VAR`] names it).
pub const HANDOVER_FD: RawFd = 3;

/// The variable that puts a bootstrap in prime mode: it holds [`HANDOVER_FD`]'s number.
/// The bootstrap replaces its whole environment with what the hand-over brings, so the
/// function never sees it.
pub const HANDOVER_VAR: &str = "_GUST_HANDOVER_FD";

/// Lambda's per-process descriptor limit (`ulimit -n`), soft and hard.
pub const NOFILE_LIMIT: u64 = 1024;

/// The variable that tells a Python bootstrap it is a zygote, and on which descriptor its
/// control socket is.
pub const ZYGOTE_VAR: &str = "_GUST_ZYGOTE_FD";

/// Lambda's sandbox user, `sbx_user1051`.
pub const SANDBOX_UID: u32 = 993;
/// Its group.
pub const SANDBOX_GID: u32 = 990;

/// Host directories every environment sees read-only (as symlinks where the host has them
/// as symlinks, which keeps merged-`/usr` layouts working).
const SYSTEM_DIRS: &[&str] = &["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// The parts of the host's `/etc` programs need: the dynamic loader, name resolution,
/// certificates, time zone, alternatives (interpreter symlinks) and Python's site files.
const ETC_ENTRIES: &[&str] = &[
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "resolv.conf",
    "nsswitch.conf",
    "host.conf",
    "gai.conf",
    "services",
    "protocols",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "pki",
    "crypto-policies",
    "localtime",
    "timezone",
    "alternatives",
    "mime.types",
    "os-release",
];

/// Device nodes a runtime may use.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom"];

/// Why an environment could not be isolated.
#[derive(Debug, thiserror::Error)]
pub enum IsolateError {
    /// A system call failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: nix::Error,
    },
    /// A file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The supervisor's command line is not one the server writes.
    #[error("bad sandbox arguments: {0}")]
    Args(String),
}

fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> IsolateError {
    let what = what.into();
    move |source| IsolateError::Sys { what, source }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> IsolateError {
    let what = what.into();
    move |source| IsolateError::Io { what, source }
}

/// How environments reach the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// The host's network: outbound connections work, as for a Lambda function outside a VPC.
    Host,
    /// A network namespace of its own with only loopback, where the Runtime API listens.
    None,
}

impl std::str::FromStr for NetworkMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "host" => Ok(NetworkMode::Host),
            "none" => Ok(NetworkMode::None),
            other => Err(format!("unknown network mode {other:?} (use host or none)")),
        }
    }
}

/// Server-wide settings of isolated environments.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// The program run with [`INIT_ARG`] (the `gust` binary itself).
    pub init_program: PathBuf,
    /// An empty host directory each environment mounts its root on, inside its own mount
    /// namespace (so the host never sees those mounts).
    pub staging: PathBuf,
    /// The user functions run as.
    pub uid: u32,
    /// Its group.
    pub gid: u32,
    /// How environments reach the network.
    pub network: NetworkMode,
    /// The server is not root: each environment first gets a user namespace of its own, in
    /// which the server's user is `uid` (the only id it may map) and holds the
    /// capabilities the set-up needs; the runtime then runs without any.
    pub rootless: bool,
}

/// A host path shown read-only inside the environment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bind {
    /// The host path.
    pub source: PathBuf,
    /// Where the environment sees it (absolute).
    pub target: PathBuf,
}

/// Whether `path` is already visible inside every environment (under a system directory),
/// so a runtime living there needs no bind of its own.
pub fn visible_by_default(path: &Path) -> bool {
    SYSTEM_DIRS
        .iter()
        .any(|dir| path.starts_with(Path::new("/").join(dir)))
}

/// What the supervisor is told, as its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InitSpec {
    pub root: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub tmp_mb: u32,
    pub netns_fd: Option<RawFd>,
    pub seccomp: bool,
    pub rootless: bool,
    pub binds: Vec<Bind>,
    pub cwd: PathBuf,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The runtime's environment (`KEY=VALUE`), when it is not the supervisor's own (a
    /// spare supervisor is started before its environment is known).
    pub env: Option<Vec<OsString>>,
    /// A *primed* environment: the runtime is started in prime mode (it waits on
    /// [`HANDOVER_FD`] for its environment) and the init keeps its privileges until the
    /// rest of the environment arrives ([`init_primed`]).
    pub prime: bool,
    /// A *staged* environment: the init builds the root and waits for the rest of the
    /// environment before it starts anything ([`init_staged`]).
    pub stage: bool,
    /// External extensions, started before the runtime ([`start_extensions`]).
    pub extensions: Vec<PathBuf>,
    /// The extensions' output is a pipe of its own, sent with the spec after the output.
    pub extension_output: bool,
    /// That pipe's write end (received with the spec, never a number from it).
    pub extension_fd: Option<RawFd>,
    /// A primed environment whose runtime is forked by a zygote instead of started by
    /// the init ([`init_primed`]).
    pub forked: bool,
    /// Not an environment: a zygote ([`zygote_main`]), which forks runtimes for primed
    /// environments.
    pub zygote: bool,
    /// A zygote's control socket (received with the spec, never a number from it).
    pub control_fd: Option<RawFd>,
}

impl InitSpec {
    /// The arguments after [`INIT_ARG`].
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--root".into(),
            self.root.clone().into(),
            "--user".into(),
            format!("{}:{}", self.uid, self.gid).into(),
            "--tmp-mb".into(),
            self.tmp_mb.to_string().into(),
            "--cwd".into(),
            self.cwd.clone().into(),
        ];
        if self.seccomp {
            args.push("--seccomp".into());
        }
        if self.rootless {
            args.push("--rootless".into());
        }
        if self.prime {
            args.push("--prime".into());
        }
        if self.stage {
            args.push("--stage".into());
        }
        if self.forked {
            args.push("--forked".into());
        }
        if self.zygote {
            args.push("--zygote".into());
        }
        if self.extension_output {
            args.push("--extension-output".into());
        }
        for extension in &self.extensions {
            args.extend(["--extension".into(), extension.clone().into()]);
        }
        for bind in &self.binds {
            args.extend([
                "--bind".into(),
                bind.source.clone().into(),
                bind.target.clone().into(),
            ]);
        }
        for variable in self.env.iter().flatten() {
            args.extend(["--env".into(), variable.clone()]);
        }
        args.push("--".into());
        args.push(self.program.clone().into());
        args.extend(self.args.iter().cloned());
        args
    }

    /// Parses what [`InitSpec::to_args`] wrote.
    pub fn parse(args: &[OsString]) -> Result<Self, IsolateError> {
        fn number<T: std::str::FromStr>(value: &OsStr, what: &str) -> Result<T, IsolateError> {
            value
                .to_str()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| IsolateError::Args(format!("{what}: {value:?}")))
        }
        let mut spec = InitSpec {
            root: PathBuf::new(),
            uid: SANDBOX_UID,
            gid: SANDBOX_GID,
            tmp_mb: 512,
            netns_fd: None,
            seccomp: false,
            rootless: false,
            binds: Vec::new(),
            cwd: PathBuf::from("/"),
            program: PathBuf::new(),
            args: Vec::new(),
            env: None,
            prime: false,
            stage: false,
            extensions: Vec::new(),
            extension_output: false,
            extension_fd: None,
            forked: false,
            zygote: false,
            control_fd: None,
        };
        let mut rest = args.iter();
        let missing = |flag: &str| IsolateError::Args(format!("{flag} needs a value"));
        while let Some(flag) = rest.next() {
            let flag = flag.to_str().unwrap_or("");
            match flag {
                "--root" => spec.root = rest.next().ok_or_else(|| missing(flag))?.into(),
                "--cwd" => spec.cwd = rest.next().ok_or_else(|| missing(flag))?.into(),
                "--tmp-mb" => {
                    spec.tmp_mb = number(rest.next().ok_or_else(|| missing(flag))?, flag)?
                }
                "--user" => {
                    let value = rest.next().ok_or_else(|| missing(flag))?;
                    let text = value.to_str().unwrap_or("");
                    let (uid, gid) = text
                        .split_once(':')
                        .ok_or_else(|| IsolateError::Args(format!("--user: {text:?}")))?;
                    spec.uid = number(OsStr::new(uid), flag)?;
                    spec.gid = number(OsStr::new(gid), flag)?;
                }
                "--seccomp" => spec.seccomp = true,
                "--rootless" => spec.rootless = true,
                "--prime" => spec.prime = true,
                "--stage" => spec.stage = true,
                "--forked" => spec.forked = true,
                "--zygote" => spec.zygote = true,
                "--extension-output" => spec.extension_output = true,
                "--extension" => spec
                    .extensions
                    .push(rest.next().ok_or_else(|| missing(flag))?.into()),
                "--env" => {
                    let variable = rest.next().ok_or_else(|| missing(flag))?;
                    spec.env.get_or_insert_with(Vec::new).push(variable.clone());
                }
                "--bind" => {
                    let source = rest.next().ok_or_else(|| missing(flag))?;
                    let target = rest.next().ok_or_else(|| missing(flag))?;
                    spec.binds.push(Bind {
                        source: source.into(),
                        target: target.into(),
                    });
                }
                "--" => {
                    spec.program = rest.next().ok_or_else(|| missing(flag))?.into();
                    spec.args = rest.cloned().collect();
                    break;
                }
                other => return Err(IsolateError::Args(format!("unknown flag {other:?}"))),
            }
        }
        if spec.root.as_os_str().is_empty() || spec.program.as_os_str().is_empty() {
            return Err(IsolateError::Args(
                "--root and a program are required".into(),
            ));
        }
        if spec
            .binds
            .iter()
            .any(|b| !b.target.is_absolute() || !b.source.is_absolute())
        {
            return Err(IsolateError::Args("bind paths must be absolute".into()));
        }
        Ok(spec)
    }
}

impl Isolation {
    /// Settings for this host: Lambda's user, and rootless when this process is not root.
    pub fn for_host(init_program: PathBuf, staging: PathBuf, network: NetworkMode) -> Isolation {
        Isolation {
            init_program,
            staging,
            uid: SANDBOX_UID,
            gid: SANDBOX_GID,
            network,
            rootless: !nix::unistd::geteuid().is_root(),
        }
    }

    /// What every environment's spec shares; `program` runs with no arguments in `/`.
    fn base_spec(&self, program: PathBuf, tmp_mb: u32) -> InitSpec {
        InitSpec {
            root: self.staging.clone(),
            uid: self.uid,
            gid: self.gid,
            tmp_mb,
            // Only ever a descriptor received with the spec, never a number from it.
            netns_fd: None,
            seccomp: false,
            rootless: self.rootless,
            binds: Vec::new(),
            cwd: "/".into(),
            program,
            args: Vec::new(),
            env: None,
            prime: false,
            stage: false,
            extensions: Vec::new(),
            extension_output: false,
            extension_fd: None,
            forked: false,
            zygote: false,
            control_fd: None,
        }
    }

    /// The message a supervisor waits for: the environment, as [`INIT_ARG`]'s arguments
    /// (with its variables), each a 4-byte length and its bytes, so no value can be read
    /// as more than one argument.
    pub(crate) fn hand_over_payload(&self, spawn: &crate::SpawnSpec, seccomp: bool) -> Vec<u8> {
        let mut spec = InitSpec {
            seccomp,
            binds: spawn.binds.clone(),
            cwd: spawn.cwd.clone(),
            args: spawn.args.clone(),
            extensions: spawn.extensions.clone(),
            extension_output: spawn.extension_output.is_some(),
            ..self.base_spec(spawn.program.clone(), spawn.tmp_mb)
        };
        spec.env = Some(
            spawn
                .env
                .iter()
                .map(|(k, v)| OsString::from(format!("{k}={v}")))
                .collect(),
        );
        encode(&spec.to_args())
    }

    /// The message a *primed* spare's supervisor waits for: the runtime's program,
    /// arguments and fixed variables (with [`HANDOVER_VAR`]) and the binds every
    /// environment of that runtime has, with [`InitSpec::prime`] set ([`InitSpec::stage`]
    /// for a staged spare, which starts nothing and so needs no variables).
    pub(crate) fn prime_payload(
        &self,
        prime: &crate::PrimeSpec,
        seccomp: bool,
        forked: bool,
    ) -> Vec<u8> {
        let mut spec = InitSpec {
            seccomp,
            binds: prime.binds.clone(),
            args: prime.args.clone(),
            prime: !prime.staged,
            stage: prime.staged,
            forked: forked && !prime.staged,
            ..self.base_spec(prime.program.clone(), 1)
        };
        if prime.staged {
            return encode(&spec.to_args());
        }
        spec.env = Some(
            prime
                .env
                .iter()
                .map(|(k, v)| OsString::from(format!("{k}={v}")))
                .chain([OsString::from(format!("{HANDOVER_VAR}={HANDOVER_FD}"))])
                .collect(),
        );
        encode(&spec.to_args())
    }

    /// The message a zygote's supervisor waits for ([`zygote_main`]): the runtime's
    /// program, arguments, fixed variables and binds as a primed spare's, with
    /// [`ZYGOTE_VAR`] naming its control socket.
    pub(crate) fn zygote_payload(&self, prime: &crate::PrimeSpec) -> Vec<u8> {
        let spec = InitSpec {
            binds: prime.binds.clone(),
            args: prime.args.clone(),
            zygote: true,
            env: Some(
                prime
                    .env
                    .iter()
                    .map(|(k, v)| OsString::from(format!("{k}={v}")))
                    .chain([
                        OsString::from(format!("{HANDOVER_VAR}={HANDOVER_FD}")),
                        OsString::from(format!("{ZYGOTE_VAR}={HANDOVER_FD}")),
                    ])
                    .collect(),
            ),
            ..self.base_spec(prime.program.clone(), 1)
        };
        encode(&spec.to_args())
    }

    /// Starts a throwaway environment running `/bin/true`, to learn
    /// at server start whether this host can isolate environments, and why not.
    pub fn probe(&self) -> Result<(), String> {
        let program = ["/usr/bin/true", "/bin/true"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("/bin/true");
        let spec = self.base_spec(program.into(), 1);
        // From `/`, with nothing inherited, as every environment's supervisor starts.
        let output = std::process::Command::new(&self.init_program)
            .arg(INIT_ARG)
            .args(spec.to_args())
            .current_dir("/")
            .env_clear()
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.init_program.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            let text = String::from_utf8_lossy(&output.stderr);
            Err(text
                .trim()
                .trim_start_matches("gust sandbox: ")
                .lines()
                .next()
                .unwrap_or("the sandbox init failed")
                .to_owned())
        }
    }
}

/// A network namespace with only loopback (up), and the Runtime API's listener in it.
#[derive(Debug)]
pub struct PrivateNetwork {
    /// Bound inside the namespace.
    pub listener: std::net::TcpListener,
    /// Listeners on the other ports asked for, in order (the server's own API, reachable
    /// from the environment at the same address as from the host).
    pub extra: Vec<std::net::TcpListener>,
    /// The namespace, for the environment to join.
    pub namespace: OwnedFd,
}

/// The Runtime API's port inside an environment's own network namespace (Lambda's).
pub const RUNTIME_API_PORT: u16 = 9001;

/// Creates a network namespace on a short-lived thread (a thread that has moved to another
/// namespace must not run anything else), brings its loopback up and listens on
/// `127.0.0.1:port` (and each of `extra_ports`) in it.
pub fn private_network(port: u16, extra_ports: &[u16]) -> Result<PrivateNetwork, IsolateError> {
    let extra_ports = extra_ports.to_vec();
    std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_NEWNET).map_err(sys("unshare(CLONE_NEWNET)"))?;
        loopback_up()?;
        let bind = |port: u16| {
            std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port))
                .map_err(io(format!("listen on 127.0.0.1:{port}")))
        };
        let listener = bind(port)?;
        let extra = extra_ports
            .iter()
            .map(|p| bind(*p))
            .collect::<Result<Vec<_>, _>>()?;
        let namespace =
            File::open("/proc/thread-self/ns/net").map_err(io("open the network namespace"))?;
        Ok(PrivateNetwork {
            listener,
            extra,
            namespace: namespace.into(),
        })
    })
    .join()
    .unwrap_or_else(|_| {
        Err(IsolateError::Args(
            "network namespace thread panicked".into(),
        ))
    })
}

/// `ip link set lo up` in the calling thread's network namespace.
fn loopback_up() -> Result<(), IsolateError> {
    let socket = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(sys("socket"))?;
    // SAFETY: `ifreq` is plain data; all-zero is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    use std::os::fd::AsRawFd;
    // SAFETY: SIOCGIFFLAGS reads the interface named in `request` and writes its flags into
    // the same struct, which lives for the call.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) } < 0 {
        return Err(IsolateError::Io {
            what: "read loopback flags".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: the flags member of the union is the one SIOCGIFFLAGS filled in.
    unsafe {
        request.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: as above; SIOCSIFFLAGS only reads `request`.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) } < 0 {
        return Err(IsolateError::Io {
            what: "bring loopback up".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// What a supervisor and the server must agree on (this file's text, hashed): a
/// supervisor binary other than the server's own (`gust-init`) is used only when it says
/// the same ([`PROTOCOL_ARG`]).
pub const PROTOCOL: u64 = {
    // Everything the supervisor runs of this crate: its code and the seccomp filters.
    let texts: [&[u8]; 2] = [include_bytes!("isolate.rs"), include_bytes!("seccomp.rs")];
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut t = 0;
    while t < texts.len() {
        let mut i = 0;
        while i < texts[t].len() {
            hash ^= texts[t][i] as u64;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
            i += 1;
        }
        t += 1;
    }
    hash
};

/// After [`INIT_ARG`]: print [`PROTOCOL`] and exit.
pub const PROTOCOL_ARG: &str = "--protocol";

/// The program environments' supervisors run: `gust-init` beside the server's binary
/// `server` when it speaks this build's [`PROTOCOL`] (a small binary starts in a fraction
/// of the server's time: every environment and spare starts one), else `server` itself.
pub fn init_program(server: PathBuf) -> PathBuf {
    let small = server.with_file_name("gust-init");
    let agrees = std::process::Command::new(&small)
        .args([INIT_ARG, PROTOCOL_ARG])
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .is_ok_and(|out| out.status.success() && out.stdout == PROTOCOL.to_string().as_bytes());
    if agrees {
        small
    } else {
        server
    }
}

/// The supervisor's `main`: sets the environment up and returns the exit code to exit
/// with (or does not return, having re-raised the runtime's fatal signal).
pub fn init_main(args: &[OsString]) -> i32 {
    if args.first().is_some_and(|a| a == PROTOCOL_ARG) {
        print!("{PROTOCOL}");
        return 0;
    }
    let received = if args.first().is_some_and(|a| a == AWAIT_ARG) {
        let joins = &args[1..];
        // Only whole `--join PATH` pairs: a supervisor never runs outside its cgroup.
        if !joins.len().is_multiple_of(2) || joins.chunks(2).any(|pair| pair[0] != JOIN_ARG) {
            eprintln!("gust sandbox: bad arguments after {AWAIT_ARG}");
            return 126;
        }
        for procs in joins.chunks(2).map(|pair| &pair[1]) {
            if let Err(error) = std::fs::write(procs, "0") {
                eprintln!("gust sandbox: join {}: {error}", Path::new(procs).display());
                return 126;
            }
        }
        receive_spec().map(|(spec, report)| (spec, Report(Some(report))))
    } else {
        InitSpec::parse(args).map(|spec| (spec, Report(None)))
    };
    let (spec, mut report) = match received {
        Ok(received) => received,
        Err(error) => {
            eprintln!("gust sandbox: {error}");
            return 126;
        }
    };
    match supervise(&spec, &mut report) {
        Ok(code) => code,
        Err(error) => {
            report.failed(&error);
            eprintln!("gust sandbox: {error}");
            126
        }
    }
}

/// Tells the server, once, that the runtime started (`S`) or why the environment could
/// not be set up (`E` and the reason), on the socket the environment came from.
struct Report(Option<File>);

impl Report {
    fn started(&mut self) {
        if let Some(mut socket) = self.0.take() {
            let _ = socket.write_all(b"S");
        }
    }

    /// A primed runtime was started: the socket stays open for the rest of the environment.
    fn primed(&mut self) -> Result<(), IsolateError> {
        match &mut self.0 {
            Some(socket) => socket
                .write_all(b"S")
                .map_err(io("report the primed runtime")),
            None => Err(IsolateError::Args("no socket to the server".into())),
        }
    }

    /// The rest of a primed environment: an 8-byte length (with the extensions' output
    /// attached when the spec has one), then a hand-over payload
    /// ([`Isolation::hand_over_payload`]).
    fn receive_rest(&mut self) -> Result<InitSpec, IsolateError> {
        use std::os::fd::AsRawFd;
        let Some(socket) = &mut self.0 else {
            return Err(IsolateError::Args("no socket to the server".into()));
        };
        let mut header = [0u8; 8];
        let (received, fds) = receive_header(socket.as_raw_fd(), &mut header)?;
        if received == 0 {
            return Err(IsolateError::Args(
                "the server went away before sending the environment".into(),
            ));
        }
        socket
            .read_exact(&mut header[received..])
            .map_err(io("receive the environment"))?;
        let payload = read_payload(socket, header)?;
        let mut rest = decode(&payload).and_then(|args| InitSpec::parse(&args))?;
        let mut fds = fds.into_iter();
        if rest.extension_output {
            rest.extension_fd = fds.next();
        }
        // Anything else sent along is not this process's to keep.
        for fd in fds {
            // SAFETY: received just now and owned by nothing else.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        Ok(rest)
    }

    /// Sends `byte` with `fds` attached (a forked environment's request for its runtime).
    fn send_fds(&mut self, byte: u8, fds: &[RawFd]) -> Result<(), IsolateError> {
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
        use std::os::fd::AsRawFd;
        let Some(socket) = &self.0 else {
            return Err(IsolateError::Args("no socket to the server".into()));
        };
        let rights = [ControlMessage::ScmRights(fds)];
        sendmsg::<()>(
            socket.as_raw_fd(),
            &[std::io::IoSlice::new(&[byte])],
            &rights,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map(drop)
        .map_err(sys("ask the server for a forked runtime"))
    }

    fn failed(&mut self, error: &IsolateError) {
        if let Some(mut socket) = self.0.take() {
            let _ = socket.write_all(format!("E{error}").as_bytes());
        }
    }
}

/// The payload announced by an 8-byte little-endian `header`, read from `source`; an
/// environment is at most 1 MiB.
fn read_payload(source: &mut impl Read, header: [u8; 8]) -> Result<Vec<u8>, IsolateError> {
    let length = usize::try_from(u64::from_le_bytes(header)).unwrap_or(usize::MAX);
    if length > 1 << 20 {
        return Err(IsolateError::Args(format!(
            "an environment of {length} bytes"
        )));
    }
    let mut payload = vec![0u8; length];
    source
        .read_exact(&mut payload)
        .map_err(io("receive the environment"))?;
    Ok(payload)
}

/// Receives the start of a payload's 8-byte length on `socket` with the descriptors
/// attached to it (close-on-exec): how many bytes of `header` arrived, and the descriptors.
fn receive_header(
    socket: RawFd,
    header: &mut [u8; 8],
) -> Result<(usize, Vec<RawFd>), IsolateError> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut space = nix::cmsg_space!([RawFd; 3]);
    let mut iov = [std::io::IoSliceMut::new(header)];
    let message = recvmsg::<()>(
        socket,
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(sys("receive the environment"))?;
    let mut fds = Vec::new();
    for control in message.cmsgs().map_err(sys("read the descriptors"))? {
        if let ControlMessageOwned::ScmRights(received) = control {
            fds.extend(received);
        }
    }
    Ok((message.bytes, fds))
}

/// Receives the environment on stdin (a Unix socket, kept for the [`Report`]): an 8-byte length with the output
/// descriptor (and the network namespace's) attached, then the payload
/// ([`Isolation::hand_over_payload`]). The output becomes stdout and stderr, and stdin
/// becomes `/dev/null`. The function's variables never appear in this process's own
/// environment or command line: it runs as root before any namespace exists, where
/// `LD_PRELOAD` and its like must not reach it.
fn receive_spec() -> Result<(InitSpec, File), IsolateError> {
    let mut header = [0u8; 8];
    let (received, fds) = receive_header(0, &mut header)?;
    // SAFETY: descriptor 0 is this process's stdin, open for its whole life; the
    // `ManuallyDrop` keeps this `File` from closing it.
    let mut stdin = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(0) });
    if received == 0 {
        return Err(IsolateError::Args(
            "the server went away before sending the environment".into(),
        ));
    }
    stdin
        .read_exact(&mut header[received..])
        .map_err(io("receive the environment"))?;
    let payload = read_payload(&mut *stdin, header)?;
    let Some(&output) = fds.first() else {
        return Err(IsolateError::Args("no output descriptor".into()));
    };
    // SAFETY: F_DUPFD_CLOEXEC duplicates descriptor 0 (open for this process's life) to
    // a new descriptor and touches no memory.
    let report = match unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3) } {
        // SAFETY: the new descriptor is open and nothing else owns it.
        fd if fd >= 0 => unsafe { File::from_raw_fd(fd) },
        _ => {
            return Err(IsolateError::Io {
                what: "keep the server's socket".into(),
                source: std::io::Error::last_os_error(),
            })
        }
    };
    let null = File::open("/dev/null").map_err(io("open /dev/null"))?;
    use std::os::fd::AsRawFd;
    for (from, to) in [(output, 1), (output, 2), (null.as_raw_fd(), 0)] {
        // SAFETY: both descriptors are open; dup2 replaces `to` atomically.
        if unsafe { libc::dup2(from, to) } < 0 {
            return Err(IsolateError::Io {
                what: "set up the output".into(),
                source: std::io::Error::last_os_error(),
            });
        }
    }
    // SAFETY: received above and owned by nothing else; it lives on as 1 and 2.
    drop(unsafe { OwnedFd::from_raw_fd(output) });
    // Parsed once the output is the environment's, so what goes wrong reaches its log, and
    // the server hears why.
    let mut spec = match decode(&payload).and_then(|args| InitSpec::parse(&args)) {
        Ok(spec) => spec,
        Err(error) => {
            Report(Some(report)).failed(&error);
            return Err(error);
        }
    };
    // After the output: the extensions' (when the spec says so), then the network
    // namespace or a zygote's control socket.
    let mut more = fds.iter().skip(1).copied();
    if spec.extension_output {
        spec.extension_fd = more.next();
    }
    if spec.zygote {
        spec.control_fd = more.next();
    } else {
        spec.netns_fd = more.next();
    }
    Ok((spec, report))
}

/// Arguments as a hand-over payload: each a little-endian `u32` length, then its bytes.
fn encode(args: &[OsString]) -> Vec<u8> {
    let mut payload = Vec::new();
    for arg in args {
        let bytes = arg.as_bytes();
        payload.extend((bytes.len() as u32).to_le_bytes());
        payload.extend(bytes);
    }
    payload
}

fn decode(mut payload: &[u8]) -> Result<Vec<OsString>, IsolateError> {
    let mut args = Vec::new();
    while !payload.is_empty() {
        let (length, rest) = payload
            .split_first_chunk::<4>()
            .ok_or_else(|| IsolateError::Args("truncated environment".into()))?;
        let length = u32::from_le_bytes(*length) as usize;
        if rest.len() < length {
            return Err(IsolateError::Args("truncated environment".into()));
        }
        let (arg, rest) = rest.split_at(length);
        args.push(OsStr::from_bytes(arg).to_owned());
        payload = rest;
    }
    Ok(args)
}

/// Enters a new user namespace where this process is `uid:gid` and holds every
/// capability (over the namespaces it creates next, not over the host).
fn enter_user_namespace(uid: u32, gid: u32) -> Result<(), IsolateError> {
    let host_uid = nix::unistd::geteuid();
    let host_gid = nix::unistd::getegid();
    unshare(CloneFlags::CLONE_NEWUSER).map_err(sys("unshare(CLONE_NEWUSER)"))?;
    // An unprivileged process may map only its own ids, and only after giving up
    // setgroups(2) (which could otherwise drop a group that denies access).
    for (file, text) in [
        ("setgroups", "deny".to_owned()),
        ("uid_map", format!("{uid} {host_uid} 1")),
        ("gid_map", format!("{gid} {host_gid} 1")),
    ] {
        std::fs::write(Path::new("/proc/self").join(file), text)
            .map_err(io(format!("write /proc/self/{file}")))?;
    }
    Ok(())
}

/// Signals the engine sends the environment's process group that are the runtime's: this
/// process waits for the runtime instead (the init restores them for the runtime).
const FORWARDED: [Signal; 3] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];

fn set_forwarded(handler: SigHandler) {
    for forwarded in FORWARDED {
        // SAFETY: ignoring a signal or restoring its default installs no handler code.
        let _ = unsafe { signal(forwarded, handler) };
    }
}

/// In a new mount namespace: nothing mounted from here on may reach the host.
fn mounts_private() -> Result<(), IsolateError> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(sys("make mounts private"))
}

fn supervise(spec: &InitSpec, report: &mut Report) -> Result<i32, IsolateError> {
    if spec.zygote {
        return zygote_main(spec, report);
    }
    set_forwarded(SigHandler::SigIgn);
    if spec.rootless {
        enter_user_namespace(spec.uid, spec.gid)?;
    }
    // The new pid namespace takes effect for the child forked below, which becomes its pid 1.
    unshare(
        CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWPID,
    )
    .map_err(sys("unshare(mount, uts, ipc, pid namespaces)"))?;
    if let Some(fd) = spec.netns_fd {
        // SAFETY: the server passed this descriptor open and nothing else in this process
        // owns it; it is closed when `namespace` drops.
        let namespace = unsafe { OwnedFd::from_raw_fd(fd) };
        setns(&namespace, CloneFlags::CLONE_NEWNET).map_err(sys("join the network namespace"))?;
    }
    mounts_private()?;
    let (status_read, status_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
    // The init learns through this one whether this process died before its
    // parent-death signal was armed (it reads end-of-file then).
    let (alive_read, alive_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
            .map_err(sys("pipe"))?;
    // SAFETY: this process is single-threaded (a fresh exec of the server binary that
    // started no threads), so the child may do anything after the fork.
    match unsafe { fork() }.map_err(sys("fork"))? {
        ForkResult::Child => {
            drop(status_read);
            drop(alive_write);
            let code = match init(spec, status_write, alive_read, report) {
                Ok(code) => code,
                Err(error) => {
                    report.failed(&error);
                    eprintln!("gust sandbox: {error}");
                    126
                }
            };
            std::process::exit(code)
        }
        ForkResult::Parent { child } => {
            drop(status_write);
            drop(alive_read);
            if let Some(fd) = spec.extension_fd {
                // SAFETY: received with the spec and owned by nothing else in this process;
                // the init has its copy (the pipe must end when the extensions do).
                drop(unsafe { OwnedFd::from_raw_fd(fd) });
            }
            // The init reports from here on; the server reads until every copy is closed.
            report.0 = None;
            let status = loop {
                match waitpid(child, None) {
                    Ok(status) => break status,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(error) => return Err(sys("wait for the environment's init")(error)),
                }
            };
            let mut reported = [0u8; 2];
            let reported = File::from(status_read)
                .read_exact(&mut reported)
                .ok()
                .map(|()| reported);
            drop(alive_write);
            Ok(match (reported, status) {
                (Some([0, code]), _) => i32::from(code),
                (Some([_, signal]), _) => reraise(i32::from(signal)),
                (None, WaitStatus::Exited(_, code)) => code,
                (None, WaitStatus::Signaled(_, signal, _)) => reraise(signal as i32),
                (None, _) => 126,
            })
        }
    }
}

/// A zygote, not an environment: in a mount namespace of its own, the root built as a
/// primed environment's (the runtime's binds; `/var/task`, `/opt` and `/tmp` empty) and
/// sealed, it executes the runtime's program `chroot`ed there, as root with its
/// capabilities and in the host's pid namespace (so the runtimes it forks can join each
/// environment's namespaces and cgroups), with its control socket on [`HANDOVER_FD`].
/// It only ever runs the runtime's own code (the interpreter and Gust's bootstrap), never
/// a function's: each runtime it forks gives up everything before it takes an
/// environment (`gust_zygote.py`).
fn zygote_main(spec: &InitSpec, report: &mut Report) -> Result<i32, IsolateError> {
    use std::os::unix::process::CommandExt;
    let Some(control) = spec.control_fd else {
        return Err(IsolateError::Args("no control socket".into()));
    };
    if spec.rootless {
        return Err(IsolateError::Args("zygotes need root".into()));
    }
    unshare(CloneFlags::CLONE_NEWNS).map_err(sys("unshare(mount namespace)"))?;
    mounts_private()?;
    build_tree(spec)?;
    seal_tree(&spec.root)?;
    let root = std::ffi::CString::new(spec.root.as_os_str().as_bytes())
        .map_err(|_| IsolateError::Args("a root path with a NUL".into()))?;
    let mut command = std::process::Command::new(&spec.program);
    command.args(&spec.args);
    replace_environment(&mut command, spec.env.as_deref().unwrap_or_default());
    // SAFETY: the hook runs in the child between fork and exec; this process is
    // single-threaded and the hook only makes raw system calls on values prepared before
    // the fork (a descriptor, the root's C string).
    unsafe {
        command.pre_exec(move || onto_handover_fd_in(control, &root));
    }
    // Replaces this process (the server's child is the zygote itself); the report socket
    // is closed by the exec, or says why it failed.
    let _ = report;
    let error = command.exec();
    Err(io("exec the zygote")(error))
}

/// Dies of `signal` like the runtime did, so the engine sees the same status.
fn reraise(number: i32) -> i32 {
    if let Ok(signal) = Signal::try_from(number) {
        // A crashing function must not make this (root) process dump core on the host.
        let _ = nix::sys::prctl::set_dumpable(false);
        // SAFETY: restoring the default disposition installs no handler code.
        let _ = unsafe { nix::sys::signal::signal(signal, SigHandler::SigDfl) };
        let _ = kill(Pid::this(), signal);
    }
    128 + number
}

/// Pid 1 of the environment: builds the filesystem, drops privileges, starts the runtime
/// and reaps until it exits.
fn init(
    spec: &InitSpec,
    status: OwnedFd,
    alive: OwnedFd,
    report: &mut Report,
) -> Result<i32, IsolateError> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(sys("set the parent-death signal"))?;
    // End-of-file: the supervisor died before the signal was armed (EAGAIN: it lives).
    if nix::unistd::read(&alive, &mut [0u8; 1]) == Ok(0) {
        return Ok(126);
    }
    set_forwarded(SigHandler::SigDfl);
    // Rootless, the init keeps capabilities in its user namespace under the runtime's uid:
    // not dumpable, its /proc files are not the runtime's to open (exec makes the
    // runtime dumpable again).
    nix::sys::prctl::set_dumpable(false).map_err(sys("set not dumpable"))?;
    // Lambda's `ulimit -n`, inherited by the runtime and everything it starts.
    nix::sys::resource::setrlimit(
        nix::sys::resource::Resource::RLIMIT_NOFILE,
        NOFILE_LIMIT,
        NOFILE_LIMIT,
    )
    .map_err(sys("limit open files"))?;
    if spec.prime {
        return init_primed(spec, status, report);
    }
    let staged;
    let (spec, filters) = if spec.stage {
        // Confined in two steps: all but what it still calls itself before its report,
        // the rest at the hand-over (`seccomp::split_filters`).
        let (early, late) = split_seccomp_filters(spec.seccomp)?;
        staged = init_staged(spec, early.as_deref(), report)?;
        (&staged, late)
    } else {
        build_tree(spec)?;
        (spec, seccomp_filters(spec.seccomp)?)
    };
    mount_tmp(spec)?;
    enter_root(&spec.root)?;
    nix::unistd::sethostname("localhost").map_err(sys("sethostname"))?;
    drop_privileges(spec.uid, spec.gid, spec.rootless)?;
    confine_self(filters.as_deref())?;
    start_extensions(spec);
    let mut command = std::process::Command::new(&spec.program);
    command.args(&spec.args).current_dir(&spec.cwd);
    if let Some(env) = &spec.env {
        replace_environment(&mut command, env);
    }
    let runtime = command.spawn().map_err(io("exec"))?;
    report.started();
    reap(
        Pid::from_raw(i32::try_from(runtime.id()).unwrap_or(-1)),
        status,
    )
}

/// Pid 1 of a *staged* environment, before it is the fresh [`init`]'s: builds the root
/// (without `/var/task`, `/opt` and `/tmp`, whose directories are empty mount points) and
/// reports, then waits on the server's socket for the rest of the environment and mounts
/// the function's binds onto those mount points. Nothing runs in the environment until
/// then; from here on it is set up exactly as a fresh one (`/tmp`, pivot, privileges,
/// seccomp, extensions, the program) by the spec received, which is returned.
fn init_staged(
    spec: &InitSpec,
    early_filters: Option<&[seccompiler::BpfProgram]>,
    report: &mut Report,
) -> Result<InitSpec, IsolateError> {
    build_tree(spec)?;
    if let Some(filters) = early_filters {
        confine_self(Some(filters))?;
    }
    report.primed()?;
    let rest = report.receive_rest()?;
    mount_handed_over(spec, &rest, "staged")?;
    Ok(rest)
}

/// Checks that the environment handed over (`rest`) is the one this sandbox was `what`
/// (staged or primed) for, whatever the server sent: the same program, arguments, root,
/// user, seccomp and every bind it was built with, the function's own binds only onto the
/// empty mount points the root has; then mounts those.
fn mount_handed_over(spec: &InitSpec, rest: &InitSpec, what: &str) -> Result<(), IsolateError> {
    if (
        &rest.program,
        &rest.args,
        &rest.root,
        rest.uid,
        rest.gid,
        rest.rootless,
        rest.seccomp,
    ) != (
        &spec.program,
        &spec.args,
        &spec.root,
        spec.uid,
        spec.gid,
        spec.rootless,
        spec.seccomp,
    ) || !spec.binds.iter().all(|b| rest.binds.contains(b))
    {
        return Err(IsolateError::Args(format!(
            "the environment is not the one this sandbox was {what} for"
        )));
    }
    for bind in rest.binds.iter().filter(|b| !spec.binds.contains(b)) {
        if !["/var/task", "/opt"]
            .iter()
            .any(|p| bind.target == Path::new(p))
        {
            return Err(IsolateError::Args(format!(
                "a bind onto {} in a {what} environment",
                bind.target.display()
            )));
        }
        let relative = bind.target.strip_prefix("/").unwrap_or(&bind.target);
        bind_read_only(&bind.source, &spec.root.join(relative))?;
    }
    Ok(())
}

/// Pid 1 of a *primed* environment. Before the hand-over: the root is built (without
/// `/var/task`, `/opt` and `/tmp`, whose directories are empty mount points) and sealed
/// read-only, and the runtime is started in it as it would be (its own `chroot` into the
/// root, Lambda's user, no capabilities, seccomp), in prime mode: it loads itself and
/// waits on [`HANDOVER_FD`]. This process keeps its privileges (it still has to mount)
/// and the host's root, which the runtime cannot reach (its root is the new one; this
/// process is not dumpable, so `/proc/1/root` is closed to it).
///
/// At the hand-over it receives the rest of the environment on the server's socket,
/// mounts the function's binds and `/tmp`, pivots into the root (the host's tree is
/// detached), drops its privileges and applies seccomp exactly as [`init`] does, and only
/// then writes the function's environment and working directory to the runtime: no
/// function code runs while a privileged process is left in the environment.
fn init_primed(spec: &InitSpec, status: OwnedFd, report: &mut Report) -> Result<i32, IsolateError> {
    build_tree(spec)?;
    nix::unistd::sethostname("localhost").map_err(sys("sethostname"))?;
    seal_tree(&spec.root)?;
    let (handover_read, handover_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
    // The runtime's copy goes into the hook; this process confines itself in two steps:
    // all but what it still calls itself before its report, the rest at the hand-over.
    let runtime_filters = seccomp_filters(spec.seccomp)?;
    let (early_filters, filters) = split_seccomp_filters(spec.seccomp)?;
    let mut command = std::process::Command::new(&spec.program);
    command.args(&spec.args);
    replace_environment(&mut command, spec.env.as_deref().unwrap_or_default());
    let root = std::ffi::CString::new(spec.root.as_os_str().as_bytes())
        .map_err(|_| IsolateError::Args("a root path with a NUL".into()))?;
    let (uid, gid, rootless) = (spec.uid, spec.gid, spec.rootless);
    {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let handover = handover_read.as_raw_fd();
        // SAFETY: the hook runs in the child between fork and exec. This process is
        // single-threaded (forked from the single-threaded supervisor), and the hook makes
        // only raw system calls on values prepared before the fork (the root's C string,
        // a descriptor, compiled filters) and allocates nothing.
        unsafe {
            command.pre_exec(move || {
                let check = |result: libc::c_int| {
                    if result < 0 {
                        Err(std::io::Error::last_os_error())
                    } else {
                        Ok(())
                    }
                };
                onto_handover_fd_in(handover, &root)?;
                for capability in 0..64 {
                    libc::prctl(libc::PR_CAPBSET_DROP, capability, 0, 0, 0);
                }
                if !rootless {
                    check(libc::setgroups(0, std::ptr::null()))?;
                    check(libc::setresgid(gid, gid, gid))?;
                    check(libc::setresuid(uid, uid, uid))?;
                }
                match &runtime_filters {
                    Some(filters) => {
                        for filter in filters {
                            seccompiler::apply_filter(filter)
                                .map_err(|_| std::io::Error::from_raw_os_error(libc::EPERM))?;
                        }
                    }
                    None => check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?,
                }
                Ok(())
            });
        }
    }
    let runtime = if spec.forked {
        if spec.netns_fd.is_some() {
            // A forked runtime joins the namespaces the init sends, which do not include
            // a network namespace.
            return Err(IsolateError::Args(
                "a forked runtime in a network namespace of its own".into(),
            ));
        }
        fork_from_zygote(report, handover_read)?
    } else {
        let runtime = command.spawn().map_err(io("exec"))?;
        drop(handover_read);
        Pid::from_raw(i32::try_from(runtime.id()).unwrap_or(-1))
    };
    if let Some(early) = &early_filters {
        confine_self(Some(early))?;
    }
    report.primed()?;
    // Waits (for as long as the spare is kept) for the rest of the environment.
    let rest = report.receive_rest()?;
    mount_handed_over(spec, &rest, "primed")?;
    mount_tmp(&InitSpec {
        tmp_mb: rest.tmp_mb,
        ..spec.clone()
    })?;
    enter_root(&spec.root)?;
    drop_privileges(spec.uid, spec.gid, spec.rootless)?;
    confine_self(filters.as_deref())?;
    start_extensions(&InitSpec {
        cwd: rest.cwd.clone(),
        env: rest.env.clone(),
        extensions: rest.extensions.clone(),
        extension_fd: rest.extension_fd,
        ..spec.clone()
    });
    // Nothing privileged is left in the environment: the server may go on (reported before
    // the runtime is woken, which would otherwise take this CPU before the report is out).
    // A runtime that cannot take its environment now exits, as a fresh one that fails.
    report.started();
    // Now the function's: its working directory, then its variables.
    let mut environment = vec![rest.cwd.into_os_string()];
    environment.extend(rest.env.unwrap_or_default());
    if let Err(error) = File::from(handover_write).write_all(&encode(&environment)) {
        eprintln!("gust sandbox: hand the environment to the runtime: {error}");
    }
    reap(runtime, status)
}

/// The namespaces a zygote's runtime joins, in the order it gets them.
const FORKED_NAMESPACES: [&str; 4] = ["mnt", "uts", "ipc", "pid"];

/// Has a zygote fork this environment's runtime: sends the server (which passes them to
/// the runtime's zygote with the environment's output and cgroups) this environment's
/// namespaces, the hand-over pipe's read end and a *ready* pipe's write end, then waits
/// until the runtime says it is ready (`R` and its pid: in the namespaces, the cgroups and
/// the root, this process's child, with Lambda's user, no capabilities and seccomp, as
/// one this process starts is) or why not (`E` and the reason).
fn fork_from_zygote(report: &mut Report, handover: OwnedFd) -> Result<Pid, IsolateError> {
    use std::os::fd::AsRawFd;
    let (ready_read, ready_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
    let namespaces = FORKED_NAMESPACES
        .iter()
        .map(|name| {
            File::open(format!("/proc/self/ns/{name}"))
                .map_err(io(format!("open the {name} namespace")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut fds: Vec<RawFd> = namespaces.iter().map(AsRawFd::as_raw_fd).collect();
    fds.extend([handover.as_raw_fd(), ready_write.as_raw_fd()]);
    report.send_fds(b'Z', &fds)?;
    drop((namespaces, handover, ready_write));
    let mut answer = Vec::new();
    File::from(ready_read)
        .take(64 * 1024)
        .read_to_end(&mut answer)
        .map_err(io("wait for the forked runtime"))?;
    match answer.split_first() {
        Some((b'R', pid)) if pid.len() == 4 => Ok(Pid::from_raw(i32::from_le_bytes([
            pid[0], pid[1], pid[2], pid[3],
        ]))),
        Some((b'E', reason)) => Err(IsolateError::Args(
            String::from_utf8_lossy(reason).into_owned(),
        )),
        _ => Err(IsolateError::Args(
            "the forked runtime ended before it was ready".into(),
        )),
    }
}

/// Gives `command` exactly `env` (`KEY=VALUE` each) as its environment.
fn replace_environment(command: &mut std::process::Command, env: &[OsString]) {
    command.env_clear();
    for variable in env {
        let bytes = variable.as_bytes();
        let split = bytes.iter().position(|b| *b == b'=').unwrap_or(bytes.len());
        command.env(
            OsStr::from_bytes(&bytes[..split]),
            OsStr::from_bytes(bytes.get(split + 1..).unwrap_or_default()),
        );
    }
}

/// Between fork and exec: puts `fd` on [`HANDOVER_FD`] (inherited across the exec) and
/// `chroot`s into `root`. Async-signal-safe: raw system calls on prepared values only.
fn onto_handover_fd_in(fd: RawFd, root: &std::ffi::CStr) -> std::io::Result<()> {
    let check = |result: libc::c_int| {
        if result < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    // SAFETY: fcntl, dup2, chroot and chdir on a descriptor and NUL-terminated paths that
    // outlive the calls; no memory is touched.
    unsafe {
        if fd == HANDOVER_FD {
            check(libc::fcntl(fd, libc::F_SETFD, 0))?;
        } else {
            check(libc::dup2(fd, HANDOVER_FD))?;
        }
        check(libc::chroot(root.as_ptr()))?;
        check(libc::chdir(c"/".as_ptr()))
    }
}

/// Seccomp programs to apply, or none (seccomp off: only `no_new_privs`).
type Filters = Option<Vec<seccompiler::BpfProgram>>;

/// The seccomp filters [`confine_self`] will apply (none when `seccomp` is off), compiled
/// ahead: a staged or primed environment does it while it waits for its function.
fn seccomp_filters(seccomp: bool) -> Result<Filters, IsolateError> {
    if seccomp {
        crate::seccomp::filters()
            .map(Some)
            .map_err(IsolateError::Args)
    } else {
        Ok(None)
    }
}

/// The filters in two parts (`seccomp::split_filters`): `early` allows the system calls
/// the init still makes itself after a hand-over, `late` refuses them.
fn split_seccomp_filters(seccomp: bool) -> Result<(Filters, Filters), IsolateError> {
    if !seccomp {
        return Ok((None, None));
    }
    let (early, late) = crate::seccomp::split_filters(crate::seccomp::HAND_OVER_CALLS)
        .map_err(IsolateError::Args)?;
    Ok((Some(early), Some(late)))
}

/// Applies the seccomp filters (with `no_new_privs`) to this process, or only
/// `no_new_privs` without any.
fn confine_self(filters: Option<&[seccompiler::BpfProgram]>) -> Result<(), IsolateError> {
    if let Some(filters) = filters {
        for filter in filters {
            seccompiler::apply_filter(filter).map_err(|e| IsolateError::Io {
                what: format!("apply the seccomp filter: {e}"),
                source: std::io::Error::from_raw_os_error(libc::EPERM),
            })?;
        }
    } else {
        nix::sys::prctl::set_no_new_privs().map_err(sys("no_new_privs"))?;
    }
    Ok(())
}

/// Reaps orphans until `runtime` exits, then reports its status on `status`.
fn reap(runtime: Pid, status: OwnedFd) -> Result<i32, IsolateError> {
    let mut status = File::from(status);
    loop {
        match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == runtime => {
                let _ = status.write_all(&[0, u8::try_from(code).unwrap_or(u8::MAX)]);
                return Ok(0);
            }
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == runtime => {
                let _ = status.write_all(&[1, signal as u8]);
                return Ok(0);
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(error) => return Err(sys("wait for the runtime")(error)),
        }
    }
}

fn bind_read_only(source: &Path, target: &Path) -> Result<(), IsolateError> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(sys(format!("bind {}", source.display())))?;
    // A remount must keep the flags the source mount has (in a user namespace the kernel
    // refuses to clear them: they are locked), and adds read-only, nosuid and nodev.
    let mut flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV;
    if let Ok(status) = nix::sys::statvfs::statvfs(target) {
        use nix::sys::statvfs::FsFlags;
        for (has, keep) in [
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        ] {
            if status.flags().contains(has) {
                flags |= keep;
            }
        }
        // Neither: the source updates access times strictly, and so must the copy.
        if !status
            .flags()
            .intersects(FsFlags::ST_NOATIME | FsFlags::ST_RELATIME)
        {
            flags |= MsFlags::MS_STRICTATIME;
        }
    }
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
        .map_err(sys(format!("make {} read-only", target.display())))
}

/// Makes `target` (a directory or an empty file, like `source`) and binds `source` there.
fn bind_path(source: &Path, target: &Path) -> Result<(), IsolateError> {
    let metadata = std::fs::metadata(source).map_err(io(format!("{}", source.display())))?;
    if metadata.is_dir() {
        std::fs::create_dir_all(target)
    } else {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(format!("{}", parent.display())))?;
        }
        File::create(target).map(drop)
    }
    .map_err(io(format!("create {}", target.display())))?;
    bind_read_only(source, target)
}

fn tmpfs(target: &Path, flags: MsFlags, options: &str) -> Result<(), IsolateError> {
    std::fs::create_dir_all(target).map_err(io(format!("create {}", target.display())))?;
    mount(Some("tmpfs"), target, Some("tmpfs"), flags, Some(options))
        .map_err(sys(format!("mount a tmpfs on {}", target.display())))
}

/// The environment's `/etc/hosts`: the host's, and Lambda's `sandbox.localdomain` (where
/// Telemetry API listeners are) on the environment's loopback.
fn hosts_file() -> String {
    let mut hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    if !hosts.is_empty() && !hosts.ends_with('\n') {
        hosts.push('\n');
    }
    hosts.push_str("127.0.0.1\tsandbox.localdomain sandbox\n");
    hosts
}

/// Starts the environment's external extensions as the runtime will be (same user,
/// environment, directory and seccomp filter: called just before the runtime is started),
/// writing to their own pipe when the spec has one (the server tells their lines from the
/// runtime's: the Telemetry API's `extension` type), else to the output; pid 1 reaps them.
/// One that cannot start says why on the output. Each leads a
/// process group of its own: that is how the server tells them from the runtime among pid
/// 1's children, to watch them (an extension that exits retires the environment).
fn start_extensions(spec: &InitSpec) {
    use std::os::unix::process::CommandExt;
    // SAFETY: received with the spec, owned by nothing else, and this is its only use: it
    // is closed here once the extensions have their copies.
    let output = spec
        .extension_fd
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    for program in &spec.extensions {
        let mut command = std::process::Command::new(program);
        command.current_dir(&spec.cwd).process_group(0);
        if let Some(env) = &spec.env {
            replace_environment(&mut command, env);
        }
        let started = (|| {
            if let Some(output) = &output {
                command
                    .stdout(output.try_clone()?)
                    .stderr(output.try_clone()?);
            }
            command.spawn()
        })();
        if let Err(error) = started {
            eprintln!(
                "Extension {} could not be started: {error}",
                program.display()
            );
        }
    }
}

/// The private `/tmp`: a tmpfs of the function's ephemeral storage, the sandbox user's.
fn mount_tmp(spec: &InitSpec) -> Result<(), IsolateError> {
    tmpfs(
        &spec.root.join("tmp"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        &format!(
            "size={}m,mode=0700,uid={},gid={}",
            spec.tmp_mb, spec.uid, spec.gid
        ),
    )
}

/// Where `path` (absolute, as the environment sees it) is under `root`, following the
/// symlinks the root has for merged-`/usr` layouts (`/bin` → `usr/bin`) inside `root`.
fn inside(root: &Path, path: &Path) -> PathBuf {
    let mut resolved = root.to_path_buf();
    for part in path.strip_prefix("/").unwrap_or(path).components() {
        let next = resolved.join(part);
        match std::fs::read_link(&next) {
            Ok(link) if resolved == root => {
                resolved = root.join(link.strip_prefix("/").unwrap_or(&link));
            }
            _ => resolved = next,
        }
    }
    resolved
}

/// `/bin/sh` is bash, as on Amazon Linux (`provided.al2023` bootstraps are often
/// bash-style): the host's bash is bound over the root's `/bin/sh` where both exist.
fn sh_is_bash(root: &Path) -> Result<(), IsolateError> {
    let Ok(bash) = std::fs::canonicalize("/bin/bash") else {
        return Ok(());
    };
    if std::fs::canonicalize("/bin/sh").is_ok_and(|sh| sh == bash) {
        return Ok(());
    }
    let target = inside(root, Path::new("/bin/sh"));
    if std::fs::symlink_metadata(&target).is_err() {
        return Ok(());
    }
    bind_read_only(&bash, &target)
}

/// What the environment's `/lib64` shows where it is not the host's: Amazon Linux keeps
/// its libraries in `/lib64`, second in Lambda's `LD_LIBRARY_PATH`; a Debian-style host
/// keeps them in a multiarch directory (`/usr/lib/x86_64-linux-gnu`) and only the dynamic
/// loader in `/lib64`. There every program an environment started had the loader search
/// all of that path's directories (and their `glibc-hwcaps` subdirectories) for each
/// library, in a root whose failed lookups are not cached from one environment to the
/// next: ~0.3 ms of CPU for a `lambda_runtime` bootstrap's start. So the environment's
/// `/lib64` is the multiarch directory, which holds the loader too.
fn lib64_source() -> Option<PathBuf> {
    if Path::new("/lib64/libc.so.6").exists() {
        return None;
    }
    let multiarch = Path::new("/usr/lib").join(format!("{}-linux-gnu", std::env::consts::ARCH));
    multiarch.join("libc.so.6").exists().then_some(multiarch)
}

/// The root filesystem under `spec.root`, without `/tmp`'s tmpfs (its directory is
/// there) and before the pivot.
fn build_tree(spec: &InitSpec) -> Result<(), IsolateError> {
    let root = spec.root.as_path();
    tmpfs(
        root,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        "size=1m,nr_inodes=4096,mode=0755",
    )?;
    for dir in SYSTEM_DIRS {
        let host = Path::new("/").join(dir);
        let target = root.join(dir);
        if let Some(libraries) = (*dir == "lib64").then(lib64_source).flatten() {
            bind_path(&libraries, &target)?;
            continue;
        }
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = std::fs::read_link(&host).map_err(io(format!("{}", host.display())))?;
                std::os::unix::fs::symlink(link, &target)
                    .map_err(io(format!("link {}", target.display())))?;
            }
            Ok(m) if m.is_dir() => bind_path(&host, &target)?,
            _ => {}
        }
    }
    let etc = root.join("etc");
    std::fs::create_dir(&etc).map_err(io("create /etc"))?;
    let python_entries = std::fs::read_dir("/etc")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .filter(|name| name.as_bytes().starts_with(b"python"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for name in ETC_ENTRIES.iter().map(OsString::from).chain(python_entries) {
        let host = Path::new("/etc").join(&name);
        // Symlinks are followed: the environment sees what they point to.
        if host.exists() {
            bind_path(&host, &etc.join(&name))?;
        }
    }
    let write = |name: &str, text: String| {
        std::fs::write(etc.join(name), text).map_err(io(format!("write /etc/{name}")))
    };
    write(
        "passwd",
        format!(
            "root:x:0:0:root:/root:/sbin/nologin\nsbx_user1051:x:{}:{}::/tmp:/sbin/nologin\n",
            spec.uid, spec.gid
        ),
    )?;
    write(
        "group",
        format!("root:x:0:\nsbx_user1051:x:{}:\n", spec.gid),
    )?;
    write("hostname", "localhost\n".into())?;
    write("hosts", hosts_file())?;
    for dir in ["var/task", "var/runtime", "opt", "proc"] {
        std::fs::create_dir_all(root.join(dir)).map_err(io(format!("create /{dir}")))?;
    }
    for bind in &spec.binds {
        let relative = bind.target.strip_prefix("/").unwrap_or(&bind.target);
        bind_path(&bind.source, &root.join(relative))?;
    }
    std::fs::create_dir_all(root.join("tmp")).map_err(io("create /tmp"))?;
    sh_is_bash(root)?;
    let dev = root.join("dev");
    tmpfs(
        &dev,
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        "size=64k,nr_inodes=64,mode=0755",
    )?;
    for device in DEVICES {
        let target = dev.join(device);
        File::create(&target).map_err(io(format!("create /dev/{device}")))?;
        mount(
            Some(&Path::new("/dev").join(device)),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(sys(format!("bind /dev/{device}")))?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(name))
            .map_err(io(format!("link /dev/{name}")))?;
    }
    mount(
        None::<&str>,
        &dev,
        None::<&str>,
        MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(sys("make /dev read-only"))?;
    // This process is pid 1 of the new pid namespace: the fresh /proc shows only it and
    // what it starts.
    mount(
        Some("proc"),
        &root.join("proc"),
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(sys("mount /proc"))?;
    Ok(())
}

/// Makes the tree at `root` read-only: a primed environment's runtime runs in it (as its
/// `chroot`) before the pivot, with nothing left to write there.
fn seal_tree(root: &Path) -> Result<(), IsolateError> {
    mount(
        None::<&str>,
        root,
        None::<&str>,
        MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV,
        None::<&str>,
    )
    .map_err(sys("make the root read-only"))
}

/// Pivots into `root`, detaches the host's tree and makes `/` read-only.
fn enter_root(root: &Path) -> Result<(), IsolateError> {
    // Stack the old root on the new one and detach it: nothing of the host's tree is left.
    nix::unistd::chdir(root).map_err(sys("enter the new root"))?;
    nix::unistd::pivot_root(".", ".").map_err(sys("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(sys("detach the host's root"))?;
    nix::unistd::chdir("/").map_err(sys("chdir /"))?;
    // Functions write only to /tmp.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV,
        None::<&str>,
    )
    .map_err(sys("make / read-only"))
}

/// Becomes `uid:gid` with no supplementary groups and no capabilities, and can never
/// regain any (the bounding set is emptied first). Rootless, the process already is
/// `uid:gid` in its user namespace; the runtime it executes then starts with no
/// capabilities (a non-zero uid keeps none across exec).
fn drop_privileges(uid: u32, gid: u32, rootless: bool) -> Result<(), IsolateError> {
    for capability in 0..64 {
        // SAFETY: PR_CAPBSET_DROP takes a capability number and touches no memory; numbers
        // past the kernel's last capability fail with EINVAL, which is fine.
        unsafe {
            libc::prctl(libc::PR_CAPBSET_DROP, capability, 0, 0, 0);
        }
    }
    if rootless {
        return Ok(());
    }
    nix::unistd::setgroups(&[]).map_err(sys("setgroups"))?;
    let gid = Gid::from_raw(gid);
    let uid = Uid::from_raw(uid);
    nix::unistd::setresgid(gid, gid, gid).map_err(sys("setresgid"))?;
    // From root to a non-zero uid: the permitted, effective and ambient sets are cleared.
    nix::unistd::setresuid(uid, uid, uid).map_err(sys("setresuid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_supervisor_binary_is_used_only_when_it_speaks_this_protocol() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let server = dir.path().join("gust");
        // None beside the server: the server runs its own supervisors.
        assert_eq!(init_program(server.clone()), server);
        let small = dir.path().join("gust-init");
        let write = |answer: String| {
            std::fs::write(&small, format!("#!/bin/sh\nprintf '%s' '{answer}'\n")).unwrap();
            std::fs::set_permissions(&small, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        // Another build's (a stale `gust-init` beside a rebuilt `gust`).
        write(PROTOCOL.wrapping_add(1).to_string());
        assert_eq!(init_program(server.clone()), server);
        write(PROTOCOL.to_string());
        assert_eq!(init_program(server.clone()), small);
    }

    #[test]
    fn init_arguments_round_trip() {
        let spec = InitSpec {
            root: "/data/sandbox/root".into(),
            uid: 993,
            gid: 990,
            tmp_mb: 10240,
            netns_fd: None,
            seccomp: true,
            rootless: true,
            binds: vec![
                Bind {
                    source: "/data/code/unpacked/ab cd".into(),
                    target: "/var/task".into(),
                },
                Bind {
                    source: "/root/.pyenv/versions/3.11.7".into(),
                    target: "/root/.pyenv/versions/3.11.7".into(),
                },
            ],
            cwd: "/var/task".into(),
            program: "/usr/bin/python3".into(),
            args: vec![
                "-u".into(),
                "--".into(),
                "/var/runtime/python/bootstrap.py".into(),
            ],
            env: Some(vec!["PATH=/usr/bin:/bin".into(), "EMPTY=".into()]),
            prime: true,
            stage: true,
            extensions: vec!["/opt/extensions/a b".into(), "/opt/extensions/c".into()],
            extension_output: true,
            forked: true,
            zygote: true,
            // Never on the command line: received with the spec.
            control_fd: None,
            extension_fd: None,
        };
        assert_eq!(InitSpec::parse(&spec.to_args()).unwrap(), spec);
        assert_eq!(
            InitSpec::parse(&decode(&encode(&spec.to_args())).unwrap()).unwrap(),
            spec
        );
    }

    #[test]
    fn a_value_is_one_argument_whatever_it_holds() {
        let args: Vec<OsString> = vec![
            "--env".into(),
            "K=a\0--user\x000:0\0--bind\0/\0/h".into(),
            "".into(),
        ];
        assert_eq!(decode(&encode(&args)).unwrap(), args);
        assert!(decode(&encode(&args)[..11]).is_err(), "truncated");
        assert!(decode(&[9, 0, 0, 0, b'x']).is_err(), "length past the end");
    }

    #[test]
    fn bad_arguments_are_refused() {
        for args in [
            vec!["--root"],
            vec!["--root", "/r"],
            vec!["--root", "/r", "--tmp-mb", "lots", "--", "/bin/true"],
            vec![
                "--root",
                "/r",
                "--bind",
                "rel",
                "/var/task",
                "--",
                "/bin/true",
            ],
            vec!["--root", "/r", "--user", "993", "--", "/bin/true"],
            vec!["--what", "--", "/bin/true"],
        ] {
            let args: Vec<OsString> = args.into_iter().map(OsString::from).collect();
            assert!(InitSpec::parse(&args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn system_paths_need_no_bind() {
        assert!(visible_by_default(Path::new("/usr/bin/python3.11")));
        assert!(visible_by_default(Path::new("/lib64/ld-linux-x86-64.so.2")));
        assert!(!visible_by_default(Path::new(
            "/root/.pyenv/versions/3.11.7"
        )));
        assert!(!visible_by_default(Path::new("/usrlocal/bin")));
        assert_eq!("none".parse::<NetworkMode>(), Ok(NetworkMode::None));
        assert!("vpc".parse::<NetworkMode>().is_err());
    }
}
