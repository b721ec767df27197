//! Chunk reads: a chunk's bytes (re-hashed on every read), its index entry,
//! the references holding it, and which of a list of chunks are here.
//!
//! These run on blocking threads against a read transaction of their own,
//! so they never wait for the writer. A read that races the chunk's
//! deletion reports the chunk as absent, never as damaged.

use bytes::Bytes;
use redb::ReadableDatabase;

use super::error::{Result, StoreError};
use super::tables::{self, CHUNK_REFS, CHUNKS, ChunkEntry, REFERENCES};
use super::{Store, StoredChunk};
use crate::chunk::{Blake3Hash, Reference};
use crate::codec;

impl Store {
    /// Reads a chunk and checks it against its hash.
    ///
    /// # Errors
    /// [`StoreError::ChunkNotFound`] if it is not stored here,
    /// [`StoreError::Corrupt`] if the bytes on disk do not match.
    pub async fn read_chunk(&self, hash: Blake3Hash) -> Result<Bytes> {
        self.read(move |s| s.read_chunk_blocking(&hash)).await
    }

    fn read_chunk_blocking(&self, hash: &Blake3Hash) -> Result<Bytes> {
        let entry = self
            .chunk_entry(hash)?
            .ok_or(StoreError::ChunkNotFound(*hash))?;
        let data = self
            .segments
            .read(entry.segment, entry.offset, entry.len)
            .or_else(|e| self.unless_deleted(hash, &entry, e))?;
        if Blake3Hash::of(&data) == *hash {
            return Ok(data);
        }
        self.unless_deleted(hash, &entry, StoreError::Corrupt(*hash))
    }

    /// A read that failed may have raced the chunk's deletion; report that
    /// as "not found" rather than as damage.
    fn unless_deleted<T>(
        &self,
        hash: &Blake3Hash,
        read: &ChunkEntry,
        error: StoreError,
    ) -> Result<T> {
        match self.chunk_entry(hash)? {
            Some(now) if now.segment == read.segment && now.offset == read.offset => {
                if matches!(error, StoreError::Corrupt(_)) {
                    tracing::error!(chunk = %hash, segment = read.segment, offset = read.offset, "stored chunk does not match its hash");
                }
                Err(error)
            }
            _ => Err(StoreError::ChunkNotFound(*hash)),
        }
    }

    fn chunk_entry(&self, hash: &Blake3Hash) -> Result<Option<ChunkEntry>> {
        let txn = self.db.get()?.begin_read()?;
        let table = txn.open_table(CHUNKS)?;
        let raw = table.get(&hash.0)?;
        Ok(match raw {
            Some(raw) => Some(codec::decode(raw.value())?),
            None => None,
        })
    }

    /// The chunk `hash` as stored here, if it is.
    ///
    /// # Errors
    /// Database errors.
    pub async fn stored_chunk(&self, hash: Blake3Hash) -> Result<Option<StoredChunk>> {
        self.read(move |s| {
            Ok(s.chunk_entry(&hash)?.map(|entry| StoredChunk {
                hash,
                md5: entry.md5,
                len: entry.len,
            }))
        })
        .await
    }

    /// The references that hold the chunk `hash` here, at most `limit`.
    ///
    /// # Errors
    /// Database errors, or an undecodable reference.
    pub async fn references_of(&self, hash: Blake3Hash, limit: usize) -> Result<Vec<Reference>> {
        self.read(move |s| {
            let txn = s.db.get()?.begin_read()?;
            let refs = txn.open_table(CHUNK_REFS)?;
            let references = txn.open_table(REFERENCES)?;
            let first = tables::ref_key(&hash.0, &[0u8; 32]);
            let last = tables::ref_key(&hash.0, &[0xffu8; 32]);
            let mut found = Vec::new();
            for row in refs.range::<&[u8; 64]>(&first..=&last)? {
                let (key, _) = row?;
                let mut id = [0u8; 32];
                id.copy_from_slice(&key.value()[32..]);
                if let Some(raw) = references.get(&id)? {
                    found.push(codec::decode(raw.value())?);
                }
                if found.len() == limit {
                    break;
                }
            }
            Ok(found)
        })
        .await
    }

    /// Which of `hashes` are stored here (without reading their bytes).
    ///
    /// # Errors
    /// Database errors.
    pub async fn has_chunks(&self, hashes: Vec<Blake3Hash>) -> Result<Vec<bool>> {
        self.read(move |s| {
            let txn = s.db.get()?.begin_read()?;
            let table = txn.open_table(CHUNKS)?;
            hashes
                .iter()
                .map(|h| Ok(table.get(&h.0)?.is_some()))
                .collect()
        })
        .await
    }
}
