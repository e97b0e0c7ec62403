//! Capture filters in tcpdump's expression syntax, in pure Rust (no libpcap).
//!
//! `resetscope analyze FILE... -- 'tcp port 8080 and host 10.0.0.5'` keeps the frames
//! tcpdump would keep: [`Filter::parse`] reads the expression as tcpdump takes it (the words
//! may come as separate arguments, joined with spaces), and [`Filter::matches`] answers for
//! one frame as libpcap's compiled BPF program does, for these primitives:
//!
//! * `host A`, `net N/len`, `net N mask M`, `net 10.1` (a partial dotted address is a
//!   prefix, for `host` too, as in libpcap), IPv6 hosts and networks (`host ::1`,
//!   `net 2001:db8::/32`), each with `src`, `dst`, `src or dst` or `src and dst`, and with
//!   `ip`, `ip6`, `arp` or `rarp` before them. An IPv4 `host`/`net` without `ip` also matches
//!   the sender and target addresses of ARP and RARP frames, as libpcap's does;
//! * `port P`, `portrange A-B`, with `src`/`dst` and `tcp`/`udp`/`sctp`: without one, a port
//!   is a TCP, UDP or SCTP port. Ports are numbers or common service names (a fixed copy of
//!   Debian's /etc/services: `http` is TCP only, `domain` both, as getservbyname says there);
//! * `ip`, `ip6`, `arp`, `rarp`, `tcp`, `udp`, `sctp`, `icmp`, `icmp6`, `igmp`, `pim`,
//!   `vrrp`, `ah`, `esp`, and `proto N` / `ip proto N` / `ip6 proto N`;
//! * `and`/`&&`, `or`/`||`, `not`/`!`, parentheses. `not` binds tightest; `and` and `or`
//!   have the same precedence and group to the left (`a or b and c` is `(a or b) and c`);
//! * tcpdump's abbreviations: an address with no qualifier takes those of the primitive
//!   before it (`host a or b` is `host a or host b`, `port 80 or 443`,
//!   `src host a and (b or c)`); after a parenthesised expression, those in force before
//!   the parenthesis (libpcap's grammar does this).
//!
//! Link types: Ethernet (1), BSD loopback NULL (0) and LOOP (108), raw IP (101, and 12 and
//! 14, the values OpenBSD and others write), Linux cooked SLL (113) and SLL2 (276), raw IPv4
//! (228) and IPv6 (229). A frame of any other link type is never kept
//! ([`Filter::supports_linktype`] says which are known).
//!
//! What libpcap does, and so this does too (tests/filter.rs checks each against tcpdump):
//! the link layer alone says what the packet is, so an 802.1Q-tagged frame is not `ip` (no
//! `vlan` keyword here); the port of an IPv4 packet is read only in the first fragment,
//! behind however long the header says it is; for IPv6, `tcp`/`udp`/... look at the next
//! header and, after one fragment header, at the one after it, but never through other
//! extension headers, and `port` only when the next header is TCP/UDP/SCTP directly; IP-in-IP
//! is never looked into; on NULL links IPv6 is AF 24, 28 or 30, not Linux's 10. A test that
//! reads past the captured bytes (a frame cut by snaplen) rejects the frame, whatever the
//! rest of the expression says (`port 80 or host A` rejects a frame cut before its ports,
//! `host A or port 80` keeps it) — unless libpcap's optimiser has left that test out because
//! what the program read before settles the answer (`udp or ip6` keeps an IPv6 frame cut
//! before its next-header byte), or moved it (`port 53 or 5353` compares the source port
//! with both before reading the destination port). The evaluation models both (see
//! `src/filter/eval.rs`).
//!
//! Where this differs from libpcap:
//! * everything else in tcpdump's language is an error that says it is not supported offline
//!   (`ether`, `vlan`, `mpls`, `less`/`greater`, `broadcast`, byte offsets `tcp[13]`,
//!   arithmetic, `gateway`, `protochain`, ...), as are host, network and protocol names
//!   (libpcap would resolve them);
//! * service names come from the built-in table, not the system's /etc/services;
//! * frames cut inside the headers the expression reads: the model of libpcap's optimiser
//!   is not the optimiser, and for some combinations of primitives the answer on such a
//!   frame differs (for about one random expression in two hundred, on some frame of
//!   tests/filter/mix.pcap; never for the expression table there). On whole frames the
//!   answer is libpcap's. (libpcap's optimiser proves `portrange 1-1023 or not 1-1023`
//!   always true and keeps even a frame too short for its IPv4 header length; this filter
//!   rejects that frame.)
//! * NULL links: libpcap reads the address family in the byte order of the file's header;
//!   [`Filter::matches`] is not told that and takes either order.

