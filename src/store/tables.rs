//! The redb tables and the records stored in them.
//!
//! Table names carry a version suffix: a change to a record's layout gets a
//! new table name and a migration, never a silent reinterpretation.

use redb::TableDefinition;
use serde::{Deserialize, Serialize};

use crate::chunk::{Md5Hash, Version};

/// Chunk hash → [`ChunkEntry`]: where the chunk's bytes are.
pub(super) const CHUNKS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("chunks-0");

/// Chunk hash ‖ reference id → (): which file versions use a chunk. A chunk
/// with no row here is unreferenced and becomes garbage after the grace.
pub(super) const CHUNK_REFS: TableDefinition<&[u8; 64], ()> = TableDefinition::new("chunk-refs-0");

/// Reference id ‖ chunk hash → (): the same rows as [`CHUNK_REFS`] the other
/// way round, so releasing a reference finds its chunks without a scan.
pub(super) const REF_CHUNKS: TableDefinition<&[u8; 64], ()> = TableDefinition::new("ref-chunks-0");

/// Reference id → encoded [`crate::chunk::Reference`]: the name and version
/// behind each reference held here, so a holder can later ask whether the
/// version is still current.
pub(super) const REFERENCES: TableDefinition<&[u8; 32], &[u8]> =
    TableDefinition::new("references-0");

/// (file name, version clock, version writer) → reference id: the rows of
/// [`REFERENCES`] by name, in version order (the order of
/// [`crate::chunk::Version`]: clock, then writer, both compared as redb
/// compares keys, which for strings is byte order like `String`'s). Lets
/// superseding a name find exactly its older references with one range
/// read. Kept in step with [`REFERENCES`] by `references`, and rebuilt at
/// open when the two differ in length (a data directory from before it).
pub(super) const NAME_REFERENCES: TableDefinition<(&str, u64, &str), &[u8; 32]> =
    TableDefinition::new("name-references-0");

/// File name → encoded [`FloorEntry`]: the newest version this peer knows
/// to exist for the name. References to older versions are released when
/// the floor rises and never added below it (see `floors`).
pub(super) const NAME_FLOORS: TableDefinition<&str, &[u8]> = TableDefinition::new("name-floors-0");

/// (floor last raised or found in use, file name) → (): floors by age, so
/// collection reads only the floors old enough to be dropped.
pub(super) const FLOOR_AGES: TableDefinition<(u64, &str), ()> =
    TableDefinition::new("floor-ages-0");

/// Chunk hash → encoded list of owners' peer ids: chunks held here on behalf
/// of owners that were down when they were written (hinted handoff), to be
/// handed back when they return. Removed with the chunk.
pub(super) const HINTS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("hints-0");

/// The most owners one chunk's hint lists.
pub(super) const MAX_HINTED_OWNERS: usize = 16;

/// (unreferenced since, chunk hash) → (): unreferenced chunks by age, so
/// collection reads only the garbage, never the whole index.
pub(super) const UNREFERENCED: TableDefinition<(u64, &[u8; 32]), ()> =
    TableDefinition::new("unreferenced-0");

/// Segment id → [`SegmentEntry`].
pub(super) const SEGMENTS: TableDefinition<u32, &[u8]> = TableDefinition::new("segments-0");

/// (segment id, offset) → length: byte ranges of deleted chunks whose space
/// is still to be returned to the file system. Written in the transaction
/// that deletes the chunks, cleared once the holes are punched, replayed at
/// start-up, so a crash between the two never leaks space.
pub(super) const HOLES: TableDefinition<(u32, u64), u64> = TableDefinition::new("holes-0");

/// File name → encoded head of its record (see `records`).
pub(super) const FILES: TableDefinition<&str, &[u8]> = TableDefinition::new("files-1");

/// The heads as data directories written before records had optional
/// fields hold them; migrated to [`FILES`] and dropped on open.
pub(super) const FILES_V0: TableDefinition<&str, &[u8]> = TableDefinition::new(FILES_V0_NAME);

/// The name of [`FILES_V0`], to find it among a database's tables.
pub(super) const FILES_V0_NAME: &str = "files-0";

/// (ring position of the name, name) → (): every record by where its name
/// sits on the ring, so replicas can compare the records of a ring range
/// by digest.
pub(super) const RECORD_POSITIONS: TableDefinition<(u64, &str), ()> =
    TableDefinition::new("record-positions-0");

/// File name → encoded chunk list of its live record.
pub(super) const FILE_CHUNKS: TableDefinition<&str, &[u8]> = TableDefinition::new("file-chunks-0");

/// (deleted at, file name) → (): tombstones by age, for purging.
pub(super) const TOMBSTONES: TableDefinition<(u64, &str), ()> =
    TableDefinition::new("tombstones-0");

/// Counter name → value, for figures too costly to recount.
pub(super) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters-0");

/// Peer id → encoded list of its listen addresses: the members this peer
/// knew, so it can rejoin after a restart (see `peers`).
pub(super) const PEERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("peers-0");

/// The counter holding this peer's membership incarnation.
pub(super) const INCARNATION: &str = "incarnation";

/// The counter of live (not deleted) files.
pub(super) const LIVE_FILES: &str = "live-files";

/// The counter of bytes of chunks with no reference (waiting for
/// collection), kept by every change to a chunk's `unreferenced_since`.
pub(super) const UNREFERENCED_BYTES: &str = "unreferenced-bytes";

/// A name's floor (see [`NAME_FLOORS`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct FloorEntry {
    /// The newest version known to exist for the name.
    pub version: Version,
    /// When (wall clock, milliseconds) the floor was last raised or last
    /// found in use by collection: its key in [`FLOOR_AGES`].
    pub touched_ms: u64,
}

/// Where a chunk's bytes live and what is known about them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ChunkEntry {
    /// The segment file holding the bytes.
    pub segment: u32,
    /// Offset of the first byte in the segment.
    pub offset: u64,
    /// Length in bytes.
    pub len: u32,
    /// MD5 of the bytes, computed once at ingest.
    pub md5: Md5Hash,
    /// When the chunk last became unreferenced (or was last written while
    /// unreferenced), or `None` while a file references it.
    pub unreferenced_since: Option<u64>,
}

/// The state of one segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub(super) struct SegmentEntry {
    /// Bytes of the file covered by committed index rows. Anything beyond is
    /// an unacknowledged write and is cut off at start-up.
    pub committed_len: u64,
    /// Bytes of chunks still indexed in this segment.
    pub live_bytes: u64,
    /// Chunks still indexed in this segment.
    pub live_chunks: u64,
    /// Whether the segment takes no more writes; a sealed segment with no
    /// live chunks is deleted.
    pub sealed: bool,
}

/// The key of a chunk reference.
pub(super) fn ref_key(chunk: &[u8; 32], reference: &[u8; 32]) -> [u8; 64] {
    let mut key = [0u8; 64];
    key[..32].copy_from_slice(chunk);
    key[32..].copy_from_slice(reference);
    key
}
