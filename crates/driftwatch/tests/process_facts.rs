//! The process and container facts Falco's fields read (`user.loginuid`, `proc.sid`,
//! `proc.vpgid`, `thread.cap_*`, `proc.pcmdline`, `proc.aexepath[N]`, `group.name`,
//! `container.privileged`, `container.mount[...]`, `evt.num`, ...), recorded by a real agent
//! (`--record`) for processes in real containers and checked against what the kernel says of
//! the same processes in /proc, as Falco's driver tests check every field of an event.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(20);

/// The exec event of `argv` in container `id`, once recorded.
fn exec_of(path: &Path, id: &str, argv: &[&str]) -> Value {
    let start = Instant::now();
    loop {
        if let Some(e) = recorded_events(path).into_iter().find(|e| {
            e["kind"] == "execve"
                && e["container"]["id"] == id
                && e["process"]["argv"] == serde_json::json!(argv)
        }) {
            return e;
        }
        assert!(
            start.elapsed() < WAIT,
            "no exec of {argv:?} in {id} recorded"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A field of `/proc/PID/status` (`CapEff`, `NSpgid`, ...): its words.
fn status(pid: u64, key: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn cap(pid: u64, key: &str) -> u64 {
    u64::from_str_radix(&status(pid, key)[0], 16).unwrap()
}

/// The innermost pid namespace's number of `NSpid`/`NSpgid`/`NSsid`: the container's view.
fn ns_view(pid: u64, key: &str) -> u64 {
    status(pid, key).last().unwrap().parse().unwrap()
}

/// Field `n` (1-based, as proc(5) counts) of `/proc/PID/stat`, after the command's name.
fn stat_field(pid: u64, n: usize) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &text[text.rfind(')').unwrap() + 2..];
    rest.split(' ').nth(n - 3).unwrap().parse().unwrap()
}

/// When the process started, nanoseconds since the epoch, as /proc says it (boot time from
/// /proc/stat in whole seconds, start in clock ticks).
fn proc_start_ns(pid: u64) -> u64 {
    let btime: u64 = std::fs::read_to_string("/proc/stat")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let hz = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .unwrap();
    let hz: u64 = String::from_utf8_lossy(&hz.stdout).trim().parse().unwrap();
    btime * 1_000_000_000 + stat_field(pid, 22) * (1_000_000_000 / hz)
}

/// Checks every kernel fact of the exec event `e` against /proc of its (still running)
/// process, and returns the process's host pid.
fn assert_kernel_facts(e: &Value) -> u64 {
    let p = &e["process"];
    let pid = p["pid"].as_u64().unwrap();
    let what = format!("{}: {p}", p["argv"]);
    assert_eq!(p["vpid"].as_u64().unwrap(), ns_view(pid, "NSpid"), "{what}");
    assert_eq!(p["sid"].as_u64().unwrap(), stat_field(pid, 6), "{what}");
    assert_eq!(
        p["vpgid"].as_u64().unwrap(),
        ns_view(pid, "NSpgid"),
        "{what}"
    );
    for (field, key) in [
        ("cap_effective", "CapEff"),
        ("cap_permitted", "CapPrm"),
        ("cap_inheritable", "CapInh"),
    ] {
        assert_eq!(
            p[field].as_u64().unwrap(),
            cap(pid, key),
            "{field} of {what}"
        );
    }
    let loginuid: u64 = std::fs::read_to_string(format!("/proc/{pid}/loginuid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(p["loginuid"].as_u64().unwrap(), loginuid, "{what}");
    let exe = std::fs::metadata(format!("/proc/{pid}/exe")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(p["exe_ino"].as_u64().unwrap(), exe.ino(), "{what}");
    let ns = |s: i64, n: i64| (s * 1_000_000_000 + n) as u64;
    assert_eq!(
        p["exe_ctime_ns"].as_u64().unwrap(),
        ns(exe.ctime(), exe.ctime_nsec()),
        "{what}"
    );
    assert_eq!(
        p["exe_mtime_ns"].as_u64().unwrap(),
        ns(exe.mtime(), exe.mtime_nsec()),
        "{what}"
    );
    // /proc gives the start in clock ticks after a boot time rounded to the second.
    let start = p["start_ns"].as_u64().unwrap();
    assert!(
        start.abs_diff(proc_start_ns(pid)) < 1_500_000_000,
        "start {start} vs /proc {}: {what}",
        proc_start_ns(pid)
    );
    assert!(start <= e["time_ns"].as_u64().unwrap(), "{what}");
    pid
}

#[test]
fn process_and_container_facts_are_the_kernels_and_the_engines() {
    if !ready_with(&[DEBIAN, BUSYBOX]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("events.jsonl");
    let ro = tempfile::tempdir().unwrap();
    let rw = tempfile::tempdir().unwrap();
    let mut agent = AgentProcess::start(DRIFTWATCH, &["--record", &record.display().to_string()]);

    // Only NET_ADMIN, and two bind mounts: one read-only, one read-write.
    let ro_mount = format!("{}:/ro:ro", ro.path().display());
    let rw_mount = format!("{}:/rw", rw.path().display());
    let c = TestContainer::run(&[
        "--cap-drop",
        "ALL",
        "--cap-add",
        "NET_ADMIN",
        "-v",
        &ro_mount,
        "-v",
        &rw_mount,
        DEBIAN,
        "sleep",
        "300",
    ]);
    // A new session (setsid forks: bash leads it and its own group); as root, a background
    // child in bash's group; as www-data:adm with job control, a child in a group of its own.
    docker_ok(&[
        "exec",
        "-d",
        &c.id,
        "setsid",
        "-f",
        "bash",
        "-c",
        "sleep 303 & wait",
    ]);
    docker_ok(&[
        "exec",
        "-d",
        "-u",
        "33:4",
        &c.id,
        "setsid",
        "-f",
        "bash",
        "-c",
        "set -m; sleep 302 & wait",
    ]);
    // Created, then started if the host lets it (a privileged container cannot start where
    // dockerd's own capability bounding set lacks some): the engine's Created event already
    // carries the configuration, and the agent records the container's event.
    let privileged = TestContainer::create(&["--privileged", BUSYBOX, "sleep", "301"]);
    let _ = docker(&["start", &privileged.id]);

    // Root in the session of its parent, bash, which leads the session and the group.
    let e = exec_of(&record, &c.id, &["sleep", "303"]);
    let pid = assert_kernel_facts(&e);
    let p = &e["process"];
    let bash = stat_field(pid, 4);
    assert_eq!(stat_field(pid, 5), bash, "same group as its parent");
    assert_eq!(p["sid"].as_u64(), Some(bash));
    assert_eq!(p["sname"], "bash");
    assert_eq!(p["vpgid_name"], "bash");
    assert_eq!(
        p["cap_effective"].as_u64(),
        Some(1 << 12),
        "CAP_NET_ADMIN only"
    );
    assert_eq!(
        p["pargv"],
        serde_json::json!(["bash", "-c", "sleep 303 & wait"])
    );
    assert_eq!(p["ancestor_pids"][0].as_u64(), Some(bash));
    assert_eq!(p["ancestor_exepaths"][0], "/usr/bin/bash");
    assert_eq!(
        p["ancestor_pids"].as_array().unwrap().len(),
        p["ancestors"].as_array().unwrap().len()
    );
    assert_eq!(
        (p["user_name"].as_str(), p["group_name"].as_str()),
        (Some("root"), Some("root"))
    );

    // www-data:adm, leading its own process group in bash's session: no capabilities left.
    let e = exec_of(&record, &c.id, &["sleep", "302"]);
    let pid = assert_kernel_facts(&e);
    let p = &e["process"];
    assert_eq!(stat_field(pid, 5), pid, "a group of its own");
    assert_eq!(p["vpgid"], p["vpid"]);
    assert_eq!(p["vpgid_name"], "sleep");
    assert_eq!(p["sname"], "bash");
    assert_eq!(p["cap_effective"].as_u64(), Some(0));
    assert_eq!(p["user_name"], "www-data");
    assert_eq!(p["group_name"], "adm");
    // No login of its own: whatever dockerd's was, named in the container's /etc/passwd.
    let loginuid = p["loginuid"].as_u64().unwrap();
    let loginname = if loginuid == u64::from(u32::MAX) {
        String::new()
    } else {
        let (_, line) = c.exec(&["getent", "passwd", &loginuid.to_string()]);
        line.split(':').next().unwrap_or_default().to_string()
    };
    assert_eq!(p["loginname"].as_str().unwrap_or_default(), loginname);

    // A listener of a process whose exec was recorded: its network event carries the same
    // process facts as its exec event. (Not its parent's argv: `docker exec`'s runc, its
    // parent at exec, is gone by the listen, and the parent then is the engine's shim.)
    let listen = "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',9931)); s.listen(); time.sleep(300)";
    docker_ok(&["exec", "-d", &c.id, "python3", "-S", "-c", listen]);
    let exec = exec_of(&record, &c.id, &["python3", "-S", "-c", listen]);
    let pid = exec["process"]["pid"].clone();
    let start = Instant::now();
    let net = loop {
        if let Some(e) = recorded_events(&record)
            .into_iter()
            .find(|e| e["kind"] == "listen" && e["process"]["pid"] == pid)
        {
            break e;
        }
        assert!(start.elapsed() < WAIT, "no listen of {pid} recorded");
        std::thread::sleep(Duration::from_millis(100));
    };
    for f in [
        "loginuid",
        "sid",
        "sname",
        "vpid",
        "vpgid",
        "vpgid_name",
        "cap_effective",
        "cap_permitted",
        "start_ns",
        "exe_ino",
        "ancestor_pids",
        "group_name",
    ] {
        assert_eq!(net["process"][f], exec["process"][f], "{f}: {net}");
        assert!(!net["process"][f].is_null(), "{f}: {net}");
    }

    // The container as Docker reports it.
    let meta = &e["container"];
    assert_eq!(meta["privileged"], false);
    let mounts: Vec<(String, String, bool)> = meta["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["source"].as_str().unwrap().to_string(),
                m["dest"].as_str().unwrap().to_string(),
                m["rw"].as_bool().unwrap(),
            )
        })
        .collect();
    for want in [
        (ro.path().display().to_string(), "/ro".to_string(), false),
        (rw.path().display().to_string(), "/rw".to_string(), true),
    ] {
        assert!(mounts.contains(&want), "{want:?} in {mounts:?}");
    }
    let started = c.inspect("{{.State.StartedAt}}");
    let out = std::process::Command::new("date")
        .args(["-d", &started, "+%s%N"])
        .output()
        .unwrap();
    let started: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(meta["started_ns"].as_u64(), Some(started));

    let start = Instant::now();
    let meta = loop {
        if let Some(e) = recorded_events(&record)
            .into_iter()
            .find(|e| e["container"]["id"] == privileged.id.as_str())
        {
            break e["container"].clone();
        }
        assert!(
            start.elapsed() < WAIT,
            "no event of the privileged container"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(meta["privileged"], true, "{meta}");

    // `evt.num`: from 1, one number per event, in the order the rules saw them.
    agent.stop();
    let nums: Vec<u64> = recorded_events(&record)
        .iter()
        .map(|e| e["num"].as_u64().unwrap())
        .collect();
    assert!(nums.windows(2).all(|w| w[0] < w[1]), "{nums:?}");
    assert!(nums[0] >= 1);
    assert_eq!(nums.iter().collect::<HashSet<_>>().len(), nums.len());
}

/// The same facts for a pod's container on a kubelet-like node (its own containerd, driven
/// through CRI): the process's from the kernel as for Docker's, the container's from the
/// OCI spec containerd keeps (a hostPath read-only, not privileged).
#[test]
fn a_pods_process_and_container_facts() {
    if !(require(&[Requirement::Bpf]) && require_that(CriNode::check(&[DEBIAN]))) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("events.jsonl");
    let data = tempfile::tempdir().unwrap();
    let node = CriNode::start(&[DEBIAN]);
    let _agent = agent_on_node(
        DRIFTWATCH,
        &node,
        &["--record", &record.display().to_string()],
    );
    let pod = node.run_pod(
        PodSpec::new("facts-0", "shop").container(
            ContainerSpec::debian("app")
                .add_capability("NET_ADMIN")
                .host_path(data.path(), "/data", true),
        ),
    );
    let c = pod.first();
    // Its output closed, so that CRI's ExecSync returns while the child runs on.
    let (code, out) = c.sh("setsid -f bash -c 'sleep 304 & wait' </dev/null >/dev/null 2>&1");
    assert_eq!(code, 0, "{out}");
    let e = exec_of(&record, &c.id, &["sleep", "304"]);
    let pid = assert_kernel_facts(&e);
    let p = &e["process"];
    assert_eq!(p["sid"].as_u64(), Some(stat_field(pid, 4)), "bash leads");
    assert_eq!(p["sname"], "bash");
    assert_eq!(
        p["pargv"],
        serde_json::json!(["bash", "-c", "sleep 304 & wait"])
    );
    let meta = &e["container"];
    assert_eq!(meta["privileged"], false, "{meta}");
    let data_mount = meta["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["dest"] == "/data")
        .unwrap_or_else(|| panic!("no /data in {meta}"));
    assert_eq!(
        data_mount["source"].as_str(),
        Some(data.path().to_str().unwrap())
    );
    assert_eq!(data_mount["rw"], false);
}
