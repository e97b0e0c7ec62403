//! The compiled expression and its evaluation against one frame.
//!
//! Every primitive makes the same comparisons on the same bytes, in the same order, as the
//! BPF code libpcap 1.10 generates for it (`tcpdump -d EXPR` prints that code). A read past
//! the captured bytes makes the BPF interpreter reject the frame; but libpcap's optimiser
//! has removed some reads from the program first, and that decides frames cut inside their
//! headers. What it does, and what this models:
//!
//! * a test whose two outcomes lead to the same answer is dropped (`udp or ip6` on an IPv6
//!   frame cut before its next-header byte: once the EtherType says IPv6 the answer is yes);
//!   it knows the outcome of a test only if the same test was made before on the way there,
//!   or an equality on the same value came out true (`fold_edge`);
//! * equality tests on one value in a chain of `or`s are pulled up next to each other
//!   (`or_pullup`: `port 53 or 5353` compares the source port with both before it reads
//!   the destination port), modelled by [`merge_ports`].
//!
//! So a frame is evaluated in order, as the unoptimised program; if that reads past the end,
//! it is evaluated again with only the outcomes of the tests made before that point known,
//! and kept only if the expression comes out true whatever the outcomes of the others (tried
//! both ways, up to [`DECISIONS`] of them).

/// Which address (or port) of a packet a primitive looks at.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    /// The source.
    Src,
    /// The destination.
    Dst,
    /// Either (the default, and `src or dst`).
    Either,
    /// Both (`src and dst`).
    Both,
}

/// The transport protocols a `port` or `portrange` primitive accepts.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Transports {
    pub tcp: bool,
    pub udp: bool,
    pub sctp: bool,
}

impl Transports {
    pub const ALL: Transports = Transports {
        tcp: true,
        udp: true,
        sctp: true,
    };
}

/// EtherTypes the primitives test for.
pub(crate) const ETHERTYPE_IP: u16 = 0x0800;
pub(crate) const ETHERTYPE_IPV6: u16 = 0x86dd;
pub(crate) const ETHERTYPE_ARP: u16 = 0x0806;
pub(crate) const ETHERTYPE_REVARP: u16 = 0x8035;

/// A compiled filter expression: a tree of primitives joined by and, or and not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Expr {
    /// Keeps every frame (the empty expression).
    True,
    /// Both, the left one first; the right one is not evaluated when the left is false.
    And(Box<Expr>, Box<Expr>),
    /// Either, the left one first; the right one is not evaluated when the left is true.
    Or(Box<Expr>, Box<Expr>),
    /// The opposite (a read past the captured bytes still rejects).
    Not(Box<Expr>),
    /// The link layer says the payload is of this EtherType (`ip`, `ip6`, `arp`, `rarp`).
    Link(u16),
    /// An IPv4 address under a mask, at these offsets of a packet of this EtherType:
    /// 12/16 in IPv4, 14/24 (sender/target protocol address) in ARP and RARP.
    Host4 {
        ethertype: u16,
        src: usize,
        dst: usize,
        dir: Dir,
        addr: u32,
        mask: u32,
    },
    /// An IPv6 address under a mask, as four 32-bit words.
    Host6 {
        dir: Dir,
        addr: [u32; 4],
        mask: [u32; 4],
    },
    /// The protocol field: IPv4's, and/or IPv6's next header (directly, or after one
    /// fragment header).
    Proto { v4: bool, v6: bool, proto: u32 },
    /// A TCP, UDP or SCTP port in `lo..=hi` (`portrange`), in IPv4 (first fragments only)
    /// or IPv6 (next header directly).
    Port {
        transports: Transports,
        dir: Dir,
        lo: u16,
        hi: u16,
    },
    /// One of these ports (`port`): one port, or what libpcap's optimiser makes of
    /// `port 53 or 5353` (the source port against each, then the destination port against
    /// each).
    Ports {
        transports: Transports,
        dir: Dir,
        ports: Box<[u16]>,
    },
}

