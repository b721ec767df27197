//! Manifests: what a file is made of.
//!
//! A [`Manifest`] lists a file's chunks in order with the size, BLAKE3 and
//! MD5 of each, plus the BLAKE3 of the whole content. It is the unit of
//! metadata that later gets replicated and versioned; chunks are immutable
//! and shared between files, manifests are what change. A [`FileRecord`] is
//! what is stored under a name: either a live manifest or a tombstone, so a
//! delete is a versioned write like any other and an older copy of the file
//! can never win over it.

use serde::{Deserialize, Serialize};

use super::{Blake3Hash, Extensions, FileName, Md5Hash, Version};

/// The largest file kept inside its manifest instead of the chunk store.
///
/// A small file's put is then one record write on the name's owners
/// instead of a chunk write on the chunk's owners followed by the manifest
/// write: half the round trips and durable commits. The bound keeps
/// records small where they are handled in bulk (anti-entropy sends whole
/// records, a listing page holds up to a thousand): 8 KiB covers the
/// configuration files, source files and small documents that make up most
/// trees by count, while files past it gain little, their transfer
/// outweighing one round trip.
pub const MAX_INLINE_BYTES: usize = 8 * 1024;

/// One chunk of a file, as the manifest records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    /// BLAKE3 of the chunk's bytes: its address in every store.
    pub hash: Blake3Hash,
    /// The chunk's length in bytes.
    pub size: u32,
    /// MD5 of the chunk's bytes, for clients to check what they received.
    pub md5: Md5Hash,
}

impl ChunkRef {
    /// Describes `data` as a chunk: both digests and the length.
    ///
    /// This is the most CPU-hungry step in the data path (MD5 runs at roughly
    /// 600 MB/s), so async callers run it on a blocking thread.
    pub fn compute(data: &[u8]) -> Self {
        ChunkRef {
            hash: Blake3Hash::of(data),
            // Chunk sizes are bounded by MAX_CHUNK_SIZE, far below u32::MAX.
            size: u32::try_from(data.len()).unwrap_or(u32::MAX),
            md5: Md5Hash::of(data),
        }
    }

    /// Whether `data` is the chunk this describes: its length and BLAKE3.
    /// (The MD5 travels with the file for clients to check end to end.)
    pub fn matches(&self, data: &[u8]) -> bool {
        data.len() == self.size as usize && Blake3Hash::of(data) == self.hash
    }
}

/// The description of one version of a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The file's name.
    pub name: FileName,
    /// The file's length in bytes.
    pub size: u64,
    /// BLAKE3 of the whole content.
    pub blake3: Blake3Hash,
    /// The largest chunk's size bound: the chunk size the file was split
    /// with. Chunks may be shorter: the last one of a file, and any chunk of
    /// a file assembled from the chunks of others (an S3 multipart upload's
    /// parts end in short chunks).
    pub chunk_size: u32,
    /// The chunks, in file order.
    pub chunks: Vec<ChunkRef>,
    /// When the file was written, in milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// This write's version, which decides between concurrent writes.
    pub version: Version,
    /// Optional fields added by later releases (see
    /// [`Extensions`](super::Extensions)); kept as they are by releases that
    /// do not know them.
    pub extensions: Extensions,
}

/// A manifest whose parts disagree with each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("inconsistent manifest for {name:?}: {problem}")]
pub struct ManifestError {
    name: String,
    problem: String,
}

