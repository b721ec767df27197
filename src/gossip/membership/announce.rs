//! When this peer publishes its own record, and reminders to members that
//! are held failed.
//!
//! A peer announces itself periodically so that members that missed a
//! change still converge. In a large swarm every peer announcing at the
//! base interval would flood gossipsub, so the interval stretches with the
//! swarm: each peer hears about the same number of announcements per
//! interval whatever the size.
//!
//! A member held suspect or dead that keeps speaking has missed the rumour
//! about it (across a partition, say) and cannot refute what it never
//! heard, so the rumour is repeated to it — but rate-limited, since every
//! word from it would otherwise set off a publish.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

use crate::gossip::{MemberState, Rumor};

/// Swarms up to this size announce at the base interval; larger ones
/// stretch it in proportion.
const ANNOUNCE_SCALE_MEMBERS: usize = 10;

/// How often a member that announces itself while held suspect or dead is
/// told so again, so it can refute.
const REMINDER_INTERVAL: Duration = Duration::from_secs(2);

/// The announcement timer and the reminders recently sent.
#[derive(Debug)]
pub(super) struct Announcer {
    /// The base announcement interval, for a swarm of up to
    /// [`ANNOUNCE_SCALE_MEMBERS`].
    interval: Duration,
    /// When this peer next announces itself.
    next: Instant,
    /// When each member held failed was last reminded.
    reminded: HashMap<PeerId, Instant>,
}

impl Announcer {
    /// A timer announcing every `interval` (stretched with the swarm),
    /// first at `now`.
    pub(super) fn new(interval: Duration, now: Instant) -> Self {
        Self {
            interval,
            next: now,
            reminded: HashMap::new(),
        }
    }

    /// Brings the next announcement forward to `now`.
    pub(super) fn soon(&mut self, now: Instant) {
        self.next = self.next.min(now);
    }

    /// Whether this peer should announce itself now, with `members` other
    /// members in its table; if so, the next announcement is scheduled.
    pub(super) fn due(&mut self, now: Instant, members: usize) -> bool {
        if now < self.next {
            return false;
        }
        let scale = (members + 1).div_ceil(ANNOUNCE_SCALE_MEMBERS).max(1);
        self.next = now + self.interval * scale as u32;
        true
    }

    /// The rumour that `peer` is held `state` at `incarnation`, to publish
    /// again unless it was within the last [`REMINDER_INTERVAL`]; `members`
    /// is the size of the table, which bounds how many reminders are kept.
    pub(super) fn remind(
        &mut self,
        peer: PeerId,
        state: MemberState,
        incarnation: u64,
        members: usize,
        now: Instant,
    ) -> Option<Rumor> {
        if self
            .reminded
            .get(&peer)
            .is_some_and(|at| now.saturating_duration_since(*at) < REMINDER_INTERVAL)
        {
            return None;
        }
        if self.reminded.len() > 4 * (members + 1) {
            self.reminded
                .retain(|_, at| now.saturating_duration_since(*at) < REMINDER_INTERVAL);
        }
        self.reminded.insert(peer, now);
        Some(match state {
            MemberState::Suspect => Rumor::Suspect { peer, incarnation },
            _ => Rumor::Dead { peer, incarnation },
        })
    }
}
