//! A container's `SYSBOX_*` environment as sysbox-runc will see it, worked
//! out from the pod spec the way the kubelet builds the environment
//! (`pkg/kubelet/kubelet_pods.go`, `makeEnvironmentVariables`): `envFrom`
//! first (each key with the source's `prefix`), then `env` in order, each
//! value with its `$(VAR)` references expanded against what came before.
//! sysbox-runc then checks every `SYSBOX_*` entry
//! (`libsysbox/syscont/spec.go`, `getSysboxEnvVarConfigs`).
//!
//! What the pod spec cannot tell (a ConfigMap's keys, a `valueFrom`, a
//! reference to a variable this view cannot resolve) is reported as
//! unverified, never guessed.
//!
//! Expansion can grow a value exponentially (`B=$(A)$(A)`, `C=$(B)$(B)`, ...:
//! 40 short entries make a terabyte), so what references copy is bounded by a
//! [`Budget`] per pod: once spent, a value that needs more is not followed,
//! and a `SYSBOX_*` entry holding one is reported as unverified (as a
//! `valueFrom` would be), not guessed. Literal text is not counted: it is
//! bounded by the object's own size.

use std::collections::BTreeMap;

use super::subject::ContainerView;

/// The prefix sysbox-runc reserves.
pub const PREFIX: &str = "SYSBOX_";
/// The variables that take exactly `TRUE` or `FALSE`.
pub const BOOLEAN_VARS: [&str; 4] =
    ["SYSBOX_IGNORE_SYSFS_CHOWN", "SYSBOX_ALLOW_TRUSTED_XATTR", "SYSBOX_HONOR_CAPS", "SYSBOX_SYSCONT_MODE"];
/// The variable that takes a comma-separated list of absolute paths.
pub const SKIP_UID_SHIFT: &str = "SYSBOX_SKIP_UID_SHIFT";
/// Turns Sysbox's system-container handling (implicit mounts, `/sys`) off.
pub const SYSCONT_MODE: &str = "SYSBOX_SYSCONT_MODE";

fn is_known(name: &str) -> bool {
    BOOLEAN_VARS.contains(&name) || name == SKIP_UID_SHIFT
}

/// Bytes that `$(VAR)` references may copy while judging one pod's
/// containers; a piece counts as [`PIECE_COST`] bytes besides its text.
pub const POD_EXPANSION_BUDGET: usize = 1 << 20;
const PIECE_COST: usize = 16;

/// What references may still copy for this pod.
#[derive(Debug)]
pub struct Budget {
    left: usize,
}

impl Budget {
    /// [`POD_EXPANSION_BUDGET`], for one pod (or one pod template).
    pub fn per_pod() -> Budget {
        Budget { left: POD_EXPANSION_BUDGET }
    }

    fn take(&mut self, cost: usize) -> bool {
        match self.left.checked_sub(cost) {
            Some(left) => {
                self.left = left;
                true
            }
            None => {
                self.left = 0;
                false
            }
        }
    }
}

/// One part of a value after the kubelet's expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// A value this view cannot know.
    Hole,
    /// A value whose references would copy more than the [`Budget`] left.
    Unfollowed,
}

/// A value at run time: known text and holes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct RuntimeValue(Vec<Piece>);

impl RuntimeValue {
    fn text(s: &str) -> RuntimeValue {
        RuntimeValue(vec![Piece::Text(s.to_owned())])
    }
    fn hole() -> RuntimeValue {
        RuntimeValue(vec![Piece::Hole])
    }
    fn unfollowed() -> RuntimeValue {
        RuntimeValue(vec![Piece::Unfollowed])
    }
    fn is_unfollowed(&self) -> bool {
        self.0.iter().any(|p| matches!(p, Piece::Unfollowed))
    }
    /// What copying this value costs the [`Budget`].
    fn cost(&self) -> usize {
        self.0.iter().map(|p| PIECE_COST + if let Piece::Text(t) = p { t.len() } else { 0 }).sum()
    }
    fn known(&self) -> Option<String> {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Hole | Piece::Unfollowed => return None,
            }
        }
        Some(out)
    }
    fn texts(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            Piece::Text(t) => Some(t.as_str()),
            Piece::Hole | Piece::Unfollowed => None,
        })
    }
    /// Appends `other`, joining text to text and a hole to a hole (unknown
    /// text next to unknown text is one unknown text), so the pieces stay
    /// few however the value was built.
    fn push(&mut self, other: &RuntimeValue) {
        for p in &other.0 {
            match p {
                Piece::Text(t) => self.push_text(t),
                Piece::Hole if matches!(self.0.last(), Some(Piece::Hole)) => {}
                p => self.0.push(p.clone()),
            }
        }
    }
    fn push_text(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        match self.0.last_mut() {
            Some(Piece::Text(t)) => t.push_str(s),
            _ => self.0.push(Piece::Text(s.to_owned())),
        }
    }
}

