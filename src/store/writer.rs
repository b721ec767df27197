//! The store's single writer: every change to the store goes through here.
//!
//! One thread owns the active segment and every redb write transaction. It
//! takes operations from a channel in batches (group commit): the chunk bytes
//! of the whole batch are appended and `fdatasync`ed, then one redb
//! transaction indexes them and commits durably, and only then is any
//! operation of the batch answered. So an acknowledged write is on disk, and
//! a crash at any point leaves at worst unindexed bytes past a segment's
//! committed length, which start-up cuts off. Batching lets many concurrent
//! writers share one pair of syncs.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use redb::{Database, Durability, ReadableTable, Table};
use tokio::sync::{mpsc, oneshot};

use super::database::DbSlot;
use super::error::{Result, StoreError};
use super::peers::{self, PeerBookChange};
use super::records::{self, FileHead, HeadState};
use super::references;
use super::segments::SegmentFiles;
use super::tables::{
    CHUNK_REFS, CHUNKS, COUNTERS, ChunkEntry, FILE_CHUNKS, FILES, HINTS, HOLES, MAX_HINTED_OWNERS,
    PEERS, RECORD_POSITIONS, REF_CHUNKS, REFERENCES, SEGMENTS, SegmentEntry, TOMBSTONES,
    UNREFERENCED,
};
use super::{GcPolicy, GcReport, PutOutcome, RecordOutcome};
use crate::chunk::{Blake3Hash, FileRecord, Md5Hash, Reference, name_position, wall_millis};
use crate::codec;

/// Most operations committed in one transaction.
const MAX_BATCH_OPS: usize = 256;
/// Most chunk bytes committed in one transaction.
const MAX_BATCH_BYTES: usize = 64 * 1024 * 1024;
/// Most unreferenced chunks (and, separately, tombstones) deleted by one
/// collection pass; the rest wait for the next, so collection never holds up
/// writes for long.
const MAX_COLLECT_PER_PASS: usize = 20_000;

/// A request to the writer.
pub(super) enum Op {
    PutChunk {
        hash: Blake3Hash,
        md5: Md5Hash,
        data: Bytes,
        references: Vec<Reference>,
        hint: Option<Vec<u8>>,
        reply: oneshot::Sender<Result<PutOutcome>>,
    },
    Claim {
        hashes: Vec<Blake3Hash>,
        reference: Reference,
        reply: oneshot::Sender<Result<Vec<bool>>>,
    },
    Release {
        id: Blake3Hash,
        reply: oneshot::Sender<Result<u64>>,
    },
    DropChunk {
        hash: Blake3Hash,
        reply: oneshot::Sender<Result<bool>>,
    },
    DropRecord {
        record: Box<FileRecord>,
        reply: oneshot::Sender<Result<bool>>,
    },
    PutRecord {
        record: Box<FileRecord>,
        reply: oneshot::Sender<Result<RecordOutcome>>,
    },
    Collect {
        policy: GcPolicy,
        reply: oneshot::Sender<Result<GcReport>>,
    },
    Peers {
        change: PeerBookChange,
        reply: oneshot::Sender<Result<u64>>,
    },
    Stop {
        reply: oneshot::Sender<()>,
    },
}

/// The result of one operation, held back until its batch commits.
enum Outcome {
    Chunk(PutOutcome),
    Claim(Vec<bool>),
    Release(u64),
    Dropped(bool),
    Record(RecordOutcome),
    Collect(GcReport),
    Peers(u64),
}

