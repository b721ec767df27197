//! The local HTTP API: how clients (the CLI, scripts, curl) use a peer.
//!
//! Routes (all JSON bodies are documented in the README):
//!
//! | method | path | what |
//! |---|---|---|
//! | `PUT` | `/v1/files/{name}` | upload, streamed body; `x-shoal-blake3` optionally carries the client's hash of the content |
//! | `GET` | `/v1/files/{name}` | download, streamed; `Range` (one range) and `If-Match` supported |
//! | `HEAD` | `/v1/files/{name}` | size and hash in headers |
//! | `PATCH` | `/v1/files/{name}` | set the mode and time (`x-shoal-mode`, `x-shoal-mtime`) without sending the content |
//! | `DELETE` | `/v1/files/{name}` | delete |
//! | `GET` | `/v1/files?prefix=&after=&limit=` | list by prefix, paged |
//! | `GET` | `/v1/manifests/{name}` | the manifest with each chunk's replicas |
//! | `GET` | `/v1/status` | the peer's identity, members and store figures |
//! | `GET` | `/v1/invite` | the line that lets another peer join (it carries the cluster secret) |
//! | `GET`, `POST` | `/v1/tokens` | list, create access tokens |
//! | `DELETE` | `/v1/tokens/{name}` | remove an access token |
//! | `GET` | `/metrics` | Prometheus metrics (see the README for each) |
//! | `GET` | `/health` | `200` while this peer can serve reads, `503` and the reasons otherwise |
//!
//! Wherever a route takes `/{name}`, the same route without it takes
//! `?name=` instead (`/v1/file?name=...`, `/v1/manifest?name=...`): URL
//! libraries collapse a path segment of `.` or `..` even when
//! percent-encoded, so only the query form carries every valid name, and it
//! is what the CLI uses.
//! An API bound beyond loopback needs a token on every request (see
//! `auth`).
//! Errors are `{"error": "..."}` with a status chosen in one place
//! (`error.rs`). This module only translates between HTTP and
//! [`crate::files`]; it never touches the store.

mod auth;
mod dto;
mod error;
mod guard;
mod invite;
mod monitor;
mod query;
mod range;
pub(crate) use query::param as query_param;
pub(crate) use range::{RangeRequest, resolve as resolve_range};
mod routes;
mod s3_keys;
mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

/// Figures the API reports as they are.
pub use crate::files::TransferFigures;
pub use crate::heal::{HandOver, RepairFigures, ScrubReport};
/// S3 access keys as the key routes answer them.
pub use crate::s3::{KeyInfo, NewKey};
pub use auth::{CSRF_HEADER, Gate};
pub use dto::*;
pub use error::ApiError;
pub use monitor::HealthResponse;
pub use s3_keys::{CreateKey, ImportKey};
pub use tokens::CreateToken;

use crate::activity::Activity;
use crate::files::Files;
use crate::heal::Healer;
use crate::metrics::Metrics;
use crate::net::Network;
use crate::s3::AccessKeys;
use crate::tokens::AccessTokens;

/// Facts about the peer that the status route reports.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The address the API listens on.
    pub api_addr: SocketAddr,
    /// The address the S3 endpoint listens on, if it is on.
    pub s3_addr: Option<SocketAddr>,
    /// When the peer started.
    pub started: Instant,
    /// Cancelled to stop the peer (after `shoal leave` has handed over).
    pub stop: tokio_util::sync::CancellationToken,
    /// The swarm's secret, which invites carry.
    pub secret: Option<crate::secret::ClusterSecret>,
    /// Whether the API and S3 are served over HTTPS.
    pub tls: bool,
}

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct ApiState {
    files: Files,
    healer: Healer,
    network: Network,
    keys: AccessKeys,
    tokens: AccessTokens,
    info: Arc<PeerInfo>,
    metrics: Metrics,
    activity: Activity,
}

/// The parts of a peer the API serves.
#[derive(Debug)]
pub struct ApiParts {
    /// The data path.
    pub files: Files,
    /// Repair and scrubbing.
    pub healer: Healer,
    /// The swarm.
    pub network: Network,
    /// The S3 access keys.
    pub keys: AccessKeys,
    /// Who may use the API and the page (the swarm's tokens among it).
    pub gate: Gate,
    /// Facts about the peer.
    pub info: PeerInfo,
    /// Where requests are counted.
    pub metrics: Metrics,
    /// Where failed uploads are told.
    pub activity: Activity,
    /// More routes served on the same address (the web page).
    pub pages: Router,
}

/// The API's routes over a peer's `parts`.
pub fn router(parts: ApiParts) -> Router {
    let instruments = parts.metrics.instruments();
    let loopback_only = parts.info.api_addr.ip().is_loopback();
    let state = ApiState {
        files: parts.files,
        healer: parts.healer,
        network: parts.network,
        keys: parts.keys,
        tokens: parts.gate.tokens.clone(),
        info: Arc::new(parts.info),
        metrics: parts.metrics,
        activity: parts.activity,
    };
    Router::new()
        .route("/metrics", get(monitor::metrics))
        .route("/health", get(monitor::health))
        .route("/v1/status", get(routes::status))
        .route("/v1/invite", get(invite::invite))
        .route("/v1/scrub", axum::routing::post(routes::scrub))
        .route("/v1/leave", axum::routing::post(routes::leave))
        .route("/v1/files", get(routes::list))
        .route(
            "/v1/files/{*name}",
            get(routes::download)
                .head(routes::head)
                .put(routes::upload)
                .patch(routes::set_attributes)
                .delete(routes::delete),
        )
        .route(
            "/v1/file",
            get(routes::download)
                .head(routes::head)
                .put(routes::upload)
                .patch(routes::set_attributes)
                .delete(routes::delete),
        )
        .route("/v1/manifests/{*name}", get(routes::manifest))
        .route("/v1/manifest", get(routes::manifest))
        .route("/v1/s3/keys", get(s3_keys::list).post(s3_keys::create))
        .route("/v1/s3/keys/import", axum::routing::post(s3_keys::import))
        .route("/v1/s3/keys/{id}", axum::routing::delete(s3_keys::remove))
        .route("/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/v1/tokens/{*name}", axum::routing::delete(tokens::remove))
        .fallback(routes::not_found)
        // Uploads stream chunk by chunk, so their size needs no cap here.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
        .merge(parts.pages)
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(parts.gate),
            auth::require_token,
        ))
        .layer(axum::middleware::from_fn(guard::refuse_cross_site))
        .layer(axum::middleware::from_fn_with_state(
            loopback_only,
            guard::refuse_foreign_host,
        ))
        .layer(axum::middleware::from_fn_with_state(
            instruments,
            crate::metrics::track_http,
        ))
}
