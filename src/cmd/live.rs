//! `resetscope live`: capture from an interface and diagnose as it happens.
//!
//! Findings are printed the moment they are decided (one line each, or one JSON object per
//! line with `--format json`; with `--format ndjson`, every connection and finding is an
//! NDJSON line the moment it is released, then a summary line). A connection is decided
//! once it is closed and has been quiet for the live linger, 250 ms
//! ([`resetscope::flows::FlowConfig::live`], against 2 s offline), looked for every 100 ms,
//! so its line comes about 0.3 s after its last packet (0.6 s at most with the wait for the
//! kernel's event below). A one-line status goes to stderr every second when stderr is
//! a terminal, and on stop (Ctrl-C, `--duration`, `--count`, `--until-findings`) the full
//! report follows, in the same formats as `analyze`, with libpcap's received and dropped
//! counts and the packets read. After Ctrl-C or `--duration`, what the kernel had captured
//! before the stop is still read first (for at most 2 s). `-w FILE` keeps the packets, as
//! pcapng, for `analyze` to re-read later.
//!
//! **The kernel's reasons.** When tracefs can be used (root), the kernel's reset events are
//! read through an instance of its own ([`resetscope::kernel::tracefs`]) while packets are
//! captured. A RST packet is held back, with every packet behind it so that the order is
//! kept, until its event has come, or a sync mark written to the trace buffer after the
//! end of its window has come back (every event of its window has then been read), or
//! `HOLD` (250 ms) has passed (findings are printed at most that much later); then it is joined to
//! its event ([`resetscope::kernel::join`]), and its
//! reason rides on the packet as its comment: into the pcapng file, and into the analysis,
//! which joins it to the finding it decides. When the events cannot be read, one line on
//! stderr and one caveat say why, and nothing is held. The kernel's TCP abort and listen
//! counters (`/proc/net/netstat`) are read at the start and the stop, and the report shows
//! their change.

use super::ReportArgs;
use anyhow::Result;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `live`.
#[derive(clap::Args, Debug)]
pub struct LiveArgs {
    /// Interface to capture on (`any` for all; default: libpcap's default device).
    #[arg(short = 'i', long, value_name = "IFACE")]
    pub interface: Option<String>,
    /// List the interfaces that can be captured on (as `tcpdump -D`) and exit.
    #[arg(short = 'D', long)]
    pub list_interfaces: bool,
    /// Capture filter, a tcpdump/BPF expression (e.g. `tcp port 8080`).
    #[arg(value_name = "FILTER", trailing_var_arg = true)]
    pub filter: Vec<String>,
    /// Bytes captured per packet.
    #[arg(short = 's', long, default_value_t = 262_144, value_name = "BYTES")]
    pub snaplen: i32,
    /// Do not put the interface into promiscuous mode.
    #[arg(short = 'p', long)]
    pub no_promiscuous: bool,
    /// Kernel capture buffer size, in KiB (as tcpdump -B). Default: 32768 in immediate mode
    /// (where libpcap's ring holds one snap-length slot per packet, so its own 2 MiB default
    /// holds only 8 packets of 256 KiB), libpcap's default otherwise.
    #[arg(short = 'B', long, value_name = "KiB")]
    pub buffer_size: Option<i32>,
    /// Let the kernel batch packets (immediate mode is on by default, so findings appear as
    /// they happen).
    #[arg(long)]
    pub no_immediate: bool,
    /// Stop after this long (e.g. `60s`, `5m`, `1h`, `500ms`).
    #[arg(long, value_parser = parse_duration, value_name = "TIME")]
    pub duration: Option<Duration>,
    /// Stop after this many packets.
    #[arg(short = 'c', long, value_name = "N")]
    pub count: Option<u64>,
    /// Stop after this many findings (idle closes not counted).
    #[arg(long, value_name = "N")]
    pub until_findings: Option<u64>,
    /// Also write the packets to this pcapng file, each RST with the kernel's reason as its
    /// packet comment (Wireshark's `frame.comment`); re-read it later with `analyze`. `-`
    /// writes them to standard output, and the report goes to standard error.
    #[arg(short = 'w', long, value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// Where tracefs is mounted, for the kernel's reasons for resets (default
    /// /sys/kernel/tracing, or RESETSCOPE_TRACEFS).
    #[arg(long, value_name = "DIR", hide = true)]
    pub tracefs: Option<PathBuf>,
    #[command(flatten)]
    pub report: ReportArgs,
}

