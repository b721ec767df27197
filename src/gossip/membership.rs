//! The member table and the failure detector, as a state machine with no I/O.
//!
//! The swarm's event loop feeds it what happens (rumours, probe answers,
//! connections opening and closing, the passage of time) and carries out the
//! [`Action`]s it asks for. Keeping it free of I/O makes every rule testable
//! with a fake clock.
//!
//! The rules are SWIM's, with Lifeguard's refinements:
//! - Each probe interval the peer probes one member, taking all members in
//!   a shuffled round. A member whose connection closes is probed at once.
//! - A probe that gets no answer within the probe timeout asks a few other
//!   members to probe the same target. Only when none of them reaches it
//!   either does the peer suspect the target, and it tells everyone.
//! - A suspicion becomes a death after a timeout that starts long and
//!   shrinks as other peers independently report the same suspicion.
//! - Every rumour names an incarnation. A peer that hears it is suspected or
//!   dead raises its incarnation and announces itself, which overrides the
//!   rumour everywhere. Alive at incarnation `i` loses to suspect or dead at
//!   `i`, and beats either at any lower incarnation.
//! - A peer whose own probes keep failing for want of answers assumes it is
//!   the slow one and stretches its timeouts (Lifeguard's local health).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};
use rand::seq::{IndexedRandom, SliceRandom};

use super::config::GossipConfig;
use super::message::{Rumor, TableEntry};
use super::record::{MemberState, PeerRecord};

/// The highest local-health score; timeouts stretch by up to this factor
/// plus one.
const MAX_HEALTH_SCORE: u32 = 8;

/// Swarms up to this size announce at the base interval; larger ones
/// stretch it in proportion.
const ANNOUNCE_SCALE_MEMBERS: usize = 10;

/// The furthest a rumour about this peer may run ahead of its own
/// incarnation. Only a peer raises its own incarnation, so a rumour far
/// ahead is forged or corrupt, and obeying it would push the incarnation to
/// where it can no longer be raised.
const MAX_INCARNATION_LEAD: u64 = 1 << 20;

/// How often a member that announces itself while held suspect or dead is
/// told so again, so it can refute.
const REMINDER_INTERVAL: Duration = Duration::from_secs(2);

/// Something the event loop must do for the membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Publish a rumour to every peer.
    Publish(Rumor),
    /// Send a direct probe.
    Ping {
        /// The member probed.
        target: PeerId,
        /// Which probe this is, to be handed back with its outcome.
        probe: u64,
        /// The target's incarnation this peer suspects, if it does.
        suspected_at: Option<u64>,
    },
    /// Ask `relay` to probe `target`.
    PingVia {
        /// The member asked to help.
        relay: PeerId,
        /// The member probed.
        target: PeerId,
        /// Which probe this is, to be handed back with its outcome.
        probe: u64,
    },
    /// Open a connection to a member, if there is none.
    Connect {
        /// The member.
        peer: PeerId,
        /// Where it listens.
        addrs: Vec<Multiaddr>,
    },
}

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

/// Whether a rumour told this peer something new; stale rumours are not
/// forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It changed or confirmed the table.
    Accept,
    /// It was stale or redundant.
    Ignore,
}

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

/// A suspicion in progress (Lifeguard's dynamic timeout).
#[derive(Debug)]
struct Suspicion {
    incarnation: u64,
    started: Instant,
    /// Confirmations that bring the timeout down to its minimum.
    needed: usize,
    /// Peers other than the first accuser that suspect the same incarnation.
    confirmers: HashSet<PeerId>,
    first_accuser: PeerId,
}

impl Suspicion {
    /// When the suspect is declared dead: `max` with no confirmations,
    /// falling logarithmically to `min` as they arrive.
    fn deadline(&self, min: Duration, max: Duration) -> Instant {
        if self.needed == 0 {
            return self.started + min;
        }
        let got = self.confirmers.len().min(self.needed) as f64;
        let fraction = (got + 1.0).ln() / (self.needed as f64 + 1.0).ln();
        let span = max.saturating_sub(min).as_secs_f64();
        self.started + min + Duration::from_secs_f64(span * (1.0 - fraction))
    }
}

