//! `resetscope analyze FILE...`: capture files in, report out.

use super::{findings_status, open_output, unusable, write_terminal, Format, ReportArgs};
use anyhow::{Context, Result};
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
    #[command(flatten)]
    pub report: ReportArgs,
}

/// Runs `analyze`.
pub fn run(args: AnalyzeArgs) -> Result<ExitCode> {
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
            write_terminal(&analysis, &names, r)?;
            (analysis, errors)
        }
    };
    for e in errors.iter().filter(|e| !e.is_unusable()) {
        eprintln!("resetscope: warning: {e}");
    }
    unusable(&errors)?;
    Ok(findings_status(&analysis, r.fail_on_findings))
}
