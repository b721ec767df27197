//! An in-memory swarm for tests: N real stores (redb and segment files in
//! temporary directories) joined by a [`Transport`] that can inject the
//! faults a LAN shows: a peer that is down, one that hangs (a stopped
//! process: requests never answer), one that answers late, and one that
//! serves damaged chunk copies.
//!
//! Requests go through the real replica code ([`super::serve`]), so tests
//! of the coordinator and the healer exercise everything but the sockets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use libp2p::PeerId;

use super::failure::PeerError;
use super::transport::Transport;
use crate::config::StoreConfig;
use crate::protocol::{DataRequest, DataResponse};
use crate::store::Store;

/// A fault a peer of the in-memory swarm shows to everyone asking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answers normally.
    Healthy,
    /// Cannot be reached: every request fails at once.
    Down,
    /// Never answers: every request runs into its deadline.
    Hung,
    /// Answers after this long (or not at all, past the deadline).
    Late(Duration),
    /// Answers, but every chunk it serves to other peers has a flipped
    /// byte (as a disk or a link that damages data would).
    Damaged,
}

struct MemoryPeer {
    id: PeerId,
    store: Store,
    fault: Mutex<Fault>,
    /// Requests that reached this peer, whatever its fault made of them.
    asked: std::sync::atomic::AtomicU64,
    _dir: tempfile::TempDir,
}

/// N peers with real stores and injectable faults.
pub struct MemorySwarm {
    peers: Vec<MemoryPeer>,
}

impl std::fmt::Debug for MemorySwarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySwarm")
            .field("peers", &self.peers.len())
            .finish()
    }
}

impl MemorySwarm {
    /// `n` healthy peers with empty stores.
    ///
    /// # Panics
    /// If a store cannot be opened (a test environment problem).
    pub fn new(n: usize) -> Arc<Self> {
        let peers = (0..n)
            .map(|_| {
                let dir = tempfile::tempdir().expect("a temporary directory for a test store");
                let (store, writer) = Store::open(dir.path(), &StoreConfig::default())
                    .expect("a fresh test store opens");
                writer.spawn().expect("the test store's writer starts");
                MemoryPeer {
                    id: PeerId::random(),
                    store,
                    fault: Mutex::new(Fault::Healthy),
                    asked: std::sync::atomic::AtomicU64::new(0),
                    _dir: dir,
                }
            })
            .collect();
        Arc::new(MemorySwarm { peers })
    }

    /// Every peer's id, in creation order.
    pub fn ids(&self) -> Vec<PeerId> {
        self.peers.iter().map(|p| p.id).collect()
    }

    /// The store of `peer`.
    ///
    /// # Panics
    /// If `peer` is not in the swarm.
    pub fn store(&self, peer: &PeerId) -> &Store {
        &self.peer(peer).store
    }

    /// Makes `peer` show `fault` from now on.
    pub fn set_fault(&self, peer: &PeerId, fault: Fault) {
        *self
            .peer(peer)
            .fault
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = fault;
    }

    /// How many requests have reached `peer` so far.
    pub fn requests_to(&self, peer: &PeerId) -> u64 {
        self.peer(peer)
            .asked
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A transport sending from `from`.
    pub fn transport(self: &Arc<Self>, from: PeerId) -> Arc<dyn Transport> {
        Arc::new(MemoryTransport {
            swarm: Arc::clone(self),
            from,
        })
    }

    /// Closes every store.
    pub async fn shutdown(&self) {
        for peer in &self.peers {
            peer.store.shutdown().await;
        }
    }

    fn peer(&self, id: &PeerId) -> &MemoryPeer {
        self.peers
            .iter()
            .find(|p| p.id == *id)
            .expect("tests only name peers of their swarm")
    }

    /// The fault `id` shows, counting the request that meets it.
    fn fault(&self, id: &PeerId) -> Option<Fault> {
        self.peers.iter().find(|p| p.id == *id).map(|p| {
            p.asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            *p.fault.lock().unwrap_or_else(|e| e.into_inner())
        })
    }
}

#[derive(Debug)]
struct MemoryTransport {
    swarm: Arc<MemorySwarm>,
    from: PeerId,
}

impl Transport for MemoryTransport {
    fn local_peer(&self) -> PeerId {
        self.from
    }

    fn send(
        &self,
        peer: PeerId,
        request: DataRequest,
        deadline: Duration,
    ) -> BoxFuture<'_, Result<DataResponse, PeerError>> {
        async move {
            let Some(fault) = self.swarm.fault(&peer) else {
                return Err(PeerError::Unreachable("not a member".into()));
            };
            match fault {
                Fault::Down => return Err(PeerError::Unreachable("connection refused".into())),
                Fault::Hung => {
                    tokio::time::sleep(deadline).await;
                    return Err(PeerError::Timeout(deadline));
                }
                Fault::Late(delay) if delay >= deadline => {
                    tokio::time::sleep(deadline).await;
                    return Err(PeerError::Timeout(deadline));
                }
                Fault::Late(delay) => tokio::time::sleep(delay).await,
                Fault::Healthy | Fault::Damaged => {}
            }
            let store = self.swarm.store(&peer);
            let answer = if peer == self.from {
                super::serve_local(store, request).await
            } else {
                super::serve(store, self.from, request).await
            };
            // A store re-hashes what it reads for itself, so only other
            // peers are served damaged bytes.
            Ok(match (fault, answer) {
                (Fault::Damaged, DataResponse::Chunk(data)) if peer != self.from => {
                    let mut bad = data.to_vec();
                    if let Some(first) = bad.first_mut() {
                        *first ^= 0xff;
                    }
                    DataResponse::Chunk(bad.into())
                }
                (_, answer) => answer,
            })
        }
        .boxed()
    }
}
