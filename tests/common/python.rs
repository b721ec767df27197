//! The Python the client-driven tests run (boto3, the AWS CLI, rclone, the
//! browser driver, the chaos run): `SHOAL_PYTHON`, else the project's
//! `.venv`, which `scripts/test.sh` makes. Without it a test skips, saying
//! why, except in CI, where a missing client is a failure.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A Python that imports `modules` (comma-separated, as in `import`), or
/// why there is none.
pub fn with_modules(modules: &str) -> Result<PathBuf, String> {
    let python = match std::env::var_os("SHOAL_PYTHON") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    };
    let usable = Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if usable {
        Ok(python)
    } else {
        Err(format!(
            "{} is missing or cannot import {modules} (run scripts/test.sh, or set SHOAL_PYTHON)",
            python.display()
        ))
    }
}

/// `found`, or `None` after saying on stderr that `what` is skipped and
/// why; in CI the missing tool fails the test instead.
pub fn or_skip<T>(found: Result<T, String>, what: &str) -> Option<T> {
    match found {
        Ok(found) => Some(found),
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("{what} cannot run in CI: {why}")
        }
        Err(why) => {
            // Straight to stderr: the harness swallows eprintln! output of
            // a passing test, and a skip must be seen.
            let _ = writeln!(std::io::stderr(), "skipping {what}: {why}");
            None
        }
    }
}
