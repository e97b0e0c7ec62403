//! Text fitted to a terminal's width, for the terminal report: sentences wrapped at spaces,
//! table cells wrapped the same way, and column widths chosen so that no word is broken
//! when the words fit at all.
//!
//! The text wrapped here is already escaped ([`crate::escape::terminal`]): captured text
//! holds no control character, only visible escapes such as `\x1b` or `\u{200b}`, and the
//! report's own colours are SGR sequences (`ESC [ … m`). Widths are display columns
//! (`unicode-width`), colours count nothing. A word longer than a whole line is broken
//! (preferably after `/`, `:`, `.`, `,`, `?`, `&`, `=` or `;`), without a hyphen that could
//! be taken for part of it, and never inside an escape or a colour sequence.

use unicode_width::UnicodeWidthChar;

/// The display width of `s`, in terminal columns (SGR colour sequences count nothing).
pub fn width(s: &str) -> usize {
    atoms(s).iter().map(|a| a.1).sum()
}

/// The pieces a word may be broken between, with their widths: a colour sequence
/// (`ESC [ … m`, width 0), an escape the report wrote for a dangerous character (`\x1b`,
/// `\u{202e}`) or for a captured backslash (`\\`), or one character.
fn atoms(s: &str) -> Vec<(&str, usize)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let len = if b[i] == 0x1b && b.get(i + 1) == Some(&b'[') {
            // CSI: parameters, then one final byte in @..~.
            let end = b[i + 2..]
                .iter()
                .position(|c| (0x40..=0x7e).contains(c))
                .map_or(s.len() - i, |p| p + 3);
            out.push((&s[i..i + end], 0));
            i += end;
            continue;
        } else if b[i] == b'\\' && b.get(i + 1) == Some(&b'\\') {
            2
        } else if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') && hex_at(b, i + 2, 2) {
            4
        } else if b[i] == b'\\' && b.get(i + 1) == Some(&b'u') && b.get(i + 2) == Some(&b'{') {
            match b[i + 3..].iter().take(7).position(|&c| c == b'}') {
                Some(p) if p > 0 && hex_at(b, i + 3, p) => p + 4,
                _ => 1,
            }
        } else {
            s[i..].chars().next().map_or(1, char::len_utf8)
        };
        let piece = &s[i..i + len];
        let w = piece
            .chars()
            .map(|c| UnicodeWidthChar::width(c).unwrap_or(0))
            .sum();
        out.push((piece, w));
        i += len;
    }
    out
}

fn hex_at(b: &[u8], at: usize, n: usize) -> bool {
    b.len() >= at + n && b[at..at + n].iter().all(u8::is_ascii_hexdigit)
}

/// Where a long word is best broken: after these.
fn breaks_after(piece: &str) -> bool {
    matches!(piece, "/" | ":" | "." | "," | "?" | "&" | "=" | ";")
}

/// Wraps `text` to lines of at most `width` columns: the first begins with `indent`, the
/// others with `hang`. Lines break at spaces; a word wider than a line is broken where
/// [the module](self) says. A line is wider than `width` only when `width` leaves no room
/// after the indent for a single piece (one character, or an escape: `\u{e0001}` takes 9).
pub fn wrap(text: &str, width: usize, indent: &str, hang: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = indent.to_string();
    let mut used = self::width(indent);
    let mut empty = true;
    let hang_width = self::width(hang);
    for word in text.split(' ') {
        let w = self::width(word);
        if !empty && used + 1 + w <= width {
            line.push(' ');
            line.push_str(word);
            used += 1 + w;
            continue;
        }
        if !empty {
            lines.push(std::mem::replace(&mut line, hang.to_string()));
            used = hang_width;
        }
        empty = false;
        if used + w <= width {
            line.push_str(word);
            used += w;
            continue;
        }
        // Wider than a line: broken, the pieces filling each line.
        let pieces = atoms(word);
        let mut at = 0;
        while at < pieces.len() {
            let room = width.saturating_sub(used).max(1);
            let rest: usize = pieces[at..].iter().map(|p| p.1).sum();
            if rest <= room {
                pieces[at..].iter().for_each(|p| line.push_str(p.0));
                used += rest;
                break;
            }
            // As many pieces as fit (at least one), then back to the last good break.
            let (mut end, mut w) = (at, 0);
            while end < pieces.len() && (end == at || w + pieces[end].1 <= room) {
                w += pieces[end].1;
                end += 1;
            }
            if let Some(b) = (at + 1..end).rev().find(|&k| breaks_after(pieces[k - 1].0)) {
                if b > at + (end - at) / 2 {
                    end = b;
                }
            }
            pieces[at..end].iter().for_each(|p| line.push_str(p.0));
            at = end;
            if at < pieces.len() {
                lines.push(std::mem::replace(&mut line, hang.to_string()));
                used = hang_width;
            }
        }
    }
    lines.push(line);
    lines
}

