//! Repair of copies this peer holds without owning them: stand-in copies
//! kept for an owner that was down or not answering, and copies left from
//! an older ring. Each is sent to the owners that lack it and dropped here
//! once every owner is up and has confirmed it (with every reference this
//! copy carries), so nothing ever falls below N copies while data moves.
//! A copy whose owners go on lacking it while another owner holds it may
//! belong to a version that is gone without this peer having heard: the
//! names' owners are asked (see `Healer::learn_newer_versions`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use libp2p::PeerId;

use super::{HealError, Healer};
use crate::chunk::{Blake3Hash, FileName, FileRecord, Reference, Version, wall_millis};
use crate::dht::{Placement, chunk_position, name_position};
use crate::protocol::MAX_REFERENCES;
use crate::replica::ChunkCopy;
use crate::store::StoredChunk;

/// References read to date a chunk's newest use; a chunk shared by more
/// versions than this may be dated by older ones, which costs at most a
/// copy sent twice.
const SETTLED_LOOKUP: usize = 16;

impl Healer {
    /// Whether some file version uses chunk `hash` here.
    pub(super) async fn is_referenced(&self, hash: Blake3Hash) -> Result<bool, HealError> {
        Ok(!self.store.references_of(hash, 1).await?.is_empty())
    }

    /// Whether chunk `hash` can be sent to an owner found lacking it
    /// without a second look: every version using it here was written at
    /// least `second_look_after` ago, so its copies are no longer on their
    /// way from a put. (A copy sent twice is harmless, only wasted; this
    /// keeps repair from doubling the traffic of uploads under way while
    /// sparing a settled chunk the wait.)
    pub(super) async fn is_settled(&self, hash: Blake3Hash) -> Result<bool, HealError> {
        let references = self.store.references_of(hash, SETTLED_LOOKUP).await?;
        let newest = references.iter().map(|r| r.version.hlc.millis()).max();
        let age = u64::try_from(self.config.second_look_after.as_millis()).unwrap_or(u64::MAX);
        Ok(newest.is_some_and(|written| wall_millis().saturating_sub(written) >= age))
    }

