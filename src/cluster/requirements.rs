//! Karpenter's scheduling requirements: the set algebra it uses to decide
//! whether a pod fits a class of possible nodes (a NodePool), written to agree
//! with `sigs.k8s.io/karpenter` `pkg/scheduling/requirement.go` and
//! `requirements.go` (`docs/future-capacity.md` has the facts and sources).
//!
//! A [`Requirement`] is the set of values a label may take: a finite set
//! (`In`; empty means `DoesNotExist`) or the complement of one (`NotIn`;
//! complement of nothing means `Exists`), optionally bounded for integers
//! (`Gt N` is `>= N+1`, `Lt N` is `<= N-1`). A NodePool's requirements say what
//! its nodes may carry, a pod's what it needs; [`compatible`] is Karpenter's
//! `Requirements.Compatible` with well-known labels allowed undefined.

use std::collections::{BTreeMap, BTreeSet};

use super::scheduling::LabelReq;

/// The values one label may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The set is everything except `values`.
    complement: bool,
    values: BTreeSet<String>,
    /// Inclusive integer bounds; only kept on complement sets (a finite set is filtered instead).
    gte: Option<i64>,
    lte: Option<i64>,
}

/// The operator a requirement reads as, as Karpenter's `Requirement.Operator` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Requirement {
    /// `In` these values.
    pub fn one_of<I: IntoIterator<Item = S>, S: Into<String>>(values: I) -> Requirement {
        Requirement { complement: false, values: values.into_iter().map(Into::into).collect(), gte: None, lte: None }
    }

    pub fn exists() -> Requirement {
        Requirement { complement: true, values: BTreeSet::new(), gte: None, lte: None }
    }

    pub fn does_not_exist() -> Requirement {
        Requirement::one_of(Vec::<String>::new())
    }

    fn none_of(values: &[String]) -> Requirement {
        Requirement { complement: true, values: values.iter().cloned().collect(), gte: None, lte: None }
    }

    fn at_least(n: i64) -> Requirement {
        Requirement { gte: Some(n), ..Requirement::exists() }
    }

    fn at_most(n: i64) -> Requirement {
        Requirement { lte: Some(n), ..Requirement::exists() }
    }

    /// From a NodePool requirement's operator and values (`In`, `NotIn`,
    /// `Exists`, `DoesNotExist`, `Gt`, `Lt`, and Karpenter's `Gte`, `Lte`).
    pub fn parse(operator: &str, values: &[String]) -> Result<Requirement, String> {
        let int = || -> Result<i64, String> {
            match values {
                [one] => one.parse::<i64>().map_err(|_| format!("{operator} value {one:?} is not an integer")),
                _ => Err(format!("{operator} takes exactly one value")),
            }
        };
        Ok(match operator {
            "In" => Requirement::one_of(values.iter().cloned()),
            "NotIn" => Requirement::none_of(values),
            "Exists" => Requirement::exists(),
            "DoesNotExist" => Requirement::does_not_exist(),
            // Gt N is >= N+1, Lt N is <= N-1; past the ends of the integers nothing matches.
            "Gt" => int()?.checked_add(1).map_or_else(Requirement::does_not_exist, Requirement::at_least),
            "Lt" => int()?.checked_sub(1).map_or_else(Requirement::does_not_exist, Requirement::at_most),
            "Gte" => Requirement::at_least(int()?),
            "Lte" => Requirement::at_most(int()?),
            other => return Err(format!("unknown operator {other:?}")),
        })
    }

    /// From a compiled pod requirement.
    pub fn from_label_req(r: &LabelReq) -> Requirement {
        match r {
            LabelReq::In(_, v) => Requirement::one_of(v.iter().cloned()),
            LabelReq::NotIn(_, v) => Requirement::none_of(v),
            LabelReq::Exists(_) => Requirement::exists(),
            LabelReq::DoesNotExist(_) => Requirement::does_not_exist(),
            LabelReq::Gt(_, n) => n.checked_add(1).map_or_else(Requirement::does_not_exist, Requirement::at_least),
            LabelReq::Lt(_, n) => n.checked_sub(1).map_or_else(Requirement::does_not_exist, Requirement::at_most),
        }
    }

    pub fn operator(&self) -> Operator {
        match (self.complement, self.values.is_empty()) {
            (true, false) => Operator::NotIn,
            (true, true) => Operator::Exists,
            (false, false) => Operator::In,
            (false, true) => Operator::DoesNotExist,
        }
    }

    /// The single value every node with this requirement carries, if there is one.
    pub fn single_value(&self) -> Option<&str> {
        match (self.complement, self.values.len()) {
            (false, 1) => self.values.iter().next().map(String::as_str),
            _ => None,
        }
    }

    /// Both requirements together (Karpenter's `Requirement.Intersection`).
    pub fn intersection(&self, other: &Requirement) -> Requirement {
        let gte = max_opt(self.gte, other.gte);
        let lte = min_opt(self.lte, other.lte);
        if let (Some(g), Some(l)) = (gte, lte) {
            if g > l {
                return Requirement::does_not_exist();
            }
        }
        let complement = self.complement && other.complement;
        let values: BTreeSet<String> = match (self.complement, other.complement) {
            (true, true) => self.values.union(&other.values).cloned().collect(),
            (true, false) => other.values.difference(&self.values).cloned().collect(),
            (false, true) => self.values.difference(&other.values).cloned().collect(),
            (false, false) => self.values.intersection(&other.values).cloned().collect(),
        };
        let values = values.into_iter().filter(|v| within_bounds(v, gte, lte)).collect();
        let (gte, lte) = if complement { (gte, lte) } else { (None, None) };
        Requirement { complement, values, gte, lte }
    }

    /// Whether some value satisfies both (Karpenter's `Requirement.HasIntersection`).
    pub fn has_intersection(&self, other: &Requirement) -> bool {
        let gte = max_opt(self.gte, other.gte);
        let lte = min_opt(self.lte, other.lte);
        if let (Some(g), Some(l)) = (gte, lte) {
            if g > l {
                return false;
            }
        }
        match (self.complement, other.complement) {
            (true, true) => true,
            (true, false) => other.values.iter().any(|v| !self.values.contains(v) && within_bounds(v, gte, lte)),
            (false, true) => self.values.iter().any(|v| !other.values.contains(v) && within_bounds(v, gte, lte)),
            (false, false) => self.values.iter().any(|v| other.values.contains(v) && within_bounds(v, gte, lte)),
        }
    }
}

