//! The command line: flags (each also settable from a `SYSBOXRO_*`
//! environment variable) and their conversion to the plain configurations
//! the library runs with ([`Config`]). Nothing below this module knows clap.
//!
//! A subcommand is a [`Command`] variant with its `Args`, a `to_config`
//! that turns them into the library's configuration, and a [`Config`]
//! variant that `main` hands to the library.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::PossibleValue;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::agent::AgentConfig;
use crate::audit::watch::WatchConfig;
use crate::audit::AuditConfig;
use crate::certs::CertsConfig;
use crate::check::{CheckConfig, ColorChoice, FailOn, OutputFormat};
use crate::cluster::live::Connection;
use crate::cluster::Source;
use crate::policy::{HygieneRules, MgrConfigMap, Mode, NodePolicy, Policy, DEFAULT_POOL_LABELS};
use crate::serve::{ServeConfig, MIN_BODY_LIMIT};

/// Lets clap parse a library enum: its variants, their names on the command
/// line and, optionally, a line of help for each.
macro_rules! value_enum {
    ($ty:ident { $($variant:ident => $name:literal $(: $help:literal)?),+ $(,)? }) => {
        impl ValueEnum for $ty {
            fn value_variants<'a>() -> &'a [Self] {
                &[$($ty::$variant),+]
            }
            fn to_possible_value(&self) -> Option<PossibleValue> {
                Some(match self {
                    $($ty::$variant => PossibleValue::new($name)$(.help($help))?),+
                })
            }
        }
    };
}

value_enum!(Mode {
    Enforce => "enforce": "Deny pods whose nodes all lack the flag, and pods that break Sysbox's rules",
    Warn => "warn": "Admit them with a warning that kubectl shows",
    Audit => "audit": "Admit them silently; the finding is only logged and counted",
    Off => "off": "Skip the pod entirely: no checks, no annotation",
});
value_enum!(OutputFormat { Text => "text", Json => "json", Junit => "junit", Sarif => "sarif" });
value_enum!(FailOn { Deny => "deny", Warn => "warn" });
value_enum!(ColorChoice { Auto => "auto", Always => "always", Never => "never" });

#[derive(Debug, Parser)]
#[command(
    name = "sysbox-ro-webhook",
    version,
    about = "Admission control for read-only Sysbox pods",
    long_about = "Admission control for Sysbox pods with readOnlyRootFilesystem: annotates them, works out which \
node pools they can land on, and denies or warns when those pools' sysbox-mgr lacks --relaxed-read-only.\n\n\
Every flag can also be set from the environment variable shown with it."
)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, env = "SYSBOXRO_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `sysbox_ro_webhook=debug`.
    #[arg(long, global = true, env = "SYSBOXRO_LOG", default_value = "info")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTPS admission webhook (POST /mutate, POST /validate) and the admin port.
    Serve(ServeArgs),
    /// Judge manifest files with the webhook's engine (a CI policy dry-run).
    Check(CheckArgs),
    /// Find the running and pending read-only Sysbox pods whose nodes lack the flag, by node pool and owner.
    Audit(AuditArgs),
    /// Generate a CA and a serving certificate for the webhook's Service.
    Certs(CertsArgs),
    /// Run on a Sysbox node: read what sysbox-mgr really runs with and publish it on the Node.
    Agent(AgentArgs),
    /// Print the full explanation and fix for a finding's rule (the rule ids in reports and messages).
    Explain(ExplainArgs),
    /// Print the version.
    Version,
}

/// What `main` runs: one plain configuration per subcommand.
#[derive(Debug)]
pub enum Config {
    Serve(Box<ServeConfig>),
    Check(Box<CheckConfig>),
    Audit(Box<AuditConfig>),
    Certs(CertsConfig),
    Agent(Box<AgentConfig>),
    /// The rule id to explain.
    Explain(String),
    Version,
}

