//! What the reader must know before trusting the verdicts: packets the capture dropped or
//! cut, damaged input, connections seen mid-stream, limits that were hit.

use super::words::{agree, count, plural, things};
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
                "packets were lost during the capture ({} dropped by the kernel, {} by the interface, of {} received){}",
                count(k.dropped),
                count(k.interface_dropped),
                count(k.received),
                drop_verdicts(a)
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
        if let Some(ns) = k.network_namespace.filter(|n| n.host == Some(false)) {
            add(
                "own_network_namespace",
                format!("the capture ran in a network namespace of its own (net:[{}]), not the host's (a container, or ip netns exec): the kernel's reset events come from every namespace on the host and were joined by addresses, ports and time; a RST with no event was not sent from this namespace, but the host or another namespace behind a NAT may have sent it; the counters are this namespace's; the verdicts do not depend on any of it", ns.inode),
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
            format!("the capturing interface reported {} dropped (as the file's interface statistics claim)", things(drops, "packet")),
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
            .map(|(k, n)| format!("{} {}", count(*n), k.replace('_', " ")))
            .collect();
        add(
            "memory_budget",
            format!(
                "the memory budget ({} MiB, --memory) was reached; to stay within it the analysis gave up the least useful state: {}. Verdicts on the connections concerned rest on less evidence; a larger --memory gives a complete analysis",
                count(a.memory.budget_bytes >> 20),
                what.join(", ")
            ),
        );
    }
    let p = &a.packets;
    let n = &a.diagnosis.connections;
    if p.cut > 0 {
        add(
            "snaplen",
            format!("{} cut by the snap length ({} not captured); cut HTTP heads are read as far as they go", plural(p.cut, "frame was", "frames were"), plural(n.cut_bytes, "payload byte", "payload bytes")),
        );
    }
    if n.with_gaps > 0 {
        add(
            "gaps",
            format!("{} bytes the capture never saw ({} in all); exchanges across a gap may be incomplete", plural(n.with_gaps, "connection has", "connections have"), things(n.gap_bytes, "byte")),
        );
    }
    if n.mid_stream > 0 {
        add(
            "mid_stream",
            format!("{} before the capture did: {} client and server were inferred from ports or requests", plural(n.mid_stream, "connection started", "connections started"), agree(n.mid_stream, "its", "their")),
        );
    }
    if n.open_at_end > 0 {
        add(
            "open_at_end",
            format!(
                "{} still open when the capture ended (reported as open, not as failures)",
                plural(n.open_at_end, "connection was", "connections were")
            ),
        );
    }
    if n.buffer_overflows > 0 {
        add(
            "buffer_overflow",
            format!("the out-of-order buffer of a connection (1 MiB per direction) filled up {}; the bytes it waited for were counted as gaps", plural(n.buffer_overflows, "time", "times")),
        );
    }
    if p.malformed > 0 {
        add(
            "malformed",
            format!(
                "{} too damaged or cut to read a TCP header",
                plural(p.malformed, "frame was", "frames were")
            ),
        );
    }
    if p.fragments > 0 {
        add(
            "fragments",
            format!(
                "{} not reassembled",
                plural(p.fragments, "IP fragment was", "IP fragments were")
            ),
        );
    }
    for (lt, count) in &p.unsupported_link_types {
        add(
            "link_type",
            format!(
                "{} on unsupported link type {lt} {} skipped",
                things(*count, "frame"),
                agree(*count, "was", "were")
            ),
        );
    }
    if a.flows.evicted > 0 {
        add(
            "evicted",
            format!(
                "the flow table was full: {} judged early",
                plural(a.flows.evicted, "connection was", "connections were")
            ),
        );
    }
    if a.flows.late_packets > 0 {
        add(
            "late_packets",
            format!(
                "{} for connections already closed and released (late retransmissions, resets or data on a dead 4-tuple); {} counted, not analysed",
                plural(a.flows.late_packets, "packet arrived", "packets arrived"),
                agree(a.flows.late_packets, "it was", "they were")
            ),
        );
    }
    if a.diagnosis.findings_dropped > 0 && !every_finding {
        add(
            "findings_dropped",
            format!(
                "{} of the {} {} counted in the summary but not listed here (a report lists at most {}; the JSON report lists every one)",
                count(a.diagnosis.findings_dropped),
                count(a.diagnosis.findings_dropped + a.diagnosis.findings.len() as u64),
                agree(a.diagnosis.findings_dropped, "findings is", "findings are"),
                things(a.diagnosis.findings.len() as u64, "finding")
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
                "time runs backwards {} in the capture ({at}; up to {} back): frames are out of time order (multi-queue capture, a clock step, or captures joined end to end); times and idle gaps across such a step are not reliable",
                things(p.time_backwards, "time"),
                crate::diagnose::estimate::human_ms(p.time_backwards_max_ms)
            ),
        );
    }
    if n.duplicate_frames > 0 {
        add(
            "duplicates",
            format!(
                "{} one already seen (the same packet at the same time) and {} counted once{}: the capture holds packets twice (a SPAN port seeing both directions, or a capture joined to itself)",
                plural(n.duplicate_frames, "frame repeats", "frames repeat"),
                agree(n.duplicate_frames, "was", "were"),
                if n.replayed_connections > 0 {
                    format!(", {} among them", plural(n.replayed_connections, "whole connection", "whole connections"))
                } else {
                    String::new()
                }
            ),
        );
    }
    if n.correlation_overflow > 0 {
        add(
            "correlation_overflow",
            format!("{} requests and failures did not fit the correlation stage's bounded memory; proxy links and forwarding counts rest on the rest", count(n.correlation_overflow)),
        );
    }
    if n.one_sided > 0 {
        add(
            "one_sided",
            format!("{} captured in one direction only (asymmetric routing, or a tap that sees one side): whether {} requests were answered cannot be told, and {} not judged", plural(n.one_sided, "connection was", "connections were"), agree(n.one_sided, "its", "their"), agree(n.one_sided, "it is", "they are")),
        );
    }
    if n.decided_early > 0 {
        add(
            "decided_early",
            format!("{} races were judged before the capture ended because too many waited for their server's estimate; those verdicts may depend on the order connections were released", plural(n.decided_early, "connection's", "connections'")),
        );
    }
    if n.malformed_requests > 0 {
        add(
            "malformed_requests",
            format!("{} the message syntax (obs-fold, control bytes, raw bytes in the target, bare LF) and {} read tolerantly, as lenient servers read them; see requests[].malformed", plural(n.malformed_requests, "HTTP request broke", "HTTP requests broke"), agree(n.malformed_requests, "was", "were")),
        );
    }
    if n.not_followed > 0 {
        add(
            "not_followed",
            format!("the application protocol of {} was not followed (see connections[].app_note: not HTTP/1.x or TLS, or HTTP/2 over TLS); {} requests are not counted or judged", things(n.not_followed, "connection"), agree(n.not_followed, "its", "their")),
        );
    }
    if n.http_desyncs > 0 {
        add("http_desync", format!("the HTTP parser lost message boundaries {} (gaps or malformed messages) and resynchronised", things(n.http_desyncs, "time")));
    }
    out
}

