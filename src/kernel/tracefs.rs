//! Reads the kernel's reset events through a tracefs instance of its own (feature `live`).
//!
//! [`Tracer::start`] checks that `ROOT/events/tcp/tcp_send_reset/format` has the `reason`
//! field (Linux 6.10 and later) and reads the reason names from its print format's
//! `__print_symbolic(REC->reason, …)` list (they change between kernels: nothing here knows
//! their numbers). It then makes `ROOT/instances/resetscope-PID`, a trace buffer that no
//! other tracer shares, sets its clock, enables `tcp:tcp_send_reset` and
//! `tcp:tcp_receive_reset` there, and opens its `trace_pipe`, non-blocking, to be waited on
//! with `poll(2)` beside the capture.
//!
//! The text of `trace_pipe` is read rather than the per-CPU binary `trace_pipe_raw`: the
//! kernel prints the reason by name and the addresses as text, so nothing here depends on
//! the event's binary layout, and microsecond timestamps are ample for a ±50 ms join.
//!
//! **Clock mapping.** The instance's `trace_clock` is set to `mono` (CLOCK_MONOTONIC).
//! At the start, CLOCK_REALTIME − CLOCK_MONOTONIC is measured once (the closest of a few
//! back-to-back readings), and every event's time is mapped to wall-clock time by adding
//! it; libpcap's packet times are CLOCK_REALTIME. The offset does not follow a clock step
//! during the capture (NTP slewing moves it by far less than the join's window).
//!
//! The instance is removed when the [`Tracer`] is dropped: on a normal stop, on an error
//! (the `?` that leaves `live` drops it), and on SIGINT/SIGTERM, whose handler only asks the
//! capture loop to stop so that it leaves through the same drop. Instances left by a
//! process that was killed outright (`resetscope-PID` with no such process) are removed at
//! the next start.
//!
//! **Sync marks.** [`Tracer::mark`] writes a line to the instance's own `trace_marker`; when
//! it is read back ([`Tracer::synced`]), every event that happened before it has been read
//! (`trace_pipe` merges the per-CPU buffers in time order). Only then may the absence of an
//! event be taken as evidence (see [`super::join`]).
//!
//! What it hands on: [`ResetEvent`]s, with the RST's source and destination as the packet
//! on the wire has them, and the mapped time.

use crate::time::Timestamp;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// What a sync mark says.
const SYNC_MARK: &str = "resetscope-sync\n";

/// Where tracefs is mounted unless `--tracefs` (or `RESETSCOPE_TRACEFS`) says otherwise.
pub const DEFAULT_ROOT: &str = "/sys/kernel/tracing";

/// One reset event, in the RST packet's direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResetEvent {
    /// `Some(reason name)`: `tcp_send_reset`; `None`: `tcp_receive_reset`.
    pub sent: Option<String>,
    /// The RST's source (the sender).
    pub src: SocketAddr,
    /// The RST's destination.
    pub dst: SocketAddr,
    /// The event's time on the packets' clock (wall-clock, see the module docs).
    pub ts: Timestamp,
}

/// An open tracefs instance with the two events enabled.
pub struct Tracer {
    dir: PathBuf,
    pipe: Option<File>,
    marker: Option<File>,
    /// The mapped time of the latest sync mark read back.
    synced: Option<Timestamp>,
    buf: Vec<u8>,
    /// CLOCK_REALTIME − CLOCK_MONOTONIC, in nanoseconds.
    offset_ns: i64,
    /// The reason names the kernel's format file lists, in its order.
    pub names: Vec<String>,
    /// Events the kernel reported lost (`[LOST n EVENTS]`).
    pub lost: u64,
}

/// Why the events cannot be read, in one line.
pub type Unavailable = String;

fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    #[allow(clippy::unnecessary_cast)] // time_t and c_long are not i64 everywhere
    let ns = ts.tv_sec as i64 * 1_000_000_000 + ts.tv_nsec as i64;
    ns
}

/// CLOCK_REALTIME − CLOCK_MONOTONIC, from the tightest of a few back-to-back readings.
pub fn realtime_offset_ns() -> i64 {
    let mut best = (i64::MAX, 0);
    for _ in 0..8 {
        let a = clock_ns(libc::CLOCK_MONOTONIC);
        let r = clock_ns(libc::CLOCK_REALTIME);
        let b = clock_ns(libc::CLOCK_MONOTONIC);
        if b - a < best.0 {
            best = (b - a, r - (a + (b - a) / 2));
        }
    }
    best.1
}

