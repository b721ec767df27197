use std::collections::HashSet;
use std::time::Duration;

use super::suspicion::Suspicion;
use super::*;

fn record(peer: PeerId, incarnation: u64) -> PeerRecord {
    PeerRecord {
        peer_id: peer,
        incarnation,
        listen: vec!["/ip4/127.0.0.1/tcp/7071".parse().unwrap()],
        api: None,
        capacity_bytes: 100,
        used_bytes: 10,
        leaving: false,
        extensions: Default::default(),
    }
}

/// A membership for a fresh peer that already knows `others` alive.
fn swarm(others: usize) -> (Membership, Vec<PeerId>, Instant) {
    let now = Instant::now();
    let me = PeerId::random();
    let mut m = Membership::new(GossipConfig::default(), record(me, 1), now);
    let peers: Vec<PeerId> = (0..others).map(|_| PeerId::random()).collect();
    for peer in &peers {
        m.on_rumor(*peer, Rumor::Alive(record(*peer, 1)), now);
    }
    m.drain_actions();
    (m, peers, now)
}

fn state(m: &Membership, peer: &PeerId) -> MemberState {
    m.member(peer).unwrap().state
}

fn pings_via(actions: &[Action], target: PeerId) -> Vec<PeerId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::PingVia {
                relay, target: t, ..
            } if *t == target => Some(*relay),
            _ => None,
        })
        .collect()
}

/// The id of the probe of `target` among `actions`.
fn probe_of(actions: &[Action], target: PeerId) -> u64 {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Ping {
                target: t, probe, ..
            } if *t == target => Some(*probe),
            _ => None,
        })
        .expect("a probe of the target")
}