/// Parses `90`, `90s`, `500ms`, `5m`, `1h`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("not a duration: {s:?} (try 60s, 5m, 500ms)"))?;
    let secs = match unit.trim() {
        "" | "s" | "sec" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?} (use ms, s, m or h)"
            ))
        }
    };
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(not(feature = "live"))]
/// Without libpcap there is no live capture: say how to get it.
pub fn run(_args: LiveArgs) -> Result<std::process::ExitCode> {
    anyhow::bail!(
        "this resetscope was built without live capture.\n  Build it with: cargo install --path . --features live\n  (live capture uses libpcap: on Debian/Ubuntu, apt-get install libpcap-dev first)"
    )
}

#[cfg(feature = "live")]
pub use capture::run;

#[cfg(feature = "live")]
mod capture {
    use super::super::report::{finish, Collect, Evidence, Stream};
    use super::super::{findings_status, open_output, warn_unused_host, Format, STDERR};
    use super::LiveArgs;
    use anyhow::{Context, Result};
    use resetscope::diagnose::{ConnectionRecord, Finding, Severity};
    use resetscope::kernel::join::{local_addresses, Joiner};
    use resetscope::kernel::netstat;
    use resetscope::kernel::tracefs::{ResetEvent, Tracer};
    use resetscope::kernel::HostKernel;
    use resetscope::pipeline::{Analyzer, DropWindow, KernelStats, Options, Sink};
    use resetscope::report::json::{scratch_file, JsonWriter};
    use resetscope::report::ndjson::NdjsonWriter;
    use resetscope::report::pcapng_writer::PcapngWriter;
    use resetscope::report::terminal::finding_line;
    use resetscope::report::FrameNamer;
    use resetscope::source::live::{list_interfaces, LiveCapture, LiveOptions, LiveStats};
    use resetscope::source::{FrameRef, RawPacket};
    use resetscope::time::Timestamp;
    use std::collections::VecDeque;
    use std::io::{self, IsTerminal, Seek, Write};
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use std::process::ExitCode;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;
    use std::time::{Instant, SystemTime, UNIX_EPOCH};

    static STOP: AtomicBool = AtomicBool::new(false);

    /// How long a stop may spend reading what the kernel had captured before it.
    const DRAIN_FOR: Duration = Duration::from_secs(2);

    /// libpcap's counters, and the packets read so far.
    fn counters(s: &LiveStats, read: u64) -> KernelStats {
        KernelStats {
            received: s.received,
            dropped: s.dropped,
            interface_dropped: s.interface_dropped,
            read,
        }
    }

    extern "C" fn on_signal(_: libc::c_int) {
        STOP.store(true, Ordering::SeqCst);
    }

