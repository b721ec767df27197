//! Configuration of a peer: data, validated once before anything starts.
//!
//! Every knob has a documented default in its `Default` impl; the command
//! line (`src/main.rs`) fills a [`NodeConfig`] and [`NodeConfig::validate`]
//! rejects nonsense with a message naming the flag, before any file is
//! created or port bound.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::chunk::{DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};
use crate::gossip::GossipConfigError;
use crate::net::NetConfig;

/// The API address a peer listens on unless told otherwise: loopback only,
/// because the API has no authentication and is meant for local clients.
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:7070";

/// Where the S3 endpoint listens unless told otherwise.
pub const DEFAULT_S3_ADDR: &str = "127.0.0.1:7072";

/// The S3 endpoint's settings.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// Where it listens (port 0 picks a free one).
    pub addr: SocketAddr,
    /// The domain for virtual-hosted-style requests, if any.
    pub domain: Option<String>,
    /// How long a multipart upload may stay open before it is aborted and
    /// its parts freed (default 7 days).
    pub upload_expiry: Duration,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            addr: DEFAULT_S3_ADDR
                .parse()
                .expect("the default S3 address is a valid socket address"),
            domain: None,
            upload_expiry: Duration::from_secs(7 * 24 * 60 * 60),
        }
    }
}

/// The API URL clients use unless told otherwise.
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:7070";

/// The data directory used when none is given: `$XDG_DATA_HOME/shoal`, else
/// `~/.local/share/shoal`, else `./shoal-data`.
pub fn default_data_dir() -> PathBuf {
    let xdg = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty());
    let home = std::env::var_os("HOME").filter(|v| !v.is_empty());
    match (xdg, home) {
        (Some(xdg), _) => PathBuf::from(xdg).join("shoal"),
        (None, Some(home)) => PathBuf::from(home).join(".local/share/shoal"),
        (None, None) => PathBuf::from("shoal-data"),
    }
}

/// A byte size that could not be read; each carries the text as given
/// (trimmed), or the suffix at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// No number where the size should start.
    #[error("expected a size such as 1048576 or 1MiB, got {0:?}")]
    NotANumber(String),
    /// A suffix other than the binary ones.
    #[error("unknown size suffix {0:?} (use KiB, MiB or GiB)")]
    UnknownSuffix(String),
    /// More bytes than a `u64` holds.
    #[error("size {0:?} is too large")]
    TooLarge(String),
}

/// Parses a byte size: a plain number of bytes, or one with a binary suffix
/// (`KiB`, `MiB`, `GiB`; `K`, `M`, `G` mean the same).
///
/// # Errors
/// [`SizeError`] saying what was expected.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| SizeError::NotANumber(text.to_owned()))?;
    let multiplier: u64 = match suffix.trim() {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        other => return Err(SizeError::UnknownSuffix(other.to_owned())),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| SizeError::TooLarge(text.to_owned()))
}

/// Everything a running peer needs to know.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Where the peer keeps its identity, database and chunk segments.
    pub data_dir: PathBuf,
    /// Where the local HTTP API listens (default [`DEFAULT_API_ADDR`]).
    /// Bound beyond loopback, every request needs an access token.
    pub api_addr: SocketAddr,
    /// Whether `/metrics` and `/health` answer without a token even when
    /// the API needs one (for monitors and load balancers).
    pub metrics_public: bool,
    /// Whether the API needs tokens even on loopback (a machine shared
    /// with other users, who can reach loopback too).
    pub require_tokens: bool,
    /// The certificate chain and private key (PEM files) to serve the API,
    /// the page and S3 over HTTPS with; plain HTTP without.
    pub tls: Option<TlsFiles>,
    /// The S3 endpoint, or `None` when it is off.
    pub s3: Option<S3Config>,
    /// The chunk size for new files (default 1 MiB). Files already stored
    /// keep the chunk size they were written with.
    pub chunk_size: u32,
    /// The local store.
    pub store: StoreConfig,
    /// The data path.
    pub transfer: TransferConfig,
    /// How many copies are kept, and how many must answer.
    pub replication: ReplicationConfig,
    /// How the peers repair what is missing or damaged.
    pub healing: HealingConfig,
    /// The swarm: listen and join addresses, discovery, secret, timings.
    pub net: NetConfig,
    /// How long shutdown waits for in-flight requests before dropping them
    /// unacknowledged (default 10 s).
    pub shutdown_grace: Duration,
}

