//! A consistent-hash ring with virtual nodes, weighted by capacity.
//!
//! Each member owns many points ("virtual nodes") on a 64-bit circle, at
//! positions derived from its peer id alone, so every peer that knows the
//! same members builds the same ring. A key's preference list is the first
//! `n` distinct members met walking clockwise from the key's position.
//! Adding or removing a member moves only the keys next to its points, about
//! `1/members` of them; many points per member even out the arcs, so shares
//! stay close to the weights.

use libp2p::PeerId;

use crate::chunk::Blake3Hash;

/// Points a member of the reference capacity gets. With 256, ten equal
/// members each hold within a few percent of a tenth of the keys.
pub const POINTS_PER_REFERENCE: u32 = 256;

/// The capacity that earns [`POINTS_PER_REFERENCE`] points: a member with
/// twice this much gets twice as many.
pub const REFERENCE_CAPACITY: u64 = 1 << 40;

/// Point counts are rounded to multiples of this, so the small changes in
/// free space that come with every write do not move keys.
const POINT_STEP: u32 = POINTS_PER_REFERENCE / 16;

/// The fewest and most points a member gets, whatever its capacity: a tiny
/// disk still takes a fair minimum share, a huge one at most 16 times the
/// reference share.
const MIN_POINTS: u32 = POINTS_PER_REFERENCE / 4;
const MAX_POINTS: u32 = POINTS_PER_REFERENCE * 16;

/// How many points a member announcing `capacity_bytes` gets.
pub fn points_for(capacity_bytes: u64) -> u32 {
    let ideal = capacity_bytes as f64 / REFERENCE_CAPACITY as f64 * f64::from(POINTS_PER_REFERENCE);
    let stepped = (ideal / f64::from(POINT_STEP)).round() * f64::from(POINT_STEP);
    (stepped as u32).clamp(MIN_POINTS, MAX_POINTS)
}

/// A member as placement sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingMember {
    /// Who.
    pub peer: PeerId,
    /// How many points it holds (see [`points_for`]).
    pub points: u32,
}

/// The ring over a set of members.
#[derive(Debug, Clone, Default)]
pub struct Ring {
    /// (position, index into `members`), sorted by position.
    points: Vec<(u64, u32)>,
    members: Vec<PeerId>,
}

impl Ring {
    /// Builds the ring. The order of `members` does not matter; a peer
    /// listed twice counts once.
    pub fn new(members: impl IntoIterator<Item = RingMember>) -> Self {
        let mut members: Vec<RingMember> = members.into_iter().collect();
        members.sort_by_key(|m| m.peer.to_bytes());
        members.dedup_by_key(|m| m.peer);
        let mut points = Vec::new();
        for (index, member) in members.iter().enumerate() {
            let id = member.peer.to_bytes();
            for point in 0..member.points {
                points.push((position_of_point(&id, point), index as u32));
            }
        }
        // Ties (vanishingly rare) break by member order, itself by peer id.
        points.sort_unstable();
        Ring {
            points,
            members: members.into_iter().map(|m| m.peer).collect(),
        }
    }

    /// How many members the ring holds.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the ring has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The members on the ring.
    pub fn members(&self) -> &[PeerId] {
        &self.members
    }

    /// The fraction of the key space for which `peer` is the first owner:
    /// the arcs ending at its points, each running back to the point
    /// before (the last arc wraps around the top of the ring).
    pub fn share(&self, peer: &PeerId) -> f64 {
        let Some(me) = self.members.iter().position(|m| m == peer) else {
            return 0.0;
        };
        let mut owned: u128 = 0;
        let mut before = self.points.last().map_or(0, |&(p, _)| p);
        for &(position, index) in &self.points {
            if index as usize == me {
                owned += u128::from(position.wrapping_sub(before));
            }
            before = position;
        }
        if self.members.len() == 1 {
            return 1.0;
        }
        owned as f64 / 2f64.powi(64)
    }

    /// The first `n` distinct members clockwise from `position` (fewer if
    /// the ring has fewer members): the key's owners, in preference order.
    pub fn owners_at(&self, position: u64, n: usize) -> Vec<PeerId> {
        let wanted = n.min(self.members.len());
        let mut owners: Vec<PeerId> = Vec::with_capacity(wanted);
        if wanted == 0 {
            return owners;
        }
        let start = self.points.partition_point(|(p, _)| *p < position);
        for offset in 0..self.points.len() {
            let (_, index) = self.points[(start + offset) % self.points.len()];
            let peer = self.members[index as usize];
            if !owners.contains(&peer) {
                owners.push(peer);
                if owners.len() == wanted {
                    break;
                }
            }
        }
        owners
    }

    /// The ring cut into arcs over which the owners do not change: each as
    /// the first position it covers and the first it does not (`None` for
    /// the top of the ring), with one key's position in it. A key belongs to
    /// the first point at or after its position, so an arc runs from just
    /// after one point up to and including the next.
    pub fn arcs(&self) -> Vec<(u64, Option<u64>)> {
        let mut arcs = Vec::with_capacity(self.points.len() + 1);
        let Some(&(first, _)) = self.points.first() else {
            return arcs;
        };
        arcs.push((0, first.checked_add(1)));
        for pair in self.points.windows(2) {
            let (from, to) = (pair[0].0, pair[1].0);
            if from != to {
                arcs.push((from + 1, to.checked_add(1)));
            }
        }
        if let Some(&(last, _)) = self.points.last()
            && let Some(start) = last.checked_add(1)
        {
            arcs.push((start, None));
        }
        arcs.retain(|(start, end)| end.is_none_or(|e| e > *start));
        arcs
    }

    /// The owners of a chunk.
    pub fn chunk_owners(&self, chunk: &Blake3Hash, n: usize) -> Vec<PeerId> {
        self.owners_at(chunk_position(chunk), n)
    }

    /// The owners of a file's manifest.
    pub fn manifest_owners(&self, name: &str, n: usize) -> Vec<PeerId> {
        self.owners_at(name_position(name), n)
    }
}

/// Where a chunk sits on the ring: its hash is already uniform.
pub fn chunk_position(chunk: &Blake3Hash) -> u64 {
    leading_u64(&chunk.0)
}

/// Where a file name sits on the ring (see [`crate::chunk::name_position`]).
pub fn name_position(name: &str) -> u64 {
    crate::chunk::name_position(name)
}

fn position_of_point(peer: &[u8], point: u32) -> u64 {
    let mut hasher = blake3::Hasher::new_derive_key("shoal ring point v1");
    hasher.update(peer);
    hasher.update(&point.to_be_bytes());
    leading_u64(hasher.finalize().as_bytes())
}

/// The first eight bytes of a 32-byte hash as a big-endian number.
fn leading_u64(hash: &[u8; 32]) -> u64 {
    let [a, b, c, d, e, f, g, h, ..] = *hash;
    u64::from_be_bytes([a, b, c, d, e, f, g, h])
}

#[cfg(test)]
mod tests;
