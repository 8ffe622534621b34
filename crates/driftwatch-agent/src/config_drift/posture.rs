//! Posture checks: a container's runtime configuration (the engine's record) against its
//! image's config and the engine's safe defaults, one finding per weak or added setting.
//! Pure: no I/O, so every check is unit-tested.

use std::path::Path;

use driftwatch_model::{DriftFinding, DriftKind, DriftSubject, Verdict};
use driftwatch_runtime::{MountSpec, RuntimeConfig};

/// `PATH` Docker gives a container whose image sets none; it is not drift.
pub(crate) const ENGINE_DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Host paths whose mount gives a container control of, or secrets of, the host.
const SENSITIVE_HOST_DIRS: [&str; 11] = [
    "/",
    "/proc",
    "/sys",
    "/etc",
    "/var/run",
    "/run",
    "/dev",
    "/root",
    "/boot",
    "/var/lib/docker",
    "/var/lib/kubelet",
];

/// Container engine API sockets: whoever can connect to one controls the host.
const ENGINE_SOCKETS: [&str; 5] = [
    "docker.sock",
    "containerd.sock",
    "crio.sock",
    "podman.sock",
    "dockershim.sock",
];

fn finding(subject: DriftSubject, verdict: Verdict, path: &str, detail: String) -> DriftFinding {
    DriftFinding {
        provenance: Default::default(),
        enforcement: None,
        kind: DriftKind::Config,
        subject,
        verdict,
        path: path.to_string(),
        hash: None,
        image_hash: None,
        detail: Some(detail),
    }
}

/// `KEY=value` → (`KEY`, `value`); a bare `KEY` has an empty value.
pub(crate) fn split_env(kv: &str) -> (&str, &str) {
    kv.split_once('=').unwrap_or((kv, ""))
}

