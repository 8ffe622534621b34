//! Container identity from cgroup names and paths, with no engine involved.
//!
//! Every engine puts a container's processes in a cgroup whose name carries the container id.
//! The forms recognised (leaf first; `<id>` is 64 hex characters):
//!
//! | form | engine |
//! | --- | --- |
//! | `/docker/<id>` (cgroupfs driver) | Docker |
//! | `docker-<id>.scope` (systemd driver, e.g. `/system.slice/docker-<id>.scope`) | Docker |
//! | `cri-containerd-<id>.scope` (e.g. under `kubepods-...slice`) | containerd |
//! | `nerdctl-<id>.scope` | containerd |
//! | `crio-<id>.scope`, `crio-<id>` (cgroupfs) | CRI-O |
//! | `libpod-<id>.scope`, `/libpod_parent/libpod-<id>` | podman |
//! | `/kubepods/<qos>/pod<uid>/<id>`, `/kubepods/pod<uid>/<id>` | not implied (any CRI engine) |
//! | containerd's `/<namespace>/<id>` | containerd (`moby` namespace: Docker) |
//! | a bare `<id>` with no parent | not implied |
//!
//! A cgroup *below* one of these (podman/crun's `libpod-<id>.scope/container`, systemd running
//! inside a container creating `docker-<id>.scope/init.scope`) belongs to the same container:
//! the innermost component that names a container wins, so Docker-in-Docker
//! (`/docker/<outer>/docker/<inner>`) yields the inner container.
//!
//! Everything else is not a container: `init.scope`, `user.slice`, `system.slice/cron.service`,
//! conmon's own `crio-conmon-<id>.scope` / `libpod-conmon-<id>.scope` (the monitor runs on the
//! host), the pod cgroup `pod<uid>` itself.
//!
//! **Non-hex ids.** `ctr -n default run IMAGE web-1` creates a containerd container whose id
//! is `web-1`, and runc puts it in cgroup `/default/web-1` (checked on containerd 1.6 with
//! runc 1.1, in both the v1 hierarchies and the unified one). A non-hex leaf is taken as a
//! container ([`ContainerId::named`]) only when it is a containerd identifier *and* its parent
//! is one of the containerd namespaces the caller names ([`DEFAULT_NAMED_NAMESPACES`] unless
//! told otherwise): a two-level `/<word>/<word>` path under any other parent cannot be told
//! apart from an ordinary host cgroup. Such a match implies containerd. A host cgroup that
//! happens to be called `/default/<word>` would be taken for a container: the engine then
//! does not know it and it stays `unknown`, with no name or image.

use driftwatch_model::{ContainerId, Engine, is_containerd_identifier};

/// The containerd namespaces under which a non-hex cgroup leaf is a container by default:
/// `ctr`'s own and Kubernetes'. (`moby` holds Docker's containers, always 64-hex.)
pub const DEFAULT_NAMED_NAMESPACES: &[&str] = &["default", "k8s.io"];

/// A cgroup that names a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupMatch {
    pub id: ContainerId,
    /// The engine the cgroup's naming convention implies, when it implies one.
    pub engine: Option<Engine>,
}

/// The container a cgroup name or path belongs to.
///
/// Accepts a full path (`/system.slice/docker-<id>.scope`, `/docker/<id>`), a path relative to
/// a cgroup mount, or a leaf name alone (`docker-<id>.scope`). See the module docs for the forms.
pub fn container_id_from_cgroup(name_or_path: &str) -> Option<ContainerId> {
    container_from_cgroup(name_or_path).map(|m| m.id)
}

/// Like [`container_id_from_cgroup`], also saying which engine the name implies.
pub fn container_from_cgroup(name_or_path: &str) -> Option<CgroupMatch> {
    container_from_cgroup_in(name_or_path, DEFAULT_NAMED_NAMESPACES)
}

/// Like [`container_from_cgroup`], taking non-hex ids under the given containerd namespaces.
pub fn container_from_cgroup_in<S: AsRef<str>>(
    name_or_path: &str,
    named_namespaces: &[S],
) -> Option<CgroupMatch> {
    let components: Vec<&str> = name_or_path
        .trim()
        .split('/')
        .filter(|c| !c.is_empty())
        .collect();
    // Innermost first: a process in a sub-cgroup of a container belongs to that container.
    (0..components.len()).rev().find_map(|i| {
        let parent = i.checked_sub(1).map(|p| components[p]);
        match_component(components[i], parent)
            .or_else(|| match_named(components[i], parent, named_namespaces))
    })
}

