//! Stage 3, flows: the flow table.
//!
//! Every TCP segment is filed under its connection, keyed by the 4-tuple (either direction).
//! A SYN with a new initial sequence number on a 4-tuple already in the table is port reuse
//! and starts a new connection. Connections leave the table, and are handed on to diagnosis
//! as finished [`Connection`]s, when they are closed and have been quiet for a linger time
//! (late retransmissions and resets still find them), when they have been silent longer than
//! the idle limit (an hour; two minutes for a connection that never carried payload), when the table is full (the least recently active go first, counted as
//! evictions), and at the end of the capture. A released closed connection leaves a
//! tombstone for a while: late packets for it (a retransmitted FIN, one more RST answering a
//! late segment) are counted instead of starting a bogus new connection, so the verdict is
//! the same whether the connection was released quickly (live capture) or not. Memory is
//! bounded by the number of live flows and the out-of-order bytes buffered per direction,
//! both capped.

pub mod connection;
pub mod reassembly;
pub mod seq;

pub use connection::{CloseEvent, CloseKind, Connection, PacketKind, RoleSource, Shed};

use crate::app::Mark;
use crate::decode::{flags, TcpSegment};
use crate::time::{Nanos, Timestamp};
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::IpAddr;

/// The two ends of a connection. `Client` is the side that sent the SYN.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The connection's opener.
    Client = 0,
    /// The side that accepted it.
    Server = 1,
}

impl Side {
    /// The other side.
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
    /// `client` or `server`.
    pub fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// Most tombstones kept (the oldest go first): late packets of connections released longer
/// ago than that many closes start a new connection record.
const MAX_TOMBSTONES: usize = 200_000;

/// How often, in capture time, the table looks for connections whose time is up, by
/// default ([`FlowConfig::sweep_every`]).
pub const SWEEP_EVERY: Nanos = Nanos(1_000_000_000);

/// The linger of a live capture ([`FlowConfig::live`]): long enough for the other end's
/// answer to a RST or a last FIN on the same host or a LAN, short enough that a finding
/// is printed well within a second of its last packet.
pub const LIVE_LINGER: Nanos = Nanos(250_000_000);

/// The sweep interval of a live capture.
pub const LIVE_SWEEP_EVERY: Nanos = Nanos(100_000_000);

/// Limits of the flow table.
#[derive(Clone, Debug)]
pub struct FlowConfig {
    /// Most connections held at once; beyond it the least recently active is released.
    pub max_flows: usize,
    /// Most out-of-order bytes buffered per direction.
    pub max_buffer: usize,
    /// How long a closed connection stays to absorb late packets.
    pub linger: Nanos,
    /// How often, in capture time, closed and idle connections are looked for.
    pub sweep_every: Nanos,
    /// How long an open connection may stay silent before it is released.
    pub idle_limit: Nanos,
    /// The same for a connection that never carried payload.
    pub quiet_limit: Nanos,
    /// How long late packets of a released closed connection are recognised as such.
    pub tombstone: Nanos,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            max_flows: 500_000,
            max_buffer: 1 << 20,
            linger: Nanos(2_000_000_000),
            sweep_every: SWEEP_EVERY,
            idle_limit: Nanos(3_600_000_000_000),
            quiet_limit: Nanos(120_000_000_000),
            tombstone: Nanos(60_000_000_000),
        }
    }
}

/// Why a connection left the table.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Release {
    /// Closed, then quiet for the linger time.
    Closed,
    /// A new SYN reused its 4-tuple.
    PortReuse,
    /// Silent longer than the idle limit.
    Idle,
    /// The table was full.
    Evicted,
    /// The capture ended (or the live capture stopped).
    EndOfCapture,
}

