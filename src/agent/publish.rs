//! Publishing evidence on the agent's own Node: server-side apply under the field manager
//! `sysbox-ro-agent`, only when something changed.
//!
//! Server-side apply makes "remove the label when unknown" exact: an apply that leaves out a
//! field this manager owned removes it, while a label someone else also set stays theirs.

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{json, Value};

use super::evidence::Evidence;

/// The field manager the agent applies with.
pub const FIELD_MANAGER: &str = "sysbox-ro-agent";
/// The node label: `"true"`/`"false"` from the running process, absent when unknown.
pub const FLAG_LABEL: &str = "sysbox-ro.dev/relaxed-read-only";
/// The node annotation holding the evidence as JSON.
pub const EVIDENCE_ANNOTATION: &str = "sysbox-ro.dev/sysbox-mgr";

/// What the agent wants on its Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub label: Option<bool>,
    /// The evidence without its timestamp: what decides whether a write is needed.
    pub fingerprint: Value,
    /// The annotation's value (the evidence with its timestamp).
    pub annotation: String,
}

impl Desired {
    pub fn from_evidence(evidence: &Evidence) -> Desired {
        Desired {
            label: evidence.label(),
            fingerprint: evidence.fingerprint(),
            annotation: serde_json::to_string(evidence).unwrap_or_default(),
        }
    }

    /// The apply configuration: the fields this manager owns, and only those.
    pub fn apply_body(&self, node: &str) -> Value {
        let mut metadata = json!({
            "name": node,
            "annotations": { EVIDENCE_ANNOTATION: self.annotation },
        });
        if let Some(flag) = self.label {
            metadata["labels"] = json!({ FLAG_LABEL: flag.to_string() });
        }
        json!({ "apiVersion": "v1", "kind": "Node", "metadata": metadata })
    }

    /// Whether the Node already shows this: the same label value (or none) and evidence that
    /// differs at most in its timestamp.
    pub fn matches_node(&self, node: &Node) -> bool {
        let labels = node.metadata.labels.as_ref();
        let label = labels.and_then(|l| l.get(FLAG_LABEL)).map(String::as_str);
        let want = self.label.map(|b| if b { "true" } else { "false" });
        if label != want {
            return false;
        }
        let annotation = node.metadata.annotations.as_ref().and_then(|a| a.get(EVIDENCE_ANNOTATION));
        match annotation.and_then(|a| serde_json::from_str::<Evidence>(a).ok()) {
            Some(published) => published.fingerprint() == self.fingerprint,
            None => false,
        }
    }
}

/// Why a publish failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("Node {node} does not exist")]
    NodeMissing { node: String },
    #[error("reading Node {node}: {source}")]
    Get {
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("applying to Node {node}: {source}")]
    Apply {
        node: String,
        #[source]
        source: kube::Error,
    },
}

impl PublishError {
    /// A stable reason for metrics, from the API status code.
    pub fn reason(&self) -> &'static str {
        let source = match self {
            PublishError::NodeMissing { .. } => return "node_missing",
            PublishError::Get { source, .. } | PublishError::Apply { source, .. } => source,
        };
        match source {
            kube::Error::Api(status) => match status.code {
                401 => "api_unauthorized",
                403 => "api_forbidden",
                404 => "node_missing",
                409 => "api_conflict",
                422 => "api_invalid",
                429 => "api_throttled",
                500..=599 => "api_server_error",
                _ => "api_error",
            },
            _ => "api_unreachable",
        }
    }
}

/// Writes to one Node.
pub struct Publisher {
    api: Api<Node>,
    node: String,
}

