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

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::python;

/// The suite, relative to the package root.
const SUITE: &str = "tests/s3";

#[test]
fn s3_clients_pass_against_a_swarm() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(python) = python::or_skip(
        python::with_modules("boto3, pytest, requests"),
        "the S3 client suite",
    ) else {
        return;
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
