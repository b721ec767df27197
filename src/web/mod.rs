//! The built-in web page, served at the root of the API address: the
//! swarm at a glance (is my data safe?), its peers, its files, and what
//! happened lately.
//!
//! Pages are rendered on the server from templates (`templates/`, checked
//! at compile time) and read without JavaScript. A small script of ours
//! (`assets/shoal.js`) adds uploads with progress, and the vendored htmx
//! refreshes the live pages in place. Assets are inside the binary.

mod assets;
mod overview;
mod pages;
mod view;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::routing::{get, post};

use crate::activity::Activity;
use crate::files::Files;
use crate::net::Network;

/// What the pages read.
#[derive(Clone, Debug)]
pub struct WebState {
    files: Files,
    network: Network,
    activity: Activity,
    /// The token every form that changes something must carry: drawn at
    /// start, shown only in this peer's own pages, which another site
    /// cannot read.
    csrf: Arc<String>,
    /// The swarm's repair bytes at the last look, to tell its rate.
    repair_seen: Arc<Mutex<Option<(Instant, u64)>>>,
}

impl WebState {
    /// The pages over a peer's parts.
    ///
    /// # Errors
    /// If the operating system's random source fails (for the form token).
    pub fn new(
        files: Files,
        network: Network,
        activity: Activity,
    ) -> Result<Self, getrandom::Error> {
        let mut token = [0u8; 16];
        getrandom::fill(&mut token)?;
        Ok(WebState {
            files,
            network,
            activity,
            csrf: Arc::new(hex::encode(token)),
            repair_seen: Arc::default(),
        })
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
        .route("/assets/{*path}", get(assets::serve))
        .with_state(state)
}
