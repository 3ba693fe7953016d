//! The registry remote: where an image lives for others to pull, named by manifest digest.
//!
//! Bytes move with `docker push` / `docker pull` (in `docker.rs`); this module parses registry
//! references and asks the registry itself for a manifest's digest (`HEAD /v2/<name>/manifests/<tag>`
//! → `Docker-Content-Digest`), so nothing depends on the text `docker push` prints. It answers
//! the registry's challenge with Basic credentials, or with a Bearer token fetched from the realm
//! the registry names. Invariant: a credential never appears in an error, a log line or argv.

use std::fmt;
use std::time::Duration;

use crate::docker::ImageDigest;
use crate::http::{self, Secret};

/// What a manifest HEAD accepts: Docker v2 and OCI manifests and their indexes.
const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.index.v1+json";

/// `host[:port][/namespace]`, as given with `--registry` or `RTM_REGISTRY`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registry {
    /// `host[:port]`.
    pub host: String,
    /// A leading path inside the registry, without slashes at either end (may be empty).
    pub namespace: String,
}

/// Credentials for a registry: a user and a token (never on argv).
#[derive(Clone, Debug)]
pub struct Credentials {
    pub user: String,
    pub token: Secret,
}

#[derive(Debug)]
pub enum RegistryError {
    BadReference { text: String, why: &'static str },
    Unauthorized { url: String },
    Status { url: String, status: u16 },
    NoDigest { url: String },
    Transport { url: String, source: ureq::Error },
    Setup { reason: http::BadCertificates },
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::BadReference { text, why } => write!(f, "registry reference {text:?} {why}"),
            RegistryError::Unauthorized { url } => write!(
                f,
                "the registry refused our credentials at {url} (set RTM_REGISTRY_USER and RTM_REGISTRY_TOKEN, or FLEXO_TOKEN)"
            ),
            RegistryError::Status { url, status } => write!(f, "{url} answered {status}"),
            RegistryError::NoDigest { url } => write!(f, "{url} gave no Docker-Content-Digest header"),
            RegistryError::Transport { url, source } => write!(f, "could not reach the registry at {url}: {source}"),
            RegistryError::Setup { reason } => reason.fmt(f),
        }
    }
}

impl std::error::Error for RegistryError {}

impl Registry {
    /// Parses `host[:port][/namespace]`. A scheme is refused: docker decides http or https.
    pub fn parse(text: &str) -> Result<Registry, RegistryError> {
        let bad = |why| RegistryError::BadReference { text: text.to_owned(), why };
        let t = text.trim().trim_end_matches('/');
        if t.contains("://") {
            return Err(bad("must not have a scheme (give host[:port][/namespace])"));
        }
        let (host, namespace) = t.split_once('/').unwrap_or((t, ""));
        let host_ok = !host.is_empty()
            && !host.starts_with(['-', '.', ':'])
            && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
        if !host_ok {
            return Err(bad("has no valid host[:port]"));
        }
        if !namespace.is_empty() && !crate::docker::is_valid_tag(namespace) || namespace.contains(':') {
            return Err(bad("has a namespace that is not a lowercase repository path"));
        }
        Ok(Registry { host: host.to_owned(), namespace: namespace.to_owned() })
    }

    /// The repository path for `image` (e.g. `adcs-demo/lifecycle`) in this registry, without host.
    pub fn repository(&self, image: &str) -> String {
        if self.namespace.is_empty() { image.to_owned() } else { format!("{}/{image}", self.namespace) }
    }

    /// `host[:port]/<namespace>/<image>`: what `docker tag` / `docker push` take (before `:tag`).
    pub fn image_ref(&self, image: &str) -> String {
        format!("{}/{}", self.host, self.repository(image))
    }

    /// Registries on the loopback interface speak plain HTTP, as docker assumes; all others HTTPS.
    fn scheme(&self) -> &'static str {
        let host = self.host.rsplit_once(':').map_or(self.host.as_str(), |(h, _)| h);
        if host == "localhost" || host.starts_with("127.") || host == "[::1]" { "http" } else { "https" }
    }
}

