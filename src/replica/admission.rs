//! Admitting other peers' data requests: each is answered in a task of its
//! own, within a memory budget.
//!
//! The requests being answered may hold at most [`INBOUND_BUDGET_BYTES`]
//! between them (a chunk to store counts its size, a chunk to send a
//! typical chunk's). Past that, new requests wait here, the swarm's
//! bounded queue fills and further ones are refused as unavailable, so
//! other peers cannot make this one buffer without bound.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio_util::task::TaskTracker;

use crate::net::InboundRequest;
use crate::protocol::DataRequest;
use crate::store::Store;

/// How many bytes the data requests being answered may hold at once.
///
/// A peer keeps at most 8 requests in flight to another, so this covers
/// chunk-sized requests from a dozen peers at once before any waits. With
/// the store's 64 MiB index cache and the 64 chunks this peer's own uploads
/// may hold, the bounds add up to 224 MiB, under the 256 MiB a peer is
/// meant to stay within.
pub const INBOUND_BUDGET_BYTES: usize = 96 * 1024 * 1024;

/// The unit the inbound budget is counted in.
const BUDGET_UNIT: usize = 64 * 1024;

/// Answers other peers' data requests from `store` until the swarm closes
/// `inbound`; each answer runs as a task on `tasks`, so shutdown can wait
/// for the ones under way.
pub async fn serve_inbound(
    store: Store,
    mut inbound: mpsc::Receiver<InboundRequest>,
    tasks: TaskTracker,
) {
    let budget = Arc::new(Semaphore::new(budget_units(INBOUND_BUDGET_BYTES)));
    while let Some(InboundRequest {
        peer,
        request,
        reply,
    }) = inbound.recv().await
    {
        let cost = budget_units(request_bytes(&request)).max(1);
        let Ok(held) = Arc::clone(&budget)
            .acquire_many_owned(u32::try_from(cost).unwrap_or(u32::MAX))
            .await
        else {
            return;
        };
        let store = store.clone();
        tasks.spawn(async move {
            let answer = super::serve(&store, peer, request).await;
            let _ = reply.send(answer);
            drop(held);
        });
    }
}

fn budget_units(bytes: usize) -> usize {
    bytes.div_ceil(BUDGET_UNIT)
}

/// About how much memory answering `request` takes.
fn request_bytes(request: &DataRequest) -> usize {
    match request {
        DataRequest::Store { data, .. } => data.len(),
        DataRequest::Fetch { .. } => crate::chunk::DEFAULT_CHUNK_SIZE as usize,
        _ => BUDGET_UNIT,
    }
}
