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
        // Text short enough with nothing to escape is written as it is: the
        // common case, checked a byte at a time without decoding (at most
        // MAX_CHARS bytes is at most MAX_CHARS characters).
        if self.0.len() <= MAX_CHARS && !any_needs_escape(self.0) {
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

/// Whether any character of `s` [`needs_escape`], read from its UTF-8 bytes
/// without decoding them: C0 controls and DEL are single bytes, C1 controls
/// are `C2 80`-`C2 9F`, the format characters `E2 80 8B`-`8F`,
/// `E2 80 AA`-`AE`, `E2 81 A0`-`A4`, `E2 81 A6`-`A9` and `EF BB BF`. A lead
/// byte never equals a continuation byte, so every byte can be looked at.
/// Every warning and log line is checked this way, most of them with a
/// non-ASCII `…` or name that the ASCII shortcut cannot pass.
pub fn any_needs_escape(s: &str) -> bool {
    let b = s.as_bytes();
    // Printable ASCII up to the first other byte, one range test a byte;
    // from there, each byte with the bytes after it where it leads a sequence.
    let Some(start) = b.iter().position(|x| !(0x20..0x7f).contains(x)) else { return false };
    b.iter().enumerate().skip(start).any(|(i, &x)| match x {
        0x00..=0x1f | 0x7f => true,
        0xc2 => matches!(b.get(i + 1), Some(0x80..=0x9f)),
        0xe2 => matches!(
            (b.get(i + 1), b.get(i + 2)),
            (Some(0x80), Some(0x8b..=0x8f | 0xaa..=0xae)) | (Some(0x81), Some(0xa0..=0xa4 | 0xa6..=0xa9))
        ),
        0xef => matches!((b.get(i + 1), b.get(i + 2)), (Some(0xbb), Some(0xbf))),
        _ => false,
    })
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
    fn the_byte_check_agrees_with_the_character_rule_on_every_character() {
        let mut buf = [0u8; 4];
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let alone: &str = c.encode_utf8(&mut buf);
            assert_eq!(any_needs_escape(alone), needs_escape(c), "U+{:04X}", c as u32);
        }
    }

    proptest::proptest! {
        #[test]
        fn the_byte_check_agrees_with_the_character_rule_on_text(
            text in r"[a\x00-\x{a0}é…\u{2000}-\u{206F}\u{FEFF}\u{FEFE}\u{FFBF}日]{0,16}|\PC{0,16}|.{0,16}"
        ) {
            proptest::prop_assert_eq!(any_needs_escape(&text), text.chars().any(needs_escape));
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
