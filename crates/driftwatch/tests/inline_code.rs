//! Inline code, end to end: a real agent and real containers. Every interpreter exec carries
//! its family and what it runs (`drift.interpreter`, `drift.invocation`, the code, what stdin
//! is) in the event and in alert fields; the image's baseline learns inline code during its
//! learning window; the rule "Inline code in container never seen in its image" is off by
//! default and, enabled, alerts on inline code the image never ran while it learned.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(20);

const RULE: &str = "Inline code in container never seen in its image";

/// A rule that alerts on every interpreter exec with every interpreter field in its output,
/// so that the tests read the fields as a user's alert carries them.
const EVERY_INTERPRETER_EXEC: &str = "\
- rule: Test interpreter exec
  desc: every interpreter exec, for the tests
  condition: spawned_process and container and drift.invocation exists
  output: >
    interpreter exec (interpreter=%drift.interpreter invocation=%drift.invocation
    flag=%drift.inline_flag code=%drift.inline_code stdin=%drift.stdin
    learned=%drift.inline_learned cmdline=%proc.cmdline parent=%proc.pname)
  priority: NOTICE
  tags: [container, drift, inline_code, mitre_execution, T1059]
";

fn enable_rule() -> String {
    format!("- rule: {RULE}\n  enabled: true\n")
}

/// An agent with the rules `rules` after the defaults, its baselines in `dir` learned for
/// `window`, and `extra` flags.
fn agent_with(dir: &Path, rules: &str, window: &str, extra: &[&str]) -> AgentProcess {
    let rules_file = dir.join("rules.yaml");
    std::fs::write(&rules_file, rules).unwrap();
    let baselines = dir.join("baselines.json");
    let mut args = vec![
        "--rules",
        rules_file.to_str().unwrap(),
        "--baseline-file",
        baselines.to_str().unwrap(),
        "--learning-window",
        window,
    ];
    args.extend_from_slice(extra);
    AgentProcess::start(DRIFTWATCH, &args)
}

