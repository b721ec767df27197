//! What an object keeps beyond its bytes: content headers, user metadata,
//! its checksum and its part layout, stored in the manifest's optional
//! fields (tag `OBJECT`), so they move, replicate and version with it.

use serde::{Deserialize, Serialize};

use crate::chunk::{Extensions, FileAttributes, MODE_BITS, Mtime, format_mode, tags};
use crate::codec;

/// The most bytes of user metadata (keys and values) an object may carry,
/// as S3 allows.
pub const MAX_USER_METADATA: usize = 2048;

/// The user metadata key rclone keeps a file's modification time under.
const MTIME_KEY: &str = "mtime";
/// The user metadata key rclone keeps a file's mode under.
const MODE_KEY: &str = "mode";
/// The file type bits of a regular file, as a mode carries them.
const S_IFREG: u32 = 0o100_000;
/// The file type bits of a directory.
const S_IFDIR: u32 = 0o040_000;

/// The most bytes a part layout may take; an object assembled from more
/// irregular parts than fit keeps no layout, and cannot be read by part
/// number.
const MAX_LAYOUT_BYTES: usize = 8 * 1024;

/// The checksum algorithms S3 clients send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChecksumKind {
    /// CRC-32 (IEEE).
    Crc32,
    /// CRC-32C (Castagnoli).
    Crc32c,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
    /// CRC-64/NVME.
    Crc64Nvme,
}

impl ChecksumKind {
    /// Every kind, with the name S3 gives it (`x-amz-checksum-<name>` in
    /// lower case).
    pub const ALL: [(ChecksumKind, &'static str); 5] = [
        (ChecksumKind::Crc32, "CRC32"),
        (ChecksumKind::Crc32c, "CRC32C"),
        (ChecksumKind::Sha1, "SHA1"),
        (ChecksumKind::Sha256, "SHA256"),
        (ChecksumKind::Crc64Nvme, "CRC64NVME"),
    ];

    /// The kind S3 calls `name` (any case).
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(kind, _)| *kind)
    }

    /// S3's name for the kind.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(kind, _)| *kind == self)
            .map_or("", |(_, name)| name)
    }
}

/// A checksum an object was written with, in S3's base64 form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredChecksum {
    /// The algorithm.
    pub kind: ChecksumKind,
    /// Base64 of the digest; a multipart object's is the checksum of its
    /// parts' checksums followed by `-N`.
    pub value: String,
}

/// An object's S3 view.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Expires`, in seconds since the Unix epoch.
    pub expires: Option<i64>,
    /// `x-amz-meta-*` headers, names in lower case, in order.
    pub user: Vec<(String, String)>,
    /// The checksum it was written with, if the client sent one.
    pub checksum: Option<StoredChecksum>,
    /// For an object assembled from parts: runs of (chunks per part,
    /// parts), so part N can be found for reads by part number.
    pub parts: Vec<(u32, u32)>,
}

impl ObjectMeta {
    /// The object view stored in `extensions`, or the empty view for a
    /// file written without one (through the CLI or the HTTP API).
    pub fn of(extensions: &Extensions) -> Self {
        extensions
            .get(tags::OBJECT)
            .and_then(|raw| codec::decode(raw).ok())
            .unwrap_or_default()
    }

    /// Stores the view in `extensions` (nothing, if it is empty), and the
    /// file attributes its user metadata gives (see
    /// [`ObjectMeta::attributes`]), if any, over those already there.
    pub fn store(&self, extensions: &mut Extensions) {
        if *self == ObjectMeta::default() {
            extensions.remove(tags::OBJECT);
        } else if let Ok(raw) = codec::encode(self) {
            extensions.set(tags::OBJECT, raw);
        }
        let attributes = self.attributes();
        if !attributes.is_empty() {
            attributes.store(extensions);
        }
    }

    /// The mode and modification time the user metadata carries as rclone
    /// writes them: `mtime` in decimal seconds, `mode` in octal (rclone's
    /// own copies the file type bits too, which are dropped). A value that
    /// does not parse is only metadata, as is a `mode` past the permission
    /// bits that does not name a regular file or a directory (s3fs writes
    /// its modes in decimal, which would read as other bits).
    pub fn attributes(&self) -> FileAttributes {
        let value = |key: &str| {
            self.user
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.trim())
        };
        FileAttributes {
            mode: value(MODE_KEY)
                .and_then(|v| u32::from_str_radix(v, 8).ok())
                .filter(|&mode| mode <= MODE_BITS || matches!(mode & !MODE_BITS, S_IFREG | S_IFDIR))
                .map(|mode| mode & MODE_BITS),
            mtime: value(MTIME_KEY).and_then(|v| Mtime::parse(v).ok()),
        }
    }

    /// The user metadata an answer carries: what the object was written
    /// with, plus `mtime` and `mode` from `attributes` where it has none
    /// of its own (a file put through the CLI or the HTTP API), so rclone
    /// sees every file's time.
    pub fn user_with(&self, attributes: &FileAttributes) -> Vec<(String, String)> {
        let mut user = self.user.clone();
        let has = |user: &[(String, String)], key: &str| user.iter().any(|(k, _)| k == key);
        if let Some(mtime) = attributes.mtime
            && !has(&user, MTIME_KEY)
        {
            user.push((MTIME_KEY.into(), mtime.to_string()));
        }
        if let Some(mode) = attributes.mode
            && !has(&user, MODE_KEY)
        {
            user.push((MODE_KEY.into(), format_mode(mode)));
        }
        user
    }

    /// The bytes of user metadata, as S3 counts them.
    pub fn user_bytes(&self) -> usize {
        self.user.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// Records the layout of parts made of `chunks_per_part` chunks each,
    /// or none if it would not fit.
    pub fn set_layout(&mut self, chunks_per_part: &[u32]) {
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for &chunks in chunks_per_part {
            match runs.last_mut() {
                Some((size, count)) if *size == chunks => *count += 1,
                _ => runs.push((chunks, 1)),
            }
        }
        self.parts = if runs.len() * 8 <= MAX_LAYOUT_BYTES {
            runs
        } else {
            Vec::new()
        };
    }

    /// How many parts the object was assembled from (0 if not from parts).
    pub fn part_count(&self) -> u32 {
        self.parts.iter().map(|(_, count)| count).sum()
    }

    /// The chunks of part `number` (from 1) as a range of chunk indexes.
    pub fn part_chunks(&self, number: u32) -> Option<std::ops::Range<usize>> {
        let mut first = 0usize;
        let mut part = 1u32;
        for &(chunks, count) in &self.parts {
            if number < part + count {
                let start = first + (number - part) as usize * chunks as usize;
                return Some(start..start + chunks as usize);
            }
            first += chunks as usize * count as usize;
            part += count;
        }
        None
    }
}

