//! Text helpers: lists that stay short, and warnings that fit kubectl.

use super::finding::WARNING_LIMIT;

/// How many names a full message lists before "and N more".
pub const LIST_LIMIT: usize = 5;

/// "a, b and c"; past `limit` names, "a, b, c and 4 more".
pub fn list(items: &[String], limit: usize) -> String {
    list_of(items, items.len(), limit)
}

/// [`list`] of `total` names of which only the first ones are given in
/// `head` (at least `limit` of them, or all): for long lists whose tail is
/// only counted, so it need not be rendered.
pub fn list_of(head: &[String], total: usize, limit: usize) -> String {
    let shown = total.min(limit.max(1)).min(head.len());
    let head = &head[..shown];
    let rest = total - shown;
    // written into one buffer of the right size: messages list up to
    // LIST_LIMIT long pool descriptions per decision
    let mut out = String::with_capacity(head.iter().map(|h| h.len() + 2).sum::<usize>() + 24);
    for (i, name) in head.iter().enumerate() {
        if i > 0 {
            out.push_str(if rest == 0 && i == shown - 1 { " and " } else { ", " });
        }
        out.push_str(name);
    }
    if rest > 0 && shown > 0 {
        use std::fmt::Write;
        let _ = write!(out, " and {rest} more");
    }
    out
}

/// Names counted as they come, only the first [`LIST_LIMIT`] rendered: what
/// a message lists ("a, b, c, d, e and 40 more") costs the same however many
/// there are.
#[derive(Debug, Default)]
pub struct Named {
    /// The first [`LIST_LIMIT`] names.
    pub head: Vec<String>,
    /// All names, rendered or not.
    pub count: usize,
}

