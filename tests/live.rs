//! `resetscope live` end to end (cargo feature `live`; needs root, libpcap and Go, which
//! `.ci/run` installs): the real Go race from the fixtures, captured on loopback while it
//! happens, must be reported exactly as the client's own log says; an idle interface must
//! stop on time; kernel drops must be shown; a user without privileges must be told what to
//! do.

#![cfg(feature = "live")]

mod common;

use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Starts a live test: `None` without root (live capture needs it; CI runs as root, and
/// elsewhere the test says so and passes), else a guard that keeps the live tests from
/// running at once: they share the loopback interface, and one's flood must not disturb
/// another's race.
fn setup(test: &str) -> Option<std::sync::MutexGuard<'static, ()>> {
    if !is_root() {
        eprintln!("{test}: skipped, live capture needs root (CI runs it as root)");
        return None;
    }
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    Some(LOCK.lock().unwrap_or_else(|e| e.into_inner()))
}

/// A loopback port for one test: `base` plus a little of the process id, so that two test
/// runs on one machine do not meet.
fn test_port(base: u16) -> u16 {
    base + (std::process::id() % 90) as u16
}

fn resetscope() -> Command {
    Command::new(env!("CARGO_BIN_EXE_resetscope"))
}

/// Builds the fixtures' Go server and client once.
fn go_programs(dir: &Path) -> (PathBuf, PathBuf) {
    let src = common::root().join("fixtures/src");
    let mut out = Vec::new();
    for name in ["httpserver", "httpclient"] {
        let bin = dir.join(name);
        let status = Command::new("go")
            .args(["build", "-o", bin.to_str().unwrap(), &format!("{name}.go")])
            .current_dir(&src)
            .env("GOCACHE", dir.join("gocache"))
            .env("GO111MODULE", "off")
            .status()
            .expect("go is needed for the live end-to-end test (apt-get install golang-go)");
        assert!(status.success(), "go build {name}");
        out.push(bin);
    }
    (out.remove(0), out.remove(0))
}

/// Starts `resetscope live` and waits until it is capturing.
fn start_live(args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let (child, rx, _) = start_live_line(args);
    (child, rx)
}

/// [`start_live`], with the line that says it is capturing.
fn start_live_line(args: &[&str]) -> (Child, mpsc::Receiver<String>, String) {
    let mut child = resetscope()
        .arg("live")
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let started = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("resetscope live printed nothing");
    assert!(started.contains("capturing on"), "{started}");
    (child, rx, started)
}

/// Opens `n` connections to `port` on loopback, where nothing listens: each is a SYN and a
/// RST (a refused connection).
fn refused_connections(port: u16, n: usize, pause: Duration) {
    for _ in 0..n {
        let _ = std::net::TcpStream::connect(("127.0.0.1", port));
        std::thread::sleep(pause);
    }
}

/// The final report of `live --format json` (its last line).
fn final_report(stdout: &[u8]) -> Value {
    let last = String::from_utf8_lossy(stdout)
        .lines()
        .last()
        .expect("a report line")
        .to_string();
    let report: Value = serde_json::from_str(&last).expect("JSON report line");
    assert_eq!(report["type"], "report");
    report
}

/// The findings of `kind` live printed as JSON lines on `stdout` as it decided them.
fn streamed(stdout: &[u8], kind: &str) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|f| f["type"] == "finding" && f["kind"] == kind)
        .collect()
}

/// The message of the report's caveat of `kind` (it must have one).
fn caveat_message(report: &Value, kind: &str) -> String {
    report["caveats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} caveat: {}", report["caveats"]))["message"]
        .as_str()
        .unwrap()
        .to_string()
}

fn interrupt(child: &Child) {
    signal(child, "-INT");
}

/// Sends `child` the signal `sig` (`-INT`, `-STOP`, ...) with kill(1); whether it was sent
/// (not when the child is gone).
fn signal(child: &Child, sig: &str) -> bool {
    Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success()
}

/// Local ports of the requests the client wrote and saw fail, from its own log.
fn failed_ports(log: &str) -> BTreeSet<String> {
    let field = |line: &str, key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .map(str::to_string)
    };
    let mut port = std::collections::HashMap::new();
    let mut wrote = BTreeSet::new();
    let mut failed = BTreeSet::new();
    for line in log.lines() {
        let Some(iter) = field(line, "iter=") else {
            continue;
        };
        if line.contains("event=got_conn") {
            port.insert(iter.clone(), field(line, "local=").unwrap());
        } else if line.contains("event=wrote err=<nil>") {
            wrote.insert(iter);
        } else if line.contains("event=error") {
            failed.insert(iter);
        }
    }
    failed
        .intersection(&wrote)
        .map(|i| port[i].clone())
        .collect()
}

fn race_clients(findings: &[Value]) -> BTreeSet<String> {
    findings
        .iter()
        .filter(|f| f["kind"] == "idle_race")
        .map(|f| f["client"].as_str().unwrap().to_string())
        .collect()
}

