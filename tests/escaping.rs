//! Escaping is one policy, checked by property: for arbitrary strings (biased towards the
//! dangerous code points, Markdown and HTML active characters, and what makes URLs and
//! e-mail addresses), every format shows every control (Cc), format (Cf, which holds the
//! bidi controls), line separator (Zl) and paragraph separator (Zp) character escaped;
//! Markdown parses, in each place the reports put text, to that text and nothing else (no
//! link, image, HTML, code, emphasis, list or heading); HTML has no markup from the input;
//! JSON reads back to exactly the input with none of those characters raw.
//!
//! What is dangerous is taken here from the Unicode character database
//! (`unicode-properties`), not from `resetscope::escape::is_dangerous`, which the first test
//! checks against it code point by code point.

mod common;

use common::gfm;
use proptest::prelude::*;
use pulldown_cmark::{Event, Parser, Tag};
use resetscope::escape;
use std::sync::LazyLock;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// The Unicode bidi controls (PropList.txt, Bidi_Control): all Cf, listed on their own so
/// that the policy's "every bidi control" does not rest on the category alone.
const BIDI_CONTROLS: &[char] = &[
    '\u{061c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}',
    '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
];

/// Dangerous by the Unicode character database: Cc, Cf, Zl or Zp (or a bidi control).
fn dangerous(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    ) || BIDI_CONTROLS.contains(&c)
}

static DANGEROUS: LazyLock<Vec<char>> = LazyLock::new(|| {
    (0..=0x10ffff)
        .filter_map(char::from_u32)
        .filter(|&c| dangerous(c))
        .collect()
});

#[test]
fn the_escaper_table_is_unicodes_cc_cf_zl_zp() {
    let mut differ = Vec::new();
    for c in (0..=0x10ffff).filter_map(char::from_u32) {
        if escape::is_dangerous(c) != dangerous(c) {
            differ.push(format!("U+{:04X} {:?}", c as u32, c.general_category()));
        }
    }
    assert!(
        differ.is_empty(),
        "escape::is_dangerous differs from Unicode {:?}: {differ:?}",
        unicode_properties::UNICODE_VERSION
    );
    let count = |cat: GeneralCategory| {
        DANGEROUS
            .iter()
            .filter(|c| c.general_category() == cat)
            .count()
    };
    // Unicode 16 (and the database's own version): 65 Cc, 170 Cf, 1 Zl, 1 Zp.
    assert_eq!(count(GeneralCategory::Control), 65);
    assert!(count(GeneralCategory::Format) >= 170);
    assert_eq!(DANGEROUS.len(), 65 + count(GeneralCategory::Format) + 2);
    for c in BIDI_CONTROLS {
        assert_eq!(c.general_category(), GeneralCategory::Format);
    }
}

/// A second, independent database: Python's `unicodedata` (an older Unicode, so only "every
/// character it calls Cc, Cf, Zl or Zp is escaped").
#[test]
fn the_escaper_escapes_what_python_calls_cc_cf_zl_zp() {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import unicodedata as u\nprint(u.unidata_version)\nprint(' '.join('%x' % c for c in range(0x110000) if u.category(chr(c)) in ('Cc', 'Cf', 'Zl', 'Zp')))",
        ])
        .output();
    let Some(out) = out.ok().filter(|o| o.status.success()) else {
        assert!(std::env::var_os("CI").is_none(), "CI has python3");
        eprintln!("python3 not found: not cross-checked");
        return;
    };
    let text = String::from_utf8(out.stdout).unwrap();
    let (version, list) = text.split_once('\n').unwrap();
    let listed: Vec<char> = list
        .split_whitespace()
        .map(|h| char::from_u32(u32::from_str_radix(h, 16).unwrap()).unwrap())
        .collect();
    assert!(listed.len() > 220, "Unicode {version}: {}", listed.len());
    for c in listed {
        assert!(
            escape::is_dangerous(c),
            "Unicode {version}: U+{:04X}",
            c as u32
        );
    }
}

/// Text that makes Markdown, HTML, links and terminal sequences.
const TOKENS: &[&str] = &[
    "http://",
    "https://",
    "HTTP://",
    "ftp://",
    "www.",
    "WWW.",
    "wWw.",
    "@",
    "mailto:",
    "xmpp:",
    "javascript:",
    "evil.example",
    "user@evil.example",
    "http://evil.example/x",
    "<http://evil.example/>",
    "<user@evil.example>",
    "<",
    ">",
    "</",
    "<img src=x onerror=alert(1)>",
    "<script>",
    "<!--",
    "&",
    "&amp;",
    "&#32;",
    "&#x3c;",
    "&lt;",
    "[x](http://evil.example)",
    "![i](x)",
    "[^1]",
    "[x]: http://evil.example",
    "[ ]",
    "[x]",
    "`",
    "```",
    "~~~",
    "~~",
    "~",
    "*",
    "**",
    "_",
    "__",
    "|",
    "\\",
    "\\\\",
    "#",
    "# ",
    "- ",
    "+ ",
    "* ",
    "1. ",
    "1) ",
    "12. ",
    "> ",
    "---",
    "===",
    "***",
    "    ",
    "\t",
    " ",
    "  ",
    "$",
    "$$",
    "$`",
    ":",
    ".",
    "!",
    "(",
    ")",
    "\u{a0}",
    "\u{3000}",
    "é",
    "日本",
    "😀",
    "\u{10ffff}",
    "\u{1b}[2J",
    "\u{9b}31m",
    "\r\n",
    "\u{202e}gnp.exe",
    "/adm\u{200b}in",
    ":smile:",
    "\\x1b",
    "\\u{202e}",
];

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(DANGEROUS.clone()).prop_map(String::from),
        5 => prop::sample::select(TOKENS).prop_map(String::from),
        2 => "[a-zA-Z0-9/.-]{1,6}",
        1 => any::<char>().prop_map(String::from),
    ]
}

