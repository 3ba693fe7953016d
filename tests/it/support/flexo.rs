//! A test double of the Flexo MMS Layer 1 HTTP service (plus the auth service's `/login`).
//!
//! It is a real HTTP server on 127.0.0.1 that speaks the subset of Layer 1 our client uses, with the
//! service's status codes, headers and bodies. The specification is `shared/reference/flexo-layer1.md`;
//! comments cite its sections as §0..§7. Each branch model is an in-memory oxigraph store (its default
//! graph is the model), so user updates and queries are evaluated by a real SPARQL engine.
//!
//! Layout: a front TCP listener (the public port) relays each connection to a tiny_http server on a
//! second loopback port. The relay exists only so that `Fault::Down` can close connections without
//! answering: tiny_http always answers a dropped request with a 500 and never closes a keep-alive
//! connection itself. Every request is handled on its own short-lived thread by `Shared::handle`.

// Test support: each test binary uses only part of this API.
#![allow(dead_code)]

use oxigraph::io::{RdfFormat, RdfParser, RdfSerializer};
use oxigraph::model::vocab::{rdf, xsd};
use oxigraph::model::{GraphName, GraphNameRef, Literal, NamedNode, NamedOrBlankNode, Term, Triple};
use oxigraph::sparql::results::{QueryResultsFormat, QueryResultsSerializer};
use oxigraph::sparql::{QueryResults, SparqlEvaluator};
use oxigraph::store::Store;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// §0: IRIs in bodies and `Location` come from configuration (`FLEXO_MMS_ROOT_CONTEXT`), not the request host.
pub const ROOT: &str = "http://layer1-service";
/// §0: sent on every response as `Flexo-MMS-Layer-1`.
pub const LAYER1_VERSION: &str = "Version=0.3.1-double";
/// §4: the default LDAP users of the deployment.
const USERS: [(&str, &str); 2] = [("user01", "password1"), ("user02", "password2")];

const MMS: &str = "https://mms.openmbee.org/rdf/ontology/";
const DCT: &str = "http://purl.org/dc/terms/";
const LDP_LINK: &str =
    "<http://www.w3.org/ns/ldp#Resource>; rel=\"type\", <http://www.w3.org/ns/ldp#DirectContainer>; rel=\"type\"";
/// §0: namespaces a PUT body may not set (the server owns them).
const RESTRICTED: [&str; 5] = [
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "http://www.w3.org/2000/01/rdf-schema#",
    "http://www.w3.org/2002/07/owl#",
    "http://www.w3.org/ns/shacl#",
    MMS,
];
/// §0 Accept negotiation on LDP and GSP routes.
const ACCEPTABLE: [&str; 9] = [
    "*/*",
    "text/*",
    "application/*",
    "text/turtle",
    "application/trig",
    "application/n-triples",
    "application/n-quads",
    "application/ld+json",
    "application/rdf+xml",
];

/// Failure modes a test can switch on at run time with [`FlexoDouble::set_fault`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Normal service.
    #[default]
    None,
    /// Connections are closed without an answer (the client sees a transport error).
    Down,
    /// Every request waits this long before it is handled.
    Slow(Duration),
    /// Every authenticated route answers 401 with an empty body.
    Unauthorized,
    /// Every `…/update` answers 409 as if the branch mutex were held.
    Conflict,
    /// Every route answers 500 `text/plain`.
    ServerError,
}

/// One request as the double received it.
#[derive(Clone, Debug)]
pub struct Logged {
    pub method: String,
    /// The request target: path and query string, as sent.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Logged {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }
}

/// The running double. Dropping it stops the server.
pub struct FlexoDouble {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    threads: Vec<JoinHandle<()>>,
}

impl FlexoDouble {
    /// Starts the double on an OS-chosen loopback port.
    pub fn start() -> FlexoDouble {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind the tiny_http backend"));
        let backend = server.server_addr().to_ip().expect("backend is an IP listener");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the front listener");
        let addr = listener.local_addr().expect("front listener address");
        let shared = Arc::new(Shared::default());

        let (s, srv) = (shared.clone(), server.clone());
        let http = thread::Builder::new()
            .name("flexo-double-http".into())
            .spawn(move || {
                for request in srv.incoming_requests() {
                    if s.shutdown.load(Ordering::SeqCst) {
                        break;
                    }
                    let s = s.clone();
                    thread::spawn(move || s.serve(request));
                }
            })
            .expect("spawn the http thread");
        let s = shared.clone();
        let relay = thread::Builder::new()
            .name("flexo-double-accept".into())
            .spawn(move || s.accept_loop(listener, backend))
            .expect("spawn the accept thread");
        FlexoDouble { shared, addr, server, threads: vec![http, relay] }
    }

    /// Base URL of Layer 1, e.g. `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Base URL of the auth service: the same server answers `/login`.
    pub fn auth_url(&self) -> String {
        self.url()
    }

    /// Mints a token for `user` (its Layer 1 username becomes `ldap/user/<user>`, §4).
    pub fn issue_token(&self, user: &str) -> String {
        self.shared.issue_token(user)
    }

    /// Invalidates every token issued so far (as if they had expired).
    pub fn expire_tokens(&self) {
        self.shared.state().tokens.clear();
    }

    pub fn set_fault(&self, fault: Fault) {
        let down = fault == Fault::Down;
        self.shared.state().fault = fault;
        self.shared.down.store(down, Ordering::SeqCst);
        if down {
            // In-flight and pooled keep-alive connections die too, as when the service goes away.
            self.shared.close_connections();
        }
    }

    /// The next `n` updates answer 409 (branch mutex held), then normal service resumes.
    pub fn set_conflicts(&self, n: usize) {
        self.shared.state().forced_conflicts = n;
    }

    /// Every request received so far, oldest first (requests refused by `Fault::Down` never arrive).
    pub fn requests(&self) -> Vec<Logged> {
        self.shared.state().log.clone()
    }

    pub fn clear_requests(&self) {
        self.shared.state().log.clear();
    }

    /// Number of commits made on a branch by `/update` or a graph load (the repository's root commit is
    /// not counted). 0 when the repository does not exist.
    pub fn commit_count(&self, org: &str, repo: &str, branch: &str) -> usize {
        let st = self.shared.state();
        st.repo(org, repo).map_or(0, |r| r.commits.values().filter(|c| !c.root && c.branch == branch).count())
    }

    /// Runs a SELECT or ASK directly against a branch model (no HTTP) and returns the
    /// `application/sparql-results+json` document. Panics if the branch is missing or the query fails.
    pub fn query(&self, org: &str, repo: &str, branch: &str, sparql: &str) -> serde_json::Value {
        let store = self.model(org, repo, branch);
        let results = SparqlEvaluator::new()
            .parse_query(sparql)
            .unwrap_or_else(|e| panic!("bad query: {e}"))
            .on_store(&store)
            .execute()
            .unwrap_or_else(|e| panic!("query failed: {e}"));
        let json = results_json(results).unwrap_or_else(|e| panic!("query failed: {e}"));
        serde_json::from_slice(&json).expect("results are JSON")
    }

    /// Number of triples in a branch model. Panics if the branch is missing.
    pub fn quads(&self, org: &str, repo: &str, branch: &str) -> usize {
        self.model(org, repo, branch).len().expect("store length")
    }

