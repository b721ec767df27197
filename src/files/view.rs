//! Where the data path gets its placement: the member list the swarm
//! publishes, turned into a [`Placement`] and reused while it is fresh.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::dht::{Candidate, Placement};
use crate::gossip::MemberState;
use crate::net::MemberList;

/// A source of the current placement. The running peer's is
/// [`SwarmView`]; tests fix one by hand.
pub trait PlacementSource: Send + Sync + fmt::Debug {
    /// Placement over the members as this peer sees them now.
    fn placement(&self) -> Arc<Placement>;
}

/// Placement, the member list it was computed from, and when.
type CachedPlacement = (Arc<MemberList>, Instant, Arc<Placement>);

/// How long a computed placement is reused for an unchanged member list.
const PLACEMENT_FRESHNESS: Duration = Duration::from_secs(1);

/// Placement over the swarm's member list, rebuilt when the list changes
/// and at least every [`PLACEMENT_FRESHNESS`] (a down member leaves the
/// ring by the passing of time alone).
pub struct SwarmView {
    members: watch::Receiver<Arc<MemberList>>,
    replicas: usize,
    rereplicate_after: Duration,
    cached: Mutex<Option<CachedPlacement>>,
}

impl fmt::Debug for SwarmView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwarmView")
            .field("replicas", &self.replicas)
            .finish_non_exhaustive()
    }
}

impl SwarmView {
    /// A view over `members` keeping `replicas` copies; members dead for
    /// longer than `rereplicate_after` leave the ring.
    pub fn new(
        members: watch::Receiver<Arc<MemberList>>,
        replicas: usize,
        rereplicate_after: Duration,
    ) -> Self {
        SwarmView {
            members,
            replicas,
            rereplicate_after,
            cached: Mutex::new(None),
        }
    }
}

impl PlacementSource for SwarmView {
    fn placement(&self) -> Arc<Placement> {
        let members = Arc::clone(&self.members.borrow());
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, built, placement)) = cached.as_ref()
            && Arc::ptr_eq(seen, &members)
            && built.elapsed() < PLACEMENT_FRESHNESS
        {
            return Arc::clone(placement);
        }
        let placement = Arc::new(placement_of(
            &members,
            self.replicas,
            self.rereplicate_after,
        ));
        *cached = Some((members, Instant::now(), Arc::clone(&placement)));
        placement
    }
}

/// A placement set by hand, for tests.
#[derive(Debug)]
pub struct FixedPlacement(Mutex<Arc<Placement>>);

impl FixedPlacement {
    /// A source that answers `placement` until [`FixedPlacement::set`].
    pub fn new(placement: Placement) -> Self {
        FixedPlacement(Mutex::new(Arc::new(placement)))
    }

    /// Answers `placement` from now on.
    pub fn set(&self, placement: Placement) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(placement);
    }
}

impl PlacementSource for FixedPlacement {
    fn placement(&self) -> Arc<Placement> {
        Arc::clone(&self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Placement over a member list: members alive or suspect are up; members
/// dead for less than `rereplicate_after` keep their place on the ring but
/// are down; members dead for longer, and members leaving for good (this
/// one included), are off the ring.
fn placement_of(members: &MemberList, replicas: usize, rereplicate_after: Duration) -> Placement {
    let local = (!members.local.leaving).then_some(Candidate {
        peer: members.local.peer_id,
        capacity_bytes: members.local.capacity_bytes,
        up: true,
    });
    let others = members.members.iter().filter_map(|m| {
        if m.record.leaving {
            return None;
        }
        let up = matches!(m.state, MemberState::Alive | MemberState::Suspect);
        (up || m.since.elapsed() < rereplicate_after).then_some(Candidate {
            peer: m.record.peer_id,
            capacity_bytes: m.record.capacity_bytes,
            up,
        })
    });
    Placement::new(local.into_iter().chain(others), replicas)
}
