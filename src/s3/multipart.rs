//! Multipart uploads, kept as replicated records of their own kinds.
//!
//! An upload is the record `Upload/<bucket>/<key>␁<id>` (␁ = U+0001, which
//! keys cannot contain, so uploads list in key order); each part is the
//! record `UploadPart/<id>/<number>`, a manifest of the part's chunks. Parts
//! are stored as their bodies arrive, on whichever peer took them, and the
//! part records reference their chunks like files do, so no collection or
//! audit frees the parts of an open upload. Completing writes the object's
//! manifest over the parts' chunks (`Files::compose`: no data is copied),
//! then removes the part and upload records, whose references go with them.

use std::time::Duration;

use futures::StreamExt;
use s3s::dto::{
    CompleteMultipartUploadInput, CompleteMultipartUploadOutput, CompletedPart, ETag,
    ListMultipartUploadsInput, ListMultipartUploadsOutput, ListPartsInput, ListPartsOutput,
    MultipartUpload, Part,
};
use s3s::{S3Error, S3Result, s3_error};
use serde::{Deserialize, Serialize};

use super::errors::s3_error;
use super::meta::{ChecksumKind, ObjectMeta, StoredChecksum, set_checksum};
use super::names::object_file;
use super::objects::etag_of;
use super::reads::timestamp;
use crate::chunk::{
    Extensions, FileName, Manifest, Md5Hash, RecordKind, multipart_etag, tags, wall_millis,
};
use crate::codec;
use crate::files::{Files, FilesError};

/// The most parts an upload may have.
pub const MAX_PARTS: i32 = 10_000;

/// The smallest size of every part but the last.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// Separates an upload record's key from its id.
const ID_SEPARATOR: char = '\u{1}';

/// How many part records are read or removed at once.
const PARTS_IN_FLIGHT: usize = 16;

/// What an upload's record keeps for its completion.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UploadRecord {
    /// The object's content headers and user metadata.
    pub meta: ObjectMeta,
    /// The checksum algorithm its parts are sent with, if any.
    pub checksum: Option<ChecksumKind>,
}

/// The record name of upload `id` of `bucket/key`.
pub fn upload_name(bucket: &str, key: &str, id: &str) -> S3Result<FileName> {
    FileName::record(
        RecordKind::Upload,
        &format!("{bucket}/{key}{ID_SEPARATOR}{id}"),
    )
    .map_err(|_| no_such_upload())
}

/// The record name of part `number` of upload `id`.
pub fn part_name(id: &str, number: i32) -> S3Result<FileName> {
    if !(1..=MAX_PARTS).contains(&number) {
        return Err(s3_error!(InvalidArgument, "part numbers are 1 to 10000"));
    }
    FileName::record(RecordKind::UploadPart, &format!("{id}/{number:05}"))
        .map_err(|_| no_such_upload())
}

/// The error for an upload that does not exist (any more).
pub fn no_such_upload() -> S3Error {
    s3_error!(
        NoSuchUpload,
        "the upload does not exist or was completed or aborted"
    )
}

/// A new upload id: 128 random bits in hex.
///
/// # Errors
/// `InternalError` without a random source.
pub fn new_upload_id() -> S3Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| s3_error!(InternalError, "no random source"))?;
    Ok(hex::encode(bytes))
}

/// Writes the record of a new upload.
///
/// # Errors
/// The swarm's.
pub async fn create(files: &Files, name: FileName, record: &UploadRecord) -> S3Result<()> {
    let mut extensions = Extensions::none();
    let payload = codec::encode(record).map_err(S3Error::internal_error)?;
    extensions.set(tags::PAYLOAD, payload);
    files
        .compose(name, Vec::new(), None, extensions)
        .await
        .map_err(s3_error)?;
    Ok(())
}

/// The record of an open upload.
///
/// # Errors
/// `NoSuchUpload`, or the swarm's.
pub async fn open(files: &Files, name: &FileName) -> S3Result<UploadRecord> {
    match files.manifest(name).await {
        Ok(manifest) => Ok(manifest
            .extensions
            .get(tags::PAYLOAD)
            .and_then(|raw| codec::decode(raw).ok())
            .unwrap_or_default()),
        Err(FilesError::NotFound(_)) => Err(no_such_upload()),
        Err(error) => Err(s3_error(error)),
    }
}

