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
    match (head, rest) {
        ([], _) => String::new(),
        ([one], 0) => one.clone(),
        (_, 0) => format!("{} and {}", head[..shown - 1].join(", "), head[shown - 1]),
        (_, n) => format!("{} and {n} more", head.join(", ")),
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
pub fn fit_list_of(head: &[String], total: usize, render: impl Fn(&str) -> String) -> String {
    for limit in (1..=total.clamp(1, LIST_LIMIT)).rev() {
        let text = render(&list_of(head, total, limit));
        if text.chars().count() <= WARNING_LIMIT {
            return text;
        }
    }
    fit(&render(&list_of(head, total, 1)))
}

/// Cuts a text to [`WARNING_LIMIT`] characters, marking the cut.
pub fn fit(text: &str) -> String {
    if text.chars().count() <= WARNING_LIMIT {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(WARNING_LIMIT - 1).collect();
    cut.push('…');
    cut
}

/// "1 node", "2 nodes".
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
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
    fn warnings_fit() {
        let long: Vec<String> = (0..20).map(|i| format!("a-rather-long-node-pool-name-{i}")).collect();
        let w = fit_list(&long, |l| format!("sysbox-ro: pools {l} lack sysbox-mgr --relaxed-read-only"));
        assert!(w.chars().count() <= WARNING_LIMIT, "{w}");
        assert!(w.contains("more"));
        assert_eq!(fit(&"x".repeat(300)).chars().count(), WARNING_LIMIT);
    }
}