impl Command {
    /// The configuration the library runs with; `Err` says which flag is unusable.
    pub fn to_config(&self) -> Result<Config, String> {
        Ok(match self {
            Command::Serve(args) => Config::Serve(Box::new(args.to_config()?)),
            Command::Check(args) => Config::Check(Box::new(args.to_config()?)),
            Command::Audit(args) => Config::Audit(Box::new(args.to_config()?)),
            Command::Certs(args) => Config::Certs(args.to_config()),
            Command::Agent(args) => Config::Agent(Box::new(args.to_config()?)),
            Command::Explain(args) => Config::Explain(args.rule.clone()),
            Command::Version => Config::Version,
        })
    }
}

/// Hygiene rules that can be turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HygieneRule {
    /// SYSBOX_* environment variables that sysbox-runc refuses.
    SysboxEnv,
    /// privileged, hostNetwork, hostPID, hostIPC.
    UnsupportedSetting,
    /// Pods without a user namespace, or with one too small.
    UserNamespace,
    /// SYSBOX_* variables the spec does not show (envFrom, valueFrom, $(VAR) references).
    EnvUnverified,
    /// Services named sysbox or sysbox-* whose service links reach Sysbox pods.
    ServiceLinks,
    /// shareProcessNamespace: true.
    ShareProcessNamespace,
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// What happens when a pod's nodes lack the flag: deny (enforce), warn, record only (audit), or skip (off).
    #[arg(long, env = "SYSBOXRO_MODE", value_enum, default_value_t = Mode::Enforce)]
    pub mode: Mode,
    /// Steer pods whose candidate pools are mixed onto nodes labelled with the flag (adds required node affinity).
    #[arg(long, env = "SYSBOXRO_STEER")]
    pub steer: bool,
    /// Also annotate workload pod templates (off: templates are judged, not rewritten).
    #[arg(long, env = "SYSBOXRO_ANNOTATE_TEMPLATES")]
    pub annotate_templates: bool,
    /// Ignore the namespace mode label (for clusters where tenants can label their namespaces).
    #[arg(long, env = "SYSBOXRO_IGNORE_NAMESPACE_MODE")]
    pub ignore_namespace_mode: bool,
    /// Namespaces the policy never touches (repeatable or comma-separated).
    #[arg(
        long = "exempt-namespace",
        env = "SYSBOXRO_EXEMPT_NAMESPACES",
        value_delimiter = ',',
        default_value = "kube-system"
    )]
    pub exempt_namespaces: Vec<String>,
    /// Hygiene rule to turn off (repeatable or comma-separated).
    #[arg(long = "disable-rule", env = "SYSBOXRO_DISABLE_RULES", value_delimiter = ',', value_enum)]
    pub disable_rules: Vec<HygieneRule>,
    /// RuntimeClass handler that means Sysbox.
    #[arg(long, env = "SYSBOXRO_SYSBOX_HANDLER", default_value = "sysbox-runc")]
    pub sysbox_handler: String,
    /// RuntimeClass names taken as Sysbox when the class itself is unknown (repeatable or comma-separated).
    #[arg(
        long = "sysbox-class",
        env = "SYSBOXRO_SYSBOX_CLASSES",
        value_delimiter = ',',
        default_value = "sysbox-runc"
    )]
    pub sysbox_classes: Vec<String>,
    /// Node labels naming a node pool, first present wins (repeatable or comma-separated).
    #[arg(long = "pool-label", env = "SYSBOXRO_POOL_LABELS", value_delimiter = ',', default_values_t = DEFAULT_POOL_LABELS.map(String::from))]
    pub pool_labels: Vec<String>,
    /// Node label saying whether the node's sysbox-mgr runs with --relaxed-read-only ("true"/"false").
    #[arg(long, env = "SYSBOXRO_FLAG_LABEL", default_value = "sysbox-ro.dev/relaxed-read-only")]
    pub flag_label: String,
    /// Pod annotation added by the mutation.
    #[arg(long, env = "SYSBOXRO_ANNOTATION", default_value = "sysbox-ro.dev/relaxed-read-only")]
    pub annotation: String,
    /// Namespace label that overrides --mode for that namespace.
    #[arg(long, env = "SYSBOXRO_MODE_LABEL", default_value = "sysbox-ro.dev/mode")]
    pub mode_label: String,
    /// ConfigMap (NAMESPACE/NAME) holding sysbox-mgr's flags.
    #[arg(long, env = "SYSBOXRO_MGR_CONFIGMAP", default_value = "kube-system/sysbox-operational-attributes", value_parser = parse_configmap_ref)]
    pub mgr_configmap: (String, String),
    /// Key of sysbox-mgr's flags in that ConfigMap.
    #[arg(long, env = "SYSBOXRO_MGR_CONFIGMAP_KEY", default_value = "SYSBOX_MGR_CONFIG")]
    pub mgr_configmap_key: String,
    /// ConfigMap, in the namespace of --mgr-configmap, declaring node groups that scale from zero
    /// (key node-groups.yaml: their labels and taints); Karpenter NodePools are read directly.
    #[arg(long, env = "SYSBOXRO_NODE_GROUPS_CONFIGMAP", default_value = "sysbox-ro-node-groups")]
    pub node_groups_configmap: String,
    /// Node labels that differ node by node within a pool (used only to group like nodes).
    #[arg(
        long = "identity-label",
        env = "SYSBOXRO_IDENTITY_LABELS",
        value_delimiter = ',',
        default_value = "kubernetes.io/hostname"
    )]
    pub identity_labels: Vec<String>,
}

