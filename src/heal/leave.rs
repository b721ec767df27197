//! Leaving for good: handing every copy held here to the peers taking
//! over, and dropping each only once they confirm it.

use serde::{Deserialize, Serialize};

use super::{HealError, Healer};

/// What handing everything over before leaving took.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct HandOver {
    /// Chunk copies sent to the peers taking over.
    pub copies_sent: u64,
    /// Bytes of those copies.
    pub bytes_sent: u64,
    /// Manifests and tombstones sent.
    pub records_sent: u64,
    /// Repair passes it took.
    pub passes: u64,
    /// How long it took, in milliseconds.
    pub took_ms: u64,
}

impl Healer {
    /// Hands everything over before this peer leaves for good, without a
    /// moment of under-replication. Called once every member has been told
    /// this peer is leaving (they take it off the ring at once, and so does
    /// this peer's own placement): runs repair passes, in which it owns
    /// nothing, until every chunk and record it held is confirmed on its
    /// new owners and dropped here. The caller then shuts the peer down.
    ///
    /// # Errors
    /// [`HealError::HandOverIncomplete`] if some items are still here
    /// after `deadline` (an owner down, say); store errors.
    pub async fn hand_over(&self, deadline: std::time::Duration) -> Result<HandOver, HealError> {
        let started = std::time::Instant::now();
        let before = self.counters.figures();
        let mut passes = 0;
        loop {
            self.repair_pass().await?;
            passes += 1;
            let chunks = self.store.stats().await?.chunks;
            let (records, _) = self.store.heads(String::new(), None, 1).await?;
            if chunks == 0 && records.is_empty() {
                break;
            }
            if started.elapsed() > deadline {
                let figures = self.counters.figures();
                return Err(HealError::HandOverIncomplete {
                    chunks,
                    records: figures.held_records,
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let after = self.counters.figures();
        let report = HandOver {
            copies_sent: after.copies_sent - before.copies_sent,
            bytes_sent: after.bytes_sent - before.bytes_sent,
            records_sent: after.records_sent - before.records_sent,
            passes,
            took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        tracing::info!(?report, "handed everything over");
        Ok(report)
    }
}