/// One run of the Go race on 127.0.0.1:`port` while `live` runs with `args`: the server
/// (300 ms idle timeout), 100 requests of the client 300.5 ms apart, then 3 s (more than the
/// linger) so the last connections are judged while still live, then SIGINT. Returns live's output
/// (it must have succeeded) and the client's log.
fn race_under_live(
    (server, client): (&Path, &Path),
    dir: &Path,
    attempt: u16,
    port: u16,
    args: &[&str],
) -> (std::process::Output, PathBuf) {
    let (live, _stderr) = start_live(args);
    let mut srv = Command::new(server)
        .args(["-listen", &format!("127.0.0.1:{port}")])
        .args(["-idle", "300ms", "-life", "60s"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let log = dir.join(format!("client-{attempt}.log"));
    let status = Command::new(client)
        .args(["-url", &format!("http://127.0.0.1:{port}/test")])
        .args(["-n", "100", "-sleep", "300.5ms", "-jitter", "3ms"])
        .args(["-max", "50s", "-log", log.to_str().unwrap()])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success() || status.code() == Some(1),
        "client: {status}"
    );
    std::thread::sleep(Duration::from_secs(3));
    interrupt(&live);
    let out = live.wait_with_output().unwrap();
    let _ = srv.kill();
    let _ = srv.wait();
    assert!(
        out.status.success(),
        "live: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out, log)
}

#[test]
fn live_go_race_reports_exactly_the_failed_requests() {
    let Some(_serial) = setup("live_go_race_reports_exactly_the_failed_requests") else {
        return;
    };
    let dir = common::scratch("live-race");
    let (server, client) = go_programs(&dir);
    for attempt in 0..4 {
        let port = 19_200 + (std::process::id() % 500) as u16 * 2 + attempt;
        let pcap = dir.join(format!("live-{attempt}.pcap"));
        let filter = format!("tcp port {port}");
        let (out, log) = race_under_live(
            (&server, &client),
            &dir,
            attempt,
            port,
            &[
                "-i",
                "lo",
                "--format",
                "json",
                "-w",
                pcap.to_str().unwrap(),
                &filter,
            ],
        );
        let expected = failed_ports(&std::fs::read_to_string(&log).unwrap());

        let lines: Vec<Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        let streamed: Vec<Value> = lines
            .iter()
            .filter(|l| l["type"] == "finding")
            .cloned()
            .collect();
        let report = lines.last().expect("final report");
        assert_eq!(report["type"], "report");
        let reported = report["findings"].as_array().unwrap().clone();
        assert_eq!(
            race_clients(&streamed),
            expected,
            "streamed idle races vs the client's failed requests"
        );
        assert_eq!(
            race_clients(&reported),
            expected,
            "final report's idle races vs the client's failed requests"
        );
        assert!(report["live_capture"]["received"].as_u64().unwrap() > 100);
        if expected.is_empty() {
            eprintln!("attempt {attempt}: no race happened this time; trying again");
            continue;
        }
        // The -w file, analysed offline, gives the same findings.
        let offline = common::json(&[&pcap]);
        let key = |f: &Value| {
            (
                f["kind"].to_string(),
                f["client"].to_string(),
                f["close_frame"].to_string(),
                f["request"].to_string(),
            )
        };
        // As sets: live mode decides races as soon as the server's estimate is firm,
        // offline at the end of the capture, so the two list them in another order.
        let mut live_keys: Vec<_> = reported.iter().map(key).collect();
        let mut offline_keys: Vec<_> = offline["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(key)
            .collect();
        live_keys.sort();
        offline_keys.sort();
        assert_eq!(live_keys, offline_keys, "live and offline findings");
        return;
    }
    panic!("no idle race in four runs of 100 requests");
}

#[test]
fn idle_interface_stops_on_duration() {
    let Some(_serial) = setup("idle_interface_stops_on_duration") else {
        return;
    };
    let started = Instant::now();
    let out = resetscope()
        .args(["live", "-i", "lo", "--duration", "2s", "tcp port 9"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(took < Duration::from_secs(3), "stopped after {took:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("live capture: 0 frames") && text.contains("libpcap: 0 packets received"),
        "{text}"
    );
}

#[test]
fn kernel_drops_are_shown() {
    let Some(_serial) = setup("kernel_drops_are_shown") else {
        return;
    };
    // A 1 KiB capture buffer cannot keep up with a loopback bulk transfer.
    let port = test_port(19_900);
    let filter = format!("tcp port {port}");
    let (live, _stderr) = start_live(&["-i", "lo", "-B", "1", "--duration", "4s", &filter]);
    let flood = format!(
        "import socket,threading\nsrv=socket.socket();srv.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);srv.bind(('127.0.0.1',{port}));srv.listen(1)\ndef sink():\n  c,_=srv.accept()\n  while c.recv(1<<20): pass\nt=threading.Thread(target=sink);t.start()\nc=socket.create_connection(('127.0.0.1',{port}));b=b'x'*(1<<20)\nfor _ in range(300): c.sendall(b)\nc.close();t.join()\n"
    );
    assert!(Command::new("python3")
        .args(["-c", &flood])
        .status()
        .unwrap()
        .success());
    let out = live.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let dropped: u64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("libpcap: ")
                .and_then(|r| r.split(", ").nth(1))
                // A count as the report writes it, with thousands separators.
                .and_then(|d| d.split(' ').next()?.replace(',', "").parse().ok())
        })
        .unwrap_or_else(|| panic!("no libpcap line: {text}"));
    assert!(dropped > 0, "{text}");
    assert!(
        text.contains("packets were lost during the capture"),
        "{text}"
    );
}

/// Drops name the verdicts they may have changed: connections refused while a 2-s bulk
/// transfer overflows a 256 KiB buffer are named in the `kernel_drops` caveat (those whose
/// SYN and RST got through); one refused 2.5 s after the flood, when nothing is lost, is
/// not.
#[test]
fn drops_name_the_verdicts_they_may_have_changed() {
    let Some(_serial) = setup("drops_name_the_verdicts_they_may_have_changed") else {
        return;
    };
    // The flood may lose every refusal made during it (a 2-vCPU machine in CI did, and
    // found only the one after it): nothing can then be checked of the naming, so the
    // run is tried again, up to three times.
    let mut attempt = 0;
    let (caveat, refused) = loop {
        let port = test_port(23_000 + 200 * attempt);
        let refused_port = port + 100;
        let filter = format!("tcp port {port} or tcp port {refused_port}");
        let (live, _stderr) = start_live(&[
            "-i",
            "lo",
            "-B",
            "256",
            "--duration",
            "60s",
            "--format",
            "json",
            &filter,
        ]);
        let flood = format!(
            "import socket,threading,time
srv=socket.socket();srv.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
srv.bind(('127.0.0.1',{port}));srv.listen(1)
def sink():
  c,_=srv.accept()
  while c.recv(1<<20): pass
def refuse():
  time.sleep(0.3); end=time.time()+1.4
  while time.time()<end:
    try: socket.create_connection(('127.0.0.1',{refused_port}))
    except OSError: pass
    time.sleep(0.05)
t=threading.Thread(target=sink);t.start();r=threading.Thread(target=refuse);r.start()
c=socket.create_connection(('127.0.0.1',{port}));b=b'x'*(1<<16);end=time.time()+2
while time.time()<end: c.sendall(b)
c.close();t.join();r.join()
"
        );
        assert!(Command::new("python3")
            .args(["-c", &flood])
            .status()
            .unwrap()
            .success());
        // Quiet now: a refusal more than the caveat's slack (1 s) after the last loss.
        std::thread::sleep(Duration::from_millis(2500));
        refused_connections(refused_port, 1, Duration::ZERO);
        std::thread::sleep(Duration::from_millis(1500));
        interrupt(&live);
        let out = live.wait_with_output().unwrap();
        assert!(out.status.success());
        let report = final_report(&out.stdout);
        assert!(
            report["live_capture"]["dropped"].as_u64().unwrap() > 0,
            "{report}"
        );
        let caveat = caveat_message(&report, "kernel_drops");
        assert!(
            caveat.contains("they were lost ") && caveat.contains(" (UTC)"),
            "{caveat}"
        );
        let refused = streamed(&out.stdout, "refused");
        if refused.len() >= 2 || attempt == 2 {
            break (caveat, refused);
        }
        eprintln!(
            "attempt {attempt}: {} refusals captured, trying again: {caveat}",
            refused.len()
        );
        attempt += 1;
    };
    assert!(refused.len() >= 2, "{caveat}");
    let named = |f: &Value| {
        caveat.contains(&format!(
            "connection {} (refused, {} -> {})",
            f["connection"],
            f["client"].as_str().unwrap(),
            f["server"].as_str().unwrap()
        ))
    };
    let (last, during) = refused.split_last().unwrap();
    // The refusals made during the flood are named, unless more than ten findings are
    // (the flood's own connection may have one too): the caveat then names ten and counts
    // the rest, and every refusal it names is one of them.
    let named_during = during.iter().filter(|f| named(f)).count();
    assert!(
        named_during == during.len()
            || (caveat.contains(" more;")
                && named_during > 0
                && named_during == caveat.matches("(refused, ").count()),
        "{named_during} of {} named: {caveat}",
        during.len()
    );
    assert!(
        !named(last),
        "the refusal after the flood is named: {caveat}"
    );
}

/// In a network namespace of its own (as in a container without the host's), live says
/// so once on stderr and in a caveat, and carries on: refusals inside the namespace are
/// found, with the kernel's reason when tracefs is there. In the host's namespace it says
/// nothing of it.
#[test]
fn in_a_network_namespace_of_its_own_it_says_so_once_and_carries_on() {
    let Some(_serial) = setup("in_a_network_namespace_of_its_own_it_says_so_once_and_carries_on")
    else {
        return;
    };
    let ns = format!("rs-live-{}", std::process::id());
    let ip = |args: &[&str]| {
        assert!(
            Command::new("ip").args(args).status().unwrap().success(),
            "ip {args:?}"
        );
    };
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    ip(&["netns", "add", &ns]);
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _gone = Gone(ns.clone());
    ip(&["-n", &ns, "link", "set", "lo", "up"]);
    let port = test_port(21_100);
    // `ip netns exec` mounts a /sys of the namespace's own, without tracefs; mounted there,
    // as in a container given the host's tracefs, the kernel's events are read.
    let mut live = Command::new("ip")
        .args(["netns", "exec", &ns, "sh", "-c"])
        .arg("mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_resetscope"))
        .args(["live", "-i", "lo", "--format", "json", "--duration", "30s"])
        .arg(format!("tcp port {port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = live.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut early = Vec::new();
    while !early.iter().any(|l: &String| l.contains("capturing on")) {
        early.push(
            rx.recv_timeout(Duration::from_secs(10))
                .expect("live started"),
        );
    }
    let refuse = format!(
        "import socket\nfor _ in range(3):\n  try: socket.create_connection(('127.0.0.1',{port}))\n  except OSError: pass\n"
    );
    ip(&["netns", "exec", &ns, "python3", "-c", &refuse]);
    std::thread::sleep(Duration::from_millis(1500));
    interrupt(&live);
    let out = live.wait_with_output().unwrap();
    assert!(out.status.success());
    let notes: Vec<&String> = early
        .iter()
        .filter(|l| l.contains("network namespace of its own"))
        .collect();
    assert_eq!(notes.len(), 1, "{early:?}");
    let report = final_report(&out.stdout);
    assert_eq!(
        report["kernel"]["network_namespace"]["host"], false,
        "{}",
        report["kernel"]
    );
    let caveats = report["caveats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "own_network_namespace")
        .count();
    assert_eq!(caveats, 1, "{}", report["caveats"]);
    let refused = streamed(&out.stdout, "refused");
    assert_eq!(refused.len(), 3, "{refused:?}");
    if kernel_reasons_here() {
        assert_eq!(
            report["kernel"]["reasons_from"], "tracefs",
            "{}",
            report["kernel"]
        );
        for f in &refused {
            assert_eq!(f["kernel_reason"]["reason"], "NO_SOCKET", "{f}");
        }
    }

    // In the host's namespace (or one that cannot be told): no note, no caveat.
    let host = resetscope()
        .args(["live", "-i", "lo", "--format", "json", "--duration", "1s"])
        .arg(format!("tcp port {port}"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&host.stderr);
    assert!(!err.contains("network namespace of its own"), "{err}");
    let report = final_report(&host.stdout);
    assert_ne!(report["kernel"]["network_namespace"]["host"], false);
    assert!(!report["caveats"]
        .to_string()
        .contains("own_network_namespace"));
}

#[test]
fn without_privileges_the_user_is_told_what_to_do() {
    let Some(_serial) = setup("without_privileges_the_user_is_told_what_to_do") else {
        return;
    };
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_resetscope"))
        .args(["live", "-i", "lo", "--duration", "1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no permission to capture on lo"), "{err}");
    assert!(
        err.contains("CAP_NET_RAW")
            && err.contains("sudo")
            && err.contains("setcap cap_net_raw,cap_net_admin=eip"),
        "{err}"
    );
}

#[test]
fn list_interfaces_includes_loopback() {
    let out = resetscope()
        .args(["live", "--list-interfaces"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.contains(".lo") && l.contains("Loopback")));
}

/// A finding is printed as soon as it is decided: a refused connection (SYN, RST) is
/// closed by its RST, and its line comes within the live linger (250 ms), a sweep (100 ms)
/// and the wait for the kernel's event (at most 250 ms), not after the offline linger of
/// 2 s. The fastest of four is asked to be under 1.2 s, so a loaded machine does not fail
/// it while the old 2 s linger always would.
#[test]
fn a_finding_is_printed_within_a_second_of_its_close() {
    let Some(_serial) = setup("a_finding_is_printed_within_a_second_of_its_close") else {
        return;
    };
    let port = test_port(20_900);
    let filter = format!("tcp port {port}");
    let mut live = resetscope()
        .args(["live", "-i", "lo", "--format", "json", "--duration", "30s"])
        .arg(&filter)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = live.stderr.take().unwrap();
    let (err_tx, err_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = err_tx.send(line);
        }
    });
    let started = err_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(started.contains("capturing on"), "{started}");
    let stdout = live.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send((Instant::now(), line));
        }
    });
    let mut delays = Vec::new();
    for _ in 0..4 {
        let sent = Instant::now();
        refused_connections(port, 1, Duration::ZERO);
        let (at, line) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a finding line for the refused connection");
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["type"], "finding", "{line}");
        assert_eq!(v["kind"], "refused", "{line}");
        delays.push(at - sent);
        std::thread::sleep(Duration::from_millis(300));
    }
    interrupt(&live);
    let out = live.wait_with_output().unwrap();
    assert!(out.status.success());
    let fastest = delays.iter().min().unwrap();
    eprintln!("finding lines after the close: {delays:?}");
    assert!(
        *fastest < Duration::from_millis(1200),
        "the fastest finding line came {fastest:?} after its connection closed: {delays:?}"
    );
}