/// The form the sensor has: the kernfs name of a process's cgroup-v2 cgroup and the name of
/// its parent (`None` at the root). Tries the leaf, then the parent (for sub-cgroups such as
/// crun's `libpod-<id>.scope/container`).
pub fn container_from_cgroup_leaf(leaf: &str, parent: Option<&str>) -> Option<CgroupMatch> {
    container_from_cgroup_leaf_in(leaf, parent, DEFAULT_NAMED_NAMESPACES)
}

/// Like [`container_from_cgroup_leaf`], taking non-hex ids under the given containerd
/// namespaces (a named container's sub-cgroups are not recognised: only its own cgroup).
pub fn container_from_cgroup_leaf_in<S: AsRef<str>>(
    leaf: &str,
    parent: Option<&str>,
    named_namespaces: &[S],
) -> Option<CgroupMatch> {
    let leaf = leaf.trim();
    let parent = parent.map(str::trim).filter(|p| !p.is_empty() && *p != "/");
    match_component(leaf, parent)
        .or_else(|| parent.and_then(|p| match_component(p, None)))
        .or_else(|| match_named(leaf, parent, named_namespaces))
}

/// A containerd client's chosen id directly under one of `namespaces`.
fn match_named<S: AsRef<str>>(
    name: &str,
    parent: Option<&str>,
    namespaces: &[S],
) -> Option<CgroupMatch> {
    let parent = parent?;
    if !namespaces.iter().any(|n| n.as_ref() == parent) || !is_containerd_identifier(name) {
        return None;
    }
    Some(CgroupMatch {
        id: ContainerId::named(name).ok()?,
        engine: Some(Engine::Containerd),
    })
}

/// The container of a process from the text of `/proc/<pid>/cgroup`: the cgroup-v2 line
/// (`0::/path`) first, then the v1 hierarchies in file order.
pub fn container_from_proc_cgroup(text: &str) -> Option<CgroupMatch> {
    let mut v1 = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(hierarchy), Some(_controllers), Some(path)) =
            (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if hierarchy == "0" {
            if let Some(m) = container_from_cgroup(path) {
                return Some(m);
            }
        } else {
            v1.push(path);
        }
    }
    v1.into_iter().find_map(container_from_cgroup)
}

/// Leaf prefixes of scope-style names and the engine each implies.
const PREFIXES: &[(&str, Option<Engine>)] = &[
    ("docker-", Some(Engine::Docker)),
    ("cri-containerd-", Some(Engine::Containerd)),
    ("nerdctl-", Some(Engine::Containerd)),
    ("crio-", Some(Engine::Crio)),
    ("libpod-", Some(Engine::Podman)),
];

fn match_component(name: &str, parent: Option<&str>) -> Option<CgroupMatch> {
    for (prefix, engine) in PREFIXES {
        if let Some(rest) = name.strip_prefix(prefix) {
            let id = rest.strip_suffix(".scope").unwrap_or(rest);
            return hex_id(id).map(|id| CgroupMatch {
                id,
                engine: *engine,
            });
        }
    }
    let id = hex_id(name)?;
    Some(CgroupMatch {
        id,
        engine: parent.and_then(engine_of_parent),
    })
}

/// What the parent of a bare `<id>` cgroup says about the engine.
fn engine_of_parent(parent: &str) -> Option<Engine> {
    match parent {
        "docker" | "moby" => Some(Engine::Docker),
        "libpod_parent" => Some(Engine::Podman),
        p if p.starts_with("pod") || p.starts_with("kubepods") => None,
        p if is_containerd_namespace(p) => Some(Engine::Containerd),
        _ => None,
    }
}

/// containerd's namespace grammar (`[A-Za-z0-9]+([._-][A-Za-z0-9]+)*`), minus systemd unit names.
fn is_containerd_namespace(p: &str) -> bool {
    let systemd_unit = [".slice", ".scope", ".service", ".mount", ".socket"]
        .iter()
        .any(|s| p.ends_with(s));
    let mut prev_sep = true;
    for b in p.bytes() {
        let sep = matches!(b, b'.' | b'_' | b'-');
        if sep && prev_sep || !sep && !b.is_ascii_alphanumeric() {
            return false;
        }
        prev_sep = sep;
    }
    !p.is_empty() && !prev_sep && !systemd_unit
}

