//! containerd's images end to end, on dockerd's containerd through `ctr` (the `default`
//! namespace, an image only these tests use, imported from `docker save`): a container's
//! record carries its image's config from the content store (id = config digest, env, user,
//! exposed ports, diff ids); `driftwatch verify --layers` checks its overlayfs snapshot
//! directories against the layer blobs and names a file edited in a lower snapshot by
//! container, layer and path; the agent alerts on it with the image id; a symlink out of a
//! snapshot is never followed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use driftwatch_runtime::{ContainerdConfig, ContainerdSource, EngineSource};
use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");
const NS: &str = "default";
const NAME: &str = "dw-ctr-layers";

/// A two-layer image (busybox and a unique payload) with an env, a user and an exposed
/// port, in Docker and imported into containerd; removed from both on drop.
struct Victim {
    tag: String,
    ctr: Option<CtrImage>,
}

impl Victim {
    /// `test`: the test's own tag, so that tests running at once never share the image.
    fn build(socket: &'static str, dir: &Path, test: &str) -> Victim {
        let tag = format!("driftwatch-test/ctr-victim:{test}-{}", std::process::id());
        // Unique content: no build cache or earlier import hands back an edited layer.
        let nonce = format!("{:?}", std::time::SystemTime::now());
        std::fs::write(dir.join("payload.txt"), format!("good payload {nonce}\n")).unwrap();
        std::fs::write(
            dir.join("Dockerfile"),
            format!(
                "FROM {BUSYBOX}\nCOPY payload.txt /opt/payload.txt\nENV DW_MODE=victim\n\
                 USER 1000:1000\nEXPOSE 8080/tcp\n"
            ),
        )
        .unwrap();
        let out = docker(&["build", "-q", "-t", &tag, dir.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out));
        let mut v = Victim { tag, ctr: None };
        v.ctr = Some(CtrImage::import(socket, NS, &v.tag));
        v
    }

    fn ctr(&self) -> &CtrImage {
        self.ctr.as_ref().expect("imported")
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        drop(self.ctr.take());
        let _ = docker(&["rmi", "-f", &self.tag]);
    }
}

fn verify(socket: &str, json: bool) -> Output {
    let mut args = vec![
        "verify",
        "--layers",
        "--containerd-socket",
        socket,
        "--containerd-namespace",
        NS,
        "--no-docker",
    ];
    if json {
        args.push("--json");
    }
    Command::new(DRIFTWATCH)
        .args(&args)
        .output()
        .expect("running driftwatch verify")
}

/// `line` is one of verify's output lines.
fn assert_line(out: &Output, line: &str) {
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l == line),
        "no line `{line}` in:\n{}",
        text(out)
    );
}

fn our_image<'a>(report: &'a Value, image_id: &str) -> &'a Value {
    report["images"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["image_id"] == image_id))
        .unwrap_or_else(|| panic!("no image {image_id}: {report:#}"))
}

/// The `lowerdir` of the overlay mounted at a process's `/`, top first (from mountinfo,
/// not from containerd).
fn lowerdirs_of(pid: u32) -> Vec<PathBuf> {
    let mi = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let root = mi
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/") && l.contains(" - overlay "))
        .unwrap_or_else(|| panic!("no overlay root in:\n{mi}"));
    let opts = root.rsplit(' ').next().unwrap();
    opts.split(',')
        .find_map(|o| o.strip_prefix("lowerdir="))
        .unwrap()
        .split(':')
        .map(PathBuf::from)
        .collect()
}

fn task_pid(socket: &str, name: &str) -> u32 {
    let (ok, out) = ctr_in(socket, NS, &["task", "ls"]);
    assert!(ok, "{out}");
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no task {name}:\n{out}"))
}

