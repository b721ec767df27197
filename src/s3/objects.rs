//! Objects: S3's object operations over the data path.
//!
//! An object is the file `bucket/key`; its S3 view (content headers, user
//! metadata, checksum) rides in the manifest's optional fields, and its
//! ETag next to them. Bodies stream both ways: a put hands the body to the
//! data path piece by piece (see `ingest`), a get streams verified chunks
//! back with the data path's bounded read-ahead.

use std::collections::BTreeMap;

use hyper::HeaderMap;
use s3s::dto::{
    ChecksumAlgorithm, ETag, GetObjectInput, GetObjectOutput, HeadObjectInput, HeadObjectOutput,
    Metadata, PutObjectInput, PutObjectOutput, StreamingBlob, Timestamp,
};
use s3s::{S3Error, S3ErrorCode, S3Result, TrailingHeaders, s3_error};

use super::buckets::Buckets;
use super::errors::s3_error;
use super::ingest::{Expected, announced_checksum, tee};
use super::meta::{MAX_USER_METADATA, ObjectMeta, set_checksum, stored_etag};
use super::names::object_file;
use super::reads::{Conditions, Failed, byte_range, seconds, timestamp};
use crate::chunk::{Extensions, FileAttributes, FileName, Manifest, Version, chunked_etag};
use crate::files::{Files, FilesError, PutOptions};

