//! Writing one stored file, or one folder marker's directory, under the
//! directory `get -r` fills.
//!
//! Every file is verified before it appears at its path. A file of one
//! chunk (or none) is checked against the BLAKE3 the listing gave, which is
//! its content's: it is downloaded with `If-Match` on that hash into a
//! temporary file beside its path, hashed as it streams, and renamed into
//! place only if it matches, no more bytes than the listing's size ever
//! being accepted. Any other file (several chunks, or composed) goes
//! through `get`'s own verified path, which checks each chunk against the
//! manifest, and syncs the file, as `shoal get` does.
//!
//! Nothing is written through a symbolic link: every directory between the
//! root and the file must be a real directory (checked with
//! `symlink_metadata`, created if missing), and the final rename replaces a
//! link at the file's own path rather than following it. This guards
//! against links already in the directory, not against another process
//! changing it during the run.
//!
//! Files renamed into place are not synced one by one (see the `tree`
//! module for the durability guarantee).

use std::fs::{self, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use indicatif::ProgressBar;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::compare::{self, Local};
use super::paths::Target;
use super::report::Outcome;
use crate::api::FileEntry;
use crate::chunk::{Blake3Hash, FileAttributes, FileName};
use crate::cli::attrs;
use crate::client::{Client, chain};

/// One stored file to write.
#[derive(Debug)]
pub struct Job {
    /// The directory being filled.
    pub root: Arc<PathBuf>,
    /// The stored name.
    pub name: FileName,
    /// What the listing said about it.
    pub entry: FileEntry,
    /// Where it goes, relative to `root`.
    pub target: Target,
    /// Whether a file written, or found unchanged, gets the mode and time
    /// the file was put with.
    pub preserve: bool,
}

/// Writes `job` unless the directory already holds its content.
///
/// # Errors
/// Anything that stops this file; the caller tells a failure of this file
/// from one of the whole run (an unreachable peer).
pub async fn download(
    client: Client,
    job: Job,
    bar: ProgressBar,
    cancel: CancellationToken,
) -> Result<Outcome> {
    let rel = match &job.target {
        Target::Dir(rel) => {
            let root = Arc::clone(&job.root);
            let rel = rel.clone();
            tokio::task::spawn_blocking(move || make_dirs(&root, &rel)).await??;
            return Ok(Outcome::Directory);
        }
        Target::File(rel) => rel.clone(),
    };
    let path = job.root.join(&rel);
    let size = job.entry.size;
    let attributes = if job.preserve {
        attrs::of_report(job.entry.mode.as_deref(), job.entry.mtime.as_deref())
    } else {
        FileAttributes::default()
    };
    let listed: Blake3Hash = job
        .entry
        .blake3
        .parse()
        .map_err(|e| anyhow!("the listing gave a malformed hash: {e}"))?;

    let local = {
        let root = Arc::clone(&job.root);
        let path = path.clone();
        let cancel = cancel.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(parent) = rel.parent() {
                make_dirs(&root, parent)?;
            }
            inspect(&path, size, listed, &cancel)
        })
        .await??
    };
    let unchanged = match local {
        Existing::Same => true,
        Existing::SameSize => {
            compare::same_as_composed(
                &client,
                &job.name,
                &job.entry,
                Local::File(path.clone()),
                &cancel,
            )
            .await
        }
        Existing::Other => false,
    };
    if unchanged {
        let meta = fs::symlink_metadata(&path)
            .with_context(|| format!("cannot look at {}", path.display()))?;
        if !attrs::has(&meta, &attributes)
            && let Err(error) = attrs::apply_at(&path, &attributes)
        {
            attrs::warn(&path, &error);
        }
        return Ok(Outcome::Unchanged(size));
    }

    if job.entry.chunks <= 1 && fetch_whole(&client, &job, &path, listed, &attributes, &bar).await?
    {
        return Ok(Outcome::Transferred(size));
    }
    let written =
        super::super::get::download_verified(&client, &job.name, &path, job.preserve).await?;
    bar.inc(written);
    Ok(Outcome::Transferred(written))
}

/// What is at a file's path already.
#[derive(Debug)]
enum Existing {
    /// A regular file with the listed size and hash.
    Same,
    /// A regular file of the listed size with another hash (it differs, or
    /// the stored file is composed).
    SameSize,
    /// Nothing, or something the download replaces.
    Other,
}

