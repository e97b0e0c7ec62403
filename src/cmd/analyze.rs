//! `resetscope analyze FILE...`: capture files in, report out.

use super::report::{finish, Collect, Evidence};
use super::{findings_status, open_output, unusable, Format, ReportArgs};
use anyhow::Result;
use resetscope::pipeline::{self, Options};
use resetscope::report::json::JsonWriter;
use resetscope::report::FrameNamer;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `analyze`.
#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// Capture files (pcap or pcapng).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Also write every packet of the connections that have findings (idle closes aside) to
    /// this pcap, with their original timestamps and link type: a small capture to attach to
    /// the ticket, which `analyze` turns into the same findings.
    #[arg(long, value_name = "FILE.pcap")]
    pub extract: Option<PathBuf>,
    #[command(flatten)]
    pub report: ReportArgs,
}

/// Runs `analyze`.
pub fn run(args: AnalyzeArgs) -> Result<ExitCode> {
    let r = &args.report;
    let mut options = Options::default();
    options.flows.max_flows = r.max_flows.max(1);
    options.memory = r.memory;
    let names = FrameNamer::new(&args.files);
    let json = match r.format {
        Format::Json => Some(JsonWriter::new(open_output(&r.output)?)),
        _ => None,
    };
    let mut collect = Collect::new(r.format, json, args.extract.is_some());
    let (mut analysis, errors) = pipeline::analyze_files(&args.files, &options, &mut collect);
    for e in errors.iter().filter(|e| !e.is_unusable()) {
        eprintln!("resetscope: warning: {e}");
    }
    let evidence = Evidence {
        files: &args.files,
        extract: args.extract.as_deref(),
    };
    finish(collect, &mut analysis, &names, r, evidence)?;
    unusable(&errors)?;
    Ok(findings_status(&analysis, r.fail_on_findings))
}