/// The kubelet's `$(VAR)` expansion (`third_party/forked/golang/expansion/expand.go`):
/// `$$` is a literal `$`, `$(NAME)` is replaced by what `lookup` gives (a
/// reference it cannot resolve stays as written), an unterminated `$(` and
/// a `$` before anything else are copied. A reference to an unfollowed
/// value, or one that would copy more than `budget` has left, makes the
/// whole value unfollowed.
fn expand<V: std::borrow::Borrow<RuntimeValue>>(
    input: &str,
    lookup: impl Fn(&str) -> Option<V>,
    budget: &mut Budget,
) -> RuntimeValue {
    let mut out = RuntimeValue::default();
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_text(&rest[..at]);
        let after = &rest[at + 1..];
        let mut chars = after.chars();
        match chars.next() {
            None => {
                out.push_text("$");
                rest = after;
            }
            Some('$') => {
                out.push_text("$");
                rest = &after[1..];
            }
            Some('(') => match after[1..].find(')') {
                Some(close) => {
                    let name = &after[1..1 + close];
                    match lookup(name) {
                        Some(v) => {
                            let v = v.borrow();
                            if v.is_unfollowed() || !budget.take(v.cost()) {
                                return RuntimeValue::unfollowed();
                            }
                            out.push(v)
                        }
                        None => out.push_text(&format!("$({name})")),
                    }
                    rest = &after[close + 2..];
                }
                None => {
                    out.push_text("$(");
                    rest = &after[1..];
                }
            },
            Some(c) => {
                out.push_text("$");
                out.push_text(&after[..c.len_utf8()]);
                rest = &after[c.len_utf8()..];
            }
        }
    }
    out.push_text(rest);
    RuntimeValue(out.0.into_iter().filter(|p| !matches!(p, Piece::Text(t) if t.is_empty())).collect())
}

/// What one container's `SYSBOX_*` environment comes to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvJudgement {
    /// Entries sysbox-runc certainly refuses: why, one each.
    pub refused: Vec<String>,
    /// Entries whose name or value this view cannot read: what, one each.
    pub unverified: Vec<String>,
    /// `SYSBOX_SYSCONT_MODE` is certainly `FALSE`.
    pub syscont_mode_off: bool,
}

/// Go's `regexp` `\s` (RE2 Perl class): tab, newline, form feed, carriage return, space.
fn go_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

/// Why sysbox-runc refuses `name=value` (a value known in full), if it does.
pub fn refusal(name: &str, value: &str) -> Option<String> {
    if !name.starts_with(PREFIX) {
        return None;
    }
    if !is_known(name) {
        return Some(format!("{name} is not one of the variables sysbox-runc accepts"));
    }
    if value.contains('=') {
        return Some(format!(
            "{name}={value:?}: sysbox-runc splits the entry on every '=', so the value may hold none"
        ));
    }
    if BOOLEAN_VARS.contains(&name) {
        return (value != "TRUE" && value != "FALSE")
            .then(|| format!("{name}={value:?} must be exactly TRUE or FALSE"));
    }
    if value.is_empty() {
        return Some(format!("{name} must not be empty"));
    }
    if value.chars().any(go_space) {
        return Some(format!("{name}={value:?} must not contain whitespace"));
    }
    value
        .split(',')
        .find(|p| !p.starts_with('/'))
        .map(|p| format!("{name} must list absolute paths separated by commas, not {p:?}"))
}

/// The value of each `SYSBOX_*` entry of `c` as the container will see it
/// (its last definition), and whether it comes from a `valueFrom`.
fn sysbox_entries<'c>(c: &'c ContainerView, budget: &mut Budget) -> BTreeMap<&'c str, (RuntimeValue, bool)> {
    // env, in order: a reference sees envFrom and the entries before it.
    // Only the SYSBOX_* entries are judged; the others matter only to a
    // SYSBOX_* value that refers to something. When none has a `$(`, nothing
    // is looked up, and the other entries need not be expanded at all.
    let references = c
        .env
        .iter()
        .flatten()
        .any(|e| e.name.starts_with(PREFIX) && e.value.as_deref().is_some_and(|v| v.contains("$(")));
    let mut defined: BTreeMap<&str, (RuntimeValue, bool)> = BTreeMap::new();
    let hole = RuntimeValue::hole();
    for e in c.env.iter().flatten().filter(|e| references || e.name.starts_with(PREFIX)) {
        let value = match e.value.as_deref() {
            // A reference to an earlier entry is expanded; anything else
            // (envFrom, service links, an undefined name) is not known here.
            Some(v) if !v.is_empty() => expand(v, |name| Some(defined.get(name).map_or(&hole, |(v, _)| v)), budget),
            _ if e.value_from.is_some() => RuntimeValue::hole(),
            _ => RuntimeValue::text(""),
        };
        defined.insert(&e.name, (value, e.value_from.is_some()));
    }
    defined.retain(|name, _| name.starts_with(PREFIX));
    defined
}

