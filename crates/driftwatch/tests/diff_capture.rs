//! `driftwatch diff` and `driftwatch capture` against real containers: the file-level view
//! agrees with `docker diff`, the content verdicts docker cannot give, JSON shape, `--only`,
//! exit codes, stopped and vanishing containers; capture, verify, tampering, read-only.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

fn ready(image: &'static str) -> bool {
    require(&[
        Requirement::Bpf,
        Requirement::Docker,
        Requirement::Image(image),
    ])
}

/// `driftwatch diff --json`: exit code and the report.
fn diff_json(id: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["diff", "--json", id];
    args.extend_from_slice(extra);
    let out = run_cli(DRIFTWATCH, &args);
    let code = out.status.code().unwrap_or(-1);
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("diff --json is not JSON ({e}); {}", text(&out)));
    (code, v)
}

/// `docker diff` as (A|C|D, path).
fn docker_diff(id: &str) -> BTreeSet<(char, String)> {
    let out = docker(&["diff", id]);
    assert!(out.status.success(), "docker diff: {}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (k, p) = l.split_once(' ')?;
            Some((k.chars().next()?, p.to_string()))
        })
        .collect()
}

/// The paths our report says `docker diff` lists.
fn docker_view(report: &Value) -> BTreeSet<(char, String)> {
    report["files"]
        .as_array()
        .expect("files array")
        .iter()
        .filter_map(|f| {
            let k = f["docker"].as_str()?.chars().next()?;
            Some((k, f["path"].as_str()?.to_string()))
        })
        .collect()
}

fn file<'a>(report: &'a Value, path: &str) -> &'a Value {
    report["files"]
        .as_array()
        .expect("files array")
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} not in the diff: {report:#}"))
}

fn has_file(report: &Value, path: &str) -> bool {
    report["files"]
        .as_array()
        .is_some_and(|a| a.iter().any(|f| f["path"] == path))
}

