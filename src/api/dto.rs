//! The JSON shapes of the API. Field names are a contract with scripts:
//! add fields, never rename or remove them.

use serde::{Deserialize, Serialize};

use crate::chunk::{FileAttributes, Manifest, Version, format_mode};
use crate::files::{FileReplicas, FileSummary, StoreStats, TransferFigures};
use crate::heal::{RepairFigures, ScrubReport};

/// The answer to an upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PutResponse {
    /// The file's name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// BLAKE3 of its content, hex.
    pub blake3: String,
    /// How many chunks it has.
    pub chunks: usize,
    /// The version written, as text that sorts in version order (the
    /// writer's hybrid clock, zero-padded, then its peer id): a later
    /// write of the name that wins has a greater version.
    #[serde(default)]
    pub version: String,
}

/// A file in a listing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileEntry {
    /// The file's name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// BLAKE3 of its content, hex.
    pub blake3: String,
    /// How many chunks it has.
    pub chunks: usize,
    /// When it was written, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Its permission bits in octal (`0644`), if it was put with them.
    #[serde(default)]
    pub mode: Option<String>,
    /// Its modification time in decimal seconds since the Unix epoch
    /// (`1700000000.123456789`), if it was put with one.
    #[serde(default)]
    pub mtime: Option<String>,
}

/// A page of a listing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListResponse {
    /// The files, in name order.
    pub files: Vec<FileEntry>,
    /// If more files match, pass this as `after` to get the next page.
    pub next: Option<String>,
}

/// One chunk in a manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkStat {
    /// Position in the file, from 0.
    pub index: usize,
    /// BLAKE3 of the chunk, hex.
    pub blake3: String,
    /// MD5 of the chunk, hex.
    pub md5: String,
    /// Size in bytes.
    pub size: u32,
    /// Peer ids that confirm holding the chunk now.
    pub replicas: Vec<String>,
}

/// A file's manifest as the API reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatResponse {
    /// The file's name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// BLAKE3 of its content, hex; for a composed file, the digest of its
    /// chunk list instead (see `composed`).
    pub blake3: String,
    /// Whether the file was assembled from the chunks of others (an S3
    /// multipart upload) without reading them, so `blake3` digests its
    /// chunk list: a reader checks each chunk, not the whole.
    #[serde(default)]
    pub composed: bool,
    /// Whether the file is small enough that its bytes are kept in its
    /// manifest; its one chunk is then held wherever the manifest is.
    #[serde(default)]
    pub inline: bool,
    /// The largest chunk's size (every chunk but the last has it, unless
    /// the file is composed).
    pub chunk_size: u32,
    /// When it was written, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Its permission bits in octal (`0644`), if it was put with them.
    #[serde(default)]
    pub mode: Option<String>,
    /// Its modification time in decimal seconds since the Unix epoch
    /// (`1700000000.123456789`), if it was put with one.
    #[serde(default)]
    pub mtime: Option<String>,
    /// The write's version.
    pub version: Version,
    /// Peer ids that confirm holding this version of the manifest now.
    pub manifest_replicas: Vec<String>,
    /// The chunks in file order.
    pub chunks: Vec<ChunkStat>,
}

/// The replication settings a peer runs with.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ReplicationStatus {
    /// N: copies of every chunk and manifest.
    pub replicas: usize,
    /// W: copies durable before a write is acknowledged.
    pub write_quorum: usize,
    /// R: manifest copies a read consults.
    pub read_quorum: usize,
}

/// A member of the swarm as this peer sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberStatus {
    /// Its peer id.
    pub peer_id: String,
    /// `alive`, `suspect` or `dead`.
    pub state: String,
    /// Whether this entry is the answering peer itself.
    #[serde(default)]
    pub this_peer: bool,
    /// Its incarnation: raised each time it restarts or refutes a rumour.
    #[serde(default)]
    pub incarnation: u64,
    /// Where it listens for other peers.
    #[serde(default)]
    pub addrs: Vec<String>,
    /// Its HTTP API address, as it announced it.
    #[serde(default)]
    pub api: Option<String>,
    /// Milliseconds since this peer last had direct word from it (a probe
    /// answer, an announcement, a connection); absent for this peer itself
    /// and for members never heard from directly.
    #[serde(default)]
    pub last_heard_ms: Option<u64>,
    /// Seconds it has been in its current state.
    #[serde(default)]
    pub state_for_s: u64,
    /// Whether this peer has a connection open to it.
    #[serde(default)]
    pub connected: bool,
    /// Bytes it can hold, as it announced.
    #[serde(default)]
    pub capacity_bytes: u64,
    /// Bytes it uses, as it announced.
    #[serde(default)]
    pub used_bytes: u64,
}

