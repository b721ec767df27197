//! The request handlers.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, MatchedPath, Path, State};
use axum::http::Uri;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{StreamExt, TryStreamExt};

use super::ApiState;
use super::dto::{
    FileEntry, ListResponse, MemberStatus, PutResponse, ReplicationStatus, StatResponse,
    StatusResponse,
};
use super::error::ApiError;
use super::query;
use super::range::{self, RangeRequest};
use crate::chunk::{
    Blake3Hash, Extensions, FileAttributes, FileName, MAX_NAME_LEN, Manifest, Mtime, Version,
    format_mode, parse_mode,
};
use crate::files::PutOptions;
use crate::gossip::{Member, MemberState};
use crate::heal::{HandOver, ScrubReport};
use crate::net::NetworkStatus;

/// The request header carrying the client's BLAKE3 of an upload's content.
pub const CONTENT_BLAKE3: HeaderName = HeaderName::from_static("x-shoal-blake3");
/// The response header carrying a file's chunk count.
pub const CHUNK_COUNT: HeaderName = HeaderName::from_static("x-shoal-chunks");
/// The response header carrying the version a write wrote, or a read
/// returned, as text that sorts in version order.
pub const VERSION: HeaderName = HeaderName::from_static("x-shoal-version");
/// The header carrying a file's permission bits, in octal (`0644`): sent
/// with an upload to record them, returned with a download.
pub const FILE_MODE: HeaderName = HeaderName::from_static("x-shoal-mode");
/// The header carrying a file's modification time in decimal seconds since
/// the Unix epoch (`1700000000.123456789`): sent with an upload to record
/// it, returned with a download.
pub const FILE_MTIME: HeaderName = HeaderName::from_static("x-shoal-mtime");

/// The mode and modification time an upload's headers give, each optional.
fn attributes_sent(headers: &HeaderMap) -> Result<FileAttributes, ApiError> {
    let text = |name: &HeaderName| -> Result<Option<&str>, ApiError> {
        headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map_err(|_| ApiError::BadRequest(format!("{name} is not text")))
            })
            .transpose()
    };
    let mode = text(&FILE_MODE)?
        .map(parse_mode)
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("{FILE_MODE}: {e}")))?;
    let mtime = text(&FILE_MTIME)?
        .map(Mtime::parse)
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("{FILE_MTIME}: {e}")))?;
    Ok(FileAttributes { mode, mtime })
}

fn version_header(version: &Version) -> HeaderValue {
    HeaderValue::from_str(&version.to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// Listings return at most this many files per page.
const MAX_LIST_LIMIT: usize = 10_000;
/// Files per page when the client does not say.
const DEFAULT_LIST_LIMIT: usize = 1000;

/// The file name a request is about: the tail of `/v1/files/{name}`, or the
/// `name` query parameter of `/v1/file?name=...`. The query form exists
/// because URL libraries and proxies collapse a path segment of `.` or `..`
/// (even percent-encoded), so a path cannot carry every valid name. Either
/// way, a name that is not valid UTF-8 is refused, never patched up.
pub(super) struct NameArg(FileName);

impl<S: Send + Sync> FromRequestParts<S> for NameArg {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let in_path = parts
            .extensions
            .get::<MatchedPath>()
            .is_some_and(|route| route.as_str().ends_with("{*name}"));
        let raw = if in_path {
            let Path(raw) = Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| {
                    ApiError::BadRequest(format!("invalid file name in URL: {}", e.body_text()))
                })?;
            raw
        } else {
            query::param(&parts.uri, "name")?
                .ok_or_else(|| ApiError::BadRequest("the name query parameter is missing".into()))?
        };
        Ok(NameArg(FileName::new(raw)?))
    }
}

