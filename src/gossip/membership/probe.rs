//! Probing: whom to probe next, the probes in flight, and their deadlines.
//!
//! Each probe interval one live member is probed, taking all of them in a
//! shuffled round so that every member is probed once per round whatever
//! the randomness. A probe first waits a probe timeout for a direct answer;
//! when that fails it asks relays to try, and waits for them in turn. Each
//! probe carries an id so that answers to an earlier probe of the same
//! member, arriving late, cannot decide a newer one (an answer that the
//! member is running still counts, whichever probe it answers).
//!
//! The [`Prober`] only keeps this bookkeeping; the
//! [`Membership`](super::Membership) decides what a failed probe means.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use rand::seq::SliceRandom;

use super::table::MemberTable;

/// A probe in flight.
#[derive(Debug)]
struct Probe {
    /// Tells this probe's answers from those of earlier probes of the same
    /// target that arrive late.
    id: u64,
    /// When the direct probe gives up and relays are asked.
    direct_deadline: Instant,
    /// When the whole probe gives up (set when relays are asked: each gets
    /// a probe timeout of its own, plus room for the round trips).
    deadline: Instant,
    /// The relays asked, once the direct probe failed.
    relays: Vec<PeerId>,
    /// Relays that answered "no answer from the target".
    nacks: usize,
    /// Relays whose request failed outright.
    relay_failures: usize,
    /// Whether relays have been asked.
    indirect: bool,
}

/// A probe whose deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Overdue {
    /// The direct probe of this member went unanswered: ask relays.
    Direct(PeerId),
    /// Neither the member nor the relays answered in time.
    Indirect(PeerId),
}

/// The probe round and the probes in flight, at most one per member.
#[derive(Debug)]
pub(super) struct Prober {
    probes: HashMap<PeerId, Probe>,
    /// What is left of the current round, taken from the end.
    rotation: Vec<PeerId>,
    /// When the next member is probed in its turn.
    next_round: Instant,
    /// The id of the latest probe.
    last_id: u64,
}

impl Prober {
    /// No probes yet; the first in its turn at `first`.
    pub(super) fn new(first: Instant) -> Self {
        Self {
            probes: HashMap::new(),
            rotation: Vec::new(),
            next_round: first,
            last_id: 0,
        }
    }

    /// Whether a member is due to be probed in its turn; if so, the next
    /// one is due `interval` after `now`.
    pub(super) fn turn_due(&mut self, now: Instant, interval: Duration) -> bool {
        if now < self.next_round {
            return false;
        }
        self.next_round = now + interval;
        true
    }

    /// The next live member in the round that is not being probed already,
    /// starting a new shuffled round when this one is used up.
    pub(super) fn next_target(&mut self, table: &MemberTable) -> Option<PeerId> {
        while let Some(peer) = self.rotation.pop() {
            if table.is_live(&peer) && !self.probes.contains_key(&peer) {
                return Some(peer);
            }
        }
        let mut round = table.live_peers();
        round.shuffle(&mut rand::rng());
        self.rotation = round;
        while let Some(peer) = self.rotation.pop() {
            if !self.probes.contains_key(&peer) {
                return Some(peer);
            }
        }
        None
    }

    /// Starts a probe of `target` whose direct attempt gives up at
    /// `deadline`; its id, or `None` if `target` is being probed already.
    pub(super) fn start(&mut self, target: PeerId, deadline: Instant) -> Option<u64> {
        if self.probes.contains_key(&target) {
            return None;
        }
        self.last_id += 1;
        let id = self.last_id;
        self.probes.insert(
            target,
            Probe {
                id,
                direct_deadline: deadline,
                deadline,
                relays: Vec::new(),
                nacks: 0,
                relay_failures: 0,
                indirect: false,
            },
        );
        Some(id)
    }

    /// `target` answered: its probe, if any, is over. Whether there was one.
    pub(super) fn answered(&mut self, target: &PeerId) -> bool {
        self.probes.remove(target).is_some()
    }

    /// Drops the probe of `target`, if any, without a conclusion.
    pub(super) fn forget(&mut self, target: &PeerId) {
        self.probes.remove(target);
    }

    /// Whether probe `id` of `target` is still waiting for a direct answer.
    pub(super) fn awaits_direct(&self, target: &PeerId, id: u64) -> bool {
        self.probes
            .get(target)
            .is_some_and(|p| p.id == id && !p.indirect)
    }

    /// The direct probe of `target` failed: `relays` are asked, and the
    /// probe gives up at `deadline`. The probe's id, or `None` if there is
    /// no probe of `target`.
    pub(super) fn escalate(
        &mut self,
        target: &PeerId,
        relays: Vec<PeerId>,
        deadline: Instant,
    ) -> Option<u64> {
        let probe = self.probes.get_mut(target)?;
        probe.indirect = true;
        probe.deadline = deadline;
        probe.relays = relays;
        Some(probe.id)
    }

    /// A relay of probe `id` of `target` did not reach it (`nack`) or could
    /// not be asked. Whether every relay has now failed, so the probe has.
    pub(super) fn relay_failed(&mut self, target: &PeerId, id: u64, nack: bool) -> bool {
        let Some(probe) = self.probes.get_mut(target).filter(|p| p.id == id) else {
            return false;
        };
        if nack {
            probe.nacks += 1;
        } else {
            probe.relay_failures += 1;
        }
        probe.indirect && probe.nacks + probe.relay_failures >= probe.relays.len()
    }

    /// Ends the probe of `target` as failed; how many of its relays stayed
    /// silent, or `None` if there was no probe.
    pub(super) fn fail(&mut self, target: &PeerId) -> Option<usize> {
        let probe = self.probes.remove(target)?;
        Some(
            probe
                .relays
                .len()
                .saturating_sub(probe.nacks + probe.relay_failures),
        )
    }

    /// The probes whose current deadline has passed.
    pub(super) fn overdue(&self, now: Instant) -> Vec<Overdue> {
        self.probes
            .iter()
            .filter_map(|(peer, p)| {
                if p.indirect && now >= p.deadline {
                    Some(Overdue::Indirect(*peer))
                } else if !p.indirect && now >= p.direct_deadline {
                    Some(Overdue::Direct(*peer))
                } else {
                    None
                }
            })
            .collect()
    }
}
