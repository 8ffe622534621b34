//! Hostile file names end to end: every JSON driftwatch writes (`diff --json`, file-drift
//! alerts, an evidence bundle) carries each name exactly, `<field>_b64` beside a name that is
//! not UTF-8, and every text output keeps control characters escaped.

use std::process::Command;
use std::time::Duration;

use driftwatch_model::name::decode_name;
use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(20);

/// The names the container makes below `/etc`, as bytes: a newline, a tab, a quote and a
/// backslash, a terminal escape, and two bytes that are not UTF-8.
const NAMES: [&[u8]; 5] = [
    b"we ird\nname",
    b"tab\there",
    b"quote\"back\\slash",
    b"esc\x1b[31mred",
    b"\xff\xfe.bin",
];

fn ready() -> bool {
    require(&[
        Requirement::Bpf,
        Requirement::Docker,
        Requirement::Image(DEBIAN),
    ])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn shown(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// `/etc/NAME` for each of [`NAMES`].
fn paths() -> Vec<Vec<u8>> {
    NAMES
        .iter()
        .map(|n| [b"/etc/".as_slice(), n].concat())
        .collect()
}

/// A symbolic link whose target is the last of [`NAMES`] (not UTF-8).
const LINK: &str = "/etc/dw-link";

/// Makes each of `paths` in the container with exactly those bytes, and [`LINK`] to the last
/// one (python3 takes them as hex, no shell quoting in between).
fn make_files(c: &TestContainer, paths: &[Vec<u8>]) {
    let mut argv = vec![
        "python3".to_string(),
        "-c".into(),
        concat!(
            "import os, sys\n",
            "for h in sys.argv[2:]:\n    open(bytes.fromhex(h), 'wb').write(b'x')\n",
            "os.symlink(bytes.fromhex(sys.argv[-1])[5:], sys.argv[1].encode())"
        )
        .into(),
        LINK.into(),
    ];
    argv.extend(paths.iter().map(|p| hex(p)));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (code, out) = c.exec(&argv);
    assert_eq!(code, 0, "{out}");
}

/// The entry of `files` (a JSON array) whose name decodes to `path`.
fn entry_for<'a>(files: &'a Value, path: &[u8]) -> &'a Value {
    files
        .as_array()
        .expect("an array of files")
        .iter()
        .find(|f| decode_name(f, "path").is_ok_and(|p| p == path))
        .unwrap_or_else(|| panic!("{} not in {files:#}", shown(path)))
}

/// Checks one entry's name: the display string is the name (U+FFFD for what is not UTF-8),
/// `path_b64` is there only for a name that is not UTF-8.
fn assert_exact(entry: &Value, field: &str, path: &[u8]) {
    assert_eq!(
        entry[field].as_str(),
        Some(String::from_utf8_lossy(path).as_ref()),
        "{entry}"
    );
    let b64 = entry.get(format!("{field}_b64"));
    assert_eq!(
        b64.is_some(),
        std::str::from_utf8(path).is_err(),
        "{field}_b64 in {entry}"
    );
    assert_eq!(decode_name(entry, field).unwrap(), path);
}

