//! Placement: the consistent-hash ring with virtual nodes that decides which
//! peers own each chunk and each file manifest.
//!
//! [`Ring`] is a pure function of the member set (ids and announced
//! capacities), so every peer with the same view of the swarm computes the
//! same owners. [`Placement`] adds who is up, so writes for a down owner go
//! to a stand-in with a hint and reads skip it.

mod placement;
mod ring;

pub use placement::{Candidate, KeyPlan, Placement};
pub use ring::{
    POINTS_PER_REFERENCE, REFERENCE_CAPACITY, Ring, RingMember, chunk_position, name_position,
    points_for,
};
