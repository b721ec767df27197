//! `shoal put`: a streamed upload the peer can check end to end.
//!
//! A regular file is hashed before it is sent and the peer is given that
//! hash, so content damaged on the way, or a file changed mid-upload, is
//! refused before anything becomes visible. Other inputs (stdin, FIFOs,
//! devices) can be read only once and are sent unchecked. No length is
//! declared up front: files in `/proc` and `/sys` report sizes that do not
//! match what reading them yields.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use futures::StreamExt;
use tokio_util::io::ReaderStream;

use super::{file_name, print_json, progress, stdout_line};
use crate::api::PutResponse;
use crate::chunk::{Blake3Hash, FileAttributes};
use crate::client::{Client, ClientError};

/// Read size for hashing and sending local files.
const READ_BUFFER: usize = 256 * 1024;

/// `shoal put PATH [--name NAME]`: uploads a file (or stdin, for `-`).
///
/// # Errors
/// The local file cannot be read, the name is invalid, or the peer refuses
/// or cannot be reached.
pub async fn put(client: &Client, path: &Path, name: Option<&str>, json: bool) -> Result<()> {
    let response = if path == Path::new("-") {
        let name = name.ok_or_else(|| anyhow!("reading from stdin needs --name NAME"))?;
        let name = file_name(name)?;
        let bar = progress::bytes("put", None);
        let stream = ReaderStream::with_capacity(tokio::io::stdin(), READ_BUFFER).inspect({
            let bar = bar.clone();
            move |piece| count(&bar, piece)
        });
        let response = client
            .put(
                &name,
                reqwest::Body::wrap_stream(stream),
                None,
                &FileAttributes::default(),
            )
            .await;
        bar.finish_and_clear();
        response?
    } else {
        put_file(client, path, name).await?
    };
    if json {
        print_json(&response)
    } else {
        stdout_line(&format!(
            "{}  {} bytes  blake3 {}",
            response.name, response.size, response.blake3
        ))
    }
}

fn count(bar: &indicatif::ProgressBar, piece: &std::io::Result<Bytes>) {
    if let Ok(piece) = piece {
        bar.inc(piece.len() as u64);
    }
}

async fn put_file(client: &Client, path: &Path, name: Option<&str>) -> Result<PutResponse> {
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
        let (length, hash) = hashed.with_context(|| format!("cannot read {shown}"))?;
        (Some(length), Some(hash))
    } else {
        (None, None)
    };
    let bar = progress::bytes("put", length);
    let stream =
        ReaderStream::with_capacity(tokio::fs::File::from_std(file), READ_BUFFER).inspect({
            let bar = bar.clone();
            move |piece| count(&bar, piece)
        });
    // Only a regular file's mode and time describe its content.
    let attributes = if meta.is_file() {
        super::attrs::of_metadata(&meta)
    } else {
        FileAttributes::default()
    };
    let result = client
        .put(
            &name,
            reqwest::Body::wrap_stream(stream),
            expected,
            &attributes,
        )
        .await;
    bar.finish_and_clear();
    result.map_err(|e| match e {
        ClientError::Refused { status, message } if status.as_u16() == 422 => {
            anyhow!("{message} (did {shown} change while it was being uploaded?)")
        }
        other => other.into(),
    })
}

/// Reads a file once: its length as read and its BLAKE3.
fn hash_file(path: &Path, bar: &indicatif::ProgressBar) -> std::io::Result<(u64, Blake3Hash)> {
    let mut file = File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; READ_BUFFER];
    let mut length = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((length, hasher.finalize().into()));
        }
        hasher.update(&buf[..n]);
        length += n as u64;
        bar.inc(n as u64);
    }
}
