//! `docker inspect` into the model: a container's inspection and its image's into a
//! [`ContainerRecord`] (identity, image reference and digest, pod identity, overlay layers,
//! runtime configuration). Pure: the inspections are handed in, so every shape the engines
//! answer with is a fixture (tests/fixtures/docker/).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use bollard::models::{ContainerInspectResponse, HostConfig, ImageInspect, MountPoint};
use driftwatch_model::{ContainerId, ContainerMeta, Engine, ImageRef, Mount, OverlayLayers};

use crate::runtime_config::{ImageConfig, MountSpec, RuntimeConfig};
use crate::source::{ContainerRecord, RuntimeError};

/// What a record needs from the image: its repository digests and tags, and its config's
/// environment and user (for config drift).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct ImageInfo {
    repo_digests: Vec<String>,
    repo_tags: Vec<String>,
    config: ImageConfig,
    /// The image config's own labels (Docker merges them into its containers' labels).
    labels: BTreeMap<String, String>,
}

pub(super) fn image_info(img: ImageInspect) -> ImageInfo {
    let config = img.config.unwrap_or_default();
    let repo_digests = img.repo_digests.unwrap_or_default();
    ImageInfo {
        labels: config
            .labels
            .clone()
            .map(|l| l.into_iter().collect())
            .unwrap_or_default(),
        repo_digests: repo_digests.clone(),
        repo_tags: img.repo_tags.unwrap_or_default(),
        config: ImageConfig {
            env: config.env.unwrap_or_default(),
            user: config.user.unwrap_or_default(),
            repo_digests,
            diff_ids: img.root_fs.and_then(|r| r.layers).unwrap_or_default(),
        },
    }
}

/// Privileges, namespaces, mounts, user and security options from `docker inspect`, with the
/// image's config (pure).
fn runtime_config(
    host: Option<HostConfig>,
    mounts: Option<Vec<MountPoint>>,
    user: Option<String>,
    image: Option<&ImageInfo>,
) -> RuntimeConfig {
    let h = host.unwrap_or_default();
    RuntimeConfig {
        privileged: h.privileged.unwrap_or(false),
        cap_add: h.cap_add.unwrap_or_default(),
        cap_drop: h.cap_drop.unwrap_or_default(),
        network_mode: h.network_mode.unwrap_or_default(),
        pid_mode: h.pid_mode.unwrap_or_default(),
        ipc_mode: h.ipc_mode.unwrap_or_default(),
        uts_mode: h.uts_mode.unwrap_or_default(),
        userns_mode: h.userns_mode.unwrap_or_default(),
        mounts: mounts
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                Some(MountSpec {
                    kind: m.typ.unwrap_or_default(),
                    source: PathBuf::from(m.source.filter(|s| !s.is_empty())?),
                    destination: PathBuf::from(m.destination.filter(|s| !s.is_empty())?),
                    rw: m.rw.unwrap_or(true),
                })
            })
            .collect(),
        readonly_rootfs: h.readonly_rootfs.unwrap_or(false),
        user: user.unwrap_or_default(),
        security_opt: h.security_opt.unwrap_or_default(),
        image: image.map(|i| i.config.clone()),
        image_reference: String::new(),
    }
}

/// One of `docker inspect`'s `Mounts` as Falco's `container.mount[...]` shows it: the
/// engine's own words for mode and propagation, a volume by its host directory.
fn model_mount(m: &MountPoint) -> Mount {
    Mount {
        source: m.source.clone().unwrap_or_default(),
        dest: m.destination.clone().unwrap_or_default(),
        mode: m.mode.clone().unwrap_or_default(),
        rw: m.rw.unwrap_or(true),
        propagation: m
            .propagation
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default(),
    }
}

