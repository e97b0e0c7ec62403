//! The tcpdump expression grammar: words, then libpcap's grammar (`grammar.y`) for the
//! supported primitives, with its code generator's checks (`gencode.c`) and its messages
//! where it has one.

use super::eval::{
    Dir, Expr, Transports, ETHERTYPE_ARP, ETHERTYPE_IP, ETHERTYPE_IPV6, ETHERTYPE_REVARP,
};
use super::{ErrorKind, FilterError};
use std::net::Ipv6Addr;

/// One word of the expression (parentheses, `!`, `&&`, `||` and `/` are words of their own,
/// with or without spaces around them).
#[derive(Copy, Clone, Debug)]
struct Tok<'a> {
    kind: Kind,
    text: &'a str,
    /// 1-based position among the words.
    word: usize,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Kind {
    Word,
    LParen,
    RParen,
    Not,
    And,
    Or,
    Slash,
    /// A character of libpcap's arithmetic or byte-offset syntax (`[`, `=`, `<`, `&`, …).
    Arith,
}

fn lex(expr: &str) -> Result<Vec<Tok<'_>>, FilterError> {
    let mut out: Vec<Tok<'_>> = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let kind = match c {
            b'(' => Kind::LParen,
            b')' => Kind::RParen,
            b'/' => Kind::Slash,
            b'!' if b.get(i + 1) != Some(&b'=') => Kind::Not,
            b'&' if b.get(i + 1) == Some(&b'&') => {
                i += 1;
                Kind::And
            }
            b'|' if b.get(i + 1) == Some(&b'|') => {
                i += 1;
                Kind::Or
            }
            c if is_word(c) => {
                while i + 1 < b.len() && is_word(b[i + 1]) {
                    i += 1;
                }
                Kind::Word
            }
            b'[' | b']' | b'=' | b'<' | b'>' | b'!' | b'&' | b'|' | b'+' | b'*' | b'%' | b'^'
            | b'~' => Kind::Arith,
            _ => {
                let ch = expr[start..].chars().next().unwrap_or('?');
                return Err(FilterError::new(
                    ErrorKind::Syntax,
                    Some((out.len() + 1, ch.to_string())),
                    "unexpected character".to_string(),
                ));
            }
        };
        i += 1;
        let text = &expr[start..i];
        let kind = match (kind, text) {
            (Kind::Word, "and") => Kind::And,
            (Kind::Word, "or") => Kind::Or,
            (Kind::Word, "not") => Kind::Not,
            (k, _) => k,
        };
        out.push(Tok {
            kind,
            text,
            word: out.len() + 1,
        });
    }
    Ok(out)
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-' | b'\\')
}

/// A protocol qualifier (libpcap's `pname`) this filter supports.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Pname {
    Ip,
    Ip6,
    Arp,
    Rarp,
    Tcp,
    Udp,
    Sctp,
    Icmp,
    Icmp6,
    Igmp,
    Pim,
    Vrrp,
    Ah,
    Esp,
}

