//! The peer-to-peer data protocol: what peers ask each other about chunks
//! and file records, and the limits every message is held to.
//!
//! One request gets one answer (libp2p request/response on
//! [`DATA_PROTOCOL`]). Messages are encoded by [`crate::codec`], decoded
//! under [`MAX_MESSAGE_BYTES`] and then [validated](DataRequest::validate),
//! so a peer can neither make another allocate more than one chunk plus a
//! small header nor hand it a message whose parts disagree. A chunk's bytes
//! are not trusted either: the receiver re-hashes them before storing or
//! using them (see `crate::replica` and `crate::files`).

use bytes::Bytes;
use libp2p::PeerId;
use serde::{Deserialize, Serialize};

use crate::chunk::{
    Blake3Hash, FileName, FileRecord, MAX_CHUNK_SIZE, MAX_RECORD_NAME_LEN, ManifestError, Md5Hash,
    RecordHead, Reference, Version,
};

/// The protocol's name and version, negotiated on every stream.
pub const DATA_PROTOCOL: &str = "/shoal/data/6";

/// Room for everything in a message besides a chunk's bytes.
pub const MAX_HEADER_BYTES: usize = 256 * 1024;

/// The largest message, encoded: one chunk of the largest size plus a
/// header.
pub const MAX_MESSAGE_BYTES: usize = MAX_CHUNK_SIZE as usize + MAX_HEADER_BYTES;

/// The most chunk hashes one question may carry (128 KiB of hashes).
pub const MAX_HASHES: usize = 4096;

/// The most references one stored chunk may carry.
pub const MAX_REFERENCES: usize = 64;

/// The most ring ranges one digest question may carry.
pub const MAX_RANGES: usize = 4096;

/// The most record heads one listing page may carry.
pub const MAX_LIST_PAGE: usize = 1000;

/// The most chunks a file may have: its manifest must fit in one message.
/// A chunk's entry takes at most 60 bytes encoded, so this leaves the
/// header its room. At the default 1 MiB chunk size that is a 256 GiB file;
/// larger files need a larger `--chunk-size`.
pub const MAX_FILE_CHUNKS: usize = MAX_CHUNK_SIZE as usize / 64;

/// The longest writer id a version may carry (a base58 peer id is about
/// 52 characters).
const MAX_WRITER_LEN: usize = 128;

/// A question one peer asks another.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DataRequest {
    /// Which of `hashes` do you hold? With `claim`, also record that the
    /// file version uses each one held, so a writer never sends a chunk
    /// to a peer that already has it.
    Has {
        /// The chunks asked about.
        hashes: Vec<Blake3Hash>,
        /// The reference to record on the held ones.
        claim: Option<Reference>,
    },
    /// Store this chunk durably for these file versions.
    Store {
        /// BLAKE3 of `data`, re-checked by the receiver.
        hash: Blake3Hash,
        /// MD5 of `data`, re-checked by the receiver.
        md5: Md5Hash,
        /// The chunk's bytes.
        data: Bytes,
        /// The versions that use the chunk.
        references: Vec<Reference>,
        /// The owner this copy stands in for, when that owner is down.
        hint_for: Option<PeerId>,
    },
    /// For each ring range (start, end exclusive, `None` for the top of
    /// the ring), how many chunks do you hold in it, and the BLAKE3 of
    /// their hashes in order? Replicas of the same keys compare these
    /// instead of whole chunk lists.
    RangeDigests {
        /// The ranges.
        ranges: Vec<(u64, Option<u64>)>,
    },
    /// The hashes of the chunks you hold in one ring range, after `after`.
    RangeHashes {
        /// The first position of the range.
        start: u64,
        /// The first position past it (`None` for the top of the ring).
        end: Option<u64>,
        /// Only hashes after this one.
        after: Option<Blake3Hash>,
    },
    /// Like [`DataRequest::RangeDigests`], for the records (manifests and
    /// tombstones) whose names lie in each range: their count and a BLAKE3
    /// over their names and versions.
    RecordDigests {
        /// The ranges.
        ranges: Vec<(u64, Option<u64>)>,
    },
    /// The heads of the records whose names lie in one ring range, after
    /// `after` (a position and name), answered as `Records`.
    RecordHeads {
        /// The first position of the range.
        start: u64,
        /// The first position past it (`None` for the top of the ring).
        end: Option<u64>,
        /// Only records after this position and name.
        after: Option<(u64, FileName)>,
    },
    /// Send me this chunk.
    Fetch {
        /// The chunk.
        hash: Blake3Hash,
    },
    /// The file version with this reference id is gone (overwritten,
    /// deleted or never finished): drop its hold on your chunks.
    Release {
        /// The reference's id.
        reference: Blake3Hash,
    },
    /// Are you still coordinating the upload with this reference id? Asked
    /// of a version's writer before dropping a reference whose manifest
    /// cannot be found.
    Uploading {
        /// The reference's id.
        reference: Blake3Hash,
    },
    /// Keep this record (manifest or tombstone) unless you have a newer one.
    PutRecord {
        /// The record.
        record: FileRecord,
    },
    /// Send me your record for `name`: whole, or only its head.
    GetRecord {
        /// The file's name.
        name: FileName,
        /// Whether the head (version and summary) is enough.
        head_only: bool,
    },
    /// Send me the heads of your records in name order.
    ListRecords {
        /// Only names starting with this.
        prefix: String,
        /// Only names after this.
        after: Option<String>,
        /// At most this many, up to [`MAX_LIST_PAGE`].
        limit: u32,
    },
    /// `version` of `name` is durable on a write quorum: drop the hold of
    /// every older version of `name` on your chunks, whichever releases
    /// you missed. Answered as `Released`.
    Supersede {
        /// The file's name.
        name: FileName,
        /// The version now written.
        version: Version,
    },
}