    fn model(&self, org: &str, repo: &str, branch: &str) -> Store {
        let st = self.shared.state();
        let b = st.repo(org, repo).and_then(|r| r.branches.get(branch));
        b.unwrap_or_else(|| panic!("no branch {org}/{repo}/{branch}")).model.clone()
    }
}

impl Drop for FlexoDouble {
    fn drop(&mut self) {
        // Cut clients off first, so that a request woken from `Slow` by the shutdown flag cannot answer.
        self.shared.down.store(true, Ordering::SeqCst);
        self.shared.close_connections();
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.server.unblock();
        // Wake the accept loop, which is blocked in accept().
        let _ = TcpStream::connect(self.addr);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// State

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    shutdown: AtomicBool,
    /// Mirrors `Fault::Down` so the relay can check it without the state lock.
    down: AtomicBool,
    /// Client side of every relayed connection, so `Down` and `Drop` can close them.
    conns: Mutex<HashMap<u64, TcpStream>>,
    next_conn: AtomicU64,
}

#[derive(Default)]
struct State {
    /// token → Layer 1 username (`ldap/user/<user>`).
    tokens: HashMap<String, String>,
    fault: Fault,
    forced_conflicts: usize,
    log: Vec<Logged>,
    orgs: BTreeMap<String, Org>,
}

impl State {
    fn repo(&self, o: &str, r: &str) -> Option<&Repo> {
        self.orgs.get(o)?.repos.get(r)
    }
    fn repo_mut(&mut self, o: &str, r: &str) -> Option<&mut Repo> {
        self.orgs.get_mut(o)?.repos.get_mut(r)
    }
}

/// Server-kept facts shared by orgs, repos and branches.
#[derive(Clone)]
struct Meta {
    etag: String,
    created: String,
    created_by: String,
    /// The user's own triples from the PUT body (`<>` resolved against the resource IRI).
    triples: Vec<Triple>,
}

struct Org {
    meta: Meta,
    repos: BTreeMap<String, Repo>,
}

struct Repo {
    meta: Meta,
    branches: BTreeMap<String, Branch>,
    commits: BTreeMap<String, Commit>,
}

struct Branch {
    meta: Meta,
    /// Head commit id.
    commit: String,
    /// The model: the store's default graph. Never mutated in place: a commit swaps in a new store,
    /// so readers holding a clone of the old handle keep a consistent snapshot.
    model: Store,
    /// §3 step 2: the per-branch transaction mutex.
    busy: bool,
}

struct Commit {
    branch: String,
    parent: Option<String>,
    submitted: String,
    created_by: String,
    root: bool,
    /// The model as of this commit, for branches created from `mms:commit`.
    snapshot: Vec<Triple>,
}

// ---------------------------------------------------------------------------------------------
// Requests and replies

/// A request, read off the wire.
struct Incoming {
    method: String,
    target: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Incoming {
    fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }
    /// Media type of the body, lower case, without parameters.
    fn content_type(&self) -> String {
        self.header("content-type").unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase()
    }
    fn query_param(&self, key: &str) -> Option<String> {
        form_value(&self.query, key)
    }
}

fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn empty(status: u16) -> Reply {
        Reply { status, headers: Vec::new(), body: Vec::new() }
    }
    fn with(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }
    fn body(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply { status, headers: vec![("Content-Type".into(), content_type.into())], body: body.into() }
    }
    /// §0: error bodies are `text/plain` stack traces, never JSON.
    fn error(status: u16, exception: &str, message: &str) -> Reply {
        let trace =
            format!("{exception}: {message}\n\tat org.openmbee.flexo.mms.double.FlexoDouble.handle(flexo_double.rs)\n");
        Reply::body(status, "text/plain; charset=UTF-8", trace)
    }
    fn http_error(status: u16, message: &str) -> Reply {
        Reply::error(status, "org.openmbee.flexo.mms.HttpException", message)
    }
    fn turtle(status: u16, body: String) -> Reply {
        Reply::body(status, "text/turtle; charset=UTF-8", body)
    }
    /// §4: a missing, invalid or expired token: 401, empty body, Bearer challenge.
    fn unauthorized() -> Reply {
        Reply::empty(401).with("WWW-Authenticate", "Bearer realm=\"flexo-mms\"")
    }
    fn not_found(what: &str) -> Reply {
        Reply::http_error(404, &format!("{what} not found"))
    }
    /// §0: a method that is not allowed → 405 with `Allow` and a text body.
    fn not_allowed(allow: &str) -> Reply {
        Reply::http_error(405, "Method not allowed").with("Allow", format!("OPTIONS, {allow}"))
    }
    fn into_response(self) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
        let mut response = tiny_http::Response::from_data(self.body).with_status_code(self.status);
        // §0 `DefaultHeaders`; Ktor's plugin also names itself in `Server` (which replaces tiny_http's).
        let common = [("Flexo-MMS-Layer-1", LAYER1_VERSION), ("X-Engine", "Ktor"), ("Server", "Ktor/3.4.2")];
        let all =
            common.iter().map(|(k, v)| (*k, *v)).chain(self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        for (k, v) in all {
            if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
                response.add_header(h);
            }
        }
        response
    }
}

