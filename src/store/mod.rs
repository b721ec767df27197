//! Durable local persistence: chunks, file records and the peer's own state.
//!
//! The store knows nothing of HTTP or of other peers; it keeps what it is
//! given, says what it has, and never returns bytes that do not match their
//! hash.
//!
//! # Where chunk bytes live
//!
//! Chunk bytes are appended back to back to **segment files**
//! (`DATA/segments/*.seg`, sealed at 256 MiB by default) and indexed in
//! **redb** (`DATA/shoal.redb`), which also holds file records, chunk
//! references and counters. Why not the other layouts:
//!
//! - *Inside redb*: redb rounds values up to power-of-two page runs, so a
//!   1 MiB chunk (the default size) occupies 2 MiB, every byte passes through
//!   its copy-on-write pages and cache, and its file only shrinks through an
//!   offline `compact()`. That fails "disk usage close to bytes stored" and
//!   "deleted space comes back".
//! - *One OS file per chunk*: costs an inode, a directory entry and a
//!   partly used block per chunk, which is what packing small files avoids,
//!   and makes every write three syncs (file, directory, index).
//! - *Segments + index* (chosen): small chunks pack densely with no rounding
//!   beyond the file system's; a batch of writes costs one `fdatasync` of the
//!   segment plus one redb commit; the index stays small (about 100 bytes per
//!   chunk) so redb's cache holds it.
//!
//! # Crash safety
//!
//! A write is acknowledged only after its bytes are `fdatasync`ed and then
//! the redb transaction indexing them has committed with
//! `Durability::Immediate` (see `writer.rs`). Each segment's row records its
//! committed length; at start-up anything past it is cut off, and segment
//! files with no row are deleted. So a crash between writing bytes and
//! indexing them loses only unacknowledged bytes, and an index entry can
//! never point at bytes that were not synced.
//!
//! # Space reclamation
//!
//! Chunks are shared by every file version that references them (rows in
//! `chunk-refs-0`). A chunk whose last reference goes away is kept for a
//! grace period (`gc_grace`), then deleted from the index, and the transaction
//! that deletes it also records its byte range; after commit the range is
//! punched out of the segment (`fallocate(PUNCH_HOLE)`), which returns the
//! blocks to the file system at once without rewriting anything. A sealed
//! segment with no live chunk left is deleted. Ranges not yet punched when a
//! crash hits are punched at the next start-up.
//!
//! # Reads
//!
//! Every chunk read re-hashes the bytes with BLAKE3; a mismatch is reported
//! as [`StoreError::Corrupt`], never returned.

mod database;
mod error;
mod peers;
mod records;
mod references;
mod segments;
mod tables;
mod writer;

use std::collections::HashMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

pub use crate::chunk::{FileSummary, RecordHead};
pub use error::{DatabaseError, Result, StoreError};
pub use peers::{KnownPeer, MAX_KNOWN_PEERS, PeerBookChange};

use self::database::DbSlot;
use self::segments::SegmentFiles;
use self::tables::{
    CHUNK_REFS, CHUNKS, COUNTERS, ChunkEntry, FILE_CHUNKS, FILES, HINTS, HOLES, LIVE_FILES, PEERS,
    RECORD_POSITIONS, REF_CHUNKS, REFERENCES, SEGMENTS, SegmentEntry, TOMBSTONES, UNREFERENCED,
};
use self::writer::{Op, Writer};
use crate::chunk::{Blake3Hash, FileName, FileRecord, Md5Hash, Reference};
use crate::codec;
use crate::config::StoreConfig;

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "shoal.redb";
/// The segment directory's name inside the data directory.
pub const SEGMENT_DIR: &str = "segments";

/// How many writes may wait for the writer before callers are slowed down.
const WRITE_QUEUE: usize = 256;

/// What a chunk write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The bytes were written.
    Stored,
    /// The chunk was already here; nothing was written.
    AlreadyStored,
}

