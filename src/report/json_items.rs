//! Connection records and findings as JSON, written by hand: the two items the JSON and
//! NDJSON reports write once per connection and once per finding, which on a large capture
//! is most of their work.
//!
//! serde_json, writing a derived `Serialize`, scans every key for characters to escape and
//! makes a few small writes for each; here the keys are literals, numbers and times are
//! written straight into the buffer, and only text (captured or not) goes through
//! [`crate::escape::JsonFormatter`], as everywhere else. The output is byte for byte what
//! the derived `Serialize` of [`ConnectionRecord`] and [`Finding`] writes, which stays the
//! definition of the schema: `tests/json_items.rs` compares the two on every record and
//! finding of every fixture and corpus capture. Values that are rare or nested deeply (TLS
//! hellos, HTTP/2 summaries, kernel reasons) are written by serde itself.

use crate::community_id::CommunityId;
use crate::diagnose::record::{FirstClose, PerSide, RequestRecord, StreamCounters};
use crate::diagnose::{ConnectionRecord, Finding, RequestRef};
use crate::escape::{json_to_writer, JsonFormatter};
use crate::flows::CloseEvent;
use crate::source::FrameRef;
use crate::time::Timestamp;
use serde::ser::{Impossible, Serialize, Serializer};
use serde_json::ser::Formatter;
use std::io::Write;
use std::net::SocketAddr;

/// Appends `r` as one JSON object.
pub fn record(buf: &mut Vec<u8>, r: &ConnectionRecord) {
    let o = buf;
    o.extend_from_slice(b"{\"id\":");
    u64(o, r.id);
    o.extend_from_slice(b",\"community_id\":");
    community_id(o, r.community_id);
    o.extend_from_slice(b",\"client\":");
    addr(o, r.client);
    o.extend_from_slice(b",\"server\":");
    addr(o, r.server);
    o.extend_from_slice(b",\"roles\":");
    variant(o, &r.roles);
    o.extend_from_slice(b",\"roles_inferred\":");
    bool(o, r.roles_inferred);
    o.extend_from_slice(b",\"protocol\":");
    text(o, r.protocol);
    o.extend_from_slice(b",\"first_frame\":");
    frame(o, r.first_frame);
    o.extend_from_slice(b",\"last_frame\":");
    frame(o, r.last_frame);
    o.extend_from_slice(b",\"start\":");
    time(o, r.start);
    o.extend_from_slice(b",\"end\":");
    time(o, r.end);
    o.extend_from_slice(b",\"packets\":");
    per_side(o, r.packets);
    o.extend_from_slice(b",\"payload_bytes\":");
    per_side(o, r.payload_bytes);
    o.extend_from_slice(b",\"closed\":");
    bool(o, r.closed);
    o.extend_from_slice(b",\"released\":");
    variant(o, &r.released);
    o.extend_from_slice(b",\"first_close\":");
    option(o, r.first_close.as_ref(), first_close);
    o.extend_from_slice(b",\"closes\":");
    list(o, &r.closes, close);
    o.extend_from_slice(b",\"closes_dropped\":");
    u64(o, r.closes_dropped.into());
    o.extend_from_slice(b",\"idle_before_close_ms\":");
    option(o, r.idle_before_close_ms.as_ref(), |o, v| f64(o, *v));
    o.extend_from_slice(b",\"app_note\":");
    option(o, r.app_note.as_deref(), text);
    o.extend_from_slice(b",\"tls\":");
    serde(o, &r.tls);
    o.extend_from_slice(b",\"tls_requests\":");
    option(o, r.tls_requests.as_ref(), |o, p| per_side(o, *p));
    o.extend_from_slice(b",\"http2\":");
    serde(o, &r.http2);
    o.extend_from_slice(b",\"requests\":");
    list(o, &r.requests, request);
    if r.requests_folded != 0 {
        o.extend_from_slice(b",\"requests_folded\":");
        u64(o, r.requests_folded);
    }
    if r.requests_dropped != 0 {
        o.extend_from_slice(b",\"requests_dropped\":");
        u64(o, r.requests_dropped);
    }
    o.extend_from_slice(b",\"stream\":");
    stream(o, &r.stream);
    o.extend_from_slice(b",\"findings\":");
    list(o, &r.findings, |o, k| text(o, k.name()));
    o.push(b'}');
}

