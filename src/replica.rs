//! The replica side of the data protocol: answers other peers' (and this
//! peer's own) requests from the local store.
//!
//! Whoever asks, nothing is taken on trust: a chunk to store is re-hashed
//! (BLAKE3 and MD5) before it is written, and one whose bytes do not match
//! is refused and logged with the sender. The coordinator of a put or get
//! (`crate::files`) calls [`serve`] directly for the local peer, so the
//! local and remote paths are the same code.

use libp2p::PeerId;

use crate::chunk::{Blake3Hash, FileRecord, Md5Hash};
use crate::protocol::{DataRequest, DataResponse, RecordWrite, Refusal};
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
                && let Some(refused) = check_digests(from, hash, md5, &data).await
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
        DataRequest::Fetch { hash } => store
            .read_chunk(hash)
            .await
            .map_or_else(refusal, DataResponse::Chunk),
        DataRequest::Release { reference } => store
            .release(reference)
            .await
            .map_or_else(refusal, |_| DataResponse::Released),
        DataRequest::PutRecord { record } => {
            store
                .put_record(record)
                .await
                .map_or_else(refusal, |outcome| {
                    DataResponse::RecordWritten(match outcome {
                        RecordOutcome::Applied => RecordWrite::Applied,
                        RecordOutcome::Unchanged => RecordWrite::Unchanged,
                        RecordOutcome::Superseded => RecordWrite::Superseded,
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

/// A refusal if `data` does not hash to `hash` and `md5`.
async fn check_digests(
    from: PeerId,
    hash: Blake3Hash,
    md5: Md5Hash,
    data: &bytes::Bytes,
) -> Option<DataResponse> {
    let checked = data.clone();
    let digests =
        tokio::task::spawn_blocking(move || (Blake3Hash::of(&checked), Md5Hash::of(&checked)))
            .await;
    match digests {
        Ok((actual, actual_md5)) if actual == hash && actual_md5 == md5 => None,
        Ok((actual, _)) => {
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
