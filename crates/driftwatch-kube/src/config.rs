//! Where the API server is and how to authenticate to it: in-cluster (service account),
//! from a kubeconfig file, or spelled out (the fake API server's `http://127.0.0.1:PORT`).
//!
//! Loading reads the files and checks everything it can (YAML, base64, PEM) so that a bad
//! config fails here, naming the file and the key, not at the first response action.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

/// The service account directory every pod gets (unless `automountServiceAccountToken: false`).
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// How long one request may take, connect to last byte, unless [`KubeConfig::timeout`] says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach and authenticate to a Kubernetes API server.
///
/// Build one with [`KubeConfig::in_cluster`], [`KubeConfig::from_kubeconfig`], or
/// [`KubeConfig::new`] and then set the fields.
#[derive(Clone, PartialEq, Eq)]
pub struct KubeConfig {
    /// `https://host:port` or `http://host:port`, optionally with a path prefix (some proxies
    /// serve the API under one). No trailing slash needed.
    pub server: String,
    /// A bearer token sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// A file holding the bearer token, read for every request (so a rotated service account
    /// token is picked up). Takes precedence over `token`.
    pub token_file: Option<PathBuf>,
    /// PEM certificates to trust for the server instead of the Mozilla roots.
    pub ca_pem: Option<Vec<u8>>,
    /// A client certificate and key (PEM) for TLS client authentication.
    pub client_cert: Option<ClientCertPem>,
    /// Skip verifying the server's certificate (kubeconfig `insecure-skip-tls-verify`).
    pub insecure: bool,
    /// Per-request timeout, connect to last byte.
    pub timeout: Duration,
}

