//! The reach of the default rules and of Falco's upstream files below the directories
//! containers write all day, and below the ones drift rules watch.

use driftwatch_model::EventKind;

use super::*;
use crate::Source;
use crate::ruleset::tests::upstream;

fn scope(extra: &[Source]) -> FileScope {
    RuleSet::load_with_defaults(extra)
        .unwrap_or_else(|d| panic!("{}", d[0].render()))
        .ruleset
        .file_scope()
}

const SCRATCH: [&str; 5] = ["/var/tmp", "/tmp", "/run", "/var/log", "/var/cache/apt"];

#[test]
fn scratch_directories_reach_only_the_setuid_rule() {
    let s = scope(&[]);
    for dir in SCRATCH {
        let r = s.children(dir);
        assert_eq!(
            r.kinds(),
            [EventKind::Chmod],
            "{dir}: {:#?}",
            s.explain(dir, true)
        );
        // An image file deleted anywhere but the places with rules of their own.
        assert!(r.image_unlink, "{dir}");
        // A node_modules or dist-info database may sit anywhere.
        assert!(r.package, "{dir}");
        // A trailing slash and a deeper directory say the same.
        assert_eq!(s.children(&format!("{dir}/")), r);
        assert_eq!(
            s.children(&format!("{dir}/a/b")).kinds(),
            [EventKind::Chmod]
        );
        if dir != "/run" {
            assert_eq!(s.below(dir), r, "{dir}: {:#?}", s.explain(dir, false));
        }
    }
    // systemd reads units from /run/systemd/system: /run's subdirectories stay watched.
    assert!(s.below("/run").can_match(EventKind::Creat));
    assert!(
        s.children("/run/systemd/system")
            .can_match(EventKind::Creat)
    );
}

#[test]
fn drift_places_reach_every_change() {
    let s = scope(&[]);
    for dir in [
        "/etc",
        "/usr/bin",
        "/etc/cron.d",
        "/",
        "/usr/lib/x86_64-linux-gnu",
    ] {
        let r = s.children(dir);
        for k in FILE_KINDS {
            assert!(r.can_match(k), "{dir} {k:?}: {r:?}");
        }
    }
    // `/root/.bashrc`, `/root/.ssh/authorized_keys`, `/root/.config/systemd/user/x`.
    let root = s.children("/root");
    assert!(root.can_match(EventKind::Open) && root.can_match(EventKind::Rename));
    assert!(s.children("/root/.ssh").can_match(EventKind::Open));
    // `authorized_keys` is matched by name wherever a home may be: below /var/lib too.
    assert!(s.children("/var/lib/git").can_match(EventKind::Open));
    // Not a parent of /etc: `/etcx` is not below /etc.
    let names =
        |dir: &str| -> Vec<String> { s.explain(dir, false).into_iter().map(|(n, _)| n).collect() };
    assert!(names("/etc").contains(&"Write below etc".to_string()));
    assert!(!names("/etcx").contains(&"Write below etc".to_string()));
}

/// `fd.directory = /` ("Write below root directory") is about the entries of / alone.
#[test]
fn the_root_rule_reaches_the_root_entries_only() {
    let s = scope(&[]);
    let root_rule = |dir: &str, children: bool| {
        s.explain(dir, children)
            .iter()
            .any(|(n, _)| n == "Write below root directory in container")
    };
    assert!(root_rule("/", true));
    assert!(!root_rule("/srv", true));
    assert!(!root_rule("/srv", false));
}

/// A directory above a watched place reaches what the place does: `/usr` holds `/usr/bin`.
#[test]
fn parents_of_drift_places_reach_them() {
    let s = scope(&[]);
    for dir in ["/usr", "/var", "/var/spool", "/usr/local"] {
        assert!(s.below(dir).can_match(EventKind::Creat), "{dir}");
    }
}

#[test]
fn a_user_rule_on_var_tmp_reaches_var_tmp() {
    let rule = Source::new(
        "local.yaml",
        "- rule: Scratch writes\n  desc: d\n  condition: evt.type in (creat, rename) and fd.name startswith /var/tmp/\n  output: x %fd.name\n  priority: NOTICE\n",
    );
    let s = scope(&[rule]);
    let r = s.children("/var/tmp");
    assert!(r.can_match(EventKind::Creat) && r.can_match(EventKind::Rename));
    assert!(!r.can_match(EventKind::Unlink));
    assert_eq!(s.children("/tmp").kinds(), [EventKind::Chmod]);
}

