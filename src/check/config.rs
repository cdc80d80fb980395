//! What a `check` run is configured with: plain values, filled in by the
//! binary from its command line or by a test directly.

use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::Source;
use crate::policy::Policy;

/// The report format (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
    Junit,
    Sarif,
}

/// What makes the run fail (exit 1) besides denials and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    /// Denials (and `error` verdicts) only.
    Deny,
    /// Warnings too.
    Warn,
}

/// Colour in text output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorChoice {
    /// Only on a terminal, and not with `NO_COLOR` or `TERM=dumb`.
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone)]
pub struct CheckConfig {
    /// Manifest files and folders; `-` is stdin.
    pub files: Vec<PathBuf>,
    /// `None`: no cluster state, the node-pool verdict is not evaluated.
    pub cluster: Option<Source>,
    /// With a live cluster: how long to wait for it to answer and to sync.
    pub live_timeout: Duration,
    /// Namespace for objects whose manifest names none.
    pub default_namespace: String,
    pub output: OutputFormat,
    /// Folder for the mutated manifests, or `-` for stdout.
    pub mutated_out: Option<PathBuf>,
    pub fail_on: FailOn,
    pub color: ColorChoice,
    pub policy: Policy,
    /// Where `docs/rules/` is published: SARIF rules get `helpUri` `URL/<rule>.md`.
    pub rule_docs_url: Option<String>,
}
