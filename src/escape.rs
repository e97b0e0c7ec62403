//! Captured bytes are hostile: every string that came off the wire (request targets,
//! methods) goes through one of these before it is printed.
//!
//! - [`terminal`]: control characters (C0, DEL, C1), format characters (Unicode Cf: the
//!   bidirectional controls, zero-width characters) and the line and paragraph separators
//!   become visible escapes (`\x1b`, `\u{202e}`, `\u{200b}`), so a capture cannot move the
//!   cursor, change colours, reorder text or hide characters; long strings are cut with `…`.
//! - [`markdown`]: the terminal escape, then Markdown's active characters are
//!   backslash-escaped, so a target cannot break a table (`|`), open code (`` ` ``), or make
//!   links, emphasis or HTML.
//! - [`html`]: the terminal escape, then `& < > " '` become entities.

use std::fmt::Write;

/// Longest captured string printed in full (characters).
pub const MAX_CHARS: usize = 160;

/// Unicode's format characters (general category Cf, Unicode 15): invisible, and some
/// (the bidi controls, U+061C, U+200E/F, U+202A–202E, U+2066–2069) reorder text, so that
/// `/adm\u{200b}in` would print as `/admin`.
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

/// Control (Cc), format (Cf), line and paragraph separator (Zl, Zp) characters: none may
/// reach a report raw.
fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}')
        || (c >= '\u{00ad}' && FORMAT.iter().any(|&(lo, hi)| (lo..=hi).contains(&c)))
}

/// Makes captured text safe for a terminal, cut to `max` characters.
pub fn terminal_max(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 8));
    for (n, c) in s.chars().enumerate() {
        if n >= max {
            out.push('…');
            break;
        }
        if is_dangerous(c) {
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

/// Makes captured text safe inside Markdown (including table cells), cut to [`MAX_CHARS`].
pub fn markdown(s: &str) -> String {
    markdown_max(s, MAX_CHARS)
}

/// Makes text safe inside Markdown, cut to `max` characters (for sentences that quote
/// captured text).
pub fn markdown_max(s: &str, max: usize) -> String {
    let t = terminal_max(s, max);
    let mut out = String::with_capacity(t.len() + 8);
    for c in t.chars() {
        // The characters that can start code, emphasis, links, HTML, entities or
        // strike-through, or end a table cell (parentheses only matter after `]`).
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '~' | '&'
        ) {
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
    fn html_entities() {
        assert_eq!(
            html("<script>alert('x')</script>&"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;"
        );
    }
}
