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
//!
//! Each rule lives with the state it keeps: the member table and its
//! transitions in [`table`], the probe round and probes in flight in
//! [`probe`], suspicion timers in [`suspicion`], the incarnation rules in
//! [`incarnation`], local health in [`health`], and announcements and
//! reminders in [`announce`]; what it asks of the event loop is in
//! [`action`]. [`Membership`] owns one of each and drives them: it turns
//! what happens into calls on them, and what they decide into [`Action`]s.

mod action;
mod announce;
mod health;
mod incarnation;
mod probe;
mod suspicion;
mod table;

use std::time::Instant;

use libp2p::{Multiaddr, PeerId};

use super::config::GossipConfig;
use super::message::{Rumor, TableEntry};
use super::record::{MemberState, PeerFigures, PeerRecord};
use announce::Announcer;
use health::LocalHealth;
use probe::{Overdue, Prober};
use suspicion::Suspicions;
use table::{AliveChange, MemberTable, SuspectChange};

pub use action::{Action, Verdict};
pub use table::Member;

/// The member table and failure detector of one peer.
#[derive(Debug)]
pub struct Membership {
    config: GossipConfig,
    /// This peer's own record, as it announces it.
    me: PeerRecord,
    /// The other members.
    table: MemberTable,
    /// The probe round and the probes in flight.
    prober: Prober,
    /// The members suspected, and when each will be declared dead.
    suspicions: Suspicions,
    /// Whether this peer seems to be the slow one.
    health: LocalHealth,
    /// When to announce this peer, and the reminders sent.
    announcer: Announcer,
    /// When this peer next tries to reach a member it holds dead.
    next_reconnect: Instant,
    /// What the event loop is yet to carry out.
    actions: Vec<Action>,
}

impl Membership {
    /// A membership holding only this peer, described by `me`.
    pub fn new(config: GossipConfig, me: PeerRecord, now: Instant) -> Self {
        Self {
            table: MemberTable::default(),
            prober: Prober::new(now + config.probe_interval),
            suspicions: Suspicions::new(&config),
            health: LocalHealth::default(),
            announcer: Announcer::new(config.announce_interval, now),
            next_reconnect: now + config.reconnect_interval,
            config,
            me,
            actions: Vec::new(),
        }
    }

