//! File records across the swarm: quorum writes, deletes, listings, and
//! releasing the chunks of versions that are gone.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Files, FilesError, PeerFailure, RECORD_TIMEOUT};
use crate::chunk::{FileName, FileRecord, FileSummary, RecordHead, wall_millis};
use crate::dht::{Placement, name_position};
use crate::identity::PeerId;
use crate::protocol::{DataRequest, DataResponse, MAX_LIST_PAGE, RecordWrite};

/// How a record write ended, once a write quorum stored it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WriteOutcome {
    /// It is the current record on the owners that answered.
    Current,
    /// Some owner already had a newer version: this one lost.
    Superseded,
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
    /// Writes `record` to its name's owners (stand-ins for owners that are
    /// down) and succeeds once a write quorum of owners stored it durably.
    pub(super) async fn write_record(
        &self,
        placement: &Placement,
        record: FileRecord,
    ) -> Result<WriteOutcome, FilesError> {
        let name = record.name().clone();
        let plan = placement.plan(name_position(name.as_str()));
        let mut stand_ins = plan.stand_ins.iter();
        let mut targets: Vec<(PeerId, bool)> = Vec::new();
        for owner in &plan.owners {
            if placement.is_up(owner) {
                targets.push((*owner, true));
            } else if let Some(stand_in) = stand_ins.next() {
                targets.push((*stand_in, false));
            }
        }
        let writes = targets.iter().map(|&(peer, _)| {
            let request = DataRequest::PutRecord {
                record: record.clone(),
            };
            self.call(peer, request, RECORD_TIMEOUT)
        });
        let answers = futures::future::join_all(writes).await;
        let mut stored = 0;
        let mut superseded = false;
        let mut failures = Vec::new();
        for ((peer, is_owner), answer) in targets.iter().zip(answers) {
            match answer {
                Ok(DataResponse::RecordWritten(outcome)) => {
                    superseded |= outcome == RecordWrite::Superseded;
                    stored += usize::from(*is_owner);
                }
                Ok(other) => failures.push(PeerFailure::unexpected(*peer, &other)),
                Err(failure) => failures.push(failure),
            }
        }
        let needed = self.write_quorum(plan.owners.len());
        if stored < needed {
            return Err(FilesError::not_enough_replicas(
                format!("the manifest of {name}"),
                stored,
                needed,
                &failures,
                plan.owners.iter().filter(|p| !placement.is_up(p)).count(),
            ));
        }
        Ok(if superseded {
            WriteOutcome::Superseded
        } else {
            WriteOutcome::Current
        })
    }

    /// Deletes `name` by writing a tombstone newer than its current version
    /// to a write quorum of its owners. The chunks of the deleted version
    /// are released on every peer and their space is reclaimed once no
    /// other file uses them.
    ///
    /// # Errors
    /// [`FilesError::NotFound`] if there is no such file;
    /// [`FilesError::NotEnoughReplicas`] if too few owners answer.
    pub async fn delete(&self, name: &FileName) -> Result<(), FilesError> {
        let placement = self.placement();
        let current = self.read_record(&placement, name).await?;
        let Some(FileRecord::Live(manifest)) = current else {
            return Err(FilesError::NotFound(name.clone()));
        };
        let tombstone = FileRecord::Deleted {
            name: name.clone(),
            version: self.next_version(),
            deleted_ms: wall_millis(),
        };
        self.write_record(&placement, tombstone).await?;
        self.release_in_background(&placement, manifest.reference_id());
        tracing::info!(%name, "deleted file");
        Ok(())
    }

    /// Tells every up member (and the local store) that the version with
    /// reference `id` is gone, so its chunks can be collected where no
    /// other version uses them. Peers that miss it keep the chunks longer;
    /// nothing is lost.
    pub(super) async fn release_everywhere(
        &self,
        placement: &Placement,
        id: crate::chunk::Blake3Hash,
    ) {
        let peers: Vec<PeerId> = placement.up_members().copied().collect();
        let releases = peers.into_iter().map(|peer| async move {
            let request = DataRequest::Release { reference: id };
            if let Err(failure) = self.call(peer, request, RECORD_TIMEOUT).await {
                tracing::debug!(%failure, "a peer did not take a release");
            }
        });
        futures::future::join_all(releases).await;
    }

    /// [`Files::release_everywhere`] without waiting for it.
    pub(super) fn release_in_background(
        &self,
        placement: &Arc<Placement>,
        id: crate::chunk::Blake3Hash,
    ) {
        let files = self.clone();
        let placement = Arc::clone(placement);
        tokio::spawn(async move { files.release_everywhere(&placement, id).await });
    }

    /// Live files whose names start with `prefix`, after `after`, at most
    /// `limit`, across the whole swarm: every up member lists the records
    /// it keeps, and for each name the newest version decides whether the
    /// file exists.
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
        let placement = self.placement();
        let peers: Vec<PeerId> = placement.up_members().copied().collect();
        let page = u32::try_from(limit.clamp(1, MAX_LIST_PAGE)).unwrap_or(1);
        let mut after = after;
        let mut files: Vec<FileSummary> = Vec::new();
        loop {
            let asks = peers.iter().map(|&peer| {
                let request = DataRequest::ListRecords {
                    prefix: prefix.clone(),
                    after: after.clone(),
                    limit: page,
                };
                self.call(peer, request, RECORD_TIMEOUT)
            });
            let answers = futures::future::join_all(asks).await;
            let mut newest: BTreeMap<String, RecordHead> = BTreeMap::new();
            // Names past the end of a truncated page may exist on that
            // peer, so the merged page is complete only up to the smallest
            // such end.
            let mut complete_up_to: Option<String> = None;
            let mut failures = Vec::new();
            for (peer, answer) in peers.iter().zip(answers) {
                let (heads, truncated) = match answer {
                    Ok(DataResponse::Records { heads, truncated }) => (heads, truncated),
                    Ok(other) => {
                        failures.push(PeerFailure::unexpected(*peer, &other));
                        continue;
                    }
                    Err(failure) => {
                        failures.push(failure);
                        continue;
                    }
                };
                if !is_page_of(&heads, &prefix, after.as_deref()) {
                    failures.push(PeerFailure {
                        peer: *peer,
                        refusal: None,
                        message: "answered a listing with names out of order or range".into(),
                    });
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
            // Every acknowledged write is on a write quorum of members;
            // with fewer of them down or silent than that, one of them
            // answered for each name.
            let missing = failures.len() + placement.down_count();
            if missing > 0 && missing >= self.write_quorum(placement.copies()) {
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