/// A chunk to store (see [`Store::put_chunk`]).
#[derive(Debug, Clone)]
pub struct ChunkWrite {
    /// BLAKE3 of `data`.
    pub hash: Blake3Hash,
    /// MD5 of `data`.
    pub md5: Md5Hash,
    /// The chunk's bytes.
    pub data: Bytes,
    /// The file versions that use the chunk.
    pub references: Vec<Reference>,
    /// The id of the owner this copy stands in for, if it is a hinted copy.
    pub hint_for: Option<Vec<u8>>,
}

/// The smallest chunk key at ring position `position` (a chunk's position
/// is the first eight bytes of its hash).
fn position_key(position: u64) -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&position.to_be_bytes());
    key
}

/// A chunk as a scan of the store sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredChunk {
    /// Its BLAKE3.
    pub hash: Blake3Hash,
    /// Its MD5, as recorded when it was stored.
    pub md5: Md5Hash,
    /// Its length in bytes.
    pub len: u32,
}

/// What a file-record write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// The record is now the current one for its name.
    Applied,
    /// The same version was already stored.
    Unchanged,
    /// A newer version is stored; the record was ignored.
    Superseded,
}

/// What garbage collection may remove.
#[derive(Debug, Clone, Copy)]
pub struct GcPolicy {
    /// Unreferenced chunks younger than this (milliseconds) are kept.
    pub grace_ms: u64,
    /// Tombstones younger than this (milliseconds) are kept.
    pub tombstone_ttl_ms: u64,
}

/// What one garbage-collection pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Chunks deleted.
    pub chunks_removed: u64,
    /// Bytes of chunk data deleted.
    pub bytes_removed: u64,
    /// Tombstones purged.
    pub tombstones_purged: u64,
    /// Segment files deleted.
    pub segments_removed: u64,
}

/// Figures about what the store holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    /// Chunks stored.
    pub chunks: u64,
    /// Bytes of chunk data stored (each chunk once, however many files use it).
    pub bytes: u64,
    /// Live files whose records are stored here.
    pub files: u64,
    /// Segment files on disk.
    pub segments: u64,
    /// Bytes of disk used by segments and the database together.
    pub disk_bytes: u64,
    /// Chunk copies kept here for an owner that was down when they were
    /// written (hinted handoff), to hand back when it returns.
    pub hinted_chunks: u64,
}

/// A handle on the local store. Cheap to clone; all clones share one
/// database and one writer.
#[derive(Clone, Debug)]
pub struct Store {
    db: Arc<DbSlot>,
    segments: Arc<SegmentFiles>,
    writes: mpsc::Sender<Op>,
    uploads: Uploads,
}

/// The references of uploads this peer is coordinating right now. Other
/// peers holding chunks for such a reference ask about it before dropping
/// a reference whose manifest they cannot find (see `crate::files`).
#[derive(Debug, Clone, Default)]
struct Uploads(Arc<std::sync::Mutex<HashMap<[u8; 32], usize>>>);

/// Marks an upload as running until dropped.
#[derive(Debug)]
pub struct UploadGuard {
    uploads: Uploads,
    id: [u8; 32],
}

impl Drop for UploadGuard {
    fn drop(&mut self) {
        let mut running = self.uploads.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = running.get_mut(&self.id) {
            *count -= 1;
            if *count == 0 {
                running.remove(&self.id);
            }
        }
    }
}

/// The writer of a freshly opened store, not yet running. Writes sent
/// before [`StoreWriter::spawn`] wait in the queue.
pub struct StoreWriter(Writer);

impl StoreWriter {
    /// Starts the writer thread. It runs until [`Store::shutdown`] or until
    /// every [`Store`] handle is dropped.
    ///
    /// # Errors
    /// The OS refused to start a thread.
    pub fn spawn(self) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("shoal-store-writer".into())
            .spawn(move || self.0.run())
    }
}

