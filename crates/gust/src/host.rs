//! What this host offers functions: which interpreters are on `PATH`.

use std::path::{Path, PathBuf};

use gust_model::{RuntimeCatalog, RuntimeFamily};

/// Finds an executable on `path_var` (a `PATH`-style list).
pub fn find_executable(name: &str, path_var: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    path_var
        .split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The runtime families whose interpreter is present.
pub fn probe_runtimes(path_var: &str) -> RuntimeCatalog {
    let mut families = Vec::new();
    if find_executable("python3", path_var).is_some() {
        families.push(RuntimeFamily::Python);
    }
    if find_executable("node", path_var).is_some() {
        families.push(RuntimeFamily::Nodejs);
    }
    RuntimeCatalog::new(families)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probing_follows_path() {
        let dir = tempfile::tempdir().unwrap();
        let empty = probe_runtimes(dir.path().to_str().unwrap());
        assert_eq!(
            empty.supported_ids(),
            ["provided", "provided.al2", "provided.al2023"]
        );
        let python = dir.path().join("python3");
        std::fs::write(&python, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
        let catalog = probe_runtimes(dir.path().to_str().unwrap());
        assert!(catalog.check("python3.12").is_ok());
        assert!(catalog.check("nodejs20.x").is_err());
    }
}