fn parse_configmap_ref(s: &str) -> Result<(String, String), String> {
    match s.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => Ok((ns.into(), name.into())),
        _ => Err(format!("{s:?} is not NAMESPACE/NAME")),
    }
}

impl PolicyArgs {
    /// The policy; `own_namespace` (the webhook's) is exempted too.
    pub fn to_policy(&self, own_namespace: Option<&str>) -> Policy {
        let mut exempt: BTreeSet<String> = self.exempt_namespaces.iter().filter(|s| !s.is_empty()).cloned().collect();
        if let Some(ns) = own_namespace.filter(|s| !s.is_empty()) {
            exempt.insert(ns.to_owned());
        }
        let off = |r| self.disable_rules.contains(&r);
        Policy {
            mode: self.mode,
            steer: self.steer,
            annotate_templates: self.annotate_templates,
            annotation_key: self.annotation.clone(),
            namespace_mode_label: self.mode_label.clone(),
            namespace_overrides: !self.ignore_namespace_mode,
            exempt_namespaces: exempt,
            sysbox_handler: self.sysbox_handler.clone(),
            sysbox_class_names: self.sysbox_classes.clone(),
            hygiene: HygieneRules {
                sysbox_env: !off(HygieneRule::SysboxEnv),
                unsupported_settings: !off(HygieneRule::UnsupportedSetting),
                user_namespace: !off(HygieneRule::UserNamespace),
                env_unverified: !off(HygieneRule::EnvUnverified),
                service_links: !off(HygieneRule::ServiceLinks),
                share_process_namespace: !off(HygieneRule::ShareProcessNamespace),
            },
            nodes: NodePolicy {
                pool_labels: self.pool_labels.clone(),
                flag_label: self.flag_label.clone(),
                identity_labels: self.identity_labels.clone(),
                mgr_config: MgrConfigMap {
                    namespace: self.mgr_configmap.0.clone(),
                    name: self.mgr_configmap.1.clone(),
                    key: self.mgr_configmap_key.clone(),
                },
                node_groups: self.node_groups_configmap.clone(),
                allow_empty_snapshot: false,
            },
        }
    }
}

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Cluster state file(s): Node, RuntimeClass, ConfigMap, Namespace and Service objects as `kubectl get -o yaml` prints
    /// them (repeatable or comma-separated).
    #[arg(long = "cluster-state", env = "SYSBOXRO_CLUSTER_STATE", value_delimiter = ',')]
    pub cluster_state: Vec<PathBuf>,
    /// Kubeconfig for the live cluster (default: in-cluster config, then KUBECONFIG or ~/.kube/config).
    #[arg(long, env = "SYSBOXRO_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context for the live cluster.
    #[arg(long, env = "SYSBOXRO_CONTEXT")]
    pub context: Option<String>,
    /// Accept --cluster-state files that hold no Node (otherwise an error: no pod could be placed). Every verdict
    /// then carries the cluster-view-empty warning.
    #[arg(long, env = "SYSBOXRO_ALLOW_EMPTY_CLUSTER")]
    pub allow_empty_cluster: bool,
}

