//! Falco's tuning files apply unchanged to the default rules: the forms Falco's documentation
//! shows ("Overriding Rules", "Rule Exceptions", "Appending to lists, macros and rules") on the
//! rules that carry Falco's names, each loading without error and changing what fires; and
//! the tuning names the defaults share with Falco's upstream files are of Falco's kind.

mod synthetic;

use std::collections::BTreeSet;

use driftwatch_model::{DriftFinding, DriftKind, DriftSubject, Event, EventKind, Verdict};
use driftwatch_rules::{RuleSet, Source};
use synthetic::*;

const DROP_AND_EXECUTE: &str = "Drop and execute new binary in container";
const MEMFD: &str = "Fileless execution via memfd_create";
const SHM: &str = "Execution from /dev/shm";
const TERMINAL_SHELL: &str = "Terminal shell in container";
const PACKAGE_MANAGER: &str = "Launch Package Management Process in Container";
const WRITE_BINARY_DIR: &str = "Write below binary dir";
const WRITE_ETC: &str = "Write below etc";
const CRON: &str = "Schedule Cron Jobs";
const SSH_KEYS: &str = "Adding ssh keys to authorized_keys";
const PRIVILEGED: &str = "Launch Privileged Container";
const RUN_AS_ROOT: &str = "Container Run as Root User";

fn fires(rs: &RuleSet, e: &Event, rule: &str) -> bool {
    fired(rs, e).iter().any(|n| n == rule)
}

/// The default rules with one tuning file after them, as a user's rules.d file loads.
fn tuned(file: &str) -> RuleSet {
    load(file)
}

fn config_event(subject: DriftSubject, path: &str) -> Event {
    let mut e = exec("/bin/sleep", &["sleep", "60"], "containerd-shim");
    e.kind = EventKind::Container;
    e.drift = Some(DriftFinding {
        provenance: Default::default(),
        enforcement: None,
        kind: DriftKind::Config,
        subject,
        verdict: Verdict::Added,
        path: path.into(),
        hash: None,
        image_hash: None,
        detail: Some(path.into()),
    });
    e
}

#[test]
fn appending_to_known_drop_and_execute_containers_allows_an_image() {
    let e = drifted_exec(
        "/tmp/xmrig",
        DriftSubject::Exe,
        Verdict::Added,
        "/tmp/xmrig",
    );
    assert!(fires(&defaults(), &e, DROP_AND_EXECUTE));
    // The issue's report: this failed with an undefined base list.
    let rs = tuned(
        "- list: known_drop_and_execute_containers\n  items: [nginx]\n  override:\n    items: append\n",
    );
    assert!(!fires(&rs, &e, DROP_AND_EXECUTE), "nginx is allowed now");
    let mut other = e.clone();
    let mut meta = (*other.container.clone().unwrap()).clone();
    meta.image.repository = "redis".into();
    other.container = Some(std::sync::Arc::new(meta));
    assert!(
        fires(&rs, &other, DROP_AND_EXECUTE),
        "other images still fire"
    );
    // Falco's macro form of the same.
    let rs = tuned(
        "- macro: known_drop_and_execute_activities\n  condition: (proc.name = xmrig)\n  override:\n    condition: replace\n",
    );
    assert!(!fires(&rs, &e, DROP_AND_EXECUTE));
}

#[test]
fn appending_to_known_memfd_execution_binaries_allows_a_program() {
    let mut e = drifted_exec(
        "memfd:payload",
        DriftSubject::Exe,
        Verdict::Memfd,
        "memfd:payload",
    );
    e.process.exe_from_memfd = true;
    e.process.name = "payload".into();
    assert!(fires(&defaults(), &e, MEMFD));
    let rs = tuned(
        "- list: known_memfd_execution_binaries\n  items: [payload]\n  override:\n    items: append\n",
    );
    assert!(!fires(&rs, &e, MEMFD));
    // By the parent's name too, as Falco's macro does.
    let rs = tuned(
        "- list: known_memfd_execution_binaries\n  items: [sh]\n  override:\n    items: append\n",
    );
    assert!(!fires(&rs, &e, MEMFD), "the parent is sh");
    // Falco's own default (runc) is not in ours: a process picks its name.
    e.process.name = "runc".into();
    assert!(fires(&defaults(), &e, MEMFD));
}

