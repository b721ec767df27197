//! The S3 endpoint as real clients see it: runs the Python suite in
//! `tests/s3` (boto3, the AWS CLI, rclone, hand-signed `aws-chunked`
//! requests) against a swarm of this build's `shoal`.
//!
//! Those clients are Python packages, so the suite lives in pytest rather
//! than here; this test is what makes `cargo test` run it. The Python comes
//! from `SHOAL_PYTHON`, else the project's `.venv` (which `scripts/test.sh`
//! sets up with the pinned clients). Without a Python that has boto3 and
//! pytest the test says so and passes, except in CI (`CI` set), where
//! passing without testing would hide a broken endpoint.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The suite, relative to the package root.
const SUITE: &str = "tests/s3";

/// A Python that can run the suite: `SHOAL_PYTHON`, else `.venv/bin/python`
/// under the package root; `Err` says why there is none.
fn python(root: &Path) -> Result<PathBuf, String> {
    let candidate = match std::env::var_os("SHOAL_PYTHON") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => root.join(".venv/bin/python"),
    };
    if !candidate.exists() {
        return Err(format!(
            "{} does not exist (set SHOAL_PYTHON, or run scripts/test.sh to create .venv)",
            candidate.display()
        ));
    }
    let usable = Command::new(&candidate)
        .args(["-c", "import boto3, pytest, requests"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if usable {
        Ok(candidate)
    } else {
        Err(format!(
            "{} lacks boto3, pytest or requests (pip install -r {SUITE}/requirements.txt)",
            candidate.display()
        ))
    }
}

#[test]
fn s3_clients_pass_against_a_swarm() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = match python(root) {
        Ok(python) => python,
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("the S3 client suite cannot run in CI: {why}")
        }
        Err(why) => {
            // Straight to stderr: the test harness would swallow eprintln!
            // output of a passing test, and a skip must be seen.
            let _ = writeln!(std::io::stderr(), "skipping the S3 client suite: {why}");
            return;
        }
    };
    // Output goes straight to the terminal as it comes: the suite takes a
    // while, and its own report is what to read when it fails.
    let status = Command::new(&python)
        .args(["-m", "pytest", SUITE])
        .current_dir(root)
        .env("SHOAL_BIN", env!("CARGO_BIN_EXE_shoal"))
        .env_remove("SHOAL_TEST_AGAINST")
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        status.success(),
        "the S3 client suite failed ({status}); its report is above"
    );
}
