//! Captured bytes are hostile: every string that came off the wire (request targets,
//! methods, server names) and every capture file name goes through one of these before it
//! is printed. What is dangerous is decided here, by one predicate, [`is_dangerous`]: the
//! control characters (Unicode Cc: C0, DEL, C1), the format characters (Cf: the
//! bidirectional controls, U+061C, the zero-width characters, the soft hyphen, ...) and the
//! line and paragraph separators (Zl, Zp). Every format shows them escaped:
//!
//! - [`terminal`]: dangerous characters become visible escapes (`\x1b`, `\u{202e}`,
//!   `\u{200b}`), so a capture cannot move the cursor, change colours, reorder text or hide
//!   characters (`/adm\u{200b}in` cannot pass for `/admin`); a captured backslash is
//!   doubled (`\\`), so that `\x1b` in a report is always an escape the report wrote, never
//!   the four characters a client sent; long strings are cut with `…`.
//! - [`markdown`]: the terminal escape, then every character that could make Markdown (GFM
//!   as GitHub renders it) of the text is backslash-escaped, so that text cannot break a table
//!   (`|`), open code (`` ` ``), or make emphasis, HTML, a heading, a list, math, or a link:
//!   not even GFM's extended autolinks (`http://…`, `www.…`, `name@host`), which need a `:/`
//!   after a letter, a `.` after `www` or an `@`, all escaped.
//! - [`html`]: the terminal escape, then `& < > " '` become entities (the page makes no link
//!   of text).
//! - [`JsonFormatter`] ([`json_to_writer`], [`json_to_string`]): JSON keeps the exact text, but
//!   writes the dangerous characters as `\u` escapes (`"\u009b"`, `"\u202e"`, `"\u2028"`),
//!   which serde_json alone would write raw (it escapes only C0, `"` and `\`): a report shown
//!   with `cat` or `less` is as inert as the terminal report, and still valid JSON that reads
//!   back to the same strings.

use std::fmt::Write;
use std::io;

/// Longest captured string printed in full (characters).
pub const MAX_CHARS: usize = 160;

/// Unicode's format characters (general category Cf, Unicode 16.0; `tests/escaping.rs`
/// checks the table against the Unicode character database, code point by code point):
/// invisible, and some (the bidi controls U+061C, U+200E/F, U+202A–202E, U+2066–2069)
/// reorder text, so that `/adm\u{200b}in` would print as `/admin`. Sorted, for the binary
/// search.
const FORMAT: &[(char, char)] = &[
    ('\u{00ad}', '\u{00ad}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061c}', '\u{061c}'),
    ('\u{06dd}', '\u{06dd}'),
    ('\u{070f}', '\u{070f}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08e2}', '\u{08e2}'),
    ('\u{180e}', '\u{180e}'),
    ('\u{200b}', '\u{200f}'),
    ('\u{202a}', '\u{202e}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206f}'),
    ('\u{feff}', '\u{feff}'),
    ('\u{fff9}', '\u{fffb}'),
    ('\u{110bd}', '\u{110bd}'),
    ('\u{110cd}', '\u{110cd}'),
    ('\u{13430}', '\u{1343f}'),
    ('\u{1bca0}', '\u{1bca3}'),
    ('\u{1d173}', '\u{1d17a}'),
    ('\u{e0001}', '\u{e0001}'),
    ('\u{e0020}', '\u{e007f}'),
];

