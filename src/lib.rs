//! sysbox-ro-webhook: admission control for read-only Sysbox pods.
//!
//! The [`engine`] decides; [`cluster`] is what it knows about the cluster;
//! [`admission`] speaks AdmissionReview; [`serve`], [`check`] and [`certs`]
//! are the shells the binary runs; [`sysbox`] models what Sysbox itself
//! does with its configuration.

pub mod admission;
pub mod agent;
pub mod audit;
pub mod certs;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod engine;
pub mod explain;
pub mod intake;
pub mod limits;
pub mod logging;
pub mod manifest;
pub mod metrics;
pub mod policy;
pub mod printable;
pub mod regular_file;
pub mod serve;
pub mod sysbox;
