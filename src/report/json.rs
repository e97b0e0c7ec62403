//! The JSON report: one document, `schema_version` first, documented field by field in
//! `docs/json-schema.md`.
//!
//! Connection records are written as the analysis releases them ([`JsonWriter::record`]),
//! one per line inside the `connections` array, and findings as they are decided
//! ([`JsonWriter::finding`]) to memory and, past 2 MiB, to an unlinked
//! scratch file, spliced in at the end with the summary and the per-server estimates: a
//! capture of any size is reported, every connection and every finding, in bounded memory.
//! The scratch file is made before the first byte of the document is written, so that a
//! temporary directory that cannot take it is an error up front, not a document cut short.
//!
//! Every string goes through [`crate::escape::JsonFormatter`]: the text exactly as
//! captured, with control, format and separator characters written as `\u` escapes.

use super::caveats::{caveats_of, Caveat};
use super::json_items;
use crate::diagnose::estimate::ServerReport;
use crate::diagnose::{ConnectionRecord, Finding, FindingKind};
use crate::escape;
use crate::pipeline::{Analysis, PacketCounts};
use crate::source::FileStats;
use crate::time::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};

/// Version of the JSON layout; raised on any incompatible change.
pub const SCHEMA_VERSION: u32 = 2;

/// Writes the JSON document incrementally.
pub struct JsonWriter<W: Write> {
    out: W,
    records: u64,
    /// One line for the whole document (JSON Lines), instead of one line per record.
    compact: bool,
    /// Findings so far, comma-separated, until they are spliced in.
    spill: Spill,
    findings: u64,
    /// Reused buffer: each record is serialized here and written in one call.
    buf: Vec<u8>,
    /// First write error, reported at the end (the analysis keeps going).
    error: Option<io::Error>,
}

/// The capture at a glance.
#[derive(Serialize)]
pub struct Summary<'a> {
    /// Time of the first frame.
    pub first_time: Option<Timestamp>,
    /// Time of the last frame.
    pub last_time: Option<Timestamp>,
    /// Seconds between them.
    pub duration_s: f64,
    /// Packet counters.
    pub packets: &'a PacketCounts,
    /// Connection counters.
    pub connections: &'a crate::diagnose::ConnectionCounts,
    /// Findings per kind (every kind present, zero included).
    pub findings: BTreeMap<&'static str, u64>,
    /// Flow-table counters.
    pub flow_table: &'a crate::flows::FlowStats,
    /// The memory budget and what it made the analysis give up.
    pub memory: &'a crate::pipeline::MemoryReport,
    /// The time window and capture filter the analysis was narrowed to (absent when it was
    /// not: every frame read was analysed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub narrowed: &'a Option<crate::pipeline::narrow::Narrowed>,
    /// Inputs that could not be read at all and are not in the analysis (absent when every
    /// input was read).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<&'a str>,
}

/// What the document says after the findings (the NDJSON summary line says the same).
#[derive(Serialize)]
pub(crate) struct Tail<'a> {
    summary: Summary<'a>,
    servers: &'a [ServerReport],
    proxies: &'a [crate::diagnose::correlate::ProxyReport],
    path_resets: &'a Option<crate::diagnose::correlate::PathReport>,
    caveats: Vec<Caveat>,
    inputs: &'a [FileStats],
    errors: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel: &'a Option<crate::kernel::HostKernel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    live_capture: Option<crate::pipeline::KernelStats>,
}

/// Builds the summary of an analysis.
pub fn summary(a: &Analysis) -> Summary<'_> {
    let p = &a.packets;
    let duration_s = match (p.first_ts, p.last_ts) {
        (Some(f), Some(l)) => l.since(f).as_secs_f64(),
        _ => 0.0,
    };
    let mut findings: BTreeMap<&'static str, u64> =
        FindingKind::ALL.iter().map(|k| (k.name(), 0)).collect();
    for (k, n) in &a.diagnosis.counts {
        findings.insert(k.name(), *n);
    }
    Summary {
        first_time: p.first_ts,
        last_time: p.last_ts,
        duration_s,
        packets: p,
        connections: &a.diagnosis.connections,
        findings,
        flow_table: &a.flows,
        memory: &a.memory,
        narrowed: &a.narrowed,
        left_out: super::left_out::left_out(a),
    }
}

/// The summary, the per-server estimates, the proxies, the resets from the path, the caveats
/// (every finding is listed), the inputs, the errors and libpcap's counters.
pub(crate) fn tail(a: &Analysis) -> Tail<'_> {
    Tail {
        summary: summary(a),
        servers: &a.diagnosis.servers,
        proxies: &a.diagnosis.proxies,
        path_resets: &a.diagnosis.path,
        caveats: caveats_of(a, true),
        inputs: &a.inputs,
        errors: &a.input_errors,
        kernel: &a.host_kernel,
        live_capture: a.kernel,
    }
}

impl<W: Write> JsonWriter<W> {
    /// Starts the document, one connection record per line. Fails, before writing
    /// anything, when the scratch file for the findings cannot be made (see
    /// [`scratch_file`]).
    pub fn new(out: W) -> io::Result<JsonWriter<W>> {
        Self::start(out, false, "")
    }