impl Manifest {
    /// Checks that the chunk list adds up: no chunk is empty or longer than
    /// `chunk_size`, and the sizes sum to `size`. Manifests that come from
    /// elsewhere are validated before use, so the offset arithmetic in
    /// [`Manifest::locate`] can trust them.
    ///
    /// # Errors
    /// [`ManifestError`] names the first inconsistency found.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let fail = |problem: String| {
            Err(ManifestError {
                name: self.name.to_string(),
                problem,
            })
        };
        if self.chunk_size == 0 {
            return fail("chunk size is zero".into());
        }
        if let Err(problem) = self.extensions.validate() {
            return fail(problem.to_string());
        }
        if let Some(data) = self.inline() {
            let [chunk] = self.chunks.as_slice() else {
                return fail(format!("{} chunks with inline bytes", self.chunks.len()));
            };
            if data.len() > MAX_INLINE_BYTES {
                return fail(format!("{} bytes inline", data.len()));
            }
            if !chunk.matches(data) {
                return fail("inline bytes do not match their chunk".into());
            }
        }
        let mut total: u64 = 0;
        for (i, chunk) in self.chunks.iter().enumerate() {
            if chunk.size == 0 || chunk.size > self.chunk_size {
                return fail(format!("chunk {i} has size {}", chunk.size));
            }
            total += u64::from(chunk.size);
        }
        if total != self.size {
            return fail(format!(
                "chunks sum to {total} bytes, size says {}",
                self.size
            ));
        }
        Ok(())
    }

    /// Where each chunk starts in the file, in chunk order.
    pub fn chunk_starts(&self) -> Vec<u64> {
        self.chunks
            .iter()
            .scan(0u64, |offset, chunk| {
                let start = *offset;
                *offset += u64::from(chunk.size);
                Some(start)
            })
            .collect()
    }

    /// The chunk holding byte `offset` and the position within it, or `None`
    /// past the end of the file. Requires a validated manifest.
    pub fn locate(&self, offset: u64) -> Option<(usize, u32)> {
        locate_in(&self.chunk_starts(), self.size, offset)
    }

    /// Whether the whole-content hash is a digest of the chunk list rather
    /// than of the bytes: true of a file assembled from existing chunks
    /// (a completed multipart upload) without reading them. Every chunk is
    /// still checked against its own BLAKE3 and MD5.
    pub fn is_composed(&self) -> bool {
        self.extensions.get(super::tags::COMPOSED).is_some()
    }

    /// A small file's bytes, when they live in the manifest (its one chunk
    /// then describes them but is not in any chunk store).
    pub fn inline(&self) -> Option<&[u8]> {
        self.extensions.get(super::tags::INLINE)
    }

    /// The hash a composed file carries in place of its content's: a keyed
    /// BLAKE3 of its chunks' hashes and sizes in order.
    pub fn composed_hash(chunks: &[ChunkRef]) -> Blake3Hash {
        let mut hasher = blake3::Hasher::new_derive_key("shoal composed file v1");
        for chunk in chunks {
            hasher.update(&chunk.hash.0);
            hasher.update(&chunk.size.to_le_bytes());
        }
        hasher.finalize().into()
    }

    /// An identifier for this exact version of this file, used by stores to
    /// record that the version references its chunks. Adding or removing the
    /// same reference twice has no further effect, so retried messages are
    /// harmless.
    pub fn reference_id(&self) -> Blake3Hash {
        self.reference().id()
    }

    /// The reference this version holds on its chunks.
    pub fn reference(&self) -> Reference {
        Reference {
            name: self.name.clone(),
            version: self.version.clone(),
        }
    }
}

/// The chunk holding byte `offset` of a file of `size` bytes whose chunks
/// start at `starts`, and the position within it.
pub fn locate_in(starts: &[u64], size: u64, offset: u64) -> Option<(usize, u32)> {
    if offset >= size {
        return None;
    }
    // The last chunk starting at or before `offset`.
    let index = starts
        .partition_point(|&start| start <= offset)
        .checked_sub(1)?;
    let within = u32::try_from(offset - starts[index]).ok()?;
    Some((index, within))
}

/// One file version's hold on the chunks it uses.
///
/// Chunks live on other peers than the manifests naming them, so a chunk's
/// holder keeps, next to the chunk, the references of the versions that use
/// it. A chunk is collected only when it has none left. Keeping the name and
/// version (not only the id) lets a holder ask the manifest's owners later
/// whether the version is still current.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reference {
    /// The file's name.
    pub name: FileName,
    /// The version that uses the chunks.
    pub version: Version,
}

impl Reference {
    /// A fixed-size identifier for this reference, used as a table key.
    pub fn id(&self) -> Blake3Hash {
        let mut hasher = blake3::Hasher::new_derive_key("shoal manifest reference v1");
        hasher.update(&(self.name.as_str().len() as u64).to_le_bytes());
        hasher.update(self.name.as_str().as_bytes());
        hasher.update(&self.version.hlc.0.to_le_bytes());
        hasher.update(self.version.writer.as_bytes());
        hasher.finalize().into()
    }
}

/// What is stored under a name: the live file or the record of its deletion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileRecord {
    /// The file exists with this content.
    Live(Manifest),
    /// The file was deleted by the write with this version.
    Deleted {
        /// The deleted file's name.
        name: FileName,
        /// The delete's version.
        version: Version,
        /// When the delete happened, in milliseconds since the Unix epoch;
        /// tombstones are purged some time after it.
        deleted_ms: u64,
        /// Optional fields added by later releases.
        extensions: Extensions,
    },
}