pub(super) async fn upload(
    State(state): State<ApiState>,
    NameArg(name): NameArg,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, HeaderMap, Json<PutResponse>), ApiError> {
    let expected = match headers.get(&CONTENT_BLAKE3) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.parse::<Blake3Hash>().ok())
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("{CONTENT_BLAKE3} must be 64 hex digits"))
                })?,
        ),
    };
    let mut extensions = Extensions::none();
    attributes_sent(&headers)?.store(&mut extensions);
    let options = PutOptions {
        expected,
        extensions,
        ..PutOptions::default()
    };
    let manifest = match state
        .files
        .put_with(name.clone(), body.into_data_stream(), options)
        .await
    {
        Ok(manifest) => manifest,
        Err(error) => {
            state.activity.record(
                crate::activity::Level::Warning,
                format!("an upload of {name} failed: {error}"),
            );
            return Err(error.into());
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(VERSION, version_header(&manifest.version));
    Ok((
        StatusCode::CREATED,
        headers,
        Json(PutResponse::from(&manifest)),
    ))
}

/// `PATCH`: gives a file the mode and time in the request's headers (none
/// sent, none kept), as a new version made of the same chunks, so a tree
/// whose files were only touched or chmodded is brought up to date without
/// its content crossing the network again. `If-Match` makes it
/// conditional on the content.
pub(super) async fn set_attributes(
    State(state): State<ApiState>,
    NameArg(name): NameArg,
    headers: HeaderMap,
) -> Result<Json<PutResponse>, ApiError> {
    let attributes = attributes_sent(&headers)?;
    let manifest = state.files.manifest(&name).await?;
    check_if_match(&headers, &manifest)?;
    let mut extensions = manifest.extensions.clone();
    attributes.store(&mut extensions);
    let content = (!manifest.is_composed()).then_some(manifest.blake3);
    let written = state
        .files
        .compose(name, manifest.chunks, content, extensions)
        .await?;
    Ok(Json(PutResponse::from(&written)))
}

/// Headers describing a file, shared by GET and HEAD.
fn describe(manifest: &Manifest) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut set = |name: HeaderName, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set(header::ETAG, format!("\"{}\"", manifest.blake3));
    set(CONTENT_BLAKE3, manifest.blake3.to_hex());
    set(CHUNK_COUNT, manifest.chunks.len().to_string());
    set(VERSION, manifest.version.to_string());
    set(header::ACCEPT_RANGES, "bytes".into());
    set(header::CONTENT_TYPE, "application/octet-stream".into());
    let attributes = FileAttributes::of(&manifest.extensions);
    if let Some(mode) = attributes.mode {
        set(FILE_MODE, format_mode(mode));
    }
    if let Some(mtime) = attributes.mtime {
        set(FILE_MTIME, mtime.to_string());
    }
    headers
}

/// Whether entity tag `tag` (as sent, quotes included) is, by strong
/// comparison, the tag of the file's current content. Weak tags (`W/...`)
/// never match strongly.
fn strong_match(tag: &str, current: &str) -> bool {
    tag.trim()
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .is_some_and(|t| t == current)
}

/// Whether an `If-Match` header (if any) admits the file's current content:
/// `*`, or a list holding the current tag.
fn check_if_match(headers: &HeaderMap, manifest: &Manifest) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(());
    };
    let current = manifest.blake3.to_hex();
    let matches = value
        .to_str()
        .is_ok_and(|v| v.trim() == "*" || v.split(',').any(|tag| strong_match(tag, &current)));
    if matches {
        Ok(())
    } else {
        Err(ApiError::PreconditionFailed { current })
    }
}

/// Whether the `Range` header may be honoured: always without `If-Range`,
/// and with it only if it names the current content. Otherwise the client's
/// earlier bytes belong to another version and it must get the whole file.
fn range_allowed(headers: &HeaderMap, manifest: &Manifest) -> bool {
    match headers.get(header::IF_RANGE) {
        None => true,
        Some(value) => value
            .to_str()
            .is_ok_and(|v| strong_match(v, &manifest.blake3.to_hex())),
    }
}

pub(super) async fn download(
    State(state): State<ApiState>,
    NameArg(name): NameArg,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let manifest = state.files.manifest(&name).await?;
    check_if_match(&headers, &manifest)?;
    let range_header = headers
        .get(header::RANGE)
        .filter(|_| range_allowed(&headers, &manifest))
        .and_then(|v| v.to_str().ok());
    let (status, start, end) = match range::resolve(range_header, manifest.size) {
        RangeRequest::Full => (StatusCode::OK, 0, manifest.size.saturating_sub(1)),
        RangeRequest::Partial { start, end } => (StatusCode::PARTIAL_CONTENT, start, end),
        RangeRequest::Unsatisfiable => {
            return Err(ApiError::RangeNotSatisfiable {
                size: manifest.size,
            });
        }
    };
    let sources = state.files.locate(&manifest, start, end).await?;

    let mut response_headers = describe(&manifest);
    let length = if manifest.size == 0 {
        0
    } else {
        end - start + 1
    };
    response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{}", manifest.size))
    {
        response_headers.insert(header::CONTENT_RANGE, v);
    }
    let body = if length == 0 {
        Body::empty()
    } else {
        // The first piece is fetched before the headers go out, so a file
        // whose first chunk no replica can serve fails with a proper error
        // instead of a cut-off body. Later failures can only cut it off.
        let file = manifest.name.clone();
        let mut pieces = Box::pin(state.files.read_range(manifest, sources, start, end));
        let first = match pieces.next().await {
            Some(Err(error)) => return Err(error.into()),
            first => first,
        };
        let rest = pieces.inspect_err(move |error| {
            tracing::error!(%file, %error, "download aborted");
        });
        Body::from_stream(futures::stream::iter(first).chain(rest))
    };
    Ok((status, response_headers, body).into_response())
}

pub(super) async fn head(
    State(state): State<ApiState>,
    NameArg(name): NameArg,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let manifest = state.files.manifest(&name).await?;
    check_if_match(&headers, &manifest)?;
    let mut headers = describe(&manifest);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(manifest.size));
    Ok((StatusCode::OK, headers).into_response())
}

pub(super) async fn delete(
    State(state): State<ApiState>,
    NameArg(name): NameArg,
) -> Result<(StatusCode, HeaderMap), ApiError> {
    let version = state.files.delete(&name).await?;
    let mut headers = HeaderMap::new();
    headers.insert(VERSION, version_header(&version));
    Ok((StatusCode::NO_CONTENT, headers))
}