/// Every part record of upload `id`, in part order.
async fn parts_of(files: &Files, id: &str) -> S3Result<Vec<crate::files::FileSummary>> {
    let mut parts = Vec::new();
    let mut after: Option<String> = None;
    let prefix = format!("{id}/");
    loop {
        let page = files
            .list_records(RecordKind::UploadPart, &prefix, after.as_deref(), 1000)
            .await
            .map_err(s3_error)?;
        let last = page.files.last().map(|s| s.name.id().to_owned());
        parts.extend(page.files);
        match last {
            Some(last) if page.truncated => after = Some(last),
            _ => return Ok(parts),
        }
    }
}

/// The part number a part record's name carries.
fn part_number(name: &FileName) -> Option<i32> {
    name.id().rsplit('/').next()?.parse().ok()
}

/// CompleteMultipartUpload: the object becomes the listed parts' chunks.
///
/// # Errors
/// `NoSuchUpload`, `InvalidPart`, `InvalidPartOrder`, `EntityTooSmall`,
/// `MalformedXML` for an empty part list, or the swarm's.
pub async fn complete(
    files: &Files,
    input: CompleteMultipartUploadInput,
) -> S3Result<CompleteMultipartUploadOutput> {
    let object = object_file(&input.bucket, &input.key)?;
    let upload = upload_name(&input.bucket, &input.key, &input.upload_id)?;
    let record = open(files, &upload).await?;
    let listed: Vec<CompletedPart> = input
        .multipart_upload
        .and_then(|m| m.parts)
        .unwrap_or_default();
    if listed.is_empty() {
        return Err(s3_error!(MalformedXML, "the upload lists no parts"));
    }
    let mut numbers = Vec::with_capacity(listed.len());
    for part in &listed {
        let number = part
            .part_number
            .ok_or_else(|| s3_error!(InvalidPart, "a part has no number"))?;
        if numbers.last().is_some_and(|&last| number <= last) {
            return Err(s3_error!(
                InvalidPartOrder,
                "parts must be listed in ascending order"
            ));
        }
        numbers.push(number);
    }
    let manifests = read_parts(files, &input.upload_id, &numbers).await?;
    let mut chunks = Vec::new();
    let mut md5s = Vec::with_capacity(listed.len());
    let mut layout = Vec::with_capacity(listed.len());
    let mut checksums = Vec::new();
    let last = listed.len() - 1;
    for (i, (part, manifest)) in listed.iter().zip(&manifests).enumerate() {
        let etag = etag_of(manifest);
        let sent = part
            .e_tag
            .as_ref()
            .map(|t| t.value().trim_matches('"').to_owned());
        if sent.as_deref().is_some_and(|sent| sent != etag) {
            return Err(s3_error!(InvalidPart, "a part's ETag does not match"));
        }
        if i < last && manifest.size < MIN_PART_SIZE {
            return Err(s3_error!(
                EntityTooSmall,
                "every part but the last must be at least 5 MiB"
            ));
        }
        let md5: Md5Hash = etag
            .parse()
            .map_err(|_| s3_error!(InvalidPart, "a part has no MD5"))?;
        md5s.push(md5);
        layout.push(u32::try_from(manifest.chunks.len()).unwrap_or(u32::MAX));
        checksums.push(ObjectMeta::of(&manifest.extensions).checksum);
        chunks.extend(manifest.chunks.iter().copied());
    }
    let mut meta = record.meta.clone();
    meta.set_layout(&layout);
    meta.checksum = record
        .checksum
        .and_then(|kind| composite_checksum(kind, &checksums));
    let etag = multipart_etag(&md5s);
    let mut extensions = Extensions::none();
    extensions.set(tags::ETAG, etag.clone().into_bytes());
    meta.store(&mut extensions);
    files
        .compose(object, chunks, None, extensions)
        .await
        .map_err(s3_error)?;
    // The object is complete whatever happens next; an upload left behind
    // by a failed clean-up is listed until it expires, and then removed.
    if let Err(error) = remove_upload(files, &upload, &input.upload_id).await {
        tracing::warn!(%error, upload = %input.upload_id, "a completed upload's records remain until it expires");
    }
    let mut output = CompleteMultipartUploadOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        e_tag: Some(ETag::Strong(etag)),
        ..Default::default()
    };
    if let Some(checksum) = meta.checksum {
        set_checksum!(output, checksum);
        output.checksum_type = Some("COMPOSITE".to_owned().into());
    }
    Ok(output)
}

