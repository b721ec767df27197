//! Checking a download against its manifest, chunk by chunk.
//!
//! The bytes of a download arrive in pieces of any size; [`Reassembler`]
//! groups them back into the manifest's chunks (without copying them
//! together), and [`ExpectedChunk::check_pieces`] verifies each one's MD5
//! and BLAKE3, so a damaged chunk is caught as soon as it is complete and
//! named by its index.

use bytes::Bytes;

use crate::api::StatResponse;
use crate::chunk::{Blake3Hash, Md5Hash};

/// A chunk as the manifest describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedChunk {
    /// Position in the file.
    pub index: usize,
    /// Length in bytes.
    pub size: u32,
    /// BLAKE3 of the chunk.
    pub blake3: Blake3Hash,
    /// MD5 of the chunk.
    pub md5: Md5Hash,
}

/// What a download must add up to.
#[derive(Debug, Clone)]
pub struct ExpectedFile {
    /// The chunks, in order.
    pub chunks: Vec<ExpectedChunk>,
    /// The whole file's size.
    pub size: u64,
    /// The whole file's BLAKE3, unless the file is composed (its chunks
    /// are checked one by one all the same).
    pub blake3: Option<Blake3Hash>,
}

/// A mismatch between what arrived and what the manifest says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The manifest from the peer is malformed.
    #[error("the peer sent an invalid manifest: {0}")]
    BadManifest(String),
    /// A chunk's MD5 does not match.
    #[error("chunk {index} failed its MD5 check (expected {expected}, got {actual})")]
    Md5 {
        /// The chunk's index.
        index: usize,
        /// From the manifest.
        expected: Md5Hash,
        /// Of the bytes received.
        actual: Md5Hash,
    },
    /// A chunk's BLAKE3 does not match.
    #[error("chunk {index} failed its BLAKE3 check (expected {expected}, got {actual})")]
    Blake3 {
        /// The chunk's index.
        index: usize,
        /// From the manifest.
        expected: Blake3Hash,
        /// Of the bytes received.
        actual: Blake3Hash,
    },
    /// The whole file's BLAKE3 does not match.
    #[error("the file failed its BLAKE3 check (expected {expected}, got {actual})")]
    File {
        /// From the manifest.
        expected: Blake3Hash,
        /// Of the bytes received.
        actual: Blake3Hash,
    },
    /// More bytes arrived than the manifest lists.
    #[error("the peer sent more than the file's {0} bytes")]
    TooLong(u64),
    /// The download ended early.
    #[error("the download stopped after {received} of {size} bytes")]
    TooShort {
        /// Bytes received.
        received: u64,
        /// Bytes expected.
        size: u64,
    },
}

