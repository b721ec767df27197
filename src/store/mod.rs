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
//! never point at bytes that were not synced. Every open syncs the data
//! directory, so a first start's database file and segment directory are
//! durable before anything in them is acknowledged.
//!
//! `crash_tests` holds the store to this: it crashes put, overwrite,
//! delete, collection, hole punching, recovery and a first start at every
//! one of their persistence steps, as a process death and as a power loss
//! (see `crash_points`), and audits the reopened store.
//!
//! # Space reclamation
//!
//! Chunks are shared by every file version that references them (rows in
//! `chunk-refs-0`). A chunk whose last reference goes away is kept for a
//! grace period (`gc_grace`), then deleted from the index, and the transaction
//! that deletes it also records its byte range; after commit the range is
//! punched out of the segment (`fallocate(PUNCH_HOLE)`), which returns the
//! blocks to the file system at once without rewriting anything, and the
//! segment is synced before the range is forgotten. A sealed segment with
//! no live chunk left is deleted. Ranges not yet punched (or punched but not
//! synced) when a crash hits are punched at the next start-up.
//!
//! References of a version older than one known to exist are dead (last
//! writer wins), so the store keeps each name's newest known version (its
//! *floor*, `name-floors-0`) and lets go of older references as soon as it
//! learns of a newer version, instead of waiting for a release it may have
//! missed (see `floors`).
//!
//! # Reads
//!
//! Every chunk read re-hashes the bytes with BLAKE3; a mismatch is reported
//! as [`StoreError::Corrupt`], never returned.
//!
//! # Where the code is
//!
//! This file holds [`Store`], the one handle on the data directory, with
//! its plumbing (open, queueing writes for the writer thread, running reads
//! on blocking threads), the write operations it queues, and the public
//! types. Reads live by concept: `chunk_reads` (a chunk's bytes and index
//! entry), `record_reads` (records and heads by name), `scans` (pages and
//! ring-range digests for repair), `stats` (figures for status output).
//! `writer` applies every change, with `records`, `references`, `floors`
//! and `peers` saying how each kind of row changes; `tables` defines the
//! rows, `recovery` runs once at open, and `uploads` is the in-memory
//! registry of uploads this peer coordinates.

mod chunk_reads;
mod database;
mod error;
mod floors;
mod peers;
mod record_reads;
mod records;
mod recovery;
mod references;
mod scans;
mod segments;
mod stats;
mod tables;
mod uploads;
mod writer;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use redb::ReadableDatabase;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

pub use crate::chunk::{FileSummary, RecordHead};
pub use error::{DatabaseError, Result, StoreError};
pub use peers::{KnownPeer, MAX_KNOWN_PEERS, PeerBookChange};
pub use stats::StoreStats;
pub use uploads::UploadGuard;

use self::database::DbSlot;
use self::segments::SegmentFiles;
use self::uploads::Uploads;
use self::writer::{Op, Writer};
use crate::chunk::{Blake3Hash, FileName, FileRecord, Md5Hash, Reference, Version};
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
    /// The record is now the current one for its name, which had none.
    Applied,
    /// The record is now the current one, over an older version (live or
    /// deleted) of its name.
    Replaced,
    /// The same version was already stored.
    Unchanged,
    /// A newer version is stored (its clock reading given); the record
    /// was ignored.
    Superseded {
        /// The stored version's clock reading.
        newer: crate::chunk::Hlc,
    },
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
    /// Name floors dropped (unused for longer than the tombstone TTL).
    pub floors_dropped: u64,
    /// Segment files deleted.
    pub segments_removed: u64,
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
        create_data_dir(data_dir)?;
        let db = DbSlot::open(&data_dir.join(DB_FILE), config.cache_bytes)?;
        let segments = SegmentFiles::open(data_dir.join(SEGMENT_DIR))?;
        Store::recover(data_dir, db, segments, config)
    }

    /// Brings freshly opened files in line with the committed index and
    /// builds the store on them.
    fn recover(
        data_dir: &Path,
        db: DbSlot,
        segments: SegmentFiles,
        config: &StoreConfig,
    ) -> Result<(Store, StoreWriter)> {
        // The database file and the segment directory may have just been
        // created: their directory entries must be durable before anything
        // written in them is acknowledged, or a power cut could take the
        // whole store with them.
        segments.sync_directory(data_dir)?;
        let next_segment = recovery::recover(&*db.get()?, &segments)?;
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
    /// hint are still recorded. References older than the newest version
    /// this peer knows for their name are skipped (see
    /// [`Store::supersede`]); the chunk is stored all the same.
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
    /// peer that already has it is never sent it again. A reference older
    /// than the newest version this peer knows for the name (see
    /// [`Store::supersede`]) is not recorded, since it could only leak, but
    /// the answer is the same.
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

    /// Notes that `version` of `name` exists, so every older version is
    /// dead: raises the name's floor to `version` (never lowers it) and, in
    /// the same transaction, releases every reference held here for `name`
    /// with an older version (an equal or newer one is kept). Later claims
    /// and stores below the floor record no reference. Returns how many
    /// references were released. A peer that missed an older version's
    /// release thus lets go as soon as it hears of a newer version, rather
    /// than at the next audit. Storing a record does the same for the
    /// record's version (see [`Store::put_record`]).
    ///
    /// # Errors
    /// I/O and database errors; nothing is changed then.
    pub async fn supersede(&self, name: FileName, version: Version) -> Result<u64> {
        self.submit(|reply| Op::Supersede {
            name,
            version,
            reply,
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

    /// Stores `record` as the current record for its name unless a newer
    /// version is already stored (last writer wins). A manifest's owners
    /// need not hold its chunks, so nothing about chunks is checked. In the
    /// same transaction the name's floor rises to the version now stored,
    /// releasing the references of older versions held here, as
    /// [`Store::supersede`] does.
    ///
    /// # Errors
    /// I/O and database errors; nothing is stored then.
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

    /// Deletes chunks unreferenced for longer than the policy's grace and
    /// tombstones older than its TTL, and
    /// returns their space to the file system.
    ///
    /// # Errors
    /// I/O and database errors; nothing is deleted then.
    pub async fn collect_garbage(&self, policy: GcPolicy) -> Result<GcReport> {
        self.submit(|reply| Op::Collect { policy, reply }).await
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

    /// Bytes available to unprivileged writers on the file system that
    /// holds the chunks, if it can be read.
    pub fn free_bytes(&self) -> Option<u64> {
        let stats = rustix::fs::statvfs(self.segments.dir()).ok()?;
        Some(stats.f_bavail.saturating_mul(stats.f_frsize))
    }
}

/// Creates the data directory if it is missing.
fn create_data_dir(data_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| StoreError::io(format!("creating {}", data_dir.display()), e))
}

#[cfg(test)]
mod crash_checks;
#[cfg(test)]
mod crash_points;
#[cfg(test)]
mod crash_runs;
#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod crash_undo;
#[cfg(test)]
mod floor_tests;
#[cfg(test)]
mod tests;
