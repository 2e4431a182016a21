//! Lambda's resource knobs as cgroups: memory (limit, peak, OOM kills), CPU proportional to
//! memory, a pids limit, and the freezer for idle environments. Works on cgroup v2 (one
//! unified hierarchy) and v1 (one hierarchy per controller), detected at start.
//!
//! Layout: `<root>[/<controller>]/gust-<instance>/env-<id>`. The `gust-<instance>` parent
//! belongs to one server (one data directory); leftovers of a crashed run are killed and
//! removed at the next start.

use std::fs;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Which cgroup hierarchy the host has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Unified hierarchy.
    V2,
    /// One hierarchy per controller.
    V1,
}

/// Limits for one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Memory for all its processes together (no swap).
    pub memory_bytes: u64,
    /// CPU time per period, or `None` for no quota.
    pub cpu_quota: Option<CpuQuota>,
    /// Most processes and threads at once.
    pub pids_max: u64,
}

/// A CFS bandwidth quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuQuota {
    /// Microseconds of CPU per period.
    pub quota_us: u64,
    /// Period length in microseconds.
    pub period_us: u64,
}

impl CpuQuota {
    /// Lambda's rule: 1,769 MB is one vCPU, linearly (128 MB ≈ 0.07 vCPU, 10,240 MB ≈ 5.8).
    pub fn for_memory(memory_mb: u32) -> Self {
        const PERIOD_US: u64 = 100_000;
        let quota = PERIOD_US * u64::from(memory_mb) / 1769;
        CpuQuota {
            // The kernel's minimum quota is 1 ms.
            quota_us: quota.max(1000),
            period_us: PERIOD_US,
        }
    }
}

/// Why a cgroup operation failed.
#[derive(Debug, thiserror::Error)]
#[error("cgroup {path}: {source}")]
pub struct CgroupError {
    /// The file or directory.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| CgroupError {
            path: path.to_owned(),
            source,
        })
}

fn mkdir(path: &Path) -> Result<(), CgroupError> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(CgroupError {
            path: path.to_owned(),
            source,
        }),
    }
}

/// How long clearing a crashed run's environments waits for their processes to exit.
const CLEAR_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// The controllers Gust uses.
const V1_CONTROLLERS: [&str; 4] = ["memory", "cpu", "pids", "freezer"];

/// The cgroups of one server.
#[derive(Debug, Clone)]
pub struct Cgroups {
    version: CgroupVersion,
    /// One parent per hierarchy: v2 has one, v1 one per controller.
    parents: Vec<(String, PathBuf)>,
}

/// One environment's cgroup (a directory per hierarchy).
#[derive(Debug)]
pub struct EnvCgroup {
    version: CgroupVersion,
    dirs: Vec<(String, PathBuf)>,
    /// The peak-memory file, opened once (tried again while it cannot be): it is read
    /// after every invocation (`Max Memory Used`), and a read at offset 0 of an open cgroup
    /// file is a fresh value.
    peak: std::sync::OnceLock<fs::File>,
    /// The limits last written in full, if the last write succeeded: a spare handed an
    /// environment of the size it was made with writes nothing (each cgroup file write is
    /// ~10–20 µs on a cold start's path), and one of another size only its memory.
    applied: std::sync::Mutex<Option<Limits>>,
}

