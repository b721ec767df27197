//! The timers that run healing: a repair pass every `--repair-interval`, a
//! reference audit every `--audit-interval`, a scrub every
//! `--scrub-interval`, each one run at a time and all stopped by one
//! cancellation token.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Healer;

/// The longest a restarted peer waits before its first reference audit:
/// a peer that was away is the one most likely to hold references whose
/// release it missed.
const FIRST_AUDIT_WITHIN: Duration = Duration::from_secs(60);

impl Healer {
    /// Starts the healing loops on `tasks`; they stop when `cancel` is
    /// cancelled (a pass under way is dropped: every step of one is safe
    /// to cut off).
    pub fn spawn_loops(&self, tasks: &TaskTracker, cancel: &CancellationToken) {
        let repair = self.clone();
        let interval = self.config.repair_interval;
        tasks.spawn(every(interval, interval, cancel.clone(), move || {
            let repair = repair.clone();
            async move {
                match repair.repair_pass().await {
                    Ok(figures) if figures.under_replicated > 0 => {
                        tracing::info!(?figures, "repair pass sent missing copies");
                    }
                    Ok(figures) => tracing::debug!(?figures, "repair pass"),
                    Err(error) => tracing::warn!(%error, "repair pass failed; retrying later"),
                }
            }
        }));

        let audit = self.clone();
        let interval = self.audit_interval;
        tasks.spawn(every(
            interval.min(FIRST_AUDIT_WITHIN),
            interval,
            cancel.clone(),
            move || {
                let audit = audit.clone();
                async move {
                    // A reference younger than one interval may belong to
                    // an upload still on its way; the next pass sees it.
                    match audit.audit_references(interval).await {
                        Ok(report) if report.released > 0 => {
                            tracing::info!(?report, "audited chunk references");
                        }
                        Ok(report) => tracing::debug!(?report, "audited chunk references"),
                        Err(error) => {
                            tracing::warn!(%error, "auditing chunk references failed; retrying later");
                        }
                    }
                }
            },
        ));

        let scrub = self.clone();
        let interval = self.config.scrub_interval;
        tasks.spawn(every(interval, interval, cancel.clone(), move || {
            let scrub = scrub.clone();
            async move {
                if let Err(error) = scrub.scrub().await {
                    tracing::warn!(%error, "scrub failed; retrying later");
                }
            }
        }));
    }
}

/// Runs `work` first after `first`, then every `interval`, one run at a
/// time, until `cancel`; a run under way when cancelled is dropped.
async fn every<F, Fut>(first: Duration, interval: Duration, cancel: CancellationToken, mut work: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    tokio::select! {
        () = cancel.cancelled() => return,
        () = tokio::time::sleep(first) => {}
    }
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = work() => {}
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
    }
}
