//! Repair: every peer makes sure the owners of what it holds have it.
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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::{CHUNK_TIMEOUT, Files, FilesError, RECORD_TIMEOUT};
use crate::chunk::{Blake3Hash, FileRecord, Reference};
use crate::dht::{Placement, chunk_position, name_position};
use crate::identity::PeerId;
use crate::protocol::{DataRequest, DataResponse, MAX_HASHES, MAX_RANGES, MAX_REFERENCES};
use crate::store::StoredChunk;

/// What a digest comparison is about.
#[derive(Debug, Clone, Copy)]
enum Kept {
    Chunks,
    Records,
}

/// Chunks looked at per page of a pass.
const CHUNK_PAGE: usize = 1024;

/// Records looked at per page of a pass.
const RECORD_PAGE: usize = 256;

/// What repair has done since the peer started, and in its last pass.
#[derive(Debug, Default)]
pub(super) struct RepairCounters {
    /// (owner, chunk) pairs found lacking in the last look at the chunk.
    lacking: std::sync::Mutex<std::collections::HashSet<(PeerId, Blake3Hash)>>,
    /// The same for chunks this peer owns, found by comparing digests.
    lacking_owned: std::sync::Mutex<std::collections::HashSet<(PeerId, Blake3Hash)>>,
    passes: AtomicU64,
    under_replicated: AtomicU64,
    copies_sent: AtomicU64,
    bytes_sent: AtomicU64,
    records_sent: AtomicU64,
    surplus_dropped: AtomicU64,
    failures: AtomicU64,
}

/// A snapshot of what repair has done.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct RepairFigures {
    /// Passes completed since the peer started.
    pub passes: u64,
    /// Items held here whose up owners lacked them, in the last pass.
    pub under_replicated: u64,
    /// Chunk copies sent to owners that lacked them, since start.
    pub copies_sent: u64,
    /// Bytes of those copies.
    pub bytes_sent: u64,
    /// Manifests and tombstones sent to owners that lacked them or were
    /// behind, since start.
    pub records_sent: u64,
    /// Surplus copies (chunks and records) dropped here once every owner
    /// confirmed holding them, since start.
    pub surplus_dropped: u64,
    /// Copies that could not be sent, since start (retried next pass).
    pub failures: u64,
}

