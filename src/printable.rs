//! Client-supplied text made safe to print: object names, namespaces, uids
//! and kinds come from whoever sent the request, and reach text logs and
//! terminals. [`Printable`] writes control characters (and the Unicode
//! controls that reorder or hide text) as escapes, so a name holding `\n` or
//! ESC cannot forge a log line or drive a terminal, and cuts text that is
//! longer than any Kubernetes name can be.

use std::fmt::{self, Write as _};

/// Longest text printed whole, in characters: a Kubernetes object name is at
/// most 253 characters.
pub const MAX_CHARS: usize = 256;

/// Displays `self.0` with control characters escaped, cut after [`MAX_CHARS`]
/// characters with a note of how much was left out.
#[derive(Debug, Clone, Copy)]
pub struct Printable<'a>(pub &'a str);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Printable ASCII short enough needs neither escape nor cut: the
        // common case, checked a byte at a time without decoding.
        if self.0.len() <= MAX_CHARS && self.0.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return f.write_str(self.0);
        }
        // Runs of characters that need no escape are written in one call:
        // this is on every logged request.
        let mut run = 0;
        for (written, (at, c)) in self.0.char_indices().enumerate() {
            if written == MAX_CHARS {
                f.write_str(&self.0[run..at])?;
                return write!(f, "…(+{} bytes)", self.0.len() - at);
            }
            if needs_escape(c) {
                f.write_str(&self.0[run..at])?;
                for e in c.escape_default() {
                    f.write_char(e)?;
                }
                run = at + c.len_utf8();
            }
        }
        f.write_str(&self.0[run..])
    }
}

/// The same text as an owned string.
pub fn printable(s: &str) -> String {
    Printable(s).to_string()
}

/// C0 and C1 controls, DEL, and the bidirectional and zero-width format
/// characters that make a terminal show text other than what is there.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("web-0"), "web-0");
        assert_eq!(printable("bad\nverdict=allow"), "bad\\nverdict=allow");
        assert_eq!(printable("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(printable("a\u{202E}b\u{7f}"), "a\\u{202e}b\\u{7f}");
        assert_eq!(printable("naïve-日本"), "naïve-日本");
        assert!(!printable("\r\t\u{85}\u{9b}").chars().any(char::is_control));
    }

    /// The output, character by character, as the format is defined.
    fn by_char(s: &str) -> String {
        let mut out = String::new();
        for (written, (at, c)) in s.char_indices().enumerate() {
            if written == MAX_CHARS {
                out.push_str(&format!("…(+{} bytes)", s.len() - at));
                return out;
            }
            if needs_escape(c) {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn runs_are_written_as_char_by_char() {
        let pieces = ["a", "\n", "é", "\u{202E}", "日", "\u{1b}", "x-y"];
        let mut seed = 7u64;
        for len in [0, 1, 5, 200, 255, 256, 257, 300, 1000] {
            for _ in 0..20 {
                let s: String = (0..len)
                    .map(|_| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        pieces[(seed >> 33) as usize % pieces.len()]
                    })
                    .collect();
                assert_eq!(printable(&s), by_char(&s), "{s:?}");
            }
        }
    }

    #[test]
    fn long_text_is_cut_with_a_count() {
        let long = "x".repeat(10_000);
        let shown = printable(&long);
        assert_eq!(shown, format!("{}…(+{} bytes)", "x".repeat(MAX_CHARS), 10_000 - MAX_CHARS));
        assert_eq!(printable(&"y".repeat(MAX_CHARS)), "y".repeat(MAX_CHARS));
    }
}