/// The member table and failure detector of one peer.
#[derive(Debug)]
pub struct Membership {
    config: GossipConfig,
    me: PeerRecord,
    members: HashMap<PeerId, Member>,
    probes: HashMap<PeerId, Probe>,
    suspicions: HashMap<PeerId, Suspicion>,
    rotation: Vec<PeerId>,
    next_probe: Instant,
    next_announce: Instant,
    next_reconnect: Instant,
    health: u32,
    actions: Vec<Action>,
    generation: u64,
    next_probe_id: u64,
    reminded: HashMap<PeerId, Instant>,
}

impl Membership {
    /// A membership holding only this peer, described by `me`.
    pub fn new(config: GossipConfig, me: PeerRecord, now: Instant) -> Self {
        Self {
            next_probe: now + config.probe_interval,
            next_announce: now,
            next_reconnect: now + config.reconnect_interval,
            config,
            me,
            members: HashMap::new(),
            probes: HashMap::new(),
            suspicions: HashMap::new(),
            rotation: Vec::new(),
            health: 0,
            actions: Vec::new(),
            generation: 0,
            next_probe_id: 0,
            reminded: HashMap::new(),
        }
    }

    /// Adds members remembered from an earlier run, held dead until they
    /// are heard from: they are remembered (and saved) and retried like
    /// any dead member, and any word from them revives them.
    pub fn remember(&mut self, peers: Vec<(PeerId, Vec<Multiaddr>)>, now: Instant) {
        for (peer, listen) in peers {
            if peer == self.me.peer_id || self.members.contains_key(&peer) {
                continue;
            }
            self.insert(
                PeerRecord {
                    peer_id: peer,
                    incarnation: 0,
                    listen,
                    api: None,
                    capacity_bytes: 0,
                    used_bytes: 0,
                    leaving: false,
                },
                MemberState::Dead,
                now,
            );
        }
    }

    /// This peer's own record.
    pub fn local(&self) -> &PeerRecord {
        &self.me
    }

    /// The other members, in no particular order.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// One member.
    pub fn member(&self, peer: &PeerId) -> Option<&Member> {
        self.members.get(peer)
    }

    /// Whether `peer` is a member not held dead.
    pub fn is_live(&self, peer: &PeerId) -> bool {
        self.members
            .get(peer)
            .is_some_and(|m| m.state != MemberState::Dead)
    }

    /// A counter that moves whenever a member joins, changes state or
    /// changes its record, so observers can tell when to look again.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The local-health score: 0 when this peer keeps up, higher when its
    /// own probes suggest it is the slow one.
    pub fn health_score(&self) -> u32 {
        self.health
    }

    /// Takes the actions accumulated since the last call.
    pub fn drain_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Updates the addresses this peer announces.
    pub fn set_listen(&mut self, listen: Vec<Multiaddr>, now: Instant) {
        if self.me.listen != listen {
            self.me.listen = listen;
            self.announce_soon(now);
        }
    }

    /// Updates the capacity and usage this peer announces (sent with the
    /// next periodic announcement).
    pub fn set_usage(&mut self, capacity_bytes: u64, used_bytes: u64) {
        self.me.capacity_bytes = capacity_bytes.max(used_bytes);
        self.me.used_bytes = used_bytes;
    }

    /// Marks this peer as leaving for good and tells everyone at once.
    pub fn set_leaving(&mut self) {
        if !self.me.leaving {
            self.me.leaving = true;
            self.generation += 1;
            self.actions
                .push(Action::Publish(Rumor::Alive(self.me.clone())));
        }
    }

    /// The rumour that tells everyone this peer is leaving.
    pub fn leave(&self) -> Rumor {
        Rumor::Dead {
            peer: self.me.peer_id,
            incarnation: self.me.incarnation,
        }
    }

    /// The whole table, this peer first, for a joiner.
    pub fn table(&self) -> Vec<TableEntry> {
        std::iter::once(TableEntry {
            record: self.me.clone(),
            state: MemberState::Alive,
        })
        .chain(self.members.values().map(|m| TableEntry {
            record: m.record.clone(),
            state: m.state,
        }))
        .collect()
    }

    /// Notes direct evidence that `peer` is running.
    pub fn heard_from(&mut self, peer: &PeerId, now: Instant) {
        if let Some(member) = self.members.get_mut(peer) {
            member.last_heard = Some(now);
        }
    }