#[test]
fn any_interface_and_until_findings() {
    let Some(_serial) = setup("any_interface_and_until_findings") else {
        return;
    };
    // Connections to a port where nothing listens: each is refused, one finding each.
    let port = test_port(19_800);
    let filter = format!("tcp port {port}");
    let started = Instant::now();
    let dir = common::scratch("live-any");
    let pcap = dir.join("any.pcap");
    let (live, _stderr) = start_live(&[
        "-i",
        "any",
        "--until-findings",
        "2",
        "--duration",
        "30s",
        "--format",
        "json",
        "-w",
        pcap.to_str().unwrap(),
        &filter,
    ]);
    refused_connections(port, 4, Duration::from_millis(200));
    let out = live.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "stopped after the second finding"
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let refused = lines
        .iter()
        .filter(|l| l["type"] == "finding" && l["kind"] == "refused")
        .count();
    assert!(refused >= 2, "{lines:?}");
    let report = lines.last().unwrap();
    assert_eq!(report["type"], "report");
    // -i any captures as Linux cooked v2 (link type 276); the frames decode as TCP.
    assert_eq!(report["inputs"][0]["linktypes"], serde_json::json!([276]));
    assert!(report["summary"]["packets"]["tcp"].as_u64().unwrap() >= 4);
    assert_eq!(
        report["summary"]["packets"]["unsupported_link_types"],
        serde_json::json!({})
    );
    // The -w file carries the same link type in its header: every frame decodes again.
    let offline = common::json(&[&pcap]);
    assert_eq!(
        offline["summary"]["packets"]["tcp"],
        offline["summary"]["packets"]["frames"]
    );
    assert_eq!(
        offline["summary"]["findings"]["refused"],
        report["summary"]["findings"]["refused"]
    );
}

