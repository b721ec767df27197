//! File records across the swarm: quorum writes, deletes, listings, and
//! letting go of the chunks of versions that are gone.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::{Files, FilesError};
use crate::chunk::{
    Blake3Hash, FILES_AFTER, FileName, FileRecord, FileSummary, Hlc, Manifest, RecordHead,
    RecordKind, Version, wall_millis,
};
use crate::dht::{Placement, name_position};
use crate::identity::PeerId;
use crate::protocol::{MAX_LIST_PAGE, RecordWrite};
use crate::replica::{PeerError, PeerFailure};

/// How a record write ended, once a write quorum stored it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WriteOutcome {
    /// It is the current record on the owners that answered; `replaced`
    /// if one of them held an older version of the name.
    Current { replaced: bool },
    /// Some owner already had a newer version (the newest clock reading
    /// given): this one lost.
    Superseded { newer: Hlc },
}

/// A page of the swarm-wide listing.
#[derive(Debug, Clone)]
pub struct Listing {
    /// Live files, in name order.
    pub files: Vec<FileSummary>,
    /// Whether names after the last one also match.
    pub truncated: bool,
}

impl Files {
    /// Writes `record` to the first N usable peers of its name's
    /// preference list (a peer that fails is replaced by the next) and
    /// succeeds once W of them stored it durably; the writes still under
    /// way then finish in the background.
    pub(super) async fn write_record(
        &self,
        placement: &Placement,
        record: FileRecord,
    ) -> Result<WriteOutcome, FilesError> {
        let name = record.name().clone();
        let plan = placement.plan(name_position(name.as_str()));
        let targets = self.cluster.write_targets(placement, &plan);
        let needed = self.cluster.write_quorum(plan.owners.len());
        let client = self.cluster.client().clone();
        let write = move |peer: PeerId, stand_in: bool| {
            let client = client.clone();
            let record = record.clone();
            async move { (stand_in, client.put_record(peer, record).await) }
        };
        let mut spares = targets.spares;
        let mut writes: FuturesUnordered<_> = targets
            .first
            .iter()
            .map(|&(peer, hint_for)| write(peer, hint_for.is_some()))
            .collect();
        let mut stored = 0;
        let mut superseded: Option<Hlc> = None;
        let mut replaced = false;
        let mut failures = Vec::new();
        while let Some((stand_in, answer)) = writes.next().await {
            match answer {
                Ok(outcome) => {
                    if let RecordWrite::Superseded { newer } = outcome {
                        superseded = superseded.max(Some(newer));
                    }
                    replaced |= outcome == RecordWrite::Replaced;
                    stored += 1;
                    if stand_in {
                        self.counters
                            .stand_in_copies
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    if stored >= needed {
                        break;
                    }
                }
                Err(failure) => {
                    failures.push(failure);
                    if let Some(next) = spares.pop_front() {
                        writes.push(write(next, true));
                    }
                }
            }
        }
        if stored < needed {
            return Err(FilesError::not_enough_replicas(
                format!("the manifest of {name}"),
                stored,
                needed,
                &failures,
                self.cluster.owners_unusable(placement, &plan),
            ));
        }
        if !writes.is_empty() {
            self.tasks
                .spawn(async move { while writes.next().await.is_some() {} });
        }
        Ok(match superseded {
            Some(newer) => WriteOutcome::Superseded { newer },
            None => WriteOutcome::Current { replaced },
        })
    }

    /// Deletes `name` by writing a tombstone newer than its current version
    /// to a write quorum of its owners. The chunks of the deleted version
    /// are released on every peer and their space is reclaimed once no
    /// other file uses them.
    ///
    /// Returns the tombstone's version.
    ///
    /// # Errors
    /// [`FilesError::NotFound`] if there is no such file;
    /// [`FilesError::NotEnoughReplicas`] if too few peers answer.
    pub async fn delete(&self, name: &FileName) -> Result<Version, FilesError> {
        let placement = self.cluster.placement();
        let current = self.read_record(&placement, name).await?;
        let Some(FileRecord::Live(_)) = current else {
            return Err(FilesError::NotFound(name.clone()));
        };
        let version = self.next_version();
        let tombstone = FileRecord::Deleted {
            name: name.clone(),
            version: version.clone(),
            deleted_ms: wall_millis(),
            extensions: Default::default(),
        };
        self.write_record(&placement, tombstone).await?;
        self.supersede_in_background(&placement, name, &version);
        tracing::info!(%name, "deleted file");
        Ok(version)
    }

    /// Tells every up member (and the local store) that the version with
    /// reference `id` is gone, so its chunks can be collected where no
    /// other version uses them. Peers that miss it keep the chunks longer;
    /// nothing is lost.
    pub(super) async fn release_everywhere(&self, placement: &Placement, id: Blake3Hash) {
        let client = self.cluster.client();
        let releases = placement.up_members().map(|&peer| async move {
            if let Err(failure) = client.release(peer, id).await {
                tracing::debug!(%failure, "a peer did not take a release");
            }
        });
        futures::future::join_all(releases).await;
    }

    /// Tells every up member, without waiting, that `version` of `name` is
    /// durable, so each drops the holds of every older version of the name
    /// on its chunks, whichever releases it missed while it was away.
    /// Peers that miss this too are caught by the reference audit.
    pub(super) fn supersede_in_background(
        &self,
        placement: &Placement,
        name: &FileName,
        version: &Version,
    ) {
        let peers: Vec<PeerId> = placement.up_members().copied().collect();
        let client = self.cluster.client().clone();
        let name = name.clone();
        let version = version.clone();
        self.tasks.spawn(async move {
            let notices = peers
                .iter()
                .map(|&peer| client.supersede(peer, &name, &version));
            for answer in futures::future::join_all(notices).await {
                if let Err(failure) = answer {
                    tracing::debug!(%failure, "a peer did not take a supersede notice");
                }
            }
        });
    }

    /// Live files whose names start with `prefix`, after `after`, at most
    /// `limit`, across the whole swarm: every up member lists the records
    /// it keeps, and for each name the newest version decides whether the
    /// file exists. The swarm's own records are never listed.
    ///
    /// # Errors
    /// [`FilesError::NotEnoughReplicas`] if so many members fail to answer
    /// that some file could be missed.
    pub async fn list(
        &self,
        prefix: String,
        after: Option<String>,
        limit: usize,
    ) -> Result<Listing, FilesError> {
        let after = after.max(Some(FILES_AFTER.to_owned()));
        self.list_names(prefix, after, limit).await
    }

    /// Live records of `kind` (not files) whose ids start with `prefix`,
    /// after the id `after`, at most `limit`, as [`Files::list`] finds them.
    /// Their names are full record names.
    ///
    /// # Errors
    /// As [`Files::list`].
    pub async fn list_records(
        &self,
        kind: RecordKind,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Listing, FilesError> {
        let start = kind.prefix();
        let after = after.map(|after| format!("{start}{after}"));
        self.list_names(format!("{start}{prefix}"), after, limit)
            .await
    }

    /// Every live record of `kind` (up to `most`), each with its manifest,
    /// page by page: for the swarm's small kinds (access keys, tokens),
    /// which are listed whole. A record deleted between the listing and
    /// the read is left out.
    ///
    /// # Errors
    /// As [`Files::list`] and [`Files::manifest`].
    pub async fn whole_kind(
        &self,
        kind: RecordKind,
        most: usize,
    ) -> Result<Vec<(FileSummary, Manifest)>, FilesError> {
        let mut found = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.list_records(kind, "", after.as_deref(), 1000).await?;
            for summary in page.files.iter() {
                match self.manifest(&summary.name).await {
                    Ok(manifest) => found.push((summary.clone(), manifest)),
                    Err(FilesError::NotFound(_)) => {}
                    Err(error) => return Err(error),
                }
            }
            match page.files.last() {
                Some(last) if page.truncated && found.len() < most => {
                    after = Some(last.name.id().to_owned());
                }
                _ => return Ok(found),
            }
        }
    }

    /// Live records whose names start with `prefix` (see [`Files::list`]).
    async fn list_names(
        &self,
        prefix: String,
        after: Option<String>,
        limit: usize,
    ) -> Result<Listing, FilesError> {
        let placement = self.cluster.placement();
        let peers: Vec<PeerId> = placement.up_members().copied().collect();
        let client = self.cluster.client();
        let page = u32::try_from(limit.clamp(1, MAX_LIST_PAGE)).unwrap_or(1);
        let mut after = after;
        let mut files: Vec<FileSummary> = Vec::new();
        loop {
            let asks = peers
                .iter()
                .map(|&peer| client.list_records(peer, &prefix, after.as_deref(), page));
            let answers = futures::future::join_all(asks).await;
            let mut newest: BTreeMap<String, RecordHead> = BTreeMap::new();
            // Names past the end of a truncated page may exist on that
            // peer, so the merged page is complete only up to the smallest
            // such end.
            let mut complete_up_to: Option<String> = None;
            let mut failures = Vec::new();
            for (peer, answer) in peers.iter().zip(answers) {
                let (heads, truncated) = match answer {
                    Ok(page) => page,
                    Err(failure) => {
                        failures.push(failure);
                        continue;
                    }
                };
                if !is_page_of(&heads, &prefix, after.as_deref()) {
                    failures.push(PeerFailure::new(
                        *peer,
                        PeerError::Unexpected("a listing with names out of order or range".into()),
                    ));
                    continue;
                }
                if truncated && let Some(last) = heads.last() {
                    let last = last.name.as_str();
                    if complete_up_to.as_deref().is_none_or(|c| last < c) {
                        complete_up_to = Some(last.to_owned());
                    }
                }
                for head in heads {
                    self.clock.observe(head.version.hlc);
                    match newest.get(head.name.as_str()) {
                        Some(seen) if seen.version >= head.version => {}
                        _ => {
                            newest.insert(head.name.as_str().to_owned(), head);
                        }
                    }
                }
            }
            // Every acknowledged write is on a write quorum of distinct
            // members (owners or stand-ins); with fewer of them down or
            // silent than that, one of them answered for each name.
            let missing = failures.len() + placement.down_count();
            if missing > 0 && missing >= self.cluster.write_quorum(placement.copies()) {
                return Err(FilesError::not_enough_replicas(
                    "the file listing".into(),
                    peers.len() - failures.len(),
                    peers.len() + placement.down_count() + 1 - placement.copies(),
                    &failures,
                    placement.down_count(),
                ));
            }
            for (name, head) in newest {
                if complete_up_to.as_deref().is_some_and(|c| name.as_str() > c) {
                    break;
                }
                if let Some(live) = head.live {
                    if files.len() == limit {
                        return Ok(Listing {
                            files,
                            truncated: true,
                        });
                    }
                    files.push(live);
                }
            }
            match complete_up_to {
                None => {
                    return Ok(Listing {
                        files,
                        truncated: false,
                    });
                }
                // `end` sorts after `after` (checked above), so this ends.
                Some(end) => after = Some(end),
            }
        }
    }
}

/// Whether `heads` is a well-formed listing page: names in strictly
/// increasing order, all starting with `prefix` and after `after`.
fn is_page_of(heads: &[RecordHead], prefix: &str, after: Option<&str>) -> bool {
    let names: Vec<&str> = heads.iter().map(|h| h.name.as_str()).collect();
    names.windows(2).all(|pair| pair[0] < pair[1])
        && names.iter().all(|n| n.starts_with(prefix))
        && names
            .first()
            .is_none_or(|first| after.is_none_or(|a| *first > a))
        && heads
            .iter()
            .all(|h| h.live.as_ref().is_none_or(|l| l.name == h.name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::{Hlc, Version};

    fn head(name: &str) -> RecordHead {
        RecordHead {
            version: Version {
                hlc: Hlc(1),
                writer: "w".into(),
            },
            live: None,
            name: FileName::new(name).unwrap(),
        }
    }

    #[test]
    fn only_ordered_pages_within_the_prefix_and_after_the_cursor_are_accepted() {
        let page = [head("a/1"), head("a/2")];
        assert!(is_page_of(&page, "a/", None));
        assert!(is_page_of(&page, "a/", Some("a/0")));
        assert!(
            !is_page_of(&page, "a/", Some("a/1")),
            "a name not after the cursor"
        );
        assert!(
            !is_page_of(&[head("a/2"), head("a/1")], "a/", None),
            "out of order"
        );
        assert!(
            !is_page_of(&[head("a/1"), head("a/1")], "a/", None),
            "repeated"
        );
        assert!(!is_page_of(&[head("b")], "a/", None), "outside the prefix");
        assert!(is_page_of(&[], "a/", Some("z")));
    }
}
