//! `resetscope analyze FILE...`: capture files in, report out.
//!
//! Ticket reports (packet ladders) and `--extract` read the inputs a second time. An input
//! that cannot be read twice (a pipe, a FIFO, standard input) is copied, while the first
//! pass reads it, to an unlinked scratch file in `TMPDIR` ([`Spool`]), and the second pass
//! reads the copy. A copy that cannot be made at all stops the command before the analysis;
//! one that stops short (a full disk) is a caveat, and the analysis goes on.

use super::report::{finish, Collect, Evidence, Stream};
use super::{
    check_quiet, findings_status, open_output, report_to_stderr, unusable, warn_unused_host,
    Format, ReportArgs,
};
use anyhow::{Context, Result};
use resetscope::pipeline::{self, Options};
use resetscope::report::json::JsonWriter;
use resetscope::report::ndjson::NdjsonWriter;
use resetscope::report::FrameNamer;
use resetscope::source::is_stdin;
use resetscope::source::merge::{CaptureSet, Input, Open};
use resetscope::source::spool::{self, Spool};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `analyze`.
#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// Capture files (pcap or pcapng, also compressed with gzip, zstd or xz, told by their
    /// first bytes); `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Also write every packet of the connections that have findings (idle closes aside) to
    /// this pcap, with their original timestamps and link type: a small capture to attach to
    /// the ticket, which `analyze` turns into the same findings. `-` writes it to standard
    /// output (as `tcpdump -w -` does); the report then goes to standard error unless `-o`
    /// names a file (`-o -` with `--extract -` is refused: one stream cannot hold both).
    #[arg(long, value_name = "FILE.pcap")]
    pub extract: Option<PathBuf>,
    /// Threads for the connections (sharded by address and port; decoding and the report
    /// stay on one, and several input files are parsed each on a thread of its own when a
    /// core is left over). The report is the same whatever the number. Default: the
    /// available cores.
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Parse several input files each on a thread of its own (yes), or all on one (no),
    /// instead of deciding by the cores left over: for tests and measurements.
    #[arg(long, hide = true, value_name = "yes|no", value_parser = clap::builder::BoolishValueParser::new())]
    pub read_ahead: Option<bool>,
    /// Show one connection in full: what was recorded of it, its requests, every FIN and
    /// RST, its findings and its packets. By its id (`id` in the JSON report) or by the
    /// client's or server's address and port (`10.0.0.5:54110`, `[2001:db8::1]:443`).
    #[arg(long, value_name = "ID|IP:PORT", value_parser = super::connection::Spec::parse)]
    pub connection: Option<super::connection::Spec>,
    #[command(flatten)]
    pub narrow: super::narrow::NarrowArgs,
    #[command(flatten)]
    pub report: ReportArgs,
}

