//! Finding the interpreter behind each runtime id: `python3.12` runs on a Python 3.12 and
//! `nodejs22.x` on a Node.js 22, or the id is not runnable on this host.
//!
//! Candidates come from where interpreters live (an explicit `--runtime ID=PATH`, Gust's
//! own installs, `PATH`, pyenv, uv, mise, asdf, nvm); each is run once to learn its real
//! executable and exact version, in parallel, and the answer is cached in a file keyed by
//! the executable's (path, size, modification time), so a server start costs a few `stat`s.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gust_model::runtime::LAMBDA_RUNTIMES;
use gust_model::{Runtime, RuntimeFamily};
use serde::{Deserialize, Serialize};

/// How long one interpreter may take to say what it is.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);
/// The cache file, in the runtimes directory.
pub const PROBE_CACHE: &str = "probes.json";

/// Where an interpreter was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// `--runtime ID=PATH`.
    Explicit,
    /// `gust runtimes install` (under the runtimes directory).
    GustInstalled,
    /// A directory of `PATH` (or `/usr/bin`, `/usr/local/bin`).
    Path,
    /// `$PYENV_ROOT/versions` (not its shims).
    Pyenv,
    /// uv's managed Pythons.
    Uv,
    /// mise's installs.
    Mise,
    /// asdf's installs.
    Asdf,
    /// nvm's versions.
    Nvm,
}

impl Source {
    /// The name `gust runtimes` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Explicit => "explicit",
            Source::GustInstalled => "gust-installed",
            Source::Path => "PATH",
            Source::Pyenv => "pyenv",
            Source::Uv => "uv",
            Source::Mise => "mise",
            Source::Asdf => "asdf",
            Source::Nvm => "nvm",
        }
    }
}

/// An interpreter verified to be of a runtime id's language version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpreter {
    /// The real executable (`sys.executable` / `process.execPath`, symlinks resolved).
    pub path: PathBuf,
    /// Its exact version (`3.12.1`, `22.23.5`).
    pub version: String,
    /// Where it was found.
    pub source: Source,
    /// The file that was found (a symlink or the executable itself).
    pub found_at: PathBuf,
}

impl Interpreter {
    /// The installation directory: `…/bin/python3.11` → `…`.
    pub fn home(&self) -> Option<PathBuf> {
        self.path
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
    }
}

/// Where to look, and what the operator named explicitly.
#[derive(Debug, Clone, Default)]
pub struct DiscoveryConfig {
    /// `--runtime ID=PATH`, in the order given.
    pub explicit: Vec<(String, PathBuf)>,
    /// Gust's runtimes directory (Gust-installed Node.js, the SDKs, the probe cache).
    pub runtimes_dir: PathBuf,
    /// The server's `PATH`.
    pub path_var: String,
    /// Directories searched after `PATH` (`/usr/bin`, `/usr/local/bin`).
    pub system_dirs: Vec<PathBuf>,
    /// The user's home directory (for `~/.pyenv`, `~/.nvm`, …).
    pub home: Option<PathBuf>,
    /// `PYENV_ROOT`, `UV_PYTHON_INSTALL_DIR`, `MISE_DATA_DIR`, `ASDF_DATA_DIR`, `NVM_DIR`.
    pub vars: HashMap<String, String>,
}

const ROOT_VARS: &[&str] = &[
    "PYENV_ROOT",
    "UV_PYTHON_INSTALL_DIR",
    "MISE_DATA_DIR",
    "ASDF_DATA_DIR",
    "NVM_DIR",
];

impl DiscoveryConfig {
    /// The process's `PATH`, `HOME` and version managers' variables.
    pub fn from_env(explicit: Vec<(String, PathBuf)>, runtimes_dir: PathBuf) -> Self {
        DiscoveryConfig {
            explicit,
            runtimes_dir,
            path_var: std::env::var("PATH").unwrap_or_default(),
            system_dirs: vec!["/usr/bin".into(), "/usr/local/bin".into()],
            home: std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from),
            vars: ROOT_VARS
                .iter()
                .filter_map(|name| {
                    std::env::var(name)
                        .ok()
                        .filter(|v| !v.is_empty())
                        .map(|v| ((*name).to_owned(), v))
                })
                .collect(),
        }
    }

    fn root(&self, var: &str, under_home: &str) -> Option<PathBuf> {
        self.vars
            .get(var)
            .map(PathBuf::from)
            .or_else(|| self.home.as_ref().map(|h| h.join(under_home)))
    }
}

