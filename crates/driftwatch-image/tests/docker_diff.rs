//! The diff on real Docker containers agrees with `docker diff` (same paths, same A/C/D),
//! and adds the verdicts docker cannot give.

use std::collections::BTreeSet;

use driftwatch_image::{
    ChangeKind, Diff, Differ, DockerChange, Ecosystem, ExecKind, PackageChangeKind,
};
use driftwatch_testkit::{BUSYBOX, DEBIAN, TestContainer, require};

fn ours(d: &Diff) -> BTreeSet<(char, String)> {
    d.docker_view()
        .into_iter()
        .map(|(c, p)| (c.as_char(), p.to_string()))
        .collect()
}

fn assert_agrees(c: &TestContainer, d: &Diff) {
    let docker: BTreeSet<(char, String)> = c.docker_diff().into_iter().collect();
    let ours = ours(d);
    let only_docker: Vec<_> = docker.difference(&ours).collect();
    let only_ours: Vec<_> = ours.difference(&docker).collect();
    assert!(
        only_docker.is_empty() && only_ours.is_empty(),
        "docker diff disagrees\nonly in docker diff: {only_docker:#?}\nonly in ours: {only_ours:#?}"
    );
    assert!(!docker.is_empty());
}

fn get<'a>(d: &'a Diff, path: &str) -> &'a driftwatch_image::FileDiff {
    d.files
        .iter()
        .find(|f| f.path.as_bytes() == path.as_bytes())
        .unwrap_or_else(|| panic!("{path} not in the diff"))
}

#[test]
fn agrees_with_docker_diff_on_debian() {
    require!(Docker, Image(DEBIAN));
    let c = TestContainer::run(&[DEBIAN, "sleep", "600"]);
    c.bash_ok(concat!(
        "set -e; rm -rf /usr/share/doc; mkdir /usr/share/doc; touch /usr/share/doc/new;",
        "echo x >> /usr/bin/dash; touch /bin/true; chmod 755 /usr/bin/ls; chmod 4711 /usr/bin/id;",
        "mkdir -p /opt/a/b; touch /opt/a/b/c; rm /usr/bin/who; rm -rf /usr/share/man;",
        "mkfifo /tmp/fifo; ln -s /nowhere /tmp/dangling; ln -s loop /tmp/loop; echo > /etc/motd;",
        "touch /usr/share/zoneinfo; cp /bin/ls /tmp/x; rm /bin/sh; ln -s bash /bin/sh;",
        "printf Z | dd of=/usr/bin/cat bs=1 seek=200 conv=notrunc status=none;",
        "touch -r /usr/bin/tac /usr/bin/tac.new; mv /usr/bin/tac.new /usr/bin/tac 2>/dev/null || true;",
        "printf '\\nPackage: evil\\nStatus: install ok installed\\nArchitecture: amd64\\nVersion: 6.6.6\\n' >> /var/lib/dpkg/status;",
        "mkdir -p /usr/local/lib/python3.11/dist-packages/evil-1.0.dist-info;",
        "printf 'Name: evil\\nVersion: 1.0\\n' > /usr/local/lib/python3.11/dist-packages/evil-1.0.dist-info/METADATA;",
        "mkdir -p /app/node_modules/left-pad; echo '{\"name\":\"left-pad\",\"version\":\"1.3.0\"}' > /app/node_modules/left-pad/package.json;",
        "mkdir -p /root/deep; cd /root/deep; for i in $(seq 30); do mkdir d$i; cd d$i; done; touch leaf",
    ));
    let layers = c.layers();
    let d = Differ::new(&layers).run().unwrap();
    assert_agrees(&c, &d);

    // The verdicts docker cannot give.
    assert_eq!(get(&d, "/usr/bin/ls").change, ChangeKind::Unchanged);
    assert_eq!(get(&d, "/usr/bin/true").change, ChangeKind::Metadata);
    assert_eq!(
        get(&d, "/usr/bin/true").metadata.unwrap().fields(),
        ["times"]
    );
    assert_eq!(get(&d, "/usr/bin/id").metadata.unwrap().fields(), ["mode"]);
    let dash = get(&d, "/usr/bin/dash");
    assert_eq!(
        (dash.change, dash.class.executable),
        (ChangeKind::Modified, Some(ExecKind::Elf))
    );
    let cat = get(&d, "/usr/bin/cat");
    assert_eq!(cat.change, ChangeKind::Modified);
    assert!(cat.image_hash.is_some() && cat.hash != cat.image_hash);
    let x = get(&d, "/tmp/x");
    assert_eq!(
        (x.change, x.class.executable),
        (ChangeKind::Added, Some(ExecKind::Elf))
    );
    assert_eq!(
        get(&d, "/usr/bin/sh")
            .symlink_target
            .as_ref()
            .unwrap()
            .to_string(),
        "bash"
    );
    assert!(get(&d, "/etc/motd").class.config);
    assert!(
        d.files.iter().any(|f| f.deleted_with.is_some()),
        "hidden docs listed"
    );

    let pkgs: Vec<_> = d
        .packages
        .iter()
        .map(|p| (p.ecosystem, p.change, p.name.as_str(), p.version.as_deref()))
        .collect();
    assert!(
        pkgs.contains(&(
            Ecosystem::Dpkg,
            PackageChangeKind::Added,
            "evil",
            Some("6.6.6")
        )),
        "{pkgs:?}"
    );
    assert!(
        pkgs.contains(&(
            Ecosystem::Python,
            PackageChangeKind::Added,
            "evil",
            Some("1.0")
        )),
        "{pkgs:?}"
    );
    assert!(
        pkgs.contains(&(
            Ecosystem::Npm,
            PackageChangeKind::Added,
            "left-pad",
            Some("1.3.0")
        )),
        "{pkgs:?}"
    );
    assert_eq!(pkgs.len(), 3, "no other package changed: {pkgs:?}");
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
}