#[test]
fn dev_shm_has_falcos_rule_and_other_tmpfs_the_non_image_rule_one_alert_each() {
    let shm = drifted_exec(
        "/dev/shm/x",
        DriftSubject::Exe,
        Verdict::Tmpfs,
        "/dev/shm/x",
    );
    let scratch = drifted_exec(
        "/scratch/x",
        DriftSubject::Exe,
        Verdict::Tmpfs,
        "/scratch/x",
    );
    assert_eq!(fired(&defaults(), &shm), [SHM]);
    assert_eq!(
        fired(&defaults(), &scratch),
        ["Execute binary from non-image filesystem in container"]
    );
    for list in ["trusted_images", "falco_privileged_images"] {
        let rs = tuned(&format!(
            "- list: {list}\n  items: [nginx]\n  override:\n    items: append\n"
        ));
        assert!(fired(&rs, &shm).is_empty(), "{list}");
    }
}

#[test]
fn redefining_user_known_package_manager_in_container_as_falcos_docs_show() {
    // Falco's comment above the macro: `condition: proc.cmdline="dpkg -l"`.
    let rs = tuned(
        "- macro: user_known_package_manager_in_container\n  condition: proc.cmdline=\"dpkg -l\"\n",
    );
    let list = exec("/usr/bin/dpkg", &["dpkg", "-l"], "bash");
    let install = exec("/usr/bin/dpkg", &["dpkg", "-i", "x.deb"], "bash");
    assert!(fires(&defaults(), &list, PACKAGE_MANAGER));
    assert!(!fires(&rs, &list, PACKAGE_MANAGER));
    assert!(fires(&rs, &install, PACKAGE_MANAGER));
}

#[test]
fn appending_a_condition_to_a_tuning_macro() {
    let e = file_event(
        EventKind::Creat,
        "/usr/local/bin/tool",
        true,
        "/usr/bin/installer",
    );
    assert!(fires(&defaults(), &e, WRITE_BINARY_DIR));
    let rs = tuned(
        "- macro: user_known_write_below_binary_dir_activities\n  condition: or proc.name = installer\n  override:\n    condition: append\n",
    );
    assert!(!fires(&rs, &e, WRITE_BINARY_DIR));
    let other = file_event(
        EventKind::Creat,
        "/usr/local/bin/tool",
        true,
        "/usr/bin/curl",
    );
    assert!(fires(&rs, &other, WRITE_BINARY_DIR));
    // Write below etc's two Falco macros.
    let etc = file_event(
        EventKind::Open,
        "/etc/nginx/nginx.conf",
        true,
        "/usr/bin/confd",
    );
    assert!(
        fires(&defaults(), &etc, WRITE_ETC),
        "Falco's default confd is not ours"
    );
    for m in [
        "user_known_write_etc_conditions",
        "user_known_write_below_etc_activities",
    ] {
        let rs = tuned(&format!("- macro: {m}\n  condition: (proc.name=confd)\n"));
        assert!(!fires(&rs, &etc, WRITE_ETC), "{m}");
    }
    let cron = file_event(
        EventKind::Creat,
        "/etc/cron.d/job",
        true,
        "/usr/bin/ansible",
    );
    assert!(fires(&defaults(), &cron, CRON));
    let rs = tuned("- macro: user_known_cron_jobs\n  condition: (proc.name = ansible)\n");
    assert!(!fires(&rs, &cron, CRON));
}

