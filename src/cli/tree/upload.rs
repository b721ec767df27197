//! Storing one file, or one directory's marker, for `put -r`.
//!
//! As with `shoal put`, the peer is given the BLAKE3 computed here and
//! stores nothing if what arrives hashes differently, so a file changed
//! mid-upload is refused rather than stored half old, half new. A file of
//! at most [`WHOLE_FILE_LIMIT`] bytes is read once into memory, hashed, and
//! sent from there; a larger one is hashed in one pass and streamed in a
//! second, so memory stays bounded by the number of uploads in flight times
//! that limit, whatever the files' sizes.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use futures::StreamExt;
use indicatif::ProgressBar;
use tokio_util::io::ReaderStream;
use tokio_util::sync::CancellationToken;

use super::compare::{self, Local, READ_BUFFER};
use super::report::Outcome;
use crate::api::FileEntry;
use crate::chunk::{Blake3Hash, FileAttributes, FileName};
use crate::cli::attrs;
use crate::client::{Client, ClientError};

/// Files up to this size are read whole, once; larger ones stream.
pub const WHOLE_FILE_LIMIT: u64 = 1024 * 1024;

/// One thing to store.
#[derive(Debug)]
pub struct Job {
    /// The local file or directory.
    pub path: PathBuf,
    /// The name to store it under.
    pub name: FileName,
    /// What it is.
    pub kind: JobKind,
    /// Its mode and modification time, stored with it.
    pub attributes: FileAttributes,
    /// What the swarm lists under the name now, if anything.
    pub stored: Option<FileEntry>,
}

/// What is being stored.
#[derive(Debug, Clone, Copy)]
pub enum JobKind {
    /// A regular file of about this many bytes (it may change).
    File(u64),
    /// A directory, stored as an empty file whose name ends in `/`.
    Marker,
}

/// Stores `job` unless the swarm already has its content.
///
/// # Errors
/// Anything that stops this file; the caller tells a failure of this file
/// from one of the whole run (an unreachable peer).
pub async fn upload(
    client: Client,
    job: Job,
    bar: ProgressBar,
    cancel: CancellationToken,
) -> Result<Outcome> {
    let size = match job.kind {
        JobKind::Marker => {
            if job.stored.as_ref().is_some_and(|s| s.size == 0) {
                settle_attributes(&client, &job).await?;
                return Ok(Outcome::Directory);
            }
            send(&client, &job, Bytes::new().into(), Blake3Hash::of(b"")).await?;
            return Ok(Outcome::Directory);
        }
        JobKind::File(size) => size,
    };
    if size <= WHOLE_FILE_LIMIT {
        let path = job.path.clone();
        let token = cancel.clone();
        let read = tokio::task::spawn_blocking(move || {
            compare::read_small(&path, WHOLE_FILE_LIMIT, &token)
        })
        .await?
        .context("cannot read the file")?;
        // A file that grew past the limit since the walk saw it streams.
        if let Some((data, hash)) = read {
            let length = data.len() as u64;
            if unchanged(
                &client,
                &job,
                length,
                hash,
                Local::Bytes(data.clone()),
                &cancel,
            )
            .await
            {
                return settle_attributes(&client, &job).await.map(|same| {
                    if same {
                        Outcome::Unchanged(length)
                    } else {
                        Outcome::Transferred(0)
                    }
                });
            }
            send(&client, &job, data.into(), hash).await?;
            bar.inc(length);
            return Ok(Outcome::Transferred(length));
        }
    }

    let path = job.path.clone();
    let token = cancel.clone();
    let (length, hash) = tokio::task::spawn_blocking(move || compare::hash_file(&path, &token))
        .await?
        .context("cannot read the file")?;
    if unchanged(
        &client,
        &job,
        length,
        hash,
        Local::File(job.path.clone()),
        &cancel,
    )
    .await
    {
        return settle_attributes(&client, &job).await.map(|same| {
            if same {
                Outcome::Unchanged(length)
            } else {
                Outcome::Transferred(0)
            }
        });
    }
    let file = tokio::fs::File::open(&job.path)
        .await
        .context("cannot open the file")?;
    let stream = ReaderStream::with_capacity(file, READ_BUFFER).inspect(move |piece| {
        if let Ok(piece) = piece {
            bar.inc(piece.len() as u64);
        }
    });
    send(&client, &job, reqwest::Body::wrap_stream(stream), hash).await?;
    Ok(Outcome::Transferred(length))
}

/// Whether the swarm already stores `length` bytes hashing to `hash` under
/// the job's name.
async fn unchanged(
    client: &Client,
    job: &Job,
    length: u64,
    hash: Blake3Hash,
    local: Local,
    cancel: &CancellationToken,
) -> bool {
    let Some(stored) = &job.stored else {
        return false;
    };
    if stored.size != length {
        return false;
    }
    stored.blake3 == hash.to_hex()
        || compare::same_as_composed(client, &job.name, stored, local, cancel).await
}

/// Gives the stored file, whose content is the local one's, the local
/// mode and time if it has others, without sending the content again.
/// Returns whether it had them already.
async fn settle_attributes(client: &Client, job: &Job) -> Result<bool> {
    let Some(stored) = &job.stored else {
        return Ok(false);
    };
    let listed = attrs::of_report(stored.mode.as_deref(), stored.mtime.as_deref());
    if listed == job.attributes {
        return Ok(true);
    }
    client
        .set_attributes(&job.name, &stored.blake3, &job.attributes)
        .await?;
    Ok(false)
}

async fn send(client: &Client, job: &Job, body: reqwest::Body, hash: Blake3Hash) -> Result<()> {
    match client
        .put(&job.name, body, Some(hash), &job.attributes)
        .await
    {
        Ok(_) => Ok(()),
        Err(ClientError::Refused { status, message }) if status.as_u16() == 422 => Err(anyhow!(
            "{message} (the file changed while it was being uploaded; run put -r again)"
        )),
        Err(e) => Err(e.into()),
    }
}
