//! Network partitions on a LAN of five peers, each in its own network
//! namespace (`common::netns`): a 2|3 cut, a 1|4 cut and a one-way cut,
//! with writes, overwrites and deletes on both sides, then healing.
//!
//! The checks are the promises of docs/architecture.md, *Consistency
//! model*:
//! - while cut, each side takes writes wherever a write quorum (sloppy:
//!   owners or stand-ins) is usable; a reader whose view agrees with the
//!   writer's (here: a peer on the same side, once every peer sees the
//!   other side gone) sees an acknowledged write;
//! - after healing, every peer returns the same version of every name, and
//!   an acknowledged write is lost only to a later-stamped write of the same
//!   name (last writer wins, by hybrid clock); a write that failed has an
//!   unknown outcome and may win only by being stamped later than every
//!   acknowledged one; a deleted name comes back only through a
//!   later-stamped put (`common::history::judge`);
//! - every live file returns to exactly N = 3 copies of its manifest and
//!   of each chunk, no peer keeps copies for others (they "drain to 0"),
//!   every peer lists exactly the live names, and every peer lists every
//!   member alive.
//!
//! Needs root, `ip`, `iptables` and `curl`; each test says why it skips
//! otherwise. The tests take turns: one LAN of five debug peers at a time
//! is what two cores carry without the load itself making peers miss
//! probes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::history::{
    Op, Outcome, Read, Write, describe, describe_op, judge, latest_acked, shows,
};
use common::lan_swarm::LanSwarm as Swarm;
use common::netns::{Lan, curl_available};
use common::{Peer, poll_until, random_bytes};

/// Chunk size of the test swarm: a "big" file is a few chunks.
const CHUNK: usize = 64 * 1024;

/// How long a cut may take to be noticed by every peer.
const DETECT: Duration = Duration::from_secs(30);

/// How long the swarm may take, once healed, to list every member alive
/// again, and then to bring every name to one version and N copies.
const MERGE: Duration = Duration::from_secs(60);
const CONVERGE: Duration = Duration::from_secs(60);

/// Flags for every peer: small chunks, quick probes and suspicions,
/// repair every second, and peers that stop answering passed over after a
/// second. Everything else (the re-replication delay of 10 minutes, the
/// reference audit every 5 minutes, ...) keeps its default: a partition of
/// seconds is healed by hand-back, anti-entropy and read repair.
const FLAGS: [&str; 14] = [
    "--chunk-size",
    "65536",
    "--probe-interval",
    "500ms",
    "--probe-timeout",
    "300ms",
    "--suspicion-timeout",
    "500ms",
    "--repair-interval",
    "1s",
    "--peer-timeout",
    "1s",
    "--announce-interval",
    "1s",
];

/// One LAN at a time (see the module's doc).
static ONE_LAN_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn a_two_three_partition_heals_with_no_acknowledged_write_lost() {
    run(Scenario {
        label: "2|3",
        a: &[0, 1],
        b: &[2, 3, 4],
        one_way: false,
    });
}

#[test]
fn a_lone_peer_cut_from_four_heals_with_no_acknowledged_write_lost() {
    run(Scenario {
        label: "1|4",
        a: &[4],
        b: &[0, 1, 2, 3],
        one_way: false,
    });
}

#[test]
fn a_one_way_cut_heals_with_no_acknowledged_write_lost() {
    run(Scenario {
        label: "one-way 2->3",
        a: &[0, 1],
        b: &[2, 3, 4],
        one_way: true,
    });
}

/// A cut between hosts `a` and `b`.
struct Scenario {
    label: &'static str,
    a: &'static [usize],
    b: &'static [usize],
    /// Whether only `b`'s packets to `a` are dropped (`a` still reaches
    /// `b` but hears nothing back); otherwise both directions are.
    one_way: bool,
}

const BEFORE: &str = "before the cut";
const SIDE_A: &str = "side a";
const SIDE_B: &str = "side b";

