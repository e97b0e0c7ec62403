//! NDJSON (newline-delimited JSON) for log pipelines and databases: one self-contained
//! object per line, documented in `docs/ndjson.md`.
//!
//! - `"type":"connection"`: one line per connection record, the moment the analysis
//!   releases it;
//! - `"type":"finding"`: one line per finding, the moment it is decided;
//! - `"type":"summary"`: the last line, with the capture's summary, the per-server
//!   estimates, the proxies, the resets from the path, the caveats, the inputs and the
//!   errors.
//!
//! Each line is written as it comes and nothing is kept, so memory does not grow with the
//! capture. Every line starts with the same keys, `type`, `schema` ([`SCHEMA`]), `host` (the
//! capturing host, `--host`; `null` when not given) and its time twice, as RFC 3339 text
//! (`time`) and as seconds since the epoch (`time_unix_s`), then the fields of the JSON
//! report's own object ([`ConnectionRecord`], [`Finding`], and after the summary line's
//! head the document's tail), serialized by the same structs. Every string goes through
//! [`crate::escape::JsonFormatter`], as in the JSON report.

use super::json::tail;
use crate::diagnose::{ConnectionRecord, Finding};
use crate::escape;
use crate::pipeline::Analysis;
use crate::time::Timestamp;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use std::io::{self, Write};

/// The name and version of the line layout, in every line's `schema`; the number is raised
/// on any incompatible change (the same rules as the JSON report's `schema_version`).
pub const SCHEMA: &str = "resetscope.ndjson/1";

/// Writes NDJSON lines as the analysis gives out records and findings.
pub struct NdjsonWriter<W: Write> {
    out: W,
    host: Option<String>,
    /// Flush after every line (live capture: each line is news the moment it is written).
    flush_each: bool,
    /// Reused buffer: each line is serialized here and written in one call.
    buf: Vec<u8>,
    /// First write error, reported at the end (the analysis keeps going).
    error: Option<io::Error>,
}

/// The keys every line starts with. A finding has its own `time`, which the head leaves to
/// it; the summary has no `community_id`, which the head writes `null`, so that every line
/// has every common key.
struct Head<'a> {
    kind: Kind,
    host: Option<&'a str>,
    time: Option<Timestamp>,
}

/// The line types.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Kind {
    Connection,
    Finding,
    Summary,
}

impl Serialize for Head<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(
            "type",
            match self.kind {
                Kind::Connection => "connection",
                Kind::Finding => "finding",
                Kind::Summary => "summary",
            },
        )?;
        m.serialize_entry("schema", SCHEMA)?;
        m.serialize_entry("host", &self.host)?;
        if self.kind != Kind::Finding {
            m.serialize_entry("time", &self.time)?;
        }
        m.serialize_entry("time_unix_s", &self.time.map(unix_seconds))?;
        if self.kind == Kind::Summary {
            m.serialize_entry("community_id", &None::<&str>)?;
        }
        m.end()
    }
}

/// Seconds since the epoch with the microseconds of the RFC 3339 text (both truncate the
/// nanoseconds to the microsecond, toward the past): the integer count of microseconds,
/// exact in an `f64` until the year 2255, divided once, so the number printed is the
/// nearest to the decimal `secs.micros` and reads back to it.
pub fn unix_seconds(t: Timestamp) -> f64 {
    t.0.div_euclid(1_000) as f64 / 1e6
}

impl<W: Write> NdjsonWriter<W> {
    /// Lines to `out`, each with `host` (the capturing host, `None`: written `null`);
    /// `flush_each` flushes `out` after every line.
    pub fn new(out: W, host: Option<String>, flush_each: bool) -> NdjsonWriter<W> {
        NdjsonWriter {
            out,
            host,
            flush_each,
            buf: Vec::with_capacity(4096),
            error: None,
        }
    }

    /// True once a write has failed (a closed pipe): the lines after it are not written.
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    /// One connection line; its `time` is the connection's first packet (`start`).
    pub fn record(&mut self, r: &ConnectionRecord) {
        self.line(Kind::Connection, Some(r.start), |b| {
            super::json_items::record(b, r);
            Ok(())
        });
    }

    /// One finding line; its `time` is the finding's own (the close, or the request of a
    /// race).
    pub fn finding(&mut self, f: &Finding) {
        self.line(Kind::Finding, Some(f.time), |b| {
            super::json_items::finding(b, f);
            Ok(())
        });
    }

