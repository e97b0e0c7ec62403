//! One shard of the flow table: the connections of a share of the 4-tuples, their
//! reassembly and application parsing, and the judgement of each connection as it leaves
//! the table ([`crate::diagnose::judge`]).
//!
//! A shard hands on [`Event`]s, each keyed by where it happened in the capture: the index
//! of the TCP segment being processed (or of the sweep or sample broadcast to every shard at
//! that segment), a phase within it, and the connection's id. A shard's events come in key
//! order, so the merge ([`super::merge`]) can interleave the shards' events into the one
//! order a single table would have produced, whatever the number of shards.

use crate::allocator::release_free_memory;
use crate::app::Mark;
use crate::decode::TcpSegment;
use crate::diagnose::{judge, Judged};
use crate::flows::{Connection, FlowConfig, FlowStats, FlowTable, Release};
use crate::time::Timestamp;

/// Where in the processing of one segment an event happened, in the order a single table
/// does it.
pub mod phase {
    /// A connection released while the segment was filed (its 4-tuple reused, the table
    /// full).
    pub const FILED_RELEASE: u8 = 0;
    /// The segment was filed: a connection started, closed, or reopened.
    pub const FILED: u8 = 1;
    /// A connection released by the memory budget.
    pub const SHED: u8 = 2;
    /// A closed connection released after its linger time.
    pub const SWEPT_CLOSED: u8 = 3;
    /// A silent connection released.
    pub const SWEPT_IDLE: u8 = 4;
    /// The shard's memory, sampled.
    pub const SAMPLE: u8 = 5;
}

/// The segment index of the events at the end of the capture.
pub const END: u64 = u64::MAX;

/// Something a shard did, for the merge.
pub struct Event {
    /// The segment at which it happened ([`END`] at the end of the capture).
    pub index: u64,
    /// See [`phase`].
    pub phase: u8,
    /// The connection's id (its first segment's index), or the shard's number for samples.
    pub sub: u64,
    /// Connections the shard holds after the event.
    pub flows: usize,
    /// Of them, not closed.
    pub open: usize,
    /// What happened.
    pub what: What,
}

impl Event {
    /// The event's place in the capture's order of events.
    pub fn key(&self) -> (u64, u8, u64) {
        (self.index, self.phase, self.sub)
    }

    /// What it holds in memory (an estimate, for the memory budget): a released
    /// connection's verdict, record and findings.
    pub fn cost(&self) -> usize {
        std::mem::size_of::<Event>()
            + match &self.what {
                What::Released(judged) => judged.heap_bytes(),
                _ => 0,
            }
    }
}

/// What a shard did.
pub enum What {
    /// A connection started (its id is the event's `sub`).
    Started,
    /// The shard's counts of connections changed.
    Counted,
    /// A connection left the table, judged.
    Released(Judged),
    /// The shard's tracked memory in bytes.
    Sample(usize),
}

/// One shard.
pub struct Shard {
    /// Its number among the shards.
    number: u64,
    flows: FlowTable,
    /// What its tracked state may hold (its share of the memory budget).
    budget: usize,
    /// Segments filed, for the budget's check every 64.
    filed: u64,
    /// Events not yet taken by the merge.
    events: Vec<Event>,
}

impl Shard {
    /// Shard `number`, with `budget` bytes of tracked state.
    pub fn new(number: usize, config: FlowConfig, budget: usize) -> Shard {
        Shard {
            number: number as u64,
            flows: FlowTable::new(config),
            budget,
            filed: 0,
            events: Vec::new(),
        }
    }