fn run(scenario: Scenario) {
    let _turn = ONE_LAN_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let Scenario {
        label,
        a,
        b,
        one_way,
    } = scenario;
    let lan = match curl_available().and_then(|()| Lan::with_firewall(5)) {
        Ok(lan) => lan,
        Err(why) => {
            eprintln!("skipping partition test {label}: needs root, ip, iptables and curl: {why}");
            return;
        }
    };
    let started = Instant::now();
    let swarm = Swarm::start(label, lan, &FLAGS);
    let mut history = History::default();

    let roles = write_before_cut(&swarm, &mut history, a);

    if one_way {
        swarm.lan.cut_one_way(b, a);
    } else {
        swarm.lan.cut(a, b);
    }
    let cut = Instant::now();
    swarm.wait_for(DETECT, "each side to hold the other gone", || {
        swarm.sees_gone(a, b) && swarm.sees_gone(b, a)
    });
    let detected = cut.elapsed();

    write_while_cut(&swarm, &mut history, &roles, a, b);
    let count = |phase: &str, acked: bool| {
        let ops = history.ops.iter().filter(|op| op.phase == phase);
        ops.filter(|op| !acked || op.acked_version().is_some())
            .count()
    };
    eprintln!(
        "{label}: cut noticed by every peer in {detected:.1?}; {SIDE_A} {a:?} acknowledged {} of {} writes, {SIDE_B} {b:?} {} of {}",
        count(SIDE_A, true),
        count(SIDE_A, false),
        count(SIDE_B, true),
        count(SIDE_B, false),
    );
    for op in history.ops.iter().filter(|op| op.acked_version().is_none()) {
        eprintln!("{label}: {}", describe_op(op));
    }
    read_own_writes_while_cut(&swarm, &history, &[(SIDE_A, a), (SIDE_B, b)]);

    swarm.lan.heal();
    let healed = Instant::now();
    swarm.wait_for(MERGE, "every peer to list every member alive", || {
        swarm.all_alive()
    });
    let merged = healed.elapsed();
    let reads = wait_for_convergence(&swarm, &history, healed);
    let settled = healed.elapsed();
    check_converged(&swarm, &history, &reads);
    eprintln!(
        "{label}: healed: every member alive everywhere {merged:.1?} after healing, every name at one version with 3 copies and nothing held for others {settled:.1?} after; {} names live, {} deleted; the test took {:.1?}",
        reads
            .values()
            .filter(|r| matches!(r, Read::Live(..)))
            .count(),
        reads.values().filter(|r| matches!(r, Read::Gone)).count(),
        started.elapsed()
    );
}

/// Writes names before the cut, as many as it takes to have names owned
/// mostly on each side, and waits until each has its three copies; returns
/// the names' roles while cut.
fn write_before_cut(swarm: &Swarm, history: &mut History, a: &[usize]) -> Roles {
    let mut owners: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    loop {
        let first = owners.len();
        let batch = if first == 0 { 9 } else { 5 };
        for i in first..(first + batch).min(MAX_PRE) {
            let name = format!("pre-{i}");
            let size = if i % 2 == 0 { 900 + i } else { 2 * CHUNK + i };
            let host = i % swarm.peers.len();
            let op = history.put(swarm, host, &name, size, BEFORE);
            assert!(
                op.acked_version().is_some(),
                "{}: {}",
                swarm.label,
                describe_op(op)
            );
            owners.insert(name, Vec::new());
        }
        let mut copies = Vec::new();
        swarm.wait_for(
            CONVERGE,
            "every name to have 3 copies before the cut",
            || {
                copies = swarm.copies(0, owners.keys());
                copies
                    .iter()
                    .all(|c| c.as_ref().is_some_and(|c| c.exactly(3)))
            },
        );
        for (hosts, copies) in owners.values_mut().zip(copies) {
            let copies = copies.expect("checked above");
            *hosts = copies.manifest.iter().map(|p| swarm.host_of(p)).collect();
        }
        if let Some(roles) = Roles::pick(&owners, a, owners.len() >= MAX_PRE) {
            return roles;
        }
    }
}

/// Each side's writes (`Roles::plans`), the sides taking turns, each write
/// through the side's hosts in turn.
fn write_while_cut(swarm: &Swarm, history: &mut History, roles: &Roles, a: &[usize], b: &[usize]) {
    let (plan_a, plan_b) = roles.plans();
    for step in 0..plan_a.len().max(plan_b.len()) {
        for (phase, side, plan) in [(SIDE_A, a, &plan_a), (SIDE_B, b, &plan_b)] {
            let host = side[step % side.len()];
            match plan.get(step) {
                Some(Planned::Put(name, size)) => {
                    history.put(swarm, host, name, *size, phase);
                }
                Some(Planned::Delete(name)) => history.delete(swarm, host, name, phase),
                None => {}
            }
        }
    }
}

/// While cut, every peer of each side reads the side's acknowledged writes:
/// once every peer sees the other side gone, a reader's view agrees with
/// the writer's, so it must see the latest of them.
fn read_own_writes_while_cut(swarm: &Swarm, history: &History, sides: &[(&str, &[usize])]) {
    for &(phase, side) in sides {
        let mine: Vec<&Op> = history.ops.iter().filter(|op| op.phase == phase).collect();
        let names: BTreeSet<&String> = mine.iter().map(|op| &op.name).collect();
        for name in names {
            let of_name: Vec<&Op> = mine.iter().copied().filter(|op| op.name == *name).collect();
            let Some(last) = latest_acked(&of_name) else {
                continue;
            };
            for &host in side {
                let read = swarm.get_all(host, [name]).remove(0);
                assert!(
                    shows(&read, last),
                    "{}: while cut, host {host} on {phase} reads {name} as {} after the {}",
                    swarm.label,
                    describe(&read),
                    describe_op(last)
                );
            }
        }
    }
}

