//! Per-server keep-alive idle-timeout estimate.
//!
//! Every time a server closes a connection that had been idle (a graceful idle close, or
//! the close that a request raced), the idle time at that close is one observation of the
//! server's idle timeout. The estimate is their median, with the spread (min, quartiles,
//! max) and count, set beside any `Keep-Alive: timeout=N` the server announced, and turned
//! into a recommendation for the clients.

use crate::report::words;
use serde::Serialize;
use std::collections::BinaryHeap;
use std::net::SocketAddr;

/// One kept observation: its sampling hash and the idle time.
#[derive(Clone, Copy, Debug)]
pub struct Sampled {
    hash: u64,
    ms: f64,
}

impl PartialEq for Sampled {
    fn eq(&self, o: &Self) -> bool {
        self.hash == o.hash
    }
}
impl Eq for Sampled {}
impl PartialOrd for Sampled {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Sampled {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.hash.cmp(&o.hash)
    }
}

/// Observations kept per server (the median of this many is plenty).
const MAX_OBSERVATIONS: usize = 4096;
/// An estimate on fewer idle closes than this is tentative.
const TENTATIVE_BELOW: usize = 3;

/// What was seen of one server.
#[derive(Clone, Debug, Default)]
pub struct ServerTally {
    /// Idle times at the server's idle closes, in milliseconds: all of them up to
    /// `MAX_OBSERVATIONS`, then the sample whose keys hash lowest (bottom-k sampling), so
    /// that which ones are kept does not depend on the order they come in.
    pub observations: BinaryHeap<Sampled>,
    /// Observations beyond the cap.
    pub observations_dropped: u64,
    /// `Keep-Alive: timeout` values announced (seconds).
    pub announced: Vec<u32>,
    /// Connections to this server.
    pub connections: u64,
    /// Idle races on connections to this server.
    pub races: u64,
    /// Of those, requests that must not be retried blindly (not idempotent, and not
    /// provably unprocessed).
    pub races_not_idempotent: u64,
    /// Of those, requests whose retry safety cannot be told (over TLS).
    pub races_retry_unknown: u64,
    /// HTTP requests sent to it.
    pub requests: u64,
    /// The estimate as last computed, and from how many observations.
    cached: Option<(usize, Estimate)>,
}