// ---------------------------------------------------------------------------------------------
// Transport: relay, request threads, faults

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn fault(&self) -> Fault {
        self.state().fault.clone()
    }

    fn issue_token(&self, user: &str) -> String {
        let token = format!("{}{}{}", random_hex(), random_hex(), random_hex());
        self.state().tokens.insert(token.clone(), format!("ldap/user/{user}"));
        token
    }

    /// Front listener: relays each connection to the tiny_http backend, or drops it while `Down`.
    fn accept_loop(self: Arc<Self>, listener: TcpListener, backend: SocketAddr) {
        for client in listener.incoming() {
            if self.shutdown.load(Ordering::SeqCst) {
                break;
            }
            let Ok(client) = client else { continue };
            if self.down.load(Ordering::SeqCst) {
                drop(client); // Fault::Down: closed without an answer.
                continue;
            }
            let Ok(server) = TcpStream::connect(backend) else { continue };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let id = self.next_conn.fetch_add(1, Ordering::SeqCst);
            let (Ok(c2), Ok(c3), Ok(s2)) = (client.try_clone(), client.try_clone(), server.try_clone()) else {
                continue;
            };
            self.conns.lock().unwrap_or_else(|p| p.into_inner()).insert(id, c3);
            let me = self.clone();
            thread::spawn(move || me.pump_requests(client, server));
            let me = self.clone();
            thread::spawn(move || {
                let (mut from, mut to) = (s2, c2);
                let _ = std::io::copy(&mut from, &mut to);
                let _ = to.shutdown(Shutdown::Both);
                me.conns.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            });
        }
    }

    /// Client → backend half of a relayed connection. Checks `Down` before forwarding each chunk, so a
    /// pooled keep-alive connection also fails once the service is down.
    fn pump_requests(&self, mut client: TcpStream, mut server: TcpStream) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match client.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if self.down.load(Ordering::SeqCst) {
                let _ = client.shutdown(Shutdown::Both);
                let _ = server.shutdown(Shutdown::Both);
                return;
            }
            if server.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = server.shutdown(Shutdown::Write);
    }

    fn close_connections(&self) {
        for (_, c) in self.conns.lock().unwrap_or_else(|p| p.into_inner()).drain() {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// One request, on its own thread: read, log, apply `Slow`, handle, answer.
    fn serve(&self, mut request: tiny_http::Request) {
        let mut body = Vec::new();
        let _ = request.as_reader().read_to_end(&mut body);
        let target = request.url().to_string();
        let (path, query) = target.split_once('?').map_or((target.as_str(), ""), |(p, q)| (p, q));
        let incoming = Incoming {
            method: request.method().as_str().to_ascii_uppercase(),
            path: path.to_string(),
            query: query.to_string(),
            headers: request.headers().iter().map(|h| (h.field.as_str().to_string(), h.value.to_string())).collect(),
            body: String::from_utf8_lossy(&body).into_owned(),
            target,
        };
        self.state().log.push(Logged {
            method: incoming.method.clone(),
            path: incoming.target.clone(),
            headers: incoming.headers.clone(),
            body: incoming.body.clone(),
        });
        if let Fault::Slow(delay) = self.fault() {
            self.pause(delay);
        }
        let reply = self.handle(&incoming);
        let _ = request.respond(reply.into_response());
    }

    /// Sleeps, but gives up early on shutdown so `Drop` never waits for a slow request.
    fn pause(&self, delay: Duration) {
        let end = Instant::now() + delay;
        while !self.shutdown.load(Ordering::SeqCst) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            thread::sleep(left.min(Duration::from_millis(10)));
        }
    }

    // -----------------------------------------------------------------------------------------
    // Dispatch

    fn handle(&self, req: &Incoming) -> Reply {
        let fault = self.fault();
        if fault == Fault::ServerError {
            return Reply::error(500, "java.lang.IllegalStateException", "injected server error");
        }
        let segments: Vec<String> = req.path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        let method = req.method.as_str();

        // §4 auth service: /login is Basic-authenticated, everything else needs a Bearer token.
        if let ["login"] = segs.as_slice() {
            return if method == "GET" { self.login(req) } else { Reply::not_allowed("GET") };
        }
        // §0: every route sits inside `authenticate { … }`.
        let user = match self.bearer_user(req) {
            Some(user) if fault != Fault::Unauthorized => user,
            _ => return Reply::unauthorized(),
        };
        if method == "OPTIONS" {
            return Reply::empty(204);
        }
        // §0: LDP and GSP routes negotiate the response type, even on PUT; SPARQL routes ignore Accept.
        let sparql_route = matches!(segs.last(), Some(&"query") | Some(&"update"));
        if !sparql_route && !acceptable(req.header("accept")) {
            return Reply::http_error(406, "Not Acceptable");
        }

        match segs.as_slice() {
            ["orgs", o] => match method {
                "HEAD" | "GET" => self.read_org(req, o),
                "PUT" => self.put_org(req, o, &user),
                "PATCH" => not_implemented(),
                _ => Reply::not_allowed("HEAD, GET, PUT, PATCH"),
            },
            ["orgs", o, "repos", r] => match method {
                "HEAD" | "GET" => self.read_repo(req, o, r),
                "PUT" => self.put_repo(req, o, r, &user),
                "PATCH" => not_implemented(),
                _ => Reply::not_allowed("HEAD, GET, PUT, PATCH"),
            },
            ["orgs", o, "repos", r, "branches", b] => match method {
                "HEAD" | "GET" => self.read_branch(req, o, r, b),
                "PUT" => self.put_branch(req, o, r, b, &user),
                // §1: DELETE on a branch is routed but unimplemented in the real service.
                "DELETE" => Reply::error(501, "kotlin.NotImplementedError", "That operation is not yet implemented"),
                "PATCH" => not_implemented(),
                _ => Reply::not_allowed("HEAD, GET, PUT, PATCH, DELETE"),
            },
            ["orgs", o, "repos", r, "branches", b, "graph"] => match method {
                "HEAD" | "GET" => self.read_model(req, o, r, b),
                "PUT" => self.load_model(req, o, r, b, &user),
                _ => Reply::not_allowed("HEAD, GET, PUT"),
            },
            ["orgs", o, "repos", r, "branches", b, "query"] => match method {
                "GET" | "POST" => self.query(req, o, r, b),
                _ => Reply::not_allowed("GET, POST"),
            },
            ["orgs", o, "repos", r, "branches", b, "update"] => match method {
                "POST" => self.update(req, o, r, b, &user, &fault),
                _ => Reply::not_allowed("POST"),
            },
            ["orgs", o, "repos", r, "commits", c] => match method {
                "HEAD" | "GET" => self.read_commit(req, o, r, c),
                _ => Reply::not_allowed("HEAD, GET"),
            },
            // Real routes the double does not emulate (listings, locks, repo graph/query, POST creation).
            ["orgs"] | ["orgs", _, "repos"] | ["orgs", _, "repos", _, ..] => not_implemented(),
            _ => Reply::http_error(404, "No route"),
        }
    }

    /// §4: `GET /login` with Basic credentials → pretty-printed `{"token" : …}`.
    fn login(&self, req: &Incoming) -> Reply {
        let creds = req.header("authorization").and_then(parse_basic);
        match creds {
            Some((u, p)) if USERS.iter().any(|(uu, pp)| *uu == u && *pp == p) => {
                let token = self.issue_token(&u);
                Reply::body(200, "application/json", format!("{{\n  \"token\" : \"{token}\"\n}}"))
            }
            _ => Reply::empty(401).with("WWW-Authenticate", "Basic realm=\"Flexo MMS LDAP\""),
        }
    }

    fn bearer_user(&self, req: &Incoming) -> Option<String> {
        let value = req.header("authorization")?.trim();
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        self.state().tokens.get(token.trim()).cloned()
    }

    // -----------------------------------------------------------------------------------------
    // Orgs and repos (LDP direct containers, §1)

    fn read_org(&self, req: &Incoming, o: &str) -> Reply {
        let pre = match Preconditions::of(req) {
            Ok(p) => p,
            Err(reply) => return reply,
        };
        let st = self.state();
        let Some(org) = st.orgs.get(o) else { return pre.absent("Org") };
        let body = || turtle(&org_triples(o, &org.meta));
        read_reply(req, &pre, &org.meta.etag, body)
    }

    fn put_org(&self, req: &Incoming, o: &str, user: &str) -> Reply {
        if let Err(reply) = check_id(o) {
            return reply;
        }
        let pre = match Preconditions::of(req) {
            Ok(p) => p,
            Err(reply) => return reply,
        };
        let iri = org_iri(o);
        let triples = match parse_put_body(&req.body, &iri, &format!("{MMS}Org"), o) {
            Ok(t) => t,
            Err(reply) => return reply,
        };
        let mut st = self.state();
        let existing = st.orgs.get(o).map(|org| org.meta.clone());
        if let Some(reply) = pre.for_write(existing.as_ref().map(|m| m.etag.as_str())) {
            return reply;
        }
        // §1: an existing org with `If-None-Match: *` is 400 (`orgNotExists`), not 409.
        if pre.none_match_hits(existing.as_ref().map(|m| m.etag.as_str())) {
            return Reply::http_error(400, "Org already exists");
        }
        let meta = new_meta(existing.as_ref(), user, triples);
        let body = turtle(&org_triples(o, &meta));
        let etag = meta.etag.clone();
        match st.orgs.get_mut(o) {
            // §1: PUT on an existing org replaces its metadata (created/createdBy kept) → 200.
            Some(org) => {
                org.meta = meta;
                Reply::turtle(200, body).with("ETag", etag).with("Link", LDP_LINK)
            }
            None => {
                st.orgs.insert(o.to_string(), Org { meta, repos: BTreeMap::new() });
                Reply::turtle(201, body).with("ETag", etag).with("Location", iri).with("Link", LDP_LINK)
            }
        }
    }

    fn read_repo(&self, req: &Incoming, o: &str, r: &str) -> Reply {
        let pre = match Preconditions::of(req) {
            Ok(p) => p,
            Err(reply) => return reply,
        };
        let st = self.state();
        let Some(repo) = st.repo(o, r) else { return pre.absent("Repo") };
        let body = || turtle(&repo_triples(o, r, &repo.meta));
        read_reply(req, &pre, &repo.meta.etag, body)
    }

    fn put_repo(&self, req: &Incoming, o: &str, r: &str, user: &str) -> Reply {
        if let Err(reply) = check_id(r) {
            return reply;
        }
        let pre = match Preconditions::of(req) {
            Ok(p) => p,
            Err(reply) => return reply,
        };
        let iri = repo_iri(o, r);
        let triples = match parse_put_body(&req.body, &iri, &format!("{MMS}Repo"), r) {
            Ok(t) => t,
            Err(reply) => return reply,
        };
        let mut st = self.state();
        let Some(org) = st.orgs.get_mut(o) else { return pre.absent("Org") };
        let existing = org.repos.get(r).map(|repo| repo.meta.clone());
        if let Some(reply) = pre.for_write(existing.as_ref().map(|m| m.etag.as_str())) {
            return reply;
        }
        // §1: an existing repo with `If-None-Match: *` is 409 (unlike orgs).
        if pre.none_match_hits(existing.as_ref().map(|m| m.etag.as_str())) {
            return Reply::http_error(409, "Repo already exists");
        }
        let meta = new_meta(existing.as_ref(), user, triples);
        let body = turtle(&repo_triples(o, r, &meta));
        let etag = meta.etag.clone();
        if let Some(repo) = org.repos.get_mut(r) {
            repo.meta = meta;
            return Reply::turtle(200, body).with("ETag", etag).with("Link", LDP_LINK);
        }
        // §1 "What repo creation also makes": root commit `<txn>` and branch master (etag `<txn>1`).
        let txn = meta.etag.clone();
        let root = Commit {
            branch: "master".into(),
            parent: None,
            submitted: meta.created.clone(),
            created_by: meta.created_by.clone(),
            root: true,
            snapshot: Vec::new(),
        };
        let master_iri = branch_iri(o, r, "master");
        let title = Triple::new(
            NamedNode::new_unchecked(master_iri),
            NamedNode::new_unchecked(format!("{DCT}title")),
            Literal::new_language_tagged_literal_unchecked("Master", "en"),
        );
        let master = Branch {
            meta: Meta { etag: format!("{txn}1"), triples: vec![title], ..meta.clone() },
            commit: txn.clone(),
            model: Store::new().expect("in-memory store"),
            busy: false,
        };
        let repo = Repo {
            meta,
            branches: BTreeMap::from([("master".to_string(), master)]),
            commits: BTreeMap::from([(txn, root)]),
        };
        org.repos.insert(r.to_string(), repo);
        Reply::turtle(201, body).with("ETag", etag).with("Location", iri).with("Link", LDP_LINK)
    }

    // -----------------------------------------------------------------------------------------
    // Branches and commits (§1)

    fn read_branch(&self, req: &Incoming, o: &str, r: &str, b: &str) -> Reply {
        let pre = match Preconditions::of(req) {
            Ok(p) => p,
            Err(reply) => return reply,
        };
        let st = self.state();
        let Some(repo) = st.repo(o, r) else { return pre.absent("Repo") };
        let Some(branch) = repo.branches.get(b) else { return pre.absent("Branch") };
        let body = || turtle(&branch_triples(o, r, b, branch));
        read_reply(req, &pre, &branch.meta.etag, body)
    }

    fn put_branch(&self, req: &Incoming, o: &str, r: &str, b: &str, user: &str) -> Reply {
        if let Err(reply) = check_id(b) {
            return reply;
        }
        let pre = match Preconditions::of(req) {
            Ok(p) => p,
            Err(reply) => return reply,
        };
        let iri = branch_iri(o, r, b);
        let triples = match parse_put_body(&req.body, &iri, &format!("{MMS}Branch"), b) {
            Ok(t) => t,
            Err(reply) => return reply,
        };
        // §1: exactly one of `mms:ref` / `mms:commit`, and it must be an IRI (`K/RdfModeler.kt`) → else 400.
        let subject = NamedOrBlankNode::from(node(&iri));
        let (sources, rest): (Vec<Triple>, Vec<Triple>) = triples.into_iter().partition(|t| {
            t.subject == subject && matches!(t.predicate.as_str().strip_prefix(MMS), Some("ref" | "commit"))
        });
        let [source] = sources.as_slice() else {
            return Reply::http_error(400, "Branch needs exactly one of mms:ref or mms:commit");
        };
        let Term::NamedNode(target) = &source.object else {
            return Reply::http_error(400, "mms:ref / mms:commit must be an IRI");
        };
        let by_ref = source.predicate.as_str() == format!("{MMS}ref");

        let mut st = self.state();
        let what = if st.orgs.contains_key(o) { "Repo" } else { "Org" };
        let Some(repo) = st.repo_mut(o, r) else { return pre.absent(what) };
        if repo.branches.contains_key(b) {
            return Reply::http_error(409, &format!("Branch {b} already exists"));
        }
        if pre.if_match.is_some() {
            return Reply::http_error(412, "Precondition failed");
        }
        // Resolve the source: a branch (`<./master>` resolves against the branch IRI to
        // `…/branches/master`) or a commit (`<../commits/ID>`). Unknown → 400 (test `T/BranchCreate.kt`).
        let (commit, model) = if by_ref {
            let name = target.as_str().strip_prefix(&format!("{}/branches/", repo_iri(o, r))).unwrap_or("");
            match repo.branches.get(name) {
                Some(src) => {
                    (src.commit.clone(), copy_store(src.model.iter().filter_map(Result::ok).map(Triple::from)))
                }
                None => return Reply::http_error(400, &format!("Ref not found: <{}>", target.as_str())),
            }
        } else {
            let id = target.as_str().strip_prefix(&format!("{}/commits/", repo_iri(o, r))).unwrap_or("");
            match repo.commits.get(id) {
                Some(c) => (id.to_string(), copy_store(c.snapshot.iter().cloned())),
                None => return Reply::http_error(400, &format!("Commit not found: <{}>", target.as_str())),
            }
        };
        let meta = new_meta(None, user, rest);
        let etag = meta.etag.clone();
        let branch = Branch { meta, commit, model, busy: false };
        let body = turtle(&branch_triples(o, r, b, &branch));
        repo.branches.insert(b.to_string(), branch);
        Reply::turtle(201, body).with("ETag", etag).with("Location", iri).with("Link", LDP_LINK)
    }

    fn read_commit(&self, req: &Incoming, o: &str, r: &str, c: &str) -> Reply {
        let pre = match Preconditions::of(req) {
            Ok(p) => p,
            Err(reply) => return reply,
        };
        let st = self.state();
        let Some(repo) = st.repo(o, r) else { return pre.absent("Repo") };
        let Some(commit) = repo.commits.get(c) else { return pre.absent("Commit") };
        let body = || turtle(&commit_triples(o, r, c, commit));
        read_reply(req, &pre, c, body)
    }

    // -----------------------------------------------------------------------------------------
    // Model: read, load, query, update (§1, §2, §3)

    fn read_model(&self, req: &Incoming, o: &str, r: &str, b: &str) -> Reply {
        let st = self.state();
        let Some(branch) = st.repo(o, r).and_then(|repo| repo.branches.get(b)) else {
            return Reply::not_found("Branch");
        };
        // §1: HEAD …/graph → 200, empty body, no ETag.
        if req.method == "HEAD" {
            return Reply::empty(200).with("Content-Type", "text/turtle; charset=UTF-8");
        }
        let model = branch.model.clone();
        drop(st);
        Reply::turtle(200, turtle(&sorted_triples(&model)))
    }

    /// §1 `PUT …/graph`: replaces the whole model; 200 (not 201), and no change → 200 without Location.
    fn load_model(&self, req: &Incoming, o: &str, r: &str, b: &str, user: &str) -> Reply {
        // §1 "Accept lists for loads": the example config accepts Turtle, JSON-LD and RDF/XML only.
        let format = match req.content_type().as_str() {
            ct @ ("text/turtle" | "application/ld+json" | "application/rdf+xml") => RdfFormat::from_media_type(ct),
            _ => None,
        };
        let Some(format) = format else {
            return Reply::http_error(415, "Unsupported Media Type");
        };
        let parser = RdfParser::from_format(format).with_base_iri(branch_iri(o, r, b)).expect("valid base");
        let triples: Result<Vec<Triple>, _> =
            parser.for_slice(req.body.as_bytes()).map(|q| q.map(Triple::from)).collect();
        let triples = match triples {
            Ok(t) => t,
            Err(e) => return Reply::error(500, "org.apache.jena.riot.RiotException", &e.to_string()),
        };
        let old_etag = match self.begin_transaction(req, o, r, b, None) {
            Ok((_, etag)) => etag,
            Err(reply) => return reply,
        };
        self.commit(o, r, b, user, &old_etag, copy_store(triples), 200)
    }

    fn query(&self, req: &Incoming, o: &str, r: &str, b: &str) -> Reply {
        // §2: POST application/sparql-query, form `query=`, or GET ?query=; anything else → 415.
        let text = match sparql_text(req, "application/sparql-query", "query") {
            Ok(t) => t,
            Err(reply) => return reply,
        };
        let model = {
            let st = self.state();
            match st.repo(o, r).and_then(|repo| repo.branches.get(b)) {
                Some(branch) => branch.model.clone(),
                None => return Reply::not_found(if st.repo(o, r).is_some() { "Branch" } else { "Repo" }),
            }
        };
        // §2 step 2: a syntax error is not an HttpException → 500.
        let prepared = match SparqlEvaluator::new().parse_query(&text) {
            Ok(p) => p,
            Err(e) => return Reply::error(500, "org.apache.jena.query.QueryParseException", &e.to_string()),
        };
        // §2 step 3: user FROM / FROM NAMED and the dataset parameters → 403.
        let dataset_params = ["default-graph-uri", "named-graph-uri"].iter().any(|k| {
            req.query_param(k).is_some() || (req.content_type().contains("form") && form_value(&req.body, k).is_some())
        });
        if !prepared.dataset().is_default_dataset() || dataset_params {
            return Reply::http_error(403, "Query may not specify a dataset (FROM / FROM NAMED)");
        }
        let results = match prepared.on_store(&model).execute() {
            Ok(results) => results,
            Err(e) => return Reply::error(500, "org.openmbee.flexo.mms.Non200Response", &e.to_string()),
        };
        // §2 result formats: fixed, `Accept` is ignored.
        if let QueryResults::Graph(triples) = results {
            let triples: Result<Vec<Triple>, _> = triples.collect();
            return match triples {
                Ok(t) => Reply::turtle(200, turtle(&t)),
                Err(e) => Reply::error(500, "org.openmbee.flexo.mms.Non200Response", &e.to_string()),
            };
        }
        match results_json(results) {
            Ok(json) => Reply::body(200, "application/sparql-results+json", json),
            Err(e) => Reply::error(500, "org.openmbee.flexo.mms.Non200Response", &e),
        }
    }

    fn update(&self, req: &Incoming, o: &str, r: &str, b: &str, user: &str, fault: &Fault) -> Reply {
        // §3: `application/sparql-update` or form `update=`; anything else → 415.
        let text = match sparql_text(req, "application/sparql-update", "update") {
            Ok(t) => t,
            Err(reply) => return reply,
        };
        // §3 step 1: a syntax error is an UpdateSyntaxException → 500.
        if let Err(e) = SparqlEvaluator::new().parse_update(&text) {
            return Reply::error(500, "org.apache.jena.query.QueryParseException", &e.to_string());
        }
        // §3 step 2: the per-branch mutex (and the injected conflicts, which look the same).
        let (base, old_etag) = match self.begin_transaction(req, o, r, b, Some(fault)) {
            Ok(x) => x,
            Err(reply) => return reply,
        };
        // §3 step 3: named graphs and graph-management operations are refused → 500; WITH and USING
        // are dropped (the service rewrites every operation onto the branch's staging graph).
        let staged = match scan_update(&text) {
            UpdateScan::Forbidden(word) => Err(Reply::error(
                500,
                if word == "GRAPH" || word == "SERVICE" || word == "LATERAL" {
                    "org.openmbee.flexo.mms.QuadsNotAllowedException"
                } else {
                    "org.openmbee.flexo.mms.UpdateOperationNotAllowedException"
                },
                &format!("{word} is not allowed in a model update"),
            )),
            UpdateScan::Allowed(rewritten) => {
                let staging = copy_store(base.iter().filter_map(Result::ok).map(Triple::from));
                SparqlEvaluator::new()
                    .parse_update(&rewritten)
                    .map_err(|e| e.to_string())
                    .and_then(|u| u.on_store(&staging).execute().map_err(|e| e.to_string()))
                    .map(|()| staging)
                    .map_err(|e| Reply::error(500, "org.openmbee.flexo.mms.Non200Response", &e))
            }
        };
        match staged {
            Ok(staging) => self.commit(o, r, b, user, &old_etag, staging, 201),
            Err(reply) => {
                // §3 step 5: the mutex is released in `finally`.
                self.release(o, r, b);
                reply
            }
        }
    }

    /// Takes the branch mutex. Returns the current model and branch etag, or the error reply:
    /// 404 org/repo, 500 branch missing (§3 "(inferred) … is corrupt"), 412 If-Match, 409 mutex held.
    /// `update_fault` is `Some` for `/update`, where `Fault::Conflict` and `set_conflicts` apply, and
    /// `None` for graph loads, which only meet the real mutex.
    fn begin_transaction(
        &self,
        req: &Incoming,
        o: &str,
        r: &str,
        b: &str,
        update_fault: Option<&Fault>,
    ) -> Result<(Store, String), Reply> {
        let pre = Preconditions::of(req)?;
        let mut st = self.state();
        if !st.orgs.contains_key(o) {
            return Err(pre.absent("Org"));
        }
        let Some(repo) = st.repo(o, r) else { return Err(pre.absent("Repo")) };
        let Some(branch) = repo.branches.get(b) else {
            return Err(Reply::error(
                500,
                "org.openmbee.flexo.mms.ServerBugException",
                &format!("The destination branch {b} is corrupt. No staging snapshot found."),
            ));
        };
        if let Some(tags) = &pre.if_match
            && !tags.iter().any(|t| t == "*" || *t == branch.meta.etag)
        {
            return Err(Reply::http_error(412, "Precondition failed"));
        }
        let injected = match update_fault {
            Some(Fault::Conflict) => true,
            Some(_) if st.forced_conflicts > 0 => {
                st.forced_conflicts -= 1;
                true
            }
            _ => false,
        };
        let branch = st.repo_mut(o, r).and_then(|repo| repo.branches.get_mut(b)).expect("checked above");
        if injected || branch.busy {
            return Err(Reply::http_error(409, "Another transaction is in progress"));
        }
        branch.busy = true;
        Ok((branch.model.clone(), branch.meta.etag.clone()))
    }

    /// Releases the branch mutex without committing.
    fn release(&self, o: &str, r: &str, b: &str) {
        if let Some(branch) = self.state().repo_mut(o, r).and_then(|repo| repo.branches.get_mut(b)) {
            branch.busy = false;
        }
    }

    /// Releases the branch mutex and, when the staged model differs from the branch model, commits it.
    /// §3: a change → `created` status (201 update, 200 load) + ETag = commit id + Location; no net
    /// change → 200, PREFIX-only body, the old ETag and no Location (and no commit).
    #[allow(clippy::too_many_arguments)]
    fn commit(&self, o: &str, r: &str, b: &str, user: &str, old_etag: &str, staged: Store, created: u16) -> Reply {
        let mut st = self.state();
        let Some(repo) = st.repo_mut(o, r) else { return Reply::not_found("Repo") };
        let Some(branch) = repo.branches.get_mut(b) else { return Reply::not_found("Branch") };
        branch.busy = false;
        let before: HashSet<Triple> = branch.model.iter().filter_map(Result::ok).map(Triple::from).collect();
        let after: HashSet<Triple> = staged.iter().filter_map(Result::ok).map(Triple::from).collect();
        if before == after {
            return Reply::turtle(200, turtle(&[])).with("ETag", old_etag);
        }
        let id = uuid();
        let commit = Commit {
            branch: b.to_string(),
            parent: Some(branch.commit.clone()),
            submitted: now_xsd(),
            created_by: user.to_string(),
            root: false,
            snapshot: sorted_triples(&staged),
        };
        branch.model = staged;
        branch.commit = id.clone();
        branch.meta.etag = id.clone();
        let body = turtle(&commit_triples(o, r, &id, &commit));
        repo.commits.insert(id.clone(), commit);
        Reply::turtle(created, body).with("ETag", id.clone()).with("Location", commit_iri(o, r, &id))
    }
}