#[test]
fn exceptions_with_values_as_falcos_docs_show() {
    // Falco's "Rule Exceptions" example, on the rule of the same name.
    let rs = tuned(
        r#"- rule: Write below binary dir
  exceptions:
    - name: known_bin_writers
      fields: [proc.name, fd.name]
      comps: [=, contains]
      values:
        - [nginx, /usr/bin/nginx]
        - [apache, /bin/apache]
  override:
    exceptions: append
"#,
    );
    let nginx = file_event(EventKind::Open, "/usr/bin/nginx", true, "/usr/sbin/nginx");
    assert!(fires(&defaults(), &nginx, WRITE_BINARY_DIR));
    assert!(!fires(&rs, &nginx, WRITE_BINARY_DIR));
    let elsewhere = file_event(EventKind::Open, "/usr/bin/curl", true, "/usr/sbin/nginx");
    assert!(fires(&rs, &elsewhere, WRITE_BINARY_DIR), "only the pair");
    // A single-field exception on another Falco-named rule.
    let rs = tuned(
        "- rule: Terminal shell in container\n  exceptions:\n    - name: ci_shells\n      fields: [proc.pname]\n      values: [[jenkins-agent]]\n  override:\n    exceptions: append\n",
    );
    let shell = exec("/bin/sh", &["sh", "-c", "make"], "jenkins-agent");
    assert!(fires(&defaults(), &shell, TERMINAL_SHELL));
    assert!(!fires(&rs, &shell, TERMINAL_SHELL));
}

#[test]
fn disabling_by_enabled_false_and_by_override_enabled_replace() {
    let shell = exec("/bin/sh", &["sh", "-c", "id"], "node");
    assert!(fires(&defaults(), &shell, TERMINAL_SHELL));
    for file in [
        "- rule: Terminal shell in container\n  enabled: false\n",
        "- rule: Terminal shell in container\n  enabled: false\n  override:\n    enabled: replace\n",
    ] {
        let rs = tuned(file);
        assert!(!fires(&rs, &shell, TERMINAL_SHELL), "{file}");
    }
    // And back on, as a later file can.
    let rs = RuleSet::load_with_defaults(&[
        Source::new("a.yaml", "- rule: Terminal shell in container\n  enabled: false\n"),
        Source::new(
            "b.yaml",
            "- rule: Terminal shell in container\n  enabled: true\n  override:\n    enabled: replace\n",
        ),
    ])
    .unwrap()
    .ruleset;
    assert!(fires(&rs, &shell, TERMINAL_SHELL));
}

#[test]
fn a_list_redefined_replaces_ours() {
    let rs = tuned("- list: shell_binaries\n  items: [bash]\n");
    let sh = exec("/bin/sh", &["sh", "-c", "id"], "node");
    let bash = exec("/bin/bash", &["bash"], "node");
    assert!(fires(&defaults(), &sh, TERMINAL_SHELL));
    assert!(!fires(&rs, &sh, TERMINAL_SHELL));
    assert!(fires(&rs, &bash, TERMINAL_SHELL));
    // And Falco's user_expected_terminal_shell_in_container_conditions.
    let rs = tuned(
        "- macro: user_expected_terminal_shell_in_container_conditions\n  condition: (proc.pname = node)\n",
    );
    assert!(!fires(&rs, &sh, TERMINAL_SHELL));
}

#[test]
fn ssh_binaries_privileged_images_and_root_images() {
    let keys = file_event(
        EventKind::Open,
        "/root/.ssh/authorized_keys",
        true,
        "/usr/bin/tee",
    );
    assert!(fires(&defaults(), &keys, SSH_KEYS));
    let by_ssh = file_event(
        EventKind::Open,
        "/root/.ssh/authorized_keys",
        true,
        "/usr/bin/ssh-keygen",
    );
    assert!(
        !fires(&defaults(), &by_ssh, SSH_KEYS),
        "Falco's ssh_binaries"
    );
    let rs = tuned("- list: ssh_binaries\n  items: [tee]\n  override:\n    items: append\n");
    assert!(!fires(&rs, &keys, SSH_KEYS));

    let privileged = config_event(DriftSubject::Privileged, "privileged");
    assert!(fires(&defaults(), &privileged, PRIVILEGED));
    let rs = tuned(
        "- list: falco_privileged_images\n  items: [nginx]\n  override:\n    items: append\n",
    );
    assert!(!fires(&rs, &privileged, PRIVILEGED));
    let rs = tuned("- macro: user_privileged_containers\n  condition: (container.name = web)\n");
    assert!(!fires(&rs, &privileged, PRIVILEGED));

    let root = config_event(DriftSubject::RootUser, "root");
    assert!(fires(&defaults(), &root, RUN_AS_ROOT));
    let rs =
        tuned("- list: run_as_root_image_list\n  items: [nginx]\n  override:\n    items: append\n");
    assert!(!fires(&rs, &root, RUN_AS_ROOT));
}

