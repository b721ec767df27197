//! The one task that owns the libp2p `Swarm`.
//!
//! It multiplexes three inputs: swarm events, commands from [`Network`]
//! handles, and a 100 ms tick that drives the membership's timers. It never
//! blocks: nothing here touches the disk, and every answer to a remote peer
//! is computed from memory.
//!
//! [`Network`]: super::Network

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, mdns};
use tokio::sync::{mpsc, oneshot, watch};

use super::behaviour::{Behaviour, BehaviourEvent};
use super::data::DataExchange;
use super::transport::{self, describe_dial_error, describe_listen_error};
use super::{Command, InboundRequest, MemberList, NetworkStatus, RequestError};
use crate::gossip::{
    Action, GossipConfig, MEMBERSHIP_TOPIC, Membership, PeerRecord, Request, Response, Rumor,
    Verdict,
};

/// How often the membership's timers are checked.
const TICK: Duration = Duration::from_millis(100);

/// How long a peer whose handshake failed is left alone by discovery.
const REFUSED_BACKOFF: Duration = Duration::from_secs(300);

/// How long the same connection problem with the same address stays quiet
/// in the log after it was reported.
const LOG_QUIET: Duration = Duration::from_secs(60);

/// How long the peer with the larger id waits before dialling a peer found
/// by mDNS: both find each other at once, and two simultaneous dials can
/// meet and fail.
const DISCOVERY_DEFERRAL: Duration = Duration::from_secs(1);

/// How many times a peer found by mDNS is dialled before discovery gives up
/// on it (until it is discovered again).
const DISCOVERY_ATTEMPTS: u32 = 8;

/// How long a leaving peer keeps running so its farewell gets out.
const LEAVE_FLUSH: Duration = Duration::from_millis(300);

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

/// A join in progress.
struct PendingJoin {
    reply: oneshot::Sender<Result<usize, Vec<(String, String)>>>,
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

/// A peer found by mDNS, not yet connected.
struct Discovery {
    addrs: Vec<Multiaddr>,
    next_attempt: Instant,
    attempts: u32,
}

/// The event loop's state.
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    membership: Membership,
    topic: IdentTopic,
    commands: mpsc::Receiver<Command>,
    members_tx: watch::Sender<Arc<MemberList>>,
    published_generation: Option<u64>,
    listen: Vec<Multiaddr>,
    outbound: HashMap<OutboundRequestId, Outbound>,
    join: Option<PendingJoin>,
    /// Peers that failed the handshake, and when.
    refused: HashMap<PeerId, Instant>,
    /// Recently logged connection problems, by address.
    quiet: HashMap<String, Instant>,
    subscribers: HashSet<PeerId>,
    discovered: HashMap<PeerId, Discovery>,
    leaving: Option<(Instant, oneshot::Sender<()>)>,
    probe_timeout: Duration,
    data: DataExchange,
}