/// A read past the captured bytes (in the first pass).
pub(crate) struct Short;

type R<T> = Result<T, Short>;

/// How a link type says what its payload is, and where the payload starts.
#[derive(Copy, Clone, Debug)]
pub(crate) enum Link {
    /// A 16-bit EtherType at `type_at`, the payload at `payload` (Ethernet, Linux SLL, SLL2).
    EtherType { type_at: usize, payload: usize },
    /// A 32-bit address family first: in either byte order (NULL), or network order (LOOP).
    Loopback { network_order: bool },
    /// Raw IP, told apart by the version nibble.
    Raw,
    /// Only IPv4.
    Ipv4,
    /// Only IPv6.
    Ipv6,
}

impl Link {
    /// The link layer of a pcap `LINKTYPE_*` value, if the filter knows it.
    pub(crate) fn of(linktype: u32) -> Option<Link> {
        Some(match linktype {
            0 => Link::Loopback {
                network_order: false,
            },
            108 => Link::Loopback {
                network_order: true,
            },
            1 => Link::EtherType {
                type_at: 12,
                payload: 14,
            },
            113 => Link::EtherType {
                type_at: 14,
                payload: 16,
            },
            276 => Link::EtherType {
                type_at: 0,
                payload: 20,
            },
            12 | 14 | 101 => Link::Raw,
            228 => Link::Ipv4,
            229 => Link::Ipv6,
            _ => return None,
        })
    }

    fn payload(self) -> usize {
        match self {
            Link::EtherType { payload, .. } => payload,
            Link::Loopback { .. } => 4,
            Link::Raw | Link::Ipv4 | Link::Ipv6 => 0,
        }
    }
}

/// The outcome of a test: `None` when it depends on a value not known (second pass only).
type T = Option<bool>;

/// The most distinct values the first pass remembers (an expression of a few dozen
/// primitives; past that, later reads count as unknown, which can only reject).
const KNOWN: usize = 32;

/// The most tests of unknown outcome the second pass tries both ways, and the most
/// evaluations it makes (past either, the frame is rejected): a bound on the work for a
/// frame cut short, for a capture whose every frame is.
const DECISIONS: usize = 8;
const BUDGET: u32 = 256;

/// One BPF comparison: the value (`len` bytes at `at` in the frame, under `mask`) and what
/// it is compared with.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Test {
    at: usize,
    len: usize,
    mask: u32,
    op: Op,
}

/// BPF's `jeq`, `jge`, `jgt` and `jset` with a constant.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Op {
    Eq(u32),
    Ge(u32),
    Gt(u32),
    Set(u32),
}

impl Op {
    fn apply(self, v: u32) -> bool {
        match self {
            Op::Eq(k) => v == k,
            Op::Ge(k) => v >= k,
            Op::Gt(k) => v > k,
            Op::Set(m) => v & m != 0,
        }
    }
}

/// What the first pass read before it read past the end, for the second pass. Made only for
/// a frame that needs it.
struct Log {
    /// The values loaded: offset, length and the mask applied (libpcap's optimiser knows a
    /// value by the load and the mask that made it, and compares it with any constant).
    known: [(usize, usize, u32); KNOWN],
    n_known: usize,
    /// The outcomes of order comparisons and bit tests (libpcap's optimiser knows those only
    /// for the very same test on the same value).
    facts: [(Test, bool); KNOWN],
    n_facts: usize,
}

impl Log {
    fn new() -> Log {
        let none = Test {
            at: 0,
            len: 0,
            mask: 0,
            op: Op::Set(0),
        };
        Log {
            known: [(0, 0, 0); KNOWN],
            n_known: 0,
            facts: [(none, false); KNOWN],
            n_facts: 0,
        }
    }

    fn is_known(&self, value: (usize, usize, u32)) -> bool {
        self.known[..self.n_known].contains(&value)
    }
}