/// Sets the checksum field of an S3 answer (`$output.checksum_<kind>`)
/// from a [`StoredChecksum`].
macro_rules! set_checksum {
    ($output:expr, $checksum:expr) => {{
        let checksum: $crate::s3::meta::StoredChecksum = $checksum;
        let value = Some(checksum.value);
        match checksum.kind {
            $crate::s3::meta::ChecksumKind::Crc32 => $output.checksum_crc32 = value,
            $crate::s3::meta::ChecksumKind::Crc32c => $output.checksum_crc32c = value,
            $crate::s3::meta::ChecksumKind::Sha1 => $output.checksum_sha1 = value,
            $crate::s3::meta::ChecksumKind::Sha256 => $output.checksum_sha256 = value,
            $crate::s3::meta::ChecksumKind::Crc64Nvme => $output.checksum_crc64nvme = value,
        }
    }};
}
pub(crate) use set_checksum;

/// The ETag stored in `extensions`, without quotes.
pub fn stored_etag(extensions: &Extensions) -> Option<String> {
    extensions
        .get(tags::ETAG)
        .and_then(|raw| String::from_utf8(raw.to_vec()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_round_trips_through_the_manifest_fields() {
        let mut meta = ObjectMeta {
            content_type: Some("text/plain".into()),
            user: vec![("mtime".into(), "1700000000.5".into())],
            checksum: Some(StoredChecksum {
                kind: ChecksumKind::Crc32,
                value: "AAAAAA==".into(),
            }),
            ..ObjectMeta::default()
        };
        meta.set_layout(&[5, 5, 5, 2]);
        let mut extensions = Extensions::none();
        meta.store(&mut extensions);
        assert_eq!(ObjectMeta::of(&extensions), meta);
        ObjectMeta::default().store(&mut extensions);
        assert!(
            extensions.get(tags::OBJECT).is_none(),
            "an empty view takes no room"
        );
    }

    #[test]
    fn rclone_metadata_gives_the_file_attributes_and_back() {
        let meta = ObjectMeta {
            user: vec![
                ("mtime".into(), "1700000000.5".into()),
                ("mode".into(), "100640".into()),
            ],
            ..ObjectMeta::default()
        };
        let attributes = meta.attributes();
        assert_eq!(attributes.mode, Some(0o640));
        assert_eq!(attributes.mtime.map(|t| t.nanos), Some(500_000_000));
        let mut extensions = Extensions::none();
        meta.store(&mut extensions);
        assert_eq!(FileAttributes::of(&extensions), attributes);
        assert_eq!(meta.user_with(&attributes), meta.user, "nothing twice");
        let decimal = ObjectMeta {
            user: vec![("mode".into(), "33261".into())],
            ..ObjectMeta::default()
        };
        assert_eq!(decimal.attributes().mode, None, "s3fs's decimal 0755");
        let bare = ObjectMeta::default().user_with(&attributes);
        assert_eq!(
            bare,
            vec![
                ("mtime".to_owned(), "1700000000.500000000".to_owned()),
                ("mode".to_owned(), "0640".to_owned()),
            ]
        );
    }

    #[test]
    fn parts_are_found_by_number() {
        let mut meta = ObjectMeta::default();
        meta.set_layout(&[5, 5, 5, 2]);
        assert_eq!(meta.parts, vec![(5, 3), (2, 1)]);
        assert_eq!(meta.part_count(), 4);
        assert_eq!(meta.part_chunks(1), Some(0..5));
        assert_eq!(meta.part_chunks(3), Some(10..15));
        assert_eq!(meta.part_chunks(4), Some(15..17));
        assert_eq!(meta.part_chunks(5), None);
        let irregular: Vec<u32> = (1..=2000).collect();
        meta.set_layout(&irregular);
        assert!(meta.parts.is_empty(), "too irregular to keep");
    }

    #[test]
    fn checksum_kinds_go_by_s3_names() {
        assert_eq!(ChecksumKind::named("crc32c"), Some(ChecksumKind::Crc32c));
        assert_eq!(ChecksumKind::Sha256.name(), "SHA256");
        assert_eq!(ChecksumKind::named("md5"), None);
    }
}
