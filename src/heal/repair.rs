//! Repair passes: every peer makes sure the owners of what it holds have
//! it.
//!
//! For the chunks this peer owns, a pass compares, with each co-owner, a
//! digest per range of the ring they both own (chunk count and a hash of the
//! chunk hashes); only where digests differ are the ranges' hash lists
//! exchanged, and the co-owner is sent what it lacks. So replicas that agree
//! exchange a few kilobytes, however much they hold. The chunks this peer
//! holds without owning them (stand-in copies, copies left from an older
//! ring) are checked one by one with their owners. Records (manifests and
//! tombstones) go the same way: co-owners compare a digest of the names and
//! versions in each shared range, and the records this peer holds without
//! owning them are checked one by one.
//! An owner that is up and lacks a copy is sent one, with every reference
//! this peer knows for it. This single rule covers the cases a swarm meets:
//!
//! - **re-replication**: a member dead for longer than `--rereplicate-after`
//!   leaves the ring, new peers own its keys, and the survivors holding
//!   those keys copy them over;
//! - **hinted handoff**: a stand-in holds a copy for an owner that was down;
//!   once the owner is back and lacks it, the stand-in sends it;
//! - **rebalancing**: a peer that joins owns part of the ring at once, and
//!   the previous holders send it its share;
//! - **catching up**: a peer that missed writes or deletes while away is
//!   sent the newer manifests and tombstones by the others.
//!
//! A peer drops its own copy only when it is not an owner, every owner is
//! up, and every owner has confirmed holding the item (and, for a chunk,
//! every reference this copy carries): a copy is never dropped while that
//! would leave fewer than N.

use std::sync::atomic::Ordering;

use super::{HealError, Healer, RepairFigures};
use crate::dht::{chunk_position, name_position};
use crate::store::StoredChunk;

/// Chunks looked at per page of a pass.
const CHUNK_PAGE: usize = 1024;

/// Records looked at per page of a pass.
const RECORD_PAGE: usize = 256;

impl Healer {
    /// One repair pass over everything stored here (see the module docs).
    ///
    /// # Errors
    /// Store errors while reading what is held here.
    pub async fn repair_pass(&self) -> Result<RepairFigures, HealError> {
        let me = self.local_peer();
        let mut under_replicated = self.repair_owned_chunks(&self.cluster.placement()).await?;
        under_replicated += self.repair_owned_records(&self.cluster.placement()).await?;
        let mut held_chunks = 0;
        let mut held_records = 0;
        let mut after = None;
        loop {
            let page = self.store.chunk_page(after, CHUNK_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.hash);
            let placement = self.cluster.placement();
            let mut not_owned: Vec<StoredChunk> = Vec::new();
            for chunk in page {
                // Garbage (no version uses it) is left to collection, not
                // handed to owners.
                if !placement
                    .plan(chunk_position(&chunk.hash))
                    .owners
                    .contains(&me)
                    && self.is_referenced(chunk.hash).await?
                {
                    not_owned.push(chunk);
                }
            }
            held_chunks += not_owned.len() as u64;
            if !not_owned.is_empty() {
                under_replicated += self.repair_chunks(&placement, &not_owned).await?;
            }
        }
        let mut after = None;
        loop {
            let (heads, more) = self
                .store
                .heads(String::new(), after.clone(), RECORD_PAGE)
                .await?;
            let Some(last) = heads.last() else { break };
            after = Some(last.name.as_str().to_owned());
            let placement = self.cluster.placement();
            for head in heads {
                let owners = placement.plan(name_position(head.name.as_str())).owners;
                if owners.contains(&me) {
                    continue;
                }
                held_records += 1;
                if let Some(record) = self.store.record(&head.name).await? {
                    under_replicated += u64::from(self.repair_record(&placement, record).await?);
                }
            }
            if !more {
                break;
            }
        }
        let counters = &self.counters;
        counters
            .under_replicated
            .store(under_replicated, Ordering::Relaxed);
        counters.held_chunks.store(held_chunks, Ordering::Relaxed);
        counters.held_records.store(held_records, Ordering::Relaxed);
        counters.passes.fetch_add(1, Ordering::Relaxed);
        Ok(counters.figures())
    }
}
