//! Narrowing: which frames the analysis takes at all (`--since`, `--until` and a capture
//! filter).
//!
//! A frame outside the time window or rejected by the filter is counted (frames read, frames
//! matched) and then dropped before decoding, exactly as if the capture had not held it: a
//! connection that crosses a boundary of the window is seen in part, and the report says the
//! analysis was narrowed. The second pass (ladders, `--extract`) applies the same rule, so
//! that it finds the same packets.

use crate::source::RawPacket;
use crate::time::Timestamp;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// One end of the time window, as given.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TimeBound {
    /// A point in time.
    At(Timestamp),
    /// This many nanoseconds after the capture's first frame (`+90s`).
    FromStart(i64),
    /// A time of day (nanoseconds since midnight, UTC) on the day of the capture's first
    /// frame (`14:05`).
    TimeOfDay(i64),
}

impl TimeBound {
    /// Reads `+DURATION` (after the first frame: `+90s`, `+5m`, `+1h30m`, `+250ms`; a bare
    /// number is seconds), a date and time (RFC 3339, or `YYYY-MM-DD HH:MM[:SS[.frac]]` in
    /// UTC, with an optional `Z` or `±HH:MM`), a time of day (`HH:MM[:SS[.frac]]`, UTC, on
    /// the capture's first day), or seconds since the epoch (`1763677729.5`, as Wireshark's
    /// `frame.time_epoch`).
    pub fn parse(s: &str) -> Result<TimeBound, String> {
        let t = s.trim();
        if let Some(rel) = t.strip_prefix('+') {
            return parse_duration(rel)
                .map(TimeBound::FromStart)
                .ok_or_else(|| {
                    format!("{s:?}: not a time after the start (e.g. +90s, +5m, +1h30m, +250ms)")
                });
        }
        if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
            return nanos(dt.timestamp(), dt.timestamp_subsec_nanos()).ok_or_else(|| range(s));
        }
        let spaced = t.replacen('T', " ", 1);
        // An offset after a date and time written with a space.
        for f in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M%:z"] {
            if let Ok(dt) = chrono::DateTime::parse_from_str(&spaced, f) {
                return nanos(dt.timestamp(), dt.timestamp_subsec_nanos()).ok_or_else(|| range(s));
            }
        }
        let utc = spaced
            .strip_suffix(['Z', 'z'])
            .unwrap_or(&spaced)
            .trim_end();
        for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
            if let Ok(dt) = NaiveDateTime::parse_from_str(utc, f) {
                let dt = dt.and_utc();
                return nanos(dt.timestamp(), dt.timestamp_subsec_nanos()).ok_or_else(|| range(s));
            }
        }
        if let Ok(d) = NaiveDate::parse_from_str(utc, "%Y-%m-%d") {
            let dt = d.and_time(NaiveTime::MIN).and_utc();
            return nanos(dt.timestamp(), 0).ok_or_else(|| range(s));
        }
        for f in ["%H:%M:%S%.f", "%H:%M"] {
            if let Ok(tod) = NaiveTime::parse_from_str(utc, f) {
                let since_midnight = tod.signed_duration_since(NaiveTime::MIN);
                return since_midnight
                    .num_nanoseconds()
                    .map(TimeBound::TimeOfDay)
                    .ok_or_else(|| range(s));
            }
        }
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            if let Ok(secs) = t.parse::<f64>() {
                let ns = secs * 1e9;
                if ns.is_finite() && ns < i64::MAX as f64 {
                    return Ok(TimeBound::At(Timestamp(ns as i64)));
                }
            }
        }
        Err(format!(
            "{s:?} is not a time: give a date and time (2026-11-20T22:28:50Z, \
             \"2026-11-20 22:28:50\" in UTC, or with +01:00), a time of day in UTC on the \
             capture's first day (22:28:50), a time after the capture's first frame (+90s, \
             +5m), or seconds since the epoch"
        ))
    }

    /// The point in time, once the capture's first frame is known.
    pub fn resolve(self, first: Timestamp) -> Timestamp {
        match self {
            TimeBound::At(t) => t,
            TimeBound::FromStart(ns) => Timestamp(first.0.saturating_add(ns)),
            TimeBound::TimeOfDay(ns) => {
                let day = first.0.div_euclid(DAY) * DAY;
                Timestamp(day.saturating_add(ns))
            }
        }
    }
}

const DAY: i64 = 86_400 * 1_000_000_000;

fn range(s: &str) -> String {
    format!("{s:?}: out of the range of capture times")
}

fn nanos(secs: i64, sub: u32) -> Option<TimeBound> {
    secs.checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(sub as i64))
        .map(|n| TimeBound::At(Timestamp(n)))
}

