//! Per-exec environment checks: variables that change what code a process runs, set to a
//! value that neither the image's config nor the container's configuration gives. Pure.
//!
//! The baseline is the image's `Env` **and** the container's configured `Env`: a variable set
//! by `docker run -e` is reported once, at start (`evt.type=container`), not on every exec.

use driftwatch_model::{DriftFinding, DriftKind, DriftSubject, Verdict};
use driftwatch_runtime::{MountKind, MountTable};

use super::posture::{ENGINE_DEFAULT_PATH, env_value, split_env};

/// Variables that make the loader, an interpreter or a shell load code from elsewhere.
/// `PATH` is judged apart: only entries in writable places count.
pub const CODE_LOADING_VARS: [&str; 17] = [
    "LD_PRELOAD",
    "LD_AUDIT",
    "LD_LIBRARY_PATH",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "NODE_OPTIONS",
    "NODE_PATH",
    "PERL5LIB",
    "PERL5OPT",
    "PERLLIB",
    "RUBYLIB",
    "RUBYOPT",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "BASH_ENV",
];

/// Directories any user can write in a container.
const WRITABLE_DIRS: [&str; 5] = ["/tmp", "/var/tmp", "/dev/shm", "/run/shm", "/dev/mqueue"];

pub fn is_code_loading(key: &str) -> bool {
    CODE_LOADING_VARS.contains(&key)
}

/// What an exec's environment is compared with.
#[derive(Clone, Copy, Debug, Default)]
pub struct EnvBaseline<'a> {
    /// The image's `Env`; `None` when unknown (image removed, engine silent).
    pub image: Option<&'a [String]>,
    /// The container's configured `Env` (image's merged with `-e`); `None` when unknown.
    pub container: Option<&'a [String]>,
    /// The container's mounts, to tell volumes and tmpfs in `PATH`.
    pub mounts: Option<&'a MountTable>,
}

impl EnvBaseline<'_> {
    fn values(&self, key: &str) -> (Option<&str>, Option<&str>) {
        (
            self.image.and_then(|e| env_value(e, key)),
            self.container.and_then(|e| env_value(e, key)),
        )
    }

    fn known(&self) -> bool {
        self.image.is_some() || self.container.is_some()
    }
}

/// The config findings of one exec's environment, in the order the variables appear.
pub fn exec_env_findings(env: &[String], base: &EnvBaseline<'_>) -> Vec<DriftFinding> {
    let mut out = Vec::new();
    for kv in env {
        let (key, value) = split_env(kv);
        let finding = if key == "PATH" {
            path_finding(value, base)
        } else if is_code_loading(key) && !value.is_empty() {
            var_finding(key, value, base)
        } else {
            None
        };
        if let Some(f) = finding
            && !out.iter().any(|o: &DriftFinding| o.path == f.path)
        {
            out.push(f);
        }
    }
    out
}

fn config_finding(verdict: Verdict, key: &str, detail: String) -> DriftFinding {
    DriftFinding {
        provenance: Default::default(),
        enforcement: None,
        kind: DriftKind::Config,
        subject: DriftSubject::Env,
        verdict,
        path: key.to_string(),
        hash: None,
        image_hash: None,
        detail: Some(detail),
    }
}

fn var_finding(key: &str, value: &str, base: &EnvBaseline<'_>) -> Option<DriftFinding> {
    let (image, container) = base.values(key);
    if image == Some(value) || container == Some(value) {
        return None;
    }
    let (verdict, baseline) = match (image, container) {
        _ if !base.known() => (
            Verdict::Added,
            "the container's config is unknown".to_string(),
        ),
        (None, None) => (Verdict::Added, "the image does not set it".to_string()),
        (Some(i), _) => (Verdict::Modified, format!("the image sets {i:?}")),
        (None, Some(c)) => (
            Verdict::Modified,
            format!("the container's config sets {c:?}"),
        ),
    };
    Some(config_finding(
        verdict,
        key,
        format!("{key}={value:?} at exec; {baseline}"),
    ))
}

/// `PATH` is drift when it differs from the image's and the container's, and one of the
/// entries they do not have is in a writable place.
fn path_finding(value: &str, base: &EnvBaseline<'_>) -> Option<DriftFinding> {
    let (image, container) = base.values("PATH");
    let default = image.or(container).unwrap_or(ENGINE_DEFAULT_PATH);
    if value == default || image == Some(value) || container == Some(value) {
        return None;
    }
    let known: Vec<&str> = [image, container, Some(default)]
        .into_iter()
        .flatten()
        .flat_map(|p| p.split(':'))
        .collect();
    let (entry, why) = value
        .split(':')
        .filter(|e| !known.contains(e))
        .find_map(|e| writable_place(e, base.mounts).map(|why| (e, why)))?;
    Some(config_finding(
        Verdict::Modified,
        "PATH",
        format!(
            "PATH={value:?} at exec includes {entry:?} ({why}); the image's PATH is {default:?}"
        ),
    ))
}