/// Bounds admit only integers (Go's `strconv.Atoi`: optional sign, decimal digits).
fn within_bounds(value: &str, gte: Option<i64>, lte: Option<i64>) -> bool {
    if gte.is_none() && lte.is_none() {
        return true;
    }
    let Ok(v) = value.parse::<i64>() else { return false };
    gte.is_none_or(|g| v >= g) && lte.is_none_or(|l| v <= l)
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Deprecated label keys Karpenter reads as their stable names (`NormalizedLabels`).
pub fn normalized(key: &str) -> &str {
    match key {
        "failure-domain.beta.kubernetes.io/zone" => "topology.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region" => "topology.kubernetes.io/region",
        "beta.kubernetes.io/arch" => "kubernetes.io/arch",
        "beta.kubernetes.io/os" => "kubernetes.io/os",
        "beta.kubernetes.io/instance-type" => "node.kubernetes.io/instance-type",
        other => other,
    }
}

/// Label requirements by key, each key once (Karpenter's `Requirements`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirements(BTreeMap<String, Requirement>);

impl Requirements {
    /// Adds a requirement, intersecting it with one already on the key (`Requirements.Add`).
    pub fn add(&mut self, key: &str, r: Requirement) {
        let key = normalized(key);
        match self.0.get_mut(key) {
            Some(existing) => *existing = existing.intersection(&r),
            None => {
                self.0.insert(key.to_owned(), r);
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<&Requirement> {
        self.0.get(normalized(key))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Requirement)> {
        self.0.iter().map(|(k, r)| (k.as_str(), r))
    }
}

/// Why a pod's requirements do not fit a pool's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incompatible {
    /// The pod needs a label the pool's nodes will not carry (and that is not well known).
    Undefined(String),
    /// The pod's values and the pool's do not meet on this label.
    Disjoint(String),
}

impl std::fmt::Display for Incompatible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Incompatible::Undefined(k) => write!(f, "label {k} has no known values"),
            Incompatible::Disjoint(k) => write!(f, "label {k}: no value satisfies both"),
        }
    }
}