/// Which pass the evaluation is in.
enum Pass<'l> {
    /// The first, as the BPF program: a read past the end rejects.
    First,
    /// The first again, writing down what it reads (after `First` read past the end).
    Record(&'l mut Log),
    /// The second: what the first wrote down is known; a test it cannot settle takes its
    /// outcome from `decided`, or is left in `pending` for the caller to try both ways.
    Second {
        log: &'l Log,
        decided: &'l [(Test, bool)],
        pending: Option<Test>,
    },
}

/// One frame being filtered.
struct Frame<'a, 'l> {
    data: &'a [u8],
    link: Link,
    payload: usize,
    pass: Pass<'l>,
}

impl<'a, 'l> Frame<'a, 'l> {
    fn new(link: Link, data: &'a [u8], pass: Pass<'l>) -> Frame<'a, 'l> {
        Frame {
            data,
            link,
            payload: link.payload(),
            pass,
        }
    }

    /// `len` bytes at `at` from the start of the frame, under `mask`: a load that is not
    /// a test (the IPv4 header length). `None` in the second pass when not known.
    fn load(&mut self, at: usize, len: usize, mask: u32) -> R<Option<u32>> {
        let Some(b) = self.data.get(at..at + len) else {
            return match self.pass {
                Pass::Second { .. } => Ok(None),
                _ => Err(Short),
            };
        };
        let value = (at, len, mask);
        match &mut self.pass {
            Pass::First => {}
            Pass::Record(log) => {
                if !log.is_known(value) && log.n_known < KNOWN {
                    log.known[log.n_known] = value;
                    log.n_known += 1;
                }
            }
            Pass::Second { log, .. } => {
                if !log.is_known(value) {
                    return Ok(None);
                }
            }
        }
        Ok(Some(
            b.iter().fold(0u32, |v, &x| (v << 8) | x as u32) & mask,
        ))
    }

    /// One comparison. In the second pass: an equality test on a value the first pass
    /// loaded is made (libpcap's optimiser moves equality tests on a loaded value up next
    /// to each other); another test is known only if the first pass made it; otherwise its
    /// outcome is one decided by the caller (an equality known true makes every other
    /// equality on that value false), or the frame is left pending on it.
    fn test(&mut self, at: usize, len: usize, mask: u32, op: Op) -> R<T> {
        let t = Test { at, len, mask, op };
        if let Pass::Second {
            log,
            decided,
            pending,
        } = &mut self.pass
        {
            for &(d, outcome) in log.facts[..log.n_facts].iter().chain(decided.iter()) {
                if d == t {
                    return Ok(Some(outcome));
                }
                if let (Op::Eq(k), Op::Eq(other)) = (op, d.op) {
                    if outcome && k != other && (d.at, d.len, d.mask) == (at, len, mask) {
                        return Ok(Some(false));
                    }
                }
            }
            *pending = Some(t);
            return Err(Short);
        }
        let Some(v) = self.load(at, len, mask)? else {
            return Ok(None);
        };
        let outcome = op.apply(v);
        if let Pass::Record(log) = &mut self.pass {
            if log.n_facts < KNOWN {
                log.facts[log.n_facts] = (t, outcome);
                log.n_facts += 1;
            }
        }
        Ok(Some(outcome))
    }

    /// An equality test on a byte, half-word or word of the link-layer payload (libpcap's
    /// `OR_LINKPL`), under a mask.
    fn eq(&mut self, off: usize, len: usize, mask: u32, k: u32) -> R<T> {
        self.test(self.payload + off, len, mask, Op::Eq(k))
    }

