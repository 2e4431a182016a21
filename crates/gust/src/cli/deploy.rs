//! `gust deploy DIR`: zip a directory, then create the function or update its code and
//! configuration.

use std::io::{Cursor, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine;
use serde_json::{json, Map, Value};

use super::{block_on, output};
use crate::client::{encode_label, is_not_found, Client};
use crate::ConnectArgs;

#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// Directory whose contents become the function's code (its root is the code root).
    dir: PathBuf,
    /// Function name.
    #[arg(long)]
    name: String,
    /// Runtime, e.g. python3.12, nodejs20.x, provided.al2023 (required to create).
    #[arg(long)]
    runtime: Option<String>,
    /// Handler, e.g. app.handler (required to create).
    #[arg(long)]
    handler: Option<String>,
    /// Memory in MB (128–10240).
    #[arg(long)]
    memory: Option<u32>,
    /// Timeout in seconds (1–900).
    #[arg(long)]
    timeout: Option<u32>,
    /// Environment variable KEY=VALUE (repeat; replaces all variables when given).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Description.
    #[arg(long)]
    description: Option<String>,
    /// Execution role ARN (recorded; default: a role in the server's account).
    #[arg(long)]
    role: Option<String>,
    #[command(flatten)]
    connect: ConnectArgs,
}

pub fn run(args: DeployArgs) -> Result<()> {
    block_on(deploy(args))?
}

fn parse_env(pairs: &[String]) -> Result<Map<String, Value>> {
    let mut map = Map::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("--env {pair:?}: expected KEY=VALUE");
        };
        map.insert(key.to_owned(), Value::String(value.to_owned()));
    }
    Ok(map)
}

/// Zips `dir` with paths relative to it, in a stable order, keeping executable bits and
/// symlinks (as links).
pub fn zip_directory(dir: &Path) -> Result<Vec<u8>> {
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for relative in files {
        let path = dir.join(&relative);
        let name = relative.to_string_lossy().replace('\\', "/");
        let metadata = std::fs::symlink_metadata(&path)?;
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(metadata.permissions().mode() & 0o777);
        if metadata.file_type().is_symlink() {
            let target = std::fs::read_link(&path)?;
            writer.add_symlink(name, target.to_string_lossy(), options)?;
        } else {
            writer.start_file(name, options)?;
            writer.write_all(
                &std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
            )?;
        }
    }
    Ok(writer.finish()?.into_inner())
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            collect(root, &path, out)?;
        } else if file_type.is_file() || file_type.is_symlink() {
            out.push(path.strip_prefix(root)?.to_path_buf());
        }
    }
    Ok(())
}

