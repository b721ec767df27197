//! The failure detector's timings, tuned by default for a LAN.

use std::time::Duration;

/// Timings of probing, suspicion and announcements. The defaults declare a
/// killed peer dead within about 2 s and a hung one within about 3.5 s on
/// a LAN, while giving a slow but healthy peer several chances to answer or
/// refute. Shorter probe timeouts detect faster but, on two loaded cores,
/// made healthy peers miss probes and be suspected; the suspicion window
/// only matters once a suspicion exists, and one second was enough for
/// every suspected healthy peer to refute under that load.
#[derive(Debug, Clone, PartialEq)]
pub struct GossipConfig {
    /// How often a peer probes one member it picks in turn (default 1 s).
    pub probe_interval: Duration,
    /// How long a direct probe may take before others are asked to try
    /// (default 500 ms).
    pub probe_timeout: Duration,
    /// How many other members are asked to probe a member that did not
    /// answer directly (default 3).
    pub indirect_probes: usize,
    /// The shortest time a member stays suspect before it is declared dead,
    /// reached once enough other peers independently suspect it too
    /// (default 1 s). A lone suspicion lasts [`Self::suspicion_max_factor`]
    /// times as long.
    pub suspicion_timeout: Duration,
    /// How much longer than `suspicion_timeout` an unconfirmed suspicion
    /// lasts (default 3).
    pub suspicion_max_factor: u32,
    /// How many independent confirmations bring a suspicion down to
    /// `suspicion_timeout` (default 2).
    pub suspicion_confirmations: usize,
    /// How often a peer announces itself in a swarm of up to ten; larger
    /// swarms stretch it in proportion, so each peer hears about ten
    /// announcements per interval whatever the size (default 2 s).
    pub announce_interval: Duration,
    /// How often a peer tries to reconnect to one member it holds dead, so
    /// that a healed partition merges again (default 30 s).
    pub reconnect_interval: Duration,
    /// How long a dead member stays in the table before it is forgotten
    /// (default 24 h).
    pub dead_retention: Duration,
}

impl Default for GossipConfig {
    fn default() -> Self {
        Self {
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            indirect_probes: 3,
            suspicion_timeout: Duration::from_secs(1),
            suspicion_max_factor: 3,
            suspicion_confirmations: 2,
            announce_interval: Duration::from_secs(2),
            reconnect_interval: Duration::from_secs(30),
            dead_retention: Duration::from_secs(24 * 3600),
        }
    }
}

/// Timings that do not make sense, each naming its command-line flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GossipConfigError {
    /// A period or timeout of zero.
    #[error("{flag} must be greater than zero")]
    Zero {
        /// The flag that sets it.
        flag: &'static str,
    },
    /// A period or timeout longer than an hour.
    #[error("{flag} must be at most one hour")]
    TooLong {
        /// The flag that sets it.
        flag: &'static str,
    },
    /// A probe allowed as long as the period between probes, or longer.
    #[error("--probe-timeout must be shorter than --probe-interval")]
    ProbeTimeout,
}

impl GossipConfig {
    /// Checks that the timings make sense together.
    ///
    /// # Errors
    /// [`GossipConfigError`] naming the offending command-line flag.
    pub fn validate(&self) -> Result<(), GossipConfigError> {
        let positive = [
            (self.probe_interval, "--probe-interval"),
            (self.probe_timeout, "--probe-timeout"),
            (self.suspicion_timeout, "--suspicion-timeout"),
            (self.announce_interval, "--announce-interval"),
        ];
        for (value, flag) in positive {
            if value.is_zero() {
                return Err(GossipConfigError::Zero { flag });
            }
            if value > Duration::from_secs(3600) {
                return Err(GossipConfigError::TooLong { flag });
            }
        }
        if self.probe_timeout >= self.probe_interval {
            return Err(GossipConfigError::ProbeTimeout);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_out_of_range_name_their_flag() {
        GossipConfig::default().validate().unwrap();
        let zero = GossipConfig {
            suspicion_timeout: Duration::ZERO,
            ..GossipConfig::default()
        };
        assert_eq!(
            zero.validate(),
            Err(GossipConfigError::Zero {
                flag: "--suspicion-timeout"
            })
        );
        let slow = GossipConfig {
            announce_interval: Duration::from_secs(3601),
            ..GossipConfig::default()
        };
        assert_eq!(
            slow.validate().unwrap_err().to_string(),
            "--announce-interval must be at most one hour"
        );
        let late = GossipConfig {
            probe_timeout: Duration::from_secs(1),
            ..GossipConfig::default()
        };
        assert_eq!(late.validate(), Err(GossipConfigError::ProbeTimeout));
    }
}
