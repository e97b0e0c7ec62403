//! `--since`, `--until` and the capture filter after `--`: which frames `analyze` takes.

use resetscope::pipeline::narrow::{Narrow, TimeBound};
use std::path::{Path, PathBuf};

/// Arguments that narrow the analysis.
#[derive(clap::Args, Debug)]
pub struct NarrowArgs {
    /// Leave out frames before this time: a date and time (`2026-11-20T22:28:50Z`, or
    /// `"2026-11-20 22:28:50"` in UTC, or with an offset such as `+01:00`), a time of day in
    /// UTC on the capture's first day (`22:28:50`), a time after the capture's first frame
    /// (`+90s`, `+5m`, `+1h30m`), or seconds since the epoch.
    #[arg(long, value_name = "TIME", value_parser = TimeBound::parse, allow_hyphen_values = true)]
    pub since: Option<TimeBound>,
    /// Leave out frames after this time (written as for --since).
    #[arg(long, value_name = "TIME", value_parser = TimeBound::parse, allow_hyphen_values = true)]
    pub until: Option<TimeBound>,
    /// A capture filter in tcpdump's syntax, after `--` (e.g. `-- 'tcp port 8080 and host
    /// 10.0.0.5'`): host, net, port, portrange (with src/dst), tcp, udp, icmp, ip, ip6,
    /// and/or/not, parentheses. Frames it rejects are not analysed.
    #[arg(last = true, value_name = "FILTER")]
    pub filter: Vec<String>,
}

impl NarrowArgs {
    /// The narrowing, or a usage error (shown as clap shows its own, exit status 2).
    pub fn narrow(&self) -> Result<Narrow, clap::Error> {
        let mut n = Narrow {
            since: self.since,
            until: self.until,
            ..Narrow::default()
        };
        if let (Some(TimeBound::At(s)), Some(TimeBound::At(u))) = (n.since, n.until) {
            if u < s {
                return Err(usage("--until is before --since: no frame is left"));
            }
        }
        if !self.filter.is_empty() {
            let text = self.filter.join(" ");
            n.filter = Some(compile(&text).map_err(|e| usage(&e))?);
            n.filter_text = Some(text);
        }
        Ok(n)
    }
}

fn compile(text: &str) -> Result<resetscope::pipeline::narrow::FrameFilter, String> {
    let f = resetscope::filter::Filter::parse(text).map_err(|e| e.to_string())?;
    Ok(Box::new(move |linktype, data| f.matches(linktype, data)))
}

fn usage(msg: &str) -> clap::Error {
    clap::Error::raw(clap::error::ErrorKind::InvalidValue, format!("{msg}\n"))
}

/// A usage error when an input that does not exist reads like a capture filter
/// (`analyze capture.pcap 'tcp port 9000'`): the filter goes after `--`.
pub fn check_inputs(files: &[PathBuf]) -> Result<(), clap::Error> {
    for f in files {
        if f.as_os_str() == "-" || Path::new(f).exists() {
            continue;
        }
        let text = f.to_string_lossy();
        let first = text
            .trim_start_matches(['(', '!'])
            .split_whitespace()
            .next()
            .unwrap_or("");
        if resetscope::filter::is_keyword(first) {
            let files: Vec<String> = files
                .iter()
                .filter(|g| *g != f)
                .map(|g| shell_word(&g.to_string_lossy()))
                .collect();
            return Err(usage(&format!(
                "{} is not a file; it reads like a capture filter, which goes after `--`:\n\n    resetscope analyze {} -- {}",
                shell_word(&text),
                files.join(" "),
                shell_word(&text)
            )));
        }
    }
    Ok(())
}

/// `s` quoted for a POSIX shell when it needs it (escaped for the terminal first).
fn shell_word(s: &str) -> String {
    let s = resetscope::escape::terminal(s);
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
