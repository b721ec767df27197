//! How file records are laid out in redb.
//!
//! A record is split in two rows: a small head (version, size, hash, counts,
//! optional fields) in `files-1`, and the chunk list of a live file in
//! `file-chunks-0`. (`files-0`, the head without optional fields, is
//! migrated to `files-1` when an older data directory is opened.)
//! Listings read heads only, so listing a page of large files costs the same
//! as listing small ones, and a record is put back together only when one
//! file is asked for.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::error::Result;
use super::tables::LIVE_FILES;
use super::writer::Tables;
use super::{FileSummary, RecordHead, RecordOutcome};
use crate::chunk::{
    Blake3Hash, ChunkRef, Extensions, FileName, FileRecord, Manifest, RecordKind, Version,
    name_position,
};
use crate::codec::{self, CodecError};

/// Stores `record` under its name if it is newer than what is there (last
/// writer wins by version). A manifest's owners need not hold its chunks,
/// so nothing about chunks is checked or changed here (see `references`).
pub(super) fn put_record(t: &mut Tables<'_>, record: &FileRecord) -> Result<RecordOutcome> {
    let name = record.name().as_str();
    let existing = read_head(&t.files, name)?;
    if let Some(head) = &existing {
        match head.version.cmp(record.version()) {
            std::cmp::Ordering::Greater => {
                return Ok(RecordOutcome::Superseded {
                    newer: head.version.hlc,
                });
            }
            std::cmp::Ordering::Equal => return Ok(RecordOutcome::Unchanged),
            std::cmp::Ordering::Less => {}
        }
    }
    let replaced = existing.is_some();
    let mut live_delta: i64 = i64::from(record.live().is_some());
    match existing.map(|head| head.state) {
        Some(HeadState::Live { .. }) => live_delta -= 1,
        Some(HeadState::Deleted { deleted_ms }) => {
            t.tombstones.remove((deleted_ms, name))?;
        }
        None => {}
    }
    // The removal of an access key or token is never forgotten: its
    // tombstone is not queued for purging, so a stale copy of the
    // credential can never return.
    if let FileRecord::Deleted { deleted_ms, .. } = record
        && !matches!(
            record.name().kind(),
            RecordKind::AccessKey | RecordKind::Token
        )
    {
        t.tombstones.insert((*deleted_ms, name), ())?;
    }
    t.files
        .insert(name, codec::encode(&FileHead::of(record))?.as_slice())?;
    t.record_positions.insert((name_position(name), name), ())?;
    match record {
        FileRecord::Live(m) => {
            t.file_chunks
                .insert(name, codec::encode(&m.chunks)?.as_slice())?;
        }
        FileRecord::Deleted { .. } => {
            t.file_chunks.remove(name)?;
        }
    }
    // The swarm's own records (keys, buckets, uploads) are not files.
    if live_delta != 0 && record.name().is_file() {
        let count = t.counters.get(LIVE_FILES)?.map_or(0, |v| v.value());
        let count = count.saturating_add_signed(live_delta);
        t.counters.insert(LIVE_FILES, count)?;
    }
    Ok(if replaced {
        RecordOutcome::Replaced
    } else {
        RecordOutcome::Applied
    })
}

/// The head row of a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct FileHead {
    pub version: Version,
    pub state: HeadState,
    /// The record's optional fields, kept as they came.
    pub extensions: Extensions,
}

/// The head row as `files-0` held it, before records had optional fields;
/// read only to migrate an older data directory.
#[derive(Clone, Debug, Deserialize)]
pub(super) struct FileHeadV0 {
    pub version: Version,
    pub state: HeadState,
}

impl From<FileHeadV0> for FileHead {
    fn from(old: FileHeadV0) -> Self {
        FileHead {
            version: old.version,
            state: old.state,
            extensions: Extensions::none(),
        }
    }
}

/// What the head says about the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum HeadState {
    Live {
        size: u64,
        blake3: Blake3Hash,
        chunk_size: u32,
        created_ms: u64,
        chunks: u64,
    },
    Deleted {
        deleted_ms: u64,
    },
}

