//! What a file was on the disk it came from: its permission bits and its
//! modification time.
//!
//! They travel in the manifest's optional fields (tag `ATTRIBUTES`), so
//! they replicate and version with the content, and a release that does
//! not know them keeps them as they are. Both are optional: content put
//! from standard input, or through S3 by a client that sends no `mtime`,
//! has neither, and a reader then leaves the local file's own.
//!
//! The text form of a time is decimal seconds since the Unix epoch with up
//! to nine fractional digits (`1700000000.123456789`): the form rclone
//! writes to, and reads from, an S3 object's `mtime` metadata, so one
//! parser serves the HTTP API's headers and S3 alike.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Extensions, tags};
use crate::codec;

/// The permission bits a file's mode may carry (rwx for owner, group and
/// others, plus setuid, setgid and sticky); the file type is not kept.
pub const MODE_BITS: u32 = 0o7777;

const NANOS_PER_SEC: u32 = 1_000_000_000;

/// A file's modification time, to the nanosecond.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Mtime {
    /// Whole seconds since the Unix epoch (negative before it).
    pub secs: i64,
    /// Nanoseconds past `secs`, below one second.
    pub nanos: u32,
}

/// A time's text that is not decimal seconds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a time in seconds since 1970 (like 1700000000.5)")]
pub struct InvalidMtime(String);

/// A mode's text that is not octal permission bits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a file mode in octal (like 0644)")]
pub struct InvalidMode(String);

impl Mtime {
    /// The time `time` stands for, or `None` past what `i64` seconds hold.
    pub fn from_system(time: SystemTime) -> Option<Self> {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Some(Mtime {
                secs: i64::try_from(after.as_secs()).ok()?,
                nanos: after.subsec_nanos(),
            }),
            Err(before) => {
                let before = before.duration();
                let secs = i64::try_from(before.as_secs()).ok()?;
                Some(if before.subsec_nanos() == 0 {
                    Mtime {
                        secs: -secs,
                        nanos: 0,
                    }
                } else {
                    Mtime {
                        secs: -secs - 1,
                        nanos: NANOS_PER_SEC - before.subsec_nanos(),
                    }
                })
            }
        }
    }

    /// The same time as a [`SystemTime`], or `None` where the platform's
    /// clock cannot express it.
    pub fn to_system(self) -> Option<SystemTime> {
        let nanos = Duration::from_nanos(u64::from(self.nanos));
        if self.secs >= 0 {
            UNIX_EPOCH.checked_add(Duration::from_secs(self.secs.unsigned_abs()) + nanos)
        } else {
            UNIX_EPOCH
                .checked_sub(Duration::from_secs(self.secs.unsigned_abs()))?
                .checked_add(nanos)
        }
    }

    /// Parses decimal seconds since the epoch: an optional `-`, digits, and
    /// optionally `.` and up to nine more digits.
    ///
    /// # Errors
    /// [`InvalidMtime`] for anything else, or seconds past `i64`.
    pub fn parse(text: &str) -> Result<Self, InvalidMtime> {
        let invalid = || InvalidMtime(text.chars().take(64).collect());
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || fraction.len() > 9 {
            return Err(invalid());
        }
        let secs: i64 = whole.parse().map_err(|_| invalid())?;
        let mut nanos: u32 = 0;
        for (i, digit) in fraction.bytes().enumerate() {
            nanos += u32::from(digit - b'0') * 10u32.pow(8 - i as u32);
        }
        if !negative {
            return Ok(Mtime { secs, nanos });
        }
        Ok(if nanos == 0 {
            Mtime { secs: -secs, nanos }
        } else {
            Mtime {
                secs: (-secs).checked_sub(1).ok_or_else(invalid)?,
                nanos: NANOS_PER_SEC - nanos,
            }
        })
    }
}

impl fmt::Display for Mtime {
    /// Decimal seconds with nine fractional digits, as [`Mtime::parse`]
    /// reads and rclone writes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A value from elsewhere may hold more nanoseconds than a second.
        let nanos = self.nanos.min(NANOS_PER_SEC - 1);
        if self.secs < 0 && nanos > 0 {
            // -1.25 s is secs -2 plus 0.75 s.
            let whole = (self.secs + 1).unsigned_abs();
            write!(f, "-{whole}.{:09}", NANOS_PER_SEC - nanos)
        } else {
            write!(f, "{}.{:09}", self.secs, nanos)
        }
    }
}