impl ClusterArgs {
    fn connection(&self) -> Connection {
        Connection { kubeconfig: self.kubeconfig.clone(), context: self.context.clone() }
    }

    /// The policy of `policy` (`own_namespace` exempted too), accepting an
    /// empty snapshot when `--allow-empty-cluster` says so.
    fn policy(&self, policy: &PolicyArgs, own_namespace: Option<&str>) -> Policy {
        let mut policy = policy.to_policy(own_namespace);
        policy.nodes.allow_empty_snapshot = self.allow_empty_cluster;
        policy
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// HTTPS address of the webhook.
    #[arg(long, env = "SYSBOXRO_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Plain-HTTP address for /healthz, /readyz and /metrics.
    #[arg(long, env = "SYSBOXRO_ADMIN_LISTEN", default_value = "0.0.0.0:8080")]
    pub admin_listen: SocketAddr,
    /// Serving certificate chain (PEM), re-read every --tls-reload-interval.
    #[arg(long, env = "SYSBOXRO_TLS_CERT", default_value = "/etc/sysbox-ro-webhook/tls/tls.crt")]
    pub tls_cert: PathBuf,
    /// Serving private key (PEM).
    #[arg(long, env = "SYSBOXRO_TLS_KEY", default_value = "/etc/sysbox-ro-webhook/tls/tls.key")]
    pub tls_key: PathBuf,
    /// How often the certificate files are checked for a new pair (seconds).
    #[arg(long, env = "SYSBOXRO_TLS_RELOAD_INTERVAL", default_value_t = 2.0)]
    pub tls_reload_interval: f64,
    /// Largest request body accepted, in bytes (at least 8 MiB).
    #[arg(long, env = "SYSBOXRO_MAX_BODY_BYTES", default_value_t = 16 << 20, value_parser = parse_body_limit)]
    pub max_body_bytes: usize,
    /// Request bodies read or judged at once, in bytes: a review waits (within its timeout) for room.
    #[arg(long, env = "SYSBOXRO_MAX_INFLIGHT_BODY_BYTES", default_value_t = 32 << 20, value_parser = parse_body_limit)]
    pub max_inflight_body_bytes: usize,
    /// Time a client has to send its TLS handshake and request headers (seconds), counted on a kept-alive
    /// connection from the first byte of the request.
    #[arg(long, env = "SYSBOXRO_HEADER_TIMEOUT", default_value_t = 10.0)]
    pub header_timeout: f64,
    /// Time a kept-alive connection may stay idle between requests (seconds). Longer than kube-apiserver's own
    /// 90 s, so the client closes first and never loses a request to a connection closing under it.
    #[arg(long, env = "SYSBOXRO_IDLE_TIMEOUT", default_value_t = 120.0)]
    pub idle_timeout: f64,
    /// Connections open at once on the webhook port; more are closed at once.
    #[arg(long, env = "SYSBOXRO_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// After SIGTERM, time the webhook keeps serving every request and connection while /readyz already fails
    /// (seconds; 0 for none): the cluster takes a few seconds to stop routing to a terminating pod, and a refused
    /// connection meanwhile would deny pods under failurePolicy Fail.
    #[arg(long, env = "SYSBOXRO_SHUTDOWN_DELAY", default_value_t = 10.0)]
    pub shutdown_delay: f64,
    /// Drain time for in-flight requests after the delay (seconds). A second signal ends the delay and the drain;
    /// the exit status is 3 when requests were left unanswered.
    #[arg(long, env = "SYSBOXRO_SHUTDOWN_GRACE", default_value_t = 15.0)]
    pub shutdown_grace: f64,
    /// The webhook's own namespace, exempted from the policy (set from the downward API).
    #[arg(long, env = "SYSBOXRO_NAMESPACE")]
    pub namespace: Option<String>,
    /// Audit the running and pending pods every this many seconds (live cluster only; off when unset): metrics,
    /// and PolicyReports when the CRD is installed. See `audit --help`.
    #[arg(long, env = "SYSBOXRO_AUDIT_INTERVAL")]
    pub audit_interval: Option<f64>,
    /// With --audit-interval: write wgpolicyk8s.io/v1alpha2 PolicyReports (true) or only metrics (false).
    #[arg(long, env = "SYSBOXRO_AUDIT_POLICY_REPORTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub audit_policy_reports: bool,
    /// With --audit-interval: pods per list request.
    #[arg(long, env = "SYSBOXRO_AUDIT_PAGE_SIZE", default_value_t = crate::audit::config::DEFAULT_PAGE_SIZE, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub audit_page_size: u32,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

fn parse_body_limit(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|_| format!("{s:?} is not a number of bytes"))?;
    if n < MIN_BODY_LIMIT {
        return Err(format!("must be at least {MIN_BODY_LIMIT} (8 MiB)"));
    }
    Ok(n)
}

fn parse_docs_url(s: &str) -> Result<String, String> {
    if (s.starts_with("https://") || s.starts_with("http://")) && !s.contains(char::is_whitespace) {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} is not an http(s) URL"))
    }
}

