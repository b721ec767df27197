//! The composition root: builds a running peer from a [`NodeConfig`] and
//! shuts it down in order.
//!
//! Start-up: validate the configuration, load the identity, open the store
//! (recovering from any crash), bind the API, start the swarm and join it
//! (through `--join` addresses or the members remembered from the last run),
//! then announce readiness on stdout. Shutdown, when the token is cancelled:
//! stop accepting requests, give in-flight requests `shutdown_grace` to
//! finish (any upload still running after that is dropped unacknowledged),
//! tell the swarm this peer is leaving, stop background loops, then let the
//! store's writer finish what it has queued and close.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use tokio_util::task::TaskTracker;

use hyper_util::service::TowerToHyperService;

use crate::activity::Activity;
use crate::api::{self, ApiParts, PeerInfo};
use crate::config::{ConfigError, NodeConfig};
use crate::files::{Cluster, Files, SwarmView};
use crate::heal::Healer;
use crate::identity::{self, IdentityError};
use crate::metrics::{MetricsBuilder, Tracked};
use crate::net::{Bootstrap, NetConfig, NetError, Network};
use crate::protocol::MAX_MESSAGE_BYTES;
use crate::replica::{self, Deadlines, ReplicaClient, SwarmTransport};
use crate::store::{PeerBookChange, Store, StoreError};
use crate::tokens;
use crate::web::{self, WebState};
use crate::{s3, serving};
use events::activity_loop;
use loops::{gc_loop, peer_book_loop, upload_expiry_loop, usage_loop};

mod events;
mod loops;

/// How long joining may take before start-up gives up on `--join`.
const JOIN_TIMEOUT: Duration = Duration::from_secs(15);

/// How often the capacity and usage this peer announces are refreshed.
pub(super) const USAGE_INTERVAL: Duration = Duration::from_secs(5);

/// The pause after each save of the peer book: changes during it are saved
/// together, which bounds the writes a burst of changes costs.
pub(super) const PEER_BOOK_PAUSE: Duration = Duration::from_millis(100);

