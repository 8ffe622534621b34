//! An image's config and layer blobs from containerd's content store, so that containerd
//! records carry what Docker's do (image id, env, user, exposed ports, diff ids) and the
//! layer checks know which blob each snapshot directory was unpacked from.
//!
//! The image record's target is read through the Content API: an index (the `linux/<arch>`
//! manifest is taken), a manifest, then its config. Every read is bounded before it starts
//! (an index or manifest over [`MAX_MANIFEST_BYTES`], a config over [`MAX_CONFIG_BYTES`] is
//! refused unread) and stops at the declared size, so a hostile or huge blob costs at most
//! those bytes. Results are cached per target digest (content-addressed: they never change),
//! up to [`CACHE_ENTRIES`] images; so are failures of the content itself (too big, not JSON),
//! not those of the call (containerd busy, a blob not yet written during a pull).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::introspection_client::IntrospectionClient;
use containerd_client::services::v1::snapshots::StatSnapshotRequest;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::{
    GetImageRequest, InfoRequest, PluginsRequest, ReadContentRequest, images_client::ImagesClient,
};
use containerd_client::tonic::Code;
use containerd_client::tonic::transport::Channel;
use containerd_client::types::Descriptor;
use driftwatch_model::ContainerId;
use serde::Deserialize;

use super::{ENGINE, Inner, with_ns};
use crate::runtime_config::ImageConfig;
use crate::source::{ContainerRecord, RuntimeError};

/// Largest index or manifest read (a manifest is a few KiB; the reference registry refuses
/// manifests over 4 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Largest image config read (a config is a few KiB; its history can make it larger).
pub const MAX_CONFIG_BYTES: u64 = 8 << 20;
/// Images remembered; past that the cache starts over.
pub const CACHE_ENTRIES: usize = 1024;

/// What an image's manifest and config say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerdImage {
    /// The config blob's digest: the image id, as Docker's `Id`.
    pub config_digest: String,
    pub config: ImageConfig,
    /// `ExposedPorts`' keys (`8080/tcp`), sorted.
    pub exposed_ports: Vec<String>,
    /// The manifest's layers, bottom first (one per diff id).
    pub layers: Vec<LayerBlob>,
}

/// One layer blob of a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerBlob {
    pub digest: String,
    pub media_type: String,
}

/// A running container's image layers as containerd stores them: what the layer checks
/// compare (see `driftwatch_verify::locate_snapshot_layers`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotLayers {
    /// The image id (config digest).
    pub image_id: String,
    /// Bottom first.
    pub diff_ids: Vec<String>,
    /// Each layer's blob in the content store, bottom first.
    pub blobs: Vec<PathBuf>,
    /// The container snapshot's lower directories, top first (as overlay's `lowerdir`).
    pub lowers: Vec<PathBuf>,
    /// The container snapshot's parent: the unpacker names it by the top layer's chain id.
    pub parent: String,
}

/// Per target digest: the image, or why it could not be read.
#[derive(Default)]
pub(super) struct ImageCache {
    images: Mutex<HashMap<String, Result<Arc<ContainerdImage>, String>>>,
    content_root: Mutex<Option<PathBuf>>,
}

/// Fills a record's image reference (the container's image name), and its image id, image
/// config and exposed ports from what the content store says (not those when the image could
/// not be read: the record keeps its identity).
pub(super) fn apply(rec: &mut ContainerRecord, reference: &str, image: Option<&ContainerdImage>) {
    if rec.runtime_config.image_reference.is_empty() {
        rec.runtime_config.image_reference = reference.to_string();
    }
    let Some(img) = image else { return };
    rec.meta.image.id = Some(img.config_digest.clone());
    rec.exposed_ports = img.exposed_ports.clone();
    let mut config = img.config.clone();
    // Only a reference by digest names a registry's manifest; a tag's target may be local.
    if reference.contains("@sha256:") {
        config.repo_digests = vec![reference.to_string()];
    }
    rec.runtime_config.image = Some(config);
}

/// The Go architecture name of this build's target (`linux/<arch>` in an index).
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

#[derive(Debug, Deserialize)]
struct JsonDescriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: i64,
    #[serde(default)]
    platform: Option<JsonPlatform>,
}

