//! Access tokens for the HTTP API and the web page.
//!
//! A token is the record `token/<id>` of the swarm's own kinds, written and
//! read with the quorum rules of manifests, so a token made on one peer
//! works on every peer at once, and a removed one stops working everywhere
//! within [`CACHE_TTL`]. Its payload is the token's name, its [`Scope`],
//! its expiry and its secret's hash (see `secret`): never the token itself,
//! which is shown once, when it is made. Removing a token writes a
//! tombstone that is never purged, so a stale copy on a peer that was away
//! can never bring it back.
//!
//! Besides the swarm's tokens, each peer keeps one of its own (see
//! [`LocalToken`]) with the admin scope, in a file only the peer's user can
//! read: it lets whoever runs the peer make the first token.

mod local;
mod secret;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use local::{LOCAL_TOKEN_FILE, LocalToken, LocalTokenError, read as read_local};
pub use secret::TokenText;

use crate::chunk::{Extensions, FileName, RecordKind, tags, wall_millis};
use crate::codec;
use crate::files::{Files, FilesError};

/// How long a token looked up (or found missing) is trusted before the
/// swarm is asked again: the longest a removed token keeps working.
pub const CACHE_TTL: Duration = Duration::from_secs(1);

/// How long a token looked up is still accepted when the swarm cannot be
/// asked (too few peers answer), so a degraded swarm stays manageable.
pub const STALE_TTL: Duration = Duration::from_secs(60);

/// The longest token name accepted.
const MAX_TOKEN_NAME: usize = 128;

/// The tokens listed at most; a swarm with more is misused.
const MAX_TOKENS: usize = 10_000;

/// Lookups remembered at most: ids presented by anyone, so bounded.
const MAX_CACHED: usize = 10_000;

/// What a token lets its holder do; each scope includes the ones before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// List, stat, get, and see status, metrics and the page.
    ReadOnly,
    /// Also put and delete files.
    ReadWrite,
    /// Also manage tokens and S3 keys, read invites, scrub and leave.
    Admin,
}

impl Scope {
    /// The scope's name, as the CLI and the JSON show it.
    pub fn name(self) -> &'static str {
        match self {
            Scope::ReadOnly => "read-only",
            Scope::ReadWrite => "read-write",
            Scope::Admin => "admin",
        }
    }
}

/// What a checked token grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The token's name.
    pub name: String,
    /// What it allows.
    pub scope: Scope,
}

/// What is wrong with a token operation.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// A name that is empty, too long or has control characters.
    #[error("invalid token name: use 1 to {MAX_TOKEN_NAME} characters without control characters")]
    InvalidName,
    /// A live token already has this name.
    #[error("a token named {0:?} exists already")]
    Exists(String),
    /// No live token has this name.
    #[error("no token is named {0:?}")]
    NotFound(String),
    /// An expiry in the past, or too far to count in milliseconds.
    #[error("the expiry must be in the future")]
    InvalidExpiry,
    /// The system has no random source.
    #[error("no random source: {0}")]
    Random(String),
    /// The swarm could not be read or written.
    #[error(transparent)]
    Files(#[from] FilesError),
}

/// A token as created: the only time its text is shown. Its `Debug`
/// leaves the token out.
#[derive(Clone, Serialize, Deserialize)]
pub struct NewToken {
    /// The token's name.
    pub name: String,
    /// The token, for `Authorization: Bearer`.
    pub token: String,
    /// What it allows.
    pub scope: Scope,
    /// When it stops working, milliseconds since the Unix epoch.
    pub expires_ms: Option<u64>,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("name", &self.name)
            .field("scope", &self.scope)
            .field("expires_ms", &self.expires_ms)
            .finish_non_exhaustive()
    }
}

/// A token as listings show it: never its text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The token's name.
    pub name: String,
    /// What it allows.
    pub scope: Scope,
    /// When it was made, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// When it stops working, milliseconds since the Unix epoch.
    pub expires_ms: Option<u64>,
    /// Whether it has stopped working already.
    pub expired: bool,
}

/// The payload of a token's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenRecord {
    name: String,
    scope: Scope,
    expires_ms: Option<u64>,
    secret_hash: secret::SecretHash,
}

impl TokenRecord {
    fn expired(&self, now_ms: u64) -> bool {
        self.expires_ms.is_some_and(|at| at <= now_ms)
    }
}

/// A record looked up, or found missing, at some time.
type Cached = (Instant, Option<Arc<TokenRecord>>);

/// The swarm's access tokens. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AccessTokens {
    files: Files,
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

impl AccessTokens {
    /// The tokens of the swarm `files` belongs to.
    pub fn new(files: Files) -> Self {
        AccessTokens {
            files,
            cache: Arc::default(),
        }
    }

    /// Makes a token called `name` with `scope`, working until `expires_ms`
    /// if given.
    ///
    /// # Errors
    /// [`TokenError::InvalidName`], [`TokenError::Exists`],
    /// [`TokenError::InvalidExpiry`], or the swarm's failure.
    pub async fn create(
        &self,
        name: &str,
        scope: Scope,
        expires_ms: Option<u64>,
    ) -> Result<NewToken, TokenError> {
        // `.` and `..` cannot travel as a URL path segment.
        if name.is_empty()
            || name.len() > MAX_TOKEN_NAME
            || name.chars().any(char::is_control)
            || name == "."
            || name == ".."
        {
            return Err(TokenError::InvalidName);
        }
        if expires_ms.is_some_and(|at| at <= wall_millis()) {
            return Err(TokenError::InvalidExpiry);
        }
        if self.find(name).await?.is_some() {
            return Err(TokenError::Exists(name.to_owned()));
        }
        let token = TokenText::generate().map_err(|e| TokenError::Random(e.to_string()))?;
        let record = TokenRecord {
            name: name.to_owned(),
            scope,
            expires_ms,
            secret_hash: token.hash(),
        };
        let mut extensions = Extensions::none();
        extensions.set(
            tags::PAYLOAD,
            codec::encode(&record).map_err(|e| FilesError::Internal(e.to_string()))?,
        );
        self.files
            .compose(record_name(token.id())?, Vec::new(), None, extensions)
            .await?;
        self.cache_lock().remove(token.id());
        tracing::info!(name, scope = scope.name(), "made an access token");
        Ok(NewToken {
            name: name.to_owned(),
            token: token.reveal(),
            scope,
            expires_ms,
        })
    }

