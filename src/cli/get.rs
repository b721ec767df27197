//! `shoal get`: a verified download that never leaves a partial or wrong
//! file behind.
//!
//! Every chunk's MD5 and BLAKE3 is checked as it arrives, several chunks
//! at once, and verified chunks are written in order as they come. A
//! regular-file destination is written as a partial file beside it (see
//! `partial`), synced once at the end, and renamed over it only when
//! everything matched, so a failed or interrupted `get` leaves the
//! destination as it was, and the next `get` resumes after the chunks the
//! partial file holds. An existing destination that is not a regular file
//! (`/dev/null`, a FIFO, a terminal) is written in place, chunk by verified
//! chunk, as stdout is: renaming over a device would replace the device.
//! Symbolic links are followed to the file they name.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio::sync::mpsc;

use super::partial::Partial;
use super::verify::{ExpectedFile, Pieces, Reassembler, VerifyError};
use super::{attrs, file_name, progress, stdout_line};
use crate::api::StatResponse;
use crate::chunk::{FileAttributes, FileName};
use crate::client::{Client, chain};

/// Verified chunks queued for writing, bounding a download's memory.
const WRITE_QUEUE: usize = 4;
/// Chunks verified at once: one per core of the machine this was measured
/// on is enough to keep MD5, the slowest step, off the critical path.
const VERIFY_PARALLEL: usize = 3;
/// Attempts at a download when the file changes under it.
const GET_ATTEMPTS: usize = 3;
/// Symbolic links followed before giving up on a loop.
const MAX_LINKS: usize = 40;

/// Where a download goes.
#[derive(Debug, PartialEq, Eq)]
enum Destination {
    /// Standard output.
    Stdout,
    /// An existing file that is not a regular file, written in place.
    InPlace(PathBuf),
    /// A regular file (existing or not), replaced atomically.
    Replace(PathBuf),
}

/// `shoal get NAME [-o PATH]`: downloads a file, verified, to PATH (a file
/// or an existing directory; `-` for stdout; default: the name's last
/// segment in the current directory). With `preserve`, a regular file
/// written gets the mode and modification time the file was put with.
///
/// # Errors
/// The name is invalid or unknown, the destination is unusable, the peer
/// fails, the content does not verify, or the user interrupts. A
/// regular-file destination is then untouched.
pub async fn get(client: &Client, name: &str, output: Option<&Path>, preserve: bool) -> Result<()> {
    let name = file_name(name)?;
    let destination = destination(&name, output)?;
    for attempt in 1..=GET_ATTEMPTS {
        let stat = client.stat(&name).await?;
        let expected = ExpectedFile::from_stat(&stat)?;
        let attributes = kept_attributes(&stat, preserve);
        let size = expected.size;
        let sink = Sink::open(&destination, &expected, true)?;
        let (first, offset) = sink.resume_point();
        let kept = sink.partial.as_ref().map(|p| p.path().to_owned());
        if offset > 0 {
            eprintln!(
                "resuming {name} after {offset} verified bytes kept in {}",
                kept.as_deref().unwrap_or(Path::new("?")).display()
            );
        }
        let response = if offset == size {
            None
        } else {
            match client.download_from(&name, &stat.blake3, offset).await {
                Err(e) if e.is_precondition_failed() && attempt < GET_ATTEMPTS => continue,
                other => Some(other?),
            }
        };
        let resume_hint = || match &kept {
            Some(path) => format!(
                "; the verified part is kept in {} and running the same command again resumes",
                path.display()
            ),
            None => String::new(),
        };
        tokio::select! {
            received = receive(response, expected.rest_from(first), sink, &attributes) => {
                received.with_context(|| format!("download of {name} failed{}", resume_hint()))?;
            }
            () = super::interrupted() => bail!("download of {name} interrupted{}", resume_hint()),
        }
        if let Destination::Replace(path) | Destination::InPlace(path) = &destination {
            stdout_line(&format!(
                "{name}  {size} bytes  verified  -> {}",
                path.display()
            ))?;
        }
        return Ok(());
    }
    bail!("{name} kept changing while it was being downloaded; try again")
}

