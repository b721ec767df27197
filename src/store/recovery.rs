//! Recovery on open: bringing the files on disk in line with the committed
//! index, and building indexes that older data directories lack.
//!
//! Runs once, before the writer starts, so nothing else touches the
//! database or the segment files meanwhile.

use std::collections::HashMap;

use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, TableHandle};

use super::error::Result;
use super::records::{FileHead, FileHeadV0};
use super::references;
use super::segments::SegmentFiles;
use super::tables::{
    CHUNK_REFS, CHUNKS, COUNTERS, ChunkEntry, FILE_CHUNKS, FILES, FILES_V0, FILES_V0_NAME,
    FLOOR_AGES, HINTS, HOLES, NAME_FLOORS, NAME_REFERENCES, PEERS, RECORD_POSITIONS, REF_CHUNKS,
    REFERENCES, SEGMENTS, SegmentEntry, TOMBSTONES, UNREFERENCED, UNREFERENCED_BYTES,
};
use super::writer::reclaim;
use crate::chunk::Reference;
use crate::codec;

/// Moves the record heads of a data directory written before records had
/// optional fields (`files-0`) into `files-1`, each with none, and drops
/// the old table, in the open's one transaction: a crash half-way leaves
/// the old table whole for the next start.
fn migrate_file_heads(txn: &redb::WriteTransaction) -> Result<()> {
    let exists = txn
        .list_tables()?
        .any(|table| table.name() == FILES_V0_NAME);
    if !exists {
        return Ok(());
    }
    let mut moved = 0u64;
    {
        let old = txn.open_table(FILES_V0)?;
        let mut new = txn.open_table(FILES)?;
        for row in old.iter()? {
            let (name, raw) = row?;
            let head: FileHead = codec::decode::<FileHeadV0>(raw.value())?.into();
            new.insert(name.value(), codec::encode(&head)?.as_slice())?;
            moved += 1;
        }
    }
    txn.delete_table(FILES_V0)?;
    tracing::info!(records = moved, "moved file records to the current format");
    Ok(())
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

/// Rebuilds the index of references by name unless it has as many rows as
/// the references themselves (a data directory written before the index
/// existed has none). Comparing lengths costs nothing, since redb keeps
/// them, so this runs at every open; the two are kept in step otherwise.
fn index_reference_names(txn: &redb::WriteTransaction) -> Result<()> {
    let references = txn.open_table(REFERENCES)?;
    let indexed = txn.open_table(NAME_REFERENCES)?.len()?;
    if indexed == references.len()? {
        return Ok(());
    }
    txn.delete_table(NAME_REFERENCES)?;
    let mut by_name = txn.open_table(NAME_REFERENCES)?;
    for row in references.iter()? {
        let (id, raw) = row?;
        // One unreadable row must not keep the peer from starting; the
        // audit of references skips it too.
        match codec::decode::<Reference>(raw.value()) {
            Ok(reference) => {
                by_name.insert(references::name_key(&reference), id.value())?;
            }
            Err(error) => tracing::warn!(%error, "skipping an unreadable chunk reference"),
        }
    }
    Ok(())
}

/// Sums the bytes of unreferenced chunks into their counter if it is
/// missing (a data directory written before the counter existed). Reads
/// only the unreferenced chunks.
fn count_unreferenced_bytes(txn: &redb::WriteTransaction) -> Result<()> {
    let mut counters = txn.open_table(COUNTERS)?;
    if counters.get(UNREFERENCED_BYTES)?.is_some() {
        return Ok(());
    }
    let chunks = txn.open_table(CHUNKS)?;
    let mut total = 0u64;
    for row in txn.open_table(UNREFERENCED)?.iter()? {
        let (key, _) = row?;
        if let Some(raw) = chunks.get(key.value().1)? {
            let entry: ChunkEntry = codec::decode(raw.value())?;
            if entry.unreferenced_since.is_some() {
                total += u64::from(entry.len);
            }
        }
    }
    counters.insert(UNREFERENCED_BYTES, total)?;
    Ok(())
}

/// Brings the files on disk in line with the committed index and returns
/// the next free segment id.
pub(super) fn recover(db: &Database, segments: &SegmentFiles) -> Result<u32> {
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
        index_reference_names(&txn)?;
        txn.open_table(NAME_FLOORS)?;
        txn.open_table(FLOOR_AGES)?;
        txn.open_table(HINTS)?;
        txn.open_table(UNREFERENCED)?;
        txn.open_table(FILES)?;
        migrate_file_heads(&txn)?;
        txn.open_table(FILE_CHUNKS)?;
        txn.open_table(TOMBSTONES)?;
        index_record_positions(&txn)?;
        count_unreferenced_bytes(&txn)?;
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
    let mut in_gone_segments = Vec::new();
    for (id, offset, len) in &holes {
        if !known.contains_key(id) {
            in_gone_segments.push((*id, *offset));
            continue;
        }
        match segments.punch(*id, *offset, *len) {
            Ok(()) => punched.push((*id, *offset)),
            Err(error) => {
                tracing::warn!(%error, segment = id, "cannot free a deleted chunk's space yet")
            }
        }
    }
    let mut punched = reclaim::durable_holes(segments, punched);
    punched.extend(in_gone_segments);
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