impl Op {
    /// Answers the operation with its outcome once the batch is durable.
    fn answer(self, outcome: Outcome) {
        // A dropped receiver means the caller went away; the write stands.
        match (self, outcome) {
            (Op::PutChunk { reply, .. }, Outcome::Chunk(o)) => drop(reply.send(Ok(o))),
            (Op::Claim { reply, .. }, Outcome::Claim(o)) => drop(reply.send(Ok(o))),
            (Op::Release { reply, .. }, Outcome::Release(o)) => drop(reply.send(Ok(o))),
            (Op::DropChunk { reply, .. } | Op::DropRecord { reply, .. }, Outcome::Dropped(o)) => {
                drop(reply.send(Ok(o)))
            }
            (Op::PutRecord { reply, .. }, Outcome::Record(o)) => drop(reply.send(Ok(o))),
            (Op::Collect { reply, .. }, Outcome::Collect(o)) => drop(reply.send(Ok(o))),
            (Op::Peers { reply, .. }, Outcome::Peers(o)) => drop(reply.send(Ok(o))),
            _ => tracing::error!("store writer paired an operation with another's outcome"),
        }
    }

    /// Answers the operation with its batch's failure.
    fn fail(self, error: &Arc<StoreError>) {
        let e = || StoreError::Shared(Arc::clone(error));
        match self {
            Op::PutChunk { reply, .. } => drop(reply.send(Err(e()))),
            Op::Claim { reply, .. } => drop(reply.send(Err(e()))),
            Op::Release { reply, .. } => drop(reply.send(Err(e()))),
            Op::DropChunk { reply, .. } | Op::DropRecord { reply, .. } => {
                drop(reply.send(Err(e())))
            }
            Op::PutRecord { reply, .. } => drop(reply.send(Err(e()))),
            Op::Collect { reply, .. } => drop(reply.send(Err(e()))),
            Op::Peers { reply, .. } => drop(reply.send(Err(e()))),
            Op::Stop { reply } => drop(reply.send(())),
        }
    }
}

/// The segment currently taking appends.
struct Active {
    id: u32,
    file: File,
    /// Bytes written, including this batch's uncommitted appends.
    written: u64,
    /// Bytes covered by committed index rows.
    committed: u64,
    /// Whether this batch appended to it.
    dirty: bool,
}

/// What one batch changes besides its tables, kept until it commits or
/// fails.
#[derive(Default)]
struct Batch {
    /// Segment rows touched, written back before commit.
    touched: HashMap<u32, SegmentEntry>,
    /// Segments created, deleted again if the batch fails.
    created: Vec<u32>,
    /// Byte ranges of deleted chunks, punched after commit.
    holes: Vec<(u32, u64, u64)>,
    /// Segments left without live chunks, deleted after commit.
    dead_segments: Vec<u32>,
    /// Whether the commit itself was attempted: a commit that reports an
    /// error may still have reached the disk, so its effects are not undone.
    committing: bool,
}

impl Batch {
    /// The batch's copy of segment `id`'s row, loaded on first touch.
    fn segment(&mut self, t: &Tables<'_>, id: u32) -> Result<&mut SegmentEntry> {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.touched.entry(id) {
            let entry = match t.segments.get(&id)? {
                Some(raw) => codec::decode(raw.value())?,
                None => SegmentEntry::default(),
            };
            slot.insert(entry);
        }
        Ok(self
            .touched
            .get_mut(&id)
            .expect("the entry was just inserted"))
    }
}

/// The open tables of one batch's transaction.
pub(super) struct Tables<'txn> {
    pub(super) chunks: Table<'txn, &'static [u8; 32], &'static [u8]>,
    pub(super) refs: Table<'txn, &'static [u8; 64], ()>,
    pub(super) ref_chunks: Table<'txn, &'static [u8; 64], ()>,
    pub(super) references: Table<'txn, &'static [u8; 32], &'static [u8]>,
    pub(super) hints: Table<'txn, &'static [u8; 32], &'static [u8]>,
    pub(super) unreferenced: Table<'txn, (u64, &'static [u8; 32]), ()>,
    pub(super) segments: Table<'txn, u32, &'static [u8]>,
    pub(super) holes: Table<'txn, (u32, u64), u64>,
    pub(super) files: Table<'txn, &'static str, &'static [u8]>,
    pub(super) file_chunks: Table<'txn, &'static str, &'static [u8]>,
    pub(super) record_positions: Table<'txn, (u64, &'static str), ()>,
    pub(super) tombstones: Table<'txn, (u64, &'static str), ()>,
    pub(super) counters: Table<'txn, &'static str, u64>,
    pub(super) peers: Table<'txn, &'static [u8], &'static [u8]>,
}

