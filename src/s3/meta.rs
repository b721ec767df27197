//! What an object keeps beyond its bytes: content headers, user metadata,
//! its checksum and its part layout, stored in the manifest's optional
//! fields (tag `OBJECT`), so they move, replicate and version with it.

use serde::{Deserialize, Serialize};

use crate::chunk::{Extensions, tags};
use crate::codec;

/// The most bytes of user metadata (keys and values) an object may carry,
/// as S3 allows.
pub const MAX_USER_METADATA: usize = 2048;

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

    /// Stores the view in `extensions` (nothing, if it is empty).
    pub fn store(&self, extensions: &mut Extensions) {
        if *self == ObjectMeta::default() {
            extensions.remove(tags::OBJECT);
        } else if let Ok(raw) = codec::encode(self) {
            extensions.set(tags::OBJECT, raw);
        }
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
        assert!(extensions.is_empty(), "an empty view takes no room");
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
