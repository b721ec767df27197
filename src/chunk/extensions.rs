//! Optional fields added after a format was fixed.
//!
//! The binary encoding (`crate::codec`, bincode) has no field names: a
//! struct that gains a field can no longer read what was written before,
//! and an older peer cannot read what a newer one sends. So the records
//! that are stored and sent between peers (manifests, tombstones, member
//! records) end with [`Extensions`]: a list of tagged values. A new
//! optional field is a new tag; a reader ignores tags it does not know and
//! passes them on unchanged when it stores or forwards the value, so old
//! data stays readable and an older release still reads, keeps and
//! relays what a newer one wrote. A change that a reader cannot ignore
//! needs a new table version (with a migration on open) or a new protocol
//! version instead.

use serde::{Deserialize, Serialize};

/// The tags of the optional fields, in one place so that none is ever
/// reused for another meaning.
pub mod tags {
    /// On a manifest: the whole-content hash is a digest of the chunk list
    /// (see `Manifest::is_composed`). Empty value.
    pub const COMPOSED: u16 = 1;
    /// On a manifest: the ETag S3 clients see, as UTF-8 (`hex` or `hex-N`).
    pub const ETAG: u16 = 2;
    /// On a manifest: the S3 view of an object (content headers, user
    /// metadata, checksum, part layout), encoded by the S3 layer.
    pub const OBJECT: u16 = 3;
    /// On a record of the swarm's own kinds (access keys, buckets,
    /// uploads, parts): what the record holds, encoded by its owner module.
    pub const PAYLOAD: u16 = 4;
    /// On a manifest of a small file: the file's bytes, which then live in
    /// the manifest rather than in the chunk store (see
    /// `Manifest::inline`). A reader that ignored it would look for a chunk
    /// that was never stored, so it came with a protocol version.
    pub const INLINE: u16 = 5;
    /// On a peer record: what the peer holds and how its repair stands
    /// (`gossip::PeerFigures`), for every member's overview.
    pub const PEER_FIGURES: u16 = 6;
    /// On a manifest: the file's mode and modification time
    /// (`chunk::FileAttributes`).
    pub const ATTRIBUTES: u16 = 7;
}

/// The most tagged values one record may carry.
pub const MAX_EXTENSIONS: usize = 32;

/// The most bytes the values of one record may take together: 16 KiB of
/// fields plus a small file's bytes kept inline.
pub const MAX_EXTENSION_BYTES: usize = 16 * 1024 + super::MAX_INLINE_BYTES;

/// One optional field: its tag and its encoded value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    /// Which field this is; tags are never reused.
    pub tag: u16,
    /// The field's value, in the encoding its tag defines.
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
}

/// Optional fields that break the limits a record from another peer must
/// respect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidExtensions {
    /// More than [`MAX_EXTENSIONS`] fields.
    #[error("{0} optional fields")]
    TooMany(usize),
    /// Values of more than [`MAX_EXTENSION_BYTES`] together.
    #[error("{0} bytes of optional fields")]
    TooLarge(usize),
    /// Tags not strictly increasing: out of order, or one repeated.
    #[error("optional fields out of tag order")]
    OutOfOrder,
}

/// Optional fields in tag order, each tag at most once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extensions(Vec<Extension>);

impl Extensions {
    /// No optional fields.
    pub fn none() -> Self {
        Extensions::default()
    }

    /// The value of field `tag`, if present.
    pub fn get(&self, tag: u16) -> Option<&[u8]> {
        self.0
            .binary_search_by_key(&tag, |e| e.tag)
            .ok()
            .map(|i| self.0[i].value.as_slice())
    }

    /// Sets field `tag` to `value`, replacing any earlier value.
    pub fn set(&mut self, tag: u16, value: Vec<u8>) {
        match self.0.binary_search_by_key(&tag, |e| e.tag) {
            Ok(i) => self.0[i].value = value,
            Err(i) => self.0.insert(i, Extension { tag, value }),
        }
    }

    /// Sets every field of `other`, replacing earlier values of its tags.
    pub fn merge(&mut self, other: Extensions) {
        for field in other.0 {
            self.set(field.tag, field.value);
        }
    }

    /// Removes field `tag`, if present.
    pub fn remove(&mut self, tag: u16) {
        if let Ok(i) = self.0.binary_search_by_key(&tag, |e| e.tag) {
            self.0.remove(i);
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks the limits a record from another peer must respect: at most
    /// [`MAX_EXTENSIONS`] fields of [`MAX_EXTENSION_BYTES`] together, in
    /// strictly increasing tag order.
    ///
    /// # Errors
    /// [`InvalidExtensions`] naming the first violation.
    pub fn validate(&self) -> Result<(), InvalidExtensions> {
        if self.0.len() > MAX_EXTENSIONS {
            return Err(InvalidExtensions::TooMany(self.0.len()));
        }
        let bytes: usize = self.0.iter().map(|e| e.value.len()).sum();
        if bytes > MAX_EXTENSION_BYTES {
            return Err(InvalidExtensions::TooLarge(bytes));
        }
        if self.0.windows(2).any(|pair| pair[0].tag >= pair[1].tag) {
            return Err(InvalidExtensions::OutOfOrder);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    #[test]
    fn fields_are_kept_in_tag_order_and_replaced_by_tag() {
        let mut extensions = Extensions::none();
        extensions.set(7, b"seven".to_vec());
        extensions.set(2, b"two".to_vec());
        extensions.set(7, b"SEVEN".to_vec());
        assert_eq!(extensions.get(2), Some(&b"two"[..]));
        assert_eq!(extensions.get(7), Some(&b"SEVEN"[..]));
        assert_eq!(extensions.get(3), None);
        extensions.validate().unwrap();
    }

    /// A record written with a field this release does not know reads back
    /// whole, the field included, so it survives being stored and passed on.
    #[test]
    fn an_unknown_field_survives_a_round_trip() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Record {
            size: u64,
            extensions: Extensions,
        }
        let mut extensions = Extensions::none();
        extensions.set(40_000, vec![1, 2, 3]);
        let written = Record {
            size: 5,
            extensions,
        };
        let read: Record = codec::decode(&codec::encode(&written).unwrap()).unwrap();
        assert_eq!(read, written);
    }

    #[test]
    fn oversized_or_disordered_fields_are_refused() {
        let many = Extensions(
            (0..=MAX_EXTENSIONS as u16)
                .map(|tag| Extension { tag, value: vec![] })
                .collect(),
        );
        assert_eq!(
            many.validate(),
            Err(InvalidExtensions::TooMany(MAX_EXTENSIONS + 1))
        );
        let big = Extensions(vec![Extension {
            tag: 1,
            value: vec![0; MAX_EXTENSION_BYTES + 1],
        }]);
        assert_eq!(
            big.validate(),
            Err(InvalidExtensions::TooLarge(MAX_EXTENSION_BYTES + 1))
        );
        let disordered = Extensions(vec![
            Extension {
                tag: 2,
                value: vec![],
            },
            Extension {
                tag: 1,
                value: vec![],
            },
        ]);
        assert_eq!(disordered.validate(), Err(InvalidExtensions::OutOfOrder));
        let repeated = Extensions(vec![
            Extension {
                tag: 3,
                value: vec![],
            };
            2
        ]);
        assert_eq!(repeated.validate(), Err(InvalidExtensions::OutOfOrder));
    }
}
