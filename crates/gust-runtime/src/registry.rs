//! Which program starts a runtime: Gust's embedded bootstraps for Python and Node.js on an
//! interpreter of the runtime's exact language version (found by [`crate::discover`]), with
//! the AWS SDK Lambda's managed runtimes carry (installed by [`crate::install`]), or the
//! package's own `bootstrap` for `provided*`.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;
use std::sync::Arc;

use gust_model::{Runtime, RuntimeFamily};

use crate::discover::{self, DiscoveryConfig, DiscoveryError, Interpreter, Source};
use crate::install;

const PYTHON_BOOTSTRAP: &str = include_str!("../bootstrap/python/bootstrap.py");
const NODE_BOOTSTRAP: &str = include_str!("../bootstrap/node/bootstrap.js");
/// SnapStart's runtime hooks for Python (the `snapshot-restore-py` API), importable by
/// functions from the bootstrap's directory.
const PYTHON_SNAPSHOT_RESTORE: &str = include_str!("../bootstrap/python/snapshot_restore_py.py");
/// The zygote Python runtimes' environments are forked from (`gust_zygote.serve`).
const PYTHON_ZYGOTE: &str = include_str!("../bootstrap/python/gust_zygote.py");

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
    /// More host directories an isolated environment sees, as (host path, path inside),
    /// read-only, mounted after `/var/runtime` (the SDKs under it, a Gust-installed
    /// Node.js at `/var/lang`). Empty for a runtime that runs on the host's paths.
    pub extra_binds: Vec<(PathBuf, PathBuf)>,
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
    /// No interpreter of the runtime's language version is on this host.
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

/// Where the registry finds interpreters and SDKs, and writes the bootstraps.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// `<data>/runtime`: the bootstraps (`LAMBDA_RUNTIME_DIR`, `/var/runtime` inside).
    pub runtime_dir: PathBuf,
    /// Where interpreters are searched for, and the runtimes directory (Gust-installed
    /// Node.js, the SDKs, the probe cache).
    pub discovery: DiscoveryConfig,
}

impl RegistryConfig {
    /// The default runtimes directory beside a runtime directory: `<data>/runtimes`.
    pub fn default_runtimes_dir(runtime_dir: &Path) -> PathBuf {
        runtime_dir.with_file_name("runtimes")
    }
}

/// Why the registry cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Writing the bootstraps failed.
    #[error("cannot write the runtime bootstraps: {0}")]
    Io(#[from] std::io::Error),
    /// An explicit `--runtime` is wrong.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
}

/// An AWS SDK the managed runtimes carry, and whether it is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkStatus {
    /// What it is (`boto3 1.44.8`, `@aws-sdk/* 3.940.0`).
    pub name: String,
    /// Where it is (or would be) on the host.
    pub path: PathBuf,
    /// Whether it is there.
    pub installed: bool,
}

/// What `gust runtimes` shows for one runtime id.
#[derive(Debug, Clone)]
pub struct RuntimeStatus {
    /// The id.
    pub runtime: Runtime,
    /// The interpreter it runs on (`None`: not runnable on this host).
    pub interpreter: Option<Interpreter>,
    /// The SDK its functions find without packaging it.
    pub sdk: Option<SdkStatus>,
}

/// Where the SDK is mounted in an isolated environment (mount points made under
/// `<data>/runtime`, which is `/var/runtime` there).
const PYTHON_SDK_MOUNT: &str = "sdk/python";
const NODE_SDK_MOUNT: &str = "node_modules";
/// Where a Gust-installed Node.js is mounted in an isolated environment (Lambda's).
const LANG_DIR: &str = "/var/lang";

