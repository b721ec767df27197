//! Name floors: the newest version this peer knows to exist for each name,
//! inside the writer's transaction.
//!
//! Versions of a name are totally ordered and the newest wins, so once a
//! version is known to exist every older one is dead, and so are its chunk
//! references. A peer that was down when an older version's release went
//! out would otherwise keep those references until the audit found them;
//! with a floor it lets go as soon as it learns of the newer version by any
//! path: a record stored here (a write, read repair, anti-entropy, a hinted
//! copy handed back) or an explicit `Store::supersede`. Raising a floor
//! releases the references below it in the same transaction, and no
//! reference below a floor is ever added, so the store never holds a
//! reference older than its name's floor.
//!
//! # Why dropping a floor is safe, and when it happens
//!
//! A floor only ever makes the store release or skip references of dead
//! versions; without one the store keeps references until they are
//! released or audited away, as it did before floors existed. So losing a
//! floor can cost space until the next audit, never data. Collection drops
//! a floor once it has not been raised for the tombstone TTL and the store
//! holds neither a record nor a reference for its name; one still in use
//! is looked at again a TTL later. That bounds the table by the names
//! active here within a TTL, and the work per pass by
//! `MAX_COLLECT_PER_PASS`.

use redb::ReadableTable;

use super::error::Result;
use super::references;
use super::tables::FloorEntry;
use super::writer::Tables;
use crate::chunk::{Reference, Version};
use crate::codec;

/// Raises the floor of `name` to `version` (never lowers it) and releases
/// every reference held here for `name` older than the floor; returns how
/// many were released.
pub(super) fn supersede(
    t: &mut Tables<'_>,
    name: &str,
    version: &Version,
    now: u64,
) -> Result<u64> {
    let current = read(t, name)?;
    let floor = match current {
        Some(entry) if entry.version >= *version => entry.version,
        current => {
            if let Some(old) = current {
                t.floor_ages.remove((old.touched_ms, name))?;
            }
            write(t, name, version.clone(), now)?;
            version.clone()
        }
    };
    references::release_older(t, name, &floor, now)
}

/// Whether `reference` is at or above its name's floor, so that recording
/// it is of use.
pub(super) fn admits(t: &Tables<'_>, reference: &Reference) -> Result<bool> {
    Ok(match read(t, reference.name.as_str())? {
        Some(floor) => reference.version >= floor.version,
        None => true,
    })
}

/// Drops the floors untouched since `cutoff` (inclusive) whose names have
/// no record and no reference here, at most `limit` looked at; the others
/// are touched at `now`. Returns how many were dropped.
pub(super) fn collect(t: &mut Tables<'_>, cutoff: u64, now: u64, limit: usize) -> Result<u64> {
    let expired: Vec<(u64, String)> = t
        .floor_ages
        .range(..(cutoff.saturating_add(1), ""))?
        .take(limit)
        .map(|r| r.map(|(k, _)| (k.value().0, k.value().1.to_owned())))
        .collect::<Result<_, _>>()?;
    let mut dropped = 0;
    for (touched_ms, name) in expired {
        t.floor_ages.remove((touched_ms, name.as_str()))?;
        let in_use = t.files.get(name.as_str())?.is_some()
            || references::name_is_referenced(t, name.as_str())?;
        match read(t, name.as_str())? {
            Some(entry) if in_use => write(t, name.as_str(), entry.version, now)?,
            Some(_) => {
                t.floors.remove(name.as_str())?;
                dropped += 1;
            }
            // An age row without a floor: nothing more to clear.
            None => {}
        }
    }
    Ok(dropped)
}

/// The floor of `name`, if it has one.
fn read(t: &Tables<'_>, name: &str) -> Result<Option<FloorEntry>> {
    Ok(match t.floors.get(name)? {
        Some(raw) => Some(codec::decode(raw.value())?),
        None => None,
    })
}

/// Sets the floor of `name` to `version`, touched at `now`. The caller has
/// removed the floor's previous age row.
fn write(t: &mut Tables<'_>, name: &str, version: Version, now: u64) -> Result<()> {
    let entry = FloorEntry {
        version,
        touched_ms: now,
    };
    t.floors.insert(name, codec::encode(&entry)?.as_slice())?;
    t.floor_ages.insert((now, name), ())?;
    Ok(())
}
