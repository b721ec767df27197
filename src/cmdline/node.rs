//! `shoal node`'s flags and the peer configuration they make.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use libp2p::Multiaddr;
use shoal::config::{
    self, DEFAULT_API_ADDR, DEFAULT_S3_ADDR, HealingConfig, NodeConfig, ReplicationConfig,
    S3Config, StoreConfig, TransferConfig,
};
use shoal::gossip::GossipConfig;
use shoal::invite::{Invite, MAX_INVITE_LEN};
use shoal::net::{DEFAULT_LISTEN_ADDR, NetConfig};
use shoal::secret::{ClusterSecret, SECRET_ENV, STORED_SECRET_FILE};

#[derive(Args)]
pub struct NodeArgs {
    /// Where the peer keeps its identity, database and chunks (created if missing).
    #[arg(long, env = "SHOAL_DATA", value_name = "DIR", default_value_os_t = config::default_data_dir())]
    data: PathBuf,
    /// Address for the HTTP API and the web page. On loopback (the
    /// default) they are open to this machine; on any other address every
    /// request needs an access token (`shoal token create`).
    #[arg(long, env = "SHOAL_API_ADDR", value_name = "ADDR", default_value = DEFAULT_API_ADDR)]
    api: SocketAddr,
    /// Serve /metrics and /health without a token even when the API needs
    /// one, for monitors and load balancers.
    #[arg(long)]
    metrics_public: bool,
    /// Need access tokens even when the API listens on loopback: on a
    /// machine shared with other users, they can reach loopback too.
    #[arg(long)]
    require_tokens: bool,
    /// Serve the API, the page and S3 over HTTPS with this certificate
    /// chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Address for the S3 endpoint, or `off` (port 0 picks a free one).
    #[arg(long, env = "SHOAL_S3_ADDR", value_name = "ADDR|off", default_value = DEFAULT_S3_ADDR, value_parser = parse_s3_addr)]
    s3: S3Addr,
    /// Also answer virtual-hosted-style S3 requests (`bucket.DOMAIN`).
    #[arg(long, value_name = "DOMAIN")]
    s3_domain: Option<String>,
    /// How long an S3 multipart upload may stay open before it is aborted
    /// and its parts freed.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = humantime::parse_duration)]
    s3_upload_expiry: Duration,
    /// Chunk size for new files.
    #[arg(long, value_name = "BYTES", default_value = "1MiB", value_parser = parse_u32_size)]
    chunk_size: u32,
    /// Size at which a segment file stops taking new chunks.
    #[arg(long, value_name = "BYTES", default_value = "256MiB", value_parser = config::parse_size)]
    segment_size: u64,
    /// How long a chunk no file uses is kept before its space is reclaimed.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = humantime::parse_duration)]
    gc_grace: Duration,
    /// How often unused chunks and old deletion records are collected.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    gc_interval: Duration,
    /// How often the chunk references this peer holds are checked, to free
    /// the chunks of files deleted while it was down.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    audit_interval: Duration,
    /// How long the record of a deleted file is kept.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = humantime::parse_duration)]
    tombstone_ttl: Duration,
    /// How long shutdown waits for in-flight requests.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    shutdown_grace: Duration,
    /// Where to accept connections from other peers (repeatable).
    #[arg(long, value_name = "MULTIADDR", default_value = DEFAULT_LISTEN_ADDR, value_parser = parse_multiaddr)]
    listen: Vec<Multiaddr>,
    /// A member to join the swarm through, e.g. /ip4/192.168.1.10/tcp/7071
    /// (repeatable; a /p2p/<peer id> suffix is optional).
    #[arg(long, value_name = "MULTIADDR", value_parser = parse_multiaddr)]
    join: Vec<Multiaddr>,
    /// Do not discover peers on the LAN by mDNS.
    #[arg(long)]
    no_mdns: bool,
    /// File holding the cluster secret (see `shoal keygen`); the
    /// SHOAL_SECRET environment variable may carry the secret itself instead.
    #[arg(long, env = "SHOAL_SECRET_FILE", value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// Join the swarm an invite (from `shoal invite`) names, with its
    /// secret, which is then kept in the data directory for restarts. `-`
    /// reads it from standard input, which keeps it out of the process
    /// list.
    // Parsed after clap, whose errors would repeat the line, secret and all.
    #[arg(
        long,
        env = "SHOAL_INVITE",
        value_name = "LINE",
        hide_env_values = true
    )]
    invite: Option<String>,
    /// How often this peer probes one other member.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration)]
    probe_interval: Duration,
    /// How long a probe waits for an answer before asking other members to try.
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = humantime::parse_duration)]
    probe_timeout: Duration,
    /// The shortest time a suspected member has to refute before it is
    /// declared dead (an unconfirmed suspicion lasts three times as long).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration)]
    suspicion_timeout: Duration,
    /// Copies kept of every chunk and manifest (N); use the same value on
    /// every peer.
    #[arg(long, value_name = "N", default_value_t = 3)]
    replicas: usize,
    /// Copies that must be durable before a put or delete is acknowledged (W).
    #[arg(long, value_name = "W", default_value_t = 2)]
    write_quorum: usize,
    /// Manifest copies a get consults (R); R + W must exceed N.
    #[arg(long, value_name = "R", default_value_t = 2)]
    read_quorum: usize,
    /// How long a member may stay dead before its data is copied to the
    /// peers that take over its share (longer than a reboot).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    rereplicate_after: Duration,
    /// How often this peer checks that the owners of what it holds have it.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    repair_interval: Duration,
    /// How often this peer re-hashes everything it stores (`shoal scrub`
    /// starts a scrub at once).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = humantime::parse_duration)]
    scrub_interval: Duration,
    /// Copies each peer's repair sends at once (more copies faster, on
    /// machines with cores to spare for foreground work).
    #[arg(long, value_name = "N", default_value_t = 1)]
    repair_parallelism: usize,
    /// How long another peer may take to start answering before it is
    /// taken for hung and the next peer is tried.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    peer_timeout: Duration,
    /// The slowest transfer (bytes per second) still taken for a working
    /// peer: a request moving data may take --peer-timeout plus its size at
    /// this rate.
    #[arg(long, value_name = "BYTES", default_value = "1MiB", value_parser = config::parse_size)]
    min_transfer_rate: u64,
    /// How often this peer announces itself (stretched in swarms of over ten).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    announce_interval: Duration,
}