/// A `<host>/<repository>@sha256:<hex>` reference, as recorded in `rtm:registryRef`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestRef {
    pub host: String,
    pub repository: String,
    pub digest: ImageDigest,
}

impl DigestRef {
    pub fn parse(text: &str) -> Result<DigestRef, RegistryError> {
        let bad = |why| RegistryError::BadReference { text: text.to_owned(), why };
        let (name, digest) = text.rsplit_once('@').ok_or_else(|| bad("has no @sha256: digest"))?;
        let digest = digest
            .strip_prefix("sha256:")
            .and_then(ImageDigest::parse)
            .ok_or_else(|| bad("has a digest that is not sha256:<64 hex>"))?;
        let (host, repository) = name.split_once('/').ok_or_else(|| bad("has no repository after the host"))?;
        Registry::parse(host)?;
        if repository.is_empty() || !crate::docker::is_valid_tag(repository) || repository.contains(':') {
            return Err(bad("has an invalid repository"));
        }
        Ok(DigestRef { host: host.to_owned(), repository: repository.to_owned(), digest })
    }

    /// The same repository and digest in another registry (a mirror given with `--registry`).
    pub fn in_registry(&self, registry: &Registry) -> DigestRef {
        DigestRef { host: registry.host.clone(), ..self.clone() }
    }
}

impl fmt::Display for DigestRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@{}", self.host, self.repository, self.digest)
    }
}

/// The manifest digest the registry holds for `repository:tag`, as its `Docker-Content-Digest`.
pub fn manifest_digest(
    registry: &Registry,
    repository: &str,
    tag: &str,
    credentials: Option<&Credentials>,
    timeout: Duration,
) -> Result<ImageDigest, RegistryError> {
    let url = format!("{}://{}/v2/{repository}/manifests/{tag}", registry.scheme(), registry.host);
    let response = call(registry, Method::Head, &url, credentials, timeout)?;
    let digest = header(&response, "docker-content-digest").unwrap_or_default();
    ImageDigest::parse(digest.strip_prefix("sha256:").unwrap_or("")).ok_or(RegistryError::NoDigest { url })
}

/// Checks that the registry answers the distribution API (`GET /v2/`), with our credentials
/// when it asks for them.
pub fn probe(registry: &Registry, credentials: Option<&Credentials>, timeout: Duration) -> Result<(), RegistryError> {
    let url = format!("{}://{}/v2/", registry.scheme(), registry.host);
    call(registry, Method::Get, &url, credentials, timeout).map(drop)
}

/// The two requests we make of a registry.
#[derive(Clone, Copy)]
enum Method {
    /// `HEAD` a manifest, accepting every manifest and index type.
    Head,
    Get,
}

/// Sends one request; when the registry challenges it (401), answers the challenge and sends it
/// again. Anything but a 200 in the end is an error.
fn call(
    registry: &Registry,
    method: Method,
    url: &str,
    credentials: Option<&Credentials>,
    timeout: Duration,
) -> Result<ureq::http::Response<ureq::Body>, RegistryError> {
    let ca_file = if registry.scheme() == "https" { http::ca_file() } else { None };
    let agent = http::agent(Duration::from_secs(10), timeout, ca_file.as_deref())
        .map_err(|reason| RegistryError::Setup { reason })?;
    let send = |authorization: Option<&Secret>| {
        let (name, mut request) = match method {
            Method::Head => ("HEAD", agent.head(url).header("Accept", MANIFEST_TYPES)),
            Method::Get => ("GET", agent.get(url)),
        };
        crate::log::command(&format!("{name} {url}{}", if authorization.is_some() { " (authenticated)" } else { "" }));
        if let Some(a) = authorization {
            request = request.header("Authorization", a.expose());
        }
        request.call().map_err(|source| RegistryError::Transport { url: url.to_owned(), source })
    };
    let mut response = send(None)?;
    if response.status() == 401 {
        let challenge = header(&response, "www-authenticate").unwrap_or_default();
        let authorization = answer_challenge(&agent, &challenge, credentials, url)?;
        response = send(Some(&authorization))?;
    }
    match response.status().as_u16() {
        200 => Ok(response),
        401 | 403 => Err(RegistryError::Unauthorized { url: url.to_owned() }),
        status => Err(RegistryError::Status { url: url.to_owned(), status }),
    }
}