    /// Files segment `index`.
    pub fn segment(&mut self, index: u64, seg: &TcpSegment<'_>, mark: Mark) {
        let (flows, open, started) = (
            self.flows.len(),
            self.flows.open(),
            self.flows.stats.connections,
        );
        let events = &mut self.events;
        let table = &mut self.flows;
        table.process(seg, mark, index, &mut |c, why| {
            push_release(events, index, phase::FILED_RELEASE, c, why)
        });
        self.count_releases();
        if self.flows.stats.connections != started {
            self.event(index, phase::FILED, index, What::Started);
        } else if (self.flows.len(), self.flows.open()) != (flows, open) {
            self.event(index, phase::FILED, 0, What::Counted);
        }
        self.filed += 1;
        if self.filed & 63 == 0 {
            self.keep_budget(index, mark.ts);
        }
    }

    /// Releases the connections whose time is up at `now` (broadcast to every shard at
    /// segment `index`).
    pub fn sweep(&mut self, index: u64, now: Timestamp) {
        let events = &mut self.events;
        self.flows.sweep(now, &mut |c, why| {
            let p = if why == Release::Idle {
                phase::SWEPT_IDLE
            } else {
                phase::SWEPT_CLOSED
            };
            push_release(events, index, p, c, why)
        });
        self.count_releases();
    }

    /// Reports the tracked memory (broadcast to every shard at segment `index`).
    pub fn sample(&mut self, index: u64) {
        let bytes = self.flows.heap_bytes();
        self.event(index, phase::SAMPLE, self.number, What::Sample(bytes));
    }

    /// Ends the capture: releases every connection, in order of id.
    pub fn finish(&mut self) {
        let events = &mut self.events;
        self.flows
            .finish(&mut |c, why| push_release(events, END, phase::FILED_RELEASE, c, why));
        self.count_releases();
        self.sample(END);
    }

    /// The events so far, in key order.
    pub fn take_events(&mut self) -> std::vec::Drain<'_, Event> {
        self.events.drain(..)
    }

    /// The table's counters.
    pub fn stats(&self) -> &FlowStats {
        &self.flows.stats
    }

    /// Connections held.
    pub fn connections(&self) -> usize {
        self.flows.len()
    }

    /// Gives the release events of the table's call just made the table's counts after it.
    /// Releases only lower the counts, and the merge compares counts with their peak only
    /// when they rise, so the counts after the last release serve for every release of the
    /// call.
    fn count_releases(&mut self) {
        let (flows, open) = (self.flows.len(), self.flows.open());
        for e in self
            .events
            .iter_mut()
            .rev()
            .take_while(|e| e.flows == UNKNOWN)
        {
            e.flows = flows;
            e.open = open;
        }
    }

    fn event(&mut self, index: u64, phase: u8, sub: u64, what: What) {
        self.events.push(Event {
            index,
            phase,
            sub,
            flows: self.flows.len(),
            open: self.flows.open(),
            what,
        });
    }

    /// Keeps the table within its share of the budget: when it is reached, gives up state
    /// down to three quarters of it, least useful first (see [`FlowTable::shed`]), so that
    /// this runs rarely.
    fn keep_budget(&mut self, index: u64, now: Timestamp) {
        // Checked every 64 segments: start shedding below the budget, so that what grows in
        // between stays within it.
        if self.flows.heap_bytes() <= self.budget / 8 * 7 {
            return;
        }
        let target = self.budget / 4 * 3;
        for deep in [false, true] {
            let events = &mut self.events;
            self.flows.shed(target, deep, now, &mut |c, why| {
                push_release(events, index, phase::SHED, c, why)
            });
            if self.flows.heap_bytes() <= target {
                break;
            }
        }
        self.count_releases();
        release_free_memory();
    }
}

/// Counts not yet known: the table cannot be asked while it releases.
const UNKNOWN: usize = usize::MAX;

/// Judges a released connection into an event. Its counts are filled in by
/// [`Shard::count_releases`] once the table's call returns.
fn push_release(events: &mut Vec<Event>, index: u64, phase: u8, c: Box<Connection>, why: Release) {
    events.push(Event {
        index,
        phase,
        sub: c.id,
        flows: UNKNOWN,
        open: UNKNOWN,
        what: What::Released(judge(&c, why)),
    });
}
