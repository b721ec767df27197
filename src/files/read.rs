//! Reading files: manifests by quorum with read repair, then verified chunks
//! from whichever replica answers.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::{
    CHUNK_TIMEOUT, ChunkPlacement, FileReplicas, Files, FilesError, PeerFailure, RECORD_TIMEOUT,
};
use crate::chunk::{Blake3Hash, ChunkRef, FileName, FileRecord, Manifest};
use crate::dht::{Placement, chunk_position, name_position};
use crate::identity::PeerId;
use crate::protocol::{DataRequest, DataResponse, MAX_HASHES};

/// Who holds each chunk of part of a file, found before a download starts
/// so that a missing chunk fails the request before any byte is sent.
#[derive(Debug, Clone)]
pub struct ChunkSources {
    /// The peers named below.
    peers: Vec<PeerId>,
    /// The index of the first chunk covered.
    first: usize,
    /// For each chunk from `first` on, indexes into `peers`, best first.
    holders: Vec<Vec<u16>>,
}

impl ChunkSources {
    fn holders_of(&self, index: usize) -> Vec<PeerId> {
        index
            .checked_sub(self.first)
            .and_then(|i| self.holders.get(i))
            .map(|h| h.iter().map(|&p| self.peers[usize::from(p)]).collect())
            .unwrap_or_default()
    }
}

impl Files {
    /// The current manifest of `name`, read from a read quorum of its
    /// owners; owners found behind are brought up to date in the background.
    ///
    /// # Errors
    /// [`FilesError::NotFound`] if there is no such file (or it was
    /// deleted); [`FilesError::NotEnoughReplicas`] if too few owners answer.
    pub async fn manifest(&self, name: &FileName) -> Result<Manifest, FilesError> {
        let placement = self.placement();
        match self.read_record(&placement, name).await? {
            Some(FileRecord::Live(manifest)) => Ok(manifest),
            _ => Err(FilesError::NotFound(name.clone())),
        }
    }

    /// The newest record for `name` among a read quorum of its owners (up
    /// owners first, then stand-ins), with read repair.
    pub(super) async fn read_record(
        &self,
        placement: &Arc<Placement>,
        name: &FileName,
    ) -> Result<Option<FileRecord>, FilesError> {
        let plan = placement.plan(name_position(name.as_str()));
        let needed = self.read_quorum(plan.owners.len());
        let ask = |peer: PeerId| async move {
            let request = DataRequest::GetRecord {
                name: name.clone(),
                head_only: false,
            };
            (peer, self.call(peer, request, RECORD_TIMEOUT).await)
        };
        // Only owners count toward the quorum: a stand-in may lack a write
        // that a quorum of owners acknowledged.
        let up_owners = plan.owners.iter().copied().filter(|p| placement.is_up(p));
        let answers = futures::future::join_all(up_owners.map(ask)).await;

        let mut copies: Vec<(PeerId, Option<FileRecord>)> = Vec::new();
        let mut failures = Vec::new();
        for (peer, answer) in answers {
            match answer {
                Ok(DataResponse::Record(record)) => {
                    if let Some(FileRecord::Live(m)) = &record
                        && let Err(error) = m.validate()
                    {
                        tracing::warn!(%peer, %error, "ignoring an inconsistent manifest");
                        continue;
                    }
                    if record.as_ref().is_some_and(|r| r.name() != name) {
                        tracing::warn!(%peer, "ignoring a record for another name");
                        continue;
                    }
                    copies.push((peer, record));
                }
                Ok(other) => failures.push(PeerFailure::unexpected(peer, &other)),
                Err(failure) => failures.push(failure),
            }
        }
        if copies.len() < needed {
            return Err(FilesError::not_enough_replicas(
                format!("the manifest of {name}"),
                copies.len(),
                needed,
                &failures,
                plan.owners.iter().filter(|p| !placement.is_up(p)).count(),
            ));
        }
        let newest = copies
            .iter()
            .filter_map(|(_, record)| record.as_ref())
            .max_by(|a, b| a.version().cmp(b.version()))
            .cloned();
        if let Some(newest) = &newest {
            self.clock.observe(newest.version().hlc);
            let behind: Vec<PeerId> = copies
                .iter()
                .filter(|(peer, record)| {
                    plan.owners.contains(peer)
                        && record
                            .as_ref()
                            .is_none_or(|r| r.version() < newest.version())
                })
                .map(|(peer, _)| *peer)
                .collect();
            self.repair_in_background(behind, newest.clone());
        }
        Ok(newest)
    }