    /// Whether the payload byte at `off` is one of the transports' protocol numbers (BPF
    /// compares with SCTP, TCP and UDP in turn).
    fn transport(&mut self, off: usize, transports: Transports) -> R<T> {
        let mut any = Some(false);
        for (on, proto) in [
            (transports.sctp, 132),
            (transports.tcp, 6),
            (transports.udp, 17),
        ] {
            if on {
                let t = self.eq(off, 1, 0xff, proto)?;
                any = or(any, || Ok(t))?;
                if any == Some(true) {
                    break;
                }
            }
        }
        Ok(any)
    }

    /// libpcap's `gen_linktype`: whether the link layer says the payload has this EtherType.
    fn is(&mut self, ethertype: u16) -> R<T> {
        match self.link {
            Link::EtherType { type_at, .. } => {
                self.test(type_at, 2, 0xffff, Op::Eq(ethertype as u32))
            }
            Link::Loopback { network_order } => {
                // The families libpcap accepts for a saved file: AF_INET, and the three BSD
                // values of AF_INET6 (not Linux's 10).
                let families: &[u32] = match ethertype {
                    ETHERTYPE_IP => &[2],
                    ETHERTYPE_IPV6 => &[24, 28, 30],
                    _ => return Ok(Some(false)),
                };
                let mut any = Some(false);
                for &f in families {
                    for word in [f, f.swap_bytes()] {
                        if word != f && network_order {
                            continue;
                        }
                        let t = self.test(0, 4, u32::MAX, Op::Eq(word))?;
                        any = or(any, || Ok(t))?;
                        if any == Some(true) {
                            return Ok(any);
                        }
                    }
                }
                Ok(any)
            }
            Link::Raw => {
                let version = match ethertype {
                    ETHERTYPE_IP => 0x40,
                    ETHERTYPE_IPV6 => 0x60,
                    _ => return Ok(Some(false)),
                };
                self.test(0, 1, 0xf0, Op::Eq(version))
            }
            Link::Ipv4 => Ok(Some(ethertype == ETHERTYPE_IP)),
            Link::Ipv6 => Ok(Some(ethertype == ETHERTYPE_IPV6)),
        }
    }
}

/// Three-valued `and`, the right side evaluated only when the left is not false.
fn and(a: T, b: impl FnOnce() -> R<T>) -> R<T> {
    Ok(match a {
        Some(false) => Some(false),
        Some(true) => b()?,
        None => match b()? {
            Some(false) => Some(false),
            _ => None,
        },
    })
}

/// Three-valued `or`, the right side evaluated only when the left is not true.
fn or(a: T, b: impl FnOnce() -> R<T>) -> R<T> {
    Ok(match a {
        Some(true) => Some(true),
        Some(false) => b()?,
        None => match b()? {
            Some(true) => Some(true),
            _ => None,
        },
    })
}

/// The source test, the destination test, or both, in that order.
fn directed(
    f: &mut Frame<'_, '_>,
    dir: Dir,
    test: impl Fn(&mut Frame<'_, '_>, bool) -> R<T>,
) -> R<T> {
    match dir {
        Dir::Src => test(f, true),
        Dir::Dst => test(f, false),
        Dir::Either => {
            let s = test(f, true)?;
            or(s, || test(f, false))
        }
        Dir::Both => {
            let s = test(f, true)?;
            and(s, || test(f, false))
        }
    }
}

impl Expr {
    /// Whether the frame passes (see the module documentation for frames cut short).
    pub(crate) fn keeps(&self, link: Link, data: &[u8]) -> bool {
        match self.eval(&mut Frame::new(link, data, Pass::First)) {
            Ok(t) => t == Some(true),
            Err(Short) => {
                let mut log = Log::new();
                let again = self.eval(&mut Frame::new(link, data, Pass::Record(&mut log)));
                debug_assert!(again.is_err(), "the same reads past the end");
                let none = Test {
                    at: 0,
                    len: 0,
                    mask: 0,
                    op: Op::Set(0),
                };
                let mut decided = [(none, false); DECISIONS];
                let mut budget = BUDGET;
                self.always(link, data, &log, &mut decided, 0, &mut budget)
            }
        }
    }

