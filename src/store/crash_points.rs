//! Crash points: a test-only layer under the segment files and redb that
//! numbers every persistence step and can stop persisting at any one of
//! them, as if the process died or the power went out there.
//!
//! Why a layer rather than killing a process: a kill lands wherever the
//! scheduler happens to be, so a few kills cover a few steps; numbering the
//! steps lets a test crash at *each* of them in turn and check what a
//! reopened store holds. Compiled only for tests: production builds hold no
//! switch and pay nothing (`SegmentFiles` and `DbSlot` carry the switch
//! under `#[cfg(test)]`, and redb gets [`CrashBackend`] only through
//! [`create_database`]).
//!
//! A step is a segment write, sync, create, delete, punch or cut, a
//! directory sync, a write, resize or sync of the database file (redb's
//! `StorageBackend`), or the creation, deletion or renaming of a database
//! file at a first start. Once the switch is armed at step k, that step and
//! every later one fail with an I/O error without touching the disk, so the
//! files stay exactly as the crash left them while the store runs on and
//! is dropped. Two crash models follow from the same run:
//!
//! - **process death**: everything done before step k stays (the page
//!   cache keeps it); nothing more is needed.
//! - **power loss**: whatever was not made durable is undone by
//!   [`CrashSwitch::power_loss`]. The switch keeps, per file, the old bytes
//!   and lengths overwritten since the file's last sync, and per directory
//!   the entries created, deleted or renamed since its last sync (see
//!   `crash_undo`); undoing restores the *old* contents.
//!
//! Under a switch the real syncs are skipped: the model decides what is
//! durable, the test never pulls the real plug, and the fsyncs of over a
//! thousand runs would cost most of the tests' time. Everything else is real:
//! real files, real redb, real holes punched.

use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::backends::FileBackend;
use redb::{BackendError, Builder, Database, DatabaseError, StorageBackend};

use super::crash_undo::{Undo, note_undo, undo_path};
use super::database::DbSlot;
use super::error::Result as StoreResult;
use super::{DB_FILE, SEGMENT_DIR, SegmentFiles, Store, StoreWriter, create_data_dir};
use crate::config::StoreConfig;

/// One persistence step, described just before it is taken.
#[derive(Debug, Clone, Copy)]
pub(super) enum Step<'a> {
    /// Bytes written at an offset (not durable until the file is synced).
    Write {
        path: &'a Path,
        offset: u64,
        len: u64,
    },
    /// A range's blocks given back (`fallocate(PUNCH_HOLE)`).
    Punch {
        path: &'a Path,
        offset: u64,
        len: u64,
    },
    /// The file cut or extended to a length.
    SetLen { path: &'a Path, len: u64 },
    /// `fdatasync` of the file.
    Sync { path: &'a Path },
    /// A file or directory created (only when it did not exist).
    Create { path: &'a Path },
    /// A file deleted.
    Remove { path: &'a Path },
    /// A file renamed over another name (not durable until the directory
    /// is synced).
    Rename { from: &'a Path, to: &'a Path },
    /// `fsync` of a directory: its creations and deletions become durable.
    SyncDir { dir: &'a Path },
}

impl Step<'_> {
    /// A short name for the kind of step, for tallies and messages.
    pub fn kind(&self) -> &'static str {
        // The database file, or the one it is made under at a first start.
        let db = |path: &Path| path.extension().is_none_or(|e| e != "seg");
        match self {
            Step::Write { path, .. } if db(path) => "redb write",
            Step::SetLen { path, .. } if db(path) => "redb set_len",
            Step::Sync { path } if db(path) => "redb sync",
            Step::Write { .. } => "segment write",
            Step::Punch { .. } => "segment punch",
            Step::SetLen { .. } => "segment set_len",
            Step::Sync { .. } => "segment sync",
            Step::Create { .. } => "create",
            Step::Remove { .. } => "remove",
            Step::Rename { .. } => "rename",
            Step::SyncDir { .. } => "directory sync",
        }
    }
}

/// Which step the crash comes at.
#[derive(Clone, Copy)]
enum Trigger {
    /// The step with this number.
    Number(u64),
    /// The first step of this kind (see [`Step::kind`]).
    Kind(&'static str),
}

#[derive(Default)]
struct State {
    /// Steps attempted so far, counting from 1.
    steps: u64,
    /// What makes a step fail first, once armed.
    trigger: Option<Trigger>,
    /// What the crash step was, once it happened.
    crashed: Option<String>,
    /// Steps attempted by kind, for reports.
    tally: BTreeMap<&'static str, u64>,
    undo: HashMap<PathBuf, Undo>,
}

/// Numbers every persistence step of one store's run and, once armed,
/// fails one and all later ones. Shared by the segment files and every
/// database handle the run opens (the writer reopens redb after a failure).
#[derive(Default)]
pub(super) struct CrashSwitch {
    state: Mutex<State>,
}

impl std::fmt::Debug for CrashSwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CrashSwitch")
    }
}

impl CrashSwitch {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many steps were attempted so far.
    pub fn steps(&self) -> u64 {
        self.lock().steps
    }

    /// Makes the `k`-th step from now (counting from 1) and all later ones
    /// fail.
    pub fn arm(&self, k: u64) {
        let mut state = self.lock();
        state.trigger = Some(Trigger::Number(state.steps + k));
        state.tally.clear();
    }

    /// Makes the first step of `kind` (see [`Step::kind`]) and all later
    /// steps fail.
    pub fn arm_at_kind(&self, kind: &'static str) {
        self.lock().trigger = Some(Trigger::Kind(kind));
    }

    /// Lets steps through again after a crash, as a restarted process
    /// would: the files stay as the crash left them, and so does what a
    /// later power cut would undo.
    pub fn revive(&self) {
        let mut state = self.lock();
        state.trigger = None;
        state.crashed = None;
    }

    /// The step the crash happened at, described, if it happened.
    pub fn crashed(&self) -> Option<String> {
        self.lock().crashed.clone()
    }

    /// Steps attempted since the last [`CrashSwitch::arm`], by kind.
    pub fn tally(&self) -> BTreeMap<&'static str, u64> {
        self.lock().tally.clone()
    }

    /// Called before each persistence step: fails it if the crash has
    /// come, otherwise notes what a power cut would have to undo.
    pub fn before(&self, step: Step<'_>) -> io::Result<()> {
        let mut state = self.lock();
        state.steps += 1;
        let number = state.steps;
        let now = match state.trigger {
            Some(Trigger::Number(at)) => at == number,
            Some(Trigger::Kind(kind)) => kind == step.kind(),
            None => false,
        };
        if state.crashed.is_none() && now {
            state.crashed = Some(format!("step {number} ({step:?})"));
        }
        if state.crashed.is_some() {
            return Err(io::Error::other(format!("crash point (step {number})")));
        }
        *state.tally.entry(step.kind()).or_default() += 1;
        note_undo(&mut state.undo, step)
    }

    /// Undoes, on disk, every change not made durable before the crash (or
    /// before now, if none happened): the power-loss model. Call it once
    /// the store is closed.
    ///
    /// # Panics
    /// If the files cannot be put back, which fails the test.
    pub fn power_loss(&self) {
        let mut state = self.lock();
        let mut paths: Vec<(PathBuf, Undo)> = state.undo.drain().collect();
        // Children sort after their parents: undo them first.
        paths.sort_by(|a, b| b.0.cmp(&a.0));
        for (path, undo) in paths {
            undo_path(&path, undo).unwrap_or_else(|e| panic!("undoing {}: {e}", path.display()));
        }
    }
}

