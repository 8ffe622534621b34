//! One container's image against the approved list.

use serde::Serialize;

use crate::approved::{ApprovedEntry, ApprovedList, normalize_digest, normalize_repository};

/// What the engine says of a container's image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageFacts {
    /// As the container was created with it (`Config.Image`): `nginx:1.27`, `nginx`,
    /// `nginx@sha256:...`, an image id.
    pub reference: String,
    /// The repository the engine names for the image (for a container started by image id,
    /// the image's first tag's), used when `reference` names none.
    pub repository: String,
    /// The image id (`sha256:...` of its config), when the engine gave one.
    pub image_id: Option<String>,
    /// `RepoDigests` (`repo@sha256:...`); empty for images only built or loaded locally.
    pub repo_digests: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Status {
    /// An entry of the list matches the image id or one of its repository digests.
    Approved { by: String },
    /// The image has digests and none is approved.
    Unapproved,
    /// The engine gave no image id and no repository digest (the image was removed, or
    /// the engine did not answer for it): nothing to compare.
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Assessment {
    #[serde(flatten)]
    pub status: Status,
    /// The tag, when the container was started from one rather than by digest or id
    /// (`latest` when the reference names none).
    pub mutable_tag: Option<String>,
}

impl Assessment {
    pub fn status_str(&self) -> &'static str {
        match self.status {
            Status::Approved { .. } => "approved",
            Status::Unapproved => "unapproved",
            Status::Unknown => "unknown",
        }
    }
}

/// `(repository, digest)` of each well-formed `RepoDigests` entry; an engine's malformed
/// entries are skipped.
fn repo_digests(facts: &ImageFacts) -> Vec<(String, String)> {
    facts
        .repo_digests
        .iter()
        .filter_map(|r| {
            let (repo, d) = r.split_once('@')?;
            Some((normalize_repository(repo), normalize_digest(d)?))
        })
        .collect()
}

/// The repository of a reference (`host:5000/a/b:tag@sha256:..` → `host:5000/a/b`).
fn repository(reference: &str) -> String {
    let name = reference.split_once('@').map_or(reference, |(n, _)| n);
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    let repo = match name[slash..].rfind(':') {
        Some(i) => &name[..slash + i],
        None => name,
    };
    normalize_repository(repo)
}

/// Whether `reference` names the image by id (full `sha256:...`, or a hex prefix of it).
fn is_image_id(reference: &str, image_id: Option<&str>) -> bool {
    let bare = reference.strip_prefix("sha256:").unwrap_or(reference);
    if reference.starts_with("sha256:") {
        return true;
    }
    bare.len() >= 12
        && bare.bytes().all(|b| b.is_ascii_hexdigit())
        && image_id.is_some_and(|i| i.trim_start_matches("sha256:").starts_with(bare))
}

/// The tag a reference follows, when it is not pinned by digest or id.
pub fn mutable_tag(reference: &str, image_id: Option<&str>) -> Option<String> {
    if reference.is_empty() || reference.contains('@') || is_image_id(reference, image_id) {
        return None;
    }
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    Some(
        reference[slash..]
            .rsplit_once(':')
            .map_or("latest", |(_, t)| t)
            .to_string(),
    )
}

