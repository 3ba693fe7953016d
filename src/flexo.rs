//! The Flexo MMS remote: a client of Layer 1's HTTP API (`shared/reference/flexo-layer1.md`, cited
//! as §0..§7) that creates the org, repo and branches, writes witness triples and reads them back.
//!
//! With the future `registry.rs`, this is the only module that opens network connections.
//! Invariants: every request carries `Authorization: Bearer …`, and the token lives only in a
//! [`Secret`], which never prints; a write is one `INSERT DATA` per call, because every commit copies
//! the whole model (§7); a write whose answer was lost (timeout, 5xx, dropped connection) is never
//! sent again blindly: the client asks the branch whether the triples are there; and a redirect is
//! an error, because following it would drop the token.

// No command calls the client yet (`doctor` and `--from-flexo` will); until then only its tests do.
// Remove this once a command uses it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::ErrorKind;
use std::time::Duration;

use crate::http as http_rules;
use ureq::http;

use crate::record::{Dataset, Quad, Term};
use crate::vocab::{
    DCTERMS_TITLE, MMS_REF, RDF_LANG_STRING, RDF_TYPE, RTM_CONTENT_HASH, RTM_DOCKER_IMAGE, RTM_LAYER, XSD_STRING,
};
use crate::witness::Selector;

/// Query results can be large: ureq's default 10 MiB body limit is too small for a whole branch.
const BODY_LIMIT: u64 = 256 << 20;
/// How much of a server's text an error message keeps.
const MESSAGE_CHARS: usize = 300;
/// How long `insert` waits before each retry of an update that met the branch mutex (409, §7).
const CONFLICT_DELAYS_MS: [u64; 5] = [200, 400, 800, 1600, 3200];
/// How long `insert` waits before each check of a write whose answer was lost: the server may still
/// be committing it.
const VERIFY_DELAYS_MS: [u64; 4] = [250, 500, 1000, 2000];

pub use crate::http::Secret;

/// The Flexo settings, from the environment with the demo's names and defaults
/// (`witness-record.md`). `timeout` bounds each request end to end; `probe_timeout` bounds `probe`
/// and every connection attempt.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `FLEXO_URL`: Layer 1's base URL, without a trailing `/`.
    pub url: String,
    /// `FLEXO_AUTH_URL`: the auth service's base URL, without a trailing `/`.
    pub auth_url: String,
    /// `FLEXO_TOKEN`: used as is when set; otherwise `connect` logs in.
    pub token: Option<Secret>,
    /// `FLEXO_USER` and `FLEXO_PASS`: the login's Basic credentials.
    pub user: String,
    pub password: Secret,
    /// `FLEXO_ORG` and `FLEXO_REPO`.
    pub org: String,
    pub repo: String,
    /// `FLEXO_TIMEOUT` and `FLEXO_PROBE_TIMEOUT`.
    pub timeout: Duration,
    pub probe_timeout: Duration,
    /// `FLEXO_BRANCH_PREFIX`: put before every branch id, so that several users can share a repo.
    pub branch_prefix: String,
    /// The PEM bundle of trusted CAs: `SSL_CERT_FILE`, else the system bundle when present, else
    /// none (the Mozilla roots built into rustls).
    pub ca_file: Option<String>,
}

impl Settings {
    /// Reads the settings from the environment; an error names the variable that is missing or bad.
    pub fn from_env() -> Result<Settings, FlexoError> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// The settings from any lookup of variable values (the environment, or a test's table).
    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, FlexoError> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let text = |name: &str, default: &str| var(name).unwrap_or_else(|| default.to_owned());
        let url = base_url("FLEXO_URL", var("FLEXO_URL").ok_or(FlexoError::MissingUrl)?)?;
        let auth_url = base_url("FLEXO_AUTH_URL", text("FLEXO_AUTH_URL", "http://localhost:8082"))?;
        let seconds = |name: &'static str, default: u64| -> Result<Duration, FlexoError> {
            let Some(value) = var(name) else { return Ok(Duration::from_secs(default)) };
            match value.trim().parse::<f64>().ok().and_then(|s| Duration::try_from_secs_f64(s).ok()) {
                Some(d) if !d.is_zero() => Ok(d),
                _ => Err(FlexoError::BadSetting { var: name, value, expected: "a positive number of seconds" }),
            }
        };
        let id = |name: &'static str, default: &str| -> Result<String, FlexoError> {
            let value = text(name, default);
            if valid_id(&value) {
                Ok(value)
            } else {
                Err(FlexoError::BadSetting { var: name, value, expected: ID_RULE })
            }
        };
        let ca_file = http_rules::ca_file();
        Ok(Settings {
            url,
            auth_url,
            token: var("FLEXO_TOKEN").map(|t| Secret::new(t.trim())),
            user: text("FLEXO_USER", "user01"),
            password: Secret::new(get("FLEXO_PASS").unwrap_or_else(|| "password1".to_owned())),
            org: id("FLEXO_ORG", "adcs-demo")?,
            repo: id("FLEXO_REPO", "lifecycle")?,
            timeout: seconds("FLEXO_TIMEOUT", 180)?,
            probe_timeout: seconds("FLEXO_PROBE_TIMEOUT", 10)?,
            branch_prefix: get("FLEXO_BRANCH_PREFIX").unwrap_or_default().trim().to_owned(),
            ca_file,
        })
    }

    /// The branch that holds a named graph: the IRI's last path segment, after `FLEXO_BRANCH_PREFIX`.
    pub fn branch(&self, graph_iri: &str) -> String {
        let trimmed = graph_iri.trim_end_matches('/');
        let last = trimmed.rsplit(['/', '#', ':']).next().unwrap_or(trimmed);
        format!("{}{last}", self.branch_prefix)
    }

    /// `urn:adcs:flexo:<org>/<repo>/<branch>`, the value of `rtm:flexoRecord`.
    pub fn record_iri(&self, branch: &str) -> String {
        format!("urn:adcs:flexo:{}/{}/{branch}", self.org, self.repo)
    }
}

/// Checks that a base URL is http(s) without credentials (which would end up in messages and
/// `Debug` output) and drops its trailing `/`.
fn base_url(var: &'static str, value: String) -> Result<String, FlexoError> {
    let url = value.trim().trim_end_matches('/').to_owned();
    if without_credentials(&url) != url {
        return Err(FlexoError::CredentialsInUrl { var });
    }
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    let host_ok = url.split_once("://").is_some_and(|(_, rest)| !rest.is_empty());
    if scheme_ok && host_ok && !url.contains(char::is_whitespace) {
        Ok(url)
    } else {
        Err(FlexoError::BadSetting { var, value, expected: "an http:// or https:// URL" })
    }
}

/// What `insert` did to the branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// The branch moved to a new commit. `commit` is its id, or `None` when the answer was lost and
    /// the triples were found on the branch afterwards.
    Committed { commit: Option<String> },
    /// Every triple was already on the branch: no commit was made.
    Unchanged,
}

/// Whether `init` created a resource or found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    Created,
    Found,
}

/// What `init` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitReport {
    pub org: Presence,
    pub repo: Presence,
}

/// Where the token came from, for the advice on a 401.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokenSource {
    Environment,
    Login,
}

