//! What the `SYSBOX_MGR_CONFIG` value of the Sysbox ConfigMap means for the
//! nodes that (re)install Sysbox: the installer pastes it into sysbox-mgr's
//! unit, systemd splits the line and sysbox-mgr parses it. All three steps
//! are modelled in [`crate::sysbox`]; this module turns the answer into the
//! cluster's [`MgrIntent`].

use super::MgrIntent;
use crate::sysbox::{installed_mgr, InstalledMgr};

/// The cluster's intent for nodes without a flag label, from the ConfigMap
/// key's value (`None` when the ConfigMap lacks the key: the installer then
/// leaves the unit as shipped).
pub fn intent(value: Option<&str>) -> MgrIntent {
    let installed = installed_mgr(value.unwrap_or_default());
    match (&installed, installed.starts()) {
        (InstalledMgr::Runs { mgr, .. }, Some(true)) => {
            MgrIntent::ConfigMap(mgr.mentioned.then_some(mgr.relaxed_read_only))
        }
        (InstalledMgr::Unpredictable(why), _) => MgrIntent::ConfigMapUnclear(why.clone()),
        _ => MgrIntent::ConfigMapStopsMgr(installed.not_start_reason().unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(flags: &str) -> MgrIntent {
        intent(Some(flags))
    }

    fn stops(flags: &str) -> bool {
        matches!(r(flags), MgrIntent::ConfigMapStopsMgr(_))
    }

    #[test]
    fn spellings() {
        use MgrIntent::ConfigMap as Cm;
        assert_eq!(intent(None), Cm(None));
        assert_eq!(r(""), Cm(None));
        assert_eq!(r("--log-level info"), Cm(None));
        assert_eq!(r("--relaxed-read-only"), Cm(Some(true)));
        assert_eq!(r("-relaxed-read-only"), Cm(Some(true)));
        assert_eq!(r("  --relaxed-read-only=false "), Cm(Some(false)));
        assert_eq!(r("--relaxed-read-only=true --relaxed-read-only=false"), Cm(Some(false)));
        assert_eq!(r("--relaxed-read-only=false -relaxed-read-only"), Cm(Some(true)));
        // systemd removes the quotes (load-fragment.c config_parse_exec, EXTRACT_UNQUOTE).
        assert_eq!(r("\"--relaxed-read-only\""), Cm(Some(true)));
        assert_eq!(r("--relaxed-read-only='true'"), Cm(Some(true)));
    }

    #[test]
    fn what_a_token_scan_gets_wrong() {
        use MgrIntent::ConfigMap as Cm;
        // Go flag: an unknown flag is an error and sysbox-mgr exits (main.go logrus.Fatal).
        assert!(stops("--relaxed-read-only-foo"));
        // strconv.ParseBool refuses "maybe": sysbox-mgr exits.
        assert!(stops("--relaxed-read-only=maybe"));
        // A value flag takes the next argument, so the flag is not set.
        assert_eq!(r("--data-root --relaxed-read-only"), Cm(None));
        // Parsing stops at the first non-flag.
        assert_eq!(r("stray --relaxed-read-only"), Cm(None));
        // A boolean takes no separate value: `false` ends the flags, the flag is on.
        assert_eq!(r("--relaxed-read-only false"), Cm(Some(true)));
        // -h, -v and an unknown log level stop it too.
        assert!(stops("-h --relaxed-read-only"));
        assert!(stops("--log-level=warn --relaxed-read-only"));
        // The line systemd refuses never runs.
        assert!(stops("--relaxed-read-only \"unterminated"));
    }

    #[test]
    fn a_configmap_that_stops_sysbox_mgr_leaves_unlabelled_nodes_without_the_flag() {
        use crate::cluster::pools::FlagLabel;
        use crate::cluster::{ClusterState, FlagSource};
        use k8s_openapi::api::core::v1::ConfigMap;
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "sysbox-operational-attributes", "namespace": "kube-system"},
            "data": {"SYSBOX_MGR_CONFIG": "--relaxed-read-only --relaxed-read-only=yes"}
        }))
        .expect("ConfigMap");
        let state = ClusterState::build([], [], [], Some(&cm), &crate::policy::NodePolicy::default());
        let MgrIntent::ConfigMapStopsMgr(why) = &state.mgr else { panic!("{:?}", state.mgr) };
        assert!(why.contains("invalid boolean value \"yes\""), "{why}");
        assert_eq!(state.flag_of(&FlagLabel::Absent), (false, FlagSource::ConfigMap));
        // A label still decides for its node.
        assert_eq!(state.flag_of(&FlagLabel::True), (true, FlagSource::Label));
    }

    #[test]
    fn node_dependent_lines_are_unclear() {
        assert!(matches!(r("$SYSBOX_FLAGS"), MgrIntent::ConfigMapUnclear(_)));
    }
}