#[test]
fn count_stops_after_that_many_packets() {
    let Some(_serial) = setup("count_stops_after_that_many_packets") else {
        return;
    };
    // Each attempt on a closed port is a SYN and a RST: three attempts, six packets.
    let port = test_port(19_700);
    let filter = format!("tcp port {port}");
    let started = Instant::now();
    let (live, _stderr) = start_live(&[
        "-i",
        "lo",
        "-c",
        "4",
        "--duration",
        "30s",
        "--format",
        "json",
        &filter,
    ]);
    refused_connections(port, 3, Duration::from_millis(100));
    let out = live.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped at the count, not the duration"
    );
    let report = final_report(&out.stdout);
    assert_eq!(report["summary"]["packets"]["frames"], 4);
}

#[test]
fn markdown_report_of_a_live_capture_has_ladders_from_the_w_file() {
    let Some(_serial) = setup("markdown_report_of_a_live_capture_has_ladders_from_the_w_file")
    else {
        return;
    };
    let port = test_port(19_600);
    let dir = common::scratch("live-markdown");
    let pcap = dir.join("ticket.pcap");
    let filter = format!("tcp port {port}");
    let (live, _stderr) = start_live(&[
        "-i",
        "lo",
        "-c",
        "4",
        "--duration",
        "30s",
        "-f",
        "markdown",
        "-w",
        pcap.to_str().unwrap(),
        &filter,
    ]);
    refused_connections(port, 3, Duration::from_millis(100));
    let out = live.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.starts_with("# resetscope report: ticket.pcap"), "{md}");
    assert!(
        md.contains("`refused`") && md.contains("~~~text") && md.contains("SYN"),
        "{md}"
    );
}

