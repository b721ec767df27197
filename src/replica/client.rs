//! The typed client for replicas: one method per remote operation.
//!
//! Every question one peer asks another goes through [`ReplicaClient`]:
//! the coordinator's puts and gets, the healer's comparisons and copies.
//! Each method builds its request, picks its deadline from the bytes it
//! moves, and checks the answer's shape (the right kind, as many entries
//! as asked, records for the name asked about), so callers get typed
//! values or a [`PeerFailure`] and never match on raw protocol answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libp2p::PeerId;

use super::failure::{PeerError, PeerFailure};
use super::transport::{Deadlines, Responsiveness, Transport};
use crate::chunk::{Blake3Hash, FileName, FileRecord, Md5Hash, RecordHead, Reference, Version};
use crate::metrics::Instruments;
use crate::protocol::{DataRequest, DataResponse, MAX_HASHES, RecordWrite};

/// A ring range: start, and end exclusive (`None` for the top of the ring).
pub type RingRange = (u64, Option<u64>);

/// A chunk copy to store on a replica.
#[derive(Debug, Clone)]
pub struct ChunkCopy {
    /// BLAKE3 of `data`, re-checked by the receiver.
    pub hash: Blake3Hash,
    /// MD5 of `data`, kept for clients.
    pub md5: Md5Hash,
    /// The bytes.
    pub data: Bytes,
    /// The file versions that use the chunk.
    pub references: Vec<Reference>,
    /// The owner this copy stands in for, if the receiver is not one.
    pub hint_for: Option<PeerId>,
}

/// Talks to replicas (this peer's own included). Cheap to clone.
#[derive(Debug, Clone)]
pub struct ReplicaClient {
    transport: Arc<dyn Transport>,
    deadlines: Deadlines,
    health: Arc<Responsiveness>,
    instruments: Instruments,
}

type Answer<T> = Result<T, PeerFailure>;

impl ReplicaClient {
    /// A client sending through `transport` with `deadlines`.
    pub fn new(transport: Arc<dyn Transport>, deadlines: Deadlines) -> Self {
        ReplicaClient {
            transport,
            deadlines,
            health: Arc::default(),
            instruments: Instruments::default(),
        }
    }

    /// This client, recording every request's duration and failure into
    /// `instruments`.
    #[must_use]
    pub fn with_instruments(mut self, instruments: Instruments) -> Self {
        self.instruments = instruments;
        self
    }

    /// The peer this client sends from.
    pub fn local_peer(&self) -> PeerId {
        self.transport.local_peer()
    }

    /// The deadlines in force.
    pub fn deadlines(&self) -> Deadlines {
        self.deadlines
    }

    /// Whether `peer` let a request time out a moment ago and is being
    /// passed over (see [`Responsiveness`]).
    pub fn is_unresponsive(&self, peer: &PeerId) -> bool {
        *peer != self.local_peer() && self.health.is_unresponsive(peer)
    }

    /// Sends one request and turns refusals and timeouts into failures.
    async fn call(
        &self,
        peer: PeerId,
        request: DataRequest,
        deadline: Duration,
    ) -> Answer<DataResponse> {
        let op = request.op();
        let started = Instant::now();
        let answer = self.call_unrecorded(peer, request, deadline).await;
        let failure = answer.as_ref().err().map(|f| f.error.kind());
        self.instruments
            .peer_request(op, started.elapsed(), failure);
        answer
    }

    async fn call_unrecorded(
        &self,
        peer: PeerId,
        request: DataRequest,
        deadline: Duration,
    ) -> Answer<DataResponse> {
        let local = peer == self.local_peer();
        if !local && !self.health.may_ask(&peer) {
            return Err(PeerFailure::new(peer, PeerError::Unresponsive));
        }
        match self.transport.send(peer, request, deadline).await {
            Ok(DataResponse::Refused { reason, message }) => {
                self.health.answered(&peer);
                Err(PeerFailure::new(
                    peer,
                    PeerError::Refused { reason, message },
                ))
            }
            Ok(answer) => {
                self.health.answered(&peer);
                Ok(answer)
            }
            Err(error) => {
                if !local && matches!(error, PeerError::Timeout(_)) {
                    self.health.timed_out(peer);
                }
                Err(PeerFailure::new(peer, error))
            }
        }
    }

    async fn ask(&self, peer: PeerId, request: DataRequest) -> Answer<DataResponse> {
        self.call(peer, request, self.deadlines.small()).await
    }

    /// Which of `hashes` `peer` holds, asked in pages the protocol allows.
    ///
    /// # Errors
    /// The first page that failed.
    pub async fn has(&self, peer: PeerId, hashes: &[Blake3Hash]) -> Answer<Vec<bool>> {
        let mut held = Vec::with_capacity(hashes.len());
        for page in hashes.chunks(MAX_HASHES) {
            let request = DataRequest::Has {
                hashes: page.to_vec(),
                claim: None,
            };
            match self.ask(peer, request).await? {
                DataResponse::Held(answer) if answer.len() == page.len() => held.extend(answer),
                other => return Err(unexpected(peer, &other)),
            }
        }
        Ok(held)
    }

