//! Figures about what the store holds, for status output and monitoring.
//!
//! Asked for on every status request, so nothing here scans the chunks:
//! counts come from table lengths (redb keeps them in each table's header)
//! and from counters the writer keeps in step with every change.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use serde::Serialize;

use super::Store;
use super::error::{Result, StoreError};
use super::tables::{
    CHUNKS, COUNTERS, HINTS, LIVE_FILES, REFERENCES, SEGMENTS, SegmentEntry, UNREFERENCED_BYTES,
};
use crate::codec;

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
    /// Bytes of chunks that at least one file version references: the data
    /// this peer keeps on purpose. `referenced_bytes + unreferenced_bytes
    /// == bytes`.
    pub referenced_bytes: u64,
    /// Bytes of chunks that no file version references, waiting for their
    /// grace period to end and collection to delete them. It rises after
    /// overwrites and deletes and falls a grace period later; if it keeps
    /// rising, collection is falling behind.
    pub unreferenced_bytes: u64,
    /// References (file name and version) held here, each counted once
    /// however many chunks it holds. Steady growth with a steady number of
    /// files means releases are being missed.
    pub references: u64,
}

impl Store {
    /// Counts of what the store holds, and the disk it takes. Costs three
    /// table lengths and two counters (constant time), a read of one row
    /// per segment file, and a `stat` of each file on disk; nothing scans
    /// the chunks or the references.
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
            let references = txn.open_table(REFERENCES)?.len()?;
            let counters = txn.open_table(COUNTERS)?;
            let counter = |name| Ok::<_, StoreError>(counters.get(name)?.map_or(0, |v| v.value()));
            let files = counter(LIVE_FILES)?;
            // Clamped: the two sums are kept by different code, and
            // `referenced_bytes` must never wrap.
            let unreferenced_bytes = counter(UNREFERENCED_BYTES)?.min(bytes);
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
                referenced_bytes: bytes - unreferenced_bytes,
                unreferenced_bytes,
                references,
            })
        })
        .await
    }
}