/// The runtimes of this host: an interpreter of the exact language version for each runtime
/// id that has one, the SDKs, and the bootstraps written out. Cheap to clone (one per
/// account's engine shares the same discovery).
#[derive(Debug, Clone)]
pub struct RuntimeRegistry {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    runtime_dir: PathBuf,
    runtimes_dir: PathBuf,
    found: BTreeMap<String, Interpreter>,
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn write_bootstraps(runtime_dir: &Path) -> std::io::Result<()> {
    for (relative, text) in [
        ("python/bootstrap.py", PYTHON_BOOTSTRAP),
        ("python/snapshot_restore_py.py", PYTHON_SNAPSHOT_RESTORE),
        ("python/gust_zygote.py", PYTHON_ZYGOTE),
        ("node/bootstrap.js", NODE_BOOTSTRAP),
    ] {
        let path = runtime_dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
            // Unique per process: servers and their account planes may write at once.
            let temp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&temp, text)?;
            std::fs::rename(&temp, &path)?;
        }
    }
    // Mount points for the SDKs inside the read-only `/var/runtime`.
    for dir in [PYTHON_SDK_MOUNT, NODE_SDK_MOUNT] {
        std::fs::create_dir_all(runtime_dir.join(dir))?;
    }
    Ok(())
}

impl RuntimeRegistry {
    /// Writes the bootstraps under `runtime_dir` and finds the interpreters on `path_var`
    /// and in the usual places, with the runtimes directory beside `runtime_dir`.
    pub fn install(runtime_dir: &Path, path_var: &str) -> std::io::Result<Self> {
        let mut discovery = DiscoveryConfig::from_env(
            Vec::new(),
            RegistryConfig::default_runtimes_dir(runtime_dir),
        );
        discovery.path_var = path_var.to_owned();
        Self::open(RegistryConfig {
            runtime_dir: runtime_dir.to_owned(),
            discovery,
        })
        .map_err(std::io::Error::other)
    }

    /// Writes the bootstraps and discovers the interpreters as `config` says.
    pub fn open(config: RegistryConfig) -> Result<Self, RegistryError> {
        write_bootstraps(&config.runtime_dir)?;
        let found = discover::discover(&config.discovery)?.found;
        Ok(RuntimeRegistry {
            inner: Arc::new(Inner {
                runtime_dir: config.runtime_dir,
                runtimes_dir: config.discovery.runtimes_dir,
                found,
            }),
        })
    }

    /// The runtime ids this host can run (for validation of `Runtime`): those with an
    /// interpreter of their version, and `provided*`.
    pub fn catalog(&self) -> gust_model::RuntimeCatalog {
        gust_model::RuntimeCatalog::of_installed(self.inner.found.keys().cloned())
    }

    /// `LAMBDA_RUNTIME_DIR`.
    pub fn runtime_dir(&self) -> &Path {
        &self.inner.runtime_dir
    }

    /// Where Gust-installed runtimes and SDKs live.
    pub fn runtimes_dir(&self) -> &Path {
        &self.inner.runtimes_dir
    }

    /// The interpreter `runtime` runs on, if this host has one.
    pub fn interpreter(&self, runtime: &Runtime) -> Option<&Interpreter> {
        self.inner.found.get(runtime.id())
    }

    /// Every interpreted runtime id Lambda knows, with its interpreter and SDK, by
    /// language and version.
    pub fn statuses(&self) -> Vec<RuntimeStatus> {
        let mut statuses: Vec<RuntimeStatus> = discover::interpreted_ids()
            .into_iter()
            .map(|runtime| RuntimeStatus {
                interpreter: self.interpreter(&runtime).cloned(),
                sdk: self.sdk(&runtime),
                runtime,
            })
            .collect();
        statuses.sort_by_key(|s| (s.runtime.family(), discover::wanted_version(&s.runtime)));
        statuses
    }

    /// The SDK `runtime`'s functions get (boto3 for Python 3.9 and later, the AWS SDK for
    /// JavaScript v3 for Node.js 18 and later).
    pub fn sdk(&self, runtime: &Runtime) -> Option<SdkStatus> {
        let (major, minor) = discover::wanted_version(runtime)?;
        let (name, path, marker) = match (runtime.family(), minor) {
            (RuntimeFamily::Python, Some(minor)) if major == 3 => {
                let sdk = install::python_sdk(minor)?;
                let path = install::python_sdk_dir(&self.inner.runtimes_dir, sdk);
                (
                    format!("boto3 {}", sdk.boto3),
                    path.clone(),
                    path.join("boto3"),
                )
            }
            (RuntimeFamily::Nodejs, _) if major >= install::NODE_SDK_MIN_MAJOR => {
                let path = install::node_sdk_dir(&self.inner.runtimes_dir).join("node_modules");
                (
                    format!("@aws-sdk/* {}", install::NODE_SDK_VERSION),
                    path.clone(),
                    path.join("@aws-sdk"),
                )
            }
            _ => return None,
        };
        Some(SdkStatus {
            name,
            path,
            installed: marker.is_dir(),
        })
    }