/// `90`, `90s`, `1.5s`, `250ms`, `5m`, `1h30m`, `2d`: nanoseconds.
fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        if n == 0 {
            return None;
        }
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "" | "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "m" | "min" => 60e9,
            "h" => 3600e9,
            "d" => 86_400e9,
            _ => return None,
        };
        rest = &rest[u..];
        total += value * scale;
    }
    (total.is_finite() && total < i64::MAX as f64).then_some(total as i64)
}

/// A capture filter: whether a frame (its pcap link type and bytes) is kept.
pub type FrameFilter = Box<dyn Fn(u32, &[u8]) -> bool + Send + Sync>;

/// What narrows the analysis: a time window and a capture filter.
#[derive(Default)]
pub struct Narrow {
    /// Frames before this are left out.
    pub since: Option<TimeBound>,
    /// Frames after this are left out.
    pub until: Option<TimeBound>,
    /// Frames this rejects are left out.
    pub filter: Option<FrameFilter>,
    /// The filter as given (for the report).
    pub filter_text: Option<String>,
}

impl Narrow {
    /// True when nothing narrows the analysis.
    pub fn is_empty(&self) -> bool {
        self.since.is_none() && self.until.is_none() && self.filter.is_none()
    }

    /// The time window, resolved against the capture's first frame.
    pub fn resolve(&self, first: Timestamp) -> Window {
        Window {
            since: self.since.map(|b| b.resolve(first)),
            until: self.until.map(|b| b.resolve(first)),
        }
    }

    /// Whether the analysis takes this frame: inside `window` (this narrowing's, resolved)
    /// and kept by the filter.
    #[inline]
    pub fn keeps(&self, window: Window, p: &RawPacket<'_>) -> bool {
        window.since.is_none_or(|s| p.ts >= s)
            && window.until.is_none_or(|u| p.ts <= u)
            && self.filter.as_ref().is_none_or(|f| f(p.linktype, p.data))
    }
}

/// What narrowed an analysis, as the report states it (JSON: `summary.narrowed`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Narrowed {
    /// Frames before this time were left out.
    pub since: Option<Timestamp>,
    /// Frames after this time were left out.
    pub until: Option<Timestamp>,
    /// The capture filter, as given.
    pub filter: Option<String>,
}

impl Narrow {
    /// What the report says of this narrowing, for a capture whose first frame is `first`.
    pub fn described(&self, first: Option<Timestamp>) -> Option<Narrowed> {
        if self.is_empty() {
            return None;
        }
        let w = first.map(|f| self.resolve(f));
        Some(Narrowed {
            since: w.and_then(|w| w.since),
            until: w.and_then(|w| w.until),
            filter: self.filter_text.clone(),
        })
    }
}

/// The time window of a capture whose first frame is known.
#[derive(Clone, Copy, Debug, Default)]
pub struct Window {
    /// The first time kept.
    pub since: Option<Timestamp>,
    /// The last time kept.
    pub until: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn reads_every_form() {
        assert_eq!(TimeBound::parse("+90s"), Ok(TimeBound::FromStart(90 * S)));
        assert_eq!(TimeBound::parse("+90"), Ok(TimeBound::FromStart(90 * S)));
        assert_eq!(
            TimeBound::parse("+1h30m"),
            Ok(TimeBound::FromStart(5400 * S))
        );
        assert_eq!(TimeBound::parse("+250ms"), Ok(TimeBound::FromStart(S / 4)));
        let at = TimeBound::At(Timestamp(1_763_677_730 * S));
        assert_eq!(TimeBound::parse("2025-11-20T22:28:50Z"), Ok(at));
        assert_eq!(TimeBound::parse("2025-11-20 22:28:50"), Ok(at));
        assert_eq!(TimeBound::parse("2025-11-20T23:28:50+01:00"), Ok(at));
        assert_eq!(TimeBound::parse("2025-11-20 23:28:50+01:00"), Ok(at));
        assert_eq!(TimeBound::parse("1763677730"), Ok(at));
        assert_eq!(
            TimeBound::parse("2025-11-20 22:28:50.5"),
            Ok(TimeBound::At(Timestamp(1_763_677_730 * S + S / 2)))
        );
        assert_eq!(
            TimeBound::parse("22:28"),
            Ok(TimeBound::TimeOfDay((22 * 3600 + 28 * 60) * S))
        );
        for bad in ["", "+", "+5x", "yesterday", "25:00", "2025-13-01", "+-5s"] {
            assert!(TimeBound::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn resolves_against_the_first_frame() {
        let first = Timestamp(1_763_677_729 * S + 123);
        assert_eq!(
            TimeBound::FromStart(S).resolve(first),
            Timestamp(first.0 + S)
        );
        // 22:28:49 UTC on that day
        let tod = TimeBound::parse("22:30").unwrap().resolve(first);
        assert_eq!(
            tod,
            Timestamp((1_763_677_729 - 22 * 3600 - 28 * 60 - 49 + 22 * 3600 + 30 * 60) * S)
        );
    }
}
