//! The power-loss model of the crash points (see `crash_points`): what a
//! power cut undoes, kept as an undo log per path since its last sync.
//!
//! A file's unsynced writes, cuts and punches are undone by putting back the
//! bytes and length they replaced; a directory's unsynced creations,
//! deletions and renames by deleting what was created and writing back
//! what was deleted or renamed away. Restoring the *old* contents is what
//! a disk that never received the writes holds; torn sectors are redb's
//! checksums' business, not the store's.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::crash_points::Step;

/// How a directory entry looked at its directory's last sync, kept from
/// its first change after that sync.
enum Entry {
    /// It did not exist: undoing deletes it.
    Absent,
    /// It was a file with these bytes (when it was deleted): undoing
    /// writes them back.
    File(Vec<u8>),
}

/// A change to a file's contents since its last sync, undone by putting
/// back what it overwrote.
enum Change {
    /// Bytes at an offset, as they were before.
    Bytes { offset: u64, old: Vec<u8> },
    /// The file's length before.
    Len(u64),
}

/// What a power cut would undo for one path.
#[derive(Default)]
pub(super) struct Undo {
    entry: Option<Entry>,
    /// Oldest first; undone newest first.
    content: Vec<Change>,
}

/// Records what `step` is about to change, so that it can be undone.
pub(super) fn note_undo(undo: &mut HashMap<PathBuf, Undo>, step: Step<'_>) -> io::Result<()> {
    match step {
        Step::Write { path, offset, len } => {
            let old_len = file_len(path)?;
            let changes = &mut undo.entry(path.to_owned()).or_default().content;
            if offset + len > old_len {
                changes.push(Change::Len(old_len));
            }
            let end = (offset + len).min(old_len);
            if offset < end {
                let old = read_range(path, offset, end - offset)?;
                changes.push(Change::Bytes { offset, old });
            }
        }
        Step::Punch { path, offset, len } => {
            let end = (offset + len).min(file_len(path)?);
            if offset < end {
                let old = read_range(path, offset, end - offset)?;
                let changes = &mut undo.entry(path.to_owned()).or_default().content;
                changes.push(Change::Bytes { offset, old });
            }
        }
        Step::SetLen { path, len } => {
            let old_len = file_len(path)?;
            let changes = &mut undo.entry(path.to_owned()).or_default().content;
            changes.push(Change::Len(old_len));
            if len < old_len {
                let old = read_range(path, len, old_len - len)?;
                changes.push(Change::Bytes { offset: len, old });
            }
        }
        Step::Sync { path } => {
            if let Some(entry) = undo.get_mut(path) {
                entry.content.clear();
            }
        }
        Step::Create { path } => {
            let entry = &mut undo.entry(path.to_owned()).or_default().entry;
            entry.get_or_insert(Entry::Absent);
        }
        Step::Remove { path } => {
            if path.is_file() {
                let bytes = fs::read(path)?;
                let entry = &mut undo.entry(path.to_owned()).or_default().entry;
                entry.get_or_insert(Entry::File(bytes));
            }
        }
        Step::Rename { from, to } => {
            let old_to = match to.is_file() {
                true => Entry::File(fs::read(to)?),
                false => Entry::Absent,
            };
            let moved = fs::read(from)?;
            let from_undo = undo.entry(from.to_owned()).or_default();
            from_undo.entry.get_or_insert(Entry::File(moved));
            // Unsynced changes follow the file to its new name.
            let content = std::mem::take(&mut from_undo.content);
            let to_undo = undo.entry(to.to_owned()).or_default();
            to_undo.entry.get_or_insert(old_to);
            to_undo.content.extend(content);
        }
        Step::SyncDir { dir } => {
            for (path, entry) in undo.iter_mut() {
                if path.parent() == Some(dir) {
                    entry.entry = None;
                }
            }
        }
    }
    undo.retain(|_, u| u.entry.is_some() || !u.content.is_empty());
    Ok(())
}

fn file_len(path: &Path) -> io::Result<u64> {
    Ok(if path.exists() {
        fs::metadata(path)?.len()
    } else {
        0
    })
}

fn read_range(path: &Path, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; usize::try_from(len).map_err(io::Error::other)?];
    File::open(path)?.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

/// Puts one path back as its last syncs left it.
pub(super) fn undo_path(path: &Path, undo: Undo) -> io::Result<()> {
    match undo.entry {
        Some(Entry::Absent) => {
            if path.is_dir() {
                fs::remove_dir_all(path)?;
            } else if path.exists() {
                fs::remove_file(path)?;
            }
            return Ok(());
        }
        Some(Entry::File(bytes)) => fs::write(path, bytes)?,
        None => {}
    }
    if undo.content.is_empty() || !path.exists() {
        return Ok(());
    }
    let file = OpenOptions::new().write(true).open(path)?;
    for change in undo.content.into_iter().rev() {
        match change {
            Change::Bytes { offset, old } => file.write_all_at(&old, offset)?,
            Change::Len(len) => file.set_len(len)?,
        }
    }
    Ok(())
}