/// The writer thread's state. Built by `Store::open`, started by
/// [`super::StoreWriter::spawn`].
pub(super) struct Writer {
    db: Arc<DbSlot>,
    segments: Arc<SegmentFiles>,
    rx: mpsc::Receiver<Op>,
    segment_bytes: u64,
    active: Option<Active>,
    next_segment: u32,
}

impl Writer {
    pub fn new(
        db: Arc<DbSlot>,
        segments: Arc<SegmentFiles>,
        rx: mpsc::Receiver<Op>,
        segment_bytes: u64,
        next_segment: u32,
    ) -> Self {
        Writer {
            db,
            segments,
            rx,
            segment_bytes,
            active: None,
            next_segment,
        }
    }

    /// Serves operations until the channel closes or a `Stop` arrives.
    pub fn run(mut self) {
        while let Some(first) = self.rx.blocking_recv() {
            let mut batch = Vec::new();
            let mut bytes = 0;
            let mut stop = None;
            let mut next = Some(first);
            while let Some(op) = next.take() {
                match op {
                    Op::Stop { reply } => {
                        stop = Some(reply);
                        break;
                    }
                    op => {
                        if let Op::PutChunk { data, .. } = &op {
                            bytes += data.len();
                        }
                        batch.push(op);
                    }
                }
                if batch.len() < MAX_BATCH_OPS && bytes < MAX_BATCH_BYTES {
                    next = self.rx.try_recv().ok();
                }
            }
            // Collections commit on their own: freeing space must not fail
            // because writes in the same batch hit a full disk, which is
            // exactly when it is needed. They go after the writes, whose
            // failure cuts the segment back first.
            let (collections, writes): (Vec<Op>, Vec<Op>) = batch
                .into_iter()
                .partition(|op| matches!(op, Op::Collect { .. }));
            for ops in [writes, collections] {
                if !ops.is_empty() {
                    self.apply(ops);
                }
            }
            if let Some(reply) = stop {
                self.rx.close();
                let _ = reply.send(());
                tracing::debug!("store writer stopped");
                return;
            }
        }
    }

    fn apply(&mut self, ops: Vec<Op>) {
        let batch_len = ops.len();
        let mut batch = Batch::default();
        match self.commit_batch(&ops, &mut batch) {
            Ok(outcomes) => {
                // Freeing space first means a collection's caller sees it done.
                self.after_commit(batch);
                for (op, outcome) in ops.into_iter().zip(outcomes) {
                    op.answer(outcome);
                }
            }
            Err(error) => {
                tracing::error!(%error, "store write failed; the batch was not acknowledged");
                self.roll_back(&batch);
                // redb refuses all further work after an I/O failure until
                // it is reopened; reopening a healthy database is cheap.
                if let Err(error) = self.db.reopen() {
                    tracing::error!(%error, "cannot reopen the database; retrying after the next failed write");
                }
                let error = Arc::new(error);
                // Writing chunk bytes is what fails on a full disk; the
                // batch's other operations (claims, releases, records) need
                // little room, and a release is what gives room back. So
                // they get a transaction of their own. Each is idempotent,
                // so running one again after a commit that may have landed
                // changes nothing.
                let (chunks, others): (Vec<Op>, Vec<Op>) = ops
                    .into_iter()
                    .partition(|op| matches!(op, Op::PutChunk { .. }));
                for op in chunks {
                    op.fail(&error);
                }
                if !others.is_empty() {
                    if others.len() < batch_len {
                        self.apply(others);
                    } else {
                        for op in others {
                            op.fail(&error);
                        }
                    }
                }
            }
        }
    }