impl Store {
    /// [`Store::open`] with every persistence step of the segment files and
    /// the database going through `switch`.
    pub(super) fn open_crashable(
        data_dir: &Path,
        config: &StoreConfig,
        switch: &Arc<CrashSwitch>,
    ) -> StoreResult<(Store, StoreWriter)> {
        create_data_dir(data_dir)?;
        let db = DbSlot::open_crashable(
            &data_dir.join(DB_FILE),
            config.cache_bytes,
            Arc::clone(switch),
        )?;
        let segments =
            SegmentFiles::open_crashable(data_dir.join(SEGMENT_DIR), Arc::clone(switch))?;
        Store::recover(data_dir, db, segments, config)
    }
}

impl DbSlot {
    /// Passes a step on the database's files other than redb's own (which
    /// [`CrashBackend`] passes) through the switch, if there is one.
    pub(super) fn crash_point(&self, step: Step<'_>) -> io::Result<()> {
        self.crash
            .as_ref()
            .map_or(Ok(()), |switch| switch.before(step))
    }
}

impl SegmentFiles {
    /// Passes a step on the segment files through the switch, if any.
    pub(super) fn crash_point(&self, step: Step<'_>) -> io::Result<()> {
        self.crash
            .as_ref()
            .map_or(Ok(()), |switch| switch.before(step))
    }

    /// Passes a sync of the segment files through the switch, if there is
    /// one, and says whether the switch stands in for it (the real sync is
    /// then skipped).
    pub(super) fn crash_sync(&self, step: Step<'_>) -> io::Result<bool> {
        self.crash_point(step)?;
        Ok(self.crash.is_some())
    }
}

/// Opens (creating if needed) the database at `path` with every write,
/// resize and sync of its file going through `switch`.
pub(super) fn create_database(
    builder: &Builder,
    path: &Path,
    switch: &Arc<CrashSwitch>,
) -> Result<Database, DatabaseError> {
    if !path.exists() {
        switch.before(Step::Create { path })?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    builder.create_with_backend(CrashBackend {
        file: FileBackend::new(file)?,
        path: path.to_owned(),
        switch: Arc::clone(switch),
    })
}

/// redb's file backend with every write, resize and sync passed through
/// the switch first. Reads and locks go straight to the file.
#[derive(Debug)]
struct CrashBackend {
    file: FileBackend,
    path: PathBuf,
    switch: Arc<CrashSwitch>,
}

impl StorageBackend for CrashBackend {
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.switch.before(Step::SetLen {
            path: &self.path,
            len,
        })?;
        self.file.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        // The switch decides what is durable; a real sync would only cost
        // time.
        self.switch.before(Step::Sync { path: &self.path })
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.switch.before(Step::Write {
            path: &self.path,
            offset,
            len: data.len() as u64,
        })?;
        self.file.write(offset, data)
    }

    fn close(&self) -> io::Result<()> {
        self.file.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}
