//! Where the cluster view comes from: snapshot files or the live cluster.
//! [`open`] is the one way both shells get a [`ClusterView`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::live::{self, Connection, LiveError};
use super::snapshot::{self, SnapshotError};
use super::{ClusterView, StaticView};
use crate::metrics::Metrics;
use crate::policy::NodePolicy;

/// A source of cluster state.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Node, RuntimeClass, ConfigMap, Namespace and Service objects read from files.
    Snapshot(Vec<PathBuf>),
    /// Watches on the live cluster.
    Live {
        connection: Connection,
        /// When set, the API server must answer a version request within this
        /// time before the watches start (a fail-fast for one-shot runs).
        probe: Option<Duration>,
    },
}

/// An opened cluster view.
pub struct Opened {
    pub view: Arc<dyn ClusterView>,
    /// What a snapshot passed over and why (unknown kinds, other ConfigMaps).
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Live(#[from] LiveError),
    #[error("the API server did not answer within {}s", .0.as_secs_f64())]
    NoAnswer(Duration),
    #[error("the API server cannot be reached: {0}")]
    Unreachable(#[source] kube::Error),
}

/// Opens the view: a snapshot is loaded whole (and is ready at once); a live
/// view starts its watches and becomes ready when they have synced.
/// A live view needs a tokio runtime (its watches run as tasks on it).
pub async fn open(source: &Source, policy: &NodePolicy, metrics: Arc<Metrics>) -> Result<Opened, OpenError> {
    match source {
        Source::Snapshot(paths) => {
            let (state, notes) = snapshot::load(paths, policy)?;
            state.record(&metrics);
            Ok(Opened { view: Arc::new(StaticView(Arc::new(state))), notes })
        }
        Source::Live { connection, probe } => {
            let client = live::client(connection).await?;
            if let Some(timeout) = *probe {
                match tokio::time::timeout(timeout, client.apiserver_version()).await {
                    Err(_) => return Err(OpenError::NoAnswer(timeout)),
                    Ok(Err(e)) => return Err(OpenError::Unreachable(e)),
                    Ok(Ok(_)) => {}
                }
            }
            Ok(Opened { view: live::start(client, policy.clone(), metrics), notes: Vec::new() })
        }
    }
}

/// Waits until `view` is ready, up to `timeout`; returns whether it became ready.
pub async fn wait_ready(view: &dyn ClusterView, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while !view.is_ready() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}
