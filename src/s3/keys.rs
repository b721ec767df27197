//! S3 access keys, kept as replicated records of their own kind.
//!
//! A key is the record `AccessKey/<access key id>`, written and read with
//! the quorum rules of manifests, so every peer's endpoint accepts a new
//! key at once and refuses a removed one within [`CACHE_TTL`]. Its payload
//! is the key's name, its creation time and its secret sealed under the
//! cluster secret (see `sealing`); a swarm without a cluster secret cannot
//! have keys at all, since anyone who joins it could read them. Removing a
//! key writes a tombstone that is never purged, so a stale copy on a peer
//! that was away can never bring the key back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::sealing::SecretSealer;
use crate::chunk::{Extensions, FileName, RecordKind, tags};
use crate::codec;
use crate::files::{Files, FilesError};
use crate::secret::ClusterSecret;

/// How long a looked-up secret (or its absence) is trusted before the
/// swarm is asked again: the longest a removed key keeps working.
pub const CACHE_TTL: Duration = Duration::from_secs(1);

/// How long a secret looked up is still used when the swarm cannot be
/// asked (too few peers answer): a removed key is refused within
/// [`CACHE_TTL`] while the swarm answers, within this while it does not.
pub const STALE_TTL: Duration = Duration::from_secs(60);

/// Characters of a generated access key id, after its `SK` prefix.
const KEY_ID_LEN: usize = 18;

/// Random bytes in a generated secret (encoded as 40 base64 characters).
const SECRET_BYTES: usize = 30;

/// The longest key name accepted.
const MAX_KEY_NAME: usize = 128;

/// What is wrong with a key operation.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The swarm has no cluster secret, so secrets cannot be kept safe.
    #[error(
        "S3 keys need a cluster secret, or any peer that joins could read them: start every peer with --secret-file (make one with `shoal keygen`)"
    )]
    NoClusterSecret,
    /// An access key id that is not 3 to 128 letters and digits.
    #[error("invalid access key id {0:?}: use 3 to 128 ASCII letters and digits")]
    InvalidId(String),
    /// A secret that is not 8 to 128 printable ASCII characters.
    #[error("invalid secret access key: use 8 to 128 printable ASCII characters without spaces")]
    InvalidSecret,
    /// A key name that is empty, too long or has control characters.
    #[error("invalid key name: use 1 to {MAX_KEY_NAME} characters without control characters")]
    InvalidName,
    /// A live key already has this id.
    #[error("access key {0} already exists")]
    Exists(String),
    /// No live key has this id.
    #[error("no such access key: {0}")]
    NotFound(String),
    /// The key's record cannot be read (written under another cluster
    /// secret, or damaged).
    #[error("access key {0} cannot be opened with this swarm's cluster secret")]
    Unreadable(String),
    /// The swarm could not be read or written.
    #[error(transparent)]
    Files(#[from] FilesError),
}

/// A key as created or imported: the only time its secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewKey {
    /// The key's name, for people.
    pub name: String,
    /// The access key id clients sign with.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
}

/// A key as listings show it: never its secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The key's name.
    pub name: String,
    /// The access key id.
    pub access_key_id: String,
    /// When it was created, milliseconds since the Unix epoch.
    pub created_ms: u64,
}

/// The payload of a key's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyRecord {
    name: String,
    sealed_secret: Vec<u8>,
}

/// A secret looked up, or found missing, at some time.
type Cached = (Instant, Option<Arc<str>>);

/// The swarm's S3 access keys. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AccessKeys {
    files: Files,
    sealer: Option<Arc<SecretSealer>>,
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

impl AccessKeys {
    /// The keys of the swarm `files` belongs to; `cluster` is its secret,
    /// without which keys can be neither made nor used.
    pub fn new(files: Files, cluster: Option<&ClusterSecret>) -> Self {
        AccessKeys {
            files,
            sealer: cluster.map(|secret| Arc::new(SecretSealer::new(secret))),
            cache: Arc::default(),
        }
    }

    /// Makes a new key with a random id and secret.
    ///
    /// # Errors
    /// [`KeyError::NoClusterSecret`], [`KeyError::InvalidName`], or the
    /// swarm's failure.
    pub async fn create(&self, name: &str) -> Result<NewKey, KeyError> {
        let id = format!("SK{}", random_text(KEY_ID_LEN, ID_ALPHABET)?);
        let secret = base64_secret()?;
        self.write(name, &id, &secret).await
    }

