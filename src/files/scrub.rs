//! Scrubbing: re-reading and re-hashing every chunk stored here, and
//! replacing a damaged copy with an intact one from another replica.

use serde::{Deserialize, Serialize};

use super::{CHUNK_TIMEOUT, Files, FilesError};
use crate::chunk::Blake3Hash;
use crate::dht::chunk_position;
use crate::protocol::{DataRequest, DataResponse};
use crate::store::{ChunkWrite, StoreError, StoredChunk};

/// Chunks read per page of a scrub.
const PAGE: usize = 256;

/// What a scrub found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubReport {
    /// Chunks read and re-hashed.
    pub checked: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Copies whose bytes no longer matched their hash.
    pub damaged: u64,
    /// Damaged copies replaced by an intact one from another peer.
    pub repaired: u64,
    /// Damaged copies no other peer could replace yet (the next scrub or
    /// repair pass tries again).
    pub unrepaired: u64,
}

impl Files {
    /// Re-hashes every chunk stored here and repairs damaged copies. Only
    /// one scrub runs at a time; a second caller waits for the first and
    /// then runs its own.
    ///
    /// # Errors
    /// Store errors other than damage.
    pub async fn scrub(&self) -> Result<ScrubReport, FilesError> {
        let _one_at_a_time = self.scrubbing.lock().await;
        let mut report = ScrubReport::default();
        let mut after = None;
        loop {
            let page = self.store.chunk_page(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.hash);
            for chunk in page {
                match self.store.read_chunk(chunk.hash).await {
                    Ok(data) => {
                        report.checked += 1;
                        report.bytes += data.len() as u64;
                    }
                    Err(e) if matches!(e.root(), StoreError::ChunkNotFound(_)) => {}
                    Err(e) if matches!(e.root(), StoreError::Corrupt(_)) => {
                        report.checked += 1;
                        report.bytes += u64::from(chunk.len);
                        report.damaged += 1;
                        if self.replace_damaged(&chunk).await {
                            report.repaired += 1;
                        } else {
                            report.unrepaired += 1;
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        if report.damaged > 0 {
            tracing::warn!(?report, "scrub found damaged chunk copies");
        } else {
            tracing::info!(?report, "scrub found nothing damaged");
        }
        *self.last_scrub.lock().unwrap_or_else(|e| e.into_inner()) = Some(report);
        Ok(report)
    }

    /// The report of the last scrub, if one ran since the peer started.
    pub fn last_scrub(&self) -> Option<ScrubReport> {
        *self.last_scrub.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fetches an intact copy of `chunk` from another peer and writes it
    /// over the damaged one (the store replaces a damaged copy it is given
    /// again, keeping its references).
    async fn replace_damaged(&self, chunk: &StoredChunk) -> bool {
        let placement = self.placement();
        let mut sources = placement.read_order(chunk_position(&chunk.hash));
        sources.extend(placement.up_members().copied());
        sources.retain(|p| *p != self.local_peer);
        sources.dedup();
        for peer in sources {
            let request = DataRequest::Fetch { hash: chunk.hash };
            let Ok(DataResponse::Chunk(data)) = self.call(peer, request, CHUNK_TIMEOUT).await
            else {
                continue;
            };
            let checked = data.clone();
            let intact = tokio::task::spawn_blocking(move || Blake3Hash::of(&checked))
                .await
                .is_ok_and(|h| h == chunk.hash);
            if !intact {
                continue;
            }
            let write = ChunkWrite {
                hash: chunk.hash,
                md5: chunk.md5,
                data,
                references: Vec::new(),
                hint_for: None,
            };
            if self.store.put_chunk(write).await.is_ok() {
                tracing::info!(chunk = %chunk.hash, %peer, "replaced a damaged copy with one from another peer");
                return true;
            }
        }
        false
    }
}
