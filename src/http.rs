//! What the network remotes (Flexo in `flexo.rs`, registries in `registry.rs`) share: the HTTP
//! agent's settings, the CA bundle an on-premises service needs, Basic credentials, and the
//! [`Secret`] type that keeps tokens out of every message.
//!
//! Invariant: an agent keeps error bodies (status codes are values), never follows a redirect
//! (which would drop or leak `Authorization`), and always has a connect and a global timeout.

use std::fmt;
use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// The CA bundle used when `SSL_CERT_FILE` is not set (Debian's `ca-certificates`).
const DEFAULT_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A secret (a token, a password) whose `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the few places that must send it: an `Authorization` header, a program's
    /// stdin.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The CA bundle to trust: `SSL_CERT_FILE`, else the system bundle when present.
pub fn ca_file() -> Option<String> {
    match std::env::var("SSL_CERT_FILE").ok().filter(|v| !v.trim().is_empty()) {
        Some(path) => Some(path),
        None => std::path::Path::new(DEFAULT_CA_FILE).exists().then(|| DEFAULT_CA_FILE.to_owned()),
    }
}

/// A CA bundle that cannot serve: unreadable, or without a certificate.
#[derive(Debug, PartialEq, Eq)]
pub struct BadCertificates {
    pub path: String,
    pub reason: String,
}

impl fmt::Display for BadCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot load the CA bundle {} (SSL_CERT_FILE): {}", self.path, self.reason)
    }
}

/// The certificates of a PEM bundle; an unreadable or empty bundle is an error naming it.
pub fn ca_bundle(path: &str) -> Result<Vec<Certificate<'static>>, BadCertificates> {
    let bad = |reason: String| BadCertificates { path: path.to_owned(), reason };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(bad("it holds no certificate".into()));
    }
    Ok(certs)
}

/// An agent with our rules: status codes as values, no redirects, the given timeouts, and for
/// HTTPS the CA bundle (so an internal CA is trusted), else the Mozilla roots built into rustls.
pub fn agent(connect: Duration, global: Duration, ca_file: Option<&str>) -> Result<ureq::Agent, BadCertificates> {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(connect))
        .timeout_global(Some(global));
    if let Some(path) = ca_file {
        let roots = RootCerts::new_with_certs(&ca_bundle(path)?);
        config = config.tls_config(TlsConfig::builder().root_certs(roots).build());
    }
    Ok(config.build().into())
}

/// `Basic <base64(user:password)>`.
pub fn basic(user: &str, password: &Secret) -> Secret {
    Secret::new(format!("Basic {}", base64(format!("{user}:{}", password.expose()).as_bytes())))
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_base64_is_standard() {
        let s = Secret::new("tok");
        assert_eq!(format!("{s} {s:?} {:?}", Some(&s)), "<redacted> <redacted> Some(<redacted>)");
        assert_eq!(base64(b"user01:password1"), "dXNlcjAxOnBhc3N3b3JkMQ==");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b""), "");
        assert_eq!(basic("u", &Secret::new("p")).expose(), "Basic dTpw");
    }

    #[test]
    fn ca_bundles_are_loaded_or_named() {
        if std::path::Path::new(DEFAULT_CA_FILE).exists() {
            assert!(!ca_bundle(DEFAULT_CA_FILE).unwrap().is_empty());
        }
        let err = ca_bundle("/nonexistent/ca.pem").unwrap_err().to_string();
        assert!(err.starts_with("cannot load the CA bundle /nonexistent/ca.pem (SSL_CERT_FILE): "), "{err}");
        let empty = tempfile::NamedTempFile::new().unwrap();
        let path = empty.path().to_str().unwrap();
        assert_eq!(
            ca_bundle(path).unwrap_err().to_string(),
            format!("cannot load the CA bundle {path} (SSL_CERT_FILE): it holds no certificate")
        );
    }
}