#[test]
fn status_line_on_a_terminal() {
    let Some(_serial) = setup("status_line_on_a_terminal") else {
        return;
    };
    let cmd = format!(
        "{} live -i lo --duration 2s 'tcp port 9'",
        env!("CARGO_BIN_EXE_resetscope")
    );
    // `script` gives the program a pseudo-terminal for stdout and stderr.
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("0 packets, 0 connections open, 0 findings, 0 dropped"),
        "{text}"
    );
}

/// The tracefs instance named on the "capturing on" line, if kernel reasons are read.
fn instance_of(started: &str) -> Option<PathBuf> {
    let at = started.find("kernel reset reasons from ")? + "kernel reset reasons from ".len();
    let rest = &started[at..];
    Some(PathBuf::from(&rest[..rest.find(')')?]))
}

/// Can this machine's kernel give reasons (tracefs mounted, the `reason` field there)?
fn kernel_reasons_here() -> bool {
    std::fs::read_to_string("/sys/kernel/tracing/events/tcp/tcp_send_reset/format")
        .is_ok_and(|f| f.contains(" reason;"))
}

/// `frame.number` → `frame.comment` of the frames tshark finds with a comment; `None`
/// without tshark.
fn tshark_comments(file: &Path) -> Option<std::collections::BTreeMap<u64, String>> {
    let out = Command::new("tshark")
        .args(["-r", file.to_str().unwrap(), "-Y", "frame.comment"])
        .args(["-T", "fields", "-e", "frame.number", "-e", "frame.comment"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    assert!(out.status.success(), "tshark failed on {}", file.display());
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (n, c) = l.split_once('\t')?;
                Some((n.parse().ok()?, c.to_string()))
            })
            .collect(),
    )
}

/// What this kernel (6.18 here) reports for the races of the Go fixture, measured: the
/// RST variant (`rst_no_fin`: the server closed its idle connection with the request
/// unread) is `TCP_ABORT_ON_CLOSE`; the FIN variant (`fin_then_rst`: the request reached a
/// socket already closed, in FIN_WAIT2) is `TCP_ABORT_ON_DATA`.
fn expected_reason(variant: &str) -> Option<&'static str> {
    match variant {
        "rst_no_fin" => Some("TCP_ABORT_ON_CLOSE"),
        "fin_then_rst" => Some("TCP_ABORT_ON_DATA"),
        _ => None,
    }
}