/// A connection to one Flexo repo: the HTTP agent and the token.
pub struct Client {
    agent: ureq::Agent,
    url: String,
    org: String,
    repo: String,
    token: Secret,
    token_source: TokenSource,
    timeout: Duration,
    probe_timeout: Duration,
    conflict_delays: Vec<Duration>,
    verify_delays: Vec<Duration>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("url", &without_credentials(&self.url))
            .field("org", &self.org)
            .field("repo", &self.repo)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// Opens a client: the token is `FLEXO_TOKEN` when set, else the auth service's `GET /login`
/// with Basic credentials (§4).
pub fn connect(settings: &Settings) -> Result<Client, FlexoError> {
    let agent = agent(settings)?;
    let limit = Limit { after: settings.timeout, var: "FLEXO_TIMEOUT", connect: settings.probe_timeout };
    let (token, token_source) = match &settings.token {
        Some(token) => (token.clone(), TokenSource::Environment),
        None => (login(&agent, settings, limit)?, TokenSource::Login),
    };
    Ok(Client {
        agent,
        url: settings.url.clone(),
        org: settings.org.clone(),
        repo: settings.repo.clone(),
        token,
        token_source,
        timeout: settings.timeout,
        probe_timeout: settings.probe_timeout,
        conflict_delays: CONFLICT_DELAYS_MS.iter().map(|&ms| Duration::from_millis(ms)).collect(),
        verify_delays: VERIFY_DELAYS_MS.iter().map(|&ms| Duration::from_millis(ms)).collect(),
    })
}

/// The HTTP agent (`http.rs` rules), with the timeouts from the settings and, for https, the CA
/// bundle, so that an internal CA is trusted.
fn agent(settings: &Settings) -> Result<ureq::Agent, FlexoError> {
    let https = [&settings.url, &settings.auth_url].iter().any(|u| u.starts_with("https://"));
    let ca_file = settings.ca_file.as_deref().filter(|_| https);
    http_rules::agent(settings.probe_timeout, settings.timeout, ca_file)
        .map_err(|b| FlexoError::BadCertificates { path: b.path, reason: b.reason })
}

/// `GET $FLEXO_AUTH_URL/login` with Basic credentials → `{"token": …}` (§4).
fn login(agent: &ureq::Agent, settings: &Settings, limit: Limit) -> Result<Secret, FlexoError> {
    let url = format!("{}/login", settings.auth_url);
    let credentials = http_rules::basic(&settings.user, &settings.password);
    let answer = exchange(agent, "GET", &url, &credentials, None, &[], limit)?;
    match answer.status {
        200 => {}
        401 => return Err(FlexoError::LoginRefused { url: without_credentials(&url), user: settings.user.clone() }),
        _ => return Err(status_error("GET", &url, &answer, None)),
    }
    // The body holds the token: never quote it in an error.
    let bad = |reason: &str| FlexoError::BadAnswer {
        method: "GET",
        url: without_credentials(&url),
        reason: reason.to_owned(),
    };
    let json: serde_json::Value = serde_json::from_str(&answer.body).map_err(|_| bad("the answer is not JSON"))?;
    match json.get("token").and_then(serde_json::Value::as_str) {
        Some(token) if !token.trim().is_empty() => Ok(Secret::new(token.trim())),
        _ => Err(bad("the answer has no \"token\"")),
    }
}

impl Client {
    /// Makes sure `branch` exists: HEAD it, and on 404 create it from master (§1). A 409 on the
    /// creation means someone else just made it, which is as good.
    pub fn ensure_branch(&self, branch: &str) -> Result<(), FlexoError> {
        let url = self.branch_url(branch, "")?;
        let head = self.request("HEAD", &url, None, &[])?;
        match head.status {
            200 | 204 => return Ok(()),
            404 => {}
            _ => return Err(self.status_error("HEAD", &url, &head)),
        }
        let body = format!("<> <{MMS_REF}> <./master> .\n");
        let put = self.request("PUT", &url, Some(("text/turtle", &body)), &[])?;
        match put.status {
            200 | 201 | 409 => Ok(()),
            _ => Err(self.status_error("PUT", &url, &put)),
        }
    }

    /// Adds triples to a branch in one `INSERT DATA` (the graph of each quad is ignored: a branch
    /// is one graph). A 409 (branch mutex held) is retried with backoff; after a timeout, a dropped
    /// connection or a 5xx, the branch is asked whether the triples arrived instead of writing again.
    pub fn insert(&self, branch: &str, triples: &[Quad]) -> Result<Write, FlexoError> {
        let data = triples_text(triples)?;
        if data.is_empty() {
            return Ok(Write::Unchanged);
        }
        let url = self.branch_url(branch, "/update")?;
        let update = format!("INSERT DATA {{\n{data}}}\n");
        let mut attempts = 0;
        let mut delays = self.conflict_delays.iter();
        loop {
            attempts += 1;
            let answer = match self.request("POST", &url, Some(("application/sparql-update", &update)), &[]) {
                Ok(answer) => answer,
                Err(Failure { error, maybe_delivered: true }) => return self.verify(branch, &data, error),
                Err(Failure { error, .. }) => return Err(error),
            };
            match answer.status {
                // §3: 201 with `ETag` = the commit id (and a `Location` ending in it).
                201 => {
                    let commit = answer
                        .etag
                        .or_else(|| answer.location.as_deref().and_then(|l| l.rsplit('/').next()).map(str::to_owned));
                    return Ok(Write::Committed { commit });
                }
                // §3: no net change → 200, no commit.
                200 | 204 => return Ok(Write::Unchanged),
                409 => match delays.next() {
                    Some(delay) if !crate::process::interrupted() => std::thread::sleep(*delay),
                    _ => {
                        return Err(FlexoError::Conflict {
                            url: without_credentials(&url),
                            attempts,
                            message: self.message(&answer.body),
                        });
                    }
                },
                500.. => return self.verify(branch, &data, self.status_error("POST", &url, &answer)),
                _ => return Err(self.status_error("POST", &url, &answer)),
            }
        }
    }

    /// After a write whose outcome is unknown: asks (a few times, while the server may still be
    /// committing) whether every triple is on the branch. Present → the write landed.
    fn verify(&self, branch: &str, data: &str, cause: FlexoError) -> Result<Write, FlexoError> {
        let ask = format!("ASK {{\n{data}}}\n");
        for delay in &self.verify_delays {
            if crate::process::interrupted() {
                break;
            }
            std::thread::sleep(*delay);
            match self.ask(branch, &ask) {
                Ok(true) => return Ok(Write::Committed { commit: None }),
                Ok(false) => {}
                // A missing branch holds no triples: the write cannot have landed.
                Err(FlexoError::Status { status: 404, .. }) => break,
                Err(check) => return Err(FlexoError::WriteUnknown { cause: Box::new(cause), check: Box::new(check) }),
            }
        }
        Err(FlexoError::WriteNotApplied { cause: Box::new(cause), branch: branch.to_owned() })
    }

    /// Runs a SELECT on a branch and returns its solutions, each variable bound to a [`Term`].
    pub fn select(&self, branch: &str, sparql: &str) -> Result<Vec<BTreeMap<String, Term>>, FlexoError> {
        let (url, json) = self.query(branch, sparql)?;
        let bindings = json.pointer("/results/bindings").and_then(serde_json::Value::as_array).ok_or_else(|| {
            FlexoError::BadAnswer {
                method: "POST",
                url: without_credentials(&url),
                reason: "the answer has no results.bindings (is the query a SELECT?)".into(),
            }
        })?;
        bindings
            .iter()
            .map(|row| {
                let row = row.as_object().ok_or("a solution is not a JSON object")?;
                row.iter().map(|(var, value)| Ok((var.clone(), json_term(value)?))).collect()
            })
            .collect::<Result<_, &'static str>>()
            .map_err(|reason| FlexoError::BadAnswer {
                method: "POST",
                url: without_credentials(&url),
                reason: reason.to_owned(),
            })
    }

    /// Runs an ASK on a branch.
    pub fn ask(&self, branch: &str, sparql: &str) -> Result<bool, FlexoError> {
        let (url, json) = self.query(branch, sparql)?;
        json.get("boolean").and_then(serde_json::Value::as_bool).ok_or_else(|| FlexoError::BadAnswer {
            method: "POST",
            url: without_credentials(&url),
            reason: "the answer has no boolean (is the query an ASK?)".into(),
        })
    }

    /// The whole model of a branch as Turtle (`GET …/branches/{b}/graph`, §2); an absent branch is
    /// an empty model, since nothing was ever written there.
    pub fn graph(&self, branch: &str) -> Result<String, FlexoError> {
        let url = self.branch_url(branch, "/graph")?;
        let answer = self.request("GET", &url, None, &[("Accept", "text/turtle")])?;
        match answer.status {
            200 => Ok(answer.body),
            404 => Ok(String::new()),
            _ => Err(self.status_error("GET", &url, &answer)),
        }
    }

    /// `POST …/query` with `application/sparql-query` (§2); the JSON results.
    fn query(&self, branch: &str, sparql: &str) -> Result<(String, serde_json::Value), FlexoError> {
        let url = self.branch_url(branch, "/query")?;
        let answer = self.request("POST", &url, Some(("application/sparql-query", sparql)), &[])?;
        if answer.status != 200 {
            return Err(self.status_error("POST", &url, &answer));
        }
        match serde_json::from_str(&answer.body) {
            Ok(json) => Ok((url, json)),
            Err(e) => Err(FlexoError::BadAnswer {
                method: "POST",
                url: without_credentials(&url),
                reason: format!("the results are not JSON: {e}"),
            }),
        }
    }

