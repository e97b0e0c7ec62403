//! The analysis on several threads: the calling thread reads, decodes and numbers the
//! frames ([`Front`]), hands each TCP segment to the shard of its 4-tuple
//! ([`crate::flows::shard_of`]) on a worker thread, and merges what the shards hand back
//! ([`Merge`]) in the capture's order of events, so that the report is the one a single
//! thread makes, byte for byte.
//!
//! Segments go to the workers in batches, every shard's at once, each batch saying how far
//! the capture has got (its watermark): an event of one shard is merged once every other
//! shard has either handed on an event that comes later or got past the same segment. The
//! channels to the workers are bounded (the reader waits for a slow worker), so at most a few
//! batches per worker are in flight whatever the capture.

use super::shard::{Event, Shard, END};
use super::{budgets, finish, Analysis, Front, Fronted, Options, RecordSink};
use crate::app::Mark;
use crate::decode::TcpSegment;
use crate::diagnose::Diagnoser;
use crate::flows::{shard_of, FlowStats};
use crate::source::merge::CaptureSet;
use crate::time::Timestamp;
use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};

/// Segments read between two hand-overs to the workers (all shards together).
const BATCH_SEGMENTS: usize = 2048;
/// Payload bytes read between two hand-overs.
const BATCH_BYTES: usize = 1 << 20;
/// Batches that may wait for each worker, at most: the workers' slack, and the events a
/// shard may hand on ahead of the others (see [`queue_depth`]).
const QUEUE: usize = 4;

/// Batches that may wait for each worker: one per 4 MiB of the merge's share of the budget,
/// 1 to [`QUEUE`]. A shard that runs ahead hands on the released connections of every batch
/// it was given, and they wait for the others (a batch's may hold 3 MB of verdicts when its
/// shard sheds). Measured on 150,000 refused connections under `--memory 64M` (the merge's
/// share is 9 MiB: 2 batches), JSON at 2 threads, 10 runs: peak RSS 60 to 72 MiB with 2,
/// 65 to 76 with 4; at the default budget (4), 1.2 M packets are 10 to 15 % faster with 4.
fn queue_depth(merge_budget: usize) -> usize {
    (merge_budget / (4 << 20)).clamp(1, QUEUE)
}

/// What a worker is to do, in order.
enum Item {
    /// File segment `index`; its payload is `bytes[start..end]` of the batch.
    Segment {
        index: u64,
        head: TcpSegment<'static>,
        start: usize,
        end: usize,
        mark: Mark,
    },
    /// Sweep the table at segment `index`.
    Sweep { index: u64, now: Timestamp },
    /// Sample the table's memory at segment `index`.
    Sample { index: u64 },
}

/// Work for one shard.
#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    bytes: Vec<u8>,
    /// The capture has got this far: no later batch holds an earlier segment.
    watermark: u64,
    /// The capture ended: release every connection.
    finish: bool,
}

/// What a worker hands back for one batch.
struct Output {
    shard: usize,
    /// The batch, emptied, to be filled again (its buffers keep their size).
    spent: Batch,
    events: Vec<Event>,
    /// What the events hold ([`Event::cost`]).
    cost: usize,
    watermark: u64,
    /// The table's counters, with the last batch.
    stats: Option<FlowStats>,
}