#[test]
fn live_go_race_every_reset_has_the_kernels_reason() {
    let Some(_serial) = setup("live_go_race_every_reset_has_the_kernels_reason") else {
        return;
    };
    if !kernel_reasons_here() {
        eprintln!("skipped: this kernel has no tcp_send_reset reason in tracefs");
        return;
    }
    let dir = common::scratch("live-kernel-race");
    let (server, client) = go_programs(&dir);
    let mut variants_seen = BTreeSet::new();
    let mut a_whole_run = false;
    for attempt in 0..6 {
        let port = 21_200 + (std::process::id() % 500) as u16 * 2 + attempt;
        let pcapng = dir.join(format!("race-{attempt}.pcapng"));
        let filter = format!("tcp port {port}");
        // `-i any` with default options, as the README's example.
        let (out, log) = race_under_live(
            (&server, &client),
            &dir,
            attempt,
            port,
            &[
                "-i",
                "any",
                "--format",
                "json",
                "-w",
                pcapng.to_str().unwrap(),
                &filter,
            ],
        );
        let report = final_report(&out.stdout);
        assert_eq!(
            report["kernel"]["reasons_from"], "tracefs",
            "{}",
            report["kernel"]
        );
        assert_eq!(report["kernel"]["events_lost"], 0);
        // A race of at least 1,000 packets, and its findings are the client's failures.
        assert!(
            report["live_capture"]["received"].as_u64().unwrap() >= 1000,
            "{}",
            report["live_capture"]
        );
        // The 2-vCPU VM of 2026-12-03 lost packets under `-i any` in most runs, with the
        // commit before that day's work too: some counted as drops (16-156 of ~1,500),
        // some not counted at all (the last 2.4 s of the client's traffic missing from the
        // capture and the -w file). A run that lost packets cannot have every race: it is
        // tried again, and every whole run is checked exactly.
        let races_found = race_clients(report["findings"].as_array().unwrap());
        let failed = failed_ports(&std::fs::read_to_string(&log).unwrap());
        let dropped = report["live_capture"]["dropped"].as_u64().unwrap();
        let captured: BTreeSet<String> = report["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["client"].as_str().unwrap().to_string())
            .collect();
        let never_captured: Vec<&String> =
            failed.iter().filter(|p| !captured.contains(*p)).collect();
        if dropped > 0 || !never_captured.is_empty() {
            eprintln!(
                "attempt {attempt}: the capture lost packets ({dropped} dropped; failed \
                 connections never captured: {never_captured:?}; libpcap: {}); trying again",
                report["live_capture"]
            );
            continue;
        }
        a_whole_run = true;
        assert_eq!(
            races_found, failed,
            "idle races under -i any vs the client's failed requests"
        );
        // Every RST on the wire was sent by this host's kernel (both ends are here), and
        // carries its reason.
        let mut rsts = std::collections::BTreeMap::new();
        for c in report["connections"].as_array().unwrap() {
            for close in c["closes"].as_array().unwrap() {
                if close["kind"] == "fin" {
                    continue;
                }
                let reason = &close["kernel_reason"];
                assert_eq!(reason["event"], "tcp_send_reset", "{close}");
                rsts.insert(
                    close["frame"]["number"].as_u64().unwrap(),
                    reason["reason"].as_str().unwrap().to_string(),
                );
            }
        }
        if rsts.is_empty() {
            // No race this time (the client's timing missed the server's close): nothing
            // to join, and a pcapng with no RST has no comment to read back.
            eprintln!("attempt {attempt}: no RST; trying again");
            continue;
        }
        // Every race is matched to the reason this kernel gives its variant.
        let races: Vec<&Value> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == "idle_race")
            .collect();
        for f in &races {
            let variant = f["variant"].as_str().unwrap();
            let Some(want) = expected_reason(variant) else {
                continue;
            };
            assert_eq!(f["kernel_reason"]["reason"], want, "{f}");
            assert!(
                f["sentence"]
                    .as_str()
                    .unwrap()
                    .contains("The server's kernel reset it because"),
                "{f}"
            );
            variants_seen.insert(variant.to_string());
            eprintln!("attempt {attempt}: {variant} race: {want}");
        }
        let close_on_request = races.iter().any(|f| f["variant"] == "rst_no_fin");
        if close_on_request {
            assert!(races.iter().any(|f| {
                f["sentence"].as_str().unwrap().contains(
                "the application closed the socket with the request unread (TCP_ABORT_ON_CLOSE)"
            )
            }));
        }
        // The counters saw them too.
        let counter = |name: &str| {
            report["kernel"]["counters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == name)
                .map(|c| c["change"].as_u64().unwrap())
                .unwrap()
        };
        let by_reason = |r: &str| rsts.values().filter(|v| *v == r).count() as u64;
        // tcp_close() counts TCPAbortOnClose before it sends the RST, so every
        // TCP_ABORT_ON_CLOSE reset is counted. TCPAbortOnData is not a count of
        // TCP_ABORT_ON_DATA resets: a CI run on 6.18 saw two such resets and a smaller
        // change in the counter (the orphaned FIN_WAIT2 socket's paths differ in what they
        // count), so the test only asks that the counter is reported.
        assert!(
            counter("TCPAbortOnClose") >= by_reason("TCP_ABORT_ON_CLOSE"),
            "RSTs {rsts:?}, counters {}",
            report["kernel"]["counters"]
        );
        let _ = counter("TCPAbortOnData");

        // The pcapng keeps them: analysed offline, every RST has the same reason...
        let offline = common::json(&[&pcapng]);
        assert_eq!(offline["inputs"][0]["format"], "pcapng");
        assert_eq!(offline["kernel"]["reasons_from"], "packet_comments");
        let mut offline_rsts = std::collections::BTreeMap::new();
        for c in offline["connections"].as_array().unwrap() {
            for close in c["closes"].as_array().unwrap() {
                if close["kind"] != "fin" {
                    offline_rsts.insert(
                        close["frame"]["number"].as_u64().unwrap(),
                        close["kernel_reason"]["reason"]
                            .as_str()
                            .unwrap_or("none")
                            .to_string(),
                    );
                }
            }
        }
        assert_eq!(offline_rsts, rsts, "offline and live reasons by RST frame");
        let key = |f: &Value| {
            (
                f["kind"].to_string(),
                f["client"].to_string(),
                f["kernel_reason"].to_string(),
                f["sentence"].to_string(),
            )
        };
        let mut live_keys: Vec<_> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(key)
            .collect();
        let mut offline_keys: Vec<_> = offline["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(key)
            .collect();
        live_keys.sort();
        offline_keys.sort();
        assert_eq!(
            live_keys, offline_keys,
            "live and offline findings with reasons"
        );
        // ...and tshark shows each as the comment of its frame.
        match tshark_comments(&pcapng) {
            None => eprintln!("tshark not installed: frame.comment not checked"),
            Some(comments) => {
                assert_eq!(
                    comments.keys().collect::<Vec<_>>(),
                    rsts.keys().collect::<Vec<_>>(),
                    "frames with a comment are the RSTs"
                );
                for (frame, reason) in &rsts {
                    assert!(
                        comments[frame].contains(&format!("tcp_send_reset reason={reason}")),
                        "frame {frame}: {}",
                        comments[frame]
                    );
                }
            }
        }
        if variants_seen.len() == 2 {
            return;
        }
        eprintln!("attempt {attempt}: variants so far {variants_seen:?}; trying again");
    }
    if !a_whole_run {
        // Not a verdict on resetscope: the capture itself was not whole. Said loudly, so
        // that a machine where this happens is seen.
        eprintln!(
            "NOT CHECKED: every one of the six runs lost packets under -i any on this \
             machine, so no run could be compared with the client's failures"
        );
        return;
    }
    assert!(
        !variants_seen.is_empty(),
        "no RST- or FIN-variant race in six runs of 100 requests"
    );
}

#[test]
fn tracefs_instance_is_gone_after_sigint_and_sigterm() {
    let Some(_serial) = setup("tracefs_instance_is_gone_after_sigint_and_sigterm") else {
        return;
    };
    if !kernel_reasons_here() {
        eprintln!("skipped: this kernel has no tcp_send_reset reason in tracefs");
        return;
    }
    for signal in ["-INT", "-TERM"] {
        let (live, _rx, stderr) = start_live_line(&["-i", "lo", "--duration", "30s", "tcp port 9"]);
        let instance = instance_of(&stderr).expect("an instance on the capturing line");
        assert!(
            instance.is_dir(),
            "{} during the capture",
            instance.display()
        );
        assert!(instance
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(&format!("resetscope-{}", live.id())));
        assert!(std::fs::read_to_string(instance.join("trace_clock"))
            .unwrap()
            .contains("[mono]"));
        Command::new("kill")
            .args([signal, &live.id().to_string()])
            .status()
            .unwrap();
        let out = live.wait_with_output().unwrap();
        assert!(out.status.success(), "{signal}: {:?}", out.status);
        assert!(
            !instance.exists(),
            "{} left after {signal}",
            instance.display()
        );
    }
    // An error after the instance was made (a filter libpcap rejects) removes it too.
    let child = resetscope()
        .args(["live", "-i", "lo", "--duration", "5s", "tcp port ((("])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let instance = PathBuf::from(format!(
        "/sys/kernel/tracing/instances/resetscope-{}",
        child.id()
    ));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad capture filter"));
    assert!(
        !instance.exists(),
        "{} left after an error",
        instance.display()
    );
}

#[test]
fn without_tracefs_one_line_and_one_caveat_and_the_same_findings() {
    let Some(_serial) = setup("without_tracefs_one_line_and_one_caveat_and_the_same_findings")
    else {
        return;
    };
    // Two captures of the same refused connections at once: one reads the kernel's events,
    // the other is pointed at a tracefs that is not there.
    let port = test_port(19_500);
    let filter = format!("tcp port {port}");
    let with = resetscope()
        .args([
            "live",
            "-i",
            "lo",
            "--duration",
            "4s",
            "--format",
            "json",
            &filter,
        ])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let without = resetscope()
        .args([
            "live",
            "-i",
            "lo",
            "--duration",
            "4s",
            "--format",
            "json",
            &filter,
        ])
        .env("NO_COLOR", "1")
        .env("RESETSCOPE_TRACEFS", "/nonexistent/tracefs")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    refused_connections(port, 3, Duration::from_millis(100));
    let with = with.wait_with_output().unwrap();
    let without = without.wait_with_output().unwrap();
    assert!(with.status.success() && without.status.success());
    let err = String::from_utf8_lossy(&without.stderr);
    let said: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("reasons for resets cannot be read"))
        .collect();
    assert_eq!(said.len(), 1, "{err}");
    assert!(
        said[0].contains("/nonexistent/tracefs") && said[0].contains("verdicts are unchanged"),
        "{err}"
    );
    let a = final_report(&with.stdout);
    let b = final_report(&without.stdout);
    let caveats: Vec<&Value> = b["caveats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "kernel_reasons")
        .collect();
    assert_eq!(caveats.len(), 1, "{}", b["caveats"]);
    assert_eq!(b["kernel"]["reasons_from"], Value::Null);
    let findings = |r: &Value| {
        let mut v: Vec<String> = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                format!(
                    "{} {} {} {}",
                    f["kind"], f["client"], f["server"], f["close_frame"]
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(findings(&a).len(), 3, "{}", a["findings"]);
    assert_eq!(
        findings(&a),
        findings(&b),
        "the same findings with and without"
    );
    for f in a["findings"].as_array().unwrap() {
        assert_eq!(f["kernel_reason"]["reason"], "NO_SOCKET", "{f}");
    }
    for f in b["findings"].as_array().unwrap() {
        assert_eq!(f["kernel_reason"], Value::Null, "{f}");
    }
}

#[test]
fn write_to_stdout_is_pcapng_and_the_report_goes_to_stderr() {
    let Some(_serial) = setup("write_to_stdout_is_pcapng_and_the_report_goes_to_stderr") else {
        return;
    };
    let port = test_port(19_400);
    let filter = format!("tcp port {port}");
    let live = resetscope()
        .args(["live", "-i", "lo", "--duration", "3s", "-w", "-", &filter])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    refused_connections(port, 2, Duration::from_millis(100));
    let out = live.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The standard output is a pcapng (its section header block first) ...
    assert_eq!(&out.stdout[..4], &[0x0a, 0x0d, 0x0d, 0x0a]);
    let dir = common::scratch("live-stdout");
    let file = dir.join("stdout.pcapng");
    std::fs::write(&file, &out.stdout).unwrap();
    let offline = common::json(&[&file]);
    assert_eq!(offline["summary"]["findings"]["refused"], 2);
    // ... and the report is on the standard error, its times in UTC.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("live capture:") && err.contains("refused"),
        "{err}"
    );
    assert!(err.lines().any(|l| l.contains(" UTC refused ")), "{err}");
}

#[test]
fn markdown_without_w_says_ladders_need_it() {
    let Some(_serial) = setup("markdown_without_w_says_ladders_need_it") else {
        return;
    };
    let out = resetscope()
        .args([
            "live",
            "-i",
            "lo",
            "--duration",
            "1s",
            "-f",
            "markdown",
            "tcp port 9",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("packet ladders") && err.contains("-w FILE"),
        "{err}"
    );
}

/// Sends one TCP RST from `127.0.0.1:sport` to `127.0.0.1:dport` through a raw socket: a
/// RST on the wire with this host's address that its TCP stack never sent.
fn forged_rst(sport: u16, dport: u16) {
    let script = format!(
        r#"
import socket, struct
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
src = dst = socket.inet_aton('127.0.0.1')
tcp = struct.pack('!HHIIBBHHH', {sport}, {dport}, 12345, 0, 5 << 4, 0x04, 0, 0, 0)
pseudo = src + dst + struct.pack('!BBH', 0, 6, len(tcp))
tcp = tcp[:16] + struct.pack('!H', csum(pseudo + tcp)) + tcp[18:]
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0, src, dst)
ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.sendto(ip + tcp, ('127.0.0.1', 0))
"#
    );
    assert!(Command::new("python3")
        .args(["-c", &script])
        .status()
        .unwrap()
        .success());
}

/// Events the trace buffer loses are counted and said, and no RST is then called "not
/// sent by this host": live's instance gets a 4 KiB buffer per CPU and is stopped
/// (SIGSTOP) while 3,000 connections are refused, so the kernel overwrites events before
/// they are read.
#[test]
fn lost_kernel_events_are_said_and_no_rst_is_then_called_not_sent() {
    let Some(_serial) = setup("lost_kernel_events_are_said_and_no_rst_is_then_called_not_sent")
    else {
        return;
    };
    if !kernel_reasons_here() {
        eprintln!("skipped: this kernel has no tcp_send_reset reason in tracefs");
        return;
    }
    let port = test_port(21_400);
    let (live, _rx) = start_live(&["-i", "lo", "--format", "json", &format!("tcp port {port}")]);
    let instance = format!("/sys/kernel/tracing/instances/resetscope-{}", live.id());
    std::fs::write(format!("{instance}/buffer_size_kb"), "4").unwrap();
    let signal = |sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &live.id().to_string()])
            .status()
            .unwrap()
            .success());
    };
    signal("-STOP");
    let refuse = format!(
        "import socket\nfor _ in range(3000):\n  try: socket.create_connection(('127.0.0.1',{port}))\n  except OSError: pass\n"
    );
    assert!(Command::new("python3")
        .args(["-c", &refuse])
        .status()
        .unwrap()
        .success());
    signal("-CONT");
    std::thread::sleep(Duration::from_secs(2));
    interrupt(&live);
    let out = live.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = final_report(&out.stdout);
    let lost = report["kernel"]["events_lost"].as_u64().unwrap();
    assert!(lost > 0, "{}", report["kernel"]);
    let caveat = caveat_message(&report, "kernel_events_lost");
    assert!(
        caveat.contains(&format!("the kernel lost {lost} reset events")),
        "{caveat}"
    );
    let refused = streamed(&out.stdout, "refused");
    assert!(!refused.is_empty());
    let not_sent = refused
        .iter()
        .filter(|f| f["kernel_reason"]["event"] == "none")
        .count();
    assert_eq!(not_sent, 0, "of {} refusals", refused.len());
    eprintln!(
        "{lost} events lost; {} refusals found, {} with a kernel reason",
        refused.len(),
        refused
            .iter()
            .filter(|f| f["kernel_reason"]["event"] == "tcp_send_reset")
            .count()
    );
}