/// Why a peer could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
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
    /// The swarm could not be started or joined.
    #[error(transparent)]
    Net(#[from] NetError),
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

    // A certificate that cannot be used fails the start, not every
    // handshake later.
    let tls = match &config.tls {
        Some(files) => Some(
            crate::tls::load(&files.cert, &files.key)
                .map_err(|e| NodeError::Startup(e.to_string()))?,
        ),
        None => None,
    };
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

    let s3_listener = match &config.s3 {
        Some(s3) => Some(
            TcpListener::bind(s3.addr)
                .await
                .map_err(|source| NodeError::Bind {
                    addr: s3.addr,
                    source,
                })?,
        ),
        None => None,
    };
    let s3_addr = match &s3_listener {
        Some(listener) => Some(listener.local_addr().map_err(|source| NodeError::Bind {
            addr: api_addr,
            source,
        })?),
        None => None,
    };

    let incarnation = store
        .update_peer_book(PeerBookChange::NextIncarnation)
        .await?;
    let known = remembered_members(&store, peer_id).await?;
    let deadlines = Deadlines::from_config(&config.transfer);
    // libp2p drops an exchange (and frees its request slot) once the
    // longest request any caller makes would have run out, so a hung peer
    // holds slots no longer than its callers wait.
    let net_config = NetConfig {
        data_exchange_timeout: deadlines.for_bytes(MAX_MESSAGE_BYTES),
        ..config.net.clone()
    };
    let mut metrics = MetricsBuilder::new();
    let (network, inbound, network_task) = Network::start(
        keypair,
        &net_config,
        &Bootstrap {
            incarnation,
            known: known.clone(),
            api: Some(api_addr),
        },
        metrics.registry(),
    )?;
    let metrics = metrics.finish();
    if config.net.secret.is_none() {
        tracing::warn!(
            "no cluster secret: any shoal peer that can reach this one may join (see `shoal keygen`)"
        );
    }
    // Every task that outlives the call that started it (answers to other
    // peers, the data path's background work, the loops) is tracked here,
    // so shutdown can wait for all of them before the store closes.
    let tasks = TaskTracker::new();
    let replica = tokio::spawn(replica::serve_inbound(
        store.clone(),
        inbound,
        tasks.clone(),
    ));
    join(&network, &config, known).await?;

    let transport = Arc::new(SwarmTransport::new(network.clone(), store.clone()));
    let client = ReplicaClient::new(transport, deadlines).with_instruments(metrics.instruments());
    let view = Arc::new(SwarmView::new(
        network.members(),
        config.replication.replicas,
        config.healing.rereplicate_after,
    ));
    let cluster = Cluster::new(client, view, config.replication);
    let files = Files::new(
        store.clone(),
        cluster.clone(),
        config.chunk_size,
        config.transfer.clone(),
        tasks.clone(),
    );
    let healer = Healer::new(
        store.clone(),
        cluster,
        config.healing,
        config.store.audit_interval,
    );
    let keys = s3::AccessKeys::new(files.clone(), config.net.secret.as_ref());
    let s3_service = match &config.s3 {
        Some(s3_config) => Some(
            s3::service(
                files.clone(),
                keys.clone(),
                &s3::S3Settings {
                    domain: s3_config.domain.clone(),
                },
            )
            .map_err(|e| NodeError::Startup(e.to_string()))?,
        ),
        None => None,
    };
    let activity = Activity::new();
    let local_token = {
        let data_dir = config.data_dir.clone();
        blocking(move || tokens::LocalToken::load_or_create(&data_dir))
            .await?
            .map_err(|e| NodeError::Startup(e.to_string()))?
    };
    let gate = api::Gate::new(
        config.require_tokens || !api_addr.ip().is_loopback(),
        config.metrics_public,
        tokens::AccessTokens::new(files.clone()),
        local_token,
        tls.is_some(),
        api_addr.port(),
    )
    .map_err(|e| NodeError::Startup(format!("cannot draw random bytes: {e}")))?;
    if !api_addr.ip().is_loopback() && tls.is_none() {
        tracing::warn!(
            %api_addr,
            "the API listens beyond loopback without TLS: every request needs an access token, and tokens cross the network in the clear (--tls-cert and --tls-key serve HTTPS)"
        );
    }
    let router = api::router(ApiParts {
        files: files.clone(),
        healer: healer.clone(),
        network: network.clone(),
        keys,
        gate: gate.clone(),
        info: PeerInfo {
            api_addr,
            s3_addr,
            started,
            stop: shutdown.clone(),
            secret: config.net.secret.clone(),
            tls: tls.is_some(),
        },
        metrics: metrics.clone(),
        activity: activity.clone(),
        pages: web::router(WebState::new(
            files.clone(),
            network.clone(),
            activity.clone(),
            gate,
        )),
    });

    let background = shutdown.child_token();
    tasks.spawn(gc_loop(
        store.clone(),
        config.store.clone(),
        background.clone(),
    ));
    tasks.spawn(usage_loop(
        files.clone(),
        healer.clone(),
        network.clone(),
        background.clone(),
    ));
    tasks.spawn(activity_loop(
        activity.clone(),
        network.members(),
        healer.clone(),
        background.clone(),
    ));
    tasks.spawn(peer_book_loop(
        store.clone(),
        network.members(),
        background.clone(),
    ));
    healer.spawn_loops(&tasks, &background);

    if let Some(s3_config) = &config.s3 {
        tasks.spawn(upload_expiry_loop(
            files.clone(),
            s3_config.upload_expiry,
            background.clone(),
        ));
    }

    tracing::info!(%peer_id, %api_addr, ?s3_addr, data = %config.data_dir.display(), "peer started");
    let scheme = if tls.is_some() { "https" } else { "http" };
    announce(&match s3_addr {
        Some(s3_addr) => format!(
            "shoal peer {peer_id} serving the API on {scheme}://{api_addr} and S3 on {scheme}://{s3_addr}"
        ),
        None => format!("shoal peer {peer_id} serving the API on {scheme}://{api_addr}"),
    });

    let s3_server = match (s3_listener, s3_service) {
        (Some(listener), Some(service)) => Some(tokio::spawn(serving::serve(
            listener,
            tls.clone(),
            Tracked::new(service, "s3", metrics.instruments()),
            shutdown.clone(),
            config.shutdown_grace,
            "S3",
        ))),
        _ => None,
    };
    let server = tokio::spawn(serving::serve(
        listener,
        tls,
        TowerToHyperService::new(router),
        shutdown.clone(),
        config.shutdown_grace,
        "API",
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
    if let Some(s3_server) = s3_server
        && let Err(error) = s3_server.await
    {
        tracing::error!(%error, "S3 server task failed");
    }

    network.leave().await;
    let _ = network_task.await;
    let _ = replica.await;
    background.cancel();
    tasks.close();
    if tokio::time::timeout(config.shutdown_grace, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("background work did not stop in time; closing the store under it");
    }
    store.shutdown().await;
    drop(store);
    let _ = blocking(move || writer_thread.join()).await;
    tracing::info!("peer stopped");
    Ok(())
}

/// Joins through the `--join` addresses and the remembered members. A
/// failure is fatal only when the user named addresses: a restarted peer
/// whose old members are all down keeps running and is found again when
/// they return (they remember it too), or by mDNS.
async fn join(
    network: &Network,
    config: &NodeConfig,
    known: Vec<(PeerId, Vec<Multiaddr>)>,
) -> Result<(), NodeError> {
    let addrs = config.net.join.clone();
    if addrs.is_empty() && known.is_empty() {
        return Ok(());
    }
    let remembered = known.len();
    match network.join(addrs, known, JOIN_TIMEOUT).await {
        Ok(_) => Ok(()),
        Err(error) if config.net.join.is_empty() => {
            tracing::warn!(
                remembered,
                "cannot reach any remembered member yet ({error}); carrying on alone until one returns"
            );
            Ok(())
        }
        Err(error) => {
            network.leave().await;
            Err(error.into())
        }
    }
}

/// The members saved by earlier runs, skipping any that no longer parse.
async fn remembered_members(
    store: &Store,
    me: PeerId,
) -> Result<Vec<(PeerId, Vec<Multiaddr>)>, NodeError> {
    let rows = store.known_peers().await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let peer = PeerId::from_bytes(&row.peer_id).ok()?;
            let addrs = row
                .addrs
                .iter()
                .filter_map(|a| Multiaddr::try_from(a.clone()).ok())
                .collect();
            (peer != me).then_some((peer, addrs))
        })
        .collect())
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
