//! Content: how a file becomes chunks and a manifest.
//!
//! Pure logic with no I/O: digests ([`Digest`]), file names ([`FileName`]),
//! the streaming splitter ([`ChunkSplitter`]), manifests ([`Manifest`]) and
//! their versions ([`Version`], [`HlcClock`]). Everything that stores or moves
//! data builds on these types, so they carry no knowledge of disks, HTTP or
//! peers.

mod attributes;
mod digest;
mod etag;
mod extensions;
mod manifest;
mod name;
mod splitter;
mod version;

pub use attributes::{
    FileAttributes, InvalidMode, InvalidMtime, MODE_BITS, Mtime, format_mode, parse_mode,
};
pub use digest::{Blake3Hash, Digest, DigestParseError, Md5Hash};
pub use etag::{chunked_etag, multipart_etag, single_part_etag};
pub use extensions::{
    Extension, Extensions, InvalidExtensions, MAX_EXTENSION_BYTES, MAX_EXTENSIONS, tags,
};
pub use manifest::{
    ChunkRef, FileRecord, FileSummary, MAX_INLINE_BYTES, Manifest, ManifestError, RecordHead,
    Reference, locate_in,
};
pub use name::{
    FILES_AFTER, FileName, InvalidName, MAX_NAME_LEN, MAX_RECORD_NAME_LEN, RecordKind,
    name_position,
};
pub use splitter::ChunkSplitter;
pub use version::{Hlc, HlcClock, MAX_CLOCK_LEAD, Version, is_plausible, wall_millis};

/// The default chunk size: 1 MiB, large enough that per-chunk overheads
/// (hash lookups, index rows, network round trips) vanish next to the data,
/// small enough that a chunk is a cheap unit to verify, retry and re-replicate.
pub const DEFAULT_CHUNK_SIZE: u32 = 1024 * 1024;

/// The smallest chunk size a peer accepts, so a misconfiguration cannot turn
/// a file into millions of index rows.
pub const MIN_CHUNK_SIZE: u32 = 4 * 1024;

/// The largest chunk size a peer accepts; chunks are held whole in memory
/// while they are hashed and written.
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;
