//! Recovery on open: bringing the files on disk in line with the committed
//! index, and building indexes that older data directories lack.
//!
//! Runs once, before the writer starts, so nothing else touches the
//! database or the segment files meanwhile.

use std::collections::HashMap;

use redb::{Database, Durability, ReadableTable, ReadableTableMetadata};

use super::error::Result;
use super::segments::SegmentFiles;
use super::tables::{
    CHUNK_REFS, CHUNKS, COUNTERS, FILE_CHUNKS, FILES, HINTS, HOLES, PEERS, RECORD_POSITIONS,
    REF_CHUNKS, REFERENCES, SEGMENTS, SegmentEntry, TOMBSTONES, UNREFERENCED,
};
use crate::codec;

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
