//! An in-process fake Kubernetes API server for tests (cargo feature `fake`).
//!
//! No real API server can run on the machines driftwatch is built and tested on, so tests of
//! response actions (this crate's, the response engine's, the CLI's) run against this fake. It
//! serves the real paths with the real JSON shapes for what [`KubeClient`](crate::KubeClient)
//! does, and records every request so tests can assert on what was sent:
//!
//! | path | methods |
//! | --- | --- |
//! | `/api/v1/namespaces/{ns}/pods/{name}` | GET, PATCH (merge patch), DELETE |
//! | `/api/v1/namespaces/{ns}/pods/{name}/eviction` | POST (`policy/v1` Eviction) |
//! | `/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies` | GET (list), POST |
//! | `/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies/{name}` | GET, PUT, PATCH, DELETE |
//!
//! Errors are `Status` objects as the API server sends them (`kind: Status`, `reason:
//! NotFound`, `AlreadyExists`, `Conflict`, `Unauthorized`, `code`). Where it is simpler than a
//! cluster: a deleted or evicted pod is gone at once (no graceful termination, no controller
//! recreating it), PATCH accepts only `application/merge-patch+json` (415 otherwise), and
//! objects are not validated beyond what the client's requests need (name, namespace,
//! `resourceVersion` on PUT, the Eviction's pod name). A delete's or an Eviction's
//! `preconditions.uid` is honoured as the API server does: 409 `Conflict` when the pod's uid
//! differs.
//!
//! ```
//! use driftwatch_kube::fake::FakeApi;
//!
//! let fake = FakeApi::with_token("s3cret");
//! fake.add_pod("shop", "web-1", &[("app", "web")]);
//! let client = fake.client();
//! client.delete_pod("shop", "web-1", Some(0), None).unwrap();
//! let req = &fake.requests()[0];
//! assert_eq!(req.method, "DELETE");
//! assert_eq!(req.path, "/api/v1/namespaces/shop/pods/web-1");
//! assert_eq!(req.body.as_ref().unwrap()["gracePeriodSeconds"], 0);
//! assert_eq!(req.authorization.as_deref(), Some("Bearer s3cret"));
//! assert!(fake.pod("shop", "web-1").is_none());
//! ```

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};

use crate::{KubeClient, KubeConfig};

/// A request as the fake received it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    /// The path without the query: `/api/v1/namespaces/shop/pods/web-1`.
    pub path: String,
    /// The query string without `?`, if there was one.
    pub query: Option<String>,
    pub content_type: Option<String>,
    /// The `Authorization` header, as sent (`Bearer ...`).
    pub authorization: Option<String>,
    /// The body parsed as JSON; `None` when it was empty or not JSON (see `body_text`).
    pub body: Option<Value>,
    pub body_text: String,
}

/// A running fake API server on `127.0.0.1`; stops when dropped.
pub struct FakeApi {
    addr: SocketAddr,
    token: Option<String>,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct State {
    token: Option<String>,
    /// (namespace, name) -> object
    pods: BTreeMap<(String, String), Value>,
    policies: BTreeMap<(String, String), Value>,
    requests: Vec<RecordedRequest>,
    failures: Vec<Failure>,
    next_uid: u64,
    resource_version: u64,
}

struct Failure {
    method: String,
    path: String,
    remaining: u32,
    status: u16,
}

impl FakeApi {
    /// A fake that accepts any request, with or without a token.
    pub fn start() -> FakeApi {
        Self::spawn(None)
    }

    /// A fake that answers 401 to any request without `Authorization: Bearer <token>`.
    pub fn with_token(token: &str) -> FakeApi {
        Self::spawn(Some(token.to_owned()))
    }