    /// The summary line, whose `time` is the capture's first frame (`null` when it had
    /// none); returns the writer, or the first error of any line.
    pub fn finish(mut self, a: &Analysis) -> io::Result<W> {
        self.line(Kind::Summary, a.packets.first_ts, |b| {
            escape::json_to_writer(b, &tail(a)).map_err(io::Error::from)
        });
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()?;
        Ok(self.out)
    }

    fn line(
        &mut self,
        kind: Kind,
        time: Option<Timestamp>,
        body: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
    ) {
        if self.error.is_some() {
            return;
        }
        let head = Head {
            kind,
            host: self.host.as_deref(),
            time,
        };
        let mut res =
            splice(&mut self.buf, &head, body).and_then(|_| self.out.write_all(&self.buf));
        if self.flush_each {
            res = res.and_then(|_| self.out.flush());
        }
        self.error = res.err();
    }
}

impl<W: Write> crate::pipeline::Sink for NdjsonWriter<W> {
    fn record(&mut self, record: &ConnectionRecord) {
        NdjsonWriter::record(self, record)
    }
    fn finding(&mut self, finding: &Finding) {
        NdjsonWriter::finding(self, finding)
    }
}

/// One line into `buf`: the head's keys, then the body object's, then a newline. The head
/// is serialized with [`escape::JsonFormatter`], the body written by `body` (a record or a
/// finding by [`super::json_items`], the summary by serde); the body is written over the
/// head's closing brace, and its opening brace becomes the comma between them.
fn splice(
    buf: &mut Vec<u8>,
    head: &Head<'_>,
    body: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
) -> io::Result<()> {
    buf.clear();
    escape::json_to_writer(&mut *buf, head).map_err(io::Error::from)?;
    let at = buf.len() - 1;
    buf.truncate(at);
    body(buf)?;
    if buf.get(at) != Some(&b'{') {
        return Err(io::Error::other("an NDJSON line's body is not an object"));
    }
    if buf.get(at + 1) == Some(&b'}') {
        // An empty body: the head alone.
        buf.truncate(at);
        buf.push(b'}');
    } else {
        buf[at] = b',';
    }
    buf.push(b'\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_seconds_match_the_text_to_the_microsecond() {
        for (ns, text, number) in [
            (
                1_795_213_739_675_833_999,
                "2026-11-20T22:28:59.675833Z",
                "1795213739.675833",
            ),
            (
                1_795_213_739_000_001_000,
                "2026-11-20T22:28:59.000001Z",
                "1795213739.000001",
            ),
            (0, "1970-01-01T00:00:00.000000Z", "0.0"),
            // Before 1970 both go toward the past.
            (-1, "1969-12-31T23:59:59.999999Z", "-1e-6"),
        ] {
            let t = Timestamp(ns);
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{text}\""));
            assert_eq!(serde_json::to_string(&unix_seconds(t)).unwrap(), number);
        }
    }

    fn serde(value: &impl Serialize) -> impl FnOnce(&mut Vec<u8>) -> io::Result<()> + '_ {
        move |b| escape::json_to_writer(b, value).map_err(io::Error::from)
    }

    #[test]
    fn lines_are_the_head_then_the_body() {
        #[derive(Serialize)]
        struct Body {
            community_id: &'static str,
            text: &'static str,
        }
        let head = |kind, host| Head {
            kind,
            host,
            time: Some(Timestamp(1_795_213_739_675_833_000)),
        };
        let mut buf = Vec::new();
        let body = Body {
            community_id: "1:x",
            text: "a\u{202e}b\u{1b}",
        };
        splice(
            &mut buf,
            &head(Kind::Finding, Some("h\u{2028}")),
            serde(&body),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(buf.clone()).unwrap(),
            "{\"type\":\"finding\",\"schema\":\"resetscope.ndjson/1\",\"host\":\"h\\u2028\",\"time_unix_s\":1795213739.675833,\"community_id\":\"1:x\",\"text\":\"a\\u202eb\\u001b\"}\n"
        );
        #[derive(Serialize)]
        struct Empty {}
        splice(&mut buf, &head(Kind::Summary, None), serde(&Empty {})).unwrap();
        assert_eq!(
            String::from_utf8(buf.clone()).unwrap(),
            "{\"type\":\"summary\",\"schema\":\"resetscope.ndjson/1\",\"host\":null,\"time\":\"2026-11-20T22:28:59.675833Z\",\"time_unix_s\":1795213739.675833,\"community_id\":null}\n"
        );
        assert!(splice(&mut buf, &head(Kind::Connection, None), serde(&1)).is_err());
    }
}