    /// For each of `hashes`, whether `peer` holds it, recording
    /// `reference` on every one it holds (see [`ReplicaClient::claim`]).
    pub async fn claim_many(
        &self,
        peer: PeerId,
        hashes: &[Blake3Hash],
        reference: &Reference,
    ) -> Answer<Vec<bool>> {
        let mut held = Vec::with_capacity(hashes.len());
        for page in hashes.chunks(MAX_HASHES) {
            let request = DataRequest::Has {
                hashes: page.to_vec(),
                claim: Some(reference.clone()),
            };
            match self.ask(peer, request).await? {
                DataResponse::Held(answer) if answer.len() == page.len() => held.extend(answer),
                other => return Err(unexpected(peer, &other)),
            }
        }
        Ok(held)
    }

    /// Whether `peer` holds chunk `hash`; if it does, it records that
    /// `reference` uses it (so the chunk need not be sent).
    ///
    /// # Errors
    /// As [`ReplicaClient::has`].
    pub async fn claim(
        &self,
        peer: PeerId,
        hash: Blake3Hash,
        reference: &Reference,
    ) -> Answer<bool> {
        let request = DataRequest::Has {
            hashes: vec![hash],
            claim: Some(reference.clone()),
        };
        match self.ask(peer, request).await? {
            DataResponse::Held(held) if held.len() == 1 => Ok(held[0]),
            other => Err(unexpected(peer, &other)),
        }
    }

    /// Stores `copy` durably on `peer`.
    ///
    /// # Errors
    /// A refusal (damaged bytes, full disk), a timeout, or no connection.
    pub async fn store(&self, peer: PeerId, copy: ChunkCopy) -> Answer<()> {
        let deadline = self.deadlines.for_bytes(copy.data.len());
        let request = DataRequest::Store {
            hash: copy.hash,
            md5: copy.md5,
            data: copy.data,
            references: copy.references,
            hint_for: copy.hint_for,
        };
        match self.call(peer, request, deadline).await? {
            DataResponse::Stored => Ok(()),
            other => Err(unexpected(peer, &other)),
        }
    }

    /// Chunk `hash` (expected to be about `size` bytes) from `peer`, as
    /// sent: the caller checks it against its hash.
    ///
    /// # Errors
    /// A refusal (not held, damaged), a timeout, or no connection.
    pub async fn fetch(&self, peer: PeerId, hash: Blake3Hash, size: usize) -> Answer<Bytes> {
        let deadline = self.deadlines.for_bytes(size);
        match self
            .call(peer, DataRequest::Fetch { hash }, deadline)
            .await?
        {
            DataResponse::Chunk(data) => Ok(data),
            other => Err(unexpected(peer, &other)),
        }
    }

    /// Tells `peer` that the version with reference `id` is gone.
    ///
    /// # Errors
    /// As [`ReplicaClient::has`].
    pub async fn release(&self, peer: PeerId, id: Blake3Hash) -> Answer<()> {
        match self
            .ask(peer, DataRequest::Release { reference: id })
            .await?
        {
            DataResponse::Released => Ok(()),
            other => Err(unexpected(peer, &other)),
        }
    }

    /// Tells `peer` that `version` of `name` is durable, so every older
    /// version's hold on its chunks can go.
    ///
    /// # Errors
    /// As [`ReplicaClient::has`].
    pub async fn supersede(&self, peer: PeerId, name: &FileName, version: &Version) -> Answer<()> {
        let request = DataRequest::Supersede {
            name: name.clone(),
            version: version.clone(),
        };
        match self.ask(peer, request).await? {
            DataResponse::Released => Ok(()),
            other => Err(unexpected(peer, &other)),
        }
    }

    /// Whether `peer` is still coordinating the upload with reference `id`.
    ///
    /// # Errors
    /// As [`ReplicaClient::has`].
    pub async fn uploading(&self, peer: PeerId, id: Blake3Hash) -> Answer<bool> {
        match self
            .ask(peer, DataRequest::Uploading { reference: id })
            .await?
        {
            DataResponse::Uploading(running) => Ok(running),
            other => Err(unexpected(peer, &other)),
        }
    }

    /// Stores `record` on `peer` unless it holds a newer version.
    ///
    /// # Errors
    /// As [`ReplicaClient::has`].
    pub async fn put_record(&self, peer: PeerId, record: FileRecord) -> Answer<RecordWrite> {
        let deadline = self.deadlines.for_bytes(record_bytes(&record));
        match self
            .call(peer, DataRequest::PutRecord { record }, deadline)
            .await?
        {
            DataResponse::RecordWritten(outcome) => Ok(outcome),
            other => Err(unexpected(peer, &other)),
        }
    }