/// The content headers a put or copy sets on an object.
#[derive(Debug, Default)]
pub struct ContentHeaders {
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Expires`.
    pub expires: Option<Timestamp>,
    /// `x-amz-meta-*`.
    pub metadata: Option<Metadata>,
}

/// The content headers of a PutObject, CopyObject or
/// CreateMultipartUpload input (the same fields on different types).
macro_rules! content_headers {
    ($input:expr) => {
        $crate::s3::objects::ContentHeaders {
            content_type: $input.content_type,
            content_encoding: $input.content_encoding,
            content_disposition: $input.content_disposition,
            content_language: $input.content_language,
            cache_control: $input.cache_control,
            expires: $input.expires,
            metadata: $input.metadata,
        }
    };
}
pub(crate) use content_headers;

impl ContentHeaders {
    /// The object view they describe.
    ///
    /// # Errors
    /// `MetadataTooLarge` past S3's 2 KiB of user metadata.
    pub fn into_meta(self) -> S3Result<ObjectMeta> {
        let user: Vec<(String, String)> = self
            .metadata
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect();
        // `aws-chunked` describes how the body was sent, not the object.
        let content_encoding = self.content_encoding.and_then(|encoding| {
            let kept: Vec<&str> = encoding
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked"))
                .collect();
            (!kept.is_empty()).then(|| kept.join(", "))
        });
        let meta = ObjectMeta {
            content_type: self.content_type,
            content_encoding,
            content_disposition: self.content_disposition,
            content_language: self.content_language,
            cache_control: self.cache_control,
            expires: self.expires.as_ref().map(seconds),
            user,
            ..ObjectMeta::default()
        };
        if meta.user_bytes() > MAX_USER_METADATA {
            return Err(s3_error!(
                MetadataTooLarge,
                "user metadata is limited to 2 KiB"
            ));
        }
        Ok(meta)
    }
}

/// An object as a read finds it.
pub struct Found {
    /// Its current manifest.
    pub manifest: Manifest,
    /// Its ETag, without quotes.
    pub etag: String,
    /// Its S3 view.
    pub meta: ObjectMeta,
}

impl Found {
    /// When it was last written, in seconds since the epoch.
    pub fn modified(&self) -> i64 {
        i64::try_from(self.manifest.created_ms / 1000).unwrap_or(i64::MAX)
    }
}

/// The ETag of a stored file: the one it records, or its chunks' for
/// files written before ETags were recorded.
pub fn etag_of(manifest: &Manifest) -> String {
    stored_etag(&manifest.extensions).unwrap_or_else(|| chunked_etag(&manifest.chunks))
}

/// Reads the object `bucket/key`.
///
/// # Errors
/// `NoSuchBucket`, `NoSuchKey`, or the swarm's.
pub async fn find(files: &Files, buckets: &Buckets, bucket: &str, key: &str) -> S3Result<Found> {
    let name = object_file(bucket, key)?;
    match files.manifest(&name).await {
        Ok(manifest) => Ok(Found {
            etag: etag_of(&manifest),
            meta: ObjectMeta::of(&manifest.extensions),
            manifest,
        }),
        Err(FilesError::NotFound(_)) => {
            buckets.check_now(bucket).await?;
            Err(s3_error!(NoSuchKey, "the object does not exist"))
        }
        Err(error) => Err(s3_error(error)),
    }
}

/// PutObject: streams the body into the file, verifying the digests the
/// client sent before anything becomes visible.
///
/// # Errors
/// `NoSuchBucket`, `BadDigest`, `InvalidDigest`, `MetadataTooLarge`, or
/// the swarm's.
pub async fn put(
    files: &Files,
    buckets: &Buckets,
    input: PutObjectInput,
    headers: &HeaderMap,
    trailers: Option<TrailingHeaders>,
) -> S3Result<(PutObjectOutput, Version)> {
    let name = object_file(&input.bucket, &input.key)?;
    buckets.check(&input.bucket).await?;
    check_put_conditions(files, &name, &input).await?;
    let meta = content_headers!(input).into_meta()?;
    let expected = Expected {
        md5: Expected::parse_md5(input.content_md5.as_deref())?,
        checksum: announced_checksum(
            headers,
            input
                .checksum_algorithm
                .as_ref()
                .map(ChecksumAlgorithm::as_str),
        )?,
        trailers,
    };
    let manifest = store_body(files, name, input.body, expected, meta, false).await?;
    let meta = ObjectMeta::of(&manifest.extensions);
    let mut output = PutObjectOutput {
        e_tag: Some(ETag::Strong(etag_of(&manifest))),
        ..Default::default()
    };
    if let Some(checksum) = meta.checksum {
        set_checksum!(output, checksum);
    }
    Ok((output, manifest.version))
}

/// Conditional writes (`If-None-Match: *`, `If-Match`), checked against
/// the current version before the body is read. The check and the write
/// are not one atomic step: two racing conditional puts can both pass, and
/// the later version wins as for any two puts.
async fn check_put_conditions(
    files: &Files,
    name: &FileName,
    input: &PutObjectInput,
) -> S3Result<()> {
    if input.if_none_match.is_none() && input.if_match.is_none() {
        return Ok(());
    }
    let current = match files.manifest(name).await {
        Ok(manifest) => Some(etag_of(&manifest)),
        Err(FilesError::NotFound(_)) => None,
        Err(error) => return Err(s3_error(error)),
    };
    let matches = |condition: &s3s::dto::ETagCondition, etag: &str| match condition {
        s3s::dto::ETagCondition::Any => true,
        s3s::dto::ETagCondition::ETag(tag) => tag.value() == etag,
    };
    if let (Some(condition), Some(etag)) = (&input.if_none_match, &current)
        && matches(condition, etag)
    {
        return Err(Failed::Precondition.error());
    }
    match (&input.if_match, &current) {
        (Some(_), None) => Err(s3_error!(NoSuchKey, "the object does not exist")),
        (Some(condition), Some(etag)) if !matches(condition, etag) => {
            Err(Failed::Precondition.error())
        }
        _ => Ok(()),
    }
}

/// Stores `body` as the file `name` with the S3 view `meta`, once its
/// digests check out. A part of a multipart upload is stored with
/// `chunks_only`, since completing the upload reuses its chunks.
///
/// # Errors
/// `BadDigest`, or the swarm's.
pub async fn store_body(
    files: &Files,
    name: FileName,
    body: Option<StreamingBlob>,
    expected: Expected,
    meta: ObjectMeta,
    chunks_only: bool,
) -> S3Result<Manifest> {
    let body = body.unwrap_or_else(empty_body);
    let (stream, seal) = tee(body, expected, meta, name.clone());
    let options = PutOptions {
        expected: None,
        extensions: Extensions::none(),
        seal: Some(seal),
        chunks_only,
    };
    files
        .put_with(name, stream, options)
        .await
        .map_err(s3_error)
}

/// What GetObject and HeadObject share: the object, the bytes asked for,
/// and the answer's headers.
struct Read {
    found: Found,
    /// The inclusive byte range to send, `None` for an empty object.
    span: Option<(u64, u64)>,
    /// Whether only part of the object is sent (206).
    partial: bool,
    parts_count: Option<i32>,
}

/// Resolves the object, its conditions, and the range or part asked for.
async fn resolve(
    files: &Files,
    buckets: &Buckets,
    bucket: &str,
    key: &str,
    conditions: &Conditions,
    range: Option<&s3s::dto::Range>,
    part_number: Option<i32>,
) -> S3Result<Read> {
    let found = find(files, buckets, bucket, key).await?;
    conditions
        .check(&found.etag, found.modified())
        .map_err(|failed| failed.error())?;
    let size = found.manifest.size;
    let whole = (size > 0).then(|| (0, size - 1));
    let (span, partial, parts_count) = match (range, part_number) {
        (Some(_), Some(_)) => {
            return Err(s3_error!(
                InvalidRequest,
                "a request cannot give both a range and a part number"
            ));
        }
        (Some(range), None) => (Some(byte_range(range, size)?), true, None),
        (None, Some(number)) => {
            let count = found.meta.part_count().max(1);
            let number = u32::try_from(number)
                .ok()
                .filter(|n| (1..=count).contains(n))
                .ok_or_else(|| {
                    S3Error::with_message(
                        S3ErrorCode::Custom("InvalidPartNumber".into()),
                        "the object has no such part",
                    )
                })?;
            let span = if found.meta.parts.is_empty() {
                whole
            } else {
                let chunks = found.meta.part_chunks(number).unwrap_or(0..0);
                let starts = found.manifest.chunk_starts();
                let first = starts.get(chunks.start).copied().unwrap_or(size);
                let end = starts.get(chunks.end).copied().unwrap_or(size);
                (end > first).then(|| (first, end - 1))
            };
            let parts = i32::try_from(count).unwrap_or(i32::MAX);
            (span, found.meta.part_count() > 1, Some(parts))
        }
        (None, None) => (whole, false, None),
    };
    Ok(Read {
        found,
        span,
        partial,
        parts_count,
    })
}

/// The headers GetObject and HeadObject share, filled from `read`.
macro_rules! object_headers {
    ($output:ident, $read:expr, $input:expr) => {{
        let read = $read;
        let meta = &read.found.meta;
        let size = read.found.manifest.size;
        $output.accept_ranges = Some("bytes".into());
        $output.e_tag = Some(ETag::Strong(read.found.etag.clone()));
        $output.last_modified = Some(timestamp(read.found.manifest.created_ms));
        $output.content_length = Some(match read.span {
            Some((first, last)) => i64::try_from(last - first + 1).unwrap_or(i64::MAX),
            None => 0,
        });
        if read.partial
            && let Some((first, last)) = read.span
        {
            $output.content_range = Some(format!("bytes {first}-{last}/{size}"));
        }
        $output.parts_count = read.parts_count;
        $output.content_type = $input
            .response_content_type
            .clone()
            .or_else(|| meta.content_type.clone());
        $output.content_encoding = $input
            .response_content_encoding
            .clone()
            .or_else(|| meta.content_encoding.clone());
        $output.content_disposition = $input
            .response_content_disposition
            .clone()
            .or_else(|| meta.content_disposition.clone());
        $output.content_language = $input
            .response_content_language
            .clone()
            .or_else(|| meta.content_language.clone());
        $output.cache_control = $input
            .response_cache_control
            .clone()
            .or_else(|| meta.cache_control.clone());
        $output.expires = $input.response_expires.clone().or_else(|| {
            meta.expires
                .map(|s| timestamp(u64::try_from(s).unwrap_or(0) * 1000))
        });
        let user = meta.user_with(&FileAttributes::of(&read.found.manifest.extensions));
        if !user.is_empty() {
            $output.metadata = Some(user.into_iter().collect());
        }
        let wants_checksum = $input
            .checksum_mode
            .as_ref()
            .is_some_and(|m| m.as_str().eq_ignore_ascii_case("ENABLED"));
        if wants_checksum
            && !read.partial
            && let Some(checksum) = &meta.checksum
        {
            set_checksum!($output, checksum.clone());
        }
    }};
}

/// Resolves the object a GetObject or HeadObject input asks for (the two
/// have the same fields but no common type).
macro_rules! resolve_input {
    ($files:expr, $buckets:expr, $input:expr) => {{
        let conditions = Conditions {
            if_match: $input.if_match.clone(),
            if_none_match: $input.if_none_match.clone(),
            if_modified_since: $input.if_modified_since.clone(),
            if_unmodified_since: $input.if_unmodified_since.clone(),
        };
        resolve(
            $files,
            $buckets,
            &$input.bucket,
            &$input.key,
            &conditions,
            $input.range.as_ref(),
            $input.part_number,
        )
        .await?
    }};
}

/// A body of no bytes.
fn empty_body() -> StreamingBlob {
    StreamingBlob::wrap(futures::stream::empty::<Result<bytes::Bytes, std::io::Error>>())
}

/// GetObject: the object's bytes (or a range or part of them), streamed.
///
/// # Errors
/// `NoSuchBucket`, `NoSuchKey`, `InvalidRange`, `InvalidPartNumber`,
/// 304/412 for failed conditions, or the swarm's.
pub async fn get(
    files: &Files,
    buckets: &Buckets,
    input: GetObjectInput,
) -> S3Result<(GetObjectOutput, bool, Version)> {
    let read = resolve_input!(files, buckets, input);
    let mut output = GetObjectOutput::default();
    object_headers!(output, &read, input);
    let partial = read.partial;
    let version = read.found.manifest.version.clone();
    if let Some((first, last)) = read.span {
        let manifest = read.found.manifest;
        let sources = files
            .locate(&manifest, first, last)
            .await
            .map_err(s3_error)?;
        let stream = files.read_range(manifest, sources, first, last);
        output.body = Some(StreamingBlob::wrap(sync_wrapper::SyncStream::new(stream)));
    } else {
        output.body = Some(empty_body());
    }
    Ok((output, partial, version))
}

/// HeadObject: GetObject's headers without the body.
///
/// # Errors
/// As [`get`].
pub async fn head(
    files: &Files,
    buckets: &Buckets,
    input: HeadObjectInput,
) -> S3Result<(HeadObjectOutput, bool, Version)> {
    let read = resolve_input!(files, buckets, input);
    let mut output = HeadObjectOutput::default();
    object_headers!(output, &read, input);
    Ok((output, read.partial, read.found.manifest.version))
}

/// DeleteObject: removes `bucket/key`; deleting what does not exist
/// succeeds, as in S3. The version of the deletion record written, if
/// there was something to delete.
///
/// # Errors
/// `NoSuchBucket`, or the swarm's.
pub async fn delete(
    files: &Files,
    buckets: &Buckets,
    bucket: &str,
    key: &str,
) -> S3Result<Option<Version>> {
    let name = object_file(bucket, key)?;
    buckets.check(bucket).await?;
    match files.delete(&name).await {
        Ok(version) => Ok(Some(version)),
        Err(FilesError::NotFound(_)) => Ok(None),
        Err(error) => Err(s3_error(error)),
    }
}

/// The S3 error code and message for a failed deletion in DeleteObjects.
pub fn delete_failure(error: &S3Error) -> (String, String) {
    let code = match error.code() {
        S3ErrorCode::Custom(code) => code.to_string(),
        code => code.as_str().to_owned(),
    };
    (code, error.message().unwrap_or_default().to_owned())
}
