//! Progress bars for long transfers, drawn on stderr only when it is a
//! terminal, so scripts and pipes see nothing of them.
//!
//! A command that moves many files draws one line for the whole run
//! ([`files`]) and calls [`hide_file_bars`] first: the single-file transfers
//! it reuses would otherwise each draw a bar of their own over it.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether [`bytes`] bars are hidden for the rest of the process.
static FILE_BARS_HIDDEN: AtomicBool = AtomicBool::new(false);

/// Hides every bar [`bytes`] makes from now on.
pub fn hide_file_bars() {
    FILE_BARS_HIDDEN.store(true, Ordering::Relaxed);
}

/// A byte-count progress bar for a transfer of `total` bytes (unknown if
/// `None`), labelled `label`.
pub fn bytes(label: &str, total: Option<u64>) -> ProgressBar {
    let bar = match total {
        Some(total) => ProgressBar::new(total),
        None => ProgressBar::no_length(),
    };
    if FILE_BARS_HIDDEN.load(Ordering::Relaxed) || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
        return bar;
    }
    let template = if total.is_some() {
        "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
    } else {
        "{prefix} {bytes} {bytes_per_sec}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label.to_owned());
    bar
}

/// The one line of a many-file transfer labelled `label`: its position and
/// length are bytes (the length grows as files are found), and its message
/// carries the file counts.
pub fn files(label: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
        return bar;
    }
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix} {msg}  {bytes}/{total_bytes}  {bytes_per_sec}  eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar.set_prefix(label.to_owned());
    bar
}