impl FileHead {
    /// The head of `record`.
    pub fn of(record: &FileRecord) -> Self {
        let state = match record {
            FileRecord::Live(m) => HeadState::Live {
                size: m.size,
                blake3: m.blake3,
                chunk_size: m.chunk_size,
                created_ms: m.created_ms,
                chunks: m.chunks.len() as u64,
            },
            FileRecord::Deleted { deleted_ms, .. } => HeadState::Deleted {
                deleted_ms: *deleted_ms,
            },
        };
        let extensions = match record {
            FileRecord::Live(m) => m.extensions.clone(),
            FileRecord::Deleted { extensions, .. } => extensions.clone(),
        };
        FileHead {
            version: record.version().clone(),
            state,
            extensions,
        }
    }

    /// The head as callers outside the store see it.
    pub fn public(&self, name: &str) -> Result<RecordHead> {
        Ok(RecordHead {
            version: self.version.clone(),
            live: self.summary(name)?,
            name: stored_name(name)?,
        })
    }

    /// A listing entry for a live file called `name`.
    pub fn summary(&self, name: &str) -> Result<Option<FileSummary>> {
        let HeadState::Live {
            size,
            blake3,
            created_ms,
            chunks,
            ..
        } = &self.state
        else {
            return Ok(None);
        };
        Ok(Some(FileSummary {
            name: stored_name(name)?,
            size: *size,
            blake3: *blake3,
            chunks: *chunks,
            created_ms: *created_ms,
            etag: self
                .extensions
                .get(crate::chunk::tags::ETAG)
                .and_then(|raw| String::from_utf8(raw.to_vec()).ok()),
            attributes: crate::chunk::FileAttributes::of(&self.extensions),
        }))
    }
}

fn stored_name(name: &str) -> Result<FileName> {
    FileName::stored(name)
        .map_err(|e| CodecError::Decode(format!("stored name {name:?}: {e}")).into())
}

/// Deletes the record of `record`'s name if it is still exactly `record`'s
/// version (a surplus copy whose owners hold it or something newer).
pub(super) fn drop_record(t: &mut Tables<'_>, record: &FileRecord) -> Result<bool> {
    let name = record.name().as_str();
    let Some(head) = read_head(&t.files, name)? else {
        return Ok(false);
    };
    if head.version != *record.version() {
        return Ok(false);
    }
    match head.state {
        HeadState::Live { .. } if record.name().is_file() => {
            let count = t.counters.get(LIVE_FILES)?.map_or(0, |v| v.value());
            t.counters.insert(LIVE_FILES, count.saturating_sub(1))?;
        }
        HeadState::Live { .. } => {}
        HeadState::Deleted { deleted_ms } => {
            t.tombstones.remove((deleted_ms, name))?;
        }
    }
    t.files.remove(name)?;
    t.file_chunks.remove(name)?;
    t.record_positions.remove((name_position(name), name))?;
    Ok(true)
}

/// Reads the head of `name`.
pub(super) fn read_head(
    files: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
) -> Result<Option<FileHead>> {
    Ok(match files.get(name)? {
        Some(raw) => Some(codec::decode(raw.value())?),
        None => None,
    })
}

/// Reads and reassembles the whole record of `name`.
pub(super) fn read_record(
    files: &impl ReadableTable<&'static str, &'static [u8]>,
    chunk_lists: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
) -> Result<Option<FileRecord>> {
    let Some(head) = read_head(files, name)? else {
        return Ok(None);
    };
    let name = stored_name(name)?;
    Ok(Some(match head.state {
        HeadState::Deleted { deleted_ms } => FileRecord::Deleted {
            name,
            version: head.version,
            deleted_ms,
            extensions: head.extensions,
        },
        HeadState::Live {
            size,
            blake3,
            chunk_size,
            created_ms,
            ..
        } => {
            let chunks: Vec<ChunkRef> = match chunk_lists.get(name.as_str())? {
                Some(raw) => codec::decode(raw.value())?,
                None => Vec::new(),
            };
            FileRecord::Live(Manifest {
                name,
                size,
                blake3,
                chunk_size,
                chunks,
                created_ms,
                version: head.version,
                extensions: head.extensions,
            })
        }
    }))
}