fn hostile() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..24).prop_map(|v| v.concat())
}

const CASES: u32 = 3000;

/// The terminal escape of `s`, written out from the Unicode database: what every format
/// must show. A captured backslash is doubled, so that an escape cannot be forged.
fn shown(s: &str) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n >= escape::MAX_CHARS {
            out.push('…');
            break;
        }
        match c as u32 {
            0x5c => out.push_str("\\\\"),
            u if dangerous(c) && u < 0x100 => out.push_str(&format!("\\x{u:02x}")),
            u if dangerous(c) => out.push_str(&format!("\\u{{{u:x}}}")),
            _ => out.push(c),
        }
    }
    out
}

fn no_dangerous(format: &str, out: &str) -> Result<(), TestCaseError> {
    if let Some(c) = out.chars().find(|&c| dangerous(c)) {
        return Err(TestCaseError::fail(format!(
            "{format}: U+{:04X} raw in {out:?}",
            c as u32
        )));
    }
    Ok(())
}

/// GFM's extended autolinks, which pulldown-cmark does not implement: as in GitHub's
/// cmark-gfm, they are recognised in the raw text between escapes (a `\:` or `\@` ends one
/// text run and starts the next), so a run with a letter before `:/` (`http://`), `www.` or
/// a local part before an `@` (`me@host`, `mailto:me@host`) would be a link.
fn extended_autolink(run: &str) -> Option<&'static str> {
    if run.to_ascii_lowercase().contains("www.") {
        return Some("www.");
    }
    let b = run.as_bytes();
    (1..b.len()).find_map(|i| match b[i] {
        b':' if b[i - 1].is_ascii_alphabetic() && b.get(i + 1) == Some(&b'/') => Some("scheme:/"),
        b'@' if b[i - 1].is_ascii_alphanumeric() || b"._+-".contains(&b[i - 1]) => Some("e-mail"),
        _ => None,
    })
}