impl RepairCounters {
    /// Whether `key` was found lacking the last time its chunk was looked at.
    fn lacking_before(&self, key: &(PeerId, Blake3Hash)) -> bool {
        self.lacking
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key)
    }

    /// Whether `key` was found lacking by the last digest comparison.
    fn lacking_before_owned(&self, key: &(PeerId, Blake3Hash)) -> bool {
        self.lacking_owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key)
    }

    /// Remembers the pairs the latest digest comparison found lacking.
    fn remember_lacking_owned(&self, now: Vec<(PeerId, Blake3Hash)>) {
        *self.lacking_owned.lock().unwrap_or_else(|e| e.into_inner()) = now.into_iter().collect();
    }

    /// Replaces what is remembered about the chunks of `page` with the pairs
    /// found lacking now.
    fn remember_lacking(&self, page: &[StoredChunk], now: Vec<(PeerId, Blake3Hash)>) {
        let in_page: std::collections::HashSet<Blake3Hash> = page.iter().map(|c| c.hash).collect();
        let mut lacking = self.lacking.lock().unwrap_or_else(|e| e.into_inner());
        lacking.retain(|(_, hash)| !in_page.contains(hash));
        lacking.extend(now);
    }

    pub(super) fn figures(&self) -> RepairFigures {
        RepairFigures {
            passes: self.passes.load(Ordering::Relaxed),
            under_replicated: self.under_replicated.load(Ordering::Relaxed),
            copies_sent: self.copies_sent.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            records_sent: self.records_sent.load(Ordering::Relaxed),
            surplus_dropped: self.surplus_dropped.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

impl Files {
    /// What repair has done so far.
    pub fn repair_figures(&self) -> RepairFigures {
        self.repair.figures()
    }

    /// One repair pass over everything stored here (see the module docs).
    ///
    /// # Errors
    /// Store errors while reading what is held here.
    pub async fn repair_pass(&self) -> Result<RepairFigures, FilesError> {
        let mut under_replicated = self.repair_owned_chunks(&self.placement()).await?;
        under_replicated += self.repair_owned_records(&self.placement()).await?;
        let mut after = None;
        loop {
            let page = self.store.chunk_page(after, CHUNK_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.hash);
            let placement = self.placement();
            let not_owned: Vec<StoredChunk> = page
                .into_iter()
                .filter(|c| {
                    !placement
                        .plan(chunk_position(&c.hash))
                        .owners
                        .contains(&self.local_peer)
                })
                .collect();
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
            let placement = self.placement();
            for head in heads {
                let owners = placement.plan(name_position(head.name.as_str())).owners;
                if owners.contains(&self.local_peer) {
                    continue;
                }
                if let Some(record) = self.store.record(&head.name).await? {
                    under_replicated += u64::from(self.repair_record(&placement, record).await?);
                }
            }
            if !more {
                break;
            }
        }
        self.repair
            .under_replicated
            .store(under_replicated, Ordering::Relaxed);
        self.repair.passes.fetch_add(1, Ordering::Relaxed);
        Ok(self.repair.figures())
    }

    /// Compares what this peer holds with each co-owner, range by range of
    /// the ring, by digest; lists the chunks of differing ranges only; and
    /// sends the co-owners what they lack (if this peer is the first owner
    /// holding the chunk, and only once two passes in a row found it
    /// missing). Returns how many chunks an up owner lacked.
    async fn repair_owned_chunks(&self, placement: &Placement) -> Result<u64, FilesError> {
        let me = self.local_peer;
        let mut lacking: HashMap<Blake3Hash, Vec<PeerId>> = HashMap::new();
        let others: Vec<PeerId> = placement
            .up_members()
            .copied()
            .filter(|p| *p != me)
            .collect();
        for owner in others {
            let ranges = placement.shared_ranges(&me, &owner);
            for range in self.differing_ranges(owner, ranges, Kept::Chunks).await? {
                let Some(missing) = self.missing_in_range(owner, range).await? else {
                    continue;
                };
                for hash in missing {
                    lacking.entry(hash).or_default().push(owner);
                }
            }
        }

        let mut sends = Vec::new();
        let mut now = Vec::new();
        for (hash, owners_lacking) in &lacking {
            let plan = placement.plan(chunk_position(hash));
            // The first owner holding the chunk sends it: an up owner not
            // found lacking was compared with this peer and holds it.
            let first_holder = plan
                .owners
                .iter()
                .find(|o| **o == me || (placement.is_up(o) && !owners_lacking.contains(o)));
            if first_holder != Some(&me) {
                continue;
            }
            for owner in owners_lacking {
                let key = (*owner, *hash);
                if self.repair.lacking_before_owned(&key) {
                    sends.push(key);
                }
                now.push(key);
            }
        }
        self.repair.remember_lacking_owned(now);
        let parallelism = self.healing.repair_parallelism;
        futures::stream::iter(sends)
            .for_each_concurrent(parallelism, |(owner, hash)| async move {
                if let Ok(Some(chunk)) = self.store.stored_chunk(hash).await {
                    self.send_chunk(owner, &chunk).await;
                }
            })
            .await;
        Ok(lacking.len() as u64)
    }

    /// Compares the records of the names this peer owns with each
    /// co-owner, range by range, by digest, and sends a co-owner every record
    /// it lacks or holds an older version of, in the ranges that differ.
    /// Returns how many records were sent.
    async fn repair_owned_records(&self, placement: &Placement) -> Result<u64, FilesError> {
        let me = self.local_peer;
        let mut sent = 0;
        let others: Vec<PeerId> = placement
            .up_members()
            .copied()
            .filter(|p| *p != me)
            .collect();
        for owner in others {
            let ranges = placement.shared_ranges(&me, &owner);
            for range in self.differing_ranges(owner, ranges, Kept::Records).await? {
                sent += self.send_newer_records(owner, range).await?;
            }
        }
        Ok(sent)
    }

    /// Of `ranges`, those where this peer holds something of `kept` and
    /// `owner`'s digest differs from this peer's (none if `owner` does not
    /// answer).
    async fn differing_ranges(
        &self,
        owner: PeerId,
        ranges: Vec<(u64, Option<u64>)>,
        kept: Kept,
    ) -> Result<Vec<(u64, Option<u64>)>, FilesError> {
        let mut differing = Vec::new();
        for batch in ranges.chunks(MAX_RANGES) {
            let (ours, request) = match kept {
                Kept::Chunks => (
                    self.store.range_digests(batch.to_vec()).await?,
                    DataRequest::RangeDigests {
                        ranges: batch.to_vec(),
                    },
                ),
                Kept::Records => (
                    self.store.record_range_digests(batch.to_vec()).await?,
                    DataRequest::RecordDigests {
                        ranges: batch.to_vec(),
                    },
                ),
            };
            let theirs = match self.call(owner, request, RECORD_TIMEOUT).await {
                Ok(DataResponse::Digests(d)) if d.len() == batch.len() => d,
                _ => break,
            };
            for ((range, our), their) in batch.iter().zip(&ours).zip(&theirs) {
                if our != their && our.0 > 0 {
                    differing.push(*range);
                }
            }
        }
        Ok(differing)
    }

    /// Sends `owner` each record this peer holds in `range` that `owner`
    /// lacks or holds an older version of; returns how many were sent.
    async fn send_newer_records(
        &self,
        owner: PeerId,
        (start, end): (u64, Option<u64>),
    ) -> Result<u64, FilesError> {
        let mut theirs: HashMap<String, crate::chunk::Version> = HashMap::new();
        let mut after = None;
        loop {
            let request = DataRequest::RecordHeads {
                start,
                end,
                after: after.clone(),
            };
            match self.call(owner, request, RECORD_TIMEOUT).await {
                Ok(DataResponse::Records { heads, truncated }) => {
                    after = heads
                        .last()
                        .map(|h| (name_position(h.name.as_str()), h.name.clone()));
                    for head in heads {
                        theirs.insert(head.name.as_str().to_owned(), head.version);
                    }
                    if !truncated || after.is_none() {
                        break;
                    }
                }
                _ => return Ok(0),
            }
        }
        let mut sent = 0;
        let mut after = None;
        loop {
            let (ours, more) = self
                .store
                .record_heads_in_range(start, end, after, RECORD_PAGE)
                .await?;
            after = ours
                .last()
                .map(|h| (name_position(h.name.as_str()), h.name.as_str().to_owned()));
            for head in ours {
                if theirs
                    .get(head.name.as_str())
                    .is_some_and(|v| *v >= head.version)
                {
                    continue;
                }
                let Some(record) = self.store.record(&head.name).await? else {
                    continue;
                };
                let request = DataRequest::PutRecord { record };
                if matches!(
                    self.call(owner, request, RECORD_TIMEOUT).await,
                    Ok(DataResponse::RecordWritten(_))
                ) {
                    self.repair.records_sent.fetch_add(1, Ordering::Relaxed);
                    sent += 1;
                } else {
                    self.repair.failures.fetch_add(1, Ordering::Relaxed);
                }
            }
            if !more || after.is_none() {
                break;
            }
        }
        Ok(sent)
    }

    /// The chunks this peer holds in `range` that `owner` does not, or
    /// `None` if `owner` does not answer.
    async fn missing_in_range(
        &self,
        owner: PeerId,
        (start, end): (u64, Option<u64>),
    ) -> Result<Option<Vec<Blake3Hash>>, FilesError> {
        let mut theirs = std::collections::HashSet::new();
        let mut after = None;
        loop {
            let request = DataRequest::RangeHashes { start, end, after };
            match self.call(owner, request, RECORD_TIMEOUT).await {
                Ok(DataResponse::Hashes { hashes, more }) => {
                    after = hashes.last().copied();
                    theirs.extend(hashes);
                    if !more || after.is_none() {
                        break;
                    }
                }
                _ => return Ok(None),
            }
        }
        let mut missing = Vec::new();
        let mut after = None;
        loop {
            let (ours, more) = self
                .store
                .hashes_in_range(start, end, after, MAX_HASHES)
                .await?;
            after = ours.last().copied();
            missing.extend(ours.into_iter().filter(|h| !theirs.contains(h)));
            if !more || after.is_none() {
                break;
            }
        }
        Ok(Some(missing))
    }

    /// Repairs one page of chunks; returns how many lacked a copy on an up
    /// owner.
    async fn repair_chunks(
        &self,
        placement: &Placement,
        page: &[StoredChunk],
    ) -> Result<u64, FilesError> {
        let plans: Vec<_> = page
            .iter()
            .map(|c| placement.plan(chunk_position(&c.hash)))
            .collect();
        // One question per owner: which of the chunks it owns does it hold?
        let mut asked: HashMap<PeerId, Vec<usize>> = HashMap::new();
        for (i, plan) in plans.iter().enumerate() {
            for owner in &plan.owners {
                if *owner != self.local_peer && placement.is_up(owner) {
                    asked.entry(*owner).or_default().push(i);
                }
            }
        }
        let questions = asked.iter().map(|(owner, indexes)| async move {
            let hashes: Vec<Blake3Hash> = indexes.iter().map(|&i| page[i].hash).collect();
            let held = self.held_by(*owner, &hashes).await;
            (*owner, held)
        });
        let mut held: HashMap<(PeerId, usize), bool> = HashMap::new();
        for (owner, answer) in futures::future::join_all(questions).await {
            if let Some(answer) = answer {
                for (&i, has) in asked[&owner].iter().zip(answer) {
                    held.insert((owner, i), has);
                }
            }
        }

        // Send what up owners lack, a few copies at a time. One holder
        // sends each chunk: the first owner (in ring order) that holds it,
        // or any holder when no owner does. A chunk is sent only once it
        // was found lacking in two passes in a row, so a repair does not
        // race a put whose copies are still on their way.
        let mut sends = Vec::new();
        let mut under_replicated = 0;
        let mut lacking_now = Vec::new();
        for (i, plan) in plans.iter().enumerate() {
            let lacking: Vec<PeerId> = plan
                .owners
                .iter()
                .filter(|o| held.get(&(**o, i)) == Some(&false))
                .copied()
                .collect();
            if lacking.is_empty() {
                continue;
            }
            under_replicated += 1;
            let first_holder = plan
                .owners
                .iter()
                .find(|o| **o == self.local_peer || held.get(&(**o, i)) == Some(&true));
            if first_holder.is_some_and(|o| *o != self.local_peer) {
                continue;
            }
            for owner in lacking {
                let key = (owner, page[i].hash);
                if self.repair.lacking_before(&key) {
                    sends.push((i, owner));
                }
                lacking_now.push(key);
            }
        }
        self.repair.remember_lacking(page, lacking_now);
        let parallelism = self.healing.repair_parallelism;
        let results: Vec<(usize, PeerId, bool)> = futures::stream::iter(sends)
            .map(|(i, owner)| async move { (i, owner, self.send_chunk(owner, &page[i]).await) })
            .buffer_unordered(parallelism)
            .collect()
            .await;
        for (i, owner, sent) in results {
            held.insert((owner, i), sent);
        }

        // Drop copies this peer holds beyond the owners' N.
        for (i, plan) in plans.iter().enumerate() {
            let surplus = !plan.owners.contains(&self.local_peer)
                && plan.owners.len() == placement.copies()
                && plan
                    .owners
                    .iter()
                    .all(|o| placement.is_up(o) && held.get(&(*o, i)) == Some(&true));
            if surplus
                && self.owners_have_references(&plan.owners, &page[i]).await?
                && self.store.drop_chunk(page[i].hash).await?
            {
                self.repair.surplus_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(under_replicated)
    }

    /// Which of `hashes` `peer` holds, or `None` if it does not answer.
    async fn held_by(&self, peer: PeerId, hashes: &[Blake3Hash]) -> Option<Vec<bool>> {
        let mut held = Vec::with_capacity(hashes.len());
        for page in hashes.chunks(MAX_HASHES) {
            let request = DataRequest::Has {
                hashes: page.to_vec(),
                claim: None,
            };
            match self.call(peer, request, RECORD_TIMEOUT).await {
                Ok(DataResponse::Held(answer)) if answer.len() == page.len() => held.extend(answer),
                _ => return None,
            }
        }
        Some(held)
    }

    /// Sends this peer's copy of `chunk`, with its references, to `owner`.
    async fn send_chunk(&self, owner: PeerId, chunk: &StoredChunk) -> bool {
        let copy = async {
            let data = self.store.read_chunk(chunk.hash).await.ok()?;
            let references = self
                .store
                .references_of(chunk.hash, MAX_REFERENCES)
                .await
                .ok()?;
            let request = DataRequest::Store {
                hash: chunk.hash,
                md5: chunk.md5,
                data,
                references,
                hint_for: None,
            };
            match self.call(owner, request, CHUNK_TIMEOUT).await {
                Ok(DataResponse::Stored) => Some(()),
                _ => None,
            }
        };
        if copy.await.is_some() {
            self.repair.copies_sent.fetch_add(1, Ordering::Relaxed);
            self.repair
                .bytes_sent
                .fetch_add(u64::from(chunk.len), Ordering::Relaxed);
            true
        } else {
            self.repair.failures.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// Claims every reference this peer's copy of `chunk` carries on each
    /// owner, so dropping the copy loses none; true if all succeeded.
    async fn owners_have_references(
        &self,
        owners: &[PeerId],
        chunk: &StoredChunk,
    ) -> Result<bool, FilesError> {
        let references: Vec<Reference> =
            self.store.references_of(chunk.hash, MAX_REFERENCES).await?;
        for owner in owners {
            for reference in &references {
                let request = DataRequest::Has {
                    hashes: vec![chunk.hash],
                    claim: Some(reference.clone()),
                };
                match self.call(*owner, request, RECORD_TIMEOUT).await {
                    Ok(DataResponse::Held(held)) if held == [true] => {}
                    _ => return Ok(false),
                }
            }
        }
        Ok(true)
    }

    /// Brings the owners of `record`'s name up to it; drops the copy here
    /// if this peer is not an owner and every owner holds it or a newer
    /// version. Returns whether some up owner lacked it.
    async fn repair_record(
        &self,
        placement: &Placement,
        record: FileRecord,
    ) -> Result<bool, FilesError> {
        let plan = placement.plan(name_position(record.name().as_str()));
        let mut lacked = false;
        let mut confirmed = 0;
        for owner in &plan.owners {
            if *owner == self.local_peer {
                continue;
            }
            if !placement.is_up(owner) {
                continue;
            }
            let request = DataRequest::GetRecord {
                name: record.name().clone(),
                head_only: true,
            };
            let behind = match self.call(*owner, request, RECORD_TIMEOUT).await {
                Ok(DataResponse::Head(Some(head))) if head.name == *record.name() => {
                    head.version < *record.version()
                }
                Ok(DataResponse::Head(None)) => true,
                _ => continue,
            };
            if behind {
                lacked = true;
                let request = DataRequest::PutRecord {
                    record: record.clone(),
                };
                match self.call(*owner, request, RECORD_TIMEOUT).await {
                    Ok(DataResponse::RecordWritten(_)) => {
                        self.repair.records_sent.fetch_add(1, Ordering::Relaxed);
                        confirmed += 1;
                    }
                    _ => {
                        self.repair.failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            } else {
                confirmed += 1;
            }
        }
        let surplus = !plan.owners.contains(&self.local_peer)
            && plan.owners.len() == placement.copies()
            && confirmed == plan.owners.len();
        if surplus && self.store.drop_record(record).await? {
            self.repair.surplus_dropped.fetch_add(1, Ordering::Relaxed);
        }
        Ok(lacked)
    }
}

/// What handing everything over before leaving took.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct HandOver {
    /// Chunk copies sent to the peers taking over.
    pub copies_sent: u64,
    /// Bytes of those copies.
    pub bytes_sent: u64,
    /// Manifests and tombstones sent.
    pub records_sent: u64,
    /// Repair passes it took.
    pub passes: u64,
    /// How long it took, in milliseconds.
    pub took_ms: u64,
}

impl Files {
    /// Leaves the swarm for good without a moment of under-replication:
    /// tells every member this peer is leaving (they take it off the ring
    /// at once), then runs repair passes in which it owns nothing, until
    /// every chunk and record it held is confirmed on its new owners and
    /// dropped here. The caller then shuts the peer down.
    ///
    /// # Errors
    /// [`FilesError::HandOverIncomplete`] if some items are still here
    /// after `deadline` (an owner down, say); store errors.
    pub async fn hand_over(&self, deadline: std::time::Duration) -> Result<HandOver, FilesError> {
        let started = std::time::Instant::now();
        let before = self.repair.figures();
        self.network
            .announce_leaving()
            .await
            .map_err(|_| FilesError::ShuttingDown)?;
        let mut passes = 0;
        loop {
            self.repair_pass().await?;
            passes += 1;
            let chunks = self.store.stats().await?.chunks;
            let (records, _) = self.store.heads(String::new(), None, 1).await?;
            if chunks == 0 && records.is_empty() {
                break;
            }
            if started.elapsed() > deadline {
                return Err(FilesError::HandOverIncomplete { chunks });
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let after = self.repair.figures();
        let report = HandOver {
            copies_sent: after.copies_sent - before.copies_sent,
            bytes_sent: after.bytes_sent - before.bytes_sent,
            records_sent: after.records_sent - before.records_sent,
            passes,
            took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        tracing::info!(?report, "handed everything over");
        Ok(report)
    }
}
