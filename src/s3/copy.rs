//! CopyObject: a new object made of the source's chunks, with no data
//! copied (see `Files::compose`).

use s3s::dto::{CopyObjectInput, CopyObjectOutput, CopyObjectResult, CopySource, ETag};
use s3s::{S3Result, s3_error};

use super::buckets::Buckets;
use super::errors::s3_error;
use super::meta::{ObjectMeta, set_checksum};
use super::names::object_file;
use super::objects::{content_headers, find};
use super::reads::{Conditions, Failed, timestamp};
use crate::chunk::{Extensions, FileAttributes, tags};
use crate::files::Files;

/// The source bucket and key of a copy.
///
/// # Errors
/// `InvalidArgument` for access-point sources and versions, which shoal
/// does not have.
pub fn source_of(source: &CopySource) -> S3Result<(String, String)> {
    match source {
        CopySource::Bucket {
            bucket,
            key,
            version_id: None,
        } => Ok((bucket.to_string(), key.to_string())),
        CopySource::Bucket { .. } => Err(s3_error!(
            InvalidArgument,
            "objects have no versions to copy from"
        )),
        _ => Err(s3_error!(
            InvalidArgument,
            "only bucket/key copy sources are supported"
        )),
    }
}

/// CopyObject.
///
/// # Errors
/// `NoSuchBucket`, `NoSuchKey`, `PreconditionFailed`, `InvalidRequest`
/// (a copy onto itself that changes nothing), or the swarm's.
pub async fn copy(
    files: &Files,
    buckets: &Buckets,
    input: CopyObjectInput,
) -> S3Result<CopyObjectOutput> {
    let (source_bucket, source_key) = source_of(&input.copy_source)?;
    let target = object_file(&input.bucket, &input.key)?;
    buckets.check(&input.bucket).await?;
    let source = find(files, buckets, &source_bucket, &source_key).await?;
    let conditions = Conditions {
        if_match: input.copy_source_if_match.clone(),
        if_none_match: input.copy_source_if_none_match.clone(),
        if_modified_since: input.copy_source_if_modified_since.clone(),
        if_unmodified_since: input.copy_source_if_unmodified_since.clone(),
    };
    // Every failed copy condition answers 412, unlike a GET's 304.
    conditions
        .check(&source.etag, source.modified())
        .map_err(|_| Failed::Precondition.error())?;
    let replace = input
        .metadata_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == "REPLACE");
    if !replace && target == source.manifest.name {
        return Err(s3_error!(
            InvalidRequest,
            "copying an object onto itself must change its metadata (x-amz-metadata-directive: REPLACE)"
        ));
    }
    let meta = if replace {
        let mut meta = content_headers!(input).into_meta()?;
        meta.checksum = source.meta.checksum.clone();
        meta.parts = source.meta.parts.clone();
        meta
    } else {
        source.meta.clone()
    };
    let mut extensions = Extensions::none();
    extensions.set(tags::ETAG, source.etag.clone().into_bytes());
    if let Some(data) = source.manifest.inline() {
        extensions.set(tags::INLINE, data.to_vec());
    }
    // A plain copy keeps the file's mode and time; new user metadata may
    // give others.
    if !replace {
        FileAttributes::of(&source.manifest.extensions).store(&mut extensions);
    }
    meta.store(&mut extensions);
    let content = (!source.manifest.is_composed()).then_some(source.manifest.blake3);
    let written = files
        .compose(target, source.manifest.chunks, content, extensions)
        .await
        .map_err(s3_error)?;
    let meta = ObjectMeta::of(&written.extensions);
    let mut result = CopyObjectResult {
        e_tag: Some(ETag::Strong(source.etag)),
        last_modified: Some(timestamp(written.created_ms)),
        ..Default::default()
    };
    if let Some(checksum) = meta.checksum {
        set_checksum!(result, checksum);
    }
    Ok(CopyObjectOutput {
        copy_object_result: Some(result),
        ..Default::default()
    })
}
