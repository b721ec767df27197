//! A short chaos run (`scripts/chaos.sh`): five peers of this build under
//! clients of the native API and S3 while a nemesis kills, hangs, cuts,
//! skews, fills and damages them; the run's own checker must find no
//! anomaly in the history. `SHOAL_CHAOS_MINUTES` sets the length (1.5 by
//! default); the long runs are `scripts/chaos.sh 60 5`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A Python with the run's clients (boto3, blake3): `SHOAL_PYTHON`, else
/// the project's `.venv`; `Err` says why there is none.
fn python(root: &Path) -> Result<PathBuf, String> {
    let candidate = match std::env::var_os("SHOAL_PYTHON") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => root.join(".venv/bin/python"),
    };
    let usable = Command::new(&candidate)
        .args(["-c", "import boto3, blake3"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if usable {
        Ok(candidate)
    } else {
        Err(format!(
            "{} is missing or lacks boto3 or blake3 (run scripts/test.sh once)",
            candidate.display()
        ))
    }
}

#[test]
fn a_short_chaos_run_finds_no_anomaly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = match python(root) {
        Ok(python) => python,
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("the chaos run cannot run in CI: {why}")
        }
        Err(why) => {
            let _ = writeln!(std::io::stderr(), "skipping the chaos run: {why}");
            return;
        }
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