fn not_implemented() -> Reply {
    Reply::error(501, "kotlin.NotImplementedError", "That operation is not yet implemented (in the Flexo double)")
}

// ---------------------------------------------------------------------------------------------
// Preconditions (§0 ETags)

struct Preconditions {
    if_match: Option<Vec<String>>,
    if_none_match: Option<Vec<String>>,
}

impl Preconditions {
    /// Values must be `*` or quoted tags (optionally `W/`) → else 400; contradictory pairs → 412.
    fn of(req: &Incoming) -> Result<Preconditions, Reply> {
        let parse = |name: &str| -> Result<Option<Vec<String>>, Reply> {
            let Some(value) = req.header(name) else { return Ok(None) };
            let mut tags = Vec::new();
            for raw in value.split(',').map(str::trim) {
                let tag = raw.strip_prefix("W/").unwrap_or(raw);
                if tag == "*" {
                    tags.push("*".to_string());
                } else if tag.len() >= 2 && tag.starts_with('"') && tag.ends_with('"') {
                    tags.push(tag[1..tag.len() - 1].to_string());
                } else {
                    return Err(Reply::http_error(400, &format!("Invalid {name} value: {value}")));
                }
            }
            Ok(Some(tags))
        };
        let pre = Preconditions { if_match: parse("if-match")?, if_none_match: parse("if-none-match")? };
        if let (Some(m), Some(n)) = (&pre.if_match, &pre.if_none_match)
            && (m.iter().chain(n).any(|t| t == "*") || m.iter().any(|t| n.contains(t)))
        {
            return Err(Reply::http_error(412, "Conflicting If-Match and If-None-Match"));
        }
        Ok(pre)
    }