/// Builds the record from `docker inspect` output and the image's digests (pure).
pub(super) fn record_from_inspect(
    engine: Engine,
    c: ContainerInspectResponse,
    image: Option<&ImageInfo>,
) -> Result<ContainerRecord, RuntimeError> {
    let malformed = |detail: String| RuntimeError::Malformed {
        engine,
        op: "inspect",
        detail,
    };
    let raw_id = c.id.ok_or_else(|| malformed("no Id".into()))?;
    let id = ContainerId::new(&raw_id).map_err(|e| malformed(e.to_string()))?;
    let config = c.config.unwrap_or_default();
    let state = c.state.unwrap_or_default();
    let labels: BTreeMap<String, String> = config.labels.unwrap_or_default().into_iter().collect();

    let image_id = c.image.filter(|s| !s.is_empty());
    let mut image_ref = image_reference(
        config.image.as_deref().unwrap_or(""),
        image_id.as_deref(),
        image,
    );
    image_ref.id = image_id.clone();
    if image_ref.digest.is_none() {
        image_ref.digest = image
            .and_then(|i| repo_digest(&i.repo_digests, &image_ref.repository))
            .or(image_id);
    }

    let entrypoint = c
        .path
        .filter(|p| !p.is_empty())
        .into_iter()
        .chain(c.args.unwrap_or_default())
        .collect();
    let mut exposed_ports = config.exposed_ports.unwrap_or_default();
    exposed_ports.sort();
    let privileged = c.host_config.as_ref().and_then(|h| h.privileged);
    let mounts = c.mounts.iter().flatten().map(model_mount).collect();
    let started_ns = state.started_at.as_deref().and_then(parse_rfc3339_ns);
    let mut runtime_config = runtime_config(c.host_config, c.mounts, config.user, image);
    runtime_config.image_reference = config.image.clone().unwrap_or_default();

    let pod = crate::pod_identity::trusted_pod_identity(&labels, image.map(|i| &i.labels));
    if let Some(why) = &pod.distrusted {
        tracing::debug!("container {}: no pod identity: {why}", id.short());
    }
    Ok(ContainerRecord {
        pod_sandbox: false,
        meta: ContainerMeta {
            privileged,
            mounts,
            started_ns,
            k8s: pod.pod,
            id,
            engine,
            name: c
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            image: image_ref,
            labels,
            entrypoint,
        },
        pid: state
            .pid
            .filter(|p| *p > 0)
            .and_then(|p| u32::try_from(p).ok()),
        layers: c.graph_driver.and_then(|g| {
            matches!(g.name.as_str(), "overlay2" | "overlay" | "fuse-overlayfs")
                .then(|| layers_from_graph_driver(&g.data))
                .flatten()
        }),
        running: state.running.unwrap_or(false),
        started_at_ns: started_ns,
        env: config.env.unwrap_or_default(),
        exposed_ports,
        runtime_config,
    })
}

/// Repository and tag from `Config.Image`. A container started by image id (`sha256:...` or
/// a hex prefix) has no name there: take the image's first tag, if it has one.
fn image_reference(
    configured: &str,
    image_id: Option<&str>,
    image: Option<&ImageInfo>,
) -> ImageRef {
    let bare = configured.strip_prefix("sha256:").unwrap_or(configured);
    let by_id = !bare.is_empty()
        && bare.len() >= 12
        && bare.bytes().all(|b| b.is_ascii_hexdigit())
        && image_id.is_some_and(|i| i.trim_start_matches("sha256:").starts_with(bare));
    if configured.is_empty() || by_id || configured.starts_with("sha256:") {
        return image
            .and_then(|i| i.repo_tags.first())
            .map(|t| ImageRef::parse(t))
            .unwrap_or_default();
    }
    ImageRef::parse(configured)
}

/// The `sha256:...` of the RepoDigests entry for `repository`, else of the first entry.
fn repo_digest(repo_digests: &[String], repository: &str) -> Option<String> {
    let split = |s: &String| {
        s.split_once('@')
            .map(|(r, d)| (r.to_string(), d.to_string()))
    };
    repo_digests
        .iter()
        .filter_map(split)
        .find(|(r, _)| r == repository)
        .or_else(|| repo_digests.first().and_then(split))
        .map(|(_, d)| d)
}

