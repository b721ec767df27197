//! Suspicions in progress, with Lifeguard's dynamic timeout.
//!
//! A suspected member is declared dead when its suspicion times out without
//! a refutation. The timeout starts long, so that a slow but healthy member
//! has time to hear the rumour and refute it, and shrinks logarithmically
//! as other peers independently suspect the same incarnation: several
//! accusers are unlikely to all be wrong. Only the first accuser's repeated
//! word does not count.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::PeerId;

use crate::gossip::GossipConfig;

/// A suspicion in progress (Lifeguard's dynamic timeout).
#[derive(Debug)]
pub(super) struct Suspicion {
    /// The incarnation suspected.
    pub(super) incarnation: u64,
    /// When the suspicion began.
    pub(super) started: Instant,
    /// Confirmations that bring the timeout down to its minimum.
    pub(super) needed: usize,
    /// Peers other than the first accuser that suspect the same incarnation.
    pub(super) confirmers: HashSet<PeerId>,
    /// The peer whose rumour began the suspicion.
    pub(super) first_accuser: PeerId,
}

impl Suspicion {
    /// When the suspect is declared dead: `max` with no confirmations,
    /// falling logarithmically to `min` as they arrive.
    pub(super) fn deadline(&self, min: Duration, max: Duration) -> Instant {
        if self.needed == 0 {
            return self.started + min;
        }
        let got = self.confirmers.len().min(self.needed) as f64;
        let fraction = (got + 1.0).ln() / (self.needed as f64 + 1.0).ln();
        let span = max.saturating_sub(min).as_secs_f64();
        self.started + min + Duration::from_secs_f64(span * (1.0 - fraction))
    }
}

/// Every suspicion this peer holds, by suspect.
#[derive(Debug)]
pub(super) struct Suspicions {
    active: HashMap<PeerId, Suspicion>,
    /// The shortest suspicion, once fully confirmed.
    min: Duration,
    /// The longest, unconfirmed.
    max: Duration,
    /// Confirmations wanted to reach `min`.
    confirmations: usize,
}

impl Suspicions {
    /// No suspicions, timed as `config` says.
    pub(super) fn new(config: &GossipConfig) -> Self {
        let min = config.suspicion_timeout;
        Self {
            active: HashMap::new(),
            min,
            max: min * config.suspicion_max_factor.max(1),
            confirmations: config.suspicion_confirmations,
        }
    }

    /// Begins (or restarts) suspecting `peer` at `incarnation` on the word
    /// of `accuser`, with `live_members` members not held dead, the suspect
    /// included.
    pub(super) fn start(
        &mut self,
        peer: PeerId,
        incarnation: u64,
        accuser: PeerId,
        live_members: usize,
        now: Instant,
    ) {
        // Peers that could confirm: everyone but this peer and the suspect.
        // Too few to give the confirmations wanted, and none are waited for.
        let possible = live_members.saturating_sub(1);
        let needed = if possible < self.confirmations {
            0
        } else {
            self.confirmations
        };
        tracing::info!(%peer, incarnation, %accuser, "member suspected");
        self.active.insert(
            peer,
            Suspicion {
                incarnation,
                started: now,
                needed,
                confirmers: HashSet::new(),
                first_accuser: accuser,
            },
        );
    }

    /// `accuser` suspects `peer` at the incarnation already suspected.
    /// Whether that is a new, independent confirmation.
    pub(super) fn confirm(&mut self, peer: &PeerId, accuser: PeerId) -> bool {
        self.active
            .get_mut(peer)
            .is_some_and(|s| accuser != s.first_accuser && s.confirmers.insert(accuser))
    }

    /// The incarnation at which `peer` is suspected, if it is.
    pub(super) fn incarnation(&self, peer: &PeerId) -> Option<u64> {
        self.active.get(peer).map(|s| s.incarnation)
    }

    /// Ends any suspicion of `peer` (it was refuted, or is dead anyway).
    pub(super) fn clear(&mut self, peer: &PeerId) {
        self.active.remove(peer);
    }

    /// Ends the suspicions that timed out by `now`, returning each suspect
    /// with the incarnation at which it is to be declared dead.
    pub(super) fn expire(&mut self, now: Instant) -> Vec<(PeerId, u64)> {
        let (min, max) = (self.min, self.max);
        let expired: Vec<PeerId> = self
            .active
            .iter()
            .filter(|(_, s)| now >= s.deadline(min, max))
            .map(|(peer, _)| *peer)
            .collect();
        expired
            .into_iter()
            .filter_map(|peer| self.active.remove(&peer).map(|s| (peer, s.incarnation)))
            .collect()
    }
}