    /// A connection to `peer` opened: evidence that it runs.
    pub fn on_connected(&mut self, peer: &PeerId, now: Instant) {
        self.heard_from(peer, now);
    }

    /// The last connection to `peer` closed: probe it now rather than in
    /// its turn, since a crashed peer's connections close first.
    pub fn on_disconnected(&mut self, peer: &PeerId, now: Instant) {
        if self.members.get(peer).map(|m| m.state) == Some(MemberState::Alive) {
            self.start_probe(*peer, now);
        }
    }

    /// A rumour arrived, published by `source`.
    pub fn on_rumor(&mut self, source: PeerId, rumor: Rumor, now: Instant) -> Verdict {
        match rumor {
            Rumor::Alive(record) => {
                let from_subject = record.peer_id == source;
                if from_subject {
                    self.heard_from(&source, now);
                }
                self.apply_alive(record, from_subject, now)
            }
            Rumor::Suspect { peer, incarnation } => {
                self.apply_suspect(peer, incarnation, source, now)
            }
            Rumor::Dead { peer, incarnation } => self.apply_dead(peer, incarnation, now),
        }
    }

    /// A peer joined through this one (or greeted it on connecting) with its
    /// own `record`. A newcomer is introduced to everyone at once.
    pub fn on_join(&mut self, record: PeerRecord, now: Instant) {
        let peer = record.peer_id;
        let known = self.members.contains_key(&peer);
        self.apply_alive(record.clone(), true, now);
        self.heard_from(&peer, now);
        if !known {
            self.actions.push(Action::Publish(Rumor::Alive(record)));
        }
    }

    /// Merges a member table received from another peer.
    pub fn on_table(&mut self, entries: Vec<TableEntry>, now: Instant) {
        for entry in entries {
            if entry.record.peer_id == self.me.peer_id {
                self.adopt_own(&entry);
                continue;
            }
            match entry.state {
                MemberState::Alive | MemberState::Suspect => {
                    self.apply_alive(entry.record, false, now);
                }
                MemberState::Dead => {
                    let peer = entry.record.peer_id;
                    let incarnation = entry.record.incarnation;
                    if !self.members.contains_key(&peer) {
                        self.insert(entry.record, MemberState::Dead, now);
                    } else {
                        self.apply_dead(peer, incarnation, now);
                    }
                }
            }
        }
    }

    /// `target` answered a probe, directly or through a relay: any probe,
    /// since a late answer still shows it running.
    pub fn on_ack(&mut self, target: &PeerId, now: Instant) {
        self.heard_from(target, now);
        if self.probes.remove(target).is_some() {
            self.health = self.health.saturating_sub(1);
        }
    }

    /// The direct probe of `target` failed before its deadline (for example,
    /// its address refused the connection).
    pub fn on_ping_failed(&mut self, target: &PeerId, probe: u64, now: Instant) {
        if self
            .probes
            .get(target)
            .is_some_and(|p| p.id == probe && !p.indirect)
        {
            self.escalate(*target, now);
        }
    }

    /// A relay answered for `target`: `Some(true)` it reached the target,
    /// `Some(false)` it did not, `None` the relay itself could not be asked.
    pub fn on_relay_result(
        &mut self,
        target: &PeerId,
        probe: u64,
        answer: Option<bool>,
        now: Instant,
    ) {
        if answer == Some(true) {
            // Whichever probe it answers, the target is running.
            self.on_ack(target, now);
            return;
        }
        let Some(probe) = self.probes.get_mut(target).filter(|p| p.id == probe) else {
            return;
        };
        match answer {
            Some(_) => probe.nacks += 1,
            None => probe.relay_failures += 1,
        }
        if probe.indirect && probe.nacks + probe.relay_failures >= probe.relays.len() {
            self.conclude_failed(*target, now);
        }
    }