#[test]
fn containerd_image_config_and_snapshot_layers_are_checked() {
    let Some(socket) = ctr_ready() else { return };
    let dir = tempfile::tempdir().unwrap();
    let image = Victim::build(socket, dir.path(), "layers");
    let manifest: Value =
        serde_json::from_str(&image.ctr().content(&image.ctr().digest())).unwrap();
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_string();
    let config: Value = serde_json::from_str(&image.ctr().content(&config_digest)).unwrap();
    let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    assert_eq!(diff_ids.len(), 2, "{config:#}");
    let c = CtrContainer::run(
        socket,
        NS,
        &image.ctr().name,
        NAME,
        &[],
        &[],
        &["sleep", "300"],
    );

    // The record, as the agent gets it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let source = ContainerdSource::new(ContainerdConfig {
        socket: socket.into(),
        namespaces: vec![NS.into()],
        ..ContainerdConfig::default()
    });
    let id = driftwatch_model::ContainerId::named(NAME).unwrap();
    let r = rt.block_on(source.inspect(&id)).unwrap();
    assert_eq!(r.meta.image.id.as_deref(), Some(config_digest.as_str()));
    // Docker's id of the same image is the same config digest.
    assert_eq!(
        docker_ok(&["image", "inspect", "-f", "{{.Id}}", &image.tag]).trim(),
        config_digest
    );
    assert_eq!(r.exposed_ports, ["8080/tcp"]);
    let img = r.runtime_config.image.as_ref().unwrap();
    assert_eq!(img.user, "1000:1000");
    assert!(
        img.env.iter().any(|e| e == "DW_MODE=victim"),
        "{:?}",
        img.env
    );
    assert_eq!(img.diff_ids, diff_ids);
    assert_eq!(r.runtime_config.image_reference, image.ctr().name);

    // verify --layers: both layers intact, the directories the container's overlay uses.
    let out = verify(socket, true);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ours = our_image(&report, &config_digest);
    assert_eq!(ours["container"], NAME, "{ours:#}");
    let layers = ours["layers"].as_array().unwrap();
    let checked: Vec<&str> = layers
        .iter()
        .map(|l| l["diff_id"].as_str().unwrap())
        .collect();
    assert_eq!(checked, diff_ids);
    for l in layers {
        assert_eq!(l["stream_digest"], l["diff_id"], "{l:#}");
        assert_eq!(l["problems"], serde_json::json!([]), "{l:#}");
    }
    let lowers = lowerdirs_of(task_pid(socket, NAME));
    let top = PathBuf::from(layers[1]["dir"].as_str().unwrap());
    assert_eq!(
        lowers,
        [
            top.clone(),
            PathBuf::from(layers[0]["dir"].as_str().unwrap())
        ]
    );

    // A file changed in the container's lower snapshot, same size: named by container,
    // layer and path, and seen inside the container (it is the container's layer).
    let file = top.join("opt/payload.txt");
    let good = std::fs::read(&file).unwrap();
    let mut evil = good.clone();
    evil[..4].copy_from_slice(b"EVIL");
    std::fs::write(&file, &evil).unwrap();
    let restore = scopeguard(&file, &good);
    let (ok, inside) = c.sh("cat /opt/payload.txt");
    assert!(ok && inside.starts_with("EVIL"), "{inside}");
    let out = verify(socket, false);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let line = format!(
        "container {NAME}: {}: layer {} ({}): /opt/payload.txt modified",
        image.ctr().name,
        diff_ids[1],
        top.display()
    );
    assert_line(&out, &line);

    // The agent checks the layers of the running container's image when it starts.
    let agent = AgentProcess::start(
        DRIFTWATCH,
        &[
            "--containerd-socket",
            socket,
            "--layer-check-interval",
            "1h",
        ],
    );
    let a = agent.wait_for("the edited snapshot", Duration::from_secs(30), |a| {
        a["rule"] == "Image layer modified on host" && field(a, "container.id") == NAME
    });
    assert_eq!(field(&a, "drift.path"), "/opt/payload.txt", "{a}");
    assert_eq!(field(&a, "drift.verdict"), "modified", "{a}");
    let detail = field(&a, "drift.detail")
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        detail,
        format!(
            "layer {} ({}) of image {config_digest}: file modified",
            diff_ids[1],
            top.display()
        ),
        "{a}"
    );
    drop(agent);

    // The file swapped for a symlink to a host file with the good bytes: not followed (the
    // size is the link's).
    let outside = dir.path().join("outside");
    std::fs::write(&outside, &good).unwrap();
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(&outside, &file).unwrap();
    let out = verify(socket, false);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let line = format!(
        "container {NAME}: {}: layer {} ({}): /opt/payload.txt unreadable (size {} -> {})",
        image.ctr().name,
        diff_ids[1],
        top.display(),
        good.len(),
        outside.as_os_str().len()
    );
    assert_line(&out, &line);

    // Put back: intact again.
    drop(restore);
    let out = verify(socket, false);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    drop(c);
}

/// Writes `good` back to `file` (replacing whatever is there) when dropped.
fn scopeguard<'a>(file: &'a Path, good: &'a [u8]) -> impl Drop + 'a {
    struct Restore<'a>(&'a Path, &'a [u8]);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(self.0);
            let _ = std::fs::write(self.0, self.1);
        }
    }
    Restore(file, good)
}

#[test]
fn a_port_the_containerd_image_exposes_is_a_declared_listener() {
    const NET: &str = "dw-ctr-listener";
    let Some(socket) = ctr_ready() else { return };
    let dir = tempfile::tempdir().unwrap();
    let image = Victim::build(socket, dir.path(), "net");
    let baselines = dir.path().join("baselines.json");
    let agent = AgentProcess::start(
        DRIFTWATCH,
        &[
            "--containerd-socket",
            socket,
            "--baseline-file",
            baselines.to_str().unwrap(),
            "--learning-window",
            "5m",
        ],
    );
    let c = CtrContainer::run(
        socket,
        NS,
        &image.ctr().name,
        NET,
        &[],
        &[],
        &["sleep", "120"],
    );
    let (ok, out) = c.sh("nc -l -p 8080 </dev/null >/dev/null & sleep 0.3");
    assert!(ok, "{out}");
    // The marker: an undeclared listener after it, in the same container.
    let (ok, out) = c.sh("nc -l -p 8082 </dev/null >/dev/null & sleep 0.3");
    assert!(ok, "{out}");
    let a = agent.wait_for("the undeclared listener", Duration::from_secs(20), |a| {
        has_tag(a, "network_drift")
            && field(a, "container.id") == NET
            && field(a, "drift.path") == "8082/tcp"
    });
    assert_eq!(field(&a, "drift.verdict"), "undeclared_port", "{a}");
    let declared: Vec<String> = agent
        .alerts()
        .iter()
        .filter(|a| {
            has_tag(a, "network_drift")
                && field(a, "container.id") == NET
                && field(a, "fd.lport") == 8080
        })
        .map(|a| a.to_string())
        .collect();
    assert!(
        declared.is_empty(),
        "8080/tcp is exposed by the image, yet:\n{}",
        declared.join("\n")
    );
}