    fn catch_signals() {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(libc::SIGINT, handler);
            libc::signal(libc::SIGTERM, handler);
        }
    }

    /// libpcap's drop counters as last read, and the windows in which they grew.
    struct Drops {
        windows: Vec<DropWindow>,
        read_at: Timestamp,
        total: u64,
    }

    impl Drops {
        /// Takes a reading of the counters (now): if they grew since the last one, the
        /// packets were lost in between.
        fn read(&mut self, s: &KernelStats) {
            let at = now();
            let total = s.dropped.saturating_add(s.interface_dropped);
            DropWindow::record(
                &mut self.windows,
                self.read_at,
                at,
                total.saturating_sub(self.total),
            );
            self.total = self.total.max(total);
            self.read_at = at;
        }
    }

    fn now() -> Timestamp {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_nanos() as i64)
    }

    /// Prints findings as they are decided and feeds the JSON report.
    struct LiveSink {
        /// What the report at the end needs.
        collect: Collect,
        json: bool,
        /// The NDJSON lines are the output: no other line is printed.
        ndjson: bool,
        /// Print the lines on stderr: stdout carries a Markdown or HTML document.
        lines_to_stderr: bool,
        names: FrameNamer,
        /// Findings so far, idle closes aside (for `--until-findings`).
        counted: u64,
        /// A status line is shown on stderr: erase it before a line is printed.
        status: bool,
    }

    impl Sink for LiveSink {
        fn record(&mut self, record: &ConnectionRecord) {
            self.collect.record(record);
        }

        fn heap_bytes(&self) -> usize {
            self.collect.heap_bytes()
        }

        fn shed(&mut self) {
            self.collect.shed();
        }

        fn finding(&mut self, f: &Finding) {
            self.collect.finding(f);
            if f.severity != Severity::Info {
                self.counted += 1;
            }
            if self.ndjson {
                return;
            }
            let line = if self.json {
                // `"type"` first, so line-oriented tools can dispatch on the prefix.
                let body = resetscope::escape::json_to_string(f).unwrap_or_else(|_| "{}".into());
                format!("{{\"type\":\"finding\",{}", &body[1..])
            } else if f.severity == Severity::Info {
                return;
            } else {
                finding_line(f, &self.names)
            };
            if self.status {
                eprint!("\r\x1b[K");
            }
            if self.lines_to_stderr {
                eprintln!("{line}");
            } else {
                let mut out = io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        }
    }

    /// This machine's name, the default `host` of live NDJSON lines.
    fn hostname() -> Option<String> {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its whole length, which is what gethostname may
        // write.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        (rc == 0 && end > 0).then(|| String::from_utf8_lossy(&buf[..end]).into_owned())
    }

    /// The kernel buffer in immediate mode unless `-B` says otherwise: 128 slots of the
    /// default snap length (measured: the Go race on `-i any` dropped 28 to 105 of ~750
    /// packets with libpcap's 2 MiB, none with this).
    const IMMEDIATE_BUFFER: i32 = 32 << 20;

    /// How long a RST packet waits for its kernel event (see the module docs).
    pub const HOLD: Duration = Duration::from_millis(250);

    /// The most packet bytes held at once: past it, the oldest goes on with only a reason
    /// already matched (never the negative one).
    const MAX_HELD_BYTES: usize = 64 << 20;

    /// How often a sync mark is written while RSTs wait.
    const MARK_EVERY: Duration = Duration::from_millis(20);

    /// A packet read from libpcap, kept until its reason is known.
    struct Held {
        frame: FrameRef,
        ts: Timestamp,
        linktype: u32,
        orig_len: u32,
        data: Vec<u8>,
        arrived: Instant,
        /// A RST: its source and destination.
        rst: Option<(SocketAddr, SocketAddr)>,
    }

    /// The RST's source and destination, if the frame is a TCP RST.
    fn rst_of(p: &RawPacket<'_>) -> Option<(SocketAddr, SocketAddr)> {
        let seg = resetscope::decode::decode(p.linktype, p.data).ok()?;
        seg.has(resetscope::decode::flags::RST).then(|| {
            (
                SocketAddr::new(seg.src, seg.sport),
                SocketAddr::new(seg.dst, seg.dport),
            )
        })
    }

    /// Where packets go once their reason is known: the `-w` file and the analysis.
    struct Out<'a> {
        analyzer: &'a mut Analyzer,
        sink: &'a mut LiveSink,
        writer: &'a mut Option<PcapngWriter<Box<dyn Write>>>,
        /// The -w file could not be written: the capture stops.
        write_error: &'a mut Option<String>,
    }

    impl Out<'_> {
        fn packet(&mut self, p: &RawPacket<'_>) {
            if let Some(w) = self.writer.as_mut() {
                if let Err(e) = w.packet(p) {
                    *self.write_error = Some(e.to_string());
                    *self.writer = None;
                }
            }
            self.analyzer.packet(p, self.sink);
        }
    }

    /// The kernel's events, and the packets held for them.
    struct Kernel {
        tracer: Tracer,
        joiner: Joiner,
        events: Vec<ResetEvent>,
        held: VecDeque<Held>,
        held_bytes: usize,
        last_mark: Option<Instant>,
    }

    impl Kernel {
        fn read(&mut self) {
            self.tracer.read_events(&mut self.events);
            if self.tracer.lost > 0 {
                self.joiner.set_lost();
            }
            if let Some(ts) = self.tracer.synced() {
                self.joiner.sync(ts);
            }
            self.joiner.add(self.events.drain(..));
            // While RSTs wait, sync marks tell when every event of their window has come.
            if self.held.iter().any(|h| h.rst.is_some())
                && self.last_mark.is_none_or(|t| t.elapsed() >= MARK_EVERY)
            {
                self.tracer.mark();
                self.last_mark = Some(Instant::now());
            }
        }

        fn hold(&mut self, h: Held) {
            self.held_bytes += h.data.len();
            self.held.push_back(h);
        }

        /// Hands on the held packets whose reasons are known, in order.
        fn release(&mut self, out: &mut Out<'_>) {
            while let Some(h) = self.held.front() {
                let reason = match h.rst {
                    None => None,
                    Some((src, dst)) => {
                        let settled = h.arrived.elapsed() >= HOLD
                            || self.joiner.synced_past(h.ts)
                            || self.joiner.complete(src, dst, h.ts);
                        if settled {
                            self.joiner.reason(src, dst, h.ts, true)
                        } else if self.held_bytes > MAX_HELD_BYTES {
                            self.joiner.reason(src, dst, h.ts, false)
                        } else {
                            return;
                        }
                    }
                };
                let h = self.held.pop_front().expect("a held packet");
                self.held_bytes -= h.data.len();
                let comment = reason.map(|r| r.comment());
                out.packet(&RawPacket {
                    frame: h.frame,
                    ts: h.ts,
                    linktype: h.linktype,
                    orig_len: h.orig_len,
                    data: &h.data,
                    comment: comment.as_deref(),
                });
            }
        }

        /// How long the first held packet may still wait, in milliseconds.
        fn next_due_ms(&self) -> Option<i32> {
            self.held.front().map(|h| {
                HOLD.saturating_sub(h.arrived.elapsed())
                    .as_millis()
                    .clamp(1, 100) as i32
            })
        }
    }

    /// Runs `live`.
    pub fn run(mut args: LiveArgs) -> Result<ExitCode> {
        if args.list_interfaces {
            for line in list_interfaces()? {
                println!("{line}");
            }
            return Ok(ExitCode::SUCCESS);
        }
        // `-w -`: the packets are the standard output; the report goes to standard error.
        let to_stdout = args.write.as_deref() == Some(std::path::Path::new("-"));
        if to_stdout && args.report.output.is_none() {
            args.report.output = Some(PathBuf::from(STDERR));
        }
        if matches!(args.report.format, Format::Markdown | Format::Html)
            && (args.write.is_none() || to_stdout)
        {
            eprintln!(
                "resetscope: note: the packet ladders of the {} report need a -w FILE to read the packets back from; without one the report has none",
                if args.report.format == Format::Html { "HTML" } else { "Markdown" }
            );
        }
        let r = &args.report;
        warn_unused_host(r);
        super::super::check_quiet(r)?;
        let opts = LiveOptions {
            interface: args.interface.clone(),
            filter: args.filter.join(" "),
            snaplen: args.snaplen,
            promiscuous: !args.no_promiscuous,
            buffer_size: args
                .buffer_size
                .map(|k| k.saturating_mul(1024))
                .or((!args.no_immediate).then_some(IMMEDIATE_BUFFER)),
            immediate: !args.no_immediate,
        };
        // The kernel's side: counters first, then the events, so that both cover every
        // packet captured.
        let counters_at_start = netstat::read(None);
        let root = args
            .tracefs
            .clone()
            .or_else(|| std::env::var_os("RESETSCOPE_TRACEFS").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(resetscope::kernel::tracefs::DEFAULT_ROOT));
        let mut host = HostKernel {
            network_namespace: resetscope::kernel::netns::detect(std::path::Path::new("/proc")),
            ..HostKernel::default()
        };
        if let Some(ns) = host.network_namespace.filter(|n| n.host == Some(false)) {
            eprintln!(
                "resetscope: note: this runs in a network namespace of its own (net:[{}]), not the host's: the kernel's reset events come from every namespace and are joined by addresses, ports and time, and the counters are this namespace's (the verdicts are unchanged)",
                ns.inode
            );
        }
        let mut kernel = match Tracer::start(&root) {
            Ok(tracer) => {
                host.reasons_from = Some("tracefs");
                Some(Kernel {
                    tracer,
                    joiner: Joiner::new(local_addresses(), now()),
                    events: Vec::new(),
                    held: VecDeque::new(),
                    held_bytes: 0,
                    last_mark: None,
                })
            }
            Err(why) => {
                eprintln!(
                    "resetscope: the kernel's reasons for resets cannot be read: {why}; going on without them (the verdicts are unchanged)"
                );
                host.unavailable = Some(why);
                None
            }
        };
        let mut cap = LiveCapture::open(&opts)?;
        catch_signals();
        let filter = if opts.filter.is_empty() {
            String::new()
        } else {
            format!(", filter {:?}", opts.filter)
        };
        let reasons = match &kernel {
            Some(k) => format!("; kernel reset reasons from {}", k.tracer.dir().display()),
            None => String::new(),
        };
        eprintln!(
            "resetscope: capturing on {} (link type {}{filter}{reasons}); Ctrl-C stops and prints the report",
            cap.device(),
            cap.linktype()
        );
        let mut writer: Option<PcapngWriter<Box<dyn Write>>> = match &args.write {
            None => None,
            Some(path) => {
                let out: Box<dyn Write> = if to_stdout {
                    Box::new(io::BufWriter::new(io::stdout()))
                } else {
                    Box::new(io::BufWriter::new(
                        std::fs::File::create(path)
                            .with_context(|| format!("cannot create {}", path.display()))?,
                    ))
                };
                Some(
                    PcapngWriter::new(
                        out,
                        cap.linktype(),
                        opts.snaplen.max(0) as u32,
                        Some(cap.device()),
                    )
                    .with_context(|| format!("writing {}", path.display()))?,
                )
            }
        };
        let mut write_error: Option<String> = None;

        // Findings are printed the moment they are decided; records (and findings) go to the
        // JSON report: a file, or a scratch file copied to stdout at the end, so memory stays
        // bounded however long the capture runs.
        let json = r.format == Format::Json;
        // The -w file, if any: what frame numbers point into, and where the second pass finds the
        // packets behind findings (not when it went to standard output).
        let written: Vec<std::path::PathBuf> =
            args.write.iter().filter(|_| !to_stdout).cloned().collect();
        let names = FrameNamer::new(&written);
        let mut options = Options {
            decide_early: true,
            flows: resetscope::flows::FlowConfig::live(),
            ..Options::default()
        };
        options.flows.max_flows = r.max_flows.max(1);
        options.memory = r.memory;
        let reason_table = options.kernel.clone();
        let mut analyzer = Analyzer::new(&options);
        let mut scratch: Option<std::fs::File> = None;
        let writer_json = if r.format == Format::Ndjson {
            let host = r.host.clone().or_else(hostname);
            Some(Stream::Ndjson(NdjsonWriter::new(
                open_output(&r.output)?,
                host,
                true,
            )))
        } else if json {
            let out: Box<dyn Write> = match &r.output {
                Some(_) => open_output(&r.output)?,
                None => {
                    let f = scratch_file()?;
                    scratch = Some(f.try_clone()?);
                    Box::new(io::BufWriter::new(f))
                }
            };
            Some(Stream::Json(if r.output.is_some() {
                JsonWriter::new(out)?
            } else {
                JsonWriter::single_line(out, "\"type\":\"report\",")?
            }))
        } else {
            None
        };
        let status = io::stderr().is_terminal();
        let mut sink = LiveSink {
            collect: Collect::new(r.format, writer_json, false),
            json,
            ndjson: r.format == Format::Ndjson,
            lines_to_stderr: to_stdout
                || (r.output.is_none() && matches!(r.format, Format::Markdown | Format::Html)),
            names: names.clone(),
            counted: 0,
            status,
        };

        let started = Instant::now();
        let deadline = args.duration.map(|d| started + d);
        let mut last_tick = Instant::now();
        let mut packets: u64 = 0;
        let mut stats = KernelStats::default();
        // When packets were lost: libpcap's drop counters, read at each tick.
        let mut drops = Drops {
            windows: Vec::new(),
            read_at: now(),
            total: 0,
        };
        // After a stop by Ctrl-C or --duration, what the kernel had already captured is
        // still read (the ring is drained): a capture that lags behind the wire would
        // otherwise lose its last packets without a word, counted neither as read nor as
        // dropped. At most DRAIN_FOR, so that a flood cannot hold the stop off.
        let mut draining: Option<Instant> = None;
        loop {
            if args.count.is_some_and(|c| packets >= c)
                || args.until_findings.is_some_and(|n| sink.counted >= n)
                || sink.collect.failed()
                || write_error.is_some()
                || draining.is_some_and(|d| d.elapsed() >= DRAIN_FOR)
            {
                break;
            }
            if draining.is_none()
                && (STOP.load(Ordering::SeqCst) || deadline.is_some_and(|d| Instant::now() >= d))
            {
                draining = Some(Instant::now());
            }
            let mut out = Out {
                analyzer: &mut analyzer,
                sink: &mut sink,
                writer: &mut writer,
                write_error: &mut write_error,
            };
            let mut got = false;
            // A bounded batch, so that events and the clock are looked at in between.
            for _ in 0..1024 {
                if args.count.is_some_and(|c| packets >= c) {
                    break;
                }
                let Some(p) = cap.try_next()? else {
                    break;
                };
                got = true;
                packets += 1;
                match kernel.as_mut() {
                    None => out.packet(&p),
                    Some(k) => {
                        let rst = rst_of(&p);
                        if rst.is_none() && k.held.is_empty() {
                            out.packet(&p);
                        } else {
                            k.hold(Held {
                                frame: p.frame,
                                ts: p.ts,
                                linktype: p.linktype,
                                orig_len: p.orig_len,
                                data: p.data.to_vec(),
                                arrived: Instant::now(),
                                rst,
                            });
                        }
                    }
                }
            }
            if let Some(k) = kernel.as_mut() {
                k.read();
                k.release(&mut out);
            }
            if !got && draining.is_some() {
                break;
            }
            if !got {
                let ms = kernel.as_ref().and_then(Kernel::next_due_ms).unwrap_or(100);
                cap.wait(ms, kernel.as_ref().and_then(|k| k.tracer.fd()));
            }
            if last_tick.elapsed().as_millis() >= 250
                || (!got && last_tick.elapsed().as_millis() >= 100)
            {
                last_tick = Instant::now();
                analyzer.tick(now(), &mut sink);
                let s = cap.stats();
                stats = counters(&s, packets);
                drops.read(&stats);
                if status {
                    eprint!(
                        "\r\x1b[K{} packets, {} connections open, {} findings, {} dropped",
                        packets,
                        analyzer.open_connections(),
                        sink.counted,
                        stats.dropped + stats.interface_dropped
                    );
                }
            }
        }
        // The packets still held wait out their time for their events (at most HOLD).
        if let Some(k) = kernel.as_mut() {
            let mut out = Out {
                analyzer: &mut analyzer,
                sink: &mut sink,
                writer: &mut writer,
                write_error: &mut write_error,
            };
            while !k.held.is_empty() {
                k.read();
                k.release(&mut out);
                if let Some(ms) = k.next_due_ms() {
                    cap.wait(ms.min(10), k.tracer.fd());
                }
            }
            host.events_lost = k.tracer.lost;
        }
        // The instance goes as soon as it is no longer needed (and on any early return, when
        // `kernel` is dropped).
        drop(kernel);
        if status {
            eprint!("\r\x1b[K");
        }
        let s = cap.stats();
        if s.received > 0 || s.dropped > 0 {
            stats = counters(&s, packets);
            drops.read(&stats);
        }
        if let Some(w) = writer.as_mut() {
            if let Err(e) = w.flush() {
                write_error.get_or_insert(e.to_string());
            }
        }
        drop(writer);
        let mut analysis = analyzer.finish(&mut sink);
        // Every packet read counts, also when libpcap's last reading gave nothing.
        analysis.kernel = Some(KernelStats {
            read: packets,
            ..stats
        });
        analysis.drop_windows = drops.windows;
        if let (Some(a), Some(b)) = (&counters_at_start, netstat::read(None)) {
            host.counters = a.change(&b);
        }
        if host.reasons_from.is_some() {
            host.resets = HostKernel::counts(&reason_table);
        }
        analysis.host_kernel = Some(host);
        if let Some(e) = &write_error {
            eprintln!(
                "resetscope: error: writing the packets to {} stopped the capture: {e}",
                args.write
                    .as_deref()
                    .unwrap_or(std::path::Path::new("-"))
                    .display()
            );
        }
        if let Some(path) = args.write.as_ref().filter(|_| !to_stdout) {
            // The -w file holds exactly the frames analysed, numbered alike: it is the input
            // that every frame reference points into.
            let p = &analysis.packets;
            analysis.inputs = vec![resetscope::source::FileStats {
                path: path.display().to_string(),
                format: "pcapng".into(),
                frames: p.frames,
                cut_frames: p.cut,
                linktypes: vec![cap.linktype()],
                first_ts: p.first_ts,
                last_ts: p.last_ts,
                ..Default::default()
            }];
            eprintln!(
                "resetscope: packets written to {} (re-read with: resetscope analyze {})",
                path.display(),
                path.display()
            );
        }
        finish(
            sink.collect,
            &mut analysis,
            &names,
            r,
            Evidence {
                narrow: None,
                files: &written,
                extract: None,
                spools: &[],
            },
        )?;
        if let Some(mut f) = scratch {
            // The one-line JSON report, written to a scratch file while the capture ran.
            f.rewind()?;
            let mut out = io::stdout().lock();
            io::copy(&mut f, &mut out).context("writing the JSON report")?;
            out.flush()?;
        }
        if write_error.is_some() {
            return Ok(ExitCode::FAILURE);
        }
        Ok(findings_status(&analysis, r.fail_on_findings))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("5 parsecs").is_err());
    }
}
