//! The S3 endpoint: S3's API over the swarm, on every peer.
//!
//! s3s parses requests, checks SigV4 signatures (headers, presigned URLs,
//! `aws-chunked` bodies) and writes S3's XML; this module answers the
//! operations over the data path. Objects are files (`bucket/key`), and
//! access keys, buckets and multipart uploads are replicated records of
//! their own kinds, so any peer answers any request with no gateway and no
//! master.
//!
//! - `keys`, `sealing`, `auth`: access keys, their secrets sealed under the
//!   cluster secret, and signature checks.
//! - `names`, `host`: bucket names, how objects map onto files, and
//!   buckets named by the host (virtual-hosted style).
//! - `buckets`: bucket records.
//! - `objects`, `copy`, `reads`, `ingest`, `meta`: object operations, the
//!   rules of conditional and ranged reads, digests computed while a body
//!   streams in, and what an object keeps beside its bytes.
//! - `listing`: prefixes, delimiters and continuation tokens.
//! - `multipart`: uploads and their parts.
//! - `service`: the operations, as s3s's trait; `errors`: the data path's
//!   failures as S3 errors.

mod auth;
mod buckets;
mod copy;
mod errors;
mod host;
mod ingest;
mod keys;
mod listing;
pub(crate) mod meta;
mod multipart;
mod names;
pub(crate) use names::{check_bucket, object_file};
mod objects;
mod reads;
mod sealing;
mod service;

use std::time::Duration;

use s3s::service::{S3Service, S3ServiceBuilder};

pub use self::keys::{AccessKeys, CACHE_TTL, KeyError, KeyInfo, NewKey};
pub use self::multipart::expire_abandoned;
pub use self::service::REGION;
use crate::files::Files;

/// How the endpoint is set up.
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// The domain for virtual-hosted-style requests (`bucket.DOMAIN`), if
    /// any; path-style requests are always answered.
    pub domain: Option<String>,
}

/// Why the endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("invalid S3 domain {domain:?}: {reason}")]
pub struct SettingsError {
    domain: String,
    reason: String,
}

/// The S3 service over `files`, checking signatures against `keys`.
///
/// # Errors
/// [`SettingsError`] for a domain that is not a DNS name.
pub fn service(
    files: Files,
    keys: AccessKeys,
    settings: &S3Settings,
) -> Result<S3Service, SettingsError> {
    let mut builder = S3ServiceBuilder::new(service::ShoalS3::new(files));
    builder.set_auth(auth::SwarmAuth::new(keys));
    if let Some(domain) = &settings.domain {
        let valid = !domain.is_empty()
            && domain.trim_end_matches('.').split('.').all(|part| {
                !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !valid {
            return Err(SettingsError {
                domain: domain.clone(),
                reason: "expected a DNS name such as s3.lan".into(),
            });
        }
        builder.set_host(host::DomainHost::new(domain));
    }
    Ok(builder.build())
}

/// How often abandoned multipart uploads are looked for.
pub const EXPIRY_INTERVAL: Duration = Duration::from_secs(3600);