#[test]
fn a_rst_this_host_did_not_send_is_said_so() {
    let Some(_serial) = setup("a_rst_this_host_did_not_send_is_said_so") else {
        return;
    };
    if !kernel_reasons_here() {
        eprintln!("skipped: this kernel has no tcp_send_reset reason in tracefs");
        return;
    }
    let port = test_port(19_300);
    let filter = format!("tcp port {port}");
    let dir = common::scratch("live-forged");
    let pcapng = dir.join("forged.pcapng");
    let (live, _rx) = start_live(&[
        "-i",
        "lo",
        "--duration",
        "3s",
        "--format",
        "json",
        "-w",
        pcapng.to_str().unwrap(),
        &filter,
    ]);
    // One RST the kernel sends (a refused connection), one it does not (forged).
    refused_connections(port, 1, Duration::from_millis(100));
    forged_rst(port, 40_000);
    let out = live.wait_with_output().unwrap();
    assert!(out.status.success());
    let report = final_report(&out.stdout);
    let mut events: Vec<(u16, String)> = Vec::new();
    for c in report["connections"].as_array().unwrap() {
        for close in c["closes"].as_array().unwrap() {
            if close["kind"] != "fin" {
                let port_of = |s: &Value| {
                    s.as_str()
                        .unwrap()
                        .rsplit(':')
                        .next()
                        .unwrap()
                        .parse::<u16>()
                        .unwrap()
                };
                let sender = if close["by"] == "client" {
                    &c["client"]
                } else {
                    &c["server"]
                };
                events.push((
                    port_of(sender),
                    format!(
                        "{} {}",
                        close["kernel_reason"]["event"].as_str().unwrap_or("?"),
                        close["kernel_reason"]["reason"].as_str().unwrap_or("-")
                    ),
                ));
            }
        }
    }
    events.sort();
    assert_eq!(
        events,
        [
            (port, "none -".to_string()),
            (port, "tcp_send_reset NO_SOCKET".to_string())
        ]
        .into_iter()
        .collect::<Vec<_>>(),
        "{}",
        report["connections"]
    );
    let comments = tshark_comments(&pcapng);
    if let Some(c) = comments {
        assert!(
            c.values()
                .any(|v| v.contains("not sent by this host's kernel")),
            "{c:?}"
        );
    }
}