impl Cgroups {
    /// Finds a writable hierarchy under `root` (normally `/sys/fs/cgroup`) with the
    /// controllers Gust needs, creates `gust-<instance>` in it and clears what a previous
    /// run of the same instance left behind. `Err` says what is missing.
    pub fn open(root: &Path, instance: &str) -> Result<Self, String> {
        let name = format!("gust-{instance}");
        let cgroups = if root.join("cgroup.controllers").exists() {
            let available = fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
            for needed in ["memory", "cpu", "pids"] {
                if !available.split_whitespace().any(|c| c == needed) {
                    return Err(format!(
                        "cgroup v2 controller {needed} is not available at {}",
                        root.display()
                    ));
                }
            }
            // Children of the root get the controllers only if the root delegates them.
            write_file(&root.join("cgroup.subtree_control"), "+memory +cpu +pids")
                .map_err(|e| format!("cannot delegate cgroup v2 controllers: {e}"))?;
            let parent = root.join(&name);
            mkdir(&parent).map_err(|e| e.to_string())?;
            write_file(&parent.join("cgroup.subtree_control"), "+memory +cpu +pids")
                .map_err(|e| e.to_string())?;
            Cgroups {
                version: CgroupVersion::V2,
                parents: vec![("unified".into(), parent)],
            }
        } else {
            let mut parents = Vec::new();
            for controller in V1_CONTROLLERS {
                let hierarchy = root.join(controller);
                if !hierarchy.join("tasks").exists() {
                    return Err(format!(
                        "cgroup v1 controller {controller} is not mounted at {}",
                        hierarchy.display()
                    ));
                }
                let parent = hierarchy.join(&name);
                mkdir(&parent).map_err(|e| e.to_string())?;
                parents.push((controller.to_owned(), parent));
            }
            Cgroups {
                version: CgroupVersion::V1,
                parents,
            }
        };
        // A crashed run may have left hundreds of environments (frozen ones among them):
        // ending them must not delay the start, and they share nothing with the new run's
        // cgroups (fresh random ids), so they are cleared on a thread of their own.
        let leftovers = cgroups.environments();
        if !leftovers.is_empty() {
            let cleaner = cgroups.clone();
            let spawned = std::thread::Builder::new()
                .name("gust-cgroup-cleanup".into())
                .spawn(move || {
                    let started = std::time::Instant::now();
                    let count = leftovers.len();
                    let left = cleaner.clear(leftovers);
                    tracing::info!(
                        count,
                        left,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "ended the environments a previous run left behind"
                    );
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "cannot start the cleanup thread; clearing leftovers now");
                cgroups.clear(cgroups.environments());
            }
        }
        Ok(cgroups)
    }

    /// The hierarchy in use.
    pub fn version(&self) -> &CgroupVersion {
        &self.version
    }

    /// The environment cgroups under this server's parents now, one entry per environment
    /// with its directory in every hierarchy.
    fn environments(&self) -> Vec<EnvCgroup> {
        let mut names = std::collections::BTreeSet::new();
        for (_, parent) in &self.parents {
            let Ok(entries) = fs::read_dir(parent) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("env-") && entry.path().is_dir() {
                    names.insert(name);
                }
            }
        }
        names
            .into_iter()
            .map(|name| EnvCgroup {
                peak: std::sync::OnceLock::new(),
                applied: std::sync::Mutex::new(None),
                version: self.version.clone(),
                dirs: self
                    .parents
                    .iter()
                    .map(|(controller, parent)| (controller.clone(), parent.join(&name)))
                    .filter(|(_, dir)| dir.is_dir())
                    .collect(),
            })
            .collect()
    }

    /// Ends every process of `environments` and removes their cgroups; returns how many
    /// could not be removed within [`CLEAR_DEADLINE`].
    ///
    /// Done in bulk and in the order the kernel needs: signal everything first (a frozen
    /// task keeps a SIGKILL pending), then thaw (on v1 the freezer is its own hierarchy,
    /// and a task dies only once thawed), then remove each cgroup as soon as it is empty.
    /// One environment at a time, each waiting for its own processes, took seconds apiece.
    fn clear(&self, environments: Vec<EnvCgroup>) -> usize {
        for env in &environments {
            env.signal_all();
        }
        for env in &environments {
            env.thaw();
        }
        let deadline = std::time::Instant::now() + CLEAR_DEADLINE;
        let mut pending = environments;
        loop {
            pending.retain(|env| !env.try_remove());
            if pending.is_empty() || std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
            // Anything forked between the signal and the thaw is signalled too.
            for env in &pending {
                env.signal_all();
            }
        }
        for env in &pending {
            tracing::warn!(dirs = ?env.dirs, "cannot remove an environment's cgroup: its processes do not exit");
        }
        pending.len()
    }

    /// Kills and removes every environment cgroup under this server's parents.
    pub fn clear_leftovers(&self) {
        self.clear(self.environments());
    }

    /// Clears every environment and removes this server's parent cgroups (server shutdown).
    pub fn close(&self) {
        self.clear_leftovers();
        for (_, parent) in &self.parents {
            let _ = fs::remove_dir(parent);
        }
    }

    /// Creates the cgroup of environment `id` with `limits`.
    pub fn create(&self, id: &str, limits: &Limits) -> Result<EnvCgroup, CgroupError> {
        let mut env = EnvCgroup {
            peak: std::sync::OnceLock::new(),
            applied: std::sync::Mutex::new(None),
            version: self.version.clone(),
            dirs: Vec::new(),
        };
        for (controller, parent) in &self.parents {
            let dir = parent.join(format!("env-{id}"));
            mkdir(&dir)?;
            env.dirs.push((controller.clone(), dir));
        }
        if let Err(error) = env.apply(limits) {
            env.remove();
            return Err(error);
        }
        Ok(env)
    }
}