    /// Whether the expression is true whatever the outcomes of the tests the second pass
    /// cannot settle (the first `n` of `decided` are fixed).
    fn always(
        &self,
        link: Link,
        data: &[u8],
        log: &Log,
        decided: &mut [(Test, bool); DECISIONS],
        n: usize,
        budget: &mut u32,
    ) -> bool {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        let (result, pending) = {
            let mut f = Frame::new(
                link,
                data,
                Pass::Second {
                    log,
                    decided: &decided[..n],
                    pending: None,
                },
            );
            let result = self.eval(&mut f);
            let pending = match f.pass {
                Pass::Second { pending, .. } => pending,
                _ => None,
            };
            (result, pending)
        };
        match (result, pending) {
            (Ok(t), _) => t == Some(true),
            (Err(Short), Some(test)) if n < DECISIONS => [true, false].into_iter().all(|o| {
                decided[n] = (test, o);
                self.always(link, data, log, decided, n + 1, budget)
            }),
            (Err(Short), _) => false,
        }
    }

    /// The outcome; `Err` when the first pass reads past the captured bytes.
    fn eval(&self, f: &mut Frame<'_, '_>) -> R<T> {
        match self {
            Expr::True => Ok(Some(true)),
            Expr::And(a, b) => {
                let x = a.eval(f)?;
                and(x, || b.eval(f))
            }
            Expr::Or(a, b) => {
                let x = a.eval(f)?;
                or(x, || b.eval(f))
            }
            Expr::Not(a) => Ok(a.eval(f)?.map(|x| !x)),
            Expr::Link(t) => f.is(*t),
            Expr::Host4 {
                ethertype,
                src,
                dst,
                dir,
                addr,
                mask,
            } => {
                let is = f.is(*ethertype)?;
                and(is, || {
                    directed(f, *dir, |f, source| {
                        // Under a zero mask (net 0/0) libpcap's optimiser drops the load.
                        if *mask == 0 {
                            return Ok(Some(true));
                        }
                        let off = if source { *src } else { *dst };
                        f.eq(off, 4, *mask, *addr)
                    })
                })
            }
            Expr::Host6 { dir, addr, mask } => {
                let is = f.is(ETHERTYPE_IPV6)?;
                and(is, || {
                    directed(f, *dir, |f, source| {
                        let off = if source { 8 } else { 24 };
                        let mut all = Some(true);
                        for i in 0..4 {
                            // A word under a zero mask is always equal: libpcap's optimiser
                            // drops its load.
                            if mask[i] == 0 {
                                continue;
                            }
                            let word = f.eq(off + 4 * i, 4, mask[i], addr[i])?;
                            all = and(all, || Ok(word))?;
                            if all == Some(false) {
                                break;
                            }
                        }
                        Ok(all)
                    })
                })
            }
            Expr::Proto { v4, v6, proto } => {
                let p = *proto;
                let four = if *v4 {
                    let is = f.is(ETHERTYPE_IP)?;
                    and(is, || f.eq(9, 1, 0xff, p))?
                } else {
                    Some(false)
                };
                or(four, || {
                    if !*v6 {
                        return Ok(Some(false));
                    }
                    let is = f.is(ETHERTYPE_IPV6)?;
                    and(is, || {
                        let next = f.eq(6, 1, 0xff, p)?;
                        // One fragment header before the final header (libpcap looks no
                        // further).
                        or(next, || {
                            let frag = f.eq(6, 1, 0xff, 44)?;
                            and(frag, || f.eq(40, 1, 0xff, p))
                        })
                    })
                })
            }
            Expr::Port {
                transports,
                dir,
                lo,
                hi,
            } => ports(f, *transports, *dir, |f, at| {
                // jge lo, then jgt hi.
                let at = f.payload + at;
                let ge = f.test(at, 2, 0xffff, Op::Ge(*lo as u32))?;
                and(ge, || {
                    Ok(f.test(at, 2, 0xffff, Op::Gt(*hi as u32))?.map(|gt| !gt))
                })
            }),
            Expr::Ports {
                transports,
                dir,
                ports: list,
            } => ports(f, *transports, *dir, |f, at| {
                let mut any = Some(false);
                for &p in list.iter() {
                    let t = f.eq(at, 2, 0xffff, p as u32)?;
                    any = or(any, || Ok(t))?;
                    if any == Some(true) {
                        break;
                    }
                }
                Ok(any)
            }),
        }
    }
}

