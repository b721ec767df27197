//! Local health (Lifeguard): whether this peer itself seems to be the slow
//! one.
//!
//! A peer that is overloaded or starved of CPU misses answers and then
//! blames others for its own lateness. Lifeguard counts the signs of that —
//! relays that stay silent instead of reporting on the target, and rumours
//! that this peer failed — and stretches the peer's probe interval and
//! timeouts while they last, so a struggling peer accuses less and gives
//! others more time. Each answered probe eases the score again.

use std::time::Duration;

/// The highest local-health score; timeouts stretch by up to this factor
/// plus one.
const MAX_HEALTH_SCORE: u32 = 8;

/// This peer's local-health score.
#[derive(Debug, Default)]
pub(super) struct LocalHealth {
    /// 0 when the peer keeps up, up to [`MAX_HEALTH_SCORE`].
    score: u32,
}

impl LocalHealth {
    /// The score: 0 when this peer keeps up, higher when it seems to lag.
    pub(super) fn score(&self) -> u32 {
        self.score
    }

    /// `base` stretched by the score, for probe intervals and timeouts.
    pub(super) fn stretch(&self, base: Duration) -> Duration {
        base * (1 + self.score)
    }

    /// A sign that this peer is the one lagging.
    pub(super) fn worsen(&mut self) {
        self.score = (self.score + 1).min(MAX_HEALTH_SCORE);
    }

    /// A probe answered in time: a sign that this peer keeps up.
    pub(super) fn improve(&mut self) {
        self.score = self.score.saturating_sub(1);
    }
}
