//! Versions of a file: a hybrid logical clock plus the writer's peer id.
//!
//! Every write of a name (a put or a delete) gets a [`Version`]. Versions are
//! totally ordered — by clock, then by writer — so any two peers that see
//! the same set of versions pick the same winner without talking to each
//! other (last writer wins). The clock is hybrid: it follows wall time when
//! clocks agree, and never goes backwards or repeats when they do not,
//! because every peer folds the versions it observes into its own clock.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A hybrid-logical-clock reading: milliseconds since the Unix epoch in the
/// high 48 bits, a logical counter in the low 16.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Hlc(pub u64);

const LOGICAL_BITS: u32 = 16;

impl Hlc {
    /// The clock reading for wall time `ms` with a zero counter.
    pub fn from_millis(ms: u64) -> Self {
        Hlc(ms << LOGICAL_BITS)
    }

    /// The wall-clock part, in milliseconds since the Unix epoch.
    pub fn millis(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }
}

impl fmt::Debug for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Hlc({}+{})",
            self.millis(),
            self.0 & ((1 << LOGICAL_BITS) - 1)
        )
    }
}

/// The version of one write of a name.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Debug)]
pub struct Version {
    /// When the write happened, by the writer's hybrid clock.
    pub hlc: Hlc,
    /// The peer id (base58) of the peer that accepted the write; breaks ties
    /// between writes with the same clock reading.
    pub writer: String,
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.hlc
            .cmp(&other.hlc)
            .then_with(|| self.writer.cmp(&other.writer))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// As text that sorts like the versions themselves: the clock reading as
/// 20 decimal digits, a dash, the writer.
impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:020}-{}", self.hlc.0, self.writer)
    }
}

/// A hybrid logical clock for one peer.
#[derive(Debug, Default)]
pub struct HlcClock {
    last: Mutex<Hlc>,
}

impl HlcClock {
    /// A clock that has observed nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A reading strictly greater than every reading this clock has given or
    /// observed, and not behind the wall clock.
    pub fn now(&self) -> Hlc {
        self.tick(wall_millis())
    }

    /// Like [`HlcClock::now`] with the wall time given, for tests.
    pub fn tick(&self, wall_ms: u64) -> Hlc {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let next = Hlc::from_millis(wall_ms).max(Hlc(last.0.saturating_add(1)));
        *last = next;
        next
    }

    /// Folds in a reading seen elsewhere, so the next [`HlcClock::now`] is
    /// greater than it. A reading more than [`MAX_CLOCK_LEAD`] ahead of this
    /// peer's wall clock is ignored (and `false` returned): one peer with a
    /// wild clock must not drag every other peer's clock along.
    pub fn observe(&self, seen: Hlc) -> bool {
        if !is_plausible(seen) {
            return false;
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if seen > *last {
            *last = seen;
        }
        true
    }
}

/// How far ahead of this peer's wall clock another peer's clock reading may
/// be and still be believed.
pub const MAX_CLOCK_LEAD: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Whether `reading` is no further ahead of the wall clock than
/// [`MAX_CLOCK_LEAD`].
pub fn is_plausible(reading: Hlc) -> bool {
    let lead = u64::try_from(MAX_CLOCK_LEAD.as_millis()).unwrap_or(u64::MAX);
    reading.millis() <= wall_millis().saturating_add(lead)
}

/// Milliseconds since the Unix epoch by the wall clock (0 if the clock is
/// set before 1970, which the hybrid clock then absorbs).
pub fn wall_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_strictly_monotonic_even_when_wall_time_goes_back() {
        let clock = HlcClock::new();
        let a = clock.tick(1_000);
        let b = clock.tick(1_000);
        let c = clock.tick(500);
        assert!(a < b && b < c);
        assert_eq!(c.millis(), 1_000);
        let d = clock.tick(2_000);
        assert_eq!(d, Hlc::from_millis(2_000));
    }

    #[test]
    fn observed_readings_push_the_clock_forward() {
        let clock = HlcClock::new();
        assert!(clock.observe(Hlc::from_millis(9_000)));
        assert!(clock.tick(1_000) > Hlc::from_millis(9_000));
    }

    #[test]
    fn readings_from_far_in_the_future_are_ignored() {
        let clock = HlcClock::new();
        assert!(!clock.observe(Hlc(u64::MAX)));
        let now = clock.now();
        assert!(now.millis() <= wall_millis() + 1);
    }

    #[test]
    fn versions_order_by_clock_then_writer() {
        let v = |t, w: &str| Version {
            hlc: Hlc(t),
            writer: w.to_owned(),
        };
        assert!(v(1, "b") < v(2, "a"));
        assert!(v(2, "a") < v(2, "b"));
        assert_eq!(v(3, "a").cmp(&v(3, "a")), Ordering::Equal);
    }
}
