//! Kubernetes object names checked before they go into a URL path, and the names this crate
//! derives (the isolation NetworkPolicy's).
//!
//! Namespace and pod names reach the client from alerts, that is from what a container did:
//! they are attacker-influenced. A name that is not a valid Kubernetes name is refused here, so
//! no `/`, `?`, `%`, `..` or whitespace can ever change the request's path or query.

use std::fmt;

use sha2::{Digest, Sha256};

/// What a checked name names, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    Namespace,
    Pod,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Namespace => "namespace",
            NameKind::Pod => "pod",
        })
    }
}

/// Why a name was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} name {name:?}: {reason}")]
pub struct InvalidName {
    pub kind: NameKind,
    pub name: String,
    pub reason: &'static str,
}

/// The longest DNS-1123 label (namespaces, label values): 63.
pub const MAX_LABEL_LEN: usize = 63;
/// The longest DNS-1123 subdomain (pod names): 253.
pub const MAX_SUBDOMAIN_LEN: usize = 253;

/// A namespace name: a DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 bytes).
pub fn check_namespace(name: &str) -> Result<(), InvalidName> {
    let err = |reason| InvalidName {
        kind: NameKind::Namespace,
        name: name.to_owned(),
        reason,
    };
    if name.len() > MAX_LABEL_LEN {
        return Err(err("longer than 63 characters"));
    }
    check_label(name).map_err(err)
}

/// A pod name: a DNS-1123 subdomain (dot-separated DNS-1123 labels, at most 253 bytes).
pub fn check_pod(name: &str) -> Result<(), InvalidName> {
    let err = |reason| InvalidName {
        kind: NameKind::Pod,
        name: name.to_owned(),
        reason,
    };
    if name.len() > MAX_SUBDOMAIN_LEN {
        return Err(err("longer than 253 characters"));
    }
    if name.is_empty() {
        return Err(err("empty"));
    }
    name.split('.').try_for_each(check_label).map_err(err)
}

/// One DNS-1123 label, without the length limit (the callers apply theirs).
fn check_label(label: &str) -> Result<(), &'static str> {
    let bytes = label.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return Err("empty, or an empty part between dots");
    };
    if let Some(c) = bytes
        .iter()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || **c == b'-'))
    {
        return Err(if c.is_ascii_uppercase() {
            "upper-case letters are not allowed (lower-case letters, digits, '-' and '.' only)"
        } else {
            "only lower-case letters, digits, '-' and '.' are allowed"
        });
    }
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return Err("must start and end with a letter or digit");
    }
    Ok(())
}

const ISOLATE_PREFIX: &str = "driftwatch-isolate-";

/// The isolation NetworkPolicy's name for a pod: `driftwatch-isolate-<pod>`, a DNS-1123 label
/// of at most 63 characters.
///
/// A pod name that fits (at most 44 characters) and has no dot is used as it is. Any other is
/// cut to fit, dots turned into `-`, and ends in 16 hex digits of the SHA-256 of the whole
/// pod name, so two pods whose names share a long prefix (or differ only in `.` against `-`)
/// get two policies. The pod name must have passed [`check_pod`].
pub fn isolation_policy_name(pod: &str) -> String {
    if ISOLATE_PREFIX.len() + pod.len() <= MAX_LABEL_LEN && !pod.contains('.') {
        return format!("{ISOLATE_PREFIX}{pod}");
    }
    let hash = hex::encode(&Sha256::digest(pod.as_bytes())[..8]);
    // prefix + stem + '-' + 16 hex digits = 63
    let room = MAX_LABEL_LEN - ISOLATE_PREFIX.len() - 1 - hash.len();
    let stem: String = pod
        .chars()
        .take(room)
        .map(|c| if c == '.' { '-' } else { c })
        .collect();
    let stem = stem.trim_end_matches('-');
    if stem.is_empty() {
        format!("{ISOLATE_PREFIX}{hash}")
    } else {
        format!("{ISOLATE_PREFIX}{stem}-{hash}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_dns_labels() {
        for ok in ["default", "kube-system", "a", "0", "a-1", &"a".repeat(63)] {
            assert_eq!(check_namespace(ok), Ok(()), "{ok}");
        }
        for (bad, reason) in [
            ("", "empty"),
            ("../x", "only lower-case"),
            ("a?b", "only lower-case"),
            ("a/b", "only lower-case"),
            ("a%2fb", "only lower-case"),
            ("Default", "upper-case"),
            ("a.b", "only lower-case"),
            ("-a", "start and end"),
            ("a-", "start and end"),
            ("a b", "only lower-case"),
            (&"a".repeat(64), "longer than 63"),
        ] {
            let err = check_namespace(bad).unwrap_err();
            assert_eq!(err.kind, NameKind::Namespace);
            assert_eq!(err.name, bad);
            assert!(err.reason.contains(reason), "{bad:?}: {}", err.reason);
        }
    }

    #[test]
    fn pods_are_dns_subdomains() {
        for ok in ["web-7d4b9c-x2x", "web.v1", "a", &"a".repeat(253)] {
            assert_eq!(check_pod(ok), Ok(()), "{ok}");
        }
        for bad in [
            "", "..", "../x", ".x", "x.", "a..b", "a?b", "a#b", "Web", "a_b", "a.-b", "a\nb",
        ] {
            assert!(check_pod(bad).is_err(), "{bad:?} accepted");
        }
        let err = check_pod(&"a".repeat(300)).unwrap_err();
        assert_eq!(err.reason, "longer than 253 characters");
        assert_eq!(err.to_string()[..28], *"invalid pod name \"aaaaaaaaaa");
    }

    #[test]
    fn policy_names_are_short_labels_and_distinct() {
        assert_eq!(isolation_policy_name("web-1"), "driftwatch-isolate-web-1");
        let fits = "a".repeat(44);
        assert_eq!(
            isolation_policy_name(&fits),
            format!("driftwatch-isolate-{fits}")
        );

        let long_a = format!("{}-a", "x".repeat(100));
        let long_b = format!("{}-b", "x".repeat(100));
        let dotted = "web.v1";
        let dashed = "web-v1";
        let names = [
            isolation_policy_name(&long_a),
            isolation_policy_name(&long_b),
            isolation_policy_name(dotted),
            isolation_policy_name(dashed),
            isolation_policy_name(&"a".repeat(45)),
            // a cut that would end in '.' or '-' must not leave "-." or "--" before the hash
            isolation_policy_name(&format!("{}.{}", "b".repeat(26), "c".repeat(30))),
        ];
        for name in &names {
            assert!(name.len() <= 63, "{name}");
            assert_eq!(check_namespace(name), Ok(()), "{name} is not a DNS label");
        }
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert_eq!(names[0].len(), 63);
        assert!(
            names[2].starts_with("driftwatch-isolate-web-v1-"),
            "{}",
            names[2]
        );
        // stable across runs and versions: the name is how release finds the policy
        assert_eq!(names[3], "driftwatch-isolate-web-v1");
        assert_eq!(isolation_policy_name(&long_a), names[0]);
    }
}
