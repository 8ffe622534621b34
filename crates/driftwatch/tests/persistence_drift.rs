//! File drift's persistence and tampering classes in real containers, with the default rules:
//! each class fired by what an attacker does (renames in binary directories, even renamed
//! back; new entries below `/`; shell startup files; ssh keys and sshd's configuration by
//! write, creation, rename and symlink; cron; systemd units and timers; setuid and setgid bits
//! anywhere), and every rule kept quiet by what images do all day.

use std::time::Duration;

use driftwatch_testkit::*;
use serde_json::Value;

/// The binary under test (cargo builds it for this crate's integration tests).
const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

const WAIT: Duration = Duration::from_secs(20);

/// `rule`'s alert in `c` about `path`, of event type `evt_type` when given.
fn alert_on<'a>(
    c: &'a TestContainer,
    rule: &'a str,
    path: &'a str,
    evt_type: Option<&'a str>,
) -> impl Fn(&Value) -> bool + 'a {
    move |a| {
        a["rule"] == rule
            && field(a, "container.id") == c.short()
            && field(a, "fd.name") == path
            && evt_type.is_none_or(|t| field(a, "evt.type") == t)
    }
}

/// Changes the image directories the scenarios use once, so that the first change below each
/// (which copies it up, racing the copy's mark) is behind us.
fn warm_up(c: &TestContainer) {
    let (code, out) = c.sh(
        "mkdir -p /root/.ssh /etc/ssh /etc/systemd/system /usr/lib/systemd/system \
         /root/.config/systemd/user /var/spool/cron/crontabs /home/app && \
         touch /root/.dw /usr/bin/.dw /etc/profile.d/.dw /etc/cron.d/.dw /etc/cron.daily/.dw \
         /root/.ssh/.dw /etc/ssh/.dw /etc/systemd/system/.dw /usr/lib/systemd/system/.dw \
         /root/.config/systemd/user/.dw /var/spool/cron/crontabs/.dw /home/app/.dw /opt/.dw \
         /var/tmp/.dw /tmp/.dw",
    );
    assert_eq!(code, 0, "{out}");
    std::thread::sleep(Duration::from_millis(700));
}

/// One class: the commands, then each (rule, path, event type) they must raise.
struct Class {
    name: &'static str,
    script: &'static str,
    alerts: &'static [(&'static str, &'static str, Option<&'static str>)],
}

const BIN: &str = "Write below binary dir";
const ROOT: &str = "Write below root directory in container";
const SHELL: &str = "Modify Shell Configuration File";
const SSH: &str = "Adding ssh keys to authorized_keys";
const CRON: &str = "Schedule Cron Jobs";
const SYSTEMD: &str = "Systemd unit changed in container";
const SETUID: &str = "Set Setuid or Setgid bit";

