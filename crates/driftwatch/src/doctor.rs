//! `driftwatch doctor`: what this host supports, probed for real, and what it means.

use driftwatch_runtime::{DockerConfig, DockerSource};
use driftwatch_sensor::{ProbeResult, probe_host};

#[derive(clap::Args)]
pub struct DoctorArgs {
    /// Docker's (or podman's) API socket to probe.
    #[arg(long, value_name = "PATH", default_value = "/var/run/docker.sock")]
    docker_socket: std::path::PathBuf,
}

fn line(what: &str, r: &ProbeResult) {
    match r {
        ProbeResult::Yes(m) => println!("  ok   {what:<22} {m}"),
        ProbeResult::No(m) => println!("  NO   {what:<22} {m}"),
        ProbeResult::Unknown(m) => println!("  ??   {what:<22} {m}"),
    }
}

pub fn run(args: DoctorArgs) -> anyhow::Result<i32> {
    let h = probe_host();
    println!(
        "kernel: {}",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
    );
    line("root", &h.root);
    line("BTF", &h.btf);
    line("lockdown", &h.lockdown);
    line("bpffs", &h.bpffs);
    line("cgroups", &h.cgroups);
    line("overlayfs", &h.overlayfs);
    line("exec tracepoint", &h.exec_tracepoint);
    line("fanotify", &h.fanotify);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let docker = DockerSource::new(DockerConfig {
        socket: args.docker_socket.clone(),
        ..DockerConfig::default()
    });
    let engine = match rt.block_on(docker.ping()) {
        Ok(()) => ProbeResult::Yes(format!(
            "answers at {}: alerts carry container names and images",
            args.docker_socket.display()
        )),
        Err(e) => ProbeResult::No(format!(
            "{e}: containers are still identified from the kernel (cgroup, mounts), by id only"
        )),
    };
    line("docker", &engine);
    for (name, socket) in [
        ("containerd", "/run/containerd/containerd.sock"),
        ("CRI-O", "/run/crio/crio.sock"),
    ] {
        let r = match std::fs::symlink_metadata(socket) {
            Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => {
                ProbeResult::Yes(format!("socket at {socket}"))
            }
            Ok(_) => ProbeResult::No(format!("{socket} is not a socket")),
            Err(e) => ProbeResult::No(format!(
                "{socket}: {e}: its containers are identified from the kernel only"
            )),
        };
        line(name, &r);
    }
    let detects = h.root.ok() && h.btf.ok() && h.exec_tracepoint.ok();
    println!();
    if detects {
        println!("binary drift detection: available");
        Ok(0)
    } else {
        println!("binary drift detection: NOT available on this host (see the NO lines above)");
        Ok(1)
    }
}
