//! The redb database behind a replaceable handle.
//!
//! After any failed write, resize or sync, redb refuses every later call on
//! that `Database` (`PreviousIo`) until it is dropped and opened again. A
//! full disk must not turn into a peer that answers every request with an
//! error until someone restarts it, so the writer reopens the database after
//! a failed batch: it takes the slot, waits for readers already holding the
//! old handle to finish (new readers wait on the slot meanwhile), drops it,
//! and opens the file again, which lets redb repair it if it has to.
//!
//! A new database file is made under a temporary name and renamed into
//! place once whole, so that a crash during a first start cannot leave a
//! half-made file that redb refuses to open ever after.
//!
//! In tests the slot may carry a crash switch (see `crash_points`) that
//! every handle it opens writes and syncs through, reopened ones included.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redb::Database;

#[cfg(test)]
use super::crash_points::{self, CrashSwitch};
use super::error::{Result, StoreError};

/// How long a reopen waits for readers to let go of the old handle.
const READER_DRAIN: Duration = Duration::from_secs(30);

/// The current database handle.
#[derive(Debug)]
pub(super) struct DbSlot {
    path: PathBuf,
    cache_bytes: usize,
    current: RwLock<Option<Arc<Database>>>,
    /// The test switch that numbers and can fail every write and sync of
    /// the database file, across reopens.
    #[cfg(test)]
    pub(super) crash: Option<Arc<CrashSwitch>>,
}

impl DbSlot {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path, cache_bytes: usize) -> Result<Self> {
        DbSlot {
            path: path.to_owned(),
            cache_bytes,
            current: RwLock::new(None),
            #[cfg(test)]
            crash: None,
        }
        .connected()
    }

    /// Opens the database at `path` with every write and sync of its file
    /// going through `crash`.
    #[cfg(test)]
    pub fn open_crashable(
        path: &Path,
        cache_bytes: usize,
        crash: Arc<CrashSwitch>,
    ) -> Result<Self> {
        DbSlot {
            path: path.to_owned(),
            cache_bytes,
            current: RwLock::new(None),
            crash: Some(crash),
        }
        .connected()
    }

    fn connected(self) -> Result<Self> {
        let db = self.connect()?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(db));
        Ok(self)
    }

    /// The open database. Waits while a reopen is under way.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the last reopen failed.
    pub fn get(&self) -> Result<Arc<Database>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(StoreError::Unavailable)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Drops the current handle and opens the file again. Only the writer
    /// calls this, and holds no handle of its own while it does.
    ///
    /// # Errors
    /// The database could not be opened again; the next reopen retries.
    pub fn reopen(&self) -> Result<()> {
        let mut slot = self.current.write().unwrap_or_else(|e| e.into_inner());
        if let Some(mut old) = slot.take() {
            let deadline = Instant::now() + READER_DRAIN;
            loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => {
                        drop(db);
                        break;
                    }
                    Err(still_shared) if Instant::now() < deadline => {
                        old = still_shared;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(still_shared) => {
                        *slot = Some(still_shared);
                        return Err(StoreError::Unavailable);
                    }
                }
            }
        }
        let db = self.connect()?;
        *slot = Some(Arc::new(db));
        tracing::info!(path = %self.path.display(), "reopened the database after a failed write");
        Ok(())
    }

    /// Opens the database file, creating it first if there is none.
    fn connect(&self) -> Result<Database> {
        let mut builder = Database::builder();
        builder.set_cache_size(self.cache_bytes);
        let exists = self
            .path
            .try_exists()
            .map_err(|e| StoreError::io(format!("opening {}", self.path.display()), e))?;
        if !exists {
            self.create(&builder)?;
        }
        self.open_file(&builder, &self.path)
    }

    /// Creates the database file. redb writes its magic number last and
    /// will not open a non-empty file without one, so a crash part-way
    /// through creating the file in place would leave a store that never
    /// opens again. So the database is made under a temporary name, closed,
    /// and renamed into place whole; the data directory's sync at open
    /// (see `Store::open`) makes the rename durable before anything is
    /// acknowledged. A temporary file left by a crash during an earlier
    /// first start holds nothing acknowledged; if redb cannot open it, it
    /// is started over.
    fn create(&self, builder: &redb::Builder) -> Result<()> {
        let fresh = self.path.with_extension("redb-new");
        let db = match self.open_file(builder, &fresh) {
            Ok(db) => db,
            Err(e @ StoreError::Locked(_)) => return Err(e),
            Err(error) => {
                tracing::warn!(%error, path = %fresh.display(), "starting over a database file left half made by a crash");
                self.remove(&fresh)?;
                self.open_file(builder, &fresh)?
            }
        };
        db.close().map_err(|e| opening_failed(&fresh, e))?;
        let failed = |e| StoreError::io(format!("renaming {}", fresh.display()), e);
        #[cfg(test)]
        self.crash_point(crash_points::Step::Rename {
            from: &fresh,
            to: &self.path,
        })
        .map_err(failed)?;
        std::fs::rename(&fresh, &self.path).map_err(failed)
    }

    fn remove(&self, path: &Path) -> Result<()> {
        let failed = |e| StoreError::io(format!("deleting {}", path.display()), e);
        #[cfg(test)]
        self.crash_point(crash_points::Step::Remove { path })
            .map_err(failed)?;
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(failed(e)),
            _ => Ok(()),
        }
    }

    /// Opens (creating if it is empty or missing) the database at `path`.
    fn open_file(&self, builder: &redb::Builder, path: &Path) -> Result<Database> {
        #[cfg(test)]
        if let Some(crash) = &self.crash {
            return crash_points::create_database(builder, path, crash)
                .map_err(|e| opening_failed(path, e));
        }
        builder.create(path).map_err(|e| opening_failed(path, e))
    }
}

fn opening_failed(path: &Path, e: redb::DatabaseError) -> StoreError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => {
            StoreError::Locked(path.parent().unwrap_or(path).to_owned())
        }
        other => other.into(),
    }
}
