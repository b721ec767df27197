//! File names: opaque keys, not paths.
//!
//! A name is any UTF-8 string of 1 to [`MAX_NAME_LEN`] bytes with no control
//! characters (which covers NUL). `/` is an ordinary character, so `a/b` and
//! `a//b` are different names and nothing is ever resolved against a file
//! system; listing by prefix gives directory-like browsing without
//! directories. Control characters are refused because they corrupt terminal
//! output, logs and line-based scripts.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// The longest name accepted, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 1024;

/// A validated file name. Constructing one is the only way to get past the
/// API into the data path, so every layer below can rely on its rules.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct FileName(String);

/// Why a string is not a valid file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    /// The empty string.
    #[error("invalid file name: it is empty")]
    Empty,
    /// More than [`MAX_NAME_LEN`] bytes.
    #[error("invalid file name: it is {0} bytes long, the limit is {MAX_NAME_LEN}")]
    TooLong(usize),
    /// A control character (including NUL) at the given byte offset.
    #[error("invalid file name: control character U+{code:04X} at byte {at}")]
    ControlCharacter {
        /// The offending character's code point.
        code: u32,
        /// Its byte offset in the name.
        at: usize,
    },
}

impl FileName {
    /// Validates `name`.
    ///
    /// # Errors
    /// [`InvalidName`] says which rule the name breaks.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidName> {
        let name = name.into();
        if name.is_empty() {
            return Err(InvalidName::Empty);
        }
        if name.len() > MAX_NAME_LEN {
            return Err(InvalidName::TooLong(name.len()));
        }
        if let Some((at, c)) = name.char_indices().find(|(_, c)| c.is_control()) {
            return Err(InvalidName::ControlCharacter {
                code: u32::from(c),
                at,
            });
        }
        Ok(FileName(name))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the last `/`, which is what `get` writes to when the
    /// user gives no output path. `None` when that part is empty, `.` or `..`
    /// (no safe local file name can be derived).
    pub fn base_name(&self) -> Option<&str> {
        let base = self.0.rsplit('/').next().unwrap_or(&self.0);
        match base {
            "" | "." | ".." => None,
            b => Some(b),
        }
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl<'de> Deserialize<'de> for FileName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        FileName::new(s).map_err(serde::de::Error::custom)
    }
}

/// Where the file called `name` sits on the placement ring: the first eight
/// bytes (big-endian) of a keyed BLAKE3 of the name. Defined here, with the
/// name, because the store indexes records by it as well as placement.
pub fn name_position(name: &str) -> u64 {
    let hash = blake3::derive_key("shoal ring file name v1", name.as_bytes());
    let [a, b, c, d, e, f, g, h, ..] = hash;
    u64::from_be_bytes([a, b, c, d, e, f, g, h])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_keys_that_look_like_paths_and_unicode() {
        for ok in [
            "a",
            "a/b",
            "/leading",
            "trailing/",
            "a//b",
            "..",
            ".",
            "日本語 ファイル",
            "%2F?#",
        ] {
            assert!(FileName::new(ok).is_ok(), "{ok:?} should be valid");
        }
        assert!(FileName::new("x".repeat(MAX_NAME_LEN)).is_ok());
    }

    #[test]
    fn rejects_empty_long_and_control_characters() {
        assert_eq!(FileName::new(""), Err(InvalidName::Empty));
        assert_eq!(
            FileName::new("x".repeat(MAX_NAME_LEN + 1)),
            Err(InvalidName::TooLong(MAX_NAME_LEN + 1))
        );
        for bad in ["a\0b", "tab\there", "new\nline", "del\u{7f}", "c1\u{85}"] {
            assert!(
                matches!(
                    FileName::new(bad),
                    Err(InvalidName::ControlCharacter { .. })
                ),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn base_name_is_last_segment_when_usable() {
        let base = |s: &str| FileName::new(s).unwrap().base_name().map(str::to_owned);
        assert_eq!(base("dir/file.txt").as_deref(), Some("file.txt"));
        assert_eq!(base("plain").as_deref(), Some("plain"));
        assert_eq!(base("dir/"), None);
        assert_eq!(base("a/.."), None);
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<FileName>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<FileName>("\"\"").is_err());
    }
}