async fn deploy(args: DeployArgs) -> Result<()> {
    let client = Client::connect(&args.connect)?;
    let zip = zip_directory(&args.dir)?;
    let zip_b64 = base64::engine::general_purpose::STANDARD.encode(&zip);
    let function_path = format!("/2015-03-31/functions/{}", encode_label(&args.name));

    let mut settings = Map::new();
    if let Some(runtime) = &args.runtime {
        settings.insert("Runtime".into(), json!(runtime));
    }
    if let Some(handler) = &args.handler {
        settings.insert("Handler".into(), json!(handler));
    }
    if let Some(memory) = args.memory {
        settings.insert("MemorySize".into(), json!(memory));
    }
    if let Some(timeout) = args.timeout {
        settings.insert("Timeout".into(), json!(timeout));
    }
    if let Some(description) = &args.description {
        settings.insert("Description".into(), json!(description));
    }
    if let Some(role) = &args.role {
        settings.insert("Role".into(), json!(role));
    }
    if !args.env.is_empty() {
        settings.insert(
            "Environment".into(),
            json!({ "Variables": parse_env(&args.env)? }),
        );
    }

    let (action, config) = match client.call("GET", &function_path, "", None).await {
        Ok(_) => {
            let mut config = client
                .call(
                    "PUT",
                    &format!("{function_path}/code"),
                    "",
                    Some(&json!({ "ZipFile": zip_b64 })),
                )
                .await?;
            if !settings.is_empty() {
                wait_until_updated(&client, &function_path).await?;
                config = client
                    .call(
                        "PUT",
                        &format!("{function_path}/configuration"),
                        "",
                        Some(&Value::Object(settings)),
                    )
                    .await?;
            }
            ("updated", config)
        }
        Err(error) if is_not_found(&error) => {
            if args.runtime.is_none() || args.handler.is_none() {
                bail!("function {} does not exist yet: --runtime and --handler are needed to create it", args.name);
            }
            if !settings.contains_key("Role") {
                let account = client_account(&args.connect);
                settings.insert(
                    "Role".into(),
                    json!(format!("arn:aws:iam::{account}:role/gust-function")),
                );
            }
            settings.insert("FunctionName".into(), json!(args.name));
            settings.insert("Code".into(), json!({ "ZipFile": zip_b64 }));
            let config = client
                .call(
                    "POST",
                    "/2015-03-31/functions",
                    "",
                    Some(&Value::Object(settings)),
                )
                .await?;
            ("created", config)
        }
        Err(error) => return Err(error),
    };
    wait_until_updated(&client, &function_path).await?;
    // Show the function as it is now that the update has finished.
    let config = client
        .call("GET", &format!("{function_path}/configuration"), "", None)
        .await
        .unwrap_or(config);
    if args.connect.json {
        return output::json(&config);
    }
    println!("{action} {} ({} bytes of code)", args.name, zip.len());
    output::function_details(&config);
    Ok(())
}

fn client_account(connect: &ConnectArgs) -> String {
    crate::datadir::read_server_info(&connect.data_dir)
        .map(|i| i.account_id)
        .unwrap_or_else(|_| "000000000000".to_owned())
}

/// Polls until the function is Active and its last update finished, as the CLI waiters do.
async fn wait_until_updated(client: &Client, function_path: &str) -> Result<()> {
    for _ in 0..600 {
        let config = client
            .call("GET", &format!("{function_path}/configuration"), "", None)
            .await?;
        let state = config["State"].as_str().unwrap_or("");
        let update = config["LastUpdateStatus"].as_str().unwrap_or("Successful");
        match (state, update) {
            ("Failed", _) | (_, "Failed") => bail!("the function's update failed: {config}"),
            ("Active", "Successful") => return Ok(()),
            _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    bail!("timed out waiting for the function to become active")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zips_relative_paths_with_modes_and_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pkg")).unwrap();
        std::fs::write(dir.path().join("app.py"), "x = 1\n").unwrap();
        std::fs::write(dir.path().join("pkg/mod.py"), "y = 2\n").unwrap();
        std::fs::write(dir.path().join("bootstrap"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            dir.path().join("bootstrap"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("pkg/mod.py", dir.path().join("link.py")).unwrap();
        let bytes = zip_directory(dir.path()).unwrap();
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes.clone())).unwrap();
        let names: Vec<String> = archive.file_names().map(str::to_owned).collect();
        assert_eq!(names, ["app.py", "bootstrap", "link.py", "pkg/mod.py"]);
        assert_eq!(
            archive.by_name("bootstrap").unwrap().unix_mode().unwrap() & 0o777,
            0o755
        );
        assert!(archive.by_name("link.py").unwrap().is_symlink());
        // The server's own package check accepts what deploy produces.
        assert!(gust_store::package::inspect(&bytes, 1 << 20).is_ok());
        assert!(zip_directory(&dir.path().join("app.py")).is_err());
    }

    #[test]
    fn env_pairs() {
        let map = parse_env(&["A1=x".into(), "B2=y=z".into()]).unwrap();
        assert_eq!(map["B2"], "y=z");
        assert!(parse_env(&["nope".into()]).is_err());
    }
}
