//! Who may ask what: the Host check against DNS rebinding, the bearer token (compared in
//! constant time, never logged) and the CSRF checks of a state-changing request. Pure
//! decisions over the configuration and the request's headers, so each is table-tested; the
//! caller counts the refusals and words the answer.

use std::net::IpAddr;

use hyper::header::{self, HeaderMap};

use super::CSRF_HEADER;
use super::bind::ApiServerConfig;
use crate::view::ApiError;

/// What a request changes, which decides whether it needs the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Access {
    /// `/metrics` and the API's GETs: the token off loopback, or when reads are configured
    /// to need it.
    Read,
    /// Every other API request: the token always; without a configured one, refused.
    Change,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// A loopback listener asked by a name that is not loopback.
    ForeignHost,
    /// The token is needed and the server has none.
    NoTokenConfigured,
    /// The token is needed and was missing or wrong.
    BadToken,
    /// A state-changing request without the custom header.
    NoCsrfHeader,
    /// A state-changing request whose body is not declared JSON.
    NotJson,
    /// A state-changing request from another origin than the one it was sent to.
    ForeignOrigin,
}

impl Refusal {
    /// Counted as unauthorized (`driftwatch_api_unauthorized_total`).
    pub(super) fn is_token(self) -> bool {
        matches!(self, Refusal::NoTokenConfigured | Refusal::BadToken)
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        let (status, message) = match r {
            Refusal::ForeignHost => (
                403,
                "the Host header does not name this loopback listener (DNS rebinding?)",
            ),
            Refusal::NoTokenConfigured => (
                403,
                "state-changing requests need the API token, and this server has none configured",
            ),
            Refusal::BadToken => (
                401,
                "a bearer token is required (Authorization: Bearer <token from the token file>)",
            ),
            Refusal::NoCsrfHeader => (
                403,
                "missing the X-Driftwatch-Request header (cross-site requests are refused)",
            ),
            Refusal::NotJson => (
                415,
                "the body must be JSON (Content-Type: application/json)",
            ),
            Refusal::ForeignOrigin => (
                403,
                "cross-origin request refused (Origin does not match Host)",
            ),
        };
        ApiError::new(status, message)
    }
}

/// Equal in time independent of where the strings differ (the length may still show).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
}

/// Host names that reach a loopback listener: anything else in `Host` is a DNS-rebinding
/// attempt (a page on evil.example whose name now resolves to 127.0.0.1).
fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Every request to a loopback listener must name it in `Host`.
pub(super) fn check_host(config: &ApiServerConfig, headers: &HeaderMap) -> Result<(), Refusal> {
    if !config.listen.ip().is_loopback() || loopback_host(header_str(headers, header::HOST)) {
        Ok(())
    } else {
        Err(Refusal::ForeignHost)
    }
}

/// The token check of a request that `access`es the agent.
pub(super) fn check_token(
    config: &ApiServerConfig,
    access: Access,
    headers: &HeaderMap,
) -> Result<(), Refusal> {
    if access == Access::Read && !config.token_for_reads && config.listen.ip().is_loopback() {
        return Ok(());
    }
    let Some(token) = &config.token else {
        return Err(Refusal::NoTokenConfigured);
    };
    let given = header_str(headers, header::AUTHORIZATION)
        .strip_prefix("Bearer ")
        .unwrap_or_default();
    if constant_time_eq(given.trim().as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        Err(Refusal::BadToken)
    }
}