#[derive(Debug, Deserialize)]
struct JsonPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
}

/// An index or a manifest: whichever fields the blob has.
#[derive(Debug, Deserialize)]
struct JsonManifest {
    #[serde(default)]
    manifests: Option<Vec<JsonDescriptor>>,
    #[serde(default)]
    config: Option<JsonDescriptor>,
    #[serde(default)]
    layers: Vec<JsonDescriptor>,
}

#[derive(Debug, Default, Deserialize)]
struct JsonConfig {
    #[serde(default)]
    config: Option<JsonRunConfig>,
    #[serde(default)]
    rootfs: Option<JsonRootfs>,
}

#[derive(Debug, Default, Deserialize)]
struct JsonRunConfig {
    #[serde(rename = "Env", default)]
    env: Option<Vec<String>>,
    #[serde(rename = "User", default)]
    user: Option<String>,
    #[serde(rename = "ExposedPorts", default)]
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Default, Deserialize)]
struct JsonRootfs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// The next step from an index or manifest blob (pure).
#[derive(Debug, PartialEq)]
enum Step {
    /// An index: read this manifest next.
    Manifest(Descriptor),
    /// A manifest: its config and layers.
    Config(Descriptor, Vec<LayerBlob>),
}

fn descriptor(d: JsonDescriptor) -> Descriptor {
    Descriptor {
        media_type: d.media_type,
        digest: d.digest,
        size: d.size,
        ..Descriptor::default()
    }
}

fn parse_manifest(bytes: &[u8], arch: &str) -> Result<Step, String> {
    let m: JsonManifest = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    if let Some(list) = m.manifests {
        let found = list.into_iter().find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == arch)
        });
        return found
            .map(|d| Step::Manifest(descriptor(d)))
            .ok_or_else(|| format!("the index has no linux/{arch} manifest"));
    }
    let config = m
        .config
        .ok_or("neither an index (`manifests`) nor a manifest (`config`)")?;
    let layers = m
        .layers
        .into_iter()
        .map(|d| LayerBlob {
            digest: d.digest,
            media_type: d.media_type,
        })
        .collect();
    Ok(Step::Config(descriptor(config), layers))
}

fn parse_config(
    config_digest: &str,
    bytes: &[u8],
    layers: Vec<LayerBlob>,
) -> Result<ContainerdImage, String> {
    let c: JsonConfig = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let run = c.config.unwrap_or_default();
    let diff_ids = c.rootfs.unwrap_or_default().diff_ids;
    if !layers.is_empty() && layers.len() != diff_ids.len() {
        return Err(format!(
            "{} layers in the manifest, {} diff ids in the config",
            layers.len(),
            diff_ids.len()
        ));
    }
    Ok(ContainerdImage {
        config_digest: config_digest.to_string(),
        config: ImageConfig {
            env: run.env.unwrap_or_default(),
            user: run.user.unwrap_or_default(),
            repo_digests: Vec::new(),
            diff_ids,
        },
        exposed_ports: run.exposed_ports.unwrap_or_default().into_keys().collect(),
        layers,
    })
}

/// Why an image could not be read.
enum Failure {
    /// The content is wrong (too big, not JSON, ...): so it stays.
    Lasting(String),
    /// The call failed: the next inspect asks again.
    Passing(String),
}

/// `sha256:<64 hex>` split into algorithm and hex, or `None` for anything else.
fn digest_parts(d: &str) -> Option<(&str, &str)> {
    let (alg, hex) = d.split_once(':')?;
    let ok = matches!(alg, "sha256" | "sha384" | "sha512")
        && !hex.is_empty()
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ok.then_some((alg, hex))
}

impl super::ContainerdSource {
    /// The layers of a running container's image and the snapshot directories they were
    /// unpacked into, for checking one against the other.
    pub async fn snapshot_layers(&self, id: &ContainerId) -> Result<SnapshotLayers, RuntimeError> {
        self.inner
            .timed("image layers", self.inner.snapshot_layers(id.as_str()))
            .await
    }
}

