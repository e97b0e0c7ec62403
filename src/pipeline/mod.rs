//! The pipeline: source → decode → flows → application → diagnose, one packet at a time.
//!
//! [`Analyzer`] is fed [`RawPacket`]s by whoever reads them (capture files here, libpcap in
//! live mode). Its front counts and decodes each frame and numbers the TCP segments; a
//! shard (`shard.rs`) files each segment in its flow table and judges connections as the
//! table releases them; the merge (`merge.rs`) takes what the shard hands on in the capture's
//! order of events and runs the diagnosis across connections. Connection records and
//! findings go to a caller-supplied [`Sink`] the moment they are final, so memory stays
//! bounded however long the capture; [`Analyzer::finish`] returns the [`Analysis`] that
//! reports render.
//!
//! [`analyze_set`] with [`Options::threads`] above 1 runs several shards, each on its own
//! thread, over the connections of a share of the 4-tuples (`parallel.rs`); the merge puts
//! their events back into the order one shard makes, so the analysis is the same. Several
//! input files are then parsed each on a thread of its own
//! ([`crate::source::read_ahead`]).

mod drops;
mod merge;
pub mod narrow;
pub use drops::DropWindow;
mod parallel;
mod shard;

use crate::app::Mark;
use crate::decode::{self, Skip};
use crate::diagnose::{ConnectionRecord, Diagnoser, Diagnosis, Finding};
use crate::flows::{FlowConfig, FlowStats};
use crate::source::merge::CaptureSet;
use crate::source::{FileStats, RawPacket, SourceError};
use crate::time::Timestamp;
use merge::Merge;
use serde::Serialize;
use shard::Shard;
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
    /// Memory the sink holds for the report (counted in the memory budget).
    fn heap_bytes(&self) -> usize {
        0
    }
    /// Memory budget: give up what the report can do without (say so in its caveats).
    fn shed(&mut self) {}
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
    /// Frames inside the time window that the capture filter kept (all frames read when
    /// neither is given); the others are not analysed.
    pub matched: u64,
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
    /// The most a frame's time was behind the latest time before it, over all the inputs
    /// in the order they were read: how far behind its clock the second pass may still
    /// meet a connection's packet (see [`crate::report::evidence::gather`]).
    #[serde(skip)]
    pub max_behind: crate::time::Nanos,
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
    /// When a live capture lost packets (see [`DropWindow`]); empty offline.
    pub drop_windows: Vec<DropWindow>,
    /// What the host's kernel said of the resets, and its counters (live capture, or a
    /// pcapng one wrote).
    pub host_kernel: Option<crate::kernel::HostKernel>,
    /// The memory budget, and what it made the analysis give up.
    pub memory: MemoryReport,
    /// The time window and capture filter the analysis was narrowed to, if any.
    pub narrowed: Option<narrow::Narrowed>,
}

/// The memory budget of a run (`--memory`), how much of it was used, and what was given up
/// to stay within it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MemoryReport {
    /// The budget.
    pub budget_bytes: u64,
    /// The most the tracked state held at once (connections, their buffers and protocol
    /// state, held verdicts, kept findings, tallies and the report's own evidence).
    pub peak_bytes: u64,
    /// What was given up, by kind (empty when nothing was).
    pub shed: BTreeMap<&'static str, u64>,
}

/// Memory the budget leaves aside for what it does not track item by item: the binary, the
/// input buffers, the report being written, the caps' fixed maximums.
pub const BUDGET_RESERVE: usize = 16 << 20;
/// The share of the rest, in percent, that the tracked state may use; the allocator's
/// overhead takes the others. The tracked figures are what was allocated to within 1 %
/// (checked against a counting allocator on a flood of half-sent heads); what the allocator
/// keeps beyond that is its free memory, given back to the system after each shedding
/// ([`crate::allocator::release_free_memory`]).
pub const TRACKED_PERCENT: usize = 75;
/// Tracked bytes as `--memory` counts them: the allocator's share and the reserve added.
fn as_budgeted(tracked: usize) -> u64 {
    (tracked * 100 / TRACKED_PERCENT + BUDGET_RESERVE) as u64
}

