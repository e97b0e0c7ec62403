//! `resetscope live`: capture from an interface and diagnose as it happens.
//!
//! Findings are printed the moment they are decided (one line each, or one JSON object per
//! line with `--format json`; with `--format ndjson`, every connection and finding is an
//! NDJSON line the moment it is released, then a summary line), a one-line status goes to stderr every second when stderr is
//! a terminal, and on stop (Ctrl-C, `--duration`, `--count`, `--until-findings`) the full
//! report follows, in the same formats as `analyze`, with libpcap's received and dropped
//! counts. `-w FILE` keeps the raw packets for `analyze` to re-read later.

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
    /// Kernel capture buffer size, in KiB (as tcpdump -B).
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
    /// Also write the raw packets to this pcap file (re-read it later with `analyze`).
    #[arg(short = 'w', long, value_name = "FILE")]
    pub write: Option<PathBuf>,
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
    use super::super::{findings_status, open_output, warn_unused_host, Format};
    use super::LiveArgs;
    use anyhow::{Context, Result};
    use resetscope::diagnose::{ConnectionRecord, Finding, Severity};
    use resetscope::pipeline::{Analyzer, KernelStats, Options, Sink};
    use resetscope::report::json::{scratch_file, JsonWriter};
    use resetscope::report::ndjson::NdjsonWriter;
    use resetscope::report::terminal::finding_line;
    use resetscope::report::FrameNamer;
    use resetscope::source::live::{list_interfaces, LiveCapture, LiveOptions};
    use resetscope::time::Timestamp;
    use std::io::{self, IsTerminal, Seek, Write};
    use std::process::ExitCode;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Instant, SystemTime, UNIX_EPOCH};

    static STOP: AtomicBool = AtomicBool::new(false);

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

    /// Runs `live`.
    pub fn run(args: LiveArgs) -> Result<ExitCode> {
        if args.list_interfaces {
            for line in list_interfaces()? {
                println!("{line}");
            }
            return Ok(ExitCode::SUCCESS);
        }
        let r = &args.report;
        warn_unused_host(r);
        super::super::check_quiet(r)?;
        let opts = LiveOptions {
            interface: args.interface.clone(),
            filter: args.filter.join(" "),
            snaplen: args.snaplen,
            promiscuous: !args.no_promiscuous,
            buffer_size: args.buffer_size.map(|k| k.saturating_mul(1024)),
            immediate: !args.no_immediate,
        };
        let mut cap = LiveCapture::open(&opts, args.write.as_deref())?;
        catch_signals();
        let filter = if opts.filter.is_empty() {
            String::new()
        } else {
            format!(", filter {:?}", opts.filter)
        };
        eprintln!(
            "resetscope: capturing on {} (link type {}{filter}); Ctrl-C stops and prints the report",
            cap.device(),
            cap.linktype()
        );

        // Findings are printed the moment they are decided; records (and findings) go to the
        // JSON report: a file, or a scratch file copied to stdout at the end, so memory stays
        // bounded however long the capture runs.
        let json = r.format == Format::Json;
        // The -w file, if any: what frame numbers point into, and where the second pass finds the
        // packets behind findings.
        let written: Vec<std::path::PathBuf> = args.write.iter().cloned().collect();
        let names = FrameNamer::new(&written);
        let mut options = Options {
            decide_early: true,
            ..Options::default()
        };
        options.flows.max_flows = r.max_flows.max(1);
        options.memory = r.memory;
        let mut analyzer = Analyzer::new(&options);
        let mut scratch: Option<std::fs::File> = None;
        let writer = if r.format == Format::Ndjson {
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
        let mut sink = LiveSink {
            collect: Collect::new(r.format, writer, false),
            json,
            ndjson: r.format == Format::Ndjson,
            lines_to_stderr: r.output.is_none()
                && matches!(r.format, Format::Markdown | Format::Html),
            names: names.clone(),
            counted: 0,
        };

        let started = Instant::now();
        let deadline = args.duration.map(|d| started + d);
        let status = io::stderr().is_terminal();
        let mut last_tick = Instant::now();
        let mut packets: u64 = 0;
        let mut stats = KernelStats::default();
        loop {
            if STOP.load(Ordering::SeqCst)
                || deadline.is_some_and(|d| Instant::now() >= d)
                || args.count.is_some_and(|c| packets >= c)
                || args.until_findings.is_some_and(|n| sink.counted >= n)
                || sink.collect.failed()
            {
                break;
            }
            let got = match cap.try_next()? {
                Some(p) => {
                    analyzer.packet(&p, &mut sink);
                    packets += 1;
                    true
                }
                None => false,
            };
            if !got {
                cap.wait(100);
            }
            if last_tick.elapsed().as_millis() >= 250
                || (!got && last_tick.elapsed().as_millis() >= 100)
            {
                last_tick = Instant::now();
                analyzer.tick(now(), &mut sink);
                let s = cap.stats();
                stats = KernelStats {
                    received: s.received,
                    dropped: s.dropped,
                    interface_dropped: s.interface_dropped,
                };
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
        if status {
            eprintln!();
        }
        let s = cap.stats();
        if s.received > 0 || s.dropped > 0 {
            stats = KernelStats {
                received: s.received,
                dropped: s.dropped,
                interface_dropped: s.interface_dropped,
            };
        }
        cap.flush();
        let mut analysis = analyzer.finish(&mut sink);
        analysis.kernel = Some(stats);
        if let Some(path) = &args.write {
            // The -w file holds exactly the frames analysed, numbered alike: it is the input
            // that every frame reference points into.
            let p = &analysis.packets;
            analysis.inputs = vec![resetscope::source::FileStats {
                path: path.display().to_string(),
                format: "pcap".into(),
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