    /// Advances timers: probe deadlines, suspicions, the probe round,
    /// announcements and reconnections.
    pub fn tick(&mut self, now: Instant) {
        let overdue: Vec<(PeerId, bool)> = self
            .probes
            .iter()
            .filter_map(|(peer, p)| {
                if p.indirect && now >= p.deadline {
                    Some((*peer, true))
                } else if !p.indirect && now >= p.direct_deadline {
                    Some((*peer, false))
                } else {
                    None
                }
            })
            .collect();
        for (peer, finished) in overdue {
            if finished {
                self.conclude_failed(peer, now);
            } else {
                self.escalate(peer, now);
            }
        }

        let min = self.config.suspicion_timeout;
        let max = min * self.config.suspicion_max_factor.max(1);
        let expired: Vec<PeerId> = self
            .suspicions
            .iter()
            .filter(|(_, s)| now >= s.deadline(min, max))
            .map(|(peer, _)| *peer)
            .collect();
        for peer in expired {
            if let Some(suspicion) = self.suspicions.remove(&peer) {
                tracing::info!(%peer, "declaring member dead: suspected and not refuted in time");
                let incarnation = suspicion.incarnation;
                self.set_state(&peer, MemberState::Dead, now);
                self.probes.remove(&peer);
                self.actions
                    .push(Action::Publish(Rumor::Dead { peer, incarnation }));
            }
        }

        if now >= self.next_probe {
            self.next_probe = now + self.stretched(self.config.probe_interval);
            if let Some(target) = self.next_probe_target() {
                self.start_probe(target, now);
            }
        }

        if now >= self.next_announce {
            let scale = (self.members.len() + 1)
                .div_ceil(ANNOUNCE_SCALE_MEMBERS)
                .max(1);
            self.next_announce = now + self.config.announce_interval * scale as u32;
            self.actions
                .push(Action::Publish(Rumor::Alive(self.me.clone())));
        }

        if now >= self.next_reconnect {
            self.next_reconnect = now + self.config.reconnect_interval;
            let dead: Vec<&Member> = self
                .members
                .values()
                .filter(|m| m.state == MemberState::Dead)
                .collect();
            if let Some(member) = dead.choose(&mut rand::rng()) {
                self.actions.push(Action::Connect {
                    peer: member.record.peer_id,
                    addrs: member.record.listen.clone(),
                });
            }
            let retention = self.config.dead_retention;
            let before = self.members.len();
            self.members.retain(|_, m| {
                m.state != MemberState::Dead || now.saturating_duration_since(m.since) < retention
            });
            if self.members.len() != before {
                self.generation += 1;
            }
        }
    }

    /// Announces at once, for example when the first peer subscribes.
    pub fn announce_soon(&mut self, now: Instant) {
        self.next_announce = self.next_announce.min(now);
    }

    fn stretched(&self, base: Duration) -> Duration {
        base * (1 + self.health)
    }

    fn next_probe_target(&mut self) -> Option<PeerId> {
        while let Some(peer) = self.rotation.pop() {
            if self.is_live(&peer) && !self.probes.contains_key(&peer) {
                return Some(peer);
            }
        }
        let mut round: Vec<PeerId> = self
            .members
            .values()
            .filter(|m| m.state != MemberState::Dead)
            .map(|m| m.record.peer_id)
            .collect();
        round.shuffle(&mut rand::rng());
        self.rotation = round;
        while let Some(peer) = self.rotation.pop() {
            if !self.probes.contains_key(&peer) {
                return Some(peer);
            }
        }
        None
    }

    fn start_probe(&mut self, target: PeerId, now: Instant) {
        if self.probes.contains_key(&target) {
            return;
        }
        let timeout = self.stretched(self.config.probe_timeout);
        self.next_probe_id += 1;
        let id = self.next_probe_id;
        self.probes.insert(
            target,
            Probe {
                id,
                direct_deadline: now + timeout,
                deadline: now + timeout,
                relays: Vec::new(),
                nacks: 0,
                relay_failures: 0,
                indirect: false,
            },
        );
        let suspected_at = self.suspicions.get(&target).map(|s| s.incarnation);
        self.actions.push(Action::Ping {
            target,
            probe: id,
            suspected_at,
        });
    }

    /// The direct probe failed: ask relays, or conclude if there are none.
    fn escalate(&mut self, target: PeerId, now: Instant) {
        let candidates: Vec<PeerId> = self
            .members
            .values()
            .filter(|m| m.state == MemberState::Alive && m.record.peer_id != target)
            .map(|m| m.record.peer_id)
            .collect();
        let relays: Vec<PeerId> = candidates
            .sample(&mut rand::rng(), self.config.indirect_probes)
            .copied()
            .collect();
        // Each relay waits a probe timeout of its own for the target; half
        // as long again covers the round trips and this peer's tick.
        let relay_wait = self.stretched(self.config.probe_timeout) * 3 / 2;
        let Some(probe) = self.probes.get_mut(&target) else {
            return;
        };
        probe.indirect = true;
        probe.deadline = now + relay_wait;
        if relays.is_empty() {
            self.conclude_failed(target, now);
            return;
        }
        let id = probe.id;
        for relay in &relays {
            self.actions.push(Action::PingVia {
                relay: *relay,
                target,
                probe: id,
            });
        }
        probe.relays = relays;
    }