/// Parses `doc`: only the block structure `allowed` lets through, no inline markup at all,
/// no extended autolink; returns the text.
fn md_text(doc: &str, allowed: fn(&Tag<'_>) -> bool) -> Result<String, TestCaseError> {
    let mut text = String::new();
    for event in Parser::new_ext(doc, gfm()) {
        match event {
            Event::Text(t) => {
                if let Some(kind) = extended_autolink(&t) {
                    return Err(TestCaseError::fail(format!(
                        "{kind} autolink in {t:?} of {doc:?}"
                    )));
                }
                text.push_str(&t);
            }
            Event::Start(tag) if allowed(&tag) => {}
            Event::End(_) => {}
            other => return Err(TestCaseError::fail(format!("{other:?} in {doc:?}"))),
        }
    }
    Ok(text)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn terminal_shows_every_dangerous_character_escaped(s in hostile()) {
        let out = escape::terminal(&s);
        no_dangerous("terminal", &out)?;
        prop_assert_eq!(&out, &shown(&s));
        let all = escape::terminal_max(&s, usize::MAX);
        no_dangerous("terminal", &all)?;
        no_dangerous("terminal_lines", &escape::terminal_lines(&s).replace('\n', ""))?;
    }

    #[test]
    fn markdown_is_text_wherever_the_reports_put_it(s in hostile()) {
        let out = escape::markdown(&s);
        no_dangerous("markdown", &out)?;
        let want = shown(&s);
        // A paragraph of its own (a title at the start of a line, a sentence).
        let got = md_text(&out, |t| matches!(t, Tag::Paragraph))?;
        prop_assert_eq!(&got, &want);
        // A list item (the caveats, recommendations).
        let got = md_text(&format!("- {out}\n"), |t| matches!(t, Tag::List(None) | Tag::Item | Tag::Paragraph))?;
        prop_assert_eq!(&got, &want);
        // Table cells, alone and between other text (the findings table).
        let doc = format!("| a | b |\n|---|---|\n| {out} | GET {out} (#4) |\n");
        let mut cells = 0;
        for e in Parser::new_ext(&doc, gfm()) {
            if matches!(e, Event::Start(Tag::TableCell)) { cells += 1; }
        }
        prop_assert_eq!(cells, 4, "{:?}", doc);
        let got = md_text(&doc, |t| matches!(t, Tag::Table(_) | Tag::TableHead | Tag::TableRow | Tag::TableCell))?;
        prop_assert_eq!(got, format!("ab{want}GET {want} (#4)"));
        // A heading, and the bold verdict in a block quote.
        let got = md_text(&format!("# report - {out}\n"), |t| matches!(t, Tag::Heading { .. }))?;
        if want.is_empty() {
            prop_assert_eq!(got, "report -");
        } else {
            prop_assert_eq!(got, format!("report - {want}"));
        }
        let doc = format!("> **verdict - {out}.**\n");
        let got = md_text(&doc, |t| matches!(t, Tag::BlockQuote(None) | Tag::Paragraph | Tag::Strong))?;
        prop_assert_eq!(got, format!("verdict - {want}."));
    }

    #[test]
    fn html_has_no_markup_from_the_input(s in hostile()) {
        let out = escape::html(&s);
        no_dangerous("html", &out)?;
        prop_assert!(!out.contains(['<', '>', '"', '\'']), "{:?}", out);
        let entities = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"];
        for (i, _) in out.match_indices('&') {
            prop_assert!(entities.iter().any(|e| out[i..].starts_with(e)), "raw & in {:?}", out);
        }
        let back = out
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&");
        prop_assert_eq!(back, shown(&s));
    }

    #[test]
    fn json_reads_back_exactly_with_nothing_dangerous_raw(s in hostile()) {
        let out = escape::json_to_string(&s).unwrap();
        no_dangerous("json", &out)?;
        prop_assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s.clone());
        // What is not dangerous stays as it is: é, CJK, emoji are UTF-8, not \u escapes.
        for c in s.chars().filter(|&c| !c.is_ascii() && !dangerous(c)) {
            prop_assert!(out.contains(c), "{:?} escaped in {:?}", c, out);
        }
        // Keys too, and inside structures.
        let doc = serde_json::json!({ s.clone(): [s.clone(), { "k": s.clone() }] });
        let out = escape::json_to_string(&doc).unwrap();
        no_dangerous("json", &out)?;
        prop_assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap(), doc);
        let mut bytes = Vec::new();
        escape::json_to_writer(&mut bytes, &s).unwrap();
        prop_assert_eq!(bytes, escape::json_to_string(&s).unwrap().into_bytes());
    }
}

#[test]
fn the_issues_examples() {
    // Zero-width and separator characters cannot make `/adm?in` read as `/admin`.
    for c in [
        '\u{200b}', '\u{200d}', '\u{2060}', '\u{61c}', '\u{2028}', '\u{2029}',
    ] {
        let s = format!("/adm{c}in");
        let code = format!("\\u{{{:x}}}", c as u32);
        assert_eq!(escape::terminal(&s), format!("/adm{code}in"));
        assert_eq!(escape::markdown(&s), format!("/adm\\{code}in"));
        assert_eq!(escape::html(&s), format!("/adm{code}in"));
        assert_eq!(
            escape::json_to_string(&s).unwrap(),
            format!("\"/adm\\u{:04x}in\"", c as u32)
        );
    }
    // A captured backslash is doubled: text a client sent cannot pass for an escape the
    // report wrote (`\x1b` sent as four characters against ESC).
    assert_eq!(escape::terminal("/a\\x1b"), "/a\\\\x1b");
    assert_eq!(escape::terminal("/a\u{1b}"), "/a\\x1b");
    assert_eq!(escape::html("/a\\x1b"), "/a\\\\x1b");
    assert_eq!(escape::markdown("/a\\x1b"), "/a\\\\\\\\x1b");
    assert_eq!(escape::json_to_string("/a\\x1b").unwrap(), "\"/a\\\\x1b\"");
    // C1 and bidi controls in JSON, and a code point above the BMP (a surrogate pair).
    assert_eq!(
        escape::json_to_string("\u{9b}31m").unwrap(),
        r#""\u009b31m""#
    );
    assert_eq!(
        escape::json_to_string("a\u{202e}b\u{7f}").unwrap(),
        r#""a\u202eb\u007f""#
    );
    assert_eq!(
        escape::json_to_string("\u{e0041}").unwrap(),
        r#""\udb40\udc41""#
    );
    assert_eq!(escape::json_to_string("é日本😀").unwrap(), "\"é日本😀\"");
    // No URL becomes a link.
    assert_eq!(
        escape::markdown("http://evil.example/x"),
        r"http\://evil.example/x"
    );
    assert_eq!(
        escape::markdown("www.evil.example me@evil.example <http://x>"),
        r"www\.evil.example me\@evil.example \<http\://x\>"
    );
    // Nothing at the start of a line makes a block.
    assert_eq!(escape::markdown("1. x"), r"1\. x");
    assert_eq!(escape::markdown("1.pcap"), "1.pcap");
    assert_eq!(escape::markdown("- x"), r"\- x");
    assert_eq!(
        escape::markdown("    code "),
        "&#32;&#32;&#32;&#32;code&#32;"
    );
}
