//! `resetscope analyze FILE...`: capture files in, report out.
//!
//! Ticket reports (packet ladders) and `--extract` read the inputs a second time. An input
//! that cannot be read twice (a pipe, a FIFO, standard input) is copied, while the first
//! pass reads it, to an unlinked scratch file in `TMPDIR` ([`Spool`]), and the second pass
//! reads the copy. A copy that cannot be made at all stops the command before the analysis;
//! one that stops short (a full disk) is a caveat, and the analysis goes on.

use super::report::{finish, Collect, Evidence, Stream};
use super::{
    check_quiet, findings_status, open_output, unusable, warn_unused_host, Format, ReportArgs,
};
use anyhow::{Context, Result};
use resetscope::pipeline::{self, Options};
use resetscope::report::json::JsonWriter;
use resetscope::report::ndjson::NdjsonWriter;
use resetscope::report::FrameNamer;
use resetscope::source::merge::{CaptureSet, Input, Open};
use resetscope::source::spool::{self, Spool};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `analyze`.
#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// Capture files (pcap or pcapng); `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Also write every packet of the connections that have findings (idle closes aside) to
    /// this pcap, with their original timestamps and link type: a small capture to attach to
    /// the ticket, which `analyze` turns into the same findings.
    #[arg(long, value_name = "FILE.pcap")]
    pub extract: Option<PathBuf>,
    /// Threads for the connections (sharded by address and port; reading, decoding and the
    /// report stay on one). The report is the same whatever the number. Default: the
    /// available cores.
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    #[command(flatten)]
    pub report: ReportArgs,
}

/// Runs `analyze`.
pub fn run(args: AnalyzeArgs) -> Result<ExitCode> {
    let r = &args.report;
    check_quiet(r)?;
    let mut options = Options::default();
    options.flows.max_flows = r.max_flows.max(1);
    options.memory = r.memory;
    options.threads = match args.threads {
        Some(n) => n as usize,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let names = FrameNamer::new(&args.files);
    // The second pass needs every input twice: keep a copy of those that cannot be reread.
    let second_pass = matches!(r.format, Format::Markdown | Format::Html) || args.extract.is_some();
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
    let (mut analysis, errors) = pipeline::analyze_watched(
        CaptureSet::open_inputs(inputs),
        &options,
        &mut collect,
        &mut |p| bar.show(p),
    );
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
    for e in errors.iter().filter(|e| !e.is_unusable()) {
        eprintln!(
            "resetscope: warning: {}",
            resetscope::escape::terminal_lines(&e.to_string())
        );
    }
    let evidence = Evidence {
        files: &args.files,
        extract: args.extract.as_deref(),
        spools: &spools,
    };
    finish(collect, &mut analysis, &names, r, evidence)?;
    unusable(&errors)?;
    Ok(findings_status(&analysis, r.fail_on_findings))
}
