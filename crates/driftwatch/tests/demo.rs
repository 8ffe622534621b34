//! `driftwatch demo`, run for real: every drift it lists is alerted by its own agent, the
//! throwaway container is gone afterwards, and also after a Ctrl-C in the middle.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use driftwatch_testkit::*;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const DEMO_LABEL: &str = "io.driftwatch.demo";
/// Drifts the demo promises (README "The one-minute demo", `driftwatch demo --help`).
const EXPECTED: &[&str] = &[
    "config",
    "config_file",
    "dropped_binary",
    "tmpfs_binary",
    "script",
    "modified_binary",
    "listener",
    "package",
];

/// Root (BPF), dockerd, and the host's static busybox the demo builds its image from.
fn demo_ready() -> bool {
    require(&[
        Requirement::Bpf,
        Requirement::Docker,
        Requirement::File("/bin/busybox", "apt-get install busybox-static"),
    ])
}

/// The demo's containers still present (running or not): labelled as the demo's and named
/// after the demo process (tests run in parallel, each with its own demo).
fn leftovers(demo_pid: u32) -> Vec<String> {
    let out = docker(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("label={DEMO_LABEL}"),
        "--filter",
        &format!("name=^driftwatch-demo-{demo_pid}$"),
    ]);
    assert!(out.status.success(), "docker ps: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn demo(image: &str) -> Command {
    let mut c = Command::new(DRIFTWATCH);
    c.args(["demo", "--json", "--image", image]);
    c
}

/// A unique image name per test (the tests run in parallel; each builds and removes its own).
fn image_name(test: &str) -> String {
    format!("driftwatch-demo-test/{test}:{}", std::process::id())
}

#[test]
fn demo_detects_every_drift_it_lists_and_leaves_no_container() {
    if !demo_ready() {
        return;
    }
    let image = image_name("all");
    let out = demo(&image).output().expect("running driftwatch demo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert_eq!(out.status.code(), Some(0), "demo failed:\n{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "summary is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let drifts = summary["drifts"].as_array().expect("drifts");
    let keys: Vec<&str> = drifts
        .iter()
        .map(|d| d["drift"].as_str().unwrap())
        .collect();
    assert_eq!(keys, EXPECTED, "{summary}");
    let id = summary["container"]["id"].as_str().unwrap();
    for d in drifts {
        assert_eq!(d["seen"], true, "not alerted: {d}");
        let alert = &d["alert"];
        // The alert is the agent's real Falco JSON for this container, under the expected rule.
        assert_eq!(alert["rule"], d["rule"], "{d}");
        assert_eq!(
            alert["output_fields"]["container.id"].as_str().unwrap(),
            &id[..12],
            "{d}"
        );
        assert!(has_tag(alert, "drift"), "{alert}");
    }
    // The narration names each drift and ends with the table.
    assert!(stderr.contains("summary (expected vs seen)"), "{stderr}");
    assert!(stderr.contains("8/8 drifts detected"), "{stderr}");
    let name = summary["container"]["name"].as_str().unwrap();
    let pid: u32 = name
        .strip_prefix("driftwatch-demo-")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        leftovers(pid).is_empty(),
        "demo container {name} left behind"
    );
    // The image it built is removed too (no --keep-image).
    let inspect = docker(&["image", "inspect", &image]);
    assert!(!inspect.status.success(), "image {image} left behind");
}

#[test]
fn ctrl_c_in_the_middle_removes_the_container() {
    if !demo_ready() {
        return;
    }
    let image = image_name("interrupt");
    let mut child = demo(&image)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning driftwatch demo");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let state_dir = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let state_seen = state_dir.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[demo] {line}");
            // "starting the agent (state in /tmp/driftwatch-demo-XXXX, not ...)"
            if let Some(rest) = line.split("state in ").nth(1) {
                let dir = rest.split(',').next().unwrap_or_default().to_string();
                *state_seen.lock().unwrap() = Some(dir);
            }
            // Interrupt once the container exists and drifting has begun.
            if line.contains("drift: a dropped binary") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("the demo never reached its drifts");
    let state_dir = state_dir
        .lock()
        .unwrap()
        .clone()
        .expect("the demo named its state dir");
    assert!(std::path::Path::new(&state_dir).is_dir(), "{state_dir}");
    let pid = child.id();
    assert!(
        !leftovers(pid).is_empty(),
        "the demo's container should be running now"
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "demo ignored SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(
        leftovers(pid).is_empty(),
        "container left after Ctrl-C: {:?}",
        leftovers(pid)
    );
    // Its temporary state and the image it built went too.
    assert!(
        !std::path::Path::new(&state_dir).exists(),
        "{state_dir} left"
    );
    let inspect = docker(&["image", "inspect", &image]);
    if inspect.status.success() {
        let _ = docker(&["image", "rm", "-f", &image]);
        panic!("image {image} left after Ctrl-C");
    }
}

#[test]
fn demo_refuses_a_dynamic_busybox_with_the_reason() {
    if !demo_ready() {
        return;
    }
    // bash is dynamically linked on Debian: no image can be built from it.
    let child = demo(&image_name("dynamic"))
        .args(["--busybox", "/bin/bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("/bin/bash is dynamically linked"),
        "{stderr}"
    );
    assert!(leftovers(pid).is_empty(), "{:?}", leftovers(pid));
}
