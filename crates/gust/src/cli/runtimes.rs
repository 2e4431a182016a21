//! `gust runtimes`: which runtime id runs on which interpreter (the server's own discovery),
//! and `gust runtimes install` for Node.js releases and the AWS SDKs.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use gust_runtime::discover::DiscoveryConfig;
use gust_runtime::install::{self, Installed};
use gust_runtime::{RegistryConfig, RuntimeRegistry, RuntimeStatus};

/// Where runtimes are found: the same flags as `gust serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct RuntimeOptions {
    /// Run a runtime id on this interpreter (repeatable), e.g.
    /// `--runtime python3.12=/opt/python/3.12/bin/python3.12`.
    #[arg(long = "runtime", value_name = "ID=PATH", value_parser = parse_runtime_flag, global = true)]
    pub runtime: Vec<(String, PathBuf)>,
    /// Where Gust-installed Node.js releases and the AWS SDKs live (default:
    /// `<data-dir>/runtimes`); servers may share one.
    #[arg(long, env = "GUST_RUNTIMES_DIR", value_name = "DIR", global = true)]
    pub runtimes_dir: Option<PathBuf>,
    /// The server's data directory (its runtime directory is `<data-dir>/runtime`).
    #[arg(
        long,
        env = "GUST_DATA_DIR",
        default_value = ".gust-data",
        global = true
    )]
    pub data_dir: PathBuf,
}

/// `--runtime ID=PATH`.
pub fn parse_runtime_flag(text: &str) -> Result<(String, PathBuf), String> {
    let (id, path) = text.split_once('=').ok_or_else(|| {
        format!("expected ID=PATH (e.g. python3.12=/usr/bin/python3.12), got {text:?}")
    })?;
    if id.is_empty() || path.is_empty() {
        return Err(format!("expected ID=PATH, got {text:?}"));
    }
    Ok((id.to_owned(), PathBuf::from(path)))
}