/// The smallest budget accepted.
pub const MIN_BUDGET: usize = 48 << 20;
/// The default budget.
pub const DEFAULT_BUDGET: usize = 512 << 20;

/// Packet counts libpcap reports for a live capture (`pcap_stats`).
#[derive(Copy, Clone, Debug, Default, Serialize)]
pub struct KernelStats {
    /// Packets received by the filter.
    pub received: u64,
    /// Packets the kernel dropped because the capture buffer was full.
    pub dropped: u64,
    /// Packets the interface or its driver dropped.
    pub interface_dropped: u64,
    /// Packets read from libpcap and analysed.
    pub read: u64,
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
    /// The memory budget in bytes (0: [`DEFAULT_BUDGET`]).
    pub memory: usize,
    /// Threads that hold the flow table, each a shard of the connections (0 or 1: the
    /// calling thread alone). The report is the same whatever the number.
    pub threads: usize,
    /// Parse several input files each on a thread of its own
    /// ([`crate::source::read_ahead`]); the report is the same. `None`: when the machine
    /// has a core that the analysis's own threads leave over ([`spare_core`]).
    pub read_ahead: Option<bool>,
    /// The time window and capture filter (`--since`, `--until`, `-- FILTER`).
    pub narrow: std::sync::Arc<narrow::Narrow>,
    /// The kernel's reasons for RSTs by frame: read from packet comments as frames pass,
    /// and joined to findings and closes (see [`crate::kernel::reason`]).
    pub kernel: crate::kernel::reason::ReasonTable,
}

impl std::fmt::Debug for narrow::Narrow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Narrow")
            .field("since", &self.since)
            .field("until", &self.until)
            .field("filter", &self.filter_text)
            .finish()
    }
}

/// The share of the tracked budget the flow tables may hold; the diagnosis and the
/// report's evidence hold the rest.
const FLOWS_SHARE_PERCENT: usize = 75;

/// Segments between two samples of the tracked memory (the same segments whatever the
/// number of shards, so that the peak reported is too).
const SAMPLE_EVERY: u64 = 4096;

/// What every shard's budget and the merge's come from.
fn budgets(options: &Options, shards: usize) -> (usize, usize, usize) {
    let budget = match options.memory {
        0 => DEFAULT_BUDGET,
        m => m.max(MIN_BUDGET),
    };
    let tracked = (budget - BUDGET_RESERVE) / 100 * TRACKED_PERCENT;
    let flows = tracked / 100 * FLOWS_SHARE_PERCENT;
    (budget, flows / shards, tracked - flows)
}

/// The part of the analysis that sees every frame, before the shards: packet counters,
/// decoding, the numbering of TCP segments, and when to sweep the flow tables and sample
/// their memory (at the same segments however many shards there are).
#[derive(Default)]
struct Front {
    counts: PacketCounts,
    last_sweep: Option<Timestamp>,
    /// How often the flow tables are swept ([`crate::flows::FlowConfig::sweep_every`]).
    sweep_every: crate::time::Nanos,
    /// What narrows the analysis, when anything does.
    narrow: Option<std::sync::Arc<narrow::Narrow>>,
    /// `narrow`'s window, once the first frame has fixed it.
    window: Option<narrow::Window>,
    /// Where kernel reasons from packet comments go.
    kernel: crate::kernel::reason::ReasonTable,
}

/// What the front made of a frame.
enum Fronted<'a> {
    /// Not a TCP segment (counted).
    Skipped,
    /// TCP segment number `index`, and what to do after filing it.
    Segment {
        index: u64,
        seg: decode::TcpSegment<'a>,
        mark: Mark,
        sweep: bool,
        sample: bool,
    },
}

impl Front {
    fn new(options: &Options) -> Front {
        Front {
            narrow: (!options.narrow.is_empty()).then(|| options.narrow.clone()),
            kernel: options.kernel.clone(),
            sweep_every: options.flows.sweep_every,
            ..Front::default()
        }
    }

