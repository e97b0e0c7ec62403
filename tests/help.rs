//! `--help`, exit statuses, `completions SHELL` and `man`, as a user meets them.

mod common;

use common::*;
use std::process::Command;

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn help_lists_the_exit_statuses_and_three_examples() {
    for args in [&["--help"][..], &["analyze", "--help"][..]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let help = text(&out);
        for want in [
            "Examples:",
            "resetscope analyze capture.pcap",
            "-- 'tcp port 8080 and host 10.0.0.5'",
            "sudo resetscope live -i any",
            "Exit status:",
            "0  the capture was analysed",
            "1  an error",
            "2  a usage error",
            "3  --fail-on-findings",
        ] {
            assert!(help.contains(want), "{args:?}: {want:?} missing:\n{help}");
        }
    }
    let live = text(&run(&["live", "--help"]));
    assert!(live.contains("Exit status:") && live.contains("3  --fail-on-findings"));
    // Every option the examples use exists: each example parses (it fails on its missing
    // file, with status 1, not on its options, with status 2).
    let out = run(&[
        "analyze",
        "--since",
        "14:00",
        "--until",
        "14:10",
        "--format",
        "markdown",
        "-o",
        "/dev/null",
        "capture.pcap.gz",
        "--",
        "tcp port 8080 and host 10.0.0.5",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["analyze"][..],
        &["analyze", "--no-such-option", "x.pcap"][..],
        &["analyze", "--format", "yaml", "x.pcap"][..],
        &["analyze", "--threads", "0", "x.pcap"][..],
        &["completions", "tcsh"][..],
        &[][..],
    ] {
        assert_eq!(run(args).status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn completions_load_in_their_shells() {
    let bash = run(&["completions", "bash"]);
    assert!(bash.status.success());
    let script = scratch("completions").join("resetscope.bash");
    std::fs::write(&script, &bash.stdout).unwrap();
    // bash takes the script and registers the completion; the words it completes after
    // `analyze --format ` are the formats.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; complete -p resetscope; COMP_WORDS=(resetscope analyze --format ''); COMP_CWORD=3; _resetscope resetscope '' --format; echo \"${{COMPREPLY[*]}}\"",
            script.display()
        ))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("-F _resetscope resetscope"), "{said}");
    assert!(
        said.contains("terminal json ndjson markdown html"),
        "{said}"
    );
    for (shell, marker) in [
        ("zsh", "#compdef resetscope"),
        ("fish", "complete -c resetscope"),
        ("elvish", "resetscope"),
        ("powershell", "resetscope"),
    ] {
        let out = run(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        assert!(text(&out).contains(marker), "{shell}");
    }
    // A closed pipe is not an error.
    let mut child = Command::new(env!("CARGO_BIN_EXE_resetscope"))
        .args(["completions", "zsh"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_man_page_is_made_from_the_same_definitions() {
    let out = run(&["man"]);
    assert!(out.status.success());
    let roff = text(&out);
    assert!(roff.contains(".TH resetscope 1"), "{roff}");
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH \"RESETSCOPE ANALYZE\"",
        ".SH \"RESETSCOPE LIVE\"",
    ] {
        assert!(roff.contains(section), "{section} missing");
    }
    // Rendered by man(1), where it is installed: every analyze option is there.
    let page = scratch("man").join("resetscope.1");
    std::fs::write(&page, &out.stdout).unwrap();
    let Ok(rendered) = Command::new("man")
        .args(["-l", page.to_str().unwrap()])
        .env("MANWIDTH", "100")
        .output()
    else {
        eprintln!("help: man is not installed: the page was not rendered");
        return;
    };
    // Bold and underline as man(1) writes them to a pipe: a character, a backspace, and
    // the character again (or an underscore, backspace, character).
    let mut page = String::new();
    for c in String::from_utf8_lossy(&rendered.stdout).chars() {
        if c == '\u{8}' {
            page.pop();
        } else {
            page.push(c);
        }
    }
    for option in [
        "--connection",
        "--since",
        "--until",
        "--extract",
        "--memory",
        "--fail-on-findings",
        "Exit status:",
    ] {
        assert!(
            page.contains(option),
            "{option} missing from the man page:\n{page}"
        );
    }
}