/// A TLS client certificate (chain) and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertPem {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl fmt::Debug for ClientCertPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertPem")
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl fmt::Debug for KubeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeConfig")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_file", &self.token_file)
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .field("client_cert", &self.client_cert)
            .field("insecure", &self.insecure)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why a config could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is not set: not running in a Kubernetes pod")]
    MissingEnv { var: &'static str },
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: invalid YAML: {message}")]
    Yaml { path: PathBuf, message: String },
    #[error("{path}: missing `{key}`")]
    MissingKey { path: PathBuf, key: String },
    #[error("{path}: `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("{path}: `{key}` is set, and driftwatch does not support {what}")]
    Unsupported {
        path: PathBuf,
        key: String,
        what: &'static str,
    },
    #[error("server {server:?}: {message}")]
    Server { server: String, message: String },
    #[error("{what}: {message}")]
    Pem { what: &'static str, message: String },
}

impl KubeConfig {
    /// A server with no authentication and the default timeout; set the other fields as needed.
    pub fn new(server: impl Into<String>) -> Self {
        KubeConfig {
            server: server.into(),
            token: None,
            token_file: None,
            ca_pem: None,
            client_cert: None,
            insecure: false,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The pod's own service account: `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT`,
    /// the token and CA under [`SERVICE_ACCOUNT_DIR`]. The token file is re-read for every
    /// request, since the kubelet rotates it.
    pub fn in_cluster() -> Result<Self, ConfigError> {
        in_cluster_from(
            |var| std::env::var(var).ok(),
            Path::new(SERVICE_ACCOUNT_DIR),
        )
    }

    /// The current context of a kubeconfig file: its cluster's `server`,
    /// `certificate-authority(-data)` and `insecure-skip-tls-verify`, its user's `token`,
    /// `tokenFile` or `client-certificate(-data)` + `client-key(-data)`. Relative file paths are
    /// relative to the kubeconfig's directory. `exec`, `auth-provider`, basic auth,
    /// `proxy-url` and `tls-server-name` are refused, not ignored.
    pub fn from_kubeconfig(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        from_kubeconfig_text(path, &text, dir)
    }
}

pub(crate) fn in_cluster_from(
    env: impl Fn(&str) -> Option<String>,
    sa_dir: &Path,
) -> Result<KubeConfig, ConfigError> {
    let var = |var: &'static str| {
        env(var)
            .filter(|v| !v.is_empty())
            .ok_or(ConfigError::MissingEnv { var })
    };
    let host = var("KUBERNETES_SERVICE_HOST")?;
    let port = var("KUBERNETES_SERVICE_PORT")?;
    // an IPv6 service address needs brackets in a URL
    let server = if host.contains(':') {
        format!("https://[{host}]:{port}")
    } else {
        format!("https://{host}:{port}")
    };
    let token_file = sa_dir.join("token");
    let token = read(&token_file)?;
    if String::from_utf8_lossy(&token).trim().is_empty() {
        return Err(ConfigError::Invalid {
            path: token_file,
            key: "token".into(),
            message: "the file is empty".into(),
        });
    }
    let ca_path = sa_dir.join("ca.crt");
    let ca = read(&ca_path)?;
    parse_certificates(&ca).map_err(|message| ConfigError::Invalid {
        path: ca_path,
        key: "ca.crt".into(),
        message,
    })?;
    Ok(KubeConfig {
        token_file: Some(token_file),
        ca_pem: Some(ca),
        ..KubeConfig::new(server)
    })
}

fn read(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A kubeconfig file, as far as this crate reads it. Unknown keys are allowed: kubeconfig is
/// kubectl's format and carries `preferences`, `extensions` and more that do not matter here.
/// Keys that change how to connect or authenticate and are not supported are read so they can
/// be refused.
#[derive(Deserialize)]
struct KubeconfigFile {
    #[serde(rename = "current-context")]
    current_context: Option<String>,
    #[serde(default)]
    clusters: Vec<Named<Cluster>>,
    #[serde(default)]
    contexts: Vec<Named<Context>>,
    #[serde(default)]
    users: Vec<Named<User>>,
}

#[derive(Deserialize)]
struct Named<T> {
    name: Option<String>,
    #[serde(alias = "cluster", alias = "context", alias = "user")]
    item: Option<T>,
}

#[derive(Deserialize)]
struct Cluster {
    server: Option<String>,
    #[serde(rename = "certificate-authority")]
    certificate_authority: Option<String>,
    #[serde(rename = "certificate-authority-data")]
    certificate_authority_data: Option<String>,
    #[serde(rename = "insecure-skip-tls-verify", default)]
    insecure_skip_tls_verify: bool,
    #[serde(rename = "proxy-url")]
    proxy_url: Option<String>,
    #[serde(rename = "tls-server-name")]
    tls_server_name: Option<String>,
}

#[derive(Deserialize)]
struct Context {
    cluster: Option<String>,
    user: Option<String>,
}

#[derive(Deserialize)]
struct User {
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<String>,
    #[serde(rename = "client-certificate")]
    client_certificate: Option<String>,
    #[serde(rename = "client-certificate-data")]
    client_certificate_data: Option<String>,
    #[serde(rename = "client-key")]
    client_key: Option<String>,
    #[serde(rename = "client-key-data")]
    client_key_data: Option<String>,
    exec: Option<serde::de::IgnoredAny>,
    #[serde(rename = "auth-provider")]
    auth_provider: Option<serde::de::IgnoredAny>,
    username: Option<String>,
    password: Option<String>,
}

/// Parses and resolves a kubeconfig whose text is already read; `dir` resolves relative paths.
pub(crate) fn from_kubeconfig_text(
    path: &Path,
    text: &str,
    dir: &Path,
) -> Result<KubeConfig, ConfigError> {
    let missing = |key: String| ConfigError::MissingKey {
        path: path.to_owned(),
        key,
    };
    let invalid = |key: String, message: String| ConfigError::Invalid {
        path: path.to_owned(),
        key,
        message,
    };
    let unsupported = |key: String, what| ConfigError::Unsupported {
        path: path.to_owned(),
        key,
        what,
    };

    let file: KubeconfigFile = serde_saphyr::from_str(text).map_err(|e| ConfigError::Yaml {
        path: path.to_owned(),
        message: e.to_string(),
    })?;

    let current = file
        .current_context
        .filter(|c| !c.is_empty())
        .ok_or_else(|| missing("current-context".into()))?;
    let context = find(&file.contexts, &current)
        .ok_or_else(|| missing(format!("contexts[name={current}]")))?;
    let context_key = format!("contexts[name={current}].context");
    let cluster_name = context
        .cluster
        .as_deref()
        .ok_or_else(|| missing(format!("{context_key}.cluster")))?;
    let cluster = find(&file.clusters, cluster_name)
        .ok_or_else(|| missing(format!("clusters[name={cluster_name}]")))?;
    let ck = format!("clusters[name={cluster_name}].cluster");

    let server = cluster
        .server
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing(format!("{ck}.server")))?;
    check_server(&server).map_err(|message| invalid(format!("{ck}.server"), message))?;
    if cluster.proxy_url.is_some() {
        return Err(unsupported(
            format!("{ck}.proxy-url"),
            "proxies set in the kubeconfig",
        ));
    }
    if cluster.tls_server_name.is_some() {
        return Err(unsupported(
            format!("{ck}.tls-server-name"),
            "a TLS server name other than the server's host",
        ));
    }

    let mut cfg = KubeConfig::new(server);
    cfg.insecure = cluster.insecure_skip_tls_verify;
    cfg.ca_pem = file_or_data(
        dir,
        &ck,
        "certificate-authority",
        cluster.certificate_authority.as_deref(),
        cluster.certificate_authority_data.as_deref(),
    )
    .map_err(|(key, message)| invalid(key, message))?;
    if let Some(ca) = &cfg.ca_pem {
        let key = if cluster.certificate_authority_data.is_some() {
            format!("{ck}.certificate-authority-data")
        } else {
            format!("{ck}.certificate-authority")
        };
        parse_certificates(ca).map_err(|message| invalid(key, message))?;
    }

    // A context without a user is anonymous access, which kubectl allows too.
    let Some(user_name) = context.user.as_deref().filter(|u| !u.is_empty()) else {
        return Ok(cfg);
    };
    let user =
        find(&file.users, user_name).ok_or_else(|| missing(format!("users[name={user_name}]")))?;
    let uk = format!("users[name={user_name}].user");
    if user.exec.is_some() {
        return Err(unsupported(format!("{uk}.exec"), "exec credential plugins"));
    }
    if user.auth_provider.is_some() {
        return Err(unsupported(format!("{uk}.auth-provider"), "auth providers"));
    }
    if user.username.is_some() || user.password.is_some() {
        return Err(unsupported(
            format!("{uk}.username"),
            "basic authentication",
        ));
    }
    cfg.token = user.token.clone().filter(|t| !t.is_empty());
    if cfg.token.is_none()
        && let Some(file) = &user.token_file
    {
        let file = dir.join(file);
        read(&file)?;
        cfg.token_file = Some(file);
    }
    let cert = file_or_data(
        dir,
        &uk,
        "client-certificate",
        user.client_certificate.as_deref(),
        user.client_certificate_data.as_deref(),
    )
    .map_err(|(key, message)| invalid(key, message))?;
    let key = file_or_data(
        dir,
        &uk,
        "client-key",
        user.client_key.as_deref(),
        user.client_key_data.as_deref(),
    )
    .map_err(|(key, message)| invalid(key, message))?;
    match (cert, key) {
        (None, None) => {}
        (Some(_), None) => return Err(missing(format!("{uk}.client-key-data"))),
        (None, Some(_)) => return Err(missing(format!("{uk}.client-certificate-data"))),
        (Some(cert_pem), Some(key_pem)) => {
            parse_certificates(&cert_pem)
                .map_err(|m| invalid(format!("{uk}.client-certificate"), m))?;
            parse_private_key(&key_pem).map_err(|m| invalid(format!("{uk}.client-key"), m))?;
            cfg.client_cert = Some(ClientCertPem { cert_pem, key_pem });
        }
    }
    Ok(cfg)
}

fn find<'a, T>(items: &'a [Named<T>], name: &str) -> Option<&'a T> {
    items
        .iter()
        .find(|n| n.name.as_deref() == Some(name))
        .and_then(|n| n.item.as_ref())
}

