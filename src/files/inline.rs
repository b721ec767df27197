//! Small files kept inside their manifest: reading enough of a body to
//! know whether it is small, describing a small file's bytes as its one
//! chunk (see `MAX_INLINE_BYTES`), and storing it with one record write.

use std::pin::Pin;

use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::put::Seal;
use super::records::WriteOutcome;
use super::{Files, FilesError};
use crate::chunk::{
    Blake3Hash, ChunkRef, Extensions, FileName, FileRecord, Manifest, chunked_etag, tags,
    wall_millis,
};
use crate::dht::{Placement, name_position};

/// How many times a small put takes a newer version after an owner showed
/// it a newer one: once is enough unless other writers keep racing it.
const RESTAMPS: usize = 2;

/// A small file's whole content and what its manifest records beside it.
pub(super) struct SmallFile {
    pub name: FileName,
    pub content: Bytes,
    /// The BLAKE3 the client computed, if it sent one.
    pub expected: Option<Blake3Hash>,
    pub extensions: Extensions,
}

impl Files {
    /// Stores a small file as one manifest holding its bytes: a single
    /// record write on the name's owners, with no chunk writes, and in the
    /// common case no read before it.
    ///
    /// A put must be ordered after every version acknowledged before it
    /// began. When every owner is usable and two write quorums of them
    /// overlap, the write goes out stamped with this peer's clock: the
    /// owners that acknowledged an earlier version include one among the
    /// first W to answer, and if this peer's clock is behind, it answers
    /// that it holds a newer version, with that version's clock reading.
    /// The put then moves its clock past it and writes again. Otherwise
    /// (stand-ins among the targets, or quorums that need not overlap) the
    /// owners' heads are read first, as for large files. A racing
    /// concurrent write may still win after [`RESTAMPS`] tries, which last
    /// writer wins allows.
    pub(super) async fn put_inline(
        &self,
        placement: &Placement,
        small: SmallFile,
        seal: Option<Seal>,
    ) -> Result<Manifest, FilesError> {
        let SmallFile {
            name,
            content,
            expected,
            mut extensions,
        } = small;
        let (chunks, size, blake3) = inline_content(&name, &content, expected)?;
        if let Some(seal) = seal {
            extensions.merge(seal.await?);
        }
        if extensions.get(tags::ETAG).is_none() {
            extensions.set(tags::ETAG, chunked_etag(&chunks).into_bytes());
        }
        extensions.set(tags::INLINE, content.to_vec());
        let prior = if self.quorums_overlap_on_owners(placement, &name) {
            None
        } else {
            self.current_head(placement, &name).await
        };
        let mut manifest = Manifest {
            name,
            size,
            blake3,
            chunk_size: self.chunk_size,
            chunks,
            created_ms: wall_millis(),
            version: self.next_version(),
            extensions,
        };
        let mut restamps = 0;
        loop {
            let outcome = self
                .write_record(placement, FileRecord::Live(manifest.clone()))
                .await?;
            if let WriteOutcome::Superseded { newer } = outcome
                && restamps < RESTAMPS
                && self.clock.observe(newer)
            {
                restamps += 1;
                manifest.version = self.next_version();
                continue;
            }
            self.committed(placement, &manifest, outcome, prior.is_some());
            return Ok(manifest);
        }
    }

    /// Whether a write of `name` would go to its owners only, all usable,
    /// with write quorums that overlap (2W > N): then any write's first W
    /// answers include an owner that acknowledged the previous version.
    fn quorums_overlap_on_owners(&self, placement: &Placement, name: &FileName) -> bool {
        let plan = placement.plan(name_position(name.as_str()));
        let owners = plan.owners.len();
        let all_usable = plan
            .owners
            .iter()
            .all(|owner| self.cluster.is_usable(placement, owner));
        all_usable && 2 * self.cluster.write_quorum(owners) > owners
    }
}

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
fn inline_content(
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
