//! Image verification, end to end with a real dockerd: `driftwatch verify` against an
//! approved list (approved, unapproved, mutable tag; exit codes; garbage lists and engines
//! that are missing or never answer), a lower layer edited on the host named by layer and
//! file, and the agent's alerts for both at container start.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Duration;

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

/// The tests start containers and read every running one: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn ready() -> bool {
    require(&[
        Requirement::Bpf,
        Requirement::Docker,
        Requirement::Image(BUSYBOX),
        Requirement::Image(DEBIAN),
    ])
}

fn verify(args: &[&str]) -> Output {
    Command::new(DRIFTWATCH)
        .arg("verify")
        .args(args)
        .output()
        .expect("running driftwatch verify")
}

fn image_id(image: &str) -> String {
    let out = docker(&["image", "inspect", "-f", "{{.Id}}", image]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn row<'a>(report: &'a Value, c: &TestContainer) -> &'a Value {
    report["containers"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["id"] == c.short()))
        .unwrap_or_else(|| panic!("no row for {}: {report:#}", c.short()))
}

#[test]
fn approved_unapproved_and_mutable_tags_with_exit_codes() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !ready() {
        return;
    }
    let bb = image_id(BUSYBOX);
    let deb = image_id(DEBIAN);
    let by_id = TestContainer::run(&[&bb, "sleep", "120"]);
    let by_tag = TestContainer::run(&[BUSYBOX, "sleep", "120"]);
    let other = TestContainer::run(&[DEBIAN, "sleep", "120"]);
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("approved.txt");
    // Offline images have no RepoDigests: a reference at the image id, under its repository.
    std::fs::write(&list, format!("# approved\ndriftwatch-test/busybox@{bb}\n")).unwrap();
    let out = verify(&["--approved", list.to_str().unwrap(), "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    let a = row(&r, &by_id);
    assert_eq!(a["status"], "approved", "{a}");
    assert_eq!(a["by"], format!("{}:2", list.display()), "{a}");
    assert_eq!(a["mutable_tag"], Value::Null, "{a}");
    let t = row(&r, &by_tag);
    assert_eq!(t["status"], "approved", "{t}");
    assert_eq!(t["mutable_tag"], "1", "{t}");
    let o = row(&r, &other);
    assert_eq!(o["status"], "unapproved", "{o}");
    assert_eq!(o["image_id"], deb, "{o}");

    // The table says the same.
    let out = verify(&["--approved", list.to_str().unwrap()]);
    let table = String::from_utf8_lossy(&out.stdout);
    let line = |c: &TestContainer| {
        let name = docker(&["inspect", "-f", "{{.Name}}", &c.id]);
        let name = String::from_utf8_lossy(&name.stdout)
            .trim()
            .trim_start_matches('/')
            .to_string();
        table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} not in\n{table}"))
            .to_string()
    };
    assert!(line(&other).contains("unapproved"), "{table}");
    assert!(
        line(&by_tag).contains("approved, mutable tag :1"),
        "{table}"
    );

    // Every image approved by bare digest, tags allowed: exit 0 (only if nothing else runs).
    std::fs::write(&list, format!("{bb}\n- \"{deb}\"\n")).unwrap();
    let out = verify(&[
        "--approved",
        list.to_str().unwrap(),
        "--json",
        "--allow-mutable",
    ]);
    let r = json(&out);
    let all_ours = r["containers"].as_array().unwrap().iter().all(|c| {
        [&by_id, &by_tag, &other]
            .iter()
            .any(|o| c["id"] == o.short())
    });
    if all_ours {
        assert_eq!(out.status.code(), Some(0), "{r:#}");
    }
    for c in [&by_id, &by_tag, &other] {
        assert_eq!(row(&r, c)["status"], "approved", "{r:#}");
    }

    // A Kubernetes manifest pinning debian only.
    let manifest = dir.path().join("deploy.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      \
             - name: app\n        image: driftwatch-test/debian:12@{deb}\n      - name: side\n        image: busybox:latest\n"
        ),
    )
    .unwrap();
    let out = verify(&["--approved", manifest.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let r = json(&out);
    assert_eq!(row(&r, &other)["status"], "approved");
    assert_eq!(row(&r, &other)["by"], format!("{}:8", manifest.display()));
    assert_eq!(row(&r, &by_id)["status"], "unapproved");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:10: warning: image `busybox:latest` is not pinned",
            manifest.display()
        )),
        "{err}"
    );
}

