//! Buckets, kept as replicated records of their own kind.
//!
//! A bucket is the record `Bucket/<name>`, written and read with the quorum
//! rules of manifests. All access keys of a swarm belong to one owner (the
//! swarm), so creating a bucket that exists answers
//! `BucketAlreadyOwnedByYou`. A bucket is deleted only when no object is
//! listed in it; a put racing the delete may still land after it, and its
//! object then stays as a file (visible to the CLI and the HTTP API, and to
//! S3 again if the bucket is created anew): nothing is ever lost silently.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use s3s::{S3ErrorCode, S3Result, s3_error};

use super::errors::{no_such_bucket, s3_error};
use super::names::{bucket_record, object_prefix};
use crate::chunk::{Extensions, RecordKind};
use crate::files::{Files, FilesError};

/// How long a bucket seen to exist is trusted to, before asking again.
const EXISTS_TTL: Duration = Duration::from_secs(2);

/// How long a bucket seen to exist is trusted to when the swarm cannot be
/// asked.
const STALE_TTL: Duration = Duration::from_secs(60);

/// A bucket as ListBuckets shows it.
#[derive(Debug, Clone)]
pub struct BucketInfo {
    /// Its name.
    pub name: String,
    /// When it was created, milliseconds since the Unix epoch.
    pub created_ms: u64,
}

/// The swarm's buckets. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Buckets {
    files: Files,
    seen: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Buckets {
    /// The buckets of the swarm `files` belongs to.
    pub fn new(files: Files) -> Self {
        Buckets {
            files,
            seen: Arc::default(),
        }
    }

    /// Creates bucket `name`.
    ///
    /// # Errors
    /// `InvalidBucketName`, `BucketAlreadyOwnedByYou`, or the swarm's.
    pub async fn create(&self, name: &str) -> S3Result<()> {
        let record = bucket_record(name)?;
        match self.files.manifest(&record).await {
            Ok(_) => {
                return Err(s3_error!(
                    BucketAlreadyOwnedByYou,
                    "the bucket exists and belongs to this swarm"
                ));
            }
            Err(FilesError::NotFound(_)) => {}
            Err(error) => return Err(s3_error(error)),
        }
        self.files
            .compose(record, Vec::new(), None, Extensions::none())
            .await
            .map_err(s3_error)?;
        tracing::info!(bucket = name, "created S3 bucket");
        Ok(())
    }

    /// Succeeds if bucket `name` exists, or was seen to exist within
    /// [`EXISTS_TTL`]: for writes into the bucket, which would otherwise
    /// each pay a quorum read (see the module's note on racing a delete).
    ///
    /// # Errors
    /// `NoSuchBucket`, or the swarm's.
    pub async fn check(&self, name: &str) -> S3Result<()> {
        let seen = self.seen_lock().get(name).copied();
        if seen.is_some_and(|at| at.elapsed() < EXISTS_TTL) {
            return Ok(());
        }
        match self.check_now(name).await {
            // A bucket seen a moment ago is still trusted when the swarm is
            // too busy or degraded to answer; the write itself needs its
            // own quorum anyway.
            Err(error)
                if *error.code() == S3ErrorCode::ServiceUnavailable
                    && seen.is_some_and(|at| at.elapsed() < STALE_TTL) =>
            {
                Ok(())
            }
            other => other,
        }
    }

    /// Succeeds if bucket `name` exists, asking its owners.
    ///
    /// # Errors
    /// `NoSuchBucket`, or the swarm's.
    pub async fn check_now(&self, name: &str) -> S3Result<()> {
        let record = bucket_record(name)?;
        match self.files.manifest(&record).await {
            Ok(_) => {
                self.seen_lock().insert(name.to_owned(), Instant::now());
                Ok(())
            }
            Err(FilesError::NotFound(_)) => {
                self.seen_lock().remove(name);
                Err(no_such_bucket())
            }
            Err(error) => Err(s3_error(error)),
        }
    }

    /// Deletes bucket `name` if no object is in it.
    ///
    /// # Errors
    /// `NoSuchBucket`, `BucketNotEmpty`, or the swarm's.
    pub async fn delete(&self, name: &str) -> S3Result<()> {
        let record = bucket_record(name)?;
        let objects = self
            .files
            .list(object_prefix(name, ""), None, 1)
            .await
            .map_err(s3_error)?;
        if !objects.files.is_empty() {
            return Err(s3_error!(BucketNotEmpty, "the bucket has objects in it"));
        }
        match self.files.delete(&record).await {
            Ok(_) => {}
            Err(FilesError::NotFound(_)) => return Err(no_such_bucket()),
            Err(error) => return Err(s3_error(error)),
        }
        self.seen_lock().remove(name);
        tracing::info!(bucket = name, "deleted S3 bucket");
        Ok(())
    }

    /// Every bucket, by name.
    ///
    /// # Errors
    /// The swarm's.
    pub async fn list(&self) -> S3Result<Vec<BucketInfo>> {
        let mut buckets = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .files
                .list_records(RecordKind::Bucket, "", after.as_deref(), 1000)
                .await
                .map_err(s3_error)?;
            buckets.extend(page.files.iter().map(|summary| BucketInfo {
                name: summary.name.id().to_owned(),
                created_ms: summary.created_ms,
            }));
            match page.files.last() {
                Some(last) if page.truncated => after = Some(last.name.id().to_owned()),
                _ => return Ok(buckets),
            }
        }
    }

    fn seen_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}
