//! Fixed-size digests (BLAKE3 and MD5) with one text form: lowercase hex.
//!
//! In human-readable formats (JSON) a digest is a hex string, so API clients
//! and scripts can compare it with `b3sum`/`md5sum` output; in binary formats
//! (bincode) it is its raw bytes, so stored rows and wire messages stay small.

use std::fmt;
use std::str::FromStr;

use md5::Digest as _;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A digest of `N` bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest<const N: usize>(pub [u8; N]);

/// A BLAKE3 hash: the address of a chunk and the identity of a file's content.
pub type Blake3Hash = Digest<32>;

/// An MD5 digest, carried with every chunk so that clients can check what
/// they received with a tool they already have.
pub type Md5Hash = Digest<16>;

impl Blake3Hash {
    /// Hashes `data` with BLAKE3.
    pub fn of(data: &[u8]) -> Self {
        Digest(*blake3::hash(data).as_bytes())
    }

    /// Hashes the concatenation of `pieces` without copying them together.
    pub fn of_pieces<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut hasher = blake3::Hasher::new();
        for piece in pieces {
            hasher.update(piece);
        }
        hasher.finalize().into()
    }
}

impl From<blake3::Hash> for Blake3Hash {
    fn from(hash: blake3::Hash) -> Self {
        Digest(*hash.as_bytes())
    }
}

impl Md5Hash {
    /// Hashes `data` with MD5.
    pub fn of(data: &[u8]) -> Self {
        Digest(md5::Md5::digest(data).into())
    }

    /// Hashes the concatenation of `pieces` without copying them together.
    pub fn of_pieces<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut hasher = md5::Md5::new();
        for piece in pieces {
            md5::Digest::update(&mut hasher, piece);
        }
        Digest(hasher.finalize().into())
    }
}

impl<const N: usize> Digest<N> {
    /// The digest as lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first eight hex digits, for log lines and messages meant for people.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl<const N: usize> fmt::Display for Digest<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl<const N: usize> fmt::Debug for Digest<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

/// A string that is not the hex form of a digest of the expected length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected} hex digits, got {got:?}")]
pub struct DigestParseError {
    expected: usize,
    got: String,
}

impl<const N: usize> FromStr for Digest<N> {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; N];
        hex::decode_to_slice(s, &mut out).map_err(|_| DigestParseError {
            expected: N * 2,
            got: s.chars().take(80).collect(),
        })?;
        Ok(Digest(out))
    }
}

impl<const N: usize> Serialize for Digest<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_hex())
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

impl<'de, const N: usize> Deserialize<'de> for Digest<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DigestVisitor<const N: usize>;

        impl<const N: usize> Visitor<'_> for DigestVisitor<N> {
            type Value = Digest<N>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{N} bytes or {} hex digits", N * 2)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.parse().map_err(E::custom)
            }

            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                let bytes: [u8; N] = v
                    .try_into()
                    .map_err(|_| E::invalid_length(v.len(), &self))?;
                Ok(Digest(bytes))
            }
        }

        if deserializer.is_human_readable() {
            deserializer.deserialize_str(DigestVisitor::<N>)
        } else {
            deserializer.deserialize_bytes(DigestVisitor::<N>)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(
            Blake3Hash::of(b"").to_hex(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        assert_eq!(
            Md5Hash::of(b"").to_hex(),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
    }

    #[test]
    fn hex_round_trip_and_rejects_wrong_length() {
        let h = Blake3Hash::of(b"shoal");
        assert_eq!(h.to_hex().parse::<Blake3Hash>().unwrap(), h);
        assert!("abcd".parse::<Blake3Hash>().is_err());
        assert!(h.to_hex().parse::<Md5Hash>().is_err());
    }

    #[test]
    fn json_is_hex_and_binary_is_raw() {
        let h = Md5Hash::of(b"x");
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{}\"", h.to_hex()));
        assert_eq!(serde_json::from_str::<Md5Hash>(&json).unwrap(), h);
        let bin = crate::codec::encode(&h).unwrap();
        assert_eq!(bin.len(), 17, "one length byte plus 16 digest bytes");
        assert_eq!(crate::codec::decode::<Md5Hash>(&bin).unwrap(), h);
    }
}