/// Counters of the flow table.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FlowStats {
    /// Connections created.
    pub connections: u64,
    /// Most connections held at once. A table does not count its own peaks: the pipeline
    /// does, over every shard of the table (`pipeline::merge`).
    pub peak_flows: usize,
    /// Most connections open (not yet closed) at once: a flow cap above this only changes
    /// how long closed connections linger, never a verdict. Counted by the pipeline, as
    /// `peak_flows`.
    pub peak_open: usize,
    /// Connections released because the table was full.
    pub evicted: u64,
    /// Connections released after a long silence while still open.
    pub idle_released: u64,
    /// Packets that arrived for a connection already closed and released.
    pub late_packets: u64,
    /// What the memory budget made the table give up.
    pub shed: ShedStats,
}

/// What the flow table gave up to stay within the memory budget (all zero when it never
/// had to).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ShedStats {
    /// Times the budget was reached.
    pub times: u64,
    /// Closed connections released before their linger time was up (late packets for them
    /// are counted as late, not analysed).
    pub closed_early: u64,
    /// Tombstones of released connections forgotten early.
    pub tombstones: u64,
    /// Out-of-order buffers given up as gaps.
    pub buffers: u64,
    /// Request or response heads cut to their first lines.
    pub heads: u64,
    /// Answered requests folded into counts.
    pub requests_folded: u64,
    /// Open connections judged early (as if the capture had ended for them).
    pub evicted: u64,
}

impl FlowStats {
    /// Adds the counters of another shard of the table (the peaks are the pipeline's).
    pub fn add(&mut self, o: &FlowStats) {
        self.connections += o.connections;
        self.evicted += o.evicted;
        self.idle_released += o.idle_released;
        self.late_packets += o.late_packets;
        let (a, b) = (&mut self.shed, &o.shed);
        a.times += b.times;
        a.closed_early += b.closed_early;
        a.tombstones += b.tombstones;
        a.buffers += b.buffers;
        a.heads += b.heads;
        a.requests_folded += b.requests_folded;
        a.evicted += b.evicted;
    }
}

/// What one connection in the table costs beyond its heap state: the boxed struct and its
/// hash-table slot (a table keeps up to twice the slots it needs).
const CONNECTION_COST: usize = std::mem::size_of::<Connection>() + 16 + 2 * (40 + 8 + 1);
/// What one tombstone costs: its entry, its queue entry and the table's slack.
const TOMBSTONE_COST: usize = 2 * (40 + std::mem::size_of::<Tombstone>() + 1) + 48;
/// What one entry of the queue of closed connections costs.
const CLOSED_COST: usize = 64;

type Key = (IpAddr, u16, IpAddr, u16);

/// True when a table uses less than a quarter of its room: the time to give the room back.
/// Not whenever a shed made room: the next releases grow it again, and a growing table
/// holds its old and new slots at once (shrunk after every shed, the tombstones' tables of
/// 150,000 refused connections under `--memory 64M` were reallocated 32 times, 26 MB at
/// their peak).
fn sparse(len: usize, capacity: usize) -> bool {
    len * 4 < capacity
}

/// What is kept of a released closed connection: when it was released, and its first SYN
/// (sequence number and time) with its latest packet time, so that a capture replaying it
/// (the same SYN at the same time) is recognised as repeats, not a new connection.
#[derive(Copy, Clone, Debug)]
struct Tombstone {
    released: Timestamp,
    syn: Option<(u32, Timestamp)>,
    latest: Timestamp,
}

/// What filing one segment in its connection changed.
struct Filed {
    /// The connection had no packet before (it starts with this one).
    is_new: bool,
    was_closed: bool,
    closed: bool,
    /// Its heap state before and after.
    before: usize,
    after: usize,
}

/// Files `seg` in `conn`.
fn file(conn: &mut Connection, seg: &TcpSegment<'_>, mark: Mark) -> Filed {
    let was_closed = conn.is_closed();
    let is_new = conn.dirs.iter().all(|d| d.packets == 0) && conn.first == mark;
    let before = conn.counted;
    conn.on_segment(seg, mark);
    conn.counted = conn.heap_bytes();
    Filed {
        is_new,
        was_closed,
        closed: conn.is_closed(),
        before,
        after: conn.counted,
    }
}