    /// Creates the org and the repo when they are missing (never replacing an existing one's
    /// metadata, §7), then checks that the repo's master branch exists. Safe to run again.
    pub fn init(&self) -> Result<InitReport, FlexoError> {
        let org = self.create_if_missing(&self.org_url()?, &self.org)?;
        let repo = self.create_if_missing(&self.repo_url()?, &self.repo)?;
        let master = self.branch_url("master", "")?;
        let head = self.request("HEAD", &master, None, &[])?;
        match head.status {
            204 | 200 => Ok(InitReport { org, repo }),
            404 => Err(FlexoError::Absent {
                what: format!("branch master of repo {}/{}", self.org, self.repo),
                url: without_credentials(&master),
            }),
            _ => Err(self.status_error("HEAD", &master, &head)),
        }
    }

    /// HEAD an org or repo; on 404 PUT it with a title and `If-None-Match: *`, so that a concurrent
    /// creation is refused rather than replaced (§1: 400 for an org, 409 for a repo).
    fn create_if_missing(&self, url: &str, id: &str) -> Result<Presence, FlexoError> {
        let head = self.request("HEAD", url, None, &[])?;
        match head.status {
            200 | 204 => return Ok(Presence::Found),
            404 => {}
            _ => return Err(self.status_error("HEAD", url, &head)),
        }
        let body = format!("<> <{DCTERMS_TITLE}> {}@en .\n", string_literal(id));
        let put = self.request("PUT", url, Some(("text/turtle", &body)), &[("If-None-Match", "*")])?;
        match put.status {
            201 => Ok(Presence::Created),
            400 | 409 | 412 => match self.request("HEAD", url, None, &[])?.status {
                200 | 204 => Ok(Presence::Found),
                _ => Err(self.status_error("PUT", url, &put)),
            },
            _ => Err(self.status_error("PUT", url, &put)),
        }
    }

    /// Checks reachability and the token for `doctor`: HEAD the repo, within `FLEXO_PROBE_TIMEOUT`.
    pub fn probe(&self) -> Result<(), FlexoError> {
        let url = self.repo_url()?;
        let limit = Limit { after: self.probe_timeout, var: "FLEXO_PROBE_TIMEOUT", connect: self.probe_timeout };
        let answer = exchange(&self.agent, "HEAD", &url, &self.bearer(), None, &[], limit)
            .map_err(|f| f.error)
            .and_then(|a| self.check_auth("HEAD", &url, a))?;
        match answer.status {
            200 | 204 => Ok(()),
            404 => Err(FlexoError::Absent {
                what: format!("repo {}/{}", self.org, self.repo),
                url: without_credentials(&url),
            }),
            _ => Err(self.status_error("HEAD", &url, &answer)),
        }
    }

    fn org_url(&self) -> Result<String, FlexoError> {
        Ok(format!("{}/orgs/{}", self.url, path_id("org", &self.org)?))
    }

    fn repo_url(&self) -> Result<String, FlexoError> {
        Ok(format!("{}/repos/{}", self.org_url()?, path_id("repo", &self.repo)?))
    }

    /// `…/branches/<branch><tail>`.
    fn branch_url(&self, branch: &str, tail: &str) -> Result<String, FlexoError> {
        Ok(format!("{}/branches/{}{tail}", self.repo_url()?, path_id("branch", branch)?))
    }

    fn bearer(&self) -> Secret {
        Secret::new(format!("Bearer {}", self.token.expose()))
    }

