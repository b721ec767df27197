//! The page handlers: each gathers what its page shows and renders it.

use std::collections::BTreeSet;
use std::time::Duration;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use futures::StreamExt;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::WebState;
use super::view::{
    ActivityPage, ChunkView, ErrorPage, EventView, FilePage, FileView, FilesPage, FolderView, Nav,
    PeerView, PeersPage, ago, bytes, modified, time,
};
use crate::activity::Level;
use crate::chunk::{FileAttributes, FileName, FileSummary, MAX_NAME_LEN, format_mode, wall_millis};
use crate::gossip::{MemberState, PeerFigures, PeerRecord};
use crate::net::NetworkStatus;

/// Files shown per page of a listing: each costs a look at its copies.
const FILES_PER_PAGE: usize = 100;

/// Copy counts looked up at once for a listing.
const STATS_AT_ONCE: usize = 8;

/// A page, or an error page with the status it deserves.
pub(super) type PageResult = Result<Response, PageError>;

/// What went wrong, shown as a page.
#[derive(Debug)]
pub(super) struct PageError {
    status: StatusCode,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            nav: Nav {
                page: "",
                peer: String::new(),
                refresh: String::new(),
                gated: false,
            },
            message: self.message,
        };
        let html = page.render().unwrap_or_else(|_| "error".into());
        (self.status, Html(html)).into_response()
    }
}

pub(super) fn render(page: &impl Template) -> PageResult {
    page.render()
        .map(|html| Html(html).into_response())
        .map_err(|e| {
            failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot render: {e}"),
            )
        })
}

pub(super) fn failure(status: StatusCode, message: String) -> PageError {
    PageError { status, message }
}

