//! Keeping S3 secret keys unreadable to anyone without the cluster secret.
//!
//! SigV4 signs with the secret itself, so the swarm must be able to recover
//! every key's secret; but records travel to and rest on every peer that
//! owns them. A key's secret is therefore stored sealed with
//! XChaCha20-Poly1305 under a key derived from the cluster secret (which
//! never leaves the peers that hold it), with a random 24-byte nonce and the
//! access key id as associated data, so a sealed secret cannot be moved to
//! another key id.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::secret::ClusterSecret;

/// The nonce's length in bytes.
const NONCE_BYTES: usize = 24;

/// Seals and opens key secrets. Holds only the derived key.
pub struct SecretSealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretSealer")
    }
}

impl SecretSealer {
    /// A sealer keyed from the swarm's cluster secret.
    pub fn new(cluster: &ClusterSecret) -> Self {
        let key = cluster.derive_key("shoal s3 key secrets v1");
        SecretSealer {
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }

    /// `secret` sealed for the key `key_id`: the nonce, then the ciphertext.
    ///
    /// # Errors
    /// A message if the random source fails.
    pub fn seal(&self, key_id: &str, secret: &str) -> Result<Vec<u8>, String> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|e| format!("no random source: {e}"))?;
        let payload = Payload {
            msg: secret.as_bytes(),
            aad: key_id.as_bytes(),
        };
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), payload)
            .map_err(|_| "sealing failed".to_owned())?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// The secret sealed for `key_id`, or `None` if it was sealed under
    /// another cluster secret, for another key, or was altered.
    pub fn open(&self, key_id: &str, sealed: &[u8]) -> Option<String> {
        if sealed.len() < NONCE_BYTES {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let payload = Payload {
            msg: ciphertext,
            aad: key_id.as_bytes(),
        };
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), payload)
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_for_its_key_under_its_cluster_secret() {
        let cluster = ClusterSecret::generate().unwrap();
        let sealer = SecretSealer::new(&cluster);
        let sealed = sealer.seal("AK1", "s3cr3t").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"s3cr3t"));
        assert_eq!(sealer.open("AK1", &sealed).as_deref(), Some("s3cr3t"));
        assert_eq!(sealer.open("AK2", &sealed), None, "moved to another key");
        let other = SecretSealer::new(&ClusterSecret::generate().unwrap());
        assert_eq!(other.open("AK1", &sealed), None, "another swarm");
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(sealer.open("AK1", &altered), None);
        assert_eq!(sealer.open("AK1", b"short"), None);
    }
}