    /// One request with the token and `FLEXO_TIMEOUT`; a 401 becomes [`FlexoError::Unauthorized`].
    fn request(
        &self,
        method: &'static str,
        url: &str,
        body: Option<(&'static str, &str)>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, Failure> {
        let limit = Limit { after: self.timeout, var: "FLEXO_TIMEOUT", connect: self.probe_timeout };
        let answer = exchange(&self.agent, method, url, &self.bearer(), body, headers, limit)?;
        self.check_auth(method, url, answer).map_err(|error| Failure { error, maybe_delivered: false })
    }

    fn check_auth(&self, method: &'static str, url: &str, answer: Answer) -> Result<Answer, FlexoError> {
        if answer.status != 401 {
            return Ok(answer);
        }
        let hint = match self.token_source {
            TokenSource::Environment => "set FLEXO_TOKEN to a valid token, or unset it to log in as FLEXO_USER",
            TokenSource::Login => {
                "it came from logging in at FLEXO_AUTH_URL as FLEXO_USER: check that FLEXO_AUTH_URL serves this \
                 Flexo, or set FLEXO_TOKEN"
            }
        };
        Err(FlexoError::Unauthorized { method, url: without_credentials(url), hint })
    }

    fn status_error(&self, method: &'static str, url: &str, answer: &Answer) -> FlexoError {
        status_error(method, url, answer, Some(&self.token))
    }

    /// The first line of a server's text, with the token blanked out should the server echo it.
    fn message(&self, body: &str) -> String {
        redact(&first_line(body), Some(&self.token))
    }
}

/// Reads the witness subgraphs for `doctor` and `reproduce --from-flexo`: every triple about the
/// image nodes that `selector` names (an `rtm:contentHash` containing the digest text,
/// case-insensitively, or the IRI), plus the triples of their `rtm:layer` nodes, in the default
/// graph, so that `witness::select` picks from it exactly as from a TriG file.
pub fn fetch_images(client: &Client, branch: &str, selector: &Selector) -> Result<Dataset, FlexoError> {
    let images = match selector {
        Selector::Digest(text) => format!(
            "?img {} {} ; {} ?hash .\n  FILTER(CONTAINS(LCASE(STR(?hash)), {}))",
            iri_text(RDF_TYPE)?,
            iri_text(RTM_DOCKER_IMAGE)?,
            iri_text(RTM_CONTENT_HASH)?,
            string_literal(&text.to_lowercase())
        ),
        Selector::Iri(iri) => format!("VALUES ?img {{ {} }}", iri_text(iri)?),
    };
    let sparql = format!(
        "SELECT DISTINCT ?s ?p ?o WHERE {{\n  {images}\n  {{ ?img ?p ?o . BIND(?img AS ?s) }}\n  UNION\n  \
         {{ ?img {} ?s . ?s ?p ?o }}\n}}\n",
        iri_text(RTM_LAYER)?
    );
    let mut ds = Dataset::new();
    for row in client.select(branch, &sparql)? {
        let (Some(s), Some(Term::Iri(p)), Some(o)) = (row.get("s"), row.get("p"), row.get("o")) else {
            continue;
        };
        ds.insert(Quad { g: None, s: s.clone(), p: p.clone(), o: o.clone() });
    }
    Ok(ds)
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// A response: status, the headers we use, and the body as text.
struct Answer {
    status: u16,
    etag: Option<String>,
    location: Option<String>,
    body: String,
}

/// A request that got no usable answer. `maybe_delivered` is false only when the request surely
/// never reached the server (refused connection, unknown host, TLS failure, connect timeout).
struct Failure {
    error: FlexoError,
    maybe_delivered: bool,
}

impl From<Failure> for FlexoError {
    fn from(f: Failure) -> FlexoError {
        f.error
    }
}

/// The time budget of one request, and the variable that sets it (for the message).
#[derive(Clone, Copy)]
struct Limit {
    after: Duration,
    var: &'static str,
    connect: Duration,
}

/// Sends one request and reads the whole answer. A 3xx is an error naming `Location`: following it
/// would drop `Authorization` (ureq's default) or, worse, send it to another host.
fn exchange(
    agent: &ureq::Agent,
    method: &'static str,
    url: &str,
    authorization: &Secret,
    body: Option<(&'static str, &str)>,
    headers: &[(&str, &str)],
    limit: Limit,
) -> Result<Answer, Failure> {
    crate::log::command(&format!("{method} {}", without_credentials(url)));
    let mut builder = http::Request::builder().method(method).uri(url).header("Authorization", authorization.expose());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let invalid = |e: http::Error| Failure {
        error: FlexoError::Unreachable {
            method,
            url: without_credentials(url),
            reason: format!("invalid request: {e}"),
        },
        maybe_delivered: false,
    };
    let sent = match body {
        Some((content_type, text)) => {
            let request = builder.header("Content-Type", content_type).body(text.to_owned()).map_err(invalid)?;
            agent.run(agent.configure_request(request).timeout_global(Some(limit.after)).build())
        }
        None => {
            let request = builder.body(()).map_err(invalid)?;
            agent.run(agent.configure_request(request).timeout_global(Some(limit.after)).build())
        }
    };
    let mut response = sent.map_err(|e| transport_failure(method, url, limit, e))?;
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (status, etag, location) = (response.status().as_u16(), header("etag"), header("location"));
    let bytes = response
        .body_mut()
        .with_config()
        .limit(BODY_LIMIT)
        .read_to_vec()
        .map_err(|e| transport_failure(method, url, limit, e))
        // The status line arrived, so the server has the request.
        .map_err(|f| Failure { maybe_delivered: true, ..f })?;
    if (300..400).contains(&status) && status != 304 {
        return Err(Failure {
            error: FlexoError::Redirect {
                method,
                url: without_credentials(url),
                status,
                location: location.as_deref().map_or_else(|| "(no Location)".to_owned(), without_credentials),
            },
            maybe_delivered: false,
        });
    }
    Ok(Answer { status, etag, location, body: String::from_utf8_lossy(&bytes).into_owned() })
}

/// A transport error as a [`FlexoError`], and whether the request may have reached the server.
fn transport_failure(method: &'static str, url: &str, limit: Limit, e: ureq::Error) -> Failure {
    let url = without_credentials(url);
    let failed = |reason: String, maybe_delivered| Failure {
        error: FlexoError::Unreachable { method, url: url.clone(), reason },
        maybe_delivered,
    };
    match e {
        ureq::Error::Timeout(phase) => {
            let connecting = matches!(phase, ureq::Timeout::Resolve | ureq::Timeout::Connect);
            let (after, var) =
                if connecting { (limit.connect, "FLEXO_PROBE_TIMEOUT") } else { (limit.after, limit.var) };
            Failure {
                error: FlexoError::Timeout { method, url: url.clone(), after, var },
                maybe_delivered: !connecting,
            }
        }
        ureq::Error::HostNotFound => failed("host not found".into(), false),
        ureq::Error::ConnectionFailed => failed("connection failed".into(), false),
        ureq::Error::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused => failed("connection refused".into(), false),
            ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::UnexpectedEof => failed("the connection closed without an answer".into(), true),
            _ => failed(io.to_string(), true),
        },
        e @ (ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_)) => failed(
            format!("TLS failed ({e}); to trust an internal CA, set SSL_CERT_FILE to a PEM bundle that holds it"),
            false,
        ),
        ureq::Error::Protocol(p) => failed(format!("the answer is not HTTP: {p}"), true),
        ureq::Error::BodyExceedsLimit(_) => failed(format!("the answer is larger than {} MiB", BODY_LIMIT >> 20), true),
        other => failed(other.to_string(), true),
    }
}

fn status_error(method: &'static str, url: &str, answer: &Answer, token: Option<&Secret>) -> FlexoError {
    FlexoError::Status {
        method,
        url: without_credentials(url),
        status: answer.status,
        message: redact(&first_line(&answer.body), token),
    }
}

/// The first non-blank line of a (stack-trace) body, shortened.
fn first_line(body: &str) -> String {
    let line = body.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    match line.char_indices().nth(MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

fn redact(text: &str, token: Option<&Secret>) -> String {
    match token {
        Some(t) if !t.expose().is_empty() => text.replace(t.expose(), "<redacted>"),
        _ => text.to_owned(),
    }
}

/// A URL as shown in messages: any `user:password@` removed.
fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Ids, terms and results

const ID_RULE: &str = "a Flexo id: 3 to 256 letters, digits, '.', '_' or '-', not starting with \"__\"";

/// §0 `LEGAL_ID_REGEX`: `[._\pL0-9-]{3,256}`, not starting with `__`.
fn valid_id(id: &str) -> bool {
    (3..=256).contains(&id.chars().count())
        && !id.starts_with("__")
        && id.chars().all(|c| c.is_alphabetic() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

/// An id as a URL path segment (letters beyond ASCII percent-encoded).
fn path_id(what: &'static str, id: &str) -> Result<String, FlexoError> {
    if !valid_id(id) {
        return Err(FlexoError::BadId { what, id: id.to_owned() });
    }
    let mut out = String::with_capacity(id.len());
    for c in id.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    Ok(out)
}

/// The triples of `quads` (graphs dropped, duplicates merged) as SPARQL/Turtle lines `s p o .`.
fn triples_text(quads: &[Quad]) -> Result<String, FlexoError> {
    let triples: BTreeSet<(&Term, &str, &Term)> = quads.iter().map(|q| (&q.s, q.p.as_str(), &q.o)).collect();
    let mut out = String::new();
    for (s, p, o) in triples {
        if matches!(s, Term::Literal { .. }) {
            return Err(FlexoError::BadTerm {
                term: format!("literal {s:?}"),
                reason: "a subject cannot be a literal",
            });
        }
        out.push_str(&format!("{} {} {} .\n", term_text(s)?, iri_text(p)?, term_text(o)?));
    }
    Ok(out)
}

/// A term in SPARQL/Turtle syntax.
fn term_text(term: &Term) -> Result<String, FlexoError> {
    match term {
        Term::Iri(iri) => iri_text(iri),
        Term::Blank(label) => {
            let chars: Vec<char> = label.chars().collect();
            let inner = |c: &char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.');
            let ok = chars.first().is_some_and(|c| c.is_alphanumeric() || *c == '_')
                && chars.iter().all(inner)
                && chars.last() != Some(&'.');
            if ok {
                Ok(format!("_:{label}"))
            } else {
                Err(FlexoError::BadTerm { term: format!("blank node {label:?}"), reason: "not a valid label" })
            }
        }
        Term::Literal { lexical, lang: Some(lang), .. } => {
            let mut subtags = lang.split('-');
            let primary_ok =
                subtags.next().is_some_and(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphabetic()));
            if primary_ok && subtags.all(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric())) {
                Ok(format!("{}@{lang}", string_literal(lexical)))
            } else {
                Err(FlexoError::BadTerm { term: format!("language tag {lang:?}"), reason: "not a valid BCP 47 tag" })
            }
        }
        Term::Literal { lexical, datatype, lang: None } if datatype == XSD_STRING => Ok(string_literal(lexical)),
        Term::Literal { datatype, lang: None, .. } if datatype == RDF_LANG_STRING => Err(FlexoError::BadTerm {
            term: format!("literal of type <{datatype}>"),
            reason: "rdf:langString needs a language tag",
        }),
        Term::Literal { lexical, datatype, lang: None } => {
            Ok(format!("{}^^{}", string_literal(lexical), iri_text(datatype)?))
        }
    }
}

/// `<iri>`; an IRI that cannot be written between `<` and `>` (or is relative, which the server
/// would resolve against its own base) is an error naming it.
fn iri_text(iri: &str) -> Result<String, FlexoError> {
    let bad = |reason| FlexoError::BadTerm { term: format!("IRI {iri:?}"), reason };
    if let Some(c) = iri.chars().find(|&c| c <= ' ' || "<>\"{}|^`\\".contains(c)) {
        return Err(bad(if c == ' ' {
            "IRIs cannot contain spaces"
        } else if c < ' ' {
            "IRIs cannot contain control characters"
        } else {
            "IRIs cannot contain any of < > \" { } | ^ ` \\"
        }));
    }
    let scheme = iri.split_once(':').map(|(s, _)| s).unwrap_or("");
    let scheme_ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err(bad("not an absolute IRI (no scheme)"));
    }
    Ok(format!("<{iri}>"))
}

/// A quoted string with `\\`, `\"`, `\n`, `\r`, `\t` escaped and other control characters as
/// `\uXXXX`; everything else (non-ASCII included) as is.
fn string_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One `application/sparql-results+json` binding as a [`Term`].
fn json_term(value: &serde_json::Value) -> Result<Term, &'static str> {
    let field = |name: &str| value.get(name).and_then(serde_json::Value::as_str);
    let text = field("value").ok_or("a binding has no value")?.to_owned();
    match field("type") {
        Some("uri") => Ok(Term::Iri(text)),
        Some("bnode") => Ok(Term::Blank(text)),
        Some("literal" | "typed-literal") => Ok(match (field("xml:lang"), field("datatype")) {
            (Some(lang), _) => {
                Term::Literal { lexical: text, datatype: RDF_LANG_STRING.to_owned(), lang: Some(lang.to_owned()) }
            }
            (None, Some(datatype)) => Term::typed(text, datatype),
            (None, None) => Term::string(text),
        }),
        _ => Err("a binding has an unknown type"),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

#[derive(Debug)]
pub enum FlexoError {
    /// `FLEXO_URL` is not set.
    MissingUrl,
    BadSetting {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
    /// `FLEXO_URL` or `FLEXO_AUTH_URL` holds `user:password@`.
    CredentialsInUrl {
        var: &'static str,
    },
    BadCertificates {
        path: String,
        reason: String,
    },
    BadId {
        what: &'static str,
        id: String,
    },
    BadTerm {
        term: String,
        reason: &'static str,
    },
    LoginRefused {
        url: String,
        user: String,
    },
    Unauthorized {
        method: &'static str,
        url: String,
        hint: &'static str,
    },
    Status {
        method: &'static str,
        url: String,
        status: u16,
        message: String,
    },
    /// The branch mutex stayed held through every retry (§7).
    Conflict {
        url: String,
        attempts: usize,
        message: String,
    },
    Redirect {
        method: &'static str,
        url: String,
        status: u16,
        location: String,
    },
    Timeout {
        method: &'static str,
        url: String,
        after: Duration,
        var: &'static str,
    },
    Unreachable {
        method: &'static str,
        url: String,
        reason: String,
    },
    BadAnswer {
        method: &'static str,
        url: String,
        reason: String,
    },
    /// An org, repo or branch that should exist does not.
    Absent {
        what: String,
        url: String,
    },
    /// A write failed and its triples are not on the branch.
    WriteNotApplied {
        cause: Box<FlexoError>,
        branch: String,
    },
    /// A write failed and the check of whether it landed failed too.
    WriteUnknown {
        cause: Box<FlexoError>,
        check: Box<FlexoError>,
    },
}

impl fmt::Display for FlexoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlexoError::MissingUrl => {
                write!(f, "FLEXO_URL is not set: set it to the Flexo MMS Layer 1 base URL, e.g. http://localhost:8080")
            }
            FlexoError::BadSetting { var, value, expected } => write!(f, "{var}={value:?} is not {expected}"),
            FlexoError::CredentialsInUrl { var } => write!(
                f,
                "{var} holds a user:password@, which would show up in messages; put the token in FLEXO_TOKEN, or \
                 the login in FLEXO_USER and FLEXO_PASS"
            ),
            FlexoError::BadCertificates { path, reason } => {
                write!(f, "cannot load the CA bundle {path} (SSL_CERT_FILE): {reason}")
            }
            FlexoError::BadId { what, id } => write!(f, "{what} {id:?} is not {ID_RULE}"),
            FlexoError::BadTerm { term, reason } => write!(f, "cannot write {term} to Flexo: {reason}"),
            FlexoError::LoginRefused { url, user } => write!(
                f,
                "GET {url} answered 401 unauthorized: the auth service refused user {user:?}; set FLEXO_USER and \
                 FLEXO_PASS, or FLEXO_TOKEN"
            ),
            FlexoError::Unauthorized { method, url, hint } => write!(
                f,
                "{method} {url} answered 401 unauthorized: the Flexo token is missing, expired or wrong; {hint}"
            ),
            FlexoError::Status { method, url, status, message } => {
                write!(f, "{method} {url} answered {status}{}", reason_phrase(*status))?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            FlexoError::Conflict { url, attempts, message } => write!(
                f,
                "POST {url} answered 409 conflict {attempts} times: {message}; a leftover transaction may hold the \
                 branch (Layer 1's branch lock never expires: an operator must remove it from m-graph:Transactions)"
            ),
            FlexoError::Redirect { method, url, status, location } => write!(
                f,
                "{method} {url} answered {status}{} to {location}: set FLEXO_URL or FLEXO_AUTH_URL to the final \
                 address (redirects are not followed, they would lose the token)",
                reason_phrase(*status)
            ),
            FlexoError::Timeout { method, url, after, var } => {
                write!(
                    f,
                    "{method} {url} timed out after {} s (raise {var} if the server is just slow)",
                    seconds(*after)
                )
            }
            FlexoError::Unreachable { method, url, reason } => write!(f, "{method} {url} failed: {reason}"),
            FlexoError::BadAnswer { method, url, reason } => write!(f, "{method} {url}: unexpected answer: {reason}"),
            FlexoError::Absent { what, url } => write!(f, "{what} does not exist at {url} (init creates it)"),
            FlexoError::WriteNotApplied { cause, branch } => write!(
                f,
                "{cause}; the triples were not on branch {branch} when checked afterwards, so the write most likely \
                 failed; repeating it is safe"
            ),
            FlexoError::WriteUnknown { cause, check } => {
                write!(f, "{cause}; whether the write landed is unknown, because checking failed too: {check}")
            }
        }
    }
}

impl std::error::Error for FlexoError {}

/// ` not found`, ` internal server error`…: the status's reason phrase in lower case.
fn reason_phrase(status: u16) -> String {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map_or_else(String::new, |r| format!(" {}", r.to_lowercase()))
}

/// `180`, `0.5`: seconds without trailing zeros.
fn seconds(d: Duration) -> String {
    let text = format!("{:.3}", d.as_secs_f64());
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
#[path = "../tests/it/support/flexo.rs"]
mod double;

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::thread;
    use std::time::Instant;

    use super::double::{Fault, FlexoDouble, Logged};
    use super::*;
    use crate::vocab::{EVIDENCE_GRAPH, XSD_INTEGER};
    use crate::witness::{self, ImageWitness};

    const ORG: &str = "adcs-demo";
    const REPO: &str = "lifecycle";
    const BRANCH: &str = "evidence";

    fn settings(d: &FlexoDouble) -> Settings {
        Settings {
            url: d.url(),
            auth_url: d.auth_url(),
            token: None,
            user: "user01".into(),
            password: Secret::new("password1"),
            org: ORG.into(),
            repo: REPO.into(),
            timeout: Duration::from_secs(20),
            probe_timeout: Duration::from_secs(5),
            branch_prefix: String::new(),
            ca_file: None,
        }
    }

    /// Connects with short backoffs, so that retries take milliseconds instead of seconds.
    fn client(settings: &Settings) -> Client {
        let mut c = connect(settings).expect("connect to the double");
        c.conflict_delays = vec![Duration::from_millis(5); 5];
        c.verify_delays = [100, 200, 400, 800, 1600].map(Duration::from_millis).to_vec();
        c
    }

    /// A client whose org, repo and evidence branch exist.
    fn ready(settings: &Settings) -> Client {
        let c = client(settings);
        c.init().expect("init");
        c.ensure_branch(BRANCH).expect("ensure_branch");
        c
    }

    fn quad(s: &str, p: &str, o: Term) -> Quad {
        Quad::new(Some(EVIDENCE_GRAPH), &Term::iri(s), p, o)
    }

    fn lang(text: &str, tag: &str) -> Term {
        Term::Literal { lexical: text.into(), datatype: RDF_LANG_STRING.into(), lang: Some(tag.into()) }
    }

    fn updates(d: &FlexoDouble) -> usize {
        d.requests().iter().filter(|r| r.method == "POST" && r.path.ends_with("/update")).count()
    }

    fn wait_for(what: &str, done: impl Fn() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn login_then_insert_then_select_round_trips_every_character() {
        let d = FlexoDouble::start();
        let c = ready(&settings(&d));
        let special = "quote \" backslash \\ not-an-escape \\u0041 \\n newline\nreturn\r tab\t bell\u{7} nul\u{0} \
                       del\u{7f} é ü 中文 🚀 ''' \"\"\" <tag> {x} . # ; GRAPH";
        let quads = vec![
            quad("urn:x:s", "urn:x:special", Term::string(special)),
            quad("urn:x:s", "urn:x:lang", lang("bonjour « toi »", "fr")),
            quad("urn:x:s", "urn:x:typed", Term::typed("42", XSD_INTEGER)),
            quad("urn:x:s", "urn:x:link", Term::iri("http://example.org/a?b=c&d=%20#e")),
            quad("urn:x:s", "urn:x:unicode", Term::iri("http://example.org/é/中")),
            // The same triple in another graph: a branch is one graph, so it is written once.
            Quad::new(None, &Term::iri("urn:x:s"), "urn:x:typed", Term::typed("42", XSD_INTEGER)),
        ];
        let written = c.insert(BRANCH, &quads).unwrap();
        assert!(matches!(written, Write::Committed { commit: Some(ref id) } if !id.is_empty()), "{written:?}");
        assert_eq!(d.quads(ORG, REPO, BRANCH), 5);

        let rows = c.select(BRANCH, "SELECT ?p ?o WHERE { <urn:x:s> ?p ?o }").unwrap();
        let got: BTreeSet<(Term, Term)> = rows.iter().map(|r| (r["p"].clone(), r["o"].clone())).collect();
        let want: BTreeSet<(Term, Term)> = quads.iter().map(|q| (Term::iri(&q.p), q.o.clone())).collect();
        assert_eq!(got, want);

        let log = d.requests();
        let logins: Vec<&Logged> = log.iter().filter(|r| r.path == "/login").collect();
        assert_eq!(logins.len(), 1, "one login");
        assert!(logins[0].header("authorization").is_some_and(|a| a.starts_with("Basic ")));
        assert!(log.iter().filter(|r| r.path != "/login").all(|r| {
            r.header("authorization").is_some_and(|a| a.starts_with("Bearer ") && a.len() > "Bearer ".len())
        }));
        let update: Vec<&Logged> = log.iter().filter(|r| r.path.ends_with("/update")).collect();
        assert_eq!(update.len(), 1, "one request for the whole batch");
        assert_eq!(update[0].header("content-type"), Some("application/sparql-update"));
        assert!(!update[0].body.contains("GRAPH <"), "no GRAPH blocks: {}", update[0].body);
    }

    #[test]
    fn blank_nodes_are_written_as_labels() {
        let d = FlexoDouble::start();
        let c = ready(&settings(&d));
        let b = Term::Blank("b1".into());
        let quads = [
            Quad { g: None, s: Term::iri("urn:x:s"), p: "urn:x:p".into(), o: b.clone() },
            Quad { g: None, s: b, p: "urn:x:q".into(), o: Term::string("inner") },
        ];
        c.insert(BRANCH, &quads).unwrap();
        assert!(
            c.ask(BRANCH, "ASK { <urn:x:s> <urn:x:p> ?b . ?b <urn:x:q> \"inner\" . FILTER(isBlank(?b)) }").unwrap()
        );
        let rows = c.select(BRANCH, "SELECT ?b WHERE { <urn:x:s> <urn:x:p> ?b }").unwrap();
        assert!(matches!(rows[..], [ref row] if matches!(row["b"], Term::Blank(_))), "{rows:?}");
    }

    #[test]
    fn a_token_from_the_environment_is_used_without_login() {
        let d = FlexoDouble::start();
        let token = d.issue_token("user01");
        let c = client(&Settings { token: Some(Secret::new(&token)), ..settings(&d) });
        c.init().unwrap();
        let log = d.requests();
        assert!(!log.is_empty());
        assert!(log.iter().all(|r| r.path != "/login"), "no login: {log:?}");
        let bearer = format!("Bearer {token}");
        assert!(log.iter().all(|r| r.header("authorization") == Some(bearer.as_str())));
    }

    #[test]
    fn an_expired_token_is_one_line_that_never_shows_the_token() {
        let d = FlexoDouble::start();
        let token = d.issue_token("user01");
        let s = Settings { token: Some(Secret::new(&token)), ..settings(&d) };
        let c = ready(&s);
        c.insert(BRANCH, &[quad("urn:x:s", "urn:x:p", Term::string("before"))]).unwrap();
        d.expire_tokens();

        let err = c.insert(BRANCH, &[quad("urn:x:s", "urn:x:p", Term::string("after"))]).unwrap_err();
        assert!(matches!(err, FlexoError::Unauthorized { .. }), "{err:?}");
        let text = err.to_string();
        assert_eq!(
            text,
            format!(
                "POST {}/orgs/adcs-demo/repos/lifecycle/branches/evidence/update answered 401 unauthorized: the \
                 Flexo token is missing, expired or wrong; set FLEXO_TOKEN to a valid token, or unset it to log in \
                 as FLEXO_USER",
                d.url()
            )
        );
        let errors = [
            err,
            c.select(BRANCH, "SELECT * { ?s ?p ?o }").unwrap_err(),
            c.ask(BRANCH, "ASK { ?s ?p ?o }").unwrap_err(),
            c.ensure_branch("audit").unwrap_err(),
            c.init().unwrap_err(),
            c.probe().unwrap_err(),
        ];
        for e in &errors {
            assert!(matches!(e, FlexoError::Unauthorized { .. }), "{e:?}");
            assert_eq!(e.to_string().lines().count(), 1);
            assert!(!e.to_string().contains(&token) && !format!("{e:?}").contains(&token));
        }
        assert!(!format!("{c:?}").contains(&token) && !format!("{s:?}").contains(&token));
        let log = d.requests();
        assert!(log.len() > 6);
        for r in log {
            assert!(!r.path.contains(&token) && !r.body.contains(&token), "{r:?}");
            for (name, value) in &r.headers {
                assert!(name.eq_ignore_ascii_case("authorization") || !value.contains(&token), "{name}: {value}");
            }
        }

        // A token from the login names the login's variables instead.
        let login = client(&settings(&d));
        d.expire_tokens();
        let text = login.probe().unwrap_err().to_string();
        assert!(text.contains("missing, expired or wrong; it came from logging in at FLEXO_AUTH_URL"), "{text}");
    }

    #[test]
    fn a_wrong_password_is_refused_at_login() {
        let d = FlexoDouble::start();
        let err = connect(&Settings { password: Secret::new("hunter2"), ..settings(&d) }).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "GET {}/login answered 401 unauthorized: the auth service refused user \"user01\"; set FLEXO_USER \
                 and FLEXO_PASS, or FLEXO_TOKEN",
                d.url()
            )
        );
        assert!(!format!("{err:?}").contains("hunter2"));
    }

    #[test]
    fn ensure_branch_creates_from_master_once() {
        let d = FlexoDouble::start();
        let c = client(&settings(&d));
        c.init().unwrap();
        c.insert("master", &[quad("urn:x:s", "urn:x:p", Term::string("on master"))]).unwrap();
        d.clear_requests();

        c.ensure_branch(BRANCH).unwrap();
        c.ensure_branch(BRANCH).unwrap();
        let log = d.requests();
        let puts: Vec<&Logged> = log.iter().filter(|r| r.method == "PUT").collect();
        assert_eq!(puts.len(), 1, "{log:?}");
        assert_eq!(puts[0].path, "/orgs/adcs-demo/repos/lifecycle/branches/evidence");
        assert_eq!(puts[0].header("content-type"), Some("text/turtle"));
        assert_eq!(puts[0].body, "<> <https://mms.openmbee.org/rdf/ontology/ref> <./master> .\n");
        assert_eq!(log.iter().filter(|r| r.method == "HEAD").count(), 2);
        assert_eq!(d.quads(ORG, REPO, BRANCH), 1, "the branch starts as a copy of master");
    }

    #[test]
    fn inserting_twice_commits_then_changes_nothing() {
        let d = FlexoDouble::start();
        let c = ready(&settings(&d));
        let quads = [quad("urn:x:s", "urn:x:p", Term::string("once"))];
        assert!(matches!(c.insert(BRANCH, &quads).unwrap(), Write::Committed { commit: Some(_) }));
        assert_eq!(c.insert(BRANCH, &quads).unwrap(), Write::Unchanged);
        assert_eq!(c.insert(BRANCH, &[]).unwrap(), Write::Unchanged);
        assert_eq!(d.commit_count(ORG, REPO, BRANCH), 1);
        assert_eq!(updates(&d), 2, "an empty insert sends nothing");
    }

    #[test]
    fn a_busy_branch_is_retried() {
        let d = FlexoDouble::start();
        let c = ready(&settings(&d));
        d.set_conflicts(2);
        let written = c.insert(BRANCH, &[quad("urn:x:s", "urn:x:p", Term::string("x"))]).unwrap();
        assert!(matches!(written, Write::Committed { commit: Some(_) }), "{written:?}");
        assert_eq!(updates(&d), 3);
        assert_eq!(d.commit_count(ORG, REPO, BRANCH), 1);
    }

    #[test]
    fn a_branch_that_stays_locked_fails_after_bounded_retries() {
        let d = FlexoDouble::start();
        let c = ready(&settings(&d));
        d.set_fault(Fault::Conflict);
        let err = c.insert(BRANCH, &[quad("urn:x:s", "urn:x:p", Term::string("x"))]).unwrap_err();
        assert!(matches!(err, FlexoError::Conflict { attempts: 6, .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "POST {}/orgs/adcs-demo/repos/lifecycle/branches/evidence/update answered 409 conflict 6 times: \
                 org.openmbee.flexo.mms.HttpException: Another transaction is in progress; a leftover transaction \
                 may hold the branch (Layer 1's branch lock never expires: an operator must remove it from \
                 m-graph:Transactions)",
                d.url()
            )
        );
        assert_eq!(updates(&d), 6, "one try and five retries");
        assert_eq!(d.commit_count(ORG, REPO, BRANCH), 0);
    }

    #[test]
    fn a_server_error_is_reported_with_the_servers_words() {
        let d = FlexoDouble::start();
        let c = ready(&settings(&d));
        d.set_fault(Fault::ServerError);
        let url = format!("{}/orgs/adcs-demo/repos/lifecycle/branches/evidence", d.url());

        let err = c.insert(BRANCH, &[quad("urn:x:s", "urn:x:p", Term::string("x"))]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "POST {url}/update answered 500 internal server error: java.lang.IllegalStateException: injected \
                 server error; whether the write landed is unknown, because checking failed too: POST {url}/query \
                 answered 500 internal server error: java.lang.IllegalStateException: injected server error"
            )
        );
        assert_eq!(updates(&d), 1, "a write that may have landed is not sent again");

        let err = c.select(BRANCH, "SELECT * { ?s ?p ?o }").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "POST {url}/query answered 500 internal server error: java.lang.IllegalStateException: injected \
                 server error"
            )
        );
        d.set_fault(Fault::None);
        assert_eq!(d.commit_count(ORG, REPO, BRANCH), 0);
    }

