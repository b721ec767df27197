//! The overview: the verdict on whether the data is safe, what the swarm
//! can still hold, and every peer at a glance.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;

use super::WebState;
use super::pages::{PageResult, nav, network, peer_views, render};
use super::view::{OverviewPage, PeerView, Verdict, bytes};
use crate::api::{ApiError, OverviewResponse};
use crate::gossip::{MemberState, PeerFigures, PeerRecord};
use crate::net::NetworkStatus;

/// The swarm at a glance, for the page and for `GET /v1/overview`.
struct Summary {
    verdict: Verdict,
    /// Bytes stored, counted once.
    stored: u64,
    /// Bytes the swarm can still take at its copy count.
    free: u64,
    copies: usize,
    peers: Vec<PeerView>,
}

/// `GET /`: the verdict first, then capacity and the peers.
pub(super) async fn overview(State(state): State<WebState>) -> PageResult {
    let network = network(&state).await?;
    let summary = summarize(&state, &network);
    render(&OverviewPage {
        nav: nav(&state, "overview", &network, "/"),
        verdict: summary.verdict,
        usable_free: bytes(summary.free),
        stored_once: bytes(summary.stored),
        copies: summary.copies,
        peers: summary.peers,
    })
}

/// `GET /v1/overview`: the overview's verdict and figures as JSON, for
/// `shoal status --watch` and scripts.
pub(super) async fn overview_json(
    State(state): State<WebState>,
) -> Result<Json<OverviewResponse>, ApiError> {
    let network = state
        .network
        .status()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let summary = summarize(&state, &network);
    Ok(Json(OverviewResponse {
        level: summary.verdict.level.to_owned(),
        headline: summary.verdict.headline,
        details: summary.verdict.details,
        stored_bytes: summary.stored,
        free_bytes: summary.free,
        copies: summary.copies,
    }))
}

fn summarize(state: &WebState, network: &NetworkStatus) -> Summary {
    let peers = peer_views(state, network);
    let copies = state.files.cluster().placement().copies().max(1);
    let records: Vec<(&PeerRecord, MemberState)> =
        std::iter::once((&network.local, MemberState::Alive))
            .chain(network.members.iter().map(|m| (&m.record, m.state)))
            .collect();
    let up: Vec<PeerFigures> = records
        .iter()
        .filter(|(_, s)| *s != MemberState::Dead)
        .map(|(r, _)| r.figures().unwrap_or_default())
        .collect();
    let capacity: u64 = records
        .iter()
        .filter(|(_, s)| *s == MemberState::Alive)
        .map(|(r, _)| r.capacity_bytes.saturating_sub(r.used_bytes))
        .sum();
    let stored: u64 = up.iter().map(|f| f.stored_bytes).sum();
    Summary {
        verdict: verdict(state, &peers, &up),
        stored: stored / copies as u64,
        free: capacity / copies as u64,
        copies,
        peers,
    }
}

fn verdict(state: &WebState, peers: &[PeerView], up: &[PeerFigures]) -> Verdict {
    let cluster = state.files.cluster();
    let placement = cluster.placement();
    // The copies every file should have: N, or every member while the
    // swarm has fewer (dead ones included: their copies count once back).
    let members = peers.iter().filter(|p| p.state != "left").count();
    let wanted = cluster.replication().replicas.min(members).max(1);
    let down: Vec<&PeerView> = peers.iter().filter(|p| p.state == "dead").collect();
    // A dead peer that left the ring (after `--rereplicate-after`) has had
    // its share handed to others; one still on it holds copies nobody has
    // replaced yet.
    let awaited: Vec<&PeerView> = down
        .iter()
        .copied()
        .filter(|p| p.id.parse().is_ok_and(|id| placement.ring_share(&id) > 0.0))
        .collect();
    let suspect: Vec<&PeerView> = peers.iter().filter(|p| p.state == "suspect").collect();
    let under: u64 = up.iter().map(|f| f.under_replicated).sum();
    let queued: u64 = up.iter().map(|f| f.repair_queued_bytes).sum();
    let live_copies = placement.copies().max(1);
    let files = up
        .iter()
        .map(|f| f.files)
        .sum::<u64>()
        .div_ceil(live_copies as u64);
    let all_files = if files == 1 {
        "The one file has".to_owned()
    } else {
        format!("All {files} files have")
    };
    let names = |list: &[&PeerView]| {
        let names: Vec<String> = list.iter().map(|p| p.short.clone()).collect();
        names.join(", ")
    };
    let mut details = Vec::new();
    if let Some(rate) = repair_rate(state, up) {
        let left = if queued > 0 {
            let secs = (queued as f64 / rate).ceil() as u64;
            format!(
                ", about {} left",
                humantime::format_duration(Duration::from_secs(secs))
            )
        } else {
            String::new()
        };
        details.push(format!(
            "repair is copying at {}/s, {} queued{left}",
            bytes(rate as u64),
            bytes(queued)
        ));
    }
    let peers_are = |n: usize| {
        if n == 1 {
            "peer is".to_owned()
        } else {
            format!("{n} peers are")
        }
    };
    let (level, headline) = if awaited.len() >= wanted {
        (
            "bad",
            format!(
                "{} down ({}): files whose copies were all on them cannot be read until one returns",
                peers_are(awaited.len()),
                names(&awaited)
            ),
        )
    } else if !awaited.is_empty() && awaited.len() + 1 == wanted {
        (
            "bad",
            format!(
                "{} down ({}): files they held are at risk, with one copy left until {} back or repair copies them",
                peers_are(awaited.len()),
                names(&awaited),
                if awaited.len() == 1 {
                    "it is"
                } else {
                    "they are"
                }
            ),
        )
    } else if !awaited.is_empty() {
        (
            "warn",
            format!(
                "{} down ({}): the files {} held have {} copies until {} back or repair copies them",
                peers_are(awaited.len()),
                names(&awaited),
                if awaited.len() == 1 { "it" } else { "they" },
                wanted - awaited.len(),
                if awaited.len() == 1 {
                    "it is"
                } else {
                    "they are"
                }
            ),
        )
    } else if under > 0 {
        (
            "warn",
            format!("{under} items are short of a copy: repair is copying them"),
        )
    } else if live_copies < wanted {
        (
            "warn",
            format!("{all_files} {live_copies} copies: too few peers are alive for {wanted}"),
        )
    } else if !suspect.is_empty() {
        (
            "warn",
            format!(
                "{all_files} {live_copies} copies, but {} not answering ({})",
                if suspect.len() == 1 {
                    "a peer is"
                } else {
                    "peers are"
                },
                names(&suspect)
            ),
        )
    } else if !down.is_empty() {
        (
            "warn",
            format!(
                "{all_files} {live_copies} copies again, without {} ({})",
                if down.len() == 1 {
                    "the peer that is down"
                } else {
                    "the peers that are down"
                },
                names(&down)
            ),
        )
    } else {
        ("ok", format!("{all_files} {live_copies} copies"))
    };
    Verdict {
        level,
        headline,
        details,
    }
}

/// Bytes per second the swarm's repair copied since the last look, if it
/// copied any.
fn repair_rate(state: &WebState, up: &[PeerFigures]) -> Option<f64> {
    let total: u64 = up.iter().map(|f| f.repair_bytes_sent).sum();
    let now = Instant::now();
    let mut seen = state.repair_seen.lock().unwrap_or_else(|e| e.into_inner());
    let before = seen.replace((now, total));
    let (at, was) = before?;
    let secs = now.duration_since(at).as_secs_f64();
    (total > was && secs > 0.0).then(|| (total - was) as f64 / secs)
}