    /// Sends `record` to `peers` found behind, without waiting.
    fn repair_in_background(&self, peers: Vec<PeerId>, record: FileRecord) {
        if peers.is_empty() {
            return;
        }
        let files = self.clone();
        tokio::spawn(async move {
            for peer in peers {
                let request = DataRequest::PutRecord {
                    record: record.clone(),
                };
                match files.call(peer, request, RECORD_TIMEOUT).await {
                    Ok(_) => {
                        tracing::info!(name = %record.name(), %peer, "read repair brought a manifest copy up to date")
                    }
                    Err(failure) => tracing::debug!(%failure, "read repair failed"),
                }
            }
        });
    }

    /// Finds who holds each chunk covering bytes `start..=end` of the file.
    ///
    /// # Errors
    /// [`FilesError::MissingChunk`] naming the first chunk no reachable peer
    /// holds.
    pub async fn locate(
        &self,
        manifest: &Manifest,
        start: u64,
        end: u64,
    ) -> Result<ChunkSources, FilesError> {
        let span = span(manifest, start, end);
        let placement = self.placement();
        let peers: Vec<PeerId> = placement.up_members().copied().collect();
        let hashes: Vec<Blake3Hash> = manifest.chunks[span.clone()]
            .iter()
            .map(|c| c.hash)
            .collect();
        let held = self.held_by_each(&peers, &hashes).await;
        let mut holders = Vec::with_capacity(span.len());
        for (offset, hash) in hashes.iter().enumerate() {
            let holding = |peer: &PeerId| {
                peers
                    .iter()
                    .position(|p| p == peer)
                    .filter(|&i| held[i].as_ref().is_some_and(|h| h[offset]))
            };
            // Best first: this peer, then owners in ring order, then anyone.
            let mut order: Vec<u16> = Vec::new();
            let preferred = std::iter::once(self.local_peer)
                .chain(placement.read_order(chunk_position(hash)))
                .chain(peers.iter().copied());
            for peer in preferred {
                if let Some(i) = holding(&peer).and_then(|i| u16::try_from(i).ok())
                    && !order.contains(&i)
                {
                    order.push(i);
                }
            }
            if order.is_empty() {
                return Err(FilesError::MissingChunk {
                    name: manifest.name.clone(),
                    index: span.start + offset,
                    hash: *hash,
                });
            }
            holders.push(order);
        }
        Ok(ChunkSources {
            peers,
            first: span.start,
            holders,
        })
    }

    /// For each of `peers`, which of `hashes` it holds (`None` if it did
    /// not answer), asked in pages of [`MAX_HASHES`].
    async fn held_by_each(
        &self,
        peers: &[PeerId],
        hashes: &[Blake3Hash],
    ) -> Vec<Option<Vec<bool>>> {
        let asks = peers.iter().map(|&peer| async move {
            let mut held = Vec::with_capacity(hashes.len());
            for page in hashes.chunks(MAX_HASHES) {
                let request = DataRequest::Has {
                    hashes: page.to_vec(),
                    claim: None,
                };
                match self.call(peer, request, RECORD_TIMEOUT).await {
                    Ok(DataResponse::Held(answer)) if answer.len() == page.len() => {
                        held.extend(answer);
                    }
                    Ok(other) => {
                        tracing::debug!(failure = %PeerFailure::unexpected(peer, &other), "chunk query failed");
                        return None;
                    }
                    Err(failure) => {
                        tracing::debug!(%failure, "chunk query failed");
                        return None;
                    }
                }
            }
            Some(held)
        });
        futures::future::join_all(asks).await
    }