/// The reason names of a `tcp_send_reset` format file, in its order; `None` when the event
/// has no `reason` field.
pub fn reason_names(format: &str) -> Option<Vec<String>> {
    if !format
        .lines()
        .any(|l| l.trim_start().starts_with("field:") && l.contains(" reason;"))
    {
        return None;
    }
    let start = format.find("__print_symbolic(REC->reason")?;
    let list = &format[start..];
    // The list ends at the parenthesis that closes __print_symbolic.
    let mut depth = 0usize;
    let mut end = list.len();
    for (i, c) in list.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    end = i;
                    break;
                }
            }
            _ => {}
        }
    }
    Some(
        list[..end]
            .split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect(),
    )
}

impl Tracer {
    /// Makes the instance under `root` and starts reading; the one line of why not
    /// otherwise.
    pub fn start(root: &Path) -> Result<Tracer, Unavailable> {
        let format_path = root.join("events/tcp/tcp_send_reset/format");
        let format = std::fs::read_to_string(&format_path).map_err(|e| match e.kind() {
            ErrorKind::PermissionDenied => format!(
                "no permission to read {} (kernel reasons need root, or CAP_SYS_ADMIN with tracefs access)",
                format_path.display()
            ),
            _ if !root.join("events").exists() => format!(
                "tracefs is not mounted at {} (as root: mount -t tracefs nodev {}; in a container, the host's tracefs and network namespace are needed)",
                root.display(),
                root.display()
            ),
            _ => format!(
                "this kernel has no tcp:tcp_send_reset event ({}: {e})",
                format_path.display()
            ),
        })?;
        let names = reason_names(&format).ok_or_else(|| {
            "this kernel's tcp:tcp_send_reset event has no reason field (Linux 6.10 or later has it)"
                .to_string()
        })?;
        if !root.join("events/tcp/tcp_receive_reset").exists() {
            return Err("this kernel has no tcp:tcp_receive_reset event".into());
        }
        let instances = root.join("instances");
        remove_stale(&instances);
        let dir = instances.join(format!("resetscope-{}", std::process::id()));
        if dir.exists() {
            let _ = std::fs::remove_dir(&dir);
        }
        std::fs::create_dir(&dir).map_err(|e| {
            format!(
                "cannot create the tracefs instance {}: {e} (kernel reasons need root, or CAP_SYS_ADMIN)",
                dir.display()
            )
        })?;
        // From here on, dropping the tracer removes the instance.
        let mut tracer = Tracer {
            dir,
            pipe: None,
            marker: None,
            synced: None,
            buf: Vec::new(),
            offset_ns: 0,
            names,
            lost: 0,
        };
        let write = |rel: &str, value: &str| {
            let p = tracer.dir.join(rel);
            std::fs::write(&p, value).map_err(|e| format!("cannot write {}: {e}", p.display()))
        };
        write("trace_clock", "mono")?;
        write("events/tcp/tcp_send_reset/enable", "1")?;
        write("events/tcp/tcp_receive_reset/enable", "1")?;
        let pipe_path = tracer.dir.join("trace_pipe");
        let pipe = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&pipe_path)
            .map_err(|e| format!("cannot open {}: {e}", pipe_path.display()))?;
        tracer.pipe = Some(pipe);
        tracer.marker = std::fs::OpenOptions::new()
            .write(true)
            .open(tracer.dir.join("trace_marker"))
            .ok();
        tracer.offset_ns = realtime_offset_ns();
        Ok(tracer)
    }

    /// The instance's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The descriptor to poll for events.
    pub fn fd(&self) -> Option<std::os::fd::RawFd> {
        self.pipe.as_ref().map(|p| p.as_raw_fd())
    }

    /// Writes a sync mark (see the module docs); false when the instance has no marker.
    pub fn mark(&mut self) -> bool {
        use std::io::Write;
        self.marker
            .as_mut()
            .is_some_and(|m| m.write_all(SYNC_MARK.as_bytes()).is_ok())
    }

    /// The time (on the packets' clock) of the latest sync mark read back: every event
    /// before it has been read.
    pub fn synced(&self) -> Option<Timestamp> {
        self.synced
    }

    /// Reads the events ready now, without waiting, onto `out`.
    pub fn read_events(&mut self, out: &mut Vec<ResetEvent>) {
        let Some(pipe) = self.pipe.as_mut() else {
            return;
        };
        let mut chunk = [0u8; 16384];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
            if self.buf.len() > 1 << 20 {
                break;
            }
        }
        let Some(last_nl) = self.buf.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let lines: Vec<u8> = self.buf.drain(..=last_nl).collect();
        for line in String::from_utf8_lossy(&lines).lines() {
            match parse_line(line, self.offset_ns) {
                Parsed::Event(e) => out.push(e),
                Parsed::Lost(n) => self.lost += n,
                Parsed::Sync(ts) => self.synced = Some(ts),
                Parsed::Other => {}
            }
        }
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("events/tcp/tcp_send_reset/enable"), "0");
        let _ = std::fs::write(self.dir.join("events/tcp/tcp_receive_reset/enable"), "0");
        // The instance cannot be removed while its files are open.
        self.pipe = None;
        self.marker = None;
        for _ in 0..20 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// Removes `resetscope-PID` instances whose process is gone.