/// Where the TLS certificate chain and its key are.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, PEM.
    pub cert: PathBuf,
    /// The private key, PEM.
    pub key: PathBuf,
}

/// Settings of the local chunk and manifest store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// A segment file is closed to new chunks once it reaches this size
    /// (default 256 MiB): large enough that a peer holds few files, small
    /// enough that a fully deleted segment returns its space promptly.
    pub segment_bytes: u64,
    /// redb's page cache (default 64 MiB). Only the index lives in redb, so
    /// a small cache covers it; chunk bytes go through the OS page cache.
    pub cache_bytes: usize,
    /// How long a chunk no file references is kept before its space is
    /// reclaimed (default 15 min). An interrupted upload releases its
    /// chunks, so this grace is how long it can be resumed without sending
    /// them again; it also covers reads still streaming a file just deleted.
    pub gc_grace: Duration,
    /// How often unreferenced chunks and old tombstones are collected
    /// (default 60 s).
    pub gc_interval: Duration,
    /// How long the record of a deleted file is kept (default 24 h), so that
    /// a stale copy of the file cannot come back while replicas catch up.
    pub tombstone_ttl: Duration,
    /// How often the chunk references held here are checked against the
    /// manifests, to drop those of versions that are gone (default 5 min;
    /// a restarted peer runs its first audit within a minute).
    /// References younger than this are not checked yet.
    pub audit_interval: Duration,
}

/// Settings of the put and get paths.
#[derive(Debug, Clone)]
pub struct TransferConfig {
    /// Chunks of one upload being hashed and stored at once (default 4).
    pub upload_window: usize,
    /// Chunks of one download fetched ahead of the one being sent (default
    /// 8), from several peers at once.
    pub read_ahead: usize,
    /// Chunks being hashed and stored at once across all uploads (default
    /// 16): with the window, this bounds the memory uploads can take to
    /// about this many chunks, however many clients there are.
    pub max_chunks_in_flight: usize,
    /// How long another peer may take to start answering a request
    /// (`--peer-timeout`, default 2 s). Past it the peer is taken for hung
    /// and passed over for the next on the key's preference list. On a LAN
    /// an answer takes milliseconds; the margin covers a peer whose disk is
    /// busy syncing a batch.
    pub peer_timeout: Duration,
    /// The slowest transfer still taken for a working peer, in bytes per
    /// second (`--min-transfer-rate`, default 1 MiB/s): a request moving
    /// data may take `peer_timeout` plus its size at this rate, so a 16 MiB
    /// chunk to a loaded peer gets 18 s while a hung peer is given up on
    /// after 2 s for a small question.
    pub min_transfer_rate: u64,
}

/// How the swarm gets back to N copies by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealingConfig {
    /// How long a member may stay dead before it leaves the ring and its
    /// data is copied to the peers that now own it (default 10 min: longer
    /// than a reboot, so a restart moves nothing; hinted copies cover the
    /// writes it misses meanwhile).
    pub rereplicate_after: Duration,
    /// How often each peer checks that the owners of what it holds have it,
    /// and copies what they lack (default 30 s).
    pub repair_interval: Duration,
    /// How often each peer re-reads and re-hashes everything it stores
    /// (default 24 h); `shoal scrub` starts one at once.
    pub scrub_interval: Duration,
    /// Copies a repair sends at once (default 1). Every peer holding
    /// copies repairs at once, so the swarm sends several at a time anyway;
    /// on two cores, one per peer kept foreground gets at 0.76–0.85 of
    /// their unloaded rate while repair copied at 98–104 MB/s, and four
    /// per peer at 0.58–0.62 and 113–117 MB/s.
    pub repair_parallelism: usize,
    /// How long after a copy is first found lacking it is looked at again
    /// and, still lacking, sent (default 2 s). A put sends its copies to
    /// every owner at once, so an owner can lack a chunk for a moment
    /// without anything being wrong; waiting this long keeps repair from
    /// sending a second copy of what is already on its way. A pass that
    /// found something lacking is followed by another this long after it.
    pub second_look_after: Duration,
}

impl Default for HealingConfig {
    fn default() -> Self {
        HealingConfig {
            rereplicate_after: Duration::from_secs(10 * 60),
            repair_interval: Duration::from_secs(30),
            scrub_interval: Duration::from_secs(24 * 60 * 60),
            repair_parallelism: 1,
            second_look_after: Duration::from_secs(2),
        }
    }
}

