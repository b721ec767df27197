//! Putting a file: body → chunks → owners, then the manifest.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, Stream, StreamExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use super::inline::{SmallFile, concatenate, read_head};
use super::records::WriteOutcome;
use super::{Files, FilesError};
use crate::chunk::{
    Blake3Hash, ChunkRef, ChunkSplitter, Extensions, FileName, FileRecord, MAX_INLINE_BYTES,
    Manifest, Reference, chunked_etag, tags, wall_millis,
};
use crate::dht::{Placement, chunk_position, name_position};
use crate::identity::PeerId;
use crate::protocol::MAX_FILE_CHUNKS;
use crate::replica::{ChunkCopy, PeerFailure};

/// A chunk being placed: its description once placed.
type PlacedChunk = JoinHandle<Result<ChunkRef, FilesError>>;

/// A check run once an upload's whole body has been read and stored, before
/// its manifest is written: it may add optional fields to the manifest (an
/// ETag computed on the side) or refuse the content, in which case nothing
/// becomes visible.
pub type Seal = BoxFuture<'static, Result<Extensions, FilesError>>;

/// What a put records beyond the content itself.
#[derive(Default)]
pub struct PutOptions {
    /// The BLAKE3 the client computed; a body that does not hash to it is
    /// refused.
    pub expected: Option<Blake3Hash>,
    /// Optional fields stored with the manifest.
    pub extensions: Extensions,
    /// Run after the body, before the manifest (see [`Seal`]).
    pub seal: Option<Seal>,
    /// Store the content in the chunk store even when it is small enough
    /// to live in the manifest: for content whose chunks a later
    /// [`Files::compose`] reuses (the parts of an S3 multipart upload).
    pub chunks_only: bool,
}

