//! Reading `--relaxed-read-only` out of the `SYSBOX_MGR_CONFIG` value that
//! sysbox-deploy-k8s pastes into sysbox-mgr's command line.

/// Whether the flag line turns relaxed read-only on. `None` when the flag is
/// not mentioned (sysbox-mgr's default, off, applies). Accepts `--flag` and
/// `-flag`, `=true|false` (and Go's other boolean spellings); the last mention
/// wins; stray whitespace and quotes around the value or a token are ignored.
pub fn relaxed_read_only(flags: &str) -> Option<bool> {
    let mut result = None;
    for raw in flags.split_whitespace() {
        let token = raw.trim_matches(|c| c == '"' || c == '\'');
        let Some(body) = token.strip_prefix("--").or_else(|| token.strip_prefix('-')) else {
            continue;
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.trim_matches(|c| c == '"' || c == '\''))),
            None => (body, None),
        };
        if name != "relaxed-read-only" {
            continue;
        }
        match value {
            None => result = Some(true),
            Some(v) => {
                if let Some(b) = parse_go_bool(v) {
                    result = Some(b);
                }
            }
        }
    }
    result
}

/// Go's `strconv.ParseBool`, which sysbox-mgr's flag parsing uses.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::relaxed_read_only as r;

    #[test]
    fn spellings() {
        assert_eq!(r(""), None);
        assert_eq!(r("--log-level info"), None);
        assert_eq!(r("--relaxed-read-only"), Some(true));
        assert_eq!(r("-relaxed-read-only"), Some(true));
        assert_eq!(r("  --relaxed-read-only=false "), Some(false));
        assert_eq!(r("--relaxed-read-only=true --relaxed-read-only=false"), Some(false));
        assert_eq!(r("--relaxed-read-only=false -relaxed-read-only"), Some(true));
        assert_eq!(r("\"--relaxed-read-only\""), Some(true));
        assert_eq!(r("--relaxed-read-only='true'"), Some(true));
        assert_eq!(r("--relaxed-read-only-foo"), None);
        assert_eq!(r("--relaxed-read-only=maybe"), None);
    }
}