const CLASSES: &[Class] = &[
    Class {
        name: "renames and new directories in binary directories",
        // Renamed and put back: the content is the image's again, the renames still happened.
        script: "mv /usr/bin/ls /usr/bin/ls2 && mv /usr/bin/ls2 /usr/bin/ls && \
                 mkdir /usr/bin/.hid",
        alerts: &[
            (BIN, "/usr/bin/ls2", Some("renameat2")),
            (BIN, "/usr/bin/ls", Some("renameat2")),
            (BIN, "/usr/bin/.hid", Some("mkdirat")),
        ],
    },
    Class {
        name: "new entries directly below /",
        script: "echo x > /dw-top && mkdir /dw-topdir",
        alerts: &[(ROOT, "/dw-top", None), (ROOT, "/dw-topdir", None)],
    },
    Class {
        name: "shell startup files",
        script: "echo 'alias ls=id' >> /root/.bashrc && echo 'export A=1' >> /root/.profile && \
                 echo x > /root/.bash_profile && echo x > /home/app/.zshrc && \
                 echo 'id' > /etc/profile.d/dw.sh && echo 'id' >> /etc/bash.bashrc && \
                 echo 'LD_PRELOAD=/tmp/x.so' >> /etc/environment && echo 'id' >> /etc/profile",
        alerts: &[
            (SHELL, "/root/.bashrc", None),
            (SHELL, "/root/.profile", None),
            (SHELL, "/root/.bash_profile", None),
            (SHELL, "/home/app/.zshrc", None),
            (SHELL, "/etc/profile.d/dw.sh", None),
            (SHELL, "/etc/bash.bashrc", None),
            (SHELL, "/etc/environment", None),
            (SHELL, "/etc/profile", None),
        ],
    },
    Class {
        name: "ssh keys and server configuration: create, write, rename into, symlink",
        script: "echo 'ssh-ed25519 AAAA a' > /root/.ssh/authorized_keys && \
                 echo 'ssh-ed25519 AAAA b' >> /root/.ssh/authorized_keys && \
                 echo 'ssh-ed25519 AAAA c' > /root/.ssh/k.tmp && \
                 mv /root/.ssh/k.tmp /root/.ssh/authorized_keys2 && \
                 mkdir -p /home/app/.ssh && ln -s /tmp/keys /home/app/.ssh/authorized_keys && \
                 echo 'PermitRootLogin yes' > /etc/ssh/sshd_config",
        alerts: &[
            (SSH, "/root/.ssh/authorized_keys", Some("openat")),
            (SSH, "/root/.ssh/authorized_keys2", Some("renameat2")),
            (SSH, "/home/app/.ssh/authorized_keys", Some("symlinkat")),
            (SSH, "/etc/ssh/sshd_config", None),
        ],
    },
    Class {
        name: "cron",
        script: "echo '* * * * * root id' >> /etc/crontab && \
                 echo 'id' > /etc/cron.daily/dw && \
                 echo '* * * * * id' > /var/spool/cron/crontabs/root",
        alerts: &[
            (CRON, "/etc/crontab", None),
            (CRON, "/etc/cron.daily/dw", None),
            (CRON, "/var/spool/cron/crontabs/root", None),
        ],
    },
    Class {
        name: "systemd units and timers",
        script: "printf '[Timer]\\nOnCalendar=minutely\\n' > /etc/systemd/system/dw.timer && \
                 printf '[Service]\\nExecStart=/tmp/x\\n' > /usr/lib/systemd/system/dw.service && \
                 echo '[Service]' > /root/.config/systemd/user/dw.service",
        alerts: &[
            (SYSTEMD, "/etc/systemd/system/dw.timer", None),
            (SYSTEMD, "/usr/lib/systemd/system/dw.service", None),
            (SYSTEMD, "/root/.config/systemd/user/dw.service", None),
        ],
    },
    Class {
        name: "setuid and setgid bits, /tmp and /var/tmp included",
        script: "cp /usr/bin/true /tmp/dw-su && chmod u+s /tmp/dw-su && \
                 cp /usr/bin/true /var/tmp/dw-sg && chmod g+s /var/tmp/dw-sg && \
                 cp -p /usr/bin/su /tmp/dw-su-copy && \
                 install -m 4755 /usr/bin/true /opt/dw-installed",
        alerts: &[
            (SETUID, "/tmp/dw-su", Some("fchmodat")),
            (SETUID, "/var/tmp/dw-sg", Some("fchmodat")),
            (SETUID, "/tmp/dw-su-copy", Some("fchmodat")),
            (SETUID, "/opt/dw-installed", Some("fchmodat")),
        ],
    },
];