/// Why discovery cannot give what was asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// `--runtime` names an id that is not a Python or Node.js runtime.
    #[error("--runtime {0}: {1}")]
    BadId(String, String),
    /// `--runtime` names a program that is not an interpreter of that version.
    #[error("--runtime {id}={path}: {reason}")]
    BadInterpreter {
        /// The runtime id.
        id: String,
        /// The program given.
        path: String,
        /// What was wrong.
        reason: String,
    },
}

/// The interpreted runtime ids Gust has a family for (`python3.x`, `nodejsN.x`), in the
/// model's order.
pub fn interpreted_ids() -> Vec<Runtime> {
    LAMBDA_RUNTIMES
        .iter()
        .filter_map(|id| Runtime::parse(id).ok())
        .filter(|r| r.family() != RuntimeFamily::Provided)
        .collect()
}

/// The language version a runtime id names: `python3.12` → (3, Some(12)), `nodejs22.x` → (22, None).
pub fn wanted_version(runtime: &Runtime) -> Option<(u32, Option<u32>)> {
    let id = runtime.id();
    match runtime.family() {
        RuntimeFamily::Python => {
            let (major, minor) = id.strip_prefix("python")?.split_once('.')?;
            Some((major.parse().ok()?, Some(minor.parse().ok()?)))
        }
        RuntimeFamily::Nodejs => Some((
            id.strip_prefix("nodejs")?
                .strip_suffix(".x")?
                .parse()
                .ok()?,
            None,
        )),
        RuntimeFamily::Provided => None,
    }
}

/// Whether an exact version (`3.12.1`) is the one a runtime id wants.
pub fn version_matches(wanted: (u32, Option<u32>), version: &str) -> bool {
    let mut parts = version.split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .ok()
    });
    let major = parts.next().flatten();
    match wanted {
        (want, None) => major == Some(want),
        (want, Some(minor)) => major == Some(want) && parts.next().flatten() == Some(minor),
    }
}

fn numbers(name: &str) -> Vec<u32> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The subdirectories of `dir` whose names start with one of `prefixes` (or equal `exact`),
/// newest version first.
fn versioned_dirs(dir: &Path, prefixes: &[String], exact: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(Vec<u32>, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name == exact || prefixes.iter().any(|p| name.starts_with(p.as_str())))
                .then(|| (numbers(&name), e.path()))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0));
    found.into_iter().map(|(_, p)| p).collect()
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A version manager's shim (pyenv's, asdf's, mise's `shims/` directories): a wrapper that
/// picks an interpreter from the caller's environment and directory, so what it runs is
/// not fixed; discovery looks at the managers' installs instead.
fn is_shim(path: &Path) -> bool {
    path.parent()
        .and_then(Path::file_name)
        .is_some_and(|name| name == "shims")
}