    /// Nobody reached `target`: suspect it.
    fn conclude_failed(&mut self, target: PeerId, now: Instant) {
        let Some(probe) = self.probes.remove(&target) else {
            return;
        };
        // Lifeguard: relays that stay silent, rather than reporting that the
        // target is silent, suggest that this peer is the one lagging.
        let silent = probe
            .relays
            .len()
            .saturating_sub(probe.nacks + probe.relay_failures);
        if silent > 0 {
            self.health = (self.health + 1).min(MAX_HEALTH_SCORE);
        }
        let Some(member) = self.members.get(&target) else {
            return;
        };
        if member.state == MemberState::Dead {
            return;
        }
        let incarnation = member.record.incarnation;
        let me = self.me.peer_id;
        self.apply_suspect(target, incarnation, me, now);
        self.actions.push(Action::Publish(Rumor::Suspect {
            peer: target,
            incarnation,
        }));
    }

    fn apply_alive(&mut self, record: PeerRecord, from_subject: bool, now: Instant) -> Verdict {
        let peer = record.peer_id;
        if peer == self.me.peer_id {
            return Verdict::Ignore;
        }
        let Some(member) = self.members.get_mut(&peer) else {
            tracing::info!(%peer, "new member");
            self.actions.push(Action::Connect {
                peer,
                addrs: record.listen.clone(),
            });
            self.insert(record, MemberState::Alive, now);
            return Verdict::Accept;
        };
        let newer = record.incarnation > member.record.incarnation;
        let refresh = record.incarnation == member.record.incarnation
            && member.state == MemberState::Alive
            && from_subject;
        if !newer && !refresh {
            if from_subject && member.state != MemberState::Alive {
                // It speaks but does not know it is held failed (it missed
                // the rumour, say across a partition): tell it again so it
                // can refute.
                let (state, incarnation) = (member.state, member.record.incarnation);
                self.remind(peer, state, incarnation, now);
            }
            return Verdict::Ignore;
        }
        if member.record.listen != record.listen
            || member.record.api != record.api
            || member.record.leaving != record.leaving
        {
            self.generation += 1;
        }
        let addrs = record.listen.clone();
        let revived = member.state != MemberState::Alive;
        member.record = record;
        if revived {
            tracing::info!(%peer, incarnation = member.record.incarnation, "member is alive again");
            self.suspicions.remove(&peer);
            self.set_state(&peer, MemberState::Alive, now);
            self.actions.push(Action::Connect { peer, addrs });
        }
        Verdict::Accept
    }

    fn apply_suspect(
        &mut self,
        peer: PeerId,
        incarnation: u64,
        accuser: PeerId,
        now: Instant,
    ) -> Verdict {
        if peer == self.me.peer_id {
            return self.refute(incarnation);
        }
        let others = self
            .members
            .values()
            .filter(|m| m.state != MemberState::Dead)
            .count();
        let Some(member) = self.members.get_mut(&peer) else {
            return Verdict::Ignore;
        };
        if member.state == MemberState::Dead
            || incarnation < member.record.incarnation
            || implausible(incarnation, member.record.incarnation)
        {
            return Verdict::Ignore;
        }
        if member.state == MemberState::Suspect && incarnation == member.record.incarnation {
            let Some(suspicion) = self.suspicions.get_mut(&peer) else {
                return Verdict::Ignore;
            };
            if accuser != suspicion.first_accuser && suspicion.confirmers.insert(accuser) {
                return Verdict::Accept;
            }
            return Verdict::Ignore;
        }
        member.record.incarnation = incarnation;
        // Peers that could confirm: everyone but this peer and the suspect.
        let possible = others.saturating_sub(1);
        let wanted = self.config.suspicion_confirmations;
        let needed = if possible < wanted { 0 } else { wanted };
        tracing::info!(%peer, incarnation, %accuser, "member suspected");
        self.suspicions.insert(
            peer,
            Suspicion {
                incarnation,
                started: now,
                needed,
                confirmers: HashSet::new(),
                first_accuser: accuser,
            },
        );
        self.set_state(&peer, MemberState::Suspect, now);
        Verdict::Accept
    }