fn header(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The `Authorization` value that answers a registry's `WWW-Authenticate` challenge.
fn answer_challenge(
    agent: &ureq::Agent,
    challenge: &str,
    credentials: Option<&Credentials>,
    url: &str,
) -> Result<Secret, RegistryError> {
    let unauthorized = || RegistryError::Unauthorized { url: url.to_owned() };
    let basic = |c: &Credentials| http::basic(&c.user, &c.token);
    let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return credentials.map(basic).ok_or_else(unauthorized);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(unauthorized());
    }
    // Docker's token protocol: GET <realm>?service=…&scope=… (with Basic credentials if we have
    // them; anonymous otherwise, for public pulls) returns {"token": …} or {"access_token": …}.
    let params = challenge_params(params);
    let realm = params.iter().find(|(k, _)| k == "realm").map(|(_, v)| v.clone()).ok_or_else(unauthorized)?;
    let mut request = agent.get(&realm);
    for (k, v) in params.iter().filter(|(k, _)| k == "service" || k == "scope") {
        request = request.query(k, v);
    }
    if let Some(c) = credentials {
        request = request.header("Authorization", basic(c).expose());
    }
    crate::log::command(&format!("GET {realm} (registry token)"));
    let mut response = request.call().map_err(|source| RegistryError::Transport { url: realm.clone(), source })?;
    if response.status() != 200 {
        return Err(unauthorized());
    }
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|source| RegistryError::Transport { url: realm.clone(), source })?;
    let json: serde_json::Value = serde_json::from_str(&body).map_err(|_| unauthorized())?;
    let token = json["token"].as_str().or(json["access_token"].as_str()).ok_or_else(unauthorized)?;
    Ok(Secret::new(format!("Bearer {token}")))
}

/// `realm="…",service="…"` → pairs.
fn challenge_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = match after.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"').unwrap_or((quoted, "")),
            None => after.split_once(',').unwrap_or((after, "")),
        };
        out.push((key, value.to_owned()));
        rest = tail.trim_start_matches(',').trim();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_and_digest_refs() {
        let r = Registry::parse("127.0.0.1:5000/team/").unwrap();
        assert_eq!((r.host.as_str(), r.namespace.as_str()), ("127.0.0.1:5000", "team"));
        assert_eq!(r.image_ref("adcs-demo/lifecycle"), "127.0.0.1:5000/team/adcs-demo/lifecycle");
        assert_eq!(r.scheme(), "http");
        assert_eq!(Registry::parse("registry.example.org").unwrap().scheme(), "https");
        for bad in ["https://r.example.org", "", "-x", "r.example.org/Upper", "r/a:b"] {
            assert!(Registry::parse(bad).is_err(), "{bad}");
        }
        let hex = "ab".repeat(32);
        let d = DigestRef::parse(&format!("127.0.0.1:5000/adcs-demo/lifecycle@sha256:{hex}")).unwrap();
        assert_eq!(d.repository, "adcs-demo/lifecycle");
        assert_eq!(d.to_string(), format!("127.0.0.1:5000/adcs-demo/lifecycle@sha256:{hex}"));
        assert_eq!(
            d.in_registry(&Registry::parse("mirror:443").unwrap()).to_string(),
            format!("mirror:443/adcs-demo/lifecycle@sha256:{hex}")
        );
        for bad in
            [format!("host/x@sha256:{}", "z".repeat(64)), "host/x:tag".to_owned(), format!("hostonly@sha256:{hex}")]
        {
            assert!(DigestRef::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn challenges() {
        assert_eq!(
            challenge_params(
                r#"realm="https://auth.example.org/token",service="registry",scope="repository:a/b:pull""#
            ),
            [
                ("realm".to_owned(), "https://auth.example.org/token".to_owned()),
                ("service".to_owned(), "registry".to_owned()),
                ("scope".to_owned(), "repository:a/b:pull".to_owned())
            ]
        );
    }
}
