//! The serving certificate, reloaded from disk without a restart.
//!
//! Kubernetes updates a Secret volume by swapping a `..data` symlink, which a
//! watch on the individual files misses. Instead the files are re-read on a
//! short timer; when their bytes change and the new pair is valid, new
//! connections get it at once. A broken or half-written pair is logged and
//! counted, and the previous certificate keeps serving, so no handshake fails.
//!
//! Reading never blocks the async runtime and never costs more than a
//! certificate should: only regular files are read (opened non-blocking and
//! checked with `fstat`, so a FIFO or a device is refused without waiting),
//! at most [`MAX_PEM_BYTES`] each, on the blocking pool, and a read that has
//! not finished after [`READ_TIMEOUT`] is reported while the previous pair
//! keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::metrics::{Metrics, ResultLabels};

/// Largest certificate chain or key file read. A PEM chain of a leaf and two
/// intermediates is under 8 KiB.
pub const MAX_PEM_BYTES: u64 = 1 << 20;

/// How long reading the pair may take before the attempt is reported stuck.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Missing, unreadable, not a regular file, or over [`MAX_PEM_BYTES`].
    #[error(transparent)]
    File(#[from] crate::regular_file::ReadError),
    #[error("reading {cert} and {key} did not finish within {READ_TIMEOUT:?}")]
    Stuck { cert: PathBuf, key: PathBuf },
    #[error("{path}: no PEM certificate found")]
    NoCertificate { path: PathBuf },
    #[error("{path}: not a PEM certificate chain: {message}")]
    BadCertificate { path: PathBuf, message: String },
    #[error("{path}: no usable PEM private key: {message}")]
    BadKey { path: PathBuf, message: String },
    #[error("{key} does not match the certificate in {cert}: {message}")]
    Mismatch { cert: PathBuf, key: PathBuf, message: String },
    #[error("TLS setup failed: {0}")]
    Config(#[from] rustls::Error),
}

/// A parsed certificate pair and when it expires.
pub struct LoadedPair {
    pub key: Arc<CertifiedKey>,
    pub not_after: SystemTime,
}

/// Parses a certificate chain and private key from PEM bytes.
pub fn parse_pair(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<LoadedPair, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::BadCertificate { path: cert_path.into(), message: e.to_string() })?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCertificate { path: cert_path.into() });
    };
    let not_after = match x509_parser::parse_x509_certificate(leaf) {
        Ok((_, cert)) => {
            let ts = cert.validity().not_after.timestamp();
            UNIX_EPOCH + Duration::from_secs(u64::try_from(ts).unwrap_or(0))
        }
        Err(e) => return Err(TlsError::BadCertificate { path: cert_path.into(), message: e.to_string() }),
    };
    let key_der = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| TlsError::BadKey { path: key_path.into(), message: e.to_string() })?;
    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| TlsError::BadKey { path: key_path.into(), message: e.to_string() })?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|e| TlsError::Mismatch {
        cert: cert_path.into(),
        key: key_path.into(),
        message: e.to_string(),
    })?;
    Ok(LoadedPair { key: Arc::new(certified), not_after })
}

/// Reads a regular file of at most [`MAX_PEM_BYTES`]. Blocking I/O: call it
/// off the async workers.
fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    let limit = usize::try_from(MAX_PEM_BYTES).unwrap_or(usize::MAX);
    Ok(crate::regular_file::read_regular(path, limit, false)?.data)
}

/// Resolves every handshake to the current certificate pair.
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
    /// The bytes the current pair (or the last rejected one) was read from.
    seen: std::sync::Mutex<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert").field("cert", &self.cert_path).field("key", &self.key_path).finish()
    }
}

impl ReloadingCert {
    /// Loads the pair; fails with a message naming the file when it is unusable.
    pub fn load(
        cert_path: &Path,
        key_path: &Path,
        provider: Arc<CryptoProvider>,
        metrics: &Metrics,
    ) -> Result<Arc<Self>, TlsError> {
        let (cert_pem, key_pem) = (read(cert_path)?, read(key_path)?);
        let pair = parse_pair(&cert_pem, &key_pem, cert_path, key_path, &provider)?;
        metrics.set_tls_expiry(pair.not_after);
        Ok(Arc::new(ReloadingCert {
            cert_path: cert_path.into(),
            key_path: key_path.into(),
            provider,
            current: ArcSwap::new(pair.key),
            seen: std::sync::Mutex::new((cert_pem, key_pem)),
        }))
    }

