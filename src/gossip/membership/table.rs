//! The member table: what this peer knows of every other member, and the
//! transitions between alive, suspect and dead that rumours cause.
//!
//! The table decides whether a rumour is news by comparing incarnations
//! (see [`super::incarnation`]) and applies it; what follows from a change —
//! suspicion timers, probes, connections, publishing — is for the
//! [`Membership`](super::Membership) to do. The table also keeps the
//! generation counter, so every change to it moves the counter and none is
//! missed by observers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use rand::seq::IndexedRandom;

use super::incarnation::implausible;
use crate::gossip::{MemberState, PeerRecord};

/// What this peer knows of another.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The member's latest record.
    pub record: PeerRecord,
    /// Its state.
    pub state: MemberState,
    /// When it entered that state.
    pub since: Instant,
    /// When this peer last had direct evidence that it is running.
    pub last_heard: Option<Instant>,
}

/// What a rumour that a member is alive did to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AliveChange {
    /// The member was unknown and is now in the table, alive.
    Joined,
    /// A newer record (or a fresh word from the member itself) replaced the
    /// one held.
    Updated,
    /// The member was suspect or dead and is alive again.
    Revived,
    /// Nothing new.
    Stale,
    /// Nothing new, but the member itself spoke while held `state` at
    /// `incarnation`, which it has not overruled: it should be told.
    HeldFailed {
        /// The state it is held in, suspect or dead.
        state: MemberState,
        /// The incarnation at which it is held so.
        incarnation: u64,
    },
}

/// What a rumour that a member is suspect did to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SuspectChange {
    /// The member is now suspect at the rumoured incarnation.
    Suspected,
    /// It was already suspect at that incarnation: the rumour may confirm
    /// the suspicion.
    Already,
    /// Stale, implausible, about a dead member or an unknown one.
    Ignored,
}

/// The other members, by peer id, and a counter of changes.
#[derive(Debug, Default)]
pub(super) struct MemberTable {
    members: HashMap<PeerId, Member>,
    /// Moves whenever a member joins, leaves the table, changes state or
    /// changes its record (and when this peer's own record changes).
    generation: u64,
}

impl MemberTable {
    /// One member.
    pub(super) fn get(&self, peer: &PeerId) -> Option<&Member> {
        self.members.get(peer)
    }

    /// Whether `peer` is in the table, in any state.
    pub(super) fn contains(&self, peer: &PeerId) -> bool {
        self.members.contains_key(peer)
    }

    /// Every member, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// How many members there are, the dead included.
    pub(super) fn len(&self) -> usize {
        self.members.len()
    }

    /// The change counter (see [`Membership::generation`](super::Membership::generation)).
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// Notes a change the table cannot see, such as to this peer's own
    /// record.
    pub(super) fn bump_generation(&mut self) {
        self.generation += 1;
    }

    /// Whether `peer` is a member not held dead.
    pub(super) fn is_live(&self, peer: &PeerId) -> bool {
        self.members
            .get(peer)
            .is_some_and(|m| m.state != MemberState::Dead)
    }

    /// Whether `peer` is held suspect or dead.
    pub(super) fn is_held_failed(&self, peer: &PeerId) -> bool {
        self.members
            .get(peer)
            .is_some_and(|m| m.state != MemberState::Alive)
    }

    /// The members not held dead.
    pub(super) fn live_peers(&self) -> Vec<PeerId> {
        self.members
            .values()
            .filter(|m| m.state != MemberState::Dead)
            .map(|m| m.record.peer_id)
            .collect()
    }

