//! HTTP/1.x message framing (RFC 9112 §6): where a head ends, what the framing headers
//! say, and the chunked transfer coding, decoded byte by byte across segments.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Chunked {
    Size {
        value: u64,
        digits: u8,
        ext: bool,
    },
    SizeLf {
        value: u64,
    },
    Data(u64),
    DataCr,
    DataLf,
    /// Reading trailer lines; `blank` while the current line is still empty.
    Trailer {
        blank: bool,
    },
}

/// Position just past the blank line ending a head (`\r\n\r\n`, or bare `\n\n`), searching
/// from `from`.
pub(super) fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < buf.len() {
        let nl = buf[i..].iter().position(|&b| b == b'\n')? + i;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

/// Runs the chunked-body decoder over `data`; returns the bytes used and the next state,
/// or `None` when the body (with its trailers) is complete.
pub(super) fn chunked(mut st: Chunked, data: &[u8]) -> (usize, Option<Chunked>) {
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        st = match st {
            Chunked::Data(n) => {
                let take = n.min((data.len() - i) as u64);
                i += take as usize;
                if take == n {
                    Chunked::DataCr
                } else {
                    Chunked::Data(n - take)
                }
            }
            Chunked::Size { value, digits, ext } => {
                i += 1;
                match b {
                    b'\n' => end_of_size(value),
                    b'\r' => Chunked::SizeLf { value },
                    _ if ext => Chunked::Size { value, digits, ext },
                    b';' | b' ' | b'\t' => Chunked::Size {
                        value,
                        digits,
                        ext: true,
                    },
                    _ => match (b as char).to_digit(16) {
                        Some(d) if digits < 16 => Chunked::Size {
                            value: value * 16 + d as u64,
                            digits: digits + 1,
                            ext,
                        },
                        _ => Chunked::Size {
                            value,
                            digits,
                            ext: true,
                        },
                    },
                }
            }
            Chunked::SizeLf { value } => {
                i += 1;
                if b == b'\n' {
                    end_of_size(value)
                } else {
                    Chunked::SizeLf { value }
                }
            }
            Chunked::DataCr => {
                i += 1;
                match b {
                    b'\r' => Chunked::DataLf,
                    b'\n' => Chunked::Size {
                        value: 0,
                        digits: 0,
                        ext: false,
                    },
                    _ => Chunked::Size {
                        value: 0,
                        digits: 0,
                        ext: false,
                    },
                }
            }
            Chunked::DataLf => {
                i += 1;
                Chunked::Size {
                    value: 0,
                    digits: 0,
                    ext: false,
                }
            }
            Chunked::Trailer { blank } => {
                i += 1;
                match b {
                    b'\n' if blank => return (i, None),
                    b'\n' => Chunked::Trailer { blank: true },
                    b'\r' => Chunked::Trailer { blank },
                    _ => Chunked::Trailer { blank: false },
                }
            }
        };
    }
    (i, Some(st))
}

fn end_of_size(value: u64) -> Chunked {
    if value == 0 {
        Chunked::Trailer { blank: true }
    } else {
        Chunked::Data(value)
    }
}

/// The names of the headers [`Framing::of`] reads.
const FRAMING_HEADERS: [&str; 4] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
];

/// The headers that decide framing and connection reuse.
#[derive(Default)]
pub(super) struct Framing {
    /// `Content-Length`, unless `Transfer-Encoding` overrides it.
    pub(super) length: Option<u64>,
    /// The last transfer coding is chunked.
    pub(super) chunked: bool,
    /// A `Transfer-Encoding` header is present.
    pub(super) transfer_encoding: bool,
    /// `Connection: close`.
    pub(super) close: bool,
    /// `Connection: keep-alive`.
    pub(super) keep_alive: bool,
    /// The `timeout` of a `Keep-Alive` header, in seconds.
    pub(super) keep_alive_timeout: Option<u32>,
}

impl Framing {
    pub(super) fn of(headers: &[httparse::Header<'_>]) -> Framing {
        let mut f = Framing::default();
        for h in headers {
            // The values that matter are ASCII; anything else reads as empty. No allocation,
            // and only the values of these four headers are read.
            if !FRAMING_HEADERS
                .iter()
                .any(|f| h.name.eq_ignore_ascii_case(f))
            {
                continue;
            }
            let value = std::str::from_utf8(h.value).unwrap_or("").trim();
            if h.name.eq_ignore_ascii_case("content-length") {
                f.length = value.parse().ok().or(f.length);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                f.transfer_encoding = true;
                f.chunked = value
                    .rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            } else if h.name.eq_ignore_ascii_case("connection") {
                for token in value.split(',') {
                    let token = token.trim();
                    if token.eq_ignore_ascii_case("close") {
                        f.close = true;
                    } else if token.eq_ignore_ascii_case("keep-alive") {
                        f.keep_alive = true;
                    }
                }
            } else if h.name.eq_ignore_ascii_case("keep-alive") {
                for param in value.split(',') {
                    if let Some((k, v)) = param.split_once('=') {
                        if k.trim().eq_ignore_ascii_case("timeout") {
                            f.keep_alive_timeout = v.trim().trim_matches('"').parse().ok();
                        }
                    }
                }
            }
        }
        if f.transfer_encoding {
            // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length.
            f.length = None;
        }
        f
    }
}
