//! What an `audit` run is configured with: plain values, filled in by the
//! binary from its command line or by a test directly.

use std::time::Duration;

use crate::check::{ColorChoice, FailOn, OutputFormat};
use crate::cluster::Source;
use crate::policy::Policy;

/// Pods (and ReplicaSets) asked for per list request.
pub const DEFAULT_PAGE_SIZE: u32 = 500;

#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Snapshot files (Pods streamed from them) or the live cluster.
    pub cluster: Source,
    /// With a live cluster: how long to wait for it to answer and to sync.
    pub live_timeout: Duration,
    /// Pods per list request (`limit`).
    pub page_size: u32,
    pub output: OutputFormat,
    pub fail_on: FailOn,
    pub color: ColorChoice,
    pub policy: Policy,
    /// Where `docs/rules/` is published: SARIF rules get `helpUri` `URL/<rule>.md`.
    pub rule_docs_url: Option<String>,
}