#[test]
fn debian_diff_agrees_with_docker_diff_and_adds_content_verdicts() {
    if !ready(DEBIAN) {
        return;
    }
    let c = TestContainer::run(&[DEBIAN, "sleep", "infinity"]);
    let (code, out) = c.sh(concat!(
        "set -e; cp /bin/ls /tmp/ls2; ",
        "printf '#!/bin/sh\\necho hi\\n' > /usr/local/bin/tool; chmod +x /usr/local/bin/tool; ",
        "echo tampered >> /etc/motd; ",
        "touch /usr/bin/cat; ",
        "chmod u+s /usr/bin/date; ",
        "chown root:root /etc/debian_version; ",
        "rm /etc/issue; rm -rf /usr/share/doc; ",
        "mkdir -p /opt/new/dir; ln -s /etc/passwd /tmp/link; mkfifo /tmp/fifo"
    ));
    assert_eq!(code, 0, "{out}");
    let (code, r) = diff_json(&c.id, &[]);
    assert_eq!(code, 1, "drift → exit 1");
    assert_eq!(
        docker_view(&r),
        docker_diff(&c.id),
        "same paths and A/C/D as docker diff"
    );
    assert_eq!(r["drifted"], true);
    assert_eq!(r["container"]["id"], c.id.as_str());

    let ls = file(&r, "/tmp/ls2");
    assert_eq!(ls["change"], "added");
    assert_eq!(ls["class"]["executable"], "elf");
    assert!(ls["hash"].as_str().is_some_and(|h| h.len() == 64));
    let tool = file(&r, "/usr/local/bin/tool");
    assert_eq!(tool["class"]["executable"], "script");
    let motd = file(&r, "/etc/motd");
    assert_eq!(motd["change"], "modified");
    assert_eq!(motd["class"]["config"], true);
    assert_ne!(motd["hash"], motd["image_hash"]);
    // What docker cannot say: touch changed only the times, chmod only the mode.
    let cat = file(&r, "/usr/bin/cat");
    assert_eq!(cat["docker"], "C");
    assert_eq!(cat["change"], "metadata", "touch is not a modification");
    assert!(cat["metadata"]["mtime_ns"].is_object() && cat["metadata"]["mode"].is_null());
    assert_eq!(cat["hash"], cat["image_hash"]);
    let date = file(&r, "/usr/bin/date");
    assert_eq!(date["change"], "metadata");
    assert_eq!(date["metadata"]["mode"]["current"], 0o4755);
    // chown to the same owner: copied up, nothing differs; docker does not list it.
    let dv = file(&r, "/etc/debian_version");
    assert_eq!(dv["change"], "unchanged");
    assert!(dv["docker"].is_null());
    assert_eq!(file(&r, "/etc/issue")["change"], "deleted");
    let doc = file(&r, "/usr/share/doc");
    assert_eq!(
        (doc["change"].as_str(), doc["kind"].as_str()),
        (Some("deleted"), Some("dir"))
    );
    let inside = r["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["deleted_with"] == "/usr/share/doc")
        .count();
    assert!(
        inside > 10,
        "entries of the deleted directory listed: {inside}"
    );
    assert_eq!(file(&r, "/tmp/link")["symlink_target"], "/etc/passwd");
    assert_eq!(file(&r, "/tmp/fifo")["kind"], "fifo");
    assert_eq!(file(&r, "/opt/new/dir")["change"], "added");

    // The table: grouped, with counts, one line per path.
    let out = run_cli(DRIFTWATCH, &["diff", &c.id]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "Added (",
        "Modified (content differs from the image) (1)",
        "Metadata only (same content) (2)",
        "Deleted (2)",
        "mode 0755 -> 4755",
        "DRIFT: ",
    ] {
        assert!(table.contains(needle), "{needle:?} missing in:\n{table}");
    }
    assert!(
        table
            .lines()
            .any(|l| l.contains("/usr/share/doc/ ") && l.contains(" entries inside")),
        "{table}"
    );
    assert!(
        !table.contains("/etc/debian_version"),
        "unchanged hidden:\n{table}"
    );
    let all = run_cli(DRIFTWATCH, &["diff", "--all", &c.id]);
    assert!(String::from_utf8_lossy(&all.stdout).contains("/etc/debian_version"));
}

#[test]
fn copy_up_that_changes_nothing_is_not_drift() {
    if !ready(DEBIAN) {
        return;
    }
    let c = TestContainer::run(&[DEBIAN, "sleep", "infinity"]);
    let (code, r) = diff_json(&c.id, &[]);
    assert_eq!((code, r["files"].as_array().map(Vec::len)), (0, Some(0)));
    let (code, out) = c.sh("chown root:root /etc/debian_version /usr/bin/ls");
    assert_eq!(code, 0, "{out}");
    assert!(docker_diff(&c.id).is_empty(), "docker sees nothing either");
    let (code, r) = diff_json(&c.id, &[]);
    assert_eq!(code, 0, "copy-ups only: no drift: {r:#}");
    assert_eq!(file(&r, "/usr/bin/ls")["change"], "unchanged");
    assert_eq!(r["drifted"], false);
    let out = run_cli(DRIFTWATCH, &["diff", &c.id]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no drift:"));
}

#[test]
fn json_shape_only_filters_and_exit_codes() {
    if !ready(BUSYBOX) {
        return;
    }
    let c = TestContainer::run(&[BUSYBOX, "sleep", "3600"]);
    let (code, r) = diff_json(c.short(), &[]);
    assert_eq!(code, 0, "fresh container, found by short id: {r:#}");
    let (code, out) =
        c.sh("cp /bin/busybox /tmp/bb && echo x > /etc/app.conf && echo y > /tmp/data");
    assert_eq!(code, 0, "{out}");

    let (code, r) = diff_json(&c.id, &[]);
    assert_eq!(code, 1);
    assert!(r["files"].is_array() && r["packages"].is_array(), "{r:#}");
    let allowed = ["added", "deleted", "modified", "metadata", "unchanged"];
    for f in r["files"].as_array().unwrap() {
        assert!(
            f["path"].as_str().is_some_and(|p| p.starts_with('/')),
            "{f}"
        );
        assert!(allowed.contains(&f["change"].as_str().unwrap_or("")), "{f}");
    }
    assert_eq!(r["counts"]["added"], 3);

    let (code, r) = diff_json(&c.id, &["--only", "executables"]);
    assert_eq!(code, 1);
    assert!(
        has_file(&r, "/tmp/bb") && !has_file(&r, "/tmp/data") && !has_file(&r, "/etc/app.conf")
    );
    assert_eq!(r["only"], "executables");
    let (code, r) = diff_json(&c.id, &["--only", "config"]);
    assert_eq!(code, 1);
    assert!(has_file(&r, "/etc/app.conf") && !has_file(&r, "/tmp/bb"));
    let (code, r) = diff_json(&c.id, &["--only", "packages"]);
    assert_eq!(code, 0, "no package changed: {r:#}");
    assert_eq!(r["packages"].as_array().map(Vec::len), Some(0));

    // Errors: exit 2, one line naming what was asked for.
    for (arg, needle) in [
        (
            "no-such-container-dw",
            "no such container: no-such-container-dw",
        ),
        ("../../etc", "not a container name or id"),
    ] {
        let out = run_cli(DRIFTWATCH, &["diff", arg]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(
            err.contains(needle) && err.trim().lines().count() == 1,
            "{err}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn stopped_container_is_diffed_from_the_engine_record() {
    if !ready(BUSYBOX) {
        return;
    }
    let c = TestContainer::run(&[BUSYBOX, "sleep", "3600"]);
    let (code, out) = c.sh("cp /bin/busybox /tmp/x && rm /etc/group && touch /bin/ls");
    assert_eq!(code, 0, "{out}");
    let out = docker(&["stop", "-t", "0", &c.id]);
    assert!(out.status.success());
    let (code, r) = diff_json(&c.id, &[]);
    assert_eq!(code, 1);
    assert_eq!(r["container"]["running"], false);
    assert!(
        r["container"]["layers_from"]
            .as_str()
            .unwrap()
            .contains("engine"),
        "{r:#}"
    );
    assert_eq!(docker_view(&r), docker_diff(&c.id));
    assert_eq!(file(&r, "/etc/group")["change"], "deleted");
}

#[test]
fn hostile_names_special_files_and_loops_give_valid_output() {
    if !ready(BUSYBOX) {
        return;
    }
    let c = TestContainer::run(&[BUSYBOX, "sleep", "3600"]);
    let (code, out) = c.sh(concat!(
        "touch \"$(printf '/tmp/a\\nb')\" \"$(printf '/tmp/\\377x')\" && ",
        "ln -s /tmp/loop /tmp/loop && mkfifo /tmp/fifo && ",
        "mkdir -p /tmp/$(printf 'd%.0s' $(seq 1 200))/$(printf 'e%.0s' $(seq 1 200))"
    ));
    assert_eq!(code, 0, "{out}");
    let (code, r) = diff_json(&c.id, &[]);
    assert_eq!(code, 1);
    // Exact names in JSON (docs/outputs.md, "Names in JSON"); names.rs checks every form.
    assert_eq!(file(&r, "/tmp/a\nb")["kind"], "file");
    assert_eq!(file(&r, "/tmp/\u{FFFD}x")["path_b64"], "L3RtcC//eA==");
    assert_eq!(file(&r, "/tmp/loop")["kind"], "symlink");
    let out = run_cli(DRIFTWATCH, &["diff", &c.id]);
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.trim_start().starts_with("/tmp/a\\nb ")),
        "{table}"
    );
}

#[test]
fn container_removed_mid_diff_is_an_error_not_a_partial_result() {
    if !ready(BUSYBOX) {
        return;
    }
    let c = TestContainer::run(&[BUSYBOX, "sleep", "3600"]);
    let n = 60_000;
    let (code, out) = c.sh(&format!(
        "i=0; while [ $i -lt {n} ]; do [ $((i % 1000)) -eq 0 ] && mkdir -p /data/$i && cd /data/$i; echo $i > f$i; i=$((i+1)); done"
    ));
    assert_eq!(code, 0, "{out}");
    let child = Command::new(DRIFTWATCH)
        .args(["diff", "--json", &c.id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    let rm = docker(&["rm", "-f", &c.id]);
    assert!(rm.status.success());
    let out = child.wait_with_output().unwrap();
    eprintln!("docker rm took {:?}", t.elapsed());
    match out.status.code() {
        // Done before the removal began: then the result is whole.
        Some(1) => {
            let r: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert!(
                r["counts"]["added"].as_u64().unwrap() > n,
                "partial result: {}",
                r["counts"]
            );
        }
        Some(2) => {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(c.short()), "{err}");
            assert!(
                err.contains("removed during the diff")
                    || err.contains("vanished")
                    || err.contains("no such container"),
                "{err}"
            );
            assert_eq!(err.trim().lines().count(), 1, "{err}");
        }
        other => panic!("exit {other:?}: {}", text(&out)),
    }
}

#[test]
fn capture_verify_roundtrip_is_read_only_and_detects_tampering() {
    if !ready(BUSYBOX) {
        return;
    }
    let c = TestContainer::run(&[BUSYBOX, "sleep", "3600"]);
    let (code, out) = c.sh(concat!(
        "cp /bin/busybox /tmp/busybox && head -c 2097152 /dev/urandom > /tmp/big.bin && ",
        "echo secret > /etc/app.conf"
    ));
    assert_eq!(code, 0, "{out}");
    let out = docker(&[
        "exec",
        "-d",
        &c.id,
        "/tmp/busybox",
        "httpd",
        "-f",
        "-p",
        "8081",
    ]);
    assert!(out.status.success());
    std::thread::sleep(Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let alerts = dir.path().join("alerts.json");
    std::fs::write(
        &alerts,
        format!(
            "{}\n{}\nnot json\n{}\n",
            serde_json::json!({"rule": "mine-1", "output_fields": {"container.id": c.short()}}),
            serde_json::json!({"rule": "other", "output_fields": {"container.id": "0123456789ab"}}),
            serde_json::json!({"rule": "mine-2", "output_fields": {"container.id": c.short()}}),
        ),
    )
    .unwrap();
    let before = docker_diff(&c.id);
    let bundle = dir.path().join("evidence.tar.zst");
    let b = bundle.to_str().unwrap();
    let out = run_cli(
        DRIFTWATCH,
        &[
            "capture",
            &c.id,
            "-o",
            b,
            "--max-file-size",
            "1M",
            "--alerts",
            alerts.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("2 alerts") && said.contains("2 drifted files stored (1 listed only)"),
        "{said}"
    );
    assert_eq!(
        docker_diff(&c.id),
        before,
        "capture changed nothing docker sees"
    );
    let (code, _) = c.sh("true");
    assert_eq!(code, 0, "still running");

    let out = run_cli(DRIFTWATCH, &["capture", "--verify", b]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(": OK, "));
    let again = run_cli(DRIFTWATCH, &["capture", &c.id, "-o", b]);
    assert_eq!(again.status.code(), Some(2), "no overwrite without --force");

    // A byte flipped in the compressed bundle.
    let mut bytes = std::fs::read(&bundle).unwrap();
    let flipped = dir.path().join("flipped.tar.zst");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&flipped, &bytes).unwrap();
    let out = run_cli(
        DRIFTWATCH,
        &["capture", "--verify", flipped.to_str().unwrap()],
    );
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));

    if !require_tools(&["tar", "zstd"]) {
        return;
    }
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let run = |cmd: &mut Command| {
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        o
    };
    run(Command::new("tar")
        .arg("--zstd")
        .arg("-xf")
        .arg(&bundle)
        .arg("-C")
        .arg(&x));
    for name in [
        "manifest.json",
        "diff.json",
        "container.json",
        "files.json",
        "processes.json",
        "sockets.json",
        "alerts.jsonl",
        "files/tmp/busybox",
        "files/etc/app.conf",
    ] {
        assert!(x.join(name).exists(), "{name} missing from the bundle");
    }
    assert!(!x.join("files/tmp/big.bin").exists(), "over the size cap");
    let read =
        |n: &str| -> Value { serde_json::from_slice(&std::fs::read(x.join(n)).unwrap()).unwrap() };
    let files = read("files.json");
    let big = files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/tmp/big.bin")
        .unwrap();
    assert!(
        big["note"].as_str().unwrap().contains("--max-file-size"),
        "{big}"
    );
    let procs = read("processes.json");
    let httpd = procs["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["exe"] == "/tmp/busybox")
        .unwrap_or_else(|| panic!("httpd not in {procs:#}"));
    assert_eq!(httpd["exe_verdict"], "added");
    let (_, sum) = c.exec(&["sha256sum", "/tmp/busybox"]);
    assert_eq!(httpd["exe_sha256"].as_str(), sum.split_whitespace().next());
    let sockets = read("sockets.json");
    let listening = sockets["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["role"] == "listening" && s["local"].as_str().unwrap().ends_with(":8081"))
        .unwrap_or_else(|| panic!("no listener on 8081 in {sockets:#}"));
    assert_eq!(listening["pids"][0], httpd["pid"]);
    let container = read("container.json");
    assert_eq!(container["id"], c.id.as_str());
    assert_eq!(container["inspect"]["Id"], c.id.as_str());
    let alerts = std::fs::read_to_string(x.join("alerts.jsonl")).unwrap();
    assert!(alerts.contains("mine-1") && alerts.contains("mine-2") && !alerts.contains("other"));

    // One byte of a stored file changed, the archive rebuilt: verify names the file.
    let victim = x.join("files/tmp/busybox");
    let mut content = std::fs::read(&victim).unwrap();
    content[100] ^= 1;
    std::fs::write(&victim, content).unwrap();
    let tampered = dir.path().join("tampered.tar.zst");
    run(Command::new("tar")
        .arg("--zstd")
        .arg("-cf")
        .arg(&tampered)
        .arg("-C")
        .arg(&x)
        .arg("."));
    let out = run_cli(
        DRIFTWATCH,
        &["capture", "--verify", tampered.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("MISMATCH") && report.contains("files/tmp/busybox"),
        "{report}"
    );
}

#[test]
fn capture_of_a_stopped_container() {
    if !ready(BUSYBOX) {
        return;
    }
    let c = TestContainer::run(&[BUSYBOX, "sleep", "3600"]);
    let (code, out) = c.sh("cp /bin/busybox /tmp/dropped");
    assert_eq!(code, 0, "{out}");
    assert!(docker(&["stop", "-t", "0", &c.id]).status.success());
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("b.tar.zst");
    let out = run_cli(
        DRIFTWATCH,
        &[
            "capture",
            c.short(),
            "-o",
            b.to_str().unwrap(),
            "--alerts",
            "/dev/null",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 processes"));
    let out = run_cli(DRIFTWATCH, &["capture", "--verify", b.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn verify_of_a_missing_bundle_is_an_error() {
    let out = run_cli(
        DRIFTWATCH,
        &["capture", "--verify", "/nonexistent/b.tar.zst"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/b.tar.zst"));
}
