//! Placement: the consistent-hash ring with virtual nodes that decides which
//! peers own each chunk and each file manifest.
//!
//! Until peers form a swarm, the only member is the local peer and every key
//! is placed there; the data path in [`crate::files`] is written so that a
//! chunk's destination is a decision made per chunk, which is where the ring
//! will plug in.
