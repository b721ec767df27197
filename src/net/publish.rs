//! What this peer tells others and the rest of the program: membership
//! rumours over gossipsub, the member list on the `watch` channel, and the
//! listen addresses worth announcing.
//!
//! Rumours are flooded to every subscriber and validated before gossipsub
//! forwards them: a rumour without a signed source or that does not decode
//! is rejected, one that is stale or redundant is not passed on. The member
//! list is republished only when the membership's generation changes, so
//! watchers wake for joins, state changes and moves, not for every message
//! heard.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, Swarm};
use tokio::sync::watch;

use super::behaviour::Behaviour;
use super::{BuildError, MemberList};
use crate::gossip::{MAX_LISTEN_ADDRS, MEMBERSHIP_TOPIC, Membership, Rumor, Verdict};

/// The membership topic, the member list's channel and the addresses this
/// peer listens on.
pub(super) struct Publisher {
    topic: IdentTopic,
    members_tx: watch::Sender<Arc<MemberList>>,
    /// The membership generation last sent on `members_tx`.
    published_generation: Option<u64>,
    /// Peers subscribed to the membership topic.
    subscribers: HashSet<PeerId>,
    /// Every address this peer listens on, as libp2p reported them.
    listen: Vec<Multiaddr>,
}

impl Publisher {
    /// Subscribes `swarm` to the membership topic.
    ///
    /// # Errors
    /// [`BuildError::Subscribe`] if gossipsub refused the subscription.
    pub(super) fn new(
        swarm: &mut Swarm<Behaviour>,
        members_tx: watch::Sender<Arc<MemberList>>,
    ) -> Result<Self, BuildError> {
        let topic = IdentTopic::new(MEMBERSHIP_TOPIC);
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&topic)
            .map_err(|e| BuildError::Subscribe(e.to_string()))?;
        Ok(Self {
            topic,
            members_tx,
            published_generation: None,
            subscribers: HashSet::new(),
            listen: Vec::new(),
        })
    }

    /// Floods `rumor` to the swarm.
    pub(super) fn publish(&self, swarm: &mut Swarm<Behaviour>, rumor: &Rumor) {
        let data = match rumor.encode() {
            Ok(data) => data,
            Err(error) => {
                tracing::error!(%error, "cannot encode a membership rumour");
                return;
            }
        };
        match swarm
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

    /// Feeds a received rumour to the membership and tells gossipsub whether
    /// to pass it on; keeps track of who listens to rumours.
    pub(super) fn on_gossip(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        membership: &mut Membership,
        event: gossipsub::Event,
    ) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let acceptance = match (message.source, Rumor::decode(&message.data)) {
                    (Some(source), Ok(rumor)) => {
                        match membership.on_rumor(source, rumor, Instant::now()) {
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
                swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, acceptance);
            }
            gossipsub::Event::Subscribed { peer_id, .. } => {
                if self.subscribers.is_empty() {
                    membership.announce_soon(Instant::now());
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

    /// The last connection to `peer` closed: it no longer hears rumours.
    pub(super) fn disconnected(&mut self, peer: &PeerId) {
        self.subscribers.remove(peer);
    }

    /// Every address this peer listens on.
    pub(super) fn listen(&self) -> &[Multiaddr] {
        &self.listen
    }

    /// This peer listens on `address` too; the membership announces the new
    /// set.
    pub(super) fn listen_added(
        &mut self,
        membership: &mut Membership,
        address: Multiaddr,
        now: Instant,
    ) {
        if !self.listen.contains(&address) {
            self.listen.push(address);
        }
        membership.set_listen(announceable(&self.listen), now);
    }

    /// This peer no longer listens on `address`.
    pub(super) fn listen_expired(
        &mut self,
        membership: &mut Membership,
        address: &Multiaddr,
        now: Instant,
    ) {
        self.listen.retain(|a| a != address);
        membership.set_listen(announceable(&self.listen), now);
    }

    /// Sends the member list to watchers if membership changed since the
    /// last time.
    pub(super) fn publish_member_list(&mut self, membership: &Membership) {
        let generation = membership.generation();
        if self.published_generation == Some(generation) {
            return;
        }
        self.published_generation = Some(generation);
        let list = MemberList {
            local: membership.local().clone(),
            members: membership.members().cloned().collect(),
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
    chosen.into_iter().take(MAX_LISTEN_ADDRS).collect()
}
