//! The data path: put, get, delete, list and stat of whole files across the
//! swarm.
//!
//! Any peer coordinates any request. The ring (`crate::dht`) over the
//! current members names each chunk's and each manifest's owners; this
//! module sends chunks to their preference lists, keeps manifests there
//! with quorum writes and reads, and streams files back from whichever
//! replica answers. Every peer, this one included, is reached through the
//! typed [`ReplicaClient`](crate::replica::ReplicaClient), so one code path
//! covers both and tests can run the coordinator on an in-memory swarm.
//!
//! - `cluster`: the client, the placement, quorum sizes and preference
//!   lists (the sloppy-quorum rules), shared with the healer.
//! - `view`: placement from the member list the swarm publishes.
//! - `put`: streams a body into chunks, places each with a bounded window
//!   in flight, then writes the manifest.
//! - `read`: reads manifests by quorum with read repair, finds who holds
//!   each chunk, and streams verified chunks in order.
//! - `records`: record writes, deletes, swarm-wide listings, and letting go
//!   of the chunks of versions that are gone.
//!
//! Healing (repair, hand-back, the reference audit, scrub) lives in
//! `crate::heal`, on the same [`Cluster`].
//!
//! File data never accumulates in memory: an upload holds at most its window
//! of chunks, all uploads together at most `max_chunks_in_flight` (copies
//! finishing in the background after a put was acknowledged included), and
//! a download reads ahead a fixed number of chunks. What grows with a file
//! is its metadata: the manifest and the chunk map of a download take about
//! 100 bytes per chunk, 0.01 % of the file at the default chunk size.

mod cluster;
mod compose;
mod error;
mod inline;
mod put;
#[cfg(test)]
mod quorum_tests;
mod read;
mod records;
#[cfg(test)]
mod supersede_tests;
#[cfg(test)]
pub mod testing;
#[cfg(test)]
mod tests;
mod view;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

pub use self::cluster::{Cluster, WriteTargets};
pub use self::put::{PutOptions, Seal};
pub use self::read::ChunkSources;
pub use self::records::Listing;
pub use self::view::{FixedPlacement, PlacementSource, SwarmView};
/// What the data path reports from the store: its figures, and files as a
/// listing shows them.
pub use crate::store::{FileSummary, StoreStats};
pub use error::{FailureKind, FilesError};

use crate::chunk::{ChunkRef, HlcClock, Version};
use crate::config::TransferConfig;
use crate::identity::PeerId;
use crate::store::Store;

/// One chunk of a file with the peers that hold it.
#[derive(Debug, Clone, Serialize)]
pub struct ChunkPlacement {
    /// The chunk as the manifest records it.
    pub chunk: ChunkRef,
    /// Peers that confirm holding the chunk right now.
    pub replicas: Vec<PeerId>,
}

/// What `stat` reports about a file's copies.
#[derive(Debug, Clone)]
pub struct FileReplicas {
    /// Peers that confirm holding the current manifest.
    pub manifest: Vec<PeerId>,
    /// Every chunk with the peers that confirm holding it.
    pub chunks: Vec<ChunkPlacement>,
}

/// Counts of what this peer sent and skipped as a coordinator, so the cost
/// of a transfer (and the saving of deduplication) can be observed.
#[derive(Debug, Default)]
pub struct TransferCounters {
    chunks_sent: AtomicU64,
    chunk_bytes_sent: AtomicU64,
    chunks_already_held: AtomicU64,
    chunk_bytes_received: AtomicU64,
    stand_in_copies: AtomicU64,
}

/// A snapshot of [`TransferCounters`].
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct TransferFigures {
    /// Chunks sent to other peers by puts coordinated here.
    pub chunks_sent: u64,
    /// Bytes of chunk data sent to other peers by puts coordinated here.
    pub chunk_bytes_sent: u64,
    /// Chunk copies not sent because their owner already held them.
    pub chunks_already_held: u64,
    /// Bytes of chunk data fetched from other peers by gets coordinated here.
    pub chunk_bytes_received: u64,
    /// Chunk and manifest copies a put placed on a stand-in because an
    /// owner was down or not answering (handed back by the healer).
    #[serde(default)]
    pub stand_in_copies: u64,
}

/// The data path of one peer. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Files {
    store: Store,
    cluster: Cluster,
    clock: Arc<HlcClock>,
    chunk_size: u32,
    transfer: TransferConfig,
    chunks_in_flight: Arc<Semaphore>,
    counters: Arc<TransferCounters>,
    /// Work that outlives the request that started it (copies finishing
    /// after a put was acknowledged, read repair, releases), so shutdown
    /// can wait for it.
    tasks: TaskTracker,
}

impl Files {
    /// The data path over the local `store` and the replicas of `cluster`,
    /// writing new files in chunks of `chunk_size` bytes; background work
    /// runs on `tasks`.
    pub fn new(
        store: Store,
        cluster: Cluster,
        chunk_size: u32,
        transfer: TransferConfig,
        tasks: TaskTracker,
    ) -> Self {
        Files {
            store,
            cluster,
            clock: Arc::new(HlcClock::new()),
            chunk_size,
            chunks_in_flight: Arc::new(Semaphore::new(transfer.max_chunks_in_flight)),
            transfer,
            counters: Arc::default(),
            tasks,
        }
    }

    /// The local peer's id.
    pub fn local_peer(&self) -> PeerId {
        self.cluster.local_peer()
    }

    /// The replicas this data path writes to.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// What this peer has sent and received as a coordinator so far.
    pub fn transfer_figures(&self) -> TransferFigures {
        let c = &self.counters;
        TransferFigures {
            chunks_sent: c.chunks_sent.load(Ordering::Relaxed),
            chunk_bytes_sent: c.chunk_bytes_sent.load(Ordering::Relaxed),
            chunks_already_held: c.chunks_already_held.load(Ordering::Relaxed),
            chunk_bytes_received: c.chunk_bytes_received.load(Ordering::Relaxed),
            stand_in_copies: c.stand_in_copies.load(Ordering::Relaxed),
        }
    }

    /// Figures about the local store.
    ///
    /// # Errors
    /// Store errors.
    pub async fn store_stats(&self) -> Result<StoreStats, FilesError> {
        Ok(self.store.stats().await?)
    }

    /// Bytes free on the local store's file system, if it can be read.
    pub fn disk_free(&self) -> Option<u64> {
        self.store.free_bytes()
    }

    /// A version newer than every version this peer has given or seen.
    fn next_version(&self) -> Version {
        Version {
            hlc: self.clock.now(),
            writer: self.local_peer().to_base58(),
        }
    }
}