/// Appends `f` as one JSON object.
pub fn finding(buf: &mut Vec<u8>, f: &Finding) {
    let o = buf;
    o.extend_from_slice(b"{\"kind\":");
    variant(o, &f.kind);
    o.extend_from_slice(b",\"severity\":");
    variant(o, &f.severity);
    o.extend_from_slice(b",\"connection\":");
    u64(o, f.connection);
    o.extend_from_slice(b",\"client\":");
    addr(o, f.client);
    o.extend_from_slice(b",\"server\":");
    addr(o, f.server);
    o.extend_from_slice(b",\"time\":");
    time(o, f.time);
    o.extend_from_slice(b",\"by\":");
    variant(o, &f.by);
    o.extend_from_slice(b",\"frames\":");
    list(o, &f.frames, |o, x| frame(o, *x));
    o.extend_from_slice(b",\"close_frame\":");
    frame(o, f.close_frame);
    o.extend_from_slice(b",\"request\":");
    option(o, f.request.as_ref(), request_ref);
    o.extend_from_slice(b",\"idle_ms\":");
    option_f64(o, f.idle_ms);
    o.extend_from_slice(b",\"fin_to_request_ms\":");
    option_f64(o, f.fin_to_request_ms);
    o.extend_from_slice(b",\"variant\":");
    option(o, f.variant, text);
    o.extend_from_slice(b",\"written_after_close\":");
    option_bool(o, f.written_after_close);
    o.extend_from_slice(b",\"client_had_fin\":");
    option_bool(o, f.client_had_fin);
    o.extend_from_slice(b",\"matches_server_timeout\":");
    option_bool(o, f.matches_server_timeout);
    o.extend_from_slice(b",\"retry_safe\":");
    option_bool(o, f.retry_safe);
    o.extend_from_slice(b",\"processed\":");
    option_bool(o, f.processed);
    o.extend_from_slice(b",\"response_bytes\":");
    option_u64(o, f.response_bytes);
    o.extend_from_slice(b",\"response_announced\":");
    option_u64(o, f.response_announced);
    o.extend_from_slice(b",\"stall_ms\":");
    option_f64(o, f.stall_ms);
    o.extend_from_slice(b",\"also_unanswered\":");
    u64(o, f.also_unanswered.into());
    o.extend_from_slice(b",\"rst_from_path\":");
    option_bool(o, f.rst_from_path);
    o.extend_from_slice(b",\"path_silence_ms\":");
    option_f64(o, f.path_silence_ms);
    o.extend_from_slice(b",\"retried_by_proxy\":");
    option_bool(o, f.retried_by_proxy);
    o.extend_from_slice(b",\"community_id\":");
    community_id(o, f.community_id);
    o.extend_from_slice(b",\"server_name\":");
    option(o, f.server_name.as_deref(), text);
    o.extend_from_slice(b",\"kernel_reason\":");
    serde(o, &f.kernel_reason);
    o.extend_from_slice(b",\"close_how\":");
    text(o, f.close_how);
    o.extend_from_slice(b",\"sentence\":");
    text(o, &f.sentence);
    o.push(b'}');
}

fn first_close(o: &mut Vec<u8>, c: &FirstClose) {
    o.extend_from_slice(b"{\"by\":");
    variant(o, &c.by);
    o.extend_from_slice(b",\"how\":");
    text(o, c.how);
    o.extend_from_slice(b",\"kind\":");
    variant(o, &c.kind);
    o.extend_from_slice(b",\"frame\":");
    frame(o, c.frame);
    o.extend_from_slice(b",\"time\":");
    time(o, c.time);
    o.push(b'}');
}