    /// Adds members remembered from an earlier run, held dead until they
    /// are heard from: they are remembered (and saved) and retried like
    /// any dead member, and any word from them revives them.
    pub fn remember(&mut self, peers: Vec<(PeerId, Vec<Multiaddr>)>, now: Instant) {
        for (peer, listen) in peers {
            if peer == self.me.peer_id || self.table.contains(&peer) {
                continue;
            }
            self.table.insert(
                PeerRecord {
                    peer_id: peer,
                    incarnation: 0,
                    listen,
                    api: None,
                    capacity_bytes: 0,
                    used_bytes: 0,
                    leaving: false,
                    extensions: Default::default(),
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
        self.table.iter()
    }

    /// One member.
    pub fn member(&self, peer: &PeerId) -> Option<&Member> {
        self.table.get(peer)
    }

    /// Whether `peer` is a member not held dead.
    pub fn is_live(&self, peer: &PeerId) -> bool {
        self.table.is_live(peer)
    }

    /// A counter that moves whenever a member joins, changes state or
    /// changes its record, so observers can tell when to look again.
    pub fn generation(&self) -> u64 {
        self.table.generation()
    }

    /// The local-health score: 0 when this peer keeps up, higher when its
    /// own probes suggest it is the slow one.
    pub fn health_score(&self) -> u32 {
        self.health.score()
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
    pub fn set_usage(&mut self, capacity_bytes: u64, used_bytes: u64, figures: &PeerFigures) {
        self.me.capacity_bytes = capacity_bytes.max(used_bytes);
        self.me.used_bytes = used_bytes;
        self.me.set_figures(figures);
    }

    /// Marks this peer as leaving for good and tells everyone at once.
    pub fn set_leaving(&mut self) {
        if !self.me.leaving {
            self.me.leaving = true;
            self.table.bump_generation();
            self.publish_self();
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
        .chain(self.table.iter().map(|m| TableEntry {
            record: m.record.clone(),
            state: m.state,
        }))
        .collect()
    }

    /// Notes direct evidence that `peer` is running.
    pub fn heard_from(&mut self, peer: &PeerId, now: Instant) {
        self.table.heard_from(peer, now);
    }

    /// A connection to `peer` opened: evidence that it runs.
    pub fn on_connected(&mut self, peer: &PeerId, now: Instant) {
        self.heard_from(peer, now);
    }

    /// The last connection to `peer` closed: probe it now rather than in
    /// its turn, since a crashed peer's connections close first.
    pub fn on_disconnected(&mut self, peer: &PeerId, now: Instant) {
        if self.table.get(peer).map(|m| m.state) == Some(MemberState::Alive) {
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
        let known = self.table.contains(&peer);
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
                    if !self.table.contains(&peer) {
                        self.table.insert(entry.record, MemberState::Dead, now);
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
        if self.prober.answered(target) {
            self.health.improve();
        }
    }

    /// The direct probe of `target` failed before its deadline (for example,
    /// its address refused the connection).
    pub fn on_ping_failed(&mut self, target: &PeerId, probe: u64, now: Instant) {
        if self.prober.awaits_direct(target, probe) {
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
        if self.prober.relay_failed(target, probe, answer.is_some()) {
            self.conclude_failed(*target, now);
        }
    }

    /// Advances timers: probe deadlines, suspicions, the probe round,
    /// announcements and reconnections.
    pub fn tick(&mut self, now: Instant) {
        for overdue in self.prober.overdue(now) {
            match overdue {
                Overdue::Indirect(peer) => self.conclude_failed(peer, now),
                Overdue::Direct(peer) => self.escalate(peer, now),
            }
        }

        for (peer, incarnation) in self.suspicions.expire(now) {
            tracing::info!(%peer, "declaring member dead: suspected and not refuted in time");
            self.table.set_state(&peer, MemberState::Dead, now);
            self.prober.forget(&peer);
            self.actions
                .push(Action::Publish(Rumor::Dead { peer, incarnation }));
        }

        let interval = self.health.stretch(self.config.probe_interval);
        if self.prober.turn_due(now, interval)
            && let Some(target) = self.prober.next_target(&self.table)
        {
            self.start_probe(target, now);
        }

        if self.announcer.due(now, self.table.len()) {
            self.publish_self();
        }

        if now >= self.next_reconnect {
            self.next_reconnect = now + self.config.reconnect_interval;
            if let Some(member) = self.table.random_dead() {
                self.actions.push(Action::Connect {
                    peer: member.record.peer_id,
                    addrs: member.record.listen.clone(),
                });
            }
            self.table.forget_dead(self.config.dead_retention, now);
        }
    }

    /// Announces at once, for example when the first peer subscribes.
    pub fn announce_soon(&mut self, now: Instant) {
        self.announcer.soon(now);
    }

    /// Whether `peer` is held suspect or dead at an incarnation it has not
    /// yet overruled: such a peer needs to see the table to refute.
    pub fn needs_refuting(&self, peer: &PeerId) -> bool {
        self.table.is_held_failed(peer)
    }

    /// Publishes this peer's own record.
    fn publish_self(&mut self) {
        self.actions
            .push(Action::Publish(Rumor::Alive(self.me.clone())));
    }

    /// Probes `target` now, unless a probe of it is under way.
    fn start_probe(&mut self, target: PeerId, now: Instant) {
        let timeout = self.health.stretch(self.config.probe_timeout);
        let Some(probe) = self.prober.start(target, now + timeout) else {
            return;
        };
        let suspected_at = self.suspicions.incarnation(&target);
        self.actions.push(Action::Ping {
            target,
            probe,
            suspected_at,
        });
    }

    /// The direct probe failed: ask relays, or conclude if there are none.
    fn escalate(&mut self, target: PeerId, now: Instant) {
        let relays = self.table.relays_for(&target, self.config.indirect_probes);
        // Each relay waits a probe timeout of its own for the target; half
        // as long again covers the round trips and this peer's tick.
        let relay_wait = self.health.stretch(self.config.probe_timeout) * 3 / 2;
        let Some(probe) = self
            .prober
            .escalate(&target, relays.clone(), now + relay_wait)
        else {
            return;
        };
        if relays.is_empty() {
            self.conclude_failed(target, now);
            return;
        }
        for relay in relays {
            self.actions.push(Action::PingVia {
                relay,
                target,
                probe,
            });
        }
    }

    /// Nobody reached `target`: suspect it.
    fn conclude_failed(&mut self, target: PeerId, now: Instant) {
        let Some(silent) = self.prober.fail(&target) else {
            return;
        };
        // Lifeguard: relays that stay silent, rather than reporting that the
        // target is silent, suggest that this peer is the one lagging.
        if silent > 0 {
            self.health.worsen();
        }
        let Some(member) = self.table.get(&target) else {
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

    /// A rumour that the member `record` describes is alive; a newcomer or
    /// a revived member is connected to.
    fn apply_alive(&mut self, record: PeerRecord, from_subject: bool, now: Instant) -> Verdict {
        let peer = record.peer_id;
        if peer == self.me.peer_id {
            return Verdict::Ignore;
        }
        let addrs = record.listen.clone();
        match self.table.alive(record, from_subject, now) {
            AliveChange::Joined => {
                self.actions.push(Action::Connect { peer, addrs });
                Verdict::Accept
            }
            AliveChange::Updated => Verdict::Accept,
            AliveChange::Revived => {
                self.suspicions.clear(&peer);
                self.actions.push(Action::Connect { peer, addrs });
                Verdict::Accept
            }
            AliveChange::Stale => Verdict::Ignore,
            AliveChange::HeldFailed { state, incarnation } => {
                // Tell it again so it can refute.
                let members = self.table.len();
                if let Some(rumor) = self
                    .announcer
                    .remind(peer, state, incarnation, members, now)
                {
                    self.actions.push(Action::Publish(rumor));
                }
                Verdict::Ignore
            }
        }
    }

    /// A rumour from `accuser` that `peer` is suspect at `incarnation`.
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
        match self.table.suspect(&peer, incarnation, now) {
            SuspectChange::Ignored => Verdict::Ignore,
            SuspectChange::Already => Verdict::from_news(self.suspicions.confirm(&peer, accuser)),
            SuspectChange::Suspected => {
                let live = self.table.live_count();
                self.suspicions.start(peer, incarnation, accuser, live, now);
                Verdict::Accept
            }
        }
    }

    /// A rumour that `peer` is dead at `incarnation`; its suspicion and
    /// any probe of it end.
    fn apply_dead(&mut self, peer: PeerId, incarnation: u64, now: Instant) -> Verdict {
        if peer == self.me.peer_id {
            return self.refute(incarnation);
        }
        if !self.table.declare_dead(&peer, incarnation, now) {
            return Verdict::Ignore;
        }
        self.suspicions.clear(&peer);
        self.prober.forget(&peer);
        Verdict::Accept
    }

    /// Someone says this peer is suspect or dead at `incarnation`: overrule
    /// it with a higher incarnation, announced at once.
    fn refute(&mut self, incarnation: u64) -> Verdict {
        let Some(raised) = incarnation::refutation(self.me.incarnation, incarnation) else {
            return Verdict::Ignore;
        };
        self.me.incarnation = raised;
        self.health.worsen();
        tracing::info!(
            incarnation = self.me.incarnation,
            "refuting a rumour that this peer failed"
        );
        self.table.bump_generation();
        self.publish_self();
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
}

#[cfg(test)]
mod tests;
