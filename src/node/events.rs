//! Turns changes in what the peer sees into events for the activity log:
//! members by state, and what repair and scrubbing report.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::activity::{Activity, Level};
use crate::gossip::MemberState;
use crate::heal::{Healer, RepairFigures};
use crate::net::MemberList;

/// How often repair's figures are compared with the last look.
const FIGURES_EVERY: Duration = Duration::from_secs(1);

/// Records every change of a member's state, and repair starting,
/// finishing and finding damage, until `cancel`.
pub(super) async fn activity_loop(
    activity: Activity,
    mut members: watch::Receiver<Arc<MemberList>>,
    healer: Healer,
    cancel: CancellationToken,
) {
    let mut states: HashMap<PeerId, MemberState> = HashMap::new();
    let mut repair = healer.figures();
    let mut ticks = tokio::time::interval(FIGURES_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            changed = members.changed() => {
                if changed.is_err() {
                    return;
                }
                let list = members.borrow_and_update().clone();
                member_changes(&activity, &mut states, &list);
            }
            _ = ticks.tick() => {
                let now = healer.figures();
                repair_changes(&activity, &repair, &now);
                repair = now;
            }
        }
    }
}

fn member_changes(
    activity: &Activity,
    states: &mut HashMap<PeerId, MemberState>,
    list: &MemberList,
) {
    for member in &list.members {
        let peer = member.record.peer_id;
        let short = short_id(&peer);
        let before = states.insert(peer, member.state);
        let (level, text) = match (before, member.state) {
            (None, MemberState::Alive) => (Level::Info, format!("peer {short} joined")),
            (None, state) => (Level::Info, format!("peer {short} is known, {state}")),
            (Some(a), b) if a == b => continue,
            (Some(_), MemberState::Suspect) => {
                (Level::Warning, format!("peer {short} is suspected"))
            }
            (Some(_), MemberState::Dead) if member.record.leaving => {
                (Level::Info, format!("peer {short} left the swarm"))
            }
            (Some(_), MemberState::Dead) => (Level::Warning, format!("peer {short} is dead")),
            (Some(MemberState::Dead), MemberState::Alive) => {
                (Level::Info, format!("peer {short} is back"))
            }
            (Some(_), MemberState::Alive) => (Level::Info, format!("peer {short} answered again")),
        };
        activity.record(level, text);
    }
}

fn repair_changes(activity: &Activity, before: &RepairFigures, now: &RepairFigures) {
    if before.under_replicated == 0 && now.under_replicated > 0 {
        activity.record(
            Level::Warning,
            format!(
                "repair started: {} items held here lack a copy",
                now.under_replicated
            ),
        );
    } else if before.under_replicated > 0 && now.under_replicated == 0 {
        let sent = now.bytes_sent.saturating_sub(before.bytes_sent);
        activity.record(
            Level::Info,
            format!(
                "repair done: every item held here has its copies ({sent} bytes in the last pass)"
            ),
        );
    }
    let damaged = now.damaged_found.saturating_sub(before.damaged_found);
    if damaged > 0 {
        activity.record(
            Level::Warning,
            format!("scrub found {damaged} damaged chunk copies"),
        );
    }
}

/// The last characters of a peer id, enough to tell members apart.
pub fn short_id(peer: &PeerId) -> String {
    let text = peer.to_base58();
    let start = text.len().saturating_sub(8);
    text[start..].to_owned()
}