#[test]
fn renamed_rules_no_longer_exist() {
    for old in [
        "Shell spawned in container",
        "Write below etc in container",
        "Privileged container started",
    ] {
        let file = format!("- rule: {old}\n  enabled: false\n");
        let errs = RuleSet::load_with_defaults(&[Source::new("old.yaml", file.as_str())])
            .err()
            .unwrap_or_else(|| panic!("{old}: a tuning file naming it should fail"));
        assert!(!errs.is_empty(), "{old}");
    }
}

/// `- list: NAME` and `- macro: NAME` of a rule file, by kind.
fn definitions(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut lists = BTreeSet::new();
    let mut macros = BTreeSet::new();
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("- list: ") {
            lists.insert(n.trim().to_string());
        } else if let Some(n) = line.strip_prefix("- macro: ") {
            macros.insert(n.trim().to_string());
        }
    }
    (lists, macros)
}

#[test]
fn names_shared_with_falcos_files_are_of_falcos_kind() {
    let ours = include_str!("../../../rules/driftwatch_rules.yaml");
    let (our_lists, our_macros) = definitions(ours);
    let mut falco_lists = BTreeSet::new();
    let mut falco_macros = BTreeSet::new();
    for file in [
        "falco_rules.yaml",
        "falco-incubating_rules.yaml",
        "falco-sandbox_rules.yaml",
    ] {
        let path = format!(
            "{}/tests/data/falcosecurity-rules/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let (l, m) = definitions(&std::fs::read_to_string(&path).unwrap());
        falco_lists.extend(l);
        falco_macros.extend(m);
    }
    // Deliberately both: the list lets `proc.pname in (container_entrypoint)` mean what
    // published drift rules mean by it (see the default file).
    let both = ["container_entrypoint"];
    for name in &our_lists {
        if falco_macros.contains(name) && !falco_lists.contains(name) {
            assert!(both.contains(&name.as_str()), "{name} is a macro in Falco");
        }
    }
    for name in &our_macros {
        assert!(
            !falco_lists.contains(name) || falco_macros.contains(name),
            "{name} is a list in Falco"
        );
    }
    // The tuning points the rules with Falco's names honour are all Falco's.
    for name in [
        "known_drop_and_execute_containers",
        "known_memfd_execution_binaries",
        "ssh_binaries",
        "falco_privileged_images",
        "trusted_images",
        "run_as_root_image_list",
        "shell_binaries",
        "package_mgmt_binaries",
    ] {
        assert!(our_lists.contains(name), "{name} missing from ours");
        assert!(falco_lists.contains(name), "{name} is not Falco's list");
    }
    for name in [
        "known_drop_and_execute_activities",
        "known_memfd_execution_processes",
        "user_expected_terminal_shell_in_container_conditions",
        "user_known_package_manager_in_container",
        "user_known_write_etc_conditions",
        "user_known_write_below_etc_activities",
        "user_known_write_below_binary_dir_activities",
        "user_known_cron_jobs",
        "user_privileged_containers",
        "user_known_run_as_root_container",
    ] {
        assert!(our_macros.contains(name), "{name} missing from ours");
        assert!(falco_macros.contains(name), "{name} is not Falco's macro");
    }
}
