//! Starting and stopping the processes of execution environments.
//!
//! The engine asks a [`Sandbox`] to start a runtime process from a [`SpawnSpec`] and gets a
//! [`SandboxProcess`] back: it can wait for it, measure its memory and end it together
//! with every process it started. This crate is where isolation (namespaces, cgroups,
//! seccomp) will live; [`ProcessSandbox`] is the plain-process backend: a new process group
//! per environment, no isolation beyond that.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
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
    /// Working directory (the code root).
    pub cwd: PathBuf,
    /// Where stdout and stderr both go (one pipe, so their lines stay in order).
    pub output: OwnedFd,
}

/// Starts environment processes.
pub trait Sandbox: Send + Sync + std::fmt::Debug {
    /// Starts the process described by `spec`.
    fn spawn(&self, spec: SpawnSpec) -> Result<SandboxProcess, SandboxError>;
    /// A one-line description for the startup report.
    fn describe(&self) -> String;
}

/// A started environment process (the leader of its own process group).
#[derive(Debug)]
pub struct SandboxProcess {
    child: tokio::process::Child,
    pid: u32,
}

impl SandboxProcess {
    /// The leader's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits for the leader to exit.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
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

    /// SIGKILLs the group and reaps the leader.
    pub async fn kill(&mut self) {
        self.signal_group(Signal::SIGKILL);
        let _ = self.child.wait().await;
    }

    /// SIGTERM, then SIGKILL after `grace` if the leader is still running.
    pub async fn terminate(&mut self, grace: Duration) {
        self.signal_group(Signal::SIGTERM);
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            tracing::debug!(pid = self.pid, "runtime ignored SIGTERM; killing");
        }
        self.kill().await;
    }

    /// Peak resident memory of the leader and its descendants, in KiB (the sum of each
    /// live process's `VmHWM`).
    pub fn peak_memory_kib(&self) -> u64 {
        peak_memory_kib(Path::new("/proc"), self.pid)
    }
}

/// Sums `VmHWM` over `pid` and its descendants, found through each process's main-thread
/// `children` list (children started from other threads are missed; cgroups will give the
/// exact peak). Kept to a few small reads: it runs after every invocation.
pub fn peak_memory_kib(proc_root: &Path, pid: u32) -> u64 {
    let mut total = 0;
    let mut stack = vec![pid];
    let mut seen = 0usize;
    while let Some(pid) = stack.pop() {
        seen += 1;
        if seen > 4096 {
            break;
        }
        let base = proc_root.join(pid.to_string());
        if let Ok(status) = std::fs::read_to_string(base.join("status")) {
            total += status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0);
        }
        let children = base.join("task").join(pid.to_string()).join("children");
        if let Ok(children) = std::fs::read_to_string(children) {
            stack.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    total
}

/// The plain-process backend: each environment is a process group of the server's user.
#[derive(Debug, Default)]
pub struct ProcessSandbox;

impl Sandbox for ProcessSandbox {
    fn spawn(&self, spec: SpawnSpec) -> Result<SandboxProcess, SandboxError> {
        let stderr = spec.output.try_clone().map_err(SandboxError::Output)?;
        let mut command = tokio::process::Command::new(&spec.program);
        command
            .args(&spec.args)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&spec.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::from(spec.output))
            .stderr(Stdio::from(stderr))
            // Its own group, so ending the environment ends everything it started.
            .process_group(0)
            .kill_on_drop(true);
        let child = command.spawn().map_err(|source| SandboxError::Spawn {
            program: spec.program.clone(),
            source,
        })?;
        let pid = child.id().unwrap_or(0);
        Ok(SandboxProcess { child, pid })
    }

    fn describe(&self) -> String {
        "plain processes (no isolation: each environment is a process group of the server's user)"
            .to_owned()
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
        }
    }

    #[tokio::test]
    async fn output_env_and_exit_status() {
        let (mut reader, writer) = std::io::pipe().unwrap();
        let mut process = ProcessSandbox
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
        let mut process = ProcessSandbox
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
                ProcessSandbox.spawn(s),
                Err(SandboxError::Spawn { .. })
            ));
        });
    }
}