/// `<key>-data` (base64, wins, as in kubectl) or `<key>` (a file). Errors carry the key.
fn file_or_data(
    dir: &Path,
    prefix: &str,
    key: &str,
    file: Option<&str>,
    data: Option<&str>,
) -> Result<Option<Vec<u8>>, (String, String)> {
    if let Some(data) = data.filter(|d| !d.is_empty()) {
        let compact: String = data.split_whitespace().collect();
        return base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map(Some)
            .map_err(|e| (format!("{prefix}.{key}-data"), format!("not base64: {e}")));
    }
    match file.filter(|f| !f.is_empty()) {
        None => Ok(None),
        Some(file) => {
            let file = dir.join(file);
            std::fs::read(&file).map(Some).map_err(|e| {
                (
                    format!("{prefix}.{key}"),
                    format!("reading {}: {e}", file.display()),
                )
            })
        }
    }
}

/// The scheme must be http or https, and something must follow it.
pub(crate) fn check_server(server: &str) -> Result<(), String> {
    let rest = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .ok_or("must start with https:// or http://")?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err("has no host".into());
    }
    if rest.contains(['?', '#']) || rest.chars().any(char::is_whitespace) {
        return Err("must not carry a query, fragment or whitespace".into());
    }
    Ok(())
}

/// Every certificate in a PEM bundle; none is an error.
pub(crate) fn parse_certificates(
    pem: &[u8],
) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| format!("invalid PEM: {e}"))? {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) found".into());
    }
    Ok(certs)
}