    /// §1: a missing resource is 404, or 412 when the request carries `If-Match`.
    fn absent(&self, what: &str) -> Reply {
        if self.if_match.is_some() { Reply::http_error(412, "Precondition failed") } else { Reply::not_found(what) }
    }

    /// `If-None-Match` on a write: `*` or the current tag hits an existing resource.
    fn none_match_hits(&self, current: Option<&str>) -> bool {
        match (&self.if_none_match, current) {
            (Some(tags), Some(etag)) => tags.iter().any(|t| t == "*" || t == etag),
            _ => false,
        }
    }

    /// `If-Match` on a write: the resource must exist and match.
    fn for_write(&self, current: Option<&str>) -> Option<Reply> {
        let tags = self.if_match.as_ref()?;
        match current {
            Some(etag) if tags.iter().any(|t| t == "*" || t == etag) => None,
            _ => Some(Reply::http_error(412, "Precondition failed")),
        }
    }
}

/// §1 reads of orgs, repos, branches and commits: HEAD → 204 + ETag; GET → 200 Turtle + ETag;
/// `If-None-Match` matching → 304; `If-Match` not matching → 412.
fn read_reply(req: &Incoming, pre: &Preconditions, etag: &str, body: impl FnOnce() -> String) -> Reply {
    if let Some(tags) = &pre.if_match
        && !tags.iter().any(|t| t == "*" || t == etag)
    {
        return Reply::http_error(412, "Precondition failed");
    }
    if let Some(tags) = &pre.if_none_match
        && tags.iter().any(|t| t == "*" || t == etag)
    {
        return Reply::empty(304).with("ETag", etag).with("Link", LDP_LINK);
    }
    let reply = if req.method == "HEAD" { Reply::empty(204) } else { Reply::turtle(200, body()) };
    reply.with("ETag", etag).with("Link", LDP_LINK)
}