/// A port test on TCP, UDP or SCTP: IPv6 with the transport as next header, then the first
/// fragment of IPv4, behind as many header words as its IHL says. `test` gets the offset of
/// the port in the payload.
fn ports(
    f: &mut Frame<'_, '_>,
    transports: Transports,
    dir: Dir,
    test: impl Fn(&mut Frame<'_, '_>, usize) -> R<T>,
) -> R<T> {
    let is6 = f.is(ETHERTYPE_IPV6)?;
    let six = and(is6, || {
        let next = f.transport(6, transports)?;
        and(next, || {
            directed(f, dir, |f, source| test(f, 40 + if source { 0 } else { 2 }))
        })
    })?;
    or(six, || {
        let is4 = f.is(ETHERTYPE_IP)?;
        and(is4, || {
            let proto = f.transport(9, transports)?;
            and(proto, || {
                // Only the first fragment has the ports (jset #0x1fff).
                let later = f.test(f.payload + 6, 2, 0xffff, Op::Set(0x1fff))?;
                and(later.map(|x| !x), || {
                    // ldxb 4*([0]&0xf)
                    let Some(ihl) = f.load(f.payload, 1, 0x0f)? else {
                        return Ok(None);
                    };
                    let base = 4 * ihl as usize;
                    directed(f, dir, |f, source| {
                        test(f, base + if source { 0 } else { 2 })
                    })
                })
            })
        })
    })
}

/// Merges runs of `port` primitives of the same protocols and direction in a chain of `or`s
/// into one [`Expr::Ports`], as libpcap's optimiser pulls their comparisons up next to each
/// other (`or_pullup`). The answer differs only on a frame cut between its source and
/// destination ports, where the order of the reads decides.
pub(crate) fn merge_ports(e: Expr) -> Expr {
    match e {
        Expr::Or(..) => {
            let mut chain = Vec::new();
            flatten_or(e, &mut chain);
            let mut out: Vec<Expr> = Vec::new();
            for item in chain {
                let single = |e: &Expr| match e {
                    Expr::Ports {
                        transports,
                        dir,
                        ports,
                    } if *dir != Dir::Both => Some((*transports, *dir, ports.to_vec())),
                    _ => None,
                };
                if let (Some(prev), Some((t2, d2, p2))) = (out.last(), single(&item)) {
                    if let Some((t1, d1, mut p1)) = single(prev) {
                        if t1 == t2 && d1 == d2 {
                            p1.extend(p2);
                            *out.last_mut().expect("a previous item") = Expr::Ports {
                                transports: t1,
                                dir: d1,
                                ports: p1.into_boxed_slice(),
                            };
                            continue;
                        }
                    }
                }
                out.push(item);
            }
            let mut items = out.into_iter();
            let first = items.next().expect("an or has two sides");
            items.fold(first, |a, b| Expr::Or(Box::new(a), Box::new(b)))
        }
        Expr::And(a, b) => Expr::And(Box::new(merge_ports(*a)), Box::new(merge_ports(*b))),
        Expr::Not(a) => Expr::Not(Box::new(merge_ports(*a))),
        other => other,
    }
}

fn flatten_or(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::Or(a, b) => {
            flatten_or(*a, out);
            flatten_or(*b, out);
        }
        other => out.push(merge_ports(other)),
    }
}
