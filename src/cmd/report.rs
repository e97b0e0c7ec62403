//! What `analyze` and `live` share after the packets: the sink that keeps what a report needs
//! while they stream by, and the report at the end (with the second pass over the capture
//! for ladders and `--extract`).

use super::{open_output, write_terminal, Format, ReportArgs};
use anyhow::{Context, Result};
use resetscope::diagnose::{ConnectionRecord, Finding, FindingKind};
use resetscope::pipeline::narrow::{Narrow, Window};
use resetscope::pipeline::{Analysis, Sink};
use resetscope::report::evidence::{self, Target};
use resetscope::report::json::JsonWriter;
use resetscope::report::ndjson::NdjsonWriter;
use resetscope::report::pcap_writer::{Shape, WIRESHARK_MAX_FRAME};
use resetscope::report::targets::TargetSpool;
use resetscope::report::timeline::ResetTimeline;
use resetscope::report::{html, listed_findings, markdown, FrameNamer, TicketReport};
use resetscope::source::merge::{Input, Open};
use resetscope::source::spool::Spool;
use rustc_hash::FxHashMap;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A report written while the packets stream by.
pub enum Stream {
    /// The JSON document.
    Json(JsonWriter<Box<dyn Write>>),
    /// NDJSON lines.
    Ndjson(NdjsonWriter<Box<dyn Write>>),
}

impl Stream {
    fn sink(&mut self) -> &mut dyn Sink {
        match self {
            Stream::Json(w) => w,
            Stream::Ndjson(w) => w,
        }
    }
}

/// Keeps what the report needs while packets stream by: the JSON report or NDJSON lines being
/// written, the reset timeline, and for `--extract` the connections whose packets the second
/// pass must find (ladders need only the findings listed, which the analysis keeps).
pub struct Collect {
    stream: Option<Stream>,
    timeline: Option<ResetTimeline>,
    targets: Option<TargetSpool>,
    /// The memory budget stopped the extract's list: connections with findings left out.
    left_out: u64,
    full: bool,
}

impl Collect {
    /// For a report in `format` (`stream` is its writer when the format is JSON or NDJSON);
    /// `extract` also keeps the connections to extract.
    pub fn new(format: Format, stream: Option<Stream>, extract: bool) -> Collect {
        let ticket = matches!(format, Format::Markdown | Format::Html);
        Collect {
            stream,
            timeline: ticket.then(ResetTimeline::default),
            targets: extract.then(TargetSpool::new),
            left_out: 0,
            full: false,
        }
    }

    /// The NDJSON lines could not be written (a closed pipe): live capture stops.
    #[cfg_attr(not(feature = "live"), allow(dead_code))]
    pub fn failed(&self) -> bool {
        matches!(&self.stream, Some(Stream::Ndjson(w)) if w.failed())
    }
}

impl Sink for Collect {
    fn record(&mut self, rec: &ConnectionRecord) {
        if let Some(w) = self.stream.as_mut() {
            w.sink().record(rec);
        }
        if let Some(t) = self.timeline.as_mut() {
            t.add(rec);
        }
        let evidence = rec.findings.iter().any(|k| *k != FindingKind::IdleClose);
        if let (Some(targets), true) = (self.targets.as_mut(), evidence) {
            if self.full {
                self.left_out += 1;
                return;
            }
            targets.push(Target {
                id: rec.id,
                client: rec.client,
                server: rec.server,
                start: rec.start,
                end: rec.end,
                ladder: false,
                max_rows: evidence::MAX_ROWS,
            });
        }
    }

    fn finding(&mut self, f: &Finding) {
        if let Some(w) = self.stream.as_mut() {
            w.sink().finding(f);
        }
    }

    fn heap_bytes(&self) -> usize {
        self.targets.as_ref().map_or(0, TargetSpool::heap_bytes)
    }

    /// The extract's list of connections stops growing: the connections it leaves out are
    /// counted, and the report says so.
    fn shed(&mut self) {
        self.full = true;
        if let Some(t) = self.targets.as_mut() {
            t.shrink_to_fit();
        }
    }
}

/// Where the second pass reads the packets back from, and where `--extract` writes them.
pub struct Evidence<'a> {
    /// The capture files (for `live`, its `-w` file, if any).
    pub files: &'a [PathBuf],
    /// `--extract`.
    pub extract: Option<&'a Path>,
    /// By input, the scratch copy the first pass made of an input that cannot be read
    /// twice (a pipe); the second pass reads that instead. Empty when there is none.
    pub spools: &'a [Option<Spool>],
    /// What narrowed the first pass (`--since`, `--until`, the filter): the second leaves
    /// out the same frames.
    pub narrow: Option<&'a Narrow>,
}

impl Evidence<'_> {
    /// The first pass's narrowing, with its window fixed by the capture's first frame, for
    /// the second pass.
    pub fn narrowing(&self, a: &Analysis) -> Option<(&Narrow, Window)> {
        self.narrow
            .zip(a.packets.first_ts)
            .map(|(n, first)| (n, n.resolve(first)))
    }
}

