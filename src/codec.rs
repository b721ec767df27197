//! The binary encoding of everything shoal stores or sends between peers.
//!
//! bincode (2.x, through its serde API) appears in this module and nowhere
//! else, so the format can be swapped in one place. Decoding is always
//! bounded: bincode allocates a byte vector of whatever length a message
//! declares before reading it, so every decode carries a limit and input that
//! claims more is rejected before any allocation. Trailing bytes after a
//! value are rejected too: a record either decodes exactly or not at all.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest value [`decode`] accepts: room for the manifest of a file of
/// several TiB. Wire messages use tighter limits via [`decode_limited`].
pub const MAX_RECORD_BYTES: usize = 256 * 1024 * 1024;

/// A value that could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Encoding failed (a type the format cannot express).
    #[error("cannot encode: {0}")]
    Encode(String),
    /// The bytes are not a valid encoding of the expected type, or exceed the
    /// size limit.
    #[error("cannot decode: {0}")]
    Decode(String),
    /// A valid value followed by unexpected bytes.
    #[error("cannot decode: {0} unexpected trailing bytes")]
    Trailing(usize),
}

/// Encodes `value`.
///
/// # Errors
/// [`CodecError::Encode`] if the value cannot be represented.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| CodecError::Encode(e.to_string()))
}

/// Decodes a stored record of at most [`MAX_RECORD_BYTES`].
///
/// # Errors
/// [`CodecError`] if the bytes are malformed, too large or not fully used.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_limited::<T, MAX_RECORD_BYTES>(bytes)
}

/// Decodes `bytes`, refusing any value that would need more than `LIMIT`
/// bytes of allocation.
///
/// # Errors
/// [`CodecError`] if the bytes are malformed, over the limit or not fully used.
pub fn decode_limited<T: DeserializeOwned, const LIMIT: usize>(
    bytes: &[u8],
) -> Result<T, CodecError> {
    let config = bincode::config::standard().with_limit::<LIMIT>();
    let (value, used) = bincode::serde::decode_from_slice(bytes, config)
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError::Trailing(bytes.len() - used));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        n: u64,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        text: String,
    }

    proptest! {
        #[test]
        fn round_trip(n: u64, data: Vec<u8>, text: String) {
            let v = Sample { n, data, text };
            prop_assert_eq!(decode::<Sample>(&encode(&v).unwrap()).unwrap(), v);
        }

        #[test]
        fn garbage_never_panics(bytes: Vec<u8>) {
            let _ = decode::<Sample>(&bytes);
        }
    }

    #[test]
    fn huge_declared_length_is_refused_before_allocating() {
        // n = 0, then a byte-string length of 2^40 in bincode's varint form.
        let mut evil = vec![0u8, 253];
        evil.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(matches!(
            decode::<Sample>(&evil),
            Err(CodecError::Decode(_))
        ));
    }

    #[test]
    fn golden_bytes_are_stable() {
        let v = Sample {
            n: 300,
            data: vec![1, 2],
            text: "hi".into(),
        };
        let bytes = encode(&v).unwrap();
        assert_eq!(hex::encode(&bytes), "fb2c010201020268 69".replace(' ', ""));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&7u32).unwrap();
        bytes.push(0);
        assert!(matches!(
            decode::<u32>(&bytes),
            Err(CodecError::Trailing(1))
        ));
    }
}