// ---------------------------------------------------------------------------------------------
// RDF helpers

fn org_iri(o: &str) -> String {
    format!("{ROOT}/orgs/{o}")
}
fn repo_iri(o: &str, r: &str) -> String {
    format!("{ROOT}/orgs/{o}/repos/{r}")
}
fn branch_iri(o: &str, r: &str, b: &str) -> String {
    format!("{ROOT}/orgs/{o}/repos/{r}/branches/{b}")
}
fn commit_iri(o: &str, r: &str, c: &str) -> String {
    format!("{ROOT}/orgs/{o}/repos/{r}/commits/{c}")
}

/// Prefixes written in response bodies.
const OUT_PREFIXES: [(&str, &str); 4] = [
    ("rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
    ("dct", DCT),
    ("mms", MMS),
];

/// §0: the server's prefixes, prepended to PUT bodies, so `dct:`, `mms:`… need no declaration.
/// `mor-commit:`/`mor-branch:` are relative to the repository of `iri` (as in `T/BranchCreate.kt`).
fn input_prefixes(iri: &str) -> Vec<(String, String)> {
    let repo = iri.split("/branches/").next().unwrap_or(iri);
    let fixed = [
        ("rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"),
        ("rdfs", "http://www.w3.org/2000/01/rdf-schema#"),
        ("owl", "http://www.w3.org/2002/07/owl#"),
        ("xsd", "http://www.w3.org/2001/XMLSchema#"),
        ("dct", DCT),
        ("foaf", "http://xmlns.com/foaf/0.1/"),
        ("sh", "http://www.w3.org/ns/shacl#"),
        ("mms", MMS),
        ("mms-txn", "https://mms.openmbee.org/rdf/ontology/txn."),
        ("mms-object", "https://mms.openmbee.org/rdf/objects/"),
        ("mms-datatype", "https://mms.openmbee.org/rdf/datatypes/"),
    ];
    let mut all: Vec<(String, String)> = fixed.iter().map(|(p, ns)| (p.to_string(), ns.to_string())).collect();
    all.push(("m".into(), format!("{ROOT}/")));
    all.push(("m-org".into(), format!("{ROOT}/orgs/")));
    all.push(("m-user".into(), format!("{ROOT}/users/")));
    all.push(("mor-commit".into(), format!("{repo}/commits/")));
    all.push(("mor-branch".into(), format!("{repo}/branches/")));
    all
}

/// Parses a PUT body as Turtle with the server prefixes prepended and `<>` = the resource IRI.
/// §0: malformed Turtle → 500; restricted namespaces → 400, except `rdf:type` = the expected class
/// and `mms:id` = the path id (which the server sets itself) and, for branches, `mms:ref`/`mms:commit`.
fn parse_put_body(body: &str, iri: &str, class: &str, id: &str) -> Result<Vec<Triple>, Reply> {
    let mut doc = String::new();
    for (p, ns) in input_prefixes(iri) {
        let _ = writeln!(doc, "@prefix {p}: <{ns}> .");
    }
    doc.push_str(body);
    let parser = RdfParser::from_format(RdfFormat::Turtle).with_base_iri(iri).expect("valid base IRI");
    let mut kept = Vec::new();
    for quad in parser.for_slice(doc.as_bytes()) {
        let triple = match quad {
            Ok(q) => Triple::from(q),
            Err(e) => return Err(Reply::error(500, "org.apache.jena.riot.RiotException", &e.to_string())),
        };
        let p = triple.predicate.as_str();
        if !RESTRICTED.iter().any(|ns| p.starts_with(ns)) {
            kept.push(triple);
            continue;
        }
        let allowed_value = match &triple.object {
            Term::NamedNode(n) if p == rdf::TYPE.as_str() => n.as_str() == class,
            Term::Literal(l) if p == format!("{MMS}id") => l.value() == id,
            _ => false,
        };
        if p == format!("{MMS}ref") || p == format!("{MMS}commit") {
            kept.push(triple);
        } else if !allowed_value {
            return Err(Reply::http_error(400, &format!("Restricted predicate <{p}> may not be set")));
        }
    }
    Ok(kept)
}

fn new_meta(existing: Option<&Meta>, user: &str, triples: Vec<Triple>) -> Meta {
    Meta {
        etag: uuid(),
        created: existing.map_or_else(now_xsd, |m| m.created.clone()),
        created_by: existing.map_or_else(|| user.to_string(), |m| m.created_by.clone()),
        triples,
    }
}

fn node(iri: impl Into<String>) -> NamedNode {
    NamedNode::new_unchecked(iri)
}
fn mms(local: &str) -> NamedNode {
    node(format!("{MMS}{local}"))
}
fn string(value: &str) -> Term {
    Literal::new_simple_literal(value).into()
}
fn date_time(value: &str) -> Term {
    Literal::new_typed_literal(value, xsd::DATE_TIME).into()
}

/// The triples every LDP resource description starts with.
fn described(iri: &str, class: &str, id: &str, meta: &Meta) -> Vec<Triple> {
    let s = node(iri);
    let mut out = vec![
        Triple::new(s.clone(), rdf::TYPE, mms(class)),
        Triple::new(s.clone(), mms("id"), string(id)),
        Triple::new(s.clone(), mms("etag"), string(&meta.etag)),
        Triple::new(s.clone(), mms("created"), date_time(&meta.created)),
        Triple::new(s, mms("createdBy"), node(format!("{ROOT}/users/{}", meta.created_by))),
    ];
    out.extend(meta.triples.iter().cloned());
    out
}

fn org_triples(o: &str, meta: &Meta) -> Vec<Triple> {
    described(&org_iri(o), "Org", o, meta)
}

fn repo_triples(o: &str, r: &str, meta: &Meta) -> Vec<Triple> {
    let mut out = described(&repo_iri(o, r), "Repo", r, meta);
    out.push(Triple::new(node(repo_iri(o, r)), mms("org"), node(org_iri(o))));
    out
}

/// §1 GET branch: `mms:commit` = head commit, `mms:etag`, `dct:title`, `mms:created`…
fn branch_triples(o: &str, r: &str, b: &str, branch: &Branch) -> Vec<Triple> {
    let mut out = described(&branch_iri(o, r, b), "Branch", b, &branch.meta);
    out.push(Triple::new(node(branch_iri(o, r, b)), mms("commit"), node(commit_iri(o, r, &branch.commit))));
    out
}

/// §3 step 4: the commit description (`mms:message` is always "").
fn commit_triples(o: &str, r: &str, id: &str, c: &Commit) -> Vec<Triple> {
    let s = node(commit_iri(o, r, id));
    let parent: Term = match &c.parent {
        Some(p) => node(commit_iri(o, r, p)).into(),
        None => rdf::NIL.into_owned().into(),
    };
    vec![
        Triple::new(s.clone(), rdf::TYPE, mms("Commit")),
        Triple::new(s.clone(), mms("id"), string(id)),
        // §1: the root commit's etag is `<txn>0`; other commits use their id.
        Triple::new(s.clone(), mms("etag"), string(&if c.root { format!("{id}0") } else { id.to_string() })),
        Triple::new(s.clone(), mms("parent"), parent),
        Triple::new(s.clone(), mms("submitted"), date_time(&c.submitted)),
        Triple::new(s.clone(), mms("createdBy"), node(format!("{ROOT}/users/{}", c.created_by))),
        Triple::new(s.clone(), mms("message"), string("")),
        Triple::new(s, mms("data"), node(format!("{}/data/", commit_iri(o, r, id)))),
    ]
}

fn copy_store(triples: impl IntoIterator<Item = Triple>) -> Store {
    let store = Store::new().expect("in-memory store");
    store.extend(triples.into_iter().map(|t| t.in_graph(GraphName::DefaultGraph))).expect("insert into memory store");
    store
}

/// The model (default graph), sorted so that responses are stable.
fn sorted_triples(store: &Store) -> Vec<Triple> {
    let mut triples: Vec<Triple> = store
        .quads_for_pattern(None, None, None, Some(GraphNameRef::DefaultGraph))
        .filter_map(Result::ok)
        .map(Triple::from)
        .collect();
    triples.sort_by_key(|t| t.to_string());
    triples
}

/// Turtle with the response prefixes. oxttl writes prefixes only before the first triple, so an
/// empty graph gets its prefix lines written here (§1: an empty model → PREFIX lines only).
fn turtle(triples: &[Triple]) -> String {
    if triples.is_empty() {
        return OUT_PREFIXES.iter().map(|(p, iri)| format!("@prefix {p}: <{iri}> .\n")).collect();
    }
    let mut serializer = RdfSerializer::from_format(RdfFormat::Turtle);
    for (p, iri) in OUT_PREFIXES {
        serializer = serializer.with_prefix(p, iri).expect("valid prefix");
    }
    let mut writer = serializer.for_writer(Vec::new());
    for t in triples {
        writer.serialize_triple(t).expect("write to memory");
    }
    String::from_utf8(writer.finish().expect("write to memory")).expect("Turtle is UTF-8")
}

/// SELECT/ASK results as `application/sparql-results+json` (§2).
fn results_json(results: QueryResults<'_>) -> Result<Vec<u8>, String> {
    let serializer = QueryResultsSerializer::from_format(QueryResultsFormat::Json);
    match results {
        QueryResults::Boolean(value) => {
            serializer.serialize_boolean_to_writer(Vec::new(), value).map_err(|e| e.to_string())
        }
        QueryResults::Solutions(solutions) => {
            let mut writer = serializer
                .serialize_solutions_to_writer(Vec::new(), solutions.variables().to_vec())
                .map_err(|e| e.to_string())?;
            for solution in solutions {
                let solution = solution.map_err(|e| e.to_string())?;
                writer.serialize(&solution).map_err(|e| e.to_string())?;
            }
            writer.finish().map_err(|e| e.to_string())
        }
        QueryResults::Graph(_) => Err("not a SELECT or ASK query".into()),
    }
}

// ---------------------------------------------------------------------------------------------
// SPARQL protocol helpers

/// The query/update text from a SPARQL protocol request (§2, §3): the raw body for `media`, the
/// `param` field of a form body, or (queries only) the URL parameter; anything else → 415.
fn sparql_text(req: &Incoming, media: &str, param: &str) -> Result<String, Reply> {
    match (req.method.as_str(), req.content_type().as_str()) {
        ("POST", ct) if ct == media => Ok(req.body.clone()),
        ("POST", "application/x-www-form-urlencoded") => Ok(form_value(&req.body, param).unwrap_or_default()),
        ("GET", _) if param == "query" => Ok(req.query_param(param).unwrap_or_default()),
        _ => Err(Reply::http_error(415, "Unsupported Media Type")),
    }
}

enum UpdateScan {
    /// The update text to run, with `WITH <g>` and `USING [NAMED] <g>` blanked out.
    Allowed(String),
    /// The first refused keyword, upper case.
    Forbidden(String),
}

/// §3 step 3, applied to an update that already parsed: refuses `GRAPH` anywhere (and SERVICE,
/// LATERAL) and the graph-management operations; drops WITH and USING clauses. oxigraph does not
/// expose the update algebra, so this walks the SPARQL tokens, skipping strings, IRIs, comments,
/// variables, language tags and prefixed names (a bare word can then only be a keyword).
fn scan_update(text: &str) -> UpdateScan {
    const FORBIDDEN: [&str; 10] =
        ["GRAPH", "SERVICE", "LATERAL", "LOAD", "CLEAR", "DROP", "CREATE", "ADD", "MOVE", "COPY"];
    let tokens = sparql_tokens(text);
    let mut out = text.as_bytes().to_vec();
    let mut blank = |tok: &Token| out[tok.start..tok.end].iter_mut().for_each(|b| *b = b' ');
    let mut i = 0;
    while i < tokens.len() {
        let tok = &tokens[i];
        if tok.kind == Kind::Word {
            let word = text[tok.start..tok.end].to_ascii_uppercase();
            if FORBIDDEN.contains(&word.as_str()) {
                return UpdateScan::Forbidden(word);
            }
            if word == "WITH" || word == "USING" {
                blank(tok);
                let mut j = i + 1;
                if word == "USING" && tokens.get(j).is_some_and(|t| text[t.start..t.end].eq_ignore_ascii_case("NAMED"))
                {
                    blank(&tokens[j]);
                    j += 1;
                }
                if let Some(iri) = tokens.get(j).filter(|t| t.kind == Kind::Iri || t.kind == Kind::PrefixedName) {
                    blank(iri);
                    j += 1;
                }
                i = j;
                continue;
            }
        }
        i += 1;
    }
    UpdateScan::Allowed(String::from_utf8(out).expect("only ASCII bytes were replaced"))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Word,
    PrefixedName,
    Iri,
}

struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

fn sparql_tokens(text: &str) -> Vec<Token> {
    let b = text.as_bytes();
    let is_word =
        |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':' | b'%' | b'\\') || c >= 0x80;
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            q @ (b'"' | b'\'') => {
                let long = b[i..].starts_with(&[q, q, q]);
                i += if long { 3 } else { 1 };
                while i < b.len() {
                    if b[i] == b'\\' {
                        i += 2;
                    } else if long && b[i..].starts_with(&[q, q, q]) {
                        i += 3;
                        break;
                    } else if !long && b[i] == q {
                        i += 1;
                        break;
                    } else {
                        i += 1;
                    }
                }
            }
            b'<' => {
                // An IRIREF has no spaces or `<>"{}|^\``; otherwise this is the `<` operator.
                let end = b[i + 1..]
                    .iter()
                    .position(|&c| c == b'>' || c <= b' ' || b"<\"{}|^`\\".contains(&c))
                    .map(|p| i + 1 + p);
                match end {
                    Some(e) if b[e] == b'>' => {
                        tokens.push(Token { kind: Kind::Iri, start: i, end: e + 1 });
                        i = e + 1;
                    }
                    _ => i += 1,
                }
            }
            b'?' | b'$' | b'@' => {
                i += 1;
                while i < b.len() && (is_word(b[i]) && b[i] != b'.' && b[i] != b':') {
                    i += 1;
                }
            }
            c if is_word(c) => {
                let start = i;
                while i < b.len() && is_word(b[i]) {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                let mut end = i.min(b.len());
                while end > start && b[end - 1] == b'.' {
                    end -= 1; // a trailing dot ends the triple, it is not part of the name
                }
                let kind = if text[start..end].contains(':') { Kind::PrefixedName } else { Kind::Word };
                tokens.push(Token { kind, start, end });
            }
            _ => i += 1,
        }
    }
    tokens
}