fn close(o: &mut Vec<u8>, c: &CloseEvent) {
    o.extend_from_slice(b"{\"by\":");
    variant(o, &c.side);
    o.extend_from_slice(b",\"frame\":");
    frame(o, c.mark.frame);
    o.extend_from_slice(b",\"time\":");
    time(o, c.mark.ts);
    o.extend_from_slice(b",\"kind\":");
    variant(o, &c.kind);
    o.extend_from_slice(b",\"seq\":");
    u64(o, c.seq.into());
    o.extend_from_slice(b",\"ack\":");
    option_u64(o, c.ack.map(u64::from));
    o.extend_from_slice(b",\"retransmission\":");
    bool(o, c.retransmission);
    o.extend_from_slice(b",\"ttl\":");
    u64(o, c.ttl.into());
    if c.kernel_reason.is_some() {
        o.extend_from_slice(b",\"kernel_reason\":");
        serde(o, &c.kernel_reason);
    }
    o.push(b'}');
}

fn request(o: &mut Vec<u8>, r: &RequestRecord) {
    o.extend_from_slice(b"{\"index\":");
    u64(o, r.index as u64);
    o.extend_from_slice(b",\"method\":");
    text(o, &r.method);
    o.extend_from_slice(b",\"target\":");
    text(o, &r.target);
    o.extend_from_slice(b",\"frame\":");
    frame(o, r.frame);
    o.extend_from_slice(b",\"time\":");
    time(o, r.time);
    o.extend_from_slice(b",\"idempotent\":");
    bool(o, r.idempotent);
    o.extend_from_slice(b",\"idempotency_key\":");
    bool(o, r.idempotency_key);
    o.extend_from_slice(b",\"malformed\":");
    option(o, r.malformed.as_ref(), variant);
    o.extend_from_slice(b",\"outcome\":");
    variant(o, &r.outcome);
    o.extend_from_slice(b",\"status\":");
    option_u64(o, r.status.map(u64::from));
    o.extend_from_slice(b",\"response_frame\":");
    option(o, r.response_frame.as_ref(), |o, f| frame(o, *f));
    o.extend_from_slice(b",\"response_time\":");
    option(o, r.response_time.as_ref(), |o, t| time(o, *t));
    o.extend_from_slice(b",\"response_complete\":");
    bool(o, r.response_complete);
    o.extend_from_slice(b",\"response_bytes\":");
    option_u64(o, r.response_bytes);
    o.extend_from_slice(b",\"response_announced\":");
    option_u64(o, r.response_announced);
    o.push(b'}');
}

fn request_ref(o: &mut Vec<u8>, r: &RequestRef) {
    o.extend_from_slice(b"{\"method\":");
    text(o, &r.method);
    o.extend_from_slice(b",\"target\":");
    text(o, &r.target);
    o.extend_from_slice(b",\"frame\":");
    frame(o, r.frame);
    o.extend_from_slice(b",\"time\":");
    time(o, r.time);
    o.extend_from_slice(b",\"idempotent\":");
    bool(o, r.idempotent);
    o.extend_from_slice(b",\"idempotency_key\":");
    bool(o, r.idempotency_key);
    o.extend_from_slice(b",\"index\":");
    u64(o, r.index as u64);
    o.extend_from_slice(b",\"malformed\":");
    option(o, r.malformed.as_ref(), variant);
    o.push(b'}');
}

fn stream(o: &mut Vec<u8>, s: &StreamCounters) {
    o.extend_from_slice(b"{\"retransmissions\":");
    u64(o, s.retransmissions.into());
    o.extend_from_slice(b",\"out_of_order\":");
    u64(o, s.out_of_order.into());
    o.extend_from_slice(b",\"gaps\":");
    u64(o, s.gaps.into());
    o.extend_from_slice(b",\"gap_bytes\":");
    u64(o, s.gap_bytes);
    o.extend_from_slice(b",\"cut_bytes\":");
    u64(o, s.cut_bytes);
    o.extend_from_slice(b",\"keepalives\":");
    u64(o, s.keepalives.into());
    o.extend_from_slice(b",\"zero_windows\":");
    u64(o, s.zero_windows.into());
    o.extend_from_slice(b",\"buffer_overflows\":");
    u64(o, s.buffer_overflows.into());
    o.extend_from_slice(b",\"http_desyncs\":");
    u64(o, s.http_desyncs.into());
    o.extend_from_slice(b",\"duplicates\":");
    u64(o, s.duplicates.into());
    o.push(b'}');
}

