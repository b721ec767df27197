//! Segment files: append-only files that hold chunk bytes back to back.
//!
//! This module only moves bytes; which bytes are valid is decided by the
//! index in redb. Segments are named by a zero-padded id
//! (`segments/00000042.seg`), written only by the store's writer thread and
//! read by any thread through a cache of open handles.
//!
//! Every call that changes a segment file or the directory (write, sync,
//! create, delete, punch, cut) goes through a method here, so that tests can
//! stop persisting at any one of them (see `crash_points`, compiled only
//! for tests).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rustix::fs::FallocateFlags;

#[cfg(test)]
use super::crash_points::{CrashSwitch, Step};
use super::error::{Result, StoreError};

const EXTENSION: &str = "seg";

/// Most segment files kept open for reading. Past this the cache starts
/// over, so a store of any size stays far below the open-file limit.
const MAX_OPEN_READERS: usize = 128;

/// The directory of segment files plus the read handles open on them.
#[derive(Debug)]
pub(super) struct SegmentFiles {
    dir: PathBuf,
    readers: Mutex<HashMap<u32, Arc<File>>>,
    /// The test switch that numbers and can fail every persistence step.
    #[cfg(test)]
    pub(super) crash: Option<Arc<CrashSwitch>>,
}

impl SegmentFiles {
    /// Uses (and creates if needed) `dir` for segments.
    pub fn open(dir: PathBuf) -> Result<Self> {
        SegmentFiles {
            dir,
            readers: Mutex::new(HashMap::new()),
            #[cfg(test)]
            crash: None,
        }
        .create_dir()
    }

    /// Uses `dir` for segments, with every persistence step going through
    /// `crash`.
    #[cfg(test)]
    pub fn open_crashable(dir: PathBuf, crash: Arc<CrashSwitch>) -> Result<Self> {
        SegmentFiles {
            dir,
            readers: Mutex::new(HashMap::new()),
            crash: Some(crash),
        }
        .create_dir()
    }

    fn create_dir(self) -> Result<Self> {
        let failed = |e| StoreError::io(format!("creating {}", self.dir.display()), e);
        #[cfg(test)]
        if !self.dir.exists() {
            self.crash_point(Step::Create { path: &self.dir })
                .map_err(failed)?;
        }
        fs::create_dir_all(&self.dir).map_err(failed)?;
        Ok(self)
    }

    /// The path of segment `id`.
    pub fn path(&self, id: u32) -> PathBuf {
        self.dir.join(format!("{id:08}.{EXTENSION}"))
    }