/// Wraps `text` as [`wrap`] does, the lines joined by newlines (no newline at the end).
pub fn wrapped(text: &str, width: usize, indent: &str, hang: &str) -> String {
    wrap(text, width, indent, hang).join("\n")
}

/// The width of the longest word of `text` (what a column must hold for no word to break).
pub fn longest_word(text: &str) -> usize {
    text.split(' ').map(width).max().unwrap_or(0)
}

/// Rows [`column_widths`] measures to share out the spare width.
const MEASURED_ROWS: usize = 200;

/// Content widths for the columns of a table `available` columns wide in all (borders and
/// padding already taken off), for `cells` (the header first, then the rows; each row a
/// cell per column). Every column gets its full width when they all fit; else the widths
/// that keep the tallest row shortest: for 2 lines a row, then 3, and so on, each column
/// the narrowest that holds each of its cells in that many lines, never narrower than its
/// longest word (`least`). `None` when even the longest words do not fit side by side:
/// words would break, and the table must take another shape.
pub fn column_widths(
    cells: &[Vec<String>],
    least: &[usize],
    available: usize,
) -> Option<Vec<usize>> {
    let cols = least.len();
    let full: Vec<usize> = (0..cols)
        .map(|i| cells.iter().map(|r| width(&r[i])).max().unwrap_or(0))
        .collect();
    if full.iter().sum::<usize>() <= available {
        return Some(full);
    }
    let least: Vec<usize> = least.iter().zip(&full).map(|(l, f)| *l.min(f)).collect();
    if least.iter().sum::<usize>() > available {
        return None;
    }
    // Measured on the first rows (enough to choose; a table of thousands stays quick).
    let cells = &cells[..cells.len().min(MEASURED_ROWS)];
    // The most lines a cell of column `i` takes at width `w`.
    let tallest = |i: usize, w: usize| {
        cells
            .iter()
            .map(|r| wrap(&r[i], w, "", "").len())
            .max()
            .unwrap_or(1)
    };
    let mut lines = 2;
    loop {
        let widths: Vec<usize> = (0..cols)
            .map(|i| {
                (least[i]..=full[i])
                    .find(|&w| tallest(i, w) <= lines)
                    .unwrap_or(full[i])
            })
            .collect();
        if widths.iter().sum::<usize>() <= available {
            return Some(whole_if_affordable(widths, &full, available));
        }
        if widths == least {
            return Some(whole_if_affordable(least, &full, available));
        }
        lines += 1;
    }
}