/// What a record write did at the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordWrite {
    /// It is now the current record; the name had none.
    Applied,
    /// It is now the current record, over an older version of the name.
    Replaced,
    /// The same version was already there.
    Unchanged,
    /// A newer version is there (its clock reading given, so the writer
    /// can write again after it); this one was ignored.
    Superseded {
        /// The newer version's clock reading.
        newer: crate::chunk::Hlc,
    },
}

/// Why a request was not carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The chunk is not held here.
    NotFound,
    /// The bytes did not match their hash (sent, or as stored here).
    Corrupt,
    /// There is no room to store it.
    DiskFull,
    /// The request made no sense.
    Invalid,
    /// The receiver is shutting down or its store failed.
    Unavailable,
}

/// The answer to a [`DataRequest`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DataResponse {
    /// For each hash asked about, whether it is held.
    Held(Vec<bool>),
    /// The chunk is stored durably.
    Stored,
    /// The chunk's bytes.
    Chunk(Bytes),
    /// For each range asked about: the chunk count and the digest.
    Digests(Vec<(u64, Blake3Hash)>),
    /// Chunk hashes in order, and whether more follow.
    Hashes {
        /// The hashes.
        hashes: Vec<Blake3Hash>,
        /// Whether the range holds more after the last.
        more: bool,
    },
    /// The reference was dropped.
    Released,
    /// Whether the upload is still running.
    Uploading(bool),
    /// What the record write did.
    RecordWritten(RecordWrite),
    /// The whole record, if any.
    Record(Option<FileRecord>),
    /// The record's head, if any.
    Head(Option<RecordHead>),
    /// A page of record heads, and whether more follow.
    Records {
        /// The heads, in name order.
        heads: Vec<RecordHead>,
        /// Whether names after the last one also match.
        truncated: bool,
    },
    /// The request was not carried out.
    Refused {
        /// Why, in kind.
        reason: Refusal,
        /// Why, in words, for logs and errors.
        message: String,
    },
}

/// A decoded message whose contents break the protocol's limits or
/// disagree with each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMessage {
    /// A list, string or chunk longer than its limit.
    #[error("{count} {what}, more than the limit of {limit}")]
    TooMany {
        /// What was counted, in words (`"hashes"`, `"chunk bytes"`).
        what: &'static str,
        /// How many there were.
        count: usize,
        /// The most allowed.
        limit: usize,
    },
    /// A chunk to store with no bytes.
    #[error("an empty chunk")]
    EmptyChunk,
    /// A manifest whose parts do not add up.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

