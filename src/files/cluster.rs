//! The swarm as the data path and the healer see it: the typed client to
//! every replica, the current placement, the quorum sizes, and each key's
//! preference list.
//!
//! **Sloppy quorums.** A key's preference list is its owners in ring order,
//! then the up peers after them (stand-ins). A write goes to the first N
//! *usable* peers of that list (up, and not passed over for having let a
//! request time out a moment ago), a stand-in taking the place of each
//! owner that is not usable and keeping its copy with a hint naming that
//! owner; a peer that fails is replaced by the next on the list; the write
//! is acknowledged once W of them hold it durably, owners or not. A chunk
//! is immutable and found by asking every member, so a stand-in's durable
//! copy is as good for a later read as an owner's; manifests are read from
//! the same list, so a reader with the same view finds them there too. The
//! healer hands every stand-in copy back to its owners once they are up.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use libp2p::PeerId;

use super::error::FilesError;
use super::view::PlacementSource;
use crate::config::ReplicationConfig;
use crate::dht::{KeyPlan, Placement};
use crate::replica::{PeerFailure, ReplicaClient};

/// Where the copies of one write go first, and who takes over from a
/// peer that fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteTargets {
    /// One entry per copy: the peer to try, and the owner it stands in for
    /// when it is not one.
    pub first: Vec<(PeerId, Option<PeerId>)>,
    /// Usable stand-ins not among `first`, in ring order.
    pub spares: VecDeque<PeerId>,
}

/// The replicas and how to reach them. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    client: ReplicaClient,
    view: Arc<dyn PlacementSource>,
    replication: ReplicationConfig,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("local_peer", &self.client.local_peer())
            .field("replication", &self.replication)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Replicas reached through `client`, placed by `view`, kept by the
    /// rules of `replication`.
    pub fn new(
        client: ReplicaClient,
        view: Arc<dyn PlacementSource>,
        replication: ReplicationConfig,
    ) -> Self {
        Cluster {
            client,
            view,
            replication,
        }
    }

    /// The typed client to every replica.
    pub fn client(&self) -> &ReplicaClient {
        &self.client
    }

    /// This peer's id.
    pub fn local_peer(&self) -> PeerId {
        self.client.local_peer()
    }

    /// The replication settings in force.
    pub fn replication(&self) -> ReplicationConfig {
        self.replication
    }

    /// Placement over the members as this peer sees them now.
    pub fn placement(&self) -> Arc<Placement> {
        self.view.placement()
    }

    /// The write quorum for a key kept on `copies` peers.
    pub fn write_quorum(&self, copies: usize) -> usize {
        self.replication.write_quorum.min(copies).max(1)
    }

    /// The read quorum for a key kept on `copies` peers.
    pub fn read_quorum(&self, copies: usize) -> usize {
        self.replication.read_quorum.min(copies).max(1)
    }

    /// Whether `peer` is up and answering.
    pub fn is_usable(&self, placement: &Placement, peer: &PeerId) -> bool {
        placement.is_up(peer) && !self.client.is_unresponsive(peer)
    }

    /// Whether this peer is the first owner of the record `name`: the
    /// one peer that does housekeeping for it (such as expiring it), so
    /// that the work is done once while that peer is up.
    pub fn is_first_owner(&self, name: &crate::chunk::FileName) -> bool {
        let plan = self
            .placement()
            .plan(crate::dht::name_position(name.as_str()));
        plan.owners.first() == Some(&self.local_peer())
    }

    /// How many of `plan`'s owners are not usable now.
    pub fn owners_unusable(&self, placement: &Placement, plan: &KeyPlan) -> usize {
        plan.owners
            .iter()
            .filter(|o| !self.is_usable(placement, o))
            .count()
    }

    /// Where a write of the key with `plan` goes: each usable owner, and a
    /// stand-in (hinted) for each owner that is not (see the module docs).
    pub fn write_targets(&self, placement: &Placement, plan: &KeyPlan) -> WriteTargets {
        let mut spares: VecDeque<PeerId> = plan
            .stand_ins
            .iter()
            .copied()
            .filter(|p| self.is_usable(placement, p))
            .collect();
        let mut first = Vec::with_capacity(plan.owners.len());
        for owner in &plan.owners {
            if self.is_usable(placement, owner) {
                first.push((*owner, None));
            } else if let Some(stand_in) = spares.pop_front() {
                first.push((stand_in, Some(*owner)));
            }
        }
        WriteTargets { first, spares }
    }

    /// The peers to read the key with `plan` from, best first: usable
    /// owners, then usable stand-ins, then, as a last resort, up peers
    /// passed over as unresponsive. A peer is passed over after one
    /// timeout, which on a loaded machine may be a slow answer rather than
    /// a hung peer; a reader that found too few copies elsewhere asks it
    /// rather than fail.
    pub fn read_order(&self, placement: &Placement, plan: &KeyPlan) -> Vec<PeerId> {
        let candidates = plan.owners.iter().chain(&plan.stand_ins).copied();
        let (usable, passed_over): (Vec<PeerId>, Vec<PeerId>) = candidates
            .filter(|p| placement.is_up(p))
            .partition(|p| !self.client.is_unresponsive(p));
        usable.into_iter().chain(passed_over).collect()
    }

    /// The up members other than those passed over as unresponsive.
    pub fn usable_members(&self, placement: &Placement) -> Vec<PeerId> {
        placement
            .up_members()
            .copied()
            .filter(|p| !self.client.is_unresponsive(p))
            .collect()
    }
}

impl FilesError {
    /// A quorum failure for `what`, summarising why each peer failed.
    pub fn not_enough_replicas(
        what: String,
        stored: usize,
        needed: usize,
        failures: &[PeerFailure],
        owners_unusable: usize,
    ) -> Self {
        let mut reasons: Vec<String> = failures.iter().map(ToString::to_string).collect();
        if owners_unusable > 0 {
            reasons.insert(
                0,
                format!("{owners_unusable} owner(s) down or not answering"),
            );
        }
        if reasons.is_empty() {
            reasons.push("no peer to ask".into());
        }
        FilesError::NotEnoughReplicas {
            what,
            stored,
            needed,
            reasons: reasons.join("; "),
            disk_full: !failures.is_empty()
                && failures
                    .iter()
                    .all(|f| f.refusal() == Some(crate::protocol::Refusal::DiskFull)),
        }
    }
}
