//! The subcommands, and what they share: report options, output, exit status.

pub mod analyze;
pub mod connection;
pub mod live;
pub mod narrow;
pub mod progress;
pub mod report;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use resetscope::diagnose::Severity;
use resetscope::pipeline::Analysis;
use resetscope::report::terminal::{self, TerminalOptions};
use resetscope::report::FrameNamer;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// Report formats.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A readable report for a terminal.
    Terminal,
    /// One JSON document (see docs/json-schema.md); for `live`, one line per finding, then the
    /// document on one line.
    Json,
    /// One JSON object per line: each connection and each finding as they come, then a
    /// summary (see docs/ndjson.md).
    Ndjson,
    /// A report for tickets: verdict, findings, estimates, caveats and packet ladders.
    Markdown,
    /// One self-contained HTML page with SVG ladder diagrams and a timeline (no script).
    Html,
}

/// Which findings make `--fail-on-findings` fail.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOn {
    /// Failed requests only (idle races, resets in flight).
    Error,
    /// Any reset (refused, abort, reset after close) too.
    Warning,
}

/// Options every report takes.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Report format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Terminal)]
    pub format: Format,
    /// Write the report to this file instead of standard output (`-` is standard output).
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Also list informational findings (idle closes) in the terminal table.
    #[arg(long)]
    pub all: bool,
    /// Print only the summary line, the headline and the counts of findings by kind (the
    /// terminal report only: an error with another --format; `live` still prints each
    /// finding as it happens).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Most findings listed in the terminal table (0 = all).
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub limit: usize,
    /// Exit with status 3 if there is any finding of this severity or worse
    /// (default: warning, i.e. any reset).
    #[arg(long, value_name = "SEVERITY", num_args = 0..=1, require_equals = true, default_missing_value = "warning")]
    pub fail_on_findings: Option<FailOn>,
    /// Most connections tracked at once, per thread (the least recently active are judged
    /// early).
    #[arg(long, default_value_t = 500_000, value_name = "N")]
    pub max_flows: usize,
    /// Memory budget for the whole analysis: connections, their buffers, protocol state,
    /// held verdicts and the report's evidence. When it is reached, the least useful state
    /// is given up and the report says what. K, M, G (powers of 1024; KiB, MiB, GiB too).
    #[arg(long, default_value = "512M", value_name = "SIZE", value_parser = parse_size)]
    pub memory: usize,
    /// The capturing host's name, written in every NDJSON line (`host`). Without it: `null`
    /// for `analyze` (a file does not say where it was captured), this machine's hostname
    /// for `live`.
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
}

/// Says that `--host` is written in NDJSON lines only, when it is given with another format.
pub fn warn_unused_host(r: &ReportArgs) {
    if r.host.is_some() && r.format != Format::Ndjson {
        eprintln!("resetscope: warning: --host is written only in NDJSON lines (--format ndjson)");
    }
}

/// Refuses `--quiet` with a format it does not apply to (it shortens the terminal report
/// only; the other formats are read by programs or attached whole to tickets).
pub fn check_quiet(r: &ReportArgs) -> Result<()> {
    if r.quiet && r.format != Format::Terminal {
        bail!("-q/--quiet applies to the terminal report only (--format terminal)");
    }
    Ok(())
}

/// Parses a size: a number of bytes with an optional K, M, G or T suffix (powers of 1024;
/// `KiB`, `MB` and the like are read the same), at least the smallest budget.
pub fn parse_size(s: &str) -> std::result::Result<usize, String> {
    let t = s.trim();
    let digits = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 512M, 2G, 1048576)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("{s:?}: unknown unit (use K, M, G or T)")),
    };
    let bytes = n * (1u64 << shift) as f64;
    let min = resetscope::pipeline::MIN_BUDGET;
    if !bytes.is_finite() || bytes < min as f64 {
        return Err(format!(
            "{s:?} is below the smallest budget, {} MiB",
            min >> 20
        ));
    }
    Ok(bytes.min(usize::MAX as f64) as usize)
}

/// Set when standard output carries something else (`--extract -`): a report without
/// `--output` then goes to standard error, as tshark moves its packet lines off a `-w -`.
static REPORT_TO_STDERR: AtomicBool = AtomicBool::new(false);

