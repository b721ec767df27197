//! The swarm: libp2p transport, discovery and the membership protocol's
//! messaging.
//!
//! One task owns the libp2p `Swarm` (see `event_loop`); the rest of the
//! program talks to it through [`Network`], a cheap-to-clone handle that
//! sends typed commands and reads the member list it publishes. The
//! membership rules themselves live in [`crate::gossip`]; this module only
//! carries their messages and their timers.

mod behaviour;
mod data;
mod discovery;
mod event_loop;
mod framing;
pub(crate) use framing::WireMessage;
mod join;
mod membership;
mod publish;
mod quiet;
#[cfg(test)]
mod tests;
mod transport;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use prometheus_client::registry::Registry;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use crate::gossip::{GossipConfig, Member, PeerFigures, PeerRecord};
use crate::protocol::{DataRequest, DataResponse};
use crate::secret::ClusterSecret;

/// How many data requests this peer has in flight to any one peer at once.
/// The receiving side allows more streams per connection than this, so a
/// well-behaved peer never has its requests dropped for being too many.
pub const MAX_REQUESTS_PER_PEER: usize = 8;

/// How many data requests from other peers may wait for the local replica
/// at once before more are refused as unavailable.
const INBOUND_QUEUE: usize = 1024;

/// The swarm port a peer listens on unless told otherwise.
pub const DEFAULT_SWARM_PORT: u16 = 7071;

/// The listen address used unless told otherwise: every IPv4 interface.
pub const DEFAULT_LISTEN_ADDR: &str = "/ip4/0.0.0.0/tcp/7071";

/// The default for [`NetConfig::data_exchange_timeout`].
pub const DEFAULT_DATA_EXCHANGE_TIMEOUT: Duration = Duration::from_secs(20);

/// How to take part in the swarm.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Where to accept connections.
    pub listen: Vec<Multiaddr>,
    /// Peers to join through, with or without a `/p2p/<id>` suffix.
    pub join: Vec<Multiaddr>,
    /// Whether to discover peers on the LAN by mDNS.
    pub mdns: bool,
    /// The cluster secret, if the swarm has one.
    pub secret: Option<ClusterSecret>,
    /// Failure-detector timings.
    pub gossip: GossipConfig,
    /// The longest any data exchange with another peer may take; after it
    /// libp2p drops the exchange and frees its request slot (see
    /// [`Network::request`]). A peer that hangs with its connections open
    /// holds its slots until then, so this bounds how long it can block
    /// requests to it. Callers set their own deadlines, no longer than
    /// this, and stop waiting at them; the slot stays held until the
    /// exchange ends. Default 20 s ([`DEFAULT_DATA_EXCHANGE_TIMEOUT`]).
    pub data_exchange_timeout: Duration,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            listen: vec![
                Multiaddr::empty()
                    .with(libp2p::multiaddr::Protocol::Ip4(
                        std::net::Ipv4Addr::UNSPECIFIED,
                    ))
                    .with(libp2p::multiaddr::Protocol::Tcp(DEFAULT_SWARM_PORT)),
            ],
            join: Vec::new(),
            mdns: true,
            secret: None,
            gossip: GossipConfig::default(),
            data_exchange_timeout: DEFAULT_DATA_EXCHANGE_TIMEOUT,
        }
    }
}

/// Where the swarm starts from: what a restarted peer remembers.
#[derive(Debug, Clone, Default)]
pub struct Bootstrap {
    /// This peer's incarnation for this run, higher than any before.
    pub incarnation: u64,
    /// Members known from earlier runs, with their last known addresses.
    pub known: Vec<(PeerId, Vec<Multiaddr>)>,
    /// The API address to announce.
    pub api: Option<SocketAddr>,
}

/// Why the swarm could not start or was left.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A listen address could not be used.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
    /// The swarm could not be built.
    #[error("cannot start the swarm: {0}")]
    Build(#[from] BuildError),
    /// No `--join` address led into a swarm.
    #[error("cannot join the swarm: {0}")]
    Join(String),
    /// The swarm's task has stopped.
    #[error("the swarm has stopped")]
    Closed,
}