/// Analyses `set` with `threads` shards, each on a thread of its own.
pub(super) fn analyze(
    set: &mut CaptureSet,
    options: &Options,
    threads: usize,
    sink: RecordSink<'_>,
    watch: super::Watch<'_>,
) -> Analysis {
    let n = threads.max(1);
    let (budget_bytes, shard_budget, merge_budget) = budgets(options, n);
    let mut front = Front::new(options);
    let mut merging = Merging {
        merge: super::Merge::new(
            Diagnoser::new(!options.decide_early).with_kernel(options.kernel.clone()),
            n,
            merge_budget,
        ),
        queues: (0..n).map(|_| VecDeque::new()).collect(),
        spare: (0..n).map(|_| Vec::new()).collect(),
        marks: vec![0; n],
        stats: vec![None; n],
        waiting: 0,
        outstanding: 0,
    };
    std::thread::scope(|scope| {
        let (out_tx, out_rx) = mpsc::channel::<Output>();
        let mut inputs: Vec<SyncSender<Batch>> = Vec::with_capacity(n);
        for number in 0..n {
            let (tx, rx) = mpsc::sync_channel::<Batch>(queue_depth(merge_budget));
            let out = out_tx.clone();
            // Each shard has the whole cap: shared out, a shard that happens to hold more
            // than its share of the open connections would evict some that one table would
            // not (the memory budget, shared out, bounds them all).
            let config = options.flows.clone();
            std::thread::Builder::new()
                .name(format!("resetscope-shard-{number}"))
                .spawn_scoped(scope, move || {
                    work(Shard::new(number, config, shard_budget), number, rx, out)
                })
                .expect("a worker thread");
            inputs.push(tx);
        }
        drop(out_tx);
        let mut batches: Vec<Batch> = (0..n).map(|_| Batch::default()).collect();
        let (mut segments, mut bytes, mut last, mut shown) = (0, 0, 0, 0);
        while let Some(p) = set.next_packet() {
            let Fronted::Segment {
                index,
                seg,
                mark,
                sweep,
                sample,
            } = front.frame(&p)
            else {
                continue;
            };
            last = index;
            let b = &mut batches[shard_of(&seg, n)];
            let start = b.bytes.len();
            b.bytes.extend_from_slice(seg.payload);
            b.items.push(Item::Segment {
                index,
                head: TcpSegment {
                    payload: &[],
                    ..seg
                },
                start,
                end: b.bytes.len(),
                mark,
            });
            for b in batches.iter_mut() {
                if sweep {
                    b.items.push(Item::Sweep {
                        index,
                        now: mark.ts,
                    });
                }
                if sample {
                    b.items.push(Item::Sample { index });
                }
            }
            segments += 1;
            bytes += seg.payload.len();
            if segments >= BATCH_SEGMENTS || bytes >= BATCH_BYTES {
                hand_over(&mut batches, &mut merging.spare, &inputs, index, false);
                merging.outstanding += n;
                (segments, bytes) = (0, 0);
                merging.take(&out_rx, false, sink);
                merging.relieve(&out_rx, sink);
                let frames = front.counts.frames;
                if frames - shown >= super::PROGRESS_EVERY {
                    shown = frames;
                    watch(&merging.merge.progress(set, frames));
                }
            }
        }
        hand_over(&mut batches, &mut merging.spare, &inputs, last, true);
        drop(inputs);
        merging.take(&out_rx, true, sink);
    });
    let Merging { merge, stats, .. } = merging;
    let stats: Vec<FlowStats> = stats.into_iter().map(Option::unwrap_or_default).collect();
    let flows = merge.flow_stats(&stats);
    finish(front.counts, flows, merge, budget_bytes, sink)
}

/// Sends every shard its batch, with the watermark `index`, and starts the next ones on
/// spent batches where there are.
fn hand_over(
    batches: &mut [Batch],
    spare: &mut [Vec<Batch>],
    inputs: &[SyncSender<Batch>],
    index: u64,
    last: bool,
) {
    for ((b, tx), spare) in batches.iter_mut().zip(inputs).zip(spare) {
        let mut b = std::mem::replace(b, spare.pop().unwrap_or_default());
        b.watermark = index;
        b.finish = last;
        // A worker only stops early when it panicked; the scope then reports the panic.
        let _ = tx.send(b);
    }
}