/// Where to look for `runtime`'s interpreter, in order of preference.
pub fn candidates(config: &DiscoveryConfig, runtime: &Runtime) -> Vec<(Source, PathBuf)> {
    let Some((major, minor)) = wanted_version(runtime) else {
        return Vec::new();
    };
    let mut out: Vec<(Source, PathBuf)> = config
        .explicit
        .iter()
        .filter(|(id, _)| id == runtime.id())
        .map(|(_, path)| (Source::Explicit, path.clone()))
        .collect();
    let path_dirs: Vec<PathBuf> = config
        .path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .chain(config.system_dirs.iter().cloned())
        .collect();
    match (runtime.family(), minor) {
        (RuntimeFamily::Python, Some(minor)) => {
            let x_y = format!("{major}.{minor}");
            let exe = format!("python{x_y}");
            let patch = vec![format!("{x_y}.")];
            for dir in &path_dirs {
                out.push((Source::Path, dir.join(&exe)));
            }
            let managers = [
                (
                    Source::Pyenv,
                    config.root("PYENV_ROOT", ".pyenv"),
                    "versions",
                ),
                (
                    Source::Uv,
                    config.root("UV_PYTHON_INSTALL_DIR", ".local/share/uv/python"),
                    "",
                ),
                (
                    Source::Mise,
                    config.root("MISE_DATA_DIR", ".local/share/mise"),
                    "installs/python",
                ),
                (
                    Source::Asdf,
                    config.root("ASDF_DATA_DIR", ".asdf"),
                    "installs/python",
                ),
            ];
            for (source, root, sub) in managers {
                let Some(root) = root else { continue };
                let dir = if sub.is_empty() { root } else { root.join(sub) };
                let (prefixes, exact) = if source == Source::Uv {
                    (vec![format!("cpython-{x_y}.")], String::new())
                } else {
                    (patch.clone(), x_y.clone())
                };
                for version in versioned_dirs(&dir, &prefixes, &exact) {
                    out.push((source, version.join("bin").join(&exe)));
                }
            }
        }
        (RuntimeFamily::Nodejs, _) => {
            let prefix = vec![format!("v{major}.")];
            for version in versioned_dirs(&config.runtimes_dir.join("node"), &prefix, "") {
                out.push((Source::GustInstalled, version.join("bin/node")));
            }
            if let Some(nvm) = config.root("NVM_DIR", ".nvm") {
                for version in versioned_dirs(&nvm.join("versions/node"), &prefix, "") {
                    out.push((Source::Nvm, version.join("bin/node")));
                }
            }
            let plain = vec![format!("{major}.")];
            if let Some(mise) = config.root("MISE_DATA_DIR", ".local/share/mise") {
                for version in
                    versioned_dirs(&mise.join("installs/node"), &plain, &major.to_string())
                {
                    out.push((Source::Mise, version.join("bin/node")));
                }
            }
            if let Some(asdf) = config.root("ASDF_DATA_DIR", ".asdf") {
                for version in versioned_dirs(&asdf.join("installs/nodejs"), &plain, "") {
                    out.push((Source::Asdf, version.join("bin/node")));
                }
            }
            for dir in &path_dirs {
                out.push((Source::Path, dir.join("node")));
            }
        }
        _ => {}
    }
    out
}

/// What one run of an interpreter said about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Probe {
    /// The real executable; `None` when the program did not answer as an interpreter.
    real: Option<PathBuf>,
    version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
struct ProbeKey {
    family: String,
    path: PathBuf,
    size: u64,
    mtime_ns: i128,
}

impl ProbeKey {
    fn of(family: RuntimeFamily, path: &Path) -> Option<ProbeKey> {
        let meta = path.metadata().ok()?;
        Some(ProbeKey {
            family: format!("{family:?}"),
            path: path.to_owned(),
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        })
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ProbeCache {
    entries: Vec<(ProbeKey, Probe)>,
}

/// Runs `program` with `args` and returns its standard output, or `None` on failure or
/// after [`PROBE_TIMEOUT`].
fn run_with_timeout(program: &Path, args: &[&str]) -> Option<String> {
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).ok().map(|_| text)
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < PROBE_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(5));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    };
    let text = reader.join().ok()??;
    status.success().then_some(text)
}

fn probe(family: RuntimeFamily, program: &Path) -> Probe {
    let args: &[&str] = match family {
        RuntimeFamily::Python => &[
            "-c",
            "import sys, platform; print(sys.executable); print(platform.python_version())",
        ],
        _ => &[
            "-e",
            "console.log(process.execPath); console.log(process.versions.node)",
        ],
    };
    let answer = run_with_timeout(program, args).and_then(|text| {
        let mut lines = text.lines();
        // The real file, not a virtualenv's or an alternatives symlink: an isolated
        // environment sees the interpreter's installation, not the server's links to it.
        let real = std::fs::canonicalize(lines.next()?.trim()).ok()?;
        let version = lines.next()?.trim().to_owned();
        (is_executable(&real) && !version.is_empty()).then_some((real, version))
    });
    match answer {
        Some((real, version)) => Probe {
            real: Some(real),
            version,
        },
        None => Probe {
            real: None,
            version: String::new(),
        },
    }
}

