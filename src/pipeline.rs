//! The pipeline: source → decode → flows → application → diagnose, one packet at a time.
//!
//! [`Analyzer`] is fed [`RawPacket`]s by whoever reads them (capture files here, libpcap in
//! live mode), decodes each, files it in the flow table, and judges connections as the table
//! releases them. Connection records are handed to a caller-supplied sink the moment they
//! are final, so memory stays bounded however long the capture; [`Analyzer::finish`] returns
//! the [`Analysis`] that reports render.

use crate::app::Mark;
use crate::decode::{self, Skip};
use crate::diagnose::{ConnectionRecord, Diagnoser, Diagnosis, Finding};
use crate::flows::{FlowConfig, FlowStats, FlowTable};
use crate::source::merge::CaptureSet;
use crate::source::{FileStats, RawPacket, SourceError};
use crate::time::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where the analysis hands what it decides, the moment it is final: each finding as its
/// connection is judged, then that connection's record. Reports stream them out (JSON, live
/// lines) so that memory stays bounded however long the capture.
pub trait Sink {
    /// A connection left the flow table; this is its record.
    fn record(&mut self, _record: &ConnectionRecord) {}
    /// A finding was decided.
    fn finding(&mut self, _finding: &Finding) {}
}

/// Any closure over records is a sink that ignores findings.
impl<F: FnMut(&ConnectionRecord)> Sink for F {
    fn record(&mut self, record: &ConnectionRecord) {
        self(record)
    }
}

/// The sink of a caller.
pub type RecordSink<'a> = &'a mut dyn Sink;

/// Packet-level counters.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PacketCounts {
    /// Frames read.
    pub frames: u64,
    /// TCP segments analysed.
    pub tcp: u64,
    /// Frames on link types we do not decode, by link type.
    pub unsupported_link_types: BTreeMap<u32, u64>,
    /// Frames that are not IP.
    pub not_ip: u64,
    /// IP packets that are not TCP.
    pub not_tcp: u64,
    /// IP fragments (not reassembled).
    pub fragments: u64,
    /// Frames whose headers were cut or damaged so no TCP header could be read.
    pub malformed: u64,
    /// Frames cut by the snap length (captured length below wire length).
    pub cut: u64,
    /// First frame's time (reported as `summary.first_time`).
    #[serde(skip)]
    pub first_ts: Option<Timestamp>,
    /// Last frame's time (reported as `summary.last_time`).
    #[serde(skip)]
    pub last_ts: Option<Timestamp>,
    /// Frames whose time is earlier than the frame before them in the same file.
    pub time_backwards: u64,
    /// The first such frame.
    pub time_backwards_first: Option<crate::source::FrameRef>,
    /// The largest step back, in milliseconds.
    pub time_backwards_max_ms: f64,
    #[serde(skip)]
    previous: Option<(u16, Timestamp)>,
}

/// The outcome of analysing a capture.
#[derive(Debug)]
pub struct Analysis {
    /// Input files, in the order given.
    pub inputs: Vec<FileStats>,
    /// Errors met reading them (each names the file and frame).
    pub input_errors: Vec<String>,
    /// Packet counters.
    pub packets: PacketCounts,
    /// Flow-table counters.
    pub flows: FlowStats,
    /// Findings, estimates and connection counters.
    pub diagnosis: Diagnosis,
    /// libpcap's counters of a live capture.
    pub kernel: Option<KernelStats>,
}

/// Packet counts libpcap reports for a live capture (`pcap_stats`).
#[derive(Copy, Clone, Debug, Default, Serialize)]
pub struct KernelStats {
    /// Packets received by the filter.
    pub received: u64,
    /// Packets the kernel dropped because the capture buffer was full.
    pub dropped: u64,
    /// Packets the interface or its driver dropped.
    pub interface_dropped: u64,
}

/// Analysis options.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Flow-table limits.
    pub flows: FlowConfig,
    /// Decide findings that depend on a server's idle-timeout estimate as they come, once
    /// the estimate is firm (live capture), instead of at the end of the capture (offline:
    /// then they do not depend on the order connections leave the flow table).
    pub decide_early: bool,
}

