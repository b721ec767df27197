//! `GET /v1/invite`: the line that lets a new peer join this swarm.

use std::net::IpAddr;

use axum::Json;
use axum::extract::State;
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

use super::ApiState;
use super::dto::InviteResponse;
use super::error::ApiError;
use crate::gossip::MemberState;
use crate::invite::Invite;

/// The invite: the swarm's secret and the addresses of this peer and of
/// every member alive, those reachable from other machines first.
pub(super) async fn invite(
    State(state): State<ApiState>,
) -> Result<Json<InviteResponse>, ApiError> {
    let network = state
        .network
        .status()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let mut addrs: Vec<Multiaddr> = network.listen.clone();
    for member in &network.members {
        if member.state != MemberState::Alive || member.record.leaving {
            continue;
        }
        let id = Protocol::P2p(member.record.peer_id);
        addrs.extend(member.record.listen.iter().map(|a| {
            if matches!(a.iter().last(), Some(Protocol::P2p(_))) {
                a.clone()
            } else {
                a.clone().with(id.clone())
            }
        }));
    }
    // Loopback addresses reach nothing from another machine; they are
    // kept only for a swarm that has no other (all on one machine).
    let (mut reachable, local): (Vec<Multiaddr>, Vec<Multiaddr>) =
        addrs.into_iter().partition(|a| !is_loopback(a));
    if reachable.is_empty() {
        reachable = local;
    }
    let invite = Invite::new(state.info.secret.clone(), reachable);
    if invite.addrs.is_empty() {
        return Err(ApiError::Unavailable(
            "this peer knows no address another peer could join through".into(),
        ));
    }
    Ok(Json(InviteResponse {
        invite: invite.to_string(),
        addrs: invite.addrs.iter().map(ToString::to_string).collect(),
        secret_fingerprint: invite.secret.as_ref().map(|s| s.fingerprint()),
    }))
}

fn is_loopback(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => IpAddr::V4(ip).is_loopback(),
        Protocol::Ip6(ip) => IpAddr::V6(ip).is_loopback(),
        Protocol::Dns(host) | Protocol::Dns4(host) | Protocol::Dns6(host) => host == "localhost",
        _ => false,
    })
}