impl Inner {
    /// A blob of at most `cap` bytes: refused unread when it declares more, and never more
    /// than it declares read.
    async fn read_blob(
        &self,
        ch: &Channel,
        ns: &str,
        what: &str,
        d: &Descriptor,
        cap: u64,
    ) -> Result<Vec<u8>, Failure> {
        let call = |s: containerd_client::tonic::Status| {
            Failure::Passing(format!("{what} {}: {}", d.digest, s.message()))
        };
        if digest_parts(&d.digest).is_none() {
            return Err(Failure::Lasting(format!(
                "{what}: not a digest: {:?}",
                d.digest
            )));
        }
        let mut size = d.size;
        if size <= 0 {
            let req = with_ns(
                InfoRequest {
                    digest: d.digest.clone(),
                },
                ns,
            )
            .map_err(|e| Failure::Lasting(e.to_string()))?;
            size = ContentClient::new(ch.clone())
                .info(req)
                .await
                .map_err(call)?
                .into_inner()
                .info
                .map_or(0, |i| i.size);
        }
        let size = u64::try_from(size).unwrap_or(0);
        if size > cap {
            return Err(Failure::Lasting(format!(
                "{what} {} is {size} bytes, over the {cap}-byte limit: not read",
                d.digest
            )));
        }
        let req = with_ns(
            ReadContentRequest {
                digest: d.digest.clone(),
                offset: 0,
                size: size as i64,
            },
            ns,
        )
        .map_err(|e| Failure::Lasting(e.to_string()))?;
        let mut stream = ContentClient::new(ch.clone())
            .read(req)
            .await
            .map_err(call)?
            .into_inner();
        let mut out = Vec::with_capacity(size as usize);
        while let Some(chunk) = stream.message().await.map_err(call)? {
            if (out.len() + chunk.data.len()) as u64 > size {
                return Err(Failure::Lasting(format!(
                    "{what} {}: containerd sent more than the {size} bytes asked",
                    d.digest
                )));
            }
            out.extend_from_slice(&chunk.data);
        }
        Ok(out)
    }

    /// The image a record's target descriptor names: index → manifest → config, cached.
    pub(super) async fn image_of(
        &self,
        ch: &Channel,
        ns: &str,
        target: &Descriptor,
    ) -> Result<Arc<ContainerdImage>, String> {
        if let Some(hit) = self
            .images
            .images
            .lock()
            .ok()
            .and_then(|c| c.get(&target.digest).cloned())
        {
            return hit;
        }
        let read = async {
            let mut desc = target.clone();
            // An index names a manifest; a nested index is followed once more at most.
            for _ in 0..3 {
                let bytes = self
                    .read_blob(ch, ns, "manifest", &desc, MAX_MANIFEST_BYTES)
                    .await?;
                match parse_manifest(&bytes, go_arch())
                    .map_err(|e| Failure::Lasting(format!("manifest {}: {e}", desc.digest)))?
                {
                    Step::Manifest(next) => desc = next,
                    Step::Config(config, layers) => {
                        let bytes = self
                            .read_blob(ch, ns, "image config", &config, MAX_CONFIG_BYTES)
                            .await?;
                        return parse_config(&config.digest, &bytes, layers)
                            .map(Arc::new)
                            .map_err(|e| {
                                Failure::Lasting(format!("image config {}: {e}", config.digest))
                            });
                    }
                }
            }
            Err(Failure::Lasting(format!(
                "{}: indexes nested too deep",
                target.digest
            )))
        };
        let result = match read.await {
            Ok(img) => Ok(img),
            Err(Failure::Lasting(e)) => Err(e),
            Err(Failure::Passing(e)) => return Err(e),
        };
        if let Ok(mut c) = self.images.images.lock() {
            if c.len() >= CACHE_ENTRIES {
                c.clear();
            }
            c.insert(target.digest.clone(), result.clone());
        }
        result
    }

    /// The image record's target descriptor (`None`: the image is gone).
    pub(super) async fn image_target(
        &self,
        ch: &Channel,
        ns: &str,
        name: &str,
    ) -> Result<Option<Descriptor>, RuntimeError> {
        if name.is_empty() {
            return Ok(None);
        }
        let req = with_ns(GetImageRequest { name: name.into() }, ns)?;
        match ImagesClient::new(ch.clone()).get(req).await {
            Ok(r) => Ok(r.into_inner().image.and_then(|i| i.target)),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(self.status_error("image get", s, None)),
        }
    }