impl Pname {
    fn of(word: &str) -> Option<Pname> {
        Some(match word {
            "ip" => Pname::Ip,
            "ip6" => Pname::Ip6,
            "arp" => Pname::Arp,
            "rarp" => Pname::Rarp,
            "tcp" => Pname::Tcp,
            "udp" => Pname::Udp,
            "sctp" => Pname::Sctp,
            "icmp" => Pname::Icmp,
            "icmp6" => Pname::Icmp6,
            "igmp" => Pname::Igmp,
            "pim" => Pname::Pim,
            "vrrp" => Pname::Vrrp,
            "ah" => Pname::Ah,
            "esp" => Pname::Esp,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Pname::Ip => "ip",
            Pname::Ip6 => "ip6",
            Pname::Arp => "arp",
            Pname::Rarp => "rarp",
            Pname::Tcp => "tcp",
            Pname::Udp => "udp",
            Pname::Sctp => "sctp",
            Pname::Icmp => "icmp",
            Pname::Icmp6 => "icmp6",
            Pname::Igmp => "igmp",
            Pname::Pim => "pim",
            Pname::Vrrp => "vrrp",
            Pname::Ah => "ah",
            Pname::Esp => "esp",
        }
    }

    /// The primitive the word stands for alone (libpcap's `gen_proto_abbrev`).
    fn abbrev(self) -> Expr {
        let both = |proto| Expr::Proto {
            v4: true,
            v6: true,
            proto,
        };
        let v4 = |proto| Expr::Proto {
            v4: true,
            v6: false,
            proto,
        };
        match self {
            Pname::Ip => Expr::Link(ETHERTYPE_IP),
            Pname::Ip6 => Expr::Link(ETHERTYPE_IPV6),
            Pname::Arp => Expr::Link(ETHERTYPE_ARP),
            Pname::Rarp => Expr::Link(ETHERTYPE_REVARP),
            Pname::Tcp => both(6),
            Pname::Udp => both(17),
            Pname::Sctp => both(132),
            Pname::Icmp => v4(1),
            Pname::Icmp6 => Expr::Proto {
                v4: false,
                v6: true,
                proto: 58,
            },
            Pname::Igmp => v4(2),
            Pname::Pim => both(103),
            Pname::Vrrp => v4(112),
            Pname::Ah => both(51),
            Pname::Esp => both(50),
        }
    }
}

/// libpcap keywords (and qualifiers) this filter does not implement.
const UNSUPPORTED: &[&str] = &[
    "ether",
    "fddi",
    "tr",
    "wlan",
    "ppp",
    "slip",
    "link",
    "vlan",
    "mpls",
    "pppoed",
    "pppoes",
    "geneve",
    "vxlan",
    "less",
    "greater",
    "len",
    "broadcast",
    "multicast",
    "inbound",
    "outbound",
    "gateway",
    "protochain",
    "igrp",
    "carp",
    "atalk",
    "aarp",
    "decnet",
    "lat",
    "sca",
    "moprc",
    "mopdl",
    "iso",
    "esis",
    "es-is",
    "isis",
    "is-is",
    "l1",
    "l2",
    "iih",
    "lsp",
    "snp",
    "csnp",
    "psnp",
    "clnp",
    "stp",
    "ipx",
    "netbeui",
    "radio",
    "llc",
    "ifindex",
    "ifname",
    "on",
    "type",
    "subtype",
    "dir",
    "addr1",
    "addr2",
    "addr3",
    "addr4",
    "address1",
    "address2",
    "address3",
    "address4",
    "ra",
    "ta",
    "rnr",
    "rulenum",
    "reason",
    "rset",
    "ruleset",
    "srnr",
    "subrulenum",
    "action",
    "lane",
    "oam",
    "oamf4",
    "oamf4ec",
    "oamf4sc",
    "metac",
    "bcc",
    "sc",
    "ilmic",
    "connectmsg",
    "metaconnect",
    "vpi",
    "vci",
    "fisu",
    "lssu",
    "msu",
    "hfisu",
    "hlssu",
    "hmsu",
    "sio",
    "opc",
    "dpc",
    "sls",
    "hsio",
    "hopc",
    "hdpc",
    "hsls",
];

/// The words that are keywords here (everything else is an address, a number or a name).
fn is_keyword(w: &str) -> bool {
    Pname::of(w).is_some()
        || matches!(
            w,
            "src" | "dst" | "host" | "net" | "port" | "portrange" | "proto" | "mask"
        )
        || UNSUPPORTED.contains(&w)
}

/// The address-type qualifier (libpcap's `aqual`, plus `proto`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Addr {
    Default,
    Host,
    Net,
    Port,
    Portrange,
    Proto,
}

/// The qualifiers in force for an address (libpcap's `struct qual`); `None` where libpcap
/// has `qerr`, after a primitive without qualifiers (`tcp`), so that a bare address after it
/// is a syntax error.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Qual {
    proto: Option<Pname>,
    dir: Dir,
    addr: Addr,
}

type Q = Option<Qual>;

/// The longest expression taken, in words.
const MAX_WORDS: usize = 1000;

/// The words of the supported syntax (qualifiers, primitives, operators).
pub(crate) const KEYWORDS: &[&str] = &[
    "host",
    "net",
    "port",
    "portrange",
    "src",
    "dst",
    "proto",
    "mask",
    "and",
    "or",
    "not",
    "ip",
    "ip6",
    "arp",
    "rarp",
    "tcp",
    "udp",
    "sctp",
    "icmp",
    "icmp6",
    "igmp",
];

/// The keyword one letter away from `w` (a letter wrong, missing, extra or two swapped).
fn suggest(w: &str) -> Option<&'static str> {
    let near = |a: &[u8], b: &[u8]| -> bool {
        if a.len() == b.len() {
            let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
            return diff.len() == 1
                || (diff.len() == 2
                    && diff[1] == diff[0] + 1
                    && a[diff[0]] == b[diff[1]]
                    && a[diff[1]] == b[diff[0]]);
        }
        let (long, short) = if a.len() > b.len() { (a, b) } else { (b, a) };
        long.len() == short.len() + 1
            && (0..long.len()).any(|i| long[..i] == short[..i] && long[i + 1..] == short[i..])
    };
    let lower = w.to_ascii_lowercase();
    KEYWORDS
        .iter()
        .copied()
        .find(|k| *k == lower || near(lower.as_bytes(), k.as_bytes()))
}