    /// How many members are not held dead.
    pub(super) fn live_count(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.state != MemberState::Dead)
            .count()
    }

    /// Up to `count` alive members other than `target`, picked at random, to
    /// probe `target` on this peer's behalf.
    pub(super) fn relays_for(&self, target: &PeerId, count: usize) -> Vec<PeerId> {
        let candidates: Vec<PeerId> = self
            .members
            .values()
            .filter(|m| m.state == MemberState::Alive && m.record.peer_id != *target)
            .map(|m| m.record.peer_id)
            .collect();
        candidates
            .sample(&mut rand::rng(), count)
            .copied()
            .collect()
    }

    /// One member held dead, picked at random, to try to reach again.
    pub(super) fn random_dead(&self) -> Option<&Member> {
        let dead: Vec<&Member> = self
            .members
            .values()
            .filter(|m| m.state == MemberState::Dead)
            .collect();
        dead.choose(&mut rand::rng()).copied()
    }

    /// Forgets members dead for `retention` or longer.
    pub(super) fn forget_dead(&mut self, retention: Duration, now: Instant) {
        let before = self.members.len();
        self.members.retain(|_, m| {
            m.state != MemberState::Dead || now.saturating_duration_since(m.since) < retention
        });
        if self.members.len() != before {
            self.generation += 1;
        }
    }

    /// Notes direct evidence that `peer` is running.
    pub(super) fn heard_from(&mut self, peer: &PeerId, now: Instant) {
        if let Some(member) = self.members.get_mut(peer) {
            member.last_heard = Some(now);
        }
    }

    /// Adds (or replaces) a member in `state`.
    pub(super) fn insert(&mut self, record: PeerRecord, state: MemberState, now: Instant) {
        self.members.insert(
            record.peer_id,
            Member {
                record,
                state,
                since: now,
                last_heard: None,
            },
        );
        self.generation += 1;
    }

    /// Moves `peer` to `state`, if it is not there already.
    pub(super) fn set_state(&mut self, peer: &PeerId, state: MemberState, now: Instant) {
        if let Some(member) = self.members.get_mut(peer)
            && member.state != state
        {
            member.state = state;
            member.since = now;
            self.generation += 1;
        }
    }

    /// Applies a rumour that the member `record` describes is alive;
    /// `from_subject` when the member itself said so.
    ///
    /// A newer incarnation always wins. At the same incarnation only the
    /// member's own word counts, and only while it is held alive: a member
    /// held suspect or dead must raise its incarnation to come back.
    pub(super) fn alive(
        &mut self,
        record: PeerRecord,
        from_subject: bool,
        now: Instant,
    ) -> AliveChange {
        let peer = record.peer_id;
        let Some(member) = self.members.get_mut(&peer) else {
            tracing::info!(%peer, "new member");
            self.insert(record, MemberState::Alive, now);
            return AliveChange::Joined;
        };
        let newer = record.incarnation > member.record.incarnation;
        let refresh = record.incarnation == member.record.incarnation
            && member.state == MemberState::Alive
            && from_subject;
        if !newer && !refresh {
            if from_subject && member.state != MemberState::Alive {
                // It speaks but does not know it is held failed (it missed
                // the rumour, say across a partition).
                return AliveChange::HeldFailed {
                    state: member.state,
                    incarnation: member.record.incarnation,
                };
            }
            return AliveChange::Stale;
        }
        if member.record.listen != record.listen
            || member.record.api != record.api
            || member.record.leaving != record.leaving
        {
            self.generation += 1;
        }
        let revived = member.state != MemberState::Alive;
        member.record = record;
        if !revived {
            return AliveChange::Updated;
        }
        tracing::info!(%peer, incarnation = member.record.incarnation, "member is alive again");
        self.set_state(&peer, MemberState::Alive, now);
        AliveChange::Revived
    }

    /// Applies a rumour that `peer` is suspect at `incarnation`: it is
    /// news unless the member is dead, or known at a higher incarnation, or
    /// the incarnation is implausibly far ahead.
    pub(super) fn suspect(
        &mut self,
        peer: &PeerId,
        incarnation: u64,
        now: Instant,
    ) -> SuspectChange {
        let Some(member) = self.members.get_mut(peer) else {
            return SuspectChange::Ignored;
        };
        if member.state == MemberState::Dead
            || incarnation < member.record.incarnation
            || implausible(incarnation, member.record.incarnation)
        {
            return SuspectChange::Ignored;
        }
        if member.state == MemberState::Suspect && incarnation == member.record.incarnation {
            return SuspectChange::Already;
        }
        member.record.incarnation = incarnation;
        self.set_state(peer, MemberState::Suspect, now);
        SuspectChange::Suspected
    }

    /// Applies a rumour that `peer` is dead at `incarnation`; whether it was
    /// news (the same rules as for a suspicion).
    pub(super) fn declare_dead(&mut self, peer: &PeerId, incarnation: u64, now: Instant) -> bool {
        let Some(member) = self.members.get_mut(peer) else {
            return false;
        };
        if incarnation < member.record.incarnation
            || member.state == MemberState::Dead
            || implausible(incarnation, member.record.incarnation)
        {
            return false;
        }
        member.record.incarnation = incarnation;
        tracing::info!(%peer, incarnation, "member declared dead");
        self.set_state(peer, MemberState::Dead, now);
        true
    }
}
