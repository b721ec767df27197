//! The swarm's listing of a prefix as one stream of entries in name order,
//! fetched a page ahead of its reader by a task of its own.
//!
//! `get -r` reads it as the list of what to fetch; `put -r` walks its tree
//! in the same order and looks each name up with a [`Cursor`], so finding
//! what is already stored takes one pass over the listing and memory for a
//! page or two, however many files the prefix holds.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::api::FileEntry;
use crate::client::{Client, ClientError};

/// Files fetched per listing request.
const PAGE: usize = super::super::LIST_PAGE;

/// Entries listed but not yet read: up to two pages.
const AHEAD: usize = 2 * PAGE;

/// The listing of one prefix; dropping it stops the fetching.
#[derive(Debug)]
pub struct Listing {
    entries: mpsc::Receiver<Result<FileEntry, ClientError>>,
    task: JoinHandle<()>,
}

impl Listing {
    /// Starts listing the files whose names start with `prefix`.
    pub fn spawn(client: Client, prefix: String) -> Listing {
        let (tx, entries) = mpsc::channel(AHEAD);
        let task = tokio::spawn(async move {
            let mut after: Option<String> = None;
            loop {
                let page = match client.list(&prefix, after.as_deref(), PAGE).await {
                    Ok(page) => page,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                for entry in page.files {
                    if tx.send(Ok(entry)).await.is_err() {
                        return;
                    }
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => return,
                }
            }
        });
        Listing { entries, task }
    }

    /// The next entry; `None` at the end, and after an error.
    pub async fn next(&mut self) -> Option<Result<FileEntry, ClientError>> {
        self.entries.recv().await
    }
}

impl Drop for Listing {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Looks names up in a listing, in increasing name order.
#[derive(Debug)]
pub struct Cursor {
    listing: Listing,
    head: Option<FileEntry>,
    ended: bool,
}

impl Cursor {
    /// A cursor at the start of `listing`.
    pub fn new(listing: Listing) -> Cursor {
        Cursor {
            listing,
            head: None,
            ended: false,
        }
    }

    /// The entry listed under `name`, if any. Each name asked must sort
    /// after the previous one; a name asked out of order is answered
    /// `None`, which only costs an upload that was not needed.
    ///
    /// # Errors
    /// The listing failed.
    pub async fn find(&mut self, name: &str) -> Result<Option<FileEntry>, ClientError> {
        loop {
            if self.head.is_none() && !self.ended {
                match self.listing.next().await {
                    Some(Ok(entry)) => self.head = Some(entry),
                    Some(Err(e)) => return Err(e),
                    None => self.ended = true,
                }
            }
            match &self.head {
                Some(head) if head.name.as_str() < name => self.head = None,
                Some(head) if head.name == name => return Ok(self.head.take()),
                _ => return Ok(None),
            }
        }
    }
}
