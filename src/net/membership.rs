//! The membership protocol's exchanges (`/shoal/membership/2`): probes,
//! probes relayed for other members, greetings, and carrying out what
//! [`Membership`] asks for.
//!
//! Every answer to a remote peer is computed from the membership table in
//! memory, so nothing here waits. A probe relayed for another member is
//! answered `Nack` once it has taken as long as a direct probe may
//! (stretched alike when this peer lags), long before libp2p would give up
//! on it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::{PeerId, Swarm};

use super::behaviour::{Behaviour, MEMBERSHIP_PROTOCOL};
use super::discovery;
use super::publish::Publisher;
use crate::gossip::{Action, Membership, Request, Response, Rumor};

/// What an outbound request was for.
enum Outbound {
    /// A direct probe of `target`.
    Probe { target: PeerId, probe: u64 },
    /// A request that another member probe `target` for this peer.
    ProbeVia { target: PeerId, probe: u64 },
    /// A probe made on behalf of another peer, answered through `channel`.
    Relay {
        channel: ResponseChannel<Response>,
        deadline: Instant,
    },
    /// A greeting; `join` when it answers a pending join.
    Greeting { join: bool },
}

/// What became of a greeting sent for a join, for
/// [`Joining`](super::join::Joining) to hear.
pub(super) enum JoinGreeting {
    /// `peer` answered `request`, listing `listed` members.
    Answered {
        request: OutboundRequestId,
        peer: PeerId,
        listed: usize,
    },
    /// `request` got no answer, for the reason given.
    Failed {
        request: OutboundRequestId,
        why: String,
    },
}

/// The membership requests this peer has sent and not yet seen answered.
pub(super) struct MembershipExchange {
    outbound: HashMap<OutboundRequestId, Outbound>,
    /// How long a direct probe may take, before stretching for lag.
    probe_timeout: Duration,
    /// Peers already reported as speaking an incompatible protocol, so
    /// each is reported once.
    incompatible: std::collections::HashSet<PeerId>,
}

impl MembershipExchange {
    pub(super) fn new(probe_timeout: Duration) -> Self {
        Self {
            outbound: HashMap::new(),
            probe_timeout,
            incompatible: std::collections::HashSet::new(),
        }
    }

    /// Reports, once per peer, that `peer` speaks none of this release's
    /// protocols, and drops its connections: it cannot be a member.
    fn refuse_incompatible(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId) -> String {
        let why = format!(
            "peer {peer} runs an incompatible shoal release (it does not speak {MEMBERSHIP_PROTOCOL}); run the same release on every peer"
        );
        if self.incompatible.insert(peer) {
            tracing::warn!("{why}");
        }
        let _ = swarm.disconnect_peer_id(peer);
        why
    }

    /// Introduces this peer to one it connected to; a joiner asks for the
    /// whole table, as does any peer meeting a stranger.
    pub(super) fn greet(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        membership: &Membership,
        peer: PeerId,
        join: bool,
    ) -> OutboundRequestId {
        let want_table = join || !membership.is_live(&peer);
        let request = Request::Join {
            record: membership.local().clone(),
            want_table,
        };
        let id = swarm
            .behaviour_mut()
            .membership
            .send_request(&peer, request);
        self.outbound.insert(id, Outbound::Greeting { join });
        id
    }

