//! The data path: put, get, delete, list and stat of whole files.
//!
//! This layer turns a byte stream into chunks and a manifest, and a manifest
//! back into a byte stream. It decides where each chunk goes and where each
//! read comes from: today that is always the local store, and
//! `Files::place_chunk` and `Files::fetch_chunk` are the two places where
//! the ring's owners will take its place. It knows nothing of HTTP.
//!
//! File data never accumulates in memory: an upload holds at most its window
//! of chunks (plus one partial chunk), all uploads together at most
//! `max_chunks_in_flight`, and a download reads ahead a fixed number of
//! chunks. What does grow with a file is its metadata: the manifest and the
//! pins of a transfer take about 100 bytes per chunk, 0.01 % of the file at
//! the default chunk size (10 MiB for a 100 GiB file).

mod error;

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

/// What the data path reports from the store: its figures, and files as a
/// listing shows them.
pub use crate::store::{FileSummary, Listing, StoreStats};
pub use error::{FailureKind, FilesError};

use crate::chunk::{
    Blake3Hash, ChunkRef, ChunkSplitter, FileName, FileRecord, HlcClock, Manifest, Version,
    wall_millis,
};
use crate::config::TransferConfig;
use crate::identity::PeerId;
use crate::store::{GcPolicy, PinSet, RecordOutcome, Store, StoreError};

/// One chunk of a file with the peers that hold it.
#[derive(Debug, Clone, Serialize)]
pub struct ChunkPlacement {
    /// The chunk as the manifest records it.
    pub chunk: ChunkRef,
    /// Peers that confirm holding the chunk right now.
    pub replicas: Vec<PeerId>,
}

/// The data path of one peer. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Files {
    store: Store,
    clock: Arc<HlcClock>,
    local_peer: PeerId,
    chunk_size: u32,
    transfer: TransferConfig,
    chunks_in_flight: Arc<Semaphore>,
}

impl Files {
    /// The data path over `store`, writing new files in chunks of
    /// `chunk_size` bytes on behalf of `local_peer`.
    pub fn new(
        store: Store,
        local_peer: PeerId,
        chunk_size: u32,
        transfer: TransferConfig,
    ) -> Self {
        Files {
            store,
            clock: Arc::new(HlcClock::new()),
            local_peer,
            chunk_size,
            chunks_in_flight: Arc::new(Semaphore::new(transfer.max_chunks_in_flight)),
            transfer,
        }
    }

    /// The local peer's id.
    pub fn local_peer(&self) -> PeerId {
        self.local_peer
    }

