//! Repair of what this peer owns: comparing with each co-owner, range by
//! range of the ring, one digest per range (chunk count and a hash of the
//! hashes, or of the record names and versions), listing only the ranges
//! whose digests differ, and sending the co-owner what it lacks. Replicas
//! in agreement exchange a few kilobytes per pass, however much they hold.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use libp2p::PeerId;

use super::{HealError, Healer};
use crate::chunk::Blake3Hash;
use crate::dht::{Placement, chunk_position, name_position};
use crate::protocol::{MAX_HASHES, MAX_RANGES};
use crate::replica::RingRange;

/// What a digest comparison is about.
#[derive(Debug, Clone, Copy)]
enum Kept {
    Chunks,
    Records,
}

/// Records looked at per page.
const RECORD_PAGE: usize = 256;

impl Healer {
    /// The usable members other than this peer: the co-owners to compare
    /// with (a pair that shares no range costs nothing).
    fn others(&self, placement: &Placement) -> Vec<PeerId> {
        let me = self.local_peer();
        self.cluster
            .usable_members(placement)
            .into_iter()
            .filter(|p| *p != me)
            .collect()
    }

    /// Compares what this peer holds with each co-owner, range by range of
    /// the ring, by digest; lists the chunks of differing ranges only; and
    /// sends the co-owners what they lack (if this peer is the first owner
    /// holding the chunk, and only once two looks a second-look time apart
    /// found it missing or the chunk is settled). Returns how many chunks an up owner lacked.
    pub(super) async fn repair_owned_chunks(
        &self,
        placement: &Placement,
    ) -> Result<u64, HealError> {
        let me = self.local_peer();
        let mut lacking: HashMap<Blake3Hash, Vec<PeerId>> = HashMap::new();
        for owner in self.others(placement) {
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

        // A chunk no version uses is garbage waiting for its grace time:
        // sending it would only restart that time on the receiver, and
        // owners would pass it back and forth for ever.
        let mut garbage = Vec::new();
        for hash in lacking.keys() {
            if !self.is_referenced(*hash).await? {
                garbage.push(*hash);
            }
        }
        for hash in garbage {
            lacking.remove(&hash);
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
            let settled = self.is_settled(*hash).await?;
            for owner in owners_lacking {
                let key = (*owner, *hash);
                if settled
                    || self
                        .counters
                        .lacking_owned_for(&key, self.config.second_look_after)
                {
                    sends.push(key);
                }
                now.push(key);
            }
        }
        self.counters.remember_lacking_owned(now);
        let parallelism = self.config.repair_parallelism;
        futures::stream::iter(sends)
            .for_each_concurrent(parallelism, |(owner, hash)| async move {
                if let Ok(Some(chunk)) = self.store.stored_chunk(hash).await {
                    self.counters
                        .queued_bytes
                        .fetch_add(u64::from(chunk.len), Ordering::Relaxed);
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
    pub(super) async fn repair_owned_records(
        &self,
        placement: &Placement,
    ) -> Result<u64, HealError> {
        let me = self.local_peer();
        let mut sent = 0;
        for owner in self.others(placement) {
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
        ranges: Vec<RingRange>,
        kept: Kept,
    ) -> Result<Vec<RingRange>, HealError> {
        let client = self.cluster.client();
        let mut differing = Vec::new();
        for batch in ranges.chunks(MAX_RANGES) {
            let (ours, theirs) = match kept {
                Kept::Chunks => (
                    self.store.range_digests(batch.to_vec()).await?,
                    client.chunk_digests(owner, batch).await,
                ),
                Kept::Records => (
                    self.store.record_range_digests(batch.to_vec()).await?,
                    client.record_digests(owner, batch).await,
                ),
            };
            let Ok(theirs) = theirs else { break };
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
        (start, end): RingRange,
    ) -> Result<u64, HealError> {
        let client = self.cluster.client();
        let mut theirs: HashMap<String, crate::chunk::Version> = HashMap::new();
        let mut after = None;
        loop {
            match client
                .record_heads(owner, (start, end), after.clone())
                .await
            {
                Ok((heads, truncated)) => {
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
                if client.put_record(owner, record).await.is_ok() {
                    self.counters.records_sent.fetch_add(1, Ordering::Relaxed);
                    sent += 1;
                } else {
                    self.counters.failures.fetch_add(1, Ordering::Relaxed);
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
        (start, end): RingRange,
    ) -> Result<Option<Vec<Blake3Hash>>, HealError> {
        let client = self.cluster.client();
        let mut theirs = std::collections::HashSet::new();
        let mut after = None;
        loop {
            match client.chunk_hashes(owner, (start, end), after).await {
                Ok((hashes, more)) => {
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
}