impl EnvCgroup {
    fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(c, _)| c == controller || c == "unified")
            .map(|(_, d)| d.as_path())
    }

    /// Sets `limits`, writing only what differs from the limits last applied.
    pub(crate) fn apply(&self, limits: &Limits) -> Result<(), CgroupError> {
        let mut applied = self
            .applied
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Unknown until this write succeeds in full.
        let before = applied.take();
        let memory = limits.memory_bytes.to_string();
        let first = before.is_none();
        let changed = |field: fn(&Limits) -> u64| before.is_none_or(|b| field(&b) != field(limits));
        let memory_changed = changed(|l| l.memory_bytes);
        let pids_changed = changed(|l| l.pids_max);
        let cpu_changed = before.is_none_or(|b| b.cpu_quota != limits.cpu_quota);
        match self.version {
            CgroupVersion::V2 => {
                let Some(dir) = self.dir("unified") else {
                    return Ok(());
                };
                if memory_changed {
                    write_file(&dir.join("memory.max"), &memory)?;
                }
                if first {
                    // Not every kernel has swap accounting; without swap there is nothing
                    // to limit.
                    let _ = write_file(&dir.join("memory.swap.max"), "0");
                }
                if pids_changed {
                    write_file(&dir.join("pids.max"), &limits.pids_max.to_string())?;
                }
                if cpu_changed {
                    self.write_cpu_quota(limits.cpu_quota)?;
                }
            }
            CgroupVersion::V1 => {
                if let Some(dir) = self.dir("memory").filter(|_| memory_changed) {
                    let limit = dir.join("memory.limit_in_bytes");
                    let memsw = dir.join("memory.memsw.limit_in_bytes");
                    if !memsw.exists() {
                        write_file(&limit, &memory)?;
                    } else if write_file(&limit, &memory).is_ok() {
                        write_file(&memsw, &memory)?;
                    } else {
                        // The memory limit may never exceed memory+swap: raising both
                        // (a spare taking a function's size) goes memsw first.
                        write_file(&memsw, &memory)?;
                        write_file(&limit, &memory)?;
                    }
                    if first {
                        // Kill on OOM rather than pausing the cgroup.
                        let _ = write_file(&dir.join("memory.oom_control"), "0");
                    }
                }
                if let Some(dir) = self.dir("pids").filter(|_| pids_changed) {
                    write_file(&dir.join("pids.max"), &limits.pids_max.to_string())?;
                }
                if cpu_changed {
                    self.write_cpu_quota(limits.cpu_quota)?;
                }
            }
        }
        *applied = Some(*limits);
        Ok(())
    }

    /// Sets (or lifts, with `None`) the CPU quota.
    pub fn set_cpu_quota(&self, quota: Option<CpuQuota>) -> Result<(), CgroupError> {
        let mut applied = self
            .applied
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let written = self.write_cpu_quota(quota);
        match (&written, applied.as_mut()) {
            (Ok(()), Some(limits)) => limits.cpu_quota = quota,
            _ => *applied = None,
        }
        written
    }

    fn write_cpu_quota(&self, quota: Option<CpuQuota>) -> Result<(), CgroupError> {
        match self.version {
            CgroupVersion::V2 => {
                let Some(dir) = self.dir("unified") else {
                    return Ok(());
                };
                let value = match quota {
                    Some(q) => format!("{} {}", q.quota_us, q.period_us),
                    None => "max 100000".to_owned(),
                };
                write_file(&dir.join("cpu.max"), &value)
            }
            CgroupVersion::V1 => {
                let Some(dir) = self.dir("cpu") else {
                    return Ok(());
                };
                match quota {
                    Some(q) => {
                        write_file(&dir.join("cpu.cfs_period_us"), &q.period_us.to_string())?;
                        write_file(&dir.join("cpu.cfs_quota_us"), &q.quota_us.to_string())
                    }
                    None => write_file(&dir.join("cpu.cfs_quota_us"), "-1"),
                }
            }
        }
    }

    /// The `cgroup.procs` files: a supervisor writes `0` to each (it joins first thing, so
    /// the server can start it without forking itself).
    pub fn procs_paths(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .map(|(_, dir)| dir.join("cgroup.procs"))
            .collect()
    }

    /// Opened `cgroup.procs` files: writing `0` to each from the child moves it in before
    /// it runs any of the function's code.
    pub fn procs_files(&self) -> Result<Vec<OwnedFd>, CgroupError> {
        self.dirs
            .iter()
            .map(|(_, dir)| {
                let path = dir.join("cgroup.procs");
                fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map(OwnedFd::from)
                    .map_err(|source| CgroupError { path, source })
            })
            .collect()
    }

    /// Stops every process (idle environments use no CPU and their threads do not run).
    pub fn freeze(&self) -> Result<(), CgroupError> {
        self.set_frozen(true)
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let (controller, file, value) = match (&self.version, frozen) {
            (CgroupVersion::V2, true) => ("unified", "cgroup.freeze", "1"),
            (CgroupVersion::V2, false) => ("unified", "cgroup.freeze", "0"),
            (CgroupVersion::V1, true) => ("freezer", "freezer.state", "FROZEN"),
            (CgroupVersion::V1, false) => ("freezer", "freezer.state", "THAWED"),
        };
        self.dir(controller)
            .map_or(Ok(()), |d| write_file(&d.join(file), value))
    }

    /// Lets them run again.
    pub fn thaw(&self) {
        if let Err(error) = self.set_frozen(false) {
            tracing::warn!(%error, "cannot thaw environment");
        }
    }

    /// Peak memory of the environment's processes together, in bytes.
    pub fn peak_memory_bytes(&self) -> Option<u64> {
        use std::os::unix::fs::FileExt;
        let file = match self.peak.get() {
            Some(file) => file,
            None => {
                let path = match self.version {
                    CgroupVersion::V2 => self.dir("unified")?.join("memory.peak"),
                    CgroupVersion::V1 => self.dir("memory")?.join("memory.max_usage_in_bytes"),
                };
                let opened = fs::File::open(path).ok()?;
                self.peak.get_or_init(|| opened)
            }
        };
        let mut buffer = [0u8; 32];
        let n = file.read_at(&mut buffer, 0).ok()?;
        std::str::from_utf8(&buffer[..n]).ok()?.trim().parse().ok()
    }

    /// How many processes the kernel killed for exceeding the memory limit.
    pub fn oom_kills(&self) -> u64 {
        let (file, key) = match self.version {
            CgroupVersion::V2 => ("memory.events", "oom_kill"),
            CgroupVersion::V1 => ("memory.oom_control", "oom_kill"),
        };
        let Some(dir) = self.dir("memory") else {
            return 0;
        };
        fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|text| {
                // `oom_kill N`, not `oom_kill_disable N`.
                text.lines().find_map(|line| {
                    let mut fields = line.split_whitespace();
                    (fields.next() == Some(key))
                        .then(|| fields.next()?.parse::<u64>().ok())
                        .flatten()
                })
            })
            .unwrap_or(0)
    }

    /// The pids of every process in the environment.
    pub fn pids(&self) -> Vec<i32> {
        let Some((_, dir)) = self.dirs.first() else {
            return Vec::new();
        };
        fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// SIGKILLs every process in the environment once, without waiting (frozen ones die
    /// once thawed).
    fn signal_all(&self) {
        if self.version == CgroupVersion::V2 {
            if let Some(dir) = self.dir("unified") {
                if write_file(&dir.join("cgroup.kill"), "1").is_ok() {
                    return;
                }
            }
        }
        for pid in self.pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }

    /// Removes every directory that can be removed now; `true` when none is left.
    fn try_remove(&self) -> bool {
        self.dirs.iter().all(|(_, dir)| match fs::remove_dir(dir) {
            Ok(()) => true,
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        })
    }

    /// SIGKILLs every process in the environment (frozen ones die once thawed).
    pub fn kill_all(&self) {
        if self.version == CgroupVersion::V2 {
            if let Some(dir) = self.dir("unified") {
                if write_file(&dir.join("cgroup.kill"), "1").is_ok() {
                    return;
                }
            }
        }
        for _ in 0..10 {
            let pids = self.pids();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Removes the directories (once their processes are gone).
    pub fn remove(&self) {
        for (_, dir) in &self.dirs {
            for _ in 0..50 {
                match fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    // Busy: processes are still exiting.
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_follows_memory() {
        assert_eq!(CpuQuota::for_memory(1769).quota_us, 100_000);
        assert_eq!(CpuQuota::for_memory(128).quota_us, 7_235);
        assert_eq!(CpuQuota::for_memory(10_240).quota_us, 578_858);
    }

    #[test]
    fn v1_layout_limits_and_cleanup_on_a_fake_hierarchy() {
        let root = tempfile::tempdir().unwrap();
        for controller in V1_CONTROLLERS {
            fs::create_dir_all(root.path().join(controller)).unwrap();
            fs::write(root.path().join(controller).join("tasks"), "").unwrap();
        }
        let cgroups = Cgroups::open(root.path(), "test").unwrap();
        assert_eq!(cgroups.version(), &CgroupVersion::V1);
        // The fake has no kernel behind it: create the files the kernel would.
        for controller in V1_CONTROLLERS {
            let dir = root.path().join(controller).join("gust-test/env-1");
            fs::create_dir_all(&dir).unwrap();
            for file in [
                "memory.limit_in_bytes",
                "memory.oom_control",
                "pids.max",
                "cpu.cfs_period_us",
                "cpu.cfs_quota_us",
                "cgroup.procs",
                "freezer.state",
            ] {
                fs::write(dir.join(file), "").unwrap();
            }
        }
        let limits = Limits {
            memory_bytes: 128 << 20,
            cpu_quota: Some(CpuQuota::for_memory(128)),
            pids_max: 1024,
        };
        let env = cgroups.create("1", &limits).unwrap();
        let read = |c: &str, f: &str| {
            fs::read_to_string(root.path().join(c).join("gust-test/env-1").join(f)).unwrap()
        };
        assert_eq!(read("memory", "memory.limit_in_bytes"), "134217728");
        assert_eq!(read("pids", "pids.max"), "1024");
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "7235");
        env.freeze().unwrap();
        assert_eq!(read("freezer", "freezer.state"), "FROZEN");
        env.thaw();
        assert_eq!(read("freezer", "freezer.state"), "THAWED");
        assert_eq!(env.procs_files().unwrap().len(), 4);
        fs::write(
            root.path()
                .join("memory/gust-test/env-1/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        assert_eq!(env.oom_kills(), 2);
        // The peak is read again at each call from the file opened the first time.
        let peak = root
            .path()
            .join("memory/gust-test/env-1/memory.max_usage_in_bytes");
        fs::write(&peak, "1000\n").unwrap();
        assert_eq!(env.peak_memory_bytes(), Some(1000));
        fs::write(&peak, "2000\n").unwrap();
        assert_eq!(env.peak_memory_bytes(), Some(2000));

        // Applying limits again writes only what changed since the last write: the files
        // are blanked so that a write shows.
        let blank = |c: &str, f: &str| {
            fs::write(root.path().join(c).join("gust-test/env-1").join(f), "").unwrap()
        };
        for (c, f) in [
            ("memory", "memory.limit_in_bytes"),
            ("pids", "pids.max"),
            ("cpu", "cpu.cfs_quota_us"),
        ] {
            blank(c, f);
        }
        env.apply(&limits).unwrap();
        assert_eq!(read("memory", "memory.limit_in_bytes"), "");
        assert_eq!(read("pids", "pids.max"), "");
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "");
        let bigger = Limits {
            memory_bytes: 256 << 20,
            ..limits
        };
        env.apply(&bigger).unwrap();
        assert_eq!(read("memory", "memory.limit_in_bytes"), "268435456");
        assert_eq!(read("pids", "pids.max"), "");
        // A quota set on its own is what `apply` compares with next.
        env.set_cpu_quota(None).unwrap();
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "-1");
        blank("cpu", "cpu.cfs_quota_us");
        env.apply(&bigger).unwrap();
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "7235");
        // A write that failed leaves nothing assumed: the next one writes everything.
        let quota = root.path().join("cpu/gust-test/env-1/cpu.cfs_quota_us");
        fs::remove_file(&quota).unwrap();
        fs::create_dir(&quota).unwrap();
        assert!(env.set_cpu_quota(None).is_err());
        fs::remove_dir(&quota).unwrap();
        blank("cpu", "cpu.cfs_quota_us");
        blank("pids", "pids.max");
        env.apply(&bigger).unwrap();
        assert_eq!(read("pids", "pids.max"), "1024");
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "7235");
    }

    #[test]
    fn missing_controllers_are_reported() {
        let root = tempfile::tempdir().unwrap();
        let err = Cgroups::open(root.path(), "x").unwrap_err();
        assert!(err.contains("not mounted"), "{err}");
    }
}
