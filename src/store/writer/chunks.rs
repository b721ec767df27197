//! Chunk writes inside a batch: appending bytes to the active segment
//! (sealing it and starting the next when full), indexing the chunk, and
//! replacing a stored copy found damaged. Nothing here is durable until the
//! batch syncs the segment and commits (see the parent module).

use redb::ReadableTable;

use super::reclaim::release_location;
use super::{Active, Batch, Tables, Writer};
use crate::chunk::{Blake3Hash, Md5Hash};
use crate::codec;
use crate::store::PutOutcome;
use crate::store::error::{Result, StoreError};
use crate::store::references;
use crate::store::tables::{ChunkEntry, MAX_HINTED_OWNERS, SegmentEntry};

impl Writer {
    /// Stores a chunk's bytes unless an intact copy is here already. A new
    /// chunk starts unreferenced; the caller then claims its references.
    pub(super) fn put_chunk(
        &mut self,
        t: &mut Tables<'_>,
        batch: &mut Batch,
        hash: Blake3Hash,
        md5: Md5Hash,
        data: &[u8],
        now: u64,
    ) -> Result<PutOutcome> {
        let existing = t.chunks.get(&hash.0)?.map(|v| v.value().to_vec());
        let Some(raw) = existing else {
            let (segment, offset, len) = self.store_bytes(t, batch, data)?;
            let entry = ChunkEntry {
                segment,
                offset,
                len,
                md5,
                unreferenced_since: Some(now),
            };
            t.chunks
                .insert(&hash.0, codec::encode(&entry)?.as_slice())?;
            t.unreferenced.insert((now, &hash.0), ())?;
            references::count_unreferenced(t, i64::from(len))?;
            return Ok(PutOutcome::Stored);
        };
        let mut entry: ChunkEntry = codec::decode(&raw)?;
        let mut outcome = PutOutcome::AlreadyStored;
        // Deduplication must not trust a copy it has not looked at: if the
        // stored bytes went bad, the copy in hand replaces them.
        let intact = self
            .segments
            .read(entry.segment, entry.offset, entry.len)
            .is_ok_and(|stored| stored == data);
        if !intact {
            tracing::warn!(chunk = %hash, segment = entry.segment, "stored copy of a chunk is damaged; replacing it with the copy just received");
            release_location(t, batch, &entry)?;
            let (segment, offset, len) = self.store_bytes(t, batch, data)?;
            entry.segment = segment;
            entry.offset = offset;
            entry.len = len;
            entry.md5 = md5;
            outcome = PutOutcome::Stored;
        }
        if let Some(since) = entry.unreferenced_since {
            // Rewriting an unreferenced chunk restarts its grace period,
            // so an upload that reuses it does not race its collection.
            t.unreferenced.remove((since, &hash.0))?;
            t.unreferenced.insert((now, &hash.0), ())?;
            entry.unreferenced_since = Some(now);
        }
        t.chunks
            .insert(&hash.0, codec::encode(&entry)?.as_slice())?;
        Ok(outcome)
    }

    /// Deletes the copy of `hash` held here whatever references it: it is a
    /// surplus copy that its owners hold (with those references) already.
    pub(super) fn drop_chunk(
        &mut self,
        t: &mut Tables<'_>,
        batch: &mut Batch,
        hash: &Blake3Hash,
    ) -> Result<bool> {
        let Some(raw) = t.chunks.remove(&hash.0)?.map(|v| v.value().to_vec()) else {
            return Ok(false);
        };
        let entry: ChunkEntry = codec::decode(&raw)?;
        if let Some(since) = entry.unreferenced_since {
            t.unreferenced.remove((since, &hash.0))?;
            references::count_unreferenced(t, -i64::from(entry.len))?;
        }
        references::forget_chunk(t, hash)?;
        t.hints.remove(&hash.0)?;
        release_location(t, batch, &entry)?;
        Ok(true)
    }

    /// Appends a chunk's bytes and counts them as live in their segment.
    pub(super) fn store_bytes(
        &mut self,
        t: &Tables<'_>,
        batch: &mut Batch,
        data: &[u8],
    ) -> Result<(u32, u64, u32)> {
        let len = u32::try_from(data.len())
            .map_err(|_| StoreError::io("chunk too large", std::io::Error::other("over 4 GiB")))?;
        let (segment, offset) = self.append(t, batch, data)?;
        let seg = batch.segment(t, segment)?;
        seg.live_bytes += u64::from(len);
        seg.live_chunks += 1;
        Ok((segment, offset, len))
    }

    /// Appends `data` to the active segment (starting a new one when full)
    /// and returns where it went. The bytes are not durable until the
    /// batch's sync.
    pub(super) fn append(
        &mut self,
        t: &Tables<'_>,
        batch: &mut Batch,
        data: &[u8],
    ) -> Result<(u32, u64)> {
        if self.active.is_none() {
            self.active = self.load_active(t)?;
        }
        let full = self
            .active
            .as_ref()
            .is_some_and(|a| a.written > 0 && a.written + data.len() as u64 > self.segment_bytes);
        if full && let Some(old) = self.active.take() {
            if old.dirty {
                self.segments.sync(old.id, &old.file)?;
            }
            let entry = batch.segment(t, old.id)?;
            entry.committed_len = old.written;
            entry.sealed = true;
        }
        if self.active.is_none() {
            let id = self.next_segment;
            self.next_segment += 1;
            let file = self.segments.create(id)?;
            batch.created.push(id);
            batch.touched.insert(id, SegmentEntry::default());
            self.active = Some(Active {
                id,
                file,
                written: 0,
                committed: 0,
                dirty: false,
            });
        }
        let active = self
            .active
            .as_mut()
            .expect("an active segment was just loaded or created");
        let offset = active.written;
        self.segments.write(active.id, &active.file, offset, data)?;
        active.written += data.len() as u64;
        active.dirty = true;
        Ok((active.id, offset))
    }

    /// The newest unsealed segment from the index, cut back to its committed
    /// length.
    pub(super) fn load_active(&self, t: &Tables<'_>) -> Result<Option<Active>> {
        let mut newest = None;
        for row in t.segments.iter()? {
            let (id, raw) = row?;
            let entry: SegmentEntry = codec::decode(raw.value())?;
            if !entry.sealed {
                newest = Some((id.value(), entry));
            }
        }
        let Some((id, entry)) = newest else {
            return Ok(None);
        };
        let file = self.segments.open_truncated(id, entry.committed_len)?;
        Ok(Some(Active {
            id,
            file,
            written: entry.committed_len,
            committed: entry.committed_len,
            dirty: false,
        }))
    }
}

/// Notes that the copy of `hash` here stands in for `owner`.
pub(super) fn record_hint(t: &mut Tables<'_>, hash: &Blake3Hash, owner: &[u8]) -> Result<()> {
    let mut owners: Vec<Vec<u8>> = match t.hints.get(&hash.0)? {
        Some(raw) => codec::decode(raw.value())?,
        None => Vec::new(),
    };
    if !owners.iter().any(|o| o == owner) && owners.len() < MAX_HINTED_OWNERS {
        owners.push(owner.to_vec());
        t.hints
            .insert(&hash.0, codec::encode(&owners)?.as_slice())?;
    }
    Ok(())
}