/// A state-changing request must come from our own page (or a script): the custom header,
/// JSON, and no foreign `Origin`.
pub(super) fn check_csrf(headers: &HeaderMap) -> Result<(), Refusal> {
    if headers.get(CSRF_HEADER).is_none() {
        return Err(Refusal::NoCsrfHeader);
    }
    if !header_str(headers, header::CONTENT_TYPE).starts_with("application/json") {
        return Err(Refusal::NotJson);
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let host = header_str(headers, header::HOST);
        let ours = [format!("http://{host}"), format!("https://{host}")];
        if !ours.iter().any(|o| o == origin) {
            return Err(Refusal::ForeignOrigin);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123";

    fn config(listen: &str, token: bool, token_for_reads: bool) -> ApiServerConfig {
        ApiServerConfig {
            listen: listen.parse().unwrap(),
            token: token.then(|| TOKEN.to_string()),
            token_for_reads,
            ui: true,
            metrics_listen: None,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn constant_time_eq_is_eq() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn loopback_hosts() {
        for ok in [
            "127.0.0.1:7878",
            "localhost:1",
            "[::1]:7878",
            "LOCALHOST",
            "127.1.2.3",
        ] {
            assert!(loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example:7878",
            "10.0.0.1",
            "",
            "[::2]:1",
            "localhost.evil.example",
        ] {
            assert!(!loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn the_host_is_checked_on_loopback_listeners_only() {
        let lo = config("127.0.0.1:7878", false, false);
        let any = config("0.0.0.0:7878", true, false);
        for (config, host, want) in [
            (&lo, Some("127.0.0.1:7878"), Ok(())),
            (&lo, Some("localhost"), Ok(())),
            (&lo, Some("evil.example:7878"), Err(Refusal::ForeignHost)),
            (&lo, None, Err(Refusal::ForeignHost)),
            (&any, Some("evil.example:7878"), Ok(())),
            (&any, None, Ok(())),
        ] {
            let h = headers(&host.map(|h| ("host", h)).into_iter().collect::<Vec<_>>());
            assert_eq!(
                check_host(config, &h),
                want,
                "{:?} Host {host:?}",
                config.listen
            );
        }
    }

    #[test]
    fn who_needs_the_token() {
        use Access::{Change, Read};
        let good = format!("Bearer {TOKEN}");
        let good_padded = format!("Bearer  {TOKEN} ");
        let ok = Ok(());
        let bad = Err(Refusal::BadToken);
        let none = Err(Refusal::NoTokenConfigured);
        // (listen, token configured, token for reads, access, Authorization, decision)
        let table = [
            // Loopback reads are open unless configured otherwise.
            ("127.0.0.1:1", false, false, Read, None, ok),
            ("127.0.0.1:1", true, false, Read, None, ok),
            ("127.0.0.1:1", true, false, Read, Some("Bearer wrong"), ok),
            ("127.0.0.1:1", true, true, Read, None, bad),
            ("127.0.0.1:1", true, true, Read, Some(good.as_str()), ok),
            ("127.0.0.1:1", false, true, Read, None, none),
            // Off loopback, reads always need it.
            ("0.0.0.0:1", true, false, Read, None, bad),
            ("0.0.0.0:1", true, false, Read, Some(good.as_str()), ok),
            // Changes need it everywhere; without one configured, they are refused.
            ("127.0.0.1:1", false, false, Change, None, none),
            (
                "127.0.0.1:1",
                false,
                false,
                Change,
                Some(good.as_str()),
                none,
            ),
            ("127.0.0.1:1", true, false, Change, None, bad),
            ("127.0.0.1:1", true, false, Change, Some(TOKEN), bad),
            (
                "127.0.0.1:1",
                true,
                false,
                Change,
                Some("Bearer 0123456789abcdef012"),
                bad,
            ),
            ("127.0.0.1:1", true, false, Change, Some(good.as_str()), ok),
            (
                "127.0.0.1:1",
                true,
                false,
                Change,
                Some(good_padded.as_str()),
                ok,
            ),
            ("0.0.0.0:1", true, false, Change, Some(good.as_str()), ok),
        ];
        for (listen, token, reads, access, auth, want) in table {
            let c = config(listen, token, reads);
            let h = headers(
                &auth
                    .map(|a| ("authorization", a))
                    .into_iter()
                    .collect::<Vec<_>>(),
            );
            assert_eq!(
                check_token(&c, access, &h),
                want,
                "{listen} token={token} reads={reads} {access:?} {auth:?}"
            );
        }
    }

    #[test]
    fn csrf_checks_of_a_change() {
        let json = ("content-type", "application/json");
        let csrf = (CSRF_HEADER, "1");
        let host = ("host", "127.0.0.1:7878");
        type Headers<'a> = &'a [(&'static str, &'a str)];
        let table: [(Headers, Result<(), Refusal>); 7] = [
            (&[csrf, json], Ok(())),
            (
                &[csrf, ("content-type", "application/json; charset=utf-8")],
                Ok(()),
            ),
            (&[json], Err(Refusal::NoCsrfHeader)),
            (&[csrf], Err(Refusal::NotJson)),
            (
                &[csrf, ("content-type", "text/plain")],
                Err(Refusal::NotJson),
            ),
            (
                &[csrf, json, host, ("origin", "http://127.0.0.1:7878")],
                Ok(()),
            ),
            (
                &[csrf, json, host, ("origin", "http://evil.example")],
                Err(Refusal::ForeignOrigin),
            ),
        ];
        for (pairs, want) in table {
            assert_eq!(check_csrf(&headers(pairs)), want, "{pairs:?}");
        }
    }

    #[test]
    fn refusals_answer_as_before() {
        for (r, status, token) in [
            (Refusal::ForeignHost, 403, false),
            (Refusal::NoTokenConfigured, 403, true),
            (Refusal::BadToken, 401, true),
            (Refusal::NoCsrfHeader, 403, false),
            (Refusal::NotJson, 415, false),
            (Refusal::ForeignOrigin, 403, false),
        ] {
            assert_eq!(ApiError::from(r).status, status, "{r:?}");
            assert_eq!(r.is_token(), token, "{r:?}");
        }
    }
}