/// Overlay layers from `GraphDriver.Data`. Docker's `LowerDir` starts with the container's
/// `-init` layer (the placeholders for `/etc/hosts` & co.), then the image's layers, top-most
/// first; its paths contain no `:` (Docker never escapes them).
fn layers_from_graph_driver(data: &HashMap<String, String>) -> Option<OverlayLayers> {
    let upper = data.get("UpperDir").filter(|s| !s.is_empty())?;
    Some(OverlayLayers {
        upper: PathBuf::from(upper),
        lowers: data
            .get("LowerDir")
            .map(|l| {
                l.split(':')
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default(),
        merged: data
            .get("MergedDir")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
    })
}

/// `2026-11-28T13:27:26.287380783Z` → ns since the epoch; Docker's "never" (`0001-01-01...`)
/// and anything unparsable → `None`.
fn parse_rfc3339_ns(s: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos())
        .ok()
        .filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "d6eac21f4e25f0f95f4638ace9c2d3db386196a24dbf6f437953ea957f0d3142";
    const IMAGE_ID: &str =
        "sha256:134445d2e83d3385aa5ae2562ac9f3fe4b90e13169aeceddf86a30241eca8327";

    /// A file of tests/fixtures/docker/ as JSON; a broken one names its file:line:col.
    fn fixture_json(name: &str) -> serde_json::Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/docker")
            .join(name);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}:{}:{}: {e}", path.display(), e.line(), e.column()))
    }

    /// A fixture as bollard parses the engine's answer.
    fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
        serde_json::from_value(fixture_json(name))
            .unwrap_or_else(|e| panic!("{name}: not what bollard parses: {e}"))
    }

    fn record(container: &str, image: Option<&ImageInfo>) -> ContainerRecord {
        record_from_inspect(Engine::Docker, fixture(container), image)
            .unwrap_or_else(|e| panic!("{container}: {e}"))
    }

    /// What a record says, in short, for the table.
    #[derive(Clone, Debug, PartialEq)]
    struct Seen {
        name: String,
        image: String,
        digest: Option<String>,
        pid: Option<u32>,
        running: bool,
        started_at_ns: Option<u64>,
        /// The upper dir and how many lower dirs, when overlay.
        layers: Option<(String, usize)>,
        pod: Option<(String, String)>,
        host_namespaces: Vec<String>,
        added_capabilities: Vec<String>,
        user: String,
    }

    fn seen(r: &ContainerRecord) -> Seen {
        Seen {
            name: r.meta.name.clone(),
            image: r.meta.image.display_name(),
            digest: r.meta.image.digest.clone(),
            pid: r.pid,
            running: r.running,
            started_at_ns: r.started_at_ns,
            layers: r
                .layers
                .as_ref()
                .map(|l| (l.upper.display().to_string(), l.lowers.len())),
            pod: r
                .meta
                .k8s
                .as_ref()
                .map(|k| (k.namespace.clone(), k.pod_name.clone())),
            host_namespaces: r
                .runtime_config
                .host_namespaces()
                .iter()
                .map(|n| n.to_string())
                .collect(),
            added_capabilities: r
                .runtime_config
                .added_capabilities()
                .iter()
                .map(|c| c.to_string())
                .collect(),
            user: r.runtime_config.user.clone(),
        }
    }

    #[test]
    fn every_inspect_shape_into_a_record() {
        // The image as this host's dockerd answers for it; its labels are none of the
        // container's, so the container's CRI labels are its creator's.
        let imported = image_info(fixture("image-imported.json"));
        let running = Seen {
            name: "web".into(),
            image: "driftwatch-test/busybox:1".into(),
            // An imported image has no registry digest: the image id stands in.
            digest: Some(IMAGE_ID.into()),
            pid: Some(13759),
            running: true,
            started_at_ns: Some(1_795_872_446_287_380_783),
            layers: Some(("/var/lib/docker/overlay2/3d6f/diff".into(), 2)),
            pod: Some(("prod".into(), "web-0".into())),
            host_namespaces: vec![],
            added_capabilities: vec![],
            user: String::new(),
        };
        let table = [
            (
                "container-cri-labels.json",
                Some(&imported),
                running.clone(),
            ),
            // Without the image (removed while in use) there is no telling whose the pod
            // labels are: no pod identity.
            (
                "container-cri-labels.json",
                None,
                running.but(|s| s.pod = None),
            ),
            (
                "container-host-pid-caps-binds.json",
                Some(&imported),
                running.but(|s| {
                    s.host_namespaces = vec!["pid".into()];
                    s.added_capabilities = vec!["CAP_SYS_ADMIN".into()];
                    s.user = "0".into();
                }),
            ),
            (
                "container-exited.json",
                Some(&imported),
                running.but(|s| {
                    s.pid = None;
                    s.running = false;
                }),
            ),
            (
                "container-never-started.json",
                Some(&imported),
                running.but(|s| {
                    s.pid = None;
                    s.running = false;
                    s.started_at_ns = None;
                }),
            ),
            (
                "container-vfs.json",
                Some(&imported),
                running.but(|s| s.layers = None),
            ),
            // Run by image id: the name is the image's first tag.
            (
                "container-started-by-image-id.json",
                Some(&imported),
                running.clone(),
            ),
            // ... and without the image, none.
            (
                "container-started-by-image-id.json",
                None,
                running.but(|s| {
                    s.image = ImageRef::default().display_name();
                    s.pod = None;
                }),
            ),
        ];
        for (container, image, want) in table {
            assert_eq!(
                seen(&record(container, image)),
                want,
                "{container} with{} the image",
                if image.is_some() { "" } else { "out" }
            );
        }
    }

    impl Seen {
        /// This, changed as a row expects.
        fn but(&self, change: impl FnOnce(&mut Seen)) -> Seen {
            let mut s = self.clone();
            change(&mut s);
            s
        }
    }

    /// Falco's `container.privileged`, `container.mount[...]` and `container.start_ts`, as
    /// this host's dockerd reported them.
    #[test]
    fn privileged_mounts_and_start_from_inspect() {
        let r = record("container-host-pid-caps-binds.json", None);
        assert_eq!(r.meta.privileged, Some(false));
        assert_eq!(
            r.meta.mounts,
            [
                Mount {
                    source: "/var/run/docker.sock".into(),
                    dest: "/var/run/docker.sock".into(),
                    mode: String::new(),
                    rw: true,
                    propagation: "rprivate".into(),
                },
                Mount {
                    source: "/srv/cfg".into(),
                    dest: "/etc/app".into(),
                    mode: "ro".into(),
                    rw: false,
                    propagation: "rprivate".into(),
                },
            ]
        );
        assert_eq!(r.meta.started_ns, Some(1_795_872_446_287_380_783));
        let never = record("container-never-started.json", None);
        assert_eq!(never.meta.started_ns, None);
    }

    #[test]
    fn image_inspect_into_image_info() {
        let info = image_info(fixture("image-imported.json"));
        assert_eq!(info.repo_tags, ["driftwatch-test/busybox:1"]);
        assert!(info.repo_digests.is_empty());
        assert!(info.labels.is_empty());
        assert_eq!(
            info.config,
            ImageConfig {
                env: vec![],
                user: String::new(),
                repo_digests: vec![],
                diff_ids: vec![
                    "sha256:d40fc5381419dcb071f2fbd34a881dc30dfba279e19c14b79ac354bd2dea8ff8"
                        .into()
                ],
            }
        );
    }

    #[test]
    fn record_from_docker_inspect() {
        let image = ImageInfo {
            repo_digests: vec![
                "other/repo@sha256:1111".into(),
                "driftwatch-test/busybox@sha256:2222".into(),
            ],
            repo_tags: vec!["driftwatch-test/busybox:1".into()],
            ..ImageInfo::default()
        };
        let r = record("container-cri-labels.json", Some(&image));
        assert_eq!(r.meta.id.as_str(), ID);
        assert_eq!(r.meta.engine, Engine::Docker);
        assert_eq!(r.meta.image.repository, "driftwatch-test/busybox");
        assert_eq!(r.meta.image.tag, "1");
        // The digest of the repository it was run from, not the first listed.
        assert_eq!(r.meta.image.digest.as_deref(), Some("sha256:2222"));
        assert_eq!(r.meta.image.id.as_deref(), Some(IMAGE_ID));
        assert_eq!(r.meta.entrypoint, vec!["sleep", "600"]);
        let k8s = r.meta.k8s.as_ref().unwrap();
        assert_eq!(
            (k8s.pod_uid.as_str(), k8s.container_name.as_str()),
            ("u-1", "app")
        );
        assert_eq!(r.env, vec!["PATH=/bin", "A=b"]);
        assert_eq!(r.exposed_ports, vec!["53/udp", "8080/tcp"]);
        let l = r.layers.unwrap();
        assert_eq!(
            l.lowers,
            [
                PathBuf::from("/var/lib/docker/overlay2/3d6f-init/diff"),
                PathBuf::from("/var/lib/docker/overlay2/f609/diff")
            ]
        );
        assert_eq!(
            l.merged,
            Some(PathBuf::from("/var/lib/docker/overlay2/3d6f/merged"))
        );
    }

    #[test]
    fn pod_labels_brought_by_the_image_are_no_pod_identity() {
        // `docker build` with `LABEL io.kubernetes.pod.name=web-0 ...`, then a plain
        // `docker run`: the container's labels are the image's.
        let labels = &fixture_json("container-cri-labels.json")["Config"]["Labels"];
        let mut image = image_info(fixture("image-imported.json"));
        for k in ["io.kubernetes.pod.name", "io.kubernetes.pod.namespace"] {
            image
                .labels
                .insert(k.into(), labels[k].as_str().unwrap().to_string());
        }
        let r = record("container-cri-labels.json", Some(&image));
        assert_eq!(r.meta.k8s, None);
        // The labels stay visible as labels.
        assert_eq!(r.meta.labels["io.kubernetes.pod.name"], "web-0");
    }

    #[test]
    fn runtime_config_from_docker_inspect() {
        let image = ImageInfo {
            config: ImageConfig {
                env: vec!["PATH=/bin".into()],
                user: "app".into(),
                ..ImageConfig::default()
            },
            ..ImageInfo::default()
        };
        let r = record("container-host-pid-caps-binds.json", Some(&image));
        let c = &r.runtime_config;
        assert!(!c.privileged && !c.readonly_rootfs);
        assert_eq!(c.network_mode, "none");
        assert_eq!(c.security_opt("seccomp"), Some("unconfined"));
        assert_eq!(c.mounts.len(), 2);
        assert_eq!(c.mounts[0].source, PathBuf::from("/var/run/docker.sock"));
        assert_eq!(c.mounts[0].kind, "bind");
        assert!(c.mounts[0].rw && !c.mounts[1].rw);
        assert_eq!(c.image.as_ref(), Some(&image.config));
        assert_eq!(c.image_reference, "driftwatch-test/busybox:1");
        // No HostConfig, no image: engine defaults, image unknown.
        let r = record("container-cri-labels.json", None);
        assert_eq!(
            r.runtime_config,
            RuntimeConfig {
                image_reference: "driftwatch-test/busybox:1".into(),
                ..RuntimeConfig::default()
            }
        );
    }

    #[test]
    fn started_by_digest_or_by_id() {
        let info = ImageInfo {
            repo_digests: vec!["app@sha256:9999".into()],
            repo_tags: vec!["app:2".into()],
            ..ImageInfo::default()
        };
        let by = |configured: &str| image_reference(configured, Some(IMAGE_ID), Some(&info));
        let r = by("registry:5000/app@sha256:abcd");
        assert_eq!(
            (r.repository.as_str(), r.tag.as_str()),
            ("registry:5000/app", "")
        );
        assert_eq!(r.digest.as_deref(), Some("sha256:abcd"));
        assert_eq!(by("134445d2e83d").display_name(), "app:2");
        assert_eq!(by(IMAGE_ID).display_name(), "app:2");
        assert_eq!(by("").display_name(), "app:2");
        // A hex-looking name that is not this image's id is a repository name.
        assert_eq!(by("deadbeefcafe").repository, "deadbeefcafe");
        assert_eq!(
            image_reference(IMAGE_ID, Some(IMAGE_ID), None),
            ImageRef::default()
        );
    }

    #[test]
    fn repo_digests_pick_the_repository_run() {
        let digests = [
            "other/repo@sha256:1111".to_string(),
            "app@sha256:2222".to_string(),
        ];
        for (repository, want) in [
            ("app", Some("sha256:2222")),
            ("other/repo", Some("sha256:1111")),
            // Not listed: the first.
            ("elsewhere", Some("sha256:1111")),
        ] {
            assert_eq!(
                repo_digest(&digests, repository).as_deref(),
                want,
                "{repository}"
            );
        }
        assert_eq!(repo_digest(&[], "app"), None);
        assert_eq!(repo_digest(&["no-digest".to_string()], "app"), None);
    }

    #[test]
    fn malformed_inspect_is_an_error_not_a_panic() {
        let mut v = fixture_json("container-cri-labels.json");
        v["Id"] = "short".into();
        let e = record_from_inspect(Engine::Docker, serde_json::from_value(v).unwrap(), None)
            .unwrap_err();
        assert!(matches!(e, RuntimeError::Malformed { .. }), "{e}");
        let e = record_from_inspect(
            Engine::Docker,
            serde_json::from_value(serde_json::json!({})).unwrap(),
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("no Id"), "{e}");
    }

    #[test]
    fn rfc3339() {
        assert_eq!(
            parse_rfc3339_ns("1970-01-01T00:00:01.5Z"),
            Some(1_500_000_000)
        );
        assert_eq!(parse_rfc3339_ns("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_ns("garbage"), None);
    }
}