    /// The content store's directory, as containerd's introspection exports it.
    async fn content_root(&self, ch: &Channel) -> Result<PathBuf, RuntimeError> {
        if let Some(p) = self.images.content_root.lock().ok().and_then(|r| r.clone()) {
            return Ok(p);
        }
        let req = PluginsRequest {
            filters: vec!["type==io.containerd.content.v1".into()],
        };
        let plugins = IntrospectionClient::new(ch.clone())
            .plugins(req)
            .await
            .map_err(|s| self.status_error("plugins", s, None))?
            .into_inner()
            .plugins;
        let root = plugins
            .iter()
            .find_map(|p| p.exports.get("root"))
            .filter(|r| r.starts_with('/'))
            .map(PathBuf::from)
            .ok_or_else(|| RuntimeError::Malformed {
                engine: ENGINE,
                op: "plugins",
                detail: "no content plugin exports its root".into(),
            })?;
        if let Ok(mut r) = self.images.content_root.lock() {
            *r = Some(root.clone());
        }
        Ok(root)
    }

    /// The layers of a container's image and the snapshot directories they were unpacked
    /// into.
    pub(super) async fn snapshot_layers(&self, id: &str) -> Result<SnapshotLayers, RuntimeError> {
        let ch = self.channel().await?;
        let (ns, c) = self.find(&ch, id).await?;
        let malformed = |detail: String| RuntimeError::Malformed {
            engine: ENGINE,
            op: "image layers",
            detail: format!("container {id}: {detail}"),
        };
        let target = self
            .image_target(&ch, &ns, &c.image)
            .await?
            .ok_or_else(|| malformed(format!("its image {} is gone", c.image)))?;
        let image = self.image_of(&ch, &ns, &target).await.map_err(malformed)?;
        let root = self.content_root(&ch).await?;
        let blobs = image
            .layers
            .iter()
            .map(|l| {
                let (alg, hex) = digest_parts(&l.digest)
                    .ok_or_else(|| malformed(format!("layer {:?} is not a digest", l.digest)))?;
                Ok(root.join("blobs").join(alg).join(hex))
            })
            .collect::<Result<Vec<_>, RuntimeError>>()?;
        if c.snapshot_key.is_empty() || c.snapshotter.is_empty() {
            return Err(malformed("it has no snapshot".into()));
        }
        let req = with_ns(
            StatSnapshotRequest {
                snapshotter: c.snapshotter.clone(),
                key: c.snapshot_key.clone(),
            },
            &ns,
        )?;
        let parent = SnapshotsClient::new(ch.clone())
            .stat(req)
            .await
            .map_err(|s| self.status_error("snapshot stat", s, Some(id)))?
            .into_inner()
            .info
            .map(|i| i.parent)
            .unwrap_or_default();
        let req = with_ns(
            containerd_client::services::v1::snapshots::MountsRequest {
                snapshotter: c.snapshotter.clone(),
                key: c.snapshot_key.clone(),
            },
            &ns,
        )?;
        let mounts = SnapshotsClient::new(ch.clone())
            .mounts(req)
            .await
            .map_err(|s| self.status_error("snapshot mounts", s, Some(id)))?
            .into_inner()
            .mounts;
        let lowers = super::layers_from_mounts(&mounts)
            .map(|l| l.lowers)
            .ok_or_else(|| {
                malformed(format!(
                    "its {} snapshot is not an overlay with lower directories",
                    c.snapshotter
                ))
            })?;
        Ok(SnapshotLayers {
            image_id: image.config_digest.clone(),
            diff_ids: image.config.diff_ids.clone(),
            blobs,
            lowers,
            parent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_model::{ContainerMeta, Engine, ImageRef};

    const CFG: &str = "sha256:1019625f9876768079b32e44406db2c70ab4e934a3d28b7eae9dcafa4e1b6bba";
    const L1: &str = "sha256:d40fc5381419dcb071f2fbd34a881dc30dfba279e19c14b79ac354bd2dea8ff8";

    #[test]
    fn an_index_picks_the_linux_manifest_of_our_arch() {
        let index = br#"{"schemaVersion":2,"manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":7,
             "platform":{"os":"linux","architecture":"arm64"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bb","size":9,
             "platform":{"os":"linux","architecture":"amd64"}}]}"#;
        match parse_manifest(index, "amd64").unwrap() {
            Step::Manifest(d) => assert_eq!((d.digest.as_str(), d.size), ("sha256:bb", 9)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_manifest(index, "s390x").unwrap_err(),
            "the index has no linux/s390x manifest"
        );
    }

    #[test]
    fn a_manifest_and_its_config_give_the_record_what_docker_gives() {
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
               "config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{CFG}","size":902}},
               "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar","digest":"{L1}","size":2129920}}]}}"#
        );
        let Step::Config(config, layers) = parse_manifest(manifest.as_bytes(), "amd64").unwrap()
        else {
            panic!("not a manifest")
        };
        assert_eq!((config.digest.as_str(), config.size), (CFG, 902));
        let config_json = format!(
            r#"{{"architecture":"amd64","config":{{"User":"1000:1000","Env":["PATH=/bin","A=b"],
                 "ExposedPorts":{{"8080/tcp":{{}},"53/udp":{{}}}}}},
                 "rootfs":{{"type":"layers","diff_ids":["{L1}"]}}}}"#
        );
        let img = parse_config(CFG, config_json.as_bytes(), layers).unwrap();
        assert_eq!(img.config.env, ["PATH=/bin", "A=b"]);
        assert_eq!(img.config.user, "1000:1000");
        assert_eq!(img.config.diff_ids, [L1]);
        assert_eq!(img.exposed_ports, ["53/udp", "8080/tcp"]);
        assert_eq!(img.layers[0].digest, L1);

        let mut rec = ContainerRecord {
            pod_sandbox: false,
            meta: ContainerMeta {
                privileged: None,
                mounts: Vec::new(),
                started_ns: None,
                id: ContainerId::named("web").unwrap(),
                engine: Engine::Containerd,
                name: "web".into(),
                image: ImageRef::parse("docker.io/library/web@sha256:abcd"),
                labels: BTreeMap::new(),
                entrypoint: Vec::new(),
                k8s: None,
            },
            pid: None,
            layers: None,
            running: false,
            started_at_ns: None,
            env: Vec::new(),
            exposed_ports: Vec::new(),
            runtime_config: Default::default(),
        };
        apply(&mut rec, "docker.io/library/web@sha256:abcd", None);
        assert_eq!(
            (
                rec.meta.image.id.as_ref(),
                rec.runtime_config.image.as_ref()
            ),
            (None, None)
        );
        apply(&mut rec, "docker.io/library/web@sha256:abcd", Some(&img));
        assert_eq!(rec.meta.image.id.as_deref(), Some(CFG));
        assert_eq!(rec.exposed_ports, ["53/udp", "8080/tcp"]);
        let c = rec.runtime_config.image.unwrap();
        assert_eq!(c.repo_digests, ["docker.io/library/web@sha256:abcd"]);
        assert_eq!(c.user, "1000:1000");
    }

    #[test]
    fn hostile_blobs_are_clear_errors() {
        assert!(
            parse_manifest(b"\x00\xffgarbage", "amd64")
                .unwrap_err()
                .starts_with("not JSON")
        );
        assert_eq!(
            parse_manifest(br#"{"schemaVersion":2}"#, "amd64").unwrap_err(),
            "neither an index (`manifests`) nor a manifest (`config`)"
        );
        let two = vec![
            LayerBlob {
                digest: L1.into(),
                media_type: String::new(),
            };
            2
        ];
        let e = parse_config(
            CFG,
            format!(r#"{{"rootfs":{{"diff_ids":["{L1}"]}}}}"#).as_bytes(),
            two,
        )
        .unwrap_err();
        assert_eq!(e, "2 layers in the manifest, 1 diff ids in the config");
        assert_eq!(digest_parts("sha256:../../etc"), None);
        assert_eq!(digest_parts(L1).map(|p| p.0), Some("sha256"));
    }
}