/// Waits until no peer holds copies for others, every peer reads every
/// name alike, and every live name has exactly 3 copies; returns the name's
/// state. Says what it waits for as that changes.
fn wait_for_convergence(
    swarm: &Swarm,
    history: &History,
    healed: Instant,
) -> BTreeMap<String, Read> {
    let names: BTreeSet<&String> = history.ops.iter().map(|op| &op.name).collect();
    let mut reads: BTreeMap<String, Read> = BTreeMap::new();
    let mut waiting_for = String::new();
    let mut report = |what: String| {
        if what != waiting_for {
            eprintln!(
                "{}: {:>5.1?} after healing, waiting for {what}",
                swarm.label,
                healed.elapsed()
            );
            waiting_for = what;
        }
    };
    let hosts = 0..swarm.peers.len();
    // Cheapest first.
    let converged = poll_until(CONVERGE, || {
        reads.clear();
        let held: Vec<Option<u64>> = hosts.clone().map(|h| swarm.held_for_others(h)).collect();
        if held.iter().any(|h| *h != Some(0)) {
            report(format!("no copies held for others: {held:?}"));
            return false;
        }
        let answers: Vec<Vec<Read>> = hosts
            .clone()
            .map(|h| swarm.get_all(h, names.iter().copied()))
            .collect();
        for (i, name) in names.iter().enumerate() {
            let answers: Vec<&Read> = answers.iter().map(|a| &a[i]).collect();
            if answers.iter().any(|r| matches!(r, Read::Failed(..)))
                || answers.windows(2).any(|w| w[0] != w[1])
            {
                let answers: Vec<String> = answers.iter().map(|r| describe(r)).collect();
                report(format!("every peer to read {name} alike: {answers:?}"));
                return false;
            }
            reads.insert((*name).clone(), answers[0].clone());
        }
        let live: Vec<&String> = reads
            .iter()
            .filter(|(_, r)| matches!(r, Read::Live(..)))
            .map(|(n, _)| n)
            .collect();
        for (name, copies) in live.iter().zip(swarm.copies(0, live.iter().copied())) {
            if !copies.as_ref().is_some_and(|c| c.exactly(3)) {
                let counts = copies.map(|c| c.counts());
                report(format!("3 copies of {name}: (manifest, chunks) {counts:?}"));
                return false;
            }
        }
        true
    });
    assert!(
        converged,
        "{}: not converged {CONVERGE:?} after the swarm merged, waiting for {waiting_for}\n{}",
        swarm.label,
        swarm.logs()
    );
    reads
}

/// Checks the converged state (`reads`, alike on every peer) against the
/// history, the listings and the member lists.
fn check_converged(swarm: &Swarm, history: &History, reads: &BTreeMap<String, Read>) {
    for (name, read) in reads {
        let ops: Vec<&Op> = history.ops.iter().filter(|op| op.name == *name).collect();
        if let Err(why) = judge(&ops, read) {
            let ops: Vec<String> = ops.iter().map(|op| describe_op(op)).collect();
            panic!(
                "{}: {name} reads {} on every peer after healing: {why}\nits writes:\n{}",
                swarm.label,
                describe(read),
                ops.join("\n")
            );
        }
    }
    let live: Vec<String> = reads
        .iter()
        .filter(|(_, read)| matches!(read, Read::Live(..)))
        .map(|(name, _)| name.clone())
        .collect();
    for (host, peer) in swarm.peers.iter().enumerate() {
        assert_eq!(
            peer.names(),
            live,
            "{}: the names host {host} lists",
            swarm.label
        );
    }
    assert!(
        swarm.all_alive(),
        "{}: a member is no longer alive in some view: {:?}",
        swarm.label,
        swarm.peers.iter().map(Peer::members).collect::<Vec<_>>()
    );
}

/// The writes so far, and the seed of the next put's bytes.
#[derive(Default)]
struct History {
    ops: Vec<Op>,
    seed: u64,
}

impl History {
    /// Puts `size` fresh bytes as `name` through `host`, and records it.
    fn put(
        &mut self,
        swarm: &Swarm,
        host: usize,
        name: &str,
        size: usize,
        phase: &'static str,
    ) -> &Op {
        self.seed += 1;
        let bytes = random_bytes(size, 1000 + self.seed);
        let outcome = swarm.put(host, name, &bytes);
        self.record(name, Write::Put(bytes), host, phase, outcome)
    }

