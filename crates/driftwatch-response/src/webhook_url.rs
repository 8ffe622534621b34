//! The webhook address a playbook's `notify` names: checked when the playbook loads, and
//! parsed again by the action that posts to it.

/// A parsed `http://host[:port][/path]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookUrl {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl WebhookUrl {
    pub fn parse(url: &str) -> Result<WebhookUrl, String> {
        let rest = if let Some(r) = url.strip_prefix("http://") {
            r
        } else if url.starts_with("https://") {
            return Err(format!(
                "{url}: https is not supported (no TLS client in the agent); use an http:// forwarder such as Falcosidekick on localhost"
            ));
        } else {
            return Err(format!("{url}: expected http://HOST[:PORT]/PATH"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(format!("{url}: credentials in the URL are not supported"));
        }
        let (host, port) = if let Some(h) = authority.strip_prefix('[') {
            // [v6]:port
            let (h, p) = h
                .split_once(']')
                .ok_or_else(|| format!("{url}: unclosed `[`"))?;
            (h.to_string(), p.strip_prefix(':').unwrap_or(""))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p),
                None => (authority.to_string(), ""),
            }
        };
        if host.is_empty() {
            return Err(format!("{url}: no host"));
        }
        let port = if port.is_empty() {
            80
        } else {
            port.parse()
                .map_err(|_| format!("{url}: bad port `{port}`"))?
        };
        if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(format!("{url}: the path has spaces or control characters"));
        }
        Ok(WebhookUrl {
            host,
            port,
            path: path.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            WebhookUrl::parse("http://127.0.0.1:9000/hook").unwrap(),
            WebhookUrl {
                host: "127.0.0.1".into(),
                port: 9000,
                path: "/hook".into()
            }
        );
        assert_eq!(WebhookUrl::parse("http://sidekick").unwrap().port, 80);
        assert_eq!(
            WebhookUrl::parse("http://[::1]:8080/x").unwrap().host,
            "::1"
        );
        assert!(
            WebhookUrl::parse("https://x/")
                .unwrap_err()
                .contains("https is not supported")
        );
        assert!(WebhookUrl::parse("ftp://x/").is_err());
        assert!(WebhookUrl::parse("http://u:p@x/").is_err());
        assert!(WebhookUrl::parse("http://x:99999/").is_err());
    }
}