    /// Every live token, by id, expired ones included (they are listed so
    /// that they can be removed).
    ///
    /// # Errors
    /// The swarm's failure.
    pub async fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        let now = wall_millis();
        Ok(self
            .records()
            .await?
            .into_iter()
            .map(|(_, created_ms, record)| TokenInfo {
                expired: record.expired(now),
                name: record.name,
                scope: record.scope,
                created_ms,
                expires_ms: record.expires_ms,
            })
            .collect())
    }

    /// Removes the token called `name` on every peer, for good: every
    /// token of that name, should two creations through different peers
    /// have raced.
    ///
    /// # Errors
    /// [`TokenError::NotFound`], or the swarm's failure.
    pub async fn remove(&self, name: &str) -> Result<(), TokenError> {
        let ids: Vec<String> = self
            .records()
            .await?
            .into_iter()
            .filter(|(_, _, record)| record.name == name)
            .map(|(id, _, _)| id)
            .collect();
        if ids.is_empty() {
            return Err(TokenError::NotFound(name.to_owned()));
        }
        for id in ids {
            match self.files.delete(&record_name(&id)?).await {
                Ok(_) | Err(FilesError::NotFound(_)) => {}
                Err(error) => return Err(error.into()),
            }
            self.cache_lock().remove(&id);
        }
        tracing::info!(name, "removed an access token");
        Ok(())
    }

    /// What `token` grants: `None` if it is no live, unexpired token of
    /// this swarm. Answers are reused for [`CACHE_TTL`].
    ///
    /// # Errors
    /// The swarm's failure, when no recent answer can stand in.
    pub async fn check(&self, token: &TokenText) -> Result<Option<Grant>, TokenError> {
        let id = token.id().to_owned();
        let cached = self.cache_lock().get(&id).cloned();
        let record = match cached {
            Some((at, record)) if at.elapsed() < CACHE_TTL => record,
            cached => match self.files.manifest(&record_name(&id)?).await {
                Ok(manifest) => {
                    let record = decode(&manifest.extensions).map(Arc::new);
                    self.remember(id, record.clone());
                    record
                }
                Err(FilesError::NotFound(_)) => {
                    self.remember(id, None);
                    None
                }
                // A swarm too degraded to answer keeps accepting a token it
                // knew a moment ago, rather than lock everyone out.
                Err(error) => match cached {
                    Some((at, record)) if at.elapsed() < STALE_TTL => record,
                    _ => return Err(error.into()),
                },
            },
        };
        Ok(record
            .filter(|r| secret::matches(token, &r.secret_hash) && !r.expired(wall_millis()))
            .map(|r| Grant {
                name: r.name.clone(),
                scope: r.scope,
            }))
    }

    /// The id of the live token called `name`, if any.
    async fn find(&self, name: &str) -> Result<Option<String>, TokenError> {
        Ok(self
            .records()
            .await?
            .into_iter()
            .find(|(_, _, record)| record.name == name)
            .map(|(id, _, _)| id))
    }

    /// Every live token's id, creation time and record.
    async fn records(&self) -> Result<Vec<(String, u64, TokenRecord)>, TokenError> {
        let records = self.files.whole_kind(RecordKind::Token, MAX_TOKENS).await?;
        Ok(records
            .into_iter()
            .filter_map(|(summary, manifest)| {
                let record = decode(&manifest.extensions)?;
                Some((summary.name.id().to_owned(), summary.created_ms, record))
            })
            .collect())
    }

    /// Remembers a lookup. The ids come from whoever sends a request, so
    /// the cache is kept to [`MAX_CACHED`] entries: past it, entries too
    /// old to be of use go, and if that is not enough, all of them.
    fn remember(&self, id: String, record: Option<Arc<TokenRecord>>) {
        let mut cache = self.cache_lock();
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, (at, _)| at.elapsed() < STALE_TTL);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(id, (Instant::now(), record));
    }

    fn cache_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The record name of the token with id `id`.
fn record_name(id: &str) -> Result<FileName, TokenError> {
    if !secret::valid_id(id) {
        return Err(TokenError::NotFound(id.to_owned()));
    }
    FileName::record(RecordKind::Token, id).map_err(|_| TokenError::NotFound(id.to_owned()))
}

fn decode(extensions: &Extensions) -> Option<TokenRecord> {
    codec::decode(extensions.get(tags::PAYLOAD)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_include_the_ones_before() {
        assert!(Scope::ReadOnly < Scope::ReadWrite && Scope::ReadWrite < Scope::Admin);
        assert_eq!(
            serde_json::to_string(&Scope::ReadWrite).unwrap(),
            "\"read-write\""
        );
        assert_eq!(Scope::Admin.name(), "admin");
    }

    #[test]
    fn expiry_is_inclusive_of_its_moment() {
        let record = TokenRecord {
            name: "t".into(),
            scope: Scope::ReadOnly,
            expires_ms: Some(10),
            secret_hash: [0; 32],
        };
        assert!(!record.expired(9));
        assert!(record.expired(10));
    }
}
