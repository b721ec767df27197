//! Answering data requests from the local store: other peers' and this
//! peer's own.
//!
//! Whoever asks, a chunk's bytes are not taken on trust: a chunk to store
//! is re-hashed with BLAKE3 (its address) before it is written, and one
//! whose bytes do not match is refused and logged with the sender. The MD5
//! it carries is kept as given: it exists for clients to check what they
//! receive, and hashing MD5 again on every replica would cost more CPU
//! than the rest of the write. The coordinator of a put or get
//! (`crate::files`) reaches the local peer through [`serve_local`], so the
//! local and remote paths are the same code.

use libp2p::PeerId;

use crate::chunk::{Blake3Hash, FileRecord, is_plausible};
use crate::protocol::{DataRequest, DataResponse, MAX_HASHES, MAX_LIST_PAGE, RecordWrite, Refusal};
use crate::store::{ChunkWrite, RecordOutcome, Store, StoreError};

/// Carries out another peer's `request` against `store` and returns the
/// answer. `from` is the asking peer, for logs.
pub async fn serve(store: &Store, from: PeerId, request: DataRequest) -> DataResponse {
    answer(store, Some(from), request).await
}

/// Carries out this peer's own `request`. Chunks to store were hashed by
/// this process a moment ago, so they are not hashed again.
pub async fn serve_local(store: &Store, request: DataRequest) -> DataResponse {
    answer(store, None, request).await
}

/// `from` is `None` for the local peer, whose chunks need no re-check.
async fn answer(store: &Store, from: Option<PeerId>, request: DataRequest) -> DataResponse {
    match request {
        DataRequest::Has { hashes, claim } => {
            let answer = match claim {
                Some(reference) => store.claim(hashes, reference).await,
                None => store.has_chunks(hashes).await,
            };
            answer.map_or_else(refusal, DataResponse::Held)
        }
        DataRequest::Store {
            hash,
            md5,
            data,
            references,
            hint_for,
        } => {
            if let Some(from) = from
                && let Some(refused) = check_hash(from, hash, &data).await
            {
                return refused;
            }
            let write = ChunkWrite {
                hash,
                md5,
                data,
                references,
                hint_for: hint_for.map(|p| p.to_bytes()),
            };
            store
                .put_chunk(write)
                .await
                .map_or_else(refusal, |_| DataResponse::Stored)
        }
        DataRequest::RangeDigests { ranges } => store
            .range_digests(ranges)
            .await
            .map_or_else(refusal, DataResponse::Digests),
        DataRequest::RangeHashes { start, end, after } => store
            .hashes_in_range(start, end, after, MAX_HASHES)
            .await
            .map_or_else(refusal, |(hashes, more)| DataResponse::Hashes {
                hashes,
                more,
            }),
        DataRequest::RecordDigests { ranges } => store
            .record_range_digests(ranges)
            .await
            .map_or_else(refusal, DataResponse::Digests),
        DataRequest::RecordHeads { start, end, after } => store
            .record_heads_in_range(
                start,
                end,
                after.map(|(p, n)| (p, n.as_str().to_owned())),
                MAX_LIST_PAGE,
            )
            .await
            .map_or_else(refusal, |(heads, truncated)| DataResponse::Records {
                heads,
                truncated,
            }),
        DataRequest::Fetch { hash } => store
            .read_chunk(hash)
            .await
            .map_or_else(refusal, DataResponse::Chunk),
        DataRequest::Release { reference } => store
            .release(reference)
            .await
            .map_or_else(refusal, |_| DataResponse::Released),
        DataRequest::Uploading { reference } => {
            DataResponse::Uploading(store.is_uploading(&reference))
        }
        DataRequest::PutRecord { record } if !is_plausible(record.version().hlc) => {
            DataResponse::refused(
                Refusal::Invalid,
                "the record's version is from further in the future than clocks may differ",
            )
        }
        DataRequest::PutRecord { record } => {
            store
                .put_record(record)
                .await
                .map_or_else(refusal, |outcome| {
                    DataResponse::RecordWritten(match outcome {
                        RecordOutcome::Applied => RecordWrite::Applied,
                        RecordOutcome::Replaced => RecordWrite::Replaced,
                        RecordOutcome::Unchanged => RecordWrite::Unchanged,
                        RecordOutcome::Superseded { newer } => RecordWrite::Superseded { newer },
                    })
                })
        }
        DataRequest::GetRecord { name, head_only } => {
            if head_only {
                store
                    .head(&name)
                    .await
                    .map_or_else(refusal, DataResponse::Head)
            } else {
                match store.record(&name).await {
                    // A damaged local record must not be served as the truth.
                    Ok(Some(FileRecord::Live(manifest))) if manifest.validate().is_err() => {
                        tracing::error!(%name, "stored manifest is inconsistent; not serving it");
                        DataResponse::Record(None)
                    }
                    other => other.map_or_else(refusal, DataResponse::Record),
                }
            }
        }
        DataRequest::Supersede { version, .. } if !is_plausible(version.hlc) => {
            DataResponse::refused(
                Refusal::Invalid,
                "the version is from further in the future than clocks may differ",
            )
        }
        DataRequest::Supersede { name, version } => store
            .supersede(name, version)
            .await
            .map_or_else(refusal, |_| DataResponse::Released),
        DataRequest::ListRecords {
            prefix,
            after,
            limit,
        } => store
            .heads(prefix, after, limit as usize)
            .await
            .map_or_else(refusal, |(heads, truncated)| DataResponse::Records {
                heads,
                truncated,
            }),
    }
}