    /// Starts the document on a single line (for JSON Lines streams), with `prefix` fields
    /// (e.g. `"type":"report",`) before the others. Fails like [`JsonWriter::new`].
    pub fn single_line(out: W, prefix: &str) -> io::Result<JsonWriter<W>> {
        Self::start(out, true, prefix)
    }

    fn start(mut out: W, compact: bool, prefix: &str) -> io::Result<JsonWriter<W>> {
        // Made now, though most captures never need it: failing here leaves the output
        // empty, where failing when the findings outgrow memory would leave it cut short.
        let scratch = scratch_file()?;
        let nl = if compact { "" } else { "\n" };
        let head = format!(
            "{{{prefix}\"schema_version\":{SCHEMA_VERSION},\"tool\":{{\"name\":\"resetscope\",\"version\":\"{}\"}},{nl}\"connections\":[",
            env!("CARGO_PKG_VERSION")
        );
        let error = out.write_all(head.as_bytes()).err();

        Ok(JsonWriter {
            out,
            records: 0,
            compact,
            spill: Spill::Memory(Vec::new(), Some(scratch)),
            findings: 0,
            buf: Vec::with_capacity(4096),
            error,
        })
    }

    /// Appends one connection record.
    pub fn record(&mut self, r: &ConnectionRecord) {
        if self.error.is_none() {
            let first = self.records == 0;
            self.records += 1;
            item(&mut self.buf, self.compact, first, |b| {
                json_items::record(b, r)
            });
            self.error = self.out.write_all(&self.buf).err();
        }
    }

    /// Appends one finding (they are listed after the connections).
    pub fn finding(&mut self, f: &Finding) {
        if self.error.is_none() {
            let first = self.findings == 0;
            self.findings += 1;
            item(&mut self.buf, self.compact, first, |b| {
                json_items::finding(b, f)
            });
            self.error = self.spill.write(&self.buf).err();
        }
    }

    /// Writes the rest of the document and returns the writer.
    pub fn finish(mut self, a: &Analysis) -> io::Result<W> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let body = escape::json_to_string(&tail(a)).map_err(io::Error::from)?;
        // The findings, then the tail object's fields, after the connections array.
        self.out.write_all(if self.compact {
            b"],\"findings\":["
        } else {
            b"\n],\n\"findings\":["
        })?;
        match std::mem::replace(&mut self.spill, Spill::Memory(Vec::new(), None)) {
            Spill::Memory(v, _) => self.out.write_all(&v)?,
            Spill::File(spill) => {
                let mut f = spill.into_inner().map_err(|e| e.into_error())?;
                f.rewind()?;
                io::copy(&mut f, &mut self.out)?;
            }
        }
        self.out
            .write_all(if self.compact { b"]," } else { b"\n],\n" })?;
        self.out.write_all(&body.as_bytes()[1..])?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> crate::pipeline::Sink for JsonWriter<W> {
    fn record(&mut self, record: &ConnectionRecord) {
        JsonWriter::record(self, record)
    }
    fn finding(&mut self, finding: &Finding) {
        JsonWriter::finding(self, finding)
    }
}

/// One array item, written into `buf` by `write` (see [`json_items`]) after its separator:
/// nothing or a comma before it, and a newline unless the document is on one line.
fn item(buf: &mut Vec<u8>, compact: bool, first: bool, write: impl FnOnce(&mut Vec<u8>)) {
    buf.clear();
    if !first {
        buf.push(b',');
    }
    if !compact {
        buf.push(b'\n');
    }
    write(buf);
}

/// Where findings wait: in memory up to [`SPILL_IN_MEMORY`] bytes (with the scratch file
/// made up front, unused), then in that scratch file.
enum Spill {
    Memory(Vec<u8>, Option<File>),
    File(BufWriter<File>),
}

/// Findings kept in memory before they go to a scratch file (most captures never get there).
const SPILL_IN_MEMORY: usize = 2 << 20;

impl Spill {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Spill::Memory(v, scratch) = self {
            if v.len() + bytes.len() <= SPILL_IN_MEMORY {
                v.extend_from_slice(bytes);
                return Ok(());
            }
            let file = match scratch.take() {
                Some(f) => f,
                None => scratch_file()?,
            };
            let mut f = BufWriter::new(file);
            f.write_all(v)?;
            *self = Spill::File(f);
        }
        match self {
            Spill::File(f) => f.write_all(bytes),
            Spill::Memory(..) => unreachable!("moved to a file above"),
        }
    }
}

/// An unlinked scratch file in the temporary directory (`TMPDIR`, else `/tmp`): it vanishes
/// when closed. The error names the directory and what to do.
pub fn scratch_file() -> io::Result<File> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir();
    let path = dir.join(format!(
        "resetscope-{}-{}.tmp",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot create a scratch file in the temporary directory {} (TMPDIR): {e}; set TMPDIR to a writable directory",
                    dir.display()
                ),
            )
        })?;
    let _ = std::fs::remove_file(&path);
    Ok(f)
}