impl Files {
    /// Stores the content of `body` as the file `name`, replacing any
    /// earlier version. The put succeeds only once every chunk is durable on
    /// a write quorum of its preference list and then the manifest is
    /// durable on a write quorum of its own; nothing is visible under
    /// `name` before. The manifest returned carries the version written.
    /// If the body fails, `expected` (the BLAKE3 the client computed) does
    /// not match, or a quorum cannot be reached, the earlier version stays.
    ///
    /// # Errors
    /// [`FilesError::Body`] if the body is cut off, [`FilesError::ContentMismatch`]
    /// if it does not hash to `expected`, [`FilesError::NotEnoughReplicas`]
    /// if too few owners stored a chunk or the manifest,
    /// [`FilesError::TooLarge`] past [`MAX_FILE_CHUNKS`] chunks.
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
        let options = PutOptions {
            expected,
            ..PutOptions::default()
        };
        self.put_with(name, body, options).await
    }

    /// [`Files::put`] with optional fields stored in the manifest and a
    /// [`Seal`] that may add to them or refuse the content. A file's ETag
    /// is its chunks' (see [`chunked_etag`]) unless the fields set one.
    ///
    /// # Errors
    /// As [`Files::put`], and whatever the seal returns.
    pub async fn put_with<S, E>(
        &self,
        name: FileName,
        body: S,
        options: PutOptions,
    ) -> Result<Manifest, FilesError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let PutOptions {
            expected,
            mut extensions,
            seal,
            chunks_only,
        } = options;
        let mut body = Box::pin(body);
        let (head, ended) = read_head(&mut body, &name, MAX_INLINE_BYTES).await?;
        let head_len: usize = head.iter().map(Bytes::len).sum();
        // Inline only what would have been one chunk.
        let inline_limit = MAX_INLINE_BYTES.min(self.chunk_size as usize);
        let inline = ended && !chunks_only && (1..=inline_limit).contains(&head_len);
        let placement = self.cluster.placement();
        if inline {
            let content = concatenate(head);
            let small = SmallFile {
                name,
                content,
                expected,
                extensions,
            };
            return self.put_inline(&placement, small, seal).await;
        }
        // Order this write after every version the owners know of, so a
        // peer whose clock is behind still writes a newer version.
        let prior = self.current_head(&placement, &name).await;
        let version = self.next_version();
        let reference = Reference {
            name: name.clone(),
            version,
        };
        let _running = self.store.upload_running(reference.id());
        let mut window = VecDeque::new();
        let finishing = TaskTracker::new();
        // A body that ended must not be polled again: some streams panic
        // if they are.
        let rest = futures::stream::iter((!ended).then_some(body)).flatten();
        let body = futures::stream::iter(head.into_iter().map(Ok)).chain(rest);
        let result = self
            .stream_chunks(
                &placement,
                &reference,
                body,
                expected,
                &mut window,
                &finishing,
            )
            .await;
        let result = match (result, seal) {
            (Ok(done), Some(seal)) => seal.await.map(|sealed| {
                extensions.merge(sealed);
                done
            }),
            (result, _) => result,
        };
        let (chunks, size, blake3) = match result {
            Ok(done) => done,
            Err(error) => {
                // No manifest was sent, so this version can never become
                // visible: release its chunks (once those in flight have
                // landed, or their claims would outlive the release).
                for task in window {
                    let _ = task.await;
                }
                finishing.close();
                finishing.wait().await;
                self.release_everywhere(&placement, reference.id()).await;
                if error.kind() == super::FailureKind::DiskFull {
                    self.reclaim_orphans().await;
                }
                return Err(error);
            }
        };
        if extensions.get(tags::ETAG).is_none() {
            extensions.set(tags::ETAG, chunked_etag(&chunks).into_bytes());
        }
        let manifest = Manifest {
            name,
            size,
            blake3,
            chunk_size: self.chunk_size,
            chunks,
            created_ms: wall_millis(),
            version: reference.version.clone(),
            extensions,
        };
        self.commit(&placement, manifest, prior.is_some()).await
    }

    /// Writes the manifest of a version whose chunks are all in place, and
    /// once it is current, lets go of the older versions (if `replaces`).
    ///
    /// From here on the manifest may reach some owners even if the write
    /// fails, and could surface later as the newest version; so its chunks
    /// are never released here. The audit releases them once a quorum
    /// shows a newer version.
    pub(super) async fn commit(
        &self,
        placement: &Placement,
        manifest: Manifest,
        replaces: bool,
    ) -> Result<Manifest, FilesError> {
        let outcome = self
            .write_record(placement, FileRecord::Live(manifest.clone()))
            .await?;
        self.committed(placement, &manifest, outcome, replaces);
        Ok(manifest)
    }

    /// What follows a manifest write that reached a quorum: once it is
    /// current, every older version of the name is gone for good, so each
    /// peer drops their holds, including those whose release it missed
    /// (if `replaces`, or an owner answered that it held an older one).
    pub(super) fn committed(
        &self,
        placement: &Placement,
        manifest: &Manifest,
        outcome: WriteOutcome,
        replaces: bool,
    ) {
        match outcome {
            WriteOutcome::Current { replaced } => {
                if replaces || replaced {
                    self.supersede_in_background(placement, &manifest.name, &manifest.version);
                }
            }
            WriteOutcome::Superseded { .. } => {
                tracing::info!(name = %manifest.name, "a concurrent newer write of the name won");
            }
        }
        tracing::info!(name = %manifest.name, size = manifest.size, chunks = manifest.chunks.len(), blake3 = %manifest.blake3.short(), "stored file");
    }

    /// Splits the body into chunks and places each, keeping at most the
    /// upload window in flight. Returns the chunk list, the size and the
    /// whole content's BLAKE3.
    async fn stream_chunks<S, E>(
        &self,
        placement: &Arc<Placement>,
        reference: &Reference,
        body: S,
        expected: Option<Blake3Hash>,
        window: &mut VecDeque<PlacedChunk>,
        finishing: &TaskTracker,
    ) -> Result<(Vec<ChunkRef>, u64, Blake3Hash), FilesError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let name = &reference.name;
        let mut body = std::pin::pin!(body);
        let mut splitter = ChunkSplitter::new(self.chunk_size);
        let mut whole = blake3::Hasher::new();
        let mut size: u64 = 0;
        let mut chunks: Vec<ChunkRef> = Vec::new();
        let mut placed = 0usize;
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
                        name: name.clone(),
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
                if placed == MAX_FILE_CHUNKS {
                    return Err(FilesError::TooLarge {
                        name: name.clone(),
                        chunks: MAX_FILE_CHUNKS,
                        chunk_size: self.chunk_size,
                    });
                }
                if window.len() >= self.transfer.upload_window {
                    collect_oldest(window, &mut chunks).await?;
                }
                let permit = Arc::clone(&self.chunks_in_flight)
                    .acquire_owned()
                    .await
                    .map_err(|_| FilesError::ShuttingDown)?;
                let task = self.clone().place_chunk(
                    Arc::clone(placement),
                    reference.clone(),
                    placed,
                    data,
                    permit,
                    finishing.clone(),
                );
                window.push_back(tokio::spawn(task));
                placed += 1;
            }
        }
        while !window.is_empty() {
            collect_oldest(window, &mut chunks).await?;
        }
        let blake3: Blake3Hash = whole.finalize().into();
        if let Some(expected) = expected
            && expected != blake3
        {
            return Err(FilesError::ContentMismatch {
                name: name.clone(),
                expected,
                actual: blake3,
            });
        }
        Ok((chunks, size, blake3))
    }

    /// Hashes chunk `index` and stores it on its preference list,
    /// succeeding once a write quorum of distinct peers holds it durably
    /// (see `cluster` for the rules). The copies still under way then go
    /// on in the background on `finishing`, holding the chunk's permit.
    pub(super) async fn place_chunk(
        self,
        placement: Arc<Placement>,
        reference: Reference,
        index: usize,
        data: Bytes,
        permit: OwnedSemaphorePermit,
        finishing: TaskTracker,
    ) -> Result<ChunkRef, FilesError> {
        let (chunk, data) = tokio::task::spawn_blocking(move || (ChunkRef::compute(&data), data))
            .await
            .map_err(|e| FilesError::Internal(format!("hashing task failed: {e}")))?;
        let plan = placement.plan(chunk_position(&chunk.hash));
        let targets = self.cluster.write_targets(&placement, &plan);
        let needed = self.cluster.write_quorum(plan.owners.len());
        let job = Arc::new(ChunkJob {
            files: self.clone(),
            chunk,
            data,
            reference,
            spares: std::sync::Mutex::new(targets.spares),
        });
        let mut copies: FuturesUnordered<BoxFuture<'static, CopyOutcome>> = targets
            .first
            .into_iter()
            .map(|(peer, hint_for)| Arc::clone(&job).copy(peer, hint_for).boxed())
            .collect();
        let mut stored = 0;
        let mut failures = Vec::new();
        while let Some((done, failed)) = copies.next().await {
            failures.extend(failed);
            stored += usize::from(done);
            if stored >= needed {
                if !copies.is_empty() {
                    finishing.spawn(async move {
                        let _permit = permit;
                        while copies.next().await.is_some() {}
                    });
                }
                return Ok(chunk);
            }
        }
        Err(FilesError::not_enough_replicas(
            format!("chunk {index} of {}", job.reference.name),
            stored,
            needed,
            &failures,
            self.cluster.owners_unusable(&placement, &plan),
        ))
    }

    /// Stores one copy of a chunk on `peer`, sending its bytes only if the
    /// peer does not already hold it. `hint_for` names the owner a stand-in
    /// keeps the copy for.
    async fn store_copy(
        &self,
        peer: PeerId,
        chunk: &ChunkRef,
        data: &Bytes,
        reference: &Reference,
        hint_for: Option<PeerId>,
    ) -> Result<(), PeerFailure> {
        let client = self.cluster.client();
        if client.claim(peer, chunk.hash, reference).await? {
            self.counters
                .chunks_already_held
                .fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        if peer != self.local_peer() {
            self.counters.chunks_sent.fetch_add(1, Ordering::Relaxed);
            self.counters
                .chunk_bytes_sent
                .fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        let copy = ChunkCopy {
            hash: chunk.hash,
            md5: chunk.md5,
            data: data.clone(),
            references: vec![reference.clone()],
            hint_for,
        };
        client.store(peer, copy).await?;
        if hint_for.is_some() {
            self.counters
                .stand_in_copies
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The newest head the first peers of the manifest's preference list
    /// know for `name`, if any answer.
    /// Only used to move the clock forward, so no quorum is needed.
    pub(super) async fn current_head(
        &self,
        placement: &Placement,
        name: &FileName,
    ) -> Option<crate::chunk::RecordHead> {
        let plan = placement.plan(name_position(name.as_str()));
        let order = self.cluster.read_order(placement, &plan);
        let asks = order
            .into_iter()
            .take(placement.copies())
            .map(|peer| self.cluster.client().head(peer, name));
        let newest = futures::future::join_all(asks)
            .await
            .into_iter()
            .filter_map(|answer| answer.ok().flatten())
            .max_by(|a, b| a.version.cmp(&b.version));
        if let Some(head) = &newest {
            self.clock.observe(head.version.hlc);
        }
        newest
    }

    /// After a write failed on a full local disk, the chunks the upload
    /// wrote here would hold their space for the whole grace period. Give
    /// it back now: its reference is released, so only chunks no other file
    /// uses go.
    async fn reclaim_orphans(&self) {
        let policy = crate::store::GcPolicy {
            grace_ms: 0,
            tombstone_ttl_ms: u64::MAX,
        };
        match self.store.collect_garbage(policy).await {
            Ok(report) => tracing::warn!(
                ?report,
                "disk full: reclaimed the space of unreferenced chunks"
            ),
            Err(error) => tracing::warn!(%error, "disk full and reclaiming space failed"),
        }
    }
}

/// Waits for the oldest chunk in the window and appends it to the list.
async fn collect_oldest(
    window: &mut VecDeque<PlacedChunk>,
    chunks: &mut Vec<ChunkRef>,
) -> Result<(), FilesError> {
    let Some(oldest) = window.pop_front() else {
        return Ok(());
    };
    let chunk = oldest
        .await
        .map_err(|e| FilesError::Internal(format!("chunk task failed: {e}")))??;
    chunks.push(chunk);
    Ok(())
}

/// Whether a copy ended up stored, and the failures on the way.
type CopyOutcome = (bool, Vec<PeerFailure>);

/// One chunk being copied to its preference list: what every copy needs,
/// shared by the copies under way (some of which may finish after the put
/// was acknowledged).
struct ChunkJob {
    files: Files,
    chunk: ChunkRef,
    data: Bytes,
    reference: Reference,
    /// Usable stand-ins not yet tried, taken in ring order by copies whose
    /// peer failed.
    spares: std::sync::Mutex<VecDeque<PeerId>>,
}

impl ChunkJob {
    /// Stores one copy on `peer`, or on the next spare stand-ins (hinted
    /// for the owner this copy was meant for) while peers fail.
    async fn copy(self: Arc<Self>, peer: PeerId, hint_for: Option<PeerId>) -> CopyOutcome {
        // The owner this copy belongs to, which every stand-in's hint names.
        let owner = hint_for.unwrap_or(peer);
        let mut failures = Vec::new();
        let mut target = Some((peer, hint_for));
        while let Some((peer, hint_for)) = target {
            match self
                .files
                .store_copy(peer, &self.chunk, &self.data, &self.reference, hint_for)
                .await
            {
                Ok(()) => return (true, failures),
                Err(failure) => failures.push(failure),
            }
            let next = self
                .spares
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front();
            target = next.map(|spare| (spare, Some(owner)));
        }
        (false, failures)
    }
}
