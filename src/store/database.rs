//! The redb database behind a replaceable handle.
//!
//! After any failed write, resize or sync, redb refuses every later call on
//! that `Database` (`PreviousIo`) until it is dropped and opened again. A
//! full disk must not turn into a peer that answers every request with an
//! error until someone restarts it, so the writer reopens the database after
//! a failed batch: it takes the slot, waits for readers already holding the
//! old handle to finish (new readers wait on the slot meanwhile), drops it,
//! and opens the file again, which lets redb repair it if it has to.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redb::Database;

use super::error::{Result, StoreError};

/// How long a reopen waits for readers to let go of the old handle.
const READER_DRAIN: Duration = Duration::from_secs(30);

/// The current database handle.
#[derive(Debug)]
pub(super) struct DbSlot {
    path: PathBuf,
    cache_bytes: usize,
    current: RwLock<Option<Arc<Database>>>,
}

impl DbSlot {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path, cache_bytes: usize) -> Result<Self> {
        let db = open_database(path, cache_bytes)?;
        Ok(DbSlot {
            path: path.to_owned(),
            cache_bytes,
            current: RwLock::new(Some(Arc::new(db))),
        })
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
        let db = open_database(&self.path, self.cache_bytes)?;
        *slot = Some(Arc::new(db));
        tracing::info!(path = %self.path.display(), "reopened the database after a failed write");
        Ok(())
    }
}

fn open_database(path: &Path, cache_bytes: usize) -> Result<Database> {
    Database::builder()
        .set_cache_size(cache_bytes)
        .create(path)
        .map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => {
                StoreError::Locked(path.parent().unwrap_or(path).to_owned())
            }
            other => other.into(),
        })
}
