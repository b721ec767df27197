//! What repair has done: counters shared by the passes, and their
//! snapshot for `status`.

use std::sync::atomic::{AtomicU64, Ordering};

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

use crate::chunk::Blake3Hash;
use crate::store::StoredChunk;

/// What repair has done since the peer started, and in its last pass.
#[derive(Debug, Default)]
pub(super) struct RepairCounters {
    /// (owner, chunk) pairs found lacking in the last look at the chunk.
    pub(super) lacking: std::sync::Mutex<std::collections::HashSet<(PeerId, Blake3Hash)>>,
    /// The same for chunks this peer owns, found by comparing digests.
    pub(super) lacking_owned: std::sync::Mutex<std::collections::HashSet<(PeerId, Blake3Hash)>>,
    pub(super) passes: AtomicU64,
    pub(super) under_replicated: AtomicU64,
    pub(super) copies_sent: AtomicU64,
    pub(super) bytes_sent: AtomicU64,
    pub(super) records_sent: AtomicU64,
    pub(super) surplus_dropped: AtomicU64,
    pub(super) failures: AtomicU64,
    pub(super) held_chunks: AtomicU64,
    pub(super) held_records: AtomicU64,
}

/// A snapshot of what repair has done.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct RepairFigures {
    /// Passes completed since the peer started.
    pub passes: u64,
    /// Items held here whose up owners lacked them, in the last pass.
    pub under_replicated: u64,
    /// Chunk copies sent to owners that lacked them, since start.
    pub copies_sent: u64,
    /// Bytes of those copies.
    pub bytes_sent: u64,
    /// Manifests and tombstones sent to owners that lacked them or were
    /// behind, since start.
    pub records_sent: u64,
    /// Surplus copies (chunks and records) dropped here once every owner
    /// confirmed holding them, since start.
    pub surplus_dropped: u64,
    /// Copies that could not be sent, since start (retried next pass).
    pub failures: u64,
    /// Chunk copies this peer held without owning them in the last pass
    /// (stand-in copies waiting to be handed back, copies left from an
    /// older ring); 0 once everything is where it belongs.
    #[serde(default)]
    pub held_chunks: u64,
    /// Records held here without owning them, in the last pass.
    #[serde(default)]
    pub held_records: u64,
}

impl RepairCounters {
    /// Whether `key` was found lacking the last time its chunk was looked at.
    pub(super) fn lacking_before(&self, key: &(PeerId, Blake3Hash)) -> bool {
        self.lacking
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key)
    }

    /// Whether `key` was found lacking by the last digest comparison.
    pub(super) fn lacking_before_owned(&self, key: &(PeerId, Blake3Hash)) -> bool {
        self.lacking_owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key)
    }

    /// Remembers the pairs the latest digest comparison found lacking.
    pub(super) fn remember_lacking_owned(&self, now: Vec<(PeerId, Blake3Hash)>) {
        *self.lacking_owned.lock().unwrap_or_else(|e| e.into_inner()) = now.into_iter().collect();
    }

    /// Replaces what is remembered about the chunks of `page` with the pairs
    /// found lacking now.
    pub(super) fn remember_lacking(&self, page: &[StoredChunk], now: Vec<(PeerId, Blake3Hash)>) {
        let in_page: std::collections::HashSet<Blake3Hash> = page.iter().map(|c| c.hash).collect();
        let mut lacking = self.lacking.lock().unwrap_or_else(|e| e.into_inner());
        lacking.retain(|(_, hash)| !in_page.contains(hash));
        lacking.extend(now);
    }

    pub(super) fn figures(&self) -> RepairFigures {
        RepairFigures {
            passes: self.passes.load(Ordering::Relaxed),
            under_replicated: self.under_replicated.load(Ordering::Relaxed),
            copies_sent: self.copies_sent.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            records_sent: self.records_sent.load(Ordering::Relaxed),
            surplus_dropped: self.surplus_dropped.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            held_chunks: self.held_chunks.load(Ordering::Relaxed),
            held_records: self.held_records.load(Ordering::Relaxed),
        }
    }
}