/// The manifests of parts `numbers` of upload `id`, in order.
async fn read_parts(files: &Files, id: &str, numbers: &[i32]) -> S3Result<Vec<Manifest>> {
    let names = numbers
        .iter()
        .map(|&n| part_name(id, n))
        .collect::<S3Result<Vec<_>>>()?;
    let reads = futures::stream::iter(names)
        .map(|name| async move {
            match files.manifest(&name).await {
                Ok(manifest) => Ok(manifest),
                Err(FilesError::NotFound(_)) => {
                    Err(s3_error!(InvalidPart, "a listed part was not uploaded"))
                }
                Err(error) => Err(s3_error(error)),
            }
        })
        .buffered(PARTS_IN_FLIGHT);
    reads.collect::<Vec<_>>().await.into_iter().collect()
}

/// The checksum of the parts' checksums, `-N`, as S3 gives a multipart
/// object; `None` unless every part has one of `kind`.
fn composite_checksum(
    kind: ChecksumKind,
    parts: &[Option<StoredChecksum>],
) -> Option<StoredChecksum> {
    use base64::Engine as _;
    // S3 gives CRC-64/NVME objects a whole-object checksum only, which
    // would need their bytes read.
    if kind == ChecksumKind::Crc64Nvme {
        return None;
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let mut hasher = super::ingest::checksum_hasher(kind);
    for part in parts {
        let part = part.as_ref().filter(|p| p.kind == kind)?;
        hasher.update(&engine.decode(&part.value).ok()?);
    }
    let value = super::ingest::finish(kind, hasher)?;
    Some(StoredChecksum {
        kind,
        value: format!("{value}-{}", parts.len()),
    })
}

/// Removes upload `id`: its parts first, whose chunks are freed where
/// nothing else uses them, then its record. In that order an interruption
/// (the peer stopping halfway) leaves the record, which is listed and
/// expires, taking the rest of the parts with it; never parts without a
/// record, which nothing would ever remove.
pub async fn remove_upload(files: &Files, upload: &FileName, id: &str) -> S3Result<()> {
    let parts = parts_of(files, id).await?;
    let removals = futures::stream::iter(parts)
        .map(|part| async move {
            match files.delete(&part.name).await {
                Ok(_) | Err(FilesError::NotFound(_)) => Ok(()),
                Err(error) => Err(error),
            }
        })
        .buffer_unordered(PARTS_IN_FLIGHT);
    let outcomes: Vec<Result<(), FilesError>> = removals.collect().await;
    if let Some(Err(error)) = outcomes.into_iter().find(Result::is_err) {
        return Err(s3_error(error));
    }
    match files.delete(upload).await {
        Ok(_) | Err(FilesError::NotFound(_)) => Ok(()),
        Err(error) => Err(s3_error(error)),
    }
}

/// ListParts.
///
/// # Errors
/// `NoSuchUpload`, or the swarm's.
pub async fn list_parts(files: &Files, input: ListPartsInput) -> S3Result<ListPartsOutput> {
    let upload = upload_name(&input.bucket, &input.key, &input.upload_id)?;
    let record = open(files, &upload).await?;
    let max = usize::try_from(input.max_parts.unwrap_or(1000).clamp(0, 1000)).unwrap_or(1000);
    let marker = input.part_number_marker.unwrap_or(0);
    let all = parts_of(files, &input.upload_id).await?;
    let mut parts = Vec::new();
    let mut truncated = false;
    for summary in all {
        let Some(number) = part_number(&summary.name).filter(|&n| n > marker) else {
            continue;
        };
        if parts.len() == max {
            truncated = true;
            break;
        }
        parts.push(Part {
            part_number: Some(number),
            e_tag: summary.etag.clone().map(ETag::Strong),
            size: Some(i64::try_from(summary.size).unwrap_or(i64::MAX)),
            last_modified: Some(timestamp(summary.created_ms)),
            ..Default::default()
        });
    }
    Ok(ListPartsOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(input.upload_id),
        max_parts: Some(i32::try_from(max).unwrap_or(1000)),
        part_number_marker: Some(marker),
        next_part_number_marker: parts.last().and_then(|p| p.part_number),
        is_truncated: Some(truncated),
        checksum_algorithm: record.checksum.map(|k| k.name().to_owned().into()),
        parts: Some(parts),
        ..Default::default()
    })
}