    /// Whether the time window and the filter keep the frame.
    fn keeps(&mut self, p: &RawPacket<'_>) -> bool {
        let Some(n) = self.narrow.as_deref() else {
            return true;
        };
        let first = self.counts.first_ts.unwrap_or(p.ts);
        let window = *self.window.get_or_insert_with(|| n.resolve(first));
        n.keeps(window, p)
    }

    fn frame<'a>(&mut self, p: &RawPacket<'a>) -> Fronted<'a> {
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
        if let Some(latest) = c.last_ts {
            if p.ts < latest {
                c.max_behind = c.max_behind.max(latest.since(p.ts));
            }
        }
        c.last_ts = Some(c.last_ts.map_or(p.ts, |t| t.max(p.ts)));
        if (p.data.len() as u64) < p.orig_len as u64 {
            c.cut += 1;
        }
        if !self.keeps(p) {
            return Fronted::Skipped;
        }
        if let Some(r) = p
            .comment
            .and_then(crate::kernel::reason::KernelReason::from_comment)
        {
            self.kernel.insert(p.frame, r);
        }
        let c = &mut self.counts;
        c.matched += 1;
        match decode::decode(p.linktype, p.data) {
            Ok(seg) => {
                c.tcp += 1;
                let sweep = self
                    .last_sweep
                    .is_none_or(|last| p.ts.since(last) >= self.sweep_every);
                if sweep {
                    self.last_sweep = Some(p.ts);
                }
                Fronted::Segment {
                    index: c.tcp,
                    seg,
                    mark: Mark {
                        frame: p.frame,
                        ts: p.ts,
                    },
                    sweep,
                    sample: c.tcp % SAMPLE_EVERY == 0,
                }
            }
            Err(e) => {
                match e {
                    Skip::LinkType => *c.unsupported_link_types.entry(p.linktype).or_default() += 1,
                    Skip::NotIp => c.not_ip += 1,
                    Skip::NotTcp => c.not_tcp += 1,
                    Skip::Fragment => c.fragments += 1,
                    Skip::Malformed => c.malformed += 1,
                }
                Fronted::Skipped
            }
        }
    }
}

/// The packet-by-packet driver, on the calling thread (see [`analyze_set`] for several).
pub struct Analyzer {
    front: Front,
    shard: Shard,
    merge: Merge,
    /// The budget (`--memory`).
    budget_bytes: usize,
}

impl Analyzer {
    /// A new analyzer.
    pub fn new(options: &Options) -> Analyzer {
        let (budget_bytes, shard_budget, merge_budget) = budgets(options, 1);
        Analyzer {
            front: Front::new(options),
            shard: Shard::new(0, options.flows.clone(), shard_budget),
            merge: Merge::new(
                Diagnoser::new(!options.decide_early).with_kernel(options.kernel.clone()),
                1,
                merge_budget,
            ),
            budget_bytes,
        }
    }

    /// Connections currently open in the flow table.
    pub fn open_connections(&self) -> usize {
        self.shard.connections()
    }

    /// Takes one frame.
    pub fn packet(&mut self, p: &RawPacket<'_>, sink: RecordSink<'_>) {
        if let Fronted::Segment {
            index,
            seg,
            mark,
            sweep,
            sample,
        } = self.front.frame(p)
        {
            self.shard.segment(index, &seg, mark);
            if sweep {
                self.shard.sweep(index, mark.ts);
            }
            if sample {
                self.shard.sample(index);
            }
            self.merge_events(sink);
        }
    }

    fn merge_events(&mut self, sink: RecordSink<'_>) {
        for e in self.shard.take_events() {
            self.merge.event(0, e, sink);
        }
    }

    /// Releases connections whose time is up at `now` even when no packet arrives (live
    /// mode calls this from its timer).
    pub fn tick(&mut self, now: Timestamp, sink: RecordSink<'_>) {
        self.shard.sweep(self.front.counts.tcp, now);
        self.merge_events(sink);
    }

    /// Ends the capture: releases every connection and settles the diagnosis.
    pub fn finish(mut self, sink: RecordSink<'_>) -> Analysis {
        self.shard.finish();
        self.merge_events(sink);
        let flows = self.merge.flow_stats([self.shard.stats()]);
        finish(
            self.front.counts,
            flows,
            self.merge,
            self.budget_bytes,
            sink,
        )
    }
}

