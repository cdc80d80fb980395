//! Bounds on what an AdmissionReview response carries, from the
//! apiserver's own limits, so that no object, however many containers or
//! findings it has, makes a large response or a large audit event.
//!
//! - Warnings: the apiserver drops duplicates, cuts each warning at 256
//!   characters and stops adding once 4,096 characters are recorded
//!   (`k8s.io/apiserver/pkg/endpoints/filters/warning.go`,
//!   `truncateItemRunes` and `truncateAtTotalRunes`). Past those limits
//!   kubectl would show a cut list with no hint of what is missing, so the
//!   response keeps within them itself and says how many were left out.
//! - `status.message`: the apiserver passes it on uncut, but it is shown to
//!   the user in one error line and, for pods made by a controller, becomes
//!   the message of a `FailedCreate` event, whose `note` the API limits to
//!   1 KiB (`NoteLengthLimit`). 4 KiB keeps every message the engine writes
//!   whole (a denial is under 1 KiB, four of them joined fit) and cuts
//!   anything longer with a count of what was cut.
//! - `auditAnnotations`: each key is prefixed with the webhook's name and
//!   must be a qualified name (at most 63 characters after the prefix);
//!   values are written into every audit event of the request. The
//!   apiserver cuts ValidatingAdmissionPolicy audit annotation values at
//!   10 KiB; the same bound holds here.
//!
//! Text that came from the request (object names) is also escaped here, so
//! a name holding control characters cannot reach a terminal through
//! kubectl's `Warning:` lines or an error message.

use std::borrow::Cow;

/// Characters of one warning the apiserver keeps.
pub const WARNING_MAX_CHARS: usize = 256;
/// Characters of all warnings of a response the apiserver keeps.
pub const WARNINGS_MAX_TOTAL_CHARS: usize = 4096;
/// Bytes of `status.message`.
pub const MESSAGE_MAX_BYTES: usize = 4096;
/// Bytes of one audit annotation value.
pub const AUDIT_VALUE_MAX_BYTES: usize = 10 << 10;
/// Characters of an audit annotation key (after the webhook-name prefix).
pub const AUDIT_KEY_MAX_CHARS: usize = 63;

/// Control characters written as escapes (see [`crate::printable`]), nothing
/// cut.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    // Checked on the bytes: decoding every character of every warning cost
    // more than the rest of the warning's bounding.
    if !crate::printable::any_needs_escape(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if crate::printable::needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Cuts `text` to at most `max` bytes on a character boundary, ending with a
/// note of how many bytes were left out.
pub fn cut_bytes(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    // The note is at most 40 bytes.
    let mut end = max.saturating_sub(40);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{} … ({} more bytes)", &text[..end], text.len() - end))
}

fn cut_chars(text: &str, max: usize) -> String {
    // A character takes at least one byte: a text of at most `max` bytes
    // has at most `max` characters, and needs no counting.
    if text.len() <= max {
        return text.to_owned();
    }
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((at, _)) => {
            let keep: String = text[..at].chars().take(max - 1).collect();
            format!("{keep}…")
        }
    }
}

/// The denial message: escaped, at most [`MESSAGE_MAX_BYTES`].
pub fn message(text: &str) -> String {
    cut_bytes(&escape_controls(text), MESSAGE_MAX_BYTES).into_owned()
}

/// The warnings of a response: escaped, without duplicates, each at most
/// [`WARNING_MAX_CHARS`] and all together at most
/// [`WARNINGS_MAX_TOTAL_CHARS`]; when some do not fit, the last one says how
/// many were left out.
pub fn warnings<S: AsRef<str>>(all: &[S]) -> Vec<String> {
    let cut: Vec<String> = all.iter().map(|w| cut_chars(&escape_controls(w.as_ref()), WARNING_MAX_CHARS)).collect();
    // The first of each text, in order: marked over borrowed texts, so none
    // is copied or hashed to be compared.
    let mut seen = std::collections::BTreeSet::new();
    let first: Vec<bool> = cut.iter().map(|w| seen.insert(w.as_str())).collect();
    drop(seen);
    let unique: Vec<String> = cut.into_iter().zip(first).filter_map(|(w, first)| first.then_some(w)).collect();
    let chars = |w: &String| w.chars().count();
    if unique.iter().map(chars).sum::<usize>() <= WARNINGS_MAX_TOTAL_CHARS {
        return unique;
    }
    let note = |left: usize| format!("sysbox-ro: {left} more warnings not shown; the audit log has every finding");
    let mut kept = Vec::new();
    let mut used = 0;
    for (i, w) in unique.iter().enumerate() {
        let left_after = unique.len() - i - 1;
        let room_for_note = chars(&note(left_after.max(1)));
        if used + chars(w) + room_for_note > WARNINGS_MAX_TOTAL_CHARS {
            kept.push(note(unique.len() - i));
            return kept;
        }
        used += chars(w);
        kept.push(w.clone());
    }
    kept
}

