//! Putting a file: body → chunks → owners, then the manifest.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::sync::{Mutex, OwnedSemaphorePermit};
use tokio::task::JoinHandle;

use super::records::WriteOutcome;
use super::{CHUNK_TIMEOUT, Files, FilesError, PeerFailure};
use crate::chunk::{
    Blake3Hash, ChunkRef, ChunkSplitter, FileName, FileRecord, Manifest, Reference, wall_millis,
};
use crate::dht::{Placement, chunk_position, name_position};
use crate::identity::PeerId;
use crate::protocol::{DataRequest, DataResponse, MAX_FILE_CHUNKS, Refusal};

/// A chunk being placed: its description once placed.
type PlacedChunk = JoinHandle<Result<ChunkRef, FilesError>>;

impl Files {
    /// Stores the content of `body` as the file `name`, replacing any
    /// earlier version. The put succeeds only once every chunk is durable on
    /// a write quorum of its owners and then the manifest is durable on a
    /// write quorum of its owners; nothing is visible under `name` before.
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
        let placement = self.placement();
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
        let result = self
            .stream_chunks(&placement, &reference, body, expected, &mut window)
            .await;
        let (chunks, size, blake3) = match result {
            Ok(done) => done,
            Err(error) => {
                // No manifest was sent, so this version can never become
                // visible: release its chunks (once those in flight have
                // landed, or their claims would outlive the release).
                for task in window {
                    let _ = task.await;
                }
                self.release_everywhere(&placement, reference.id()).await;
                if error.kind() == super::FailureKind::DiskFull {
                    self.reclaim_orphans().await;
                }
                return Err(error);
            }
        };
        let manifest = Manifest {
            name,
            size,
            blake3,
            chunk_size: self.chunk_size,
            chunks,
            created_ms: wall_millis(),
            version: reference.version.clone(),
        };
        // From here on the manifest may have reached some owners even if
        // the write fails, and could surface later as the newest version;
        // so this version's chunks are never released here. The audit
        // releases them once a quorum shows a newer version.
        let outcome = self
            .write_record(&placement, FileRecord::Live(manifest.clone()))
            .await?;
        match outcome {
            WriteOutcome::Current => {
                if let Some(prior) =
                    prior.filter(|p| p.live.is_some() && p.version < manifest.version)
                {
                    let gone = Reference {
                        name: prior.name,
                        version: prior.version,
                    };
                    self.release_in_background(&placement, gone.id());
                }
            }
            WriteOutcome::Superseded => {
                tracing::info!(name = %manifest.name, "a concurrent newer write of the name won");
            }
        }
        tracing::info!(name = %manifest.name, size, chunks = manifest.chunks.len(), blake3 = %manifest.blake3.short(), "stored file");
        Ok(manifest)
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

    /// Hashes chunk `index` and stores it on its owners, succeeding once a
    /// write quorum of owners holds it durably. An owner that is down or
    /// fails is replaced by the next stand-in on the ring, with a hint.
    async fn place_chunk(
        self,
        placement: Arc<Placement>,
        reference: Reference,
        index: usize,
        data: Bytes,
        _permit: OwnedSemaphorePermit,
    ) -> Result<ChunkRef, FilesError> {
        let (chunk, data) = tokio::task::spawn_blocking(move || (ChunkRef::compute(&data), data))
            .await
            .map_err(|e| FilesError::Internal(format!("hashing task failed: {e}")))?;
        let plan = placement.plan(chunk_position(&chunk.hash));
        let stand_ins = Mutex::new(VecDeque::from(plan.stand_ins));
        let copies = plan.owners.iter().map(|&owner| {
            let placement = &placement;
            let stand_ins = &stand_ins;
            let data = &data;
            let reference = &reference;
            let this = &self;
            async move {
                let mut failures = Vec::new();
                if placement.is_up(&owner) {
                    match this.store_copy(owner, &chunk, data, reference, None).await {
                        Ok(()) => return (true, failures),
                        Err(failure) => failures.push(failure),
                    }
                }
                loop {
                    let Some(stand_in) = stand_ins.lock().await.pop_front() else {
                        break;
                    };
                    match this
                        .store_copy(stand_in, &chunk, data, reference, Some(owner))
                        .await
                    {
                        Ok(()) => break,
                        Err(failure) => failures.push(failure),
                    }
                }
                (false, failures)
            }
        });
        let results = futures::future::join_all(copies).await;
        let stored = results.iter().filter(|(owner, _)| *owner).count();
        let needed = self.write_quorum(plan.owners.len());
        if stored >= needed {
            return Ok(chunk);
        }
        let failures: Vec<PeerFailure> = results.into_iter().flat_map(|(_, f)| f).collect();
        Err(FilesError::not_enough_replicas(
            format!("chunk {index} of {}", reference.name),
            stored,
            needed,
            &failures,
            plan.owners.iter().filter(|p| !placement.is_up(p)).count(),
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
        let ask = DataRequest::Has {
            hashes: vec![chunk.hash],
            claim: Some(reference.clone()),
        };
        match self.call(peer, ask, CHUNK_TIMEOUT).await? {
            DataResponse::Held(held) if held == [true] => {
                self.counters
                    .chunks_already_held
                    .fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            DataResponse::Held(held) if held == [false] => {}
            other => return Err(PeerFailure::unexpected(peer, &other)),
        }
        let store = DataRequest::Store {
            hash: chunk.hash,
            md5: chunk.md5,
            data: data.clone(),
            references: vec![reference.clone()],
            hint_for,
        };
        if peer != self.local_peer {
            self.counters.chunks_sent.fetch_add(1, Ordering::Relaxed);
            self.counters
                .chunk_bytes_sent
                .fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        match self.call(peer, store, CHUNK_TIMEOUT).await? {
            DataResponse::Stored => Ok(()),
            other => Err(PeerFailure::unexpected(peer, &other)),
        }
    }

    /// The newest head the manifest's owners know for `name`, if any answer.
    /// Only used to move the clock forward, so no quorum is needed.
    async fn current_head(
        &self,
        placement: &Placement,
        name: &FileName,
    ) -> Option<crate::chunk::RecordHead> {
        let owners = placement.read_order(name_position(name.as_str()));
        let copies = placement.copies();
        let asks = owners.into_iter().take(copies).map(|peer| {
            let request = DataRequest::GetRecord {
                name: name.clone(),
                head_only: true,
            };
            self.call(peer, request, super::RECORD_TIMEOUT)
        });
        let newest = futures::future::join_all(asks)
            .await
            .into_iter()
            .filter_map(|answer| match answer {
                Ok(DataResponse::Head(head)) => head.filter(|h| h.name == *name),
                _ => None,
            })
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

impl FilesError {
    /// A quorum failure for `what`, summarising why each peer failed.
    pub(super) fn not_enough_replicas(
        what: String,
        stored: usize,
        needed: usize,
        failures: &[PeerFailure],
        owners_down: usize,
    ) -> Self {
        let mut reasons: Vec<String> = failures.iter().map(ToString::to_string).collect();
        if owners_down > 0 {
            reasons.insert(0, format!("{owners_down} owner(s) down"));
        }
        if reasons.is_empty() {
            reasons.push("no peer to ask".into());
        }
        FilesError::NotEnoughReplicas {
            what,
            stored,
            needed,
            reasons: reasons.join("; "),
            disk_full: !failures.is_empty()
                && failures
                    .iter()
                    .all(|f| f.refusal == Some(Refusal::DiskFull)),
        }
    }
}
