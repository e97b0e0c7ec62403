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
    /// Builds a timestamp from seconds and a sub-second fraction in `units_per_sec` units,
    /// saturating at the ends of the range (the years 1677 and 2262). Readers of capture
    /// files use [`Timestamp::checked_from_parts`] instead, so that a time out of range is
    /// said rather than clamped.
    pub fn from_parts(secs: i64, frac: u64, units_per_sec: u64) -> Timestamp {
        Timestamp::checked_from_parts(secs, frac, units_per_sec).unwrap_or(if secs < 0 {
            Timestamp(i64::MIN)
        } else {
            Timestamp(i64::MAX)
        })
    }

    /// Seconds and a fraction in `units_per_sec` units as a timestamp, or `None` when the
    /// time lies outside what nanoseconds in an `i64` hold (1677-09-21 to 2262-04-11), or
    /// `units_per_sec` is 0. The fraction may exceed a second (classic pcap files with a
    /// microsecond field of a million or more exist); it is added as it is.
    pub fn checked_from_parts(secs: i64, frac: u64, units_per_sec: u64) -> Option<Timestamp> {
        if units_per_sec == 0 {
            return None;
        }
        // At most 2^64 * 10^9, which a u128 holds.
        let nanos = frac as u128 * 1_000_000_000 / units_per_sec as u128;
        let nanos = i64::try_from(nanos).ok()?;
        secs.checked_mul(1_000_000_000)?
            .checked_add(nanos)
            .map(Timestamp)
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

impl Timestamp {
    /// Writes `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC, microseconds) into `buf` without
    /// allocating: reports carry many timestamps, and chrono's formatter allocates. Years
    /// outside 0000–9999 fall back to [`Timestamp::rfc3339`].
    pub(crate) fn rfc3339_into(self, buf: &mut [u8; 27]) -> bool {
        let secs = self.0.div_euclid(1_000_000_000);
        let micros = (self.0.rem_euclid(1_000_000_000) / 1_000) as u32;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        // Civil date from days since 1970-01-01 (H. Hinnant, "chrono-Compatible Low-Level
        // Date Algorithms").
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + (month <= 2) as i64;
        if !(0..=9999).contains(&year) {
            return false;
        }
        let mut put = |at: usize, v: u32, width: usize| {
            let mut v = v;
            for i in (0..width).rev() {
                buf[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, year as u32, 4);
        put(5, month, 2);
        put(8, day, 2);
        put(11, sod / 3600, 2);
        put(14, sod / 60 % 60, 2);
        put(17, sod % 60, 2);
        put(20, micros, 6);
        for (at, c) in [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
            (26, b'Z'),
        ] {
            buf[at] = c;
        }
        true
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 27];
        if self.rfc3339_into(&mut buf) {
            s.serialize_str(std::str::from_utf8(&buf).expect("ASCII"))
        } else {
            s.serialize_str(&self.rfc3339())
        }
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
    /// Human scale: `850 µs`, `12.3 ms`, `312 ms`, `4.21 s`, `6 min 5 s`, `3 d 12 h 34 min`
    /// (see [`crate::report::words::duration_ns`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::report::words::duration_ns(self.0))
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
    fn parts_out_of_range_are_none_and_never_overflow() {
        // The last representable nanosecond, and one past it, either way.
        let max_s = i64::MAX / 1_000_000_000;
        let max_ns = (i64::MAX % 1_000_000_000) as u64;
        assert_eq!(
            Timestamp::checked_from_parts(max_s, max_ns, 1_000_000_000),
            Some(Timestamp(i64::MAX))
        );
        assert_eq!(
            Timestamp::checked_from_parts(max_s, max_ns + 1, 1_000_000_000),
            None
        );
        assert_eq!(Timestamp::checked_from_parts(max_s + 1, 0, 1_000_000), None);
        assert_eq!(
            Timestamp::checked_from_parts(i64::MIN / 1_000_000_000 - 1, 0, 1),
            None
        );
        assert_eq!(Timestamp::checked_from_parts(i64::MAX, 0, 1), None);
        assert_eq!(Timestamp::checked_from_parts(0, 1, 0), None);
        // A fraction far beyond a second in a coarse unit (this wrapped to a negative time).
        assert_eq!(Timestamp::checked_from_parts(0, u64::MAX, 1), None);
        assert_eq!(
            Timestamp::checked_from_parts(0, u64::MAX, 1 << 63),
            Some(Timestamp(1_999_999_999))
        );
        // The saturating form clamps instead.
        assert_eq!(Timestamp::from_parts(i64::MAX, 0, 1), Timestamp(i64::MAX));
        assert_eq!(Timestamp::from_parts(i64::MIN, 0, 1), Timestamp(i64::MIN));
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
    fn fast_rfc3339_agrees_with_chrono() {
        let mut x: i64 = 0x5DEECE66D;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            // Anywhere from 1900 to about 2147, any nanosecond.
            let t = Timestamp(x.rem_euclid(7_800_000_000_000_000_000) - 2_208_988_800_000_000_000);
            let mut buf = [0u8; 27];
            assert!(t.rfc3339_into(&mut buf));
            assert_eq!(std::str::from_utf8(&buf).unwrap(), t.rfc3339(), "{}", t.0);
        }
        for t in [0, -1, 951_782_400_000_000_000, 4_107_542_399_999_999_999] {
            let mut buf = [0u8; 27];
            assert!(Timestamp(t).rfc3339_into(&mut buf));
            assert_eq!(std::str::from_utf8(&buf).unwrap(), Timestamp(t).rfc3339());
        }
    }

    #[test]
    fn rfc3339_in_utc() {
        assert_eq!(
            Timestamp(1_685_699_060_123_456_789).rfc3339(),
            "2023-06-02T09:44:20.123456Z"
        );
    }
}
