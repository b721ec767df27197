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
//!
//! The writer's parts: `ops` (the operations and how they are answered),
//! `chunks` (appending chunk bytes to segments), `reclaim` (collection and
//! giving space back). Records, references and the peer book change through
//! `super::records`, `super::references` and `super::peers`, which work on
//! the batch's open [`Tables`].

mod chunks;
mod ops;
pub(super) mod reclaim;

use std::collections::HashMap;
use std::fs::File;
use std::sync::Arc;

use redb::{Durability, ReadableTable, Table};
use tokio::sync::mpsc;

use self::chunks::record_hint;
pub(super) use self::ops::Op;
use self::ops::Outcome;
use super::database::DbSlot;
use super::error::Result;
use super::floors;
use super::peers;
use super::records;
use super::references;
use super::segments::SegmentFiles;
use super::tables::{
    CHUNK_REFS, CHUNKS, COUNTERS, FILE_CHUNKS, FILES, FLOOR_AGES, HINTS, HOLES, NAME_FLOORS,
    NAME_REFERENCES, PEERS, RECORD_POSITIONS, REF_CHUNKS, REFERENCES, SEGMENTS, SegmentEntry,
    TOMBSTONES, UNREFERENCED,
};
use crate::chunk::wall_millis;
use crate::codec;

/// Most operations committed in one transaction.
const MAX_BATCH_OPS: usize = 256;
/// Most chunk bytes committed in one transaction.
const MAX_BATCH_BYTES: usize = 64 * 1024 * 1024;

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
    pub(super) name_references: Table<'txn, (&'static str, u64, &'static str), &'static [u8; 32]>,
    pub(super) floors: Table<'txn, &'static str, &'static [u8]>,
    pub(super) floor_ages: Table<'txn, (u64, &'static str), ()>,
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
                name_references: txn.open_table(NAME_REFERENCES)?,
                floors: txn.open_table(NAME_FLOORS)?,
                floor_ages: txn.open_table(FLOOR_AGES)?,
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
                        // A reference below its name's floor is skipped;
                        // the chunk is stored all the same.
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
                            // A chunk here is reported held even when the
                            // reference, below its name's floor, is not
                            // recorded: the caller's answer is unchanged.
                            if present {
                                references::claim(&mut t, hash, reference)?;
                            }
                            held.push(present);
                        }
                        Outcome::Claim(held)
                    }
                    Op::Release { id, .. } => {
                        Outcome::Released(references::release(&mut t, id, now)?)
                    }
                    Op::Supersede { name, version, .. } => {
                        Outcome::Released(floors::supersede(&mut t, name.as_str(), version, now)?)
                    }
                    Op::PutRecord { record, .. } => {
                        let outcome = records::put_record(&mut t, record)?;
                        // Whatever the outcome, the record stored for the
                        // name now is one known to exist.
                        let name = record.name().as_str();
                        if let Some(head) = records::read_head(&t.files, name)? {
                            floors::supersede(&mut t, name, &head.version, now)?;
                        }
                        Outcome::Record(outcome)
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
                self.segments.sync(active.id, &active.file)?;
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
            && let Err(error) = self
                .segments
                .set_len(active.id, &active.file, active.committed)
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
