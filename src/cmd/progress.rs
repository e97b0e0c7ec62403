//! The progress bar of a long `analyze`: on stderr when it is a terminal, nothing on a pipe
//! or a file, and only once the analysis has run for half a second. The share of the input
//! read and the time left (a pipe has no total: a spinner and the bytes read), frames and
//! frames per second, and the failed requests found so far.

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};
use resetscope::pipeline::Progress;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// The bar, hidden when stderr is not a terminal.
pub struct Bar {
    bar: Option<ProgressBar>,
    started: Instant,
    shown: bool,
}

/// How long an analysis runs before the bar appears: small captures show nothing.
const DELAY: Duration = Duration::from_millis(500);

impl Bar {
    /// A bar on stderr if it is a terminal.
    pub fn new() -> Bar {
        let bar = std::io::stderr()
            .is_terminal()
            .then(|| ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden()));
        Bar {
            bar,
            started: Instant::now(),
            shown: false,
        }
    }

    /// Shows `p`.
    pub fn show(&mut self, p: &Progress) {
        let Some(bar) = &self.bar else {
            return;
        };
        let elapsed = self.started.elapsed();
        if !self.shown {
            if elapsed < DELAY {
                return;
            }
            self.shown = true;
            let style = match p.total {
                Some(total) => {
                    bar.set_length(total);
                    "{bar:20} {percent:>3}% of {binary_total_bytes}, {eta} left · {msg}"
                }
                None => "{spinner} {binary_bytes} read · {msg}",
            };
            bar.set_style(
                ProgressStyle::with_template(style)
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
            bar.enable_steady_tick(Duration::from_millis(250));
        }
        bar.set_position(p.bytes);
        let secs = elapsed.as_secs_f64().max(1e-3);
        bar.set_message(format!(
            "{} frames, {}/s · {} failed request{} so far",
            HumanCount(p.frames),
            HumanCount((p.frames as f64 / secs) as u64),
            HumanCount(p.failed_requests),
            if p.failed_requests == 1 { "" } else { "s" }
        ));
    }

    /// Removes the bar (before the report is written).
    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