/// Downloads `name` to the regular file `path` as [`get`] does (every
/// chunk checked against the manifest, the file synced and renamed into
/// place only when all matched, with its attributes if `preserve`),
/// without printing anything; returns the file's size. For `get -r`, whose caller has already made `path`'s
/// directory safe to write in, and which resumes file by file: a failed
/// download leaves no partial file.
///
/// # Errors
/// As [`get`]; `path` is then untouched.
pub(super) async fn download_verified(
    client: &Client,
    name: &FileName,
    path: &Path,
    preserve: bool,
) -> Result<u64> {
    let destination = Destination::Replace(path.to_owned());
    for attempt in 1..=GET_ATTEMPTS {
        let stat = client.stat(name).await?;
        let expected = ExpectedFile::from_stat(&stat)?;
        let attributes = kept_attributes(&stat, preserve);
        let sink = Sink::open(&destination, &expected, false)?;
        let (first, offset) = sink.resume_point();
        let response = if offset == expected.size {
            None
        } else {
            match client.download_from(name, &stat.blake3, offset).await {
                Err(e) if e.is_precondition_failed() && attempt < GET_ATTEMPTS => continue,
                other => Some(other?),
            }
        };
        receive(response, expected.rest_from(first), sink, &attributes).await?;
        return Ok(expected.size);
    }
    bail!("{name} kept changing while it was being downloaded; try again")
}

/// The attributes a download restores: those the file was put with, or
/// none when they are not to be preserved.
fn kept_attributes(stat: &StatResponse, preserve: bool) -> FileAttributes {
    if preserve {
        attrs::of_report(stat.mode.as_deref(), stat.mtime.as_deref())
    } else {
        FileAttributes::default()
    }
}

/// Decides where the download goes, before anything is downloaded.
fn destination(name: &FileName, output: Option<&Path>) -> Result<Destination> {
    let from_name = || {
        name.base_name()
            .map(PathBuf::from)
            .ok_or_else(|| anyhow!("cannot derive a local file name from {name:?}; pass -o PATH"))
    };
    let path = match output {
        Some(p) if p == Path::new("-") => return Ok(Destination::Stdout),
        Some(p) if p.as_os_str().is_empty() => bail!("the output path is empty"),
        Some(p) if resolve_links(p)?.is_dir() => p.join(from_name()?),
        Some(p) => p.to_owned(),
        None => from_name()?,
    };
    let path = resolve_links(&path)?;
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => bail!("{} is a directory", path.display()),
        Ok(meta) if meta.is_file() => Ok(Destination::Replace(path)),
        Ok(_) => Ok(Destination::InPlace(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Destination::Replace(path)),
        Err(e) => Err(e).with_context(|| format!("cannot use {}", path.display())),
    }
}

/// Follows symbolic links from `path` to the path they finally name, which
/// need not exist yet (a dangling link names the file to create).
fn resolve_links(path: &Path) -> Result<PathBuf> {
    let mut current = path.to_owned();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&current)
                    .with_context(|| format!("cannot read the link {}", current.display()))?;
                current = match current.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(current),
        }
    }
    bail!("too many levels of symbolic links at {}", path.display())
}

/// Where verified bytes go, and for a regular file the partial file to
/// finish once everything matched.
struct Sink {
    out: Box<dyn Write + Send>,
    partial: Option<Partial>,
}

impl Sink {
    /// Opens the destination; a regular file's partial file keeps the
    /// chunks of `expected` an earlier download verified, and with
    /// `keep_on_failure` is left for a later download if this one fails.
    fn open(
        destination: &Destination,
        expected: &ExpectedFile,
        keep_on_failure: bool,
    ) -> Result<Sink> {
        let (out, partial): (Box<dyn Write + Send>, _) = match destination {
            // Standard output as a plain file: `io::stdout()` would buffer
            // by line and copy every chunk once more.
            Destination::Stdout => {
                let fd = io::stdout()
                    .as_fd()
                    .try_clone_to_owned()
                    .context("cannot use standard output")?;
                (Box::new(File::from(fd)), None)
            }
            Destination::InPlace(path) => {
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?;
                (Box::new(file), None)
            }
            Destination::Replace(path) => {
                let partial = Partial::open(path, expected, keep_on_failure)?;
                (Box::new(partial.writer()?), Some(partial))
            }
        };
        Ok(Sink { out, partial })
    }

    /// The chunks, and bytes, already in hand.
    fn resume_point(&self) -> (usize, u64) {
        self.partial.as_ref().map_or((0, 0), Partial::resume_point)
    }
}