/// How many copies of every chunk and manifest are kept (N), how many must
/// be durable before a write is acknowledged (W), and how many manifest
/// copies a read consults (R). With R + W > N, every read overlaps the
/// last acknowledged write on at least one peer, so a get after a
/// successful put sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// N, copies kept (default 3).
    pub replicas: usize,
    /// W, copies durable before a write is acknowledged (default 2).
    pub write_quorum: usize,
    /// R, manifest copies a read consults (default 2).
    pub read_quorum: usize,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            replicas: 3,
            write_quorum: 2,
            read_quorum: 2,
        }
    }
}

impl ReplicationConfig {
    /// Checks that the quorums are possible and overlap.
    ///
    /// # Errors
    /// [`ConfigError::Replicas`], [`ConfigError::QuorumRange`] or
    /// [`ConfigError::QuorumOverlap`], naming the flags at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ReplicationConfig {
            replicas: n,
            write_quorum: w,
            read_quorum: r,
        } = *self;
        if !(1..=MAX_REPLICAS).contains(&n) {
            return Err(ConfigError::Replicas { n });
        }
        if !(1..=n).contains(&w) || !(1..=n).contains(&r) {
            return Err(ConfigError::QuorumRange { n, w, r });
        }
        if r + w <= n {
            return Err(ConfigError::QuorumOverlap { n, w, r });
        }
        Ok(())
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            data_dir: PathBuf::from("shoal-data"),
            api_addr: DEFAULT_API_ADDR
                .parse()
                .expect("the default API address is a valid socket address"),
            metrics_public: false,
            require_tokens: false,
            tls: None,
            s3: Some(S3Config::default()),
            chunk_size: DEFAULT_CHUNK_SIZE,
            store: StoreConfig::default(),
            transfer: TransferConfig::default(),
            replication: ReplicationConfig::default(),
            healing: HealingConfig::default(),
            net: NetConfig::default(),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            segment_bytes: 256 * 1024 * 1024,
            cache_bytes: 64 * 1024 * 1024,
            gc_grace: Duration::from_secs(15 * 60),
            gc_interval: Duration::from_secs(60),
            tombstone_ttl: Duration::from_secs(24 * 60 * 60),
            audit_interval: Duration::from_secs(5 * 60),
        }
    }
}

impl Default for TransferConfig {
    fn default() -> Self {
        TransferConfig {
            upload_window: 16,
            read_ahead: 8,
            max_chunks_in_flight: 64,
            peer_timeout: Duration::from_secs(2),
            min_transfer_rate: 1 << 20,
        }
    }
}

/// The most copies [`ReplicationConfig::replicas`] may ask for.
const MAX_REPLICAS: usize = 16;

/// A configuration value out of range, or values that do not fit together.
/// Each message names the command-line flags at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The chunk size is outside what peers accept.
    #[error(
        "--chunk-size must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} bytes, got {chunk_size}"
    )]
    ChunkSize {
        /// The size given.
        chunk_size: u32,
    },
    /// A segment smaller than one chunk.
    #[error("--segment-size ({segment_bytes}) must be at least the chunk size ({chunk_size})")]
    SegmentSize {
        /// The segment size given.
        segment_bytes: u64,
        /// The chunk size given.
        chunk_size: u32,
    },
    /// A collection or audit period of zero.
    #[error("--gc-interval and --audit-interval must be greater than zero")]
    StoreInterval,
    /// An upload window or read-ahead of zero.
    #[error("upload window and read-ahead must be at least 1")]
    TransferWindow,
    /// A peer timeout of zero, or a transfer rate too slow to mean anything.
    #[error("--peer-timeout must be greater than zero and --min-transfer-rate at least 1KiB")]
    PeerTimeout,
    /// Fewer chunks allowed in flight overall than one upload may send.
    #[error("chunks in flight must be at least the upload window")]
    ChunksInFlight,
    /// Nowhere to listen for other peers.
    #[error("at least one --listen address is needed")]
    NoListenAddress,
    /// Failure-detector timings that do not fit together.
    #[error(transparent)]
    Gossip(#[from] GossipConfigError),
    /// A replica count outside 1 to 16.
    #[error("--replicas must be from 1 to {MAX_REPLICAS}, got {n}")]
    Replicas {
        /// N, as given.
        n: usize,
    },
    /// A quorum of zero, or larger than the replica count.
    #[error("--write-quorum ({w}) and --read-quorum ({r}) must be from 1 to --replicas ({n})")]
    QuorumRange {
        /// N, as given.
        n: usize,
        /// W, as given.
        w: usize,
        /// R, as given.
        r: usize,
    },
    /// Read and write quorums that need not overlap.
    #[error(
        "--read-quorum ({r}) plus --write-quorum ({w}) must exceed --replicas ({n}), or a read could miss the latest write"
    )]
    QuorumOverlap {
        /// N, as given.
        n: usize,
        /// W, as given.
        w: usize,
        /// R, as given.
        r: usize,
    },
    /// A repair or scrub period, or a repair parallelism, of zero.
    #[error(
        "--repair-interval, --scrub-interval and --repair-parallelism must be greater than zero"
    )]
    Healing,
}