pub(super) fn unavailable(e: impl std::fmt::Display) -> PageError {
    failure(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

pub(super) async fn network(state: &WebState) -> Result<NetworkStatus, PageError> {
    state.network.status().await.map_err(unavailable)
}

pub(super) fn nav(
    state: &WebState,
    page: &'static str,
    network: &NetworkStatus,
    refresh: &str,
) -> Nav {
    Nav {
        page,
        peer: short_id(&network.local.peer_id.to_base58()),
        refresh: refresh.to_owned(),
        gated: state.gate.required,
    }
}

pub(super) fn short_id(id: &str) -> String {
    id[id.len().saturating_sub(8)..].to_owned()
}

/// Every member, this peer first, as the pages show them.
pub(super) fn peer_views(state: &WebState, network: &NetworkStatus) -> Vec<PeerView> {
    let placement = state.files.cluster().placement();
    let local = std::iter::once((&network.local, MemberState::Alive, true, None));
    let others = network
        .members
        .iter()
        .map(|m| (&m.record, m.state, false, m.last_heard));
    let mut views: Vec<PeerView> = local
        .chain(others)
        .map(|(record, state, this_peer, heard)| {
            let figures = record.figures().unwrap_or_default();
            let heard = heard.map(|at| network.taken.saturating_duration_since(at));
            view_of(
                record,
                state,
                this_peer,
                heard,
                &figures,
                placement.ring_share(&record.peer_id),
            )
        })
        .collect();
    views[1..].sort_by_key(|v| (state_order(v.state), v.id.clone()));
    views
}

fn state_order(state: &str) -> u8 {
    match state {
        "alive" => 0,
        "leaving" => 1,
        "suspect" => 2,
        "dead" => 3,
        _ => 4,
    }
}

fn view_of(
    record: &PeerRecord,
    state: MemberState,
    this_peer: bool,
    heard: Option<Duration>,
    figures: &PeerFigures,
    share: f64,
) -> PeerView {
    let id = record.peer_id.to_base58();
    let address = record.api.map(|a| a.to_string()).unwrap_or_else(|| {
        record
            .listen
            .first()
            .map(ToString::to_string)
            .unwrap_or_default()
    });
    let used_percent = record
        .used_bytes
        .saturating_mul(100)
        .checked_div(record.capacity_bytes)
        .unwrap_or(0)
        .min(100);
    PeerView {
        short: short_id(&id),
        id,
        state: match state {
            MemberState::Alive if record.leaving => "leaving",
            MemberState::Alive => "alive",
            MemberState::Suspect => "suspect",
            MemberState::Dead if record.leaving => "left",
            MemberState::Dead => "dead",
        },
        this_peer,
        address,
        last_heard: match (this_peer, heard) {
            (true, _) => "this peer".into(),
            (false, Some(d)) => ago(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            (false, None) => "never directly".into(),
        },
        share: format!("{:.1} %", share * 100.0),
        stored: bytes(figures.stored_bytes),
        used: bytes(record.used_bytes),
        capacity: bytes(record.capacity_bytes),
        used_percent,
        sent: bytes(figures.bytes_sent),
        received: bytes(figures.bytes_received),
        version: if figures.version.is_empty() {
            "unknown".into()
        } else {
            figures.version.clone()
        },
    }
}

/// `GET /peers`.
pub(super) async fn peers(State(state): State<WebState>) -> PageResult {
    let network = network(&state).await?;
    let peers = peer_views(&state, &network);
    render(&PeersPage {
        nav: nav(&state, "peers", &network, "/peers"),
        peers,
    })
}

/// The query of `/files`.
#[derive(Debug, Deserialize)]
pub(super) struct FilesQuery {
    #[serde(default)]
    prefix: String,
    after: Option<String>,
}

/// `GET /files?prefix=P`: the folders and files under P.
pub(super) async fn files(
    State(state): State<WebState>,
    Query(query): Query<FilesQuery>,
) -> PageResult {
    let network = network(&state).await?;
    let prefix = query.prefix;
    let (folders, shown, more_after) = folder_page(&state.files, &prefix, query.after)
        .await
        .map_err(unavailable)?;
    let copies_wanted = state.files.cluster().placement().copies();
    let views: Vec<FileView> = futures::stream::iter(shown)
        .map(|file| {
            let files = state.files.clone();
            let skip = prefix.len();
            async move {
                let copies = files.stat(&file.name).await.ok().map(|(_, replicas)| {
                    replicas
                        .chunks
                        .iter()
                        .map(|c| c.replicas.len())
                        .chain(std::iter::once(replicas.manifest.len()))
                        .min()
                        .unwrap_or(0)
                });
                FileView {
                    label: file.name.as_str()[skip..].to_owned(),
                    name: file.name.to_string(),
                    size: bytes(file.size),
                    written: file
                        .attributes
                        .checked()
                        .mtime
                        .map_or_else(|| time(file.created_ms), modified),
                    copies: copies.map_or_else(|| "?".into(), |c| c.to_string()),
                    short_of_copies: copies.is_none_or(|c| c < copies_wanted),
                }
            }
        })
        .buffered(STATS_AT_ONCE)
        .collect()
        .await;
    render(&FilesPage {
        nav: nav(&state, "files", &network, ""),
        csrf: state.gate.csrf().to_owned(),
        crumbs: crumbs(&prefix),
        folders: folders
            .into_iter()
            .map(|label| FolderView {
                prefix: format!("{prefix}{label}"),
                label,
            })
            .collect(),
        files: views,
        more_after,
        prefix,
    })
}

/// One page of the folder `prefix`: its sub-folders and its files, at most
/// [`FILES_PER_PAGE`] rows, after `after`, and where the next page starts
/// if there may be more.
///
/// The swarm lists names in order, a folder's contents together; once a
/// folder is seen, the listing goes on from just past its last possible
/// name, so a folder of thousands of files costs one more listing, not
/// pages of them.
async fn folder_page(
    files: &crate::files::Files,
    prefix: &str,
    mut after: Option<String>,
) -> Result<(BTreeSet<String>, Vec<FileSummary>, Option<String>), crate::files::FilesError> {
    let mut folders = BTreeSet::new();
    let mut shown = Vec::new();
    loop {
        let listing = files
            .list(prefix.to_owned(), after.clone(), FILES_PER_PAGE)
            .await?;
        if listing.files.is_empty() {
            return Ok((folders, shown, None));
        }
        let mut skipped = false;
        for file in &listing.files {
            let rest = &file.name.as_str()[prefix.len()..];
            after = Some(file.name.to_string());
            if rest.is_empty() && prefix.ends_with('/') {
                // The folder's own marker (`put -r` stores one per
                // directory): the folder is what the page is about.
            } else if let Some((folder, _)) = rest.split_once('/') {
                folders.insert(format!("{folder}/"));
                // Past every name in the folder (names never hold U+10FFFF
                // in practice; one that did would show its folder twice).
                let past = format!("{prefix}{folder}/{}", char::MAX);
                if past.len() <= MAX_NAME_LEN {
                    after = Some(past);
                    skipped = true;
                }
            } else {
                shown.push(file.clone());
            }
            if folders.len() + shown.len() >= FILES_PER_PAGE {
                return Ok((folders, shown, after));
            }
            if skipped {
                break;
            }
        }
        if !skipped && !listing.truncated {
            return Ok((folders, shown, None));
        }
    }
}

/// The path bar of a prefix: `all files`, then each folder down to it.
fn crumbs(prefix: &str) -> Vec<(String, String)> {
    let mut crumbs = vec![("all files".to_owned(), String::new())];
    let mut end = 0;
    for part in prefix.split_inclusive('/') {
        end += part.len();
        crumbs.push((part.to_owned(), prefix[..end].to_owned()));
    }
    crumbs
}

/// The query of `/file`.
#[derive(Debug, Deserialize)]
pub(super) struct FileQuery {
    name: String,
}

/// `GET /file?name=N`: one file, its chunks and who holds each.
pub(super) async fn file(
    State(state): State<WebState>,
    Query(query): Query<FileQuery>,
) -> PageResult {
    let network = network(&state).await?;
    let name =
        FileName::new(query.name).map_err(|e| failure(StatusCode::BAD_REQUEST, e.to_string()))?;
    let (manifest, replicas) = state.files.stat(&name).await.map_err(|e| {
        let status = if e.kind() == crate::files::FailureKind::NotFound {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        failure(status, e.to_string())
    })?;
    let short = |peers: &[libp2p::PeerId]| peers.iter().map(|p| short_id(&p.to_base58())).collect();
    let attributes = FileAttributes::of(&manifest.extensions);
    render(&FilePage {
        nav: nav(&state, "files", &network, ""),
        folder: folder_of(name.as_str()).to_owned(),
        name: name.to_string(),
        size: bytes(manifest.size),
        blake3: manifest.blake3.to_hex(),
        version: manifest.version.to_string(),
        written: time(manifest.created_ms),
        modified: attributes.mtime.map(modified),
        mode: attributes.mode.map(format_mode),
        inline: manifest.inline().is_some(),
        manifest_holders: short(&replicas.manifest),
        chunks: replicas
            .chunks
            .iter()
            .enumerate()
            .map(|(index, c)| ChunkView {
                index,
                size: bytes(u64::from(c.chunk.size)),
                blake3: c.chunk.hash.short(),
                holders: short(&c.replicas),
            })
            .collect(),
        csrf: state.gate.csrf().to_owned(),
    })
}

fn folder_of(name: &str) -> &str {
    name.rfind('/').map_or("", |i| &name[..=i])
}

/// `GET /activity`.
pub(super) async fn activity(State(state): State<WebState>) -> PageResult {
    let network = network(&state).await?;
    let now = wall_millis();
    let events = state
        .activity
        .recent()
        .into_iter()
        .map(|e| EventView {
            when: format!("{} ({})", time(e.at_ms), ago(now.saturating_sub(e.at_ms))),
            level: match e.level {
                Level::Info => "info",
                Level::Warning => "warn",
            },
            text: e.text,
        })
        .collect();
    render(&ActivityPage {
        nav: nav(&state, "activity", &network, "/activity"),
        events,
    })
}

/// The form that deletes a file.
#[derive(Debug, Deserialize)]
pub(super) struct DeleteForm {
    name: String,
    csrf: String,
}

/// `POST /ui/delete`: deletes a file once its form came from this peer's
/// own page (the token matches), then shows its folder.
pub(super) async fn delete(
    State(state): State<WebState>,
    Form(form): Form<DeleteForm>,
) -> PageResult {
    if !state.gate.is_csrf(&form.csrf) {
        return Err(failure(
            StatusCode::FORBIDDEN,
            "the form is stale or from another page: open the file's page again".into(),
        ));
    }
    let name =
        FileName::new(form.name).map_err(|e| failure(StatusCode::BAD_REQUEST, e.to_string()))?;
    state.files.delete(&name).await.map_err(unavailable)?;
    state
        .activity
        .record(Level::Info, format!("{name} was deleted from the web page"));
    let folder = folder_of(name.as_str());
    let target = format!(
        "/files?prefix={}",
        utf8_percent_encode(folder, NON_ALPHANUMERIC)
    );
    Ok(([(header::CACHE_CONTROL, "no-store")], Redirect::to(&target)).into_response())
}