    /// Adds a key made elsewhere (moving from another store), refusing an
    /// id a live key already has.
    ///
    /// # Errors
    /// As [`AccessKeys::create`], plus [`KeyError::InvalidId`],
    /// [`KeyError::InvalidSecret`] and [`KeyError::Exists`].
    pub async fn import(&self, id: &str, secret: &str, name: &str) -> Result<NewKey, KeyError> {
        check_id(id)?;
        if !(8..=128).contains(&secret.len()) || !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(KeyError::InvalidSecret);
        }
        match self.files.manifest(&record_name(id)?).await {
            Ok(_) => return Err(KeyError::Exists(id.to_owned())),
            Err(FilesError::NotFound(_)) => {}
            Err(error) => return Err(error.into()),
        }
        self.write(name, id, secret).await
    }

    /// Every live key, by id.
    ///
    /// # Errors
    /// The swarm's failure.
    pub async fn list(&self) -> Result<Vec<KeyInfo>, KeyError> {
        let records = self
            .files
            .whole_kind(RecordKind::AccessKey, usize::MAX)
            .await?;
        Ok(records
            .into_iter()
            .map(|(summary, manifest)| KeyInfo {
                name: decode(&manifest.extensions)
                    .map(|r| r.name)
                    .unwrap_or_default(),
                access_key_id: summary.name.id().to_owned(),
                created_ms: summary.created_ms,
            })
            .collect())
    }

    /// Removes the key `id` on every peer, for good.
    ///
    /// # Errors
    /// [`KeyError::NotFound`], or the swarm's failure.
    pub async fn remove(&self, id: &str) -> Result<(), KeyError> {
        check_id(id)?;
        match self.files.delete(&record_name(id)?).await {
            Ok(_) => {}
            Err(FilesError::NotFound(_)) => return Err(KeyError::NotFound(id.to_owned())),
            Err(error) => return Err(error.into()),
        }
        self.cache_lock().remove(id);
        tracing::info!(access_key_id = id, "removed S3 access key");
        Ok(())
    }

    /// The secret of the live key `id`, or `None` if there is no such key
    /// (or no cluster secret to open it with). Answers are reused for
    /// [`CACHE_TTL`].
    ///
    /// # Errors
    /// [`KeyError::Unreadable`], or the swarm's failure.
    pub async fn secret(&self, id: &str) -> Result<Option<Arc<str>>, KeyError> {
        let Some(sealer) = &self.sealer else {
            return Ok(None);
        };
        if check_id(id).is_err() {
            return Ok(None);
        }
        let cached = self.cache_lock().get(id).cloned();
        if let Some((at, secret)) = &cached
            && at.elapsed() < CACHE_TTL
        {
            return Ok(secret.clone());
        }
        let found = match self.files.manifest(&record_name(id)?).await {
            Ok(manifest) => {
                let record = decode(&manifest.extensions)
                    .ok_or_else(|| KeyError::Unreadable(id.to_owned()))?;
                let secret = sealer
                    .open(id, &record.sealed_secret)
                    .ok_or_else(|| KeyError::Unreadable(id.to_owned()))?;
                Some(Arc::from(secret))
            }
            Err(FilesError::NotFound(_)) => None,
            // A swarm too busy or too degraded to answer keeps serving a
            // key it knew a moment ago, rather than refuse every request.
            Err(error) => match cached {
                Some((at, Some(secret))) if at.elapsed() < STALE_TTL => {
                    tracing::debug!(%error, "using the last known secret of an access key");
                    return Ok(Some(secret));
                }
                _ => return Err(error.into()),
            },
        };
        self.cache_lock()
            .insert(id.to_owned(), (Instant::now(), found.clone()));
        Ok(found)
    }

    /// Writes the key record for `id`.
    async fn write(&self, name: &str, id: &str, secret: &str) -> Result<NewKey, KeyError> {
        let sealer = self.sealer.as_ref().ok_or(KeyError::NoClusterSecret)?;
        if name.is_empty() || name.len() > MAX_KEY_NAME || name.chars().any(char::is_control) {
            return Err(KeyError::InvalidName);
        }
        let record = KeyRecord {
            name: name.to_owned(),
            sealed_secret: sealer
                .seal(id, secret)
                .map_err(|e| KeyError::Files(FilesError::Internal(e)))?,
        };
        let mut extensions = Extensions::none();
        extensions.set(
            tags::PAYLOAD,
            codec::encode(&record).map_err(|e| FilesError::Internal(e.to_string()))?,
        );
        self.files
            .compose(record_name(id)?, Vec::new(), None, extensions)
            .await?;
        self.cache_lock().remove(id);
        tracing::info!(access_key_id = id, name, "added S3 access key");
        Ok(NewKey {
            name: name.to_owned(),
            access_key_id: id.to_owned(),
            secret_access_key: secret.to_owned(),
        })
    }

    fn cache_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Letters and digits of generated key ids (upper case, as AWS's).
const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The record name of key `id`.
fn record_name(id: &str) -> Result<FileName, KeyError> {
    FileName::record(RecordKind::AccessKey, id).map_err(|_| KeyError::InvalidId(id.to_owned()))
}

fn check_id(id: &str) -> Result<(), KeyError> {
    if (3..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(KeyError::InvalidId(id.to_owned()))
    }
}

fn decode(extensions: &Extensions) -> Option<KeyRecord> {
    codec::decode(extensions.get(tags::PAYLOAD)?).ok()
}

/// `len` characters drawn uniformly from `alphabet` (of 32 characters).
fn random_text(len: usize, alphabet: &[u8]) -> Result<String, KeyError> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes)
        .map_err(|e| FilesError::Internal(format!("no random source: {e}")))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(alphabet[usize::from(*b) % alphabet.len()]))
        .collect())
}

/// A new random secret: 40 base64 characters, as AWS's are.
fn base64_secret() -> Result<String, KeyError> {
    use base64::Engine as _;
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| FilesError::Internal(format!("no random source: {e}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_secrets_look_like_aws_ones() {
        let id = random_text(KEY_ID_LEN, ID_ALPHABET).unwrap();
        assert_eq!(id.len(), KEY_ID_LEN);
        check_id(&format!("SK{id}")).unwrap();
        assert_eq!(base64_secret().unwrap().len(), 40);
        assert!(check_id("AB").is_err());
        assert!(check_id("AB/C").is_err());
    }
}