    /// How to start `runtime` for code unpacked at `code_dir` on the host, seen at `view`'s
    /// paths by the runtime.
    pub fn launch(
        &self,
        runtime: &Runtime,
        code_dir: &Path,
        view: &View,
    ) -> Result<Launch, LaunchError> {
        self.launch_with_layers(runtime, code_dir, None, view)
    }

    /// [`RuntimeRegistry::launch`] for code with layers stacked at `layers_dir` on the host
    /// (where a custom runtime's `bootstrap` may come from).
    pub fn launch_with_layers(
        &self,
        runtime: &Runtime,
        code_dir: &Path,
        layers_dir: Option<&Path>,
        view: &View,
    ) -> Result<Launch, LaunchError> {
        let id = runtime.id();
        // An isolated environment sees Lambda's paths, not the server's.
        let isolated = view.runtime_dir != self.inner.runtime_dir;
        let family = runtime.family();
        if family == RuntimeFamily::Provided {
            // Lambda's order: the package's bootstrap, else a layer's.
            let program = if is_executable(&code_dir.join("bootstrap")) {
                view.task_root.join("bootstrap")
            } else if layers_dir.is_some_and(|opt| is_executable(&opt.join("bootstrap"))) {
                view.opt_dir.join("bootstrap")
            } else {
                return Err(LaunchError::NoBootstrap(format!(
                    "{} {}",
                    view.task_root.join("bootstrap").display(),
                    view.opt_dir.join("bootstrap").display()
                )));
            };
            return Ok(Launch {
                program,
                args: Vec::new(),
                env: Vec::new(),
                bin_dir: None,
                description: format!("custom runtime ({id}): the package's bootstrap"),
                interpreter_home: None,
                extra_binds: Vec::new(),
            });
        }
        let interpreter = self
            .interpreter(runtime)
            .ok_or_else(|| LaunchError::NoInterpreter(id.to_owned()))?;
        let mut env = vec![("AWS_EXECUTION_ENV".into(), format!("AWS_Lambda_{id}"))];
        let mut extra_binds = Vec::new();
        let sdk = self.sdk(runtime).filter(|s| s.installed);
        let mut program = interpreter.path.clone();
        let mut interpreter_home = interpreter.home();
        // A Gust-installed Node.js is relocatable: it is Lambda's `/var/lang` inside.
        if isolated && interpreter.source == Source::GustInstalled {
            if let Some(home) = interpreter_home.take() {
                if let Ok(relative) = interpreter.path.strip_prefix(&home) {
                    program = Path::new(LANG_DIR).join(relative);
                    extra_binds.push((home, PathBuf::from(LANG_DIR)));
                }
            }
        }
        let bin_dir = program.parent().map(Path::to_path_buf);
        let description = match family {
            RuntimeFamily::Python => format!(
                "Python {} ({}) for {id}",
                interpreter.version,
                interpreter.path.display()
            ),
            _ => format!(
                "Node.js {} ({}) for {id}",
                interpreter.version,
                interpreter.path.display()
            ),
        };
        let args: Vec<OsString> = match family {
            RuntimeFamily::Python => {
                // boto3 after the code and the layers, as Lambda's `/var/runtime`.
                if let Some(sdk) = &sdk {
                    let seen = if isolated {
                        let mount = view.runtime_dir.join(PYTHON_SDK_MOUNT);
                        extra_binds.push((sdk.path.clone(), mount.clone()));
                        mount
                    } else {
                        sdk.path.clone()
                    };
                    env.push(("PYTHONPATH".into(), seen.display().to_string()));
                }
                vec![
                    "-u".into(),
                    view.runtime_dir.join("python/bootstrap.py").into(),
                    // The layers' directory, for `sys.path` (`/opt/python`, ...).
                    view.opt_dir.clone().into(),
                ]
            }
            _ => {
                let major = id
                    .strip_prefix("nodejs")
                    .and_then(|v| v.strip_suffix(".x"))
                    .unwrap_or_default();
                let runtime_modules = match &sdk {
                    Some(sdk) if isolated => {
                        let mount = view.runtime_dir.join(NODE_SDK_MOUNT);
                        extra_binds.push((sdk.path.clone(), mount.clone()));
                        mount
                    }
                    Some(sdk) => sdk.path.clone(),
                    None => view.runtime_dir.join(NODE_SDK_MOUNT),
                };
                // Lambda's: the versioned layer folder, the plain one, the runtime's
                // modules (the SDK), the runtime, the code.
                let opt = view.opt_dir.display();
                env.push((
                    "NODE_PATH".into(),
                    format!(
                        "{opt}/nodejs/node{major}/node_modules:{opt}/nodejs/node_modules:{}:{}:{}",
                        runtime_modules.display(),
                        view.runtime_dir.display(),
                        view.task_root.display()
                    ),
                ));
                vec![view.runtime_dir.join("node/bootstrap.js").into()]
            }
        };
        Ok(Launch {
            program,
            args,
            env,
            bin_dir,
            description,
            interpreter_home,
            extra_binds,
        })
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
        // Lambda's message names Lambda's paths, never the server's.
        assert_eq!(
            err.to_string(),
            "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]"
        );
        // A layer's bootstrap serves when the package has none.
        let opt = dir.path().join("opt");
        std::fs::create_dir(&opt).unwrap();
        std::fs::write(opt.join("bootstrap"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            opt.join("bootstrap"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert_eq!(
            registry
                .launch_with_layers(&provided, &code, Some(&opt), &View::lambda())
                .unwrap()
                .program,
            Path::new("/opt/bootstrap")
        );
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

    /// A stand-in interpreter answering discovery's question as a real one of `version`.
    fn fake(path: &Path, version: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!("#!/bin/sh\necho \"$0\"\necho {version}\n")).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn registry(dir: &Path, path_var: &str) -> RuntimeRegistry {
        RuntimeRegistry::open(RegistryConfig {
            runtime_dir: dir.join("rt"),
            discovery: DiscoveryConfig {
                runtimes_dir: dir.join("runtimes"),
                path_var: path_var.to_owned(),
                home: Some(dir.join("home")),
                ..DiscoveryConfig::default()
            },
        })
        .unwrap()
    }

    #[test]
    fn bootstraps_are_written_and_interpreters_found() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        fake(&bin.join("python3.12"), "3.12.7");
        // `python3` (3.11 here) is no longer taken for python3.12.
        fake(&bin.join("python3"), "3.11.7");
        let registry = registry(dir.path(), bin.to_str().unwrap());
        assert!(dir.path().join("rt/python/bootstrap.py").exists());
        assert!(dir.path().join("rt/python/snapshot_restore_py.py").exists());
        assert!(dir.path().join("rt/node/bootstrap.js").exists());
        assert!(
            dir.path().join("rt/sdk/python").is_dir()
                && dir.path().join("rt/node_modules").is_dir()
        );
        let launch = registry
            .launch(
                &Runtime::parse("python3.12").unwrap(),
                dir.path(),
                &View::lambda(),
            )
            .unwrap();
        assert_eq!(
            launch.program,
            bin.join("python3.12").canonicalize().unwrap()
        );
        assert!(launch
            .args
            .contains(&"/var/runtime/python/bootstrap.py".into()));
        assert!(
            launch.description.starts_with("Python 3.12.7 ("),
            "{}",
            launch.description
        );
        assert!(launch
            .env
            .contains(&("AWS_EXECUTION_ENV".into(), "AWS_Lambda_python3.12".into())));
        // No SDK installed: nothing to bind, no PYTHONPATH.
        assert!(launch.extra_binds.is_empty());
        assert!(!launch.env.iter().any(|(k, _)| k == "PYTHONPATH"));
        for missing in ["python3.11", "nodejs20.x"] {
            let err = registry
                .launch(
                    &Runtime::parse(missing).unwrap(),
                    dir.path(),
                    &View::lambda(),
                )
                .unwrap_err();
            assert_eq!(err.error_type(), "Runtime.InvalidRuntime");
            assert_eq!(
                err.to_string(),
                format!("{missing} is not installed on this host")
            );
        }
        let catalog = registry.catalog();
        assert!(catalog.check("python3.12").is_ok());
        assert!(catalog.check("python3.11").is_err() && catalog.check("nodejs20.x").is_err());
        assert_eq!(
            catalog.supported_ids(),
            ["python3.12", "provided", "provided.al2", "provided.al2023"]
        );
        let statuses = registry.statuses();
        let py = statuses
            .iter()
            .find(|s| s.runtime.id() == "python3.12")
            .unwrap();
        assert_eq!(py.interpreter.as_ref().unwrap().version, "3.12.7");
        let sdk = py.sdk.as_ref().unwrap();
        assert_eq!((sdk.name.as_str(), sdk.installed), ("boto3 1.44.8", false));
        let empty = RuntimeRegistry::install(&dir.path().join("data/runtime"), "")
            .unwrap()
            .catalog();
        assert!(empty
            .supported_ids()
            .ends_with(&["provided", "provided.al2", "provided.al2023"]));
    }

    #[test]
    fn sdks_and_gust_installed_node_are_bound_where_lambda_has_them() {
        let dir = tempfile::tempdir().unwrap();
        let runtimes = dir.path().join("runtimes");
        let node_home = runtimes.join("node/v22.23.5");
        fake(&node_home.join("bin/node"), "22.23.5");
        let bin = dir.path().join("bin");
        fake(&bin.join("python3.12"), "3.12.7");
        // Installed SDKs: boto3 for 3.10+, the JavaScript v3 set.
        let boto3 = runtimes.join("sdk/python/boto3-1.44.8");
        std::fs::create_dir_all(boto3.join("boto3")).unwrap();
        let modules = runtimes.join("sdk/node/aws-sdk-3.940.0/node_modules");
        std::fs::create_dir_all(modules.join("@aws-sdk/client-s3")).unwrap();
        let registry = registry(dir.path(), bin.to_str().unwrap());
        let node = Runtime::parse("nodejs22.x").unwrap();
        assert_eq!(
            registry.interpreter(&node).unwrap().source,
            Source::GustInstalled
        );
        // Isolated: Lambda's paths.
        let launch = registry.launch(&node, dir.path(), &View::lambda()).unwrap();
        assert_eq!(launch.program, Path::new("/var/lang/bin/node"));
        assert_eq!(launch.bin_dir.as_deref(), Some(Path::new("/var/lang/bin")));
        assert_eq!(launch.interpreter_home, None);
        assert_eq!(
            launch.extra_binds,
            vec![
                (node_home.canonicalize().unwrap(), "/var/lang".into()),
                (modules.clone(), "/var/runtime/node_modules".into()),
            ]
        );
        assert!(launch.env.contains(&(
            "NODE_PATH".into(),
            "/opt/nodejs/node22/node_modules:/opt/nodejs/node_modules:/var/runtime/node_modules:/var/runtime:/var/task".into()
        )));
        let python = Runtime::parse("python3.12").unwrap();
        let launch = registry
            .launch(&python, dir.path(), &View::lambda())
            .unwrap();
        assert_eq!(
            launch.extra_binds,
            vec![(boto3.clone(), "/var/runtime/sdk/python".into())]
        );
        assert!(launch
            .env
            .contains(&("PYTHONPATH".into(), "/var/runtime/sdk/python".into())));
        // On the host's paths (no isolation): the host directories themselves.
        let host = View {
            task_root: dir.path().join("code"),
            runtime_dir: registry.runtime_dir().to_owned(),
            opt_dir: "/opt".into(),
        };
        let launch = registry.launch(&python, dir.path(), &host).unwrap();
        assert!(launch.extra_binds.is_empty());
        assert!(launch
            .env
            .contains(&("PYTHONPATH".into(), boto3.display().to_string())));
        let launch = registry.launch(&node, dir.path(), &host).unwrap();
        assert_eq!(
            launch.program,
            node_home.join("bin/node").canonicalize().unwrap()
        );
        let node_path = &launch.env.iter().find(|(k, _)| k == "NODE_PATH").unwrap().1;
        assert!(
            node_path.contains(&format!(":{}:", modules.display())),
            "{node_path}"
        );
        // nodejs18.x has no interpreter here; its SDK status is still reported.
        let status = registry
            .statuses()
            .into_iter()
            .find(|s| s.runtime.id() == "nodejs18.x")
            .unwrap();
        assert!(status.interpreter.is_none() && status.sdk.unwrap().installed);
    }
}