/// How far after a connection's last captured packet a loss may still be one of its
/// packets: a live capture releases a closed connection 250 ms after its last packet,
/// sweeps every 100 ms and reads libpcap's counters every 250 ms.
const DROP_SLACK: crate::time::Nanos = crate::time::Nanos(1_000_000_000);

/// The findings listed by name in the drops caveat, at most.
const DROP_NAMED: usize = 10;

/// The end of the drops caveat: when packets were lost, and the findings whose
/// connections were active then, which the losses may have changed.
fn drop_verdicts(a: &Analysis) -> String {
    let w = &a.drop_windows;
    let (Some(first), Some(last)) = (w.first(), w.last()) else {
        return "; verdicts on connections that lost packets may be wrong or incomplete, and a connection whose packets were all lost has no verdict".into();
    };
    let when = if w.len() == 1 {
        format!(
            "between {} and {}",
            first.from.rfc3339(),
            first.to.rfc3339()
        )
    } else {
        format!(
            "in {} stretches between {} and {}",
            count(w.len() as u64),
            first.from.rfc3339(),
            last.to.rfc3339()
        )
    };
    let hit: Vec<_> = a
        .diagnosis
        .findings
        .iter()
        .filter(|f| {
            w.iter()
                .any(|d| d.touches(f.span.0.ts, f.span.1.ts, DROP_SLACK))
        })
        .collect();
    let kept = if a.diagnosis.findings_dropped > 0 {
        " of those kept in memory"
    } else {
        ""
    };
    let which = if hit.is_empty() {
        format!("no finding{kept} comes from a connection active then")
    } else {
        let mut named: Vec<String> = hit
            .iter()
            .take(DROP_NAMED)
            .map(|f| {
                format!(
                    "connection {} ({}, {} -> {})",
                    f.connection,
                    f.kind.name(),
                    f.client,
                    f.server
                )
            })
            .collect();
        if hit.len() > DROP_NAMED {
            named.push(format!("{} more", count((hit.len() - DROP_NAMED) as u64)));
        }
        format!(
            "{}{kept} {} from connections active then and may be wrong: {}",
            things(hit.len() as u64, "finding"),
            agree(hit.len() as u64, "comes", "come"),
            named.join(", ")
        )
    };
    format!("; they were lost {when} (UTC); {which}; a connection whose packets were all lost has no verdict")
}