    /// Applies every operation of the batch in one transaction and commits
    /// it durably; returns each operation's outcome, in order.
    fn commit_batch(&mut self, ops: &[Op], batch: &mut Batch) -> Result<Vec<Outcome>> {
        let mut outcomes = Vec::with_capacity(ops.len());
        let now = wall_millis();
        let db = self.db.get()?;
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut t = Tables {
                chunks: txn.open_table(CHUNKS)?,
                refs: txn.open_table(CHUNK_REFS)?,
                ref_chunks: txn.open_table(REF_CHUNKS)?,
                references: txn.open_table(REFERENCES)?,
                hints: txn.open_table(HINTS)?,
                unreferenced: txn.open_table(UNREFERENCED)?,
                segments: txn.open_table(SEGMENTS)?,
                holes: txn.open_table(HOLES)?,
                files: txn.open_table(FILES)?,
                file_chunks: txn.open_table(FILE_CHUNKS)?,
                record_positions: txn.open_table(RECORD_POSITIONS)?,
                tombstones: txn.open_table(TOMBSTONES)?,
                counters: txn.open_table(COUNTERS)?,
                peers: txn.open_table(PEERS)?,
            };
            for op in ops {
                let outcome = match op {
                    Op::PutChunk {
                        hash,
                        md5,
                        data,
                        references,
                        hint,
                        ..
                    } => {
                        let outcome = self.put_chunk(&mut t, batch, *hash, *md5, data, now)?;
                        for reference in references {
                            references::claim(&mut t, hash, reference)?;
                        }
                        if let Some(owner) = hint {
                            record_hint(&mut t, hash, owner)?;
                        }
                        Outcome::Chunk(outcome)
                    }
                    Op::Claim {
                        hashes, reference, ..
                    } => {
                        let mut held = Vec::with_capacity(hashes.len());
                        for hash in hashes {
                            let present = t.chunks.get(&hash.0)?.is_some();
                            if present {
                                references::claim(&mut t, hash, reference)?;
                            }
                            held.push(present);
                        }
                        Outcome::Claim(held)
                    }
                    Op::Release { id, .. } => {
                        Outcome::Release(references::release(&mut t, id, now)?)
                    }
                    Op::PutRecord { record, .. } => {
                        Outcome::Record(records::put_record(&mut t, record)?)
                    }
                    Op::DropChunk { hash, .. } => {
                        Outcome::Dropped(self.drop_chunk(&mut t, batch, hash)?)
                    }
                    Op::DropRecord { record, .. } => {
                        Outcome::Dropped(records::drop_record(&mut t, record)?)
                    }
                    Op::Collect { policy, .. } => {
                        Outcome::Collect(self.collect(&mut t, batch, *policy, now)?)
                    }
                    Op::Peers { change, .. } => Outcome::Peers(peers::apply(&mut t, change)?),
                    Op::Stop { .. } => continue,
                };
                outcomes.push(outcome);
            }
            if let Some(active) = &mut self.active
                && active.dirty
            {
                active
                    .file
                    .sync_data()
                    .map_err(|e| StoreError::io(format!("syncing segment {}", active.id), e))?;
                batch.segment(&t, active.id)?.committed_len = active.written;
            }
            for (id, entry) in &batch.touched {
                if entry.sealed && entry.live_chunks == 0 {
                    t.segments.remove(id)?;
                    let stale: Vec<(u32, u64)> = t
                        .holes
                        .range((*id, 0)..=(*id, u64::MAX))?
                        .map(|r| r.map(|(k, _)| k.value()))
                        .collect::<Result<_, _>>()?;
                    for key in stale {
                        t.holes.remove(key)?;
                    }
                    batch.dead_segments.push(*id);
                } else {
                    t.segments.insert(id, codec::encode(entry)?.as_slice())?;
                }
            }
        }
        batch.committing = true;
        txn.commit()?;
        if let Some(active) = &mut self.active {
            active.dirty = false;
            active.committed = active.written;
        }
        Ok(outcomes)
    }

    fn put_chunk(
        &mut self,
        t: &mut Tables<'_>,
        batch: &mut Batch,
        hash: Blake3Hash,
        md5: Md5Hash,
        data: &[u8],
        now: u64,
    ) -> Result<PutOutcome> {
        let existing = t.chunks.get(&hash.0)?.map(|v| v.value().to_vec());
        let Some(raw) = existing else {
            let (segment, offset, len) = self.store_bytes(t, batch, data)?;
            let entry = ChunkEntry {
                segment,
                offset,
                len,
                md5,
                unreferenced_since: Some(now),
            };
            t.chunks
                .insert(&hash.0, codec::encode(&entry)?.as_slice())?;
            t.unreferenced.insert((now, &hash.0), ())?;
            return Ok(PutOutcome::Stored);
        };
        let mut entry: ChunkEntry = codec::decode(&raw)?;
        let mut outcome = PutOutcome::AlreadyStored;
        // Deduplication must not trust a copy it has not looked at: if the
        // stored bytes went bad, the copy in hand replaces them.
        let intact = self
            .segments
            .read(entry.segment, entry.offset, entry.len)
            .is_ok_and(|stored| stored == data);
        if !intact {
            tracing::warn!(chunk = %hash, segment = entry.segment, "stored copy of a chunk is damaged; replacing it with the copy just received");
            release_location(t, batch, &entry)?;
            let (segment, offset, len) = self.store_bytes(t, batch, data)?;
            entry.segment = segment;
            entry.offset = offset;
            entry.len = len;
            entry.md5 = md5;
            outcome = PutOutcome::Stored;
        }
        if let Some(since) = entry.unreferenced_since {
            // Rewriting an unreferenced chunk restarts its grace period,
            // so an upload that reuses it does not race its collection.
            t.unreferenced.remove((since, &hash.0))?;
            t.unreferenced.insert((now, &hash.0), ())?;
            entry.unreferenced_since = Some(now);
        }
        t.chunks
            .insert(&hash.0, codec::encode(&entry)?.as_slice())?;
        Ok(outcome)
    }

    /// Deletes the copy of `hash` held here whatever references it: it is a
    /// surplus copy that its owners hold (with those references) already.
    fn drop_chunk(
        &mut self,
        t: &mut Tables<'_>,
        batch: &mut Batch,
        hash: &Blake3Hash,
    ) -> Result<bool> {
        let Some(raw) = t.chunks.remove(&hash.0)?.map(|v| v.value().to_vec()) else {
            return Ok(false);
        };
        let entry: ChunkEntry = codec::decode(&raw)?;
        if let Some(since) = entry.unreferenced_since {
            t.unreferenced.remove((since, &hash.0))?;
        }
        references::forget_chunk(t, hash)?;
        t.hints.remove(&hash.0)?;
        release_location(t, batch, &entry)?;
        Ok(true)
    }

    /// Appends a chunk's bytes and counts them as live in their segment.
    fn store_bytes(
        &mut self,
        t: &Tables<'_>,
        batch: &mut Batch,
        data: &[u8],
    ) -> Result<(u32, u64, u32)> {
        let len = u32::try_from(data.len())
            .map_err(|_| StoreError::io("chunk too large", std::io::Error::other("over 4 GiB")))?;
        let (segment, offset) = self.append(t, batch, data)?;
        let seg = batch.segment(t, segment)?;
        seg.live_bytes += u64::from(len);
        seg.live_chunks += 1;
        Ok((segment, offset, len))
    }

    /// Appends `data` to the active segment (starting a new one when full)
    /// and returns where it went. The bytes are not durable until the
    /// batch's sync.
    fn append(&mut self, t: &Tables<'_>, batch: &mut Batch, data: &[u8]) -> Result<(u32, u64)> {
        if self.active.is_none() {
            self.active = self.load_active(t)?;
        }
        let full = self
            .active
            .as_ref()
            .is_some_and(|a| a.written > 0 && a.written + data.len() as u64 > self.segment_bytes);
        if full && let Some(old) = self.active.take() {
            if old.dirty {
                old.file
                    .sync_data()
                    .map_err(|e| StoreError::io(format!("syncing segment {}", old.id), e))?;
            }
            let entry = batch.segment(t, old.id)?;
            entry.committed_len = old.written;
            entry.sealed = true;
        }
        if self.active.is_none() {
            let id = self.next_segment;
            self.next_segment += 1;
            let file = self.segments.create(id)?;
            batch.created.push(id);
            batch.touched.insert(id, SegmentEntry::default());
            self.active = Some(Active {
                id,
                file,
                written: 0,
                committed: 0,
                dirty: false,
            });
        }
        let active = self
            .active
            .as_mut()
            .expect("an active segment was just loaded or created");
        let offset = active.written;
        active
            .file
            .write_all_at(data, offset)
            .map_err(|e| StoreError::io(format!("writing segment {}", active.id), e))?;
        active.written += data.len() as u64;
        active.dirty = true;
        Ok((active.id, offset))
    }

    /// The newest unsealed segment from the index, cut back to its committed
    /// length.
    fn load_active(&self, t: &Tables<'_>) -> Result<Option<Active>> {
        let mut newest = None;
        for row in t.segments.iter()? {
            let (id, raw) = row?;
            let entry: SegmentEntry = codec::decode(raw.value())?;
            if !entry.sealed {
                newest = Some((id.value(), entry));
            }
        }
        let Some((id, entry)) = newest else {
            return Ok(None);
        };
        let file = self.segments.open_truncated(id, entry.committed_len)?;
        Ok(Some(Active {
            id,
            file,
            written: entry.committed_len,
            committed: entry.committed_len,
            dirty: false,
        }))
    }

    fn collect(
        &mut self,
        t: &mut Tables<'_>,
        batch: &mut Batch,
        policy: GcPolicy,
        now: u64,
    ) -> Result<GcReport> {
        let mut report = GcReport::default();
        let cutoff = now.saturating_sub(policy.grace_ms);
        let candidates: Vec<(u64, [u8; 32])> = t
            .unreferenced
            .range(..=(cutoff, &[0xffu8; 32]))?
            .map(|r| r.map(|(k, _)| (k.value().0, *k.value().1)))
            .take(MAX_COLLECT_PER_PASS)
            .collect::<Result<_, _>>()?;
        for (since, hash) in candidates {
            t.unreferenced.remove((since, &hash))?;
            let Some(raw) = t.chunks.remove(&hash)?.map(|v| v.value().to_vec()) else {
                continue;
            };
            let entry: ChunkEntry = codec::decode(&raw)?;
            release_location(t, batch, &entry)?;
            t.hints.remove(&hash)?;
            report.chunks_removed += 1;
            report.bytes_removed += u64::from(entry.len);
        }

        let tombstone_cutoff = now.saturating_sub(policy.tombstone_ttl_ms);
        let expired: Vec<(u64, String)> = t
            .tombstones
            .range(..(tombstone_cutoff.saturating_add(1), ""))?
            .take(MAX_COLLECT_PER_PASS)
            .map(|r| r.map(|(k, _)| (k.value().0, k.value().1.to_owned())))
            .collect::<Result<_, _>>()?;
        for (deleted_ms, name) in expired {
            t.tombstones.remove((deleted_ms, name.as_str()))?;
            let head = records::read_head(&t.files, name.as_str())?;
            if let Some(FileHead {
                state: HeadState::Deleted { deleted_ms: d },
                ..
            }) = head
                && d == deleted_ms
            {
                t.files.remove(name.as_str())?;
                t.record_positions
                    .remove((name_position(name.as_str()), name.as_str()))?;
                report.tombstones_purged += 1;
            }
        }
        report.segments_removed = batch
            .touched
            .values()
            .filter(|e| e.sealed && e.live_chunks == 0)
            .count() as u64;
        Ok(report)
    }

    fn after_commit(&mut self, after: Batch) {
        let dead: HashSet<u32> = after.dead_segments.iter().copied().collect();
        for id in &after.dead_segments {
            if let Err(error) = self.segments.remove(*id) {
                tracing::warn!(%error, segment = id, "cannot delete dead segment; start-up retries");
            }
        }
        let mut punched = Vec::new();
        for (id, offset, len) in after.holes {
            if dead.contains(&id) {
                continue;
            }
            match self.segments.punch(id, offset, len) {
                Ok(()) => punched.push((id, offset)),
                Err(error) => {
                    tracing::warn!(%error, "cannot free deleted chunk's space; start-up retries")
                }
            }
        }
        if !dead.is_empty()
            && let Err(error) = self.segments.sync_dir()
        {
            tracing::warn!(%error, "cannot sync segment directory");
        }
        if !punched.is_empty()
            && let Err(error) = self.db.get().and_then(|db| forget_holes(&db, &punched))
        {
            tracing::warn!(%error, "cannot clear punched holes; start-up punches them again");
        }
    }

    /// Returns to the last committed state after a failed batch: the active
    /// segment is reloaded (and cut back) from the index when next needed,
    /// and segments the batch created are deleted, unless the commit was
    /// attempted and may have landed: start-up recovery then deletes them if
    /// the index does not know them.
    fn roll_back(&mut self, batch: &Batch) {
        let active = self.active.take();
        if batch.committing {
            return;
        }
        // Give the failed appends' space back now: on a full disk it is
        // what the next write needs.
        if let Some(active) = active
            && let Err(error) = active.file.set_len(active.committed)
        {
            tracing::warn!(%error, segment = active.id, "cannot cut back the active segment; the next write retries");
        }
        for id in &batch.created {
            if let Err(error) = self.segments.remove(*id) {
                tracing::warn!(%error, segment = id, "cannot delete uncommitted segment");
            }
        }
    }
}