    /// The ids of all segment files present, whatever the index says.
    pub fn list(&self) -> Result<Vec<u32>> {
        let context = || format!("listing {}", self.dir.display());
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| StoreError::io(context(), e))? {
            let path = entry.map_err(|e| StoreError::io(context(), e))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
                continue;
            }
            if let Some(id) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse().ok())
            {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// Creates segment `id`, which must not exist, and makes its directory
    /// entry durable so that data later synced to it is reachable after a
    /// crash.
    pub fn create(&self, id: u32) -> Result<File> {
        let path = self.path(id);
        let failed = |e| StoreError::io(format!("creating {}", path.display()), e);
        #[cfg(test)]
        self.crash_point(Step::Create { path: &path })
            .map_err(failed)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(failed)?;
        self.sync_dir()?;
        Ok(file)
    }

    /// Writes `data` at `offset` of segment `id`, open as `file`. Not
    /// durable until [`SegmentFiles::sync`].
    pub fn write(&self, id: u32, file: &File, offset: u64, data: &[u8]) -> Result<()> {
        let failed = |e| StoreError::io(format!("writing segment {id}"), e);
        #[cfg(test)]
        self.crash_point(Step::Write {
            path: &self.path(id),
            offset,
            len: data.len() as u64,
        })
        .map_err(failed)?;
        file.write_all_at(data, offset).map_err(failed)
    }

    /// Makes what was written to segment `id`, open as `file`, durable
    /// (`fdatasync`).
    pub fn sync(&self, id: u32, file: &File) -> Result<()> {
        let failed = |e| StoreError::io(format!("syncing segment {id}"), e);
        #[cfg(test)]
        if self
            .crash_sync(Step::Sync {
                path: &self.path(id),
            })
            .map_err(failed)?
        {
            return Ok(());
        }
        file.sync_data().map_err(failed)
    }

    /// Cuts segment `id`, open as `file`, to `len` bytes (or extends it).
    /// Not durable until [`SegmentFiles::sync`].
    pub fn set_len(&self, id: u32, file: &File, len: u64) -> Result<()> {
        let failed = |e| StoreError::io(format!("cutting segment {id} to {len} bytes"), e);
        #[cfg(test)]
        self.crash_point(Step::SetLen {
            path: &self.path(id),
            len,
        })
        .map_err(failed)?;
        file.set_len(len).map_err(failed)
    }

    /// Opens segment `id` for appending and cuts it to `len`, dropping any
    /// bytes written after the last commit.
    pub fn open_truncated(&self, id: u32, len: u64) -> Result<File> {
        let path = self.path(id);
        let context = || format!("opening {}", path.display());
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io(context(), e))?;
        let actual = file
            .metadata()
            .map_err(|e| StoreError::io(context(), e))?
            .len();
        if actual > len {
            self.set_len(id, &file, len)?;
            self.sync(id, &file)?;
        } else if actual < len {
            tracing::error!(
                segment = id,
                expected = len,
                actual,
                "segment file is shorter than its index says; chunks past its end will read as corrupt"
            );
        }
        Ok(file)
    }

    /// Reads `len` bytes at `offset` of segment `id`.
    ///
    /// The bytes are read into fresh capacity rather than a zeroed buffer:
    /// zeroing a megabyte only to overwrite it cost a tenth of a peer's CPU
    /// when serving reads.
    pub fn read(&self, id: u32, offset: u64, len: u32) -> Result<Bytes> {
        let file = self.reader(id)?;
        let len = len as usize;
        let failed = |e| StoreError::io(format!("reading segment {id} at {offset}"), e);
        let mut buf = Vec::with_capacity(len);
        while buf.len() < len {
            let at = offset + buf.len() as u64;
            // Reads into the spare capacity and extends the length by what
            // was read. A capacity above `len` may read past the chunk;
            // the excess is cut off below.
            let read = rustix::io::pread(&*file, rustix::buffer::spare_capacity(&mut buf), at)
                .map_err(|e| failed(std::io::Error::from(e)))?;
            if read == 0 {
                return Err(failed(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
        buf.truncate(len);
        Ok(Bytes::from(buf))
    }

    fn reader(&self, id: u32) -> Result<Arc<File>> {
        let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(file) = readers.get(&id) {
            return Ok(Arc::clone(file));
        }
        let path = self.path(id);
        let file = Arc::new(
            File::open(&path)
                .map_err(|e| StoreError::io(format!("opening {}", path.display()), e))?,
        );
        if readers.len() >= MAX_OPEN_READERS {
            readers.clear();
        }
        readers.insert(id, Arc::clone(&file));
        Ok(file)
    }

    /// Returns the space of a byte range to the file system without changing
    /// the file's length. Only whole file-system blocks inside the range are
    /// freed; the rest reads as zeros. A file system without hole punching
    /// gets its space back when the whole segment is deleted instead.
    /// Not durable until [`SegmentFiles::sync_punched`].
    pub fn punch(&self, id: u32, offset: u64, len: u64) -> Result<()> {
        let path = self.path(id);
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io(format!("opening {}", path.display()), e))?;
        #[cfg(test)]
        self.crash_point(Step::Punch {
            path: &path,
            offset,
            len,
        })
        .map_err(|e| StoreError::io(format!("freeing {len} bytes of segment {id}"), e))?;
        match rustix::fs::fallocate(
            &file,
            FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
            offset,
            len,
        ) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::OPNOTSUPP) => Ok(()),
            Err(e) => Err(StoreError::io(
                format!("freeing {len} bytes of segment {id}"),
                io::Error::from(e),
            )),
        }
    }

    /// Makes the holes punched in segment `id` durable. Until then a power
    /// cut may bring the freed blocks back, so a punched range must stay
    /// recorded until this returns.
    pub fn sync_punched(&self, id: u32) -> Result<()> {
        let path = self.path(id);
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io(format!("opening {}", path.display()), e))?;
        self.sync(id, &file)
    }

    /// Deletes segment `id`. Not durable until [`SegmentFiles::sync_dir`].
    pub fn remove(&self, id: u32) -> Result<()> {
        self.readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        let path = self.path(id);
        #[cfg(test)]
        self.crash_point(Step::Remove { path: &path })
            .map_err(|e| StoreError::io(format!("deleting {}", path.display()), e))?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(format!("deleting {}", path.display()), e)),
        }
    }

    /// Makes creations and deletions in the segment directory durable.
    pub fn sync_dir(&self) -> Result<()> {
        self.sync_directory(&self.dir)
    }

    /// Makes creations and deletions in `dir` durable. The store's data
    /// directory is synced this way too, after its database file and
    /// segment directory may have been created.
    pub fn sync_directory(&self, dir: &Path) -> Result<()> {
        let failed = |e| StoreError::io(format!("syncing {}", dir.display()), e);
        #[cfg(test)]
        if self.crash_sync(Step::SyncDir { dir }).map_err(failed)? {
            return Ok(());
        }
        File::open(dir).and_then(|d| d.sync_all()).map_err(failed)
    }

    /// Bytes of disk the segment files occupy (allocated blocks, so punched
    /// holes do not count).
    pub fn disk_usage(&self) -> Result<u64> {
        Ok(self
            .list()?
            .into_iter()
            .filter_map(|id| fs::metadata(self.path(id)).ok())
            .map(|m| m.blocks() * 512)
            .sum())
    }

    /// The directory holding the segments.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