impl ExpectedFile {
    /// The expectations in a manifest as the API reports it.
    ///
    /// # Errors
    /// [`VerifyError::BadManifest`] if a digest is malformed or the sizes do
    /// not add up.
    pub fn from_stat(stat: &StatResponse) -> Result<Self, VerifyError> {
        let bad = |what: String| VerifyError::BadManifest(what);
        let chunks = stat
            .chunks
            .iter()
            .enumerate()
            .map(|(index, c)| {
                Ok(ExpectedChunk {
                    index,
                    size: c.size,
                    blake3: c
                        .blake3
                        .parse()
                        .map_err(|e| bad(format!("chunk {index}: {e}")))?,
                    md5: c
                        .md5
                        .parse()
                        .map_err(|e| bad(format!("chunk {index}: {e}")))?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let total: u64 = chunks.iter().map(|c| u64::from(c.size)).sum();
        if total != stat.size || chunks.iter().any(|c| c.size == 0) {
            return Err(bad(format!(
                "chunk sizes sum to {total}, file size is {}",
                stat.size
            )));
        }
        Ok(ExpectedFile {
            chunks,
            size: stat.size,
            blake3: if stat.composed {
                None
            } else {
                Some(
                    stat.blake3
                        .parse()
                        .map_err(|e| bad(format!("file hash: {e}")))?,
                )
            },
        })
    }
}

impl ExpectedFile {
    /// What is left to receive once the chunks before `first` are in hand
    /// (their indexes stay those of the whole file).
    pub fn rest_from(&self, first: usize) -> ExpectedFile {
        let chunks: Vec<ExpectedChunk> = self.chunks.get(first..).unwrap_or_default().to_vec();
        ExpectedFile {
            size: chunks.iter().map(|c| u64::from(c.size)).sum(),
            chunks,
            blake3: None,
        }
    }
}

impl ExpectedChunk {
    /// Checks `data` against this chunk's digests.
    ///
    /// # Errors
    /// [`VerifyError::Md5`] or [`VerifyError::Blake3`] on a mismatch.
    pub fn check(&self, data: &[u8]) -> Result<(), VerifyError> {
        self.check_slices(&[data])
    }

    /// Checks the concatenation of `pieces` against this chunk's digests.
    ///
    /// # Errors
    /// [`VerifyError::Md5`] or [`VerifyError::Blake3`] on a mismatch.
    pub fn check_pieces(&self, pieces: &[Bytes]) -> Result<(), VerifyError> {
        let slices: Vec<&[u8]> = pieces.iter().map(|p| &p[..]).collect();
        self.check_slices(&slices)
    }

    fn check_slices(&self, slices: &[&[u8]]) -> Result<(), VerifyError> {
        let slices = || slices.iter().copied();
        let md5 = Md5Hash::of_pieces(slices());
        if md5 != self.md5 {
            return Err(VerifyError::Md5 {
                index: self.index,
                expected: self.md5,
                actual: md5,
            });
        }
        let blake3 = Blake3Hash::of_pieces(slices());
        if blake3 != self.blake3 {
            return Err(VerifyError::Blake3 {
                index: self.index,
                expected: self.blake3,
                actual: blake3,
            });
        }
        Ok(())
    }
}

/// A chunk's bytes as they arrived: the network's pieces, in order.
pub type Pieces = Vec<Bytes>;

/// Groups a byte stream back into the manifest's chunks.
#[derive(Debug)]
pub struct Reassembler {
    sizes: std::vec::IntoIter<ExpectedChunk>,
    current: Option<ExpectedChunk>,
    /// The pieces of the current chunk so far, and their length.
    partial: Pieces,
    partial_len: usize,
    received: u64,
    size: u64,
}

impl Reassembler {
    /// A reassembler for `file`.
    pub fn new(file: &ExpectedFile) -> Self {
        let mut sizes = file.chunks.clone().into_iter();
        let current = sizes.next();
        Reassembler {
            sizes,
            current,
            partial: Vec::new(),
            partial_len: 0,
            received: 0,
            size: file.size,
        }
    }

    /// Adds received bytes; returns the chunks they complete, each as the
    /// pieces it arrived in (sharing `data`'s memory).
    ///
    /// # Errors
    /// [`VerifyError::TooLong`] if the bytes run past the file's end.
    pub fn push(&mut self, mut data: Bytes) -> Result<Vec<(ExpectedChunk, Pieces)>, VerifyError> {
        self.received += data.len() as u64;
        if self.received > self.size {
            return Err(VerifyError::TooLong(self.size));
        }
        let mut complete = Vec::new();
        while !data.is_empty() {
            let Some(chunk) = self.current else {
                return Err(VerifyError::TooLong(self.size));
            };
            let wanted = chunk.size as usize - self.partial_len;
            let piece = data.split_to(wanted.min(data.len()));
            self.partial_len += piece.len();
            self.partial.push(piece);
            if self.partial_len == chunk.size as usize {
                complete.push((chunk, std::mem::take(&mut self.partial)));
                self.partial_len = 0;
                self.current = self.sizes.next();
            }
        }
        Ok(complete)
    }

    /// Confirms the stream ended exactly at the file's end.
    ///
    /// # Errors
    /// [`VerifyError::TooShort`] if bytes are missing.
    pub fn finish(&self) -> Result<(), VerifyError> {
        if self.received == self.size {
            Ok(())
        } else {
            Err(VerifyError::TooShort {
                received: self.received,
                size: self.size,
            })
        }
    }
}

/// What `content` cut into chunks of `chunk_size` adds up to, for tests.
#[cfg(test)]
pub(crate) fn expected(content: &[u8], chunk_size: usize) -> ExpectedFile {
    use crate::chunk::ChunkRef;
    let chunks = content
        .chunks(chunk_size)
        .enumerate()
        .map(|(index, c)| {
            let r = ChunkRef::compute(c);
            ExpectedChunk {
                index,
                size: r.size,
                blake3: r.hash,
                md5: r.md5,
            }
        })
        .collect();
    ExpectedFile {
        chunks,
        size: content.len() as u64,
        blake3: Some(Blake3Hash::of(content)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassembles_chunks_from_any_piece_sizes_and_checks_them() {
        let content: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        let file = expected(&content, 4096);
        for piece in [1, 7, 4096, 5000, 10_000] {
            let mut r = Reassembler::new(&file);
            let mut out = Vec::new();
            for p in content.chunks(piece) {
                for (chunk, pieces) in r.push(Bytes::copy_from_slice(p)).unwrap() {
                    chunk.check_pieces(&pieces).unwrap();
                    out.extend_from_slice(&pieces.concat());
                }
            }
            r.finish().unwrap();
            assert_eq!(out, content, "pieces of {piece}");
        }
    }

    #[test]
    fn damage_excess_and_truncation_are_caught() {
        let content = vec![5u8; 9000];
        let file = expected(&content, 4096);
        let mut damaged = content.clone();
        damaged[5000] ^= 1;
        let mut r = Reassembler::new(&file);
        let chunks = r.push(Bytes::from(damaged)).unwrap();
        assert!(chunks[0].0.check_pieces(&chunks[0].1).is_ok());
        assert!(matches!(
            chunks[1].0.check_pieces(&chunks[1].1),
            Err(VerifyError::Md5 { index: 1, .. })
        ));

        let mut r = Reassembler::new(&file);
        assert!(matches!(
            r.push(Bytes::from(vec![0u8; 9001])),
            Err(VerifyError::TooLong(9000))
        ));

        let mut r = Reassembler::new(&file);
        r.push(Bytes::from(vec![0u8; 100])).unwrap();
        assert!(matches!(
            r.finish(),
            Err(VerifyError::TooShort {
                received: 100,
                size: 9000
            })
        ));
    }
}
