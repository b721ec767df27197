//! The uploads this peer is coordinating right now.
//!
//! Other peers holding chunks for an upload's reference ask about it before
//! dropping a reference whose manifest they cannot find (see the reference
//! audit in `crate::files`): while the upload runs, the missing manifest
//! only means it has not been written yet. The registry lives in memory
//! only, since a restart ends every upload this peer was coordinating.

use std::collections::HashMap;
use std::sync::Arc;

use super::Store;
use crate::chunk::Blake3Hash;

/// The references of uploads this peer is coordinating right now. Other
/// peers holding chunks for such a reference ask about it before dropping
/// a reference whose manifest they cannot find (see `crate::files`).
#[derive(Debug, Clone, Default)]
pub(super) struct Uploads(Arc<std::sync::Mutex<HashMap<[u8; 32], usize>>>);

/// Marks an upload as running until dropped.
#[derive(Debug)]
pub struct UploadGuard {
    uploads: Uploads,
    id: [u8; 32],
}

impl Drop for UploadGuard {
    fn drop(&mut self) {
        let mut running = self.uploads.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = running.get_mut(&self.id) {
            *count -= 1;
            if *count == 0 {
                running.remove(&self.id);
            }
        }
    }
}

impl Store {
    /// Records that this peer is coordinating the upload with reference
    /// `id` until the guard is dropped.
    pub fn upload_running(&self, id: Blake3Hash) -> UploadGuard {
        *self
            .uploads
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.0)
            .or_default() += 1;
        UploadGuard {
            uploads: self.uploads.clone(),
            id: id.0,
        }
    }

    /// Whether this peer is coordinating the upload with reference `id`.
    pub fn is_uploading(&self, id: &Blake3Hash) -> bool {
        self.uploads
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&id.0)
    }
}