/// Judges one image.
pub fn assess(facts: &ImageFacts, list: &ApprovedList) -> Assessment {
    let image_id = facts.image_id.as_deref().and_then(normalize_digest);
    let repo_digests = repo_digests(facts);
    let repo = if is_image_id(&facts.reference, image_id.as_deref()) || facts.reference.is_empty() {
        normalize_repository(&facts.repository)
    } else {
        repository(&facts.reference)
    };
    let mutable_tag = mutable_tag(&facts.reference, image_id.as_deref());
    let matches = |e: &ApprovedEntry| match e {
        ApprovedEntry::Digest(d) => {
            image_id.as_deref() == Some(d.as_str()) || repo_digests.iter().any(|(_, rd)| rd == d)
        }
        ApprovedEntry::Reference { repository, digest } => {
            repo_digests
                .iter()
                .any(|(r, d)| r == repository && d == digest)
                // Offline images have no repository digest: their id, under the repository
                // the container names, stands in for it.
                || (image_id.as_deref() == Some(digest.as_str()) && &repo == repository)
        }
    };
    let status = if image_id.is_none() && repo_digests.is_empty() {
        Status::Unknown
    } else {
        match list.entries.iter().find(|e| matches(&e.value)) {
            Some(e) => Status::Approved {
                by: format!("{}:{}", list.file.display(), e.line),
            },
            None => Status::Unapproved,
        }
    };
    Assessment {
        status,
        mutable_tag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const ID: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const RD: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn list(text: &str) -> ApprovedList {
        ApprovedList::parse(Path::new("ok.txt"), text).unwrap()
    }

    fn facts(reference: &str, repo_digests: &[&str]) -> ImageFacts {
        ImageFacts {
            reference: reference.into(),
            repository: String::new(),
            image_id: Some(ID.into()),
            repo_digests: repo_digests.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn digest_entries_match_the_image_id_or_a_repo_digest() {
        let by_id = list(&format!("# x\n{ID}\n"));
        let a = assess(&facts("busybox:1", &[]), &by_id);
        assert_eq!(
            a.status,
            Status::Approved {
                by: "ok.txt:2".into()
            }
        );
        assert_eq!(a.mutable_tag.as_deref(), Some("1"));
        let by_rd = list(RD);
        let f = facts(
            &format!("docker.io/library/nginx@{RD}"),
            &[&format!("nginx@{RD}")],
        );
        let a = assess(&f, &by_rd);
        assert_eq!(
            a.status,
            Status::Approved {
                by: "ok.txt:1".into()
            }
        );
        assert_eq!(a.mutable_tag, None);
        assert_eq!(
            assess(&facts("nginx", &[]), &by_rd).status,
            Status::Unapproved
        );
    }

    #[test]
    fn references_match_repository_and_digest() {
        let l = list(&format!("nginx@{RD}\nbusybox@{ID}\n"));
        // Same digest under another repository: not approved.
        let f = facts("evil/nginx:1", &[&format!("evil/nginx@{RD}")]);
        assert_eq!(assess(&f, &l).status, Status::Unapproved);
        let f = facts("nginx:1.27", &[&format!("docker.io/library/nginx@{RD}")]);
        assert_eq!(
            assess(&f, &l).status,
            Status::Approved {
                by: "ok.txt:1".into()
            }
        );
        // An offline image: its id under the repository the container names.
        assert_eq!(
            assess(&facts("busybox:1", &[]), &l).status,
            Status::Approved {
                by: "ok.txt:2".into()
            }
        );
        assert_eq!(
            assess(&facts("other:1", &[]), &l).status,
            Status::Unapproved
        );
        // Started by id: the repository is the engine's name for the image.
        let mut f = facts(ID, &[]);
        f.repository = "docker.io/library/busybox".into();
        assert_eq!(
            assess(&f, &l).status,
            Status::Approved {
                by: "ok.txt:2".into()
            }
        );
    }

    #[test]
    fn mutable_tags() {
        assert_eq!(mutable_tag("nginx", None).as_deref(), Some("latest"));
        assert_eq!(mutable_tag("nginx:latest", None).as_deref(), Some("latest"));
        assert_eq!(
            mutable_tag("host:5000/app", None).as_deref(),
            Some("latest")
        );
        assert_eq!(mutable_tag("host:5000/app:v2", None).as_deref(), Some("v2"));
        assert_eq!(mutable_tag(&format!("app:v2@{RD}"), None), None);
        assert_eq!(mutable_tag(ID, Some(ID)), None);
        assert_eq!(mutable_tag("111111111111", Some(ID)), None);
        // A hex name that is not a prefix of the id is a repository name.
        assert_eq!(
            mutable_tag("abcdefabcdef", Some(ID)).as_deref(),
            Some("latest")
        );
    }

    #[test]
    fn no_digests_at_all_is_unknown_and_lying_repo_digests_are_ignored() {
        let l = list(ID);
        let f = ImageFacts {
            reference: "gone:1".into(),
            repository: String::new(),
            image_id: None,
            repo_digests: vec!["garbage".into(), "x@sha256:nothex".into()],
        };
        assert_eq!(assess(&f, &l).status, Status::Unknown);
        let f = ImageFacts {
            image_id: Some("not-a-digest".into()),
            ..f
        };
        assert_eq!(assess(&f, &l).status, Status::Unknown);
    }
}
