//! The one task that owns the libp2p `Swarm`.
//!
//! It multiplexes four inputs: swarm events, answers from the local replica,
//! commands from [`Network`] handles, and a 100 ms tick that drives the
//! membership's timers. It never blocks: nothing here touches the disk, and
//! every answer to a remote peer is computed from memory.
//!
//! The loop keeps the `Swarm` and the [`Membership`] and hands each event to
//! the part that understands it, lending them both for the call:
//! [`Joining`] for the join in progress, [`Discovery`] for finding and
//! dialling peers, [`MembershipExchange`] for the membership protocol,
//! [`Publisher`] for rumours, the member list and listen addresses, and
//! [`DataExchange`] for the data protocol. After every input it carries out
//! what the membership asked for and republishes the member list if it
//! changed.
//!
//! [`Network`]: super::Network

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::metrics::{Metrics, Recorder};
use libp2p::multiaddr::Protocol;
use libp2p::request_response;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm};
use tokio::sync::{mpsc, oneshot, watch};

use super::behaviour::{Behaviour, BehaviourEvent};
use super::data::{self, DataExchange};
use super::discovery::{self, Discovery};
use super::join::Joining;
use super::membership::{JoinGreeting, MembershipExchange};
use super::publish::Publisher;
use super::quiet::{QuietLog, remote_host};
use super::transport::{self, describe_dial_error, describe_listen_error};
use super::{BuildError, Command, InboundRequest, MemberList, NetworkStatus, RequestError};
use crate::gossip::{GossipConfig, Membership, PeerRecord};

/// How often the membership's timers are checked.
const TICK: Duration = Duration::from_millis(100);

/// How long a leaving peer keeps running so its farewell gets out.
const LEAVE_FLUSH: Duration = Duration::from_millis(300);

/// The event loop's state.
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    membership: Membership,
    commands: mpsc::Receiver<Command>,
    join: Joining,
    discovery: Discovery,
    exchange: MembershipExchange,
    publisher: Publisher,
    data: DataExchange,
    quiet: QuietLog,
    /// Set by `Leave`: when to stop, and whom to tell.
    leaving: Option<(Instant, oneshot::Sender<()>)>,
    /// libp2p's own metrics (connections, gossip), when exported.
    metrics: Option<Metrics>,
}

impl EventLoop {
    /// Prepares the loop; the swarm must already listen.
    ///
    /// # Errors
    /// [`BuildError::Subscribe`] if the swarm cannot subscribe to membership
    /// rumours.
    pub fn new(
        mut swarm: Swarm<Behaviour>,
        config: GossipConfig,
        record: PeerRecord,
        known: Vec<(PeerId, Vec<Multiaddr>)>,
        commands: mpsc::Receiver<Command>,
        members_tx: watch::Sender<Arc<MemberList>>,
        inbound: mpsc::Sender<InboundRequest>,
    ) -> Result<Self, BuildError> {
        let publisher = Publisher::new(&mut swarm, members_tx)?;
        let now = Instant::now();
        let exchange = MembershipExchange::new(config.probe_timeout);
        let mut membership = Membership::new(config, record, now);
        membership.remember(known, now);
        Ok(Self {
            swarm,
            membership,
            commands,
            join: Joining::default(),
            discovery: Discovery::default(),
            exchange,
            publisher,
            data: DataExchange::new(inbound),
            quiet: QuietLog::default(),
            leaving: None,
            metrics: None,
        })
    }