#[test]
fn agrees_with_docker_diff_on_busybox() {
    require!(Docker, Image(BUSYBOX));
    let c = TestContainer::run(&[BUSYBOX, "sleep", "600"]);
    c.sh_ok(concat!(
        "set -e; cp /bin/busybox /tmp/ls; rm /bin/cat; ln -s /tmp/ls /bin/cat; mkdir -p /var/x;",
        "echo hi > /var/x/y; chmod 600 /var/x/y; touch /bin/busybox",
    ));
    let layers = c.layers();
    let d = Differ::new(&layers).run().unwrap();
    assert_agrees(&c, &d);
    let cat = get(&d, "/bin/cat");
    assert_eq!(cat.change, ChangeKind::Modified, "symlink target changed");
    assert_eq!(cat.docker, Some(DockerChange::C));
    assert_eq!(get(&d, "/bin/busybox").change, ChangeKind::Metadata);
}

#[test]
fn hostile_names_in_a_real_container_give_valid_json() {
    require!(Docker, Image(DEBIAN));
    let c = TestContainer::run(&[DEBIAN, "sleep", "600"]);
    c.bash_ok(r#"touch $'/tmp/new\nline' $'/tmp/bad\377byte' "/tmp/quote\"back\\slash""#);
    let layers = c.layers();
    let d = Differ::new(&layers).run().unwrap();
    let json = serde_json::to_string(&d).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let paths: BTreeSet<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    // JSON carries the real names; a name that is not UTF-8 is shown lossy, with its
    // bytes in `path_b64`.
    for p in [
        "/tmp/new\nline",
        "/tmp/bad\u{fffd}byte",
        "/tmp/quote\"back\\slash",
    ] {
        assert!(paths.contains(p), "{p:?} not in {paths:?}");
    }
    let bad = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/tmp/bad\u{fffd}byte")
        .unwrap();
    let raw = driftwatch_model::name::decode_name(bad, "path").unwrap();
    assert_eq!(raw, b"/tmp/bad\xffbyte", "{bad}");
}