const PRIMITIVES: &str =
    "a primitive (host, net, port, portrange, src, dst, tcp, udp, icmp, ip, ip6, ...)";

struct Parser<'a> {
    toks: Vec<Tok<'a>>,
    pos: usize,
}

/// Parses a whole expression (words already joined with spaces).
pub(crate) fn parse(expr: &str) -> Result<Expr, FilterError> {
    let toks = lex(expr)?;
    // The tree is as deep as the expression is long; evaluating it recurses.
    if toks.len() > MAX_WORDS {
        return Err(FilterError::new(
            ErrorKind::Invalid,
            None,
            format!("the expression has more than {MAX_WORDS} words"),
        ));
    }
    if toks.is_empty() {
        return Ok(Expr::True);
    }
    let mut p = Parser { toks, pos: 0 };
    let (e, _) = p.expr(None)?;
    if let Some(t) = p.peek() {
        return Err(p.expected_at(t, "'and', 'or' or the end of the expression"));
    }
    Ok(e)
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Tok<'a>> {
        self.toks.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<Tok<'a>> {
        self.toks.get(self.pos + n).copied()
    }

    fn next(&mut self) -> Option<Tok<'a>> {
        let t = self.peek();
        self.pos += 1;
        t
    }

    fn err(&self, t: Option<Tok<'a>>, kind: ErrorKind, message: String) -> FilterError {
        FilterError::new(kind, t.map(|t| (t.word, t.text.to_string())), message)
    }

    /// "expected …" at this word, or "not supported" where the word is a libpcap keyword
    /// this filter lacks.
    fn expected_at(&self, t: Tok<'a>, what: &str) -> FilterError {
        if t.kind == Kind::Arith || (t.kind == Kind::Word && UNSUPPORTED.contains(&t.text)) {
            return self.unsupported(t);
        }
        let mut message = format!("expected {what}");
        if t.kind == Kind::Word {
            if let Some(k) = suggest(t.text) {
                message.push_str(&format!(" (did you mean '{k}'?)"));
            }
        }
        self.err(Some(t), ErrorKind::Syntax, message)
    }

    fn expected(&self, what: &str) -> FilterError {
        match self.peek() {
            Some(t) => self.expected_at(t, what),
            None => self.err(None, ErrorKind::Syntax, format!("expected {what}")),
        }
    }

    fn unsupported(&self, t: Tok<'a>) -> FilterError {
        let what = if t.kind == Kind::Arith {
            "byte offsets and arithmetic are".to_string()
        } else {
            format!("'{}' is", t.text)
        };
        self.err(
            Some(t),
            ErrorKind::Unsupported,
            format!(
                "{what} not supported by the offline filter (it covers host, net, port, \
                 portrange, src/dst, ip, ip6, arp, tcp, udp, sctp, icmp, icmp6, proto; build \
                 with --features live for libpcap's compiler)"
            ),
        )
    }

    /// `expr: term | expr and term | expr and id | expr or term | expr or id`.
    /// Returns the expression and the qualifiers in force after it.
    fn expr(&mut self, q: Q) -> Result<(Expr, Q), FilterError> {
        let (mut e, mut q) = self.term(q)?;
        while let Some(op) = self
            .peek()
            .filter(|t| matches!(t.kind, Kind::And | Kind::Or))
        {
            self.pos += 1;
            let right = if self.starts_id() {
                self.id(q)?
            } else {
                let (r, q2) = self.term(q)?;
                q = q2;
                r
            };
            e = join(op.kind, e, right);
        }
        Ok((e, q))
    }

    /// Whether an `id` (an address, number or name, inheriting the qualifiers) comes next
    /// rather than a `term`: past any `not` and `(`, a word that is not a keyword.
    fn starts_id(&self) -> bool {
        let mut n = 0;
        while let Some(t) = self.peek_at(n) {
            match t.kind {
                Kind::Not | Kind::LParen => n += 1,
                Kind::Word => return !is_keyword(t.text),
                _ => return false,
            }
        }
        false
    }

    /// `term: rterm | not term`; `rterm: head id | ( expr ) | pname`.
    fn term(&mut self, q: Q) -> Result<(Expr, Q), FilterError> {
        let Some(t) = self.peek() else {
            return Err(self.expected(PRIMITIVES));
        };
        match t.kind {
            Kind::Not => {
                self.pos += 1;
                let (e, q) = self.term(q)?;
                Ok((Expr::Not(Box::new(e)), q))
            }
            Kind::LParen => {
                self.pos += 1;
                let (e, _) = self.expr(q)?;
                self.close()?;
                // libpcap: a parenthesised expression leaves the qualifiers that were in
                // force before it.
                Ok((e, q))
            }
            Kind::Word => {
                if let Some(p) = Pname::of(t.text) {
                    let qualified = self
                        .peek_at(1)
                        .is_some_and(|n| n.kind == Kind::Word && is_qualifier(n.text));
                    if !qualified {
                        self.pos += 1;
                        return Ok((p.abbrev(), None));
                    }
                    self.pos += 1;
                    return self.head(Some(p));
                }
                if is_qualifier(t.text) {
                    return self.head(None);
                }
                Err(self.expected_at(t, PRIMITIVES))
            }
            _ => Err(self.expected_at(t, PRIMITIVES)),
        }
    }

    fn close(&mut self) -> Result<(), FilterError> {
        match self.peek() {
            Some(t) if t.kind == Kind::RParen => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(self.expected("')'")),
        }
    }

    /// `head id`, after the protocol qualifier if any:
    /// `head: pqual dqual aqual | pqual dqual | pqual aqual | pqual proto`.
    fn head(&mut self, proto: Option<Pname>) -> Result<(Expr, Q), FilterError> {
        let mut q = Qual {
            proto,
            dir: Dir::Either,
            addr: Addr::Default,
        };
        let t = self.next().expect("a qualifier word");
        match t.text {
            "src" | "dst" => {
                q.dir = if t.text == "src" { Dir::Src } else { Dir::Dst };
                let other = if t.text == "src" { "dst" } else { "src" };
                if let (Some(op), Some(n)) = (self.peek(), self.peek_at(1)) {
                    if matches!(op.kind, Kind::And | Kind::Or) && n.text == other {
                        q.dir = if op.kind == Kind::And {
                            Dir::Both
                        } else {
                            Dir::Either
                        };
                        self.pos += 2;
                    }
                }
                if let Some(a) = self.peek().and_then(|n| aqual(n.text)) {
                    self.pos += 1;
                    q.addr = a;
                }
            }
            "proto" => q.addr = Addr::Proto,
            w => match aqual(w) {
                Some(a) => q.addr = a,
                None => return Err(self.unsupported(t)),
            },
        }
        let e = self.id(Some(q))?;
        Ok((e, Some(q)))
    }

    /// `id: nid | pnum | ( pid )`; `nid: ID | HID/NUM | HID mask HID | HID | HID6/NUM | HID6
    /// | not id`.
    fn id(&mut self, q: Q) -> Result<Expr, FilterError> {
        let Some(t) = self.peek() else {
            return Err(self.expected("an address, a number or a name"));
        };
        match t.kind {
            Kind::Not => {
                self.pos += 1;
                Ok(Expr::Not(Box::new(self.id(q)?)))
            }
            Kind::LParen => {
                self.pos += 1;
                let e = self.pid(q)?;
                self.close()?;
                Ok(e)
            }
            Kind::Word if !is_keyword(t.text) => {
                self.pos += 1;
                self.word(t, q)
            }
            _ => Err(self.expected_at(t, "an address, a number or a name")),
        }
    }

    /// `pid: nid | qid and id | qid or id` (inside parentheses after qualifiers: a list of
    /// addresses that all take them). libpcap does not allow `(` first.
    fn pid(&mut self, q: Q) -> Result<Expr, FilterError> {
        let mut e = match self.peek() {
            Some(t) if t.kind == Kind::LParen => {
                return Err(self.expected_at(t, "an address, a number or a name"))
            }
            _ => self.id(q)?,
        };
        while let Some(op) = self
            .peek()
            .filter(|t| matches!(t.kind, Kind::And | Kind::Or))
        {
            self.pos += 1;
            let right = self.id(q)?;
            e = join(op.kind, e, right);
        }
        Ok(e)
    }

    /// One address, number or name, with the qualifiers in force.
    fn word(&mut self, t: Tok<'a>, q: Q) -> Result<Expr, FilterError> {
        let text = t.text;
        let Some(q) = q else {
            return Err(self.err(
                Some(t),
                ErrorKind::Syntax,
                "an address, number or name needs a qualifier (host, net, port, ...) before it"
                    .to_string(),
            ));
        };
        if let Some(v) = number(text) {
            let v = v.map_err(|m| self.err(Some(t), ErrorKind::Invalid, m))?;
            return self.ncode(t, None, v, q);
        }
        if is_dotted(text) {
            if self.peek().is_some_and(|n| n.kind == Kind::Slash) {
                self.pos += 1;
                let len = self.masklen()?;
                return self.mcode(t, None, len, q);
            }
            if self.peek().is_some_and(|n| n.text == "mask") {
                self.pos += 1;
                let m = match self.next() {
                    Some(m) if m.kind == Kind::Word && is_dotted(m.text) => m,
                    _ => {
                        self.pos -= 1;
                        return Err(self.expected("a dotted netmask after 'mask'"));
                    }
                };
                return self.mcode(t, Some(m), 0, q);
            }
            match q.addr {
                Addr::Port | Addr::Portrange | Addr::Proto => {
                    let k = match q.addr {
                        Addr::Port => "port",
                        Addr::Portrange => "portrange",
                        _ => "proto",
                    };
                    return Err(self.err(
                        Some(t),
                        ErrorKind::Invalid,
                        format!("'{k}' modifier applied to IP address"),
                    ));
                }
                _ => {}
            }
            return self.ncode(t, Some(text), 0, q);
        }
        if text.contains(':') {
            if let Ok(a) = text.parse::<Ipv6Addr>() {
                let len = if self.peek().is_some_and(|n| n.kind == Kind::Slash) {
                    self.pos += 1;
                    self.masklen()?
                } else {
                    128
                };
                return self.mcode6(t, a, len, q);
            }
            if is_mac(text) {
                // Only after 'ether' (or 'link'), which this filter does not support.
                return Err(self.err(
                    Some(t),
                    ErrorKind::Invalid,
                    "ethernet address used in non-ether expression".to_string(),
                ));
            }
            return Err(self.err(
                Some(t),
                ErrorKind::Invalid,
                "not an IPv6 address".to_string(),
            ));
        }
        self.scode(t, q)
    }

    /// The number after `/`.
    fn masklen(&mut self) -> Result<u32, FilterError> {
        match self.next() {
            Some(t) if t.kind == Kind::Word && number(t.text).is_some() => number(t.text)
                .expect("a number")
                .map_err(|m| self.err(Some(t), ErrorKind::Invalid, m)),
            _ => {
                self.pos -= 1;
                Err(self.expected("a mask length after '/'"))
            }
        }
    }

    /// libpcap's `gen_ncode`: a number (`s` None) or a dotted IPv4 address or prefix.
    fn ncode(&self, t: Tok<'a>, s: Option<&str>, v: u32, q: Qual) -> Result<Expr, FilterError> {
        let invalid = |m: String| self.err(Some(t), ErrorKind::Invalid, m);
        match q.addr {
            Addr::Default | Addr::Host | Addr::Net => {
                let (mut v, mut mask) = (v, u32::MAX);
                match s {
                    None if q.addr == Addr::Net => {
                        // "Promote short net number": net 10 is 10.0.0.0/8.
                        while v != 0 && v & 0xff00_0000 == 0 {
                            v <<= 8;
                            mask <<= 8;
                        }
                    }
                    None => {}
                    Some(s) => {
                        let (a, bits) = atoin(s)
                            .ok_or_else(|| invalid(format!("invalid IPv4 address '{s}'")))?;
                        // "Promote short ipaddr": 10.1 is 10.1.0.0/16, for host as for net.
                        v = shl(a, 32 - bits);
                        mask = shl(u32::MAX, 32 - bits);
                    }
                }
                self.host4(t, v, mask, q)
            }
            Addr::Port | Addr::Portrange => {
                let transports = self.port_transports(t, q)?;
                if v > 65535 {
                    return Err(invalid(format!("illegal port number {v} > 65535")));
                }
                if q.addr == Addr::Port {
                    return Ok(Expr::Ports {
                        transports,
                        dir: q.dir,
                        ports: Box::new([v as u16]),
                    });
                }
                Ok(Expr::Port {
                    transports,
                    dir: q.dir,
                    lo: v as u16,
                    hi: v as u16,
                })
            }
            Addr::Proto => {
                let (v4, v6) = match q.proto {
                    None => (true, true),
                    Some(Pname::Ip) => (true, false),
                    Some(Pname::Ip6) => (false, true),
                    Some(p) => {
                        return Err(invalid(format!(
                            "'{} proto' is not supported by the offline filter (only proto, ip \
                             proto and ip6 proto)",
                            p.name()
                        )))
                    }
                };
                // libpcap takes a number above 255 too (it never matches).
                Ok(Expr::Proto { v4, v6, proto: v })
            }
        }
    }

    /// The protocols `port`/`portrange` take from the protocol qualifier.
    fn port_transports(&self, t: Tok<'a>, q: Qual) -> Result<Transports, FilterError> {
        let none = Transports {
            tcp: false,
            udp: false,
            sctp: false,
        };
        Ok(match q.proto {
            None => Transports::ALL,
            Some(Pname::Tcp) => Transports { tcp: true, ..none },
            Some(Pname::Udp) => Transports { udp: true, ..none },
            Some(Pname::Sctp) => Transports { sctp: true, ..none },
            Some(_) => {
                let k = if q.addr == Addr::Port {
                    "port"
                } else {
                    "portrange"
                };
                return Err(self.err(
                    Some(t),
                    ErrorKind::Invalid,
                    format!(
                        "illegal qualifier of '{k}' (only tcp, udp or sctp may come before it)"
                    ),
                ));
            }
        })
    }

    /// libpcap's `gen_host` for IPv4: `host` alone also matches ARP and RARP addresses.
    fn host4(&self, t: Tok<'a>, addr: u32, mask: u32, q: Qual) -> Result<Expr, FilterError> {
        let op = |ethertype, src, dst| Expr::Host4 {
            ethertype,
            src,
            dst,
            dir: q.dir,
            addr,
            mask,
        };
        let kind = if q.addr == Addr::Net { "net" } else { "host" };
        Ok(match q.proto {
            None => join(
                Kind::Or,
                join(
                    Kind::Or,
                    op(ETHERTYPE_IP, 12, 16),
                    op(ETHERTYPE_ARP, 14, 24),
                ),
                op(ETHERTYPE_REVARP, 14, 24),
            ),
            Some(Pname::Ip) => op(ETHERTYPE_IP, 12, 16),
            Some(Pname::Arp) => op(ETHERTYPE_ARP, 14, 24),
            Some(Pname::Rarp) => op(ETHERTYPE_REVARP, 14, 24),
            Some(Pname::Ip6) => {
                return Err(self.err(
                    Some(t),
                    ErrorKind::Invalid,
                    format!("'ip6' modifier applied to ip {kind}"),
                ))
            }
            Some(p) => {
                return Err(self.err(
                    Some(t),
                    ErrorKind::Invalid,
                    format!("'{}' modifier applied to {kind}", p.name()),
                ))
            }
        })
    }

    /// libpcap's `gen_mcode`: `N/len` or `N mask M`, for `net` only.
    fn mcode(
        &self,
        t: Tok<'a>,
        m: Option<Tok<'a>>,
        len: u32,
        q: Qual,
    ) -> Result<Expr, FilterError> {
        let invalid = |m: String| self.err(Some(t), ErrorKind::Invalid, m);
        let (n, bits) =
            atoin(t.text).ok_or_else(|| invalid(format!("invalid IPv4 address '{}'", t.text)))?;
        let n = shl(n, 32 - bits);
        let mask = match m {
            Some(m) => {
                let (mv, mbits) = atoin(m.text).ok_or_else(|| {
                    self.err(
                        Some(m),
                        ErrorKind::Invalid,
                        format!("invalid IPv4 address '{}'", m.text),
                    )
                })?;
                let mv = shl(mv, 32 - mbits);
                if n & !mv != 0 {
                    return Err(invalid(format!(
                        "non-network bits set in \"{} mask {}\"",
                        t.text, m.text
                    )));
                }
                mv
            }
            None => {
                if len > 32 {
                    return Err(invalid("mask length must be <= 32".to_string()));
                }
                let mv = shl(u32::MAX, 32 - len);
                if n & !mv != 0 {
                    return Err(invalid(format!(
                        "non-network bits set in \"{}/{len}\"",
                        t.text
                    )));
                }
                mv
            }
        };
        if q.addr != Addr::Net {
            return Err(invalid("Mask syntax for networks only".to_string()));
        }
        self.host4(t, n, mask, q)
    }

    /// libpcap's `gen_mcode6`: an IPv6 address with an optional prefix length.
    fn mcode6(&self, t: Tok<'a>, a: Ipv6Addr, len: u32, q: Qual) -> Result<Expr, FilterError> {
        let invalid = |m: String| self.err(Some(t), ErrorKind::Invalid, m);
        if len > 128 {
            return Err(invalid("mask length must be <= 128".to_string()));
        }
        let bits = u128::from(a);
        let mask = if len == 0 {
            0
        } else {
            u128::MAX << (128 - len)
        };
        if bits & !mask != 0 {
            return Err(invalid(format!(
                "non-network bits set in \"{}/{len}\"",
                t.text
            )));
        }
        match q.addr {
            Addr::Default | Addr::Host if len != 128 => {
                return Err(invalid("Mask syntax for networks only".to_string()))
            }
            Addr::Default | Addr::Host | Addr::Net => {}
            _ => {
                return Err(invalid(
                    "invalid qualifier against IPv6 address".to_string(),
                ))
            }
        }
        let kind = if q.addr == Addr::Net { "net" } else { "host" };
        match q.proto {
            None | Some(Pname::Ip6) => {}
            Some(Pname::Ip) => return Err(invalid(format!("'ip' modifier applied to ip6 {kind}"))),
            Some(p) => {
                return Err(invalid(format!(
                    "'{}' modifier applied to ip6 {kind}",
                    p.name()
                )))
            }
        }
        let words = |v: u128| {
            [
                (v >> 96) as u32,
                (v >> 64) as u32,
                (v >> 32) as u32,
                v as u32,
            ]
        };
        Ok(Expr::Host6 {
            dir: q.dir,
            addr: words(bits),
            mask: words(mask),
        })
    }

    /// libpcap's `gen_scode`: a name (a port or port range here; host and network names
    /// would need a resolver).
    fn scode(&self, t: Tok<'a>, q: Qual) -> Result<Expr, FilterError> {
        let name = t.text;
        let invalid = |m: String| self.err(Some(t), ErrorKind::Invalid, m);
        match q.addr {
            Addr::Default | Addr::Host => Err(self.err(
                Some(t),
                ErrorKind::Unsupported,
                "host names are not resolved by the offline filter: give an IPv4 or IPv6 \
                 address"
                    .to_string(),
            )),
            Addr::Net => Err(self.err(
                Some(t),
                ErrorKind::Unsupported,
                "network names are not supported by the offline filter: give an address and \
                 a prefix length (net 10.0.0.0/8)"
                    .to_string(),
            )),
            Addr::Proto => Err(self.err(
                Some(t),
                ErrorKind::Unsupported,
                "protocol names are not supported after 'proto': give the number (ip proto 6)"
                    .to_string(),
            )),
            Addr::Port => {
                let transports = self.port_transports(t, q)?;
                let (port, named) =
                    service(name).ok_or_else(|| invalid(format!("unknown port '{name}'")))?;
                let transports = narrow(transports, named)
                    .map_err(|p| invalid(format!("port '{name}' is {p}")))?;
                Ok(Expr::Ports {
                    transports,
                    dir: q.dir,
                    ports: Box::new([port]),
                })
            }
            Addr::Portrange => {
                let transports = self.port_transports(t, q)?;
                let (lo, hi, named) = portrange(name)
                    .ok_or_else(|| invalid(format!("unknown port in range '{name}'")))?;
                for p in [lo, hi] {
                    if p > 65535 {
                        return Err(invalid(format!("illegal port number {p} > 65535")));
                    }
                }
                let transports = narrow(transports, named)
                    .map_err(|p| invalid(format!("port in range '{name}' is {p}")))?;
                let (lo, hi) = (lo.min(hi) as u16, lo.max(hi) as u16);
                Ok(Expr::Port {
                    transports,
                    dir: q.dir,
                    lo,
                    hi,
                })
            }
        }
    }
}

