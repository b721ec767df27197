//! Chunk references, inside the writer's transaction.
//!
//! A chunk is kept while some file version references it. Chunks and the
//! manifests naming them live on different peers, so references are not
//! derived from local manifests: the writer of a version *claims* each chunk
//! on each peer holding it (with the chunk's store, or by a claim when the
//! peer already has it), and *releases* the reference on every peer once the
//! version is overwritten or deleted. A chunk left with no reference is
//! marked unreferenced, which starts its grace period before collection.
//!
//! Rows are keyed by reference id, so claiming or releasing twice changes
//! nothing, and retried messages are harmless.

use redb::ReadableTable;

use super::error::Result;
use super::tables::{self, ChunkEntry};
use super::writer::Tables;
use crate::chunk::{Blake3Hash, Digest, Reference};
use crate::codec;

/// Records that `reference` uses the chunk `hash`, which must be stored.
pub(super) fn claim(t: &mut Tables<'_>, hash: &Blake3Hash, reference: &Reference) -> Result<()> {
    let id = reference.id();
    if t.references.get(&id.0)?.is_none() {
        t.references
            .insert(&id.0, codec::encode(reference)?.as_slice())?;
    }
    t.refs.insert(&tables::ref_key(&hash.0, &id.0), ())?;
    t.ref_chunks.insert(&tables::ref_key(&id.0, &hash.0), ())?;
    mark_referenced(t, hash)
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
    t.references.remove(&id.0)?;
    Ok(held.len() as u64)
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

fn mark_referenced(t: &mut Tables<'_>, hash: &Blake3Hash) -> Result<()> {
    let raw = t.chunks.get(&hash.0)?.map(|v| v.value().to_vec());
    if let Some(raw) = raw {
        let mut entry: ChunkEntry = codec::decode(&raw)?;
        if let Some(since) = entry.unreferenced_since.take() {
            t.unreferenced.remove((since, &hash.0))?;
            t.chunks
                .insert(&hash.0, codec::encode(&entry)?.as_slice())?;
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
        }
    }
    Ok(())
}
