//! The blocking client: one HTTP request per API call, no retries (the caller's `on_failure`
//! policy decides), every path built from checked names.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use ureq::http;
use ureq::tls::{ClientCert, RootCerts, TlsConfig};

use crate::config::{ConfigError, KubeConfig, check_server, parse_certificates, parse_private_key};
use crate::error::KubeError;
use crate::names::{check_namespace, check_pod, isolation_policy_name};
use crate::objects::{
    self, ISOLATION_LABEL, MERGE_PATCH, Pod, Status, delete_options, eviction, is_isolation_spec,
    isolation_policy, label_patch,
};

const JSON: &str = "application/json";
/// A response body larger than this is refused: pods and policies are kilobytes.
const MAX_BODY_BYTES: u64 = 8 * 1024 * 1024;
/// How much of a non-`Status` error body an error message keeps.
const MAX_ERROR_TEXT: usize = 300;

/// A Kubernetes API client for response actions on pods. Cheap to clone (the connection pool
/// is shared); safe to use from several threads.
#[derive(Clone)]
pub struct KubeClient {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
    token_file: Option<PathBuf>,
}

impl std::fmt::Debug for KubeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeClient")
            .field("server", &self.base)
            .finish_non_exhaustive()
    }
}

impl KubeClient {
    /// A client for `cfg`. Fails on a server that is no http(s) URL, on CA or client
    /// certificates that do not parse, and on a bearer token that would travel over plain
    /// http to anything but a loopback address.
    pub fn new(cfg: KubeConfig) -> Result<Self, ConfigError> {
        let server_err = |message: String| ConfigError::Server {
            server: cfg.server.clone(),
            message,
        };
        check_server(&cfg.server).map_err(server_err)?;
        let loopback = is_loopback(&cfg.server);
        let has_token = cfg.token.is_some() || cfg.token_file.is_some();
        if cfg.server.starts_with("http://") && has_token && !loopback {
            return Err(server_err(
                "a bearer token is sent over plain http only to a loopback address; use https"
                    .into(),
            ));
        }

        let mut tls = TlsConfig::builder().disable_verification(cfg.insecure);
        if let Some(ca) = &cfg.ca_pem {
            let certs = parse_certificates(ca).map_err(|message| ConfigError::Pem {
                what: "CA certificate",
                message,
            })?;
            tls = tls.root_certs(RootCerts::from(certs));
        }
        if let Some(cc) = &cfg.client_cert {
            let certs = parse_certificates(&cc.cert_pem).map_err(|message| ConfigError::Pem {
                what: "client certificate",
                message,
            })?;
            let key = parse_private_key(&cc.key_pem).map_err(|message| ConfigError::Pem {
                what: "client key",
                message,
            })?;
            tls = tls.client_cert(Some(ClientCert::new_with_certs(&certs, key)));
        }

        let mut config = ureq::Agent::config_builder()
            // 4xx/5xx are answers to decode, not transport errors
            .http_status_as_error(false)
            // the API server does not redirect; following one could carry the token elsewhere
            .max_redirects(0)
            .timeout_global(Some(cfg.timeout))
            .user_agent(concat!("driftwatch/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build());
        if loopback {
            // as Go's client does: never send loopback traffic through an HTTP(S)_PROXY
            config = config.proxy(None);
        }
        Ok(KubeClient {
            agent: ureq::Agent::new_with_config(config.build()),
            base: cfg.server.trim_end_matches('/').to_owned(),
            token: cfg.token,
            token_file: cfg.token_file,
        })
    }

    /// The server this client talks to.
    pub fn server(&self) -> &str {
        &self.base
    }

    /// `GET /api/v1/namespaces/{namespace}/pods/{pod}`.
    pub fn get_pod(&self, namespace: &str, pod: &str) -> Result<Pod, KubeError> {
        let path = pod_path(namespace, pod)?;
        let body = self.call("GET", &path, None)?;
        objects::parse_pod(&body).map_err(|e| KubeError::Decode {
            request: format!("GET {path}"),
            message: format!("not a Pod: {e}"),
        })
    }

    /// Cuts the pod off the network with a deny-all NetworkPolicy, and returns the policy's
    /// name ([`isolation_policy_name`]).
    ///
    /// Reads the pod, labels it `driftwatch.io/isolated=<pod uid>` (a merge patch; skipped
    /// when the label is already there) and creates a `networking.k8s.io/v1` NetworkPolicy
    /// selecting that label, with `policyTypes: [Ingress, Egress]` and no rules. The label is
    /// what makes the policy select this pod alone: a ReplicaSet's pods share all their other
    /// labels. Adding a label does not take the pod out of its ReplicaSet.
    ///
    /// Idempotent: when the policy already exists (409) and is that deny-all for this pod, it
    /// is success; when it exists with another spec (edited by hand, or left from an earlier
    /// pod of the same name, whose UID differed) it is replaced. A `hostNetwork` pod is refused
    /// ([`KubeError::HostNetwork`]) before anything changes. The policy is enforced only where
    /// the cluster's network plugin enforces NetworkPolicies.
    pub fn isolate_pod(&self, namespace: &str, pod: &str) -> Result<String, KubeError> {
        let pod_path = pod_path(namespace, pod)?;
        let found = self.get_pod(namespace, pod)?;
        if found.host_network {
            return Err(KubeError::HostNetwork {
                namespace: namespace.to_owned(),
                pod: pod.to_owned(),
            });
        }
        if found.labels.get(ISOLATION_LABEL) != Some(&found.uid) {
            let labels = BTreeMap::from([(ISOLATION_LABEL.to_owned(), Some(found.uid.clone()))]);
            self.call(
                "PATCH",
                &pod_path,
                Some((MERGE_PATCH, &label_patch(&labels))),
            )?;
        }

        let name = isolation_policy_name(pod);
        let policy = isolation_policy(namespace, &name, pod, &found.uid);
        let collection = policies_path(namespace);
        match self.call("POST", &collection, Some((JSON, &policy))) {
            Ok(_) => Ok(name),
            Err(e) if e.status() == Some(409) => {
                let path = format!("{collection}/{name}");
                let body = self.call("GET", &path, None)?;
                let existing: Value =
                    serde_json::from_slice(&body).map_err(|e| KubeError::Decode {
                        request: format!("GET {path}"),
                        message: e.to_string(),
                    })?;
                if is_isolation_spec(&existing["spec"], &found.uid) {
                    return Ok(name);
                }
                let mut replacement = policy;
                replacement["metadata"]["resourceVersion"] =
                    existing["metadata"]["resourceVersion"].clone();
                self.call("PUT", &path, Some((JSON, &replacement)))?;
                Ok(name)
            }
            Err(e) => Err(e),
        }
    }

    /// Undoes [`isolate_pod`](Self::isolate_pod): deletes the NetworkPolicy and removes the
    /// label. A policy or pod that is already gone (404) is success.
    pub fn release_pod(&self, namespace: &str, pod: &str) -> Result<(), KubeError> {
        let pod_path = pod_path(namespace, pod)?;
        let policy_path = format!(
            "{}/{}",
            policies_path(namespace),
            isolation_policy_name(pod)
        );
        ok_if_not_found(self.call("DELETE", &policy_path, None))?;
        let labels = BTreeMap::from([(ISOLATION_LABEL.to_owned(), None)]);
        ok_if_not_found(self.call(
            "PATCH",
            &pod_path,
            Some((MERGE_PATCH, &label_patch(&labels))),
        ))
    }

    /// Deletes the pod, so that its controller (if any: see [`Pod::owners`]) recreates it from
    /// the image. `grace_period_seconds`: `Some(0)` kills at once, `None` uses the pod's own
    /// `terminationGracePeriodSeconds`. Sent as a `DeleteOptions` body. Bypasses
    /// PodDisruptionBudgets; see [`evict_pod`](Self::evict_pod). `uid`: delete only the pod
    /// of that uid (`preconditions.uid`): a pod recreated under the same name, or a name
    /// that was never the uid's, is left alone (409 Conflict).
    pub fn delete_pod(
        &self,
        namespace: &str,
        pod: &str,
        grace_period_seconds: Option<u32>,
        uid: Option<&str>,
    ) -> Result<(), KubeError> {
        let path = pod_path(namespace, pod)?;
        let body = delete_options(grace_period_seconds, uid);
        self.call("DELETE", &path, Some((JSON, &body))).map(drop)
    }

    /// Evicts the pod through the Eviction API, which respects PodDisruptionBudgets: a refusal
    /// because of one (429) is [`KubeError::EvictionBlocked`]. `uid`: the same precondition
    /// as [`delete_pod`](Self::delete_pod)'s.
    pub fn evict_pod(
        &self,
        namespace: &str,
        pod: &str,
        uid: Option<&str>,
    ) -> Result<(), KubeError> {
        let path = format!("{}/eviction", pod_path(namespace, pod)?);
        let body = eviction(namespace, pod, uid);
        match self.call("POST", &path, Some((JSON, &body))) {
            Ok(_) => Ok(()),
            Err(KubeError::Api {
                request,
                status: 429,
                message,
                ..
            }) => Err(KubeError::EvictionBlocked { request, message }),
            Err(e) => Err(e),
        }
    }

    /// Sets (`Some`) or removes (`None`) labels on the pod with a merge patch. The API server
    /// checks label keys and values (422 on a bad one). No request for an empty map.
    pub fn label_pod(
        &self,
        namespace: &str,
        pod: &str,
        labels: &BTreeMap<String, Option<String>>,
    ) -> Result<(), KubeError> {
        let path = pod_path(namespace, pod)?;
        if labels.is_empty() {
            return Ok(());
        }
        self.call("PATCH", &path, Some((MERGE_PATCH, &label_patch(labels))))
            .map(drop)
    }

    /// One request; a 2xx response's body, or the error the answer means.
    fn call(
        &self,
        method: &'static str,
        path: &str,
        body: Option<(&'static str, &Value)>,
    ) -> Result<Vec<u8>, KubeError> {
        let request = format!("{method} {path}");
        let transport = |source| KubeError::Transport {
            request: request.clone(),
            source,
        };
        let mut builder = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Accept", JSON);
        if let Some(token) = self.bearer_token()? {
            builder = builder.header("Authorization", format!("Bearer {token}"));
        }
        let response = match body {
            Some((content_type, value)) => {
                let bytes = serde_json::to_vec(value).map_err(|e| KubeError::Decode {
                    request: request.clone(),
                    message: format!("encoding the request body: {e}"),
                })?;
                let req = builder
                    .header("Content-Type", content_type)
                    .body(bytes)
                    .map_err(|e| transport(e.into()))?;
                self.agent.run(req)
            }
            None => {
                let req = builder.body(()).map_err(|e| transport(e.into()))?;
                self.agent.run(req)
            }
        };
        let mut response = response.map_err(transport)?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_vec()
            .map_err(transport)?;
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        let (reason, message) = match serde_json::from_slice::<Status>(&bytes) {
            Ok(s) if s.kind.as_deref() == Some("Status") => {
                (s.reason.unwrap_or_default(), s.message.unwrap_or_default())
            }
            _ => (String::new(), error_text(&bytes)),
        };
        Err(KubeError::Api {
            request,
            status,
            reason,
            message,
        })
    }

    fn bearer_token(&self) -> Result<Option<String>, KubeError> {
        match &self.token_file {
            Some(path) => std::fs::read_to_string(path)
                .map(|t| Some(t.trim().to_owned()))
                .map_err(|source| KubeError::TokenFile {
                    path: path.clone(),
                    source,
                }),
            None => Ok(self.token.clone()),
        }
    }
}

fn pod_path(namespace: &str, pod: &str) -> Result<String, KubeError> {
    check_namespace(namespace)?;
    check_pod(pod)?;
    Ok(format!("/api/v1/namespaces/{namespace}/pods/{pod}"))
}

/// The namespace must have been checked.
fn policies_path(namespace: &str) -> String {
    format!("/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies")
}

fn ok_if_not_found(result: Result<Vec<u8>, KubeError>) -> Result<(), KubeError> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

/// The start of a body that is no `Status`, printable.
fn error_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".into();
    }
    let mut cut: String = text.chars().take(MAX_ERROR_TEXT).collect();
    if cut.len() < text.len() {
        cut.push_str("...");
    }
    cut.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Whether the server's host is `localhost` or a loopback address.
fn is_loopback(server: &str) -> bool {
    let rest = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for yes in [
            "http://127.0.0.1:8080",
            "http://127.3.2.1",
            "http://localhost:1/x",
            "http://[::1]:6443",
        ] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in [
            "https://10.0.0.1:443",
            "http://127.0.0.1.example.com",
            "http://[fd00::1]:1",
            "http://kubernetes.default.svc",
        ] {
            assert!(!is_loopback(no), "{no}");
        }
    }

    #[test]
    fn token_over_plain_http_only_to_loopback() {
        let mut cfg = KubeConfig::new("http://10.0.0.1:8080");
        cfg.token = Some("t".into());
        let err = KubeClient::new(cfg.clone()).unwrap_err();
        assert!(
            err.to_string().contains("only to a loopback address"),
            "{err}"
        );
        cfg.token = None;
        KubeClient::new(cfg).unwrap();
        let mut local = KubeConfig::new("http://127.0.0.1:1");
        local.token = Some("t".into());
        KubeClient::new(local).unwrap();
    }

    #[test]
    fn bad_servers_and_pem_are_refused() {
        for (server, msg) in [
            ("127.0.0.1:1", "must start with https:// or http://"),
            ("https://", "has no host"),
            ("https://h/?x=1", "query"),
        ] {
            let err = KubeClient::new(KubeConfig::new(server)).unwrap_err();
            assert!(err.to_string().contains(msg), "{server}: {err}");
        }
        let mut cfg = KubeConfig::new("https://h:6443");
        cfg.ca_pem = Some(b"not pem".to_vec());
        let err = KubeClient::new(cfg).unwrap_err();
        assert_eq!(
            err.to_string(),
            "CA certificate: no PEM certificate (-----BEGIN CERTIFICATE-----) found"
        );
    }

    #[test]
    fn error_text_is_short_and_printable() {
        assert_eq!(error_text(b""), "(empty body)");
        assert_eq!(
            error_text(b"<h1>bad\ngateway</h1>\n"),
            "<h1>bad gateway</h1>"
        );
        let long = error_text("x".repeat(1000).as_bytes());
        assert_eq!(long.len(), MAX_ERROR_TEXT + 3);
    }
}