/// The first private key in a PEM file.
pub(crate) fn parse_private_key(pem: &[u8]) -> Result<ureq::tls::PrivateKey<'static>, String> {
    for item in ureq::tls::parse_pem(pem) {
        if let ureq::tls::PemItem::PrivateKey(k) = item.map_err(|e| format!("invalid PEM: {e}"))? {
            return Ok(k);
        }
    }
    Err("no PEM private key found".into())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use base64::Engine as _;

    use super::*;

    /// Side files written next to a test kubeconfig: (name, content).
    type Files = Vec<(&'static str, &'static str)>;

    const CA: &str = include_str!("../tests/fixtures/ca.pem");
    const CERT: &str = include_str!("../tests/fixtures/client.pem");
    const KEY: &str = include_str!("../tests/fixtures/client-key.pem");

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    /// Writes `kubeconfig` (and the given side files) to a temp dir and loads it.
    fn load(
        kubeconfig: &str,
        files: &[(&str, &str)],
    ) -> (tempfile::TempDir, Result<KubeConfig, ConfigError>) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let path = dir.path().join("config");
        std::fs::write(&path, kubeconfig).unwrap();
        let result = KubeConfig::from_kubeconfig(&path);
        (dir, result)
    }

    fn kubeconfig(cluster: &str, user: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: dev\npreferences: {{}}\n\
             contexts:\n- name: other\n  context: {{cluster: nowhere, user: nobody}}\n\
             - name: dev\n  context:\n    cluster: c1\n    user: u1\n    namespace: shop\n\
             clusters:\n- name: c1\n  cluster:\n{cluster}\
             users:\n- name: u1\n  user:\n{user}"
        )
    }

    #[test]
    fn token_and_insecure() {
        let cluster = "    server: https://10.1.2.3:6443\n    insecure-skip-tls-verify: true\n";
        let (_d, cfg) = load(&kubeconfig(cluster, "    token: abc.def\n"), &[]);
        let cfg = cfg.unwrap();
        assert_eq!(cfg.server, "https://10.1.2.3:6443");
        assert_eq!(cfg.token.as_deref(), Some("abc.def"));
        assert!(cfg.insecure);
        assert_eq!(
            (cfg.ca_pem, cfg.client_cert, cfg.token_file),
            (None, None, None)
        );
        assert_eq!(cfg.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn ca_data_and_client_cert_data() {
        let cluster = format!(
            "    server: https://k.example.invalid\n    certificate-authority-data: {}\n",
            b64(CA)
        );
        let user = format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(CERT),
            b64(KEY)
        );
        let (_d, cfg) = load(&kubeconfig(&cluster, &user), &[]);
        let cfg = cfg.unwrap();
        assert_eq!(cfg.ca_pem.as_deref(), Some(CA.as_bytes()));
        let cc = cfg.client_cert.clone().unwrap();
        assert_eq!(
            (cc.cert_pem.as_slice(), cc.key_pem.as_slice()),
            (CERT.as_bytes(), KEY.as_bytes())
        );
        assert!(!cfg.insecure);
        assert_eq!(cfg.token, None);
        // the key never shows in Debug output
        assert!(!format!("{cfg:?}").contains("PRIVATE"));
        crate::KubeClient::new(cfg).unwrap();
    }

    #[test]
    fn files_are_relative_to_the_kubeconfig() {
        let cluster = "    server: https://k:6443\n    certificate-authority: ca.pem\n";
        let user = "    tokenFile: tok\n    client-certificate: c.pem\n    client-key: k.pem\n";
        let (dir, cfg) = load(
            &kubeconfig(cluster, user),
            &[
                ("ca.pem", CA),
                ("tok", "t0k\n"),
                ("c.pem", CERT),
                ("k.pem", KEY),
            ],
        );
        let cfg = cfg.unwrap();
        assert_eq!(cfg.ca_pem.as_deref(), Some(CA.as_bytes()));
        assert_eq!(cfg.token_file, Some(dir.path().join("tok")));
        assert!(cfg.client_cert.is_some());
    }

    /// Every error names the file and the key.
    #[test]
    fn errors_name_the_file_and_the_key() {
        let ok_cluster = "    server: https://k:6443\n";
        // (kubeconfig text, side files, expected message)
        let cases: Vec<(String, Files, &str)> = vec![
            (
                kubeconfig(ok_cluster, "    token: t\n").replace("current-context: dev\n", ""),
                vec![],
                "missing `current-context`",
            ),
            (
                kubeconfig(ok_cluster, "    token: t\n")
                    .replace("current-context: dev", "current-context: prod"),
                vec![],
                "missing `contexts[name=prod]`",
            ),
            (
                kubeconfig("    insecure-skip-tls-verify: true\n", "    token: t\n"),
                vec![],
                "missing `clusters[name=c1].cluster.server`",
            ),
            (
                kubeconfig("    server: k:6443\n", "    token: t\n"),
                vec![],
                "`clusters[name=c1].cluster.server`: must start with https:// or http://",
            ),
            (
                kubeconfig(
                    &format!("{ok_cluster}    certificate-authority-data: '%%%'\n"),
                    "    token: t\n",
                ),
                vec![],
                "`clusters[name=c1].cluster.certificate-authority-data`: not base64",
            ),
            (
                kubeconfig(
                    &format!(
                        "{ok_cluster}    certificate-authority-data: {}\n",
                        b64("hello")
                    ),
                    "    token: t\n",
                ),
                vec![],
                "`clusters[name=c1].cluster.certificate-authority-data`: no PEM certificate",
            ),
            (
                kubeconfig(
                    &format!("{ok_cluster}    certificate-authority: nope.pem\n"),
                    "    token: t\n",
                ),
                vec![],
                "`clusters[name=c1].cluster.certificate-authority`: reading ",
            ),
            (
                kubeconfig(
                    &format!("{ok_cluster}    proxy-url: http://p:3128\n"),
                    "    token: t\n",
                ),
                vec![],
                "`clusters[name=c1].cluster.proxy-url` is set, and driftwatch does not support proxies",
            ),
            (
                kubeconfig(ok_cluster, "    exec:\n      command: aws\n"),
                vec![],
                "`users[name=u1].user.exec` is set, and driftwatch does not support exec credential plugins",
            ),
            (
                kubeconfig(ok_cluster, "    username: admin\n    password: x\n"),
                vec![],
                "`users[name=u1].user.username` is set, and driftwatch does not support basic authentication",
            ),
            (
                kubeconfig(ok_cluster, "    client-certificate: c.pem\n"),
                vec![("c.pem", CERT)],
                "missing `users[name=u1].user.client-key-data`",
            ),
            (
                kubeconfig(
                    ok_cluster,
                    "    client-certificate-data: x\n    client-key-data: x\n",
                ),
                vec![],
                "`users[name=u1].user.client-certificate-data`: not base64",
            ),
            (
                kubeconfig(ok_cluster, "    token: t\n").replace("user: u1", "user: u2"),
                vec![],
                "missing `users[name=u2]`",
            ),
        ];
        for (text, files, expected) in cases {
            let (dir, result) = load(&text, &files);
            let err = result.expect_err(expected).to_string();
            let path = dir.path().join("config");
            assert!(err.starts_with(&format!("{}: ", path.display())), "{err}");
            assert!(err.contains(expected), "expected {expected:?} in {err:?}");
        }
    }

    #[test]
    fn unreadable_or_invalid_files_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent");
        let err = KubeConfig::from_kubeconfig(&missing).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Read { path, .. } if *path == missing),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("reading {}: ", missing.display()))
        );

        let (d, result) = load("clusters: [unclosed\n", &[]);
        let err = result.unwrap_err();
        assert!(matches!(err, ConfigError::Yaml { .. }), "{err}");
        let prefix = format!("{}: invalid YAML: ", d.path().join("config").display());
        assert!(err.to_string().starts_with(&prefix), "{err}");
    }

    #[test]
    fn in_cluster_reads_env_token_and_ca() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "sa-token\n").unwrap();
        std::fs::write(dir.path().join("ca.crt"), CA).unwrap();
        let env = env_of(&[
            ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
        ]);
        let cfg = in_cluster_from(&env, dir.path()).unwrap();
        assert_eq!(cfg.server, "https://10.96.0.1:443");
        assert_eq!(cfg.token_file, Some(dir.path().join("token")));
        assert_eq!(cfg.token, None);
        assert_eq!(cfg.ca_pem.as_deref(), Some(CA.as_bytes()));

        let v6 = env_of(&[
            ("KUBERNETES_SERVICE_HOST", "fd00::1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
        ]);
        assert_eq!(
            in_cluster_from(&v6, dir.path()).unwrap().server,
            "https://[fd00::1]:443"
        );
    }

    #[test]
    fn in_cluster_errors_name_the_variable_or_file() {
        let dir = tempfile::tempdir().unwrap();
        let no_port = env_of(&[("KUBERNETES_SERVICE_HOST", "10.96.0.1")]);
        assert_eq!(
            in_cluster_from(&no_port, dir.path())
                .unwrap_err()
                .to_string(),
            "KUBERNETES_SERVICE_PORT is not set: not running in a Kubernetes pod"
        );
        let env = env_of(&[
            ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
        ]);
        let err = in_cluster_from(&env, dir.path()).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("reading {}: ", dir.path().join("token").display())),
            "{err}"
        );
        std::fs::write(dir.path().join("token"), "t").unwrap();
        let err = in_cluster_from(&env, dir.path()).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "reading {}: ",
                dir.path().join("ca.crt").display()
            )),
            "{err}"
        );
        std::fs::write(dir.path().join("ca.crt"), "garbage").unwrap();
        let err = in_cluster_from(&env, dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("ca.crt: `ca.crt`: no PEM certificate"),
            "{err}"
        );
    }
}