/// Judges one container's environment; `budget` is shared by the
/// containers of one pod.
pub fn judge(c: &ContainerView, budget: &mut Budget) -> EnvJudgement {
    let mut out = EnvJudgement::default();
    // envFrom: the keys of a ConfigMap or Secret are not visible here.
    for from in c.env_from.iter().flatten() {
        let Some(source) = from.source() else { continue };
        let prefix: &str = from.prefix.as_deref().unwrap_or_default();
        if prefix.starts_with(PREFIX) {
            let could_be_known = BOOLEAN_VARS.iter().chain(&[SKIP_UID_SHIFT]).any(|v| v.starts_with(prefix));
            if could_be_known {
                out.unverified.push(format!(
                    "envFrom {source} with prefix {prefix} sets SYSBOX_* variables whose names and values cannot be \
                     read here"
                ));
            } else {
                out.refused.push(format!(
                    "envFrom {source} with prefix {prefix}: every key becomes {prefix}<key>, which is not one of \
                     the variables sysbox-runc accepts"
                ));
            }
        } else if PREFIX.starts_with(prefix) {
            out.unverified.push(
                ["envFrom ", source.as_str(), " may set SYSBOX_* variables (its keys cannot be read here)"].concat(),
            );
        }
    }

    let defined = sysbox_entries(c, budget);
    for (name, (value, from_ref)) in &defined {
        if !name.starts_with(PREFIX) {
            continue;
        }
        match value.known() {
            Some(v) => out.refused.extend(refusal(name, &v)),
            None if !is_known(name) => out.refused.extend(refusal(name, "")),
            None if value.texts().any(|t| t.contains('=')) => {
                out.refused.push(format!("{name}: its value holds '=', and sysbox-runc splits the entry on every '='"))
            }
            None if *name == SKIP_UID_SHIFT && value.texts().any(|t| t.chars().any(go_space)) => {
                out.refused.push(format!("{name}: its value holds whitespace"))
            }
            None if value.is_unfollowed() => out.unverified.push(format!(
                "{name} refers to variables that expand past {POD_EXPANSION_BUDGET} bytes in this pod, which is not \
                 followed here"
            )),
            None => out.unverified.push(if *from_ref {
                format!("{name} comes from valueFrom, which cannot be read here")
            } else {
                format!("{name} refers to variables whose values cannot be read here")
            }),
        }
    }
    out.syscont_mode_off = defined.get(SYSCONT_MODE).and_then(|(v, _)| v.known()).as_deref() == Some("FALSE");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(v: &RuntimeValue) -> Option<String> {
        v.known()
    }

    #[test]
    fn expansion_follows_the_kubelet() {
        // third_party/forked/golang/expansion/expand.go, Expand and tryReadVariableName
        let lookup = |n: &str| (n == "A").then(|| RuntimeValue::text("x"));
        let e = |s: &str| texts(&expand(s, lookup, &mut Budget::per_pod()));
        assert_eq!(e("$(A)"), Some("x".into()));
        assert_eq!(e("$$(A)"), Some("$(A)".into()));
        assert_eq!(e("$(B)"), Some("$(B)".into()));
        assert_eq!(e("a$(A"), Some("a$(A".into()));
        assert_eq!(e("$a$"), Some("$a$".into()));
        assert_eq!(e("pre$(A)post"), Some("prexpost".into()));
        assert_eq!(expand("$(H)", |_| Some(RuntimeValue::hole()), &mut Budget::per_pod()).known(), None);
    }

    /// The same expansion written the kubelet's way, byte by byte, with a
    /// lookup that resolves every name to `<NAME>`.
    fn reference_expand(input: &str) -> String {
        let b = input.as_bytes();
        let (mut out, mut checkpoint, mut cursor) = (String::new(), 0, 0);
        while cursor < b.len() {
            if b[cursor] == b'$' && cursor + 1 < b.len() {
                out.push_str(&input[checkpoint..cursor]);
                let rest = &input[cursor + 1..];
                let (read, advance) = match rest.chars().next() {
                    Some('$') => ("$".to_owned(), 1),
                    Some('(') => match rest[1..].find(')') {
                        Some(i) => (format!("<{}>", &rest[1..1 + i]), i + 2),
                        None => ("$(".to_owned(), 1),
                    },
                    Some(c) => (format!("${c}"), c.len_utf8()),
                    None => (String::new(), 0),
                };
                out.push_str(&read);
                cursor += advance;
                checkpoint = cursor + 1;
            }
            cursor += 1;
        }
        out + input.get(checkpoint..).unwrap_or("")
    }

    proptest::proptest! {
        #[test]
        fn expansion_agrees_with_the_kubelets_algorithm(input in "[a-z$()]{0,24}|\\PC{0,16}") {
            let ours = expand(&input, |n| Some(RuntimeValue::text(&format!("<{n}>"))), &mut Budget::per_pod()).known();
            proptest::prop_assert_eq!(ours, Some(reference_expand(&input)));
        }

        #[test]
        fn any_environment_is_judged_without_panic(
            names in proptest::collection::vec("SYSBOX_[A-Z_]{0,12}|[A-Z]{1,4}", 0..6),
            values in proptest::collection::vec("[A-Z/=, $()]{0,12}", 0..6),
        ) {
            let env: Vec<_> = names
                .iter()
                .zip(values.iter().map(String::as_str).chain(std::iter::repeat("")))
                .map(|(n, v)| super::super::subject::EnvVarView { name: n.as_str().into(), value: Some(v.into()), value_from: None })
                .collect();
            let c = ContainerView { env: Some(env), ..Default::default() };
            let j = judge(&c, &mut Budget::per_pod());
            // Every unknown SYSBOX_ name is refused, whatever its value.
            for n in names.iter().filter(|n| n.starts_with(PREFIX) && !is_known(n)) {
                proptest::prop_assert!(j.refused.iter().any(|r| r.contains(n.as_str())), "{n}: {j:?}");
            }
        }
    }

    /// `V{i}=$(V{i-1})$(V{i-1})` for i in 1..=`levels`, then
    /// `SYSBOX_HONOR_CAPS=$(V{levels})`: what follows a `V0` entry.
    fn doubling(levels: usize) -> Vec<(String, String)> {
        let mut env: Vec<_> = (1..=levels).map(|i| (format!("V{i}"), format!("$(V{})$(V{})", i - 1, i - 1))).collect();
        env.push(("SYSBOX_HONOR_CAPS".into(), format!("$(V{levels})")));
        env
    }

    /// A container with `V0` (`x`, or a `valueFrom`) then `rest`.
    fn container(v0_from: bool, rest: &[(String, String)]) -> ContainerView<'_> {
        let v0 = super::super::subject::EnvVarView {
            name: "V0".into(),
            value: (!v0_from).then_some("x".into()),
            value_from: v0_from.then(Default::default),
        };
        let rest = rest.iter().map(|(n, v)| super::super::subject::EnvVarView {
            name: n.as_str().into(),
            value: Some(v.as_str().into()),
            value_from: None,
        });
        ContainerView { env: Some(std::iter::once(v0).chain(rest).collect()), ..Default::default() }
    }

    #[test]
    fn references_that_double_a_value_stop_at_the_budget_and_are_unverified_not_guessed() {
        // 2^60 bytes if followed; judged after at most the budget's worth of copies.
        let sixty = doubling(60);
        let j = judge(&container(false, &sixty), &mut Budget::per_pod());
        assert!(j.refused.is_empty(), "{j:?}");
        assert_eq!(j.unverified.len(), 1, "{j:?}");
        assert!(j.unverified[0].starts_with("SYSBOX_HONOR_CAPS refers to variables that expand past"), "{j:?}");
        // Unknown text next to unknown text is one hole: doubling a
        // valueFrom stays one piece, and reads as any valueFrom does.
        let j = judge(&container(true, &sixty), &mut Budget::per_pod());
        assert_eq!(j.unverified, ["SYSBOX_HONOR_CAPS refers to variables whose values cannot be read here"], "{j:?}");
        // Within the budget, the value is followed and judged: 2^10 x "x" is not TRUE or FALSE.
        let j = judge(&container(false, &doubling(10)), &mut Budget::per_pod());
        assert!(j.unverified.is_empty() && j.refused.len() == 1, "{j:?}");
        assert!(j.refused[0].starts_with("SYSBOX_HONOR_CAPS=\"xxxx"), "{j:?}");
    }

    #[test]
    fn the_budget_is_shared_by_the_containers_of_a_pod() {
        let mut budget = Budget::per_pod();
        // 2^15 bytes doubled up to SYSBOX_HONOR_CAPS: about 64 KiB of copies a container.
        let fifteen = doubling(15);
        let judged: Vec<_> = (0..64).map(|_| judge(&container(false, &fifteen), &mut budget)).collect();
        assert!(judged[0].unverified.is_empty(), "{:?}", judged[0]);
        let last = judged.last().unwrap();
        assert!(last.unverified.iter().any(|u| u.contains("expand past")), "{last:?}");
    }

    /// Every entry expanded in order, as the kubelet does: what
    /// `sysbox_entries` must agree with on the SYSBOX_* names.
    fn every_entry(c: &ContainerView) -> BTreeMap<String, (RuntimeValue, bool)> {
        let mut defined: BTreeMap<String, (RuntimeValue, bool)> = BTreeMap::new();
        let hole = RuntimeValue::hole();
        let mut budget = Budget::per_pod();
        for e in c.env.iter().flatten() {
            let value = match e.value.as_deref() {
                Some(v) if !v.is_empty() => {
                    expand(v, |name| Some(defined.get(name).map_or(&hole, |(v, _)| v)), &mut budget)
                }
                _ if e.value_from.is_some() => RuntimeValue::hole(),
                _ => RuntimeValue::text(""),
            };
            defined.insert(e.name.to_string(), (value, e.value_from.is_some()));
        }
        defined.retain(|name, _| name.starts_with(PREFIX));
        defined
    }

    proptest::proptest! {
        /// `sysbox_entries` skips the entries no SYSBOX_* value refers to;
        /// expanding every entry gives the same SYSBOX_* values.
        #[test]
        fn skipping_entries_no_sysbox_value_refers_to_changes_nothing(
            entries in proptest::collection::vec(
                ("SYSBOX_HONOR_CAPS|SYSBOX_SYSCONT_MODE|SYSBOX_SKIP_UID_SHIFT|SYSBOX_OTHER|A|B|PATH",
                 "TRUE|FALSE|/a,/b|[A-Z/=, $]{0,8}|\\$\\((A|B|PATH|SYSBOX_OTHER)\\)[A-Z]{0,2}|\\$\\$\\(A\\)",
                 proptest::bool::ANY),
                0..10),
        ) {
            let env: Vec<_> = entries
                .iter()
                .map(|(n, v, from)| super::super::subject::EnvVarView {
                    name: n.as_str().into(),
                    value: (!from).then_some(v.as_str().into()),
                    value_from: from.then(Default::default),
                })
                .collect();
            let c = ContainerView { env: Some(env), ..Default::default() };
            let skipping: BTreeMap<String, (RuntimeValue, bool)> =
                sysbox_entries(&c, &mut Budget::per_pod()).into_iter().map(|(n, v)| (n.to_owned(), v)).collect();
            proptest::prop_assert_eq!(skipping, every_entry(&c));
        }
    }

    #[test]
    fn refusals_follow_sysbox_runc() {
        // libsysbox/syscont/spec.go, getSysboxEnvVarConfigs and its helpers
        assert_eq!(refusal("PATH", "/bin"), None);
        assert_eq!(refusal("SYSBOX_HONOR_CAPS", "TRUE"), None);
        assert!(refusal("SYSBOX_HONOR_CAPS", "true").is_some());
        assert!(refusal("SYSBOX_HONOR_CAPS", "").is_some());
        assert!(refusal("SYSBOX_HONOR_CAPS", "TRUE=1").is_some());
        assert_eq!(refusal("SYSBOX_SKIP_UID_SHIFT", "/a,/b/c"), None);
        assert!(refusal("SYSBOX_SKIP_UID_SHIFT", "/a,b").is_some());
        assert!(refusal("SYSBOX_SKIP_UID_SHIFT", "/a,").is_some());
        assert!(refusal("SYSBOX_SKIP_UID_SHIFT", "").is_some());
        assert!(refusal("SYSBOX_SKIP_UID_SHIFT", "/a /b").is_some());
        assert!(refusal("SYSBOX_SKIP_UID_SHIFT", "/a=b").is_some());
        // Go's \s does not include the vertical tab.
        assert_eq!(refusal("SYSBOX_SKIP_UID_SHIFT", "/a\x0b"), None);
        assert!(refusal("SYSBOX_RELAXED_READ_ONLY", "TRUE").is_some());
    }
}
