//! When a live capture lost packets: the stretches of time in which libpcap's drop
//! counters grew, kept so that the report can name the verdicts the losses may have
//! changed (see `report::caveats`).

use crate::time::{Nanos, Timestamp};
use serde::Serialize;

/// A stretch of wall-clock time in which a live capture lost packets: libpcap's drop
/// counters (kernel and interface) grew between two readings, at `from` and `to`, which
/// are polled every 250 ms. A connection active then may have lost packets, and its
/// verdict may be wrong or missing.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DropWindow {
    /// The reading before the counters grew.
    pub from: Timestamp,
    /// The reading at which they had grown.
    pub to: Timestamp,
    /// How many packets were lost in it.
    pub dropped: u64,
}

impl DropWindow {
    /// The most windows kept: past it, the last one is stretched to cover the new one, so
    /// the windows still cover every loss (more coarsely).
    pub const MAX: usize = 256;

    /// Adds a loss of `dropped` packets between `from` and `to` to `windows`: joined to the
    /// last window when it touches it or when `windows` is full.
    pub fn record(windows: &mut Vec<DropWindow>, from: Timestamp, to: Timestamp, dropped: u64) {
        if dropped == 0 {
            return;
        }
        let full = windows.len() >= DropWindow::MAX;
        match windows.last_mut() {
            Some(last) if last.to >= from || full => {
                last.to = last.to.max(to);
                last.dropped = last.dropped.saturating_add(dropped);
            }
            _ => windows.push(DropWindow { from, to, dropped }),
        }
    }

    /// Whether a connection whose packets span `first..=last` may have lost packets in the
    /// window: the window starts before `last` plus `slack` (the packets lost may come after
    /// the last one captured, up to the connection's release) and ends after `first`.
    pub fn touches(&self, first: Timestamp, last: Timestamp, slack: Nanos) -> bool {
        self.from.0 <= last.0.saturating_add(slack.0) && self.to >= first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> Timestamp {
        Timestamp(ms * 1_000_000)
    }

    #[test]
    fn touching_readings_make_one_window_and_quiet_ones_none() {
        let mut w = Vec::new();
        DropWindow::record(&mut w, t(0), t(250), 0);
        assert!(w.is_empty());
        DropWindow::record(&mut w, t(250), t(500), 3);
        DropWindow::record(&mut w, t(500), t(750), 4);
        DropWindow::record(&mut w, t(1000), t(1250), 1);
        assert_eq!(
            w,
            [
                DropWindow {
                    from: t(250),
                    to: t(750),
                    dropped: 7
                },
                DropWindow {
                    from: t(1000),
                    to: t(1250),
                    dropped: 1
                },
            ]
        );
    }

    #[test]
    fn a_full_list_stretches_its_last_window() {
        let mut w = Vec::new();
        for i in 0..(DropWindow::MAX as i64 + 10) {
            DropWindow::record(&mut w, t(i * 1000), t(i * 1000 + 250), 1);
        }
        assert_eq!(w.len(), DropWindow::MAX);
        let last = w.last().unwrap();
        assert_eq!(last.to, t((DropWindow::MAX as i64 + 9) * 1000 + 250));
        assert_eq!(
            w.iter().map(|d| d.dropped).sum::<u64>(),
            DropWindow::MAX as u64 + 10
        );
    }

    #[test]
    fn a_connection_touches_a_window_it_overlaps_or_ends_just_before() {
        let d = DropWindow {
            from: t(1000),
            to: t(1250),
            dropped: 1,
        };
        let slack = Nanos(500_000_000);
        assert!(d.touches(t(900), t(1100), slack));
        assert!(d.touches(t(100), t(600), slack));
        assert!(!d.touches(t(100), t(400), slack));
        assert!(!d.touches(t(1300), t(2000), slack));
    }
}
