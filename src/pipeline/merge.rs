//! The merge: takes the shards' [`Event`]s in the capture's order of events and runs what
//! needs every connection: report ids in order of first packet, the flow table's peak
//! counts, and the diagnosis across connections ([`Diagnoser::take`]: per-server estimates,
//! held verdicts, proxies), which hands findings and records to the sink.
//!
//! Given the events in key order, it does exactly what it would with one shard, so a report
//! is the same byte for byte however many threads made it.

use super::shard::{Event, What};
use super::Sink;
use crate::diagnose::{Diagnoser, Diagnosis};
use crate::flows::FlowStats;
use rustc_hash::FxHashMap;

/// What one entry of the id map costs (entry and the table's slack).
const ID_COST: usize = 2 * (16 + 1) + 8;

/// The merge's state.
pub struct Merge {
    diag: Diagnoser,
    /// Report ids of the connections started and not yet released, by their first
    /// segment's index.
    ids: FxHashMap<u64, u64>,
    next_id: u64,
    /// Each shard's latest counts: connections held, and of them open.
    counts: Vec<(usize, usize)>,
    /// Each shard's latest sampled memory.
    bytes: Vec<usize>,
    peak_flows: usize,
    peak_open: usize,
    /// The most tracked memory at a sample.
    peak_bytes: usize,
    /// What the diagnosis and the sink may hold (their share of the budget).
    budget: usize,
    /// Times the sink was asked to give up evidence.
    sink_shed: u64,
}

impl Merge {
    /// A merge of `shards` shards, whose diagnosis and sink may hold `budget` bytes.
    pub fn new(diag: Diagnoser, shards: usize, budget: usize) -> Merge {
        Merge {
            diag,
            ids: FxHashMap::default(),
            next_id: 1,
            counts: vec![(0, 0); shards],
            bytes: vec![0; shards],
            peak_flows: 0,
            peak_open: 0,
            peak_bytes: 0,
            budget,
            sink_shed: 0,
        }
    }

    /// How much the events handed on by the shards and not yet merged
    /// ([`super::shard::Event::cost`]) may hold before the reading waits for the merge: an
    /// eighth of the merge's share of the budget. They are not counted in [`Merge::used`]:
    /// what waits depends on the threads' timing, and the merge's decisions (what to shed)
    /// must not, or the report would change with the number of threads.
    pub fn waiting_limit(&self) -> usize {
        self.budget / 8
    }

    /// Takes shard `shard`'s next event in the capture's order.
    pub fn event(&mut self, shard: usize, e: Event, sink: &mut dyn Sink) {
        self.counts[shard] = (e.flows, e.open);
        match e.what {
            What::Started => {
                self.ids.insert(e.sub, self.next_id);
                self.next_id += 1;
                self.peaks();
            }
            What::Counted => self.peaks(),
            What::Released(mut judged) => {
                let id = self.ids.remove(&e.sub).unwrap_or_else(|| {
                    debug_assert!(false, "connection {} released before it started", e.sub);
                    0
                });
                judged.set_id(id);
                self.diag.take(judged, sink);
            }
            What::Sample(bytes) => {
                self.bytes[shard] = bytes;
                // Every shard samples at the same segment, the last one last: only then is
                // the sum that of one moment.
                if shard + 1 == self.bytes.len() {
                    self.sampled(sink);
                }
            }
        }
    }

    /// Memory the merge holds: the diagnosis, the sink's evidence, the id map.
    fn used(&self, sink: &dyn Sink) -> usize {
        self.diag.heap_bytes() + sink.heap_bytes() + self.ids.capacity() * ID_COST
    }

    fn peaks(&mut self) {
        let (flows, open) = self
            .counts
            .iter()
            .fold((0, 0), |(f, o), &(a, b)| (f + a, o + b));
        self.peak_flows = self.peak_flows.max(flows);
        self.peak_open = self.peak_open.max(open);
    }

    /// All shards were sampled: the peak, and the budget of the diagnosis and the sink.
    fn sampled(&mut self, sink: &mut dyn Sink) {
        let used = self.used(sink);
        self.peak_bytes = self.peak_bytes.max(self.bytes.iter().sum::<usize>() + used);
        if used <= self.budget / 8 * 7 {
            return;
        }
        if self.diag.heap_bytes() > self.budget / 2 {
            self.diag.shed(sink);
        }
        if sink.heap_bytes() > self.budget / 2 {
            sink.shed();
            self.sink_shed += 1;
        }
        crate::allocator::release_free_memory();
    }

    /// How far the analysis has got, `frames` frames into `set`.
    pub fn progress(&self, set: &crate::source::merge::CaptureSet, frames: u64) -> super::Progress {
        let (bytes, total) = set.position();
        let (connections, failed_requests) = self.diag.so_far();
        super::Progress {
            bytes,
            total,
            frames,
            connections,
            failed_requests,
        }
    }

    /// The most tracked memory at a sample.
    pub fn peak_bytes(&self) -> usize {
        self.peak_bytes
    }

    /// Times the sink was asked to give up evidence.
    pub fn sink_shed(&self) -> u64 {
        self.sink_shed
    }

    /// Verdicts the memory budget made decide before the end.
    pub fn shed_held(&self) -> u64 {
        self.diag.shed_held()
    }

    /// The flow tables' counters summed, with the peaks of the whole table.
    pub fn flow_stats<'a>(&self, shards: impl IntoIterator<Item = &'a FlowStats>) -> FlowStats {
        let mut all = FlowStats::default();
        for s in shards {
            all.add(s);
        }
        all.peak_flows = self.peak_flows;
        all.peak_open = self.peak_open;
        all
    }

    /// Ends the capture (after every shard's last event): settles the diagnosis.
    pub fn finish(self, sink: &mut dyn Sink) -> Diagnosis {
        self.diag.finish(sink)
    }
}