/// The interpreters found for each runtime id, and the explicit ones that were wrong.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// Runtime id → its interpreter.
    pub found: BTreeMap<String, Interpreter>,
}

/// Finds an interpreter for every interpreted runtime id. An explicit `--runtime` that is
/// not an interpreter of its id's version is an error (the operator asked for it).
pub fn discover(config: &DiscoveryConfig) -> Result<Discovery, DiscoveryError> {
    let runtimes = interpreted_ids();
    for (id, _) in &config.explicit {
        match Runtime::parse(id) {
            Ok(r) if r.family() != RuntimeFamily::Provided => {}
            Ok(_) => {
                return Err(DiscoveryError::BadId(
                    id.clone(),
                    "provided runtimes run the package's own bootstrap".into(),
                ))
            }
            Err(e) => return Err(DiscoveryError::BadId(id.clone(), e.to_string())),
        }
    }
    // Every candidate that exists, as (runtime, source, found at, probe key).
    let mut listed: Vec<(Runtime, Source, PathBuf, ProbeKey)> = Vec::new();
    for runtime in &runtimes {
        for (source, path) in candidates(config, runtime) {
            if source == Source::Explicit {
                if !is_executable(&path) {
                    return Err(DiscoveryError::BadInterpreter {
                        id: runtime.id().to_owned(),
                        path: path.display().to_string(),
                        reason: "not an executable file".into(),
                    });
                }
            } else if !is_executable(&path) || is_shim(&path) {
                continue;
            }
            let Ok(real) = std::fs::canonicalize(&path) else {
                continue;
            };
            // Explicit wrappers are asked as given; anything else by its real file.
            let program = if source == Source::Explicit {
                path.clone()
            } else {
                real
            };
            if let Some(key) = ProbeKey::of(runtime.family(), &program) {
                listed.push((runtime.clone(), source, path, key));
            }
        }
    }
    let cache_path = config.runtimes_dir.join(PROBE_CACHE);
    let cache: ProbeCache = std::fs::read(&cache_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let mut known: HashMap<ProbeKey, Probe> = cache.entries.into_iter().collect();
    let mut unknown: Vec<ProbeKey> = listed
        .iter()
        .map(|(_, _, _, key)| key.clone())
        .filter(|key| !known.contains_key(key))
        .collect();
    unknown.sort();
    unknown.dedup();
    if !unknown.is_empty() {
        let probed: Vec<(ProbeKey, Probe)> = std::thread::scope(|scope| {
            let handles: Vec<_> = unknown
                .iter()
                .map(|key| {
                    scope.spawn(move || {
                        let family = if key.family == format!("{:?}", RuntimeFamily::Python) {
                            RuntimeFamily::Python
                        } else {
                            RuntimeFamily::Nodejs
                        };
                        (key.clone(), probe(family, &key.path))
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        known.extend(probed);
        save_cache(&cache_path, &known);
    }
    let mut discovery = Discovery::default();
    for (runtime, source, found_at, key) in listed {
        if discovery.found.contains_key(runtime.id()) {
            continue;
        }
        let Some(wanted) = wanted_version(&runtime) else {
            continue;
        };
        let answer = known.get(&key);
        let matching = answer
            .and_then(|p| p.real.clone().map(|real| (real, p.version.clone())))
            .filter(|(_, version)| version_matches(wanted, version));
        match matching {
            Some((path, version)) => {
                discovery.found.insert(
                    runtime.id().to_owned(),
                    Interpreter {
                        path,
                        version,
                        source,
                        found_at,
                    },
                );
            }
            None if source == Source::Explicit => {
                let reason = match answer {
                    Some(Probe {
                        real: Some(_),
                        version,
                    }) => format!("it is version {version}, not the one {runtime} names"),
                    _ => format!(
                        "it did not answer as a {} interpreter",
                        if runtime.family() == RuntimeFamily::Python {
                            "Python"
                        } else {
                            "Node.js"
                        }
                    ),
                };
                return Err(DiscoveryError::BadInterpreter {
                    id: runtime.id().to_owned(),
                    path: found_at.display().to_string(),
                    reason,
                });
            }
            None => {}
        }
    }
    Ok(discovery)
}

/// Writes the cache atomically (servers sharing a runtimes directory may write it at once;
/// the last one wins, and each holds what it probed).
fn save_cache(path: &Path, known: &HashMap<ProbeKey, Probe>) {
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    // Entries whose file is gone or changed are dropped.
    let mut entries: Vec<(ProbeKey, Probe)> = known
        .iter()
        .filter(|(key, _)| {
            ProbeKey::of(RuntimeFamily::Python, &key.path)
                .is_some_and(|now| now.size == key.size && now.mtime_ns == key.mtime_ns)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let Ok(text) = serde_json::to_vec_pretty(&ProbeCache { entries }) else {
        return;
    };
    let temp = dir.join(format!(
        ".{PROBE_CACHE}.{}.{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    if std::fs::write(&temp, text).is_ok() && std::fs::rename(&temp, path).is_err() {
        let _ = std::fs::remove_file(&temp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in interpreter that answers the probe like a real one of `version`, and
    /// counts how often it was asked.
    fn fake(path: &Path, version: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let count = path.with_extension("count");
        std::fs::write(
            path,
            format!(
                "#!/bin/sh\necho x >> '{}'\necho \"$0\"\necho {version}\n",
                count.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn asked(path: &Path) -> usize {
        std::fs::read_to_string(path.with_extension("count"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    fn config(dir: &Path) -> DiscoveryConfig {
        DiscoveryConfig {
            runtimes_dir: dir.join("runtimes"),
            home: Some(dir.join("home")),
            ..DiscoveryConfig::default()
        }
    }

    #[test]
    fn versions_must_match_the_id() {
        let py = Runtime::parse("python3.12").unwrap();
        let node = Runtime::parse("nodejs22.x").unwrap();
        assert_eq!(wanted_version(&py), Some((3, Some(12))));
        assert_eq!(wanted_version(&node), Some((22, None)));
        assert!(version_matches((3, Some(12)), "3.12.1"));
        assert!(version_matches((3, Some(13)), "3.13.0rc1"));
        assert!(!version_matches((3, Some(1)), "3.12.1"));
        assert!(!version_matches((3, Some(12)), "3.11.7"));
        assert!(version_matches((22, None), "22.23.5"));
        assert!(!version_matches((2, None), "22.23.5"));
    }

    #[test]
    fn candidates_come_from_every_manager_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        for sub in [
            ".pyenv/versions/3.12.1",
            ".pyenv/versions/3.12.8",
            ".pyenv/versions/3.1.4",
            ".pyenv/versions/3.11.7",
            ".local/share/uv/python/cpython-3.12.4-linux-x86_64-gnu",
            ".local/share/mise/installs/python/3.12",
            ".asdf/installs/python/3.12.2",
            ".nvm/versions/node/v22.1.0",
            ".nvm/versions/node/v20.9.0",
        ] {
            std::fs::create_dir_all(home.join(sub)).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("runtimes/node/v22.23.5")).unwrap();
        let mut config = config(dir.path());
        config.path_var = "/opt/x/bin".into();
        config.explicit = vec![("python3.12".into(), "/custom/python".into())];
        let py: Vec<_> = candidates(&config, &Runtime::parse("python3.12").unwrap())
            .into_iter()
            .map(|(s, p)| (s, p.strip_prefix(&home).map(Path::to_path_buf).unwrap_or(p)))
            .collect();
        assert_eq!(
            py,
            vec![
                (Source::Explicit, "/custom/python".into()),
                (Source::Path, "/opt/x/bin/python3.12".into()),
                (
                    Source::Pyenv,
                    ".pyenv/versions/3.12.8/bin/python3.12".into()
                ),
                (
                    Source::Pyenv,
                    ".pyenv/versions/3.12.1/bin/python3.12".into()
                ),
                (
                    Source::Uv,
                    ".local/share/uv/python/cpython-3.12.4-linux-x86_64-gnu/bin/python3.12".into()
                ),
                (
                    Source::Mise,
                    ".local/share/mise/installs/python/3.12/bin/python3.12".into()
                ),
                (
                    Source::Asdf,
                    ".asdf/installs/python/3.12.2/bin/python3.12".into()
                ),
            ]
        );
        let node = candidates(&config, &Runtime::parse("nodejs22.x").unwrap());
        assert_eq!(node[0].0, Source::GustInstalled);
        assert!(node[0].1.ends_with("runtimes/node/v22.23.5/bin/node"));
        assert_eq!(
            node[1],
            (
                Source::Nvm,
                home.join(".nvm/versions/node/v22.1.0/bin/node")
            )
        );
        assert_eq!(node[2], (Source::Path, "/opt/x/bin/node".into()));
    }

    #[test]
    fn only_interpreters_of_the_right_version_are_found_and_probes_are_cached() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("shims");
        // A shim on PATH picks its interpreter from the caller's environment: skipped.
        fake(&bin.join("python3.12"), "3.12.0");
        // pyenv's 3.12 answers 3.11: a broken install is not taken for 3.12...
        let broken = dir
            .path()
            .join("home/.pyenv/versions/3.12.1/bin/python3.12");
        fake(&broken, "3.11.7");
        // ...uv's is.
        let uv = dir
            .path()
            .join("home/.local/share/uv/python/cpython-3.12.4-linux-x86_64-gnu/bin/python3.12");
        fake(&uv, "3.12.4");
        // An explicit one is used (scripts are allowed when named explicitly).
        let explicit = dir.path().join("elsewhere/py313");
        fake(&explicit, "3.13.2");
        let mut config = config(dir.path());
        config.path_var = bin.display().to_string();
        config.explicit = vec![("python3.13".into(), explicit.clone())];
        let found = discover(&config).unwrap().found;
        assert_eq!(found["python3.12"].source, Source::Uv, "{found:?}");
        assert_eq!(found["python3.12"].version, "3.12.4");
        assert_eq!(found["python3.12"].path, uv.canonicalize().unwrap());
        assert_eq!(asked(&broken), 1);
        let py313 = &found["python3.13"];
        assert_eq!(py313.version, "3.13.2");
        assert_eq!(py313.source, Source::Explicit);
        assert_eq!(py313.path, explicit.canonicalize().unwrap());
        assert_eq!(asked(&bin.join("python3.12")), 0, "shims are not run");
        assert_eq!(asked(&explicit), 1);
        // Found again from the cache, without running anything.
        let again = discover(&config).unwrap().found;
        assert_eq!(again["python3.13"], *py313);
        assert_eq!(asked(&explicit), 1);
        assert!(config.runtimes_dir.join(PROBE_CACHE).exists());
        // A changed file is asked again.
        fake(&explicit, "3.13.3");
        std::fs::write(explicit.with_extension("count"), "").unwrap();
        let changed = discover(&config).unwrap().found;
        assert_eq!(changed["python3.13"].version, "3.13.3");
        assert_eq!(asked(&explicit), 1);
    }

    #[test]
    fn a_wrong_explicit_interpreter_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("python");
        fake(&program, "3.11.7");
        let mut config = config(dir.path());
        config.explicit = vec![("python3.12".into(), program.clone())];
        let err = discover(&config).unwrap_err().to_string();
        assert!(
            err.ends_with("it is version 3.11.7, not the one python3.12 names"),
            "{err}"
        );
        config.explicit = vec![("python3.12".into(), dir.path().join("missing"))];
        assert!(discover(&config)
            .unwrap_err()
            .to_string()
            .ends_with("not an executable file"));
        config.explicit = vec![("java21".into(), program)];
        assert!(matches!(discover(&config), Err(DiscoveryError::BadId(..))));
    }
}
