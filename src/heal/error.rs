//! The healer's error type.

use crate::store::StoreError;

/// What can stop a healing pass or a hand-over.
#[derive(Debug, thiserror::Error)]
pub enum HealError {
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Leaving was given up because not everything could be handed over.
    #[error(
        "{chunks} chunk(s) and {records} record(s) could not be handed over yet (is an owner down?); the peer goes on handing over in the background: run `shoal leave` again to finish"
    )]
    HandOverIncomplete {
        /// Chunks still held here.
        chunks: u64,
        /// Records still held here.
        records: u64,
    },
}
