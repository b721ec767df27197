//! Signature checks: s3s verifies SigV4 (headers, presigned URLs and
//! `aws-chunked` bodies); this supplies each key's secret from the swarm.

use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Result, s3_error};

use super::keys::{AccessKeys, KeyError};

/// Looks secrets up in the swarm's key records.
#[derive(Debug, Clone)]
pub struct SwarmAuth {
    keys: AccessKeys,
}

impl SwarmAuth {
    /// Authentication against `keys`.
    pub fn new(keys: AccessKeys) -> Self {
        SwarmAuth { keys }
    }
}

#[async_trait::async_trait]
impl S3Auth for SwarmAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.keys.secret(access_key).await {
            Ok(Some(secret)) => Ok(SecretKey::from(secret.as_ref())),
            Ok(None) => Err(s3_error!(
                InvalidAccessKeyId,
                "the access key id does not exist in this swarm"
            )),
            Err(KeyError::Files(error)) => {
                tracing::warn!(%error, "cannot look up an S3 access key");
                Err(s3_error!(
                    ServiceUnavailable,
                    "too few peers answered to check the access key; try again"
                ))
            }
            Err(error) => {
                tracing::warn!(%error, "an S3 access key cannot be used");
                Err(s3_error!(
                    InvalidAccessKeyId,
                    "the access key cannot be used"
                ))
            }
        }
    }
}