/// The part of the swarm libp2p refused to build, with its reason in its
/// own words (libp2p's error types stay inside this module).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The TCP, noise and yamux stack.
    #[error("transport: {0}")]
    Transport(String),
    /// The DNS resolver (reading the system's resolver configuration).
    #[error("DNS: {0}")]
    Dns(std::io::Error),
    /// Gossipsub's settings.
    #[error("behaviour: failed to build behaviour: gossipsub configuration: {0}")]
    GossipsubConfig(String),
    /// Gossipsub itself.
    #[error("behaviour: failed to build behaviour: gossipsub: {0}")]
    Gossipsub(&'static str),
    /// LAN discovery (its sockets and interface watcher).
    #[error("behaviour: failed to build behaviour: mDNS: {0}")]
    Mdns(std::io::Error),
    /// The subscription to the membership topic.
    #[error("cannot subscribe to membership rumours: {0}")]
    Subscribe(String),
}

/// Why a data request to another peer got no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RequestError {
    /// No answer within the caller's deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The peer could not be reached, or the exchange broke off.
    #[error("{0}")]
    Failed(String),
    /// The swarm's task has stopped.
    #[error("the swarm has stopped")]
    Closed,
}

/// A data request from another peer, waiting for the local replica's
/// answer. Dropping `reply` unanswered tells the asker the peer is
/// unavailable.
#[derive(Debug)]
pub struct InboundRequest {
    /// Who asks.
    pub peer: PeerId,
    /// What it asks.
    pub request: DataRequest,
    /// Where the answer goes.
    pub reply: oneshot::Sender<DataResponse>,
}

/// The member list as the event loop last published it: changes when a
/// member joins, changes state or moves, not on every message heard.
#[derive(Debug, Clone)]
pub struct MemberList {
    /// This peer's record.
    pub local: PeerRecord,
    /// The other members.
    pub members: Vec<Member>,
}

/// A moment's full view of the swarm, for status reports.
#[derive(Debug, Clone)]
pub struct NetworkStatus {
    /// This peer's record.
    pub local: PeerRecord,
    /// The addresses this peer listens on, each with its `/p2p/` suffix so
    /// it can be given to `--join` as it is.
    pub listen: Vec<Multiaddr>,
    /// The other members.
    pub members: Vec<Member>,
    /// Which members have an open connection to this peer.
    pub connected: Vec<PeerId>,
    /// When the view was taken, to turn `Member::last_heard` into an age.
    pub taken: Instant,
}

/// A request to the event loop.
#[derive(Debug)]
enum Command {
    Join {
        addrs: Vec<Multiaddr>,
        known: Vec<(PeerId, Vec<Multiaddr>)>,
        reply: oneshot::Sender<Result<usize, Vec<(String, String)>>>,
    },
    Status {
        reply: oneshot::Sender<NetworkStatus>,
    },
    SetUsage {
        capacity_bytes: u64,
        used_bytes: u64,
        figures: Box<PeerFigures>,
    },
    Leave {
        reply: oneshot::Sender<()>,
    },
    AnnounceLeaving,
    Request {
        peer: PeerId,
        request: Box<DataRequest>,
        reply: oneshot::Sender<Result<DataResponse, RequestError>>,
        /// Held until libp2p reports the exchange's outcome, so requests
        /// abandoned by their caller still count against the peer's cap.
        slot: tokio::sync::OwnedSemaphorePermit,
    },
}

/// The handle through which the program uses the swarm.
#[derive(Clone, Debug)]
pub struct Network {
    commands: mpsc::Sender<Command>,
    members: watch::Receiver<Arc<MemberList>>,
    local_peer: PeerId,
    /// One semaphore per peer, bounding the requests in flight to it.
    in_flight: Arc<Mutex<HashMap<PeerId, Arc<Semaphore>>>>,
}

