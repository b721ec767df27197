//! A swarm of coordinators for tests: N peers of an in-memory swarm, each
//! with its own data path over a shared, hand-set view of who is up.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use libp2p::PeerId;

use super::{Cluster, Files, FilesError, FixedPlacement};
use crate::chunk::{Blake3Hash, FileName, Manifest};
use crate::config::{ReplicationConfig, TransferConfig};
use crate::dht::{Candidate, Placement, chunk_position};
use crate::replica::memory::{Fault, MemorySwarm};
use crate::replica::{Deadlines, ReplicaClient};

/// How long a test peer may take to start answering: short, so hung peers
/// cost tests little, long enough for a store's sync on a busy machine.
pub const TEST_PEER_TIMEOUT: Duration = Duration::from_millis(1500);

/// N coordinators over an in-memory swarm.
pub struct TestSwarm {
    /// The peers' stores and faults.
    pub swarm: Arc<MemorySwarm>,
    /// The peers, in the order `files(i)` and `cluster(i)` use.
    pub ids: Vec<PeerId>,
    /// The view every peer shares.
    pub view: Arc<FixedPlacement>,
    down: std::sync::Mutex<Vec<PeerId>>,
    clusters: Vec<Cluster>,
    files: Vec<Files>,
}

impl TestSwarm {
    /// `n` healthy peers with 3 replicas, W = R = 2, and `chunk_size`.
    pub fn new(n: usize, chunk_size: u32) -> Self {
        let swarm = MemorySwarm::new(n);
        let ids = swarm.ids();
        let view = Arc::new(FixedPlacement::new(placement(&ids, &[])));
        let deadlines = Deadlines {
            first_byte: TEST_PEER_TIMEOUT,
            min_rate: 64 << 20,
        };
        let clusters: Vec<Cluster> = ids
            .iter()
            .map(|id| {
                let client = ReplicaClient::new(swarm.transport(*id), deadlines);
                Cluster::new(client, view.clone(), ReplicationConfig::default())
            })
            .collect();
        let files = ids
            .iter()
            .zip(&clusters)
            .map(|(id, cluster)| {
                Files::new(
                    swarm.store(id).clone(),
                    cluster.clone(),
                    chunk_size,
                    TransferConfig::default(),
                    tokio_util::task::TaskTracker::new(),
                )
            })
            .collect();
        TestSwarm {
            swarm,
            ids,
            view,
            down: std::sync::Mutex::new(Vec::new()),
            clusters,
            files,
        }
    }

    /// The data path of peer `i`.
    pub fn files(&self, i: usize) -> &Files {
        &self.files[i]
    }

    /// The cluster (client and view) of peer `i`.
    pub fn cluster(&self, i: usize) -> &Cluster {
        &self.clusters[i]
    }

    /// Takes `peer` down: unreachable, and down in everyone's view.
    pub fn kill(&self, peer: PeerId) {
        self.swarm.set_fault(&peer, Fault::Down);
        let mut down = self.down.lock().unwrap();
        down.push(peer);
        self.view.set(placement(&self.ids, &down));
    }

    /// Brings `peer` back up, healthy, in everyone's view.
    pub fn revive(&self, peer: PeerId) {
        self.swarm.set_fault(&peer, Fault::Healthy);
        let mut down = self.down.lock().unwrap();
        down.retain(|p| *p != peer);
        self.view.set(placement(&self.ids, &down));
    }

    /// The owners of chunk `hash` in ring order.
    pub fn chunk_owners(&self, hash: &Blake3Hash) -> Vec<PeerId> {
        let all_up = placement(&self.ids, &[]);
        all_up.plan(chunk_position(hash)).owners
    }

    /// The peers whose stores hold chunk `hash`.
    pub async fn holders(&self, hash: Blake3Hash) -> Vec<PeerId> {
        let mut holders = Vec::new();
        for id in &self.ids {
            if self.swarm.store(id).has_chunks(vec![hash]).await.unwrap()[0] {
                holders.push(*id);
            }
        }
        holders
    }

    /// Puts `content` as `name` through peer `i`.
    pub async fn put(&self, i: usize, name: &str, content: &[u8]) -> Result<Manifest, FilesError> {
        let pieces: Vec<Result<Bytes, String>> = content
            .chunks(1000)
            .map(|p| Ok(Bytes::copy_from_slice(p)))
            .collect();
        self.files[i]
            .put(
                FileName::new(name).unwrap(),
                futures::stream::iter(pieces),
                None,
            )
            .await
    }

    /// Deletes `name` through peer `i` and waits for the notices that
    /// follow a delete to reach every peer.
    pub async fn delete(&self, i: usize, name: &str) -> Result<(), FilesError> {
        self.files[i].delete(&FileName::new(name).unwrap()).await?;
        self.settle().await;
        Ok(())
    }

    /// The whole content of `name` read through peer `i`.
    pub async fn get(&self, i: usize, name: &str) -> Result<Vec<u8>, FilesError> {
        let files = &self.files[i];
        let manifest = files.manifest(&FileName::new(name).unwrap()).await?;
        if manifest.size == 0 {
            return Ok(Vec::new());
        }
        let end = manifest.size - 1;
        let sources = files.locate(&manifest, 0, end).await?;
        let parts: Vec<Bytes> = files
            .read_range(manifest, sources, 0, end)
            .try_collect()
            .await?;
        Ok(parts.concat())
    }

    /// Waits for the background work of every peer's data path.
    pub async fn settle(&self) {
        for files in &self.files {
            files.tasks.close();
            files.tasks.wait().await;
            files.tasks.reopen();
        }
    }
}

/// Placement over `ids` (equal capacity) with `down` marked down.
fn placement(ids: &[PeerId], down: &[PeerId]) -> Placement {
    Placement::new(
        ids.iter().map(|id| Candidate {
            peer: *id,
            capacity_bytes: 1 << 40,
            up: !down.contains(id),
        }),
        3,
    )
}

/// `len` bytes of content that differ with `seed`, with no two chunks
/// alike (a xorshift sequence), so each chunk lands on its own owners.
pub fn content(len: usize, seed: u8) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(seed).wrapping_mul(0xff51_afd7_ed55_8ccd);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}
