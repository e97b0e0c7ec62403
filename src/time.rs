//! Capture timestamps and durations.
//!
//! Every packet carries a [`Timestamp`]: nanoseconds since the Unix epoch, whatever the
//! resolution the capture file used (pcap micro/nanoseconds, pcapng `if_tsresol`). Durations
//! between packets are plain `i64` nanoseconds wrapped in [`Nanos`] so that reports can print
//! them the way people read them ("312 ms", "4.2 s").

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt;

/// A packet time: nanoseconds since the Unix epoch (UTC).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Builds a timestamp from seconds and a sub-second fraction in `units_per_sec` units.
    pub fn from_parts(secs: i64, frac: u64, units_per_sec: u64) -> Timestamp {
        let nanos = if units_per_sec == 1_000_000_000 {
            frac as i64
        } else {
            ((frac as u128 * 1_000_000_000u128) / units_per_sec.max(1) as u128) as i64
        };
        Timestamp(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
    }

    /// Time elapsed from `earlier` to `self` (negative when `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> Nanos {
        Nanos(self.0.saturating_sub(earlier.0))
    }

    /// Seconds since the epoch as a float, for JSON.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// The timestamp as a UTC date and time.
    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.0)
    }

    /// RFC 3339 text with microseconds, e.g. `2023-06-02T09:44:20.123456Z`.
    pub fn rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

/// A signed duration in nanoseconds.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Nanos(pub i64);

impl Nanos {
    /// Milliseconds as a float (for JSON and estimates).
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
    /// Seconds as a float.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

impl fmt::Display for Nanos {
    /// Human scale: `850 µs`, `12.3 ms`, `312 ms`, `4.21 s`, `6 min 5 s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        let sign = if n < 0 { "-" } else { "" };
        let a = n.unsigned_abs();
        if a < 1_000 {
            write!(f, "{sign}{a} ns")
        } else if a < 1_000_000 {
            write!(f, "{sign}{} µs", a / 1_000)
        } else if a < 100_000_000 {
            write!(f, "{sign}{:.1} ms", a as f64 / 1e6)
        } else if a < 1_000_000_000 {
            write!(f, "{sign}{} ms", (a as f64 / 1e6).round() as u64)
        } else if a < 60_000_000_000 {
            write!(f, "{sign}{:.2} s", a as f64 / 1e9)
        } else {
            let s = a / 1_000_000_000;
            write!(f, "{sign}{} min {} s", s / 60, s % 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_in_any_resolution() {
        assert_eq!(Timestamp::from_parts(1, 5, 1_000_000).0, 1_000_005_000);
        assert_eq!(Timestamp::from_parts(1, 5, 1_000_000_000).0, 1_000_000_005);
        assert_eq!(Timestamp::from_parts(0, 1, 1024).0, 976_562);
    }

    #[test]
    fn human_durations() {
        assert_eq!(Nanos(850_000).to_string(), "850 µs");
        assert_eq!(Nanos(12_340_000).to_string(), "12.3 ms");
        assert_eq!(Nanos(312_400_000).to_string(), "312 ms");
        assert_eq!(Nanos(4_210_000_000).to_string(), "4.21 s");
        assert_eq!(Nanos(365_000_000_000).to_string(), "6 min 5 s");
        assert_eq!(Nanos(-2_000_000).to_string(), "-2.0 ms");
    }

    #[test]
    fn rfc3339_in_utc() {
        assert_eq!(
            Timestamp(1_685_699_060_123_456_789).rfc3339(),
            "2023-06-02T09:44:20.123456Z"
        );
    }
}
