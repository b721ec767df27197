//! The libp2p behaviours a peer runs, and how they are configured.

use std::time::Duration;

use libp2p::connection_limits::{self, ConnectionLimits};
use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{StreamProtocol, gossipsub, mdns, request_response};

use super::framing::FramedCodec;
use super::{BuildError, NetConfig};
use crate::gossip::{MAX_RUMOR_BYTES, Request, Response};
use crate::protocol::{DATA_PROTOCOL, DataRequest, DataResponse};

/// The membership protocol: probes, relayed probes and joins.
///
/// Every protocol name carries the wire version (here, in
/// [`DATA_PROTOCOL`] and in the rumour topic): releases that can talk to
/// each other share it, and it changes only when messages change in a way
/// an older peer cannot read. Peers that share no version cannot join each
/// other's swarm, and both sides say why (see `net::membership`).
pub const MEMBERSHIP_PROTOCOL: StreamProtocol = StreamProtocol::new("/shoal/membership/2");

/// Streams (inbound and outbound together) one connection may carry at
/// once. A peer sends at most `MAX_REQUESTS_PER_PEER` requests at a time,
/// so this leaves room for both directions; streams beyond it are dropped,
/// which caps what one peer can make this one hold in memory.
const DATA_STREAMS_PER_CONNECTION: usize = 3 * super::MAX_REQUESTS_PER_PEER;

/// Everything a peer speaks.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Caps on connections, so no peer can exhaust this one's.
    pub limits: connection_limits::Behaviour,
    /// Membership rumours.
    pub gossipsub: gossipsub::Behaviour,
    /// Direct membership exchanges.
    pub membership: request_response::Behaviour<FramedCodec<Request, Response>>,
    /// Chunks and file records.
    pub data: request_response::Behaviour<FramedCodec<DataRequest, DataResponse>>,
    /// LAN discovery, when enabled.
    pub mdns: Toggle<mdns::tokio::Behaviour>,
}

impl Behaviour {
    /// Builds the behaviours for `key`, with mDNS if `config` asks for it
    /// and data exchanges bounded by its `data_exchange_timeout`.
    ///
    /// # Errors
    /// [`BuildError`] naming the behaviour libp2p refused to build.
    pub fn new(key: &Keypair, config: &NetConfig) -> Result<Self, BuildError> {
        let limits = ConnectionLimits::default()
            .with_max_established_per_peer(Some(2))
            .with_max_pending_incoming(Some(64))
            .with_max_established_incoming(Some(1024));

        // Every member connects to every other, and publishing floods to all
        // of them, so the mesh only backs up peers not yet connected
        // directly; a small one keeps duplicate deliveries down.
        let gossip_config = gossipsub::ConfigBuilder::default()
            .heartbeat_interval(Duration::from_secs(1))
            .mesh_n(4)
            .mesh_n_low(3)
            .mesh_n_high(8)
            .mesh_outbound_min(1)
            .gossip_lazy(3)
            .history_length(3)
            .history_gossip(2)
            .flood_publish(true)
            .validation_mode(gossipsub::ValidationMode::Strict)
            .validate_messages()
            .max_transmit_size(MAX_RUMOR_BYTES + 1024)
            .build()
            .map_err(|e| BuildError::GossipsubConfig(e.to_string()))?;
        let gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossip_config,
        )
        .map_err(BuildError::Gossipsub)?;

        let membership = request_response::Behaviour::with_codec(
            FramedCodec::default(),
            [(MEMBERSHIP_PROTOCOL, request_response::ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(Duration::from_secs(10))
                .with_max_concurrent_streams(256),
        );

        let data = request_response::Behaviour::with_codec(
            FramedCodec::default(),
            [(
                StreamProtocol::new(DATA_PROTOCOL),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default()
                .with_request_timeout(config.data_exchange_timeout)
                .with_max_concurrent_streams(DATA_STREAMS_PER_CONNECTION),
        );

        let mdns = if config.mdns {
            let config = mdns::Config {
                ttl: Duration::from_secs(120),
                query_interval: Duration::from_secs(20),
                enable_ipv6: false,
            };
            Some(
                mdns::tokio::Behaviour::new(config, key.public().to_peer_id())
                    .map_err(BuildError::Mdns)?,
            )
        } else {
            None
        };

        Ok(Self {
            limits: connection_limits::Behaviour::new(limits),
            gossipsub,
            membership,
            data,
            mdns: mdns.into(),
        })
    }
}
