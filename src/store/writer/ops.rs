//! The operations the writer takes, and how each is answered once its batch
//! has committed (or failed).

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::chunk::{Blake3Hash, FileName, FileRecord, Md5Hash, Reference, Version};
use crate::store::error::{Result, StoreError};
use crate::store::peers::PeerBookChange;
use crate::store::{GcPolicy, GcReport, PutOutcome, RecordOutcome};

/// A request to the writer.
pub(in crate::store) enum Op {
    PutChunk {
        hash: Blake3Hash,
        md5: Md5Hash,
        data: Bytes,
        references: Vec<Reference>,
        hint: Option<Vec<u8>>,
        reply: oneshot::Sender<Result<PutOutcome>>,
    },
    Claim {
        hashes: Vec<Blake3Hash>,
        reference: Reference,
        reply: oneshot::Sender<Result<Vec<bool>>>,
    },
    Release {
        id: Blake3Hash,
        reply: oneshot::Sender<Result<u64>>,
    },
    Supersede {
        name: FileName,
        version: Version,
        reply: oneshot::Sender<Result<u64>>,
    },
    DropChunk {
        hash: Blake3Hash,
        reply: oneshot::Sender<Result<bool>>,
    },
    DropRecord {
        record: Box<FileRecord>,
        reply: oneshot::Sender<Result<bool>>,
    },
    PutRecord {
        record: Box<FileRecord>,
        reply: oneshot::Sender<Result<RecordOutcome>>,
    },
    Collect {
        policy: GcPolicy,
        reply: oneshot::Sender<Result<GcReport>>,
    },
    Peers {
        change: PeerBookChange,
        reply: oneshot::Sender<Result<u64>>,
    },
    Stop {
        reply: oneshot::Sender<()>,
    },
}

/// The result of one operation, held back until its batch commits.
pub(super) enum Outcome {
    Chunk(PutOutcome),
    Claim(Vec<bool>),
    /// How many chunks a release freed, or references a supersede released.
    Released(u64),
    Dropped(bool),
    Record(RecordOutcome),
    Collect(GcReport),
    Peers(u64),
}

impl Op {
    /// Answers the operation with its outcome once the batch is durable.
    pub(super) fn answer(self, outcome: Outcome) {
        // A dropped receiver means the caller went away; the write stands.
        match (self, outcome) {
            (Op::PutChunk { reply, .. }, Outcome::Chunk(o)) => drop(reply.send(Ok(o))),
            (Op::Claim { reply, .. }, Outcome::Claim(o)) => drop(reply.send(Ok(o))),
            (Op::Release { reply, .. } | Op::Supersede { reply, .. }, Outcome::Released(o)) => {
                drop(reply.send(Ok(o)))
            }
            (Op::DropChunk { reply, .. } | Op::DropRecord { reply, .. }, Outcome::Dropped(o)) => {
                drop(reply.send(Ok(o)))
            }
            (Op::PutRecord { reply, .. }, Outcome::Record(o)) => drop(reply.send(Ok(o))),
            (Op::Collect { reply, .. }, Outcome::Collect(o)) => drop(reply.send(Ok(o))),
            (Op::Peers { reply, .. }, Outcome::Peers(o)) => drop(reply.send(Ok(o))),
            _ => tracing::error!("store writer paired an operation with another's outcome"),
        }
    }

    /// Answers the operation with its batch's failure.
    pub(super) fn fail(self, error: &Arc<StoreError>) {
        let e = || StoreError::Shared(Arc::clone(error));
        match self {
            Op::PutChunk { reply, .. } => drop(reply.send(Err(e()))),
            Op::Claim { reply, .. } => drop(reply.send(Err(e()))),
            Op::Release { reply, .. } | Op::Supersede { reply, .. } => drop(reply.send(Err(e()))),
            Op::DropChunk { reply, .. } | Op::DropRecord { reply, .. } => {
                drop(reply.send(Err(e())))
            }
            Op::PutRecord { reply, .. } => drop(reply.send(Err(e()))),
            Op::Collect { reply, .. } => drop(reply.send(Err(e()))),
            Op::Peers { reply, .. } => drop(reply.send(Err(e()))),
            Op::Stop { reply } => drop(reply.send(())),
        }
    }
}
