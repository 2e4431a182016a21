//! Files in the data directory that the server and the CLI share: the credentials (owner
//! only) and where the running server listens.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine;
use gust_api::Credentials;
use serde::{Deserialize, Serialize};

const CREDENTIALS_FILE: &str = "credentials.json";
const SERVER_FILE: &str = "server.json";

#[derive(Debug, Serialize, Deserialize)]
struct CredentialsFile {
    access_key_id: String,
    secret_access_key: String,
}

/// What `gust serve` records about itself for local clients.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerInfo {
    /// `http://host:port`.
    pub endpoint: String,
    /// Region the server answers for.
    pub region: String,
    /// Account id in its ARNs.
    pub account_id: String,
    /// Whether SigV4 is off.
    pub no_auth: bool,
}

/// Creates the data directory, private to its owner.
pub fn create(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))
}

/// Where code uploads wait to be decoded (as unlinked files: a crash leaves nothing).
pub fn upload_dir(dir: &Path) -> Result<PathBuf> {
    let uploads = dir.join("uploads");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&uploads)
        .with_context(|| format!("cannot create {}", uploads.display()))?;
    Ok(uploads)
}

fn random_string(bytes: usize) -> Result<String> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buffer))
}

/// 32 random bytes.
pub fn random_key() -> Result<[u8; 32]> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    Ok(key)
}

/// A key kept in the data directory (created at first use, readable by the owner only), so
/// what it signs stays valid across restarts.
pub fn persistent_key(data_dir: &Path, name: &str) -> Result<[u8; 32]> {
    let path = data_dir.join(name);
    match fs::read(&path) {
        Ok(bytes) if bytes.len() == 32 => {
            let mut key = [0u8; 32];
            key.copy_from_slice(&bytes);
            Ok(key)
        }
        Ok(_) => bail!(
            "{} is not a 32-byte key; remove it to make a new one",
            path.display()
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = random_key()?;
            write_private(&path, &key)?;
            Ok(key)
        }
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn new_credentials() -> Result<Credentials> {
    // AWS access key ids are 20 upper-case alphanumerics; keep that shape so tools that
    // check it are happy.
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let suffix: String = raw
        .iter()
        .map(|b| ALPHABET[usize::from(b % 32)] as char)
        .collect();
    Ok(Credentials {
        access_key_id: format!("GKIA{suffix}"),
        secret_access_key: random_string(30)?,
    })
}

/// How the server got its credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    /// `GUST_ACCESS_KEY_ID` / `GUST_SECRET_ACCESS_KEY`.
    Environment,
    /// Read from the data directory.
    Stored,
    /// Created now, on first start.
    Created,
}

/// The server's credentials: explicit ones, else the stored ones, else new ones (stored
/// with mode 0600).
pub fn server_credentials(
    dir: &Path,
    explicit: Option<Credentials>,
) -> Result<(Credentials, CredentialSource)> {
    if let Some(credentials) = explicit {
        return Ok((credentials, CredentialSource::Environment));
    }
    let path = dir.join(CREDENTIALS_FILE);
    if path.exists() {
        return Ok((read_credentials(dir)?, CredentialSource::Stored));
    }
    let credentials = new_credentials()?;
    let file = CredentialsFile {
        access_key_id: credentials.access_key_id.clone(),
        secret_access_key: credentials.secret_access_key.clone(),
    };
    write_private(&path, &serde_json::to_vec_pretty(&file)?)?;
    Ok((credentials, CredentialSource::Created))
}

/// Reads the stored credentials (for the CLI).
pub fn read_credentials(dir: &Path) -> Result<Credentials> {
    let path = dir.join(CREDENTIALS_FILE);
    let mode = fs::metadata(&path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} is readable by other users (mode {:o}); run: chmod 600 {}",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    let text = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: CredentialsFile = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a Gust credentials file", path.display()))?;
    Ok(Credentials {
        access_key_id: file.access_key_id,
        secret_access_key: file.secret_access_key,
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .with_context(|| format!("cannot write {}", temp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Records where the server listens.
pub fn write_server_info(dir: &Path, info: &ServerInfo) -> Result<()> {
    write_private(&dir.join(SERVER_FILE), &serde_json::to_vec_pretty(info)?)
}

/// Forgets the server (on shutdown).
pub fn remove_server_info(dir: &Path) {
    let _ = fs::remove_file(dir.join(SERVER_FILE));
}

/// Reads where a local server listens.
pub fn read_server_info(dir: &Path) -> Result<ServerInfo> {
    let path: PathBuf = dir.join(SERVER_FILE);
    let text = fs::read(&path).with_context(|| {
        format!(
            "no running Gust server recorded in {} (start one with `gust serve`, or pass --endpoint)",
            dir.display()
        )
    })?;
    serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a Gust server file", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_created_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (first, source) = server_credentials(dir.path(), None).unwrap();
        assert_eq!(source, CredentialSource::Created);
        assert_eq!(first.access_key_id.len(), 20);
        let mode = fs::metadata(dir.path().join(CREDENTIALS_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, source) = server_credentials(dir.path(), None).unwrap();
        assert_eq!((again, source), (first.clone(), CredentialSource::Stored));
        let explicit = Credentials {
            access_key_id: "A".into(),
            secret_access_key: "B".into(),
        };
        assert_eq!(
            server_credentials(dir.path(), Some(explicit.clone()))
                .unwrap()
                .0,
            explicit
        );
    }

    #[test]
    fn world_readable_credentials_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        server_credentials(dir.path(), None).unwrap();
        let path = dir.path().join(CREDENTIALS_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_credentials(dir.path()).unwrap_err().to_string();
        assert!(err.contains("readable by other users"), "{err}");
    }
}