impl Network {
    /// Builds the swarm, binds every listen address and starts the event
    /// loop as a task, with libp2p's metrics in `registry`. Joining is a separate step ([`Network::join`]).
    /// Other peers' data requests arrive on the returned receiver, for the
    /// local replica to answer.
    ///
    /// # Errors
    /// [`NetError::Listen`] if an address cannot be bound (in use, not
    /// local, not TCP), [`NetError::Build`] if libp2p refuses the setup.
    pub fn start(
        key: Keypair,
        config: &NetConfig,
        bootstrap: &Bootstrap,
        registry: &mut Registry,
    ) -> Result<
        (
            Network,
            mpsc::Receiver<InboundRequest>,
            tokio::task::JoinHandle<()>,
        ),
        NetError,
    > {
        let local_peer = key.public().to_peer_id();
        let mut swarm = transport::build_swarm(key, config, registry)?;
        let metrics = libp2p::metrics::Metrics::new(registry);
        for addr in &config.listen {
            ensure_port_free(addr)?;
            swarm
                .listen_on(addr.clone())
                .map_err(|e| NetError::Listen {
                    addr: addr.clone(),
                    reason: listen_reason(&e),
                })?;
        }
        let record = PeerRecord {
            peer_id: local_peer,
            incarnation: bootstrap.incarnation,
            listen: Vec::new(),
            api: bootstrap.api,
            capacity_bytes: 0,
            used_bytes: 0,
            leaving: false,
            extensions: Default::default(),
        };
        let (commands_tx, commands_rx) = mpsc::channel(256);
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        let (members_tx, members_rx) = watch::channel(Arc::new(MemberList {
            local: record.clone(),
            members: Vec::new(),
        }));
        let event_loop = event_loop::EventLoop::new(
            swarm,
            config.gossip.clone(),
            record,
            bootstrap.known.clone(),
            commands_rx,
            members_tx,
            inbound_tx,
        )?
        .with_metrics(metrics);
        let task = tokio::spawn(event_loop.run());
        Ok((
            Network {
                commands: commands_tx,
                members: members_rx,
                local_peer,
                in_flight: Arc::default(),
            },
            inbound_rx,
            task,
        ))
    }

    /// This peer's id.
    pub fn local_peer(&self) -> PeerId {
        self.local_peer
    }

