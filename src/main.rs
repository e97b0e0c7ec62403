//! The `resetscope` command line.
//!
//! `resetscope analyze FILE...` reads capture files; `resetscope live` captures from an
//! interface (cargo feature `live`). Errors are printed with their context and a non-zero
//! exit status; a closed pipe (`resetscope … | head`) is not an error.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use resetscope::diagnose::Severity;
use resetscope::pipeline::{self, Analysis, Options};
use resetscope::report::json::JsonWriter;
use resetscope::report::terminal::{self, TerminalOptions};
use resetscope::report::FrameNamer;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Who closed this connection, and what request was in flight when it died?
///
/// resetscope reconstructs every TCP connection in a capture, pairs HTTP/1.x requests with
/// responses, and says who closed each connection first (FIN or RST, with frame numbers),
/// which requests failed in keep-alive idle races, and what the server's idle timeout is.
#[derive(Parser, Debug)]
#[command(name = "resetscope", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Analyse pcap/pcapng files (several files are read as one capture, in time order).
    Analyze(AnalyzeArgs),
    /// Capture from a network interface and diagnose as it happens (needs the `live` feature).
    Live(LiveArgs),
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// A readable report for a terminal.
    Terminal,
    /// One JSON document (see docs/json-schema.md).
    Json,
}

#[derive(clap::Args, Debug)]
struct ReportArgs {
    /// Report format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Terminal)]
    format: Format,
    /// Write the report to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "PATH")]
    output: Option<PathBuf>,
    /// Also list informational findings (idle closes) in the terminal table.
    #[arg(long)]
    all: bool,
    /// Most findings listed in the terminal table (0 = all).
    #[arg(long, default_value_t = 50, value_name = "N")]
    limit: usize,
    /// Exit with status 3 if there is any finding of this severity or worse.
    #[arg(long, value_name = "SEVERITY", num_args = 0..=1, require_equals = true, default_missing_value = "warning")]
    fail_on_findings: Option<FailOn>,
    /// Most connections tracked at once (the least recently active are judged early).
    #[arg(long, default_value_t = 500_000, value_name = "N")]
    max_flows: usize,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum FailOn {
    /// Failed requests only (idle races, resets in flight).
    Error,
    /// Any reset (refused, abort, reset after close) too.
    Warning,
}

#[derive(clap::Args, Debug)]
struct AnalyzeArgs {
    /// Capture files (pcap or pcapng).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    report: ReportArgs,
}

#[derive(clap::Args, Debug)]
struct LiveArgs {
    /// Interface to capture on.
    #[arg(short = 'i', long)]
    interface: Option<String>,
    /// BPF capture filter, as for tcpdump (e.g. `tcp port 8080`).
    filter: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(args) => analyze(args),
        Command::Live(_) => live_unavailable(),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("resetscope: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn live_unavailable() -> Result<ExitCode> {
    bail!(
        "this resetscope was built without live capture.\n  Build it with: cargo install --path . --features live\n  (live capture uses libpcap: on Debian/Ubuntu, apt-get install libpcap-dev first)"
    )
}

fn open_output(path: &Option<PathBuf>) -> Result<Box<dyn Write>> {
    Ok(match path {
        Some(p) => Box::new(io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(io::BufWriter::new(io::stdout().lock())),
    })
}

fn analyze(args: AnalyzeArgs) -> Result<ExitCode> {
    let r = &args.report;
    let mut options = Options::default();
    options.flows.max_flows = r.max_flows.max(1);
    let names = FrameNamer::new(&args.files);
    let (analysis, errors) = match r.format {
        Format::Json => {
            let mut writer = JsonWriter::new(open_output(&r.output)?);
            let (analysis, errors) =
                pipeline::analyze_files(&args.files, &options, &mut |rec| writer.record(rec));
            writer
                .finish(&analysis)
                .context("writing the JSON report")?;
            (analysis, errors)
        }
        Format::Terminal => {
            let (analysis, errors) = pipeline::analyze_files(&args.files, &options, &mut |_| {});
            let to_terminal = r.output.is_none() && io::stdout().is_terminal();
            let opts = TerminalOptions {
                color: to_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
                width: terminal_width(),
                all: r.all,
                limit: r.limit,
            };
            let text = terminal::render(&analysis, &names, &opts);
            let mut out = open_output(&r.output)?;
            out.write_all(text.as_bytes())
                .context("writing the report")?;
            out.flush().context("writing the report")?;
            (analysis, errors)
        }
    };
    for e in &errors {
        eprintln!("resetscope: warning: {e}");
    }
    exit_status(&analysis, &errors, r.fail_on_findings)
}

fn exit_status(
    a: &Analysis,
    errors: &[resetscope::source::SourceError],
    fail_on: Option<FailOn>,
) -> Result<ExitCode> {
    if errors.iter().any(|e| e.is_unusable()) {
        let bad: Vec<String> = errors
            .iter()
            .filter(|e| e.is_unusable())
            .map(|e| e.to_string())
            .collect();
        bail!("unusable input:\n  {}", bad.join("\n  "));
    }
    if let Some(level) = fail_on {
        let worst = match level {
            FailOn::Error => Severity::Error,
            FailOn::Warning => Severity::Warning,
        };
        if a.diagnosis.findings.iter().any(|f| f.severity <= worst) {
            return Ok(ExitCode::from(3));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn terminal_width() -> u16 {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|w| *w >= 60)
        .unwrap_or(140)
}