/// Streams the response through verification into the destination.
///
/// Three stages overlap: this task reads the network and cuts the bytes
/// into chunks; up to [`VERIFY_PARALLEL`] chunks are checked at once on
/// blocking threads (each chunk's digests are independent); one writer
/// thread writes the verified chunks in order. Each byte is hashed once per
/// algorithm: every chunk's MD5 and BLAKE3 are checked against the
/// manifest, and since the manifest lists the chunks in order with their
/// sizes, a separate pass over the whole file would only hash every byte a
/// second time to re-check the manifest against itself.
/// `response` is `None` when everything was in hand already. A regular
/// file gets `attributes` before it is renamed into place.
async fn receive(
    response: Option<reqwest::Response>,
    expected: ExpectedFile,
    sink: Sink,
    attributes: &FileAttributes,
) -> Result<()> {
    let Sink { out, partial } = sink;
    let bar = progress::bytes("get", Some(expected.size));
    let (tx, rx) = mpsc::channel::<Pieces>(WRITE_QUEUE);
    let writer = tokio::task::spawn_blocking({
        let bar = bar.clone();
        move || write_in_order(rx, out, &bar)
    });

    let verified = match response {
        Some(response) => verify_stream(response, &expected, tx).await,
        None => {
            drop(tx);
            Ok(())
        }
    };
    let written = writer.await.context("the writer thread failed")?;
    bar.finish_and_clear();
    // A chunk that failed its check names the problem precisely; a write
    // error matters only if everything verified.
    verified?;
    written?;
    match partial {
        Some(partial) => partial.finish(attributes),
        None => Ok(()),
    }
}

/// Reads the response, verifies its chunks in parallel and hands them to
/// the writer in order. Stops at the first failure.
async fn verify_stream(
    response: reqwest::Response,
    expected: &ExpectedFile,
    to_writer: mpsc::Sender<Pieces>,
) -> Result<()> {
    let mut reassembler = Reassembler::new(expected);
    let mut body = response.bytes_stream();
    let mut checking = FuturesOrdered::new();
    while let Some(piece) = body.next().await {
        let piece = piece.map_err(|e| anyhow!("the connection broke: {}", chain(&e)))?;
        for (chunk, data) in reassembler.push(piece)? {
            if checking.len() >= VERIFY_PARALLEL
                && let Some(checked) = checking.next().await
            {
                pass_on(checked, &to_writer).await?;
            }
            checking.push_back(tokio::task::spawn_blocking(move || {
                chunk.check_pieces(&data).map(|()| data)
            }));
        }
    }
    while let Some(checked) = checking.next().await {
        pass_on(checked, &to_writer).await?;
    }
    reassembler.finish()?;
    Ok(())
}

/// Hands a checked chunk to the writer, or returns why it failed.
async fn pass_on(
    checked: Result<Result<Pieces, VerifyError>, tokio::task::JoinError>,
    to_writer: &mpsc::Sender<Pieces>,
) -> Result<()> {
    let data = checked.context("a verifying thread failed")??;
    // A closed channel means the writer failed; its error is reported.
    let _ = to_writer.send(data).await;
    Ok(())
}

/// Writes verified chunks in the order they come.
fn write_in_order(
    mut chunks: mpsc::Receiver<Pieces>,
    mut out: Box<dyn Write + Send>,
    bar: &indicatif::ProgressBar,
) -> Result<()> {
    while let Some(pieces) = chunks.blocking_recv() {
        for piece in pieces {
            out.write_all(&piece).context("cannot write the download")?;
            bar.inc(piece.len() as u64);
        }
    }
    out.flush().context("cannot write the download")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> FileName {
        FileName::new(s).unwrap()
    }

    #[test]
    fn destinations_follow_the_rules() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(
            destination(&name("x"), Some(Path::new("-"))).unwrap(),
            Destination::Stdout
        );
        assert!(destination(&name("x"), Some(Path::new(""))).is_err());
        assert_eq!(
            destination(&name("a/b.txt"), Some(d)).unwrap(),
            Destination::Replace(d.join("b.txt"))
        );
        assert_eq!(
            destination(&name("x"), Some(Path::new("/dev/null"))).unwrap(),
            Destination::InPlace(PathBuf::from("/dev/null"))
        );
        std::fs::create_dir(d.join("taken")).unwrap();
        assert!(
            destination(&name("taken"), Some(d)).is_err(),
            "a directory is never replaced"
        );

        std::os::unix::fs::symlink("real.txt", d.join("link")).unwrap();
        assert_eq!(
            destination(&name("x"), Some(&d.join("link"))).unwrap(),
            Destination::Replace(d.join("real.txt")),
            "a link is followed, even dangling"
        );
        std::os::unix::fs::symlink("loop", d.join("loop")).unwrap();
        assert!(destination(&name("x"), Some(&d.join("loop"))).is_err());
    }
}