/// Runs `analyze`.
pub fn run(args: AnalyzeArgs) -> Result<ExitCode> {
    if let Some(code) = extract_to_stdout(&args)? {
        return Ok(code);
    }
    let r = &args.report;
    check_quiet(r)?;
    if let Err(e) = super::narrow::check_inputs(&args.files) {
        e.exit();
    }
    let narrow = args.narrow.narrow().unwrap_or_else(|e| e.exit());
    if args.connection.is_some()
        && (matches!(r.format, Format::Markdown | Format::Html) || args.extract.is_some())
    {
        clap::Error::raw(
            clap::error::ErrorKind::ArgumentConflict,
            "--connection writes the terminal or the JSON format, without --extract (a connection's packets: --connection … --format json, or the Wireshark filter it prints)\n",
        )
        .exit();
    }
    let mut options = Options {
        narrow: std::sync::Arc::new(narrow),
        ..Options::default()
    };
    options.flows.max_flows = r.max_flows.max(1);
    options.memory = r.memory;
    options.read_ahead = args.read_ahead;
    options.threads = match args.threads {
        Some(n) => n as usize,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let names = FrameNamer::new(&args.files);
    // The second pass needs every input twice: keep a copy of those that cannot be reread.
    let second_pass = matches!(r.format, Format::Markdown | Format::Html)
        || args.extract.is_some()
        || args.connection.is_some();
    let mut spools: Vec<Option<Spool>> = Vec::new();
    let mut inputs = Vec::new();
    for path in &args.files {
        let spool = if second_pass && spool::needs_spool(path) {
            Some(Spool::create().with_context(|| {
                format!(
                    "cannot create a scratch file in TMPDIR ({}) to keep a copy of {}: markdown, html and --extract read the input twice, and an input that is not a regular file (a pipe) can be read only once (set TMPDIR to a writable directory, or give a file)",
                    std::env::temp_dir().display(),
                    path.display()
                )
            })?)
        } else {
            None
        };
        inputs.push(Input {
            path: path.clone(),
            open: match &spool {
                Some(s) => Open::Tee(s.writer().context("preparing the scratch copy")?),
                None => Open::Path,
            },
        });
        spools.push(spool);
    }
    warn_unused_host(r);
    // Inputs are opened before any report is begun: with none usable there is no report,
    // only the errors (a verdict on nothing would read as "nothing wrong").
    // (A file cut inside its header is "truncated", not unusable: it gets its report.)
    let mut set = CaptureSet::open_inputs(inputs);
    if set.opened() == 0 {
        let errors = set.take_errors();
        unusable(&errors)?;
        set = set.with_errors(errors);
    }
    if let Some(spec) = args.connection {
        let mut pick = super::connection::Pick::new(spec);
        let mut bar = super::progress::Bar::new();
        let (analysis, errors) =
            pipeline::analyze_watched(set, &options, &mut pick, &mut |p| bar.show(p));
        bar.clear();
        warn_damaged(&errors);
        let evidence = Evidence {
            files: &args.files,
            extract: None,
            spools: &spools,
            narrow: Some(&options.narrow),
        };
        let code = super::connection::finish(pick, &analysis, &names, r, evidence)?;
        unusable(&errors)?;
        return Ok(code);
    }
    let stream = match r.format {
        Format::Json => Some(Stream::Json(JsonWriter::new(open_output(&r.output)?)?)),
        Format::Ndjson => Some(Stream::Ndjson(NdjsonWriter::new(
            open_output(&r.output)?,
            r.host.clone(),
            false,
        ))),
        _ => None,
    };
    let mut collect = Collect::new(r.format, stream, args.extract.is_some());
    let mut bar = super::progress::Bar::new();
    // A JSON or NDJSON report on standard error (`--extract -`) is written as the packets
    // are read: no progress bar between its lines.
    let stream_on_stderr = args.extract.as_deref().is_some_and(is_stdin)
        && r.output.is_none()
        && matches!(r.format, Format::Json | Format::Ndjson);
    let (mut analysis, errors) = pipeline::analyze_watched(set, &options, &mut collect, &mut |p| {
        if !stream_on_stderr {
            bar.show(p)
        }
    });
    bar.clear();
    for (stats, spool) in analysis.inputs.iter_mut().zip(&spools) {
        if let Some((why, bytes)) = spool.as_ref().and_then(Spool::failure) {
            stats.spool_failure = Some(format!(
                "{}: the copy of this piped input kept in TMPDIR ({}) for the second pass stopped after {bytes} bytes ({why}); the packet ladders and the --extract file hold only the packets before that point",
                stats.path,
                spool.as_ref().map(|s| s.dir().display().to_string()).unwrap_or_default()
            ));
        }
    }
    warn_damaged(&errors);
    let evidence = Evidence {
        files: &args.files,
        extract: args.extract.as_deref(),
        spools: &spools,
        narrow: Some(&options.narrow),
    };
    finish(collect, &mut analysis, &names, r, evidence)?;
    unusable(&errors)?;
    Ok(findings_status(&analysis, r.fail_on_findings))
}

/// `--extract -`: the extract takes standard output, so the report goes to standard error,
/// unless `-o` names a file. Both on standard output is a usage error (exit status 2, as
/// tshark refuses `-w -` with packet lines on standard output), and so is the extract on a
/// terminal (binary pcap is no use there; tcpdump refuses that too).
fn extract_to_stdout(args: &AnalyzeArgs) -> Result<Option<ExitCode>> {
    use std::io::IsTerminal;
    if !args.extract.as_deref().is_some_and(is_stdin) {
        return Ok(None);
    }
    let usage = |why: &str| {
        eprintln!(
            "resetscope: error: {why}\n\nUsage: resetscope analyze --extract - [-o REPORT] FILE..."
        );
        Ok(Some(ExitCode::from(2)))
    };
    match &args.report.output {
        Some(o) if is_stdin(o) => {
            return usage(
                "--extract - and -o - would both write to standard output: give -o a file, or leave it out to have the report on standard error",
            )
        }
        Some(_) => {}
        None => report_to_stderr(),
    }
    if std::io::stdout().is_terminal() {
        return usage(
            "--extract - writes a pcap to standard output, which is a terminal: redirect it to a file or a pipe",
        );
    }
    Ok(None)
}

/// Warns of damage met in inputs that could still be read (the analysis covers what came
/// before it).
fn warn_damaged(errors: &[resetscope::source::SourceError]) {
    for e in errors.iter().filter(|e| !e.is_unusable()) {
        eprintln!(
            "resetscope: warning: {}",
            resetscope::escape::terminal_lines(&e.to_string())
        );
    }
}