    /// Stores the content of `body` as the file `name`, replacing any earlier
    /// version. Nothing is visible under `name` until every chunk and then the
    /// manifest are durable; if the body fails or `expected` (the BLAKE3 the
    /// client computed) does not match, the earlier version stays.
    ///
    /// # Errors
    /// [`FilesError::Body`] if the body is cut off, [`FilesError::ContentMismatch`]
    /// if it does not hash to `expected`, store errors (a full disk among them).
    pub async fn put<S, E>(
        &self,
        name: FileName,
        body: S,
        expected: Option<Blake3Hash>,
    ) -> Result<Manifest, FilesError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let result = self.put_pinned(name, body, expected).await;
        if result
            .as_ref()
            .is_err_and(|e| e.kind() == FailureKind::DiskFull)
        {
            self.reclaim_orphans().await;
        }
        result
    }

    /// After a write failed on a full disk, the chunks that uploads wrote
    /// but never committed would hold their space for the whole grace
    /// period. Give it back now: only chunks no upload has pinned go, so
    /// uploads still running keep theirs.
    async fn reclaim_orphans(&self) {
        let policy = GcPolicy {
            grace_ms: 0,
            tombstone_ttl_ms: u64::MAX,
        };
        match self.store.collect_garbage(policy).await {
            Ok(report) => tracing::warn!(
                ?report,
                "disk full: reclaimed the space of uncommitted chunks"
            ),
            Err(error) => tracing::warn!(%error, "disk full and reclaiming space failed"),
        }
    }

    /// The upload itself. It is separate from [`Files::put`] so that its
    /// pins are released when it returns, before a disk-full reclaim runs.
    async fn put_pinned<S, E>(
        &self,
        name: FileName,
        body: S,
        expected: Option<Blake3Hash>,
    ) -> Result<Manifest, FilesError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let mut body = std::pin::pin!(body);
        let mut pins = Vec::new();
        let mut splitter = ChunkSplitter::new(self.chunk_size);
        let mut whole = blake3::Hasher::new();
        let mut size: u64 = 0;
        let mut chunks: Vec<ChunkRef> = Vec::new();
        let mut window: VecDeque<JoinHandle<Result<(ChunkRef, PinSet), FilesError>>> =
            VecDeque::new();

        let mut finished = false;
        while !finished {
            let pieces = match body.next().await {
                Some(Ok(data)) => {
                    size += data.len() as u64;
                    whole.update(&data);
                    splitter.push(data)
                }
                Some(Err(e)) => {
                    return Err(FilesError::Body {
                        name,
                        reason: e.to_string(),
                    });
                }
                None => {
                    finished = true;
                    std::mem::replace(&mut splitter, ChunkSplitter::new(self.chunk_size))
                        .finish()
                        .into_iter()
                        .collect()
                }
            };
            for data in pieces {
                if window.len() >= self.transfer.upload_window {
                    collect_chunk(&mut window, &mut chunks, &mut pins).await?;
                }
                let permit = Arc::clone(&self.chunks_in_flight)
                    .acquire_owned()
                    .await
                    .map_err(|_| FilesError::ShuttingDown)?;
                window.push_back(tokio::spawn(self.clone().place_chunk(data, permit)));
            }
        }
        while !window.is_empty() {
            collect_chunk(&mut window, &mut chunks, &mut pins).await?;
        }

        let blake3: Blake3Hash = whole.finalize().into();
        if let Some(expected) = expected
            && expected != blake3
        {
            return Err(FilesError::ContentMismatch {
                name,
                expected,
                actual: blake3,
            });
        }
        let version = self.next_version(&name).await?;
        let manifest = Manifest {
            name,
            size,
            blake3,
            chunk_size: self.chunk_size,
            chunks,
            created_ms: wall_millis(),
            version,
        };
        match self
            .store
            .put_record(FileRecord::Live(manifest.clone()))
            .await?
        {
            RecordOutcome::Applied | RecordOutcome::Unchanged => {}
            RecordOutcome::Superseded => {
                tracing::info!(name = %manifest.name, "a concurrent newer write of the name won");
            }
        }
        drop(pins);
        tracing::info!(name = %manifest.name, size, chunks = manifest.chunks.len(), blake3 = %manifest.blake3.short(), "stored file");
        Ok(manifest)
    }

    /// Hashes one chunk and stores it where it belongs (today: locally).
    /// The chunk is pinned before it is written, so garbage collection cannot
    /// take it between its write and the commit of the manifest that uses it.
    async fn place_chunk(
        self,
        data: Bytes,
        _permit: OwnedSemaphorePermit,
    ) -> Result<(ChunkRef, PinSet), FilesError> {
        let (chunk, data) = tokio::task::spawn_blocking(move || (ChunkRef::compute(&data), data))
            .await
            .map_err(|e| FilesError::Internal(format!("hashing task failed: {e}")))?;
        let mut pin = self.store.pin_set();
        pin.pin(&chunk.hash);
        self.store.put_chunk(chunk.hash, chunk.md5, data).await?;
        Ok((chunk, pin))
    }

    /// A version newer than any this peer has given or stored for `name`.
    async fn next_version(&self, name: &FileName) -> Result<Version, FilesError> {
        if let Some(existing) = self.store.record(name).await? {
            self.clock.observe(existing.version().hlc);
        }
        Ok(Version {
            hlc: self.clock.now(),
            writer: self.local_peer.to_base58(),
        })
    }

    /// The current manifest of `name`.
    ///
    /// # Errors
    /// [`FilesError::NotFound`] if there is no such file (or it was deleted).
    pub async fn manifest(&self, name: &FileName) -> Result<Manifest, FilesError> {
        match self.store.record(name).await? {
            Some(FileRecord::Live(manifest)) => {
                manifest.validate()?;
                Ok(manifest)
            }
            _ => Err(FilesError::NotFound(name.clone())),
        }
    }

    /// Checks that every chunk of `manifest` can be fetched, so a download
    /// fails before it starts rather than halfway through.
    ///
    /// # Errors
    /// [`FilesError::MissingChunk`] naming the first chunk no one holds.
    pub async fn check_readable(&self, manifest: &Manifest) -> Result<(), FilesError> {
        let hashes = manifest.chunks.iter().map(|c| c.hash).collect();
        let present = self.store.has_chunks(hashes).await?;
        match present.iter().position(|p| !p) {
            Some(index) => Err(FilesError::MissingChunk {
                name: manifest.name.clone(),
                index,
                hash: manifest.chunks[index].hash,
            }),
            None => Ok(()),
        }
    }

    /// The bytes `start..=end` of the file (a validated manifest), streamed
    /// in order with a bounded read-ahead; every chunk is verified against
    /// its hash before any of its bytes are yielded. The chunks are pinned
    /// while the stream lives, so deleting or overwriting the file meanwhile
    /// cannot pull them out from under a response already under way.
    pub fn read_range(
        &self,
        manifest: Manifest,
        start: u64,
        end: u64,
    ) -> impl Stream<Item = Result<Bytes, FilesError>> + Send + 'static {
        let span = match (manifest.locate(start), manifest.locate(end)) {
            (Some((first, _)), Some((last, _))) if start <= end => first..last + 1,
            _ => 0..0,
        };
        let mut pins = self.store.pin_set();
        for chunk in &manifest.chunks[span.clone()] {
            pins.pin(&chunk.hash);
        }
        let files = self.clone();
        let manifest = Arc::new(manifest);
        futures::stream::iter(span)
            .map(move |index| {
                let files = files.clone();
                let manifest = Arc::clone(&manifest);
                async move {
                    let data = files.fetch_chunk(&manifest, index).await?;
                    let chunk_start = manifest.chunk_offset(index);
                    let from = start.saturating_sub(chunk_start) as usize;
                    let to = ((end + 1 - chunk_start) as usize).min(data.len());
                    Ok(data.slice(from..to))
                }
            })
            .buffered(self.transfer.read_ahead)
            .map(move |piece| {
                let _held_until_the_stream_ends = &pins;
                piece
            })
    }

    /// Reads chunk `index` of `manifest` from where it lives (today: locally).
    async fn fetch_chunk(&self, manifest: &Manifest, index: usize) -> Result<Bytes, FilesError> {
        let hash = manifest.chunks[index].hash;
        self.store.read_chunk(hash).await.map_err(|e| match e {
            StoreError::ChunkNotFound(_) => FilesError::MissingChunk {
                name: manifest.name.clone(),
                index,
                hash,
            },
            other => other.into(),
        })
    }

    /// Deletes `name` by writing a tombstone newer than its current version.
    /// Its chunks' space is reclaimed once no other file uses them.
    ///
    /// # Errors
    /// [`FilesError::NotFound`] if there is no such file.
    pub async fn delete(&self, name: &FileName) -> Result<(), FilesError> {
        // Any live record can be deleted, even one whose manifest is damaged.
        if !matches!(self.store.record(name).await?, Some(FileRecord::Live(_))) {
            return Err(FilesError::NotFound(name.clone()));
        }
        let version = self.next_version(name).await?;
        let tombstone = FileRecord::Deleted {
            name: name.clone(),
            version,
            deleted_ms: wall_millis(),
        };
        self.store.put_record(tombstone).await?;
        tracing::info!(%name, "deleted file");
        Ok(())
    }

    /// Live files whose names start with `prefix`, after `after`, at most
    /// `limit`.
    ///
    /// # Errors
    /// Store errors.
    pub async fn list(
        &self,
        prefix: String,
        after: Option<String>,
        limit: usize,
    ) -> Result<Listing, FilesError> {
        Ok(self.store.list(prefix, after, limit).await?)
    }

    /// The manifest of `name` with, for every chunk, the peers holding it.
    ///
    /// # Errors
    /// [`FilesError::NotFound`] if there is no such file.
    pub async fn stat(
        &self,
        name: &FileName,
    ) -> Result<(Manifest, Vec<ChunkPlacement>), FilesError> {
        let manifest = self.manifest(name).await?;
        let hashes = manifest.chunks.iter().map(|c| c.hash).collect();
        let present = self.store.has_chunks(hashes).await?;
        let placements = manifest
            .chunks
            .iter()
            .zip(present)
            .map(|(chunk, here)| ChunkPlacement {
                chunk: *chunk,
                replicas: if here {
                    vec![self.local_peer]
                } else {
                    Vec::new()
                },
            })
            .collect();
        Ok((manifest, placements))
    }

    /// Figures about the local store.
    ///
    /// # Errors
    /// Store errors.
    pub async fn store_stats(&self) -> Result<StoreStats, FilesError> {
        Ok(self.store.stats().await?)
    }
}

/// Waits for the oldest chunk in the window and records it, keeping its pin
/// until the upload ends.
async fn collect_chunk(
    window: &mut VecDeque<JoinHandle<Result<(ChunkRef, PinSet), FilesError>>>,
    chunks: &mut Vec<ChunkRef>,
    pins: &mut Vec<PinSet>,
) -> Result<(), FilesError> {
    let Some(oldest) = window.pop_front() else {
        return Ok(());
    };
    let (chunk, pin) = oldest
        .await
        .map_err(|e| FilesError::Internal(format!("chunk task failed: {e}")))??;
    pins.push(pin);
    chunks.push(chunk);
    Ok(())
}

#[cfg(test)]
mod tests;