/// Sends a report without `--output` to standard error (standard output holds the extract).
pub fn report_to_stderr() {
    REPORT_TO_STDERR.store(true, Ordering::Relaxed);
}

/// Opens `--output`; without it, or for `-o -`, standard output (standard error after
/// [`report_to_stderr`]).
pub fn open_output(path: &Option<PathBuf>) -> Result<Box<dyn Write>> {
    Ok(match path {
        // Standard error as itself: creating the path would truncate a file it points to.
        Some(p) if p.as_os_str() == STDERR => Box::new(io::BufWriter::new(io::stderr())),
        Some(p) if !resetscope::source::is_stdin(p) => Box::new(io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        Some(_) => Box::new(io::BufWriter::new(io::stdout())),
        None if REPORT_TO_STDERR.load(Ordering::Relaxed) => {
            Box::new(io::BufWriter::new(io::stderr()))
        }
        None => Box::new(io::BufWriter::new(io::stdout())),
    })
}

/// The `--output` that means standard error (`live -w -` sends the report there).
pub const STDERR: &str = "/dev/stderr";

/// True when the report written to `path` (`--output`) lands on a terminal.
fn report_on_terminal(path: &Option<PathBuf>) -> bool {
    match path {
        Some(p) if !resetscope::source::is_stdin(p) => false,
        Some(_) => io::stdout().is_terminal(),
        None if REPORT_TO_STDERR.load(Ordering::Relaxed) => io::stderr().is_terminal(),
        None => io::stdout().is_terminal(),
    }
}

/// Writes the terminal report to `--output` or standard output.
pub fn write_terminal(a: &Analysis, names: &FrameNamer, r: &ReportArgs) -> Result<()> {
    let to_terminal = report_on_terminal(&r.output);
    let opts = TerminalOptions {
        color: to_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        width: terminal_width(to_terminal),
        all: r.all,
        limit: r.limit,
        quiet: r.quiet,
    };
    let text = terminal::render(a, names, &opts);
    let mut out = open_output(&r.output)?;
    out.write_all(text.as_bytes())
        .context("writing the report")?;
    out.flush().context("writing the report")
}

/// Exit status 3 when `--fail-on-findings` applies, else success.
pub fn findings_status(a: &Analysis, fail_on: Option<FailOn>) -> ExitCode {
    let Some(level) = fail_on else {
        return ExitCode::SUCCESS;
    };
    let worst = match level {
        FailOn::Error => Severity::Error,
        FailOn::Warning => Severity::Warning,
    };
    // The counts, not the findings kept in memory (capped on large captures).
    if a.diagnosis
        .counts
        .iter()
        .any(|(kind, n)| *n > 0 && kind.severity() <= worst)
    {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

/// An error for unusable input files.
pub fn unusable(errors: &[resetscope::source::SourceError]) -> Result<()> {
    let bad: Vec<String> = errors
        .iter()
        .filter(|e| e.is_unusable())
        .map(|e| e.to_string())
        .collect();
    if !bad.is_empty() {
        bail!("unusable input:\n  {}", bad.join("\n  "));
    }
    Ok(())
}

/// The width the terminal report is fitted to: the terminal's own when the report goes to
/// one (`to_terminal`: standard output, a terminal); else `$COLUMNS` when it is set to a
/// number; else 80 on a terminal whose size is not known, and [`terminal::FILE_WIDTH`]
/// (100) for files and pipes, so that they get the same report wherever they are written.
/// Shells seldom export `$COLUMNS`, so it is not relied on for a terminal. At least
/// [`terminal::MIN_WIDTH`] (40), at most 1000.
fn terminal_width(to_terminal: bool) -> u16 {
    let own = to_terminal
        .then(|| terminal_size::terminal_size_of(io::stdout()))
        .flatten()
        .map(|(w, _)| w.0)
        .filter(|w| *w > 0);
    own.or_else(|| {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<u16>().ok())
            .filter(|w| *w > 0)
    })
    .unwrap_or(if to_terminal {
        80
    } else {
        terminal::FILE_WIDTH
    })
    .clamp(terminal::MIN_WIDTH, 1000)
}
