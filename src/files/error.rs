//! The data path's error type.

use crate::chunk::{Blake3Hash, FileName, ManifestError};
use crate::store::StoreError;

/// What can go wrong putting, getting or deleting a file.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// No live file has this name.
    #[error("no such file: {0}")]
    NotFound(FileName),
    /// The upload's body ended early or failed; nothing was stored under the name.
    #[error("upload of {name} was interrupted ({reason}); nothing was stored")]
    Body {
        /// The file being uploaded.
        name: FileName,
        /// Why the body failed.
        reason: String,
    },
    /// The uploaded content does not hash to what the client said it sent.
    #[error(
        "upload of {name} arrived damaged: expected BLAKE3 {expected}, received {actual}; nothing was stored"
    )]
    ContentMismatch {
        /// The file being uploaded.
        name: FileName,
        /// What the client computed.
        expected: Blake3Hash,
        /// What arrived.
        actual: Blake3Hash,
    },
    /// The uploaded content does not match a digest the client sent with
    /// it (an MD5 or checksum header, checked once the body is complete).
    #[error("upload of {name} arrived damaged: {reason}; nothing was stored")]
    DigestMismatch {
        /// The file being uploaded.
        name: FileName,
        /// Which digest did not match.
        reason: String,
    },
    /// A chunk of the file is held by no reachable peer.
    #[error("chunk {index} ({hash}) of {name} is missing")]
    MissingChunk {
        /// The file.
        name: FileName,
        /// The chunk's position in the file.
        index: usize,
        /// The chunk's hash.
        hash: Blake3Hash,
    },
    /// No reachable peer holds a chunk, but some peers are down or not
    /// answering and may hold it.
    #[error(
        "chunk {index} ({hash}) of {name} is missing from every reachable peer ({away} peer(s) down or not answering); try again once they are back"
    )]
    ChunkOutOfReach {
        /// The file.
        name: FileName,
        /// The chunk's position in the file.
        index: usize,
        /// The chunk's hash.
        hash: Blake3Hash,
        /// How many peers did not answer.
        away: usize,
    },
    /// Every peer that holds a chunk failed to serve an intact copy.
    #[error("chunk {index} ({hash}) of {name} could not be read from any replica: {reasons}")]
    ChunkUnreadable {
        /// The file.
        name: FileName,
        /// The chunk's position in the file.
        index: usize,
        /// The chunk's hash.
        hash: Blake3Hash,
        /// What each holder did.
        reasons: String,
    },
    /// Too few of the peers that should keep something answered.
    #[error("{what}: only {stored} of the {needed} peers needed answered ({reasons})")]
    NotEnoughReplicas {
        /// What was being written or read.
        what: String,
        /// How many did their part.
        stored: usize,
        /// How many were needed.
        needed: usize,
        /// Why the others did not.
        reasons: String,
        /// Whether every failure was a full disk.
        disk_full: bool,
    },
    /// The file has more chunks than one manifest may list.
    #[error(
        "{name} is too large: more than {chunks} chunks of {chunk_size} bytes; start the peers with a larger --chunk-size"
    )]
    TooLarge {
        /// The file.
        name: FileName,
        /// The most chunks a file may have.
        chunks: usize,
        /// The chunk size in use.
        chunk_size: u32,
    },
    /// A stored manifest is inconsistent.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The peer is shutting down and takes no new work.
    #[error("the peer is shutting down")]
    ShuttingDown,
    /// A task of the data path failed unexpectedly.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The broad class of a failure, for callers that turn failures into
/// protocol codes without knowing the layers below the data path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The file does not exist.
    NotFound,
    /// The request itself was bad (for example, a body cut off).
    BadRequest,
    /// The content did not match the hash it was sent with.
    ContentMismatch,
    /// The disk is full.
    DiskFull,
    /// The file is larger than the store can describe.
    TooLarge,
    /// The peer is shutting down, its store is closed, or too few peers
    /// answered.
    Unavailable,
    /// Anything else: damage, lost chunks, bugs.
    Internal,
}

impl FailureKind {
    /// The class of a local store failure.
    pub fn of_store(error: &StoreError) -> Self {
        match error.root() {
            StoreError::DiskFull(_) => FailureKind::DiskFull,
            StoreError::Closed | StoreError::Unavailable => FailureKind::Unavailable,
            _ => FailureKind::Internal,
        }
    }
}

impl FilesError {
    /// The failure's class.
    pub fn kind(&self) -> FailureKind {
        match self {
            FilesError::NotFound(_) => FailureKind::NotFound,
            FilesError::Body { .. } => FailureKind::BadRequest,
            FilesError::ContentMismatch { .. } | FilesError::DigestMismatch { .. } => {
                FailureKind::ContentMismatch
            }
            FilesError::ShuttingDown | FilesError::ChunkOutOfReach { .. } => {
                FailureKind::Unavailable
            }
            FilesError::NotEnoughReplicas { disk_full, .. } => {
                if *disk_full {
                    FailureKind::DiskFull
                } else {
                    FailureKind::Unavailable
                }
            }
            FilesError::TooLarge { .. } => FailureKind::TooLarge,
            FilesError::Store(e) => FailureKind::of_store(e),
            FilesError::MissingChunk { .. }
            | FilesError::ChunkUnreadable { .. }
            | FilesError::Manifest(_)
            | FilesError::Internal(_) => FailureKind::Internal,
        }
    }
}