/// Clears punched holes from the index. Not synced: if a crash loses this,
/// start-up punches the same ranges again, which is harmless.
fn forget_holes(db: &Database, punched: &[(u32, u64)]) -> Result<()> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::None)?;
    {
        let mut holes = txn.open_table(HOLES)?;
        for key in punched {
            holes.remove(*key)?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// Notes that the copy of `hash` here stands in for `owner`.
fn record_hint(t: &mut Tables<'_>, hash: &Blake3Hash, owner: &[u8]) -> Result<()> {
    let mut owners: Vec<Vec<u8>> = match t.hints.get(&hash.0)? {
        Some(raw) => codec::decode(raw.value())?,
        None => Vec::new(),
    };
    if !owners.iter().any(|o| o == owner) && owners.len() < MAX_HINTED_OWNERS {
        owners.push(owner.to_vec());
        t.hints
            .insert(&hash.0, codec::encode(&owners)?.as_slice())?;
    }
    Ok(())
}

/// Gives up a chunk's bytes: they no longer count as live in their segment,
/// and their range is recorded (in this transaction) to be punched after
/// commit.
fn release_location(t: &mut Tables<'_>, batch: &mut Batch, entry: &ChunkEntry) -> Result<()> {
    let seg = batch.segment(t, entry.segment)?;
    seg.live_bytes = seg.live_bytes.saturating_sub(u64::from(entry.len));
    seg.live_chunks = seg.live_chunks.saturating_sub(1);
    t.holes
        .insert((entry.segment, entry.offset), u64::from(entry.len))?;
    batch
        .holes
        .push((entry.segment, entry.offset, u64::from(entry.len)));
    Ok(())
}