/// Writes the report: the second pass for ladders and the extract, then the report itself.
pub fn finish(
    collect: Collect,
    a: &mut Analysis,
    names: &FrameNamer,
    r: &ReportArgs,
    evidence: Evidence<'_>,
) -> Result<()> {
    let left_out = collect.left_out;
    let Collect {
        stream,
        timeline,
        targets,
        ..
    } = collect;
    if left_out > 0 {
        a.memory
            .shed
            .insert("extract_connections_left_out", left_out);
    }
    let ticket = matches!(r.format, Format::Markdown | Format::Html);
    // The extract's connections, with a ladder for those whose findings the report lists;
    // without an extract, only those. Either way in order of (start, id).
    let mut listed = HashSet::new();
    let mut ladder_only = Vec::new();
    if ticket {
        for f in listed_findings(a, r.limit) {
            if listed.insert(f.connection) && evidence.extract.is_none() {
                ladder_only.push(Target {
                    id: f.connection,
                    client: f.client,
                    server: f.server,
                    start: f.span.0.ts,
                    end: f.span.1.ts,
                    ladder: true,
                    max_rows: evidence::MAX_ROWS,
                });
            }
        }
    }
    ladder_only.sort_unstable_by_key(|t| (t.start, t.id));
    let target_count = targets
        .as_ref()
        .map_or(ladder_only.len(), |s| s.len() as usize);
    let targets: Box<dyn Iterator<Item = std::io::Result<Target>>> = match targets {
        Some(spool) => Box::new(spool.sorted().map(move |t| {
            t.map(|mut t| {
                t.ladder = listed.contains(&t.id);
                t
            })
        })),
        None => Box::new(ladder_only.into_iter().map(Ok)),
    };
    let mut ladders = FxHashMap::default();
    if (ticket || evidence.extract.is_some()) && !evidence.files.is_empty() {
        let inputs = second_pass_inputs(&evidence)?;
        let gathered = evidence::gather(
            inputs,
            &Shape::of(&a.inputs),
            targets,
            a.packets.max_behind,
            evidence.extract,
            evidence.narrowing(a),
        )
        .with_context(|| match evidence.extract {
            Some(p) => format!("writing {}", p.display()),
            None => "reading the evidence".to_string(),
        })?;
        // The first pass reported what it met, and a copy that stopped short is a caveat;
        // anything else new here means an input changed.
        let spool_failed = |text: &str| {
            a.inputs
                .iter()
                .any(|i| i.spool_failure.is_some() && text.starts_with(&format!("{}: ", i.path)))
        };
        for e in &gathered.errors {
            let text = e.to_string();
            if !a.input_errors.contains(&text) && !spool_failed(&text) {
                eprintln!("resetscope: warning: reading the inputs again for the evidence: {text}");
            }
        }
        if let Some(p) = evidence.extract {
            let w = &gathered.written;
            let p = if resetscope::source::is_stdin(p) {
                Path::new("standard output")
            } else {
                p
            };
            if left_out > 0 {
                eprintln!(
                    "resetscope: warning: {left_out} connections with findings left out of {}: the memory budget was reached (raise --memory)",
                    p.display()
                );
            }
            if gathered.found == target_count {
                eprintln!(
                    "resetscope: {} connections with findings written to {} ({} frames)",
                    target_count,
                    p.display(),
                    w.frames
                );
            } else {
                eprintln!(
                    "resetscope: warning: only {} of the {} connections with findings written to {} ({} frames): the packets of the others were not found when the inputs were read again",
                    gathered.found,
                    target_count,
                    p.display(),
                    w.frames
                );
            }
            if w.misfits > 0 {
                eprintln!(
                    "resetscope: warning: {} frames did not fit the extract's header (cut to its snap length or their time clamped): the inputs changed between the two passes",
                    w.misfits
                );
            }
            if w.over_wireshark_limit > 0 {
                eprintln!(
                    "resetscope: note: {} frames in {} are longer than {WIRESHARK_MAX_FRAME} bytes: resetscope reads them back, but Wireshark and tshark refuse frames that long (as they refuse the input)",
                    w.over_wireshark_limit,
                    p.display()
                );
            }
        }
        ladders = gathered.ladders;
    }
    match r.format {
        Format::Json | Format::Ndjson => match stream.expect("a writer for a streamed report") {
            Stream::Json(w) => drop(w.finish(a).context("writing the JSON report")?),
            Stream::Ndjson(w) => drop(w.finish(a).context("writing the NDJSON lines")?),
        },
        Format::Terminal => write_terminal(a, names, r)?,
        Format::Markdown | Format::Html => {
            let title = if evidence.files.is_empty() {
                "live capture".to_string()
            } else {
                evidence
                    .files
                    .iter()
                    .map(|p| {
                        p.file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    })
                    .collect::<Vec<_>>()
                    .join(" + ")
            };
            let timeline = timeline.unwrap_or_default();
            let t = TicketReport {
                analysis: a,
                names,
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
    Ok(())
}

/// The inputs of the second pass: each file again, or the copy kept of one that cannot be
/// read twice.
pub fn second_pass_inputs(evidence: &Evidence<'_>) -> Result<Vec<Input>> {
    let mut inputs = Vec::new();
    for (i, path) in evidence.files.iter().enumerate() {
        inputs.push(match evidence.spools.get(i).and_then(Option::as_ref) {
            Some(spool) => Input {
                path: path.clone(),
                open: Open::File(spool.reopen().with_context(|| {
                    format!(
                        "reading back the copy of {} kept in {}",
                        path.display(),
                        spool.dir().display()
                    )
                })?),
            },
            None => Input::path(path),
        });
    }
    Ok(inputs)
}
