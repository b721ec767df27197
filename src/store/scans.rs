//! Scans and ring-range digests: walking the chunks, references and records
//! held here a page at a time, and summarising a ring range in one digest
//! so replicas compare ranges rather than lists.
//!
//! A chunk's ring position is the first eight bytes of its hash, so a range
//! of the ring is a key range of `chunks-0`; records are found by ring
//! position through the `record-positions-0` index. Every scan reads in its
//! own read transaction on a blocking thread.

use std::ops::Bound;

use redb::ReadableDatabase;

use super::error::Result;
use super::records;
use super::tables::{CHUNKS, ChunkEntry, FILES, RECORD_POSITIONS, REFERENCES};
use super::{RecordHead, Store, StoredChunk};
use crate::chunk::{Blake3Hash, Reference};
use crate::codec;

/// The smallest chunk key at ring position `position` (a chunk's position
/// is the first eight bytes of its hash).
fn position_key(position: u64) -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&position.to_be_bytes());
    key
}

impl Store {
    /// Up to `limit` of the references held here, in id order after
    /// `after`, with the name and version behind each.
    ///
    /// # Errors
    /// Database errors, or an undecodable reference.
    pub async fn references(
        &self,
        after: Option<Blake3Hash>,
        limit: usize,
    ) -> Result<Vec<(Blake3Hash, Reference)>> {
        self.read(move |s| {
            let txn = s.db.get()?.begin_read()?;
            let table = txn.open_table(REFERENCES)?;
            let start = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.0));
            let mut found = Vec::new();
            for row in table.range::<&[u8; 32]>((start.as_ref(), Bound::Unbounded))? {
                let (key, raw) = row?;
                found.push((
                    crate::chunk::Digest(*key.value()),
                    codec::decode(raw.value())?,
                ));
                if found.len() == limit {
                    break;
                }
            }
            Ok(found)
        })
        .await
    }

    /// Up to `limit` of the chunks stored here, in hash order after `after`,
    /// with their MD5 and length, for scans that visit every chunk (repair,
    /// scrubbing) a page at a time.
    ///
    /// # Errors
    /// Database errors.
    pub async fn chunk_page(
        &self,
        after: Option<Blake3Hash>,
        limit: usize,
    ) -> Result<Vec<StoredChunk>> {
        self.read(move |s| {
            let txn = s.db.get()?.begin_read()?;
            let table = txn.open_table(CHUNKS)?;
            let start = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.0));
            let mut page = Vec::new();
            for row in table.range::<&[u8; 32]>((start.as_ref(), Bound::Unbounded))? {
                let (key, raw) = row?;
                let entry: ChunkEntry = codec::decode(raw.value())?;
                page.push(StoredChunk {
                    hash: crate::chunk::Digest(*key.value()),
                    md5: entry.md5,
                    len: entry.len,
                });
                if page.len() == limit {
                    break;
                }
            }
            Ok(page)
        })
        .await
    }

    /// For each ring range (start, end exclusive, `None` for the top),
    /// how many chunks stored here lie in it and a digest of their hashes
    /// (BLAKE3 over the hashes in order): two peers with equal answers for
    /// a range hold the same chunks there, so replicas compare ranges
    /// rather than chunk lists.
    ///
    /// # Errors
    /// Database errors.
    pub async fn range_digests(
        &self,
        ranges: Vec<(u64, Option<u64>)>,
    ) -> Result<Vec<(u64, Blake3Hash)>> {
        self.read(move |s| {
            let txn = s.db.get()?.begin_read()?;
            let table = txn.open_table(CHUNKS)?;
            let mut digests = Vec::with_capacity(ranges.len());
            for (start, end) in ranges {
                let mut hasher = blake3::Hasher::new();
                let mut count = 0u64;
                let from = position_key(start);
                let rows = match end.map(position_key) {
                    Some(to) => table.range::<&[u8; 32]>(&from..&to)?,
                    None => table.range::<&[u8; 32]>(&from..)?,
                };
                for row in rows {
                    let (key, _) = row?;
                    hasher.update(key.value());
                    count += 1;
                }
                digests.push((count, crate::chunk::Digest(*hasher.finalize().as_bytes())));
            }
            Ok(digests)
        })
        .await
    }

    /// Up to `limit` hashes of chunks stored here in the ring range
    /// `start..end` (`None` for the top), after `after`, in order, and
    /// whether more follow.
    ///
    /// # Errors
    /// Database errors.
    pub async fn hashes_in_range(
        &self,
        start: u64,
        end: Option<u64>,
        after: Option<Blake3Hash>,
        limit: usize,
    ) -> Result<(Vec<Blake3Hash>, bool)> {
        self.read(move |s| {
            let txn = s.db.get()?.begin_read()?;
            let table = txn.open_table(CHUNKS)?;
            let from = match after {
                Some(a) => Bound::Excluded(a.0),
                None => Bound::Included(position_key(start)),
            };
            let to = end.map_or(Bound::Unbounded, |e| Bound::Excluded(position_key(e)));
            let mut hashes = Vec::new();
            for row in table.range::<&[u8; 32]>((from.as_ref(), to.as_ref()))? {
                let (key, _) = row?;
                if hashes.len() == limit {
                    return Ok((hashes, true));
                }
                hashes.push(crate::chunk::Digest(*key.value()));
            }
            Ok((hashes, false))
        })
        .await
    }

    /// For each ring range of name positions (start, end exclusive, `None`
    /// for the top), how many records (live or tombstone) are stored here
    /// and a digest of their names and versions, in position order: equal
    /// answers mean the same records at the same versions.
    ///
    /// # Errors
    /// Database errors, or an undecodable record.
    pub async fn record_range_digests(
        &self,
        ranges: Vec<(u64, Option<u64>)>,
    ) -> Result<Vec<(u64, Blake3Hash)>> {
        self.read(move |s| {
            let txn = s.db.get()?.begin_read()?;
            let positions = txn.open_table(RECORD_POSITIONS)?;
            let files = txn.open_table(FILES)?;
            let mut digests = Vec::with_capacity(ranges.len());
            for (start, end) in ranges {
                let mut hasher = blake3::Hasher::new();
                let mut count = 0u64;
                let to = end.map_or(Bound::Unbounded, |e| Bound::Excluded((e, "")));
                for row in positions.range::<(u64, &str)>((Bound::Included((start, "")), to))? {
                    let (key, _) = row?;
                    let (_, name) = key.value();
                    let Some(head) = records::read_head(&files, name)? else {
                        continue;
                    };
                    hasher.update(&(name.len() as u64).to_le_bytes());
                    hasher.update(name.as_bytes());
                    hasher.update(&head.version.hlc.0.to_le_bytes());
                    hasher.update(head.version.writer.as_bytes());
                    count += 1;
                }
                digests.push((count, crate::chunk::Digest(*hasher.finalize().as_bytes())));
            }
            Ok(digests)
        })
        .await
    }

    /// Up to `limit` heads of the records stored here whose names lie in
    /// the ring range `start..end` (`None` for the top), in position order
    /// after `after` (a position and name), and whether more follow.
    ///
    /// # Errors
    /// Database errors, or an undecodable record.
    pub async fn record_heads_in_range(
        &self,
        start: u64,
        end: Option<u64>,
        after: Option<(u64, String)>,
        limit: usize,
    ) -> Result<(Vec<RecordHead>, bool)> {
        self.read(move |s| {
            let txn = s.db.get()?.begin_read()?;
            let positions = txn.open_table(RECORD_POSITIONS)?;
            let files = txn.open_table(FILES)?;
            let from = match &after {
                Some((position, name)) => Bound::Excluded((*position, name.as_str())),
                None => Bound::Included((start, "")),
            };
            let to = end.map_or(Bound::Unbounded, |e| Bound::Excluded((e, "")));
            let mut heads = Vec::new();
            for row in positions.range::<(u64, &str)>((from, to))? {
                let (key, _) = row?;
                let (_, name) = key.value();
                if heads.len() == limit {
                    return Ok((heads, true));
                }
                if let Some(head) = records::read_head(&files, name)? {
                    heads.push(head.public(name)?);
                }
            }
            Ok((heads, false))
        })
        .await
    }
}
