//! The words of every report: counts with their nouns (`1 idle race`, `2 idle races`),
//! thousands separators (`623,503 packets`), durations on a human scale (`850 µs`,
//! `4.21 s`, `3 d 12 h 33 min`) and wall-clock times that say their zone (always UTC:
//! `2026-11-20 22:28:49.123 UTC`).
//!
//! These are for prose and tables read by people: the terminal, Markdown and HTML reports
//! and the prose fields of the JSON (headline, caveats, sentences). Numbers that programs
//! read (JSON numbers, frame numbers in Wireshark filters, ports) are never written
//! through [`count`].

use crate::time::Timestamp;

/// A count with thousands separators: `623,503`, `1,000,000`, `999`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count and its noun, singular for exactly one: `plural(1, "idle race", "idle races")`
/// is `1 idle race`, `plural(1234, …)` is `1,234 idle races`. The noun may carry its verb
/// (`"request was"`, `"requests were"`).
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// A count and a regular noun (plural in `s`): `things(1, "connection")` is
/// `1 connection`, `things(2, "connection")` is `2 connections`.
pub fn things(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{} {noun}s", count(n))
    }
}

/// `one` for exactly one, else `many` (for the verb after a count: `was`/`were`).
pub fn agree<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// A duration given in milliseconds, on the scale of [`duration_ns`] (`301 ms`, `4.21 s`,
/// `6 min 5 s`, `3 d 12 h 33 min`). Not a number (or beyond ±292 years) is said as such.
pub fn duration_ms(ms: f64) -> String {
    let ns = (ms * 1e6).round();
    if ns.is_nan() {
        return "an unknown time".to_string();
    }
    if ns.abs() >= i64::MAX as f64 {
        return format!("{}more than 292 years", if ns < 0.0 { "-" } else { "" });
    }
    duration_ns(ns as i64)
}

/// A duration the way people read it, about three significant digits below a minute and
/// minutes, hours and days above (each rounded, never shown as `60 s` or `60 min`):
/// `850 ns`, `850 µs`, `12.3 ms`, `312 ms`, `4.21 s`, `59.9 s`, `1 min`, `6 min 5 s`,
/// `1 h`, `23 h 59 min`, `1 d`, `3 d 12 h 33 min`, `400 d`. Parts that are zero are left
/// out after the first (`1 d 5 min`).
pub fn duration_ns(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let a = ns.unsigned_abs();
    // `a` in units of `unit`, rounded to the nearest.
    let round = |unit: u64| (a + unit / 2) / unit;
    const US: u64 = 1_000;
    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;
    if a < US {
        return format!("{sign}{a} ns");
    }
    if round(US) < 1_000 {
        return format!("{sign}{} µs", round(US));
    }
    // Tenths of a millisecond, below 100 ms.
    let tenths_ms = round(MS / 10);
    if tenths_ms < 1_000 {
        return format!("{sign}{}.{} ms", tenths_ms / 10, tenths_ms % 10);
    }
    if round(MS) < 1_000 {
        return format!("{sign}{} ms", round(MS));
    }
    let hundredths_s = round(S / 100);
    if hundredths_s < 1_000 {
        return format!("{sign}{}.{:02} s", hundredths_s / 100, hundredths_s % 100);
    }
    let tenths_s = round(S / 10);
    if tenths_s < 600 {
        return format!("{sign}{}.{} s", tenths_s / 10, tenths_s % 10);
    }
    // A minute or more: whole seconds below an hour, whole minutes above.
    let secs = round(S);
    let parts: Vec<(u64, &str)> = if secs < 3_600 {
        vec![(secs / 60, "min"), (secs % 60, "s")]
    } else {
        let mins = round(60 * S);
        if mins < 24 * 60 {
            vec![(mins / 60, "h"), (mins % 60, "min")]
        } else {
            vec![
                (mins / (24 * 60), "d"),
                (mins / 60 % 24, "h"),
                (mins % 60, "min"),
            ]
        }
    };
    let mut out = sign.to_string();
    for (i, (n, unit)) in parts.iter().enumerate() {
        if i > 0 && *n == 0 {
            continue;
        }
        if out.len() > sign.len() {
            out.push(' ');
        }
        out.push_str(&format!("{} {unit}", count(*n)));
    }
    out
}