    #[test]
    fn a_write_whose_answer_was_lost_is_checked_not_repeated() {
        let d = FlexoDouble::start();
        let c = ready(&Settings { timeout: Duration::from_millis(400), ..settings(&d) });
        d.clear_requests();
        // The server takes longer than the client waits, but still commits the write.
        d.set_fault(Fault::Slow(Duration::from_millis(1200)));
        let quads = [quad("urn:x:s", "urn:x:p", Term::string("slow but sure"))];
        let written = thread::scope(|s| {
            let insert = s.spawn(|| c.insert(BRANCH, &quads));
            wait_for("the update to arrive", || updates(&d) == 1);
            // Let the double read `Slow` for this request before normal service resumes for the checks.
            thread::sleep(Duration::from_millis(100));
            d.set_fault(Fault::None);
            insert.join().unwrap()
        });
        assert_eq!(written.unwrap(), Write::Committed { commit: None });
        assert_eq!(updates(&d), 1, "the write was not sent again");
        assert!(d.requests().iter().any(|r| r.path.ends_with("/query") && r.body.starts_with("ASK")));
        assert_eq!(d.commit_count(ORG, REPO, BRANCH), 1);
    }

    #[test]
    fn a_slow_server_times_out() {
        let d = FlexoDouble::start();
        let s =
            Settings { timeout: Duration::from_millis(300), probe_timeout: Duration::from_millis(200), ..settings(&d) };
        let c = ready(&s);
        d.set_fault(Fault::Slow(Duration::from_secs(3)));
        let err = c.select(BRANCH, "SELECT * { ?s ?p ?o }").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "POST {}/orgs/adcs-demo/repos/lifecycle/branches/evidence/query timed out after 0.3 s (raise \
                 FLEXO_TIMEOUT if the server is just slow)",
                d.url()
            )
        );
        let err = c.probe().unwrap_err();
        assert!(matches!(err, FlexoError::Timeout { var: "FLEXO_PROBE_TIMEOUT", .. }), "{err:?}");
        assert!(err.to_string().contains("timed out after 0.2 s (raise FLEXO_PROBE_TIMEOUT"), "{err}");
        d.set_fault(Fault::None);
    }

    #[test]
    fn a_server_that_is_down_is_named() {
        let d = FlexoDouble::start();
        let c = ready(&settings(&d));
        d.set_fault(Fault::Down);
        let branch_url = format!("{}/orgs/adcs-demo/repos/lifecycle/branches/evidence", d.url());
        let err = c.select(BRANCH, "SELECT * { ?s ?p ?o }").unwrap_err();
        assert!(matches!(err, FlexoError::Unreachable { .. }), "{err:?}");
        assert!(err.to_string().starts_with(&format!("POST {branch_url}/query failed: ")), "{err}");
        let err = c.ensure_branch(BRANCH).unwrap_err();
        assert!(err.to_string().starts_with(&format!("HEAD {branch_url} failed: ")), "{err}");
        let err = c.insert(BRANCH, &[quad("urn:x:s", "urn:x:p", Term::string("x"))]).unwrap_err();
        assert!(err.to_string().starts_with(&format!("POST {branch_url}/update failed: ")), "{err}");
        let err = connect(&settings(&d)).unwrap_err();
        assert!(err.to_string().starts_with(&format!("GET {}/login failed: ", d.url())), "{err}");
    }

    #[test]
    fn init_creates_then_finds_and_never_replaces() {
        let d = FlexoDouble::start();
        let c = client(&settings(&d));
        assert_eq!(c.init().unwrap(), InitReport { org: Presence::Created, repo: Presence::Created });
        assert_eq!(c.init().unwrap(), InitReport { org: Presence::Found, repo: Presence::Found });
        let log = d.requests();
        let puts: Vec<&Logged> = log.iter().filter(|r| r.method == "PUT").collect();
        let paths: Vec<&str> = puts.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["/orgs/adcs-demo", "/orgs/adcs-demo/repos/lifecycle"]);
        assert_eq!(puts[0].body, "<> <http://purl.org/dc/terms/title> \"adcs-demo\"@en .\n");
        assert!(puts.iter().all(|r| r.header("if-none-match") == Some("*")));
        assert_eq!(log.iter().filter(|r| r.path.ends_with("/branches/master")).count(), 2, "master checked");
    }

    #[test]
    fn probe_needs_the_repo() {
        let d = FlexoDouble::start();
        let c = client(&settings(&d));
        assert_eq!(
            c.probe().unwrap_err().to_string(),
            format!(
                "repo adcs-demo/lifecycle does not exist at {}/orgs/adcs-demo/repos/lifecycle (init creates it)",
                d.url()
            )
        );
        c.init().unwrap();
        c.probe().unwrap();
    }

    fn witness(c: char) -> ImageWitness {
        ImageWitness {
            flexo_record: Some(format!("urn:adcs:flexo:adcs-demo/lifecycle/{BRANCH}")),
            ..ImageWitness::sample(c)
        }
    }

    #[test]
    fn fetch_images_reads_one_witness_with_its_layers() {
        let d = FlexoDouble::start();
        let c = ready(&settings(&d));
        let (a, b) = (witness('a'), witness('b'));
        let mut quads = a.to_quads();
        quads.extend(b.to_quads());
        quads.push(quad("urn:x:other", RDF_TYPE, Term::iri("urn:x:Thing")));
        c.insert(BRANCH, &quads).unwrap();
        let expect: Vec<Quad> = a.to_quads().into_iter().map(|q| Quad { g: None, ..q }).collect();

        for selector in [
            Selector::Digest("AAAAAAAA".into()),
            Selector::Digest(format!("sha256:{}", "a".repeat(64))),
            Selector::Iri(a.iri.clone()),
        ] {
            let ds = fetch_images(&c, BRANCH, &selector).unwrap();
            let got: Vec<Quad> = ds.iter().cloned().collect();
            let mut want = expect.clone();
            want.sort();
            assert_eq!(got, want, "{selector}");
            assert_eq!(witness::select(&ds, &selector).unwrap(), a);
        }
        assert!(fetch_images(&c, BRANCH, &Selector::Digest("cc".into())).unwrap().is_empty());
        let both = fetch_images(&c, BRANCH, &Selector::Digest("sha256:".into())).unwrap();
        assert_eq!(both.len(), a.to_quads().len() + b.to_quads().len());
    }

    #[test]
    fn terms_are_escaped_and_bad_iris_refused() {
        let check = |term: Term, expect: &str| assert_eq!(term_text(&term).unwrap(), expect);
        check(Term::string("a\"b\\c\nd\re\tf\u{1}g\u{7f}é🚀"), r#""a\"b\\c\nd\re\tf\u0001g\u007Fé🚀""#);
        check(lang("chat", "fr-CA"), r#""chat"@fr-CA"#);
        check(Term::typed("1", XSD_INTEGER), r#""1"^^<http://www.w3.org/2001/XMLSchema#integer>"#);
        check(Term::Blank("b0".into()), "_:b0");
        check(Term::iri("urn:adcs:docker-image:sha256-ab"), "<urn:adcs:docker-image:sha256-ab>");

        for iri in [
            "urn:a b",
            "urn:a<b",
            "urn:a>b",
            "urn:a\"b",
            "urn:{",
            "urn:}",
            "urn:|",
            "urn:^",
            "urn:`",
            "urn:\\",
            "urn:\n",
            "relative/path",
            "",
        ] {
            let err = term_text(&Term::iri(iri)).unwrap_err();
            assert!(err.to_string().starts_with(&format!("cannot write IRI {iri:?} to Flexo: ")), "{err}");
        }
        assert!(term_text(&lang("x", "not a tag")).is_err());
        assert!(term_text(&Term::Blank("a b".into())).is_err());
        assert!(term_text(&Term::typed("x", "no scheme")).is_err());

        let d = FlexoDouble::start();
        let c = ready(&settings(&d));
        d.clear_requests();
        let err = c.insert(BRANCH, &[quad("urn:x:s", "urn:x:p o", Term::string("x"))]).unwrap_err();
        assert_eq!(err.to_string(), "cannot write IRI \"urn:x:p o\" to Flexo: IRIs cannot contain spaces");
        assert!(d.requests().is_empty(), "nothing is sent");
        let err = c.insert("b1", &[quad("urn:x:s", "urn:x:p", Term::string("x"))]).unwrap_err();
        assert!(matches!(err, FlexoError::BadId { what: "branch", .. }), "{err:?}");
    }

    #[test]
    fn settings_come_from_the_environment_with_the_demos_defaults() {
        let from = |vars: &[(&str, &str)]| {
            let vars: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            Settings::from_lookup(|k| vars.get(k).cloned())
        };
        let err = from(&[]).unwrap_err();
        assert!(err.to_string().starts_with("FLEXO_URL is not set"), "{err}");

        let s = from(&[("FLEXO_URL", "http://flexo:8080/")]).unwrap();
        assert_eq!((s.url.as_str(), s.auth_url.as_str()), ("http://flexo:8080", "http://localhost:8082"));
        assert_eq!((s.user.as_str(), s.password.expose()), ("user01", "password1"));
        assert_eq!((s.org.as_str(), s.repo.as_str(), s.branch_prefix.as_str()), ("adcs-demo", "lifecycle", ""));
        assert_eq!((s.timeout, s.probe_timeout), (Duration::from_secs(180), Duration::from_secs(10)));
        assert!(s.token.is_none());
        assert_eq!(s.branch(EVIDENCE_GRAPH), "evidence");
        assert_eq!(s.record_iri("evidence"), "urn:adcs:flexo:adcs-demo/lifecycle/evidence");

        let s = from(&[
            ("FLEXO_URL", "https://flexo.internal"),
            ("FLEXO_TOKEN", "tok"),
            ("FLEXO_TIMEOUT", "0.5"),
            ("FLEXO_BRANCH_PREFIX", "ci-"),
            ("FLEXO_ORG", "my.org"),
        ])
        .unwrap();
        assert_eq!(s.token, Some(Secret::new("tok")));
        assert_eq!(s.timeout, Duration::from_millis(500));
        assert_eq!(s.branch("http://example.org/adcs-demo/graph/audit"), "ci-audit");
        assert_eq!(s.record_iri("ci-audit"), "urn:adcs:flexo:my.org/lifecycle/ci-audit");
        assert!(!format!("{s:?}").contains("tok\"") && !format!("{s:?}").contains("password1"));

        // `from_env` is the same reading over the process environment.
        let env = Settings::from_lookup(|k| std::env::var(k).ok());
        assert_eq!(format!("{:?}", Settings::from_env()), format!("{env:?}"));

        let err = |vars: &[(&str, &str)]| from(vars).unwrap_err().to_string();
        let url = ("FLEXO_URL", "http://flexo");
        assert_eq!(
            err(&[url, ("FLEXO_TIMEOUT", "3 min")]),
            "FLEXO_TIMEOUT=\"3 min\" is not a positive number of seconds"
        );
        assert_eq!(
            err(&[url, ("FLEXO_PROBE_TIMEOUT", "0")]),
            "FLEXO_PROBE_TIMEOUT=\"0\" is not a positive number of seconds"
        );
        assert!(err(&[url, ("FLEXO_REPO", "b1")]).starts_with("FLEXO_REPO=\"b1\" is not a Flexo id"));
        assert_eq!(err(&[("FLEXO_URL", "ftp://flexo")]), "FLEXO_URL=\"ftp://flexo\" is not an http:// or https:// URL");
        let text = err(&[url, ("FLEXO_AUTH_URL", "http://user01:secret@auth/")]);
        assert!(text.starts_with("FLEXO_AUTH_URL holds a user:password@") && !text.contains("secret"), "{text}");
    }

    #[test]
    fn small_helpers() {
        assert_eq!(without_credentials("https://u:p@h:1/x@y"), "https://h:1/x@y");
        assert_eq!(without_credentials("http://h/x@y"), "http://h/x@y");
        assert_eq!(path_id("branch", "évidence").unwrap(), "%C3%A9vidence");
        assert_eq!(first_line("\n  java.lang.X: boom\n\tat y\n"), "java.lang.X: boom");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5");
        assert_eq!(seconds(Duration::from_secs(180)), "180");
    }

    /// A one-route-table HTTP server for answers the double cannot be made to give.
    struct Stub {
        url: String,
        server: Arc<tiny_http::Server>,
        thread: Option<thread::JoinHandle<()>>,
    }

    type Route = (u16, &'static str, Option<(&'static str, &'static str)>);

    impl Stub {
        fn start(answer: fn(&str, &str) -> Route) -> Stub {
            let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
            let url = format!("http://{}", server.server_addr().to_ip().unwrap());
            let s = server.clone();
            let thread = thread::spawn(move || {
                for mut request in s.incoming_requests() {
                    let _ = request.as_reader().read_to_end(&mut Vec::new());
                    let (status, body, header) = answer(request.method().as_str(), request.url());
                    let mut response = tiny_http::Response::from_string(body).with_status_code(status);
                    if let Some((name, value)) = header {
                        response.add_header(tiny_http::Header::from_bytes(name, value).unwrap());
                    }
                    let _ = request.respond(response);
                }
            });
            Stub { url, server, thread: Some(thread) }
        }

        fn client(&self) -> Client {
            client(&Settings {
                url: self.url.clone(),
                auth_url: self.url.clone(),
                token: Some(Secret::new("stub-token")),
                user: "user01".into(),
                password: Secret::new("password1"),
                org: ORG.into(),
                repo: REPO.into(),
                timeout: Duration::from_secs(5),
                probe_timeout: Duration::from_secs(5),
                branch_prefix: String::new(),
                ca_file: None,
            })
        }
    }

    impl Drop for Stub {
        fn drop(&mut self) {
            self.server.unblock();
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    #[test]
    fn a_server_error_after_the_write_landed_is_success() {
        let stub = Stub::start(|method, path| match (method, path.rsplit('/').next().unwrap_or("")) {
            ("POST", "update") => (500, "java.lang.RuntimeException: model copy failed\n\tat x", None),
            ("POST", "query") => (200, r#"{"head":{},"boolean":true}"#, None),
            _ => (404, "", None),
        });
        let written = stub.client().insert(BRANCH, &[quad("urn:x:s", "urn:x:p", Term::string("x"))]).unwrap();
        assert_eq!(written, Write::Committed { commit: None });
    }

    #[test]
    fn a_server_error_before_the_write_landed_says_so() {
        let stub = Stub::start(|method, path| match (method, path.rsplit('/').next().unwrap_or("")) {
            ("POST", "update") => (503, "", None),
            ("POST", "query") => (200, r#"{"head":{},"boolean":false}"#, None),
            _ => (404, "", None),
        });
        let mut c = stub.client();
        c.verify_delays = vec![Duration::from_millis(1); 3];
        let err = c.insert(BRANCH, &[quad("urn:x:s", "urn:x:p", Term::string("x"))]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "POST {}/orgs/adcs-demo/repos/lifecycle/branches/evidence/update answered 503 service unavailable; \
                 the triples were not on branch evidence when checked afterwards, so the write most likely failed; \
                 repeating it is safe",
                stub.url
            )
        );

        // The double answers an update of a missing branch with 500 (flexo-layer1.md §3); its query, 404.
        let d = FlexoDouble::start();
        let c = ready(&settings(&d));
        let err = c.insert("nosuchbranch", &[quad("urn:x:s", "urn:x:p", Term::string("x"))]).unwrap_err();
        assert!(matches!(err, FlexoError::WriteNotApplied { .. }), "{err:?}");
        assert!(err.to_string().contains("The destination branch nosuchbranch is corrupt"), "{err}");
    }

    #[test]
    fn a_redirect_is_an_error_naming_its_target() {
        let stub = Stub::start(|_, _| (307, "", Some(("Location", "https://u:p@elsewhere.example/flexo/orgs"))));
        let err = stub.client().ensure_branch(BRANCH).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "HEAD {}/orgs/adcs-demo/repos/lifecycle/branches/evidence answered 307 temporary redirect to \
                 https://elsewhere.example/flexo/orgs: set FLEXO_URL or FLEXO_AUTH_URL to the final address \
                 (redirects are not followed, they would lose the token)",
                stub.url
            )
        );
    }

    #[test]
    fn a_branch_made_concurrently_is_fine() {
        let stub = Stub::start(|method, _| match method {
            "HEAD" => (404, "", None),
            _ => (409, "org.openmbee.flexo.mms.HttpException: Branch evidence already exists", None),
        });
        stub.client().ensure_branch(BRANCH).unwrap();
    }
}
