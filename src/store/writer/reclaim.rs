//! Giving space back: the collection pass (unreferenced chunks past their
//! grace, tombstones past their TTL, unused name floors), and after commit,
//! punching deleted chunks' ranges out of their segments and deleting dead
//! segments.
//!
//! A deleted chunk's range is recorded in `holes-0` in the transaction that
//! deletes it and cleared only once the punch is durable (the segment
//! synced after punching), so a crash or power cut in between costs a
//! second punch at start-up, never leaked space.

use std::collections::{BTreeSet, HashSet};

use redb::{Database, Durability, ReadableTable};

use super::{Batch, Tables, Writer};
use crate::chunk::name_position;
use crate::codec;
use crate::store::error::Result;
use crate::store::records::{self, FileHead, HeadState};
use crate::store::segments::SegmentFiles;
use crate::store::tables::{ChunkEntry, HOLES};
use crate::store::{GcPolicy, GcReport, floors, references};

/// Most unreferenced chunks (and, separately, tombstones and name floors)
/// looked at by one collection pass; the rest wait for the next, so
/// collection never holds up writes for long.
const MAX_COLLECT_PER_PASS: usize = 20_000;

impl Writer {
    /// Deletes chunks unreferenced for longer than the grace, tombstones
    /// older than their TTL, and name floors unused for as long (see
    /// `floors`), at most [`MAX_COLLECT_PER_PASS`] of each.
    pub(super) fn collect(
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
            if entry.unreferenced_since.is_some() {
                references::count_unreferenced(t, -i64::from(entry.len))?;
            }
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
        report.floors_dropped = floors::collect(t, tombstone_cutoff, now, MAX_COLLECT_PER_PASS)?;
        report.segments_removed = batch
            .touched
            .values()
            .filter(|e| e.sealed && e.live_chunks == 0)
            .count() as u64;
        Ok(report)
    }

    /// Deletes the segments and punches the holes a committed batch freed.
    pub(super) fn after_commit(&mut self, after: Batch) {
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
        let punched = durable_holes(&self.segments, punched);
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
}

/// Syncs each segment that ranges were punched in and returns the ranges
/// whose punch is now durable. Only those may be forgotten: a punch a power
/// cut undoes after its range was forgotten would leave the chunk's blocks
/// allocated for as long as the segment lives, with nothing left to free
/// them.
pub(in crate::store) fn durable_holes(
    segments: &SegmentFiles,
    punched: Vec<(u32, u64)>,
) -> Vec<(u32, u64)> {
    let ids: BTreeSet<u32> = punched.iter().map(|(id, _)| *id).collect();
    let mut unsynced = HashSet::new();
    for id in ids {
        if let Err(error) = segments.sync_punched(id) {
            tracing::warn!(%error, segment = id, "cannot make freed space durable; start-up frees it again");
            unsynced.insert(id);
        }
    }
    punched
        .into_iter()
        .filter(|(id, _)| !unsynced.contains(id))
        .collect()
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

/// Gives up a chunk's bytes: they no longer count as live in their segment,
/// and their range is recorded (in this transaction) to be punched after
/// commit.
pub(super) fn release_location(
    t: &mut Tables<'_>,
    batch: &mut Batch,
    entry: &ChunkEntry,
) -> Result<()> {
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
