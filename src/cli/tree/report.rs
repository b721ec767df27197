//! Progress and the summary of a tree transfer.
//!
//! While it runs: one progress line on stderr when stderr is a terminal
//! (files done of those found so far, `+` while more may come; bytes, rate
//! and ETA), one `skipped: PATH: why` notice per thing skipped by
//! convention and one `error: PATH-OR-NAME: why` line per failure, printed
//! as they happen. At the end, one line on stdout, or with `--json` one
//! object whose fields are a stable contract:
//!
//! | field | meaning |
//! |---|---|
//! | `files` | every file considered, directories' markers that failed included: the sum of the counts below |
//! | `directories` | directories whose markers were stored (put) or made or found (get) |
//! | `stored` (put) / `fetched` (get) | files sent to the swarm / written to the directory this run |
//! | `unchanged` | files already there with the same size and content (and for put, mode and time) |
//! | `skipped` (put only) | links, FIFOs, sockets and devices left out by convention |
//! | `failed` | files that could not be transferred |
//! | `bytes` | the size of the files stored or fetched |
//! | `seconds` | how long the run took |
//! | `failures` | `[{"path": local path, "error"}]` (put) or `[{"name": stored name, "error"}]` (get) |

use std::io::Write;
use std::time::Instant;

use anyhow::{Result, bail};
use indicatif::{HumanBytes, ProgressBar};
use serde::Serialize;

use super::super::{print_json, progress, stdout_line};

/// Which command is reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `put -r`: local files to the swarm.
    Put,
    /// `get -r`: stored files to a local directory.
    Get,
}

impl Direction {
    fn verb(self) -> &'static str {
        match self {
            Direction::Put => "put",
            Direction::Get => "get",
        }
    }

    fn transferred(self) -> &'static str {
        match self {
            Direction::Put => "stored",
            Direction::Get => "fetched",
        }
    }
}

/// What a failure or notice is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Subject {
    /// A local path (put).
    Path(String),
    /// A stored name (get).
    Name(String),
}

impl Subject {
    /// A local path, shown as the user would type it.
    pub fn path(path: &std::path::Path) -> Subject {
        Subject::Path(path.display().to_string())
    }

    fn text(&self) -> &str {
        match self {
            Subject::Path(s) | Subject::Name(s) => s,
        }
    }
}

/// How one file went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored or fetched: this many bytes.
    Transferred(u64),
    /// Already there: this many bytes.
    Unchanged(u64),
    /// Left out by convention, and why.
    Skipped(String),
    /// Could not be transferred, and why.
    Failed(String),
    /// A directory's marker stored, or its directory made or found: counted
    /// apart from files.
    Directory,
}

#[derive(Debug, Serialize)]
struct Failure {
    #[serde(flatten)]
    subject: Subject,
    error: String,
}

/// The JSON summary; see the module documentation.
#[derive(Debug, Serialize)]
struct Summary<'a> {
    files: u64,
    directories: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    stored: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fetched: Option<u64>,
    unchanged: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<u64>,
    failed: u64,
    bytes: u64,
    seconds: f64,
    failures: &'a [Failure],
}

/// The tally of a run, and its progress line.
#[derive(Debug)]
pub struct Report {
    direction: Direction,
    started: Instant,
    bar: ProgressBar,
    /// Files found so far, and whether more may come.
    found: u64,
    finding: bool,
    transferred: u64,
    unchanged: u64,
    skipped: u64,
    directories: u64,
    bytes: u64,
    failures: Vec<Failure>,
}

impl Report {
    /// A report for a run starting now.
    pub fn new(direction: Direction) -> Report {
        // Single-file transfers reused by the tree commands must not draw
        // bars of their own over this one.
        progress::hide_file_bars();
        let report = Report {
            direction,
            started: Instant::now(),
            bar: progress::files(direction.verb()),
            found: 0,
            finding: true,
            transferred: 0,
            unchanged: 0,
            skipped: 0,
            directories: 0,
            bytes: 0,
            failures: Vec::new(),
        };
        report.refresh();
        report
    }

