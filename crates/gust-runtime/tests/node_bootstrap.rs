//! The Node.js bootstrap's own tests (`bootstrap/node/test/*.test.js`: response streaming
//! against a fake Runtime API), run with `node --test` when `node` is on PATH.

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    #[test]
    fn node_bootstrap_tests_pass() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bootstrap/node/test");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("bootstrap/node/test")
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.to_string_lossy().ends_with(".test.js"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no tests in {}", dir.display());
        let output = match Command::new("node").arg("--test").args(&files).output() {
            Ok(output) => output,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("skipped: no `node` on PATH");
                return;
            }
            Err(error) => panic!("running node: {error}"),
        };
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "node --test failed:\n{report}");
    }
}
