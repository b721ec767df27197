//! Membership and failure detection: who is in the swarm, and who has died.
//!
//! Every peer keeps the full member table. Peers announce themselves over
//! gossipsub; they probe each other directly, and through others, SWIM-style;
//! a peer that does not answer is suspected, then declared dead unless it
//! refutes the suspicion with a higher incarnation. This module is the
//! protocol's logic and messages only: the swarm's event loop in
//! [`crate::net`] carries messages and time to it.

mod config;
mod membership;
mod message;
mod record;

pub use config::{GossipConfig, GossipConfigError};
pub use membership::{Action, Member, Membership, Verdict};
pub use message::{
    InvalidMessage, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, MAX_RUMOR_BYTES, MAX_TABLE_MEMBERS,
    MEMBERSHIP_TOPIC, Request, Response, Rumor, TableEntry,
};
pub use record::{
    InvalidRecord, MAX_ADDR_BYTES, MAX_LISTEN_ADDRS, MemberState, PeerFigures, PeerRecord,
};