/// The analysis, once every shard's last event is merged.
fn finish(
    packets: PacketCounts,
    flows: FlowStats,
    merge: Merge,
    budget_bytes: usize,
    sink: RecordSink<'_>,
) -> Analysis {
    let s = &flows.shed;
    let mut shed = BTreeMap::new();
    for (what, n) in [
        ("closed_connections_released_early", s.closed_early),
        ("tombstones_forgotten", s.tombstones),
        ("out_of_order_buffers_given_up", s.buffers),
        ("heads_cut", s.heads),
        ("answered_requests_folded", s.requests_folded),
        ("open_connections_judged_early", s.evicted),
        ("verdicts_decided_early", merge.shed_held()),
        ("report_evidence_limited", merge.sink_shed()),
    ] {
        if n > 0 {
            shed.insert(what, n);
        }
    }
    let memory = MemoryReport {
        budget_bytes: budget_bytes as u64,
        peak_bytes: as_budgeted(merge.peak_bytes()),
        shed,
    };
    Analysis {
        inputs: Vec::new(),
        input_errors: Vec::new(),
        packets,
        flows,
        diagnosis: merge.finish(sink),
        kernel: None,
        drop_windows: Vec::new(),
        host_kernel: None,
        memory,
        narrowed: None,
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

/// How far an analysis has got, for a progress display.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// Bytes of the inputs read.
    pub bytes: u64,
    /// Their total size, when every input's is known (not for pipes).
    pub total: Option<u64>,
    /// Frames read.
    pub frames: u64,
    /// Connections judged.
    pub connections: u64,
    /// Requests found failed in them.
    pub failed_requests: u64,
}

/// Frames between two calls of the progress callback.
const PROGRESS_EVERY: u64 = 1 << 14;

/// Something that shows progress: called every few thousand frames.
pub type Watch<'a> = &'a mut dyn FnMut(&Progress);

/// [`analyze_files`] over inputs the caller opened (for one, a piped input copied to a
/// spool for a second pass, see [`crate::source::merge::Input`]).
pub fn analyze_set(
    set: CaptureSet,
    options: &Options,
    sink: RecordSink<'_>,
) -> (Analysis, Vec<SourceError>) {
    analyze_watched(set, options, sink, &mut |_| {})
}

/// Whether the machine has a core beyond the `threads` that the analysis keeps busy.
/// Reading several files ahead, each on its own thread, is worth it only then: on 2 cores,
/// 4 files of 300,000 frames each, it makes `--threads 1` 1.12 to 1.19 times as fast, and
/// `--threads 2` 5 to 13 % slower (its shards and its merge already take both cores).
pub fn spare_core(threads: usize) -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() > threads.max(1))
}

/// [`analyze_set`], telling `watch` how far it has got every few thousand frames.
pub fn analyze_watched(
    mut set: CaptureSet,
    options: &Options,
    sink: RecordSink<'_>,
    watch: Watch<'_>,
) -> (Analysis, Vec<SourceError>) {
    if options
        .read_ahead
        .unwrap_or_else(|| spare_core(options.threads))
    {
        set.read_ahead();
    }
    let mut analysis = if options.threads > 1 {
        parallel::analyze(&mut set, options, options.threads, sink, watch)
    } else {
        let mut analyzer = Analyzer::new(options);
        while let Some(p) = set.next_packet() {
            analyzer.packet(&p, sink);
            let frames = analyzer.front.counts.frames;
            if frames % PROGRESS_EVERY == 0 {
                watch(&analyzer.merge.progress(&set, frames));
            }
        }
        analyzer.finish(sink)
    };
    let errors = set.take_errors();
    analysis.inputs = set.stats();
    analysis.narrowed = options.narrow.described(analysis.packets.first_ts);
    if !options.kernel.is_empty() {
        analysis.host_kernel = Some(crate::kernel::HostKernel {
            reasons_from: Some("packet_comments"),
            resets: crate::kernel::HostKernel::counts(&options.kernel),
            ..Default::default()
        });
    }
    analysis.input_errors = errors.iter().map(|e| e.to_string()).collect();
    (analysis, errors)
}
