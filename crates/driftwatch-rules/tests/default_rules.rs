//! The default ruleset: it loads without errors or warnings, follows the tagging policy, and
//! each rule fires on the behaviour it names; each binary-drift exec raises exactly one alert.

mod synthetic;

use driftwatch_model::{DriftFinding, DriftKind, DriftSubject, EventKind, Priority, Verdict};
use driftwatch_rules::RuleSet;
use synthetic::*;

const CATEGORIES: [&str; 8] = [
    "binary_drift",
    "file_drift",
    "package_drift",
    "config_drift",
    "network_drift",
    "image_drift",
    "shell",
    "inline_code",
];

#[test]
fn loads_cleanly() {
    let loaded = RuleSet::load_with_defaults(&[]).unwrap();
    let warnings: Vec<String> = loaded.warnings.iter().map(|w| w.render()).collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert!(loaded.ruleset.len() >= 19);
}

#[test]
fn every_rule_is_tagged_container_drift_one_category_and_mitre() {
    let rs = defaults();
    for (_, r) in rs.rules() {
        assert!(r.tags.iter().any(|t| t == "container"), "{}", r.name);
        assert!(r.tags.iter().any(|t| t == "drift"), "{}", r.name);
        let cats = r
            .tags
            .iter()
            .filter(|t| CATEGORIES.contains(&t.as_str()))
            .count();
        assert_eq!(cats, 1, "{}: {:?}", r.name, r.tags);
        assert!(r.tags.iter().any(|t| t.starts_with("mitre_")), "{}", r.name);
        assert!(
            r.tags
                .iter()
                .any(|t| t.starts_with('T') && t[1..2].chars().all(|c| c.is_ascii_digit())),
            "{}",
            r.name
        );
        assert_eq!(r.source_file, driftwatch_rules::DEFAULT_RULES_NAME);
    }
}

const BINARY_RULES: [&str; 7] = [
    "Drop and execute new binary in container",
    "Fileless execution via memfd_create",
    "Execute deleted binary in container",
    "Execute binary from non-image filesystem in container",
    "Run runtime-written script in container",
    "Run runtime-written binary through the dynamic loader in container",
    "Preload runtime-written library in container",
];

#[test]
fn binary_drift_rules_are_critical_and_carry_the_agents_fields() {
    let rs = defaults();
    for name in BINARY_RULES {
        let idx = rs
            .find(name)
            .unwrap_or_else(|| panic!("missing rule {name}"));
        let r = rs.rule(idx);
        assert_eq!(r.priority, Priority::Critical, "{name}");
        assert_eq!(
            r.tags[..4],
            ["container", "drift", "binary_drift", "mitre_execution"],
            "{name}"
        );
        let e = drifted_exec("/tmp/x", DriftSubject::Exe, Verdict::Added, "/tmp/x");
        let a = rs.alert(idx, &e, "node-1");
        for f in [
            "container.id",
            "container.name",
            "container.image.repository",
            "container.image.tag",
            "container.image.digest",
            "proc.exepath",
            "proc.name",
            "proc.cmdline",
            "proc.pid",
            "proc.pname",
            "user.name",
            "drift.verdict",
            "drift.subject",
            "drift.path",
        ] {
            assert!(a.output_fields.contains_key(f), "{name} lacks {f}");
        }
    }
}

