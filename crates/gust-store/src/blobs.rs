//! Content-addressed code packages: `code/sha256/<hex>.zip`, written via a temp file and
//! an atomic rename, stored once per digest.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use gust_model::{CodeDigest, CodeRef};
use sha2::{Digest, Sha256};

use crate::StoreError;

#[derive(Debug)]
pub(crate) struct BlobDir {
    objects: PathBuf,
    staging: PathBuf,
}

/// A package written to a temporary file and hashed, not yet committed. Dropping it
/// removes the temporary file.
#[derive(Debug)]
pub struct StagedBlob {
    temp: Option<PathBuf>,
    /// Digest and size of the package.
    pub code: CodeRef,
}

impl Drop for StagedBlob {
    fn drop(&mut self) {
        if let Some(path) = self.temp.take() {
            let _ = fs::remove_file(path);
        }
    }
}

impl BlobDir {
    pub(crate) fn open(root: &Path) -> Result<Self, StoreError> {
        let objects = root.join("sha256");
        let staging = root.join("staging");
        fs::create_dir_all(&objects)
            .map_err(|e| StoreError::io(format!("create {}", objects.display()), e))?;
        // Whatever is in staging was left by a crash before commit: nothing refers to it.
        let _ = fs::remove_dir_all(&staging);
        fs::create_dir_all(&staging)
            .map_err(|e| StoreError::io(format!("create {}", staging.display()), e))?;
        Ok(BlobDir { objects, staging })
    }

    pub(crate) fn path(&self, digest: &CodeDigest) -> PathBuf {
        self.objects.join(format!("{}.zip", digest.to_hex()))
    }

    pub(crate) fn stage(&self, bytes: &[u8]) -> Result<StagedBlob, StoreError> {
        let digest = CodeDigest(Sha256::digest(bytes).into());
        let temp = self
            .staging
            .join(format!("{}.{}", digest.to_hex(), unique_suffix()));
        let mut staged = StagedBlob {
            temp: None,
            code: CodeRef {
                digest,
                size: bytes.len() as u64,
            },
        };
        // Always staged, even when the digest is stored already: the stored copy may be
        // collected before this one commits, and renaming equal bytes over it is harmless.
        let mut file =
            fs::File::create(&temp).map_err(|e| StoreError::io("create staged package", e))?;
        staged.temp = Some(temp);
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| StoreError::io("write staged package", e))?;
        Ok(staged)
    }

    /// Moves a staged package into place (called with the database lock held).
    pub(crate) fn commit(&self, mut staged: StagedBlob) -> Result<(), StoreError> {
        let target = self.path(&staged.code.digest);
        match staged.temp.take() {
            Some(temp) => {
                fs::rename(&temp, &target).map_err(|e| StoreError::io("store package", e))
            }
            None => Err(StoreError::io(
                "store package",
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "staged package committed twice",
                ),
            )),
        }
    }

    pub(crate) fn remove(&self, digest: &CodeDigest) -> Result<(), StoreError> {
        match fs::remove_file(self.path(digest)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("remove package", e)),
        }
    }
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
