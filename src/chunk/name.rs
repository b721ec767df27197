//! File names: opaque keys, not paths.
//!
//! A name is any UTF-8 string of 1 to [`MAX_NAME_LEN`] bytes with no control
//! characters (which covers NUL). `/` is an ordinary character, so `a/b` and
//! `a//b` are different names and nothing is ever resolved against a file
//! system; listing by prefix gives directory-like browsing without
//! directories. Control characters are refused because they corrupt terminal
//! output, logs and line-based scripts.
//!
//! The same key space also holds the swarm's own records (S3 access keys,
//! buckets, multipart uploads): their names start with a control character
//! (see [`RecordKind`]), so no file name can ever collide with one, and the
//! file interfaces, which only build names through [`FileName::new`], can
//! neither read nor list them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// The longest file name accepted, in bytes of UTF-8: room for an S3
/// bucket name (63 bytes), `/` and an S3 object key (1,024 bytes), since an
/// object is the file `bucket/key`.
pub const MAX_NAME_LEN: usize = 63 + 1 + 1024;

/// The longest name of any record, the swarm's own included (an upload's
/// record names its bucket, its key and its id).
pub const MAX_RECORD_NAME_LEN: usize = MAX_NAME_LEN + 128;

/// The first character of every name of the swarm's own records: a control
/// character, which no file name may contain.
const RECORD_MARK: char = '\u{1}';

/// What kind of thing a record stored under a name describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// A user's file (an S3 object is the file `bucket/key`).
    File,
    /// An S3 access key. Its removal is never forgotten.
    AccessKey,
    /// An S3 bucket.
    Bucket,
    /// An open S3 multipart upload.
    Upload,
    /// One part of an open multipart upload, holding the part's chunks.
    UploadPart,
    /// An access token of the HTTP API. Its removal is never forgotten.
    Token,
}

impl RecordKind {
    /// The swarm's own kinds, with the word that follows the mark in their
    /// names. Words are never reused for another kind.
    const SYSTEM: [(RecordKind, &'static str); 5] = [
        (RecordKind::AccessKey, "key"),
        (RecordKind::Bucket, "bucket"),
        (RecordKind::Upload, "upload"),
        (RecordKind::UploadPart, "part"),
        (RecordKind::Token, "token"),
    ];

    /// The prefix every record name of this kind starts with (empty for
    /// files, which have none).
    pub fn prefix(self) -> String {
        match Self::SYSTEM.iter().find(|(kind, _)| *kind == self) {
            Some((_, word)) => format!("{RECORD_MARK}{word}/"),
            None => String::new(),
        }
    }

    /// The kind of the record called `name`, and its name within the kind.
    fn of(name: &str) -> Option<(RecordKind, &str)> {
        let Some(rest) = name.strip_prefix(RECORD_MARK) else {
            return Some((RecordKind::File, name));
        };
        let (word, id) = rest.split_once('/')?;
        let (kind, _) = Self::SYSTEM.iter().find(|(_, w)| *w == word)?;
        Some((*kind, id))
    }
}

/// Every record name of the swarm's own kinds sorts before this string
/// (their kind words are ASCII), and every file name after it (files
/// cannot start with a control character): listings of files start after
/// it.
pub const FILES_AFTER: &str = "\u{1}\u{10FFFF}";

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
    /// A record name of the swarm's own kinds that is malformed.
    #[error("invalid record name: {0}")]
    Record(&'static str),
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

    /// The name of the record of kind `kind` (not [`RecordKind::File`])
    /// identified by `id` within its kind. `id` follows the rules of file
    /// names, except that it may contain U+0001 as a separator.
    ///
    /// # Errors
    /// [`InvalidName`] if `kind` is `File` or `id` breaks the rules.
    pub fn record(kind: RecordKind, id: &str) -> Result<Self, InvalidName> {
        if kind == RecordKind::File {
            return Err(InvalidName::Record("files have no record prefix"));
        }
        FileName::stored(format!("{}{id}", kind.prefix()))
    }

    /// Validates a name of any kind, as stored and sent between peers:
    /// a file name, or a well-formed name of one of the swarm's records.
    ///
    /// # Errors
    /// [`InvalidName`] says which rule the name breaks.
    pub fn stored(name: impl Into<String>) -> Result<Self, InvalidName> {
        let name = name.into();
        if !name.starts_with(RECORD_MARK) {
            return FileName::new(name);
        }
        if name.len() > MAX_RECORD_NAME_LEN {
            return Err(InvalidName::TooLong(name.len()));
        }
        let Some((_, id)) = RecordKind::of(&name) else {
            return Err(InvalidName::Record("unknown record kind"));
        };
        if id.is_empty() {
            return Err(InvalidName::Record("empty record id"));
        }
        if id.chars().any(|c| c.is_control() && c != RECORD_MARK) {
            return Err(InvalidName::Record("control character in record id"));
        }
        Ok(FileName(name))
    }

    /// What kind of record this name belongs to.
    pub fn kind(&self) -> RecordKind {
        RecordKind::of(&self.0).map_or(RecordKind::File, |(kind, _)| kind)
    }

    /// Whether this names a user's file, rather than one of the swarm's
    /// own records.
    pub fn is_file(&self) -> bool {
        self.kind() == RecordKind::File
    }

    /// The name within its kind: the whole name for a file, what follows
    /// the kind's prefix otherwise.
    pub fn id(&self) -> &str {
        RecordKind::of(&self.0).map_or(&self.0, |(_, id)| id)
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
        FileName::stored(s).map_err(serde::de::Error::custom)
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
    fn record_names_never_collide_with_file_names() {
        let key = FileName::record(RecordKind::AccessKey, "AK1").unwrap();
        assert_eq!(key.kind(), RecordKind::AccessKey);
        assert_eq!(key.id(), "AK1");
        assert!(!key.is_file());
        assert!(FileName::new(key.as_str()).is_err(), "no file may take it");
        assert!(key.as_str() < FILES_AFTER);
        let upload = FileName::record(RecordKind::Upload, "b/k\u{1}id").unwrap();
        assert_eq!(upload.id(), "b/k\u{1}id");
        let file = FileName::new("key/AK1").unwrap();
        assert_eq!(file.kind(), RecordKind::File);
        assert!(file.as_str() > FILES_AFTER);
        assert!(FileName::new(" ").unwrap().as_str() > FILES_AFTER);
        assert_eq!(FileName::stored(file.as_str()), Ok(file));
        assert!(FileName::record(RecordKind::File, "x").is_err());
        assert!(FileName::stored("\u{1}nosuch/x").is_err());
        assert!(FileName::stored("\u{1}key/").is_err());
        assert!(FileName::stored("\u{1}key/a\nb").is_err());
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(serde_json::from_str::<FileName>(&json).unwrap(), key);
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<FileName>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<FileName>("\"\"").is_err());
    }
}