fn remove_stale(instances: &Path) {
    let Ok(dir) = std::fs::read_dir(instances) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("resetscope-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

/// What one line of `trace_pipe` is.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A reset event.
    Event(ResetEvent),
    /// `CPU:n [LOST m EVENTS]`.
    Lost(u64),
    /// A sync mark of ours, at this (mapped) time.
    Sync(Timestamp),
    /// Anything else.
    Other,
}

/// `v4-mapped v6` as plain IPv4, as the packets have it.
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// Parses one line of `trace_pipe`, mapping its monotonic time by `offset_ns`.
pub fn parse_line(line: &str, offset_ns: i64) -> Parsed {
    if let Some(i) = line.find("[LOST ") {
        return Parsed::Lost(
            line[i + 6..]
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(1),
        );
    }
    if let Some(at) = line.find(": tracing_mark_write: ") {
        if line[at..].contains(SYNC_MARK.trim_end()) {
            if let Some(ts) = line[..at].split_whitespace().last().and_then(mono_ns) {
                return Parsed::Sync(Timestamp(ts.saturating_add(offset_ns)));
            }
        }
        return Parsed::Other;
    }
    let (sent, at) = match (
        line.find(": tcp_send_reset: "),
        line.find(": tcp_receive_reset: "),
    ) {
        (Some(i), _) => (true, i),
        (None, Some(i)) => (false, i),
        _ => return Parsed::Other,
    };
    let Some(ts) = line[..at]
        .split_whitespace()
        .last()
        .and_then(mono_ns)
        .map(|ns| Timestamp(ns.saturating_add(offset_ns)))
    else {
        return Parsed::Other;
    };
    let fields: Vec<(&str, &str)> = line[at..]
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .collect();
    let get = |k: &str| fields.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    let event = if sent {
        let (Some(src), Some(dst), Some(reason)) = (
            get("src").and_then(|s| s.parse::<SocketAddr>().ok()),
            get("dest").and_then(|s| s.parse::<SocketAddr>().ok()),
            get("reason"),
        ) else {
            return Parsed::Other;
        };
        ResetEvent {
            sent: Some(reason.to_string()),
            src: canonical(src),
            dst: canonical(dst),
            ts,
        }
    } else {
        let v6 = get("family") == Some("AF_INET6");
        let addr = |k4: &str, k6: &str| -> Option<IpAddr> {
            let s = if v6 { get(k6)? } else { get(k4)? };
            s.parse::<IpAddr>().ok().map(|a| a.to_canonical())
        };
        let (Some(local), Some(remote), Some(sport), Some(dport)) = (
            addr("saddr", "saddrv6"),
            addr("daddr", "daddrv6"),
            get("sport").and_then(|p| p.parse::<u16>().ok()),
            get("dport").and_then(|p| p.parse::<u16>().ok()),
        ) else {
            return Parsed::Other;
        };
        // The socket's own address is `saddr:sport`: the RST came from its peer.
        ResetEvent {
            sent: None,
            src: SocketAddr::new(remote, dport),
            dst: SocketAddr::new(local, sport),
            ts,
        }
    };
    Parsed::Event(event)
}

/// `2633.188303` (seconds and a fraction) in nanoseconds.
fn mono_ns(t: &str) -> Option<i64> {
    let (s, f) = t.split_once('.')?;
    let secs: i64 = s.parse().ok()?;
    if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac: i64 = f.parse().ok()?;
    Some(secs * 1_000_000_000 + frac * 10i64.pow(9 - f.len() as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEND: &str = "         python3-19550   [000] .Ns1.  2633.188303: tcp_send_reset: skbaddr=00000000c5606054 skaddr=0000000000000000 src=127.0.0.1:9 dest=127.0.0.1:60672 state=UNKNOWN reason=NO_SOCKET";
    const SEND6: &str = "  <idle>-0 [000] ..s2.  2633.240285: tcp_send_reset: skbaddr=0000000000000000 skaddr=00000000f867684d src=[::ffff:127.0.0.1]:19999 dest=[::ffff:127.0.0.1]:54126 state=TCP_CLOSE reason=TCP_ABORT_ON_CLOSE";
    const RECV: &str = "         python3-19550   [000] .N...  2633.189157: tcp_receive_reset: family=AF_INET sport=60672 dport=9 saddr=127.0.0.1 daddr=127.0.0.1 saddrv6=::ffff:127.0.0.1 daddrv6=::ffff:127.0.0.1 sock_cookie=1";
    const RECV6: &str = "python3-19550 [000] ..... 2633.189874: tcp_receive_reset: family=AF_INET6 sport=55228 dport=9 saddr=0.0.0.0 daddr=0.0.0.0 saddrv6=::1 daddrv6=::1 sock_cookie=2";

    #[test]
    fn parses_the_events() {
        let Parsed::Event(e) = parse_line(SEND, 1_000) else {
            panic!()
        };
        assert_eq!(e.sent.as_deref(), Some("NO_SOCKET"));
        assert_eq!(e.src, "127.0.0.1:9".parse().unwrap());
        assert_eq!(e.dst, "127.0.0.1:60672".parse().unwrap());
        assert_eq!(e.ts, Timestamp(2_633_188_303_000 + 1_000));
        let Parsed::Event(e) = parse_line(SEND6, 0) else {
            panic!()
        };
        assert_eq!(e.src, "127.0.0.1:19999".parse().unwrap());
        assert_eq!(e.sent.as_deref(), Some("TCP_ABORT_ON_CLOSE"));
        let Parsed::Event(e) = parse_line(RECV, 0) else {
            panic!()
        };
        assert_eq!(e.sent, None);
        assert_eq!(e.src, "127.0.0.1:9".parse().unwrap());
        assert_eq!(e.dst, "127.0.0.1:60672".parse().unwrap());
        let Parsed::Event(e) = parse_line(RECV6, 0) else {
            panic!()
        };
        assert_eq!(e.src, "[::1]:9".parse().unwrap());
        assert_eq!(parse_line("CPU:1 [LOST 42 EVENTS]", 0), Parsed::Lost(42));
        assert_eq!(parse_line("something else", 0), Parsed::Other);
        assert_eq!(
            parse_line(
                "           <...>-29752   [000] ...1.  4043.319416: tracing_mark_write: resetscope-sync",
                5
            ),
            Parsed::Sync(Timestamp(4_043_319_416_005))
        );
    }

    #[test]
    fn reads_names_from_the_format() {
        let f = "format:\n\tfield:enum sk_rst_reason reason;\toffset:28;\tsize:4;\tsigned:0;\n\nprint fmt: \"state=%s reason=%s\", REC->state ? __print_symbolic(REC->state, { 1, \"TCP_ESTABLISHED\" }) : \"UNKNOWN\", __print_symbolic(REC->reason, { 0, \"NOT_SPECIFIED\" }, { 1, \"NO_SOCKET\" }, { 11, \"TCP_ABORT_ON_CLOSE\" })\n";
        assert_eq!(
            reason_names(f).unwrap(),
            ["NOT_SPECIFIED", "NO_SOCKET", "TCP_ABORT_ON_CLOSE"]
        );
        assert_eq!(reason_names("format:\n\tfield:int state;\n"), None);
        if let Ok(f) =
            std::fs::read_to_string("/sys/kernel/tracing/events/tcp/tcp_send_reset/format")
        {
            let names = reason_names(&f).unwrap_or_default();
            assert!(names.iter().any(|n| n == "NO_SOCKET"), "{names:?}");
        }
    }
}
