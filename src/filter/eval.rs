//! The compiled expression and its evaluation against one frame.
//!
//! Every primitive reads the same bytes, in the same order, as the BPF code libpcap 1.10
//! generates for it (`tcpdump -d EXPR` prints that code), and a read past the captured bytes
//! rejects the whole frame, as the BPF interpreter does.

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

    fn has(self, proto: u8) -> bool {
        match proto {
            6 => self.tcp,
            17 => self.udp,
            132 => self.sctp,
            _ => false,
        }
    }
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
    Proto { v4: bool, v6: bool, proto: u8 },
    /// A TCP, UDP or SCTP port in `lo..=hi`, in IPv4 (first fragments only) or IPv6 (next
    /// header directly).
    Port {
        transports: Transports,
        dir: Dir,
        lo: u16,
        hi: u16,
    },
    /// One of several ports: what libpcap's optimiser makes of `port 53 or 5353` (the
    /// source port against each, then the destination port against each).
    Ports {
        transports: Transports,
        dir: Dir,
        ports: Box<[u16]>,
    },
}

/// A read past the captured bytes: the frame is rejected.
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

/// One frame being filtered.
pub(crate) struct Frame<'a> {
    data: &'a [u8],
    link: Link,
    payload: usize,
}

impl<'a> Frame<'a> {
    pub(crate) fn new(link: Link, data: &'a [u8]) -> Frame<'a> {
        Frame {
            data,
            link,
            payload: link.payload(),
        }
    }

    fn abs_u8(&self, at: usize) -> R<u8> {
        self.data.get(at).copied().ok_or(Short)
    }

    fn abs_u16(&self, at: usize) -> R<u16> {
        match self.data.get(at..at + 2) {
            Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
            None => Err(Short),
        }
    }

    fn abs_u32(&self, at: usize) -> R<u32> {
        match self.data.get(at..at + 4) {
            Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
            None => Err(Short),
        }
    }

    /// A byte of the link-layer payload (libpcap's `OR_LINKPL`).
    fn u8(&self, off: usize) -> R<u8> {
        self.abs_u8(self.payload + off)
    }

    fn u16(&self, off: usize) -> R<u16> {
        self.abs_u16(self.payload + off)
    }

    fn u32(&self, off: usize) -> R<u32> {
        self.abs_u32(self.payload + off)
    }

    /// libpcap's `gen_linktype`: whether the link layer says the payload has this EtherType.
    fn is(&self, ethertype: u16) -> R<bool> {
        match self.link {
            Link::EtherType { type_at, .. } => Ok(self.abs_u16(type_at)? == ethertype),
            Link::Loopback { network_order } => {
                // The families libpcap accepts for a saved file: AF_INET, and the three BSD
                // values of AF_INET6 (not Linux's 10).
                let families: &[u32] = match ethertype {
                    ETHERTYPE_IP => &[2],
                    ETHERTYPE_IPV6 => &[24, 28, 30],
                    _ => return Ok(false),
                };
                let word = self.abs_u32(0)?;
                Ok(families
                    .iter()
                    .any(|&f| word == f || (!network_order && word == f.swap_bytes())))
            }
            Link::Raw => {
                let version = match ethertype {
                    ETHERTYPE_IP => 0x40,
                    ETHERTYPE_IPV6 => 0x60,
                    _ => return Ok(false),
                };
                Ok(self.abs_u8(0)? & 0xf0 == version)
            }
            Link::Ipv4 => Ok(ethertype == ETHERTYPE_IP),
            Link::Ipv6 => Ok(ethertype == ETHERTYPE_IPV6),
        }
    }
}

impl Expr {
    /// Whether the frame passes; `Err` when a test read past the captured bytes.
    pub(crate) fn eval(&self, f: &Frame<'_>) -> R<bool> {
        match self {
            Expr::True => Ok(true),
            Expr::And(a, b) => Ok(a.eval(f)? && b.eval(f)?),
            Expr::Or(a, b) => Ok(a.eval(f)? || b.eval(f)?),
            Expr::Not(a) => Ok(!a.eval(f)?),
            Expr::Link(t) => f.is(*t),
            Expr::Host4 {
                ethertype,
                src,
                dst,
                dir,
                addr,
                mask,
            } => {
                if !f.is(*ethertype)? {
                    return Ok(false);
                }
                // Under a zero mask (net 0/0) libpcap's optimiser drops the load.
                let at = |off: usize| -> R<bool> { Ok(*mask == 0 || f.u32(off)? & mask == *addr) };
                directed(*dir, || at(*src), || at(*dst))
            }
            Expr::Host6 { dir, addr, mask } => {
                if !f.is(ETHERTYPE_IPV6)? {
                    return Ok(false);
                }
                let at = |off: usize| -> R<bool> {
                    for i in 0..4 {
                        // A word under a zero mask is always equal: libpcap's optimiser
                        // drops its load.
                        if mask[i] != 0 && f.u32(off + 4 * i)? & mask[i] != addr[i] {
                            return Ok(false);
                        }
                    }
                    Ok(true)
                };
                directed(*dir, || at(8), || at(24))
            }
            Expr::Proto { v4, v6, proto } => {
                if *v4 && f.is(ETHERTYPE_IP)? {
                    return Ok(f.u8(9)? == *proto);
                }
                if *v6 && f.is(ETHERTYPE_IPV6)? {
                    let next = f.u8(6)?;
                    if next == *proto {
                        return Ok(true);
                    }
                    // One fragment header before the final header (libpcap looks no further).
                    return Ok(next == 44 && f.u8(40)? == *proto);
                }
                Ok(false)
            }
            Expr::Port {
                transports,
                dir,
                lo,
                hi,
            } => {
                let Some(base) = transport(f, *transports)? else {
                    return Ok(false);
                };
                let port = |off: usize| -> R<bool> {
                    let p = f.u16(base + off)?;
                    Ok(*lo <= p && p <= *hi)
                };
                directed(*dir, || port(0), || port(2))
            }
            Expr::Ports {
                transports,
                dir,
                ports,
            } => {
                let Some(base) = transport(f, *transports)? else {
                    return Ok(false);
                };
                let port = |off: usize| -> R<bool> {
                    let p = f.u16(base + off)?;
                    Ok(ports.contains(&p))
                };
                directed(*dir, || port(0), || port(2))
            }
        }
    }
}

/// Where the ports are (an offset in the link-layer payload), if the packet is one of these
/// transports with ports libpcap reads: IPv6 with the transport as next header, or the first
/// fragment of IPv4, behind as many header words as its IHL says.
fn transport(f: &Frame<'_>, transports: Transports) -> R<Option<usize>> {
    if f.is(ETHERTYPE_IPV6)? {
        if !transports.has(f.u8(6)?) {
            return Ok(None);
        }
        return Ok(Some(40));
    }
    if f.is(ETHERTYPE_IP)? {
        if !transports.has(f.u8(9)?) {
            return Ok(None);
        }
        // Only the first fragment has the ports.
        if f.u16(6)? & 0x1fff != 0 {
            return Ok(None);
        }
        return Ok(Some(4 * (f.u8(0)? & 0x0f) as usize));
    }
    Ok(None)
}

/// Merges runs of single-port primitives of the same protocols and direction in a chain of
/// `or`s into one [`Expr::Ports`], as libpcap's optimiser merges their comparisons. The
/// answer differs only on a frame cut between its source and destination ports, where the
/// order of the reads decides between keeping it and rejecting it.
pub(crate) fn merge_ports(e: Expr) -> Expr {
    match e {
        Expr::Or(..) => {
            let mut chain = Vec::new();
            flatten_or(e, &mut chain);
            let mut out: Vec<Expr> = Vec::new();
            for item in chain {
                let single = |e: &Expr| match e {
                    Expr::Port {
                        transports,
                        dir,
                        lo,
                        hi,
                    } if lo == hi && *dir != Dir::Both => Some((*transports, *dir, vec![*lo])),
                    Expr::Ports {
                        transports,
                        dir,
                        ports,
                    } => Some((*transports, *dir, ports.to_vec())),
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

/// The source test, the destination test, or both, in that order.
fn directed(dir: Dir, src: impl Fn() -> R<bool>, dst: impl Fn() -> R<bool>) -> R<bool> {
    match dir {
        Dir::Src => src(),
        Dir::Dst => dst(),
        Dir::Either => Ok(src()? || dst()?),
        Dir::Both => Ok(src()? && dst()?),
    }
}
