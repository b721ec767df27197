//! Taking an object's body in: the digests S3 clients check, computed on
//! the side while the data path stores the bytes.
//!
//! The data path hashes each chunk (BLAKE3 and MD5) as it places it; S3
//! also wants the MD5 of the whole body (the ETag) and may send a checksum
//! (`Content-MD5`, `x-amz-checksum-*`, possibly as an `aws-chunked`
//! trailer) to verify. A copy of every piece of the body goes to a blocking
//! thread that computes these, so the upload is not slowed by them; the
//! put's seal waits for the thread at the end of the body and refuses the
//! content (nothing becomes visible) if a digest the client sent does not
//! match.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use futures::{FutureExt, Stream, StreamExt};
use md5::{Digest as _, Md5};
use s3s::checksum::ChecksumHasher;
use s3s::dto::StreamingBlob;
use s3s::{S3Result, TrailingHeaders, s3_error};
use tokio::sync::{mpsc, oneshot};

use super::meta::{ChecksumKind, ObjectMeta, StoredChecksum};
use crate::chunk::{Digest, Extensions, FileName, single_part_etag, tags};
use crate::files::{FilesError, Seal};

/// Pieces of body queued for the hashing thread; a bound, so a slow hash
/// slows the upload rather than filling memory.
const QUEUE: usize = 32;

/// The digests a client sent with a body.
#[derive(Debug, Default)]
pub struct Expected {
    /// The `Content-MD5` header, decoded.
    pub md5: Option<[u8; 16]>,
    /// The checksum algorithm, and where its value comes from.
    pub checksum: Option<(ChecksumKind, Sent)>,
    /// Where the trailer arrives, for `aws-chunked` bodies.
    pub trailers: Option<TrailingHeaders>,
}

impl Expected {
    /// Decodes a `Content-MD5` header.
    ///
    /// # Errors
    /// `InvalidDigest` if it is not the base64 of 16 bytes.
    pub fn parse_md5(header: Option<&str>) -> S3Result<Option<[u8; 16]>> {
        let Some(header) = header else {
            return Ok(None);
        };
        BASE64
            .decode(header.trim())
            .ok()
            .and_then(|raw| <[u8; 16]>::try_from(raw).ok())
            .map(Some)
            .ok_or_else(|| s3_error!(InvalidDigest, "Content-MD5 is not a base64 MD5"))
    }
}

/// Where the client sends the checksum's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// In an `x-amz-checksum-*` header.
    Header(String),
    /// As a trailer of an `aws-chunked` body.
    Trailer,
    /// Not at all: the client names the algorithm only, so the checksum is
    /// computed and kept for later reads, with nothing to verify.
    Nowhere,
}

/// What the hashing thread found.
struct Digests {
    md5: [u8; 16],
    checksum: Option<(ChecksumKind, String)>,
}

/// Splits `body` into the stream the data path stores and the seal that
/// checks it: the seal's fields carry the ETag (the body's MD5) and `meta`
/// with the verified checksum added.
pub fn tee(
    body: StreamingBlob,
    expected: Expected,
    mut meta: ObjectMeta,
    name: FileName,
) -> (
    impl Stream<Item = Result<Bytes, s3s::StdError>> + Send + 'static,
    Seal,
) {
    let (pieces, queue) = mpsc::channel::<Bytes>(QUEUE);
    let (done, digests) = oneshot::channel();
    let kind = expected.checksum.as_ref().map(|(kind, _)| *kind);
    tokio::task::spawn_blocking(move || {
        let _ = done.send(hash_all(queue, kind));
    });
    let stream = futures::stream::unfold((body, Some(pieces)), |(mut body, pieces)| async move {
        let piece = body.next().await?;
        if let (Ok(data), Some(pieces)) = (&piece, &pieces) {
            // The thread only stops early if it panicked; the seal reports it.
            let _ = pieces.send(data.clone()).await;
        }
        Some((piece, (body, pieces)))
    });
    let seal = async move {
        let digests = digests
            .await
            .map_err(|_| FilesError::Internal("the hashing thread failed".into()))?;
        let mismatch = |reason: String| FilesError::DigestMismatch {
            name: name.clone(),
            reason,
        };
        if let Some(sent) = expected.md5
            && sent != digests.md5
        {
            return Err(mismatch("the Content-MD5 does not match".into()));
        }
        if let (Some((kind, sent)), Some((_, computed))) = (expected.checksum, digests.checksum) {
            let sent = match sent {
                Sent::Header(value) => Some(value),
                Sent::Trailer => Some(trailer_value(expected.trailers.as_ref(), kind).ok_or_else(
                    || mismatch(format!("the {} checksum trailer is missing", kind.name())),
                )?),
                Sent::Nowhere => None,
            };
            if sent.is_some_and(|sent| sent.trim() != computed) {
                return Err(mismatch(format!(
                    "the {} checksum does not match",
                    kind.name()
                )));
            }
            meta.checksum = Some(StoredChecksum {
                kind,
                value: computed,
            });
        }
        let mut fields = Extensions::none();
        fields.set(
            tags::ETAG,
            single_part_etag(&Digest(digests.md5)).into_bytes(),
        );
        meta.store(&mut fields);
        Ok(fields)
    }
    .boxed();
    (stream, seal)
}