#[test]
fn each_persistence_class_raises_its_rule_in_a_real_container() {
    if !ready_with(&[DEBIAN]) {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    let c = watched_container(&agent, DEBIAN);
    warm_up(&c);
    for class in CLASSES {
        let (code, out) = c.sh(class.script);
        assert_eq!(code, 0, "{}: {out}", class.name);
        for (rule, path, evt_type) in class.alerts {
            let a = agent.wait_for(
                &format!("{}: {rule} on {path}", class.name),
                WAIT,
                alert_on(&c, rule, path, *evt_type),
            );
            assert!(has_tag(&a, "file_drift"), "{a}");
            assert!(
                a["tags"].as_array().is_some_and(|t| t
                    .iter()
                    .any(|t| t.as_str().is_some_and(|t| t.starts_with("mitre_")))),
                "{a}"
            );
        }
    }
    // One change, one alert: the persistence places are not also "Write below etc".
    let doubled: Vec<Value> = agent
        .alerts()
        .into_iter()
        .filter(|a| a["rule"] == "Write below etc" && field(a, "container.id") == c.short())
        .filter(|a| {
            field(a, "fd.name").as_str().is_some_and(|n| {
                [
                    "/etc/profile",
                    "/etc/environment",
                    "/etc/crontab",
                    "/etc/ssh/sshd_config",
                ]
                .contains(&n)
            })
        })
        .collect();
    assert!(doubled.is_empty(), "{doubled:?}");
}

/// The rules this file is about: none of them may fire on an image's ordinary work.
const PERSISTENCE_RULES: &[&str] = &[BIN, ROOT, SHELL, SSH, CRON, SYSTEMD, SETUID];

#[test]
fn ordinary_writes_of_common_images_raise_none_of_them() {
    if !ready_with(&[DEBIAN]) {
        return;
    }
    let vol = tempfile::tempdir().unwrap();
    let bind = format!("{}:/data", vol.path().display());
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("events.jsonl");
    let agent = AgentProcess::start(DRIFTWATCH, &["--record", record.to_str().unwrap()]);
    let c = TestContainer::run(&["-v", &bind, DEBIAN, "sleep", "300"]);
    // Ready when the agent reports a change (its rule is not one of the above).
    for _ in 0..50 {
        c.sh("echo . >> /etc/dw-ready");
        if agent.alerts().iter().any(|a| {
            field(a, "container.id") == c.short() && field(a, "fd.name") == "/etc/dw-ready"
        }) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, out) = c.sh(
        // apt-style caches and lists, with apt's partial directories and renames into place.
        "mkdir -p /var/cache/apt/archives/partial /var/lib/apt/lists/partial && \
         echo x > /var/cache/apt/pkgcache.bin.tmp && \
         mv /var/cache/apt/pkgcache.bin.tmp /var/cache/apt/pkgcache.bin && \
         echo x > /var/lib/apt/lists/partial/deb.debian.org_InRelease && \
         mv /var/lib/apt/lists/partial/deb.debian.org_InRelease /var/lib/apt/lists/ && \
         echo x > /var/cache/apt/archives/partial/curl.deb && rm /var/cache/apt/archives/partial/curl.deb && \
         echo 'started' >> /var/log/app.log && echo more >> /var/log/dpkg.log && \
         mkdir -p /var/log/app && echo x > /var/log/app/out.log && \
         echo $$ > /run/app.pid && echo $$ > /var/run/app2.pid && mkdir -p /run/app && \
         echo x > /data/db.sqlite && mkdir /data/uploads && echo x > /data/uploads/a && \
         chmod 600 /data/db.sqlite && \
         echo x > /tmp/scratch && echo x > /tmp/keep && chmod 755 /tmp/keep && mkdir /tmp/build && echo x > /tmp/build/o && chmod +x /tmp/build/o && \
         rm -r /tmp/build /tmp/scratch && echo x > /var/tmp/cache && chmod 1777 /var/tmp/cache && \
         mkdir -p /root/.cache/pip && echo x > /root/.cache/pip/index && echo x > /root/.python_history && \
         mkdir -p /opt/app && printf 'X = 1\\n' > /opt/app/mod.py && \
         cd /opt/app && python3 -c 'import mod' && test -d /opt/app/__pycache__ && \
         mkdir -p /data/app && printf 'Y = 2\\n' > /data/app/vmod.py && \
         cd /data/app && python3 -c 'import vmod' && test -d /data/app/__pycache__",
    );
    assert_eq!(code, 0, "{out}");
    // A change the agent reports after all of them, so that theirs are in by then.
    c.sh("echo done >> /etc/dw-done");
    agent.wait_for("the closing change", WAIT, |a| {
        field(a, "container.id") == c.short() && field(a, "fd.name") == "/etc/dw-done"
    });
    std::thread::sleep(Duration::from_millis(500));
    // Each kind of ordinary write was seen (it is an event), and none matched.
    let seen: Vec<String> = std::fs::read_to_string(&record)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["container"]["id"] == c.id.as_str())
        .filter_map(|e| e["file"]["path"].as_str().map(str::to_string))
        .collect();
    for path in [
        "/var/cache/apt/pkgcache.bin",
        "/var/lib/apt/lists/deb.debian.org_InRelease",
        "/var/log/app.log",
        "/run/app.pid",
        "/run/app2.pid",
        "/data/db.sqlite",
        "/tmp/keep",
        "/var/tmp/cache",
        "/root/.python_history",
        "/opt/app/__pycache__",
        "/data/app/__pycache__",
    ] {
        assert!(
            seen.iter().any(|p| p == path),
            "{path} was not seen at all; seen: {seen:?}"
        );
    }
    let noisy: Vec<Value> = agent
        .alerts()
        .into_iter()
        .filter(|a| field(a, "container.id") == c.short())
        .filter(|a| {
            PERSISTENCE_RULES.contains(&a["rule"].as_str().unwrap_or_default())
                || has_tag(a, "binary_drift")
        })
        .collect();
    assert!(noisy.is_empty(), "ordinary writes raised: {noisy:#?}");
}