impl ServerTally {
    /// Adds an idle-close observation; `key` names it (the connection's id), for sampling.
    pub fn observe(&mut self, idle_ms: f64, key: u64) {
        let hash = key.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29) ^ key;
        let s = Sampled { hash, ms: idle_ms };
        if self.observations.len() < MAX_OBSERVATIONS {
            self.observations.push(s);
            return;
        }
        self.observations_dropped += 1;
        if self.observations.peek().is_some_and(|top| hash < top.hash) {
            self.observations.pop();
            self.observations.push(s);
        }
    }

    /// The estimate so far, recomputed only when the observations have grown by a sixteenth
    /// since the last time (judging each connection must not sort them all again).
    pub fn estimate_so_far(&mut self) -> Option<Estimate> {
        let n = self.observations.len();
        match &self.cached {
            Some((at, e)) if n < at + (at / 16).max(1) => Some(e.clone()),
            _ => {
                let e = self.estimate()?;
                self.cached = Some((n, e.clone()));
                Some(e)
            }
        }
    }

    /// The estimate, if the server closed any idle connection.
    pub fn estimate(&self) -> Option<Estimate> {
        if self.observations.is_empty() {
            return None;
        }
        let mut v: Vec<f64> = self.observations.iter().map(|s| s.ms).collect();
        v.sort_by(f64::total_cmp);
        let q = |p: f64| {
            let pos = p * (v.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
        };
        Some(Estimate {
            median_ms: round3(q(0.5)),
            min_ms: round3(v[0]),
            p25_ms: round3(q(0.25)),
            p75_ms: round3(q(0.75)),
            max_ms: round3(v[v.len() - 1]),
            observations: v.len() as u64 + self.observations_dropped,
            tentative: v.len() < TENTATIVE_BELOW,
        })
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The estimated idle timeout of one server.
#[derive(Clone, Debug, Serialize)]
pub struct Estimate {
    /// Median idle time at the server's idle closes.
    pub median_ms: f64,
    /// Shortest.
    pub min_ms: f64,
    /// First quartile.
    pub p25_ms: f64,
    /// Third quartile.
    pub p75_ms: f64,
    /// Longest.
    pub max_ms: f64,
    /// How many closes it rests on.
    pub observations: u64,
    /// Fewer than three closes: a hint, not a measurement.
    pub tentative: bool,
}

impl Estimate {
    /// `tentative: 1 observation` for an estimate on fewer than three closes, else empty.
    pub fn tentative_note(&self) -> Option<String> {
        self.tentative.then(|| {
            format!(
                "tentative: {}",
                words::plural(self.observations, "observation", "observations")
            )
        })
    }
}

impl Estimate {
    /// True if `idle_ms` is what this server's timeout would give: within a quarter of the
    /// median (at least 20 ms), or inside the observed range.
    pub fn matches(&self, idle_ms: f64) -> bool {
        let tolerance = (self.median_ms * 0.25).max(20.0);
        (idle_ms - self.median_ms).abs() <= tolerance
            || (self.min_ms..=self.max_ms).contains(&idle_ms)
    }
}

/// Everything reported about one server endpoint.
#[derive(Clone, Debug, Serialize)]
pub struct ServerReport {
    /// The server endpoint.
    pub server: SocketAddr,
    /// Connections seen.
    pub connections: u64,
    /// HTTP requests sent to it.
    pub requests: u64,
    /// Idle races on its connections.
    pub idle_races: u64,
    /// Estimated idle timeout, if it closed idle connections.
    pub idle_timeout: Option<Estimate>,
    /// `Keep-Alive: timeout` values it announced, in seconds.
    pub announced_keep_alive_timeout_s: Vec<u32>,
    /// What clients of this server should change.
    pub recommendation: Option<String>,
}

/// Builds the report for one server.
pub fn server_report(server: SocketAddr, t: &ServerTally) -> ServerReport {
    let estimate = t.estimate();
    let recommendation = recommend(server, t, estimate.as_ref());
    let mut announced = t.announced.clone();
    announced.sort_unstable();
    announced.dedup();
    ServerReport {
        server,
        connections: t.connections,
        requests: t.requests,
        idle_races: t.races,
        idle_timeout: estimate,
        announced_keep_alive_timeout_s: announced,
        recommendation,
    }
}

/// Formats milliseconds the way people say them: `300 ms`, `4.90 s`, `75.0 s`,
/// `6 min 5 s` (see [`crate::report::words::duration_ms`]).
pub fn human_ms(ms: f64) -> String {
    crate::report::words::duration_ms(ms)
}

fn recommend(server: SocketAddr, t: &ServerTally, e: Option<&Estimate>) -> Option<String> {
    let announced = t
        .announced
        .iter()
        .min()
        .map(|s| format!(" (it announces Keep-Alive: timeout={s})"));
    let tentative = e
        .and_then(Estimate::tentative_note)
        .map(|n| format!("Tentative ({n}): "))
        .unwrap_or_default();
    match (t.races, e) {
        (0, None) => None,
        (0, Some(e)) => Some(format!(
            "{tentative}{server} closes idle keep-alive connections after ~{}{}; clients that reuse connections should use an idle timeout below that.",
            human_ms(e.median_ms),
            announced.unwrap_or_default()
        )),
        (n, e) => {
            let timeout = e.map(|e| e.min_ms.min(e.median_ms));
            let limit = match timeout {
                Some(ms) => format!("an idle timeout below ~{} (e.g. {})", human_ms(ms), human_ms(ms * 0.8)),
                None => "an idle timeout shorter than the server's".to_string(),
            };
            let mut notes = String::new();
            if t.races_not_idempotent > 0 {
                notes.push_str(&format!(
                    " {} not idempotent and must not be retried blindly.",
                    of_failed(t.races_not_idempotent, n, "was", "were")
                ));
            }
            if t.races_retry_unknown > 0 {
                notes.push_str(&format!(
                    " {} over TLS, where the method cannot be seen: retry {} only if the application knows {} idempotent.",
                    of_failed(t.races_retry_unknown, n, "went", "went"),
                    words::agree(t.races_retry_unknown, "it", "them"),
                    words::agree(t.races_retry_unknown, "it is", "they are")
                ));
            }
            Some(format!(
                "{tentative}Clients reusing connections to {server} must use {limit}{}, or retry idempotent requests only.{notes}",
                announced.unwrap_or_default()
            ))
        }
    }
}

/// `k` of the `n` failed requests, as the subject of a sentence with its verb (`was`/`were`):
/// `The failed request was`, `All 3 failed requests were`, `2 of the 9 failed requests were`,
/// `1 of the 9 failed requests was`.
fn of_failed(k: u64, n: u64, one: &str, many: &str) -> String {
    if n == 1 && k == 1 {
        format!("The failed request {one}")
    } else if k == n {
        format!("All {} failed requests {many}", words::count(n))
    } else {
        format!(
            "{} of the {} failed requests {}",
            words::count(k),
            words::count(n),
            words::agree(k, one, many)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn how_many_of_the_failed_requests() {
        assert_eq!(of_failed(1, 1, "was", "were"), "The failed request was");
        assert_eq!(of_failed(3, 3, "was", "were"), "All 3 failed requests were");
        assert_eq!(
            of_failed(1, 9, "was", "were"),
            "1 of the 9 failed requests was"
        );
        assert_eq!(
            of_failed(5, 9, "was", "were"),
            "5 of the 9 failed requests were"
        );
        assert_eq!(
            of_failed(1_000, 1_200, "went", "went"),
            "1,000 of the 1,200 failed requests went"
        );
    }

    #[test]
    fn median_and_spread() {
        let mut t = ServerTally::default();
        for x in [301.0, 300.5, 302.0, 299.9, 350.0] {
            t.observe(x, x as u64);
        }
        let e = t.estimate().unwrap();
        assert_eq!(e.median_ms, 301.0);
        assert_eq!((e.min_ms, e.max_ms, e.observations), (299.9, 350.0, 5));
        assert!(e.matches(305.0));
        assert!(!e.matches(5000.0));
    }

    #[test]
    fn recommendation_names_the_timeout_and_unsafe_retries() {
        let mut t = ServerTally {
            races: 3,
            races_not_idempotent: 3,
            ..Default::default()
        };
        t.observe(300.0, 1);
        let r = server_report("127.0.0.1:9000".parse().unwrap(), &t)
            .recommendation
            .unwrap();
        assert!(r.contains("below ~300 ms"), "{r}");
        assert!(r.contains("must not be retried blindly"), "{r}");
    }
}
