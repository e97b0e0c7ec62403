//! What the reader must know before trusting the verdicts: packets the capture dropped or
//! cut, damaged input, connections seen mid-stream, limits that were hit.

use crate::pipeline::Analysis;
use serde::Serialize;

/// One caveat.
#[derive(Clone, Debug, Serialize)]
pub struct Caveat {
    /// Stable identifier.
    pub kind: &'static str,
    /// What it means, in a sentence.
    pub message: String,
}

/// The caveats of a report that lists the findings the analysis kept, most serious first.
pub fn caveats(a: &Analysis) -> Vec<Caveat> {
    caveats_of(a, false)
}

/// The caveats of a report; `every_finding`: the report lists every finding (JSON streams
/// them), not only those the analysis kept in memory.
pub fn caveats_of(a: &Analysis, every_finding: bool) -> Vec<Caveat> {
    let mut out = Vec::new();
    let mut add = |kind, message: String| out.push(Caveat { kind, message });
    for e in &a.input_errors {
        add("input_error", e.clone());
    }
    if let Some(n) = &a.narrowed {
        let mut what = Vec::new();
        match (n.since, n.until) {
            (Some(s), Some(u)) => what.push(format!("from {} to {}", s.rfc3339(), u.rfc3339())),
            (Some(s), None) => what.push(format!("from {}", s.rfc3339())),
            (None, Some(u)) => what.push(format!("until {}", u.rfc3339())),
            (None, None) => {}
        }
        if let Some(f) = &n.filter {
            what.push(format!("kept by the capture filter '{f}'"));
        }
        add(
            "narrowed",
            format!(
                "only the frames {} were analysed ({} of {} read): a connection that crosses the time window, or whose packets the filter keeps in part, is seen in part, and what happened outside it is not in the verdicts",
                what.join(" and "),
                a.packets.matched,
                a.packets.frames
            ),
        );
    }
    if let Some(k) = a.kernel.filter(|k| k.dropped + k.interface_dropped > 0) {
        add(
            "kernel_drops",
            format!(
                "packets were lost during the capture ({} dropped by the kernel, {} by the interface, of {} received); verdicts on connections that lost packets may be incomplete",
                k.dropped, k.interface_dropped, k.received
            ),
        );
    }
    if let Some(k) = &a.host_kernel {
        if let Some(why) = &k.unavailable {
            add(
                "kernel_reasons",
                format!("the kernel's reasons for the resets could not be read: {why}; the verdicts do not depend on them"),
            );
        }
        if k.events_lost > 0 {
            add(
                "kernel_events_lost",
                format!("the kernel lost {} reset events from its trace buffer: some RSTs may have no kernel reason, and none is called 'not sent by this host' from then on", k.events_lost),
            );
        }
    }
    // What the input files claim about drops and times, and second-pass copies that stopped
    // short (src/source: FileStats). Counts are summed saturating: a file may claim anything.
    let (mut drops, mut implausible) = (Some(0u64), Vec::new());
    for i in &a.inputs {
        match &i.interface_drops_implausible {
            Some(what) => implausible.push(format!("{}: {what}", i.path)),
            None => drops = drops.and_then(|d| d.checked_add(i.interface_drops)),
        }
    }
    let drops = drops.unwrap_or_else(|| {
        implausible.push("counts that add up to more than 2^64 across the files".into());
        0
    });
    if drops > 0 {
        add(
            "interface_drops",
            format!("the capturing interface reported {drops} packets dropped (as the file's interface statistics claim)"),
        );
    }
    if !implausible.is_empty() {
        add(
            "interface_drops",
            format!("the interface statistics claim an implausible number of dropped packets ({}): a writer's -1 for \"unknown\", or damage; whether the capture lost packets cannot be told from them", implausible.join("; ")),
        );
    }
    for problem in a.inputs.iter().flat_map(|i| &i.time_problems) {
        add("timestamps", problem.clone());
    }
    for failure in a.inputs.iter().filter_map(|i| i.spool_failure.as_ref()) {
        add("evidence_incomplete", failure.clone());
    }
    if !a.memory.shed.is_empty() {
        let what: Vec<String> = a
            .memory
            .shed
            .iter()
            .map(|(k, n)| format!("{n} {}", k.replace('_', " ")))
            .collect();
        add(
            "memory_budget",
            format!(
                "the memory budget ({} MiB, --memory) was reached; to stay within it the analysis gave up the least useful state: {}. Verdicts on the connections concerned rest on less evidence; a larger --memory gives a complete analysis",
                a.memory.budget_bytes >> 20,
                what.join(", ")
            ),
        );
    }
    let p = &a.packets;
    let n = &a.diagnosis.connections;
    if p.cut > 0 {
        add(
            "snaplen",
            format!("{} frames were cut by the snap length ({} payload bytes not captured); cut HTTP heads are read as far as they go", p.cut, n.cut_bytes),
        );
    }
    if n.with_gaps > 0 {
        add(
            "gaps",
            format!("{} connections have bytes the capture never saw ({} bytes in all); exchanges across a gap may be incomplete", n.with_gaps, n.gap_bytes),
        );
    }
    if n.mid_stream > 0 {
        add(
            "mid_stream",
            format!("{} connections started before the capture did: their client and server were inferred from ports or requests", n.mid_stream),
        );
    }
    if n.open_at_end > 0 {
        add("open_at_end", format!("{} connections were still open when the capture ended (reported as open, not as failures)", n.open_at_end));
    }
    if n.buffer_overflows > 0 {
        add(
            "buffer_overflow",
            format!("the out-of-order buffer of a connection (1 MiB per direction) filled up {} times; the bytes it waited for were counted as gaps", n.buffer_overflows),
        );
    }
    if p.malformed > 0 {
        add(
            "malformed",
            format!(
                "{} frames were too damaged or cut to read a TCP header",
                p.malformed
            ),
        );
    }
    if p.fragments > 0 {
        add(
            "fragments",
            format!("{} IP fragments were not reassembled", p.fragments),
        );
    }
    for (lt, count) in &p.unsupported_link_types {
        add(
            "link_type",
            format!("{count} frames on unsupported link type {lt} were skipped"),
        );
    }
    if a.flows.evicted > 0 {
        add(
            "evicted",
            format!(
                "the flow table was full: {} connections were judged early",
                a.flows.evicted
            ),
        );
    }
    if a.flows.late_packets > 0 {
        add(
            "late_packets",
            format!(
                "{} packets arrived for connections already closed and released (late retransmissions, resets or data on a dead 4-tuple); they were counted, not analysed",
                a.flows.late_packets
            ),
        );
    }
    if a.diagnosis.findings_dropped > 0 && !every_finding {
        add(
            "findings_dropped",
            format!(
                "{} of the {} findings are counted in the summary but not listed here (a report lists at most {} findings; the JSON report lists every one)",
                a.diagnosis.findings_dropped,
                a.diagnosis.findings_dropped + a.diagnosis.findings.len() as u64,
                a.diagnosis.findings.len()
            ),
        );
    }
    if p.time_backwards > 0 {
        let at = p
            .time_backwards_first
            .map(|f| format!("first at frame {}", f.number))
            .unwrap_or_default();
        add(
            "time_backwards",
            format!(
                "time runs backwards {} time{} in the capture ({at}; up to {} back): frames are out of time order (multi-queue capture, a clock step, or captures joined end to end); times and idle gaps across such a step are not reliable",
                p.time_backwards,
                if p.time_backwards == 1 { "" } else { "s" },
                crate::diagnose::estimate::human_ms(p.time_backwards_max_ms)
            ),
        );
    }
    if n.duplicate_frames > 0 {
        add(
            "duplicates",
            format!(
                "{} frames repeat one already seen (the same packet at the same time) and were counted once{}: the capture holds packets twice (a SPAN port seeing both directions, or a capture joined to itself)",
                n.duplicate_frames,
                if n.replayed_connections > 0 {
                    format!(", {} whole connections among them", n.replayed_connections)
                } else {
                    String::new()
                }
            ),
        );
    }
    if n.correlation_overflow > 0 {
        add(
            "correlation_overflow",
            format!("{} requests and failures did not fit the correlation stage's bounded memory; proxy links and forwarding counts rest on the rest", n.correlation_overflow),
        );
    }
    if n.one_sided > 0 {
        add(
            "one_sided",
            format!("{} connections were captured in one direction only (asymmetric routing, or a tap that sees one side): whether their requests were answered cannot be told, and they are not judged", n.one_sided),
        );
    }
    if n.decided_early > 0 {
        add(
            "decided_early",
            format!("{} connections' races were judged before the capture ended because too many waited for their server's estimate; those verdicts may depend on the order connections were released", n.decided_early),
        );
    }
    if n.malformed_requests > 0 {
        add(
            "malformed_requests",
            format!("{} HTTP requests broke the message syntax (obs-fold, control bytes, raw bytes in the target, bare LF) and were read tolerantly, as lenient servers read them; see requests[].malformed", n.malformed_requests),
        );
    }
    if n.not_followed > 0 {
        add(
            "not_followed",
            format!("the application protocol of {} connections was not followed (see connections[].app_note: not HTTP/1.x or TLS, or HTTP/2 over TLS); their requests are not counted or judged", n.not_followed),
        );
    }
    if n.http_desyncs > 0 {
        add("http_desync", format!("the HTTP parser lost message boundaries {} times (gaps or malformed messages) and resynchronised", n.http_desyncs));
    }
    out
}