/// Comma-separated items without repeats, in first-seen order, at most
/// [`AUDIT_VALUE_MAX_BYTES`].
pub fn audit_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut seen = std::collections::BTreeSet::new();
    let unique: Vec<&str> = items.into_iter().filter(|i| seen.insert(*i)).collect();
    cut_bytes(&unique.join(","), AUDIT_VALUE_MAX_BYTES).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_escaped_and_cut_with_a_count() {
        assert_eq!(message("denied: a\nb"), "denied: a\\nb");
        let long = "é".repeat(10_000);
        let cut = message(&long);
        assert!(cut.len() <= MESSAGE_MAX_BYTES, "{}", cut.len());
        assert!(cut.ends_with("more bytes)"), "{cut}");
    }

    #[test]
    fn warnings_fit_the_apiservers_limits_and_count_what_is_left_out() {
        let many: Vec<String> = (0..1000).map(|i| format!("sysbox-ro: container c{i} has a problem")).collect();
        let kept = warnings(&many);
        let total: usize = kept.iter().map(|w| w.chars().count()).sum();
        assert!(total <= WARNINGS_MAX_TOTAL_CHARS, "{total}");
        let last = kept.last().unwrap();
        let shown = kept.len() - 1;
        assert_eq!(
            last,
            &format!("sysbox-ro: {} more warnings not shown; the audit log has every finding", 1000 - shown)
        );
        assert_eq!(kept[0], many[0]);
        // duplicates and over-long ones
        let kept = warnings(&["a", "a", &"x".repeat(300), "b\u{1b}"]);
        assert_eq!(kept.len(), 3);
        assert_eq!(kept[1].chars().count(), WARNING_MAX_CHARS);
        assert_eq!(kept[2], "b\\u{1b}");
        // a short list is left as it is
        assert_eq!(warnings(&["one", "two"]), ["one", "two"]);
    }

    #[test]
    fn escaping_borrows_what_needs_no_escape() {
        // The edges of printable ASCII: space and `~` pass, US (0x1f) and DEL (0x7f) do not.
        assert!(matches!(escape_controls(" ~az09"), Cow::Borrowed(" ~az09")));
        assert_eq!(escape_controls("a\u{1f}"), "a\\u{1f}");
        assert_eq!(escape_controls("a\u{7f}"), "a\\u{7f}");
        // Beyond ASCII: é passes, a bidi override does not.
        assert!(matches!(escape_controls("café"), Cow::Borrowed("café")));
        assert_eq!(escape_controls("a\u{202E}b"), "a\\u{202e}b");
    }

    #[test]
    fn warnings_are_cut_by_characters_not_bytes() {
        // 256 characters of two bytes each: more bytes than the limit, kept whole.
        let wide = "é".repeat(WARNING_MAX_CHARS);
        assert_eq!(warnings(&[wide.as_str()]), std::slice::from_ref(&wide));
        // one more character: cut to 255 and an ellipsis
        let wider = format!("{wide}é");
        let cut = &warnings(&[wider.as_str()])[0];
        assert_eq!(cut.chars().count(), WARNING_MAX_CHARS);
        assert!(cut.ends_with("é…"), "{cut}");
        // exactly the limit in ASCII bytes: whole
        let ascii = "x".repeat(WARNING_MAX_CHARS);
        assert_eq!(warnings(&[ascii.as_str()]), std::slice::from_ref(&ascii));
    }

    proptest::proptest! {
        /// The byte-length shortcut agrees with cutting character by character.
        #[test]
        fn cutting_agrees_with_counting_characters(text in "[aé日😀]{0,40}", max in 1usize..30) {
            let by_char: String = if text.chars().count() <= max {
                text.clone()
            } else {
                text.chars().take(max - 1).chain(std::iter::once('…')).collect()
            };
            proptest::prop_assert_eq!(cut_chars(&text, max), by_char);
        }

        #[test]
        fn escaping_leaves_only_printable_characters(text in "\\PC{0,12}|[\\x00-\\x{a0}\\u{200B}-\\u{206F}]{0,12}") {
            let escaped = escape_controls(&text);
            proptest::prop_assert!(!escaped.chars().any(crate::printable::needs_escape));
            let unchanged = !text.chars().any(crate::printable::needs_escape);
            proptest::prop_assert_eq!(matches!(escaped, Cow::Borrowed(_)), unchanged);
            if unchanged {
                proptest::prop_assert_eq!(escaped.as_ref(), text.as_str());
            }
        }
    }

    #[test]
    fn audit_lists_have_no_repeats_and_a_size() {
        assert_eq!(audit_list(["a", "b", "a", "c", "b"]), "a,b,c");
        let many: Vec<String> = (0..100_000).map(|i| format!("item-{i}")).collect();
        assert!(audit_list(many.iter().map(String::as_str)).len() <= AUDIT_VALUE_MAX_BYTES);
    }
}