/// Karpenter's `Requirements.Compatible(pod, AllowUndefined(well_known))`: a
/// label the pod needs must be defined by the pool unless it is well known
/// (the cloud provider supplies its value) or the pod only excludes values;
/// and on every label both define, some value must satisfy both, except
/// that two exclusions (`NotIn`, `DoesNotExist`) never conflict.
pub fn compatible(
    pool: &Requirements,
    pod: &Requirements,
    well_known: impl Fn(&str) -> bool,
) -> Result<(), Incompatible> {
    let excludes = |r: &Requirement| matches!(r.operator(), Operator::NotIn | Operator::DoesNotExist);
    for (key, incoming) in pod.iter() {
        if well_known(key) || pool.get(key).is_some() || excludes(incoming) {
            continue;
        }
        return Err(Incompatible::Undefined(key.to_owned()));
    }
    for (key, incoming) in pod.iter() {
        let Some(existing) = pool.get(key) else { continue };
        let both_exclude = excludes(incoming) && excludes(existing);
        if !both_exclude && !existing.has_intersection(incoming) {
            return Err(Incompatible::Disjoint(key.to_owned()));
        }
    }
    Ok(())
}

/// Labels Karpenter knows how to narrow from the instance types its cloud
/// provider offers (`pkg/apis/v1/labels.go`, `WellKnownLabels`), after
/// normalisation.
pub const KARPENTER_WELL_KNOWN: [&str; 8] = [
    "karpenter.sh/nodepool",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/arch",
    "kubernetes.io/os",
    "karpenter.sh/capacity-type",
    "node.kubernetes.io/windows-build",
];

/// Label prefixes the cloud providers add to the well-known labels
/// (the AWS, Azure and GCP providers register their instance labels there).
pub const PROVIDER_WELL_KNOWN_PREFIXES: [&str; 3] =
    ["karpenter.k8s.aws/", "karpenter.azure.com/", "karpenter.k8s.gcp/"];

