//! `certs`: a CA and a serving certificate for the webhook's Service, so the
//! apiserver can verify it (`caBundle`). Private keys are written 0600.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

#[derive(Debug, Clone)]
pub struct CertsConfig {
    pub service: String,
    pub namespace: String,
    pub out: PathBuf,
    pub dns: Vec<String>,
    pub ip: Vec<IpAddr>,
    pub days: u32,
    pub force: bool,
    /// Sign with this existing CA (certificate, key) instead of making a new one.
    pub ca: Option<(PathBuf, PathBuf)>,
}

#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("{path} exists; pass --force to overwrite")]
    Exists { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    BadCa { path: PathBuf, message: String },
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("--days must be between 1 and 3650")]
    Days,
}

/// What `certs` wrote.
#[derive(Debug)]
pub struct Written {
    pub files: Vec<PathBuf>,
    /// base64 of the CA certificate PEM, for `caBundle`.
    pub ca_bundle: String,
    pub dns_names: Vec<String>,
}

/// The DNS names the apiserver may use for a Service.
pub fn service_dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), CertsError> {
    let err = |source| CertsError::Write { path: path.into(), source };
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    let mut f = opts.open(path).map_err(err)?;
    f.write_all(contents.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)
}

pub fn generate(config: &CertsConfig) -> Result<Written, CertsError> {
    if config.days == 0 || config.days > 3650 {
        return Err(CertsError::Days);
    }
    let names = ["ca.crt", "ca.key", "tls.crt", "tls.key"];
    let targets: Vec<PathBuf> = names.iter().map(|n| config.out.join(n)).collect();
    // Reusing a CA from the output folder is a rotation: its files are kept.
    let reused_ca = config.ca.as_ref().is_some_and(|(c, k)| targets[0] == *c && targets[1] == *k);
    if !config.force {
        let skip = if reused_ca { 2 } else { 0 };
        if let Some(existing) = targets.iter().skip(skip).find(|p| p.exists()) {
            return Err(CertsError::Exists { path: existing.clone() });
        }
    }
    fs::create_dir_all(&config.out).map_err(|source| CertsError::Write { path: config.out.clone(), source })?;

    let now = OffsetDateTime::now_utc();
    let (ca_pem, ca_key_pem, ca_key, ca_params_or_pem) = match &config.ca {
        Some((cert_path, key_path)) => {
            let read =
                |p: &PathBuf| fs::read_to_string(p).map_err(|source| CertsError::Read { path: p.clone(), source });
            let (cert_pem, key_pem) = (read(cert_path)?, read(key_path)?);
            let key = KeyPair::from_pem(&key_pem)
                .map_err(|e| CertsError::BadCa { path: key_path.clone(), message: e.to_string() })?;
            (cert_pem.clone(), key_pem, key, Err(cert_pem))
        }
        None => {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, format!("{}.{} webhook CA", config.service, config.namespace));
            params.distinguished_name = dn;
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages =
                vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
            params.not_before = now - Duration::minutes(5);
            params.not_after = now + Duration::days(i64::from(config.days) * 2);
            let cert = params.self_signed(&key)?;
            (cert.pem(), key.serialize_pem(), key, Ok(params))
        }
    };
    let issuer = match ca_params_or_pem {
        Ok(params) => Issuer::new(params, &ca_key),
        Err(pem) => Issuer::from_ca_cert_pem(&pem, &ca_key).map_err(|e| CertsError::BadCa {
            path: config.ca.as_ref().map(|(c, _)| c.clone()).unwrap_or_default(),
            message: e.to_string(),
        })?,
    };

    let mut dns_names = service_dns_names(&config.service, &config.namespace);
    dns_names.extend(config.dns.iter().cloned());
    let mut params = CertificateParams::new(dns_names.clone())?;
    params.subject_alt_names.extend(config.ip.iter().map(|ip| SanType::IpAddress(*ip)));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("{}.{}.svc", config.service, config.namespace));
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(i64::from(config.days));
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;

    let mut files = Vec::new();
    if !reused_ca {
        write_file(&targets[0], &ca_pem, false)?;
        write_file(&targets[1], &ca_key_pem, true)?;
        files.extend([targets[0].clone(), targets[1].clone()]);
    }
    write_file(&targets[3], &key.serialize_pem(), true)?;
    write_file(&targets[2], &cert.pem(), false)?;
    files.extend([targets[2].clone(), targets[3].clone()]);
    Ok(Written { files, ca_bundle: base64::engine::general_purpose::STANDARD.encode(ca_pem), dns_names })
}