fn per_side(o: &mut Vec<u8>, p: PerSide) {
    o.extend_from_slice(b"{\"client\":");
    u64(o, p.client);
    o.extend_from_slice(b",\"server\":");
    u64(o, p.server);
    o.push(b'}');
}

fn frame(o: &mut Vec<u8>, f: FrameRef) {
    o.extend_from_slice(b"{\"file\":");
    u64(o, f.file.into());
    o.extend_from_slice(b",\"number\":");
    u64(o, f.number);
    o.push(b'}');
}

fn time(o: &mut Vec<u8>, t: Timestamp) {
    let mut b = [0u8; 27];
    if t.rfc3339_into(&mut b) {
        o.push(b'"');
        o.extend_from_slice(&b);
        o.push(b'"');
    } else {
        serde(o, &t);
    }
}

/// An address as its `Display` writes it (`1.2.3.4:80`, `[::1]:80`, `[fe80::1%2]:80`):
/// digits, hex digits and punctuation, nothing to escape.
fn addr(o: &mut Vec<u8>, a: SocketAddr) {
    // Writing into a Vec cannot fail.
    let _ = write!(o, "\"{a}\"");
}

/// `1:` and base64: nothing to escape.
fn community_id(o: &mut Vec<u8>, c: CommunityId) {
    let _ = write!(o, "\"{c}\"");
}

fn u64(o: &mut Vec<u8>, n: u64) {
    // Writing into a Vec cannot fail.
    let _ = JsonFormatter.write_u64(o, n);
}

/// As serde_json writes an `f64`: `null` unless finite.
fn f64(o: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        let _ = JsonFormatter.write_f64(o, v);
    } else {
        o.extend_from_slice(b"null");
    }
}

fn bool(o: &mut Vec<u8>, b: bool) {
    o.extend_from_slice(if b { b"true" } else { b"false" });
}

/// A string, escaped as every string resetscope writes in JSON.
fn text(o: &mut Vec<u8>, s: &str) {
    serde(o, s);
}

/// A unit variant's name, as serde names it (`rename_all` included); serde writes anything
/// else.
fn variant<T: Serialize>(o: &mut Vec<u8>, v: &T) {
    match v.serialize(VariantName) {
        Ok(name) => text(o, name),
        Err(NotUnit) => serde(o, v),
    }
}

fn option<T: ?Sized>(o: &mut Vec<u8>, v: Option<&T>, write: impl FnOnce(&mut Vec<u8>, &T)) {
    match v {
        Some(v) => write(o, v),
        None => o.extend_from_slice(b"null"),
    }
}

fn option_u64(o: &mut Vec<u8>, v: Option<u64>) {
    option(o, v.as_ref(), |o, n| u64(o, *n));
}

fn option_f64(o: &mut Vec<u8>, v: Option<f64>) {
    option(o, v.as_ref(), |o, n| f64(o, *n));
}

fn option_bool(o: &mut Vec<u8>, v: Option<bool>) {
    option(o, v.as_ref(), |o, b| bool(o, *b));
}

fn list<T>(o: &mut Vec<u8>, items: &[T], mut write: impl FnMut(&mut Vec<u8>, &T)) {
    o.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            o.push(b',');
        }
        write(o, item);
    }
    o.push(b']');
}

fn serde<T: Serialize + ?Sized>(o: &mut Vec<u8>, v: &T) {
    // Every value here serializes without error (no map with non-string keys), and
    // writing into a Vec cannot fail.
    let _ = json_to_writer(&mut *o, v);
}

/// A serializer that only takes unit variants, and returns their names.
struct VariantName;

/// What [`VariantName`] says of anything but a unit variant.
#[derive(Debug)]
struct NotUnit;

impl std::fmt::Display for NotUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a unit variant")
    }
}

impl std::error::Error for NotUnit {}

