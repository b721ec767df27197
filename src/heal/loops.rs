//! What runs healing: a repair pass as soon as the ring changes shape (a
//! member joining, leaving, going down, coming back, or passing
//! `--rereplicate-after`) and every `--repair-interval` as a safety net; a
//! reference audit every `--audit-interval`; a scrub every
//! `--scrub-interval`. Each runs one at a time and all stop on one
//! cancellation token.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Healer;

/// How often placement is compared with the last one seen. A member
/// passing `--rereplicate-after` changes placement by the passing of time
/// alone, with no event to wait on, so it is looked at this often; working
/// out placement is cheap and cached.
const SHAPE_CHECK: Duration = Duration::from_millis(250);

/// How long a pass waits after the change that woke it, so that the
/// changes one event brings (several peers noticing the same death, say)
/// start one pass rather than several.
const SETTLE: Duration = Duration::from_millis(200);

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
        let wake = Arc::new(Notify::new());
        tasks.spawn(watch_shape(self.clone(), Arc::clone(&wake), cancel.clone()));
        tasks.spawn(every_or_woken(interval, wake, cancel.clone(), move || {
            let repair = repair.clone();
            async move {
                match repair.repair_pass().await {
                    Ok(figures) if figures.under_replicated > 0 => {
                        tracing::info!(?figures, "repair pass sent missing copies");
                    }
                    Ok(figures) => tracing::debug!(?figures, "repair pass"),
                    Err(error) => tracing::warn!(%error, "repair pass failed; retrying later"),
                }
                // Copies found lacking are sent on a second look.
                let apart = repair.config.second_look_after;
                repair.counters.awaiting_second_look(apart).then_some(apart)
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

/// Wakes `wake` whenever placement's shape differs from the last one seen,
/// the first one included (a peer that just started has catching up to do).
async fn watch_shape(healer: Healer, wake: Arc<Notify>, cancel: CancellationToken) {
    let mut last = None;
    let mut ticks = tokio::time::interval(SHAPE_CHECK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let shape = healer.cluster.placement().shape();
        if last.as_ref() != Some(&shape) {
            tracing::debug!(
                ring = shape.0.len(),
                up = shape.1.len(),
                "placement changed; waking repair"
            );
            last = Some(shape);
            wake.notify_one();
        }
    }
}

/// Runs `work` whenever `wake` is notified (after [`SETTLE`]) and at the
/// latest every `interval`, or sooner when the last run asked to run
/// again after a shorter time; one run at a time, until `cancel`. A wake
/// during a run is kept and starts the next run right after it, so a change
/// that arrives mid-pass is never missed.
async fn every_or_woken<F, Fut>(
    interval: Duration,
    wake: Arc<Notify>,
    cancel: CancellationToken,
    mut work: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Duration>>,
{
    let mut next = interval;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(next) => {}
            () = wake.notified() => {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(SETTLE) => {}
                }
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            again = work() => next = again.map_or(interval, |soon| soon.min(interval)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_wake_runs_work_at_once_and_one_during_a_run_runs_it_again() {
        let wake = Arc::new(Notify::new());
        let cancel = CancellationToken::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(every_or_woken(
            Duration::from_secs(30),
            Arc::clone(&wake),
            cancel.clone(),
            {
                let runs = Arc::clone(&runs);
                move || {
                    let runs = Arc::clone(&runs);
                    async move {
                        let run = runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        // The third run asks for a follow-up soon.
                        (run == 2).then_some(Duration::from_secs(3))
                    }
                }
            },
        ));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            0,
            "nothing runs before a wake or the interval"
        );

        wake.notify_one();
        tokio::time::sleep(SETTLE + Duration::from_millis(10)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "a wake starts a run after settling"
        );

        // Woken mid-run: the next run follows the first without waiting
        // for the interval.
        wake.notify_one();
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);

        tokio::time::sleep(Duration::from_secs(31)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "the interval still runs it");
        tokio::time::sleep(Duration::from_secs(4) + Duration::from_millis(10)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            4,
            "a run can ask for a follow-up"
        );
        cancel.cancel();
        task.await.unwrap();
    }
}
