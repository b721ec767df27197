//! The transfers of a tree command in flight, at most `--jobs` at once.
//!
//! Each transfer is a task of its own, so all of them make progress over
//! the one HTTP client (whose pool keeps connections alive) while the
//! command feeds more. A failure of one file is that file's; a peer that
//! cannot be reached at all is every file's, and ends the run at once
//! rather than failing a million files one line at a time.

use std::future::Future;

use anyhow::{Result, anyhow};
use tokio::task::JoinSet;

use super::report::{Outcome, Subject};
use crate::client::{ClientError, chain};

/// Transfers in flight.
#[derive(Debug)]
pub struct Pool {
    tasks: JoinSet<(Subject, Result<Outcome>)>,
    jobs: usize,
}

impl Pool {
    /// A pool running up to `jobs` transfers at once (at least one).
    pub fn new(jobs: usize) -> Pool {
        Pool {
            tasks: JoinSet::new(),
            jobs: jobs.max(1),
        }
    }

    /// Whether as many transfers run as may.
    pub fn is_full(&self) -> bool {
        self.tasks.len() >= self.jobs
    }

    /// Whether nothing runs.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Starts the transfer of `subject`.
    pub fn spawn(
        &mut self,
        subject: Subject,
        transfer: impl Future<Output = Result<Outcome>> + Send + 'static,
    ) {
        self.tasks.spawn(async move { (subject, transfer.await) });
    }

    /// The next transfer to finish, as its subject and outcome; `None` when
    /// nothing runs.
    ///
    /// # Errors
    /// The peer cannot be reached, or a transfer task failed: the run must
    /// stop.
    pub async fn next(&mut self) -> Option<Result<(Subject, Outcome)>> {
        let joined = self.tasks.join_next().await?;
        Some(match joined {
            Err(e) => Err(anyhow!("a transfer failed unexpectedly: {e}")),
            Ok((subject, Ok(outcome))) => Ok((subject, outcome)),
            Ok((_, Err(e))) if is_fatal(&e) => Err(e),
            Ok((subject, Err(e))) => Ok((subject, Outcome::Failed(chain(e.as_ref())))),
        })
    }

    /// Stops every transfer and waits until each has let go of what it
    /// held (a download's temporary file is removed as its task ends).
    pub async fn stop(&mut self) {
        self.tasks.shutdown().await;
    }
}

/// Whether `e` means no file can be transferred.
fn is_fatal(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<ClientError>(),
            Some(ClientError::Unreachable { .. })
        )
    })
}
