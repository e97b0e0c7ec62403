//! A tolerant reading of HTTP/1.x message heads that a strict parser rejects.
//!
//! `httparse` follows RFC 9112 to the letter, which is right for a server but wrong for an
//! observer: a request that a real server answered (or reset) is a request, whatever bytes it
//! carried. When the strict parse fails, [`parse`] reads the head the way lenient servers do:
//! lines end at LF (a CR before it is dropped), the start line is split at its first space and
//! at its last ` HTTP/1.x`, header lines are split at their first colon, and continuation
//! lines (obs-fold, RFC 9112 §5.2) are joined to the field before them. What was wrong is
//! named ([`Malformed`]), so that reports can say why a request was marked malformed.
//! A head whose start line is not HTTP at all (no method token, no `HTTP/1.` version) is not
//! a message: [`parse`] returns `None` and the stream is given up as not HTTP.

/// Most header fields read from a tolerant head (the framing headers come early).
const MAX_FIELDS: usize = 256;

/// Why a head needed the tolerant reading. The snake_case names are part of the JSON schema.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Malformed {
    /// A header line continued on the next line (obs-fold, RFC 9112 §5.2).
    ObsFold,
    /// A control byte in a header field value.
    ControlInHeader,
    /// Control bytes, spaces or bytes above 0x7e in the request target.
    RawTarget,
    /// Lines ended by a bare LF instead of CRLF.
    BareLf,
    /// A header line without a colon, or a field name with invalid bytes.
    BadHeaderLine,
    /// Bytes that are not UTF-8.
    NotUtf8,
    /// Something else the strict parser rejected.
    Other,
}

impl Malformed {
    /// The JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Malformed::ObsFold => "obs_fold",
            Malformed::ControlInHeader => "control_in_header",
            Malformed::RawTarget => "raw_target",
            Malformed::BareLf => "bare_lf",
            Malformed::BadHeaderLine => "bad_header_line",
            Malformed::NotUtf8 => "not_utf8",
            Malformed::Other => "other",
        }
    }
}

/// What a tolerant reading of a head found.
pub struct Head<'a> {
    /// Request: the method token. Response: empty.
    pub method: &'a [u8],
    /// Request: the target as sent. Response: empty.
    pub target: &'a [u8],
    /// Response: the status code.
    pub status: u16,
    /// Minor version (1 for HTTP/1.1).
    pub version: u8,
    /// The header fields whose names are valid tokens (values as sent; folded lines are
    /// read as fields of their own with the previous name, which is what framing needs).
    pub headers: Vec<httparse::Header<'a>>,
    /// The first thing found wrong.
    pub malformed: Malformed,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `HTTP/1.x` → x.
fn version(v: &[u8]) -> Option<u8> {
    match v {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', d] if d.is_ascii_digit() => Some(d - b'0'),
        _ => None,
    }
}