/// The test rule's alert for an exec in `c` whose cmdline satisfies `pred`.
fn interp_alert(
    agent: &AgentProcess,
    c: &TestContainer,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> Value {
    agent.wait_for(what, WAIT, |a| {
        a["rule"] == "Test interpreter exec"
            && field(a, "container.id") == c.short()
            && field(a, "proc.cmdline").as_str().is_some_and(&pred)
    })
}

fn rule_alerts(agent: &AgentProcess, c: &TestContainer) -> Vec<Value> {
    agent
        .alerts()
        .into_iter()
        .filter(|a| a["rule"] == RULE && field(a, "container.id") == c.short())
        .collect()
}

/// Runs `program args`, writing `lines` to its standard input (a pipe) one at a time with a
/// pause before each and before closing: the reader stays alive while the agent looks, as
/// behind a slow `curl ... | sh` or a person typing. Its stdout, once it succeeded.
fn typed(program: &str, args: &[&str], lines: &[&str]) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        std::thread::sleep(Duration::from_millis(500));
        stdin.write_all(line.as_bytes()).unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `echo CODE | docker exec -i C sh`: code on a shell's standard input from a pipe.
fn pipe_into_shell(c: &TestContainer, code: &str) -> String {
    typed(DOCKER, &["exec", "-i", &c.id, "sh"], &[code])
}

fn each_invocation_kind_reaches_the_event(mode: &str) {
    if !ready_with(&[BUSYBOX, DEBIAN]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let agent = agent_with(
        dir.path(),
        EVERY_INTERPRETER_EXEC,
        "0s",
        &["--enforce", mode],
    );
    let c = TestContainer::run(&[BUSYBOX, "sleep", "120"]);

    c.exec(&["sh", "-c", "echo inline-1"]);
    let a = interp_alert(&agent, &c, "sh -c", |cmd| cmd == "sh -c echo inline-1");
    assert_eq!(field(&a, "drift.interpreter"), "shell", "{a}");
    assert_eq!(field(&a, "drift.invocation"), "inline", "{a}");
    assert_eq!(field(&a, "drift.inline_flag"), "-c", "{a}");
    assert_eq!(field(&a, "drift.inline_code"), "echo inline-1", "{a}");
    // The window is zero: nothing is learned, the image never ran it.
    assert_eq!(field(&a, "drift.inline_learned"), false, "{a}");

    assert_eq!(pipe_into_shell(&c, "echo from-a-pipe\n"), "from-a-pipe\n");
    let a = interp_alert(&agent, &c, "sh fed by a pipe", |cmd| cmd == "sh");
    assert_eq!(field(&a, "drift.invocation"), "stdin", "{a}");
    assert_eq!(field(&a, "drift.stdin"), "pipe", "{a}");
    assert_eq!(field(&a, "drift.inline_learned"), false, "{a}");

    // No `-i`: stdin is /dev/null, and the shell has nothing to run (it may be gone before
    // the agent looks: then it cannot be told from a pipe).
    c.exec(&["sh", "-s"]);
    let a = interp_alert(&agent, &c, "sh -s with nothing on stdin", |cmd| {
        cmd == "sh -s"
    });
    assert!(
        ["null", "gone"]
            .iter()
            .any(|s| field(&a, "drift.stdin") == *s),
        "{a}"
    );

    // busybox's `sh` is the interpreter by its argv[0]; `--help` asks for nothing to run.
    c.exec(&["sh", "--help"]);
    let a = interp_alert(&agent, &c, "sh --help", |cmd| cmd == "sh --help");
    assert_eq!(field(&a, "drift.invocation"), "other", "{a}");
    assert_eq!(*field(&a, "drift.inline_learned"), Value::Null, "{a}");

    let d = TestContainer::run(&[DEBIAN, "sleep", "120"]);
    d.exec(&["python3", "-m", "json.tool", "--help"]);
    let a = interp_alert(&agent, &d, "python3 -m", |cmd| {
        cmd.starts_with("python3 -m")
    });
    assert_eq!(field(&a, "drift.interpreter"), "python", "{a}");
    assert_eq!(field(&a, "drift.invocation"), "other", "{a}");
    // A script of the image (no drift: the interpreter-drift side judges the file).
    d.exec(&["sh", "/usr/bin/which", "sh"]);
    let a = interp_alert(&agent, &d, "sh /usr/bin/which", |cmd| {
        cmd == "sh /usr/bin/which sh"
    });
    assert_eq!(field(&a, "drift.invocation"), "script", "{a}");
    assert_eq!(*field(&a, "drift.inline_code"), Value::Null, "{a}");

    // Off by default: unlearned inline code did run, and the rule said nothing.
    assert!(
        rule_alerts(&agent, &c).is_empty(),
        "{:?}",
        rule_alerts(&agent, &c)
    );
}

#[test]
fn each_invocation_kind_reaches_the_event_in_detect_mode() {
    // A prevent-mode test in this file acts on every container of the host.
    let _serial = serial();
    each_invocation_kind_reaches_the_event("detect");
}

/// Prevention holds and judges execs; inline code is a fact, not a verdict, and is told the
/// same way whether the exec was held or not.
#[test]
fn each_invocation_kind_reaches_the_event_in_prevent_mode() {
    // A prevent-mode test in this file acts on every container of the host.
    let _serial = serial();
    each_invocation_kind_reaches_the_event("prevent");
}

#[test]
fn inline_code_is_learned_in_the_window_then_enforced() {
    // A prevent-mode test in this file acts on every container of the host.
    let _serial = serial();
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let agent = agent_with(
        dir.path(),
        &format!("{EVERY_INTERPRETER_EXEC}\n{}", enable_rule()),
        "8s",
        &[],
    );
    let file = dir.path().join("baselines.json");
    let c = TestContainer::run(&[BUSYBOX, "sleep", "120"]);
    c.exec(&["sh", "-c", "echo learned 1"]);
    let a = interp_alert(&agent, &c, "learning sh -c", |cmd| {
        cmd == "sh -c echo learned 1"
    });
    assert_eq!(field(&a, "drift.inline_learned"), true, "{a}");
    wait_for_baseline(&file, "\"inline_code\"");
    sleep_past_learning(&file);

    // The same command with other arguments: learned.
    c.exec(&["sh", "-c", "echo learned 2"]);
    let a = interp_alert(&agent, &c, "sh -c after learning", |cmd| {
        cmd == "sh -c echo learned 2"
    });
    assert_eq!(
        field(&a, "drift.inline_learned"),
        true,
        "{a}\n{}",
        std::fs::read_to_string(&file).unwrap_or_default()
    );
    // A new command, and code piped into a shell: never seen in the image.
    c.exec(&["sh", "-c", "id -u"]);
    let a = agent.wait_for("the rule on a new command", WAIT, |a| {
        a["rule"] == RULE && field(a, "proc.cmdline") == "sh -c id -u"
    });
    for tag in ["container", "drift", "inline_code", "T1059"] {
        assert!(has_tag(&a, tag), "{tag}: {a}");
    }
    assert_eq!(field(&a, "container.id"), c.short(), "{a}");
    assert_eq!(field(&a, "drift.inline_code"), "id -u", "{a}");
    let output = a["output"].as_str().unwrap();
    assert!(output.contains("interpreter=shell"), "{output}");
    assert!(output.contains("code=id -u"), "{output}");
    pipe_into_shell(&c, "echo piped\n");
    let a = agent.wait_for("the rule on piped code", WAIT, |a| {
        a["rule"] == RULE && field(a, "proc.cmdline") == "sh"
    });
    assert_eq!(field(&a, "drift.stdin"), "pipe", "{a}");
    assert_eq!(
        rule_alerts(&agent, &c).len(),
        2,
        "only the two new ones: {:?}",
        rule_alerts(&agent, &c)
    );

    // Shown with the image's baseline.
    let out = Command::new(DRIFTWATCH)
        .args([
            "baseline",
            "show",
            "--baseline-file",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("  inline code:\n    shell -c \"echo\" (parent "),
        "{text}"
    );
}

#[test]
fn hostile_inline_code_is_bounded_and_exact() {
    // A prevent-mode test in this file acts on every container of the host.
    let _serial = serial();
    if !ready_with(&[BUSYBOX, DEBIAN]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let agent = agent_with(dir.path(), EVERY_INTERPRETER_EXEC, "5m", &[]);
    let c = TestContainer::run(&[DEBIAN, "sleep", "120"]);
    // 1 MiB of argv: eight arguments of 128 000 bytes (one argument may hold at most 128 KiB).
    let code = format!("echo big #{}", "a".repeat(128_000 - 10));
    let filler = "b".repeat(128_000);
    let mut argv = vec!["sh", "-c", code.as_str(), "zero"];
    argv.extend(std::iter::repeat_n(filler.as_str(), 7));
    let (status, out) = c.exec(&argv);
    assert_eq!((status, out.trim()), (0, "big"));
    let a = interp_alert(&agent, &c, "a megabyte of argv", |cmd| {
        cmd.starts_with("sh -c echo big #aaaa")
    });
    let kept = field(&a, "drift.inline_code").as_str().unwrap();
    assert!(
        kept.len() <= 1024 && code.starts_with(kept),
        "{}",
        kept.len()
    );
    assert!(kept.len() >= 1000, "{}", kept.len());

    // Quotes, a newline, a tab, an escape and a DEL, kept exact in the JSON alert.
    let odd = "print(\"a'b\")\n\tx = '\x1b[31m\x7f'";
    c.exec(&["python3", "-c", odd]);
    let a = interp_alert(&agent, &c, "python3 -c with control characters", |cmd| {
        cmd.starts_with("python3 -c print(")
    });
    assert_eq!(field(&a, "drift.inline_code"), odd, "{a}");
    assert_eq!(field(&a, "drift.interpreter"), "python", "{a}");
}

const HEALTH: &str = "test -d /proc/1 || exit 1";
const ENTRY_SH: &str = "trap 'exit 0' TERM; while :; do sleep 1; done";
const ENTRY_PY: &str = "import time; time.sleep(300)";

/// A Debian container with an `sh -c` entrypoint and a Docker health check every second.
fn shell_service() -> TestContainer {
    TestContainer::run(&[
        "--health-cmd",
        HEALTH,
        "--health-interval",
        "1s",
        DEBIAN,
        "sh",
        "-c",
        ENTRY_SH,
    ])
}

/// A Debian container whose entrypoint is a `python3 -c` one-liner.
fn python_service() -> TestContainer {
    TestContainer::run(&[DEBIAN, "python3", "-c", ENTRY_PY])
}

/// Builds (offline, in the container, with `dpkg-deb`) and installs a small package whose
/// maintainer scripts do what such scripts do: a postinst that checks its argument, and runs
/// commands; then removes it (prerm, postrm).
fn dpkg_install(c: &TestContainer, version: &str) {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("pkg");
    std::fs::create_dir_all(pkg.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(pkg.join("usr/share/doc/dw-inline-test")).unwrap();
    std::fs::write(
        pkg.join("DEBIAN/control"),
        format!(
            "Package: dw-inline-test\nVersion: {version}\nArchitecture: all\n\
             Maintainer: driftwatch tests <tests@example.org>\nDescription: test package\n"
        ),
    )
    .unwrap();
    std::fs::write(
        pkg.join("usr/share/doc/dw-inline-test/README"),
        "a test package\n",
    )
    .unwrap();
    for (name, body) in [
        (
            "postinst",
            "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n  mkdir -p /var/lib/dw-inline-test\n  date > /var/lib/dw-inline-test/configured\nfi\n",
        ),
        (
            "prerm",
            "#!/bin/sh\nset -e\nrm -f /var/lib/dw-inline-test/configured\n",
        ),
        (
            "postrm",
            "#!/bin/sh\nset -e\nif [ \"$1\" = purge ]; then rm -rf /var/lib/dw-inline-test; fi\n",
        ),
    ] {
        let p = pkg.join("DEBIAN").join(name);
        std::fs::write(&p, body).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let dest = format!("/tmp/pkg-{version}");
    docker_ok(&["cp", pkg.to_str().unwrap(), &format!("{}:{dest}", c.id)]);
    let deb = format!("/tmp/dw-inline-test_{version}_all.deb");
    let (code, out) = c.exec(&["dpkg-deb", "--root-owner-group", "--build", &dest, &deb]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = c.exec(&["dpkg", "-i", &deb]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = c.exec(&["dpkg", "--purge", "dw-inline-test"]);
    assert_eq!(code, 0, "{out}");
}

/// `docker exec -it C sh` on a terminal (`script` gives the client one), typing two commands.
fn interactive_shell(c: &TestContainer) {
    let command = format!("{DOCKER} exec -it {} sh", c.id);
    typed(
        "script",
        &["-qec", &command, "/dev/null"],
        &["ls /\n", "id\n", "exit\n"],
    );
}

/// Which ordinary workload an interpreter exec event belongs to.
fn workload_of(e: &Value) -> &'static str {
    let p = &e["process"];
    let run = &p["interpreter"];
    let in_dpkg = p["ancestors"]
        .as_array()
        .is_some_and(|a| a.iter().any(|n| n == "dpkg"));
    match run["code"].as_str() {
        _ if in_dpkg => "package maintainer scripts (`dpkg -i`, `dpkg --purge`)",
        Some(HEALTH) => "Docker health check (`--health-cmd`, every second)",
        Some(ENTRY_SH) => "entrypoint `sh -c`",
        Some(ENTRY_PY) => "entrypoint `python3 -c`",
        _ if run["stdin"] == "tty" => "shell in the image (`docker exec -it C sh`)",
        _ => "other",
    }
}

/// Counts (interpreter execs, inline-code execs, alerts) per workload in the containers `ids`
/// from the recorded events and the rule's alerts.
fn measure(
    record: &Path,
    agent: &AgentProcess,
    ids: &[&str],
) -> std::collections::BTreeMap<&'static str, (u64, u64, u64)> {
    let events: Vec<Value> = recorded_events(record)
        .into_iter()
        .filter(|e| {
            e["kind"] == "execve"
                && !e["process"]["interpreter"].is_null()
                && ids.iter().any(|id| e["container"]["id"] == *id)
        })
        .collect();
    let mut counts = std::collections::BTreeMap::new();
    for e in &events {
        let run = &e["process"]["interpreter"];
        let inline = run["invocation"] == "inline"
            || (run["invocation"] == "stdin"
                && ["pipe", "socket", "gone"]
                    .iter()
                    .any(|s| run["stdin"] == *s));
        let c = counts.entry(workload_of(e)).or_insert((0, 0, 0));
        c.0 += 1;
        c.1 += u64::from(inline);
    }
    for a in agent.alerts().iter().filter(|a| a["rule"] == RULE) {
        let Some(e) = events.iter().find(|e| {
            e["process"]["pid"] == *field(a, "proc.pid")
                && field(a, "container.id")
                    .as_str()
                    .is_some_and(|id| e["container"]["id"].as_str().unwrap().starts_with(id))
        }) else {
            continue;
        };
        counts.entry(workload_of(e)).or_insert((0, 0, 0)).2 += 1;
    }
    counts
}

/// The false positives of the inline-code rule on ordinary workloads of one image: they run
/// during its learning window, then again in new containers of the image after it. Prints
/// the table docs/detection.md quotes.
#[test]
fn inline_code_rule_false_positives_on_ordinary_workloads() {
    // A prevent-mode test in this file acts on every container of the host.
    let _serial = serial();
    if !ready_with(&[DEBIAN]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("events.jsonl");
    let agent = agent_with(
        dir.path(),
        &enable_rule(),
        "25s",
        &["--record", record.to_str().unwrap()],
    );
    let file = dir.path().join("baselines.json");
    // Learning: each workload once.
    let started = Instant::now();
    {
        let a = shell_service();
        let _b = python_service();
        dpkg_install(&a, "1.0");
        interactive_shell(&a);
        std::thread::sleep(Duration::from_secs(3));
    }
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the learning workloads outlasted the window; the machine is too slow for this test"
    );
    sleep_past_learning(&file);
    // After the window: the same workloads in new containers of the image.
    let a = shell_service();
    let b = python_service();
    dpkg_install(&a, "2.0");
    interactive_shell(&a);
    std::thread::sleep(Duration::from_secs(10));
    // Everything executed so far is recorded once a marker exec is.
    a.exec(&["python3", "-c", "print('marker')"]);
    let deadline = Instant::now() + WAIT;
    while !recorded_events(&record)
        .iter()
        .any(|e| e["process"]["interpreter"]["code"] == "print('marker')")
    {
        assert!(
            Instant::now() < deadline,
            "the marker exec was not recorded"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(1));
    let counts = measure(&record, &agent, &[&a.id, &b.id]);
    eprintln!(
        "| workload (after the learning window) | interpreter execs | inline code | alerts |"
    );
    eprintln!("| --- | ---: | ---: | ---: |");
    for (w, (execs, inline, alerts)) in &counts {
        eprintln!("| {w} | {execs} | {inline} | {alerts} |");
    }
    for w in [
        "entrypoint `sh -c`",
        "entrypoint `python3 -c`",
        "Docker health check (`--health-cmd`, every second)",
        "shell in the image (`docker exec -it C sh`)",
    ] {
        let (execs, _, alerts) = counts.get(w).copied().unwrap_or_default();
        assert!(execs > 0, "{w}: no exec seen: {counts:?}");
        assert_eq!(alerts, 0, "{w} was learned: {counts:?}");
    }
    let (_, _, other) = counts.get("other").copied().unwrap_or_default();
    assert_eq!(other, 1, "only the marker is new: {counts:?}");
}