/// A stop reads what the kernel had already captured: the capture is frozen (SIGSTOP) while
/// connections are refused, so their packets wait in libpcap's ring, then interrupted and
/// resumed. A loop that stopped at once would read none of them.
#[test]
fn a_stop_reads_what_the_kernel_had_already_captured() {
    let Some(_serial) = setup("a_stop_reads_what_the_kernel_had_already_captured") else {
        return;
    };
    let port = test_port(24_100);
    let filter = format!("tcp port {port}");
    let (live, _stderr) = start_live(&["-i", "lo", "--format", "json", &filter]);
    assert!(signal(&live, "-STOP"));
    // 16 refused connections: 32 packets, each in the ring twice on loopback (out and in),
    // far fewer than the ring's slots.
    refused_connections(port, 16, Duration::from_millis(5));
    std::thread::sleep(Duration::from_millis(200));
    assert!(signal(&live, "-INT"));
    assert!(signal(&live, "-CONT"));
    let out = live.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = final_report(&out.stdout);
    assert_eq!(
        report["live_capture"]["read"], 32,
        "{}",
        report["live_capture"]
    );
    assert_eq!(report["live_capture"]["dropped"], 0);
    let refused = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "refused")
        .count();
    assert_eq!(refused, 16, "{}", report["findings"]);
}