fn parse_live_timeout(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    seconds("live-timeout", v)?;
    Ok(v)
}

fn seconds(name: &str, v: f64) -> Result<Duration, String> {
    if v.is_finite() && v > 0.0 && v < 86_400.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!("--{name} must be a positive number of seconds"))
    }
}

impl ServeArgs {
    pub fn to_config(&self) -> Result<ServeConfig, String> {
        Ok(ServeConfig {
            listen: self.listen,
            admin_listen: self.admin_listen,
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            tls_reload_interval: seconds("tls-reload-interval", self.tls_reload_interval)?,
            max_body_bytes: self.max_body_bytes,
            max_inflight_body_bytes: self.max_inflight_body_bytes.max(self.max_body_bytes),
            header_read_timeout: seconds("header-timeout", self.header_timeout)?,
            idle_timeout: seconds("idle-timeout", self.idle_timeout)?,
            max_connections: self.max_connections as usize,
            default_timeout: Duration::from_secs(10),
            shutdown_delay: if self.shutdown_delay == 0.0 {
                Duration::ZERO
            } else {
                seconds("shutdown-delay", self.shutdown_delay)?
            },
            shutdown_grace: seconds("shutdown-grace", self.shutdown_grace)?,
            policy: self.cluster.policy(&self.policy, self.namespace.as_deref()),
            cluster: if self.cluster.cluster_state.is_empty() {
                Source::Live { connection: self.cluster.connection(), probe: None }
            } else {
                Source::Snapshot(self.cluster.cluster_state.clone())
            },
            audit: match self.audit_interval {
                None => None,
                Some(v) => {
                    let interval = seconds("audit-interval", v)?;
                    if interval < Duration::from_secs(10) {
                        return Err("--audit-interval must be at least 10 seconds".into());
                    }
                    Some(WatchConfig {
                        interval,
                        page_size: self.audit_page_size,
                        policy_reports: self.audit_policy_reports,
                    })
                }
            },
        })
    }
}

/// The report of `check` and `audit`: format, what fails the run, colour, rule links.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Output format.
    #[arg(short = 'o', long, env = "SYSBOXRO_OUTPUT", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Exit 1 on denials only (deny), or on warnings too (warn).
    #[arg(long, env = "SYSBOXRO_FAIL_ON", value_enum, default_value_t = FailOn::Deny)]
    pub fail_on: FailOn,
    /// Colour in text output: auto (only on a terminal), always or never.
    #[arg(long, env = "SYSBOXRO_COLOR", value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Where this project's docs/rules/ folder is published (e.g. a repository URL ending in /docs/rules): SARIF
    /// rules then link to URL/<rule>.md as helpUri.
    #[arg(long, env = "SYSBOXRO_RULE_DOCS_URL", value_parser = parse_docs_url)]
    pub rule_docs_url: Option<String>,
}

