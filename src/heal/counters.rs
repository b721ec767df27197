//! What repair has done: counters shared by the passes, and their
//! snapshot for `status`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

use crate::chunk::Blake3Hash;
use crate::store::StoredChunk;

/// What repair has done since the peer started, and in its last pass.
#[derive(Debug, Default)]
pub(super) struct RepairCounters {
    /// (owner, chunk) pairs found lacking in the last look at the chunk,
    /// with when they were first found lacking.
    pub(super) lacking: Mutex<HashMap<(PeerId, Blake3Hash), Instant>>,
    /// The same for chunks this peer owns, found by comparing digests.
    pub(super) lacking_owned: Mutex<HashMap<(PeerId, Blake3Hash), Instant>>,
    pub(super) passes: AtomicU64,
    pub(super) under_replicated: AtomicU64,
    pub(super) copies_sent: AtomicU64,
    pub(super) bytes_sent: AtomicU64,
    pub(super) records_sent: AtomicU64,
    pub(super) surplus_dropped: AtomicU64,
    pub(super) failures: AtomicU64,
    pub(super) held_chunks: AtomicU64,
    pub(super) held_records: AtomicU64,
    /// Bytes of the copies a pass has decided to send and not sent yet.
    pub(super) queued_bytes: AtomicU64,
    /// Damaged copies scrubs have found since start.
    pub(super) damaged_found: AtomicU64,
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
    /// Bytes of the copies repair has decided to send and not sent yet.
    #[serde(default)]
    pub queued_bytes: u64,
    /// Damaged chunk copies scrubs have found since start.
    #[serde(default)]
    pub damaged_found: u64,
}

impl RepairCounters {
    /// Whether `key` was found lacking the last time its chunk was looked
    /// at, in a look at least `apart` before now.
    pub(super) fn lacking_for(&self, key: &(PeerId, Blake3Hash), apart: Duration) -> bool {
        lacking_for(&self.lacking, key, apart)
    }

    /// Whether `key` was found lacking by the last digest comparison, in
    /// one at least `apart` before now.
    pub(super) fn lacking_owned_for(&self, key: &(PeerId, Blake3Hash), apart: Duration) -> bool {
        lacking_for(&self.lacking_owned, key, apart)
    }

    /// Remembers the pairs the latest digest comparison found lacking.
    pub(super) fn remember_lacking_owned(&self, now: Vec<(PeerId, Blake3Hash)>) {
        let mut lacking = self.lacking_owned.lock().unwrap_or_else(|e| e.into_inner());
        let before = std::mem::take(&mut *lacking);
        *lacking = since_first_seen(now, &before);
    }

    /// Replaces what is remembered about the chunks of `page` with the pairs
    /// found lacking now.
    pub(super) fn remember_lacking(&self, page: &[StoredChunk], now: Vec<(PeerId, Blake3Hash)>) {
        let in_page: HashSet<Blake3Hash> = page.iter().map(|c| c.hash).collect();
        let mut lacking = self.lacking.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = since_first_seen(now, &lacking);
        lacking.retain(|(_, hash), _| !in_page.contains(hash));
        lacking.extend(fresh);
    }

    /// Whether some copy found lacking still waits for its second look
    /// (first found less than `apart` ago). Copies past it were sent, or
    /// their send failed and the periodic pass retries them: a copy an
    /// owner keeps refusing does not make repair run every `apart`.
    pub(super) fn awaiting_second_look(&self, apart: Duration) -> bool {
        let waiting = |m: &Mutex<HashMap<_, Instant>>| {
            m.lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .any(|first| first.elapsed() < apart)
        };
        waiting(&self.lacking) || waiting(&self.lacking_owned)
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
            queued_bytes: self.queued_bytes.load(Ordering::Relaxed),
            damaged_found: self.damaged_found.load(Ordering::Relaxed),
        }
    }
}

fn lacking_for(
    lacking: &Mutex<HashMap<(PeerId, Blake3Hash), Instant>>,
    key: &(PeerId, Blake3Hash),
    apart: Duration,
) -> bool {
    lacking
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(key)
        .is_some_and(|first| first.elapsed() >= apart)
}

/// The pairs lacking `now`, each with when it was first found lacking:
/// from `before` if it was lacking already, else now.
fn since_first_seen(
    now: Vec<(PeerId, Blake3Hash)>,
    before: &HashMap<(PeerId, Blake3Hash), Instant>,
) -> HashMap<(PeerId, Blake3Hash), Instant> {
    let seen = Instant::now();
    now.into_iter()
        .map(|key| {
            let first = before.get(&key).copied().unwrap_or(seen);
            (key, first)
        })
        .collect()
}
