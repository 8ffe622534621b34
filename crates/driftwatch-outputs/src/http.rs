//! HTTP POST of each alert: Falco's JSON alert exactly as Falco's `http_output` sends it (so
//! Falcosidekick and Falco Talon take it unchanged), or the Defender-style document.

use std::time::Duration;

use driftwatch_config::{HttpFormat, HttpOutput};
use driftwatch_model::Alert;
use ureq::http::{HeaderName, HeaderValue, Uri};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use crate::worker::{Deliver, Failure, MAX_RETRY_AFTER};

pub(crate) struct HttpOut {
    agent: ureq::Agent,
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    format: HttpFormat,
    hostname: String,
}

impl HttpOut {
    /// Checks the URL and headers; nothing is sent yet.
    pub fn new(c: &HttpOutput, hostname: &str) -> Result<HttpOut, String> {
        let uri: Uri = c.url.parse().map_err(|e| format!("invalid URL: {e}"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err("the URL must be http://host[:port]/path or https://...".into());
        }
        let mut headers = Vec::new();
        for (k, v) in &c.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| format!("header {k:?}: invalid name: {e}"))?;
            let value = HeaderValue::from_str(v)
                .map_err(|e| format!("header {k:?}: invalid value: {e}"))?;
            headers.push((name, value));
        }
        let mut tls = TlsConfig::builder();
        if let Some(path) = &c.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("reading the CA file {}: {e}", path.display()))?;
            tls = tls.root_certs(RootCerts::from(
                ca_certificates(&pem)
                    .map_err(|e| format!("the CA file {}: {e}", path.display()))?,
            ));
        }
        let config = ureq::Agent::config_builder()
            .tls_config(tls.build())
            // statuses are answers to classify (retry 5xx/429, not other 4xx), not errors
            .http_status_as_error(false)
            // a redirect could carry an Authorization header elsewhere
            .max_redirects(0)
            .timeout_global(Some(c.timeout))
            .user_agent(concat!("driftwatch/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(HttpOut {
            agent: ureq::Agent::new_with_config(config),
            url: c.url.clone(),
            headers,
            format: c.format,
            hostname: hostname.to_string(),
        })
    }
}

/// Every certificate of a PEM bundle; none is an error.
fn ca_certificates(pem: &[u8]) -> Result<Vec<Certificate<'static>>, String> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        if let PemItem::Certificate(c) = item.map_err(|e| format!("invalid PEM: {e}"))? {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into());
    }
    Ok(certs)
}

/// `Retry-After` in seconds (the HTTP-date form falls back to our own backoff).
fn retry_after(resp: &ureq::http::Response<ureq::Body>) -> Option<Duration> {
    let v = resp.headers().get("retry-after")?.to_str().ok()?;
    let secs: u64 = v.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

impl Deliver for HttpOut {
    fn deliver(&mut self, alert: &Alert) -> Result<(), Failure> {
        let body = match self.format {
            HttpFormat::Falco => alert.to_json_line(),
            HttpFormat::Defender => crate::defender::document(alert, &self.hostname).to_string(),
        };
        let mut req = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json");
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let mut resp = match req.send(body.as_bytes()) {
            Ok(r) => r,
            Err(e) => return Err(Failure::retry(format!("POST {}: {e}", self.url))),
        };
        let status = resp.status().as_u16();
        // Read (a bounded part of) the answer so that the connection can be reused.
        let _ = resp.body_mut().with_config().limit(64 * 1024).read_to_vec();
        match status {
            200..=299 => Ok(()),
            429 | 500..=599 => Err(Failure {
                retry: true,
                after: retry_after(&resp),
                message: format!("POST {}: HTTP {status}", self.url),
            }),
            _ => Err(Failure::permanent(format!(
                "POST {}: HTTP {status} (not retried)",
                self.url
            ))),
        }
    }
}
