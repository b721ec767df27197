//! The store's error type.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::chunk::Blake3Hash;
use crate::codec::CodecError;

/// What can go wrong in the local store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process has the data directory's database open.
    #[error("data directory {0} is in use by another shoal process")]
    Locked(PathBuf),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the store was doing.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The disk holding the data directory is full; nothing was acknowledged.
    #[error("the disk is full ({0}); nothing was stored")]
    DiskFull(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] DatabaseError),
    /// A stored chunk's bytes no longer match its hash.
    #[error("chunk {0} is corrupt on this peer's disk")]
    Corrupt(Blake3Hash),
    /// The chunk is not stored here.
    #[error("chunk {0} is not stored on this peer")]
    ChunkNotFound(Blake3Hash),
    /// A stored record cannot be decoded.
    #[error("a stored record is unreadable: {0}")]
    Record(#[from] CodecError),
    /// The store has shut down.
    #[error("the store is shut down")]
    Closed,
    /// The database is being reopened after a failed write, or reopening
    /// failed; the writer retries with its next batch.
    #[error("the store is recovering from a failed write; try again")]
    Unavailable,
    /// A failure shared by every operation of a batch that could not commit.
    #[error(transparent)]
    Shared(Arc<StoreError>),
}

impl StoreError {
    /// The error itself, seen through a batch's shared failure.
    pub fn root(&self) -> &StoreError {
        match self {
            StoreError::Shared(inner) => inner.root(),
            other => other,
        }
    }

    /// Wraps an I/O error, recognising a full disk.
    pub(super) fn io(context: impl Into<String>, source: io::Error) -> Self {
        let context = context.into();
        if is_disk_full(&source) {
            StoreError::DiskFull(context)
        } else {
            StoreError::Io { context, source }
        }
    }
}

fn is_disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull || e.kind() == io::ErrorKind::QuotaExceeded
}

/// An error from redb, kept opaque so that the database is not part of the
/// store's public interface.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DatabaseError(redb::Error);

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                let e: redb::Error = e.into();
                if let redb::Error::Io(io) = &e {
                    if is_disk_full(io) {
                        return StoreError::DiskFull(format!("database: {io}"));
                    }
                }
                StoreError::Database(DatabaseError(e))
            }
        }
    )*};
}

from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// The store's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
