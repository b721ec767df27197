//! The partial file a download of a regular file is written to, beside its
//! destination, so that an interrupted download resumes where it stopped.
//!
//! The partial file of `dir/name` is `dir/.name.shoal-partial`. Only
//! verified chunks are ever written to it, in order. When a download
//! starts and finds one, it re-checks the chunks already there against the
//! current manifest (MD5 and BLAKE3, reading locally), keeps the longest
//! run that matches from the start and fetches only the rest. So a file
//! that changed since restarts cleanly (from the first chunk that differs),
//! and bytes half-written when the process was killed are cut off rather
//! than trusted. The destination itself is only ever replaced whole, by a
//! rename once everything verified.
//!
//! An exclusive lock on the partial file keeps two downloads to the same
//! destination from interleaving their writes.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::verify::ExpectedFile;
use crate::chunk::FileAttributes;

/// The suffix of partial files.
const SUFFIX: &str = ".shoal-partial";

/// A download's partial file, locked, positioned after its verified
/// prefix.
#[derive(Debug)]
pub(super) struct Partial {
    file: File,
    path: PathBuf,
    destination: PathBuf,
    /// The chunks already there and verified.
    verified_chunks: usize,
    /// Their bytes.
    verified_bytes: u64,
    /// Whether a failed or interrupted download leaves the file for a
    /// later one to resume (`get`), or removes it (`get -r`, which
    /// resumes file by file).
    keep_on_failure: bool,
    finished: bool,
}

impl Partial {
    /// Opens (or creates) the partial file of `destination` and keeps the
    /// chunks in it that match `expected` from the start.
    ///
    /// # Errors
    /// The partial file cannot be created, locked or read.
    pub(super) fn open(
        destination: &Path,
        expected: &ExpectedFile,
        keep_on_failure: bool,
    ) -> Result<Partial> {
        let path = partial_path(destination)?;
        // A partial file an earlier run gave a read-only mode to (its
        // rename failed) must be writable again to resume.
        if let Ok(meta) = std::fs::symlink_metadata(&path)
            && meta.is_file()
            && meta.permissions().mode() & 0o200 == 0
        {
            let writable = Permissions::from_mode(meta.permissions().mode() | 0o200);
            std::fs::set_permissions(&path, writable)
                .with_context(|| format!("cannot make {} writable", path.display()))?;
        }
        // A file being replaced keeps its mode; a new one gets the usual
        // 0666 less the umask.
        let kept_mode = std::fs::metadata(destination)
            .ok()
            .map(|m| m.permissions().mode());
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o666)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => bail!(
                "another download is writing {} (its partial file {} is locked)",
                destination.display(),
                path.display()
            ),
            Err(e) => {
                return Err(io::Error::from(e))
                    .with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        if let Some(mode) = kept_mode {
            file.set_permissions(Permissions::from_mode(mode))
                .context("cannot set the download's permissions")?;
        }
        let (verified_chunks, verified_bytes) = verified_prefix(&mut file, expected)
            .with_context(|| format!("cannot read {}", path.display()))?;
        file.set_len(verified_bytes)
            .and_then(|()| file.seek(SeekFrom::Start(verified_bytes)).map(drop))
            .with_context(|| format!("cannot prepare {}", path.display()))?;
        Ok(Partial {
            file,
            path,
            destination: destination.to_owned(),
            verified_chunks,
            verified_bytes,
            keep_on_failure,
            finished: false,
        })
    }

    /// The chunks already verified, and their bytes: where the download
    /// resumes.
    pub(super) fn resume_point(&self) -> (usize, u64) {
        (self.verified_chunks, self.verified_bytes)
    }

    /// Where the partial file is.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// A handle writing at the end of the verified prefix.
    ///
    /// # Errors
    /// The file cannot be duplicated.
    pub(super) fn writer(&self) -> Result<File> {
        self.file
            .try_clone()
            .context("cannot open the partial file for writing")
    }

    /// Gives the download `attributes` (each only if known; a refusal is
    /// a warning), syncs it and renames it over the destination.
    ///
    /// # Errors
    /// The sync or the rename fails; the partial file is then kept.
    pub(super) fn finish(mut self, attributes: &FileAttributes) -> Result<()> {
        if let Err(error) = super::attrs::apply(&self.file, attributes) {
            super::attrs::warn(&self.destination, &error);
        }
        self.file
            .sync_all()
            .context("cannot sync the downloaded file")?;
        std::fs::rename(&self.path, &self.destination).with_context(|| {
            format!(
                "cannot move the download into place at {}",
                self.destination.display()
            )
        })?;
        self.finished = true;
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.finished && !self.keep_on_failure {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The partial file beside `destination`.
fn partial_path(destination: &Path) -> Result<PathBuf> {
    let Some(name) = destination.file_name() else {
        bail!("{} does not name a file", destination.display());
    };
    let mut partial = std::ffi::OsString::from(".");
    partial.push(name);
    partial.push(SUFFIX);
    Ok(destination.with_file_name(partial))
}

/// How many of `expected`'s chunks, and how many bytes, `file` holds intact
/// from its start.
fn verified_prefix(file: &mut File, expected: &ExpectedFile) -> io::Result<(usize, u64)> {
    let length = file.metadata()?.len();
    file.seek(SeekFrom::Start(0))?;
    let mut offset = 0u64;
    let mut buffer = Vec::new();
    for (index, chunk) in expected.chunks.iter().enumerate() {
        let size = u64::from(chunk.size);
        if offset + size > length {
            return Ok((index, offset));
        }
        buffer.resize(chunk.size as usize, 0);
        file.read_exact(&mut buffer)?;
        if chunk.check(&buffer).is_err() {
            return Ok((index, offset));
        }
        offset += size;
    }
    Ok((expected.chunks.len(), offset))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::cli::verify::expected;

    #[test]
    fn the_verified_prefix_is_kept_and_the_rest_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("file");
        let content: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let file = expected(&content, 1000);

        // Three chunks and a half, the third damaged.
        let mut written = content[..3500].to_vec();
        written[2500] ^= 1;
        std::fs::File::create(partial_path(&destination).unwrap())
            .unwrap()
            .write_all(&written)
            .unwrap();
        let partial = Partial::open(&destination, &file, true).unwrap();
        assert_eq!(partial.resume_point(), (2, 2000));
        assert_eq!(std::fs::metadata(partial.path()).unwrap().len(), 2000);

        // A second download of the same destination waits its turn.
        assert!(Partial::open(&destination, &file, true).is_err());
        drop(partial);

        // Another version of the file: kept only where it still matches.
        let mut changed = content.clone();
        changed[1500] ^= 1;
        let partial = Partial::open(&destination, &expected(&changed, 1000), false).unwrap();
        assert_eq!(partial.resume_point(), (1, 1000));
        let path = partial.path().to_owned();
        drop(partial);
        assert!(!path.exists(), "a partial not kept on failure is removed");
    }

    #[test]
    fn a_finished_download_replaces_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("file");
        std::fs::write(&destination, b"old").unwrap();
        let content = b"new content".to_vec();
        let file = expected(&content, 4);
        let partial = Partial::open(&destination, &file, true).unwrap();
        partial.writer().unwrap().write_all(&content).unwrap();
        let path = partial.path().to_owned();
        partial.finish(&FileAttributes::default()).unwrap();
        assert_eq!(std::fs::read(&destination).unwrap(), content);
        assert!(!path.exists());
    }
}
