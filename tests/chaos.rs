//! A short chaos run (`scripts/chaos.sh`): five peers of this build under
//! clients of the native API and S3 while a nemesis kills, hangs, cuts,
//! skews, fills and damages them; the run's own checker must find no
//! anomaly in the history. `SHOAL_CHAOS_MINUTES` sets the length (1.5 by
//! default); the long runs are `scripts/chaos.sh 60 5`.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::python;

/// A checker that finds nothing proves nothing: planted histories of each
/// anomaly kind must be caught, and allowed ones must not.
#[test]
fn the_checker_finds_planted_anomalies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(python) = python::or_skip(python::with_modules("boto3, blake3"), "the chaos run")
    else {
        return;
    };
    let status = Command::new(&python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "test_check.py",
        ])
        .current_dir(root.join("scripts/chaos"))
        .stdin(Stdio::null())
        .status()
        .expect("run pytest");
    assert!(status.success(), "scripts/chaos/test_check.py failed");
}

#[test]
fn a_short_chaos_run_finds_no_anomaly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(python) = python::or_skip(python::with_modules("boto3, blake3"), "the chaos run")
    else {
        return;
    };
    let minutes = std::env::var("SHOAL_CHAOS_MINUTES").unwrap_or_else(|_| "1.5".into());
    let work = tempfile::tempdir().expect("a temporary directory");
    // The run's report goes straight to the terminal: it is what to read
    // when this fails, and the history and logs stay in the kept folder.
    let status = Command::new(root.join("scripts/chaos.sh"))
        .args([minutes.as_str(), "5"])
        .current_dir(root)
        .env("SHOAL_BIN", env!("CARGO_BIN_EXE_shoal"))
        .env("SHOAL_PYTHON", &python)
        .env("CHAOS_WORK", work.path())
        .stdin(Stdio::null())
        .status()
        .expect("run scripts/chaos.sh");
    if !status.success() {
        let kept = work.keep();
        panic!(
            "the chaos run found anomalies or failed; its history, report and logs are in {}",
            kept.display()
        );
    }
}