impl DataRequest {
    /// The request's kind, as metrics label it.
    pub fn op(&self) -> &'static str {
        match self {
            DataRequest::Has { claim: None, .. } => "has",
            DataRequest::Has { claim: Some(_), .. } => "claim",
            DataRequest::Store { .. } => "store",
            DataRequest::RangeDigests { .. } => "range_digests",
            DataRequest::RangeHashes { .. } => "range_hashes",
            DataRequest::RecordDigests { .. } => "record_digests",
            DataRequest::RecordHeads { .. } => "record_heads",
            DataRequest::Fetch { .. } => "fetch",
            DataRequest::Release { .. } => "release",
            DataRequest::Uploading { .. } => "uploading",
            DataRequest::PutRecord { .. } => "put_record",
            DataRequest::GetRecord { .. } => "get_record",
            DataRequest::ListRecords { .. } => "list_records",
            DataRequest::Supersede { .. } => "supersede",
        }
    }

    /// Checks a decoded request's contents.
    ///
    /// # Errors
    /// [`InvalidMessage`] naming the first thing wrong.
    pub fn validate(&self) -> Result<(), InvalidMessage> {
        match self {
            DataRequest::Has { hashes, claim } => {
                check_count("hashes", hashes.len(), MAX_HASHES)?;
                claim.iter().try_for_each(check_reference)
            }
            DataRequest::Store {
                data, references, ..
            } => {
                check_count("chunk bytes", data.len(), MAX_CHUNK_SIZE as usize)?;
                if data.is_empty() {
                    return Err(InvalidMessage::EmptyChunk);
                }
                check_count("references", references.len(), MAX_REFERENCES)?;
                references.iter().try_for_each(check_reference)
            }
            DataRequest::RangeDigests { ranges } | DataRequest::RecordDigests { ranges } => {
                check_count("ranges", ranges.len(), MAX_RANGES)
            }
            DataRequest::RangeHashes { .. }
            | DataRequest::RecordHeads { .. }
            | DataRequest::Fetch { .. }
            | DataRequest::Release { .. }
            | DataRequest::Uploading { .. } => Ok(()),
            DataRequest::PutRecord { record } => check_record(record),
            DataRequest::GetRecord { .. } => Ok(()),
            DataRequest::Supersede { version, .. } => check_version(version),
            DataRequest::ListRecords {
                prefix,
                after,
                limit,
            } => {
                check_count("prefix bytes", prefix.len(), MAX_RECORD_NAME_LEN)?;
                check_count(
                    "after bytes",
                    after.as_ref().map_or(0, String::len),
                    MAX_RECORD_NAME_LEN,
                )?;
                check_count("listing limit", *limit as usize, MAX_LIST_PAGE)
            }
        }
    }
}

impl DataResponse {
    /// Checks a decoded answer's contents.
    ///
    /// # Errors
    /// [`InvalidMessage`] naming the first thing wrong.
    pub fn validate(&self) -> Result<(), InvalidMessage> {
        match self {
            DataResponse::Held(held) => check_count("answers", held.len(), MAX_HASHES),
            DataResponse::Digests(digests) => check_count("digests", digests.len(), MAX_RANGES),
            DataResponse::Hashes { hashes, .. } => check_count("hashes", hashes.len(), MAX_HASHES),
            DataResponse::Chunk(data) => {
                check_count("chunk bytes", data.len(), MAX_CHUNK_SIZE as usize)
            }
            DataResponse::Record(Some(record)) => check_record(record),
            DataResponse::Head(Some(head)) => check_version(&head.version),
            DataResponse::Records { heads, .. } => {
                check_count("heads", heads.len(), MAX_LIST_PAGE)?;
                heads.iter().try_for_each(|h| check_version(&h.version))
            }
            DataResponse::Refused { message, .. } => {
                check_count("message bytes", message.len(), 4096)
            }
            DataResponse::Stored
            | DataResponse::Released
            | DataResponse::Uploading(_)
            | DataResponse::RecordWritten(_)
            | DataResponse::Record(None)
            | DataResponse::Head(None) => Ok(()),
        }
    }

    /// The answer's kind, for messages about answers that do not fit.
    pub fn kind(&self) -> &'static str {
        match self {
            DataResponse::Held(_) => "held",
            DataResponse::Stored => "stored",
            DataResponse::Chunk(_) => "chunk",
            DataResponse::Digests(_) => "digests",
            DataResponse::Hashes { .. } => "hashes",
            DataResponse::Released => "released",
            DataResponse::Uploading(_) => "uploading",
            DataResponse::RecordWritten(_) => "record written",
            DataResponse::Record(_) => "record",
            DataResponse::Head(_) => "head",
            DataResponse::Records { .. } => "records",
            DataResponse::Refused { .. } => "refused",
        }
    }

    /// A refusal with a message.
    pub fn refused(reason: Refusal, message: impl Into<String>) -> Self {
        let mut message: String = message.into();
        if message.len() > 1024 {
            let mut cut = 1024;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        DataResponse::Refused { reason, message }
    }
}

fn check_count(what: &'static str, count: usize, limit: usize) -> Result<(), InvalidMessage> {
    if count > limit {
        Err(InvalidMessage::TooMany { what, count, limit })
    } else {
        Ok(())
    }
}

fn check_version(version: &Version) -> Result<(), InvalidMessage> {
    check_count("writer id bytes", version.writer.len(), MAX_WRITER_LEN)
}

fn check_reference(reference: &Reference) -> Result<(), InvalidMessage> {
    check_version(&reference.version)
}