// ---------------------------------------------------------------------------------------------
// Small utilities (std only)

/// §0 IDs: `[._\pL0-9-]{3,256}`, not starting with `__` → else 400.
fn check_id(id: &str) -> Result<(), Reply> {
    let len = id.chars().count();
    let legal = (3..=256).contains(&len)
        && !id.starts_with("__")
        && id.chars().all(|c| c.is_alphabetic() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if legal { Ok(()) } else { Err(Reply::http_error(400, &format!("Invalid resource id: {id}"))) }
}

fn acceptable(accept: Option<&str>) -> bool {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else { return true };
    accept.split(',').any(|range| {
        let media = range.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        ACCEPTABLE.contains(&media.as_str())
    })
}

fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn percent_decode(s: &str) -> String {
    decode(s, false)
}

fn decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => match (b.get(i + 1).and_then(|&c| hex(c)), b.get(i + 2).and_then(|&c| hex(c))) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of `key` in an `application/x-www-form-urlencoded` string.
fn form_value(form: &str, key: &str) -> Option<String> {
    form.split('&').filter(|kv| !kv.is_empty()).find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (decode(k, true) == key).then(|| decode(v, true))
    })
}

fn random_u64() -> u64 {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(SEQ.fetch_add(1, Ordering::Relaxed));
    h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.finish()
}

fn random_hex() -> String {
    format!("{:016x}", random_u64())
}

/// A random (version 4 style) UUID, the shape of Layer 1 transaction ids.
fn uuid() -> String {
    let (a, b) = (random_u64(), random_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        ((b >> 48) & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// Now as an `xsd:dateTime` in UTC.
fn now_xsd() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        now.subsec_millis()
    )
}