impl serde::ser::Error for NotUnit {
    fn custom<T: std::fmt::Display>(_: T) -> NotUnit {
        NotUnit
    }
}

/// The methods of [`VariantName`] that refuse their value.
macro_rules! refuse {
    ($($name:ident($($arg:ty),*) -> $ok:ty;)*) => {
        $(fn $name(self, $(_: $arg),*) -> Result<$ok, NotUnit> { Err(NotUnit) })*
    };
}

impl Serializer for VariantName {
    type Ok = &'static str;
    type Error = NotUnit;
    type SerializeSeq = Impossible<&'static str, NotUnit>;
    type SerializeTuple = Impossible<&'static str, NotUnit>;
    type SerializeTupleStruct = Impossible<&'static str, NotUnit>;
    type SerializeTupleVariant = Impossible<&'static str, NotUnit>;
    type SerializeMap = Impossible<&'static str, NotUnit>;
    type SerializeStruct = Impossible<&'static str, NotUnit>;
    type SerializeStructVariant = Impossible<&'static str, NotUnit>;

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<&'static str, NotUnit> {
        Ok(variant)
    }

    refuse! {
        serialize_bool(bool) -> &'static str;
        serialize_i8(i8) -> &'static str;
        serialize_i16(i16) -> &'static str;
        serialize_i32(i32) -> &'static str;
        serialize_i64(i64) -> &'static str;
        serialize_u8(u8) -> &'static str;
        serialize_u16(u16) -> &'static str;
        serialize_u32(u32) -> &'static str;
        serialize_u64(u64) -> &'static str;
        serialize_f32(f32) -> &'static str;
        serialize_f64(f64) -> &'static str;
        serialize_char(char) -> &'static str;
        serialize_str(&str) -> &'static str;
        serialize_bytes(&[u8]) -> &'static str;
        serialize_none() -> &'static str;
        serialize_unit() -> &'static str;
        serialize_unit_struct(&'static str) -> &'static str;
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<&'static str, NotUnit> {
        Err(NotUnit)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<&'static str, NotUnit> {
        Err(NotUnit)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<&'static str, NotUnit> {
        Err(NotUnit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::FindingKind;
    use crate::flows::{CloseKind, Release, Side};

    /// Unit variants are named as serde names them; anything else falls back to serde.
    #[test]
    fn variants_are_named_as_serde_names_them() {
        let mut o = Vec::new();
        variant(&mut o, &Release::EndOfCapture);
        variant(&mut o, &Side::Server);
        variant(&mut o, &CloseKind::RstRefusal);
        variant(&mut o, &FindingKind::IdleRace);
        variant(&mut o, &Some(3u8));
        assert_eq!(
            String::from_utf8(o).unwrap(),
            r#""end_of_capture""server""rst_refusal""idle_race"3"#
        );
        for k in &FindingKind::ALL {
            let mut o = Vec::new();
            variant(&mut o, k);
            assert_eq!(o, serde_json::to_vec(k).unwrap());
            assert_eq!(
                serde_json::to_string(k).unwrap(),
                format!("\"{}\"", k.name())
            );
        }
    }

    /// Times out of the RFC 3339 range, infinite and NaN floats are written as serde writes
    /// them.
    #[test]
    fn edge_values_match_serde() {
        for t in [
            Timestamp(i64::MIN),
            Timestamp(i64::MAX),
            Timestamp(-1),
            Timestamp(0),
        ] {
            let mut o = Vec::new();
            time(&mut o, t);
            assert_eq!(o, serde_json::to_vec(&t).unwrap());
        }
        for v in [f64::NAN, f64::INFINITY, -0.0, 1e300, 0.1, 1234.567] {
            let mut o = Vec::new();
            f64(&mut o, v);
            assert_eq!(o, serde_json::to_vec(&v).unwrap(), "{v}");
        }
        let mut o = Vec::new();
        text(&mut o, "a\"b\\c\u{202e}\u{1b}");
        assert_eq!(
            o,
            crate::escape::json_to_string("a\"b\\c\u{202e}\u{1b}")
                .unwrap()
                .into_bytes()
        );
    }
}