fn join(op: Kind, a: Expr, b: Expr) -> Expr {
    if op == Kind::And {
        Expr::And(Box::new(a), Box::new(b))
    } else {
        Expr::Or(Box::new(a), Box::new(b))
    }
}

fn is_qualifier(w: &str) -> bool {
    matches!(
        w,
        "src" | "dst" | "host" | "net" | "port" | "portrange" | "proto" | "gateway" | "protochain"
    )
}

fn aqual(w: &str) -> Option<Addr> {
    Some(match w {
        "host" => Addr::Host,
        "net" => Addr::Net,
        "port" => Addr::Port,
        "portrange" => Addr::Portrange,
        _ => return None,
    })
}

fn shl(v: u32, n: u32) -> u32 {
    if n >= 32 {
        0
    } else {
        v << n
    }
}

/// A number as libpcap's scanner reads one: decimal, `0x` hexadecimal or `0` octal. `None`
/// if the word is not number-shaped; `Some(Err)` if it is but is not a valid number.
fn number(w: &str) -> Option<Result<u32, String>> {
    let (digits, radix) = if let Some(h) = w.strip_prefix("0x").or_else(|| w.strip_prefix("0X")) {
        if h.is_empty() || !h.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        (h, 16)
    } else if w.bytes().all(|c| c.is_ascii_digit()) && !w.is_empty() {
        if w.len() > 1 && w.starts_with('0') {
            if !w.bytes().all(|c| (b'0'..=b'7').contains(&c)) {
                return Some(Err(format!("number {w} contains non-octal digit")));
            }
            (&w[1..], 8)
        } else {
            (w, 10)
        }
    } else {
        return None;
    };
    Some(u32::from_str_radix(digits, radix).map_err(|_| format!("number {w} overflows 32 bits")))
}