    /// The bytes `start..=end` of the file (a validated manifest), streamed
    /// in order with a bounded read-ahead; every chunk is verified against
    /// its hashes before any of its bytes are yielded, and a replica that
    /// fails or serves a damaged copy is passed over for the next.
    pub fn read_range(
        &self,
        manifest: Manifest,
        sources: ChunkSources,
        start: u64,
        end: u64,
    ) -> impl Stream<Item = Result<Bytes, FilesError>> + Send + 'static {
        let span = span(&manifest, start, end);
        let files = self.clone();
        let manifest = Arc::new(manifest);
        let sources = Arc::new(sources);
        futures::stream::iter(span)
            .map(move |index| {
                let files = files.clone();
                let manifest = Arc::clone(&manifest);
                let sources = Arc::clone(&sources);
                async move {
                    let data = files
                        .fetch_chunk(&manifest, index, sources.holders_of(index))
                        .await?;
                    let chunk_start = manifest.chunk_offset(index);
                    let from = start.saturating_sub(chunk_start) as usize;
                    let to = ((end + 1 - chunk_start) as usize).min(data.len());
                    Ok(data.slice(from..to))
                }
            })
            .buffered(self.transfer.read_ahead)
    }

    /// Chunk `index` of `manifest` from the first of `holders` that serves
    /// an intact copy.
    async fn fetch_chunk(
        &self,
        manifest: &Manifest,
        index: usize,
        holders: Vec<PeerId>,
    ) -> Result<Bytes, FilesError> {
        let chunk = manifest.chunks[index];
        let mut reasons = Vec::new();
        for peer in holders {
            let request = DataRequest::Fetch { hash: chunk.hash };
            let data = match self.call(peer, request, CHUNK_TIMEOUT).await {
                Ok(DataResponse::Chunk(data)) => data,
                Ok(other) => {
                    reasons.push(PeerFailure::unexpected(peer, &other).to_string());
                    continue;
                }
                Err(failure) => {
                    reasons.push(failure.to_string());
                    continue;
                }
            };
            // The local store re-hashes every read itself.
            if peer == self.local_peer && data.len() == chunk.size as usize {
                return Ok(data);
            }
            let (intact, data) =
                tokio::task::spawn_blocking(move || (is_intact(&chunk, &data), data))
                    .await
                    .map_err(|e| FilesError::Internal(format!("hashing task failed: {e}")))?;
            if intact {
                self.counters
                    .chunk_bytes_received
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                return Ok(data);
            }
            tracing::warn!(%peer, chunk = %chunk.hash, file = %manifest.name, "a peer served a damaged copy of a chunk; trying another");
            reasons.push(format!("peer {peer} served a damaged copy"));
        }
        Err(FilesError::ChunkUnreadable {
            name: manifest.name.clone(),
            index,
            hash: chunk.hash,
            reasons: if reasons.is_empty() {
                "no peer holds it".into()
            } else {
                reasons.join("; ")
            },
        })
    }

    /// The current manifest of `name` with the peers that confirm holding
    /// it and, for every chunk, the peers that confirm holding that chunk,
    /// asked of every up member.
    ///
    /// # Errors
    /// As [`Files::manifest`].
    pub async fn stat(&self, name: &FileName) -> Result<(Manifest, FileReplicas), FilesError> {
        let manifest = self.manifest(name).await?;
        let placement = self.placement();
        let mut peers: Vec<PeerId> = placement.up_members().copied().collect();
        peers.sort_by_key(|p| p.to_base58());
        let hashes: Vec<Blake3Hash> = manifest.chunks.iter().map(|c| c.hash).collect();
        let version = &manifest.version;
        let heads = peers.iter().map(|&peer| async move {
            let request = DataRequest::GetRecord {
                name: name.clone(),
                head_only: true,
            };
            match self.call(peer, request, RECORD_TIMEOUT).await {
                Ok(DataResponse::Head(Some(head))) => {
                    head.name == *name && head.version == *version
                }
                _ => false,
            }
        });
        let (held, heads) = futures::join!(
            self.held_by_each(&peers, &hashes),
            futures::future::join_all(heads)
        );
        let holders = peers
            .iter()
            .zip(&heads)
            .filter(|(_, has)| **has)
            .map(|(p, _)| *p)
            .collect();
        let chunks = manifest
            .chunks
            .iter()
            .enumerate()
            .map(|(i, chunk)| ChunkPlacement {
                chunk: *chunk,
                replicas: peers
                    .iter()
                    .zip(&held)
                    .filter(|(_, h)| h.as_ref().is_some_and(|h| h[i]))
                    .map(|(p, _)| *p)
                    .collect(),
            })
            .collect();
        Ok((
            manifest,
            FileReplicas {
                manifest: holders,
                chunks,
            },
        ))
    }
}

/// Whether `data` is the chunk `chunk` describes: its length and BLAKE3.
/// (The MD5 travels with the file for the client to check end to end.)
fn is_intact(chunk: &ChunkRef, data: &[u8]) -> bool {
    data.len() == chunk.size as usize && Blake3Hash::of(data) == chunk.hash
}

/// The indexes of the chunks covering bytes `start..=end` (empty for an
/// empty file or an empty range).
fn span(manifest: &Manifest, start: u64, end: u64) -> std::ops::Range<usize> {
    match (manifest.locate(start), manifest.locate(end)) {
        (Some((first, _)), Some((last, _))) if start <= end => first..last + 1,
        _ => 0..0,
    }
}