mod eval;
mod parse;

use eval::{Expr, Link};

/// A compiled capture filter.
#[derive(Clone, Debug)]
pub struct Filter {
    expr: Expr,
    text: String,
}

/// Whether `word` is a word of the filter syntax (`tcp`, `host`, `port`, `not`, …): a file
/// name that starts with one is most likely a filter given without `--`.
pub fn is_keyword(word: &str) -> bool {
    parse::KEYWORDS.contains(&word.to_ascii_lowercase().as_str())
}

impl Filter {
    /// Parses a tcpdump expression; the words may come as separate argv items (tcpdump joins
    /// them with spaces). The empty expression keeps every frame, as tcpdump's does.
    pub fn parse(expr: &str) -> Result<Filter, FilterError> {
        Ok(Filter {
            expr: eval::merge_ports(parse::parse(expr)?),
            text: expr.split_whitespace().collect::<Vec<_>>().join(" "),
        })
    }

    /// Parses an expression given as separate words, as tcpdump takes it from its argv.
    pub fn from_args<S: AsRef<str>>(words: &[S]) -> Result<Filter, FilterError> {
        let joined: Vec<&str> = words.iter().map(AsRef::as_ref).collect();
        Filter::parse(&joined.join(" "))
    }

    /// Whether a frame of this pcap `LINKTYPE_*` value is kept: the same answer as
    /// tcpdump/libpcap for the supported primitives. `data` is the captured bytes from the
    /// link-layer header on. A frame of a link type the filter does not know is not kept.
    pub fn matches(&self, linktype: u32, data: &[u8]) -> bool {
        match Link::of(linktype) {
            Some(link) => self.expr.keeps(link, data),
            None => false,
        }
    }

    /// Whether [`Filter::matches`] knows this link type (otherwise it keeps nothing of it).
    pub fn supports_linktype(linktype: u32) -> bool {
        Link::of(linktype).is_some()
    }

    /// The expression, its words joined by single spaces.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// What kind of mistake a [`FilterError`] is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not an expression in tcpdump's grammar (a word where another was expected).
    Syntax,
    /// Grammatical, but libpcap rejects it too (an address with a qualifier that does not
    /// fit it, a port above 65535, host bits set in a network, ...).
    Invalid,
    /// Valid for libpcap, but not covered by this offline filter (`vlan`, `ether host`,
    /// byte offsets, host names, ...): libpcap's own compiler would take it.
    Unsupported,
}

/// Why an expression was not accepted: the word at fault (its 1-based position among the
/// words, parentheses and operators counting as words) and what was wrong or expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter: {}{message}", at(.word))]
pub struct FilterError {
    /// The kind of mistake.
    pub kind: ErrorKind,
    /// The word at fault, with its position; `None` at the end of the expression.
    pub word: Option<(usize, String)>,
    /// What was wrong, or what was expected there.
    pub message: String,
}

fn at(word: &Option<(usize, String)>) -> String {
    match word {
        Some((n, w)) => format!("at '{w}' (word {n}): "),
        None => "at the end of the expression: ".to_string(),
    }
}

impl FilterError {
    fn new(kind: ErrorKind, word: Option<(usize, String)>, message: String) -> FilterError {
        FilterError {
            kind,
            word,
            message,
        }
    }

    /// Whether libpcap would take the expression (a build with libpcap could use it).
    pub fn is_unsupported(&self) -> bool {
        self.kind == ErrorKind::Unsupported
    }
}

#[cfg(test)]
mod tests;
