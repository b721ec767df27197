//! `shoal put` and `shoal get`: streaming transfers with end-to-end checks.
//!
//! `put` hashes a regular file before sending it and gives the peer that
//! hash, so content damaged on the way (or a file changed mid-upload) is
//! refused before anything becomes visible. `get` verifies every chunk's MD5
//! and BLAKE3 as it arrives and the whole file's BLAKE3 at the end, writing
//! to a temporary file beside the destination that is renamed into place
//! only when everything matched; a failed `get` leaves the destination as it
//! was. Both hold a bounded amount of the file in memory.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::io::ReaderStream;

use super::verify::{ExpectedChunk, ExpectedFile, Reassembler, VerifyError};
use super::{file_name, print_json, progress};
use crate::chunk::{Blake3Hash, FileName};
use crate::client::{Client, chain};

/// Read size for hashing and sending local files.
const READ_BUFFER: usize = 256 * 1024;
/// Verified chunks queued for writing, bounding a download's memory.
const WRITE_QUEUE: usize = 4;
/// Attempts at a download when the file changes under it.
const GET_ATTEMPTS: usize = 3;

/// `shoal put PATH [--name NAME]`: uploads a file (or stdin, for `-`).
///
/// # Errors
/// The local file cannot be read, the name is invalid, or the peer refuses
/// or cannot be reached.
pub async fn put(client: &Client, path: &str, name: Option<&str>, json: bool) -> Result<()> {
    let response = if path == "-" {
        let name = name.ok_or_else(|| anyhow!("reading from stdin needs --name NAME"))?;
        let name = file_name(name)?;
        let bar = progress::bytes("put", None);
        let stream = ReaderStream::with_capacity(tokio::io::stdin(), READ_BUFFER).inspect({
            let bar = bar.clone();
            move |piece| count(&bar, piece)
        });
        let response = client
            .put(&name, reqwest::Body::wrap_stream(stream), None, None)
            .await;
        bar.finish_and_clear();
        response?
    } else {
        put_file(client, Path::new(path), name).await?
    };
    if json {
        print_json(&response)
    } else {
        println!(
            "{}  {} bytes  blake3 {}",
            response.name, response.size, response.blake3
        );
        Ok(())
    }
}

fn count(bar: &indicatif::ProgressBar, piece: &std::io::Result<Bytes>) {
    if let Ok(piece) = piece {
        bar.inc(piece.len() as u64);
    }
}

async fn put_file(
    client: &Client,
    path: &Path,
    name: Option<&str>,
) -> Result<crate::api::PutResponse> {
    let shown = path.display();
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {shown}"))?;
    if meta.is_dir() {
        bail!("{shown} is a directory; shoal stores files");
    }
    let name = match name {
        Some(name) => file_name(name)?,
        None => {
            let base = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                anyhow!("cannot derive a file name from {shown}; pass --name NAME")
            })?;
            file_name(base)?
        }
    };
    let file = File::open(path).with_context(|| format!("cannot open {shown}"))?;
    // Only a regular file can be read twice: hash first, then send.
    let (length, expected) = if meta.is_file() {
        let bar = progress::bytes("hash", Some(meta.len()));
        let owned = path.to_owned();
        let hashed = tokio::task::spawn_blocking({
            let bar = bar.clone();
            move || hash_file(&owned, &bar)
        })
        .await?;
        bar.finish_and_clear();
        (
            Some(meta.len()),
            Some(hashed.with_context(|| format!("cannot read {shown}"))?),
        )
    } else {
        (None, None)
    };
    let bar = progress::bytes("put", length);
    let stream =
        ReaderStream::with_capacity(tokio::fs::File::from_std(file), READ_BUFFER).inspect({
            let bar = bar.clone();
            move |piece| count(&bar, piece)
        });
    let result = client
        .put(&name, reqwest::Body::wrap_stream(stream), length, expected)
        .await;
    bar.finish_and_clear();
    result.map_err(|e| match e {
        crate::client::ClientError::Refused { status, message } if status.as_u16() == 422 => {
            anyhow!("{message} (did {shown} change while it was being uploaded?)")
        }
        other => other.into(),
    })
}

fn hash_file(path: &Path, bar: &indicatif::ProgressBar) -> std::io::Result<Blake3Hash> {
    let mut file = File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buf[..n]);
        bar.inc(n as u64);
    }
}

/// Where a download goes.
enum Destination {
    Stdout,
    File(PathBuf),
}