/// What is left of `available` after `widths` goes to the columns it lets hold every cell
/// on one line, the cheapest first.
fn whole_if_affordable(mut widths: Vec<usize>, full: &[usize], available: usize) -> Vec<usize> {
    let mut spare = available.saturating_sub(widths.iter().sum());
    let mut order: Vec<usize> = (0..widths.len()).collect();
    order.sort_by_key(|&i| full[i] - widths[i]);
    for i in order {
        let need = full[i] - widths[i];
        if need <= spare {
            widths[i] = full[i];
            spare -= need;
        }
    }
    widths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_ignore_colours_and_count_columns() {
        assert_eq!(width("\x1b[1;31midle_race\x1b[0m"), 9);
        assert_eq!(width("a → b"), 5);
        assert_eq!(width("…"), 1);
        assert_eq!(width("日本"), 4);
    }

    #[test]
    fn sentences_wrap_at_spaces_with_a_hanging_indent() {
        let text = "The server reset the connection while GET /slow was waiting for its response";
        let lines = wrap(text, 30, "  1. ", "     ");
        assert_eq!(
            lines,
            [
                "  1. The server reset the",
                "     connection while GET",
                "     /slow was waiting for its",
                "     response"
            ]
        );
        assert!(lines.iter().all(|l| width(l) <= 30));
        // Short text: one line, as it was.
        assert_eq!(wrap("short", 30, "- ", "  "), ["- short"]);
    }

    #[test]
    fn a_word_longer_than_a_line_breaks_at_punctuation_and_never_in_an_escape() {
        let lines = wrap("GET /api/v1/items/12345/detail", 16, "", "");
        assert_eq!(lines, ["GET", "/api/v1/items/", "12345/detail"]);
        // Escapes of captured characters stay whole.
        let lines = wrap("/adm\\u{200b}in\\u{200b}istrator", 10, "", "");
        assert!(lines.iter().all(|l| !l.ends_with('\\')), "{lines:?}");
        assert_eq!(lines.concat(), "/adm\\u{200b}in\\u{200b}istrator");
        for l in &lines {
            assert_eq!(
                l.matches("\\u{").count(),
                l.matches('}').count(),
                "{lines:?}"
            );
        }
        let lines = wrap("\\x1b\\x1b\\x1b\\x1b", 6, "", "");
        assert_eq!(lines, ["\\x1b", "\\x1b", "\\x1b", "\\x1b"]);
        // Colours count nothing and are never cut.
        let red = "\x1b[1;31mreset_in_flight\x1b[0m";
        assert_eq!(wrap(red, 15, "", ""), [red]);
        // Nothing is lost or added, whatever the width.
        let text = "a bb ccc dddd /x/y/z:80 eeeee";
        for w in 1..20 {
            let lines = wrap(text, w, "", "");
            let back: String = lines.join(" ");
            assert_eq!(back.replace(' ', ""), text.replace(' ', ""), "{w}");
            if w >= 5 {
                assert!(lines.iter().all(|l| width(l) <= w), "{w}: {lines:?}");
            }
        }
    }

    #[test]
    fn columns_get_their_full_width_else_the_shortest_rows() {
        let rows = |r: &[&[&str]]| -> Vec<Vec<String>> {
            r.iter()
                .map(|row| row.iter().map(|c| c.to_string()).collect())
                .collect()
        };
        let cells = rows(&[
            &["kind", "client → server", "frames"],
            &[
                "idle_race",
                "127.0.0.1:54110 → 127.0.0.1:9000",
                "#26, #28, #29, #30",
            ],
        ]);
        // Everything fits.
        assert_eq!(
            column_widths(&cells, &[9, 15, 5], 70),
            Some(vec![9, 32, 18])
        );
        // Not all: two lines a row where that fits ("→ 127.0.0.1:9000" and
        // "#26, #28,"), else three, each column never below its longest word; what is
        // left goes to a column it makes whole.
        assert_eq!(column_widths(&cells, &[9, 15, 5], 40), Some(vec![9, 16, 9]));
        assert_eq!(
            column_widths(&cells, &[9, 15, 5], 43),
            Some(vec![9, 16, 18])
        );
        assert_eq!(column_widths(&cells, &[9, 15, 5], 32), Some(vec![9, 15, 8]));
        assert_eq!(column_widths(&cells, &[9, 15, 5], 29), Some(vec![9, 15, 5]));
        // Not even the longest words: no widths.
        assert_eq!(column_widths(&cells, &[9, 15, 5], 28), None);
    }
}
