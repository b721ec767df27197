//! What monitors ask: `GET /metrics` for Prometheus and `GET /health` for
//! load balancers and alerting.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::error::ApiError;
use crate::gossip::MemberState;
use crate::metrics::{self, MemberCounts, Snapshot};
use crate::net::NetworkStatus;

/// `GET /metrics`: every metric in the Prometheus text format.
pub(super) async fn metrics(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let stats = state.files.store_stats().await?;
    let network = network_status(&state).await?;
    let repair = state.healer.figures();
    let snapshot = Snapshot {
        members: member_counts(&network),
        under_replicated_items: repair.under_replicated,
        hinted_items: stats.hinted_chunks.saturating_add(repair.held_records),
        repair_bytes: repair.bytes_sent,
        repair_queue_bytes: repair.queued_bytes,
        scrub_damaged: repair.damaged_found,
        store_bytes: stats.bytes,
        store_chunks: stats.chunks,
        disk_free_bytes: state.files.disk_free(),
    };
    let text = state.metrics.render(snapshot);
    Ok(([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response())
}

/// `GET /health`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealthResponse {
    /// `ok`; `degraded` (every item can be read, but some lack copies);
    /// or `unavailable` (answered with 503).
    pub status: String,
    /// Why it is not `ok`, one line each.
    pub reasons: Vec<String>,
    /// Members this peer sees alive, itself included.
    pub members_alive: u64,
    /// Answers a read needs.
    pub read_quorum: usize,
    /// Items held here that an up owner lacked in the last repair pass.
    pub under_replicated_items: u64,
}

/// `GET /health`: `200` while this peer can serve reads of everything it
/// knows of, `503` with the reasons otherwise.
///
/// Unavailable: the peer is shutting down or leaving; fewer members are
/// alive than a read needs answers; as many members are down (and still
/// own their share, before `--rereplicate-after`) as keys have copies, so
/// some keys may have every copy on them; or the last scrub found a
/// damaged copy that no other peer could replace (a chunk with no intact
/// copy known).
/// Items that lack a copy on some owner can still be read, so they make
/// the answer `degraded`, with `200`.
pub(super) async fn health(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let network = network_status(&state).await?;
    let counts = member_counts(&network);
    let alive = counts.alive;
    // As the reads themselves do: a key kept on fewer peers than the read
    // quorum (a swarm smaller than it) is read from all of them. Members
    // that left for good hold nothing.
    let left = network
        .members
        .iter()
        .filter(|m| m.state == MemberState::Dead && m.record.leaving)
        .count() as u64;
    let members = (alive + counts.suspect + counts.dead).saturating_sub(left);
    let cluster = state.files.cluster();
    let placement = cluster.placement();
    let copies = usize::try_from(members)
        .unwrap_or(usize::MAX)
        .min(cluster.replication().replicas);
    let read_quorum = cluster.read_quorum(copies);
    let repair = state.healer.figures();
    let mut unavailable = Vec::new();
    if state.info.stop.is_cancelled() {
        unavailable.push("this peer is shutting down".to_owned());
    }
    if network.local.leaving {
        unavailable.push("this peer is leaving the swarm".to_owned());
    }
    if alive < read_quorum as u64 {
        unavailable.push(format!(
            "{alive} members are alive and a read needs answers from {read_quorum}"
        ));
    }
    if placement.copies() > 0 && placement.down_count() >= placement.copies() {
        unavailable.push(format!(
            "{} members keep their share while down and keys have {} copies: items kept only on them cannot be read until one returns",
            placement.down_count(),
            placement.copies()
        ));
    }
    if let Some(scrub) = state.healer.last_scrub()
        && scrub.unrepaired > 0
    {
        unavailable.push(format!(
            "the last scrub found {} damaged chunk copies no other peer could replace",
            scrub.unrepaired
        ));
    }
    let mut reasons = unavailable.clone();
    if repair.under_replicated > 0 {
        reasons.push(format!(
            "{} items held here lack a copy on an owner (repair is under way)",
            repair.under_replicated
        ));
    }
    let (code, status) = match (unavailable.is_empty(), reasons.is_empty()) {
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        (true, false) => (StatusCode::OK, "degraded"),
        (true, true) => (StatusCode::OK, "ok"),
    };
    let body = HealthResponse {
        status: status.to_owned(),
        reasons,
        members_alive: alive,
        read_quorum,
        under_replicated_items: repair.under_replicated,
    };
    Ok((code, Json(body)).into_response())
}

async fn network_status(state: &ApiState) -> Result<NetworkStatus, ApiError> {
    state
        .network
        .status()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))
}

/// Members by state, this peer counted alive.
fn member_counts(network: &NetworkStatus) -> MemberCounts {
    let mut counts = MemberCounts {
        alive: 1,
        ..MemberCounts::default()
    };
    for member in &network.members {
        match member.state {
            MemberState::Alive => counts.alive += 1,
            MemberState::Suspect => counts.suspect += 1,
            MemberState::Dead => counts.dead += 1,
        }
    }
    counts
}
