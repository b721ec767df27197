//! The composition root: builds a running peer from a [`NodeConfig`] and
//! shuts it down in order.
//!
//! Start-up: validate the configuration, load the identity, open the store
//! (recovering from any crash), bind the API, then announce readiness on
//! stdout. Shutdown, when the token is cancelled: stop accepting requests,
//! give in-flight requests `shutdown_grace` to finish (any upload still
//! running after that is dropped unacknowledged), stop background loops,
//! then let the store's writer finish what it has queued and close.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{self, PeerInfo};
use crate::config::{ConfigError, NodeConfig, StoreConfig};
use crate::files::Files;
use crate::identity::{self, IdentityError};
use crate::store::{GcPolicy, Store, StoreError};

/// Why a peer could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The identity could not be loaded.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The API address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A start-up task failed.
    #[error("start-up failed: {0}")]
    Startup(String),
}

/// Runs a peer until `shutdown` is cancelled.
///
/// # Errors
/// [`NodeError`] if the peer cannot start; a running peer stops cleanly.
pub async fn run(config: NodeConfig, shutdown: CancellationToken) -> Result<(), NodeError> {
    config.validate()?;
    let started = Instant::now();
    let data_dir = config.data_dir.clone();
    let keypair = blocking(move || identity::load_or_create(&data_dir)).await??;
    let peer_id = keypair.public().to_peer_id();

    let data_dir = config.data_dir.clone();
    let store_config = config.store.clone();
    let (store, writer) = blocking(move || Store::open(&data_dir, &store_config)).await??;
    let writer_thread = writer
        .spawn()
        .map_err(|e| NodeError::Startup(format!("cannot start the store writer: {e}")))?;

    let listener = TcpListener::bind(config.api_addr)
        .await
        .map_err(|source| NodeError::Bind {
            addr: config.api_addr,
            source,
        })?;
    let api_addr = listener.local_addr().map_err(|source| NodeError::Bind {
        addr: config.api_addr,
        source,
    })?;
    let files = Files::new(
        store.clone(),
        peer_id,
        config.chunk_size,
        config.transfer.clone(),
    );
    let router = api::router(
        files,
        PeerInfo {
            api_addr,
            listen: Vec::new(),
            started,
        },
    );

    let background = shutdown.child_token();
    let gc = tokio::spawn(gc_loop(
        store.clone(),
        config.store.clone(),
        background.clone(),
    ));

    tracing::info!(%peer_id, %api_addr, data = %config.data_dir.display(), "peer started");
    announce(&format!(
        "shoal peer {peer_id} serving the API on http://{api_addr}"
    ));

    let server = tokio::spawn(api::serve(
        listener,
        router,
        shutdown.clone(),
        config.shutdown_grace,
    ));
    shutdown.cancelled().await;
    tracing::info!("shutting down: no new requests, draining in-flight ones");
    match server.await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            grace = ?config.shutdown_grace,
            "in-flight requests did not finish in time; dropping them unacknowledged"
        ),
        Err(error) => tracing::error!(%error, "API server task failed"),
    }

    background.cancel();
    let _ = gc.await;
    store.shutdown().await;
    drop(store);
    let _ = blocking(move || writer_thread.join()).await;
    tracing::info!("peer stopped");
    Ok(())
}

/// Collects unreferenced chunks and expired tombstones every `gc_interval`.
async fn gc_loop(store: Store, config: StoreConfig, cancel: CancellationToken) {
    let policy = GcPolicy {
        grace_ms: millis(config.gc_grace),
        tombstone_ttl_ms: millis(config.tombstone_ttl),
    };
    let mut ticks = tokio::time::interval(config.gc_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match store.collect_garbage(policy).await {
            Ok(report) if report != Default::default() => {
                tracing::info!(?report, "collected garbage");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "garbage collection failed; retrying later"),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Prints the readiness line on stdout, which scripts and tests wait for.
fn announce(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, NodeError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| NodeError::Startup(e.to_string()))
}

/// Cancels `token` on the first SIGINT or SIGTERM.
///
/// # Errors
/// The signal handlers could not be installed.
pub fn cancel_on_signals(token: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("received SIGINT"),
            _ = terminate.recv() => tracing::info!("received SIGTERM"),
        }
        token.cancel();
    });
    Ok(())
}