/// Hashes every piece until the body ends.
fn hash_all(mut queue: mpsc::Receiver<Bytes>, kind: Option<ChecksumKind>) -> Digests {
    let mut md5 = Md5::new();
    let mut checksum = kind.map(checksum_hasher);
    while let Some(piece) = queue.blocking_recv() {
        md5.update(&piece);
        if let Some(hasher) = &mut checksum {
            hasher.update(&piece);
        }
    }
    Digests {
        md5: md5.finalize().into(),
        checksum: kind
            .zip(checksum)
            .and_then(|(kind, hasher)| Some((kind, finish(kind, hasher)?))),
    }
}

/// A hasher computing the checksum of `kind` only.
pub(super) fn checksum_hasher(kind: ChecksumKind) -> ChecksumHasher {
    let mut hasher = ChecksumHasher::default();
    match kind {
        ChecksumKind::Crc32 => hasher.crc32 = Some(Default::default()),
        ChecksumKind::Crc32c => hasher.crc32c = Some(Default::default()),
        ChecksumKind::Sha1 => hasher.sha1 = Some(Default::default()),
        ChecksumKind::Sha256 => hasher.sha256 = Some(Default::default()),
        ChecksumKind::Crc64Nvme => hasher.crc64nvme = Some(Default::default()),
    }
    hasher
}

/// The base64 checksum of `kind` a hasher made by [`checksum_hasher`]
/// computed.
pub(super) fn finish(kind: ChecksumKind, hasher: ChecksumHasher) -> Option<String> {
    let sums = hasher.finalize();
    match kind {
        ChecksumKind::Crc32 => sums.checksum_crc32,
        ChecksumKind::Crc32c => sums.checksum_crc32c,
        ChecksumKind::Sha1 => sums.checksum_sha1,
        ChecksumKind::Sha256 => sums.checksum_sha256,
        ChecksumKind::Crc64Nvme => sums.checksum_crc64nvme,
    }
}

/// The checksum of `kind` an `aws-chunked` body sent as its trailer.
fn trailer_value(trailers: Option<&TrailingHeaders>, kind: ChecksumKind) -> Option<String> {
    let header = format!("x-amz-checksum-{}", kind.name().to_ascii_lowercase());
    trailers?.read(|headers| {
        headers
            .get(header.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })?
}

/// The checksum a request announces: a value in an `x-amz-checksum-*`
/// header, or an algorithm whose value follows as a trailer.
pub fn announced_checksum(
    headers: &hyper::HeaderMap,
    algorithm: Option<&str>,
) -> S3Result<Option<(ChecksumKind, Sent)>> {
    for (kind, name) in ChecksumKind::ALL {
        let header = format!("x-amz-checksum-{}", name.to_ascii_lowercase());
        if let Some(value) = headers.get(header.as_str()) {
            let value = value
                .to_str()
                .map_err(|_| s3_error!(InvalidArgument, "a checksum header is not text"))?;
            return Ok(Some((kind, Sent::Header(value.to_owned()))));
        }
    }
    let trailer = headers
        .get("x-amz-trailer")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.trim().strip_prefix("x-amz-checksum-"))
        .map(str::to_owned);
    let (name, sent) = match (trailer, algorithm) {
        (Some(name), _) => (name, Sent::Trailer),
        (None, Some(name)) => (name.to_owned(), Sent::Nowhere),
        (None, None) => return Ok(None),
    };
    match ChecksumKind::named(&name) {
        Some(kind) => Ok(Some((kind, sent))),
        None => Err(s3_error!(InvalidArgument, "unsupported checksum algorithm")),
    }
}