/// Whether `c` may not reach a report raw: a control (Cc), format (Cf, which holds every
/// bidi control), line separator (Zl) or paragraph separator (Zp) character. The one
/// decision every format follows.
pub fn is_dangerous(c: char) -> bool {
    if c < '\u{ad}' {
        return c.is_control();
    }
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}')
        || FORMAT
            .binary_search_by(|&(lo, hi)| {
                if hi < c {
                    std::cmp::Ordering::Less
                } else if lo > c {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .is_ok()
}

/// Makes captured text safe for a terminal, cut to `max` characters.
pub fn terminal_max(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max.saturating_add(8)));
    for (n, c) in s.chars().enumerate() {
        if n >= max {
            out.push('…');
            break;
        }
        if c == '\\' {
            out.push_str("\\\\");
        } else if is_dangerous(c) {
            if (c as u32) < 0x100 {
                let _ = write!(out, "\\x{:02x}", c as u32);
            } else {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Makes captured text safe for a terminal, cut to [`MAX_CHARS`].
pub fn terminal(s: &str) -> String {
    terminal_max(s, MAX_CHARS)
}

/// A message of several lines (an error that quotes file names) made safe for a terminal:
/// each line escaped, not cut; the line breaks kept.
pub fn terminal_lines(s: &str) -> String {
    s.split('\n')
        .map(|line| terminal_max(line, usize::MAX))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Makes captured text safe inside Markdown (including table cells), cut to [`MAX_CHARS`].
pub fn markdown(s: &str) -> String {
    markdown_max(s, MAX_CHARS)
}

/// Makes text safe inside Markdown, cut to `max` characters (for sentences that quote
/// captured text). The result is inert anywhere in a line (at its start too, in a table
/// cell, a list item or a heading), and GFM renders it as the text [`terminal_max`] gives.
pub fn markdown_max(s: &str, max: usize) -> String {
    let t: Vec<char> = terminal_max(s, max).chars().collect();
    let mut out = String::with_capacity(t.len() + 8);
    let leading = t.iter().take_while(|&&c| c == ' ').count();
    let trailing = t.len() - t.iter().rev().take_while(|&&c| c == ' ').count();
    for (i, &c) in t.iter().enumerate() {
        let escape = match c {
            // What starts code, emphasis, links and images, HTML and autolinks, entities,
            // headings, block quotes, strike-through and fences, math, e-mail autolinks, or
            // ends a table cell.
            '\\' | '`' | '*' | '[' | ']' | '<' | '>' | '&' | '|' | '$' | '@' => true,
            // Only where they could start or end emphasis or strike-through, so that our
            // own `~301 ms` and `idle_race` keep no needless backslash: a `_` not between
            // two letters or digits, and a `~` that could close a strike-through
            // (CommonMark §6.2, GFM §6.5; with every closer escaped, openers are text). At
            // the start, the neighbour in the report is not known: escaped.
            '_' => {
                !(i > 0
                    && t[i - 1].is_alphanumeric()
                    && t.get(i + 1).is_some_and(|n| n.is_alphanumeric()))
            }
            '~' => {
                // Text only as an opener that nothing can close: after a space or `(`,
                // before a letter or digit (`~301 ms`, `(~5 s)`).
                !(i > 0
                    && (t[i - 1].is_whitespace() || t[i - 1] == '(')
                    && t.get(i + 1).is_some_and(|n| n.is_alphanumeric()))
            }
            // A heading at the start, or the closing sequence of one at the end.
            '#' => i == 0 || t[i..].iter().all(|&c| c == '#'),
            // The end of a URL scheme (`http:/`): no extended autolink (which needs `://`;
            // `mailto:` and `xmpp:` need an `@` too).
            ':' => i > 0 && t[i - 1].is_ascii_alphabetic() && t.get(i + 1) == Some(&'/'),
            // `www.`: no extended www autolink.
            '.' if i >= 3 && t[i - 3..i].iter().all(|c| c.eq_ignore_ascii_case(&'w')) => true,
            // `1. ` or `1) ` at the start: no ordered list.
            '.' | ')' => {
                (1..=9).contains(&i)
                    && t[..i].iter().all(char::is_ascii_digit)
                    && t.get(i + 1).is_none_or(|&n| n == ' ')
            }
            // A list item, a thematic break or a setext underline at the start.
            '-' | '+' | '=' => i == 0,
            // Spaces that would be trimmed, or indent the line into a code block.
            ' ' if i < leading || i >= trailing => {
                out.push_str("&#32;");
                continue;
            }
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Makes captured text safe inside HTML text or a quoted attribute, cut to [`MAX_CHARS`].
pub fn html(s: &str) -> String {
    html_max(s, MAX_CHARS)
}

/// Makes text safe inside HTML, cut to `max` characters (for sentences that quote captured
/// text).
pub fn html_max(s: &str, max: usize) -> String {
    let t = terminal_max(s, max);
    let mut out = String::with_capacity(t.len() + 8);
    for c in t.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// serde_json's compact formatter, except that strings write every [`is_dangerous`]
/// character as a `\u` escape (UTF-16, so `\ud834\udd73` above the BMP). serde_json already
/// escapes C0, `"` and `\`; DEL, C1, the format characters and the separators are left to
/// this. Everything else (`é`, CJK) stays UTF-8.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonFormatter;

impl serde_json::ser::Formatter for JsonFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Printable ASCII, the common case, is written as it is.
        if fragment.bytes().all(|b| b < 0x7f) {
            return writer.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if is_dangerous(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{u:04x}")?;
                }
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Serializes `value` as compact JSON with [`JsonFormatter`]: what every JSON resetscope
/// writes goes through.
pub fn json_to_writer<W: io::Write, T: serde::Serialize + ?Sized>(
    writer: W,
    value: &T,
) -> serde_json::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(writer, JsonFormatter);
    value.serialize(&mut ser)
}

/// Serializes `value` as a compact JSON string with [`JsonFormatter`].
pub fn json_to_string<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(128);
    json_to_writer(&mut out, value)?;
    // The serializer writes UTF-8 only (str fragments and ASCII escapes).
    Ok(String::from_utf8(out).expect("serde_json writes UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_neutralises_escape_sequences() {
        assert_eq!(
            terminal("/a\x1b[2J\r\n\u{202e}b"),
            "/a\\x1b[2J\\x0d\\x0a\\u{202e}b"
        );
        assert_eq!(terminal("\u{9b}31m"), "\\x9b31m");
    }

    #[test]
    fn every_control_format_and_separator_character_is_escaped() {
        let mut all: Vec<char> = (0u32..0x20)
            .chain(0x7f..0xa0)
            .filter_map(char::from_u32)
            .collect();
        all.extend(['\u{2028}', '\u{2029}']);
        for &(lo, hi) in FORMAT {
            all.extend((lo as u32..=hi as u32).filter_map(char::from_u32));
        }
        assert!(all.len() > 230, "{}", all.len());
        for c in all {
            let s = format!("/adm{c}in");
            for (name, out) in [
                ("terminal", terminal(&s)),
                ("markdown", markdown(&s)),
                ("html", html(&s)),
            ] {
                assert!(!out.contains(c), "{name} let U+{:04X} through", c as u32);
                assert!(
                    out.contains("\\"),
                    "{name}: U+{:04X} not shown escaped",
                    c as u32
                );
            }
        }
        assert_eq!(terminal("/adm\u{200b}in"), "/adm\\u{200b}in");
        assert_eq!(terminal("a\u{61c}b\u{2029}"), "a\\u{61c}b\\u{2029}");
    }

    #[test]
    fn long_strings_are_cut() {
        let s = "x".repeat(1000);
        let t = terminal(&s);
        assert_eq!(t.chars().count(), MAX_CHARS + 1);
        assert!(t.ends_with('…'));
    }

    #[test]
    fn markdown_cannot_break_tables_or_code() {
        assert_eq!(markdown("/a|b`c`<script>"), "/a\\|b\\`c\\`\\<script\\>");
    }

    #[test]
    fn markdown_adds_no_needless_backslash_to_our_sentences() {
        // Issue 12: `\~301 ms` showed its backslash where the Markdown was not rendered.
        assert_eq!(markdown("after ~301 ms (~5 s)"), "after ~301 ms (~5 s)");
        assert_eq!(markdown("an idle_race at #28"), "an idle_race at #28");
        // What could still be markup is escaped.
        assert_eq!(markdown("~a~"), "\\~a\\~");
        assert_eq!(markdown("x~~y"), "x\\~\\~y");
        assert_eq!(markdown("_a_ b_"), "\\_a\\_ b\\_");
        assert_eq!(markdown("# x #"), "\\# x \\#");
    }

    #[test]
    fn html_entities() {
        assert_eq!(
            html("<script>alert('x')</script>&"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;"
        );
    }
}