/// The registry configuration for a data directory (absolute or not), as `gust serve` makes it.
pub fn registry_config(
    data_dir: &Path,
    runtimes_dir: Option<&Path>,
    explicit: &[(String, PathBuf)],
) -> RegistryConfig {
    let runtime_dir = data_dir.join("runtime");
    let runtimes_dir = runtimes_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| RegistryConfig::default_runtimes_dir(&runtime_dir));
    let runtimes_dir = absolute(&runtimes_dir);
    RegistryConfig {
        runtime_dir,
        discovery: DiscoveryConfig::from_env(explicit.to_vec(), runtimes_dir),
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Options of `gust runtimes`.
#[derive(Debug, clap::Args)]
pub struct RuntimesArgs {
    #[command(subcommand)]
    command: Option<RuntimesCommand>,
    #[command(flatten)]
    options: RuntimeOptions,
    /// Print JSON (for scripts).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum RuntimesCommand {
    /// Install pinned, checksum-verified Node.js releases (`nodejs22.x`, ...) from the npm
    /// registry's official binary packages, and `sdk`: boto3 for the Python runtimes and the
    /// AWS SDK for JavaScript v3 for nodejs18.x and later, as Lambda's runtimes carry them.
    Install {
        /// What to install: runtime ids (`nodejs18.x`, `nodejs22.x`, ...) and/or `sdk`.
        #[arg(required = true)]
        what: Vec<String>,
    },
}

/// Runs `gust runtimes`.
pub fn run(args: RuntimesArgs) -> Result<()> {
    let options = &args.options;
    match &args.command {
        None => list(options, args.json),
        Some(RuntimesCommand::Install { what }) => install_all(options, what),
    }
}

fn open(options: &RuntimeOptions) -> Result<RuntimeRegistry> {
    let config = registry_config(
        &options.data_dir,
        options.runtimes_dir.as_deref(),
        &options.runtime,
    );
    std::fs::create_dir_all(&config.discovery.runtimes_dir)
        .with_context(|| format!("cannot create {}", config.discovery.runtimes_dir.display()))?;
    Ok(RuntimeRegistry::open(config)?)
}

fn hint(status: &RuntimeStatus) -> String {
    let runtime = &status.runtime;
    match gust_runtime::discover::wanted_version(runtime) {
        Some((major, None)) if install::node_release(major).is_none() => format!(
            "install Node.js {major} (nvm install {major}) or start the server with --runtime {}=/path/to/node",
            runtime.id()
        ),
        _ => gust_model::runtime::install_hint(runtime),
    }
}

fn list(options: &RuntimeOptions, json: bool) -> Result<()> {
    let registry = open(options)?;
    let statuses = registry.statuses();
    if json {
        let runtimes: Vec<serde_json::Value> = statuses
            .iter()
            .map(|s| {
                let interpreter = s.interpreter.as_ref();
                serde_json::json!({
                    "runtime": s.runtime.id(),
                    "installed": interpreter.is_some(),
                    "path": interpreter.map(|i| i.path.display().to_string()),
                    "version": interpreter.map(|i| i.version.clone()),
                    "source": interpreter.map(|i| i.source.as_str()),
                    "foundAt": interpreter.map(|i| i.found_at.display().to_string()),
                    "sdk": s.sdk.as_ref().map(|sdk| serde_json::json!({
                        "name": sdk.name,
                        "installed": sdk.installed,
                        "path": sdk.path.display().to_string(),
                    })),
                    "hint": interpreter.is_none().then(|| hint(s)),
                })
            })
            .chain(["provided", "provided.al2", "provided.al2023"].map(|id| {
                serde_json::json!({
                    "runtime": id, "installed": true, "path": null, "version": null,
                    "source": "package", "foundAt": null, "sdk": null, "hint": null,
                })
            }))
            .collect();
        let out = serde_json::json!({
            "runtimesDir": registry.runtimes_dir().display().to_string(),
            "runtimes": runtimes,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("Runtimes directory: {}", registry.runtimes_dir().display());
    println!(
        "{:<12} {:<10} {:<15} {:<22} BINARY",
        "RUNTIME", "VERSION", "FOUND IN", "SDK"
    );
    for s in &statuses {
        let sdk = match &s.sdk {
            Some(sdk) if sdk.installed => sdk.name.clone(),
            Some(_) => "not installed".to_owned(),
            None => "-".to_owned(),
        };
        match &s.interpreter {
            Some(i) => println!(
                "{:<12} {:<10} {:<15} {:<22} {}",
                s.runtime.id(),
                i.version,
                i.source.as_str(),
                sdk,
                i.path.display()
            ),
            None => println!(
                "{:<12} {:<10} {:<15} {:<22} not installed: {}",
                s.runtime.id(),
                "-",
                "-",
                "-",
                hint(s)
            ),
        }
    }
    println!(
        "{:<12} {:<10} {:<15} {:<22} the package's own bootstrap",
        "provided*", "-", "package", "-"
    );
    if statuses
        .iter()
        .any(|s| s.interpreter.is_some() && s.sdk.as_ref().is_some_and(|sdk| !sdk.installed))
    {
        println!("\nSDKs missing: `gust runtimes install sdk` installs boto3 and the AWS SDK for JavaScript v3.");
    }
    Ok(())
}

fn install_all(options: &RuntimeOptions, what: &[String]) -> Result<()> {
    let config = registry_config(
        &options.data_dir,
        options.runtimes_dir.as_deref(),
        &options.runtime,
    );
    let runtimes_dir = config.discovery.runtimes_dir.clone();
    std::fs::create_dir_all(&runtimes_dir)
        .with_context(|| format!("cannot create {}", runtimes_dir.display()))?;
    let mut sdk = false;
    for item in what {
        if item == "sdk" {
            sdk = true;
            continue;
        }
        let major = item
            .strip_prefix("nodejs")
            .and_then(|v| v.strip_suffix(".x"))
            .and_then(|v| v.parse::<u32>().ok());
        let Some(major) = major else {
            if item.starts_with("python") {
                bail!(
                    "{item}: Gust does not install Python; {} (see the README's Runtimes section)",
                    gust_model::Runtime::parse(item)
                        .map(|r| gust_model::runtime::install_hint(&r))
                        .unwrap_or_else(|e| e.to_string())
                );
            }
            bail!("{item}: expected a Node.js runtime id (nodejs22.x) or `sdk`");
        };
        eprintln!("== {item}");
        report(install::install_node(&runtimes_dir, major)?);
    }
    if sdk {
        // The Python sets the interpreters found need (the newest when none is found).
        let registry = RuntimeRegistry::open(config)?;
        let statuses = registry.statuses();
        let pythons: Vec<PathBuf> = statuses
            .iter()
            .filter_map(|s| s.interpreter.as_ref())
            .filter(|i| {
                i.path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("python"))
            })
            .map(|i| i.path.clone())
            .collect();
        let mut sets: Vec<&install::PythonSdk> = statuses
            .iter()
            .filter(|s| s.interpreter.is_some())
            .filter_map(|s| {
                let (_, minor) = gust_runtime::discover::wanted_version(&s.runtime)?;
                (s.runtime.family() == gust_model::RuntimeFamily::Python)
                    .then_some(install::python_sdk(minor?)?)
            })
            .collect();
        sets.sort_by_key(|s| s.name);
        sets.dedup_by_key(|s| s.name);
        if sets.is_empty() {
            sets.push(&install::PYTHON_SDKS[0]);
        }
        for set in sets {
            eprintln!(
                "== boto3 {} (Python 3.{}{})",
                set.boto3,
                set.min_minor,
                set.max_minor
                    .map_or("+".to_owned(), |m| if m == set.min_minor {
                        String::new()
                    } else {
                        format!("-3.{m}")
                    })
            );
            report(install::install_python_sdk(&runtimes_dir, set, &pythons)?);
        }
        eprintln!(
            "== AWS SDK for JavaScript v3 {} ({})",
            install::NODE_SDK_VERSION,
            install::node_sdk_packages().join(", ")
        );
        report(install::install_node_sdk(&runtimes_dir)?);
    }
    Ok(())
}

fn report(installed: Installed) {
    match installed {
        Installed::New(path) => eprintln!("installed in {}", path.display()),
        Installed::Present(path) => eprintln!("already installed in {}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_flags_are_id_equals_path() {
        assert_eq!(
            parse_runtime_flag("python3.12=/usr/bin/python3.12").unwrap(),
            (
                "python3.12".to_owned(),
                PathBuf::from("/usr/bin/python3.12")
            )
        );
        assert!(parse_runtime_flag("python3.12").is_err());
        assert!(parse_runtime_flag("=/x").is_err());
        let config = registry_config(Path::new("/d"), None, &[]);
        assert_eq!(config.runtime_dir, Path::new("/d/runtime"));
        assert_eq!(config.discovery.runtimes_dir, Path::new("/d/runtimes"));
        let shared = registry_config(Path::new("/d"), Some(Path::new("/shared")), &[]);
        assert_eq!(shared.discovery.runtimes_dir, Path::new("/shared"));
    }
}
