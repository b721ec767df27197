//! Turning a stream of byte buffers of any sizes into fixed-size chunks.
//!
//! The splitter holds at most one partial chunk, so a file of any length is
//! chunked in bounded memory. Buffers that already hold whole chunks are
//! sliced without copying.

use bytes::{Bytes, BytesMut};

/// Accumulates input and hands out chunks of exactly `chunk_size` bytes, then
/// one shorter final chunk from [`ChunkSplitter::finish`].
#[derive(Debug)]
pub struct ChunkSplitter {
    chunk_size: usize,
    partial: BytesMut,
}

impl ChunkSplitter {
    /// A splitter producing chunks of `chunk_size` bytes (at least 1).
    pub fn new(chunk_size: u32) -> Self {
        let chunk_size = (chunk_size as usize).max(1);
        ChunkSplitter {
            chunk_size,
            partial: BytesMut::new(),
        }
    }

    /// Adds `data` and returns every chunk that is now complete, in order.
    pub fn push(&mut self, mut data: Bytes) -> Vec<Bytes> {
        let mut out = Vec::new();
        if !self.partial.is_empty() {
            let wanted = self.chunk_size - self.partial.len();
            let take = wanted.min(data.len());
            self.partial.extend_from_slice(&data.split_to(take));
            if self.partial.len() < self.chunk_size {
                return out;
            }
            out.push(self.partial.split().freeze());
        }
        while data.len() >= self.chunk_size {
            out.push(data.split_to(self.chunk_size));
        }
        if !data.is_empty() {
            self.partial.reserve(self.chunk_size);
            self.partial.extend_from_slice(&data);
        }
        out
    }

    /// The final, possibly short chunk; `None` if the input ended on a chunk
    /// boundary (or was empty).
    pub fn finish(self) -> Option<Bytes> {
        (!self.partial.is_empty()).then(|| self.partial.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split_all(input: &[u8], pieces: &[usize], chunk_size: u32) -> Vec<Bytes> {
        let mut splitter = ChunkSplitter::new(chunk_size);
        let mut out = Vec::new();
        let mut rest = Bytes::copy_from_slice(input);
        for &p in pieces {
            let n = p.min(rest.len());
            out.extend(splitter.push(rest.split_to(n)));
        }
        out.extend(splitter.push(rest));
        out.extend(splitter.finish());
        out
    }

    #[test]
    fn boundaries() {
        for (len, expect) in [
            (0, vec![]),
            (1, vec![1]),
            (3, vec![3]),
            (4, vec![4]),
            (5, vec![4, 1]),
            (8, vec![4, 4]),
        ] {
            let sizes: Vec<usize> = split_all(&vec![1u8; len], &[], 4)
                .iter()
                .map(Bytes::len)
                .collect();
            assert_eq!(sizes, expect, "input of {len} bytes");
        }
    }

    proptest! {
        #[test]
        fn chunks_reassemble_to_input_and_only_the_last_is_short(
            input in proptest::collection::vec(any::<u8>(), 0..2000),
            pieces in proptest::collection::vec(0usize..300, 0..20),
            chunk_size in 1u32..257,
        ) {
            let chunks = split_all(&input, &pieces, chunk_size);
            let joined: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
            prop_assert_eq!(&joined, &input);
            for (i, c) in chunks.iter().enumerate() {
                prop_assert!(!c.is_empty());
                if i + 1 < chunks.len() {
                    prop_assert_eq!(c.len(), chunk_size as usize);
                } else {
                    prop_assert!(c.len() <= chunk_size as usize);
                }
            }
        }
    }
}