    /// `peer`'s whole record for `name`, if it holds one. A record for
    /// another name, or a manifest whose parts disagree, is a failure.
    ///
    /// # Errors
    /// As [`ReplicaClient::has`].
    pub async fn record(&self, peer: PeerId, name: &FileName) -> Answer<Option<FileRecord>> {
        let request = DataRequest::GetRecord {
            name: name.clone(),
            head_only: false,
        };
        // A manifest may list many chunks: allow for the largest.
        let deadline = self.deadlines.for_bytes(1 << 20);
        match self.call(peer, request, deadline).await? {
            DataResponse::Record(record) => {
                if let Some(record) = &record {
                    if record.name() != name {
                        return Err(mismatch(peer, "a record for another name"));
                    }
                    if let FileRecord::Live(manifest) = record
                        && let Err(error) = manifest.validate()
                    {
                        return Err(mismatch(
                            peer,
                            &format!("an inconsistent manifest ({error})"),
                        ));
                    }
                }
                Ok(record)
            }
            other => Err(unexpected(peer, &other)),
        }
    }

    /// The head (version and summary) of `peer`'s record for `name`.
    ///
    /// # Errors
    /// As [`ReplicaClient::record`].
    pub async fn head(&self, peer: PeerId, name: &FileName) -> Answer<Option<RecordHead>> {
        let request = DataRequest::GetRecord {
            name: name.clone(),
            head_only: true,
        };
        match self.ask(peer, request).await? {
            DataResponse::Head(Some(head)) if head.name != *name => {
                Err(mismatch(peer, "a head for another name"))
            }
            DataResponse::Head(head) => Ok(head),
            other => Err(unexpected(peer, &other)),
        }
    }

    /// A page of `peer`'s record heads in name order, and whether more
    /// follow.
    ///
    /// # Errors
    /// As [`ReplicaClient::has`].
    pub async fn list_records(
        &self,
        peer: PeerId,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Answer<(Vec<RecordHead>, bool)> {
        let request = DataRequest::ListRecords {
            prefix: prefix.to_owned(),
            after: after.map(str::to_owned),
            limit,
        };
        match self.ask(peer, request).await? {
            DataResponse::Records { heads, truncated } => Ok((heads, truncated)),
            other => Err(unexpected(peer, &other)),
        }
    }

    /// For each range, the count and digest of the chunks `peer` holds in it.
    ///
    /// # Errors
    /// As [`ReplicaClient::has`]; an answer of the wrong length fails.
    pub async fn chunk_digests(
        &self,
        peer: PeerId,
        ranges: &[RingRange],
    ) -> Answer<Vec<(u64, Blake3Hash)>> {
        let request = DataRequest::RangeDigests {
            ranges: ranges.to_vec(),
        };
        self.digests(peer, request, ranges.len()).await
    }

    /// For each range, the count and digest of the records `peer` holds
    /// for names in it.
    ///
    /// # Errors
    /// As [`ReplicaClient::chunk_digests`].
    pub async fn record_digests(
        &self,
        peer: PeerId,
        ranges: &[RingRange],
    ) -> Answer<Vec<(u64, Blake3Hash)>> {
        let request = DataRequest::RecordDigests {
            ranges: ranges.to_vec(),
        };
        self.digests(peer, request, ranges.len()).await
    }

    async fn digests(
        &self,
        peer: PeerId,
        request: DataRequest,
        expected: usize,
    ) -> Answer<Vec<(u64, Blake3Hash)>> {
        match self.ask(peer, request).await? {
            DataResponse::Digests(digests) if digests.len() == expected => Ok(digests),
            other => Err(unexpected(peer, &other)),
        }
    }

    /// A page of the chunk hashes `peer` holds in `range` after `after`,
    /// and whether more follow.
    ///
    /// # Errors
    /// As [`ReplicaClient::has`].
    pub async fn chunk_hashes(
        &self,
        peer: PeerId,
        (start, end): RingRange,
        after: Option<Blake3Hash>,
    ) -> Answer<(Vec<Blake3Hash>, bool)> {
        match self
            .ask(peer, DataRequest::RangeHashes { start, end, after })
            .await?
        {
            DataResponse::Hashes { hashes, more } => Ok((hashes, more)),
            other => Err(unexpected(peer, &other)),
        }
    }

    /// A page of the heads of the records `peer` holds for names in
    /// `range`, after `after` (a position and name), and whether more
    /// follow.
    ///
    /// # Errors
    /// As [`ReplicaClient::has`].
    pub async fn record_heads(
        &self,
        peer: PeerId,
        (start, end): RingRange,
        after: Option<(u64, FileName)>,
    ) -> Answer<(Vec<RecordHead>, bool)> {
        match self
            .ask(peer, DataRequest::RecordHeads { start, end, after })
            .await?
        {
            DataResponse::Records { heads, truncated } => Ok((heads, truncated)),
            other => Err(unexpected(peer, &other)),
        }
    }
}

/// About how many bytes a record takes on the wire.
fn record_bytes(record: &FileRecord) -> usize {
    match record {
        FileRecord::Live(manifest) => {
            256 + manifest.chunks.len() * 64 + manifest.inline().map_or(0, <[u8]>::len)
        }
        FileRecord::Deleted { .. } => 256,
    }
}

fn unexpected(peer: PeerId, answer: &DataResponse) -> PeerFailure {
    PeerFailure::new(peer, PeerError::Unexpected(answer.kind().to_owned()))
}

fn mismatch(peer: PeerId, what: &str) -> PeerFailure {
    PeerFailure::new(peer, PeerError::Unexpected(what.to_owned()))
}