#[test]
fn each_drift_verdict_and_subject_raises_exactly_the_right_rule() {
    let rs = defaults();
    use DriftSubject::*;
    use Verdict::*;
    let cases: &[(DriftSubject, Verdict, Option<&str>)] = &[
        (Exe, Added, Some(BINARY_RULES[0])),
        (Exe, Modified, Some(BINARY_RULES[0])),
        (Exe, Memfd, Some(BINARY_RULES[1])),
        (Script, Memfd, Some(BINARY_RULES[1])),
        (Exe, Deleted, Some(BINARY_RULES[2])),
        (Exe, Tmpfs, Some(BINARY_RULES[3])),
        (Exe, Volume, Some(BINARY_RULES[3])),
        (Script, Added, Some(BINARY_RULES[4])),
        (Script, Modified, Some(BINARY_RULES[4])),
        (Script, Tmpfs, Some(BINARY_RULES[4])),
        (Script, Volume, Some(BINARY_RULES[4])),
        (Script, Deleted, Some(BINARY_RULES[4])),
        (LoaderTarget, Added, Some(BINARY_RULES[5])),
        (LoaderTarget, Memfd, Some(BINARY_RULES[5])),
        (Preload, Added, Some(BINARY_RULES[6])),
        (Preload, Tmpfs, Some(BINARY_RULES[6])),
        (Exe, Image, None),
        (Exe, CopyUp, None),
        (Exe, Unknown, None),
        // Unjudged raises its own Warning, and none of the Critical binary rules.
        (Exe, Unjudged, None),
        (Script, Unjudged, None),
        (Preload, Unjudged, None),
        (Script, Image, None),
        (Preload, CopyUp, None),
        // An image file made executable has its own rule, not one of these.
        (Exe, Metadata, None),
        (Script, Metadata, None),
    ];
    for (subject, verdict, want) in cases {
        // Run by a non-shell parent, as the only process-level signal.
        let mut e = drifted_exec("/opt/x", *subject, *verdict, "/opt/x");
        e.process.name = "x".into();
        let got: Vec<String> = fired(&rs, &e)
            .into_iter()
            .filter(|n| BINARY_RULES.contains(&n.as_str()))
            .collect();
        let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(got, want, "{subject:?} {verdict:?}");
        // Never on the host.
        assert!(fired(&rs, &on_host(e)).is_empty());
    }
}

