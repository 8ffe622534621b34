//! Hostile blobs in containerd's content store, against dockerd's containerd: images whose
//! manifest is huge, whose config is not JSON, or whose manifest understates its config's
//! size. The container's record keeps its identity without an image config, and asking for
//! its layers names what was refused; nothing over the caps is read.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::{
    Container, CreateContainerRequest, CreateImageRequest, Image,
    containers_client::ContainersClient, images_client::ImagesClient,
};
use containerd_client::tonic::Request;
use containerd_client::types::Descriptor;
use driftwatch_model::ContainerId;
use driftwatch_runtime::containerd::content_store::MAX_MANIFEST_BYTES;
use driftwatch_runtime::{ContainerdConfig, ContainerdSource, EngineSource};
use driftwatch_testkit::*;
use sha2::{Digest, Sha256};

const NS: &str = "default";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";

fn digest(b: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(b)))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What the test put into containerd; all removed on drop.
struct Made {
    socket: &'static str,
    containers: Vec<String>,
    images: Vec<String>,
    blobs: Vec<String>,
}

impl Made {
    /// `ctr content ingest` a blob, kept from the garbage collector until removed.
    fn blob(&mut self, bytes: &[u8]) -> Descriptor {
        let d = digest(bytes);
        let size = bytes.len().to_string();
        let mut child = Command::new(CTR)
            .args(["-a", self.socket, "-n", NS, "content", "ingest"])
            .args(["--expected-size", &size, "--expected-digest", &d])
            .arg(format!("dw-hostile-{}", &d[7..19]))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("ctr content ingest");
        child.stdin.take().unwrap().write_all(bytes).unwrap();
        assert!(child.wait().unwrap().success(), "ingest {d}");
        self.blobs.push(d.clone());
        let (ok, text) = ctr_in(
            self.socket,
            NS,
            &["content", "label", &d, "containerd.io/gc.root=dw-test"],
        );
        assert!(ok, "{text}");
        Descriptor {
            media_type: String::new(),
            digest: d,
            size: bytes.len() as i64,
            ..Descriptor::default()
        }
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = ctr_in(self.socket, NS, &["containers", "rm", c]);
        }
        for i in &self.images {
            let _ = ctr_in(self.socket, NS, &["images", "rm", i]);
        }
        for b in &self.blobs {
            let _ = ctr_in(self.socket, NS, &["content", "rm", b]);
        }
    }
}

fn req<T>(msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("containerd-namespace", NS.parse().unwrap());
    r
}

fn manifest_json(config: &Descriptor, pad: usize) -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{{"mediaType":"{CONFIG}","digest":"{}","size":{}}},"layers":[],"annotations":{{"pad":"{}"}}}}"#,
        config.digest,
        config.size,
        "a".repeat(pad)
    )
    .into_bytes()
}

#[tokio::test]
async fn huge_and_garbage_blobs_are_refused_bounded() {
    let socket = ctr_socket();
    if !require_that(socket.clone().map(drop)) {
        return;
    }
    let socket = socket.unwrap();
    let mut made = Made {
        socket,
        containers: Vec::new(),
        images: Vec::new(),
        blobs: Vec::new(),
    };
    let garbage = made.blob(&b"\x00\xffnot json at all\n".repeat(64));
    let huge = made.blob(&manifest_json(&garbage, MAX_MANIFEST_BYTES as usize + 1024));
    let mut config_garbage = made.blob(&manifest_json(&garbage, 0));
    config_garbage.media_type = MANIFEST.into();
    // A manifest that says its (5 MiB) config is 10 bytes: 10 bytes are read.
    let understated = Descriptor {
        size: 10,
        ..huge.clone()
    };
    let lying = made.blob(&manifest_json(&understated, 0));

    let ch = containerd_client::connect(socket).await.unwrap();
    let cases = [
        ("huge", huge.clone()),
        ("config-garbage", config_garbage),
        ("lying", lying),
    ];
    for (name, mut target) in cases.clone() {
        target.media_type = MANIFEST.into();
        let image = format!("driftwatch.test/hostile-{name}:1");
        ImagesClient::new(ch.clone())
            .create(req(CreateImageRequest {
                image: Some(Image {
                    name: image.clone(),
                    target: Some(target),
                    ..Image::default()
                }),
                ..CreateImageRequest::default()
            }))
            .await
            .unwrap();
        made.images.push(image.clone());
        let id = format!("dw-hostile-{name}");
        ContainersClient::new(ch.clone())
            .create(req(CreateContainerRequest {
                container: Some(Container {
                    id: id.clone(),
                    image,
                    runtime: Some(Runtime {
                        name: "io.containerd.runc.v2".into(),
                        options: None,
                    }),
                    spec: Some(prost_types::Any {
                        type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
                        value: b"{}".to_vec(),
                    }),
                    ..Container::default()
                }),
            }))
            .await
            .unwrap();
        made.containers.push(id);
    }

    let source = ContainerdSource::new(ContainerdConfig {
        socket: socket.into(),
        namespaces: vec![NS.into()],
        ..ContainerdConfig::default()
    });
    for (name, _) in &cases {
        let id = ContainerId::named(&format!("dw-hostile-{name}")).unwrap();
        let start = Instant::now();
        let r = source.inspect(&id).await.unwrap();
        assert!(start.elapsed() < Duration::from_secs(2), "{name}");
        assert_eq!(r.meta.name, format!("dw-hostile-{name}"));
        assert_eq!(
            r.runtime_config.image_reference,
            format!("driftwatch.test/hostile-{name}:1")
        );
        assert_eq!(r.meta.image.id, None, "{name}");
        assert_eq!(r.runtime_config.image, None, "{name}");
        assert!(r.exposed_ports.is_empty());
    }
    let err = |name: &str| {
        let source = source.clone();
        let id = ContainerId::named(&format!("dw-hostile-{name}")).unwrap();
        async move { source.snapshot_layers(&id).await.unwrap_err().to_string() }
    };
    assert_eq!(
        err("huge").await,
        format!(
            "containerd: image layers: unexpected answer: container dw-hostile-huge: manifest {} is {} bytes, over the {MAX_MANIFEST_BYTES}-byte limit: not read",
            huge.digest, huge.size
        )
    );
    let e = err("config-garbage").await;
    assert!(
        e.contains(&format!("image config {}: not JSON: ", garbage.digest)),
        "{e}"
    );
    let e = err("lying").await;
    assert!(
        e.contains(&format!("image config {}: not JSON: EOF", huge.digest)),
        "{e}"
    );
}
