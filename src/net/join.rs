//! Joining the swarm: the one join in progress, its dials and greetings,
//! and the answer to the `Network::join` caller.
//!
//! A join dials every address the user gave and every member remembered
//! from earlier runs at once; the first connection whose greeting is
//! answered with the member table completes it. It fails only once every
//! dial and every greeting has, so the caller hears each reason.
//!
//! Greetings themselves are membership requests, sent and matched by
//! [`MembershipExchange`](super::membership::MembershipExchange); this
//! module only remembers which of them belong to the join.

use std::collections::HashMap;

use libp2p::request_response::OutboundRequestId;
use libp2p::swarm::ConnectionId;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId, Swarm};
use tokio::sync::oneshot;

use super::behaviour::Behaviour;
use super::transport::describe_dial_error;

/// Where a join's outcome goes: how many members the answering peer
/// listed, or each attempt with why it failed.
pub(super) type JoinReply = oneshot::Sender<Result<usize, Vec<(String, String)>>>;

/// A join in progress.
struct PendingJoin {
    reply: JoinReply,
    /// Dials still running, by connection, with the address as the user
    /// gave it.
    dials: HashMap<ConnectionId, String>,
    /// Greetings sent over connections the join opened, awaiting the table.
    greetings: HashMap<OutboundRequestId, String>,
    failures: Vec<(String, String)>,
}

impl PendingJoin {
    /// Whether every attempt has failed.
    fn exhausted(&self) -> bool {
        self.dials.is_empty() && self.greetings.is_empty()
    }
}

/// The join in progress, if any. A join that gets a dial going replaces an
/// unfinished one, whose caller then hears that the swarm has stopped.
#[derive(Default)]
pub(super) struct Joining {
    pending: Option<PendingJoin>,
}

impl Joining {
    /// Dials `addrs` (as given by the user) and the `known` members
    /// (remembered from earlier runs, other than `swarm`'s own peer), all at
    /// once. Answers `reply` at once if no dial could even start.
    pub(super) fn start(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        addrs: Vec<Multiaddr>,
        known: Vec<(PeerId, Vec<Multiaddr>)>,
        reply: JoinReply,
    ) {
        let mut join = PendingJoin {
            reply,
            dials: HashMap::new(),
            greetings: HashMap::new(),
            failures: Vec::new(),
        };
        let me = *swarm.local_peer_id();
        let user_given = addrs
            .into_iter()
            .map(|addr| (addr.to_string(), addr.into()));
        let remembered = known
            .into_iter()
            .filter(|(peer, addrs)| *peer != me && !addrs.is_empty())
            .map(|(peer, addrs)| {
                for addr in &addrs {
                    swarm.add_peer_address(peer, addr.clone());
                }
                (
                    format!("{peer} (remembered)"),
                    DialOpts::peer_id(peer).addresses(addrs).build(),
                )
            })
            .collect::<Vec<_>>();
        for (label, opts) in user_given
            .collect::<Vec<(String, DialOpts)>>()
            .into_iter()
            .chain(remembered)
        {
            let connection = opts.connection_id();
            match swarm.dial(opts) {
                Ok(()) => {
                    join.dials.insert(connection, label);
                }
                Err(error) => join.failures.push((label, describe_dial_error(&error))),
            }
        }
        if join.dials.is_empty() {
            let _ = join.reply.send(Err(join.failures));
            return;
        }
        self.pending = Some(join);
    }

    /// A connection opened: if one of the join's dials opened it, returns
    /// that dial's label, and the connection's greeting must ask for the
    /// table and be handed to [`Joining::greeting_sent`].
    pub(super) fn connected(&mut self, connection: ConnectionId) -> Option<String> {
        self.pending
            .as_mut()
            .and_then(|j| j.dials.remove(&connection))
    }

    /// The greeting `request` went out over a connection the join opened,
    /// labelled `label`.
    pub(super) fn greeting_sent(&mut self, request: OutboundRequestId, label: String) {
        if let Some(join) = &mut self.pending {
            join.greetings.insert(request, label);
        }
    }

    /// A join greeting was answered with `listed` members: the join is done
    /// if the greeting is one of the current join's.
    pub(super) fn greeting_answered(
        &mut self,
        request: OutboundRequestId,
        peer: PeerId,
        listed: usize,
    ) {
        let ours = self
            .pending
            .as_ref()
            .is_some_and(|j| j.greetings.contains_key(&request));
        if ours && let Some(pending) = self.pending.take() {
            tracing::info!(%peer, members = listed, "joined the swarm");
            let _ = pending.reply.send(Ok(listed));
        }
    }

    /// One of the join's dials failed: give up once every attempt has.
    pub(super) fn dial_failed(&mut self, connection: ConnectionId, why: String) {
        let Some(join) = &mut self.pending else {
            return;
        };
        let Some(label) = join.dials.remove(&connection) else {
            return;
        };
        join.failures.push((label, why));
        self.finish_if_exhausted();
    }

    /// One of the join's greetings failed.
    pub(super) fn greeting_failed(&mut self, request: OutboundRequestId, why: String) {
        let Some(join) = &mut self.pending else {
            return;
        };
        let Some(label) = join.greetings.remove(&request) else {
            return;
        };
        join.failures.push((label, why));
        self.finish_if_exhausted();
    }

    fn finish_if_exhausted(&mut self) {
        if self.pending.as_ref().is_some_and(PendingJoin::exhausted)
            && let Some(join) = self.pending.take()
        {
            let _ = join.reply.send(Err(join.failures));
        }
    }
}