#[test]
fn binary_drift_alert_is_falco_json() {
    let rs = defaults();
    let mut e = drifted_exec(
        "/tmp/xmrig",
        DriftSubject::Exe,
        Verdict::Added,
        "/tmp/xmrig",
    );
    if let Some(d) = e.drift.as_mut() {
        d.enforcement = Some(driftwatch_model::Enforcement {
            mode: driftwatch_model::EnforcementMode::Prevent,
            action: driftwatch_model::EnforcementAction::Blocked,
            by: Some(driftwatch_model::EnforcementMechanism::FanotifyDeny),
        });
    }
    let alerts = rs.evaluate(&e, "node-1");
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a.rule, "Drop and execute new binary in container");
    assert_eq!(a.time, "2026-11-28T08:00:00.123456789Z");
    assert_eq!(a.source, "syscall");
    assert_eq!(a.hostname, "node-1");
    assert!(a.output.starts_with("08:00:00.123456789: Critical Executable not in the image executed (verdict=added enforcement=prevent action=blocked blocked_by=fanotify_deny subject=exe drift_path=/tmp/xmrig proc_exepath=/tmp/xmrig proc_name=xmrig cmdline=xmrig -x pid=4242 parent=sh user=root hash=b3:1234 image_hash=<NA> package=<NA> package_version=<NA> package_digest=<NA> layer=<NA> container_id=3f4a5b6c7d8e container_name=web image=nginx:1.27 image_digest=sha256:abcd k8s_ns=prod k8s_pod=web-0)"), "{}", a.output);
    assert_eq!(a.output_fields["proc.pid"], serde_json::json!(4242));
    assert_eq!(a.output_fields["drift.image_hash"], serde_json::Value::Null);
    // A dropped payload has no package; a modified packaged file names it.
    assert_eq!(a.output_fields["drift.package"], serde_json::Value::Null);
    let mut m = drifted_exec(
        "/usr/bin/true",
        DriftSubject::Exe,
        Verdict::Modified,
        "/usr/bin/true",
    );
    if let Some(d) = m.drift.as_mut() {
        d.provenance = driftwatch_model::Provenance {
            layer: Some("sha256:aa".into()),
            package: Some("coreutils".into()),
            package_version: Some("9.1-1".into()),
            package_ecosystem: Some("dpkg".into()),
            package_digest: Some("mismatch".into()),
        };
    }
    let alerts = rs.evaluate(&m, "node-1");
    assert!(
        alerts[0].output.contains(
            "package=coreutils package_version=9.1-1 package_digest=mismatch layer=sha256:aa "
        ),
        "{}",
        alerts[0].output
    );
    assert_eq!(
        a.output_fields["drift.action"],
        serde_json::json!("blocked")
    );
    assert_eq!(
        a.output_fields["drift.blocked_by"],
        serde_json::json!("fanotify_deny")
    );
    assert_eq!(
        a.output_fields["container.id"],
        serde_json::json!("3f4a5b6c7d8e")
    );
    let line = a.to_json_line();
    assert_eq!(
        a.output_fields["evt.time"],
        serde_json::json!(1_795_852_800_123_456_789_u64)
    );
    assert!(line.starts_with(r#"{"hostname":"node-1","output":"08:00:00.123456789: Critical Executable not in the image executed ("#), "{line}");
    assert!(line.ends_with(r#","priority":"Critical","rule":"Drop and execute new binary in container","source":"syscall","tags":["T1105","TA0002","binary_drift","container","drift","mitre_execution","mitre_persistence"],"time":"2026-11-28T08:00:00.123456789Z"}"#), "{line}");
}

#[test]
fn shell_rule() {
    let rs = defaults();
    let name = "Terminal shell in container";
    let has = |e: &driftwatch_model::Event| fired(&rs, e).iter().any(|n| n == name);
    assert!(has(&exec("/bin/sh", &["sh", "-c", "id"], "node")));
    // A non-interactive shell entrypoint is not reported; an interactive `docker exec` is.
    assert!(!has(&exec(
        "/bin/sh",
        &["sh", "-c", "nginx"],
        "containerd-shim"
    )));
    let mut interactive = exec("/bin/bash", &["bash"], "runc:[1:CHILD]");
    interactive.process.tty = 34816;
    assert!(has(&interactive));
    assert!(!has(&exec("/usr/bin/python3", &["python3"], "node")));
}

#[test]
fn package_manager_rule() {
    let rs = defaults();
    let name = "Launch Package Management Process in Container";
    for exe in [
        "/usr/bin/apt-get",
        "/usr/bin/dpkg",
        "/sbin/apk",
        "/usr/bin/yum",
        "/usr/local/bin/pip3",
        "/usr/bin/npm",
        "/usr/local/bin/gem",
        "/usr/local/cargo/bin/cargo",
    ] {
        assert!(
            fired(&rs, &exec(exe, &[exe], "bash"))
                .iter()
                .any(|n| n == name),
            "{exe}"
        );
    }
    assert!(
        !fired(&rs, &exec("/usr/sbin/nginx", &["nginx"], "bash"))
            .iter()
            .any(|n| n == name)
    );
}

#[test]
fn file_rules() {
    let rs = defaults();
    let cases: &[(EventKind, &str, bool, &str)] = &[
        (EventKind::Open, "/etc/passwd", true, "Write below etc"),
        (
            EventKind::Creat,
            "/etc/ld.so.preload",
            true,
            "Write below etc",
        ),
        (EventKind::Rename, "/etc/shadow", false, "Write below etc"),
        (
            EventKind::Chmod,
            "/usr/bin/sudo",
            false,
            "Write below binary dir",
        ),
        (
            EventKind::Unlink,
            "/bin/ls",
            false,
            "Write below binary dir",
        ),
        (
            EventKind::Open,
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            true,
            "Write below binary dir",
        ),
        (
            EventKind::Open,
            "/var/lib/dpkg/status",
            true,
            "Modify package database in container",
        ),
        (
            EventKind::Open,
            "/lib/apk/db/installed",
            true,
            "Modify package database in container",
        ),
        (
            EventKind::Creat,
            "/etc/cron.d/evil",
            true,
            "Schedule Cron Jobs",
        ),
        (
            EventKind::Open,
            "/var/spool/cron/crontabs/root",
            true,
            "Schedule Cron Jobs",
        ),
        (
            EventKind::Open,
            "/root/.ssh/authorized_keys",
            true,
            "Adding ssh keys to authorized_keys",
        ),
        (
            EventKind::Rename,
            "/home/app/.ssh/authorized_keys2",
            false,
            "Adding ssh keys to authorized_keys",
        ),
        (
            EventKind::Open,
            "/etc/ssh/sshd_config",
            true,
            "Adding ssh keys to authorized_keys",
        ),
        (
            EventKind::Open,
            "/root/.bashrc",
            true,
            "Modify Shell Configuration File",
        ),
        (
            EventKind::Creat,
            "/home/app/.profile",
            true,
            "Modify Shell Configuration File",
        ),
        (
            EventKind::Creat,
            "/etc/profile.d/zz.sh",
            true,
            "Modify Shell Configuration File",
        ),
        (
            EventKind::Open,
            "/etc/environment",
            true,
            "Modify Shell Configuration File",
        ),
        (
            EventKind::Creat,
            "/etc/systemd/system/evil.timer",
            true,
            "Systemd unit changed in container",
        ),
        (
            EventKind::Creat,
            "/usr/lib/systemd/system/evil.service",
            true,
            "Systemd unit changed in container",
        ),
        (
            EventKind::Symlink,
            "/root/.config/systemd/user/default.target.wants/evil.service",
            false,
            "Systemd unit changed in container",
        ),
        (
            EventKind::Creat,
            "/.x",
            true,
            "Write below root directory in container",
        ),
        // A prefix of /etc, not below it: only new at the top level.
        (
            EventKind::Open,
            "/etcetera",
            true,
            "Write below root directory in container",
        ),
        (
            EventKind::Mkdir,
            "/usr/bin/.hid",
            false,
            "Write below binary dir",
        ),
        (EventKind::Mkdir, "/etc/cron.d", false, "Schedule Cron Jobs"),
    ];
    for (kind, path, write, rule) in cases {
        let e = file_event(*kind, path, *write, "/bin/sh");
        assert_eq!(fired(&rs, &e), vec![rule.to_string()], "{kind:?} {path}");
    }
    // Reads, benign paths and the host stay quiet.
    for e in [
        file_event(EventKind::Open, "/etc/passwd", false, "/bin/cat"),
        file_event(
            EventKind::Open,
            "/var/cache/nginx/x",
            true,
            "/usr/sbin/nginx",
        ),
        // Dot files that are not a shell's, and a .bashrc deeper than a home directory.
        file_event(EventKind::Open, "/root/.viminfo", true, "/usr/bin/vim"),
        file_event(EventKind::Open, "/home/app/src/.bashrc", true, "/bin/sh"),
        file_event(EventKind::Creat, "/app/.profile", true, "/bin/sh"),
        on_host(file_event(
            EventKind::Open,
            "/etc/passwd",
            true,
            "/usr/bin/vi",
        )),
    ] {
        assert!(fired(&rs, &e).is_empty(), "{e:?}");
    }
}

#[test]
fn config_rules() {
    let rs = defaults();
    let config = |subject: DriftSubject, verdict: Verdict, path: &str, detail: &str| DriftFinding {
        provenance: Default::default(),
        enforcement: None,
        kind: DriftKind::Config,
        subject,
        verdict,
        path: path.into(),
        hash: None,
        image_hash: None,
        detail: Some(detail.into()),
    };
    // Per exec: the rules use the agent's finding, not the raw environment, so an image that
    // sets a variable in its ENV is quiet.
    let mut e = exec("/usr/sbin/nginx", &["nginx"], "containerd-shim");
    e.process.env.push("LD_PRELOAD=/tmp/hook.so".into());
    assert!(fired(&rs, &e).is_empty(), "no finding, no alert");
    e.drift = Some(config(
        DriftSubject::Env,
        Verdict::Added,
        "LD_PRELOAD",
        "LD_PRELOAD=\"/tmp/hook.so\" at exec; the image does not set it",
    ));
    assert_eq!(fired(&rs, &e), ["LD_PRELOAD set for process in container"]);
    let a = rs.alert(
        rs.find("LD_PRELOAD set for process in container").unwrap(),
        &e,
        "h",
    );
    assert!(a.output.contains("preload=/tmp/hook.so"), "{}", a.output);
    assert!(a.tags.iter().any(|t| t == "config_drift"));
    for var in ["LD_LIBRARY_PATH", "PYTHONPATH", "NODE_OPTIONS", "PATH"] {
        e.drift = Some(config(DriftSubject::Env, Verdict::Modified, var, "x"));
        assert_eq!(
            fired(&rs, &e),
            ["Code search path set for process in container"],
            "{var}"
        );
    }

    // At container start (evt.type=container), one rule per setting, priority by severity.
    let mut c = exec("/bin/sleep", &["sleep", "60"], "containerd-shim");
    c.kind = EventKind::Container;
    assert!(fired(&rs, &c).is_empty());
    for (subject, path, detail, rule, priority) in [
        (
            DriftSubject::Privileged,
            "privileged",
            "privileged",
            "Launch Privileged Container",
            Priority::Critical,
        ),
        (
            DriftSubject::SensitiveMount,
            "/var/run/docker.sock",
            "host /var/run/docker.sock (container engine socket) mounted read-write",
            "Container with host control mounted",
            Priority::Critical,
        ),
        (
            DriftSubject::SensitiveMount,
            "/host-etc",
            "host /etc (host system directory) mounted read-only",
            "Sensitive host path mounted into container",
            Priority::Error,
        ),
        (
            DriftSubject::HostNamespace,
            "pid",
            "shares the host's pid namespace",
            "Container sharing host PID namespace",
            Priority::Critical,
        ),
        (
            DriftSubject::HostNamespace,
            "network",
            "shares the host's network namespace",
            "Container sharing host namespace",
            Priority::Warning,
        ),
        (
            DriftSubject::CapAdd,
            "CAP_SYS_ADMIN",
            "added",
            "Launch Excessively Capable Container",
            Priority::Error,
        ),
        (
            DriftSubject::CapAdd,
            "CAP_NET_BIND_SERVICE",
            "added",
            "Capability added to container",
            Priority::Notice,
        ),
        (
            DriftSubject::SeccompUnconfined,
            "seccomp",
            "off",
            "Container security profile disabled",
            Priority::Warning,
        ),
        (
            DriftSubject::Env,
            "PYTHONPATH",
            "x",
            "Code-loading variable in container configuration",
            Priority::Warning,
        ),
        (
            DriftSubject::Env,
            "EXTRA",
            "x",
            "Container environment differs from image",
            Priority::Notice,
        ),
        (
            DriftSubject::WritableRootfs,
            "/",
            "writable",
            "Container with writable root filesystem",
            Priority::Notice,
        ),
        (
            DriftSubject::RootUser,
            "root",
            "root",
            "Container Run as Root User",
            Priority::Notice,
        ),
        (
            DriftSubject::MountedFile,
            "/run/secrets/token",
            "written",
            "Mounted secret or config file changed in container",
            Priority::Warning,
        ),
    ] {
        c.drift = Some(config(subject, Verdict::Added, path, detail));
        assert_eq!(fired(&rs, &c), [rule], "{path}");
        assert_eq!(rs.rule(rs.find(rule).unwrap()).priority, priority, "{rule}");
    }

    // A config finding no specific rule covers still alerts, on any event type.
    e.drift = Some(config(
        DriftSubject::Exe,
        Verdict::Modified,
        "/etc/nginx/nginx.conf",
        "x",
    ));
    assert_eq!(
        fired(&rs, &e),
        ["Configuration drift detected in container"]
    );
}

#[test]
fn network_rules() {
    let rs = defaults();
    let mut e = exec("/bin/bash", &["bash", "-i"], "node");
    e.kind = EventKind::Connect;
    assert_eq!(
        fired(&rs, &e),
        ["Network connection from shell in container"]
    );
    let mut l = exec("/usr/sbin/nginx", &["nginx"], "containerd-shim");
    l.kind = EventKind::Listen;
    assert!(
        fired(&rs, &l).is_empty(),
        "listen rule is disabled by default"
    );
    l.drift = Some(DriftFinding {
        provenance: Default::default(),
        enforcement: None,
        kind: DriftKind::Network,
        subject: DriftSubject::Exe,
        verdict: Verdict::Added,
        path: "tcp/4444".into(),
        hash: None,
        image_hash: None,
        detail: None,
    });
    assert_eq!(fired(&rs, &l), ["Network drift detected in container"]);
    let enabled = load("- rule: Listening socket opened in container\n  enabled: true\n");
    l.drift = None;
    assert_eq!(
        fired(&enabled, &l),
        ["Listening socket opened in container"]
    );
}

#[test]
fn benign_container_activity_is_quiet() {
    let rs = defaults();
    for e in [
        exec(
            "/usr/sbin/nginx",
            &["nginx", "-g", "daemon off;"],
            "containerd-shim",
        ),
        exec("/usr/bin/curl", &["curl", "localhost"], "node"),
        file_event(
            EventKind::Open,
            "/var/log/nginx/access.log",
            true,
            "/usr/sbin/nginx",
        ),
        file_event(
            EventKind::Open,
            "/usr/share/nginx/html/index.html",
            false,
            "/usr/sbin/nginx",
        ),
        file_event(
            EventKind::Unlink,
            "/tmp/upload123",
            false,
            "/usr/sbin/nginx",
        ),
    ] {
        assert!(
            fired(&rs, &e).is_empty(),
            "{e:?} fired {:?}",
            fired(&rs, &e)
        );
    }
}

#[test]
fn users_tune_without_editing_defaults() {
    // A list append, a macro override and an exception.
    let rs = load(
        "- list: shell_binaries\n  items: [fish]\n  override:\n    items: append\n\
         - macro: user_known_package_manager_in_container\n  condition: (container.image.repository = nginx)\n  override:\n    condition: replace\n\
         - rule: Drop and execute new binary in container\n  exceptions:\n    - name: known_tools\n      fields: [proc.exepath, container.image.repository]\n      values:\n        - [/tmp/xmrig, nginx]\n  override:\n    exceptions: append\n",
    );
    assert_eq!(
        fired(&rs, &exec("/usr/bin/fish", &["fish"], "node")),
        ["Terminal shell in container"]
    );
    assert!(fired(&rs, &exec("/usr/bin/apt-get", &["apt-get"], "bash")).is_empty());
    let e = drifted_exec(
        "/tmp/xmrig",
        DriftSubject::Exe,
        Verdict::Added,
        "/tmp/xmrig",
    );
    assert!(fired(&rs, &e).is_empty());
    let e = drifted_exec(
        "/tmp/other",
        DriftSubject::Exe,
        Verdict::Added,
        "/tmp/other",
    );
    assert_eq!(fired(&rs, &e), ["Drop and execute new binary in container"]);
}

#[test]
fn an_unjudged_file_is_a_warning_for_every_subject() {
    let rs = defaults();
    let idx = rs
        .find("Unjudged code executed in container")
        .expect("the unjudged rule");
    assert_eq!(rs.rule(idx).priority, Priority::Warning);
    for subject in [
        DriftSubject::Exe,
        DriftSubject::Script,
        DriftSubject::LoaderTarget,
        DriftSubject::Preload,
    ] {
        let e = drifted_exec("/bin/ls", subject, Verdict::Unjudged, "/bin/ls");
        assert_eq!(
            fired(&rs, &e),
            ["Unjudged code executed in container"],
            "{subject:?}"
        );
        let e = drifted_exec("/bin/ls", subject, Verdict::Image, "/bin/ls");
        assert!(
            !fired(&rs, &e).contains(&"Unjudged code executed in container".to_string()),
            "{subject:?}"
        );
    }
}

#[test]
fn setuid_and_setgid_bits_alert_wherever_they_are_set() {
    let rs = defaults();
    let chmod = |path: &str, mode: u32| {
        let mut e = file_event(EventKind::Chmod, path, false, "/bin/chmod");
        e.file.as_mut().unwrap().mode = Some(mode);
        e
    };
    for (path, mode) in [
        ("/tmp/x", 0o4755),
        ("/var/tmp/x", 0o2755),
        ("/opt/x", 0o6755),
    ] {
        assert_eq!(
            fired(&rs, &chmod(path, mode)),
            ["Set Setuid or Setgid bit"],
            "{path} {mode:o}"
        );
    }
    // In a binary directory, both what changed and where.
    let got = fired(&rs, &chmod("/usr/bin/id", 0o4755));
    assert!(
        got.contains(&"Set Setuid or Setgid bit".to_string()),
        "{got:?}"
    );
    assert!(
        got.contains(&"Write below binary dir".to_string()),
        "{got:?}"
    );
    // Other bits, the sticky bit included, are not this rule's.
    for mode in [0o755, 0o1777, 0o700] {
        assert!(fired(&rs, &chmod("/tmp/x", mode)).is_empty(), "{mode:o}");
    }
}

#[test]
fn an_image_file_made_executable_and_run_is_critical() {
    let rs = defaults();
    let name = "Execute image file made executable in container";
    let idx = rs.find(name).expect("the metadata rule");
    assert_eq!(rs.rule(idx).priority, Priority::Critical);
    for subject in [DriftSubject::Exe, DriftSubject::Script] {
        let mut e = drifted_exec("/etc/x", subject, Verdict::Metadata, "/etc/x");
        e.drift.as_mut().unwrap().detail = Some("mode 0644 -> 0755".into());
        assert_eq!(fired(&rs, &e), [name], "{subject:?}");
        let a = rs.alert(idx, &e, "node-1");
        assert!(
            a.output.contains("detail=mode 0644 -> 0755"),
            "{}",
            a.output
        );
        let e = drifted_exec("/etc/x", subject, Verdict::CopyUp, "/etc/x");
        assert!(fired(&rs, &e).is_empty(), "{subject:?}");
    }
}

#[test]
fn inline_code_rule_is_off_by_default_and_fires_only_on_unlearned_inline_code() {
    use driftwatch_model::{InterpreterFamily, InterpreterRun, Invocation, StdinSource};
    const RULE: &str = "Inline code in container never seen in its image";
    let rs = defaults();
    let enabled = load(&format!("- rule: {RULE}\n  enabled: true\n"));
    let mut e = exec("/bin/sh", &["sh", "-c", "id"], "node");
    let mut run = InterpreterRun::new(
        InterpreterFamily::Shell,
        &Invocation::Inline {
            flag: "-c",
            code: "id",
        },
        false,
        || StdinSource::Null,
    );
    run.learned = Some(false);
    e.process.interpreter = Some(run.clone());
    assert!(!fired(&rs, &e).iter().any(|r| r == RULE), "off by default");
    assert!(fired(&enabled, &e).iter().any(|r| r == RULE));
    let idx = enabled.find(RULE).unwrap();
    let a = enabled.alert(idx, &e, "node-1");
    assert!(a.output.contains("code=id "), "{}", a.output);
    assert!(a.output.contains("interpreter=shell"), "{}", a.output);
    run.learned = Some(true);
    e.process.interpreter = Some(run.clone());
    assert!(!fired(&enabled, &e).iter().any(|r| r == RULE), "learned");
    run.learned = None;
    e.process.interpreter = Some(run);
    assert!(!fired(&enabled, &e).iter().any(|r| r == RULE), "not known");
    assert!(
        !fired(&enabled, &on_host(e)).iter().any(|r| r == RULE),
        "host"
    );
}