/// ListMultipartUploads: the open uploads of a bucket, in key order.
///
/// # Errors
/// The swarm's.
pub async fn list_uploads(
    files: &Files,
    input: ListMultipartUploadsInput,
) -> S3Result<ListMultipartUploadsOutput> {
    let prefix = input.prefix.clone().unwrap_or_default();
    let max = usize::try_from(input.max_uploads.unwrap_or(1000).clamp(1, 1000)).unwrap_or(1000);
    let after = input
        .key_marker
        .as_ref()
        .map(|key| match &input.upload_id_marker {
            Some(id) => format!("{}/{key}{ID_SEPARATOR}{id}", input.bucket),
            None => format!("{}/{key}{ID_SEPARATOR}\u{10FFFF}", input.bucket),
        });
    let page = files
        .list_records(
            RecordKind::Upload,
            &format!("{}/{prefix}", input.bucket),
            after.as_deref(),
            max,
        )
        .await
        .map_err(s3_error)?;
    let uploads: Vec<MultipartUpload> = page
        .files
        .iter()
        .filter_map(|summary| {
            let within = summary.name.id().get(input.bucket.len() + 1..)?;
            let (key, id) = within.split_once(ID_SEPARATOR)?;
            Some(MultipartUpload {
                key: Some(key.to_owned()),
                upload_id: Some(id.to_owned()),
                initiated: Some(timestamp(summary.created_ms)),
                ..Default::default()
            })
        })
        .collect();
    let last = uploads.last().cloned();
    Ok(ListMultipartUploadsOutput {
        bucket: Some(input.bucket),
        prefix: input.prefix,
        key_marker: input.key_marker,
        upload_id_marker: input.upload_id_marker,
        max_uploads: Some(i32::try_from(max).unwrap_or(1000)),
        is_truncated: Some(page.truncated),
        next_key_marker: last
            .as_ref()
            .filter(|_| page.truncated)
            .and_then(|u| u.key.clone()),
        next_upload_id_marker: last.filter(|_| page.truncated).and_then(|u| u.upload_id),
        uploads: Some(uploads),
        ..Default::default()
    })
}

/// Aborts every upload older than `max_age` whose record this peer is the
/// first owner of (so one peer does it, whichever is up). Returns how many.
pub async fn expire_abandoned(files: &Files, max_age: Duration) -> Result<usize, FilesError> {
    let cutoff =
        wall_millis().saturating_sub(u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX));
    let mut expired = 0;
    let mut after: Option<String> = None;
    loop {
        let page = files
            .list_records(RecordKind::Upload, "", after.as_deref(), 1000)
            .await?;
        for summary in &page.files {
            if summary.created_ms > cutoff || !files.cluster().is_first_owner(&summary.name) {
                continue;
            }
            let Some((_, id)) = summary.name.id().split_once(ID_SEPARATOR) else {
                continue;
            };
            if remove_upload(files, &summary.name, id).await.is_ok() {
                tracing::info!(upload = id, "aborted an abandoned multipart upload");
                expired += 1;
            }
        }
        match page.files.last() {
            Some(last) if page.truncated => after = Some(last.name.id().to_owned()),
            _ => return Ok(expired),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_names_keep_uploads_in_key_order() {
        let a = upload_name("b", "a", "ff").unwrap();
        let ab = upload_name("b", "a/b", "00").unwrap();
        let a2 = upload_name("b", "a2", "00").unwrap();
        assert!(a < ab && ab < a2);
        assert_eq!(part_number(&part_name("ff", 42).unwrap()), Some(42));
        assert!(part_name("ff", 0).is_err());
        assert!(part_name("ff", MAX_PARTS + 1).is_err());
        assert!(part_name("ff", 2).unwrap() < part_name("ff", 10).unwrap());
    }

    #[test]
    fn a_composite_checksum_needs_every_part() {
        let part = |value: &str| {
            Some(StoredChecksum {
                kind: ChecksumKind::Crc32,
                value: value.into(),
            })
        };
        let both = composite_checksum(ChecksumKind::Crc32, &[part("AAAAAA=="), part("AAAAAQ==")]);
        assert!(both.unwrap().value.ends_with("-2"));
        assert!(composite_checksum(ChecksumKind::Crc32, &[part("AAAAAA=="), None]).is_none());
    }
}