/// Exit statuses of `check`, shown in its `--help`.
pub const CHECK_AFTER_HELP: &str = "\
Without --cluster-state or --live, only the checks that need no cluster run (scope, Sysbox hygiene) and the \
report says the node-pool verdict was not evaluated.

Verdicts: allow, warn, deny (what the webhook would answer), skip (not judged: other kinds, not Sysbox, exempt) \
and error (a document that does not parse or an object the engine cannot read; the other documents are still \
checked).

Exit status:
  0  nothing denied (and, with --fail-on warn, no warnings)
  1  something denied, or an `error` verdict (with --fail-on warn, also any warning)
  2  unusable arguments or input: a path that cannot be read, a cluster state that cannot be loaded, an \
unreachable live cluster, an unusable --mutated-out, or no document in the whole input that could be read

With --mutated-out -, the mutated manifests go to stdout and the report to stderr.
The JSON report's schema is in docs/check-json-schema.md (stable: additive changes only).";

#[derive(Debug, Args)]
#[command(after_long_help = CHECK_AFTER_HELP)]
pub struct CheckArgs {
    /// Manifest file or folder (recursively *.yaml, *.yml, *.json); `-` reads stdin. Repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Judge against the live cluster (kubeconfig) instead of --cluster-state.
    #[arg(long, env = "SYSBOXRO_LIVE", conflicts_with = "cluster_state")]
    pub live: bool,
    /// With --live: how long to wait for the API server and for the cluster view to sync (seconds).
    #[arg(long, env = "SYSBOXRO_LIVE_TIMEOUT", default_value_t = 30.0, value_parser = parse_live_timeout)]
    pub live_timeout: f64,
    /// Namespace for objects whose manifest names none.
    #[arg(long, short = 'n', env = "SYSBOXRO_CHECK_NAMESPACE", default_value = "default")]
    pub namespace: String,
    #[command(flatten)]
    pub report: ReportArgs,
    /// Write the manifests with the patches applied into this folder, mirroring each input's name (a folder's
    /// files relative to it, stdin as stdin.yaml); other documents are copied unchanged. `-` writes one stream to
    /// stdout (the report then goes to stderr).
    #[arg(long, env = "SYSBOXRO_MUTATED_OUT")]
    pub mutated_out: Option<PathBuf>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

impl CheckArgs {
    pub fn to_config(&self) -> Result<CheckConfig, String> {
        let live_timeout = seconds("live-timeout", self.live_timeout)?;
        let cluster = if !self.cluster.cluster_state.is_empty() {
            Some(Source::Snapshot(self.cluster.cluster_state.clone()))
        } else if self.live {
            Some(Source::Live { connection: self.cluster.connection(), probe: Some(live_timeout) })
        } else {
            None
        };
        Ok(CheckConfig {
            files: self.files.clone(),
            cluster,
            live_timeout,
            default_namespace: self.namespace.clone(),
            output: self.report.output,
            mutated_out: self.mutated_out.clone(),
            fail_on: self.report.fail_on,
            color: self.report.color,
            policy: self.cluster.policy(&self.policy, None),
            rule_docs_url: self.report.rule_docs_url.clone(),
        })
    }
}

/// What `audit` reports, and its exit statuses, shown in its `--help`.
pub const AUDIT_AFTER_HELP: &str = "\
A pod is at risk when it is running or pending, in a namespace the policy covers (not exempt, mode not off), and \
either it is a read-only Sysbox pod (as admission judges it) whose node lacks the flag (for a pod not yet bound: \
when none of the nodes it can land on has it), or it carries the annotation admission adds \
(sysbox-ro.dev/relaxed-read-only=true) while its node lacks the flag. Pods are grouped by node pool and owner \
(a ReplicaSet is named by its Deployment when the ReplicaSet is known). Each group's verdict is what its \
namespace's mode would make of the finding: deny (enforce), warn, or allow (audit mode, recorded only).

Pods are read page by page (--page-size) from the live cluster (default), or streamed from --cluster-state files \
(Pod and ReplicaSet objects besides Nodes, RuntimeClasses, ..., as `kubectl get pods,replicasets,nodes,... -A -o \
yaml` prints them).

Exit status:
  0  nothing at risk that its mode would deny (with --fail-on warn, nor warn)
  1  pods at risk that would be denied (with --fail-on warn, also warned), or pods the engine cannot read
  2  unusable arguments, a cluster state that cannot be loaded, an unreachable live cluster or one that cannot \
be listed

The JSON report's schema is in docs/audit.md.";

#[derive(Debug, Args)]
#[command(after_long_help = AUDIT_AFTER_HELP)]
pub struct AuditArgs {
    /// How long to wait for the API server and for the cluster view to sync (seconds; live cluster).
    #[arg(long, env = "SYSBOXRO_LIVE_TIMEOUT", default_value_t = 30.0, value_parser = parse_live_timeout)]
    pub live_timeout: f64,
    /// Pods per list request (`limit`).
    #[arg(long, env = "SYSBOXRO_AUDIT_PAGE_SIZE", default_value_t = crate::audit::config::DEFAULT_PAGE_SIZE, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub page_size: u32,
    #[command(flatten)]
    pub report: ReportArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

impl AuditArgs {
    pub fn to_config(&self) -> Result<AuditConfig, String> {
        let live_timeout = seconds("live-timeout", self.live_timeout)?;
        let cluster = if self.cluster.cluster_state.is_empty() {
            Source::Live { connection: self.cluster.connection(), probe: Some(live_timeout) }
        } else {
            Source::Snapshot(self.cluster.cluster_state.clone())
        };
        Ok(AuditConfig {
            cluster,
            live_timeout,
            page_size: self.page_size,
            output: self.report.output,
            fail_on: self.report.fail_on,
            color: self.report.color,
            policy: self.cluster.policy(&self.policy, None),
            rule_docs_url: self.report.rule_docs_url.clone(),
        })
    }
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Rule id, as reports and messages name it (e.g. relaxed-read-only-missing). Exit status 2 for an unknown
    /// one, with the list of known ids.
    pub rule: String,
}

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// The webhook's Service name.
    #[arg(long, env = "SYSBOXRO_CERTS_SERVICE", default_value = "sysbox-ro-webhook")]
    pub service: String,
    /// The webhook's namespace.
    #[arg(long, env = "SYSBOXRO_CERTS_NAMESPACE", default_value = "sysbox-ro-webhook")]
    pub namespace: String,
    /// Folder for ca.crt, ca.key, tls.crt and tls.key.
    #[arg(long, env = "SYSBOXRO_CERTS_OUT")]
    pub out: PathBuf,
    /// Extra DNS name for the serving certificate (repeatable or comma-separated).
    #[arg(long, env = "SYSBOXRO_CERTS_DNS", value_delimiter = ',')]
    pub dns: Vec<String>,
    /// Extra IP address for the serving certificate (repeatable or comma-separated), e.g. 127.0.0.1 for local tests.
    #[arg(long, env = "SYSBOXRO_CERTS_IP", value_delimiter = ',')]
    pub ip: Vec<IpAddr>,
    /// Validity of the serving certificate in days (the CA gets twice as long).
    #[arg(long, env = "SYSBOXRO_CERTS_DAYS", default_value_t = 365)]
    pub days: u32,
    /// Overwrite existing files.
    #[arg(long, env = "SYSBOXRO_CERTS_FORCE")]
    pub force: bool,
    /// Sign with this existing CA certificate (with --ca-key) instead of a new CA: a rotation that keeps caBundle.
    #[arg(long, env = "SYSBOXRO_CERTS_CA_CERT", requires = "ca_key")]
    pub ca_cert: Option<PathBuf>,
    /// Private key of --ca-cert.
    #[arg(long, env = "SYSBOXRO_CERTS_CA_KEY", requires = "ca_cert")]
    pub ca_key: Option<PathBuf>,
}

impl CertsArgs {
    pub fn to_config(&self) -> CertsConfig {
        CertsConfig {
            service: self.service.clone(),
            namespace: self.namespace.clone(),
            out: self.out.clone(),
            dns: self.dns.clone(),
            ip: self.ip.clone(),
            days: self.days,
            force: self.force,
            ca: self.ca_cert.clone().zip(self.ca_key.clone()),
        }
    }
}

/// How `agent` works, shown in its `--help`.
pub const AGENT_AFTER_HELP: &str = "\
Every --interval, and as soon as the pid in <host-root>/run/sysbox/sysmgr.pid changes, the agent checks that the \
pid is sysbox-mgr (its comm and executable), reads its command line from <host-root>/proc/<pid>/cmdline and the \
ExecStart of the sysbox-mgr.service unit with its drop-ins, and publishes on its Node, by server-side apply with \
the field manager sysbox-ro-agent:
  label      sysbox-ro.dev/relaxed-read-only = true|false (from the running process; removed when unknown)
  annotation sysbox-ro.dev/sysbox-mgr        = the evidence as JSON
It writes only when the evidence changed (not for its timestamp alone).

Read the evidence with:
  kubectl get node NODE -o jsonpath='{.metadata.annotations.sysbox-ro\\.dev/sysbox-mgr}'

Exit status:
  0  stopped by SIGTERM/SIGINT, or --once done
  1  unusable arguments, cannot start (no node name, an unusable kubeconfig, an admin port it cannot bind), \
or --once could not publish
Problems reading the host or reaching the API server are logged, counted in /metrics and retried: they never \
stop the agent.";

#[derive(Debug, Args)]
#[command(after_long_help = AGENT_AFTER_HELP)]
pub struct AgentArgs {
    /// The Node this agent runs on (set NODE_NAME from the downward API's spec.nodeName).
    #[arg(long, env = "NODE_NAME")]
    pub node_name: Option<String>,
    /// Where the host's root filesystem (or the parts the agent reads) is mounted.
    #[arg(long, env = "SYSBOXRO_HOST_ROOT", default_value = "/host")]
    pub host_root: PathBuf,
    /// Seconds between observations (the pid file is also watched every second).
    #[arg(long, env = "SYSBOXRO_INTERVAL", default_value_t = 10.0)]
    pub interval: f64,
    /// Observe once, print the evidence as JSON on stdout, publish it (unless --dry-run) and exit.
    #[arg(long, env = "SYSBOXRO_ONCE")]
    pub once: bool,
    /// Observe and log, but never write to the API server.
    #[arg(long, env = "SYSBOXRO_DRY_RUN")]
    pub dry_run: bool,
    /// Plain-HTTP address for /healthz, /readyz and /metrics (`off` serves nothing).
    #[arg(long, env = "SYSBOXRO_ADMIN_LISTEN", default_value = "0.0.0.0:8080", value_parser = parse_admin_listen)]
    pub admin_listen: AdminListen,
    /// Kubeconfig (default: in-cluster config, then KUBECONFIG or ~/.kube/config).
    #[arg(long, env = "SYSBOXRO_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    #[arg(long, env = "SYSBOXRO_CONTEXT")]
    pub context: Option<String>,
}

/// An admin address, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminListen(pub Option<SocketAddr>);

fn parse_admin_listen(s: &str) -> Result<AdminListen, String> {
    if s == "off" {
        return Ok(AdminListen(None));
    }
    s.parse().map(|a| AdminListen(Some(a))).map_err(|_| format!("{s:?} is not ADDRESS:PORT or off"))
}

impl AgentArgs {
    pub fn to_config(&self) -> Result<AgentConfig, String> {
        let interval = seconds("interval", self.interval)?;
        if interval < Duration::from_secs(1) {
            return Err("--interval must be at least 1 second".into());
        }
        let mut config = AgentConfig::new(self.host_root.clone());
        config.node_name = self.node_name.clone().filter(|n| !n.is_empty());
        config.interval = interval;
        config.once = self.once;
        config.dry_run = self.dry_run;
        config.admin_listen = if self.once { None } else { self.admin_listen.0 };
        config.connection = Connection { kubeconfig: self.kubeconfig.clone(), context: self.context.clone() };
        Ok(config)
    }
}
