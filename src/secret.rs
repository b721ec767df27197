//! The cluster secret: 256 random bits that every peer of one swarm shares,
//! and the only thing that admits a peer to it.
//!
//! The secret never travels. A key derived from it is bound into the noise
//! handshake as its prologue (see `net::transport`): both sides mix the
//! prologue into the handshake hash, so a peer holding a different secret,
//! or none, fails the handshake's first authenticated message and the
//! connection is dropped before any protocol runs. A swarm without a secret
//! uses a fixed prologue of its own, so open swarms and secret ones never
//! mix, and neither accepts a libp2p node that is not shoal.

use std::fmt;
use std::path::{Path, PathBuf};

/// The length of a secret in bytes.
pub const SECRET_BYTES: usize = 32;

/// The environment variable that may carry the secret instead of a file.
pub const SECRET_ENV: &str = "SHOAL_SECRET";

/// The file in a peer's data directory that keeps the secret an invite
/// brought, so that restarts need neither the invite nor a secret file.
pub const STORED_SECRET_FILE: &str = "cluster.secret";

/// Why a secret could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The text is not 64 hexadecimal digits.
    #[error("{origin}: expected 64 hexadecimal digits (make a secret with `shoal keygen`)")]
    Malformed {
        /// Where the text came from.
        origin: String,
    },
    /// The secret file could not be read.
    #[error("cannot read the secret file {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The operating system's random source failed.
    #[error("cannot draw random bytes: {0}")]
    Random(String),
    /// The secret could not be kept in the data directory.
    #[error("cannot keep the cluster secret in {}: {source}", path.display())]
    Unwritable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A cluster secret. Its `Debug` form shows only a fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSecret([u8; SECRET_BYTES]);

impl ClusterSecret {
    /// Draws a new secret from the operating system's random source.
    ///
    /// # Errors
    /// [`SecretError::Random`] if the random source is unavailable.
    pub fn generate() -> Result<Self, SecretError> {
        let mut bytes = [0u8; SECRET_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| SecretError::Random(e.to_string()))?;
        Ok(Self(bytes))
    }

    /// Parses the text form: 64 hexadecimal digits, surrounding whitespace
    /// ignored. `origin` names the source in the error.
    ///
    /// # Errors
    /// [`SecretError::Malformed`].
    pub fn parse(text: &str, origin: &str) -> Result<Self, SecretError> {
        let malformed = || SecretError::Malformed {
            origin: origin.to_owned(),
        };
        let digits = text.trim();
        if digits.len() != 2 * SECRET_BYTES {
            return Err(malformed());
        }
        let mut bytes = [0u8; SECRET_BYTES];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| malformed())?;
        Ok(Self(bytes))
    }

    /// Reads a secret file: the text form, as `shoal keygen` prints it.
    /// Files larger than a few lines are refused unread.
    ///
    /// # Errors
    /// [`SecretError::Unreadable`] or [`SecretError::Malformed`].
    pub fn read_file(path: &Path) -> Result<Self, SecretError> {
        use std::io::Read;
        let unreadable = |source| SecretError::Unreadable {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(unreadable)?;
        let mut text = String::new();
        file.take(1024)
            .read_to_string(&mut text)
            .map_err(unreadable)?;
        Self::parse(&text, &format!("secret file {}", path.display()))
    }

    /// The secret kept in `data_dir` (see [`STORED_SECRET_FILE`]), if one
    /// is.
    ///
    /// # Errors
    /// As [`ClusterSecret::read_file`], for a file that exists.
    pub fn read_stored(data_dir: &Path) -> Result<Option<Self>, SecretError> {
        let path = data_dir.join(STORED_SECRET_FILE);
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SecretError::Unreadable { path, source }),
            Ok(_) => Self::read_file(&path).map(Some),
        }
    }

    /// Keeps the secret in `data_dir` (created if missing), readable by
    /// its owner only, durably: written beside, synced, then renamed.
    ///
    /// # Errors
    /// [`SecretError::Unwritable`].
    pub fn store_in(&self, data_dir: &Path) -> Result<(), SecretError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = data_dir.join(STORED_SECRET_FILE);
        let unwritable = |source| SecretError::Unwritable {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(unwritable)?;
        let temp = data_dir.join(format!(".{STORED_SECRET_FILE}.new"));
        // Left over from a crash, or put there by someone else: made anew,
        // so that it is ours and readable by us only.
        match std::fs::remove_file(&temp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(unwritable(e)),
            _ => {}
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(unwritable)?;
        writeln!(file, "{}", self.to_hex())
            .and_then(|()| file.sync_all())
            .map_err(unwritable)?;
        std::fs::rename(&temp, &path).map_err(unwritable)?;
        std::fs::File::open(data_dir)
            .and_then(|dir| dir.sync_all())
            .map_err(unwritable)
    }

    /// The text form, 64 lowercase hexadecimal digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A key for `purpose` derived from the secret: each use of the secret
    /// gets its own key, and none reveals the secret or another's key.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        blake3::derive_key(purpose, &self.0)
    }

    /// A short name for the secret that is safe to log: it identifies which
    /// secret a peer uses without revealing it.
    pub fn fingerprint(&self) -> String {
        let key = blake3::derive_key("shoal cluster secret fingerprint v1", &self.0);
        hex::encode(&key[..4])
    }
}

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClusterSecret({})", self.fingerprint())
    }
}

/// The noise prologue for a swarm with `secret`, or for an open swarm when
/// there is none. Distinct secrets give unrelated prologues, and no secret
/// gives one that no secret can produce.
pub fn noise_prologue(secret: Option<&ClusterSecret>) -> Vec<u8> {
    match secret {
        Some(secret) => {
            blake3::derive_key("shoal cluster secret noise prologue v1", &secret.0).to_vec()
        }
        None => b"shoal open swarm v1".to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        let secret = ClusterSecret::generate().unwrap();
        let text = secret.to_hex();
        assert_eq!(text.len(), 64);
        assert_eq!(
            ClusterSecret::parse(&format!(" {text}\n"), "t").unwrap(),
            secret
        );
    }

    #[test]
    fn malformed_text_is_refused() {
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(63), &"a".repeat(66)] {
            assert!(ClusterSecret::parse(bad, "t").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prologues_separate_swarms() {
        let a = ClusterSecret::generate().unwrap();
        let b = ClusterSecret::generate().unwrap();
        assert_ne!(noise_prologue(Some(&a)), noise_prologue(Some(&b)));
        assert_ne!(noise_prologue(Some(&a)), noise_prologue(None));
        assert_eq!(noise_prologue(Some(&a)), noise_prologue(Some(&a.clone())));
    }

    #[test]
    fn debug_does_not_reveal_the_secret() {
        let secret = ClusterSecret::generate().unwrap();
        assert!(!format!("{secret:?}").contains(&secret.to_hex()[..8]));
    }
}