#[test]
fn garbage_lists_and_bad_engines_are_clear_errors() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("bad.txt");
    std::fs::write(&list, "# ok\nsha256:abc\n\nnginx:latest\n").unwrap();
    let out = verify(&["--approved", list.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let l = list.display();
    assert!(
        err.contains(&format!(
            "{l}:2:1: error: the digest is not sha256:<64 hex digits>\n2 | sha256:abc\n  | ^"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{l}:4:1: error: a tag or name is not a digest")),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let good = dir.path().join("good.txt");
    std::fs::write(&good, format!("sha256:{}\n", "a".repeat(64))).unwrap();
    let missing = dir.path().join("no.sock");
    let out = verify(&[
        "--approved",
        good.to_str().unwrap(),
        "--docker-socket",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot connect to") && err.contains("no.sock"),
        "{err}"
    );

    // An engine that accepts and never answers.
    let hang = dir.path().join("hang.sock");
    let listener = std::os::unix::net::UnixListener::bind(&hang).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let start = std::time::Instant::now();
    let out = verify(&[
        "--approved",
        good.to_str().unwrap(),
        "--docker-socket",
        hang.to_str().unwrap(),
        "--timeout",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("timed out after 1000 ms"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(10));
}

/// A one-layer image built on busybox, removed (with its layers) when dropped.
struct VictimImage {
    tag: String,
}

impl VictimImage {
    fn build(dir: &Path) -> VictimImage {
        let tag = format!("driftwatch-test/layer-victim:{}", std::process::id());
        // Unique content: no build cache can hand back an earlier (edited) layer.
        let nonce = format!("{:?}", std::time::SystemTime::now());
        std::fs::write(dir.join("payload.txt"), format!("good payload {nonce}\n")).unwrap();
        std::fs::write(
            dir.join("Dockerfile"),
            format!("FROM {BUSYBOX}\nCOPY payload.txt /opt/payload.txt\n"),
        )
        .unwrap();
        let out = docker(&["build", "-q", "-t", &tag, dir.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        VictimImage { tag }
    }
}

impl Drop for VictimImage {
    fn drop(&mut self) {
        let _ = docker(&["rmi", "-f", &self.tag]);
    }
}

fn inspect(image: &str, format: &str) -> String {
    let out = docker(&["image", "inspect", "-f", format, image]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn edited_lower_layer_is_named_and_alerted() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = VictimImage::build(dir.path());
    let out = verify(&["--layers", "--image", &image.tag, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    let layers = r["images"][0]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "{r:#}");
    for l in layers {
        assert_eq!(
            l["stream_digest"], l["diff_id"],
            "rebuilt tar != diff id: {l:#}"
        );
    }

    // The image's top layer is its UpperDir; edit the payload in place, same size.
    let top = inspect(&image.tag, "{{.GraphDriver.Data.UpperDir}}");
    let diff_id = inspect(&image.tag, "{{index .RootFS.Layers 1}}");
    let file = Path::new(&top).join("opt/payload.txt");
    let good = std::fs::read(&file).unwrap();
    let mut evil = good.clone();
    evil[..4].copy_from_slice(b"EVIL");
    std::fs::write(&file, &evil).unwrap();

    let out = verify(&["--layers", "--image", &image.tag, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    let bad: Vec<&Value> = r["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| !l["problems"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(bad.len(), 1, "{r:#}");
    assert_eq!(bad[0]["diff_id"], diff_id.as_str());
    assert_eq!(bad[0]["dir"], top.as_str());
    assert_eq!(
        bad[0]["problems"],
        serde_json::json!([{"path": "opt/payload.txt", "kind": "modified",
            "expected_size": good.len(), "actual_size": good.len()}])
    );
    assert_ne!(bad[0]["stream_digest"], bad[0]["diff_id"]);
    let out = verify(&["--layers", "--image", &image.tag]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "layer {diff_id} ({top}): /opt/payload.txt modified"
        )),
        "{text}"
    );

    // The agent checks a new image's layers when its first container starts.
    let agent = AgentProcess::start(DRIFTWATCH, &["--layer-check-interval", "1h"]);
    let c = TestContainer::run(&[&image.tag, "sleep", "120"]);
    let a = agent.wait_for("the edited layer", Duration::from_secs(30), |a| {
        a["rule"] == "Image layer modified on host" && field(a, "container.id") == c.short()
    });
    assert_eq!(a["priority"], "Critical", "{a}");
    for tag in ["container", "drift", "image_drift"] {
        assert!(has_tag(&a, tag), "{tag}: {a}");
    }
    assert_eq!(field(&a, "drift.path"), "/opt/payload.txt", "{a}");
    assert_eq!(field(&a, "drift.verdict"), "modified", "{a}");
    let detail = field(&a, "drift.detail").as_str().unwrap_or_default();
    assert!(detail.contains(&diff_id) && detail.contains(&top), "{a}");

    // Put the file back: intact again.
    std::fs::write(&file, &good).unwrap();
    let out = verify(&["--layers", "--image", &image.tag]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn agent_alerts_unapproved_images_and_mutable_tags_at_start() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !ready() {
        return;
    }
    let bb = image_id(BUSYBOX);
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("approved.txt");
    std::fs::write(&list, format!("{bb}\n")).unwrap();
    let agent = AgentProcess::start(
        DRIFTWATCH,
        &["--approved", list.to_str().unwrap(), "--no-layer-check"],
    );
    let pinned = TestContainer::run(&[&bb, "sleep", "120"]);
    let tagged = TestContainer::run(&[BUSYBOX, "sleep", "120"]);
    let other = TestContainer::run(&[DEBIAN, "sleep", "120"]);
    let a = agent.wait_for("unapproved debian", Duration::from_secs(20), |a| {
        a["rule"] == "Container image not approved" && field(a, "container.id") == other.short()
    });
    assert_eq!(a["priority"], "Error", "{a}");
    assert_eq!(field(&a, "drift.verdict"), "unapproved", "{a}");
    assert_eq!(field(&a, "drift.path"), DEBIAN, "{a}");
    assert!(has_tag(&a, "image_drift") && has_tag(&a, "container") && has_tag(&a, "drift"));
    let m = agent.wait_for("mutable tag", Duration::from_secs(20), |a| {
        a["rule"] == "Container started from mutable tag"
            && field(a, "container.id") == tagged.short()
    });
    assert_eq!(m["priority"], "Notice", "{m}");
    assert!(
        field(&m, "drift.detail")
            .as_str()
            .is_some_and(|d| d.contains("tag `1`")),
        "{m}"
    );
    // Give the engine events of all three time to be judged, then: nothing about the pinned
    // and approved one, and no "not approved" for the approved tag.
    std::thread::sleep(Duration::from_secs(2));
    for a in agent.alerts() {
        if a["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|x| x == "image_drift"))
        {
            assert_ne!(field(&a, "container.id"), pinned.short(), "{a}");
            if field(&a, "container.id") == tagged.short() {
                assert_eq!(a["rule"], "Container started from mutable tag", "{a}");
            }
        }
    }
}
