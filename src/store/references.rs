//! Chunk references, inside the writer's transaction.
//!
//! A chunk is kept while some file version references it. Chunks and the
//! manifests naming them live on different peers, so references are not
//! derived from local manifests: the writer of a version *claims* each chunk
//! on each peer holding it (with the chunk's store, or by a claim when the
//! peer already has it), and *releases* the reference on every peer once the
//! version is overwritten or deleted. A peer that learns of a newer version
//! releases the older ones by itself (see `floors`). A chunk left with no
//! reference is marked unreferenced, which starts its grace period before
//! collection.
//!
//! Rows are keyed by reference id, so claiming or releasing twice changes
//! nothing, and retried messages are harmless. Each reference has one row
//! in `references-0` and one in `name-references-0`, added and removed
//! together; the byte count of unreferenced chunks (`unreferenced-bytes`)
//! changes with every chunk that enters or leaves the unreferenced state.

use std::ops::Bound;

use redb::ReadableTable;

use super::error::Result;
use super::floors;
use super::tables::{self, ChunkEntry, UNREFERENCED_BYTES};
use super::writer::Tables;
use crate::chunk::{Blake3Hash, Digest, Reference, Version};
use crate::codec;

/// Records that `reference` uses the chunk `hash`, which must be stored,
/// unless its version is older than its name's floor: such a version is
/// already superseded, and its reference would only hold the chunk until
/// an audit found it. Says whether the reference was recorded.
pub(super) fn claim(t: &mut Tables<'_>, hash: &Blake3Hash, reference: &Reference) -> Result<bool> {
    let id = reference.id();
    // A reference row exists only at or above its name's floor: raising the
    // floor releases the references below it.
    if t.references.get(&id.0)?.is_none() {
        if !floors::admits(t, reference)? {
            return Ok(false);
        }
        t.references
            .insert(&id.0, codec::encode(reference)?.as_slice())?;
        t.name_references.insert(name_key(reference), &id.0)?;
    }
    t.refs.insert(&tables::ref_key(&hash.0, &id.0), ())?;
    t.ref_chunks.insert(&tables::ref_key(&id.0, &hash.0), ())?;
    mark_referenced(t, hash)?;
    Ok(true)
}

/// Drops every claim of the reference `id`; returns how many chunks it held.
pub(super) fn release(t: &mut Tables<'_>, id: &Blake3Hash, now: u64) -> Result<u64> {
    let first = tables::ref_key(&id.0, &[0u8; 32]);
    let last = tables::ref_key(&id.0, &[0xffu8; 32]);
    let held: Vec<[u8; 64]> = t
        .ref_chunks
        .range::<&[u8; 64]>(&first..=&last)?
        .map(|row| row.map(|(key, _)| *key.value()))
        .collect::<Result<_, _>>()?;
    for key in &held {
        t.ref_chunks.remove(key)?;
        let mut chunk = [0u8; 32];
        chunk.copy_from_slice(&key[32..]);
        let chunk: Blake3Hash = Digest(chunk);
        t.refs.remove(&tables::ref_key(&chunk.0, &id.0))?;
        if !is_referenced(t, &chunk)? {
            mark_unreferenced(t, &chunk, now)?;
        }
    }
    let removed = t.references.remove(&id.0)?.map(|v| v.value().to_vec());
    if let Some(raw) = removed {
        // An unreadable row must not make its reference unreleasable; its
        // index row, if any, is dropped when the index is rebuilt at the
        // next open (the two tables then differ in length).
        match codec::decode::<Reference>(&raw) {
            Ok(reference) => {
                t.name_references.remove(name_key(&reference))?;
            }
            Err(error) => {
                tracing::warn!(%error, reference = %id, "released an unreadable reference")
            }
        }
    }
    Ok(held.len() as u64)
}