    fn apply_dead(&mut self, peer: PeerId, incarnation: u64, now: Instant) -> Verdict {
        if peer == self.me.peer_id {
            return self.refute(incarnation);
        }
        let Some(member) = self.members.get_mut(&peer) else {
            return Verdict::Ignore;
        };
        if incarnation < member.record.incarnation
            || member.state == MemberState::Dead
            || implausible(incarnation, member.record.incarnation)
        {
            return Verdict::Ignore;
        }
        member.record.incarnation = incarnation;
        tracing::info!(%peer, incarnation, "member declared dead");
        self.suspicions.remove(&peer);
        self.probes.remove(&peer);
        self.set_state(&peer, MemberState::Dead, now);
        Verdict::Accept
    }

    /// Repeats, at most every [`REMINDER_INTERVAL`], that `peer` is held
    /// `state` at `incarnation`.
    fn remind(&mut self, peer: PeerId, state: MemberState, incarnation: u64, now: Instant) {
        if self
            .reminded
            .get(&peer)
            .is_some_and(|at| now.saturating_duration_since(*at) < REMINDER_INTERVAL)
        {
            return;
        }
        if self.reminded.len() > 4 * (self.members.len() + 1) {
            self.reminded
                .retain(|_, at| now.saturating_duration_since(*at) < REMINDER_INTERVAL);
        }
        self.reminded.insert(peer, now);
        let rumor = match state {
            MemberState::Suspect => Rumor::Suspect { peer, incarnation },
            _ => Rumor::Dead { peer, incarnation },
        };
        self.actions.push(Action::Publish(rumor));
    }

    /// Whether `peer` is held suspect or dead at an incarnation it has not
    /// yet overruled: such a peer needs to see the table to refute.
    pub fn needs_refuting(&self, peer: &PeerId) -> bool {
        self.members
            .get(peer)
            .is_some_and(|m| m.state != MemberState::Alive)
    }

    /// Someone says this peer is suspect or dead at `incarnation`: overrule
    /// it with a higher incarnation, announced at once.
    fn refute(&mut self, incarnation: u64) -> Verdict {
        if incarnation < self.me.incarnation {
            return Verdict::Ignore;
        }
        if incarnation - self.me.incarnation > MAX_INCARNATION_LEAD {
            tracing::warn!(
                incarnation,
                own = self.me.incarnation,
                "ignoring a rumour about this peer at an incarnation it never had"
            );
            return Verdict::Ignore;
        }
        self.me.incarnation = incarnation.saturating_add(1);
        self.health = (self.health + 1).min(MAX_HEALTH_SCORE);
        tracing::info!(
            incarnation = self.me.incarnation,
            "refuting a rumour that this peer failed"
        );
        self.generation += 1;
        self.actions
            .push(Action::Publish(Rumor::Alive(self.me.clone())));
        Verdict::Accept
    }

    /// What another peer holds about this one: refute a failure verdict, and
    /// move past any incarnation it knows (a record lost in a crash).
    fn adopt_own(&mut self, entry: &TableEntry) {
        let incarnation = entry.record.incarnation;
        if entry.state != MemberState::Alive || incarnation > self.me.incarnation {
            self.refute(incarnation);
        }
    }

    fn insert(&mut self, record: PeerRecord, state: MemberState, now: Instant) {
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

    fn set_state(&mut self, peer: &PeerId, state: MemberState, now: Instant) {
        if let Some(member) = self.members.get_mut(peer)
            && member.state != state
        {
            member.state = state;
            member.since = now;
            self.generation += 1;
        }
    }
}

/// Whether a rumour's incarnation runs implausibly far ahead of the one
/// known (see [`MAX_INCARNATION_LEAD`]). A member remembered from an earlier
/// run (known incarnation 0) may be anywhere.
fn implausible(rumored: u64, known: u64) -> bool {
    known > 0 && rumored - known.min(rumored) > MAX_INCARNATION_LEAD
}

#[cfg(test)]
mod tests;
