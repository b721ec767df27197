//! Checking the chunk references this peer holds against the manifests.
//!
//! A reference is released everywhere when its version is overwritten,
//! deleted or abandoned, but a peer that was down at that moment misses the
//! release and would keep the chunks forever. So each peer now and then
//! asks, for every reference it holds, what became of its version:
//!
//! - a read quorum of the manifest's owners answers and the newest version
//!   among them is newer than the reference's (a later write or a
//!   tombstone): the version is gone for good, since last writer wins
//!   never brings an older version back, and the newer one is durable on
//!   a quorum. Release it.
//! - the newest is the reference's own version: keep it.
//! - no owner has the version or anything newer: the upload is running,
//!   failed before writing its manifest, or wrote it somewhere the owners
//!   do not know of (before a ring change, or on a stand-in). So the
//!   reference is released only if its writer says the upload is not
//!   running (a writer that cannot be reached is given [`WRITER_SILENCE`])
//!   *and* every member of the ring answers that it holds no record of the
//!   name at that version or newer.
//!
//! When in doubt (a member is down, too few owners answer) the reference
//! is kept: a leak costs space, a wrong release could cost data.

use std::time::Duration;

use serde::Serialize;

use libp2p::PeerId;

use super::{HealError, Healer};
use crate::chunk::{FileName, RecordHead, Reference, wall_millis};
use crate::dht::{Placement, name_position};

/// How many references are read from the store at a time.
const PAGE: usize = 256;

/// How long an upload whose writer does not answer may go without a
/// manifest before its reference is presumed abandoned.
const WRITER_SILENCE: Duration = Duration::from_secs(60 * 60);

/// What one audit pass found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// References looked at.
    pub checked: u64,
    /// References released because their version is gone.
    pub released: u64,
    /// References left alone because the answer was not certain.
    pub undecided: u64,
}

/// What became of a reference's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Keep,
    Release,
    Undecided,
}

impl Healer {
    /// Checks every reference held here that is older than `min_age` and
    /// releases those whose version is gone (see the module docs).
    ///
    /// # Errors
    /// Store errors reading or releasing references.
    pub async fn audit_references(&self, min_age: Duration) -> Result<AuditReport, HealError> {
        let mut report = AuditReport::default();
        let newest_considered =
            wall_millis().saturating_sub(u64::try_from(min_age.as_millis()).unwrap_or(u64::MAX));
        let mut after = None;
        loop {
            let page = self.store.references(after, PAGE).await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(*last);
            let placement = self.cluster.placement();
            for (id, reference) in page {
                if reference.version.hlc.millis() > newest_considered {
                    continue;
                }
                report.checked += 1;
                match self.fate(&placement, &reference).await {
                    Fate::Keep => {}
                    Fate::Undecided => report.undecided += 1,
                    Fate::Release => {
                        self.store.release(id).await?;
                        report.released += 1;
                        tracing::info!(name = %reference.name, version = ?reference.version, "released the chunks of a version that is gone");
                    }
                }
            }
        }
        Ok(report)
    }

    async fn fate(&self, placement: &Placement, reference: &Reference) -> Fate {
        match self.newest_head(placement, &reference.name).await {
            None => return Fate::Undecided,
            Some(Some(head)) if head.version > reference.version => return Fate::Release,
            Some(Some(head)) if head.version == reference.version => return Fate::Keep,
            Some(_) => {}
        }
        match self.writer_still_uploading(reference).await {
            Some(true) => return Fate::Keep,
            Some(false) => {}
            None => {
                let age = wall_millis().saturating_sub(reference.version.hlc.millis());
                if u128::from(age) < WRITER_SILENCE.as_millis() {
                    return Fate::Undecided;
                }
            }
        }
        if self.nobody_has_it(placement, reference).await {
            Fate::Release
        } else {
            Fate::Undecided
        }
    }

    /// Whether every member of the ring is up and answers that it holds no
    /// record of the reference's name at its version or newer.
    async fn nobody_has_it(&self, placement: &Placement, reference: &Reference) -> bool {
        if placement.down_count() > 0 {
            return false;
        }
        let client = self.cluster.client();
        let asks = placement
            .up_members()
            .map(|&peer| client.head(peer, &reference.name));
        futures::future::join_all(asks)
            .await
            .into_iter()
            .all(|answer| match answer {
                Ok(None) => true,
                Ok(Some(head)) => head.version < reference.version,
                Err(_) => false,
            })
    }

    /// Whether the version's writer is still uploading it: `None` if the
    /// writer cannot be asked.
    async fn writer_still_uploading(&self, reference: &Reference) -> Option<bool> {
        let writer: PeerId = reference.version.writer.parse().ok()?;
        self.cluster
            .client()
            .uploading(writer, reference.id())
            .await
            .ok()
    }

    /// The newest head a read quorum of `name`'s owners holds: `None` if too
    /// few answer, `Some(None)` if none holds a record.
    pub(super) async fn newest_head(
        &self,
        placement: &Placement,
        name: &FileName,
    ) -> Option<Option<RecordHead>> {
        let plan = placement.plan(name_position(name.as_str()));
        let needed = self.cluster.read_quorum(plan.owners.len());
        let client = self.cluster.client();
        let asks = plan
            .owners
            .iter()
            .filter(|p| placement.is_up(p))
            .map(|&peer| client.head(peer, name));
        let mut answered = 0;
        let mut newest: Option<RecordHead> = None;
        for head in futures::future::join_all(asks).await.into_iter().flatten() {
            answered += 1;
            if let Some(head) = head
                && newest.as_ref().is_none_or(|n| head.version > n.version)
            {
                newest = Some(head);
            }
        }
        (answered >= needed).then_some(newest)
    }
}