/// A wall-clock time with its zone, to the millisecond: `2026-11-20 22:28:49.123 UTC`.
/// Every report says times in UTC, whatever the zone of the machine that wrote it, so
/// that a ticket reads the same everywhere.
pub fn wall_clock(t: Timestamp) -> String {
    format!("{} UTC", t.to_datetime().format("%Y-%m-%d %H:%M:%S%.3f"))
}

/// The time of day with its zone, to the millisecond: `22:28:49.123 UTC` (for lines that
/// follow each other within a day, as live mode prints them).
pub fn time_of_day(t: Timestamp) -> String {
    format!("{} UTC", t.to_datetime().format("%H:%M:%S%.3f"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(623_503), "623,503");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn plurals() {
        assert_eq!(plural(1, "idle race", "idle races"), "1 idle race");
        assert_eq!(plural(2, "idle race", "idle races"), "2 idle races");
        assert_eq!(plural(0, "idle race", "idle races"), "0 idle races");
        assert_eq!(plural(1, "request was", "requests were"), "1 request was");
        assert_eq!(things(1, "connection"), "1 connection");
        assert_eq!(things(623_503, "packet"), "623,503 packets");
        assert_eq!(agree(1, "was", "were"), "was");
        assert_eq!(agree(3, "was", "were"), "were");
    }

    #[test]
    fn durations_below_a_minute_as_today() {
        assert_eq!(duration_ns(0), "0 ns");
        assert_eq!(duration_ns(850), "850 ns");
        assert_eq!(duration_ns(850_000), "850 µs");
        assert_eq!(duration_ns(12_340_000), "12.3 ms");
        assert_eq!(duration_ns(312_400_000), "312 ms");
        assert_eq!(duration_ns(4_210_000_000), "4.21 s");
        assert_eq!(duration_ns(-2_000_000), "-2.0 ms");
        assert_eq!(duration_ms(301.0), "301 ms");
        assert_eq!(duration_ms(0.05), "50 µs");
        assert_eq!(duration_ms(27_140.0), "27.1 s");
        assert_eq!(duration_ms(59_900.0), "59.9 s");
    }

    #[test]
    fn durations_never_round_up_to_the_next_unit_s_limit() {
        assert_eq!(duration_ns(999_600), "1.0 ms");
        assert_eq!(duration_ns(99_960_000), "100 ms");
        assert_eq!(duration_ns(999_600_000), "1.00 s");
        assert_eq!(duration_ns(9_999_000_000), "10.0 s");
        assert_eq!(duration_ms(59_960.0), "1 min");
        assert_eq!(duration_ms(3_599_600.0), "1 h");
    }

    #[test]
    fn durations_in_minutes_hours_and_days() {
        let s = |s: f64| duration_ms(s * 1000.0);
        assert_eq!(s(60.0), "1 min");
        assert_eq!(s(365.0), "6 min 5 s");
        assert_eq!(s(3_599.0), "59 min 59 s");
        assert_eq!(s(3_600.0), "1 h");
        assert_eq!(s(3_660.0), "1 h 1 min");
        assert_eq!(s(86_340.0), "23 h 59 min");
        assert_eq!(s(86_400.0), "1 d");
        assert_eq!(s(86_700.0), "1 d 5 min");
        // The user's 3.5 days, once "5073 min 49 s".
        assert_eq!(s(5_073.0 * 60.0 + 49.0), "3 d 12 h 34 min");
        assert_eq!(s(400.0 * 86_400.0), "400 d");
        assert_eq!(s(-90.0), "-1 min 30 s");
        assert_eq!(duration_ns(i64::MIN), "-106,751 d 23 h 47 min");
        assert_eq!(duration_ms(f64::NAN), "an unknown time");
        assert_eq!(duration_ms(f64::INFINITY), "more than 292 years");
    }

    #[test]
    fn times_say_their_zone() {
        let t = Timestamp(1_795_213_729_123_456_789);
        assert_eq!(wall_clock(t), "2026-11-20 22:28:49.123 UTC");
        assert_eq!(time_of_day(t), "22:28:49.123 UTC");
    }
}