fn check_record(record: &FileRecord) -> Result<(), InvalidMessage> {
    check_version(record.version())?;
    if let FileRecord::Live(manifest) = record {
        check_count("chunks", manifest.chunks.len(), MAX_FILE_CHUNKS)?;
        manifest.validate()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::{ChunkRef, Hlc, Manifest, RecordKind};
    use crate::codec;

    fn version(writer: &str) -> Version {
        Version {
            hlc: Hlc(1),
            writer: writer.into(),
        }
    }

    /// The longest name a record can have (one of the swarm's own).
    fn longest_name() -> FileName {
        let prefix = RecordKind::Upload.prefix();
        let id = "n".repeat(MAX_RECORD_NAME_LEN - prefix.len());
        FileName::record(RecordKind::Upload, &id).unwrap()
    }

    #[test]
    fn a_largest_chunk_with_full_references_fits_in_a_message() {
        let name = longest_name();
        let request = DataRequest::Store {
            hash: Blake3Hash::of(b"x"),
            md5: Md5Hash::of(b"x"),
            data: Bytes::from(vec![1u8; MAX_CHUNK_SIZE as usize]),
            references: vec![
                Reference {
                    name,
                    version: version(&"w".repeat(MAX_WRITER_LEN)),
                };
                MAX_REFERENCES
            ],
            hint_for: Some(PeerId::random()),
        };
        request.validate().unwrap();
        assert!(codec::encode(&request).unwrap().len() <= MAX_MESSAGE_BYTES);
    }

    #[test]
    fn a_manifest_of_the_most_chunks_fits_in_a_message() {
        let chunk = ChunkRef {
            hash: Blake3Hash::of(b"x"),
            size: MAX_CHUNK_SIZE,
            md5: Md5Hash::of(b"x"),
        };
        let manifest = Manifest {
            name: longest_name(),
            size: u64::from(MAX_CHUNK_SIZE) * MAX_FILE_CHUNKS as u64,
            blake3: Blake3Hash::of(b""),
            chunk_size: MAX_CHUNK_SIZE,
            chunks: vec![chunk; MAX_FILE_CHUNKS],
            created_ms: u64::MAX,
            version: Version {
                hlc: Hlc(u64::MAX),
                writer: "w".repeat(MAX_WRITER_LEN),
            },
            extensions: Default::default(),
        };
        let request = DataRequest::PutRecord {
            record: FileRecord::Live(manifest),
        };
        request.validate().unwrap();
        assert!(codec::encode(&request).unwrap().len() <= MAX_MESSAGE_BYTES);
    }

    #[test]
    fn oversized_contents_are_refused() {
        let many = DataRequest::Has {
            hashes: vec![Blake3Hash::of(b"x"); MAX_HASHES + 1],
            claim: None,
        };
        assert!(matches!(
            many.validate(),
            Err(InvalidMessage::TooMany { what: "hashes", count, limit: MAX_HASHES })
                if count == MAX_HASHES + 1
        ));
        let forged = DataRequest::Has {
            hashes: Vec::new(),
            claim: Some(Reference {
                name: FileName::new("f").unwrap(),
                version: version(&"w".repeat(MAX_WRITER_LEN + 1)),
            }),
        };
        assert!(matches!(
            forged.validate(),
            Err(InvalidMessage::TooMany {
                what: "writer id bytes",
                ..
            })
        ));
        let empty = DataRequest::Store {
            hash: Blake3Hash::of(b""),
            md5: Md5Hash::of(b""),
            data: Bytes::new(),
            references: Vec::new(),
            hint_for: None,
        };
        assert_eq!(empty.validate(), Err(InvalidMessage::EmptyChunk));
    }

    #[test]
    fn a_limit_broken_is_named_with_both_numbers() {
        let listing = DataRequest::ListRecords {
            prefix: String::new(),
            after: None,
            limit: MAX_LIST_PAGE as u32 + 1,
        };
        assert_eq!(
            listing.validate().unwrap_err().to_string(),
            format!(
                "{} listing limit, more than the limit of {MAX_LIST_PAGE}",
                MAX_LIST_PAGE + 1
            )
        );
    }

    #[test]
    fn an_inconsistent_manifest_is_refused_as_such() {
        let chunk = ChunkRef {
            hash: Blake3Hash::of(b"x"),
            size: 10,
            md5: Md5Hash::of(b"x"),
        };
        let manifest = Manifest {
            name: FileName::new("f").unwrap(),
            size: 11,
            blake3: Blake3Hash::of(b""),
            chunk_size: 10,
            chunks: vec![chunk],
            created_ms: 0,
            version: version("w"),
            extensions: Default::default(),
        };
        let request = DataRequest::PutRecord {
            record: FileRecord::Live(manifest),
        };
        let error = request.validate().unwrap_err();
        assert!(matches!(error, InvalidMessage::Manifest(_)), "{error:?}");
        assert!(
            error.to_string().starts_with("inconsistent manifest"),
            "{error}"
        );
    }
}
