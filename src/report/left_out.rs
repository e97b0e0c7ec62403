//! Inputs left out of a report: files given on the command line that could not be used at
//! all (missing, empty, not a capture), which the report names beside its verdict so that
//! nobody takes it for a verdict on every file.

use crate::pipeline::Analysis;
use crate::source::{FileStats, UNREADABLE};

/// The paths of the inputs that could not be read at all, in input order.
pub fn left_out(a: &Analysis) -> Vec<&str> {
    paths(&a.inputs)
}

fn paths(inputs: &[FileStats]) -> Vec<&str> {
    inputs
        .iter()
        .filter(|i| i.format == UNREADABLE)
        .map(|i| i.path.as_str())
        .collect()
}

/// One sentence naming the inputs left out and why, unescaped (each report escapes it as
/// it escapes the rest); `None` when every input was read.
pub fn sentence(a: &Analysis) -> Option<String> {
    sentence_of(&a.inputs, &a.input_errors)
}

fn sentence_of(inputs: &[FileStats], errors: &[String]) -> Option<String> {
    let paths = paths(inputs);
    if paths.is_empty() {
        return None;
    }
    let each: Vec<String> = paths
        .iter()
        .map(|p| {
            let prefix = format!("{p}: ");
            match errors.iter().find_map(|e| e.strip_prefix(&prefix)) {
                Some(why) => format!("{p} ({why})"),
                None => p.to_string(),
            }
        })
        .collect();
    let (was, it) = if paths.len() == 1 {
        ("was", "it")
    } else {
        ("were", "they")
    };
    Some(format!(
        "{} of the {} inputs {was} left out, as {it} could not be read: {}; the verdict is on the others alone.",
        paths.len(),
        inputs.len(),
        each.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_file_left_out_with_its_reason() {
        assert_eq!(sentence_of(&[], &[]), None);
        let stats = |path: &str, format: &str| FileStats {
            path: path.into(),
            format: format.into(),
            ..FileStats::default()
        };
        let mut inputs = vec![stats("a.pcap", "pcap"), stats("b.pcap", UNREADABLE)];
        let errors = vec!["b.pcap: cannot read: No such file or directory".to_string()];
        assert_eq!(
            sentence_of(&inputs, &errors).unwrap(),
            "1 of the 2 inputs was left out, as it could not be read: b.pcap (cannot read: No such file or directory); the verdict is on the others alone."
        );
        inputs.push(stats("c.pcap", UNREADABLE));
        assert_eq!(paths(&inputs), vec!["b.pcap", "c.pcap"]);
        assert!(sentence_of(&inputs, &errors).unwrap().starts_with(
            "2 of the 3 inputs were left out, as they could not be read: b.pcap (cannot read"
        ));
    }
}