/// A worker: files its batches in its shard and hands back the events.
fn work(mut shard: Shard, number: usize, rx: Receiver<Batch>, out: Sender<Output>) {
    for mut b in rx {
        for item in &b.items {
            match *item {
                Item::Segment {
                    index,
                    head,
                    start,
                    end,
                    mark,
                } => {
                    let seg = TcpSegment {
                        payload: &b.bytes[start..end],
                        ..head
                    };
                    shard.segment(index, &seg, mark);
                }
                Item::Sweep { index, now } => shard.sweep(index, now),
                Item::Sample { index } => shard.sample(index),
            }
        }
        if b.finish {
            shard.finish();
        }
        let (watermark, finish) = (b.watermark, b.finish);
        b.items.clear();
        b.bytes.clear();
        let events: Vec<Event> = shard.take_events().collect();
        let output = Output {
            shard: number,
            spent: b,
            cost: events.iter().map(Event::cost).sum(),
            events,
            watermark: if finish { END } else { watermark },
            stats: finish.then(|| shard.stats().clone()),
        };
        if out.send(output).is_err() {
            return;
        }
    }
}

/// The merge and what waits for it.
struct Merging {
    merge: super::Merge,
    /// Each shard's events not yet merged.
    queues: Vec<VecDeque<Event>>,
    /// Each shard's spent batches.
    spare: Vec<Vec<Batch>>,
    /// How far each shard has got (see [`Batch::watermark`]).
    marks: Vec<u64>,
    /// Each shard's counters, once it has finished.
    stats: Vec<Option<FlowStats>>,
    /// What the events in `queues` hold ([`Event::cost`]).
    waiting: usize,
    /// Batches handed over whose output has not come back.
    outstanding: usize,
}

impl Merging {
    /// Takes what the workers handed back (all of it, to the end, with `to_end`) and merges
    /// every event whose turn has come.
    fn take(&mut self, rx: &Receiver<Output>, to_end: bool, sink: RecordSink<'_>) {
        loop {
            let got = if to_end {
                rx.recv().map_err(|_| TryRecvError::Disconnected)
            } else {
                rx.try_recv()
            };
            match got {
                Ok(o) => self.receive(o, sink),
                Err(_) => break,
            }
        }
    }

    /// While the waiting events hold more than the merge allows them
    /// ([`super::Merge::waiting_limit`]), waits for the workers' outputs and merges: the
    /// shards may run ahead of the merge only so far. A shed hands on thousands of released
    /// connections at once, and they wait until every other shard has caught up (3,000 per
    /// output and 10,000 waiting, about 10 MiB, for 150,000 refused connections under
    /// `--memory 64M`).
    fn relieve(&mut self, rx: &Receiver<Output>, sink: RecordSink<'_>) {
        while self.waiting > self.merge.waiting_limit() && self.outstanding > 0 {
            match rx.recv() {
                Ok(o) => self.receive(o, sink),
                Err(_) => return,
            }
        }
    }

    /// Queues one output's events and merges every event whose turn has come.
    fn receive(&mut self, o: Output, sink: RecordSink<'_>) {
        self.outstanding = self.outstanding.saturating_sub(1);
        self.waiting += o.cost;
        self.queues[o.shard].extend(o.events);
        self.spare[o.shard].push(o.spent);
        self.marks[o.shard] = o.watermark;
        if o.stats.is_some() {
            self.stats[o.shard] = o.stats;
        }
        self.merge_ready(sink);
    }

    /// Merges events in key order while it is sure that no shard will hand on an earlier
    /// one.
    fn merge_ready(&mut self, sink: RecordSink<'_>) {
        loop {
            let mut best: Option<((u64, u8, u64), usize)> = None;
            for (s, q) in self.queues.iter().enumerate() {
                if let Some(e) = q.front() {
                    if best.is_none_or(|(k, _)| e.key() < k) {
                        best = Some((e.key(), s));
                    }
                }
            }
            let Some(((index, ..), s)) = best else {
                return;
            };
            let waits = self
                .queues
                .iter()
                .zip(&self.marks)
                .any(|(q, &mark)| q.is_empty() && mark < index);
            if waits {
                return;
            }
            let e = self.queues[s].pop_front().expect("a head");
            self.waiting = self.waiting.saturating_sub(e.cost());
            self.merge.event(s, e, sink);
        }
    }
}
