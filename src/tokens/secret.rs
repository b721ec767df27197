//! The text of an access token, and what the swarm keeps of it.
//!
//! A token reads `shoal_<id>_<secret>`: the id names the token's record, so
//! checking a token is one record read; the secret is 32 random characters
//! of 62 (190 bits) that only its holder ever sees. The swarm keeps the
//! secret's BLAKE3 alone (keyed by the id, so one hash cannot stand for
//! another token), which cannot be turned back into the token: a record
//! copied off a disk or a peer opens nothing. A slow password hash would
//! add nothing here, since the secret is random rather than chosen.

use std::fmt;

/// What every token starts with, so a token pasted in the wrong place is
/// recognised (and secret scanners can find leaked ones).
const PREFIX: &str = "shoal_";
/// Characters of a token's id.
pub const ID_LEN: usize = 12;
/// Characters of a token's secret.
const SECRET_LEN: usize = 32;
/// Letters and digits ids are made of (lower case, so ids read aloud).
const ID_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
/// Letters and digits secrets are made of.
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A token as its holder has it. Its `Debug` hides the secret, so a token
/// never reaches a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenText {
    id: String,
    secret: String,
}

/// The BLAKE3 the swarm keeps of a token's secret.
pub type SecretHash = [u8; 32];

impl TokenText {
    /// A new token with a random id and secret.
    ///
    /// # Errors
    /// The system has no random source.
    pub fn generate() -> Result<Self, getrandom::Error> {
        Ok(TokenText {
            id: random_text(ID_LEN, ID_ALPHABET)?,
            secret: random_text(SECRET_LEN, SECRET_ALPHABET)?,
        })
    }

    /// Reads a token's text, or `None` if it is not one (nothing about the
    /// text is told back: it may be a secret pasted in the wrong place).
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.trim().strip_prefix(PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        let valid = id.len() == ID_LEN
            && secret.len() == SECRET_LEN
            && id.bytes().all(|b| ID_ALPHABET.contains(&b))
            && secret.bytes().all(|b| SECRET_ALPHABET.contains(&b));
        valid.then(|| TokenText {
            id: id.to_owned(),
            secret: secret.to_owned(),
        })
    }

    /// The id, which names the token's record; not secret.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The hash the swarm keeps.
    pub fn hash(&self) -> SecretHash {
        hash_secret(&self.id, &self.secret)
    }

    /// The whole text, for its holder only.
    pub fn reveal(&self) -> String {
        format!("{PREFIX}{}_{}", self.id, self.secret)
    }
}

impl fmt::Debug for TokenText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenText({PREFIX}{}_…)", self.id)
    }
}

/// Whether `id` could be a token's id (record names are built from it).
pub fn valid_id(id: &str) -> bool {
    id.len() == ID_LEN && id.bytes().all(|b| ID_ALPHABET.contains(&b))
}

/// Whether `hash` is the hash of `token`'s secret, in constant time.
pub fn matches(token: &TokenText, hash: &SecretHash) -> bool {
    blake3::Hash::from_bytes(token.hash()) == blake3::Hash::from_bytes(*hash)
}

fn hash_secret(id: &str, secret: &str) -> SecretHash {
    let key = blake3::derive_key("shoal 2026 access token secret", id.as_bytes());
    *blake3::keyed_hash(&key, secret.as_bytes()).as_bytes()
}

/// `len` characters drawn uniformly from `alphabet` (rejection sampling,
/// so no character is likelier than another).
fn random_text(len: usize, alphabet: &[u8]) -> Result<String, getrandom::Error> {
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf)?;
        for &b in &buf {
            if usize::from(b) < limit && out.len() < len {
                out.push(char::from(alphabet[usize::from(b) % alphabet.len()]));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_hide_their_secret() {
        let token = TokenText::generate().unwrap();
        let text = token.reveal();
        assert!(text.starts_with("shoal_"));
        assert_eq!(text.len(), 6 + ID_LEN + 1 + SECRET_LEN);
        assert_eq!(TokenText::parse(&text), Some(token.clone()));
        assert_eq!(TokenText::parse(&format!(" {text}\n")), Some(token.clone()));
        let shown = format!("{token:?}");
        assert!(!shown.contains(&token.secret), "{shown}");
        assert!(matches(&token, &token.hash()));
        let other = TokenText::generate().unwrap();
        assert!(!matches(&other, &token.hash()));
        assert!(valid_id(token.id()));
    }

    #[test]
    fn anything_else_is_not_a_token() {
        let good = TokenText::generate().unwrap().reveal();
        for bad in [
            String::new(),
            "shoal_".into(),
            good.replacen("shoal_", "shoal-", 1),
            good[..good.len() - 1].to_owned(),
            format!("{good}x"),
            good.replacen('_', "_0", 2),
            "Bearer x".into(),
        ] {
            assert_eq!(TokenText::parse(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_same_secret_under_another_id_hashes_differently() {
        assert_ne!(hash_secret("a", "s"), hash_secret("b", "s"));
    }
}