impl std::fmt::Debug for StoreWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreWriter")
    }
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir` and recovers from
    /// any crash: cuts segments back to their committed length, deletes
    /// segment files the index does not know, and frees the space of deleted
    /// chunks not yet freed. Blocking.
    ///
    /// # Errors
    /// [`StoreError::Locked`] if another process has the store open; I/O and
    /// database errors otherwise.
    pub fn open(data_dir: &Path, config: &StoreConfig) -> Result<(Store, StoreWriter)> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::io(format!("creating {}", data_dir.display()), e))?;
        let db = DbSlot::open(&data_dir.join(DB_FILE), config.cache_bytes)?;
        let segments = SegmentFiles::open(data_dir.join(SEGMENT_DIR))?;
        let next_segment = recover(&*db.get()?, &segments)?;
        let db = Arc::new(db);
        let segments = Arc::new(segments);
        let (writes, rx) = mpsc::channel(WRITE_QUEUE);
        let writer = Writer::new(
            Arc::clone(&db),
            Arc::clone(&segments),
            rx,
            config.segment_bytes,
            next_segment,
        );
        let store = Store {
            db,
            segments,
            writes,
            uploads: Uploads::default(),
        };
        Ok((store, StoreWriter(writer)))
    }

    async fn submit<T>(&self, op: impl FnOnce(oneshot::Sender<Result<T>>) -> Op) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.writes
            .send(op(tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::io("store read task", std::io::Error::other(e)))?
    }

    /// Stores a chunk durably, with the references that use it and, for a
    /// copy kept on behalf of an owner that was down, that owner's id. The
    /// digests must be those of the data: callers verify data that came from
    /// elsewhere before storing it. A chunk already present is not written
    /// again (unless its stored copy is damaged), but the references and
    /// hint are still recorded.
    ///
    /// # Errors
    /// [`StoreError::DiskFull`], I/O or database errors; nothing is stored then.
    pub async fn put_chunk(&self, write: ChunkWrite) -> Result<PutOutcome> {
        self.submit(|reply| Op::PutChunk {
            hash: write.hash,
            md5: write.md5,
            data: write.data,
            references: write.references,
            hint: write.hint_for,
            reply,
        })
        .await
    }

    /// Records that `reference` uses each of `hashes` that is stored here,
    /// and says which are. A writer calls this before sending a chunk, so a
    /// peer that already has it is never sent it again.
    ///
    /// # Errors
    /// I/O and database errors; nothing is claimed then.
    pub async fn claim(&self, hashes: Vec<Blake3Hash>, reference: Reference) -> Result<Vec<bool>> {
        self.submit(|reply| Op::Claim {
            hashes,
            reference,
            reply,
        })
        .await
    }

    /// Drops the reference `id` from every chunk it holds here; chunks left
    /// unreferenced are collected after the grace period. Returns how many
    /// chunks the reference held.
    ///
    /// # Errors
    /// I/O and database errors.
    pub async fn release(&self, id: Blake3Hash) -> Result<u64> {
        self.submit(|reply| Op::Release { id, reply }).await
    }

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

    /// Records that this peer is coordinating the upload with reference
    /// `id` until the guard is dropped.
    pub fn upload_running(&self, id: Blake3Hash) -> UploadGuard {
        *self
            .uploads
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.0)
            .or_default() += 1;
        UploadGuard {
            uploads: self.uploads.clone(),
            id: id.0,
        }
    }

    /// Whether this peer is coordinating the upload with reference `id`.
    pub fn is_uploading(&self, id: &Blake3Hash) -> bool {
        self.uploads
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&id.0)
    }

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

    /// Deletes the copy of `hash` held here, whatever references it, and
    /// says whether there was one. Only for a surplus copy whose owners
    /// are known to hold the chunk with those references.
    ///
    /// # Errors
    /// I/O and database errors.
    pub async fn drop_chunk(&self, hash: Blake3Hash) -> Result<bool> {
        self.submit(|reply| Op::DropChunk { hash, reply }).await
    }

    /// Deletes the record of `record`'s name if it is still that version,
    /// and says whether it was. Only for a surplus copy whose owners hold
    /// that version or a newer one.
    ///
    /// # Errors
    /// I/O and database errors.
    pub async fn drop_record(&self, record: FileRecord) -> Result<bool> {
        self.submit(|reply| Op::DropRecord {
            record: Box::new(record),
            reply,
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

    /// Stores `record` as the current record for its name unless a newer
    /// version is already stored. A live record must only name chunks that
    /// are stored here; it then references them, and the chunks the replaced
    /// version referenced lose that reference.
    ///
    /// # Errors
    /// [`StoreError::MissingChunks`] if a chunk of a live record is absent;
    /// I/O and database errors.
    pub async fn put_record(&self, record: FileRecord) -> Result<RecordOutcome> {
        self.submit(|reply| Op::PutRecord {
            record: Box::new(record),
            reply,
        })
        .await
    }

    /// Applies a change to the peer book (see [`PeerBookChange`]) durably;
    /// returns the incarnation now recorded.
    ///
    /// # Errors
    /// I/O and database errors.
    pub async fn update_peer_book(&self, change: PeerBookChange) -> Result<u64> {
        self.submit(|reply| Op::Peers { change, reply }).await
    }

    /// The members remembered from earlier runs.
    ///
    /// # Errors
    /// Database errors.
    pub async fn known_peers(&self) -> Result<Vec<KnownPeer>> {
        self.read(|s| peers::read_known(&s.db.get()?.begin_read()?))
            .await
    }

    /// The current record for `name`, live or tombstone.
    ///
    /// # Errors
    /// Database errors, or an undecodable record.
    pub async fn record(&self, name: &FileName) -> Result<Option<FileRecord>> {
        let name = name.clone();
        self.read(move |s| {
            let txn = s.db.get()?.begin_read()?;
            let files = txn.open_table(FILES)?;
            let chunk_lists = txn.open_table(FILE_CHUNKS)?;
            records::read_record(&files, &chunk_lists, name.as_str())
        })
        .await
    }

    /// The head of the current record for `name`, live or tombstone.
    ///
    /// # Errors
    /// Database errors, or an undecodable record.
    pub async fn head(&self, name: &FileName) -> Result<Option<RecordHead>> {
        let name = name.clone();
        self.read(move |s| {
            let txn = s.db.get()?.begin_read()?;
            let files = txn.open_table(FILES)?;
            records::read_head(&files, name.as_str())?
                .map(|head| head.public(name.as_str()))
                .transpose()
        })
        .await
    }

    /// The heads of the records (live files and tombstones) whose names
    /// start with `prefix` and sort after `after`, in name order, at most
    /// `limit` of them, and whether more follow. Reads only the heads, so a
    /// page of large files costs the same as one of small files.
    ///
    /// # Errors
    /// Database errors, or an undecodable record.
    pub async fn heads(
        &self,
        prefix: String,
        after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<RecordHead>, bool)> {
        self.read(move |s| {
            let txn = s.db.get()?.begin_read()?;
            let table = txn.open_table(FILES)?;
            let start = match &after {
                Some(a) if a.as_str() >= prefix.as_str() => Bound::Excluded(a.as_str()),
                _ => Bound::Included(prefix.as_str()),
            };
            let mut heads = Vec::new();
            for row in table.range::<&str>((start, Bound::Unbounded))? {
                let (key, raw) = row?;
                let name = key.value();
                if !name.starts_with(prefix.as_str()) {
                    break;
                }
                if heads.len() == limit {
                    return Ok((heads, true));
                }
                let head: records::FileHead = codec::decode(raw.value())?;
                heads.push(head.public(name)?);
            }
            Ok((heads, false))
        })
        .await
    }

    /// Deletes chunks unreferenced for longer than the policy's grace and
    /// tombstones older than its TTL, and
    /// returns their space to the file system.
    ///
    /// # Errors
    /// I/O and database errors; nothing is deleted then.
    pub async fn collect_garbage(&self, policy: GcPolicy) -> Result<GcReport> {
        self.submit(|reply| Op::Collect { policy, reply }).await
    }

    /// Counts of what the store holds, and the disk it takes.
    ///
    /// # Errors
    /// Database and I/O errors.
    pub async fn stats(&self) -> Result<StoreStats> {
        self.read(|s| {
            let txn = s.db.get()?.begin_read()?;
            let chunks = txn.open_table(CHUNKS)?.len()?;
            let hinted_chunks = txn.open_table(HINTS)?.len()?;
            let mut bytes = 0;
            let mut segment_count = 0;
            for row in txn.open_table(SEGMENTS)?.iter()? {
                let (_, raw) = row?;
                let entry: SegmentEntry = codec::decode(raw.value())?;
                bytes += entry.live_bytes;
                segment_count += 1;
            }
            let files = txn
                .open_table(COUNTERS)?
                .get(LIVE_FILES)?
                .map_or(0, |v| v.value());
            let db_bytes = std::fs::metadata(s.db.path())
                .map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512)
                .unwrap_or(0);
            Ok(StoreStats {
                chunks,
                bytes,
                files,
                segments: segment_count,
                disk_bytes: s.segments.disk_usage()? + db_bytes,
                hinted_chunks,
            })
        })
        .await
    }

    /// Finishes every write queued so far, then stops the writer. Writes
    /// submitted afterwards fail with [`StoreError::Closed`].
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self.writes.send(Op::Stop { reply }).await.is_ok() {
            let _ = done.await;
        }
    }

    /// The directory holding segment files (for tools and tests that inspect
    /// the layout).
    pub fn segment_dir(&self) -> &Path {
        self.segments.dir()
    }
}

/// Fills the record-position index from the records if it is empty (a data
/// directory written before the index existed).
fn index_record_positions(txn: &redb::WriteTransaction) -> Result<()> {
    let mut positions = txn.open_table(RECORD_POSITIONS)?;
    if !positions.is_empty()? {
        return Ok(());
    }
    let files = txn.open_table(FILES)?;
    for row in files.iter()? {
        let (name, _) = row?;
        let name = name.value();
        positions.insert((crate::chunk::name_position(name), name), ())?;
    }
    Ok(())
}

/// Brings the files on disk in line with the committed index and returns
/// the next free segment id.
fn recover(db: &Database, segments: &SegmentFiles) -> Result<u32> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    let mut known = HashMap::new();
    let mut holes = Vec::new();
    {
        // Creating every table up front lets readers assume they exist.
        txn.open_table(CHUNKS)?;
        txn.open_table(CHUNK_REFS)?;
        txn.open_table(REF_CHUNKS)?;
        txn.open_table(REFERENCES)?;
        txn.open_table(HINTS)?;
        txn.open_table(UNREFERENCED)?;
        txn.open_table(FILES)?;
        txn.open_table(FILE_CHUNKS)?;
        txn.open_table(TOMBSTONES)?;
        index_record_positions(&txn)?;
        txn.open_table(COUNTERS)?;
        txn.open_table(PEERS)?;
        for row in txn.open_table(SEGMENTS)?.iter()? {
            let (id, raw) = row?;
            let entry: SegmentEntry = codec::decode(raw.value())?;
            known.insert(id.value(), entry);
        }
        for row in txn.open_table(HOLES)?.iter()? {
            let (key, len) = row?;
            let (id, offset) = key.value();
            holes.push((id, offset, len.value()));
        }
    }
    txn.commit()?;

    let on_disk = segments.list()?;
    for id in &on_disk {
        match known.get(id) {
            Some(entry) => {
                segments.open_truncated(*id, entry.committed_len)?;
            }
            None => {
                tracing::info!(segment = id, "deleting segment that was never committed");
                segments.remove(*id)?;
            }
        }
    }
    segments.sync_dir()?;
    // A range that cannot be punched now stays recorded for the next start;
    // it only costs space, so it must not keep the peer from starting.
    let mut punched = Vec::new();
    for (id, offset, len) in &holes {
        if !known.contains_key(id) {
            punched.push((*id, *offset));
            continue;
        }
        match segments.punch(*id, *offset, *len) {
            Ok(()) => punched.push((*id, *offset)),
            Err(error) => {
                tracing::warn!(%error, segment = id, "cannot free a deleted chunk's space yet")
            }
        }
    }
    if !punched.is_empty() {
        let txn = db.begin_write()?;
        {
            let mut table = txn.open_table(HOLES)?;
            for key in &punched {
                table.remove(*key)?;
            }
        }
        txn.commit()?;
    }
    let max_id = known.keys().chain(on_disk.iter()).copied().max();
    Ok(max_id.map_or(0, |m| m + 1))
}

#[cfg(test)]
mod tests;
