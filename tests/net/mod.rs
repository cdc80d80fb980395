//! Blocking network helpers for tests that need to control every byte a
//! client sends: raw plain-HTTP requests and raw TLS streams.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS connection to `addr` trusting `ca.crt` in `ca_dir`, handshake done.
/// `alpn` lists the protocols offered (none when empty).
pub fn tls_connect(addr: SocketAddr, ca_dir: &Path, alpn: &[&[u8]]) -> std::io::Result<TlsStream> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca_dir.join("ca.crt")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let conn = rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
        .map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// Writes `request` and reads until the server closes, an error, or 5 s.
pub fn exchange<S: Read + Write>(stream: &mut S, request: &[u8]) -> Vec<u8> {
    let _ = stream.write_all(request);
    let _ = stream.flush();
    let mut reply = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return reply,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `body` as one AdmissionReview POST to `/mutate` on a kept-alive
/// connection and reads its response, as [`read_response`] does.
pub fn post_review<S: Read + Write>(conn: &mut S, body: &[u8]) -> Option<(u16, String)> {
    let head = format!(
        "POST /mutate?timeout=5s HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).ok()?;
    conn.write_all(body).ok()?;
    conn.flush().ok()?;
    read_response(conn)
}

/// Reads one response (head and a `content-length` body) from a kept-alive
/// connection, leaving it open: the status and the lower-cased head, or None
/// when the server closed the connection (or 5 s passed) first.
pub fn read_response<S: Read>(conn: &mut S) -> Option<(u16, String)> {
    let mut reply = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        if let Some(end) = reply.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&reply[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if reply.len() >= end + 4 + length {
                return Some((status_of(&reply)?, head));
            }
        }
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
        }
    }
}

/// `GET path` on a plain-HTTP port: the status code, or why there was none.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<u16, String> {
    let mut tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let reply = exchange(&mut tcp, format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes());
    status_of(&reply).ok_or_else(|| format!("no HTTP answer: {:?}", String::from_utf8_lossy(&reply)))
}

/// The status code of an HTTP/1.1 reply.
pub fn status_of(reply: &[u8]) -> Option<u16> {
    let head = std::str::from_utf8(reply.get(..12)?).ok()?;
    head.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}