fn hex_id(s: &str) -> Option<ContainerId> {
    // ContainerId::new accepts upper case; cgroup names from engines are lower case only.
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    ContainerId::new(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "f8be0317314e5a0b9a4f3c1d2e7b6a5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a";
    const ID2: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn m(s: &str) -> Option<(String, Option<Engine>)> {
        container_from_cgroup(s).map(|m| (m.id.as_str().to_string(), m.engine))
    }

    fn yes(s: &str, engine: Option<Engine>) {
        assert_eq!(m(s), Some((ID.to_string(), engine)), "{s}");
    }

    #[test]
    fn docker_forms() {
        yes(&format!("/docker/{ID}"), Some(Engine::Docker));
        yes(&format!("docker/{ID}"), Some(Engine::Docker));
        yes(&format!("docker-{ID}.scope"), Some(Engine::Docker));
        yes(
            &format!("/system.slice/docker-{ID}.scope"),
            Some(Engine::Docker),
        );
        yes(
            &format!("/system.slice/docker-{ID}.scope\n"),
            Some(Engine::Docker),
        );
        // A process in a sub-cgroup the container made itself (systemd inside the container).
        yes(
            &format!("/system.slice/docker-{ID}.scope/init.scope"),
            Some(Engine::Docker),
        );
        yes(
            &format!("/docker/{ID}/system.slice/cron.service"),
            Some(Engine::Docker),
        );
    }

    #[test]
    fn docker_in_docker_yields_the_inner_container() {
        assert_eq!(
            m(&format!("/docker/{ID2}/docker/{ID}")),
            Some((ID.to_string(), Some(Engine::Docker)))
        );
    }

    #[test]
    fn kubernetes_forms() {
        let uid = "pod8d3f5a2e-1b2c-4d5e-8f9a-0b1c2d3e4f5a";
        yes(&format!("/kubepods/burstable/{uid}/{ID}"), None);
        yes(&format!("/kubepods/besteffort/{uid}/{ID}"), None);
        yes(&format!("/kubepods/{uid}/{ID}"), None);
        yes(&format!("/kubepods/{uid}/crio-{ID}"), Some(Engine::Crio));
        yes(
            &format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8d3f5a2e_1b2c.slice/cri-containerd-{ID}.scope"
            ),
            Some(Engine::Containerd),
        );
        yes(
            &format!("kubepods-besteffort-pod1.slice/crio-{ID}.scope"),
            Some(Engine::Crio),
        );
        yes(
            &format!("kubepods-pod1.slice/docker-{ID}.scope"),
            Some(Engine::Docker),
        );
        // The pod cgroup itself is no container.
        assert_eq!(m(&format!("/kubepods/burstable/{uid}")), None);
    }

    #[test]
    fn crio_podman_containerd_forms() {
        yes(&format!("crio-{ID}.scope"), Some(Engine::Crio));
        yes(
            &format!("/machine.slice/libpod-{ID}.scope"),
            Some(Engine::Podman),
        );
        yes(
            &format!("/machine.slice/libpod-{ID}.scope/container"),
            Some(Engine::Podman),
        );
        yes(&format!("/libpod_parent/libpod-{ID}"), Some(Engine::Podman));
        yes(
            &format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"),
            Some(Engine::Podman),
        );
        yes(&format!("/default/{ID}"), Some(Engine::Containerd));
        yes(&format!("/k8s.io/{ID}"), Some(Engine::Containerd));
        yes(&format!("/moby/{ID}"), Some(Engine::Docker));
        yes(
            &format!("/system.slice/nerdctl-{ID}.scope"),
            Some(Engine::Containerd),
        );
    }

    #[test]
    fn bare_id_implies_no_engine() {
        yes(ID, None);
        yes(&format!("/{ID}"), None);
        // Under a systemd unit: a container id, but no convention names the engine.
        yes(&format!("/system.slice/{ID}"), None);
    }

    #[test]
    fn not_containers() {
        for s in [
            "",
            "/",
            "init.scope",
            "/init.scope",
            "user.slice",
            "/user.slice/user-0.slice/session-3.scope",
            "/system.slice/cron.service",
            "/system.slice/docker.service",
            "/docker",
            "/mycontainer",
            "/system.slice/mycontainer",
            "/other-ns/mycontainer",
            "/default/my container",
            "docker-.scope",
            "docker-abc.scope",
            "docker-zz.scope",
        ] {
            assert_eq!(m(s), None, "{s:?}");
        }
        assert_eq!(m(&format!("crio-conmon-{ID}.scope")), None);
        assert_eq!(m(&format!("libpod-conmon-{ID}.scope")), None);
        assert_eq!(m(&format!("docker-{ID}x.scope")), None);
        assert_eq!(m(&format!("/docker/{}", &ID[..63])), None);
        assert_eq!(m(&format!("/docker/{}", ID.to_uppercase())), None);
        assert_eq!(m(&format!("/docker/{ID}0")), None);
    }

    #[test]
    fn leaf_and_parent_form() {
        let l = |leaf: &str, parent: Option<&str>| {
            container_from_cgroup_leaf(leaf, parent).map(|m| (m.id.as_str().to_string(), m.engine))
        };
        let docker = Some((ID.to_string(), Some(Engine::Docker)));
        assert_eq!(l(ID, Some("docker")), docker);
        assert_eq!(
            l(&format!("docker-{ID}.scope"), Some("system.slice")),
            docker
        );
        assert_eq!(l("init.scope", Some(&format!("docker-{ID}.scope"))), docker);
        assert_eq!(
            l("container", Some(&format!("libpod-{ID}.scope"))),
            Some((ID.to_string(), Some(Engine::Podman)))
        );
        assert_eq!(l(ID, Some("pod1234")), Some((ID.to_string(), None)));
        assert_eq!(
            l(ID, Some("k8s.io")),
            Some((ID.to_string(), Some(Engine::Containerd)))
        );
        assert_eq!(l(ID, None), Some((ID.to_string(), None)));
        assert_eq!(l(ID, Some("/")), Some((ID.to_string(), None)));
        assert_eq!(l("init.scope", None), None);
        assert_eq!(l("init.scope", Some("/")), None);
        assert_eq!(l("session-1.scope", Some("user-0.slice")), None);
        assert_eq!(l("cron.service", Some("system.slice")), None);
    }

    #[test]
    fn proc_cgroup_file() {
        let hybrid = format!(
            "12:pids:/docker/{ID2}\n11:memory:/docker/{ID2}\n1:name=systemd:/docker/{ID2}\n0::/docker/{ID}\n"
        );
        assert_eq!(container_from_proc_cgroup(&hybrid).unwrap().id.as_str(), ID);
        let v1_only = format!("4:cpu,cpuacct:/\n3:memory:/system.slice/docker-{ID}.scope\n");
        assert_eq!(
            container_from_proc_cgroup(&v1_only).unwrap().id.as_str(),
            ID
        );
        assert_eq!(
            container_from_proc_cgroup("0::/init.scope\n1:name=systemd:/init.scope"),
            None
        );
        assert_eq!(container_from_proc_cgroup("garbage\n\n::\n"), None);
    }

    #[test]
    fn named_containerd_ids_under_known_namespaces() {
        let named = |s: &str| m(s).map(|(id, e)| (id, e.unwrap()));
        let ctr = |id: &str| Some((id.to_string(), Engine::Containerd));
        assert_eq!(named("/default/probe-ctr"), ctr("probe-ctr"));
        assert_eq!(named("/k8s.io/web_1.a"), ctr("web_1.a"));
        assert_eq!(named("/default/probe-ctr/sub"), ctr("probe-ctr"));
        // Hex ids keep their own rule (and their engine).
        yes(&format!("/default/{ID}"), Some(Engine::Containerd));
        assert_eq!(m("/moby/abc"), None);
        assert_eq!(m("/mine/abc"), None);
        let c = container_from_cgroup_in("/mine/abc", &["mine"]).unwrap();
        assert_eq!((c.id.as_str(), c.engine), ("abc", Some(Engine::Containerd)));
        let l = |leaf: &str, parent: Option<&str>| {
            container_from_cgroup_leaf(leaf, parent).map(|m| m.id.as_str().to_string())
        };
        assert_eq!(
            l("probe-ctr", Some("default")).as_deref(),
            Some("probe-ctr")
        );
        assert_eq!(l("probe-ctr", None), None);
        assert_eq!(l("init.scope", Some("system.slice")), None);
        assert_eq!(
            l("cron.service", Some("default")).as_deref(),
            Some("cron.service")
        );
        assert_eq!(
            container_from_cgroup_leaf_in("x", Some("default"), &[] as &[&str]),
            None
        );
        // /proc/<pid>/cgroup of a `ctr run` container on the hybrid hierarchy, as seen here.
        let proc =
            "9:name=systemd:/default/probe-ctr\n1:cpu:/default/probe-ctr\n0::/default/probe-ctr\n";
        assert_eq!(
            container_from_proc_cgroup(proc).unwrap().id.as_str(),
            "probe-ctr"
        );
    }

    #[test]
    fn namespace_grammar() {
        for ok in ["default", "k8s.io", "moby", "a-b_c.d", "x1"] {
            assert!(is_containerd_namespace(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a..b",
            "a/b",
            "system.slice",
            "x.scope",
            "a b",
        ] {
            assert!(!is_containerd_namespace(bad), "{bad}");
        }
    }
}
