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
    unpacked: PathBuf,
    /// `/opt` trees: an ordered list of layers unpacked one over the other, by the hash of
    /// the list. Rebuilt on demand, so cleared at every start.
    layered: PathBuf,
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
        let unpacked = root.join("unpacked");
        fs::create_dir_all(&unpacked)
            .map_err(|e| StoreError::io(format!("create {}", unpacked.display()), e))?;
        let layered = root.join("layered");
        remove_tree(&layered);
        fs::create_dir_all(&layered)
            .map_err(|e| StoreError::io(format!("create {}", layered.display()), e))?;
        Ok(BlobDir {
            objects,
            staging,
            unpacked,
            layered,
        })
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

    /// Where `digest` is unpacked, if it is already (a stat: no unpacking, no waiting).
    pub(crate) fn unpacked_already(&self, digest: &CodeDigest) -> Option<PathBuf> {
        Some(self.unpacked.join(digest.to_hex())).filter(|target| target.is_dir())
    }

    /// Where the layers `digests` are unpacked together, if they are already.
    pub(crate) fn layered_already(&self, digests: &[CodeDigest]) -> Option<PathBuf> {
        Some(self.layered_path(digests)).filter(|target| target.is_dir())
    }

    fn layered_path(&self, digests: &[CodeDigest]) -> PathBuf {
        let mut hasher = Sha256::new();
        for digest in digests {
            hasher.update(digest.0);
        }
        self.layered
            .join(CodeDigest(hasher.finalize().into()).to_hex())
    }

    pub(crate) fn unpacked(&self, digest: &CodeDigest) -> Result<PathBuf, StoreError> {
        let target = self.unpacked.join(digest.to_hex());
        if target.is_dir() {
            return Ok(target);
        }
        // Unpack beside the target, then rename: a reader sees all of it or none of it.
        let temp = self.staging.join(format!("unpack-{}", unique_suffix()));
        let result = crate::package::extract(
            &self.path(digest),
            &temp,
            gust_model::limits::CODE_UNZIPPED_MAX_BYTES,
        );
        if let Err(error) = result {
            remove_tree(&temp);
            return Err(StoreError::Unpack(error));
        }
        publish_tree(&temp, target, "unpack code")
    }

    /// The layers `digests` unpacked in order into one tree (a later layer's files replace
    /// an earlier one's), made once per list and shared read-only.
    pub(crate) fn layered(&self, digests: &[CodeDigest]) -> Result<PathBuf, StoreError> {
        let target = self.layered_path(digests);
        if target.is_dir() {
            return Ok(target);
        }
        let temp = self.staging.join(format!("layers-{}", unique_suffix()));
        fs::create_dir(&temp).map_err(|e| StoreError::io("create layer tree", e))?;
        for digest in digests {
            if let Err(error) = crate::package::extract_over(
                &self.path(digest),
                &temp,
                gust_model::limits::CODE_UNZIPPED_MAX_BYTES,
            ) {
                remove_tree(&temp);
                return Err(StoreError::Unpack(error));
            }
        }
        publish_tree(&temp, target, "unpack layers")
    }

    /// Every stored package.
    pub(crate) fn digests(&self) -> Result<Vec<CodeDigest>, StoreError> {
        let entries =
            fs::read_dir(&self.objects).map_err(|e| StoreError::io("list packages", e))?;
        Ok(entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                CodeDigest::from_hex(name.strip_suffix(".zip")?)
            })
            .collect())
    }

    pub(crate) fn unpacked_digests(&self) -> Result<Vec<CodeDigest>, StoreError> {
        let entries =
            fs::read_dir(&self.unpacked).map_err(|e| StoreError::io("list unpacked code", e))?;
        Ok(entries
            .flatten()
            .filter_map(|e| CodeDigest::from_hex(&e.file_name().to_string_lossy()))
            .collect())
    }

    pub(crate) fn remove_unpacked(&self, digest: &CodeDigest) -> Result<(), StoreError> {
        remove_tree(&self.unpacked.join(digest.to_hex()));
        Ok(())
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

/// Moves a tree unpacked at `temp` into place at `target`: a reader sees all of it or none
/// of it. When another cold start put the same tree there first, that one is kept.
fn publish_tree(temp: &Path, target: PathBuf, what: &str) -> Result<PathBuf, StoreError> {
    match fs::rename(temp, &target) {
        Ok(()) => Ok(target),
        Err(_) if target.is_dir() => {
            remove_tree(temp);
            Ok(target)
        }
        Err(e) => {
            remove_tree(temp);
            Err(StoreError::io(what, e))
        }
    }
}

/// Removes a tree whose files were made read-only (directories stay writable, so removal
/// works without changing modes).
fn remove_tree(path: &Path) {
    if let Err(error) = fs::remove_dir_all(path) {
        if error.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), %error, "cannot remove unpacked code");
        }
    }
}
