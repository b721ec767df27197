//! The S3 operations shoal answers, as s3s's [`S3`] trait: each one
//! delegates to the module that owns it. Operations not listed here answer
//! `NotImplemented`.

use hyper::StatusCode;
use hyper::header::{HeaderName, HeaderValue};
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};

use super::buckets::Buckets;
use super::ingest::{Expected, announced_checksum};
use super::listing;
use super::multipart::{self, UploadRecord};
use super::names::{check_bucket, object_file};
use super::objects::{self, content_headers, etag_of, find};
use super::reads::{Conditions, Failed, byte_range, timestamp};
use super::{copy, errors::s3_error, meta::ObjectMeta, meta::set_checksum};
use crate::chunk::Version;
use crate::files::Files;

/// The header carrying a version (`x-shoal-version` in the native API).
const VERSION_HEADER: HeaderName = HeaderName::from_static("x-shoal-version");

/// The region GetBucketLocation reports: S3's default, which clients sign
/// for when told nothing else.
pub const REGION: &str = "us-east-1";

/// shoal's S3 operations over the swarm `files` belongs to.
#[derive(Debug, Clone)]
pub struct ShoalS3 {
    files: Files,
    buckets: Buckets,
}

impl ShoalS3 {
    /// The operations over `files`.
    pub fn new(files: Files) -> Self {
        ShoalS3 {
            buckets: Buckets::new(files.clone()),
            files,
        }
    }
}

/// `output` answered with 206 when only part of the object is sent.
fn partial<T>(output: T, partial: bool) -> S3Response<T> {
    if partial {
        S3Response::with_status(output, StatusCode::PARTIAL_CONTENT)
    } else {
        S3Response::new(output)
    }
}

/// Adds `x-shoal-version`, as the native API sends it: the version a
/// write made or a read returned, as text that sorts in version order.
/// S3 clients ignore it; scripts that mix S3 and the native API can order
/// what they did.
fn with_version<T>(mut response: S3Response<T>, version: Option<&Version>) -> S3Response<T> {
    if let Some(value) = version.and_then(|v| HeaderValue::from_str(&v.to_string()).ok()) {
        response.headers.insert(VERSION_HEADER, value);
    }
    response
}

