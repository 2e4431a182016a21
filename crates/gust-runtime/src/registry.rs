//! Which program starts a runtime: Gust's embedded bootstraps for Python and Node.js on the
//! host's interpreters, or the package's own `bootstrap` for `provided*`.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use gust_model::{Runtime, RuntimeFamily};

const PYTHON_BOOTSTRAP: &str = include_str!("../bootstrap/python/bootstrap.py");
const NODE_BOOTSTRAP: &str = include_str!("../bootstrap/node/bootstrap.js");

/// How to start one runtime process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Variables the runtime needs besides Lambda's (`AWS_EXECUTION_ENV`, `NODE_PATH`, …).
    pub env: Vec<(String, String)>,
    /// Directory holding the interpreter (put first on `PATH`, like Lambda's `/var/lang/bin`).
    pub bin_dir: Option<PathBuf>,
    /// What actually runs, for the `INIT_START` log line.
    pub description: String,
    /// The interpreter's installation directory (its `bin/..`), which an isolated
    /// environment must see.
    pub interpreter_home: Option<PathBuf>,
}

/// Where a runtime process sees the function's code and Gust's bootstraps: Lambda's
/// `/var/task` and `/var/runtime` in an isolated environment, host paths otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// `LAMBDA_TASK_ROOT`.
    pub task_root: PathBuf,
    /// `LAMBDA_RUNTIME_DIR`.
    pub runtime_dir: PathBuf,
    /// Where the layers are (`/opt`).
    pub opt_dir: PathBuf,
}

impl View {
    /// Lambda's paths.
    pub fn lambda() -> View {
        View {
            task_root: "/var/task".into(),
            runtime_dir: "/var/runtime".into(),
            opt_dir: "/opt".into(),
        }
    }
}

/// Why a runtime cannot start; the message is Lambda's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    /// `provided*` without an executable `bootstrap`.
    #[error("Couldn't find valid bootstrap(s): [{0}]")]
    NoBootstrap(String),
    /// The interpreter the runtime needs is not on this host.
    #[error("{0} is not installed on this host")]
    NoInterpreter(String),
}

impl LaunchError {
    /// The `errorType` Lambda reports.
    pub fn error_type(&self) -> &'static str {
        match self {
            LaunchError::NoBootstrap(_) => "Runtime.InvalidEntrypoint",
            LaunchError::NoInterpreter(_) => "Runtime.InvalidRuntime",
        }
    }
}

#[derive(Debug, Clone)]
struct Interpreter {
    path: PathBuf,
    version: String,
}

impl Interpreter {
    /// The installation directory: `…/bin/python3.11` → `…`.
    fn home(&self) -> Option<PathBuf> {
        self.path
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
    }
}

/// The runtimes of this host: interpreters found on `PATH` and the bootstraps written out.
#[derive(Debug)]
pub struct RuntimeRegistry {
    runtime_dir: PathBuf,
    path_var: String,
    node: Option<Interpreter>,
    /// Python interpreters by runtime id, resolved once (asking costs a process start).
    pythons: std::sync::Mutex<std::collections::HashMap<String, Option<Interpreter>>>,
}