/// Whether Karpenter (with a cloud provider) knows the label's values without the NodePool defining it.
pub fn karpenter_well_known(key: &str) -> bool {
    KARPENTER_WELL_KNOWN.contains(&key)
        || key == "topology.k8s.aws/zone-id"
        || PROVIDER_WELL_KNOWN_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Labels the kubelet or the cloud sets on every node, whose value a declared
/// node group need not list (`k8s.io/api/core/v1` well-known labels).
pub fn node_well_known(key: &str) -> bool {
    matches!(
        key,
        "topology.kubernetes.io/zone"
            | "topology.kubernetes.io/region"
            | "node.kubernetes.io/instance-type"
            | "kubernetes.io/arch"
            | "kubernetes.io/os"
            | "node.kubernetes.io/windows-build"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(op: &str, values: &[&str]) -> Requirement {
        let values: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        Requirement::parse(op, &values).unwrap()
    }

    fn reqs(items: &[(&str, &str, &[&str])]) -> Requirements {
        let mut r = Requirements::default();
        for (k, op, v) in items {
            r.add(k, req(op, v));
        }
        r
    }

    fn ok(pool: &Requirements, pod: &Requirements) -> bool {
        compatible(pool, pod, karpenter_well_known).is_ok()
    }

    #[test]
    fn operators_read_back() {
        assert_eq!(req("In", &["a"]).operator(), Operator::In);
        assert_eq!(req("NotIn", &["a"]).operator(), Operator::NotIn);
        assert_eq!(req("Exists", &[]).operator(), Operator::Exists);
        assert_eq!(req("DoesNotExist", &[]).operator(), Operator::DoesNotExist);
        // bounds are "Exists" with bounds
        assert_eq!(req("Gt", &["3"]).operator(), Operator::Exists);
        assert!(Requirement::parse("Gt", &["x".into()]).is_err());
        assert!(Requirement::parse("Gt", &[]).is_err());
        assert!(Requirement::parse("Near", &[]).is_err());
        // Gt MAX matches nothing
        assert_eq!(req("Gt", &[&i64::MAX.to_string()]).operator(), Operator::DoesNotExist);
    }

    #[test]
    fn intersections_as_karpenter_computes_them() {
        // In ∩ In
        assert_eq!(req("In", &["a", "b"]).intersection(&req("In", &["b", "c"])), req("In", &["b"]));
        // In ∩ NotIn
        assert_eq!(req("In", &["a", "b"]).intersection(&req("NotIn", &["b"])), req("In", &["a"]));
        // NotIn ∩ NotIn stays a complement
        assert_eq!(req("NotIn", &["a"]).intersection(&req("NotIn", &["b"])).operator(), Operator::NotIn);
        // Gt 3 ∩ Lt 2 is empty
        assert_eq!(req("Gt", &["3"]).intersection(&req("Lt", &["2"])).operator(), Operator::DoesNotExist);
        // Bounds filter a finite set and then disappear
        assert_eq!(req("In", &["1", "5", "x"]).intersection(&req("Gt", &["2"])), req("In", &["5"]));
        assert!(req("Gt", &["2"]).has_intersection(&req("In", &["5"])));
        assert!(!req("Gt", &["5"]).has_intersection(&req("In", &["5"])));
        assert!(!req("Lt", &["5"]).has_intersection(&req("In", &["x"])));
        assert!(req("Gt", &["1"]).has_intersection(&req("Lt", &["3"])));
        assert!(!req("Gt", &["1"]).has_intersection(&req("Lt", &["2"])));
        assert!(!req("DoesNotExist", &[]).has_intersection(&req("In", &["a"])));
        assert!(!req("DoesNotExist", &[]).has_intersection(&req("DoesNotExist", &[])));
    }

    // Cases from Karpenter's scheduling documentation (concepts/scheduling.md).

    #[test]
    fn well_known_labels_need_no_definition() {
        // "nodeSelector: topology.kubernetes.io/zone: us-west-2a, karpenter.sh/capacity-type: spot"
        // on a NodePool that says nothing about either: Karpenter can pick them.
        let pool = reqs(&[("kubernetes.io/os", "In", &["linux"])]);
        let pod = reqs(&[
            ("topology.kubernetes.io/zone", "In", &["us-west-2a"]),
            ("karpenter.sh/capacity-type", "In", &["spot"]),
        ]);
        assert!(ok(&pool, &pod));
        // ...but not when the NodePool allows only on-demand.
        let pool = reqs(&[("karpenter.sh/capacity-type", "In", &["on-demand"])]);
        assert_eq!(
            compatible(&pool, &pod, karpenter_well_known),
            Err(Incompatible::Disjoint("karpenter.sh/capacity-type".into()))
        );
        // a deprecated key is read as the stable one
        let pod = reqs(&[("failure-domain.beta.kubernetes.io/zone", "In", &["us-west-2a"])]);
        let pool = reqs(&[("topology.kubernetes.io/zone", "In", &["us-west-2b"])]);
        assert!(!ok(&pool, &pod));
        // a provider's instance label (AWS instance-family) is well known there
        let pool = reqs(&[("karpenter.k8s.aws/instance-family", "In", &["p3"])]);
        assert!(ok(&Requirements::default(), &reqs(&[("karpenter.k8s.aws/instance-family", "In", &["g4dn"])])));
        assert!(!ok(&pool, &reqs(&[("karpenter.k8s.aws/instance-family", "In", &["g4dn"])])));
    }

    #[test]
    fn user_defined_labels_must_be_defined_by_the_pool() {
        // "If you specify a nodeSelector or a required nodeAffinity using a label
        // that is not well-known to Karpenter, it will not launch nodes"...
        let pod = reqs(&[("user.defined.label/type", "In", &["x"])]);
        assert_eq!(
            compatible(&Requirements::default(), &pod, karpenter_well_known),
            Err(Incompatible::Undefined("user.defined.label/type".into()))
        );
        // ...unless the NodePool has it with Exists: then any value.
        let pool = reqs(&[("user.defined.label/type", "Exists", &[])]);
        assert!(ok(&pool, &pod));
        // company.com/team Exists: team-a and team-b pods both fit
        let pool = reqs(&[("company.com/team", "Exists", &[])]);
        assert!(ok(&pool, &reqs(&[("company.com/team", "In", &["team-a"])])));
        assert!(ok(&pool, &reqs(&[("company.com/team", "In", &["team-b"])])));
        // a pod that only excludes a custom label fits a pool that never sets it
        assert!(ok(&Requirements::default(), &reqs(&[("company.com/team", "NotIn", &["team-a"])])));
        assert!(ok(&Requirements::default(), &reqs(&[("company.com/team", "DoesNotExist", &[])])));
        // Exists on an undefined custom label does not
        assert!(!ok(&Requirements::default(), &reqs(&[("company.com/team", "Exists", &[])])));
    }

    #[test]
    fn node_affinity_terms_narrow_one_label() {
        // zone In [us-west-2a, us-west-2b] AND zone In [us-west-2b]: only us-west-2b
        let pod = reqs(&[
            ("topology.kubernetes.io/zone", "In", &["us-west-2a", "us-west-2b"]),
            ("topology.kubernetes.io/zone", "In", &["us-west-2b"]),
        ]);
        assert!(!ok(&reqs(&[("topology.kubernetes.io/zone", "In", &["us-west-2a"])]), &pod));
        assert!(ok(&reqs(&[("topology.kubernetes.io/zone", "In", &["us-west-2b", "us-west-2c"])]), &pod));
        // ... NotIn [us-west-2b]: only us-west-2a
        let pod = reqs(&[
            ("topology.kubernetes.io/zone", "In", &["us-west-2a", "us-west-2b"]),
            ("topology.kubernetes.io/zone", "NotIn", &["us-west-2b"]),
        ]);
        assert!(ok(&reqs(&[("topology.kubernetes.io/zone", "In", &["us-west-2a"])]), &pod));
        assert!(!ok(&reqs(&[("topology.kubernetes.io/zone", "In", &["us-west-2b"])]), &pod));
    }

    #[test]
    fn exclusions_never_conflict_with_each_other() {
        let pool = reqs(&[("team", "NotIn", &["a"])]);
        assert!(ok(&pool, &reqs(&[("team", "NotIn", &["b"])])));
        assert!(ok(&reqs(&[("team", "DoesNotExist", &[])]), &reqs(&[("team", "DoesNotExist", &[])])));
        // a pool that never sets the label and a pod that needs a value
        assert!(!ok(&reqs(&[("team", "DoesNotExist", &[])]), &reqs(&[("team", "In", &["a"])])));
        // a label with several allowed values may take any of them
        let pool = reqs(&[("team", "In", &["a", "b"])]);
        assert!(ok(&pool, &reqs(&[("team", "In", &["b"])])));
        assert!(ok(&pool, &reqs(&[("team", "NotIn", &["a"])])));
        assert!(!ok(&pool, &reqs(&[("team", "NotIn", &["a", "b"])])));
    }

    #[test]
    fn integer_bounds() {
        // karpenter.k8s.aws/instance-cpu Gt 4 on the pool, pod wants Lt 8
        let pool = reqs(&[("example.com/cpu", "Gt", &["4"])]);
        assert!(ok(&pool, &reqs(&[("example.com/cpu", "Lt", &["8"])])));
        assert!(!ok(&pool, &reqs(&[("example.com/cpu", "Lt", &["5"])])));
        assert!(ok(&pool, &reqs(&[("example.com/cpu", "In", &["16"])])));
        assert!(!ok(&pool, &reqs(&[("example.com/cpu", "In", &["4"])])));
    }
}