#[async_trait::async_trait]
impl S3 for ShoalS3 {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.buckets.create(&req.input.bucket).await?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{}", req.input.bucket)),
        }))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.buckets.check_now(&req.input.bucket).await?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(REGION.to_owned()),
            ..Default::default()
        }))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.buckets.delete(&req.input.bucket).await?;
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let buckets = self
            .buckets
            .list()
            .await?
            .into_iter()
            .map(|bucket| Bucket {
                name: Some(bucket.name),
                creation_date: Some(timestamp(bucket.created_ms)),
                bucket_region: Some(REGION.to_owned()),
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(Owner {
                display_name: Some("shoal".to_owned()),
                id: Some("shoal".to_owned()),
            }),
            ..Default::default()
        }))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.buckets.check_now(&req.input.bucket).await?;
        // us-east-1 is answered as no constraint, as S3 does.
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let (output, version) = objects::put(
            &self.files,
            &self.buckets,
            req.input,
            &req.headers,
            req.trailing_headers,
        )
        .await?;
        Ok(with_version(S3Response::new(output), Some(&version)))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let (output, is_partial, version) =
            objects::get(&self.files, &self.buckets, req.input).await?;
        Ok(with_version(partial(output, is_partial), Some(&version)))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let (output, is_partial, version) =
            objects::head(&self.files, &self.buckets, req.input).await?;
        Ok(with_version(partial(output, is_partial), Some(&version)))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        let version =
            objects::delete(&self.files, &self.buckets, &input.bucket, &input.key).await?;
        Ok(with_version(
            S3Response::with_status(DeleteObjectOutput::default(), StatusCode::NO_CONTENT),
            version.as_ref(),
        ))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        use futures::StreamExt;
        let input = req.input;
        if input.delete.objects.len() > 1000 {
            return Err(s3_error!(
                MalformedXML,
                "at most 1000 objects can be deleted at once"
            ));
        }
        self.buckets.check(&input.bucket).await?;
        let quiet = input.delete.quiet.unwrap_or(false);
        let bucket = &input.bucket;
        let outcomes: Vec<(String, S3Result<Option<Version>>)> =
            futures::stream::iter(input.delete.objects.into_iter().map(|o| o.key))
                .map(|key| async move {
                    let outcome = objects::delete(&self.files, &self.buckets, bucket, &key).await;
                    (key, outcome)
                })
                .buffered(16)
                .collect()
                .await;
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for (key, outcome) in outcomes {
            match outcome {
                Ok(_) if quiet => {}
                Ok(_) => deleted.push(DeletedObject {
                    key: Some(key),
                    ..Default::default()
                }),
                Err(error) => {
                    let (code, message) = objects::delete_failure(&error);
                    errors.push(Error {
                        key: Some(key),
                        code: Some(code),
                        message: Some(message),
                        ..Default::default()
                    });
                }
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: Some(errors),
            ..Default::default()
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        Ok(S3Response::new(
            copy::copy(&self.files, &self.buckets, req.input).await?,
        ))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.buckets.check_now(&req.input.bucket).await?;
        Ok(S3Response::new(
            listing::list_v2(&self.files, req.input).await?,
        ))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.buckets.check_now(&req.input.bucket).await?;
        Ok(S3Response::new(
            listing::list_v1(&self.files, req.input).await?,
        ))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let input = req.input;
        object_file(&input.bucket, &input.key)?;
        self.buckets.check(&input.bucket).await?;
        let checksum = match &input.checksum_algorithm {
            Some(algorithm) => Some(
                super::meta::ChecksumKind::named(algorithm.as_str())
                    .ok_or_else(|| s3_error!(InvalidArgument, "unsupported checksum algorithm"))?,
            ),
            None => None,
        };
        let record = UploadRecord {
            meta: content_headers!(input).into_meta()?,
            checksum,
        };
        let id = multipart::new_upload_id()?;
        let name = multipart::upload_name(&input.bucket, &input.key, &id)?;
        multipart::create(&self.files, name, &record).await?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(id),
            checksum_algorithm: input.checksum_algorithm,
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let input = req.input;
        let part = multipart::part_name(&input.upload_id, input.part_number)?;
        let upload = multipart::upload_name(&input.bucket, &input.key, &input.upload_id)?;
        let record = multipart::open(&self.files, &upload).await?;
        let algorithm = input
            .checksum_algorithm
            .as_ref()
            .map(|a| a.as_str().to_owned())
            .or_else(|| record.checksum.map(|k| k.name().to_owned()));
        let expected = Expected {
            md5: Expected::parse_md5(input.content_md5.as_deref())?,
            checksum: announced_checksum(&req.headers, algorithm.as_deref())?,
            trailers: req.trailing_headers,
        };
        let manifest = objects::store_body(
            &self.files,
            part,
            input.body,
            expected,
            ObjectMeta::default(),
            true,
        )
        .await?;
        let mut output = UploadPartOutput {
            e_tag: Some(ETag::Strong(etag_of(&manifest))),
            ..Default::default()
        };
        if let Some(checksum) = ObjectMeta::of(&manifest.extensions).checksum {
            set_checksum!(output, checksum);
        }
        Ok(S3Response::new(output))
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let input = req.input;
        let part = multipart::part_name(&input.upload_id, input.part_number)?;
        let upload = multipart::upload_name(&input.bucket, &input.key, &input.upload_id)?;
        multipart::open(&self.files, &upload).await?;
        let (bucket, key) = copy::source_of(&input.copy_source)?;
        let source = find(&self.files, &self.buckets, &bucket, &key).await?;
        let conditions = Conditions {
            if_match: input.copy_source_if_match,
            if_none_match: input.copy_source_if_none_match,
            if_modified_since: input.copy_source_if_modified_since,
            if_unmodified_since: input.copy_source_if_unmodified_since,
        };
        conditions
            .check(&source.etag, source.modified())
            .map_err(|_| Failed::Precondition.error())?;
        let size = source.manifest.size;
        let span = match &input.copy_source_range {
            Some(range) => {
                let range = Range::parse(range).map_err(|_| {
                    s3_error!(InvalidArgument, "the copy source range is malformed")
                })?;
                Some(byte_range(&range, size)?)
            }
            None => (size > 0).then(|| (0, size - 1)),
        };
        // A part's ETag is the MD5 of its bytes, which only reading them
        // gives: the range is streamed through like an upload.
        let body = match span {
            Some((first, last)) => {
                let manifest = source.manifest;
                let sources = self
                    .files
                    .locate(&manifest, first, last)
                    .await
                    .map_err(s3_error)?;
                let stream = self.files.read_range(manifest, sources, first, last);
                Some(StreamingBlob::wrap(sync_wrapper::SyncStream::new(stream)))
            }
            None => None,
        };
        let manifest = objects::store_body(
            &self.files,
            part,
            body,
            Expected::default(),
            ObjectMeta::default(),
            true,
        )
        .await?;
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(ETag::Strong(etag_of(&manifest))),
                last_modified: Some(timestamp(manifest.created_ms)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        Ok(S3Response::new(
            multipart::complete(&self.files, req.input).await?,
        ))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let input = req.input;
        let upload = multipart::upload_name(&input.bucket, &input.key, &input.upload_id)?;
        multipart::open(&self.files, &upload).await?;
        multipart::remove_upload(&self.files, &upload, &input.upload_id).await?;
        Ok(S3Response::with_status(
            AbortMultipartUploadOutput::default(),
            StatusCode::NO_CONTENT,
        ))
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        Ok(S3Response::new(
            multipart::list_parts(&self.files, req.input).await?,
        ))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        check_bucket(&req.input.bucket)?;
        self.buckets.check(&req.input.bucket).await?;
        Ok(S3Response::new(
            multipart::list_uploads(&self.files, req.input).await?,
        ))
    }
}