    /// Joins the swarm through `addrs` (given by the user) or `known`
    /// (remembered from earlier runs), whichever answers first, and merges
    /// the member table it answers with. Waits at most `timeout`.
    ///
    /// Returns how many members the answering peer listed.
    ///
    /// # Errors
    /// [`NetError::Join`] naming each address tried and why it failed.
    pub async fn join(
        &self,
        addrs: Vec<Multiaddr>,
        known: Vec<(PeerId, Vec<Multiaddr>)>,
        timeout: Duration,
    ) -> Result<usize, NetError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Join {
            addrs,
            known,
            reply,
        })
        .await?;
        match tokio::time::timeout(timeout, answer).await {
            Err(_) => Err(NetError::Join(format!(
                "no answer within {}",
                humantime::format_duration(timeout)
            ))),
            Ok(Err(_)) => Err(NetError::Closed),
            Ok(Ok(Ok(members))) => Ok(members),
            Ok(Ok(Err(failures))) => Err(NetError::Join(
                failures
                    .iter()
                    .map(|(addr, why)| format!("{addr}: {why}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
        }
    }

    /// A fresh view of the swarm.
    ///
    /// # Errors
    /// [`NetError::Closed`] once the swarm has stopped.
    pub async fn status(&self) -> Result<NetworkStatus, NetError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Status { reply }).await?;
        answer.await.map_err(|_| NetError::Closed)
    }

    /// The member list, updated whenever membership changes.
    pub fn members(&self) -> watch::Receiver<Arc<MemberList>> {
        self.members.clone()
    }

    /// Sets the capacity and usage this peer announces.
    ///
    /// # Errors
    /// [`NetError::Closed`] once the swarm has stopped.
    pub async fn set_usage(
        &self,
        capacity_bytes: u64,
        used_bytes: u64,
        figures: PeerFigures,
    ) -> Result<(), NetError> {
        self.send(Command::SetUsage {
            capacity_bytes,
            used_bytes,
            figures: Box::new(figures),
        })
        .await
    }

    /// Asks `peer` a data question and waits for the answer at most
    /// `timeout` from this call, all waiting included. At most
    /// [`MAX_REQUESTS_PER_PEER`] requests are in flight to one peer,
    /// counting those whose callers gave up but whose exchange libp2p has
    /// not ended yet (see [`NetConfig::data_exchange_timeout`]); more wait
    /// their turn, and that wait counts against the same `timeout`.
    ///
    /// # Errors
    /// [`RequestError::Timeout`] if `timeout` passed while waiting for a
    /// slot or for the answer, [`RequestError::Failed`] if `peer` could not
    /// be reached or the exchange broke off, [`RequestError::Closed`] once
    /// the swarm has stopped.
    pub async fn request(
        &self,
        peer: PeerId,
        request: DataRequest,
        timeout: Duration,
    ) -> Result<DataResponse, RequestError> {
        let slots = {
            let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(
                map.entry(peer)
                    .or_insert_with(|| Arc::new(Semaphore::new(MAX_REQUESTS_PER_PEER))),
            )
        };
        // One deadline for every wait. Each step is cancel-safe: a slot not
        // yet acquired, or a command not yet sent, is simply dropped, and a
        // command sent keeps its slot until libp2p ends the exchange.
        let exchange = async {
            let slot = slots
                .acquire_owned()
                .await
                .map_err(|_| RequestError::Closed)?;
            let (reply, answer) = oneshot::channel();
            self.commands
                .send(Command::Request {
                    peer,
                    request: Box::new(request),
                    reply,
                    slot,
                })
                .await
                .map_err(|_| RequestError::Closed)?;
            answer.await.map_err(|_| RequestError::Closed)?
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| RequestError::Timeout(timeout))?
    }

    /// Tells every member that this peer is leaving for good, so they take
    /// it off the ring; it keeps running (and serving) until
    /// [`Network::leave`].
    ///
    /// # Errors
    /// [`NetError::Closed`] once the swarm has stopped.
    pub async fn announce_leaving(&self) -> Result<(), NetError> {
        self.send(Command::AnnounceLeaving).await
    }

    /// Tells the swarm this peer is leaving, then stops the event loop.
    pub async fn leave(&self) {
        let (reply, answer) = oneshot::channel();
        if self.send(Command::Leave { reply }).await.is_ok() {
            let _ = answer.await;
        }
    }

    async fn send(&self, command: Command) -> Result<(), NetError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| NetError::Closed)
    }
}

/// Fails if another process listens on `addr`'s TCP port. libp2p binds
/// listeners with `SO_REUSEPORT`, so two peers could otherwise share a port
/// silently and split each other's connections; a plain bind cannot share.
fn ensure_port_free(addr: &Multiaddr) -> Result<(), NetError> {
    use libp2p::multiaddr::Protocol;
    let mut ip = None;
    let mut port = None;
    for protocol in addr.iter() {
        match protocol {
            Protocol::Ip4(v4) => ip = Some(std::net::IpAddr::V4(v4)),
            Protocol::Ip6(v6) => ip = Some(std::net::IpAddr::V6(v6)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    let (Some(ip), Some(port)) = (ip, port) else {
        return Ok(());
    };
    if port == 0 {
        return Ok(());
    }
    match std::net::TcpListener::bind((ip, port)) {
        Ok(_) => Ok(()),
        Err(e) => Err(NetError::Listen {
            addr: addr.clone(),
            reason: listen_reason(&libp2p::TransportError::Other(e)),
        }),
    }
}

fn listen_reason(error: &libp2p::TransportError<std::io::Error>) -> String {
    match error {
        libp2p::TransportError::MultiaddrNotSupported(_) => {
            "not a TCP address (use /ip4/ADDR/tcp/PORT or /ip6/ADDR/tcp/PORT)".into()
        }
        libp2p::TransportError::Other(e) => match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "address already in use (is another peer running? choose another port with --listen)"
                    .into()
            }
            std::io::ErrorKind::AddrNotAvailable => "no local interface has that address".into(),
            std::io::ErrorKind::PermissionDenied => "permission denied".into(),
            _ => e.to_string(),
        },
    }
}