/// The last value of `key` in a `KEY=value` list (the engine lets later entries win).
pub(crate) fn env_value<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .map(|kv| split_env(kv))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Every posture finding of a container: `env` is its configured `Config.Env` (which the
/// engine has already merged with the image's), `config` the rest of the record.
pub fn posture_findings(config: &RuntimeConfig, env: &[String]) -> Vec<DriftFinding> {
    let mut out = env_findings(config, env);
    if config.privileged {
        out.push(finding(
            DriftSubject::Privileged,
            Verdict::Added,
            "privileged",
            "privileged: every capability, every host device, no seccomp or AppArmor".into(),
        ));
    }
    for cap in config.added_capabilities() {
        let detail = format!("capability {cap} added to the engine's default set");
        out.push(finding(DriftSubject::CapAdd, Verdict::Added, &cap, detail));
    }
    for ns in config.host_namespaces() {
        let detail = format!("shares the host's {ns} namespace");
        out.push(finding(
            DriftSubject::HostNamespace,
            Verdict::Added,
            ns,
            detail,
        ));
    }
    for m in &config.mounts {
        if let Some(what) = sensitive_mount(m) {
            let detail = format!(
                "host {} ({what}) mounted {}",
                m.source.display(),
                if m.rw { "read-write" } else { "read-only" }
            );
            out.push(finding(
                DriftSubject::SensitiveMount,
                Verdict::Added,
                &m.destination.to_string_lossy(),
                detail,
            ));
        }
    }
    if !config.readonly_rootfs {
        out.push(finding(
            DriftSubject::WritableRootfs,
            Verdict::Image,
            "/",
            "root filesystem writable (not --read-only)".into(),
        ));
    }
    if let Some(f) = root_user(config) {
        out.push(f);
    }
    for (key, subject) in [
        ("seccomp", DriftSubject::SeccompUnconfined),
        ("apparmor", DriftSubject::ApparmorUnconfined),
    ] {
        if config.security_opt(key) == Some("unconfined") {
            let detail = format!("{key}=unconfined: the engine's default profile is off");
            out.push(finding(subject, Verdict::Added, key, detail));
        }
    }
    out
}

/// Variables added to or changed from the image's `Env`. Values are not shown (environments
/// carry credentials), except for variables that change what code runs, whose value is the
/// point. Without the image's config nothing can be compared: no findings.
fn env_findings(config: &RuntimeConfig, env: &[String]) -> Vec<DriftFinding> {
    let Some(image) = &config.image else {
        return Vec::new();
    };
    let mut out: Vec<DriftFinding> = Vec::new();
    for kv in env {
        let (key, value) = split_env(kv);
        if key.is_empty() || env_value(env, key) != Some(value) {
            continue; // overridden by a later entry: judge that one
        }
        let image_value = env_value(&image.env, key);
        if image_value == Some(value)
            || (key == "PATH" && image_value.is_none() && value == ENGINE_DEFAULT_PATH)
            || out.iter().any(|f| f.path == key)
        {
            continue;
        }
        let shown = |v: &str| {
            if super::exec_env::is_code_loading(key) {
                format!("{v:?}")
            } else {
                "<value not shown>".to_string()
            }
        };
        let (verdict, detail) = match image_value {
            None => (
                Verdict::Added,
                format!("{key}={} set; the image does not set it", shown(value)),
            ),
            Some(iv) => (
                Verdict::Modified,
                format!("{key}={} set; the image sets {}", shown(value), shown(iv)),
            ),
        };
        out.push(finding(DriftSubject::Env, verdict, key, detail));
    }
    out
}

/// Variables the kubelet injects into every container of a pod: `KUBERNETES_*` and Docker-style
/// service links (`WEB_SERVICE_HOST`, `WEB_SERVICE_PORT[_HTTP]`, `WEB_PORT=tcp://...`,
/// `WEB_PORT_80_TCP[_PROTO|_PORT|_ADDR]`). Not drift from the image: the platform's.
pub(crate) fn is_kubelet_injected(key: &str, value: &str) -> bool {
    if key.starts_with("KUBERNETES_")
        || key.ends_with("_SERVICE_HOST")
        || key.contains("_SERVICE_PORT")
    {
        return true;
    }
    if key.ends_with("_PORT")
        && ["tcp://", "udp://", "sctp://"]
            .iter()
            .any(|p| value.starts_with(p))
    {
        return true;
    }
    // NAME_PORT_<number>_<PROTO>[_PROTO|_PORT|_ADDR]
    let Some((_, rest)) = key
        .rsplit_once("_PORT_")
        .or_else(|| key.split_once("_PORT_"))
    else {
        return false;
    };
    let mut parts = rest.split('_');
    let number = parts
        .next()
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let proto = parts
        .next()
        .is_some_and(|p| matches!(p, "TCP" | "UDP" | "SCTP"));
    let suffix = parts.next();
    number
        && proto
        && matches!(suffix, None | Some("PROTO" | "PORT" | "ADDR"))
        && parts.next().is_none()
}

/// Why a mount is sensitive, if it is.
fn sensitive_mount(m: &MountSpec) -> Option<&'static str> {
    if m.kind != "bind" {
        return None; // named volumes live in the engine's own directory
    }
    let source = normalize(&m.source);
    let name = source.rsplit('/').next().unwrap_or_default();
    if ENGINE_SOCKETS.contains(&name) {
        return Some("container engine socket");
    }
    if source == "/" {
        return Some("the host's root filesystem");
    }
    if SENSITIVE_HOST_DIRS.contains(&source.as_str()) {
        return Some("host system directory");
    }
    if source.starts_with("/proc/") || source.starts_with("/sys/") {
        return Some("host kernel interface");
    }
    None
}