/// A refusal if `data` does not hash to `hash`.
async fn check_hash(from: PeerId, hash: Blake3Hash, data: &bytes::Bytes) -> Option<DataResponse> {
    let checked = data.clone();
    match tokio::task::spawn_blocking(move || Blake3Hash::of(&checked)).await {
        Ok(actual) if actual == hash => None,
        Ok(actual) => {
            tracing::warn!(%from, claimed = %hash, %actual, "refused a chunk whose bytes do not match its hash");
            Some(DataResponse::refused(
                Refusal::Corrupt,
                format!("the bytes sent for chunk {hash} hash to {actual}"),
            ))
        }
        Err(e) => Some(DataResponse::refused(Refusal::Unavailable, e.to_string())),
    }
}

fn refusal(error: StoreError) -> DataResponse {
    let reason = match error.root() {
        StoreError::ChunkNotFound(_) => Refusal::NotFound,
        StoreError::Corrupt(_) => Refusal::Corrupt,
        StoreError::DiskFull(_) => Refusal::DiskFull,
        _ => Refusal::Unavailable,
    };
    DataResponse::refused(reason, error.to_string())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::chunk::{FileName, Hlc, Md5Hash, Reference, Version};
    use crate::config::StoreConfig;

    fn reference() -> Reference {
        Reference {
            name: FileName::new("f").unwrap(),
            version: Version {
                hlc: Hlc(1),
                writer: "w".into(),
            },
        }
    }

    #[tokio::test]
    async fn a_chunk_whose_bytes_do_not_match_its_hash_is_refused_and_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let (store, writer) = Store::open(dir.path(), &StoreConfig::default()).unwrap();
        writer.spawn().unwrap();
        let from = PeerId::random();
        let claimed = Blake3Hash::of(b"the real chunk");
        let forged = DataRequest::Store {
            hash: claimed,
            md5: Md5Hash::of(b"the real chunk"),
            data: Bytes::from_static(b"something else"),
            references: vec![reference()],
            hint_for: None,
        };
        let answer = serve(&store, from, forged).await;
        assert!(
            matches!(
                answer,
                DataResponse::Refused {
                    reason: Refusal::Corrupt,
                    ..
                }
            ),
            "{answer:?}"
        );
        assert_eq!(store.has_chunks(vec![claimed]).await.unwrap(), [false]);
        let fetch = serve(&store, from, DataRequest::Fetch { hash: claimed }).await;
        assert!(matches!(
            fetch,
            DataResponse::Refused {
                reason: Refusal::NotFound,
                ..
            }
        ));

        let data = Bytes::from_static(b"an honest chunk");
        let honest = DataRequest::Store {
            hash: Blake3Hash::of(&data),
            md5: Md5Hash::of(&data),
            data: data.clone(),
            references: vec![reference()],
            hint_for: Some(PeerId::random()),
        };
        assert!(matches!(
            serve(&store, from, honest).await,
            DataResponse::Stored
        ));
        let claim = DataRequest::Has {
            hashes: vec![Blake3Hash::of(&data), claimed],
            claim: Some(reference()),
        };
        assert!(matches!(
            serve(&store, from, claim).await,
            DataResponse::Held(held) if held == [true, false]
        ));
        assert_eq!(store.stats().await.unwrap().hinted_chunks, 1);
        store.shutdown().await;
    }
}