/// Parses permission bits in octal (`644`, `0644`, `0o644`).
///
/// # Errors
/// [`InvalidMode`] for anything else, or bits beyond [`MODE_BITS`].
pub fn parse_mode(text: &str) -> Result<u32, InvalidMode> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= MODE_BITS && !digits.starts_with('+') => Ok(mode),
        _ => Err(InvalidMode(text.chars().take(64).collect())),
    }
}

/// Formats permission bits as four octal digits (`0644`).
pub fn format_mode(mode: u32) -> String {
    format!("{:04o}", mode & MODE_BITS)
}

/// A file's mode and modification time, each if known.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileAttributes {
    /// Permission bits (at most [`MODE_BITS`]).
    pub mode: Option<u32>,
    /// Modification time.
    pub mtime: Option<Mtime>,
}

impl FileAttributes {
    /// The attributes stored in `extensions`; none for a file written
    /// without them, or with a value no reader could use.
    pub fn of(extensions: &Extensions) -> Self {
        extensions
            .get(tags::ATTRIBUTES)
            .and_then(|raw| codec::decode::<FileAttributes>(raw).ok())
            .unwrap_or_default()
            .checked()
    }

    /// The attributes without any value no reader could use (bits beyond
    /// [`MODE_BITS`], a fraction of a second past one second): for values
    /// that came from another peer.
    #[must_use]
    pub fn checked(self) -> Self {
        FileAttributes {
            mode: self.mode.filter(|&m| m <= MODE_BITS),
            mtime: self.mtime.filter(|t| t.nanos < NANOS_PER_SEC),
        }
    }

    /// Stores the attributes in `extensions` (nothing, if none is known).
    pub fn store(&self, extensions: &mut Extensions) {
        if self.is_empty() {
            extensions.remove(tags::ATTRIBUTES);
        } else if let Ok(raw) = codec::encode(self) {
            extensions.set(tags::ATTRIBUTES, raw);
        }
    }

    /// Whether neither is known.
    pub fn is_empty(&self) -> bool {
        self.mode.is_none() && self.mtime.is_none()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn times_read_as_rclone_writes_them() {
        let t = Mtime::parse("1700000000.123456789").unwrap();
        assert_eq!(
            t,
            Mtime {
                secs: 1_700_000_000,
                nanos: 123_456_789
            }
        );
        assert_eq!(t.to_string(), "1700000000.123456789");
        assert_eq!(Mtime::parse("1700000000").unwrap().nanos, 0);
        assert_eq!(Mtime::parse("1.5").unwrap().nanos, 500_000_000);
        let before = Mtime::parse("-1.25").unwrap();
        assert_eq!(
            before,
            Mtime {
                secs: -2,
                nanos: 750_000_000
            }
        );
        assert_eq!(before.to_string(), "-1.250000000");
        for bad in [
            "",
            ".5",
            "1.1234567890",
            "1e9",
            "+1",
            "1.-5",
            "x",
            "99999999999999999999",
        ] {
            assert!(Mtime::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn modes_are_octal_permission_bits() {
        assert_eq!(parse_mode("644").unwrap(), 0o644);
        assert_eq!(parse_mode("0755").unwrap(), 0o755);
        assert_eq!(parse_mode("0o4755").unwrap(), 0o4755);
        assert_eq!(format_mode(0o644), "0644");
        for bad in ["", "8", "100644", "-1", "+644", "rw-r--r--"] {
            assert!(parse_mode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn attributes_round_trip_through_the_manifest_fields() {
        let attributes = FileAttributes {
            mode: Some(0o640),
            mtime: Some(Mtime {
                secs: 1_600_000_000,
                nanos: 1,
            }),
        };
        let mut extensions = Extensions::none();
        attributes.store(&mut extensions);
        assert_eq!(FileAttributes::of(&extensions), attributes);
        FileAttributes::default().store(&mut extensions);
        assert!(extensions.is_empty(), "no attributes take no room");
    }

    proptest! {
        #[test]
        fn text_and_system_times_round_trip(secs in -10_000_000_000i64..10_000_000_000, nanos in 0u32..NANOS_PER_SEC) {
            let t = Mtime { secs, nanos };
            prop_assert_eq!(Mtime::parse(&t.to_string()).unwrap(), t);
            prop_assert_eq!(Mtime::from_system(t.to_system().unwrap()).unwrap(), t);
        }

        #[test]
        fn any_stored_time_formats(secs in any::<i64>(), nanos in any::<u32>()) {
            let _ = Mtime { secs, nanos }.to_string();
        }

        #[test]
        fn no_text_makes_the_parsers_panic(text in ".{0,40}") {
            let _ = Mtime::parse(&text);
            let _ = parse_mode(&text);
        }
    }
}