    /// Handles a protocol event. Returns what became of a join's greeting,
    /// if the event settled one.
    pub(super) fn on_event(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        membership: &mut Membership,
        event: request_response::Event<Request, Response>,
    ) -> Option<JoinGreeting> {
        let now = Instant::now();
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                self.on_request(swarm, membership, peer, request, channel);
                None
            }
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                membership.heard_from(&peer, now);
                let outbound = self.outbound.remove(&request_id)?;
                on_response(swarm, membership, peer, request_id, outbound, response)
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "membership request failed");
                let error = if matches!(
                    error,
                    request_response::OutboundFailure::UnsupportedProtocols
                ) {
                    self.refuse_incompatible(swarm, peer)
                } else {
                    error.to_string()
                };
                match self.outbound.remove(&request_id) {
                    Some(Outbound::Probe { target, probe }) => {
                        membership.on_ping_failed(&target, probe, now);
                        None
                    }
                    Some(Outbound::ProbeVia { target, probe }) => {
                        membership.on_relay_result(&target, probe, None, now);
                        None
                    }
                    Some(Outbound::Relay { channel, .. }) => {
                        respond(swarm, channel, Response::Nack);
                        None
                    }
                    Some(Outbound::Greeting { join: true }) => Some(JoinGreeting::Failed {
                        request: request_id,
                        why: format!("no answer to the greeting: {error}"),
                    }),
                    Some(Outbound::Greeting { join: false }) | None => None,
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                if matches!(
                    error,
                    request_response::InboundFailure::UnsupportedProtocols
                ) {
                    self.refuse_incompatible(swarm, peer);
                } else {
                    tracing::debug!(%peer, %error, "membership request from a peer failed");
                }
                None
            }
            request_response::Event::ResponseSent { .. } => None,
        }
    }

    fn on_request(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        membership: &mut Membership,
        peer: PeerId,
        request: Request,
        channel: ResponseChannel<Response>,
    ) {
        let now = Instant::now();
        membership.heard_from(&peer, now);
        match request {
            Request::Ping { suspected_at } => {
                if let Some(incarnation) = suspected_at {
                    let me = membership.local().peer_id;
                    membership.on_rumor(
                        peer,
                        Rumor::Suspect {
                            peer: me,
                            incarnation,
                        },
                        now,
                    );
                }
                respond(swarm, channel, Response::Ack);
            }
            Request::PingReq { target } => {
                if target == *swarm.local_peer_id() {
                    respond(swarm, channel, Response::Ack);
                    return;
                }
                let id = swarm
                    .behaviour_mut()
                    .membership
                    .send_request(&target, Request::Ping { suspected_at: None });
                let deadline = now + self.relay_timeout(membership);
                self.outbound
                    .insert(id, Outbound::Relay { channel, deadline });
            }
            Request::Join { record, want_table } => {
                if record.peer_id != peer {
                    tracing::warn!(%peer, claimed = %record.peer_id, "dropped a greeting that names another peer");
                    return;
                }
                for addr in &record.listen {
                    swarm.add_peer_address(peer, addr.clone());
                }
                membership.on_join(record, now);
                // A peer still held failed after its greeting must see the
                // table to learn that it has to refute.
                let answer = if want_table || membership.needs_refuting(&peer) {
                    Response::Table(membership.table())
                } else {
                    Response::Ack
                };
                respond(swarm, channel, answer);
            }
        }
    }

    /// Relayed probes get as long as direct ones, stretched alike when this
    /// peer is lagging.
    fn relay_timeout(&self, membership: &Membership) -> Duration {
        self.probe_timeout * (1 + membership.health_score())
    }

    /// Answers relayed probes whose target stayed silent.
    pub(super) fn expire_relays(&mut self, swarm: &mut Swarm<Behaviour>, now: Instant) {
        let expired: Vec<OutboundRequestId> = self
            .outbound
            .iter()
            .filter_map(|(id, o)| match o {
                Outbound::Relay { deadline, .. } if now >= *deadline => Some(*id),
                _ => None,
            })
            .collect();
        for id in expired {
            if let Some(Outbound::Relay { channel, .. }) = self.outbound.remove(&id) {
                respond(swarm, channel, Response::Nack);
            }
        }
    }

    /// Carries out what the membership has asked for since the last call:
    /// rumours go out through `publisher`, probes and relay requests over
    /// this protocol, connections through discovery's dialling.
    pub(super) fn carry_out_actions(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        membership: &mut Membership,
        publisher: &Publisher,
    ) {
        for action in membership.drain_actions() {
            match action {
                Action::Publish(rumor) => publisher.publish(swarm, &rumor),
                Action::Ping {
                    target,
                    probe,
                    suspected_at,
                } => {
                    discovery::add_member_addresses(swarm, membership, &target);
                    let id = swarm
                        .behaviour_mut()
                        .membership
                        .send_request(&target, Request::Ping { suspected_at });
                    self.outbound.insert(id, Outbound::Probe { target, probe });
                }
                Action::PingVia {
                    relay,
                    target,
                    probe,
                } => {
                    let id = swarm
                        .behaviour_mut()
                        .membership
                        .send_request(&relay, Request::PingReq { target });
                    self.outbound
                        .insert(id, Outbound::ProbeVia { target, probe });
                }
                Action::Connect { peer, addrs } => {
                    if !swarm.is_connected(&peer) && !addrs.is_empty() {
                        discovery::dial(swarm, peer, addrs);
                    }
                }
            }
        }
    }
}

/// Feeds the answer to an outbound request to the membership. Returns the
/// outcome of a join's greeting.
fn on_response(
    swarm: &mut Swarm<Behaviour>,
    membership: &mut Membership,
    peer: PeerId,
    request: OutboundRequestId,
    outbound: Outbound,
    response: Response,
) -> Option<JoinGreeting> {
    let now = Instant::now();
    match (outbound, response) {
        (Outbound::Probe { target, .. }, _) => membership.on_ack(&target, now),
        (Outbound::ProbeVia { target, probe }, Response::Ack) => {
            membership.on_relay_result(&target, probe, Some(true), now);
        }
        (Outbound::ProbeVia { target, probe }, _) => {
            membership.on_relay_result(&target, probe, Some(false), now);
        }
        (Outbound::Relay { channel, .. }, _) => respond(swarm, channel, Response::Ack),
        (Outbound::Greeting { join }, response) => {
            let listed = match response {
                Response::Table(entries) => {
                    let listed = entries.len();
                    membership.on_table(entries, now);
                    listed
                }
                Response::Ack | Response::Nack => 0,
            };
            if join {
                return Some(JoinGreeting::Answered {
                    request,
                    peer,
                    listed,
                });
            }
        }
    }
    None
}

fn respond(swarm: &mut Swarm<Behaviour>, channel: ResponseChannel<Response>, response: Response) {
    // Fails only if the requester has gone, which needs no answer.
    let _ = swarm
        .behaviour_mut()
        .membership
        .send_response(channel, response);
}