impl FileRecord {
    /// The record's name.
    pub fn name(&self) -> &FileName {
        match self {
            FileRecord::Live(m) => &m.name,
            FileRecord::Deleted { name, .. } => name,
        }
    }

    /// The record's version.
    pub fn version(&self) -> &Version {
        match self {
            FileRecord::Live(m) => &m.version,
            FileRecord::Deleted { version, .. } => version,
        }
    }

    /// The live manifest, if the record is not a tombstone.
    pub fn live(&self) -> Option<&Manifest> {
        match self {
            FileRecord::Live(m) => Some(m),
            FileRecord::Deleted { .. } => None,
        }
    }
}

/// A live file as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSummary {
    /// The file's name.
    pub name: FileName,
    /// Its size in bytes.
    pub size: u64,
    /// BLAKE3 of its content.
    pub blake3: Blake3Hash,
    /// How many chunks it has.
    pub chunks: u64,
    /// When it was written, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// The ETag S3 clients see, if the file records one (files written
    /// before ETags were recorded have none).
    pub etag: Option<String>,
    /// The mode and modification time the file was put with, if any.
    pub attributes: super::FileAttributes,
}

/// The head of a stored record: enough to list it and to tell which of
/// two copies is newer, without its chunk list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordHead {
    /// The record's version.
    pub version: Version,
    /// The file, or `None` for a tombstone.
    pub live: Option<FileSummary>,
    /// The file's name.
    pub name: FileName,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::Hlc;

    fn manifest(sizes: &[u32], chunk_size: u32) -> Manifest {
        let chunks: Vec<ChunkRef> = sizes
            .iter()
            .map(|&s| ChunkRef::compute(&vec![7u8; s as usize]))
            .collect();
        Manifest {
            name: FileName::new("f").unwrap(),
            size: sizes.iter().map(|&s| u64::from(s)).sum(),
            blake3: Blake3Hash::of(b""),
            chunk_size,
            chunks,
            created_ms: 0,
            version: Version {
                hlc: Hlc(1),
                writer: "p".into(),
            },
            extensions: Default::default(),
        }
    }

    #[test]
    fn validation_accepts_well_formed_and_rejects_inconsistent() {
        assert!(manifest(&[], 4).validate().is_ok());
        assert!(manifest(&[4, 4, 1], 4).validate().is_ok());
        assert!(
            manifest(&[4, 2, 4], 4).validate().is_ok(),
            "assembled files have short chunks inside"
        );
        assert!(manifest(&[4, 0, 4], 4).validate().is_err());
        assert!(manifest(&[5], 4).validate().is_err());
        let mut m = manifest(&[4, 4], 4);
        m.size = 9;
        assert!(m.validate().is_err());
    }

    #[test]
    fn locate_maps_offsets_to_chunks() {
        let m = manifest(&[4, 4, 2], 4);
        assert_eq!(m.locate(0), Some((0, 0)));
        assert_eq!(m.locate(3), Some((0, 3)));
        assert_eq!(m.locate(4), Some((1, 0)));
        assert_eq!(m.locate(9), Some((2, 1)));
        assert_eq!(m.locate(10), None);
        assert_eq!(m.chunk_starts(), vec![0, 4, 8]);
        let uneven = manifest(&[4, 1, 3, 4], 4);
        assert_eq!(uneven.chunk_starts(), vec![0, 4, 5, 8]);
        assert_eq!(uneven.locate(4), Some((1, 0)));
        assert_eq!(uneven.locate(5), Some((2, 0)));
        assert_eq!(uneven.locate(7), Some((2, 2)));
        assert_eq!(uneven.locate(11), Some((3, 3)));
        assert_eq!(uneven.locate(12), None);
        assert_eq!(manifest(&[], 4).locate(0), None);
    }

    #[test]
    fn reference_ids_differ_by_name_and_version() {
        let a = manifest(&[1], 4);
        let mut b = a.clone();
        b.version.hlc = Hlc(2);
        let mut c = a.clone();
        c.name = FileName::new("g").unwrap();
        assert_ne!(a.reference_id(), b.reference_id());
        assert_ne!(a.reference_id(), c.reference_id());
        assert_eq!(a.reference_id(), a.clone().reference_id());
    }
}