    /// Repairs one page of chunks; returns how many lacked a copy on an up
    /// owner.
    pub(super) async fn repair_chunks(
        &self,
        placement: &Placement,
        page: &[StoredChunk],
    ) -> Result<u64, HealError> {
        let me = self.local_peer();
        let plans: Vec<_> = page
            .iter()
            .map(|c| placement.plan(chunk_position(&c.hash)))
            .collect();
        // One question per owner: which of the chunks it owns does it hold?
        let mut asked: HashMap<PeerId, Vec<usize>> = HashMap::new();
        for (i, plan) in plans.iter().enumerate() {
            for owner in &plan.owners {
                if *owner != me && self.cluster.is_usable(placement, owner) {
                    asked.entry(*owner).or_default().push(i);
                }
            }
        }
        let questions = asked.iter().map(|(owner, indexes)| async move {
            let hashes: Vec<Blake3Hash> = indexes.iter().map(|&i| page[i].hash).collect();
            let held = self.cluster.client().has(*owner, &hashes).await.ok();
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
        // was found lacking in two looks `second_look_after` apart, or its
        // newest version is that old (see `is_settled`), so a
        // repair does not race a put whose copies are still on their way.
        let mut sends = Vec::new();
        let mut under_replicated = 0;
        let mut lacking_now = Vec::new();
        let mut doubtful = Vec::new();
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
                .find(|o| **o == me || held.get(&(**o, i)) == Some(&true));
            if first_holder.is_some_and(|o| *o != me) {
                // That owner sends it, unless no version it knows uses the
                // chunk: it never sends garbage. Then this copy's versions
                // were overwritten or deleted without this peer hearing
                // of it (the notice went out on the other side of a
                // partition), and a lack that outlasts a second look is
                // the sign to ask (see `learn_newer_versions`).
                for owner in lacking {
                    let key = (owner, page[i].hash);
                    if self
                        .counters
                        .lacking_for(&key, self.config.second_look_after)
                    {
                        doubtful.push(page[i].hash);
                    }
                    lacking_now.push(key);
                }
                continue;
            }
            let settled = self.is_settled(page[i].hash).await?;
            for owner in lacking {
                let key = (owner, page[i].hash);
                if settled
                    || self
                        .counters
                        .lacking_for(&key, self.config.second_look_after)
                {
                    sends.push((i, owner));
                }
                lacking_now.push(key);
            }
        }
        self.counters.remember_lacking(page, lacking_now);
        doubtful.dedup();
        self.learn_newer_versions(placement, &doubtful).await?;
        let parallelism = self.config.repair_parallelism;
        let queued: u64 = sends.iter().map(|&(i, _)| u64::from(page[i].len)).sum();
        self.counters
            .queued_bytes
            .fetch_add(queued, Ordering::Relaxed);
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
            let surplus = !plan.owners.contains(&me)
                && plan.owners.len() == placement.copies()
                && plan
                    .owners
                    .iter()
                    .all(|o| placement.is_up(o) && held.get(&(*o, i)) == Some(&true));
            if surplus
                && self.owners_have_references(&plan.owners, &page[i]).await?
                && self.store.drop_chunk(page[i].hash).await?
            {
                self.counters
                    .surplus_dropped
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(under_replicated)
    }

    /// Asks the owners of the names that use `chunks` here for their
    /// newest versions, and takes in, as a supersede notice would have,
    /// each that is newer than a version using one of the chunks: the
    /// references of the older versions are released, so a chunk no live
    /// version uses here becomes garbage, which is neither held for the
    /// owners nor counted as lacking. Without this, a stand-in copy of a
    /// version overwritten or deleted on the other side of a partition
    /// would wait for the reference audit, counted as held and lacking at
    /// every pass meanwhile. The rule is the audit's: a newer version on a
    /// read quorum of the owners means the older one is gone for good;
    /// when too few owners answer nothing changes.
    async fn learn_newer_versions(
        &self,
        placement: &Placement,
        chunks: &[Blake3Hash],
    ) -> Result<(), HealError> {
        let mut oldest: HashMap<FileName, Version> = HashMap::new();
        for hash in chunks {
            for reference in self.store.references_of(*hash, SETTLED_LOOKUP).await? {
                let entry = oldest
                    .entry(reference.name)
                    .or_insert_with(|| reference.version.clone());
                if reference.version < *entry {
                    *entry = reference.version;
                }
            }
        }
        for (name, version) in oldest {
            if let Some(Some(head)) = self.newest_head(placement, &name).await
                && head.version > version
            {
                tracing::debug!(%name, version = ?head.version, "learned of a newer version while handing back");
                self.store.supersede(name, head.version).await?;
            }
        }
        Ok(())
    }

    /// Sends this peer's copy of `chunk`, with its references, to `owner`.
    ///
    /// The caller has counted the copy in `queued_bytes`; it is taken off
    /// once sent or failed.
    pub(super) async fn send_chunk(&self, owner: PeerId, chunk: &StoredChunk) -> bool {
        let copy = async {
            let data = self.store.read_chunk(chunk.hash).await.ok()?;
            let references = self
                .store
                .references_of(chunk.hash, MAX_REFERENCES)
                .await
                .ok()?;
            let copy = ChunkCopy {
                hash: chunk.hash,
                md5: chunk.md5,
                data,
                references,
                hint_for: None,
            };
            self.cluster.client().store(owner, copy).await.ok()
        };
        let sent = copy.await.is_some();
        self.counters
            .queued_bytes
            .fetch_sub(u64::from(chunk.len), Ordering::Relaxed);
        if sent {
            self.counters.copies_sent.fetch_add(1, Ordering::Relaxed);
            self.counters
                .bytes_sent
                .fetch_add(u64::from(chunk.len), Ordering::Relaxed);
            true
        } else {
            self.counters.failures.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// Claims every reference this peer's copy of `chunk` carries on each
    /// owner, so dropping the copy loses none; true if all succeeded.
    async fn owners_have_references(
        &self,
        owners: &[PeerId],
        chunk: &StoredChunk,
    ) -> Result<bool, HealError> {
        let client = self.cluster.client();
        let references: Vec<Reference> =
            self.store.references_of(chunk.hash, MAX_REFERENCES).await?;
        for owner in owners {
            for reference in &references {
                if !matches!(client.claim(*owner, chunk.hash, reference).await, Ok(true)) {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Brings the owners of `record`'s name up to it; drops the copy here
    /// if this peer is not an owner and every owner holds it or a newer
    /// version. Returns whether some up owner lacked it.
    pub(super) async fn repair_record(
        &self,
        placement: &Placement,
        record: FileRecord,
    ) -> Result<bool, HealError> {
        let me = self.local_peer();
        let client = self.cluster.client();
        let plan = placement.plan(name_position(record.name().as_str()));
        let mut lacked = false;
        let mut confirmed = 0;
        for owner in &plan.owners {
            if *owner == me || !self.cluster.is_usable(placement, owner) {
                continue;
            }
            let behind = match client.head(*owner, record.name()).await {
                Ok(Some(head)) => head.version < *record.version(),
                Ok(None) => true,
                Err(_) => continue,
            };
            if behind {
                lacked = true;
                match client.put_record(*owner, record.clone()).await {
                    Ok(_) => {
                        self.counters.records_sent.fetch_add(1, Ordering::Relaxed);
                        confirmed += 1;
                    }
                    _ => {
                        self.counters.failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            } else {
                confirmed += 1;
            }
        }
        let surplus = !plan.owners.contains(&me)
            && plan.owners.len() == placement.copies()
            && confirmed == plan.owners.len();
        if surplus && self.store.drop_record(record).await? {
            self.counters
                .surplus_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(lacked)
    }
}