    /// Deletes `name` through `host`, and records it.
    fn delete(&mut self, swarm: &Swarm, host: usize, name: &str, phase: &'static str) {
        let outcome = swarm.delete(host, name);
        self.record(name, Write::Delete, host, phase, outcome);
    }

    fn record(
        &mut self,
        name: &str,
        write: Write,
        host: usize,
        phase: &'static str,
        outcome: Outcome,
    ) -> &Op {
        self.ops.push(Op {
            name: name.to_owned(),
            write,
            host,
            phase,
            outcome,
        });
        self.ops.last().expect("just pushed")
    }
}

/// A write planned for one side while cut.
enum Planned {
    /// A put of this many bytes.
    Put(String, usize),
    Delete(String),
}

/// At most this many names are written before the cut while looking for
/// enough names owned mostly on each side.
const MAX_PRE: usize = 24;

/// Which names existing before the cut each side overwrites or deletes.
/// A delete reads the name first, which needs two of its owners (a "no
/// such file" comes only from owners), so each delete goes, where the
/// ring allows, to a name most of whose owners are on the deleting side.
struct Roles {
    /// Overwritten on both sides, with different contents.
    overwritten_by_both: String,
    overwritten_by_a: String,
    overwritten_by_b: String,
    deleted_by_a: String,
    deleted_by_b: String,
    /// Deleted on side a, then overwritten on side b.
    deleted_by_a_overwritten_by_b: String,
    /// Overwritten on side a, then deleted on side b.
    overwritten_by_a_deleted_by_b: String,
    /// Deleted on side a, then put again there.
    deleted_and_put_by_a: String,
}

impl Roles {
    /// Picks the names for each role from `owners` (each name's owners,
    /// as hosts): `None` until there are enough names of each kind, unless
    /// this is the `last_try`.
    fn pick(owners: &BTreeMap<String, Vec<usize>>, a: &[usize], last_try: bool) -> Option<Roles> {
        let (mut mostly_a, mut mostly_b) = (Vec::new(), Vec::new());
        for (name, hosts) in owners {
            if hosts.iter().filter(|h| a.contains(h)).count() >= 2 {
                mostly_a.push(name.clone());
            } else {
                mostly_b.push(name.clone());
            }
        }
        // A lone peer owns no name twice over: its deletes are refused
        // whatever the name.
        let wanted_a = if a.len() >= 2 { 3 } else { 0 };
        if !last_try && (mostly_a.len() < wanted_a || mostly_b.len() < 2 || owners.len() < 9) {
            return None;
        }
        fn take(first: &mut Vec<String>, second: &mut Vec<String>) -> String {
            first.pop().or_else(|| second.pop()).expect("enough names")
        }
        let (a, b) = (&mut mostly_a, &mut mostly_b);
        Some(Roles {
            deleted_by_a: take(a, b),
            deleted_by_a_overwritten_by_b: take(a, b),
            deleted_and_put_by_a: take(a, b),
            deleted_by_b: take(b, a),
            overwritten_by_a_deleted_by_b: take(b, a),
            overwritten_by_both: take(b, a),
            overwritten_by_a: take(b, a),
            overwritten_by_b: take(b, a),
        })
    }

    /// Each side's writes while cut, in order. With the names new on one
    /// side, new on both, and put then deleted on one side, this makes
    /// every kind of conflict last writer wins must settle, each both ways
    /// round where the order matters (the sides take turns, a first).
    fn plans(&self) -> (Vec<Planned>, Vec<Planned>) {
        let small = |k: usize| 1000 + k;
        let big = |k: usize| 3 * CHUNK + 100 + k;
        let put = |name: &str, size: usize| Planned::Put(name.to_owned(), size);
        let delete = |name: &str| Planned::Delete(name.to_owned());
        let a = vec![
            put("a-new-small", small(1)),
            put("a-new-big", big(2)),
            put(&self.overwritten_by_both, big(3)),
            put(&self.overwritten_by_a, small(4)),
            delete(&self.deleted_by_a),
            delete(&self.deleted_by_a_overwritten_by_b),
            put(&self.overwritten_by_a_deleted_by_b, big(5)),
            put("both-new", small(6)),
            delete(&self.deleted_and_put_by_a),
            put(&self.deleted_and_put_by_a, big(7)),
            put("a-gone", small(8)),
            delete("a-gone"),
        ];
        let b = vec![
            put("b-new-small", small(11)),
            put("b-new-big", big(12)),
            put("both-new", big(13)),
            put(&self.overwritten_by_both, small(14)),
            put(&self.overwritten_by_b, big(15)),
            delete(&self.deleted_by_b),
            put(&self.deleted_by_a_overwritten_by_b, big(16)),
            delete(&self.overwritten_by_a_deleted_by_b),
            put("b-gone", small(17)),
            delete("b-gone"),
        ];
        (a, b)
    }
}
