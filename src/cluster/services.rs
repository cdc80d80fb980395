//! Services whose service links give pods `SYSBOX_*` variables.
//!
//! With `enableServiceLinks` unset or true, the kubelet gives every container
//! `<NAME>_SERVICE_HOST`, `<NAME>_SERVICE_PORT`, `<NAME>_PORT...` for each
//! Service of the pod's namespace that has a cluster IP, NAME being the
//! Service's name upper-cased with `-` turned into `_`
//! (`pkg/kubelet/envvars/envvars.go`, `FromServices`;
//! `pkg/kubelet/kubelet_pods.go`, `getServiceEnvVarMap`). A Service named
//! `sysbox` or `sysbox-*` therefore yields `SYSBOX_*` names, which
//! sysbox-runc refuses. Only those Services are kept: the index stays as
//! small as the number of such Services, however many others the cluster has.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Service;

/// Whether a Service with this name gives service-link variables starting `SYSBOX_`.
pub fn links_into_sysbox(name: &str) -> bool {
    name == "sysbox" || name.starts_with("sysbox-")
}

/// `SYSBOX_FOO` for Service `sysbox-foo` (`makeEnvVariableName`).
pub fn variable_stem(name: &str) -> String {
    name.replace('-', "_").to_uppercase()
}

/// Whether the kubelet makes service links for a Service (`IsServiceIPSet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClusterIp {
    /// It has a cluster IP: its links reach every pod of the namespace.
    Set,
    /// Headless or ExternalName: no links.
    NotSet,
    /// Only its metadata is known (the live view watches metadata only).
    Unknown,
}

/// One Service named `sysbox` or `sysbox-*`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SysboxService {
    pub name: String,
    pub cluster_ip: ClusterIp,
}

/// The Services named `sysbox` or `sysbox-*`, by namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceIndex {
    by_namespace: BTreeMap<String, BTreeSet<SysboxService>>,
}

impl ServiceIndex {
    /// Adds a Service by its namespace and name; other names are passed over.
    /// Returns whether it was kept.
    pub fn add(&mut self, namespace: &str, name: &str, cluster_ip: ClusterIp) -> bool {
        if !links_into_sysbox(name) {
            return false;
        }
        self.by_namespace
            .entry(namespace.to_owned())
            .or_default()
            .insert(SysboxService { name: name.to_owned(), cluster_ip });
        true
    }

    /// Adds a full Service object (from a snapshot).
    pub fn add_service(&mut self, service: &Service) -> bool {
        let meta = &service.metadata;
        let (Some(ns), Some(name)) = (meta.namespace.as_deref(), meta.name.as_deref()) else { return false };
        let ip = service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()).unwrap_or("");
        let cluster_ip = if ip.is_empty() || ip == "None" { ClusterIp::NotSet } else { ClusterIp::Set };
        self.add(ns, name, cluster_ip)
    }

    /// The kept Services of a namespace whose links (may) reach its pods, by name.
    pub fn linking(&self, namespace: &str) -> impl Iterator<Item = &SysboxService> {
        self.by_namespace.get(namespace).into_iter().flatten().filter(|s| s.cluster_ip != ClusterIp::NotSet)
    }

    /// How many Services are kept.
    pub fn len(&self) -> usize {
        self.by_namespace.values().map(BTreeSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A watch event on a Service, by namespace and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameEvent<'a> {
    Apply(&'a str, &'a str),
    Delete(&'a str, &'a str),
    /// The watch (re)starts listing.
    Init,
    InitApply(&'a str, &'a str),
    /// The listing is complete.
    InitDone,
}

/// The live view's Services, fed by a metadata-only watch: only the names
/// that give `SYSBOX_*` links are kept (memory grows with those alone), and
/// how many Services the last listing held, for the metrics.
#[derive(Debug, Default)]
pub struct ServiceNames {
    current: BTreeSet<(String, String)>,
    /// A relisting under way: replaces `current` when done.
    relist: Option<(BTreeSet<(String, String)>, usize)>,
    synced: bool,
    /// Services in the last complete listing, all names.
    pub listed: usize,
}

impl ServiceNames {
    /// Applies one event; returns whether the kept names changed.
    pub fn apply(&mut self, event: NameEvent<'_>) -> bool {
        let key = |ns: &str, name: &str| (ns.to_owned(), name.to_owned());
        match event {
            NameEvent::Apply(ns, name) => links_into_sysbox(name) && self.current.insert(key(ns, name)),
            NameEvent::Delete(ns, name) => links_into_sysbox(name) && self.current.remove(&key(ns, name)),
            NameEvent::Init => {
                self.relist = Some((BTreeSet::new(), 0));
                false
            }
            NameEvent::InitApply(ns, name) => {
                let (kept, seen) = self.relist.get_or_insert_with(Default::default);
                *seen += 1;
                if links_into_sysbox(name) {
                    kept.insert(key(ns, name));
                }
                false
            }
            NameEvent::InitDone => {
                let (kept, seen) = self.relist.take().unwrap_or_default();
                self.listed = seen;
                self.synced = true;
                let changed = kept != self.current;
                self.current = kept;
                changed
            }
        }
    }

    /// Whether a complete listing has been seen.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// The index the cluster state reads (cluster IPs unknown: metadata only).
    pub fn index(&self) -> ServiceIndex {
        let mut idx = ServiceIndex::default();
        for (ns, name) in &self.current {
            idx.add(ns, name, ClusterIp::Unknown);
        }
        idx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_events_keep_only_sysbox_names() {
        let mut names = ServiceNames::default();
        assert!(!names.synced());
        names.apply(NameEvent::Init);
        for i in 0..1000 {
            names.apply(NameEvent::InitApply("ci", &format!("web-{i}")));
        }
        names.apply(NameEvent::InitApply("ci", "sysbox"));
        assert!(!names.synced(), "not synced before the listing is done");
        assert!(names.apply(NameEvent::InitDone));
        assert_eq!((names.synced(), names.listed, names.current.len()), (true, 1001, 1));
        assert!(names.apply(NameEvent::Apply("dev", "sysbox-cache")));
        assert!(!names.apply(NameEvent::Apply("dev", "web")));
        assert!(names.apply(NameEvent::Delete("ci", "sysbox")));
        let idx = names.index();
        let dev: Vec<_> = idx.linking("dev").cloned().collect();
        assert_eq!(dev, [SysboxService { name: "sysbox-cache".into(), cluster_ip: ClusterIp::Unknown }]);
        // A relisting replaces what was kept.
        names.apply(NameEvent::Init);
        assert!(names.apply(NameEvent::InitDone));
        assert!(names.index().is_empty());
    }

    #[test]
    fn only_sysbox_names_are_kept() {
        // pkg/kubelet/envvars/envvars.go makeEnvVariableName: upper case, '-' to '_'
        assert_eq!(variable_stem("sysbox-ci-cache"), "SYSBOX_CI_CACHE");
        let mut idx = ServiceIndex::default();
        assert!(idx.add("ci", "sysbox", ClusterIp::Set));
        assert!(idx.add("ci", "sysbox-cache", ClusterIp::Unknown));
        assert!(idx.add("ci", "sysbox-headless", ClusterIp::NotSet));
        // SYSBOXFOO_SERVICE_HOST does not start with SYSBOX_
        assert!(!idx.add("ci", "sysboxfoo", ClusterIp::Set));
        assert!(!idx.add("ci", "web", ClusterIp::Set));
        assert_eq!(idx.len(), 3);
        let names: Vec<&str> = idx.linking("ci").map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["sysbox", "sysbox-cache"]);
        assert_eq!(idx.linking("other").count(), 0);
    }
}