    fn spawn(token: Option<String>) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("fake API: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake API: local address");
        let state = Arc::new(Mutex::new(State {
            token: token.clone(),
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("fake-kube-api".into())
                .spawn(move || serve(listener, &state, &stop))
                .expect("fake API: spawn thread")
        };
        FakeApi {
            addr,
            token,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A config for this fake, with its token if it has one.
    pub fn config(&self) -> KubeConfig {
        KubeConfig {
            token: self.token.clone(),
            timeout: Duration::from_secs(10),
            ..KubeConfig::new(self.url())
        }
    }

    /// A client for [`config`](Self::config).
    pub fn client(&self) -> KubeClient {
        KubeClient::new(self.config()).expect("fake API: client for a http://127.0.0.1 URL")
    }

    /// Adds a running pod with these labels and returns its UID.
    pub fn add_pod(&self, namespace: &str, name: &str, labels: &[(&str, &str)]) -> String {
        let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
        self.insert_pod(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": { "name": name, "namespace": namespace, "labels": labels },
            "spec": {
                "nodeName": "fake-node",
                "containers": [{ "name": "app", "image": "example.invalid/app:1" }],
            },
            "status": { "phase": "Running" },
        }))
    }

    /// Adds (or replaces) a pod given as JSON, which must have `metadata.namespace` and
    /// `metadata.name`; a UID, `resourceVersion` and `creationTimestamp` are added when
    /// missing. Returns the UID.
    pub fn insert_pod(&self, mut pod: Value) -> String {
        let key = object_key(&pod).expect("fake API: a pod needs metadata.namespace and .name");
        let mut state = self.lock();
        state.stamp(&mut pod);
        let uid = pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        state.pods.insert(key, pod);
        uid
    }

    /// Adds (or replaces) a NetworkPolicy given as JSON, as [`insert_pod`](Self::insert_pod).
    pub fn insert_network_policy(&self, mut policy: Value) {
        let key = object_key(&policy).expect("fake API: a policy needs metadata.namespace, .name");
        let mut state = self.lock();
        state.stamp(&mut policy);
        state.policies.insert(key, policy);
    }

    /// The pod as the fake holds it now.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<Value> {
        self.lock().pods.get(&key(namespace, name)).cloned()
    }

    /// The NetworkPolicy as the fake holds it now.
    pub fn network_policy(&self, namespace: &str, name: &str) -> Option<Value> {
        self.lock().policies.get(&key(namespace, name)).cloned()
    }

