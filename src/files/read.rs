//! Reading files: manifests by quorum with read repair, then verified chunks
//! from whichever replica answers.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::{Stream, StreamExt};

use super::{ChunkPlacement, FileReplicas, Files, FilesError};
use crate::chunk::{Blake3Hash, ChunkRef, FileName, FileRecord, Manifest, locate_in};
use crate::dht::{Placement, chunk_position, name_position};
use crate::identity::PeerId;

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
    /// preference list; owners found behind are brought up to date in the
    /// background.
    ///
    /// # Errors
    /// [`FilesError::NotFound`] if there is no such file (or it was
    /// deleted); [`FilesError::NotEnoughReplicas`] if too few peers answer
    /// for certain.
    pub async fn manifest(&self, name: &FileName) -> Result<Manifest, FilesError> {
        let placement = self.cluster.placement();
        match self.read_record(&placement, name).await? {
            Some(FileRecord::Live(manifest)) => Ok(manifest),
            _ => Err(FilesError::NotFound(name.clone())),
        }
    }

    /// The newest record for `name` among a read quorum of answers from its
    /// preference list, with read repair.
    ///
    /// The first N usable peers of the list are asked; one that fails is
    /// replaced by the next. An owner's answer counts whatever it is; a
    /// stand-in's counts only when it holds a record of the name, since a
    /// stand-in that never took a write for the name knows nothing of it.
    /// So a "no such file" comes only from owners, and with too few of
    /// them answering the read is unavailable rather than a false not-found.
    pub(super) async fn read_record(
        &self,
        placement: &Arc<Placement>,
        name: &FileName,
    ) -> Result<Option<FileRecord>, FilesError> {
        let plan = placement.plan(name_position(name.as_str()));
        let needed = self.cluster.read_quorum(plan.owners.len());
        let client = self.cluster.client();
        let ask = |peer: PeerId| async move { (peer, client.record(peer, name).await) };
        let mut order = self.cluster.read_order(placement, &plan).into_iter();
        let mut asking: FuturesUnordered<_> =
            order.by_ref().take(placement.copies()).map(ask).collect();

        let mut copies: Vec<(PeerId, Option<FileRecord>)> = Vec::new();
        let mut failures = Vec::new();
        while let Some((peer, answer)) = asking.next().await {
            match answer {
                Ok(record) if record.is_some() || plan.owners.contains(&peer) => {
                    copies.push((peer, record));
                    continue;
                }
                Ok(_) => {}
                Err(failure) => {
                    tracing::debug!(%failure, "a manifest read failed");
                    failures.push(failure);
                }
            }
            if let Some(next) = order.next() {
                asking.push(ask(next));
            }
        }
        if copies.len() < needed {
            return Err(FilesError::not_enough_replicas(
                format!("the manifest of {name}"),
                copies.len(),
                needed,
                &failures,
                self.cluster.owners_unusable(placement, &plan),
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
        let client = self.cluster.client().clone();
        self.tasks.spawn(async move {
            for peer in peers {
                match client.put_record(peer, record.clone()).await {
                    Ok(_) => {
                        tracing::info!(name = %record.name(), %peer, "read repair brought a manifest copy up to date");
                    }
                    Err(failure) => tracing::debug!(%failure, "read repair failed"),
                }
            }
        });
    }

    /// Finds who holds each chunk covering bytes `start..=end` of the file.
    ///
    /// # Errors
    /// [`FilesError::ChunkOutOfReach`] naming the first chunk no reachable
    /// peer holds while some peers are away (it may come back with them),
    /// [`FilesError::MissingChunk`] naming the first chunk no peer
    /// holds.
    pub async fn locate(
        &self,
        manifest: &Manifest,
        start: u64,
        end: u64,
    ) -> Result<ChunkSources, FilesError> {
        let span = span(manifest, start, end);
        if manifest.inline().is_some() {
            // The bytes came with the manifest: nobody needs asking.
            return Ok(ChunkSources {
                peers: Vec::new(),
                first: span.start,
                holders: vec![Vec::new(); span.len()],
            });
        }
        let placement = self.cluster.placement();
        let peers = self.cluster.usable_members(&placement);
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
            let preferred = std::iter::once(self.local_peer())
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
                let index = span.start + offset;
                let name = manifest.name.clone();
                let hash = *hash;
                // With members away, the chunk may only be out of reach.
                let away = placement.down_count()
                    + placement.up_members().count().saturating_sub(peers.len())
                    + held.iter().filter(|h| h.is_none()).count();
                return Err(if away > 0 {
                    FilesError::ChunkOutOfReach {
                        name,
                        index,
                        hash,
                        away,
                    }
                } else {
                    FilesError::MissingChunk { name, index, hash }
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
    /// not answer).
    async fn held_by_each(
        &self,
        peers: &[PeerId],
        hashes: &[Blake3Hash],
    ) -> Vec<Option<Vec<bool>>> {
        let client = self.cluster.client();
        let asks = peers.iter().map(|&peer| async move {
            client
                .has(peer, hashes)
                .await
                .inspect_err(|failure| tracing::debug!(%failure, "chunk query failed"))
                .ok()
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
        let starts = Arc::new(manifest.chunk_starts());
        let manifest = Arc::new(manifest);
        let sources = Arc::new(sources);
        futures::stream::iter(span)
            .map(move |index| {
                let files = files.clone();
                let manifest = Arc::clone(&manifest);
                let sources = Arc::clone(&sources);
                let chunk_start = starts[index];
                async move {
                    let data = files
                        .fetch_chunk(&manifest, index, sources.holders_of(index))
                        .await?;
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
        if let Some(data) = manifest.inline() {
            // Checked like any copy: the record may have rotted on disk.
            if chunk.matches(data) {
                return Ok(Bytes::copy_from_slice(data));
            }
            return Err(FilesError::ChunkUnreadable {
                name: manifest.name.clone(),
                index,
                hash: chunk.hash,
                reasons: "the bytes kept in the manifest are damaged".into(),
            });
        }
        let mut reasons = Vec::new();
        let client = self.cluster.client();
        for peer in holders {
            let data = match client.fetch(peer, chunk.hash, chunk.size as usize).await {
                Ok(data) => data,
                Err(failure) => {
                    reasons.push(failure.to_string());
                    continue;
                }
            };
            // The local store re-hashes every read itself.
            if peer == self.local_peer() && data.len() == chunk.size as usize {
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
        let placement = self.cluster.placement();
        let mut peers = self.cluster.usable_members(&placement);
        peers.sort_by_key(|p| p.to_base58());
        // A small file's bytes live in its manifest: its chunk is held
        // wherever the manifest is, and no chunk store is asked.
        let hashes: Vec<Blake3Hash> = if manifest.inline().is_some() {
            Vec::new()
        } else {
            manifest.chunks.iter().map(|c| c.hash).collect()
        };
        let version = &manifest.version;
        let client = self.cluster.client();
        let heads = peers.iter().map(|&peer| async move {
            matches!(client.head(peer, name).await, Ok(Some(head)) if head.version == *version)
        });
        let held = async {
            if hashes.is_empty() {
                Vec::new()
            } else {
                self.held_by_each(&peers, &hashes).await
            }
        };
        let (held, heads) = futures::join!(held, futures::future::join_all(heads));
        let holders: Vec<PeerId> = peers
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
                replicas: if hashes.is_empty() {
                    holders.clone()
                } else {
                    peers
                        .iter()
                        .zip(&held)
                        .filter(|(_, h)| h.as_ref().is_some_and(|h| h[i]))
                        .map(|(p, _)| *p)
                        .collect()
                },
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

/// Whether `data` is the chunk `chunk` describes.
pub(super) fn is_intact(chunk: &ChunkRef, data: &[u8]) -> bool {
    chunk.matches(data)
}

/// The indexes of the chunks covering bytes `start..=end` (empty for an
/// empty file or an empty range).
fn span(manifest: &Manifest, start: u64, end: u64) -> std::ops::Range<usize> {
    let starts = manifest.chunk_starts();
    let locate = |offset| locate_in(&starts, manifest.size, offset);
    match (locate(start), locate(end)) {
        (Some((first, _)), Some((last, _))) if start <= end => first..last + 1,
        _ => 0..0,
    }
}
