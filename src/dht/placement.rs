//! Who should hold a key right now: the ring's owners, and which of them
//! are up.
//!
//! The ring holds every member that counts for placement, including members
//! that are down for now, so that a peer that reboots finds its keys where
//! it left them. Writes meant for a down owner go to the next up peer on the
//! ring instead, with a hint naming the owner (hinted handoff); reads try
//! the up owners first and then those stand-ins.

use std::collections::HashSet;

use libp2p::PeerId;

use super::ring::{Ring, RingMember, points_for};

/// A member as placement sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Who.
    pub peer: PeerId,
    /// The capacity it announces, which weighs its share.
    pub capacity_bytes: u64,
    /// Whether it is reachable now.
    pub up: bool,
}

/// Where one key goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPlan {
    /// The key's owners in preference order (N of them, or every member
    /// when there are fewer), up or not.
    pub owners: Vec<PeerId>,
    /// Up peers after the owners on the ring, in order: where copies for
    /// down or failing owners go.
    pub stand_ins: Vec<PeerId>,
}

/// A snapshot of placement over one view of the members.
#[derive(Debug, Clone)]
pub struct Placement {
    ring: Ring,
    up: HashSet<PeerId>,
    replicas: usize,
}

impl Placement {
    /// Placement over `members` keeping `replicas` copies of every key.
    pub fn new(members: impl IntoIterator<Item = Candidate>, replicas: usize) -> Self {
        let members: Vec<Candidate> = members.into_iter().collect();
        let up = members.iter().filter(|m| m.up).map(|m| m.peer).collect();
        let ring = Ring::new(members.iter().map(|m| RingMember {
            peer: m.peer,
            points: points_for(m.capacity_bytes),
        }));
        Placement { ring, up, replicas }
    }

    /// How many copies each key gets: N, or fewer while the ring has fewer
    /// members.
    pub fn copies(&self) -> usize {
        self.replicas.min(self.ring.len())
    }

    /// Whether `peer` is reachable now.
    pub fn is_up(&self, peer: &PeerId) -> bool {
        self.up.contains(peer)
    }

    /// How many members keep their place on the ring while down.
    pub fn down_count(&self) -> usize {
        self.ring.len().saturating_sub(self.up.len())
    }

    /// The fraction of the key space `peer` owns first (see
    /// [`Ring::share`]); it keeps copies of about `copies()` times as much.
    pub fn ring_share(&self, peer: &PeerId) -> f64 {
        self.ring.share(peer)
    }

    /// The members that are up.
    pub fn up_members(&self) -> impl Iterator<Item = &PeerId> {
        self.up.iter()
    }

    /// What decides where every key goes and whether its owners can take
    /// it: the members on the ring and which of them are up, each sorted.
    /// Two placements with equal shapes place every key alike, so a change
    /// of shape is what can leave work for repair.
    pub fn shape(&self) -> (Vec<PeerId>, Vec<PeerId>) {
        let mut ring = self.ring.members().to_vec();
        ring.sort_unstable();
        let mut up: Vec<PeerId> = self.up.iter().copied().collect();
        up.sort_unstable();
        (ring, up)
    }

    /// The plan for the key at ring `position`. Stand-ins are listed up to
    /// as many as there are owners, which covers every owner failing.
    pub fn plan(&self, position: u64) -> KeyPlan {
        let copies = self.copies();
        let walk = self
            .ring
            .owners_at(position, (2 * copies).min(self.ring.len()));
        let mut owners = walk;
        let rest = owners.split_off(copies.min(owners.len()));
        let mut stand_ins: Vec<PeerId> = rest.into_iter().filter(|p| self.is_up(p)).collect();
        if stand_ins.len() < copies {
            // Many owners down at once: look further round the ring.
            let everyone = self.ring.owners_at(position, self.ring.len());
            stand_ins = everyone
                .into_iter()
                .skip(copies)
                .filter(|p| self.is_up(p))
                .take(copies)
                .collect();
        }
        KeyPlan { owners, stand_ins }
    }