/// Which of `n` shards a segment's connection belongs to: by its 4-tuple, the same for
/// both directions (and for every connection on that 4-tuple, so port reuse and tombstones
/// stay within one shard).
pub fn shard_of(seg: &TcpSegment<'_>, n: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    key_of(seg).hash(&mut h);
    // FxHash is one multiply per word: the 4-tuples of one busy server differ only in the
    // client's address and port, and its bits alone shared them 56:44 over two shards on
    // the benchmark capture. A finaliser (MurmurHash3's fmix64) spreads every bit of the
    // key over the whole word.
    ((fmix64(h.finish()) >> 32) % n as u64) as usize
}

/// MurmurHash3's 64-bit finaliser: every input bit affects every output bit.
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

fn key_of(seg: &TcpSegment<'_>) -> Key {
    let a = (seg.src, seg.sport);
    let b = (seg.dst, seg.dport);
    if a <= b {
        (a.0, a.1, b.0, b.1)
    } else {
        (b.0, b.1, a.0, a.1)
    }
}

/// The live connections.
pub struct FlowTable {
    config: FlowConfig,
    /// Boxed: a hash table keeps up to twice as many slots as entries, and a slot holds the
    /// value; a pointer there keeps empty slots small.
    flows: FxHashMap<Key, Box<Connection>>,
    /// Closed connections by the time they closed (or were last heard from): (when, id,
    /// key), earliest first. A heap, not a queue in order of closing: with times that go
    /// back, or connections re-queued at their last packet, one connection not yet due
    /// must not hold back others that are, or when a connection is released would depend
    /// on the others in its table (and so on how they are shared out over threads).
    closed: BinaryHeap<Reverse<(Timestamp, u64, Key)>>,
    /// Recently released closed connections: key → release time, and what recognises a
    /// replay of the connection (see [`Tombstone`]).
    tombstones: FxHashMap<Key, Tombstone>,
    tombstone_queue: VecDeque<(Timestamp, Key)>,
    /// Connections in the table not yet closed.
    open: usize,
    last_sweep: Timestamp,
    last_idle_sweep: Timestamp,
    /// Memory held by the connections (their structs, slots and heap state).
    bytes: usize,
    /// Counters.
    pub stats: FlowStats,
}

impl FlowConfig {
    /// The limits of a live capture: the default ones with a short linger and sweep
    /// interval, so that a closed connection is judged (and its finding printed) a few
    /// hundred milliseconds after its last packet instead of seconds. Late packets of a
    /// connection released this early are still recognised by its tombstone.
    pub fn live() -> FlowConfig {
        FlowConfig {
            linger: LIVE_LINGER,
            sweep_every: LIVE_SWEEP_EVERY,
            ..FlowConfig::default()
        }
    }
}

impl FlowTable {
    /// An empty table.
    pub fn new(config: FlowConfig) -> FlowTable {
        FlowTable {
            config,
            flows: FxHashMap::default(),
            closed: BinaryHeap::new(),
            tombstones: FxHashMap::default(),
            tombstone_queue: VecDeque::new(),
            open: 0,
            last_sweep: Timestamp(i64::MIN),
            last_idle_sweep: Timestamp(i64::MIN),
            bytes: 0,
            stats: FlowStats::default(),
        }
    }

    /// Connections currently held.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Memory the table holds (an estimate that counts what grows with the input: the
    /// connections with their buffers and protocol state, the tombstones, the queues).
    pub fn heap_bytes(&self) -> usize {
        self.bytes + self.tombstone_queue.len() * TOMBSTONE_COST + self.closed.len() * CLOSED_COST
    }

    /// True when no connection is held.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Connections in the table not yet closed.
    pub fn open(&self) -> usize {
        self.open
    }

