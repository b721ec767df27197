//! The built-in web page, served at the root of the API address: the
//! swarm at a glance (is my data safe?), its peers, its files, and what
//! happened lately.
//!
//! Pages are rendered on the server from templates (`templates/`, checked
//! at compile time) and read without JavaScript. A small script of ours
//! (`assets/shoal.js`) adds uploads with progress, and the vendored htmx
//! refreshes the live pages in place. Assets are inside the binary.

mod assets;
mod login;
mod overview;
mod pages;
mod view;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::routing::{get, post};

use crate::activity::Activity;
use crate::api::Gate;
use crate::files::Files;
use crate::net::Network;

/// What the pages read.
#[derive(Clone, Debug)]
pub struct WebState {
    files: Files,
    network: Network,
    activity: Activity,
    /// Who may sign in, and the form token every change must carry.
    gate: Gate,
    /// The swarm's repair bytes at the last look, to tell its rate.
    repair_seen: Arc<Mutex<Option<(Instant, u64)>>>,
}

impl WebState {
    /// The pages over a peer's parts.
    pub fn new(files: Files, network: Network, activity: Activity, gate: Gate) -> Self {
        WebState {
            files,
            network,
            activity,
            gate,
            repair_seen: Arc::default(),
        }
    }
}

/// The page's routes.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(overview::overview))
        .route("/v1/overview", get(overview::overview_json))
        .route("/peers", get(pages::peers))
        .route("/files", get(pages::files))
        .route("/file", get(pages::file))
        .route("/activity", get(pages::activity))
        .route("/ui/delete", post(pages::delete))
        .route("/login", get(login::form).post(login::sign_in))
        .route("/logout", post(login::sign_out))
        .route("/assets/{*path}", get(assets::serve))
        .with_state(state)
}
