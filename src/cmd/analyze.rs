//! `resetscope analyze FILE...`: capture files in, report out.

use super::{findings_status, open_output, unusable, write_terminal, Format, ReportArgs};
use anyhow::{Context, Result};
use resetscope::diagnose::{ConnectionRecord, Finding, FindingKind};
use resetscope::pipeline::{self, Options, Sink};
use resetscope::report::evidence::{self, Target};
use resetscope::report::json::JsonWriter;
use resetscope::report::timeline::ResetTimeline;
use resetscope::report::{html, listed_findings, markdown, FrameNamer, TicketReport};
use rustc_hash::FxHashMap;
use std::collections::HashSet;
use std::io::Write;
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

/// What the first pass keeps besides the analysis: the JSON report being written, the
/// reset timeline, and the connections whose packets the second pass must find.
struct FirstPass<W: Write> {
    json: Option<JsonWriter<W>>,
    timeline: Option<ResetTimeline>,
    targets: Option<Vec<Target>>,
}

impl<W: Write> Sink for FirstPass<W> {
    fn record(&mut self, rec: &ConnectionRecord) {
        if let Some(w) = self.json.as_mut() {
            w.record(rec);
        }
        if let Some(t) = self.timeline.as_mut() {
            t.add(rec);
        }
        let evidence = rec.findings.iter().any(|k| *k != FindingKind::IdleClose);
        if let (Some(targets), true) = (self.targets.as_mut(), evidence) {
            targets.push(Target {
                id: rec.id,
                client: rec.client,
                server: rec.server,
                start: rec.start,
                end: rec.end,
                ladder: false,
            });
        }
    }

    fn finding(&mut self, f: &Finding) {
        if let Some(w) = self.json.as_mut() {
            w.finding(f);
        }
    }
}

/// Runs `analyze`.
pub fn run(args: AnalyzeArgs) -> Result<ExitCode> {
    let r = &args.report;
    let mut options = Options::default();
    options.flows.max_flows = r.max_flows.max(1);
    let names = FrameNamer::new(&args.files);
    let ticket = matches!(r.format, Format::Markdown | Format::Html);

    // The first pass. Records and findings stream to the JSON report; for tickets and
    // extracts, the connections with findings and the reset timeline are kept.
    let mut first = FirstPass {
        json: match r.format {
            Format::Json => Some(JsonWriter::new(open_output(&r.output)?)),
            _ => None,
        },
        timeline: ticket.then(ResetTimeline::default),
        targets: (ticket || args.extract.is_some()).then(Vec::new),
    };
    let (analysis, errors) = pipeline::analyze_files(&args.files, &options, &mut first);
    let FirstPass {
        json,
        timeline,
        targets,
    } = first;
    let timeline = timeline.unwrap_or_default();
    let keep_targets = targets.is_some();
    let mut targets = targets.unwrap_or_default();
    for e in errors.iter().filter(|e| !e.is_unusable()) {
        eprintln!("resetscope: warning: {e}");
    }

    // The second pass: the packets behind the findings.
    let mut ladders = FxHashMap::default();
    if keep_targets && (!targets.is_empty() || args.extract.is_some()) {
        let listed: HashSet<u64> = if ticket {
            listed_findings(&analysis, r.limit)
                .iter()
                .map(|f| f.connection)
                .collect()
        } else {
            HashSet::new()
        };
        for t in &mut targets {
            t.ladder = listed.contains(&t.id);
        }
        let mut linktypes: Vec<u32> = analysis
            .inputs
            .iter()
            .flat_map(|i| i.linktypes.iter().copied())
            .collect();
        linktypes.sort_unstable();
        linktypes.dedup();
        ladders = evidence::gather(&args.files, &linktypes, &targets, args.extract.as_deref())
            .with_context(|| match &args.extract {
                Some(p) => format!("writing {}", p.display()),
                None => "reading the evidence".to_string(),
            })?;
        if let Some(p) = &args.extract {
            eprintln!(
                "resetscope: {} connections with findings written to {}",
                targets.len(),
                p.display()
            );
        }
    }

    match r.format {
        Format::Json => {
            json.expect("json writer")
                .finish(&analysis)
                .context("writing the JSON report")?;
        }
        Format::Terminal => write_terminal(&analysis, &names, r)?,
        Format::Markdown | Format::Html => {
            let title = args
                .files
                .iter()
                .map(|p| {
                    p.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(" + ");
            let t = TicketReport {
                analysis: &analysis,
                names: &names,
                ladders: &ladders,
                timeline: &timeline,
                title,
                limit: r.limit,
            };
            let text = if r.format == Format::Markdown {
                markdown::render(&t)
            } else {
                html::render(&t)
            };
            let mut out = open_output(&r.output)?;
            out.write_all(text.as_bytes())
                .context("writing the report")?;
            out.flush().context("writing the report")?;
        }
    }
    unusable(&errors)?;
    Ok(findings_status(&analysis, r.fail_on_findings))
}
