//! Scrubbing: re-reading and re-hashing every chunk stored here, and
//! replacing a damaged copy with an intact one from another replica.

use serde::{Deserialize, Serialize};

use super::{HealError, Healer};
use crate::chunk::Blake3Hash;
use crate::dht::chunk_position;
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

impl Healer {
    /// Re-hashes every chunk stored here and repairs damaged copies. Only
    /// one scrub runs at a time; a second caller waits for the first and
    /// then runs its own.
    ///
    /// # Errors
    /// Store errors other than damage.
    pub async fn scrub(&self) -> Result<ScrubReport, HealError> {
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
                        self.counters
                            .damaged_found
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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

    /// Fetches an intact copy of `chunk` from another peer and writes it
    /// over the damaged one (the store replaces a damaged copy it is given
    /// again, keeping its references).
    async fn replace_damaged(&self, chunk: &StoredChunk) -> bool {
        let placement = self.cluster.placement();
        let plan = placement.plan(chunk_position(&chunk.hash));
        let mut sources = self.cluster.read_order(&placement, &plan);
        sources.extend(self.cluster.usable_members(&placement));
        let me = self.local_peer();
        let mut seen = std::collections::HashSet::new();
        sources.retain(|p| *p != me && seen.insert(*p));
        let client = self.cluster.client();
        for peer in sources {
            let Ok(data) = client.fetch(peer, chunk.hash, chunk.len as usize).await else {
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
