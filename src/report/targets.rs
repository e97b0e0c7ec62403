//! The connections `--extract` must find again, kept in bounded memory however many there
//! are, and handed to the second pass in order of their first packet.
//!
//! Connections with findings come in as the first pass releases them, in no useful order.
//! [`TargetSpool`] keeps up to [`RUN`] of them in memory; past that it sorts them by start
//! time and writes them, as fixed-size records, to an unlinked scratch file (a sorted run).
//! [`TargetSpool::sorted`] merges the runs and what is left in memory into one stream in
//! order of (start, id), which the second pass ([`super::evidence::gather`]) follows with the
//! capture's clock, holding only the connections whose span it is in. Memory is then about
//! `RUN` records plus a small read buffer per run, whatever the capture's size.
//!
//! When no scratch file can be made (an unwritable `TMPDIR`), the targets stay in memory
//! and the memory budget bounds them instead (see `cmd::report::Collect`).

use super::evidence::Target;
use crate::time::Timestamp;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// Targets kept in memory before a run is written (under 1 MiB).
pub const RUN: usize = 8_192;

/// The read buffer of each run while they are merged: a million targets make 122 runs,
/// under 1 MiB of buffers.
const RUN_BUFFER: usize = 8 * 1024;

/// Bytes of one record on disk.
const RECORD: usize = 8 + 8 + 8 + 4 + 1 + 2 * 19;

/// Targets in bounded memory (see the module docs).
#[derive(Default)]
pub struct TargetSpool {
    memory: Vec<Target>,
    runs: Vec<File>,
    len: u64,
    /// No scratch file could be made: everything stays in `memory`.
    in_memory_only: bool,
}

impl TargetSpool {
    /// An empty spool.
    pub fn new() -> TargetSpool {
        TargetSpool::default()
    }

    /// Adds a target.
    pub fn push(&mut self, t: Target) {
        self.memory.push(t);
        self.len += 1;
        if self.memory.len() >= RUN && !self.in_memory_only {
            if let Err(e) = self.spill() {
                eprintln!(
                    "resetscope: warning: the extract's list of connections stays in memory: {e}"
                );
                self.in_memory_only = true;
            }
        }
    }

    /// Targets added.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether none was added.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap memory held (the targets in memory; runs are on disk).
    pub fn heap_bytes(&self) -> usize {
        self.memory.capacity() * std::mem::size_of::<Target>()
    }

    /// Gives back memory not in use (when the budget is reached).
    pub fn shrink_to_fit(&mut self) {
        self.memory.shrink_to_fit();
    }

    fn spill(&mut self) -> io::Result<()> {
        sort(&mut self.memory);
        let file = super::json::scratch_file()?;
        let mut w = BufWriter::new(file);
        let mut buf = [0u8; RECORD];
        for t in &self.memory {
            encode(t, &mut buf);
            w.write_all(&buf)?;
        }
        let mut file = w.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        self.runs.push(file);
        self.memory.clear();
        Ok(())
    }

    /// Every target, in order of (start, id).
    pub fn sorted(mut self) -> Sorted {
        sort(&mut self.memory);
        let mut sources: Vec<Source> = self
            .runs
            .into_iter()
            .map(|f| Source::Run(BufReader::with_capacity(RUN_BUFFER, f)))
            .collect();
        sources.push(Source::Memory(self.memory.into_iter()));
        let mut s = Sorted {
            sources,
            heads: Vec::new(),
            heap: BinaryHeap::new(),
            error: None,
        };
        for i in 0..s.sources.len() {
            let head = s.read(i);
            s.heads.push(None);
            s.place(i, head);
        }
        s
    }
}

fn sort(v: &mut [Target]) {
    v.sort_unstable_by_key(|t| (t.start, t.id));
}

/// Where the merge reads from: a run on disk, or what was left in memory.
enum Source {
    Run(BufReader<File>),
    Memory(std::vec::IntoIter<Target>),
}

/// The targets of a [`TargetSpool`] in order of (start, id): a merge of its runs.
pub struct Sorted {
    sources: Vec<Source>,
    heads: Vec<Option<Target>>,
    heap: BinaryHeap<Reverse<(Timestamp, u64, usize)>>,
    error: Option<io::Error>,
}

impl Sorted {
    fn read(&mut self, i: usize) -> Option<Target> {
        match &mut self.sources[i] {
            Source::Memory(it) => it.next(),
            Source::Run(r) => {
                let mut buf = [0u8; RECORD];
                match r.read_exact(&mut buf) {
                    Ok(()) => Some(decode(&buf)),
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => None,
                    Err(e) => {
                        self.error.get_or_insert(e);
                        None
                    }
                }
            }
        }
    }

