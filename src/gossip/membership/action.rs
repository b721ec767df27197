//! What the membership hands back to the event loop: the [`Action`]s to
//! carry out, and for each rumour a [`Verdict`] on whether to forward it.
//!
//! These are the whole of the state machine's output, so that the event
//! loop in [`crate::net`] needs to know nothing of its rules.

use libp2p::{Multiaddr, PeerId};

use crate::gossip::Rumor;

/// Something the event loop must do for the membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Publish a rumour to every peer.
    Publish(Rumor),
    /// Send a direct probe.
    Ping {
        /// The member probed.
        target: PeerId,
        /// Which probe this is, to be handed back with its outcome.
        probe: u64,
        /// The target's incarnation this peer suspects, if it does.
        suspected_at: Option<u64>,
    },
    /// Ask `relay` to probe `target`.
    PingVia {
        /// The member asked to help.
        relay: PeerId,
        /// The member probed.
        target: PeerId,
        /// Which probe this is, to be handed back with its outcome.
        probe: u64,
    },
    /// Open a connection to a member, if there is none.
    Connect {
        /// The member.
        peer: PeerId,
        /// Where it listens.
        addrs: Vec<Multiaddr>,
    },
}

/// Whether a rumour told this peer something new; stale rumours are not
/// forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It changed or confirmed the table.
    Accept,
    /// It was stale or redundant.
    Ignore,
}

impl Verdict {
    /// `Accept` for news, `Ignore` otherwise.
    pub(super) fn from_news(news: bool) -> Self {
        if news { Self::Accept } else { Self::Ignore }
    }
}