pub(super) async fn list(
    State(state): State<ApiState>,
    uri: Uri,
) -> Result<Json<ListResponse>, ApiError> {
    let prefix = query::param(&uri, "prefix")?.unwrap_or_default();
    let after = query::param(&uri, "after")?;
    if prefix.len() > MAX_NAME_LEN || after.as_ref().is_some_and(|a| a.len() > MAX_NAME_LEN) {
        return Err(ApiError::BadRequest(format!(
            "prefix and after can be at most {MAX_NAME_LEN} bytes, like names"
        )));
    }
    let limit = match query::param(&uri, "limit")? {
        None => DEFAULT_LIST_LIMIT,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("limit must be a number from 1 to {MAX_LIST_LIMIT}"))
            })?,
    };
    let listing = state.files.list(prefix, after, limit).await?;
    let files: Vec<FileEntry> = listing.files.iter().map(FileEntry::from).collect();
    let next = if listing.truncated {
        files.last().map(|f| f.name.clone())
    } else {
        None
    };
    Ok(Json(ListResponse { files, next }))
}

pub(super) async fn manifest(
    State(state): State<ApiState>,
    NameArg(name): NameArg,
) -> Result<Json<StatResponse>, ApiError> {
    let (manifest, replicas) = state.files.stat(&name).await?;
    Ok(Json(StatResponse::new(&manifest, &replicas)))
}

pub(super) async fn status(
    State(state): State<ApiState>,
) -> Result<Json<StatusResponse>, ApiError> {
    let stats = state.files.store_stats().await?;
    let network = state
        .network
        .status()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(Json(StatusResponse {
        peer_id: network.local.peer_id.to_base58(),
        version: env!("CARGO_PKG_VERSION").into(),
        api: state.info.api_addr.to_string(),
        s3: state.info.s3_addr.map(|a| a.to_string()),
        tls: state.info.tls,
        listen: network.listen.iter().map(ToString::to_string).collect(),
        uptime_s: state.info.started.elapsed().as_secs(),
        members: member_statuses(&network),
        replication: {
            let r = state.files.cluster().replication();
            ReplicationStatus {
                replicas: r.replicas,
                write_quorum: r.write_quorum,
                read_quorum: r.read_quorum,
            }
        },
        transfer: state.files.transfer_figures(),
        repair: state.healer.figures(),
        last_scrub: state.healer.last_scrub(),
        store: stats.into(),
    }))
}

/// This peer first, then the others by state (alive, suspect, dead) and id.
fn member_statuses(network: &NetworkStatus) -> Vec<MemberStatus> {
    let local = &network.local;
    let me = MemberStatus {
        peer_id: local.peer_id.to_base58(),
        state: MemberState::Alive.to_string(),
        this_peer: true,
        incarnation: local.incarnation,
        addrs: local.listen.iter().map(ToString::to_string).collect(),
        api: local.api.map(|a| a.to_string()),
        last_heard_ms: None,
        state_for_s: 0,
        connected: false,
        capacity_bytes: local.capacity_bytes,
        used_bytes: local.used_bytes,
    };
    let mut others: Vec<&Member> = network.members.iter().collect();
    others.sort_by_key(|m| (m.state as u8, m.record.peer_id.to_base58()));
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    std::iter::once(me)
        .chain(others.into_iter().map(|m| {
            MemberStatus {
                peer_id: m.record.peer_id.to_base58(),
                state: m.state.to_string(),
                this_peer: false,
                incarnation: m.record.incarnation,
                addrs: m.record.listen.iter().map(ToString::to_string).collect(),
                api: m.record.api.map(|a| a.to_string()),
                last_heard_ms: m
                    .last_heard
                    .map(|at| ms(network.taken.saturating_duration_since(at))),
                state_for_s: network.taken.saturating_duration_since(m.since).as_secs(),
                connected: network.connected.contains(&m.record.peer_id),
                capacity_bytes: m.record.capacity_bytes,
                used_bytes: m.record.used_bytes,
            }
        }))
        .collect()
}

/// Runs a scrub of this peer's store now and answers with what it found.
pub(super) async fn scrub(State(state): State<ApiState>) -> Result<Json<ScrubReport>, ApiError> {
    Ok(Json(state.healer.scrub().await?))
}

/// How long `shoal leave` may spend handing data over before it gives up
/// (the peer then keeps handing over in the background).
const HAND_OVER_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// Hands everything this peer holds to the peers taking over its share,
/// answers with what that took, then stops the peer.
pub(super) async fn leave(State(state): State<ApiState>) -> Result<Json<HandOver>, ApiError> {
    state
        .network
        .announce_leaving()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let report = state.healer.hand_over(HAND_OVER_DEADLINE).await?;
    let stop = state.info.stop.clone();
    tokio::spawn(async move {
        // Let the answer go out before the API stops.
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.cancel();
    });
    Ok(Json(report))
}

pub(super) async fn not_found() -> ApiError {
    ApiError::NoRoute
}