/// `shoal get NAME [-o PATH]`: downloads a file, verified, to PATH (a file
/// or an existing directory; `-` for stdout; default: the name's last
/// segment in the current directory).
///
/// # Errors
/// The name is invalid or unknown, the peer fails, the content does not
/// verify, or the destination cannot be written. The destination is then
/// untouched.
pub async fn get(client: &Client, name: &str, output: Option<&str>) -> Result<()> {
    let name = file_name(name)?;
    let destination = destination(&name, output)?;
    for attempt in 1..=GET_ATTEMPTS {
        let stat = client.stat(&name).await?;
        let expected = ExpectedFile::from_stat(&stat)?;
        let response = match client.download(&name, &stat.blake3).await {
            Err(e) if e.is_precondition_failed() && attempt < GET_ATTEMPTS => continue,
            other => other?,
        };
        let size = expected.size;
        receive(response, expected, &destination)
            .await
            .with_context(|| format!("download of {name} failed"))?;
        if let Destination::File(path) = &destination {
            println!("{name}  {size} bytes  verified  -> {}", path.display());
        }
        return Ok(());
    }
    bail!("{name} kept changing while it was being downloaded; try again")
}

fn destination(name: &FileName, output: Option<&str>) -> Result<Destination> {
    let from_name = || {
        name.base_name()
            .map(PathBuf::from)
            .ok_or_else(|| anyhow!("cannot derive a local file name from {name:?}; pass -o PATH"))
    };
    Ok(match output {
        Some("-") => Destination::Stdout,
        Some(path) if Path::new(path).is_dir() => {
            Destination::File(Path::new(path).join(from_name()?))
        }
        Some(path) => Destination::File(PathBuf::from(path)),
        None => Destination::File(from_name()?),
    })
}

/// Streams the response through verification into the destination.
async fn receive(
    response: reqwest::Response,
    expected: ExpectedFile,
    destination: &Destination,
) -> Result<()> {
    let (sink, temp) = match destination {
        Destination::Stdout => (Box::new(std::io::stdout()) as Box<dyn Write + Send>, None),
        Destination::File(path) => {
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let temp = tempfile::Builder::new()
                .prefix(".shoal-get-")
                .suffix(".part")
                .tempfile_in(dir)
                .with_context(|| format!("cannot create a file in {}", dir.display()))?;
            let file = temp.reopen().context("cannot open the temporary file")?;
            (Box::new(file) as Box<dyn Write + Send>, Some(temp))
        }
    };

    let bar = progress::bytes("get", Some(expected.size));
    let (tx, rx) = mpsc::channel::<(ExpectedChunk, Bytes)>(WRITE_QUEUE);
    let writer = tokio::task::spawn_blocking({
        let bar = bar.clone();
        move || write_verified(rx, sink, &bar)
    });

    let mut reassembler = Reassembler::new(&expected);
    let mut body = response.bytes_stream();
    let mut failure = None;
    while let Some(piece) = body.next().await {
        let piece = match piece {
            Ok(piece) => piece,
            Err(e) => {
                failure = Some(anyhow!("the connection broke: {}", chain(&e)));
                break;
            }
        };
        match reassembler.push(piece) {
            Ok(chunks) => {
                for chunk in chunks {
                    if tx.send(chunk).await.is_err() {
                        break;
                    }
                }
            }
            Err(e) => {
                failure = Some(e.into());
                break;
            }
        }
    }
    drop(tx);
    let written = writer.await?;
    bar.finish_and_clear();
    // The writer's verdict names a damaged chunk precisely; prefer it.
    let actual = written?;
    if let Some(failure) = failure {
        return Err(failure);
    }
    reassembler.finish()?;
    if actual != expected.blake3 {
        bail!(VerifyError::File {
            expected: expected.blake3,
            actual,
        });
    }

    if let (Some(temp), Destination::File(path)) = (temp, destination) {
        let file = temp.as_file();
        file.sync_all().context("cannot sync the downloaded file")?;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))
            .context("cannot set the downloaded file's permissions")?;
        temp.persist(path).map_err(|e| e.error).with_context(|| {
            format!("cannot move the download into place at {}", path.display())
        })?;
    }
    Ok(())
}

/// Verifies chunks in order and writes them; returns the BLAKE3 of all
/// that was written.
fn write_verified(
    mut chunks: mpsc::Receiver<(ExpectedChunk, Bytes)>,
    mut sink: Box<dyn Write + Send>,
    bar: &indicatif::ProgressBar,
) -> Result<Blake3Hash> {
    let mut whole = blake3::Hasher::new();
    while let Some((chunk, data)) = chunks.blocking_recv() {
        chunk.check(&data)?;
        whole.update(&data);
        sink.write_all(&data).context("cannot write the download")?;
        bar.inc(data.len() as u64);
    }
    sink.flush().context("cannot write the download")?;
    Ok(whole.finalize().into())
}