    /// The position ranges (start, end exclusive, `None` for the top of the
    /// ring) in which both `a` and `b` are among the owners: the keys two
    /// replicas should both hold, so they can compare what they hold there
    /// by digest. Adjacent ranges are merged.
    pub fn shared_ranges(&self, a: &PeerId, b: &PeerId) -> Vec<(u64, Option<u64>)> {
        let copies = self.copies();
        let mut ranges: Vec<(u64, Option<u64>)> = Vec::new();
        for (start, end) in self.ring.arcs() {
            let owners = self.ring.owners_at(start, copies);
            if !(owners.contains(a) && owners.contains(b)) {
                continue;
            }
            match ranges.last_mut() {
                Some((_, last_end)) if *last_end == Some(start) => *last_end = end,
                _ => ranges.push((start, end)),
            }
        }
        ranges
    }

    /// The peers to read the key at `position` from, best first: the up
    /// owners, then the stand-ins.
    pub fn read_order(&self, position: u64) -> Vec<PeerId> {
        let plan = self.plan(position);
        plan.owners
            .into_iter()
            .filter(|p| self.is_up(p))
            .chain(plan.stand_ins)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize) -> Vec<Candidate> {
        (0..n)
            .map(|_| Candidate {
                peer: PeerId::random(),
                capacity_bytes: 1 << 40,
                up: true,
            })
            .collect()
    }

    #[test]
    fn shared_ranges_hold_exactly_the_keys_both_peers_own() {
        let all = members(6);
        let placement = Placement::new(all.clone(), 3);
        let (a, b) = (all[0].peer, all[3].peer);
        let ranges = placement.shared_ranges(&a, &b);
        assert!(!ranges.is_empty());
        let inside = |p: u64| {
            ranges
                .iter()
                .any(|(s, e)| p >= *s && e.is_none_or(|e| p < e))
        };
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let owners = placement.plan(state).owners;
            assert_eq!(
                inside(state),
                owners.contains(&a) && owners.contains(&b),
                "position {state}"
            );
        }
        for edge in [0, u64::MAX] {
            let owners = placement.plan(edge).owners;
            assert_eq!(inside(edge), owners.contains(&a) && owners.contains(&b));
        }
    }

    #[test]
    fn a_small_swarm_keeps_as_many_copies_as_it_has_members() {
        let placement = Placement::new(members(2), 3);
        assert_eq!(placement.copies(), 2);
        let plan = placement.plan(12345);
        assert_eq!(plan.owners.len(), 2);
        assert!(plan.stand_ins.is_empty());
    }

    #[test]
    fn down_owners_stay_owners_and_up_peers_stand_in() {
        let mut all = members(6);
        let full = Placement::new(all.clone(), 3);
        let position = 99;
        let owners = full.plan(position).owners;
        for m in &mut all {
            if m.peer == owners[1] {
                m.up = false;
            }
        }
        let degraded = Placement::new(all, 3);
        let plan = degraded.plan(position);
        assert_eq!(plan.owners, owners, "a down owner keeps its place");
        assert!(!plan.stand_ins.is_empty());
        assert!(plan.stand_ins.iter().all(|p| !owners.contains(p)));
        assert!(plan.stand_ins.iter().all(|p| degraded.is_up(p)));
        let order = degraded.read_order(position);
        assert_eq!(order[..2], [owners[0], owners[2]]);
        assert!(!order.contains(&owners[1]));
    }

    #[test]
    fn with_most_owners_down_stand_ins_come_from_further_round() {
        let mut all = members(8);
        let position = 7;
        let owners = Placement::new(all.clone(), 3).plan(position).owners;
        let next = Placement::new(all.clone(), 3)
            .plan(position)
            .stand_ins
            .clone();
        for m in &mut all {
            if owners.contains(&m.peer) || next.contains(&m.peer) {
                m.up = false;
            }
        }
        let plan = Placement::new(all, 3).plan(position);
        assert_eq!(plan.stand_ins.len(), 2, "only two members are still up");
    }
}
