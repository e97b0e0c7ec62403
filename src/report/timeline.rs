//! The capture's timeline: resets per second, with the findings marked, for the HTML report.

use crate::diagnose::{ConnectionRecord, Finding, Severity};
use crate::time::Timestamp;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Resets counted per second of capture time, fed with each connection record.
#[derive(Clone, Debug, Default)]
pub struct ResetTimeline {
    per_second: BTreeMap<i64, u32>,
}

impl ResetTimeline {
    /// Counts the RST packets of one connection.
    pub fn add(&mut self, r: &ConnectionRecord) {
        for c in r.closes.iter().filter(|c| c.kind.is_rst()) {
            *self
                .per_second
                .entry(c.mark.ts.0.div_euclid(1_000_000_000))
                .or_default() += 1;
        }
    }

    /// Total resets counted.
    pub fn total(&self) -> u64 {
        self.per_second.values().map(|&n| n as u64).sum()
    }

    /// An SVG bar chart of resets per second from `first` to `last`, with a mark per finding.
    pub fn svg(&self, first: Timestamp, last: Timestamp, findings: &[Finding]) -> String {
        const W: f64 = 760.0;
        const H: f64 = 150.0;
        const LEFT: f64 = 40.0;
        const BOTTOM: f64 = 125.0;
        const TOP: f64 = 22.0;
        let start = first.0.div_euclid(1_000_000_000);
        let end = last.0.div_euclid(1_000_000_000).max(start);
        let seconds = (end - start + 1) as f64;
        let max = self.per_second.values().copied().max().unwrap_or(0).max(1) as f64;
        let x_of = |t_secs: f64| LEFT + (t_secs - start as f64) / seconds * (W - LEFT - 10.0);
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="resets per second over the capture">"#
        );
        let _ = write!(
            s,
            r#"<line x1="{LEFT}" y1="{BOTTOM}" x2="{}" y2="{BOTTOM}" class="axis"/>"#,
            W - 10.0
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" class="tick">{}</text>"#,
            LEFT - 6.0,
            TOP + 4.0,
            max as u32
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" class="tick">0</text>"#,
            LEFT - 6.0,
            BOTTOM
        );
        let bar_w = ((W - LEFT - 10.0) / seconds).max(1.0);
        for (&sec, &n) in &self.per_second {
            if sec < start || sec > end {
                continue;
            }
            let h = n as f64 / max * (BOTTOM - TOP);
            let _ = write!(
                s,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" class="bar"><title>{} at +{} s</title></rect>"#,
                x_of(sec as f64),
                BOTTOM - h,
                bar_w,
                h,
                super::words::plural(n as u64, "reset", "resets"),
                sec - start
            );
        }
        for f in findings.iter().filter(|f| f.severity != Severity::Info) {
            let x = x_of(f.time.0 as f64 / 1e9);
            let _ = write!(
                s,
                r#"<path d="M{:.1},{} l-4,-8 h8 z" class="mark {}"><title>{} at +{:.3} s</title></path>"#,
                x,
                TOP - 4.0,
                f.kind.name(),
                f.kind.name(),
                f.time.since(first).as_secs_f64()
            );
        }
        let _ = write!(
            s,
            r#"<text x="{LEFT}" y="{}" class="tick">+0 s</text><text x="{}" y="{}" class="tick end">+{:.0} s</text>"#,
            BOTTOM + 16.0,
            W - 10.0,
            BOTTOM + 16.0,
            last.since(first).as_secs_f64()
        );
        s.push_str("</svg>");
        s
    }
}