impl Named {
    /// Counts one more name; `name` renders it when it is among the first.
    pub fn add(&mut self, name: impl FnOnce() -> String) {
        if self.head.len() < LIST_LIMIT {
            // room for all of them at once: growing 1 -> 4 -> 8 moved the
            // names twice per list, and a message has two lists
            if self.head.is_empty() {
                self.head.reserve_exact(LIST_LIMIT);
            }
            self.head.push(name());
        }
        self.count += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// [`list`] of all the names, with [`LIST_LIMIT`].
    pub fn list(&self) -> String {
        list_of(&self.head, self.count, LIST_LIMIT)
    }

    /// [`fit_list`] of all the names.
    pub fn fit(&self, render: impl Fn(&str) -> String) -> String {
        fit_list_of(&self.head, self.count, render)
    }
}

/// Builds the longest variant of a warning that fits [`WARNING_LIMIT`]:
/// `render` gets the list of names shortened step by step; the last resort is
/// cutting the text.
pub fn fit_list(items: &[String], render: impl Fn(&str) -> String) -> String {
    fit_list_of(items, items.len(), render)
}

/// [`fit_list`] of `total` names of which `head` gives the first
/// [`LIST_LIMIT`] (or all).
///
/// `render` puts the list in its text once: the rest of the text is the same
/// for every list, so after the longest variant only the shorter lists are
/// measured, and a variant is rendered when it is known to fit.
pub fn fit_list_of(head: &[String], total: usize, render: impl Fn(&str) -> String) -> String {
    let longest = total.clamp(1, LIST_LIMIT);
    let list = list_of(head, total, longest);
    let text = render(&list);
    let chars = text.chars().count();
    if chars <= WARNING_LIMIT {
        return text;
    }
    let rest = chars.saturating_sub(list.chars().count());
    // the shorter lists are measured from their names' lengths, not built
    let mut name_chars = [0usize; LIST_LIMIT];
    head.iter().take(LIST_LIMIT).zip(name_chars.iter_mut()).for_each(|(h, c)| *c = h.chars().count());
    let name_chars = &name_chars[..head.len().min(LIST_LIMIT)];
    for limit in (1..longest).rev() {
        if rest + list_chars(name_chars, total, limit) <= WARNING_LIMIT {
            let text = render(&list_of(head, total, limit));
            if text.chars().count() <= WARNING_LIMIT {
                return text;
            }
        }
    }
    fit(render(&list_of(head, total, 1)))
}

/// The length in characters of [`list_of`] for names of these lengths.
fn list_chars(name_chars: &[usize], total: usize, limit: usize) -> usize {
    let shown = total.min(limit.max(1)).min(name_chars.len());
    let rest = total - shown;
    let names: usize = name_chars[..shown].iter().sum();
    let separators = match shown {
        0 | 1 => 0,
        n if rest == 0 => (n - 2) * 2 + " and ".len(),
        n => (n - 1) * 2,
    };
    let more = if rest > 0 && shown > 0 { " and ".len() + digits(rest) + " more".len() } else { 0 };
    names + separators + more
}

/// How many decimal digits `n` has.
fn digits(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// Appends `n` in decimal: what `write!(out, "{n}")` does, without the
/// formatting machinery (messages say several counts per pool they name).
pub fn push_count(out: &mut String, n: usize) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Appends [`plural`]: "1 node", "2 nodes".
pub fn push_plural(out: &mut String, n: usize, word: &str) {
    push_count(out, n);
    out.push(' ');
    out.push_str(word);
    if n != 1 {
        out.push('s');
    }
}

/// Cuts a text to [`WARNING_LIMIT`] characters, marking the cut. Takes the
/// text it is given: one that fits is returned as it is, not copied.
pub fn fit(mut text: String) -> String {
    // Only the first WARNING_LIMIT + 1 characters are looked at: the last
    // one kept is followed by the mark when there are more than the limit.
    let mut chars = text.char_indices().skip(WARNING_LIMIT - 1);
    if let (Some((cut, _)), Some(_)) = (chars.next(), chars.next()) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// "1 node", "2 nodes".
pub fn plural(n: usize, word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 8);
    push_plural(&mut out, n, word);
    out
}

/// [`plural`], written where it is formatted rather than made first.
pub struct Plural<'a>(pub usize, pub &'a str);

impl std::fmt::Display for Plural<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)?;
        f.write_str(" ")?;
        f.write_str(self.1)?;
        if self.0 != 1 {
            f.write_str("s")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("pool-{i}")).collect()
    }

    #[test]
    fn lists() {
        assert_eq!(list(&names(1), 3), "pool-0");
        assert_eq!(list(&names(3), 3), "pool-0, pool-1 and pool-2");
        assert_eq!(list(&names(5), 3), "pool-0, pool-1, pool-2 and 2 more");
    }

    #[test]
    fn counted_lists_read_as_whole_ones() {
        for n in 0..12 {
            let all = names(n);
            let head = &all[..n.min(LIST_LIMIT)];
            for limit in 0..=LIST_LIMIT {
                assert_eq!(list_of(head, n, limit), list(&all, limit), "{n} {limit}");
            }
            let render = |l: &str| format!("sysbox-ro: pools {l} {}", "x".repeat(200));
            assert_eq!(fit_list_of(head, n, render), fit_list(&all, render), "{n}");
        }
    }

    #[test]
    fn named_lists_read_as_whole_ones() {
        for n in 0..12 {
            let all = names(n);
            let mut named = Named::default();
            all.iter().for_each(|a| named.add(|| a.clone()));
            assert_eq!((named.head.len(), named.count), (n.min(LIST_LIMIT), n));
            assert_eq!(named.list(), list(&all, LIST_LIMIT), "{n}");
            let render = |l: &str| format!("sysbox-ro: pools {l} {}", "x".repeat(150));
            assert_eq!(named.fit(render), fit_list(&all, render), "{n}");
        }
    }

    /// The variant [`fit_list_of`] picks is the first, from the longest list
    /// down, whose rendered text fits: what rendering every one would pick.
    #[test]
    fn fitted_lists_are_the_longest_that_fit() {
        let rendered_each = |all: &[String], render: &dyn Fn(&str) -> String| {
            for limit in (1..=all.len().clamp(1, LIST_LIMIT)).rev() {
                let text = render(&list(all, limit));
                if text.chars().count() <= WARNING_LIMIT {
                    return text;
                }
            }
            fit(render(&list(all, 1)))
        };
        for n in 0..12 {
            for pad in [0, 20, 40, 60, 75, 90, 100, 115, 130] {
                let all: Vec<String> = (0..n).map(|i| format!("pool-é{i}")).collect();
                let render = |l: &str| format!("sysbox-ro: {} pools {l} lack it", "x".repeat(pad));
                assert_eq!(fit_list(&all, render), rendered_each(&all, &render), "{n} {pad}");
            }
        }
    }

    /// The measured length of a list is the length of the list built.
    #[test]
    fn list_lengths_are_measured_right() {
        for n in 0..14 {
            let all: Vec<String> = (0..n).map(|i| format!("p-é{}", "x".repeat(i))).collect();
            let head = &all[..n.min(LIST_LIMIT)];
            let chars: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
            for total in [n, n + 7, n + 95, n + 1234] {
                if total > n && n < LIST_LIMIT {
                    continue; // a counted tail needs a full head
                }
                for limit in 0..=LIST_LIMIT {
                    let built = list_of(head, total, limit).chars().count();
                    assert_eq!(list_chars(&chars, total, limit), built, "{n} {total} {limit}");
                }
            }
        }
    }

    #[test]
    fn counts_and_plurals_read_as_formatted() {
        for n in [0, 1, 2, 9, 10, 11, 99, 100, 12345, usize::MAX] {
            let mut out = String::from("x");
            push_count(&mut out, n);
            assert_eq!(out, format!("x{n}"));
            assert_eq!(plural(n, "node"), format!("{n} {}", if n == 1 { "node" } else { "nodes" }));
            assert_eq!(Plural(n, "pool").to_string(), plural(n, "pool"));
        }
    }

    /// What [`fit`] keeps: the text when it has at most the limit's
    /// characters, else its first limit - 1 characters and the mark.
    #[test]
    fn fitted_texts_keep_whole_characters_up_to_the_limit() {
        for n in [0, 1, 119, 120, 121, 122, 300] {
            for unit in ["x", "é", "€", "😀", "aé"] {
                let text = unit.repeat(n);
                let chars: Vec<char> = text.chars().collect();
                let expected = if chars.len() <= WARNING_LIMIT {
                    text.clone()
                } else {
                    chars[..WARNING_LIMIT - 1].iter().chain(['…'].iter()).collect()
                };
                assert_eq!(fit(text), expected, "{n} x {unit:?}");
            }
        }
    }

    #[test]
    fn warnings_fit() {
        let long: Vec<String> = (0..20).map(|i| format!("a-rather-long-node-pool-name-{i}")).collect();
        let w = fit_list(&long, |l| format!("sysbox-ro: pools {l} lack sysbox-mgr --relaxed-read-only"));
        assert!(w.chars().count() <= WARNING_LIMIT, "{w}");
        assert!(w.contains("more"));
        assert_eq!(fit("x".repeat(300)).chars().count(), WARNING_LIMIT);
    }
}