fn parse_multiaddr(text: &str) -> Result<Multiaddr, String> {
    let addr: Multiaddr = text
        .trim()
        .parse()
        .map_err(|e| format!("{e} (expected a multiaddr such as /ip4/192.168.1.10/tcp/7071)"))?;
    let has_tcp = addr
        .iter()
        .any(|p| matches!(p, libp2p::multiaddr::Protocol::Tcp(_)));
    if !has_tcp {
        return Err("shoal peers speak TCP: give an address such as /ip4/192.168.1.10/tcp/7071 or /dns4/host/tcp/7071".into());
    }
    Ok(addr)
}

/// Where the S3 endpoint listens, if anywhere.
#[derive(Clone, Copy, Debug)]
struct S3Addr(Option<SocketAddr>);

fn parse_s3_addr(text: &str) -> Result<S3Addr, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(S3Addr(None));
    }
    text.parse()
        .map(|addr| S3Addr(Some(addr)))
        .map_err(|_| format!("{text:?} is not an address such as 127.0.0.1:7072, or `off`"))
}

fn parse_u32_size(text: &str) -> Result<u32, String> {
    let size = config::parse_size(text).map_err(|e| e.to_string())?;
    u32::try_from(size).map_err(|_| format!("{text:?} is too large"))
}

impl NodeArgs {
    /// The peer's configuration, with the cluster secret read.
    ///
    /// # Errors
    /// If the cluster secret cannot be read.
    pub fn into_config(self) -> Result<NodeConfig> {
        let invite = match self.invite.as_deref() {
            Some("-") => Some(read_invite_from_stdin()?),
            Some(text) => Some(text.to_owned()),
            None => None,
        };
        let invite = invite
            .as_deref()
            .map(Invite::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--invite: {e}"))?;
        let secret = cluster_secret(self.secret_file.as_deref(), invite.as_ref(), &self.data)?;
        let mut join = self.join;
        join.extend(invite.into_iter().flat_map(|invite| invite.addrs));
        Ok(NodeConfig {
            data_dir: self.data,
            api_addr: self.api,
            metrics_public: self.metrics_public,
            require_tokens: self.require_tokens,
            tls: self
                .tls_cert
                .zip(self.tls_key)
                .map(|(cert, key)| config::TlsFiles { cert, key }),
            s3: self.s3.0.map(|addr| S3Config {
                addr,
                domain: self.s3_domain,
                upload_expiry: self.s3_upload_expiry,
            }),
            chunk_size: self.chunk_size,
            store: StoreConfig {
                segment_bytes: self.segment_size,
                gc_grace: self.gc_grace,
                gc_interval: self.gc_interval,
                tombstone_ttl: self.tombstone_ttl,
                audit_interval: self.audit_interval,
                ..StoreConfig::default()
            },
            shutdown_grace: self.shutdown_grace,
            transfer: TransferConfig {
                peer_timeout: self.peer_timeout,
                min_transfer_rate: self.min_transfer_rate,
                ..TransferConfig::default()
            },
            healing: HealingConfig {
                rereplicate_after: self.rereplicate_after,
                repair_interval: self.repair_interval,
                scrub_interval: self.scrub_interval,
                repair_parallelism: self.repair_parallelism,
                ..HealingConfig::default()
            },
            replication: ReplicationConfig {
                replicas: self.replicas,
                write_quorum: self.write_quorum,
                read_quorum: self.read_quorum,
            },
            net: NetConfig {
                listen: self.listen,
                join,
                mdns: !self.no_mdns,
                secret,
                gossip: GossipConfig {
                    probe_interval: self.probe_interval,
                    probe_timeout: self.probe_timeout,
                    suspicion_timeout: self.suspicion_timeout,
                    announce_interval: self.announce_interval,
                    ..GossipConfig::default()
                },
                ..NetConfig::default()
            },
        })
    }
}

/// The first line of standard input, for `--invite -`.
fn read_invite_from_stdin() -> Result<String> {
    use std::io::{BufRead, Read};
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take(MAX_INVITE_LEN as u64 + 2)
        .read_line(&mut line)
        .map_err(|e| anyhow::anyhow!("--invite -: cannot read standard input: {e}"))?;
    Ok(line)
}

/// The cluster secret from whichever of `--secret-file`, `SHOAL_SECRET`
/// and `--invite` gives one (giving several is a mistake worth stopping
/// for, since they might differ), or else the one an earlier invite left in
/// the data directory. A secret an invite brings is kept there. A data
/// directory that keeps another swarm's secret is refused: its peer belongs
/// to that swarm.
fn cluster_secret(
    file: Option<&Path>,
    invite: Option<&Invite>,
    data: &Path,
) -> Result<Option<ClusterSecret>> {
    let from_env = std::env::var(SECRET_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty());
    let given = usize::from(file.is_some())
        + usize::from(from_env.is_some())
        + usize::from(invite.is_some());
    if given > 1 {
        anyhow::bail!(
            "give the cluster secret once: --secret-file, {SECRET_ENV} or --invite, not several"
        );
    }
    let explicit = match (file, from_env, invite) {
        (Some(path), _, _) => Some((Some(ClusterSecret::read_file(path)?), "--secret-file")),
        (_, Some(text), _) => Some((Some(ClusterSecret::parse(&text, SECRET_ENV)?), SECRET_ENV)),
        (_, _, Some(invite)) => Some((invite.secret.clone(), "the invite")),
        (None, None, None) => None,
    };
    let stored = ClusterSecret::read_stored(data)?;
    match (explicit, stored) {
        (None, stored) => Ok(stored),
        (Some((Some(secret), _)), None) if invite.is_some() => {
            secret.store_in(data)?;
            Ok(Some(secret))
        }
        (Some((secret, _)), None) => Ok(secret),
        (Some((secret, _)), Some(stored)) if secret.as_ref() == Some(&stored) => Ok(secret),
        (Some((_, origin)), Some(stored)) => anyhow::bail!(
            "{} keeps the secret of another swarm (fingerprint {}) than {origin} gives: \
             this data directory belongs to that swarm; start the peer with a new --data",
            data.join(STORED_SECRET_FILE).display(),
            stored.fingerprint()
        ),
    }
}