/// Store figures in a status report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreStatus {
    /// Chunks stored here.
    pub chunks: u64,
    /// Bytes of chunk data stored here.
    pub bytes: u64,
    /// Live files whose manifests are stored here.
    pub files: u64,
    /// Segment files.
    pub segments: u64,
    /// Bytes of disk used by the store.
    pub disk_bytes: u64,
    /// Chunk copies kept for an owner that was down (hinted handoff).
    #[serde(default)]
    pub hinted_chunks: u64,
    /// Bytes of chunks some file version still uses.
    #[serde(default)]
    pub referenced_bytes: u64,
    /// Bytes of chunks no version uses any more, awaiting collection once
    /// `--gc-grace` has passed.
    #[serde(default)]
    pub unreferenced_bytes: u64,
    /// File versions holding chunks here (one per version and chunk copy
    /// holder); versions known to be superseded hold none.
    #[serde(default)]
    pub references: u64,
}

/// The answer to `GET /v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusResponse {
    /// This peer's id.
    pub peer_id: String,
    /// shoal's version.
    pub version: String,
    /// The API address.
    pub api: String,
    /// The S3 endpoint's address, if it is on.
    #[serde(default)]
    pub s3: Option<String>,
    /// Whether the API and S3 are served over HTTPS.
    #[serde(default)]
    pub tls: bool,
    /// libp2p listen addresses, each ending in `/p2p/<peer id>`, ready for
    /// another peer's `--join`.
    pub listen: Vec<String>,
    /// Seconds since the peer started.
    pub uptime_s: u64,
    /// The members of the swarm, this peer included.
    pub members: Vec<MemberStatus>,
    /// How many copies the swarm keeps and how many must answer.
    pub replication: ReplicationStatus,
    /// What this peer sent and received coordinating puts and gets.
    pub transfer: TransferFigures,
    /// What repair found and moved (re-replication, hinted handoff,
    /// rebalancing).
    #[serde(default)]
    pub repair: RepairFigures,
    /// What the last scrub found, if one ran since the peer started.
    #[serde(default)]
    pub last_scrub: Option<ScrubReport>,
    /// What the local store holds.
    pub store: StoreStatus,
}

/// `GET /v1/overview`'s answer: the web page's verdict and figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OverviewResponse {
    /// `ok`, `warn` or `bad`.
    pub level: String,
    /// The verdict, one sentence.
    pub headline: String,
    /// What else to know, one line each.
    pub details: Vec<String>,
    /// Bytes stored, counted once (not per copy).
    pub stored_bytes: u64,
    /// Bytes the swarm can still take at its copy count.
    pub free_bytes: u64,
    /// The copy count.
    pub copies: usize,
}

/// `GET /v1/invite`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InviteResponse {
    /// The line for `shoal node --invite`. It carries the cluster secret.
    pub invite: String,
    /// The addresses it names.
    pub addrs: Vec<String>,
    /// The secret's fingerprint (safe to show), if the swarm has a secret.
    pub secret_fingerprint: Option<String>,
}

/// An error answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, in one line.
    pub error: String,
}

impl From<&Manifest> for PutResponse {
    fn from(m: &Manifest) -> Self {
        PutResponse {
            name: m.name.to_string(),
            size: m.size,
            blake3: m.blake3.to_hex(),
            chunks: m.chunks.len(),
            version: m.version.to_string(),
        }
    }
}

impl From<&FileSummary> for FileEntry {
    fn from(f: &FileSummary) -> Self {
        FileEntry {
            name: f.name.to_string(),
            size: f.size,
            blake3: f.blake3.to_hex(),
            chunks: usize::try_from(f.chunks).unwrap_or(usize::MAX),
            created_ms: f.created_ms,
            mode: f.attributes.checked().mode.map(format_mode),
            mtime: f.attributes.checked().mtime.map(|t| t.to_string()),
        }
    }
}

impl StatResponse {
    /// The report for `manifest` with the peers holding it and its chunks.
    pub fn new(manifest: &Manifest, replicas: &FileReplicas) -> Self {
        let attributes = FileAttributes::of(&manifest.extensions);
        StatResponse {
            name: manifest.name.to_string(),
            size: manifest.size,
            blake3: manifest.blake3.to_hex(),
            composed: manifest.is_composed(),
            inline: manifest.inline().is_some(),
            chunk_size: manifest.chunk_size,
            created_ms: manifest.created_ms,
            mode: attributes.mode.map(format_mode),
            mtime: attributes.mtime.map(|t| t.to_string()),
            version: manifest.version.clone(),
            manifest_replicas: replicas.manifest.iter().map(|r| r.to_base58()).collect(),
            chunks: replicas
                .chunks
                .iter()
                .enumerate()
                .map(|(index, p)| ChunkStat {
                    index,
                    blake3: p.chunk.hash.to_hex(),
                    md5: p.chunk.md5.to_hex(),
                    size: p.chunk.size,
                    replicas: p.replicas.iter().map(|r| r.to_base58()).collect(),
                })
                .collect(),
        }
    }
}

impl From<StoreStats> for StoreStatus {
    fn from(s: StoreStats) -> Self {
        StoreStatus {
            chunks: s.chunks,
            bytes: s.bytes,
            files: s.files,
            segments: s.segments,
            disk_bytes: s.disk_bytes,
            hinted_chunks: s.hinted_chunks,
            referenced_bytes: s.referenced_bytes,
            unreferenced_bytes: s.unreferenced_bytes,
            references: s.references,
        }
    }
}
