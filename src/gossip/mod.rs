//! Membership and failure detection over libp2p gossip.
//!
//! A single peer is its own only member; the swarm layer that announces
//! peers to each other and detects failures lives here once peers connect.
