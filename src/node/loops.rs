//! The peer's periodic work outside the healer: saving the member list,
//! announcing usage and figures, collecting garbage, expiring abandoned
//! uploads.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{PEER_BOOK_PAUSE, USAGE_INTERVAL};
use crate::config::StoreConfig;
use crate::files::Files;
use crate::gossip::PeerFigures;
use crate::heal::Healer;
use crate::net::{MemberList, Network};
use crate::s3;
use crate::store::{GcPolicy, KnownPeer, PeerBookChange, Store};

/// Saves the member list and this peer's incarnation whenever they change,
/// so a restart can rejoin without `--join`.
pub(super) async fn peer_book_loop(
    store: Store,
    mut members: watch::Receiver<Arc<MemberList>>,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            changed = members.changed() => if changed.is_err() { return },
        }
        // Saved at once, so a peer killed right after the swarm changed
        // still knows whom to rejoin; changes that arrive while a save runs
        // (and in the short pause after it) are saved together next.
        let list = members.borrow_and_update().clone();
        let peers: Vec<KnownPeer> = list
            .members
            .iter()
            .map(|m| KnownPeer {
                peer_id: m.record.peer_id.to_bytes(),
                addrs: m.record.listen.iter().map(|a| a.to_vec()).collect(),
            })
            .collect();
        let change = PeerBookChange::Save {
            incarnation: list.local.incarnation,
            peers,
        };
        if let Err(error) = store.update_peer_book(change).await {
            tracing::warn!(%error, "cannot save the member list; will retry on the next change");
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(PEER_BOOK_PAUSE) => {}
        }
    }
}

/// Keeps the capacity, usage and figures this peer announces current.
pub(super) async fn usage_loop(
    files: Files,
    healer: Healer,
    network: Network,
    cancel: CancellationToken,
) {
    let mut ticks = tokio::time::interval(USAGE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let stats = match files.store_stats().await {
            Ok(stats) => stats,
            Err(error) => {
                tracing::debug!(%error, "cannot read store figures");
                continue;
            }
        };
        let used = stats.disk_bytes;
        let free = files.disk_free().unwrap_or(0);
        let repair = healer.figures();
        let transfer = files.transfer_figures();
        let figures = PeerFigures {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            files: stats.files,
            chunks: stats.chunks,
            stored_bytes: stats.bytes,
            under_replicated: repair.under_replicated,
            repair_queued_bytes: repair.queued_bytes,
            repair_bytes_sent: repair.bytes_sent,
            bytes_sent: transfer.chunk_bytes_sent,
            bytes_received: transfer.chunk_bytes_received,
        };
        if network
            .set_usage(used.saturating_add(free), used, figures)
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Collects unreferenced chunks and expired tombstones every `gc_interval`.
pub(super) async fn gc_loop(store: Store, config: StoreConfig, cancel: CancellationToken) {
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

/// Aborts abandoned S3 multipart uploads (those open longer than
/// `expiry`) every [`s3::EXPIRY_INTERVAL`], freeing their parts.
pub(super) async fn upload_expiry_loop(files: Files, expiry: Duration, cancel: CancellationToken) {
    let mut ticks = tokio::time::interval(s3::EXPIRY_INTERVAL.min(expiry));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match s3::expire_abandoned(&files, expiry).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "aborted abandoned multipart uploads"),
            Err(error) => tracing::debug!(%error, "could not look for abandoned uploads"),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