impl NodeConfig {
    /// Checks every value against its allowed range.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&self.chunk_size) {
            return Err(ConfigError::ChunkSize {
                chunk_size: self.chunk_size,
            });
        }
        if self.store.segment_bytes < u64::from(self.chunk_size) {
            return Err(ConfigError::SegmentSize {
                segment_bytes: self.store.segment_bytes,
                chunk_size: self.chunk_size,
            });
        }
        if self.store.gc_interval.is_zero() || self.store.audit_interval.is_zero() {
            return Err(ConfigError::StoreInterval);
        }
        if self.transfer.upload_window == 0 || self.transfer.read_ahead == 0 {
            return Err(ConfigError::TransferWindow);
        }
        if self.transfer.peer_timeout.is_zero() || self.transfer.min_transfer_rate < 1024 {
            return Err(ConfigError::PeerTimeout);
        }
        if self.transfer.max_chunks_in_flight < self.transfer.upload_window {
            return Err(ConfigError::ChunksInFlight);
        }
        if self.net.listen.is_empty() {
            return Err(ConfigError::NoListenAddress);
        }
        self.net.gossip.validate()?;
        self.replication.validate()?;
        if self.healing.repair_interval.is_zero()
            || self.healing.scrub_interval.is_zero()
            || self.healing.repair_parallelism == 0
        {
            return Err(ConfigError::Healing);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        NodeConfig::default().validate().unwrap();
    }

    #[test]
    fn quorums_must_overlap_and_fit() {
        let quorum = |replicas, write_quorum, read_quorum| ReplicationConfig {
            replicas,
            write_quorum,
            read_quorum,
        };
        assert!(quorum(3, 2, 2).validate().is_ok());
        assert!(quorum(1, 1, 1).validate().is_ok());
        assert!(quorum(3, 1, 3).validate().is_ok());
        assert_eq!(
            quorum(3, 1, 2).validate(),
            Err(ConfigError::QuorumOverlap { n: 3, w: 1, r: 2 })
        );
        assert_eq!(
            quorum(3, 4, 2).validate(),
            Err(ConfigError::QuorumRange { n: 3, w: 4, r: 2 })
        );
        assert_eq!(
            quorum(0, 1, 1).validate(),
            Err(ConfigError::Replicas { n: 0 })
        );
        assert_eq!(
            quorum(17, 9, 9).validate().unwrap_err().to_string(),
            "--replicas must be from 1 to 16, got 17"
        );
    }

    #[test]
    fn sizes_parse_with_and_without_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("256K"), Ok(256 << 10));
        assert_eq!(
            parse_size("1.5MiB"),
            Err(SizeError::UnknownSuffix(".5MiB".into()))
        );
        assert_eq!(
            parse_size(" 12 parsecs"),
            Err(SizeError::UnknownSuffix("parsecs".into()))
        );
        assert_eq!(parse_size("MiB"), Err(SizeError::NotANumber("MiB".into())));
        assert_eq!(
            parse_size("99999999999999999G").unwrap_err().to_string(),
            r#"size "99999999999999999G" is too large"#
        );
    }

    #[test]
    fn out_of_range_chunk_size_is_rejected_naming_the_flag() {
        let config = NodeConfig {
            chunk_size: 10,
            ..NodeConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert_eq!(err, ConfigError::ChunkSize { chunk_size: 10 });
        assert_eq!(
            err.to_string(),
            "--chunk-size must be between 4096 and 16777216 bytes, got 10"
        );
    }

    #[test]
    fn gossip_timings_are_checked_with_the_rest() {
        let mut config = NodeConfig::default();
        config.net.gossip.probe_interval = Duration::ZERO;
        assert_eq!(
            config.validate(),
            Err(ConfigError::Gossip(GossipConfigError::Zero {
                flag: "--probe-interval"
            }))
        );
    }
}