/// The packet-by-packet driver.
pub struct Analyzer {
    flows: FlowTable,
    diag: Diagnoser,
    counts: PacketCounts,
}

impl Analyzer {
    /// A new analyzer.
    pub fn new(options: &Options) -> Analyzer {
        Analyzer {
            flows: FlowTable::new(options.flows.clone()),
            diag: Diagnoser::new(!options.decide_early),
            counts: PacketCounts::default(),
        }
    }

    /// Connections currently open in the flow table.
    pub fn open_connections(&self) -> usize {
        self.flows.len()
    }

    /// Takes one frame.
    pub fn packet(&mut self, p: &RawPacket<'_>, sink: RecordSink<'_>) {
        let c = &mut self.counts;
        c.frames += 1;
        if c.first_ts.is_none() {
            c.first_ts = Some(p.ts);
        }
        if let Some((file, prev)) = c.previous {
            if file == p.frame.file && p.ts < prev {
                let back = prev.since(p.ts);
                c.time_backwards += 1;
                c.time_backwards_first.get_or_insert(p.frame);
                c.time_backwards_max_ms = c.time_backwards_max_ms.max(back.as_millis_f64());
            }
        }
        c.previous = Some((p.frame.file, p.ts));
        c.last_ts = Some(c.last_ts.map_or(p.ts, |t| t.max(p.ts)));
        if (p.data.len() as u64) < p.orig_len as u64 {
            c.cut += 1;
        }
        match decode::decode(p.linktype, p.data) {
            Ok(seg) => {
                c.tcp += 1;
                let mark = Mark {
                    frame: p.frame,
                    ts: p.ts,
                };
                let diag = &mut self.diag;
                let mut done = |conn, why| diag.connection_done(conn, why, &mut *sink);
                self.flows.process(&seg, mark, &mut done);
                self.flows.sweep(p.ts, &mut done);
            }
            Err(Skip::LinkType) => *c.unsupported_link_types.entry(p.linktype).or_default() += 1,
            Err(Skip::NotIp) => c.not_ip += 1,
            Err(Skip::NotTcp) => c.not_tcp += 1,
            Err(Skip::Fragment) => c.fragments += 1,
            Err(Skip::Malformed) => c.malformed += 1,
        }
    }

    /// Releases connections whose time is up at `now` even when no packet arrives (live
    /// mode calls this from its timer).
    pub fn tick(&mut self, now: Timestamp, sink: RecordSink<'_>) {
        let diag = &mut self.diag;
        self.flows.sweep(now, &mut |conn, why| {
            diag.connection_done(conn, why, &mut *sink)
        });
    }

    /// Ends the capture: releases every connection and settles the diagnosis.
    pub fn finish(mut self, sink: RecordSink<'_>) -> Analysis {
        let diag = &mut self.diag;
        self.flows
            .finish(&mut |conn, why| diag.connection_done(conn, why, &mut *sink));
        Analysis {
            inputs: Vec::new(),
            input_errors: Vec::new(),
            packets: self.counts,
            flows: self.flows.stats.clone(),
            diagnosis: self.diag.finish(sink),
            kernel: None,
        }
    }
}

/// Analyses capture files as one capture. Files that cannot be read, and damage inside
/// files, are reported in [`Analysis::input_errors`]; what could be read is analysed.
/// Returns the analysis and whether any input was wholly unusable.
pub fn analyze_files(
    paths: &[PathBuf],
    options: &Options,
    sink: RecordSink<'_>,
) -> (Analysis, Vec<SourceError>) {
    analyze_set(CaptureSet::open(paths), options, sink)
}

/// [`analyze_files`] over inputs the caller opened (for one, a piped input copied to a
/// spool for a second pass, see [`crate::source::merge::Input`]).
pub fn analyze_set(
    mut set: CaptureSet,
    options: &Options,
    sink: RecordSink<'_>,
) -> (Analysis, Vec<SourceError>) {
    let mut analyzer = Analyzer::new(options);
    while let Some(p) = set.next_packet() {
        analyzer.packet(&p, sink);
    }
    let errors = set.take_errors();
    let mut analysis = analyzer.finish(sink);
    analysis.inputs = set.stats();
    analysis.input_errors = errors.iter().map(|e| e.to_string()).collect();
    (analysis, errors)
}
