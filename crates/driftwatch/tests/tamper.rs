//! Tamper protection and hostile input, end to end: a real agent, real containers. A
//! container sharing the host's pid namespace signals the agent; a container with the
//! agent's state directory bind-mounted writes there; a container executes files whose
//! names and arguments carry newlines, terminal escapes, invalid UTF-8 and long strings.

use std::process::Command;
use std::time::{Duration, Instant};

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(20);

/// The state letter of `/proc/<pid>/stat` (R, S, T, Z, ...), None when gone.
fn proc_state(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(')')?.1.trim_start().chars().next()
}

fn wait_state(pid: u32, want: char) {
    let start = Instant::now();
    while proc_state(pid) != Some(want) {
        assert!(
            start.elapsed() < WAIT,
            "agent pid {pid} not in state {want}: {:?}",
            proc_state(pid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal_alert<'a>(c: &'a TestContainer, sig: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |a| {
        a["rule"] == "Signal sent to driftwatch from a container"
            && field(a, "evt.arg.sig") == sig
            && field(a, "container.id") == c.short()
    }
}

#[test]
fn a_container_signalling_the_agent_raises_critical_alerts_and_cannot_stop_it() {
    if !ready() {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let baselines = state.path().join("baselines.json");
    let mut agent = AgentProcess::start(
        DRIFTWATCH,
        &["--no-store", "--baseline-file", baselines.to_str().unwrap()],
    );
    let pid = agent.pid().to_string();
    let c = TestContainer::run(&["--pid", "host", BUSYBOX, "sleep", "300"]);

    // SIGTERM from the container: alerted, ignored.
    let (rc, out) = c.exec(&["kill", "-TERM", &pid]);
    assert_eq!(rc, 0, "kill -TERM from the container: {out}");
    let a = agent.wait_for(
        "SIGTERM from a container",
        WAIT,
        signal_alert(&c, "SIGTERM"),
    );
    assert_eq!(a["priority"], "Critical", "{a}");
    assert!(has_tag(&a, "tamper"), "{a}");
    assert_eq!(field(&a, "proc.name"), "kill", "{a}");
    assert_eq!(field(&a, "evt.arg.target"), agent.pid(), "{a}");
    let name = field(&a, "container.name").as_str().unwrap_or_default();
    assert!(!name.is_empty(), "container.name missing: {a}");
    assert!(
        a["output"]
            .as_str()
            .unwrap()
            .contains(&format!("({})", c.short())),
        "{a}"
    );
    agent.wait_for_log("the ignored SIGTERM", 1, WAIT, |l| {
        l.contains("came from a container: ignored")
    });
    assert!(
        matches!(proc_state(agent.pid()), Some('S' | 'R')),
        "the agent stopped after a container's SIGTERM: {:?}",
        proc_state(agent.pid())
    );

    // SIGHUP from the container: alerted, no reload.
    let (rc, out) = c.exec(&["kill", "-HUP", &pid]);
    assert_eq!(rc, 0, "{out}");
    agent.wait_for("SIGHUP from a container", WAIT, signal_alert(&c, "SIGHUP"));

    // SIGSTOP cannot be caught: the agent is stopped, and reports it once continued.
    let (rc, out) = c.exec(&["kill", "-STOP", &pid]);
    assert_eq!(rc, 0, "{out}");
    wait_state(agent.pid(), 'T');
    agent.signal(libc::SIGCONT);
    agent.wait_for(
        "SIGSTOP from a container",
        WAIT,
        signal_alert(&c, "SIGSTOP"),
    );

    // Detection still works after all that: a drifted exec in another container alerts.
    let d = TestContainer::run(&[BUSYBOX, "sleep", "300"]);
    let (rc, out) = d.sh("cp /bin/busybox /tmp/ls && /tmp/ls / >/dev/null");
    assert_eq!(rc, 0, "{out}");
    agent.wait_for("a drifted exec after the signals", WAIT, |a| {
        has_tag(a, "binary_drift") && field(a, "container.id") == d.short()
    });

    // Signals from the host are not alerted on, and SIGTERM from the host still stops it.
    let before = agent
        .alerts()
        .iter()
        .filter(|a| has_tag(a, "tamper"))
        .count();
    agent.stop();
    assert_eq!(
        proc_state(agent.pid()),
        None,
        "the agent did not stop on the host's SIGTERM"
    );
    let after: Vec<Value> = agent
        .alerts()
        .into_iter()
        .filter(|a| has_tag(a, "tamper"))
        .collect();
    assert_eq!(after.len(), before, "host signals alerted: {after:?}");
    // A container without --pid host cannot even name the agent's pid.
    assert!(
        agent.log().iter().any(|l| l.contains("stopped:")),
        "no clean stop: {:?}",
        agent.log()
    );
}

#[test]
fn a_container_cannot_write_the_agents_state_directory() {
    if !ready() {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let db = state.path().join("driftwatch.db");
    let baselines = state.path().join("baselines.json");
    let agent = AgentProcess::start(
        DRIFTWATCH,
        &[
            "--store",
            db.to_str().unwrap(),
            "--baseline-file",
            baselines.to_str().unwrap(),
        ],
    );
    agent.wait_for_log("the protected paths", 1, WAIT, |l| {
        l.contains("tamper protection: containers may not open")
            && l.contains(state.path().to_str().unwrap())
    });
    let mount = format!("{}:/state", state.path().display());
    let c = TestContainer::run(&["-v", &mount, BUSYBOX, "sleep", "300"]);
    let (rc, out) = c.sh("echo owned > /state/evil.conf");
    assert_ne!(
        rc, 0,
        "the container wrote the agent's state directory: {out}"
    );
    assert!(out.contains("Operation not permitted"), "{out}");
    let a = agent.wait_for("the denied write", WAIT, |a| {
        a["rule"] == "Container opened a file of driftwatch"
            && field(a, "container.id") == c.short()
    });
    assert_eq!(a["priority"], "Critical", "{a}");
    assert_eq!(field(&a, "evt.res"), "EPERM", "{a}");
    assert_eq!(field(&a, "evt.type"), "openat", "{a}");
    assert_eq!(a["source"], "internal", "{a}");
    assert_eq!(field(&a, "fd.name"), "/state/evil.conf", "{a}");
    // Reading a file there is denied too.
    std::fs::write(state.path().join("host.txt"), "ok").expect("the host writes its own state");
    let (rc, out) = c.sh("cat /state/host.txt");
    assert_ne!(rc, 0, "the container read the agent's state: {out}");
    agent.wait_for("the denied read", WAIT, |a| {
        a["rule"] == "Container opened a file of driftwatch"
            && field(a, "fd.name") == "/state/host.txt"
    });
    // The alert store's SQLite files are left unguarded (a permission event's fd, once
    // closed, would drop the agent's SQLite locks): the store keeps working and holds the
    // tamper alerts.
    let listed = Command::new(DRIFTWATCH)
        .args([
            "alerts",
            "--json",
            "--rule",
            "Container opened a file of driftwatch",
            "--db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success() && text.contains("/state/evil.conf"),
        "the store does not list the tamper alert: {text}{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    // Nothing in the container got through, the host still writes there.
    let evil = state.path().join("evil.conf");
    let content = std::fs::read_to_string(&evil).unwrap_or_default();
    assert!(
        content.is_empty(),
        "the container's bytes landed: {content:?}"
    );
    std::fs::write(state.path().join("host.txt"), "ok").expect("the host still writes there");
    // A host process in a mount namespace of its own (as systemd's PrivateTmp gives
    // logrotate) is no container: it reads the state directory.
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "cat"])
        .arg(state.path().join("host.txt"))
        .output()
        .unwrap();
    assert_eq!(
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).as_ref()
        ),
        (true, "ok"),
        "a host process in its own mount namespace was refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A name no sane program would choose: newline, terminal escapes (clear screen, set
/// title), bytes that are not UTF-8, and a long run.
const HOSTILE_SH: &str = r#"n="$(printf 'dw\n\033[2J\033]0;pwn\007\377\376-')$(head -c 200 /dev/zero | tr '\0' A)"; cp /bin/busybox "/tmp/$n" && "/tmp/$n" "$(printf 'arg\n{"rule":"forged"}\033[31m\377')" "$(head -c 3000 /dev/zero | tr '\0' B)" >/dev/null 2>&1; ls /tmp | grep -c dw"#;

#[test]
fn hostile_file_names_and_arguments_stay_escaped_in_every_output() {
    if !ready() {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let db = state.path().join("driftwatch.db");
    let baselines = state.path().join("baselines.json");
    let mut agent = AgentProcess::start(
        DRIFTWATCH,
        &[
            "--store",
            db.to_str().unwrap(),
            "--baseline-file",
            baselines.to_str().unwrap(),
        ],
    );
    let c = TestContainer::run(&[
        "--label",
        "evil=$(touch /tmp/pwned);`id`\n\u{1b}[31m",
        BUSYBOX,
        "sleep",
        "300",
    ]);
    let (rc, out) = c.sh(HOSTILE_SH);
    assert_eq!(rc, 0, "{out}");
    let a = agent.wait_for("the hostile exec", WAIT, |a| {
        has_tag(a, "binary_drift")
            && field(a, "container.id") == c.short()
            && field(a, "proc.exepath")
                .as_str()
                .is_some_and(|p| p.starts_with("/tmp/dw"))
    });
    agent.stop();

    // JSON: every line parsed (read_alerts panics otherwise), one object per line; the raw
    // file has no control character outside JSON escapes and is valid UTF-8.
    let raw = std::fs::read(&agent.json_out).unwrap();
    let text = String::from_utf8(raw).expect("the JSON alerts file is UTF-8");
    for line in text.lines() {
        assert!(
            !line.chars().any(|ch| ch.is_control()),
            "raw control character in a JSON line: {line:?}"
        );
        let v: Value = serde_json::from_str(line).expect("one JSON object per line");
        assert!(v.is_object());
    }
    let exe = field(&a, "proc.exepath").as_str().unwrap();
    // Invalid bytes become U+FFFD (one per byte, as from_utf8_lossy does), the rest is kept.
    assert!(
        exe.starts_with("/tmp/dw\n\u{1b}[2J\u{1b}]0;pwn\u{7}\u{FFFD}\u{FFFD}-AAA"),
        "{exe:?}"
    );
    assert!(
        exe.len() > 200,
        "the long name was cut short: {}",
        exe.len()
    );
    let cmdline = field(&a, "proc.cmdline")
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        cmdline.contains("arg\n{\"rule\":\"forged\"}\u{1b}[31m\u{FFFD}"),
        "{cmdline:?}"
    );
    assert!(
        !agent.alerts().iter().any(|x| x["rule"] == "forged"),
        "a forged alert line"
    );

    // The store keeps the same strings; `driftwatch alerts` prints them escaped.
    let out = Command::new(DRIFTWATCH)
        .args([
            "alerts",
            "--db",
            db.to_str().unwrap(),
            "--json",
            "--limit",
            "0",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored: Vec<Value> = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert!(
        stored
            .iter()
            .any(|s| field(s, "proc.exepath").as_str() == Some(exe)),
        "the store holds a different representation of {exe:?}"
    );
    let out = Command::new(DRIFTWATCH)
        .args(["alerts", "--db", db.to_str().unwrap(), "--limit", "0"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let human = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(
        !human.contains('\u{1b}'),
        "raw ESC on the terminal: {human:?}"
    );
    assert!(
        !human.contains('\u{7}'),
        "raw BEL on the terminal: {human:?}"
    );
    assert!(
        human.contains("\\n"),
        "newline not shown escaped: {human:?}"
    );
    for line in human.lines() {
        assert!(!line.starts_with("{\"rule\""), "forged line: {line:?}");
    }
}

/// The ids of the BPF maps the process `pid` holds, by map name (from its fdinfo and
/// `bpftool map show`).
fn maps_of(pid: u32) -> std::collections::HashMap<String, u32> {
    let mut out = std::collections::HashMap::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .unwrap()
        .flatten()
    {
        let text = std::fs::read_to_string(fd.path()).unwrap_or_default();
        let Some(id) = text
            .lines()
            .find_map(|l| l.strip_prefix("map_id:"))
            .and_then(|v| v.trim().parse::<u32>().ok())
        else {
            continue;
        };
        let show = Command::new("bpftool")
            .args(["-j", "map", "show", "id", &id.to_string()])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&show.stdout).unwrap_or(Value::Null);
        if let Some(name) = v["name"].as_str() {
            out.insert(name.to_string(), id);
        }
    }
    out
}

/// The ids of the BPF links the process `pid` holds (from its fdinfo).
fn links_of(pid: u32) -> Vec<u32> {
    let mut out: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .unwrap()
        .flatten()
        .filter_map(|fd| {
            std::fs::read_to_string(fd.path())
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("link_id:"))
                .and_then(|v| v.trim().parse::<u32>().ok())
        })
        .collect();
    out.sort_unstable();
    out
}

/// `bpftool map lookup` of a u32 key: the value's bytes, None when absent.
fn lookup(map_id: u32, key: u32) -> Option<Vec<u8>> {
    let mut args = vec![
        "-j".to_string(),
        "map".into(),
        "lookup".into(),
        "id".into(),
        map_id.to_string(),
        "key".into(),
    ];
    args.extend(key.to_ne_bytes().iter().map(|b| b.to_string()));
    let out = Command::new("bpftool").args(&args).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    let bytes = v["value"].as_array()?;
    Some(
        bytes
            .iter()
            .map(|b| u8::from_str_radix(b.as_str().unwrap().trim_start_matches("0x"), 16).unwrap())
            .collect(),
    )
}

/// A container with CAP_SYS_ADMIN (bpf() allowed) uses bpftool from the host's root
/// to delete a prevent-mode container's entry from the agent's `enforce` map (which would
/// let it run memfd and loader drift unheld) and to zero `enforce_config`: the agent writes
/// its values back and raises a Critical alert for each, naming the map and the container;
/// prevention still blocks afterwards. Detaching the agent's programs (`bpftool link
/// detach`) is refused by the kernel: tracepoint links have no detach.
#[test]
fn a_privileged_container_changing_the_agents_bpf_maps_is_undone_and_alerted() {
    if !ready() || !require_tools(&["bpftool"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let suffix = std::process::id();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "default: detect\nscopes:\n  - match: {containers: [\"dw-tamper-map-*\"]}\n    mode: prevent\n",
    )
    .unwrap();
    let agent = AgentProcess::start(
        DRIFTWATCH,
        &[
            "--no-store",
            "--baseline-file",
            dir.path().join("b.json").to_str().unwrap(),
            "--enforcement-policy",
            policy.to_str().unwrap(),
        ],
    );
    let name = format!("dw-tamper-map-{suffix}");
    let victim = TestContainer::run(&["--name", &name, BUSYBOX, "sleep", "300"]);
    assert_eq!(victim.exec(&["true"]).0, 0);
    agent.wait_for_log("the container placed in prevent mode", 1, WAIT, |l| {
        l.contains(&name) && l.contains("enforcement prevent")
    });
    let inspect = docker(&["inspect", "-f", "{{.State.Pid}}", &victim.id]);
    let vpid = String::from_utf8_lossy(&inspect.stdout).trim().to_string();
    let ns = std::fs::metadata(format!("/proc/{vpid}/ns/mnt"))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m) as u32)
        .unwrap();
    let maps = maps_of(agent.pid());
    let (enforce, config) = (maps["enforce"], maps["enforce_config"]);
    let flags = lookup(enforce, ns).expect("the container's entry is in the enforce map");
    assert_ne!(flags, vec![0, 0, 0, 0], "prevent mode sets kernel flags");

    // The attacker: CAP_SYS_ADMIN (Docker's seccomp profile then allows bpf()), the host's
    // root mounted, running the host's bpftool. (`--privileged` itself fails on this VM:
    // CAP_SYS_RESOURCE is outside dockerd's bounding set.)
    let attacker = TestContainer::run(&[
        "--cap-add",
        "SYS_ADMIN",
        "-v",
        "/:/host:ro",
        BUSYBOX,
        "sleep",
        "300",
    ]);
    let mut del = vec!["chroot", "/host", "bpftool", "map", "delete", "id"];
    let enforce_s = enforce.to_string();
    del.push(&enforce_s);
    del.push("key");
    let key: Vec<String> = ns.to_ne_bytes().iter().map(|b| b.to_string()).collect();
    del.extend(key.iter().map(String::as_str));
    let (code, out) = attacker.exec(&del);
    assert_eq!(
        code, 0,
        "bpftool map delete in the privileged container: {out}"
    );
    let config_s = config.to_string();
    let mut upd = vec![
        "chroot", "/host", "bpftool", "map", "update", "id", &config_s, "key", "0", "0", "0", "0",
        "value",
    ];
    upd.extend(std::iter::repeat_n("0", 24));
    let (code, out) = attacker.exec(&upd);
    assert_eq!(
        code, 0,
        "bpftool map update in the privileged container: {out}"
    );

    // The programs themselves: every link of the agent (exec, network, signals) is a raw
    // tracepoint link, which the kernel cannot detach (EOPNOTSUPP); each is still attached
    // to its program afterwards.
    let links = links_of(agent.pid());
    assert!(
        links.len() >= 3,
        "the agent holds its exec, network and signal links: {links:?}"
    );
    for id in &links {
        let id_s = id.to_string();
        let before = Command::new("bpftool")
            .args(["-j", "link", "show", "id", &id_s])
            .output()
            .unwrap();
        let before: Value = serde_json::from_slice(&before.stdout).unwrap();
        let (code, out) =
            attacker.exec(&["chroot", "/host", "bpftool", "link", "detach", "id", &id_s]);
        assert_ne!(code, 0, "link {id} detached from the container: {out}");
        assert!(out.contains("not supported"), "link {id}: {out}");
        let after = Command::new("bpftool")
            .args(["-j", "link", "show", "id", &id_s])
            .output()
            .unwrap();
        let after: Value = serde_json::from_slice(&after.stdout).unwrap();
        assert_eq!(after["prog_id"], before["prog_id"], "link {id}: {after}");
        assert!(after["prog_id"].as_u64().unwrap_or(0) > 0, "{after}");
    }

    let a = agent.wait_for("the deleted enforce entry", WAIT, |a| {
        a["rule"] == "Driftwatch BPF map changed outside the agent"
            && field(a, "container.name") == name.as_str()
    });
    assert_eq!(a["priority"], "Critical", "{a}");
    assert!(has_tag(&a, "tamper"), "{a}");
    assert_eq!(field(&a, "driftwatch.found"), "(deleted)", "{a}");
    assert_eq!(
        field(&a, "driftwatch.map"),
        format!("enforce[mnt_ns={ns}]").as_str(),
        "{a}"
    );
    // Restored: the kernel has the agent's flags again, and prevention blocks.
    assert_eq!(lookup(enforce, ns), Some(flags));
    let (code, _) = victim.sh(
        "printf '#!/bin/sh\\ntouch /tmp/ran\\n' > /tmp/x.sh && chmod +x /tmp/x.sh && /tmp/x.sh",
    );
    assert_eq!(
        code, 126,
        "a dropped script is still blocked after the restore"
    );
    // enforce_config: the policy holds containers not placed yet (hold_new_containers), so
    // zeros would let a new container's first execs run unheld.
    let a = agent.wait_for("the zeroed enforce_config", WAIT, |a| {
        a["rule"] == "Driftwatch BPF map changed outside the agent"
            && field(a, "driftwatch.map") == "enforce_config"
    });
    assert_eq!(
        field(&a, "driftwatch.found"),
        "unknown=0x0 dead_after_ns=0",
        "{a}"
    );
    let c = lookup(config, 0).expect("enforce_config readable");
    assert_ne!(
        &c[..4],
        &[0, 0, 0, 0],
        "the unknown namespaces' flags are back: {c:?}"
    );
}