impl EventLoop {
    /// Prepares the loop; the swarm must already listen.
    pub fn new(
        mut swarm: Swarm<Behaviour>,
        config: GossipConfig,
        record: PeerRecord,
        known: Vec<(PeerId, Vec<Multiaddr>)>,
        commands: mpsc::Receiver<Command>,
        members_tx: watch::Sender<Arc<MemberList>>,
        inbound: mpsc::Sender<InboundRequest>,
    ) -> Result<Self, String> {
        let topic = IdentTopic::new(MEMBERSHIP_TOPIC);
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&topic)
            .map_err(|e| format!("cannot subscribe to membership rumours: {e}"))?;
        let now = Instant::now();
        let mut membership = Membership::new(config.clone(), record, now);
        membership.remember(known, now);
        Ok(Self {
            probe_timeout: config.probe_timeout,
            membership,
            swarm,
            topic,
            commands,
            members_tx,
            published_generation: None,
            listen: Vec::new(),
            outbound: HashMap::new(),
            join: None,
            refused: HashMap::new(),
            quiet: HashMap::new(),
            subscribers: HashSet::new(),
            discovered: HashMap::new(),
            leaving: None,
            data: DataExchange::new(inbound),
        })
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
                    self.send_data_response(channel, response);
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
                    self.expire_relays(now);
                    self.dial_discovered(now);
                }
            }
            if self.leaving.is_none() {
                self.carry_out_actions();
            }
            self.publish_member_list();
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Join {
                addrs,
                known,
                reply,
            } => self.start_join(addrs, known, reply),
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
                    self.add_member_addresses(&peer);
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
            } => self.membership.set_usage(capacity_bytes, used_bytes),
            Command::AnnounceLeaving => {
                tracing::info!("leaving the swarm for good: handing data over first");
                self.membership.set_leaving();
            }
            Command::Leave { reply } => {
                tracing::info!("leaving the swarm");
                let farewell = self.membership.leave();
                self.publish(&farewell);
                self.leaving = Some((Instant::now() + LEAVE_FLUSH, reply));
            }
        }
    }

    fn status(&self) -> NetworkStatus {
        let me = *self.swarm.local_peer_id();
        NetworkStatus {
            local: self.membership.local().clone(),
            listen: self
                .listen
                .iter()
                .map(|a| a.clone().with(Protocol::P2p(me)))
                .collect(),
            members: self.membership.members().cloned().collect(),
            connected: self.swarm.connected_peers().copied().collect(),
            taken: Instant::now(),
        }
    }

    fn start_join(
        &mut self,
        addrs: Vec<Multiaddr>,
        known: Vec<(PeerId, Vec<Multiaddr>)>,
        reply: oneshot::Sender<Result<usize, Vec<(String, String)>>>,
    ) {
        let mut join = PendingJoin {
            reply,
            dials: HashMap::new(),
            greetings: HashMap::new(),
            failures: Vec::new(),
        };
        let me = *self.swarm.local_peer_id();
        let user_given = addrs
            .into_iter()
            .map(|addr| (addr.to_string(), addr.into()));
        let remembered = known
            .into_iter()
            .filter(|(peer, addrs)| *peer != me && !addrs.is_empty())
            .map(|(peer, addrs)| {
                for addr in &addrs {
                    self.swarm.add_peer_address(peer, addr.clone());
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
            match self.swarm.dial(opts) {
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
        self.join = Some(join);
    }

    /// One of the join's dials failed: give up once every attempt has.
    fn join_dial_failed(&mut self, connection: ConnectionId, why: String) {
        let Some(join) = &mut self.join else { return };
        let Some(label) = join.dials.remove(&connection) else {
            return;
        };
        join.failures.push((label, why));
        self.finish_join_if_exhausted();
    }

    /// One of the join's greetings failed.
    fn join_greeting_failed(&mut self, request: OutboundRequestId, why: String) {
        let Some(join) = &mut self.join else { return };
        let Some(label) = join.greetings.remove(&request) else {
            return;
        };
        join.failures.push((label, why));
        self.finish_join_if_exhausted();
    }

    fn finish_join_if_exhausted(&mut self) {
        if self.join.as_ref().is_some_and(PendingJoin::exhausted)
            && let Some(join) = self.join.take()
        {
            let _ = join.reply.send(Err(join.failures));
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        let now = Instant::now();
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => self.on_gossip(event),
            SwarmEvent::Behaviour(BehaviourEvent::Membership(event)) => {
                self.on_membership_message(event);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Data(event)) => {
                if let request_response::Event::Message { peer, .. } = &event {
                    self.membership.heard_from(peer, now);
                }
                if let Some((channel, response)) = self.data.on_event(event) {
                    self.send_data_response(channel, response);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(event)) => self.on_mdns(event),
            SwarmEvent::Behaviour(BehaviourEvent::Limits(never)) => match never {},
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                if !self.listen.contains(&address) {
                    self.listen.push(address);
                }
                self.membership.set_listen(announceable(&self.listen), now);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen.retain(|a| *a != address);
                self.membership.set_listen(announceable(&self.listen), now);
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
                self.refused.remove(&peer_id);
                let join_label = self
                    .join
                    .as_mut()
                    .and_then(|j| j.dials.remove(&connection_id));
                if num_established.get() == 1 {
                    tracing::debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connected");
                    self.membership.on_connected(&peer_id, now);
                }
                if join_label.is_some() || matches!(endpoint, ConnectedPoint::Dialer { .. }) {
                    let greeting = self.greet(peer_id, join_label.is_some());
                    if let (Some(label), Some(join)) = (join_label, self.join.as_mut()) {
                        join.greetings.insert(greeting, label);
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
                self.subscribers.remove(&peer_id);
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
                    if self.refused.len() >= 1024 {
                        self.refused
                            .retain(|_, at| now.duration_since(*at) < REFUSED_BACKOFF);
                    }
                    self.refused.insert(peer, now);
                }
                let target = peer_id.map_or_else(|| "an address".to_owned(), |p| p.to_string());
                // A dead member's refusals are expected; the membership
                // reports what matters. A handshake failure is a
                // misconfiguration someone must hear about.
                self.log_quietly(&format!("dial {target}"), |quiet| {
                    if refused && !quiet {
                        tracing::warn!(%target, "cannot connect: {why}");
                    } else {
                        tracing::debug!(%target, "cannot connect: {why}");
                    }
                });
                self.join_dial_failed(connection_id, why);
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                let why = describe_listen_error(&error);
                let from = remote_host(&send_back_addr);
                self.log_quietly(&format!("incoming {from}"), |quiet| {
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

    /// Logs through `log` with `quiet` set when the same `key` was logged
    /// within [`LOG_QUIET`], so a misconfigured neighbour cannot flood the log.
    fn log_quietly(&mut self, key: &str, log: impl FnOnce(bool)) {
        let now = Instant::now();
        let quiet = self
            .quiet
            .get(key)
            .is_some_and(|at| now.duration_since(*at) < LOG_QUIET);
        if !quiet {
            if self.quiet.len() > 1024 {
                self.quiet
                    .retain(|_, at| now.duration_since(*at) < LOG_QUIET);
            }
            self.quiet.insert(key.to_owned(), now);
        }
        log(quiet);
    }

    /// Introduces this peer to one it connected to; a joiner asks for the
    /// whole table, as does any peer meeting a stranger.
    fn greet(&mut self, peer: PeerId, join: bool) -> OutboundRequestId {
        let want_table = join || !self.membership.is_live(&peer);
        let request = Request::Join {
            record: self.membership.local().clone(),
            want_table,
        };
        let id = self
            .swarm
            .behaviour_mut()
            .membership
            .send_request(&peer, request);
        self.outbound.insert(id, Outbound::Greeting { join });
        id
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let acceptance = match (message.source, Rumor::decode(&message.data)) {
                    (Some(source), Ok(rumor)) => {
                        match self.membership.on_rumor(source, rumor, Instant::now()) {
                            Verdict::Accept => MessageAcceptance::Accept,
                            Verdict::Ignore => MessageAcceptance::Ignore,
                        }
                    }
                    (None, _) => MessageAcceptance::Reject,
                    (Some(source), Err(why)) => {
                        tracing::warn!(%source, "dropped a malformed membership rumour: {why}");
                        MessageAcceptance::Reject
                    }
                };
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, acceptance);
            }
            gossipsub::Event::Subscribed { peer_id, .. } => {
                if self.subscribers.is_empty() {
                    self.membership.announce_soon(Instant::now());
                }
                self.subscribers.insert(peer_id);
            }
            gossipsub::Event::Unsubscribed { peer_id, .. } => {
                self.subscribers.remove(&peer_id);
            }
            gossipsub::Event::SlowPeer { peer_id, .. } => {
                tracing::debug!(peer = %peer_id, "gossip to this peer is backing up");
            }
            _ => {}
        }
    }

    fn on_mdns(&mut self, event: mdns::Event) {
        let mdns::Event::Discovered(found) = event else {
            return;
        };
        let me = *self.swarm.local_peer_id();
        let now = Instant::now();
        let mut by_peer: HashMap<PeerId, Vec<Multiaddr>> = HashMap::new();
        for (peer, addr) in found {
            if peer != me {
                by_peer.entry(peer).or_default().push(addr);
            }
        }
        for (peer, addrs) in by_peer {
            let refused = self
                .refused
                .get(&peer)
                .is_some_and(|at| now.duration_since(*at) < REFUSED_BACKOFF);
            if refused || self.swarm.is_connected(&peer) {
                continue;
            }
            tracing::debug!(%peer, ?addrs, "discovered on the LAN");
            let next_attempt = if me < peer {
                now
            } else {
                now + DISCOVERY_DEFERRAL
            };
            self.discovered.insert(
                peer,
                Discovery {
                    addrs,
                    next_attempt,
                    attempts: 0,
                },
            );
        }
        self.dial_discovered(now);
    }

    /// Dials peers found by mDNS that are due, backing off after failures.
    fn dial_discovered(&mut self, now: Instant) {
        let connected: Vec<PeerId> = self
            .discovered
            .keys()
            .filter(|p| self.swarm.is_connected(p) || self.refused.contains_key(p))
            .copied()
            .collect();
        for peer in connected {
            self.discovered.remove(&peer);
        }
        let due: Vec<(PeerId, Vec<Multiaddr>)> = self
            .discovered
            .iter_mut()
            .filter(|(_, d)| now >= d.next_attempt)
            .map(|(peer, d)| {
                d.attempts += 1;
                d.next_attempt = now + Duration::from_secs(1 << d.attempts.min(6));
                (*peer, d.addrs.clone())
            })
            .collect();
        self.discovered
            .retain(|_, d| d.attempts < DISCOVERY_ATTEMPTS);
        for (peer, addrs) in due {
            self.dial(peer, addrs);
        }
    }

    fn dial(&mut self, peer: PeerId, addrs: Vec<Multiaddr>) {
        for addr in &addrs {
            self.swarm.add_peer_address(peer, addr.clone());
        }
        // A fresh source port: dialling from the listen port lets two peers
        // dialling each other at once meet in one TCP connection where both
        // think they are the dialler, and the handshake fails.
        let opts = DialOpts::peer_id(peer)
            .addresses(addrs)
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .allocate_new_port()
            .build();
        if let Err(error) = self.swarm.dial(opts) {
            tracing::debug!(%peer, "not dialling: {}", describe_dial_error(&error));
        }
    }

    fn on_membership_message(&mut self, event: request_response::Event<Request, Response>) {
        let now = Instant::now();
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.on_request(peer, request, channel),
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                self.membership.heard_from(&peer, now);
                if let Some(outbound) = self.outbound.remove(&request_id) {
                    self.on_response(peer, request_id, outbound, response);
                }
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "membership request failed");
                match self.outbound.remove(&request_id) {
                    Some(Outbound::Probe { target, probe }) => {
                        self.membership.on_ping_failed(&target, probe, now);
                    }
                    Some(Outbound::ProbeVia { target, probe }) => {
                        self.membership.on_relay_result(&target, probe, None, now);
                    }
                    Some(Outbound::Relay { channel, .. }) => self.respond(channel, Response::Nack),
                    Some(Outbound::Greeting { join: true }) => self.join_greeting_failed(
                        request_id,
                        format!("no answer to the greeting: {error}"),
                    ),
                    Some(Outbound::Greeting { join: false }) | None => {}
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "membership request from a peer failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_request(&mut self, peer: PeerId, request: Request, channel: ResponseChannel<Response>) {
        let now = Instant::now();
        self.membership.heard_from(&peer, now);
        match request {
            Request::Ping { suspected_at } => {
                if let Some(incarnation) = suspected_at {
                    let me = self.membership.local().peer_id;
                    self.membership.on_rumor(
                        peer,
                        Rumor::Suspect {
                            peer: me,
                            incarnation,
                        },
                        now,
                    );
                }
                self.respond(channel, Response::Ack);
            }
            Request::PingReq { target } => {
                if target == *self.swarm.local_peer_id() {
                    self.respond(channel, Response::Ack);
                    return;
                }
                let id = self
                    .swarm
                    .behaviour_mut()
                    .membership
                    .send_request(&target, Request::Ping { suspected_at: None });
                let deadline = now + self.relay_timeout();
                self.outbound
                    .insert(id, Outbound::Relay { channel, deadline });
            }
            Request::Join { record, want_table } => {
                if record.peer_id != peer {
                    tracing::warn!(%peer, claimed = %record.peer_id, "dropped a greeting that names another peer");
                    return;
                }
                for addr in &record.listen {
                    self.swarm.add_peer_address(peer, addr.clone());
                }
                self.membership.on_join(record, now);
                // A peer still held failed after its greeting must see the
                // table to learn that it has to refute.
                let answer = if want_table || self.membership.needs_refuting(&peer) {
                    Response::Table(self.membership.table())
                } else {
                    Response::Ack
                };
                self.respond(channel, answer);
            }
        }
    }

    fn on_response(
        &mut self,
        peer: PeerId,
        request: OutboundRequestId,
        outbound: Outbound,
        response: Response,
    ) {
        let now = Instant::now();
        match (outbound, response) {
            (Outbound::Probe { target, .. }, _) => self.membership.on_ack(&target, now),
            (Outbound::ProbeVia { target, probe }, Response::Ack) => {
                self.membership
                    .on_relay_result(&target, probe, Some(true), now);
            }
            (Outbound::ProbeVia { target, probe }, _) => {
                self.membership
                    .on_relay_result(&target, probe, Some(false), now);
            }
            (Outbound::Relay { channel, .. }, _) => self.respond(channel, Response::Ack),
            (Outbound::Greeting { join }, response) => {
                let listed = match response {
                    Response::Table(entries) => {
                        let listed = entries.len();
                        self.membership.on_table(entries, now);
                        listed
                    }
                    Response::Ack | Response::Nack => 0,
                };
                let ours = self
                    .join
                    .as_ref()
                    .is_some_and(|j| j.greetings.contains_key(&request));
                if join
                    && ours
                    && let Some(pending) = self.join.take()
                {
                    tracing::info!(%peer, members = listed, "joined the swarm");
                    let _ = pending.reply.send(Ok(listed));
                }
            }
        }
    }

    /// Relayed probes get as long as direct ones, stretched alike when this
    /// peer is lagging.
    fn relay_timeout(&self) -> Duration {
        self.probe_timeout * (1 + self.membership.health_score())
    }

    /// Answers relayed probes whose target stayed silent.
    fn expire_relays(&mut self, now: Instant) {
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
                self.respond(channel, Response::Nack);
            }
        }
    }

    fn send_data_response(
        &mut self,
        channel: ResponseChannel<crate::protocol::DataResponse>,
        response: crate::protocol::DataResponse,
    ) {
        // Fails only if the asker gave up (timed out or disconnected).
        let _ = self
            .swarm
            .behaviour_mut()
            .data
            .send_response(channel, response);
    }

    fn respond(&mut self, channel: ResponseChannel<Response>, response: Response) {
        // Fails only if the requester has gone, which needs no answer.
        let _ = self
            .swarm
            .behaviour_mut()
            .membership
            .send_response(channel, response);
    }

    fn carry_out_actions(&mut self) {
        for action in self.membership.drain_actions() {
            match action {
                Action::Publish(rumor) => self.publish(&rumor),
                Action::Ping {
                    target,
                    probe,
                    suspected_at,
                } => {
                    self.add_member_addresses(&target);
                    let id = self
                        .swarm
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
                    let id = self
                        .swarm
                        .behaviour_mut()
                        .membership
                        .send_request(&relay, Request::PingReq { target });
                    self.outbound
                        .insert(id, Outbound::ProbeVia { target, probe });
                }
                Action::Connect { peer, addrs } => {
                    if !self.swarm.is_connected(&peer) && !addrs.is_empty() {
                        self.dial(peer, addrs);
                    }
                }
            }
        }
    }

    fn add_member_addresses(&mut self, peer: &PeerId) {
        if let Some(member) = self.membership.member(peer) {
            for addr in member.record.listen.clone() {
                self.swarm.add_peer_address(*peer, addr);
            }
        }
    }

    fn publish(&mut self, rumor: &Rumor) {
        let data = match rumor.encode() {
            Ok(data) => data,
            Err(error) => {
                tracing::error!(%error, "cannot encode a membership rumour");
                return;
            }
        };
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.topic.clone(), data)
        {
            Ok(_) => {}
            // Nobody to tell yet: the next announcement will go out.
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {}
            Err(error) => tracing::debug!(%error, "cannot publish a membership rumour"),
        }
    }

    fn publish_member_list(&mut self) {
        let generation = self.membership.generation();
        if self.published_generation == Some(generation) {
            return;
        }
        self.published_generation = Some(generation);
        let list = MemberList {
            local: self.membership.local().clone(),
            members: self.membership.members().cloned().collect(),
        };
        self.members_tx.send_replace(Arc::new(list));
    }
}

/// The addresses worth announcing: loopback ones only when there is
/// nothing else, since another machine cannot use them.
fn announceable(listen: &[Multiaddr]) -> Vec<Multiaddr> {
    let is_loopback = |addr: &Multiaddr| {
        addr.iter().any(|p| match p {
            Protocol::Ip4(ip) => ip.is_loopback() || ip.is_unspecified(),
            Protocol::Ip6(ip) => ip.is_loopback() || ip.is_unspecified(),
            _ => false,
        })
    };
    let outward: Vec<Multiaddr> = listen.iter().filter(|a| !is_loopback(a)).cloned().collect();
    let chosen = if outward.is_empty() {
        listen.to_vec()
    } else {
        outward
    };
    chosen
        .into_iter()
        .take(crate::gossip::MAX_LISTEN_ADDRS)
        .collect()
}

/// The host part of a remote address, for grouping log lines.
fn remote_host(addr: &Multiaddr) -> String {
    addr.iter()
        .find_map(|p| match p {
            Protocol::Ip4(ip) => Some(ip.to_string()),
            Protocol::Ip6(ip) => Some(ip.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| addr.to_string())
}