/// Two to four dot-separated decimal parts: libpcap's `HID`.
fn is_dotted(w: &str) -> bool {
    let parts = w.split('.').count();
    (2..=4).contains(&parts)
        && w.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}

/// libpcap's `__pcap_atoin`: the value of a dotted address and how many bits it gives.
fn atoin(s: &str) -> Option<(u32, u32)> {
    let mut addr: u32 = 0;
    let mut bits = 0;
    for part in s.split('.') {
        let n: u32 = part.parse().ok().filter(|&n| n <= 255)?;
        addr = (addr << 8) | n;
        bits += 8;
    }
    Some((addr, bits))
}

fn is_mac(w: &str) -> bool {
    let parts: Vec<&str> = w.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| (1..=2).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// Which protocols a service name is registered for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Registered {
    Tcp,
    Udp,
    /// Both with the same number: libpcap then matches tcp, udp and sctp.
    Both,
}

/// Service names, as Debian's /etc/services (netbase 6.4) has them. libpcap asks the system
/// (getservbyname); this table is the offline filter's fixed copy of the common ones.
const SERVICES: &[(&str, u16, Registered)] = {
    use Registered::*;
    &[
        ("ftp-data", 20, Tcp),
        ("ftp", 21, Tcp),
        ("ssh", 22, Tcp),
        ("telnet", 23, Tcp),
        ("smtp", 25, Tcp),
        ("mail", 25, Tcp),
        ("domain", 53, Both),
        ("bootps", 67, Udp),
        ("bootpc", 68, Udp),
        ("tftp", 69, Udp),
        ("http", 80, Tcp),
        ("www", 80, Tcp),
        ("kerberos", 88, Both),
        ("pop3", 110, Tcp),
        ("pop-3", 110, Tcp),
        ("sunrpc", 111, Both),
        ("portmapper", 111, Both),
        ("ntp", 123, Udp),
        ("netbios-ns", 137, Udp),
        ("netbios-ssn", 139, Tcp),
        ("imap2", 143, Tcp),
        ("imap", 143, Tcp),
        ("snmp", 161, Both),
        ("snmp-trap", 162, Both),
        ("snmptrap", 162, Both),
        ("bgp", 179, Tcp),
        ("ldap", 389, Both),
        ("https", 443, Both),
        ("microsoft-ds", 445, Tcp),
        ("isakmp", 500, Udp),
        ("syslog", 514, Udp),
        ("rtsp", 554, Both),
        ("submission", 587, Tcp),
        ("ipp", 631, Tcp),
        ("ldaps", 636, Both),
        ("rsync", 873, Tcp),
        ("imaps", 993, Tcp),
        ("pop3s", 995, Tcp),
        ("socks", 1080, Tcp),
        ("openvpn", 1194, Both),
        ("nfs", 2049, Both),
        ("mysql", 3306, Tcp),
        ("ms-wbt-server", 3389, Tcp),
        ("sip", 5060, Both),
        ("postgresql", 5432, Tcp),
        ("postgres", 5432, Tcp),
        ("redis", 6379, Tcp),
        ("http-alt", 8080, Tcp),
        ("webcache", 8080, Tcp),
    ]
};