    /// This loop, recording the swarm's events into `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs until a `Leave` command has been carried out or every handle is
    /// dropped.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut commands_open = true;
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                Some((channel, response)) = self.data.answers.next(), if !self.data.answers.is_empty() => {
                    data::respond(&mut self.swarm, channel, response);
                }
                command = self.commands.recv(), if commands_open => match command {
                    Some(command) => self.on_command(command),
                    None if self.leaving.is_none() => return,
                    None => commands_open = false,
                },
                _ = tick.tick() => {
                    let now = Instant::now();
                    if let Some((until, _)) = &self.leaving
                        && now >= *until
                    {
                        if let Some((_, reply)) = self.leaving.take() {
                            let _ = reply.send(());
                        }
                        return;
                    }
                    if self.leaving.is_none() {
                        self.membership.tick(now);
                    }
                    self.exchange.expire_relays(&mut self.swarm, now);
                    self.discovery.dial_due(&mut self.swarm, now);
                }
            }
            if self.leaving.is_none() {
                self.exchange.carry_out_actions(
                    &mut self.swarm,
                    &mut self.membership,
                    &self.publisher,
                );
            }
            self.publisher.publish_member_list(&self.membership);
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Join {
                addrs,
                known,
                reply,
            } => self.join.start(&mut self.swarm, addrs, known, reply),
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::Request {
                peer,
                request,
                reply,
                slot,
            } => {
                if self.leaving.is_some() {
                    let _ = reply.send(Err(RequestError::Closed));
                    return;
                }
                if !self.swarm.is_connected(&peer) {
                    discovery::add_member_addresses(&mut self.swarm, &self.membership, &peer);
                }
                let id = self
                    .swarm
                    .behaviour_mut()
                    .data
                    .send_request(&peer, *request);
                self.data.sent(id, reply, slot);
            }
            Command::SetUsage {
                capacity_bytes,
                used_bytes,
                figures,
            } => self
                .membership
                .set_usage(capacity_bytes, used_bytes, &figures),
            Command::AnnounceLeaving => {
                tracing::info!("leaving the swarm for good: handing data over first");
                self.membership.set_leaving();
            }
            Command::Leave { reply } => {
                tracing::info!("leaving the swarm");
                let farewell = self.membership.leave();
                self.publisher.publish(&mut self.swarm, &farewell);
                self.leaving = Some((Instant::now() + LEAVE_FLUSH, reply));
            }
        }
    }

    fn status(&self) -> NetworkStatus {
        let me = *self.swarm.local_peer_id();
        NetworkStatus {
            local: self.membership.local().clone(),
            listen: self
                .publisher
                .listen()
                .iter()
                .map(|a| a.clone().with(Protocol::P2p(me)))
                .collect(),
            members: self.membership.members().cloned().collect(),
            connected: self.swarm.connected_peers().copied().collect(),
            taken: Instant::now(),
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        let now = Instant::now();
        if let Some(metrics) = &self.metrics {
            metrics.record(&event);
            if let SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossip)) = &event {
                metrics.record(gossip);
            }
        }
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => {
                self.publisher
                    .on_gossip(&mut self.swarm, &mut self.membership, event);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Membership(event)) => {
                let greeting = self
                    .exchange
                    .on_event(&mut self.swarm, &mut self.membership, event);
                match greeting {
                    Some(JoinGreeting::Answered {
                        request,
                        peer,
                        listed,
                    }) => self.join.greeting_answered(request, peer, listed),
                    Some(JoinGreeting::Failed { request, why }) => {
                        self.join.greeting_failed(request, why);
                    }
                    None => {}
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Data(event)) => {
                if let request_response::Event::Message { peer, .. } = &event {
                    self.membership.heard_from(peer, now);
                }
                if let Some((channel, response)) = self.data.on_event(event) {
                    data::respond(&mut self.swarm, channel, response);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(event)) => {
                self.discovery.on_mdns(&mut self.swarm, event);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Limits(never)) => match never {},
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                self.publisher
                    .listen_added(&mut self.membership, address, now);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.publisher
                    .listen_expired(&mut self.membership, &address, now);
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!(%error, "a listener failed");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                self.discovery.connected(&peer_id);
                let join_label = self.join.connected(connection_id);
                if num_established.get() == 1 {
                    tracing::debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connected");
                    self.membership.on_connected(&peer_id, now);
                }
                if join_label.is_some() || matches!(endpoint, ConnectedPoint::Dialer { .. }) {
                    let greeting = self.exchange.greet(
                        &mut self.swarm,
                        &self.membership,
                        peer_id,
                        join_label.is_some(),
                    );
                    if let Some(label) = join_label {
                        self.join.greeting_sent(greeting, label);
                    }
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                tracing::debug!(peer = %peer_id, ?cause, "disconnected");
                self.publisher.disconnected(&peer_id);
                self.membership.on_disconnected(&peer_id, now);
            }
            SwarmEvent::ConnectionClosed { .. } => {}
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                let why = describe_dial_error(&error);
                let refused = transport::rejected_by_handshake(&error);
                if refused && let Some(peer) = peer_id {
                    self.discovery.refused(peer, now);
                }
                let target = peer_id.map_or_else(|| "an address".to_owned(), |p| p.to_string());
                // A dead member's refusals are expected; the membership
                // reports what matters. A handshake failure is a
                // misconfiguration someone must hear about.
                self.quiet.log(&format!("dial {target}"), |quiet| {
                    if refused && !quiet {
                        tracing::warn!(%target, "cannot connect: {why}");
                    } else {
                        tracing::debug!(%target, "cannot connect: {why}");
                    }
                });
                self.join.dial_failed(connection_id, why);
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                let why = describe_listen_error(&error);
                let from = remote_host(&send_back_addr);
                self.quiet.log(&format!("incoming {from}"), |quiet| {
                    if quiet {
                        tracing::debug!(%from, "refused a connection: {why}");
                    } else {
                        tracing::warn!(%from, "refused a connection: {why}");
                    }
                });
            }
            _ => {}
        }
    }
}