#[test]
fn disabled_rules_reach_nothing() {
    let off = Source::new(
        "local.yaml",
        "- rule: Set Setuid or Setgid bit\n  enabled: false\n  override:\n    enabled: replace\n- rule: Delete image file in container\n  enabled: false\n  override:\n    enabled: replace\n- rule: Package drift in container\n  enabled: false\n  override:\n    enabled: replace\n",
    );
    let s = scope(&[off]);
    let r = s.below("/var/tmp");
    assert!(r.is_empty(), "{r:?}");
    assert!(!s.below("/etc").is_empty());
}

/// Falco's own files (stable, incubating, sandbox) on top of the defaults. Several of their
/// rules match files by name or link target wherever they are (`.bashrc`, `release_agent`, a
/// symbolic link to a sensitive file) or a rename by its old name (out of a binary directory):
/// those reach every directory, and no others do.
#[test]
fn upstream_rules_reach_scratch_directories_by_file_name_only() {
    let s = scope(&upstream());
    for dir in ["/var/tmp", "/tmp", "/run", "/var/cache/apt"] {
        let mut why: Vec<(String, Vec<EventKind>)> = s
            .explain(dir, true)
            .into_iter()
            .filter(|(_, r)| r.kinds().iter().any(|k| *k != EventKind::Chmod))
            .map(|(n, r)| (n, r.kinds()))
            .collect();
        why.sort_by(|a, b| a.0.cmp(&b.0));
        let names: Vec<&str> = why.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "Clear Log Activities",
                "Create Symlink Over Sensitive Files",
                "Delete or rename shell history",
                "Detect release_agent File Container Escapes",
                "Modify Shell Configuration File",
                "Modify binary dirs",
            ],
            "{dir}: {why:?}"
        );
        assert_eq!(why[1].1, [EventKind::Symlink], "{dir}");
        assert_eq!(why[5].1, [EventKind::Rename], "{dir}");
    }
    for dir in ["/etc", "/usr/bin", "/root"] {
        let r = s.children(dir);
        assert!(r.can_match(EventKind::Open), "{dir}: {r:?}");
    }
}

#[test]
fn paths_are_judged_by_their_components() {
    let p = Below {
        dir: "/var/tmp",
        prefix: "/var/tmp/".into(),
        children: false,
        drift_kind: "file",
        details: &[],
    };
    let pm = |xs: &[&str]| Pred::PMatch(xs.iter().map(|x| Box::<str>::from(*x)).collect());
    assert_eq!(p.below_pred(&pm(&["/var"])), Tri::True);
    assert_eq!(p.below_pred(&pm(&["/var/tmp"])), Tri::True);
    assert_eq!(p.below_pred(&pm(&["/var/tmp/x"])), Tri::Unknown);
    assert_eq!(p.below_pred(&pm(&["/var/t"])), Tri::False);
    assert_eq!(p.below_pred(&Pred::StartsWith("/var/t".into())), Tri::True);
    assert_eq!(
        p.below_pred(&Pred::StartsWith("/var/tmp/a".into())),
        Tri::Unknown
    );
    assert_eq!(p.below_pred(&Pred::StartsWith("/etc/".into())), Tri::False);
    assert_eq!(p.below_pred(&Pred::StrEq("/var/tmp".into())), Tri::False);
    assert_eq!(
        p.below_pred(&Pred::StrEq("/var/tmp/x".into())),
        Tri::Unknown
    );
    assert_eq!(p.below_pred(&Pred::EndsWith(".so".into())), Tri::Unknown);
    let c = Below {
        children: true,
        ..p
    };
    assert_eq!(c.below_pred(&pm(&["/var/tmp/x"])), Tri::Unknown);
    assert_eq!(c.below_pred(&pm(&["/var/tmp/x/y"])), Tri::False);
    assert_eq!(
        c.below_pred(&Pred::StartsWith("/var/tmp/a/".into())),
        Tri::False
    );
    assert_eq!(
        c.below_pred(&Pred::StrEq("/var/tmp/a/b".into())),
        Tri::False
    );
}