fn service(name: &str) -> Option<(u16, Registered)> {
    SERVICES
        .iter()
        .find(|s| s.0 == name)
        .map(|&(_, port, reg)| (port, reg))
}

/// libpcap's `pcap_nametoportrange`: `A-B` in numbers, or two service names.
fn portrange(name: &str) -> Option<(u32, u32, Registered)> {
    let (a, b) = name.split_once('-')?;
    let num = |s: &str| s.parse::<u32>().ok();
    if let (Some(a), Some(b)) = (num(a), num(b)) {
        return Some((a, b, Registered::Both));
    }
    let (pa, ra) = service(a)?;
    let (pb, rb) = service(b)?;
    let reg = if ra == rb { ra } else { Registered::Both };
    Some((pa as u32, pb as u32, reg))
}

/// The protocols a named port matches under a protocol qualifier, or the protocol the name
/// is registered for when the qualifier asks for another.
fn narrow(q: Transports, named: Registered) -> Result<Transports, &'static str> {
    let only = |tcp, udp| Transports {
        tcp,
        udp,
        sctp: false,
    };
    match named {
        Registered::Both => Ok(q),
        Registered::Tcp if q == Transports::ALL => Ok(only(true, false)),
        Registered::Udp if q == Transports::ALL => Ok(only(false, true)),
        Registered::Tcp if q.tcp => Ok(q),
        Registered::Udp if q.udp => Ok(q),
        Registered::Tcp => Err("tcp"),
        Registered::Udp => Err("udp"),
    }
}
