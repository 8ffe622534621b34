//! A request's query string into what it asks for: percent-decoded pairs, and the alert
//! filter of `/api/v1/alerts` and its stream (durations back from now, priorities, ids,
//! limits capped at [`MAX_LIMIT`]). Pure but for reading the clock.

use std::collections::HashMap;

use driftwatch_model::clock::now_ns;
use driftwatch_model::{AlertQuery, Priority, RuleMatch};

use super::MAX_LIMIT;
use crate::view::ApiError;

/// Percent-decoding of a query or path component (`+` is a space in queries).
pub(super) fn percent_decode(s: &str, plus_is_space: bool) -> Result<String, ApiError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        ApiError::bad_request(format!("bad percent-encoding in {s:?}"))
                    })?;
                out.push(hex);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| ApiError::bad_request(format!("{s:?} is not UTF-8")))
}

pub(super) fn parse_query(q: Option<&str>) -> Result<HashMap<String, String>, ApiError> {
    let mut out = HashMap::new();
    for pair in q.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k, true)?, percent_decode(v, true)?);
    }
    Ok(out)
}

/// `since`: a duration back from now (`90s`, `15m`, `2h`, `1d`) or seconds since the epoch.
fn parse_since(s: &str) -> Result<u64, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "since={s:?}: expected a duration (90s, 15m, 2h, 1d) or seconds since the epoch"
        ))
    };
    if let Ok(epoch) = s.parse::<u64>() {
        return epoch.checked_mul(1_000_000_000).ok_or_else(bad);
    }
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86400),
        _ => return Err(bad()),
    };
    Ok(now_ns().saturating_sub(secs.saturating_mul(1_000_000_000)))
}

/// `limit=`: `default` when not given, at most `max`.
pub(super) fn parse_limit(
    q: &HashMap<String, String>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match q.get("limit") {
        Some(l) => Ok(l
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(format!("limit={l:?} is not a number")))?
            .min(max)),
        None => Ok(default),
    }
}

pub(super) fn parse_filter(q: &HashMap<String, String>) -> Result<AlertQuery, ApiError> {
    let nonempty = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
    let limit = parse_limit(q, 100, MAX_LIMIT)?;
    Ok(AlertQuery {
        since_ns: nonempty("since").map(|s| parse_since(&s)).transpose()?,
        container: nonempty("container"),
        rule: nonempty("rule"),
        rule_match: RuleMatch::Exact,
        tag: nonempty("tag"),
        min_priority: nonempty("priority")
            .map(|p| {
                p.parse::<Priority>()
                    .map_err(|e| ApiError::bad_request(format!("priority: {e}")))
            })
            .transpose()?,
        after_id: nonempty("after_id")
            .map(|a| {
                a.parse::<u64>()
                    .map_err(|_| ApiError::bad_request(format!("after_id={a:?} is not a number")))
            })
            .transpose()?,
        limit,
        ..AlertQuery::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode() {
        let q = parse_query(Some("rule=Drop+and%20execute&limit=5&x")).unwrap();
        assert_eq!(q["rule"], "Drop and execute");
        assert_eq!(q["limit"], "5");
        assert_eq!(q["x"], "");
        assert!(parse_query(Some("a=%zz")).is_err());
        assert!(parse_query(Some("a=%ff")).is_err(), "not UTF-8");
        assert_eq!(parse_query(None).unwrap(), HashMap::new());
        // In a path, `+` is a plus.
        assert_eq!(percent_decode("a+b%2Fc", false).unwrap(), "a+b/c");
    }

    #[test]
    fn filters_from_queries() {
        let filter = |q: &str| parse_filter(&parse_query(Some(q)).unwrap());
        // (query, priority, limit, after_id)
        let table: [(&str, Option<Priority>, usize, Option<u64>); 6] = [
            ("", None, 100, None),
            (
                "priority=warning&limit=99999",
                Some(Priority::Warning),
                MAX_LIMIT,
                None,
            ),
            ("limit=7&after_id=41", None, 7, Some(41)),
            ("priority=&after_id=", None, 100, None),
            ("rule=r&container=web&tag=t", None, 100, None),
            ("limit=0", None, 0, None),
        ];
        for (q, priority, limit, after_id) in table {
            let f = filter(q).unwrap_or_else(|e| panic!("{q}: {}", e.message));
            assert_eq!(
                (f.min_priority, f.limit, f.after_id),
                (priority, limit, after_id),
                "{q}"
            );
        }
        let f = filter("rule=r&container=web&tag=t").unwrap();
        assert_eq!(
            (f.rule.as_deref(), f.container.as_deref(), f.tag.as_deref()),
            (Some("r"), Some("web"), Some("t"))
        );
        for bad in [
            "priority=loud",
            "since=5x",
            "since=m",
            "limit=-1",
            "after_id=x",
        ] {
            let e = filter(bad).unwrap_err();
            assert_eq!(e.status, 400, "{bad}: {}", e.message);
        }
        let now = now_ns();
        let since = filter("since=5m").unwrap().since_ns.unwrap();
        assert!(since < now && since > now - 301_000_000_000, "{since}");
        assert_eq!(
            filter("since=1700000000").unwrap().since_ns,
            Some(1_700_000_000_000_000_000)
        );
    }
}
