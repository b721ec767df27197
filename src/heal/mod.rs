//! Healing: every peer makes sure what it holds is where it belongs, in
//! as many intact copies as it should be, and lets go of what no version
//! needs any more.
//!
//! - `repair` (with `owned` and `held`): passes that compare what this peer
//!   holds with the owners of each item and send what they lack. One rule
//!   covers re-replication after a death, hand-back of stand-in copies,
//!   rebalancing on a join and catching up after an absence; a copy held
//!   here without owning it is dropped only once every owner confirms it.
//! - `leave`: handing everything over before this peer leaves for good.
//! - `audit`: checking the chunk references held here against the
//!   manifests, so versions whose release this peer missed are let go.
//! - `scrub`: re-hashing everything stored here and replacing damaged
//!   copies from other replicas.
//! - `loops`: the timers that run the passes, on one cancellation token.
//!
//! The healer sees the swarm through the same [`Cluster`] as the
//! coordinator (the typed replica client and the current placement), so
//! its rules run in tests on an in-memory swarm with injected faults.

mod audit;
mod counters;
mod error;
mod held;
mod leave;
mod loops;
mod owned;
mod repair;
mod scrub;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::PeerId;

pub use self::audit::AuditReport;
pub use self::counters::RepairFigures;
pub use self::error::HealError;
pub use self::leave::HandOver;
pub use self::scrub::ScrubReport;
use crate::config::HealingConfig;
use crate::files::Cluster;
use crate::store::Store;

/// The healing side of one peer. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Healer {
    store: Store,
    cluster: Cluster,
    config: HealingConfig,
    audit_interval: Duration,
    counters: Arc<counters::RepairCounters>,
    scrubbing: Arc<tokio::sync::Mutex<()>>,
    last_scrub: Arc<Mutex<Option<ScrubReport>>>,
}

impl Healer {
    /// A healer of `store` among the replicas of `cluster`, auditing
    /// references every `audit_interval`.
    pub fn new(
        store: Store,
        cluster: Cluster,
        config: HealingConfig,
        audit_interval: Duration,
    ) -> Self {
        Healer {
            store,
            cluster,
            config,
            audit_interval,
            counters: Arc::default(),
            scrubbing: Arc::default(),
            last_scrub: Arc::default(),
        }
    }

    /// What repair has done so far.
    pub fn figures(&self) -> RepairFigures {
        self.counters.figures()
    }

    /// The report of the last scrub, if one ran since the peer started.
    pub fn last_scrub(&self) -> Option<ScrubReport> {
        *self.last_scrub.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn local_peer(&self) -> PeerId {
        self.cluster.local_peer()
    }
}