    /// The progress line, for counting bytes as they move.
    pub fn bar(&self) -> ProgressBar {
        self.bar.clone()
    }

    /// One more file to do, of `size` bytes as far as is known.
    pub fn found(&mut self, size: u64) {
        self.found += 1;
        self.bar.inc_length(size);
        self.refresh();
    }

    /// No more files will be found.
    pub fn found_all(&mut self) {
        self.finding = false;
        self.refresh();
    }

    /// Whether some file failed so far.
    pub fn has_failures(&self) -> bool {
        !self.failures.is_empty()
    }

    fn done(&self) -> u64 {
        self.transferred
            + self.unchanged
            + self.skipped
            + self.directories
            + self.failures.len() as u64
    }

    fn refresh(&self) {
        let more = if self.finding { "+" } else { "" };
        self.bar
            .set_message(format!("files {}/{}{more}", self.done(), self.found));
    }

    /// Records how one file went: counts it and prints its notice or error
    /// line, if any. Bytes of a transferred file are counted on the bar as
    /// they move; `Unchanged` ones are counted here.
    pub fn record(&mut self, subject: Subject, outcome: Outcome) {
        match outcome {
            Outcome::Transferred(bytes) => {
                self.transferred += 1;
                self.bytes += bytes;
            }
            Outcome::Unchanged(bytes) => {
                self.unchanged += 1;
                self.bar.inc(bytes);
            }
            Outcome::Skipped(reason) => {
                self.skipped += 1;
                self.stderr_line(&format!("skipped: {}: {reason}", subject.text()));
            }
            Outcome::Failed(error) => {
                self.stderr_line(&format!("error: {}: {}", subject.text(), one_line(&error)));
                self.failures.push(Failure { subject, error });
            }
            Outcome::Directory => self.directories += 1,
        }
        self.refresh();
    }

    /// A line on stderr that does not tear the progress line.
    fn stderr_line(&self, line: &str) {
        self.bar.suspend(|| {
            // Nowhere to report a failure to write to stderr.
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        });
    }

    /// Clears the progress line without a summary (the run was stopped).
    pub fn abandon(&self) {
        self.bar.finish_and_clear();
    }

    /// Clears the progress line and prints the summary.
    ///
    /// # Errors
    /// Some file failed (the message says how many), or stdout is gone.
    pub fn finish(self, json: bool) -> Result<()> {
        self.bar.finish_and_clear();
        let seconds = self.started.elapsed().as_secs_f64();
        let failed = self.failures.len() as u64;
        let files = self.done() - self.directories;
        let put = self.direction == Direction::Put;
        if json {
            print_json(&Summary {
                files,
                directories: self.directories,
                stored: put.then_some(self.transferred),
                fetched: (!put).then_some(self.transferred),
                unchanged: self.unchanged,
                skipped: put.then_some(self.skipped),
                failed,
                bytes: self.bytes,
                seconds: (seconds * 1000.0).round() / 1000.0,
                failures: &self.failures,
            })?;
        } else {
            let skipped = if put {
                format!(", {} skipped", self.skipped)
            } else {
                String::new()
            };
            let directories = match self.directories {
                0 => String::new(),
                1 => " and 1 directory".to_owned(),
                n => format!(" and {n} directories"),
            };
            stdout_line(&format!(
                "{} {}{directories} in {seconds:.2} s: {} {} ({}), {} unchanged{skipped}, {failed} failed",
                self.direction.verb(),
                files_text(files),
                self.transferred,
                self.direction.transferred(),
                HumanBytes(self.bytes),
                self.unchanged,
            ))?;
        }
        if failed > 0 {
            bail!(
                "{failed} of {} failed ({} -r)",
                files_text(files),
                self.direction.verb()
            );
        }
        Ok(())
    }
}

/// `1 file`, `2 files`.
fn files_text(n: u64) -> String {
    if n == 1 {
        "1 file".to_owned()
    } else {
        format!("{n} files")
    }
}

/// Messages from the file system and peers are one line already; this
/// keeps a stray newline from breaking the one-line-per-failure rule.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