    /// Files one segment; connections that end because of it are handed to `done`.
    /// `index` numbers the segment among all TCP segments of the capture; a connection
    /// that the segment starts takes it as its id, so ids follow the order of first packets
    /// (the pipeline turns them into 1, 2, 3, … in that order).
    pub fn process(
        &mut self,
        seg: &TcpSegment<'_>,
        mark: Mark,
        index: u64,
        done: &mut impl FnMut(Box<Connection>, Release),
    ) {
        let key = key_of(seg);
        let is_syn = seg.has(flags::SYN) && !seg.has(flags::ACK);
        // The common case in one lookup: a segment of a connection in the table that cannot
        // start a new one.
        if !is_syn {
            if let Some(conn) = self.flows.get_mut(&key) {
                let filed = file(conn, seg, mark);
                let id = conn.id;
                self.account(key, id, filed, mark.ts);
                return;
            }
        }
        if is_syn {
            if let Some(c) = self.flows.get(&key) {
                if c.is_reused_by(seg) {
                    let c = self.flows.remove(&key).expect("present");
                    self.release(c, Release::PortReuse, done);
                }
            }
        }
        // Past the fast path, only a SYN can belong to a connection in the table.
        let known = is_syn && self.flows.contains_key(&key);
        let mut replay = None;
        if !known && !self.tombstones.is_empty() {
            if is_syn {
                if let Some(t) = self.tombstones.remove(&key) {
                    if t.syn == Some((seg.seq, mark.ts)) {
                        replay = Some(t.latest);
                    }
                }
            } else if self.tombstones.contains_key(&key) {
                self.stats.late_packets += 1;
                return;
            }
        }
        if !known && self.flows.len() >= self.config.max_flows {
            self.evict(mark.ts, done);
        }
        let conn = match self.flows.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                self.stats.connections += 1;
                let mut c = Box::new(Connection::new(index, seg, mark, self.config.max_buffer));
                c.replay_until = replay;
                self.bytes += CONNECTION_COST;
                e.insert(c)
            }
        };
        let filed = file(conn, seg, mark);
        let id = conn.id;
        self.account(key, id, filed, mark.ts);
    }

    /// Counts what filing a segment in connection `id` changed.
    fn account(&mut self, key: Key, id: u64, f: Filed, ts: Timestamp) {
        self.bytes = (self.bytes + f.after).saturating_sub(f.before);
        if !f.was_closed && f.closed {
            self.closed.push(Reverse((ts, id, key)));
        }
        // Open connections: new ones, minus those that closed, plus refusals retried.
        match (f.is_new, f.was_closed, f.closed) {
            (true, _, false) => self.open += 1,
            (false, false, true) => self.open = self.open.saturating_sub(1),
            (false, true, false) => self.open += 1,
            _ => {}
        }
    }

    /// Releases connections whose time is up at capture time `now`. Cheap to call per
    /// packet: it does work at most once per second of capture time.
    pub fn sweep(&mut self, now: Timestamp, done: &mut impl FnMut(Box<Connection>, Release)) {
        if now.since(self.last_sweep) < self.config.sweep_every {
            return;
        }
        self.last_sweep = now;
        let linger = self.config.linger;
        // Released in order of id (first packet), whatever the order they closed in or the
        // table holds them in: the same order however the connections are spread over the
        // threads (each sweeps its own at the same moments).
        let mut ready = Vec::new();
        while let Some(&Reverse((at, id, key))) = self.closed.peek() {
            if now.since(at) < linger {
                break;
            }
            self.closed.pop();
            let quiet = match self.flows.get(&key) {
                // A refusal that a retried SYN got past: no longer closed.
                Some(c) if c.id == id && !c.is_closed() => continue,
                Some(c) if c.id == id => now.since(c.last_ts()) >= linger,
                _ => continue,
            };
            if quiet {
                let c = self.flows.remove(&key).expect("present");
                self.bury(key, &c, now);
                ready.push(c);
            } else {
                let last = self.flows[&key].last_ts();
                self.closed.push(Reverse((last, id, key)));
            }
        }
        ready.sort_unstable_by_key(|c| c.id);
        for c in ready {
            self.release(c, Release::Closed, done);
        }
        while let Some(&(at, key)) = self.tombstone_queue.front() {
            if now.since(at) < self.config.tombstone {
                break;
            }
            self.tombstone_queue.pop_front();
            if self.tombstones.get(&key).is_some_and(|t| t.released == at) {
                self.tombstones.remove(&key);
            }
        }
        // Silent open connections: a full scan, so only once a minute of capture time.
        if now.since(self.last_idle_sweep) >= Nanos(60_000_000_000) {
            self.last_idle_sweep = now;
            let limit = self.config.idle_limit;
            let mut silent: Vec<(u64, Key)> = self
                .flows
                .iter()
                .filter(|(_, c)| {
                    // A connection that never carried a byte (a scan, a half-open or refused
                    // attempt whose close was not captured) has nothing to wait for.
                    let quiet = c.dirs.iter().all(|d| d.payload_bytes == 0);
                    now.since(c.last_ts())
                        >= if quiet {
                            self.config.quiet_limit
                        } else {
                            limit
                        }
                })
                .map(|(k, c)| (c.id, *k))
                .collect();
            silent.sort_unstable();
            for (_, key) in silent {
                let c = self.flows.remove(&key).expect("present");
                self.stats.idle_released += 1;
                self.release(c, Release::Idle, done);
            }
        }
    }

    /// Releases every connection (end of capture), in order of first packet.
    pub fn finish(&mut self, done: &mut impl FnMut(Box<Connection>, Release)) {
        let mut all: Vec<Box<Connection>> = self.flows.drain().map(|(_, c)| c).collect();
        all.sort_by_key(|c| c.id);
        self.closed.clear();
        for c in all {
            self.release(c, Release::EndOfCapture, done);
        }
    }

    /// Makes room: releases a tenth of a full table, connections already closed (only
    /// lingering for late packets; they leave tombstones as usual) before open ones, and
    /// among each the least recently active first. So a cap above the number of open
    /// connections changes nothing but how long closed ones linger.
    fn evict(&mut self, now: Timestamp, done: &mut impl FnMut(Box<Connection>, Release)) {
        let mut by_age: Vec<(bool, Timestamp, Key)> = self
            .flows
            .iter()
            // A replay (every packet a repeat) holds nothing to judge: it goes first too.
            .map(|(k, c)| {
                let replay = c.dirs.iter().all(|d| d.packets == 0);
                (!c.is_closed() && !replay, c.last_ts(), *k)
            })
            .collect();
        // Closed connections only, while there are any; open ones only when none is.
        let closed = by_age.iter().filter(|(open, ..)| !open).count();
        let n = match closed {
            0 => (by_age.len() / 10).max(1),
            c => c.min((by_age.len() / 10).max(1)),
        };
        by_age.select_nth_unstable(n - 1);
        by_age.truncate(n);
        by_age.sort_unstable();
        for (open, _, key) in by_age {
            if let Some(c) = self.flows.remove(&key) {
                if open {
                    self.stats.evicted += 1;
                    self.release(c, Release::Evicted, done);
                } else {
                    self.bury(key, &c, now);
                    self.release(c, Release::Closed, done);
                }
            }
        }
    }

    /// Memory budget: gives up state until the table holds at most `target` bytes, least
    /// useful first: closed connections still lingering for late packets, then tombstones,
    /// then (largest first) segments waiting for a hole, long heads being read and answered
    /// requests, and last the least recently active open connections, judged now.
    /// With `deep` false, only the first two (nothing any verdict needs).
    pub fn shed(
        &mut self,
        target: usize,
        deep: bool,
        now: Timestamp,
        done: &mut impl FnMut(Box<Connection>, Release),
    ) {
        // 1. Closed connections: released now instead of after their linger time.
        while self.heap_bytes() > target {
            let Some(Reverse((_, id, key))) = self.closed.pop() else {
                break;
            };
            if self
                .flows
                .get(&key)
                .is_some_and(|c| c.id == id && c.is_closed())
            {
                let c = self.flows.remove(&key).expect("present");
                self.bury(key, &c, now);
                self.stats.shed.closed_early += 1;
                self.release(c, Release::Closed, done);
            }
        }
        // 2. Tombstones, oldest first, while they are most of what is held: each is small,
        // and without it the late packets of its connection would be taken for a new one.
        while self.heap_bytes() > target && self.tombstone_queue.len() * TOMBSTONE_COST > target / 2
        {
            let Some((at, key)) = self.tombstone_queue.pop_front() else {
                break;
            };
            if self.tombstones.get(&key).is_some_and(|t| t.released == at) {
                self.tombstones.remove(&key);
            }
            self.stats.shed.tombstones += 1;
        }
        if sparse(self.tombstones.len(), self.tombstones.capacity()) {
            self.tombstones.shrink_to_fit();
        }
        if sparse(self.tombstone_queue.len(), self.tombstone_queue.capacity()) {
            self.tombstone_queue.shrink_to_fit();
        }
        if sparse(self.closed.len(), self.closed.capacity()) {
            self.closed.shrink_to_fit();
        }
        if !deep {
            return;
        }
        self.stats.shed.times += 1;
        // 3. What connections hold beyond their bare state, largest first.
        if self.heap_bytes() > target {
            let mut big: Vec<(usize, Key)> = self
                .flows
                .iter()
                .map(|(k, c)| (c.heap_bytes(), *k))
                .filter(|(b, _)| *b > 1024)
                .collect();
            big.sort_unstable_by(|a, b| b.cmp(a));
            for (_, key) in big {
                if self.heap_bytes() <= target {
                    break;
                }
                let c = self.flows.get_mut(&key).expect("present");
                let before = c.counted;
                let shed = c.shed();
                c.counted = c.heap_bytes();
                self.bytes = (self.bytes + c.counted).saturating_sub(before);
                self.stats.shed.buffers += shed.buffers as u64;
                self.stats.shed.heads += shed.heads as u64;
                self.stats.shed.requests_folded += shed.folded;
            }
        }
        // 4. Open connections, least recently active first.
        if self.heap_bytes() > target {
            let mut by_age: Vec<(Timestamp, Key)> =
                self.flows.iter().map(|(k, c)| (c.last_ts(), *k)).collect();
            by_age.sort_unstable();
            for (_, key) in by_age {
                if self.heap_bytes() <= target {
                    break;
                }
                let c = self.flows.remove(&key).expect("present");
                // A tombstone either way: the connection's later packets are counted as
                // late, not taken for a new connection seen mid-stream.
                self.bury(key, &c, now);
                if c.is_closed() {
                    self.stats.shed.closed_early += 1;
                    self.release(c, Release::Closed, done);
                } else {
                    self.stats.shed.evicted += 1;
                    self.release(c, Release::Evicted, done);
                }
            }
        }
        self.flows.shrink_to_fit();
    }

    /// Leaves a tombstone for a closed connection released at `now`.
    fn bury(&mut self, key: Key, c: &Connection, now: Timestamp) {
        if self.tombstone_queue.len() >= MAX_TOMBSTONES {
            if let Some((at, old)) = self.tombstone_queue.pop_front() {
                if self.tombstones.get(&old).is_some_and(|t| t.released == at) {
                    self.tombstones.remove(&old);
                }
            }
        }
        let syn = c.syn_ts.zip(c.dirs[0].isn).map(|(ts, isn)| (isn.0, ts));
        self.tombstones.insert(
            key,
            Tombstone {
                released: now,
                syn,
                latest: c.latest,
            },
        );
        self.tombstone_queue.push_back((now, key));
    }

    fn release(
        &mut self,
        mut c: Box<Connection>,
        why: Release,
        done: &mut impl FnMut(Box<Connection>, Release),
    ) {
        if !c.is_closed() {
            self.open = self.open.saturating_sub(1);
        }
        self.bytes = self.bytes.saturating_sub(CONNECTION_COST + c.counted);
        c.finish();
        done(c, why);
    }
}
