//! Composing a file from chunks the swarm already holds.
//!
//! An S3 multipart upload's parts and the source of an S3 copy are already
//! stored as chunks, replicated like any other. A new file made of them
//! needs no data moved: each chunk's owners are asked to record the new
//! version's reference on the copy they hold (a batched claim), and only a
//! chunk that too few owners hold is fetched and placed as a put would.
//! Then the manifest is written as a put writes it.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;

use super::read::is_intact;
use super::{Files, FilesError};
use crate::chunk::{
    Blake3Hash, ChunkRef, Extensions, FileName, Manifest, Reference, tags, wall_millis,
};
use crate::dht::{Placement, chunk_position};
use crate::identity::PeerId;
use crate::protocol::MAX_FILE_CHUNKS;

/// How many short-held chunks are fetched and placed at once.
const REPLACEMENTS_IN_FLIGHT: usize = 4;

impl Files {
    /// Writes `name` as a new version made of `chunks`, in order, which
    /// must be held somewhere in the swarm (or, for a small file, be the
    /// bytes `extensions` carries inline), with `extensions`. The content
    /// hash is `blake3` when the caller knows it (a copy of a whole file),
    /// and otherwise a digest of the chunk list, marked as such (see
    /// [`Manifest::is_composed`]). Like a put, nothing is visible under
    /// `name` until every chunk is referenced on a write quorum and the
    /// manifest is written.
    ///
    /// # Errors
    /// [`FilesError::TooLarge`] past [`MAX_FILE_CHUNKS`] chunks,
    /// [`FilesError::MissingChunk`] if a chunk is held nowhere reachable,
    /// [`FilesError::NotEnoughReplicas`] if a quorum cannot be reached.
    pub async fn compose(
        &self,
        name: FileName,
        chunks: Vec<ChunkRef>,
        blake3: Option<Blake3Hash>,
        mut extensions: Extensions,
    ) -> Result<Manifest, FilesError> {
        if chunks.len() > MAX_FILE_CHUNKS {
            return Err(FilesError::TooLarge {
                name,
                chunks: MAX_FILE_CHUNKS,
                chunk_size: self.chunk_size,
            });
        }
        let placement = self.cluster.placement();
        let prior = self.current_head(&placement, &name).await;
        let reference = Reference {
            name: name.clone(),
            version: self.next_version(),
        };
        let _running = self.store.upload_running(reference.id());
        // A small file's bytes travel in its manifest (the caller copied
        // them into `extensions`): its chunk is in no store to reference.
        let inline = extensions.get(tags::INLINE).is_some();
        if !inline && let Err(error) = self.reference_chunks(&placement, &reference, &chunks).await
        {
            self.release_everywhere(&placement, reference.id()).await;
            return Err(error);
        }
        let blake3 = blake3.unwrap_or_else(|| {
            extensions.set(tags::COMPOSED, Vec::new());
            Manifest::composed_hash(&chunks)
        });
        if extensions.get(tags::ETAG).is_none() {
            extensions.set(tags::ETAG, crate::chunk::chunked_etag(&chunks).into_bytes());
        }
        let largest = chunks.iter().map(|c| c.size).max().unwrap_or(0);
        let manifest = Manifest {
            name,
            size: chunks.iter().map(|c| u64::from(c.size)).sum(),
            blake3,
            chunk_size: largest.max(self.chunk_size),
            chunks,
            created_ms: wall_millis(),
            version: reference.version,
            extensions,
        };
        self.commit(&placement, manifest, prior.is_some()).await
    }

    /// Records `reference` on a write quorum of copies of every chunk:
    /// claims on the holders first, then a fetch and a fresh placement for
    /// the chunks too few owners hold.
    async fn reference_chunks(
        &self,
        placement: &Arc<Placement>,
        reference: &Reference,
        chunks: &[ChunkRef],
    ) -> Result<(), FilesError> {
        // Every chunk's first write targets, asked in one batch per peer.
        let mut asks: HashMap<PeerId, Vec<usize>> = HashMap::new();
        for (index, chunk) in chunks.iter().enumerate() {
            let plan = placement.plan(chunk_position(&chunk.hash));
            for (peer, _) in self.cluster.write_targets(placement, &plan).first {
                asks.entry(peer).or_default().push(index);
            }
        }
        let client = self.cluster.client();
        let claims = asks.iter().map(|(&peer, indexes)| async move {
            let hashes: Vec<Blake3Hash> = indexes.iter().map(|&i| chunks[i].hash).collect();
            (indexes, client.claim_many(peer, &hashes, reference).await)
        });
        let mut held = vec![0usize; chunks.len()];
        for (indexes, answer) in futures::future::join_all(claims).await {
            match answer {
                Ok(answer) => {
                    for (&index, holds) in indexes.iter().zip(answer) {
                        held[index] += usize::from(holds);
                    }
                }
                Err(failure) => tracing::debug!(%failure, "a claim failed"),
            }
        }
        let short: Vec<usize> = (0..chunks.len())
            .filter(|&index| {
                let plan = placement.plan(chunk_position(&chunks[index].hash));
                held[index] < self.cluster.write_quorum(plan.owners.len())
            })
            .collect();
        let mut replacements = futures::stream::iter(short)
            .map(|index| self.replace_chunk(placement, reference, index, chunks[index]))
            .buffer_unordered(REPLACEMENTS_IN_FLIGHT);
        while let Some(placed) = replacements.next().await {
            placed?;
        }
        Ok(())
    }

    /// Fetches chunk `index` from any peer that holds an intact copy and
    /// places it on its preference list as a put would.
    async fn replace_chunk(
        &self,
        placement: &Arc<Placement>,
        reference: &Reference,
        index: usize,
        chunk: ChunkRef,
    ) -> Result<(), FilesError> {
        let peers = self.cluster.usable_members(placement);
        let client = self.cluster.client();
        let holders = client_holders(self, &peers, chunk.hash).await;
        let mut data = None;
        for peer in holders {
            match client.fetch(peer, chunk.hash, chunk.size as usize).await {
                Ok(bytes) if is_intact(&chunk, &bytes) => {
                    data = Some(bytes);
                    break;
                }
                Ok(_) => {
                    tracing::warn!(%peer, chunk = %chunk.hash, "a peer served a damaged copy of a chunk")
                }
                Err(failure) => tracing::debug!(%failure, "a chunk fetch failed"),
            }
        }
        let Some(data) = data else {
            return Err(FilesError::MissingChunk {
                name: reference.name.clone(),
                index,
                hash: chunk.hash,
            });
        };
        let permit = Arc::clone(&self.chunks_in_flight)
            .acquire_owned()
            .await
            .map_err(|_| FilesError::ShuttingDown)?;
        self.clone()
            .place_chunk(
                Arc::clone(placement),
                reference.clone(),
                index,
                data,
                permit,
                self.tasks.clone(),
            )
            .await
            .map(|_| ())
    }
}

/// The peers among `peers` that say they hold `hash`, this peer first.
async fn client_holders(files: &Files, peers: &[PeerId], hash: Blake3Hash) -> Vec<PeerId> {
    let client = files.cluster.client();
    let asks = peers.iter().map(|&peer| async move {
        matches!(client.has(peer, &[hash]).await.as_deref(), Ok([true])).then_some(peer)
    });
    let mut holders: Vec<PeerId> = futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect();
    let local = files.local_peer();
    holders.sort_by_key(|peer| *peer != local);
    holders
}