/// `/a//b/` → `/a/b`; `/` stays `/`.
fn normalize(p: &Path) -> String {
    let parts: Vec<&str> = p
        .to_str()
        .unwrap_or_default()
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

fn is_root(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or_default();
    matches!(name, "" | "0" | "root")
}

/// Runs as root: the configured user, else the image's, is root (or unset). `modified` when
/// the container's config overrides a non-root image user, `image` when inherited.
fn root_user(config: &RuntimeConfig) -> Option<DriftFinding> {
    let image_user = config.image.as_ref().map(|i| i.user.as_str());
    let effective = if config.user.is_empty() {
        image_user.unwrap_or_default()
    } else {
        config.user.as_str()
    };
    if !is_root(effective) {
        return None;
    }
    let overrides_image = !config.user.is_empty() && image_user.is_some_and(|u| !is_root(u));
    let verdict = if overrides_image {
        Verdict::Modified
    } else {
        Verdict::Image
    };
    let path = if effective.is_empty() {
        "root"
    } else {
        effective
    };
    let detail = format!(
        "runs as root (container user {:?}, image user {})",
        config.user,
        image_user.map_or("unknown".to_string(), |u| format!("{u:?}"))
    );
    Some(finding(DriftSubject::RootUser, verdict, path, detail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_runtime::ImageConfig;

    /// `docker run --read-only --user 1000` of an image with `ENV PATH=/bin`: nothing to say.
    fn hardened() -> RuntimeConfig {
        RuntimeConfig {
            network_mode: "none".into(),
            ipc_mode: "private".into(),
            readonly_rootfs: true,
            user: "1000".into(),
            image: Some(ImageConfig {
                env: vec!["PATH=/bin".into()],
                user: String::new(),
                ..ImageConfig::default()
            }),
            ..Default::default()
        }
    }

    fn subjects(f: &[DriftFinding]) -> Vec<(&'static str, &str, Verdict)> {
        f.iter()
            .map(|f| (f.subject.as_str(), f.path.as_str(), f.verdict))
            .collect()
    }

    #[test]
    fn hardened_container_has_no_findings() {
        assert_eq!(posture_findings(&hardened(), &["PATH=/bin".into()]), []);
    }

    #[test]
    fn engine_default_path_is_not_drift() {
        let mut c = hardened();
        c.image = Some(ImageConfig::default());
        let env = [format!("PATH={ENGINE_DEFAULT_PATH}")];
        assert_eq!(posture_findings(&c, &env), []);
    }

    #[test]
    fn env_added_or_changed_from_the_image() {
        let mut c = hardened();
        c.image = Some(ImageConfig {
            env: vec![
                "PATH=/bin".into(),
                "PYTHONPATH=/app".into(),
                "MODE=a".into(),
            ],
            user: String::new(),
            ..ImageConfig::default()
        });
        let env: Vec<String> = [
            "PATH=/bin",
            "PYTHONPATH=/app",
            "MODE=b",
            "EXTRA=1",
            "LD_PRELOAD=/x.so",
            "EXTRA=2",
        ]
        .map(String::from)
        .to_vec();
        let f = posture_findings(&c, &env);
        assert_eq!(
            subjects(&f),
            [
                ("env", "MODE", Verdict::Modified),
                ("env", "LD_PRELOAD", Verdict::Added),
                ("env", "EXTRA", Verdict::Added),
            ]
        );
        // Values are not shown, except for code-loading variables.
        let d: Vec<&str> = f.iter().filter_map(|f| f.detail.as_deref()).collect();
        assert!(d[0].contains("MODE=<value not shown>"), "{}", d[0]);
        assert!(d[1].contains("\"/x.so\""), "{}", d[1]);
        assert!(!d[2].contains('2'), "{}", d[2]);
    }

    #[test]
    fn kubelet_injected_variables() {
        for (k, v) in [
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
            ("WEB_SERVICE_PORT_HTTP", "80"),
            ("WEB_PORT", "tcp://10.0.0.2:80"),
            ("WEB_PORT_80_TCP", "tcp://10.0.0.2:80"),
            ("WEB_PORT_80_TCP_ADDR", "10.0.0.2"),
            ("MY_APP_PORT_53_UDP_PROTO", "udp"),
        ] {
            assert!(is_kubelet_injected(k, v), "{k}");
        }
        for (k, v) in [
            ("PORT", "8080"),
            ("APP_PORT", "8080"),
            ("DB_PORT_X", "1"),
            ("PYTHONPATH", "/app"),
        ] {
            assert!(!is_kubelet_injected(k, v), "{k}");
        }
    }

    #[test]
    fn unknown_image_config_compares_no_env() {
        let mut c = hardened();
        c.image = None;
        assert_eq!(posture_findings(&c, &["EXTRA=1".into()]), []);
    }

    #[test]
    fn privileged_caps_namespaces_and_security_options() {
        let mut c = hardened();
        c.privileged = true;
        c.cap_add = vec!["SYS_ADMIN".into(), "CAP_NET_ADMIN".into()];
        c.pid_mode = "host".into();
        c.network_mode = "host".into();
        c.security_opt = vec!["seccomp=unconfined".into(), "apparmor=unconfined".into()];
        let f = posture_findings(&c, &[]);
        assert_eq!(
            subjects(&f),
            [
                ("privileged", "privileged", Verdict::Added),
                ("cap_add", "CAP_NET_ADMIN", Verdict::Added),
                ("cap_add", "CAP_SYS_ADMIN", Verdict::Added),
                ("host_namespace", "network", Verdict::Added),
                ("host_namespace", "pid", Verdict::Added),
                ("seccomp_unconfined", "seccomp", Verdict::Added),
                ("apparmor_unconfined", "apparmor", Verdict::Added),
            ]
        );
        assert!(f.iter().all(|f| f.kind == DriftKind::Config));
    }

    #[test]
    fn sensitive_mounts() {
        let bind = |src: &str, dst: &str, rw: bool| MountSpec {
            kind: "bind".into(),
            source: src.into(),
            destination: dst.into(),
            rw,
        };
        let mut c = hardened();
        c.mounts = vec![
            bind("/var/run/docker.sock", "/var/run/docker.sock", true),
            bind("/", "/host", false),
            bind("/proc/", "/hostproc", false),
            bind("/sys/fs/cgroup", "/sys/fs/cgroup", false),
            bind("/etc", "/host-etc", false),
            bind("/srv/data", "/data", true),
            bind("/etc/app.conf", "/etc/app.conf", false),
            MountSpec {
                kind: "volume".into(),
                ..bind("/var/lib/docker/volumes/x/_data", "/x", true)
            },
        ];
        let f = posture_findings(&c, &[]);
        assert_eq!(
            subjects(&f),
            [
                ("sensitive_mount", "/var/run/docker.sock", Verdict::Added),
                ("sensitive_mount", "/host", Verdict::Added),
                ("sensitive_mount", "/hostproc", Verdict::Added),
                ("sensitive_mount", "/sys/fs/cgroup", Verdict::Added),
                ("sensitive_mount", "/host-etc", Verdict::Added),
            ]
        );
        assert_eq!(
            f[0].detail.as_deref(),
            Some("host /var/run/docker.sock (container engine socket) mounted read-write")
        );
    }

    #[test]
    fn writable_rootfs_and_root_user() {
        let mut c = hardened();
        c.readonly_rootfs = false;
        c.user = String::new();
        assert_eq!(
            subjects(&posture_findings(&c, &[])),
            [
                ("writable_rootfs", "/", Verdict::Image),
                ("root_user", "root", Verdict::Image),
            ]
        );
        c.readonly_rootfs = true;
        // The image says `USER app`, the container overrides it with root.
        c.image.as_mut().unwrap().user = "app".into();
        c.user = "0:0".into();
        assert_eq!(
            subjects(&posture_findings(&c, &[])),
            [("root_user", "0:0", Verdict::Modified)]
        );
        // The image's non-root user, inherited: fine.
        c.user = String::new();
        assert_eq!(posture_findings(&c, &[]), []);
        for root in ["root", "0", "root:root"] {
            c.user = root.into();
            assert_eq!(posture_findings(&c, &[]).len(), 1, "{root}");
        }
    }
}