/// Reads a request head (`request` true) or a response head tolerantly; `None` when its start
/// line is not HTTP/1.x.
pub fn parse(head: &[u8], request: bool) -> Option<Head<'_>> {
    let mut lines = head.split(|&b| b == b'\n');
    let mut found: Option<Malformed> = None;
    let note = |m: Malformed, found: &mut Option<Malformed>| {
        found.get_or_insert(m);
    };
    let mut start = lines.next()?;
    if let [rest @ .., b'\r'] = start {
        start = rest;
    } else {
        note(Malformed::BareLf, &mut found);
    }
    let mut h = Head {
        method: &[],
        target: &[],
        status: 0,
        version: 1,
        headers: Vec::new(),
        malformed: Malformed::Other,
    };
    if request {
        let sp = start.iter().position(|&b| b == b' ')?;
        let method = &start[..sp];
        if method.is_empty() || method.len() > 24 || !method.iter().all(|&b| is_tchar(b)) {
            return None;
        }
        let rest = &start[sp + 1..];
        let last = rest.iter().rposition(|&b| b == b' ')?;
        h.version = version(&rest[last + 1..])?;
        let target = rest[..last].trim_ascii();
        if target.is_empty() {
            return None;
        }
        if target.iter().any(|&b| b <= b' ' || b >= 0x7f) {
            note(Malformed::RawTarget, &mut found);
        }
        h.method = method;
        h.target = target;
    } else {
        let mut words = start.splitn(3, |&b| b == b' ');
        h.version = version(words.next()?)?;
        let code = words.next()?;
        if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
            return None;
        }
        h.status = std::str::from_utf8(code).ok()?.parse().ok()?;
    }
    let mut last_name: Option<&str> = None;
    for mut line in lines {
        if let [rest @ .., b'\r'] = line {
            line = rest;
        } else if !line.is_empty() {
            note(Malformed::BareLf, &mut found);
        }
        if line.is_empty() {
            continue;
        }
        if h.headers.len() >= MAX_FIELDS {
            break;
        }
        if matches!(line[0], b' ' | b'\t') {
            note(Malformed::ObsFold, &mut found);
            if let Some(name) = last_name {
                h.headers.push(httparse::Header {
                    name,
                    value: line.trim_ascii(),
                });
            }
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            note(Malformed::BadHeaderLine, &mut found);
            continue;
        };
        let name = line[..colon].trim_ascii_end();
        let value = line[colon + 1..].trim_ascii();
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            note(Malformed::BadHeaderLine, &mut found);
            last_name = None;
            continue;
        }
        if value.iter().any(|&b| (b < b' ' && b != b'\t') || b == 0x7f) {
            note(Malformed::ControlInHeader, &mut found);
        }
        let name = std::str::from_utf8(name).expect("tchars are ASCII");
        last_name = Some(name);
        h.headers.push(httparse::Header { name, value });
    }
    if found.is_none() && std::str::from_utf8(head).is_err() {
        found = Some(Malformed::NotUtf8);
    }
    h.malformed = found.unwrap_or(Malformed::Other);
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obs_fold_is_joined_and_named() {
        let h = parse(
            b"GET /a HTTP/1.1\r\nHost: x\r\nX-Long: one\r\n  two\r\nContent-Length: 3\r\n\r\n",
            true,
        )
        .unwrap();
        assert_eq!(
            (h.method, h.target, h.version),
            (&b"GET"[..], &b"/a"[..], 1)
        );
        assert_eq!(h.malformed, Malformed::ObsFold);
        assert_eq!(h.headers.len(), 4);
        assert_eq!(h.headers[2].name, "X-Long");
        assert_eq!(h.headers[2].value, b"two");
    }

    #[test]
    fn control_bytes_raw_targets_and_bare_lf() {
        let h = parse(b"POST /x HTTP/1.1\r\nX-A: a\x01b\r\n\r\n", true).unwrap();
        assert_eq!(h.malformed, Malformed::ControlInHeader);
        let h = parse(b"GET /caf\xe9 \x07x HTTP/1.1\r\n\r\n", true).unwrap();
        assert_eq!(h.target, b"/caf\xe9 \x07x");
        assert_eq!(h.malformed, Malformed::RawTarget);
        let h = parse(b"DELETE /item/7 HTTP/1.0\nHost: y\n\n", true).unwrap();
        assert_eq!((h.method, h.version), (&b"DELETE"[..], 0));
        assert_eq!(h.malformed, Malformed::BareLf);
    }

    #[test]
    fn not_http_is_refused() {
        assert!(parse(b"SSH-2.0-OpenSSH_9\r\n\r\n", true).is_none());
        assert!(
            parse(b"GET /\r\n\r\n", true).is_none(),
            "HTTP/0.9 has no version"
        );
        assert!(parse(b"G@T / HTTP/1.1\r\n\r\n", true).is_none());
        assert!(parse(b"HTTP/1.1 2x0 OK\r\n\r\n", false).is_none());
        let r = parse(
            b"HTTP/1.1 200 OK\r\nX: \x00\r\nContent-Length: 2\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!((r.status, r.malformed), (200, Malformed::ControlInHeader));
    }
}