/// Releases every reference held here for `name` with a version older than
/// `version`; returns how many references that was.
pub(super) fn release_older(
    t: &mut Tables<'_>,
    name: &str,
    version: &Version,
    now: u64,
) -> Result<u64> {
    let from = (name, 0u64, "");
    let to = (name, version.hlc.0, version.writer.as_str());
    let older: Vec<[u8; 32]> = t
        .name_references
        .range::<(&str, u64, &str)>((Bound::Included(from), Bound::Excluded(to)))?
        .map(|row| row.map(|(_, id)| *id.value()))
        .collect::<Result<_, _>>()?;
    for id in &older {
        release(t, &Digest(*id), now)?;
    }
    Ok(older.len() as u64)
}

/// Whether any reference for `name` is held here.
pub(super) fn name_is_referenced(t: &Tables<'_>, name: &str) -> Result<bool> {
    let first = t
        .name_references
        .range::<(&str, u64, &str)>((name, 0u64, "")..)?
        .next()
        .transpose()?;
    Ok(first.is_some_and(|(key, _)| key.value().0 == name))
}

/// The key of `reference` in `name-references-0`.
pub(super) fn name_key(reference: &Reference) -> (&str, u64, &str) {
    (
        reference.name.as_str(),
        reference.version.hlc.0,
        reference.version.writer.as_str(),
    )
}

/// Removes every reference row of the chunk `hash` (the chunk is going).
pub(super) fn forget_chunk(t: &mut Tables<'_>, hash: &Blake3Hash) -> Result<()> {
    let first = tables::ref_key(&hash.0, &[0u8; 32]);
    let last = tables::ref_key(&hash.0, &[0xffu8; 32]);
    let rows: Vec<[u8; 64]> = t
        .refs
        .range::<&[u8; 64]>(&first..=&last)?
        .map(|row| row.map(|(key, _)| *key.value()))
        .collect::<Result<_, _>>()?;
    for key in rows {
        t.refs.remove(&key)?;
        let mut reference = [0u8; 32];
        reference.copy_from_slice(&key[32..]);
        t.ref_chunks.remove(&tables::ref_key(&reference, &hash.0))?;
    }
    Ok(())
}

/// Whether any reference holds the chunk `hash`.
pub(super) fn is_referenced(t: &Tables<'_>, hash: &Blake3Hash) -> Result<bool> {
    let first = tables::ref_key(&hash.0, &[0u8; 32]);
    let last = tables::ref_key(&hash.0, &[0xffu8; 32]);
    Ok(t.refs.range::<&[u8; 64]>(&first..=&last)?.next().is_some())
}

/// Adds `delta` to the count of unreferenced chunk bytes; every change to a
/// chunk's `unreferenced_since` between `None` and `Some`, and every
/// unreferenced chunk stored or deleted, goes through here.
pub(super) fn count_unreferenced(t: &mut Tables<'_>, delta: i64) -> Result<()> {
    let count = t.counters.get(UNREFERENCED_BYTES)?.map_or(0, |v| v.value());
    t.counters
        .insert(UNREFERENCED_BYTES, count.saturating_add_signed(delta))?;
    Ok(())
}

fn mark_referenced(t: &mut Tables<'_>, hash: &Blake3Hash) -> Result<()> {
    let raw = t.chunks.get(&hash.0)?.map(|v| v.value().to_vec());
    if let Some(raw) = raw {
        let mut entry: ChunkEntry = codec::decode(&raw)?;
        if let Some(since) = entry.unreferenced_since.take() {
            t.unreferenced.remove((since, &hash.0))?;
            t.chunks
                .insert(&hash.0, codec::encode(&entry)?.as_slice())?;
            count_unreferenced(t, -i64::from(entry.len))?;
        }
    }
    Ok(())
}

fn mark_unreferenced(t: &mut Tables<'_>, hash: &Blake3Hash, now: u64) -> Result<()> {
    let raw = t.chunks.get(&hash.0)?.map(|v| v.value().to_vec());
    if let Some(raw) = raw {
        let mut entry: ChunkEntry = codec::decode(&raw)?;
        if entry.unreferenced_since.is_none() {
            entry.unreferenced_since = Some(now);
            t.unreferenced.insert((now, &hash.0), ())?;
            t.chunks
                .insert(&hash.0, codec::encode(&entry)?.as_slice())?;
            count_unreferenced(t, i64::from(entry.len))?;
        }
    }
    Ok(())
}
