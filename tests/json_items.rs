//! The JSON and NDJSON reports write connection records and findings by hand
//! (`report::json_items`), for speed; the derived `Serialize` of `ConnectionRecord` and
//! `Finding` stays the definition of the schema. Every record and finding of every capture
//! in the fixtures and the corpora must come out byte for byte the same both ways.

use resetscope::diagnose::{ConnectionRecord, Finding};
use resetscope::escape::json_to_string;
use resetscope::pipeline::{analyze_files, Options, Sink};
use resetscope::report::json_items;
use std::path::{Path, PathBuf};

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let p = entry.unwrap().path();
        let name = p.to_string_lossy();
        if p.is_dir() {
            captures(&p, out);
        } else if [".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.zst"]
            .iter()
            .any(|ext| name.ends_with(ext))
        {
            out.push(p);
        }
    }
}

/// Compares the two writings of everything the analysis hands on.
#[derive(Default)]
struct Compare {
    records: usize,
    findings: usize,
    /// Of the records: with requests, with a first close, with a kernel reason, over TLS.
    requests: usize,
    first_close: usize,
    tls: usize,
    mismatches: Vec<String>,
}

impl Compare {
    fn check(&mut self, what: &str, fast: Vec<u8>, serde: String) {
        let fast = String::from_utf8(fast).expect("UTF-8");
        if fast != serde && self.mismatches.len() < 5 {
            self.mismatches
                .push(format!("{what}:\n by hand: {fast}\n serde:   {serde}"));
        }
    }
}

impl Sink for Compare {
    fn record(&mut self, r: &ConnectionRecord) {
        self.records += 1;
        self.requests += !r.requests.is_empty() as usize;
        self.first_close += r.first_close.is_some() as usize;
        self.tls += r.tls.is_some() as usize;
        let mut fast = Vec::new();
        json_items::record(&mut fast, r);
        self.check("record", fast, json_to_string(r).unwrap());
    }

    fn finding(&mut self, f: &Finding) {
        self.findings += 1;
        let mut fast = Vec::new();
        json_items::finding(&mut fast, f);
        self.check("finding", fast, json_to_string(f).unwrap());
    }
}

#[test]
fn records_and_findings_are_written_as_serde_writes_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["fixtures", "tests/corpus", "tests/regressions"] {
        captures(&root.join(dir), &mut files);
    }
    files.sort();
    assert!(files.len() > 50, "only {} captures found", files.len());
    let mut all = Compare::default();
    for file in &files {
        let mut c = Compare::default();
        analyze_files(std::slice::from_ref(file), &Options::default(), &mut c);
        assert!(
            c.mismatches.is_empty(),
            "{}: {}",
            file.display(),
            c.mismatches.join("\n")
        );
        all.records += c.records;
        all.findings += c.findings;
        all.requests += c.requests;
        all.first_close += c.first_close;
        all.tls += c.tls;
    }
    eprintln!(
        "{} captures: {} records ({} with requests, {} with a close, {} TLS), {} findings",
        files.len(),
        all.records,
        all.requests,
        all.first_close,
        all.tls,
        all.findings
    );
    // The comparison saw a good share of every kind of record.
    assert!(all.records > 1_000, "{} records", all.records);
    assert!(all.findings > 500, "{} findings", all.findings);
    assert!(all.requests > 500, "{} records with requests", all.requests);
    assert!(
        all.first_close > 800,
        "{} records with a close",
        all.first_close
    );
    assert!(all.tls > 100, "{} TLS records", all.tls);
}
