//! Placement: the consistent-hash ring with virtual nodes that decides which
//! peers own each chunk and each file manifest.
//!
//! [`Ring`] is a pure function of the member set (ids and announced
//! capacities), so every peer with the same view of the swarm computes the
//! same owners. The data path does not use it yet: each file is kept by the
//! peer it was put to.

mod ring;

pub use ring::{
    POINTS_PER_REFERENCE, REFERENCE_CAPACITY, Ring, RingMember, chunk_position, name_position,
    points_for,
};
