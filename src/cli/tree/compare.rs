//! Whether a local file already holds a stored file's content, which is
//! what lets `put -r` and `get -r` skip it ("unchanged").
//!
//! The listing gives each stored file's size and BLAKE3, so a local file of
//! the same size is hashed and compared. A *composed* file (made by an S3
//! multipart upload or copy without reading its content) lists a digest of
//! its chunk list instead, which no content hashes to; when the sizes match
//! but the hashes do not, the file's manifest is fetched and, if it is
//! composed, the local content is compared chunk by chunk with it. That
//! costs one manifest request per changed or composed file, and keeps a
//! re-run over composed files from moving them again.
//!
//! The local reads here are blocking; callers run them on blocking threads.
//! Each stops early, with [`io::ErrorKind::Interrupted`], once the run is
//! cancelled.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::api::FileEntry;
use crate::chunk::{Blake3Hash, FileName};
use crate::client::Client;

/// Read size for hashing local files.
pub const READ_BUFFER: usize = 256 * 1024;

/// The local content being compared.
#[derive(Debug, Clone)]
pub enum Local {
    /// Already read into memory.
    Bytes(Bytes),
    /// A file to read.
    File(PathBuf),
}

fn check(cancel: &CancellationToken) -> io::Result<()> {
    if cancel.is_cancelled() {
        return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
    }
    Ok(())
}

/// Reads `path` whole with its BLAKE3 if it holds at most `limit` bytes;
/// `None` if it holds more (it may have grown since it was listed).
///
/// # Errors
/// The file cannot be read, or the run was cancelled.
pub fn read_small(
    path: &Path,
    limit: u64,
    cancel: &CancellationToken,
) -> io::Result<Option<(Bytes, Blake3Hash)>> {
    check(cancel)?;
    let mut data = Vec::new();
    File::open(path)?.take(limit + 1).read_to_end(&mut data)?;
    if data.len() as u64 > limit {
        return Ok(None);
    }
    let hash = Blake3Hash::of(&data);
    Ok(Some((Bytes::from(data), hash)))
}

/// Reads a file once: its length as read and its BLAKE3.
///
/// # Errors
/// The file cannot be read, or the run was cancelled.
pub fn hash_file(path: &Path, cancel: &CancellationToken) -> io::Result<(u64, Blake3Hash)> {
    let mut file = File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; READ_BUFFER];
    let mut length = 0u64;
    loop {
        check(cancel)?;
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((length, hasher.finalize().into()));
        }
        hasher.update(&buf[..n]);
        length += n as u64;
    }
}

/// Whether `reader` holds exactly the chunks listed, in order, by size and
/// BLAKE3.
///
/// # Errors
/// The content cannot be read, or the run was cancelled.
pub fn matches_chunks(
    mut reader: impl Read,
    chunks: &[(u32, Blake3Hash)],
    cancel: &CancellationToken,
) -> io::Result<bool> {
    let mut buf = vec![0u8; READ_BUFFER];
    for &(size, expected) in chunks {
        let mut hasher = blake3::Hasher::new();
        let mut left = u64::from(size);
        while left > 0 {
            check(cancel)?;
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
            let n = reader.read(&mut buf[..want])?;
            if n == 0 {
                return Ok(false);
            }
            hasher.update(&buf[..n]);
            left -= n as u64;
        }
        if Blake3Hash::from(hasher.finalize()) != expected {
            return Ok(false);
        }
    }
    Ok(reader.read(&mut buf[..1])? == 0)
}

/// Whether the stored file `listed` (called `name`), whose size equals the
/// local content's but whose listed BLAKE3 does not, is a composed file
/// with the local content. Any failure to find out answers `false`: the
/// file is then simply transferred, and a real problem shows there.
pub async fn same_as_composed(
    client: &Client,
    name: &FileName,
    listed: &FileEntry,
    local: Local,
    cancel: &CancellationToken,
) -> bool {
    let Ok(stat) = client.stat(name).await else {
        return false;
    };
    // A different hash means the file changed since it was listed.
    if !stat.composed || stat.blake3 != listed.blake3 || stat.size != listed.size {
        return false;
    }
    let chunks: Option<Vec<(u32, Blake3Hash)>> = stat
        .chunks
        .iter()
        .map(|c| c.blake3.parse().ok().map(|hash| (c.size, hash)))
        .collect();
    let Some(chunks) = chunks else {
        return false;
    };
    let cancel = cancel.clone();
    let compared = tokio::task::spawn_blocking(move || match local {
        Local::Bytes(data) => matches_chunks(&data[..], &chunks, &cancel),
        Local::File(path) => matches_chunks(File::open(path)?, &chunks, &cancel),
    })
    .await;
    matches!(compared, Ok(Ok(true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_must_match_in_order_and_cover_everything() {
        let cancel = CancellationToken::new();
        let data = b"hello, composed world";
        let (a, b) = data.split_at(7);
        let chunks = [(7, Blake3Hash::of(a)), (14, Blake3Hash::of(b))];
        assert!(matches_chunks(&data[..], &chunks, &cancel).unwrap());
        assert!(!matches_chunks(&data[..20], &chunks, &cancel).unwrap());
        let longer = [&data[..], b"!"].concat();
        assert!(!matches_chunks(&longer[..], &chunks, &cancel).unwrap());
        let swapped = [chunks[1], chunks[0]];
        assert!(!matches_chunks(&data[..], &swapped, &cancel).unwrap());
        cancel.cancel();
        assert!(matches_chunks(&data[..], &chunks, &cancel).is_err());
    }

    #[test]
    fn small_files_are_read_whole_only_under_the_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        std::fs::write(&path, b"12345").unwrap();
        let cancel = CancellationToken::new();
        let (data, hash) = read_small(&path, 5, &cancel).unwrap().unwrap();
        assert_eq!(&data[..], b"12345");
        assert_eq!(hash, Blake3Hash::of(b"12345"));
        assert!(read_small(&path, 4, &cancel).unwrap().is_none());
        assert_eq!(
            hash_file(&path, &cancel).unwrap(),
            (5, Blake3Hash::of(b"12345"))
        );
    }
}
