//! Replicas: answering data requests from the local store, and asking
//! other peers' replicas through a typed client.
//!
//! - `serve`: carries out one request against the local store, re-hashing
//!   every chunk another peer sends.
//! - `admission`: takes other peers' requests off the swarm, each in a task
//!   of its own, within a memory budget.
//! - `client`: [`ReplicaClient`], one method per remote operation with
//!   typed answers and [`PeerFailure`]s; the coordinator (`crate::files`)
//!   and the healer (`crate::heal`) are written against it.
//! - `transport`: the [`Transport`] seam under the client, with deadlines
//!   that grow with the bytes moved and a memory of peers that stopped
//!   answering; [`SwarmTransport`] in a running peer, an in-memory swarm
//!   with injected faults in tests (`memory`).

mod admission;
mod client;
mod failure;
#[cfg(test)]
pub mod memory;
mod serve;
mod transport;

pub use admission::{INBOUND_BUDGET_BYTES, serve_inbound};
pub use client::{ChunkCopy, ReplicaClient, RingRange};
pub use failure::{PeerError, PeerFailure, short_id};
pub use serve::{serve, serve_local};
pub use transport::{Deadlines, Responsiveness, SwarmTransport, Transport};
