//! Identity without an engine, checked against a real Docker container: its cgroup and its
//! mountinfo must say what `docker inspect` says.

use std::path::{Path, PathBuf};

use driftwatch_model::Engine;
use driftwatch_runtime::{
    MountKind, MountTable, container_from_cgroup_leaf, container_from_proc_cgroup,
    resolve_layer_paths,
};
use driftwatch_testkit::{BUSYBOX, TestContainer, require};

#[test]
fn container_mountinfo_and_cgroup_match_docker_inspect() {
    require!(
        Root("the docker socket, /proc/<pid> of container processes"),
        Docker,
        Image(BUSYBOX),
    );
    let vol = tempfile::tempdir().unwrap();
    let bind = format!("{}:/data", vol.path().display());
    let c = TestContainer::run(&["--tmpfs", "/scratch", "-v", &bind, BUSYBOX, "sleep", "600"]);
    let pid = c.pid();

    // cgroup: the full /proc/<pid>/cgroup text and the sensor's leaf+parent form.
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let m = container_from_proc_cgroup(&cgroup).expect("container cgroup recognised");
    assert_eq!(m.id.as_str(), c.id);
    assert_eq!(m.engine, Some(Engine::Docker));
    let v2 = cgroup.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
    let mut parts = v2.rsplitn(3, '/');
    let (leaf, parent) = (parts.next().unwrap(), parts.next());
    assert_eq!(
        container_from_cgroup_leaf(leaf, parent)
            .unwrap()
            .id
            .as_str(),
        c.id
    );

    // mountinfo: root overlay layers, resolved, equal docker's GraphDriver data.
    let text = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let table = MountTable::parse(&text).unwrap();
    let layers = table.root_overlay().expect("root overlay");
    let resolved = resolve_layer_paths(&layers, Path::new("/var/lib/docker/overlay2")).unwrap();
    let upper = PathBuf::from(c.inspect("{{.GraphDriver.Data.UpperDir}}"));
    let lowers: Vec<PathBuf> = c
        .inspect("{{.GraphDriver.Data.LowerDir}}")
        .split(':')
        .map(|p| Path::new(p).canonicalize().unwrap())
        .collect();
    assert_eq!(resolved.upper, upper.canonicalize().unwrap());
    assert_eq!(resolved.lowers, lowers);

    // Classification of what the container sees.
    let kind = |p: &str| table.find(p).unwrap().kind();
    assert_eq!(kind("/bin/sh"), MountKind::ImageRoot);
    assert_eq!(kind("/scratch/x"), MountKind::Tmpfs);
    assert_eq!(kind("/dev/shm/x"), MountKind::Tmpfs);
    assert_eq!(kind("/proc/self/exe"), MountKind::Proc);
    match kind("/data/file") {
        MountKind::Bind { root, .. } => assert_eq!(root, vol.path()),
        other => panic!("/data is {other:?}"),
    }
    match kind("/etc/hosts") {
        MountKind::Bind { root, .. } => assert!(root.ends_with("hosts"), "{root:?}"),
        other => panic!("/etc/hosts is {other:?}"),
    }
}