fn inspect(
    path: &Path,
    size: u64,
    listed: Blake3Hash,
    cancel: &CancellationToken,
) -> Result<Existing> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Existing::Other),
        Err(e) => Err(e).with_context(|| format!("cannot look at {}", path.display())),
        Ok(meta) if meta.is_dir() => bail!("a directory is in the way at {}", path.display()),
        Ok(meta) if meta.is_file() && meta.len() == size => {
            let (length, hash) = compare::hash_file(path, cancel)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Ok(match (length == size, hash == listed) {
                (true, true) => Existing::Same,
                (true, false) => Existing::SameSize,
                _ => Existing::Other,
            })
        }
        Ok(_) => Ok(Existing::Other),
    }
}

/// Makes `rel` (relative, already found safe) a directory under `root`,
/// creating what is missing; returns whether anything was created.
///
/// # Errors
/// A component exists and is not a real directory (a symbolic link is
/// never followed), or cannot be created.
fn make_dirs(root: &Path, rel: &Path) -> Result<bool> {
    let mut created = false;
    let mut current = root.to_path_buf();
    for component in rel.components() {
        current.push(component);
        let exists = match fs::symlink_metadata(&current) {
            Ok(meta) => Some(meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot look at {}", current.display()));
            }
        };
        let meta = match exists {
            Some(meta) => meta,
            None => match fs::create_dir(&current) {
                Ok(()) => {
                    created = true;
                    continue;
                }
                // Another download made it meanwhile: look again.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    fs::symlink_metadata(&current)
                        .with_context(|| format!("cannot look at {}", current.display()))?
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", current.display()));
                }
            },
        };
        if meta.file_type().is_symlink() {
            bail!(
                "{} is a symbolic link; nothing is written through one",
                current.display()
            );
        }
        if !meta.is_dir() {
            bail!("{} is in the way: it is not a directory", current.display());
        }
    }
    Ok(created)
}

/// Downloads a file of at most one chunk, checked against the listed hash,
/// into place. `Ok(false)` when this cannot decide and the manifest must:
/// the file changed since it was listed, or it is composed.
async fn fetch_whole(
    client: &Client,
    job: &Job,
    path: &Path,
    listed: Blake3Hash,
    attributes: &FileAttributes,
    bar: &ProgressBar,
) -> Result<bool> {
    let size = job.entry.size;
    let response = match client.download(&job.name, &job.entry.blake3).await {
        Err(e) if e.is_precondition_failed() => return Ok(false),
        other => other?,
    };
    if let Some(announced) = response.content_length()
        && announced > size
    {
        bail!("the peer announced {announced} bytes; the file has {size}");
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = temp_beside(dir, path)?;
    let mut file =
        tokio::fs::File::from_std(temp.reopen().context("cannot open the temporary file")?);
    let mut hasher = blake3::Hasher::new();
    let mut received = 0u64;
    let mut body = response.bytes_stream();
    while let Some(piece) = body.next().await {
        let piece = piece.map_err(|e| anyhow!("the connection broke: {}", chain(&e)))?;
        received += piece.len() as u64;
        if received > size {
            bail!("the peer sent more than the file's {size} bytes");
        }
        hasher.update(&piece);
        file.write_all(&piece)
            .await
            .context("cannot write the download")?;
        bar.inc(piece.len() as u64);
    }
    file.flush().await.context("cannot write the download")?;
    drop(file);
    if received < size {
        bail!("the download stopped after {received} of {size} bytes");
    }
    let actual = Blake3Hash::from(hasher.finalize());
    if actual != listed {
        // A composed file lists a digest of its chunk list, not of its
        // content: its manifest names the one chunk's hash instead.
        match client.stat(&job.name).await {
            Ok(stat)
                if stat.composed
                    && stat.blake3 == job.entry.blake3
                    && matches!(stat.chunks.as_slice(), [only] if only.blake3 == actual.to_hex()) =>
                {}
            Ok(stat) if stat.composed => {
                bar.dec(received);
                return Ok(false);
            }
            _ => bail!("the file failed its BLAKE3 check (expected {listed}, got {actual})"),
        }
    }
    if let Err(error) = attrs::apply(temp.as_file(), attributes) {
        attrs::warn(path, &error);
    }
    temp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot move the download into place at {}", path.display()))?;
    Ok(true)
}

/// A temporary file in `dir` for the download of `path`; dropping it
/// removes it. A file being replaced keeps its mode; a new one gets 0666
/// less the umask, as `shoal get` does.
fn temp_beside(dir: &Path, path: &Path) -> Result<tempfile::NamedTempFile> {
    let kept_mode = fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.permissions().mode());
    let temp = tempfile::Builder::new()
        .prefix(".shoal-get-")
        .suffix(".part")
        .permissions(Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    if let Some(mode) = kept_mode {
        temp.as_file()
            .set_permissions(Permissions::from_mode(mode))
            .context("cannot set the download's permissions")?;
    }
    Ok(temp)
}