fn published(actions: &[Action]) -> Vec<Rumor> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Publish(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_new_member_is_added_and_connected_to() {
    let (mut m, _, now) = swarm(0);
    let peer = PeerId::random();
    assert_eq!(
        m.on_rumor(peer, Rumor::Alive(record(peer, 5)), now),
        Verdict::Accept
    );
    assert_eq!(state(&m, &peer), MemberState::Alive);
    assert!(matches!(m.drain_actions()[..], [Action::Connect { peer: p, .. }] if p == peer));
    assert_eq!(
        m.on_rumor(peer, Rumor::Alive(record(peer, 4)), now),
        Verdict::Ignore,
        "an older incarnation is stale"
    );
}

#[test]
fn a_crashed_member_is_probed_suspected_then_declared_dead() {
    let (mut m, peers, now) = swarm(4);
    let victim = peers[0];
    m.on_disconnected(&victim, now);
    let probe = probe_of(&m.drain_actions(), victim);
    m.on_ping_failed(&victim, probe, now);
    let relays = pings_via(&m.drain_actions(), victim);
    assert_eq!(relays.len(), 3);
    assert!(!relays.contains(&victim));
    for _ in &relays {
        m.on_relay_result(&victim, probe, Some(false), now);
    }
    assert_eq!(state(&m, &victim), MemberState::Suspect);
    assert_eq!(
        published(&m.drain_actions()),
        vec![Rumor::Suspect {
            peer: victim,
            incarnation: 1
        }]
    );
    // Unconfirmed, the suspicion lasts three times the minimum.
    let lone = GossipConfig::default().suspicion_timeout * 3;
    m.tick(now + lone - Duration::from_millis(500));
    assert_eq!(state(&m, &victim), MemberState::Suspect);
    m.tick(now + lone + Duration::from_millis(1));
    assert_eq!(state(&m, &victim), MemberState::Dead);
    assert!(published(&m.drain_actions()).contains(&Rumor::Dead {
        peer: victim,
        incarnation: 1
    }));
}

#[test]
fn confirmations_shorten_a_suspicion_to_its_minimum() {
    let (mut m, peers, now) = swarm(4);
    let victim = peers[0];
    m.on_rumor(
        peers[1],
        Rumor::Suspect {
            peer: victim,
            incarnation: 1,
        },
        now,
    );
    // A repeated accusation from the same peer is not a confirmation.
    assert_eq!(
        m.on_rumor(
            peers[1],
            Rumor::Suspect {
                peer: victim,
                incarnation: 1
            },
            now
        ),
        Verdict::Ignore
    );
    m.tick(now + Duration::from_millis(2100));
    assert_eq!(state(&m, &victim), MemberState::Suspect);
    m.on_rumor(
        peers[2],
        Rumor::Suspect {
            peer: victim,
            incarnation: 1,
        },
        now,
    );
    m.on_rumor(
        peers[3],
        Rumor::Suspect {
            peer: victim,
            incarnation: 1,
        },
        now,
    );
    m.tick(now + Duration::from_millis(2100));
    assert_eq!(state(&m, &victim), MemberState::Dead);
}

#[test]
fn an_answer_through_a_relay_clears_the_probe() {
    let (mut m, peers, now) = swarm(4);
    let target = peers[0];
    m.on_disconnected(&target, now);
    m.tick(now + Duration::from_millis(600));
    let relays = pings_via(&m.drain_actions(), target);
    assert!(!relays.is_empty(), "the direct probe timed out");
    let probe = 1;
    m.on_relay_result(&target, probe, Some(true), now + Duration::from_millis(700));
    m.tick(now + Duration::from_secs(10));
    assert_eq!(state(&m, &target), MemberState::Alive);
}

#[test]
fn a_late_direct_ack_still_counts() {
    let (mut m, peers, now) = swarm(3);
    let target = peers[0];
    m.on_disconnected(&target, now);
    m.tick(now + Duration::from_millis(600));
    m.on_ack(&target, now + Duration::from_millis(900));
    m.tick(now + Duration::from_secs(10));
    assert_eq!(state(&m, &target), MemberState::Alive);
}

#[test]
fn alone_with_the_suspect_there_is_no_one_to_wait_for() {
    let (mut m, peers, now) = swarm(1);
    let other = peers[0];
    m.on_disconnected(&other, now);
    let probe = probe_of(&m.drain_actions(), other);
    m.on_ping_failed(&other, probe, now);
    assert_eq!(state(&m, &other), MemberState::Suspect);
    m.tick(now + Duration::from_millis(2001));
    assert_eq!(state(&m, &other), MemberState::Dead);
}

#[test]
fn a_suspected_peer_refutes_with_a_higher_incarnation() {
    let (mut m, peers, now) = swarm(2);
    let me = m.local().peer_id;
    assert_eq!(
        m.on_rumor(
            peers[0],
            Rumor::Suspect {
                peer: me,
                incarnation: 1
            },
            now
        ),
        Verdict::Accept
    );
    assert_eq!(m.local().incarnation, 2);
    assert_eq!(
        published(&m.drain_actions()),
        vec![Rumor::Alive(m.local().clone())]
    );
    assert_eq!(
        m.on_rumor(
            peers[0],
            Rumor::Dead {
                peer: me,
                incarnation: 1
            },
            now
        ),
        Verdict::Ignore,
        "a verdict on an older incarnation is stale"
    );
    assert!(
        m.health_score() > 0,
        "being suspected counts against local health"
    );
}

#[test]
fn alive_beats_suspect_only_at_a_higher_incarnation() {
    let (mut m, peers, now) = swarm(3);
    let peer = peers[0];
    m.on_rumor(
        peers[1],
        Rumor::Suspect {
            peer,
            incarnation: 1,
        },
        now,
    );
    assert_eq!(
        m.on_rumor(peer, Rumor::Alive(record(peer, 1)), now),
        Verdict::Ignore
    );
    assert_eq!(state(&m, &peer), MemberState::Suspect);
    assert_eq!(
        m.on_rumor(peer, Rumor::Alive(record(peer, 2)), now),
        Verdict::Accept
    );
    assert_eq!(state(&m, &peer), MemberState::Alive);
    m.tick(now + Duration::from_secs(60));
    assert_eq!(
        state(&m, &peer),
        MemberState::Alive,
        "the suspicion is gone"
    );
}

#[test]
fn a_restarted_peer_comes_back_alive() {
    let (mut m, peers, now) = swarm(3);
    let peer = peers[0];
    m.on_rumor(
        peers[1],
        Rumor::Dead {
            peer,
            incarnation: 1,
        },
        now,
    );
    assert_eq!(state(&m, &peer), MemberState::Dead);
    m.drain_actions();
    m.on_join(record(peer, 2), now);
    assert_eq!(state(&m, &peer), MemberState::Alive);
    assert!(
        m.drain_actions()
            .iter()
            .any(|a| matches!(a, Action::Connect { peer: p, .. } if *p == peer))
    );
}

#[test]
fn a_joiner_is_introduced_to_everyone_once() {
    let (mut m, _, now) = swarm(2);
    let joiner = PeerId::random();
    m.on_join(record(joiner, 1), now);
    assert_eq!(
        published(&m.drain_actions()),
        vec![Rumor::Alive(record(joiner, 1))]
    );
    m.on_join(record(joiner, 1), now);
    assert!(published(&m.drain_actions()).is_empty());
    assert_eq!(m.table().len(), 4, "the table lists this peer too");
}

#[test]
fn a_table_that_holds_this_peer_dead_is_refuted() {
    let (mut m, _, now) = swarm(0);
    let other = PeerId::random();
    let mut me = m.local().clone();
    me.incarnation = 9;
    m.on_table(
        vec![
            TableEntry {
                record: record(other, 3),
                state: MemberState::Alive,
            },
            TableEntry {
                record: me,
                state: MemberState::Dead,
            },
        ],
        now,
    );
    assert_eq!(state(&m, &other), MemberState::Alive);
    assert_eq!(m.local().incarnation, 10);
}

#[test]
fn every_live_member_is_probed_in_each_round() {
    let (mut m, peers, now) = swarm(5);
    let mut probed = HashSet::new();
    for i in 1..=5u32 {
        let at = now + Duration::from_secs(i.into());
        m.tick(at);
        for action in m.drain_actions() {
            if let Action::Ping { target, .. } = action {
                probed.insert(target);
                m.on_ack(&target, at);
            }
        }
    }
    assert_eq!(probed, peers.into_iter().collect());
}

#[test]
fn announcements_slow_down_as_the_swarm_grows() {
    let count = |others: usize| {
        let (mut m, _, now) = swarm(others);
        let mut announcements = 0;
        for tenth in 0..=600u64 {
            m.tick(now + Duration::from_millis(tenth * 100));
            for action in m.drain_actions() {
                match action {
                    Action::Publish(Rumor::Alive(_)) => announcements += 1,
                    Action::Ping { target, .. } => m.on_ack(&target, now),
                    _ => {}
                }
            }
        }
        announcements
    };
    assert_eq!(count(4), 31);
    assert_eq!(count(49), 7);
}

#[test]
fn dead_members_are_forgotten_after_the_retention() {
    let (mut m, peers, now) = swarm(2);
    m.on_rumor(
        peers[1],
        Rumor::Dead {
            peer: peers[0],
            incarnation: 1,
        },
        now,
    );
    m.tick(now + Duration::from_secs(24 * 3600 + 60));
    assert!(m.member(&peers[0]).is_none());
    assert!(m.member(&peers[1]).is_some());
}

#[test]
fn a_lonely_suspicion_deadline_falls_with_confirmations() {
    let min = Duration::from_secs(2);
    let max = Duration::from_secs(6);
    let now = Instant::now();
    let mut s = Suspicion {
        incarnation: 1,
        started: now,
        needed: 2,
        confirmers: HashSet::new(),
        first_accuser: PeerId::random(),
    };
    assert_eq!(s.deadline(min, max), now + max);
    s.confirmers.insert(PeerId::random());
    let one = s.deadline(min, max);
    assert!(one > now + min && one < now + max);
    s.confirmers.insert(PeerId::random());
    s.confirmers.insert(PeerId::random());
    assert_eq!(s.deadline(min, max), now + min);
}

#[test]
fn late_answers_to_an_earlier_probe_do_not_decide_a_new_one() {
    let (mut m, peers, now) = swarm(4);
    let target = peers[0];
    m.on_disconnected(&target, now);
    let first = probe_of(&m.drain_actions(), target);
    m.on_ack(&target, now);
    m.on_disconnected(&target, now + Duration::from_secs(1));
    let second = probe_of(&m.drain_actions(), target);
    assert_ne!(first, second);
    m.on_ping_failed(&target, first, now + Duration::from_secs(1));
    for _ in 0..3 {
        m.on_relay_result(&target, first, Some(false), now + Duration::from_secs(1));
    }
    assert_eq!(state(&m, &target), MemberState::Alive);
    assert!(
        pings_via(&m.drain_actions(), target).is_empty(),
        "the new probe waits"
    );
}

#[test]
fn relays_get_a_full_probe_timeout_before_the_probe_gives_up() {
    let (mut m, peers, now) = swarm(4);
    let target = peers[0];
    m.on_disconnected(&target, now);
    let probe = probe_of(&m.drain_actions(), target);
    let escalated = now + Duration::from_millis(500);
    m.on_ping_failed(&target, probe, escalated);
    m.tick(escalated + Duration::from_millis(700));
    assert_eq!(
        state(&m, &target),
        MemberState::Alive,
        "relays still have time"
    );
    m.on_relay_result(
        &target,
        probe,
        Some(true),
        escalated + Duration::from_millis(710),
    );
    m.tick(escalated + Duration::from_secs(2));
    assert_eq!(state(&m, &target), MemberState::Alive);
    assert_eq!(m.health_score(), 0);
}

#[test]
fn forged_incarnations_far_ahead_are_ignored() {
    let (mut m, peers, now) = swarm(3);
    let me = m.local().peer_id;
    assert_eq!(
        m.on_rumor(
            peers[0],
            Rumor::Suspect {
                peer: me,
                incarnation: u64::MAX
            },
            now
        ),
        Verdict::Ignore
    );
    assert_eq!(m.local().incarnation, 1);
    assert_eq!(
        m.on_rumor(
            peers[0],
            Rumor::Dead {
                peer: peers[1],
                incarnation: u64::MAX
            },
            now
        ),
        Verdict::Ignore
    );
    assert_eq!(state(&m, &peers[1]), MemberState::Alive);
}

#[test]
fn a_member_held_dead_that_speaks_is_told_so_it_can_refute() {
    let (mut m, peers, now) = swarm(3);
    let peer = peers[0];
    m.on_rumor(
        peers[1],
        Rumor::Dead {
            peer,
            incarnation: 1,
        },
        now,
    );
    m.drain_actions();
    assert!(m.needs_refuting(&peer));
    m.on_rumor(peer, Rumor::Alive(record(peer, 1)), now);
    assert_eq!(
        published(&m.drain_actions()),
        vec![Rumor::Dead {
            peer,
            incarnation: 1
        }]
    );
    m.on_rumor(
        peer,
        Rumor::Alive(record(peer, 1)),
        now + Duration::from_millis(100),
    );
    assert!(
        published(&m.drain_actions()).is_empty(),
        "reminders are rate-limited"
    );
}

#[test]
fn remembered_members_wait_as_dead_until_heard_from() {
    let (mut m, _, now) = swarm(0);
    let old = PeerId::random();
    m.remember(
        vec![(old, vec!["/ip4/10.0.0.9/tcp/7071".parse().unwrap()])],
        now,
    );
    assert_eq!(state(&m, &old), MemberState::Dead);
    m.on_table(
        vec![TableEntry {
            record: record(old, 4),
            state: MemberState::Alive,
        }],
        now,
    );
    assert_eq!(state(&m, &old), MemberState::Alive);
}