    fn place(&mut self, i: usize, head: Option<Target>) {
        if let Some(t) = &head {
            self.heap.push(Reverse((t.start, t.id, i)));
        }
        self.heads[i] = head;
    }
}

impl Iterator for Sorted {
    type Item = io::Result<Target>;

    fn next(&mut self) -> Option<io::Result<Target>> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        let Reverse((_, _, i)) = self.heap.pop()?;
        let t = self.heads[i].take().expect("a head for each heap entry");
        let head = self.read(i);
        self.place(i, head);
        Some(Ok(t))
    }
}

fn put_addr(a: &SocketAddr, out: &mut [u8]) {
    let (family, ip) = match a.ip() {
        IpAddr::V4(v4) => (4, v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => (6, v6),
    };
    out[0] = family;
    out[1..17].copy_from_slice(&ip.octets());
    out[17..19].copy_from_slice(&a.port().to_le_bytes());
}

fn get_addr(b: &[u8]) -> SocketAddr {
    let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(&b[1..17]).expect("16 bytes"));
    let ip = match (b[0], v6.to_ipv4_mapped()) {
        (4, Some(v4)) => IpAddr::V4(v4),
        _ => IpAddr::V6(v6),
    };
    SocketAddr::new(ip, u16::from_le_bytes([b[17], b[18]]))
}

fn encode(t: &Target, out: &mut [u8; RECORD]) {
    out[0..8].copy_from_slice(&t.id.to_le_bytes());
    out[8..16].copy_from_slice(&t.start.0.to_le_bytes());
    out[16..24].copy_from_slice(&t.end.0.to_le_bytes());
    out[24..28].copy_from_slice(&(t.max_rows.min(u32::MAX as usize) as u32).to_le_bytes());
    out[28] = t.ladder as u8;
    put_addr(&t.client, &mut out[29..48]);
    put_addr(&t.server, &mut out[48..67]);
}

fn decode(b: &[u8; RECORD]) -> Target {
    let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    Target {
        id: u64_at(0),
        start: Timestamp(u64_at(8) as i64),
        end: Timestamp(u64_at(16) as i64),
        max_rows: u32::from_le_bytes(b[24..28].try_into().expect("4 bytes")) as usize,
        ladder: b[28] != 0,
        client: get_addr(&b[29..48]),
        server: get_addr(&b[48..67]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(id: u64, start: i64) -> Target {
        let client = if id % 2 == 0 {
            format!(
                "10.0.{}.{}:{}",
                id / 256 % 256,
                id % 256,
                1024 + id % 60_000
            )
        } else {
            format!("[2001:db8::{:x}]:{}", id % 65_536, 1024 + id % 60_000)
        };
        Target {
            id,
            client: client.parse().unwrap(),
            server: "[::ffff:192.0.2.1]:443".parse().unwrap(),
            start: Timestamp(start),
            end: Timestamp(start + 5),
            ladder: id % 3 == 0,
            max_rows: 24,
        }
    }

    #[test]
    fn a_record_reads_back_as_it_was_written() {
        for id in [0, 1, 2, 3, 77, 1 << 40] {
            let t = target(id, -(id as i64) * 1000);
            let mut buf = [0u8; RECORD];
            encode(&t, &mut buf);
            let back = decode(&buf);
            assert_eq!(format!("{t:?}"), format!("{back:?}"));
        }
    }

    #[test]
    fn many_runs_merge_in_order_of_start_and_id() {
        let mut s = TargetSpool::new();
        let n = 3 * RUN as u64 + 123;
        // Starts in a scrambled order, with ties.
        for id in 0..n {
            s.push(target(id, ((id * 7_919) % 10_007) as i64));
        }
        assert_eq!(s.len(), n);
        assert!(s.heap_bytes() < 2 * RUN * std::mem::size_of::<Target>());
        let got: Vec<Target> = s.sorted().map(Result::unwrap).collect();
        assert_eq!(got.len() as u64, n);
        assert!(got
            .windows(2)
            .all(|w| (w[0].start, w[0].id) < (w[1].start, w[1].id)));
        let mut ids: Vec<u64> = got.iter().map(|t| t.id).collect();
        ids.sort_unstable();
        assert!(ids.iter().copied().eq(0..n));
        let t = got.iter().find(|t| t.id == 12_345).unwrap();
        assert_eq!(
            format!("{t:?}"),
            format!(
                "{:?}",
                target(12_345, ((12_345u64 * 7_919) % 10_007) as i64)
            )
        );
    }

    #[test]
    fn an_empty_spool_yields_nothing() {
        assert_eq!(TargetSpool::new().sorted().count(), 0);
    }
}