    /// Every NetworkPolicy in the namespace, by name.
    pub fn network_policies(&self, namespace: &str) -> Vec<Value> {
        self.lock()
            .policies
            .iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Answers the next `times` requests with this method and path (no query) with `status`
    /// and a matching `Status` object, before any other check but the token's. A 429 on an
    /// eviction path carries the API server's PodDisruptionBudget message.
    pub fn fail(&self, method: &str, path: &str, times: u32, status: u16) {
        self.lock().failures.push(Failure {
            method: method.to_owned(),
            path: path.to_owned(),
            remaining: times,
            status,
        });
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Every request received so far, and forgets them.
    pub fn take_requests(&self) -> Vec<RecordedRequest> {
        std::mem::take(&mut self.lock().requests)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // wake the accept() so the thread sees the flag
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // a panicking test thread must not hide the state from the others
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn key(namespace: &str, name: &str) -> (String, String) {
    (namespace.to_owned(), name.to_owned())
}

fn object_key(obj: &Value) -> Option<(String, String)> {
    let meta = &obj["metadata"];
    Some(key(meta["namespace"].as_str()?, meta["name"].as_str()?))
}

impl State {
    /// Fills in what the API server sets on create.
    fn stamp(&mut self, obj: &mut Value) {
        if obj["metadata"]["uid"].as_str().is_none() {
            self.next_uid += 1;
            obj["metadata"]["uid"] =
                json!(format!("00000000-0000-4000-8000-{:012x}", self.next_uid));
        }
        if obj["metadata"]["creationTimestamp"].is_null() {
            obj["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        self.bump(obj);
    }

    fn bump(&mut self, obj: &mut Value) {
        self.resource_version += 1;
        obj["metadata"]["resourceVersion"] = json!(self.resource_version.to_string());
    }
}

const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

fn serve(listener: TcpListener, state: &Mutex<State>, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(conn) = conn else { continue };
        // one request per connection (`Connection: close`), handled in turn: tests are
        // sequential, and a fake that serialises requests has no races of its own
        let _ = handle(conn, state);
    }
}

fn handle(conn: TcpStream, state: &Mutex<State>) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let Some(req) = read_request(&mut reader)? else {
        return Ok(());
    };
    let (status, body) = respond(&mut lock(state), req);
    let mut conn = conn;
    let body = body.to_string();
    write!(
        conn,
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        reason_phrase(status),
        body.len(),
    )?;
    conn.flush()
}

/// Reads one HTTP/1.1 request; `None` for a connection closed before a request line.
fn read_request(reader: &mut impl BufRead) -> io::Result<Option<RecordedRequest>> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_owned());
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(bad("bad request line"));
    };
    let (method, target) = (method.to_owned(), target.to_owned());
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut head = line.len();
    loop {
        line.clear();
        head += reader.read_line(&mut line)?;
        if head > MAX_HEAD_BYTES {
            return Err(bad("headers too large"));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        let (name, value) = l.split_once(':').ok_or_else(|| bad("bad header"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let body = if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        read_chunked(reader)?
    } else {
        let len: usize = header("content-length")
            .map(|l| l.parse().map_err(|_| bad("bad Content-Length")))
            .transpose()?
            .unwrap_or(0);
        if len > MAX_BODY_BYTES {
            return Err(bad("body too large"));
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        body
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (target, None),
    };
    let body_text = String::from_utf8_lossy(&body).into_owned();
    Ok(Some(RecordedRequest {
        method,
        path,
        query,
        content_type: header("content-type"),
        authorization: header("authorization"),
        body: serde_json::from_slice(&body).ok(),
        body_text,
    }))
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_owned());
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let size = line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size, 16).map_err(|_| bad("bad chunk size"))?;
        if body.len() + size > MAX_BODY_BYTES {
            return Err(bad("body too large"));
        }
        if size == 0 {
            // trailers, up to the blank line
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf)?;
    }
}

/// The route a path names.
enum Route<'a> {
    Pod { ns: &'a str, name: &'a str },
    Eviction { ns: &'a str, name: &'a str },
    Policies { ns: &'a str },
    Policy { ns: &'a str, name: &'a str },
}

fn route(path: &str) -> Option<Route<'_>> {
    let segs: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    match segs.as_slice() {
        ["api", "v1", "namespaces", ns, "pods", name] => Some(Route::Pod { ns, name }),
        ["api", "v1", "namespaces", ns, "pods", name, "eviction"] => {
            Some(Route::Eviction { ns, name })
        }
        [
            "apis",
            "networking.k8s.io",
            "v1",
            "namespaces",
            ns,
            "networkpolicies",
        ] => Some(Route::Policies { ns }),
        [
            "apis",
            "networking.k8s.io",
            "v1",
            "namespaces",
            ns,
            "networkpolicies",
            name,
        ] => Some(Route::Policy { ns, name }),
        _ => None,
    }
}

/// The answer to one request, and its record.
fn respond(state: &mut State, req: RecordedRequest) -> (u16, Value) {
    state.requests.push(req.clone());
    if let Some(token) = &state.token
        && req.authorization.as_deref() != Some(format!("Bearer {token}").as_str())
    {
        return (401, status(401, "Unauthorized", "Unauthorized", None));
    }
    if let Some(f) = state
        .failures
        .iter_mut()
        .find(|f| f.remaining > 0 && f.method == req.method && f.path == req.path)
    {
        f.remaining -= 1;
        return injected(f.status, &req.path);
    }
    let method = req.method.as_str();
    match route(&req.path) {
        None => (
            404,
            status(
                404,
                "NotFound",
                "the server could not find the requested resource",
                None,
            ),
        ),
        Some(Route::Pod { ns, name }) => match method {
            "GET" => match state.pods.get(&key(ns, name)) {
                Some(pod) => (200, pod.clone()),
                None => not_found("pods", "", name),
            },
            "PATCH" => patch(state, &req, true, ns, name),
            "DELETE" => {
                if let Some(g) = req.body.as_ref().and_then(|b| b.get("gracePeriodSeconds"))
                    && g.as_i64().is_none_or(|g| g < 0)
                {
                    return invalid("DeleteOptions", "gracePeriodSeconds must be >= 0");
                }
                if let Some(refused) = uid_precondition(state, req.body.as_ref(), ns, name) {
                    return refused;
                }
                match state.pods.remove(&key(ns, name)) {
                    Some(pod) => (200, pod),
                    None => not_found("pods", "", name),
                }
            }
            _ => method_not_allowed(),
        },
        Some(Route::Eviction { ns, name }) => match method {
            "POST" => evict(state, &req, ns, name),
            _ => method_not_allowed(),
        },
        Some(Route::Policies { ns }) => match method {
            "GET" => {
                let items: Vec<Value> = state
                    .policies
                    .iter()
                    .filter(|((n, _), _)| n == ns)
                    .map(|(_, p)| p.clone())
                    .collect();
                let list = json!({
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicyList",
                    "metadata": { "resourceVersion": state.resource_version.to_string() },
                    "items": items,
                });
                (200, list)
            }
            "POST" => create_policy(state, &req, ns),
            _ => method_not_allowed(),
        },
        Some(Route::Policy { ns, name }) => match method {
            "GET" => match state.policies.get(&key(ns, name)) {
                Some(p) => (200, p.clone()),
                None => not_found("networkpolicies", "networking.k8s.io", name),
            },
            "PUT" => replace_policy(state, &req, ns, name),
            "PATCH" => patch(state, &req, false, ns, name),
            "DELETE" => match state.policies.remove(&key(ns, name)) {
                Some(_) => (
                    200,
                    success(200, name, "networkpolicies", "networking.k8s.io"),
                ),
                None => not_found("networkpolicies", "networking.k8s.io", name),
            },
            _ => method_not_allowed(),
        },
    }
}

fn json_body(req: &RecordedRequest) -> Result<&Value, (u16, Value)> {
    let ct = req.content_type.as_deref().unwrap_or_default();
    if !ct.starts_with("application/json") {
        return Err((
            415,
            status(
                415,
                "UnsupportedMediaType",
                &format!("the body of the request was in an unknown format ({ct:?})"),
                None,
            ),
        ));
    }
    req.body.as_ref().ok_or_else(|| {
        (
            400,
            status(400, "BadRequest", "the request body is not JSON", None),
        )
    })
}

fn patch(
    state: &mut State,
    req: &RecordedRequest,
    pod: bool,
    ns: &str,
    name: &str,
) -> (u16, Value) {
    let ct = req.content_type.as_deref().unwrap_or_default();
    if ct != crate::MERGE_PATCH {
        return (
            415,
            status(
                415,
                "UnsupportedMediaType",
                &format!(
                    "the fake API server takes only {} patches, not {ct:?}",
                    crate::MERGE_PATCH
                ),
                None,
            ),
        );
    }
    let Some(patch) = &req.body else {
        return (
            400,
            status(400, "BadRequest", "the patch is not JSON", None),
        );
    };
    let (map, resource, group) = if pod {
        (&mut state.pods, "pods", "")
    } else {
        (&mut state.policies, "networkpolicies", "networking.k8s.io")
    };
    let Some(mut obj) = map.get(&key(ns, name)).cloned() else {
        return not_found(resource, group, name);
    };
    merge_patch(&mut obj, patch);
    state.bump(&mut obj);
    let map = if pod {
        &mut state.pods
    } else {
        &mut state.policies
    };
    map.insert(key(ns, name), obj.clone());
    (200, obj)
}

/// `DeleteOptions.preconditions.uid`, as the API server checks it: a pod whose uid differs
/// is not deleted, and the answer is 409 Conflict with the server's own wording.
fn uid_precondition(
    state: &State,
    options: Option<&Value>,
    ns: &str,
    name: &str,
) -> Option<(u16, Value)> {
    let want = options?.get("preconditions")?.get("uid")?.as_str()?;
    let pod = state.pods.get(&key(ns, name))?;
    let have = pod["metadata"]["uid"].as_str().unwrap_or_default();
    (want != have).then(|| {
        let message = format!(
            "Operation cannot be fulfilled on pods \"{name}\": Precondition failed: UID in precondition: {want}, UID in object meta: {have}"
        );
        (409, status(409, "Conflict", &message, None))
    })
}

fn evict(state: &mut State, req: &RecordedRequest, ns: &str, name: &str) -> (u16, Value) {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(e) => return e,
    };
    if body["kind"] != "Eviction" || body["apiVersion"] != "policy/v1" {
        return (
            400,
            status(
                400,
                "BadRequest",
                "the body is not a policy/v1 Eviction",
                None,
            ),
        );
    }
    if body["metadata"]["name"] != name {
        return (
            400,
            status(
                400,
                "BadRequest",
                "name in URL does not match name in Eviction object",
                None,
            ),
        );
    }
    if let Some(refused) = uid_precondition(state, Some(&body["deleteOptions"]), ns, name) {
        return refused;
    }
    match state.pods.remove(&key(ns, name)) {
        Some(_) => (201, success(201, name, "pods", "")),
        None => not_found("pods", "", name),
    }
}

fn create_policy(state: &mut State, req: &RecordedRequest, ns: &str) -> (u16, Value) {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let Some(name) = body["metadata"]["name"].as_str().filter(|n| !n.is_empty()) else {
        return invalid(
            "NetworkPolicy",
            "metadata.name: Required value: name is required",
        );
    };
    if body["metadata"]["namespace"]
        .as_str()
        .is_some_and(|n| n != ns)
    {
        return namespace_mismatch();
    }
    if state.policies.contains_key(&key(ns, name)) {
        let message = format!("networkpolicies.networking.k8s.io \"{name}\" already exists");
        let details =
            json!({ "name": name, "group": "networking.k8s.io", "kind": "networkpolicies" });
        return (409, status(409, "AlreadyExists", &message, Some(details)));
    }
    let mut policy = body.clone();
    policy["metadata"]["namespace"] = json!(ns);
    state.stamp(&mut policy);
    state.policies.insert(key(ns, name), policy.clone());
    (201, policy)
}

fn replace_policy(state: &mut State, req: &RecordedRequest, ns: &str, name: &str) -> (u16, Value) {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(e) => return e,
    };
    if body["metadata"]["name"] != name {
        return (
            400,
            status(
                400,
                "BadRequest",
                "the name of the object does not match the name on the URL",
                None,
            ),
        );
    }
    if body["metadata"]["namespace"]
        .as_str()
        .is_some_and(|n| n != ns)
    {
        return namespace_mismatch();
    }
    let Some(current) = state.policies.get(&key(ns, name)) else {
        return not_found("networkpolicies", "networking.k8s.io", name);
    };
    let sent = &body["metadata"]["resourceVersion"];
    if !sent.is_null() && *sent != current["metadata"]["resourceVersion"] {
        let message = format!(
            "Operation cannot be fulfilled on networkpolicies.networking.k8s.io \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
        );
        return (409, status(409, "Conflict", &message, None));
    }
    let mut policy = body.clone();
    policy["metadata"]["namespace"] = json!(ns);
    policy["metadata"]["uid"] = current["metadata"]["uid"].clone();
    policy["metadata"]["creationTimestamp"] = current["metadata"]["creationTimestamp"].clone();
    state.bump(&mut policy);
    state.policies.insert(key(ns, name), policy.clone());
    (200, policy)
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let Value::Object(obj) = target else { return };
    for (k, v) in patch {
        if v.is_null() {
            obj.remove(k);
        } else {
            merge_patch(obj.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

fn status(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut s = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(d) = details {
        s["details"] = d;
    }
    s
}

fn success(code: u16, name: &str, kind: &str, group: &str) -> Value {
    let mut details = json!({ "name": name, "kind": kind });
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
        "code": code,
    })
}

fn not_found(resource: &str, group: &str, name: &str) -> (u16, Value) {
    let qualified = if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    };
    let mut details = json!({ "name": name, "kind": resource });
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    let message = format!("{qualified} \"{name}\" not found");
    (404, status(404, "NotFound", &message, Some(details)))
}

fn invalid(kind: &str, message: &str) -> (u16, Value) {
    let message = format!("{kind} is invalid: {message}");
    (422, status(422, "Invalid", &message, None))
}

fn namespace_mismatch() -> (u16, Value) {
    let message =
        "the namespace of the provided object does not match the namespace sent on the request";
    (400, status(400, "BadRequest", message, None))
}

fn method_not_allowed() -> (u16, Value) {
    let message = "the server does not allow this method on the requested resource";
    (405, status(405, "MethodNotAllowed", message, None))
}

fn injected(code: u16, path: &str) -> (u16, Value) {
    if code == 429 && path.ends_with("/eviction") {
        let details = json!({ "causes": [{
            "reason": "DisruptionBudget",
            "message": "The disruption budget fake-pdb needs 1 healthy pods and has 1 currently",
        }]});
        let message = "Cannot evict pod as it would violate the pod's disruption budget.";
        return (429, status(429, "TooManyRequests", message, Some(details)));
    }
    let reason = match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    };
    (
        code,
        status(code, reason, &format!("injected failure ({code})"), None),
    )
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc7386() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}}));
        let mut doc = json!({"a": [1]});
        merge_patch(&mut doc, &json!({"a": {"b": "c"}, "n": {"x": null}}));
        assert_eq!(doc, json!({"a": {"b": "c"}, "n": {}}));
    }

    #[test]
    fn reads_content_length_and_chunked_requests() {
        let raw = b"POST /x?y=1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
        let req = read_request(&mut &raw[..]).unwrap().unwrap();
        assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/x"));
        assert_eq!(req.query.as_deref(), Some("y=1"));
        assert_eq!(req.body, Some(json!({"a": 1})));

        let raw = b"PATCH /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=y\r\n\":2}\r\n0\r\n\r\n";
        let req = read_request(&mut &raw[..]).unwrap().unwrap();
        assert_eq!(req.body, Some(json!({"a": 2})));
        assert_eq!(req.content_type, None);

        assert!(read_request(&mut &b""[..]).unwrap().is_none());
    }
}