/// Why a `PATH` entry is a place code can be dropped, if it is.
fn writable_place(entry: &str, mounts: Option<&MountTable>) -> Option<&'static str> {
    if entry.is_empty() || !entry.starts_with('/') {
        return Some("relative: the working directory");
    }
    let trimmed = entry.trim_end_matches('/');
    if WRITABLE_DIRS
        .iter()
        .any(|d| trimmed == *d || trimmed.starts_with(&format!("{d}/")))
    {
        return Some("world-writable directory");
    }
    match mounts?.find(entry)?.kind() {
        MountKind::Tmpfs => Some("tmpfs"),
        MountKind::Bind { .. } => Some("volume or bind mount"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn found(env: &[&str], base: &EnvBaseline<'_>) -> Vec<(String, Verdict)> {
        exec_env_findings(&strings(env), base)
            .into_iter()
            .map(|f| (f.path, f.verdict))
            .collect()
    }

    #[test]
    fn image_env_is_not_drift_an_exported_preload_is() {
        let image = strings(&["PATH=/usr/bin:/bin", "PYTHONPATH=/app"]);
        let base = EnvBaseline {
            image: Some(&image),
            container: Some(&image),
            mounts: None,
        };
        assert_eq!(
            found(
                &["PATH=/usr/bin:/bin", "PYTHONPATH=/app", "HOME=/root"],
                &base
            ),
            []
        );
        let f = exec_env_findings(
            &strings(&["PYTHONPATH=/tmp/mods", "LD_PRELOAD=/usr/lib/libx.so"]),
            &base,
        );
        assert_eq!(f.len(), 2);
        assert_eq!(
            (f[0].path.as_str(), f[0].verdict, f[0].subject),
            ("PYTHONPATH", Verdict::Modified, DriftSubject::Env)
        );
        assert_eq!(
            f[0].detail.as_deref(),
            Some("PYTHONPATH=\"/tmp/mods\" at exec; the image sets \"/app\"")
        );
        assert_eq!(
            (f[1].path.as_str(), f[1].verdict),
            ("LD_PRELOAD", Verdict::Added)
        );
        // Empty LD_PRELOAD loads nothing.
        assert_eq!(found(&["LD_PRELOAD="], &base), []);
    }

    #[test]
    fn container_config_env_is_reported_at_start_not_per_exec() {
        let image: Vec<String> = Vec::new();
        let container = strings(&["NODE_OPTIONS=--max-old-space-size=512"]);
        let base = EnvBaseline {
            image: Some(&image),
            container: Some(&container),
            mounts: None,
        };
        assert_eq!(found(&["NODE_OPTIONS=--max-old-space-size=512"], &base), []);
        assert_eq!(
            found(&["NODE_OPTIONS=--require /tmp/x.js"], &base),
            [("NODE_OPTIONS".to_string(), Verdict::Modified)]
        );
    }

    #[test]
    fn unknown_config_reports_every_code_loading_variable() {
        let base = EnvBaseline::default();
        assert_eq!(
            found(&["LD_LIBRARY_PATH=/opt/lib", "PATH=/usr/bin:/bin"], &base),
            [("LD_LIBRARY_PATH".to_string(), Verdict::Added)]
        );
    }

    #[test]
    fn path_into_writable_places() {
        let image = strings(&["PATH=/usr/local/bin:/usr/bin:/bin"]);
        let base = EnvBaseline {
            image: Some(&image),
            container: Some(&image),
            mounts: None,
        };
        // Extended with image directories: fine.
        assert_eq!(found(&["PATH=/opt/app/bin:/usr/bin:/bin"], &base), []);
        for p in [
            "PATH=/tmp/bin:/usr/bin:/bin",
            "PATH=/usr/bin:/dev/shm",
            "PATH=.:/usr/bin",
            "PATH=/usr/bin::/bin",
            "PATH=/var/tmp/",
        ] {
            assert_eq!(
                found(&[p], &base),
                [("PATH".into(), Verdict::Modified)],
                "{p}"
            );
        }
        // Docker's default PATH when the image sets none.
        let empty: Vec<String> = Vec::new();
        let base = EnvBaseline {
            image: Some(&empty),
            container: Some(&empty),
            mounts: None,
        };
        assert_eq!(found(&[&format!("PATH={ENGINE_DEFAULT_PATH}")], &base), []);
    }

    #[test]
    fn path_into_a_volume() {
        let mounts = MountTable::parse(
            "1 0 0:50 / / rw - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w\n\
             2 1 8:1 /srv/tools /opt/tools rw - ext4 /dev/sda1 rw\n\
             3 1 0:51 / /scratch rw - tmpfs tmpfs rw\n",
        )
        .unwrap();
        let image = strings(&["PATH=/usr/bin:/bin"]);
        let base = EnvBaseline {
            image: Some(&image),
            container: Some(&image),
            mounts: Some(&mounts),
        };
        let f = exec_env_findings(&strings(&["PATH=/opt/tools/bin:/usr/bin"]), &base);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].detail
                .as_deref()
                .unwrap()
                .contains("volume or bind mount"),
            "{:?}",
            f[0].detail
        );
        assert_eq!(found(&["PATH=/scratch:/usr/bin"], &base).len(), 1);
        assert_eq!(found(&["PATH=/opt/app/bin:/usr/bin"], &base), []);
    }
}
