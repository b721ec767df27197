//! File records and the chunk references they hold, inside the writer's
//! transaction.
//!
//! A live record references each of its distinct chunks (one row per chunk
//! and version in `chunk-refs-0`); replacing or deleting the record drops
//! those rows, and a chunk left with none is marked unreferenced, which
//! starts its grace period before collection. Rows are keyed by version, so
//! adding or removing a reference twice changes nothing.

use std::collections::HashSet;

use redb::ReadableTable;

use super::RecordOutcome;
use super::error::{Result, StoreError};
use super::records::{self, FileHead};
use super::tables::{self, ChunkEntry, LIVE_FILES};
use super::writer::Tables;
use crate::chunk::{Blake3Hash, FileRecord};
use crate::codec;

/// Stores `record` under its name if it is newer than what is there, moving
/// chunk references from the old version to the new.
pub(super) fn put_record(
    t: &mut Tables<'_>,
    record: &FileRecord,
    now: u64,
) -> Result<RecordOutcome> {
    let name = record.name().as_str();
    if let Some(head) = records::read_head(&t.files, name)? {
        match head.version.cmp(record.version()) {
            std::cmp::Ordering::Greater => return Ok(RecordOutcome::Superseded),
            std::cmp::Ordering::Equal => return Ok(RecordOutcome::Unchanged),
            std::cmp::Ordering::Less => {}
        }
    }
    let existing = records::read_record(&t.files, &t.file_chunks, name)?;

    if let FileRecord::Live(manifest) = record {
        let distinct: HashSet<&Blake3Hash> = manifest.chunks.iter().map(|c| &c.hash).collect();
        let mut missing = Vec::new();
        for hash in &distinct {
            if t.chunks.get(&hash.0)?.is_none() {
                missing.push(**hash);
            }
        }
        if !missing.is_empty() {
            return Err(StoreError::MissingChunks(missing));
        }
        let reference = manifest.reference_id();
        for hash in distinct {
            t.refs.insert(&tables::ref_key(&hash.0, &reference.0), ())?;
            mark_referenced(t, hash)?;
        }
    }

    let mut live_delta: i64 = i64::from(record.live().is_some());
    match &existing {
        Some(FileRecord::Live(old)) => {
            live_delta -= 1;
            let reference = old.reference_id();
            let distinct: HashSet<&Blake3Hash> = old.chunks.iter().map(|c| &c.hash).collect();
            for hash in distinct {
                t.refs.remove(&tables::ref_key(&hash.0, &reference.0))?;
                if !is_referenced(t, hash)? {
                    mark_unreferenced(t, hash, now)?;
                }
            }
        }
        Some(FileRecord::Deleted { deleted_ms, .. }) => {
            t.tombstones.remove((*deleted_ms, name))?;
        }
        None => {}
    }
    if let FileRecord::Deleted { deleted_ms, .. } = record {
        t.tombstones.insert((*deleted_ms, name), ())?;
    }
    t.files
        .insert(name, codec::encode(&FileHead::of(record))?.as_slice())?;
    match record {
        FileRecord::Live(m) => {
            t.file_chunks
                .insert(name, codec::encode(&m.chunks)?.as_slice())?;
        }
        FileRecord::Deleted { .. } => {
            t.file_chunks.remove(name)?;
        }
    }
    if live_delta != 0 {
        let count = t.counters.get(LIVE_FILES)?.map_or(0, |v| v.value());
        let count = count.saturating_add_signed(live_delta);
        t.counters.insert(LIVE_FILES, count)?;
    }
    Ok(RecordOutcome::Applied)
}

fn is_referenced(t: &Tables<'_>, hash: &Blake3Hash) -> Result<bool> {
    let first = tables::ref_key(&hash.0, &[0u8; 32]);
    let last = tables::ref_key(&hash.0, &[0xffu8; 32]);
    Ok(t.refs.range::<&[u8; 64]>(&first..=&last)?.next().is_some())
}

fn mark_referenced(t: &mut Tables<'_>, hash: &Blake3Hash) -> Result<()> {
    let raw = t.chunks.get(&hash.0)?.map(|v| v.value().to_vec());
    if let Some(raw) = raw {
        let mut entry: ChunkEntry = codec::decode(&raw)?;
        if let Some(since) = entry.unreferenced_since.take() {
            t.unreferenced.remove((since, &hash.0))?;
            t.chunks
                .insert(&hash.0, codec::encode(&entry)?.as_slice())?;
        }
    }
    Ok(())
}

fn mark_unreferenced(t: &mut Tables<'_>, hash: &Blake3Hash, now: u64) -> Result<()> {
    let raw = t.chunks.get(&hash.0)?.map(|v| v.value().to_vec());
    if let Some(raw) = raw {
        let mut entry: ChunkEntry = codec::decode(&raw)?;
        if entry.unreferenced_since.is_none() {
            entry.unreferenced_since = Some(now);
            t.unreferenced.insert((now, &hash.0), ())?;
            t.chunks
                .insert(&hash.0, codec::encode(&entry)?.as_slice())?;
        }
    }
    Ok(())
}