    /// Re-reads the files; swaps in a changed, valid pair. Returns whether it swapped.
    pub fn reload(&self, metrics: &Metrics) -> Result<bool, TlsError> {
        let (cert_pem, key_pem) = self.read_consistent()?;
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.0 == cert_pem && seen.1 == key_pem {
            return Ok(false);
        }
        let parsed = parse_pair(&cert_pem, &key_pem, &self.cert_path, &self.key_path, &self.provider);
        *seen = (cert_pem, key_pem);
        let pair = parsed?;
        self.current.store(pair.key);
        metrics.set_tls_expiry(pair.not_after);
        Ok(true)
    }

    /// Reads both files; if the certificate changed while the key was read (a
    /// `..data` swap between the two reads), reads again, so a swap in
    /// progress is not mistaken for a broken pair.
    fn read_consistent(&self) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
        let mut cert = read(&self.cert_path)?;
        for _ in 0..3 {
            let key = read(&self.key_path)?;
            let again = read(&self.cert_path)?;
            if again == cert {
                return Ok((cert, key));
            }
            cert = again;
        }
        Ok((cert, read(&self.key_path)?))
    }

    /// [`ReloadingCert::load`] on the blocking pool, within [`READ_TIMEOUT`].
    pub async fn load_off_runtime(
        cert_path: &Path,
        key_path: &Path,
        provider: Arc<CryptoProvider>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, TlsError> {
        let (cert, key) = (cert_path.to_path_buf(), key_path.to_path_buf());
        let job = tokio::task::spawn_blocking(move || ReloadingCert::load(&cert, &key, provider, &metrics));
        match tokio::time::timeout(READ_TIMEOUT, job).await {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(join)) => std::panic::resume_unwind(join.into_panic()),
            Err(_) => Err(TlsError::Stuck { cert: cert_path.into(), key: key_path.into() }),
        }
    }

    /// Polls the files every `interval` until the task is dropped. Each
    /// reload runs on the blocking pool; one that is stuck (a hung network
    /// file system) is reported and awaited again on the next tick rather
    /// than started a second time.
    pub async fn watch(self: Arc<Self>, interval: Duration, metrics: Arc<Metrics>) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut pending: Option<tokio::task::JoinHandle<Result<bool, TlsError>>> = None;
        loop {
            tick.tick().await;
            let mut job = pending.take().unwrap_or_else(|| {
                let (me, metrics) = (self.clone(), metrics.clone());
                tokio::task::spawn_blocking(move || me.reload(&metrics))
            });
            let outcome = match tokio::time::timeout(READ_TIMEOUT, &mut job).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(join)) => {
                    tracing::error!(error = %join, "certificate reload failed unexpectedly");
                    continue;
                }
                Err(_) => {
                    pending = Some(job);
                    Err(TlsError::Stuck { cert: self.cert_path.clone(), key: self.key_path.clone() })
                }
            };
            match outcome {
                Ok(false) => {}
                Ok(true) => {
                    metrics.tls_reloads.get_or_create(&ResultLabels { result: "success" }).inc();
                    tracing::info!(cert = %self.cert_path.display(), "serving certificate reloaded");
                }
                Err(e) => {
                    metrics.tls_reloads.get_or_create(&ResultLabels { result: "failure" }).inc();
                    tracing::warn!(error = %e, "serving certificate not reloaded; the previous one keeps serving");
                }
            }
        }
    }

    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The rustls server configuration: TLS 1.2 and 1.3, HTTP/1.1 (the apiserver
/// does not speak HTTP/2 to webhooks), certificates from `resolver`, no
/// session resumption.
pub fn server_config(
    provider: Arc<CryptoProvider>,
    resolver: Arc<ReloadingCert>,
) -> Result<rustls::ServerConfig, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // No session resumption: a resumed session keeps the identity of the
    // certificate it began with, so a rotation would not reach every new
    // connection. The apiserver keeps connections alive instead.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}
