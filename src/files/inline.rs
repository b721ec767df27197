//! Small files kept inside their manifest: reading enough of a body to
//! know whether it is small, and describing a small file's bytes as its
//! one chunk (see `MAX_INLINE_BYTES`).

use std::pin::Pin;

use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::FilesError;
use crate::chunk::{Blake3Hash, ChunkRef, FileName};

/// Reads the start of `body` until more than `limit` bytes came or it
/// ended: the pieces read, and whether the body ended.
pub(super) async fn read_head<S, E>(
    body: &mut Pin<Box<S>>,
    name: &FileName,
    limit: usize,
) -> Result<(Vec<Bytes>, bool), FilesError>
where
    S: Stream<Item = Result<Bytes, E>> + Send,
    E: std::fmt::Display,
{
    let mut head = Vec::new();
    let mut len = 0;
    while len <= limit {
        match body.next().await {
            Some(Ok(piece)) => {
                len += piece.len();
                head.push(piece);
            }
            Some(Err(e)) => {
                return Err(FilesError::Body {
                    name: name.clone(),
                    reason: e.to_string(),
                });
            }
            None => return Ok((head, true)),
        }
    }
    Ok((head, false))
}

/// The pieces as one buffer, copied only if there are several.
pub(super) fn concatenate(pieces: Vec<Bytes>) -> Bytes {
    match <[Bytes; 1]>::try_from(pieces) {
        Ok([one]) => one,
        Err(pieces) => pieces.concat().into(),
    }
}

/// The chunk list, size and hash of a small file kept in its manifest,
/// checked against the hash the client computed.
pub(super) fn inline_content(
    name: &FileName,
    data: &[u8],
    expected: Option<Blake3Hash>,
) -> Result<(Vec<ChunkRef>, u64, Blake3Hash), FilesError> {
    let chunk = ChunkRef::compute(data);
    if let Some(expected) = expected
        && expected != chunk.hash
    {
        return Err(FilesError::ContentMismatch {
            name: name.clone(),
            expected,
            actual: chunk.hash,
        });
    }
    Ok((vec![chunk], data.len() as u64, chunk.hash))
}