#[test]
fn hostile_names_are_exact_in_every_json_and_escaped_in_text() {
    if !ready() {
        return;
    }
    let mut agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = watched_container(&agent, DEBIAN);
    let paths = paths();
    make_files(&c, &paths);

    // The agent's file-drift alerts: fd.name and drift.path carry the exact name.
    for path in &paths {
        let a = agent.wait_for(&format!("creation of {}", shown(path)), WAIT, |a| {
            has_tag(a, "file_drift")
                && field(a, "container.id") == c.short()
                && decode_name(&a["output_fields"], "fd.name").is_ok_and(|n| n == *path)
        });
        assert_eq!(a["rule"], "Write below etc", "{a}");
        assert_exact(&a["output_fields"], "fd.name", path);
        assert_eq!(field(&a, "proc.name"), "python3", "{a}");
        // The text of the alert is escaped: no control character, the name readable.
        let output = a["output"].as_str().unwrap();
        assert!(!output.chars().any(char::is_control), "{output:?}");
    }
    let esc = agent
        .alerts()
        .into_iter()
        .find(|a| field(a, "fd.name") == "/etc/esc\u{1b}[31mred")
        .unwrap();
    assert!(
        esc["output"]
            .as_str()
            .unwrap()
            .contains("file=/etc/esc\\u{1b}[31mred "),
        "{esc}"
    );
    // Every line of the JSON file is one object; JSON escapes the control characters.
    let raw = std::fs::read(&agent.json_out).unwrap();
    let lines = String::from_utf8(raw).expect("the alerts file is UTF-8");
    for line in lines.lines() {
        assert!(!line.chars().any(|ch| ch < ' '), "{line:?}");
        let _: Value = serde_json::from_str(line).expect("one JSON object per line");
    }
    agent.stop();

    // `diff --json`: each name exact, as docker diff lists it.
    let out = run_cli(DRIFTWATCH, &["diff", "--json", &c.id]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("diff --json is JSON");
    let docker_diff = docker(&["diff", &c.id]);
    assert!(docker_diff.status.success(), "{}", text(&docker_diff));
    let docker_lines = docker_diff.stdout;
    for path in &paths {
        let e = entry_for(&report["files"], path);
        assert_exact(e, "path", path);
        assert_eq!(e["change"], "added", "{e}");
        assert_eq!(e["docker"], "A", "{e}");
        assert!(e.get("escaped").is_none(), "the escaped flag is gone: {e}");
        // docker prints the name raw, or with U+FFFD where it is not UTF-8 (its API is JSON).
        let line = [b"A ", String::from_utf8_lossy(path).as_bytes(), b"\n"].concat();
        assert!(
            docker_lines.windows(line.len()).any(|w| w == line),
            "docker diff does not list {}: {}",
            shown(path),
            String::from_utf8_lossy(&docker_lines)
        );
    }

    let link = entry_for(&report["files"], LINK.as_bytes());
    assert_eq!(link["kind"], "symlink", "{link}");
    assert_exact(link, "symlink_target", NAMES[4]);

    // The text of the same diff: escaped names, no raw control byte or invalid UTF-8.
    let out = run_cli(DRIFTWATCH, &["diff", &c.id, "--all"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let table = String::from_utf8(out.stdout).expect("the table is UTF-8");
    assert!(
        !table.chars().any(|ch| ch.is_control() && ch != '\n'),
        "raw control character on the terminal: {table:?}"
    );
    for escaped in [
        "/etc/we ird\\nname",
        "/etc/tab\\there",
        "/etc/quote\"back\\\\slash",
        "/etc/esc\\u{1b}[31mred",
        "/etc/\\xff\\xfe.bin",
    ] {
        assert!(table.contains(escaped), "{escaped} not in {table}");
    }

    // An evidence bundle: diff.json and files.json carry the exact names, alerts.jsonl the
    // agent's alerts with theirs.
    if !require_tools(&["tar", "zstd"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b.tar.zst");
    let out = run_cli(
        DRIFTWATCH,
        &[
            "capture",
            &c.id,
            "-o",
            bundle.to_str().unwrap(),
            "--alerts",
            agent.json_out.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let o = Command::new("tar")
        .arg("--zstd")
        .arg("-xf")
        .arg(&bundle)
        .arg("-C")
        .arg(&x)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let read = |n: &str| -> Value {
        serde_json::from_slice(&std::fs::read(x.join(n)).unwrap())
            .unwrap_or_else(|e| panic!("{n}: {e}"))
    };
    let (diff, files) = (read("diff.json"), read("files.json"));
    let manifest = read("manifest.json");
    for path in &paths {
        assert_exact(entry_for(&diff["files"], path), "path", path);
        let rec = entry_for(&files, path);
        assert_exact(rec, "path", path);
        // The bytes are in the bundle under an escaped name the manifest lists.
        let stored = rec["bundle_path"].as_str().expect("stored");
        assert!(
            manifest["files"].get(stored).is_some(),
            "{stored} not in {manifest}"
        );
        assert_eq!(std::fs::read(x.join(stored)).unwrap(), b"x");
    }
    let alerts = std::fs::read_to_string(x.join("alerts.jsonl")).unwrap();
    let alerts: Vec<Value> = alerts
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for path in &paths {
        assert!(
            alerts
                .iter()
                .any(|a| decode_name(&a["output_fields"], "fd.name").is_ok_and(|n| n == *path)),
            "{} not in the bundle's alerts",
            shown(path)
        );
    }
}