fn find_executable(name: &str, path_var: &str) -> Option<PathBuf> {
    path_var
        .split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Asks an interpreter for its real executable and version: `PATH` may hold a wrapper
/// (pyenv and nvm shims are shell scripts that need the caller's environment), and the
/// runtime is started with an empty environment.
fn resolve_interpreter(program: &Path, args: &[&str]) -> Option<Interpreter> {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    // The real file, not a virtualenv's or an alternatives symlink: an isolated environment
    // sees the interpreter's installation, not the server's links to it.
    let path = std::fs::canonicalize(lines.next()?.trim()).ok()?;
    let version = lines.next()?.trim().to_owned();
    is_executable(&path).then_some(Interpreter { path, version })
}

fn python_interpreter(candidate: &Path) -> Option<Interpreter> {
    resolve_interpreter(
        candidate,
        &[
            "-c",
            "import sys, platform; print(sys.executable); print(platform.python_version())",
        ],
    )
}

fn node_interpreter(candidate: &Path) -> Option<Interpreter> {
    resolve_interpreter(
        candidate,
        &[
            "-e",
            "console.log(process.execPath); console.log(process.versions.node)",
        ],
    )
}

impl RuntimeRegistry {
    /// Writes the bootstraps under `runtime_dir` and finds the interpreters on `path_var`.
    pub fn install(runtime_dir: &Path, path_var: &str) -> std::io::Result<Self> {
        for (relative, text) in [
            ("python/bootstrap.py", PYTHON_BOOTSTRAP),
            ("node/bootstrap.js", NODE_BOOTSTRAP),
        ] {
            let path = runtime_dir.join(relative);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
                let temp = path.with_extension("tmp");
                std::fs::write(&temp, text)?;
                std::fs::rename(&temp, &path)?;
            }
        }
        let node = find_executable("node", path_var).and_then(|path| node_interpreter(&path));
        Ok(RuntimeRegistry {
            runtime_dir: runtime_dir.to_owned(),
            path_var: path_var.to_owned(),
            node,
            pythons: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// The runtime families this host can run (for validation of `Runtime`).
    pub fn catalog(&self) -> gust_model::RuntimeCatalog {
        let mut families = Vec::new();
        if find_executable("python3", &self.path_var).is_some() {
            families.push(RuntimeFamily::Python);
        }
        if self.node.is_some() {
            families.push(RuntimeFamily::Nodejs);
        }
        gust_model::RuntimeCatalog::new(families)
    }

    /// `LAMBDA_RUNTIME_DIR`.
    pub fn runtime_dir(&self) -> &Path {
        &self.runtime_dir
    }

    /// The Python interpreter for `python3.x`: `python3.x` itself when present, else `python3`.
    fn python_for(&self, id: &str) -> Option<Interpreter> {
        let mut cache = self
            .pythons
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .entry(id.to_owned())
            .or_insert_with(|| {
                find_executable(id, &self.path_var)
                    .and_then(|p| python_interpreter(&p))
                    .or_else(|| {
                        find_executable("python3", &self.path_var)
                            .and_then(|p| python_interpreter(&p))
                    })
            })
            .clone()
    }

    /// How to start `runtime` for code unpacked at `code_dir` on the host, seen at `view`'s
    /// paths by the runtime.
    pub fn launch(
        &self,
        runtime: &Runtime,
        code_dir: &Path,
        view: &View,
    ) -> Result<Launch, LaunchError> {
        let id = runtime.id();
        match runtime.family() {
            RuntimeFamily::Python => {
                let python = self
                    .python_for(id)
                    .ok_or_else(|| LaunchError::NoInterpreter("python3".into()))?;
                Ok(Launch {
                    // The layers' directory, for `sys.path` (`/opt/python`, ...).
                    args: vec![
                        "-u".into(),
                        view.runtime_dir.join("python/bootstrap.py").into(),
                        view.opt_dir.clone().into(),
                    ],
                    env: vec![("AWS_EXECUTION_ENV".into(), format!("AWS_Lambda_{id}"))],
                    bin_dir: python.path.parent().map(Path::to_path_buf),
                    interpreter_home: python.home(),
                    description: format!(
                        "Python {} ({}) for {id}",
                        python.version,
                        python.path.display()
                    ),
                    program: python.path,
                })
            }
            RuntimeFamily::Nodejs => {
                let node = self
                    .node
                    .clone()
                    .ok_or_else(|| LaunchError::NoInterpreter("node".into()))?;
                // Lambda's: the versioned layer folder, the plain one, the runtime, the code.
                let major = id
                    .strip_prefix("nodejs")
                    .and_then(|v| v.strip_suffix(".x"))
                    .unwrap_or_default();
                let opt = view.opt_dir.display();
                let node_path = format!(
                    "{opt}/nodejs/node{major}/node_modules:{opt}/nodejs/node_modules:{}/node_modules:{}:{}",
                    view.runtime_dir.display(),
                    view.runtime_dir.display(),
                    view.task_root.display()
                );
                Ok(Launch {
                    args: vec![view.runtime_dir.join("node/bootstrap.js").into()],
                    env: vec![
                        ("AWS_EXECUTION_ENV".into(), format!("AWS_Lambda_{id}")),
                        ("NODE_PATH".into(), node_path),
                    ],
                    bin_dir: node.path.parent().map(Path::to_path_buf),
                    interpreter_home: node.home(),
                    description: format!(
                        "Node.js {} ({}) for {id}",
                        node.version,
                        node.path.display()
                    ),
                    program: node.path,
                })
            }
            RuntimeFamily::Provided => {
                let bootstrap = code_dir.join("bootstrap");
                if !is_executable(&bootstrap) {
                    return Err(LaunchError::NoBootstrap(format!("{}", bootstrap.display())));
                }
                Ok(Launch {
                    program: view.task_root.join("bootstrap"),
                    args: Vec::new(),
                    env: Vec::new(),
                    bin_dir: None,
                    interpreter_home: None,
                    description: format!("custom runtime ({id}): the package's bootstrap"),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provided_needs_an_executable_bootstrap() {
        let dir = tempfile::tempdir().unwrap();
        let registry = RuntimeRegistry::install(&dir.path().join("rt"), "").unwrap();
        let code = dir.path().join("code");
        std::fs::create_dir(&code).unwrap();
        let provided = Runtime::parse("provided.al2023").unwrap();
        let err = registry
            .launch(&provided, &code, &View::lambda())
            .unwrap_err();
        assert_eq!(err.error_type(), "Runtime.InvalidEntrypoint");
        std::fs::write(code.join("bootstrap"), "#!/bin/sh\n").unwrap();
        assert!(
            registry.launch(&provided, &code, &View::lambda()).is_err(),
            "not executable yet"
        );
        std::fs::set_permissions(
            code.join("bootstrap"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert_eq!(
            registry
                .launch(&provided, &code, &View::lambda())
                .unwrap()
                .program,
            Path::new("/var/task/bootstrap")
        );
    }

    #[test]
    fn bootstraps_are_written_and_interpreters_found() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        // A stand-in that answers the registry's question the way a real python3 would.
        std::fs::write(bin.join("python3"), "#!/bin/sh\necho \"$0\"\necho 3.99.1\n").unwrap();
        std::fs::set_permissions(bin.join("python3"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let registry =
            RuntimeRegistry::install(&dir.path().join("rt"), bin.to_str().unwrap()).unwrap();
        assert!(dir.path().join("rt/python/bootstrap.py").exists());
        assert!(dir.path().join("rt/node/bootstrap.js").exists());
        let launch = registry
            .launch(
                &Runtime::parse("python3.12").unwrap(),
                dir.path(),
                &View::lambda(),
            )
            .unwrap();
        assert_eq!(launch.program, bin.join("python3").canonicalize().unwrap());
        assert!(launch
            .args
            .contains(&"/var/runtime/python/bootstrap.py".into()));
        assert!(
            launch.description.starts_with("Python 3.99.1 ("),
            "{}",
            launch.description
        );
        assert!(launch
            .env
            .contains(&("AWS_EXECUTION_ENV".into(), "AWS_Lambda_python3.12".into())));
        let node = registry.launch(
            &Runtime::parse("nodejs20.x").unwrap(),
            dir.path(),
            &View::lambda(),
        );
        assert_eq!(node.unwrap_err().error_type(), "Runtime.InvalidRuntime");
        let catalog = registry.catalog();
        assert!(catalog.check("python3.12").is_ok() && catalog.check("nodejs20.x").is_err());
        let empty = RuntimeRegistry::install(&dir.path().join("rt2"), "")
            .unwrap()
            .catalog();
        assert_eq!(
            empty.supported_ids(),
            ["provided", "provided.al2", "provided.al2023"]
        );
    }
}