impl Publisher {
    pub fn new(client: kube::Client, node: String) -> Publisher {
        Publisher { api: Api::all(client), node }
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// The Node as it is now.
    pub async fn get(&self) -> Result<Node, PublishError> {
        match self.api.get_opt(&self.node).await {
            Ok(Some(n)) => Ok(n),
            Ok(None) => Err(PublishError::NodeMissing { node: self.node.clone() }),
            Err(source) => Err(PublishError::Get { node: self.node.clone(), source }),
        }
    }

    /// Server-side apply of `desired`. Forced: the agent is the authority on this label, so a
    /// value someone set by hand is taken over (that manager loses the field).
    pub async fn apply(&self, desired: &Desired) -> Result<Node, PublishError> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        self.api.patch(&self.node, &params, &Patch::Apply(desired.apply_body(&self.node))).await.map_err(|source| {
            match &source {
                kube::Error::Api(s) if s.code == 404 => PublishError::NodeMissing { node: self.node.clone() },
                _ => PublishError::Apply { node: self.node.clone(), source },
            }
        })
    }
}

/// Exponential backoff for failed publishes: 1 s doubling to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(max: Duration) -> Backoff {
        Backoff { next: Duration::from_secs(1).min(max), max }
    }

    /// The wait before the next attempt; each call doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    pub fn reset(&mut self) {
        self.next = Duration::from_secs(1).min(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::evidence::{Configured, State};

    fn evidence(at: &str, state: State, flag: Option<bool>) -> Evidence {
        Evidence {
            observed_at: at.into(),
            state,
            reason: None,
            pid: Some(42),
            verified_by: Some("comm and exe (/usr/bin/sysbox-mgr)".into()),
            relaxed_read_only: flag,
            args: vec!["--relaxed-read-only".into()],
            args_truncated: false,
            configured: Configured::default(),
            restart_pending: false,
            sysbox_version: Some("0.6.7".into()),
            problems: vec![],
        }
    }

    fn node_with(desired: &Desired) -> Node {
        let body = desired.apply_body("n1");
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn the_timestamp_alone_is_no_change() {
        let a = Desired::from_evidence(&evidence("2026-01-01T00:00:00Z", State::Running, Some(true)));
        let b = Desired::from_evidence(&evidence("2026-01-01T00:00:10Z", State::Running, Some(true)));
        assert_eq!(a.fingerprint, b.fingerprint);
        assert!(b.matches_node(&node_with(&a)));
        let c = Desired::from_evidence(&evidence("2026-01-01T00:00:10Z", State::Running, Some(false)));
        assert!(!c.matches_node(&node_with(&a)));
    }

    #[test]
    fn unknown_leaves_the_label_out_of_the_apply() {
        let d = Desired::from_evidence(&evidence("t", State::Stopped, Some(true)));
        assert_eq!(d.label, None, "a stopped process supports no label");
        let body = d.apply_body("n1");
        assert!(body["metadata"].get("labels").is_none(), "{body}");
        assert_eq!(body["metadata"]["name"], "n1");
        let back: Evidence =
            serde_json::from_str(body["metadata"]["annotations"][EVIDENCE_ANNOTATION].as_str().unwrap()).unwrap();
        assert_eq!(back.state, State::Stopped);
        let on = Desired::from_evidence(&evidence("t", State::Running, Some(true)));
        assert_eq!(on.apply_body("n1")["metadata"]["labels"][FLAG_LABEL], "true");
    }

    #[test]
    fn a_node_without_evidence_or_with_a_hand_set_label_needs_a_write() {
        let d = Desired::from_evidence(&evidence("t", State::Stopped, None));
        let mut node = node_with(&d);
        assert!(d.matches_node(&node));
        node.metadata.labels = Some([(FLAG_LABEL.to_owned(), "true".to_owned())].into());
        assert!(!d.matches_node(&node), "a label the evidence does not support");
        node.metadata.labels = None;
        node.metadata.annotations = Some([(EVIDENCE_ANNOTATION.to_owned(), "{not json".to_owned())].into());
        assert!(!d.matches_node(&node));
    }

    #[test]
    fn backoff_doubles_to_its_ceiling_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(5));
        let seq: Vec<u64> = (0..5).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(seq, [1, 2, 4, 5, 5]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_secs(1));
    }
}
