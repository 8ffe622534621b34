//! The process both rule benchmarks evaluate on: an app's child in a container.

use driftwatch_model::Process;

/// `exe` run as `argv` by `parent` (under containerd-shim), uid 1000, with `env`.
pub fn app_process(exe: &str, argv: &[&str], parent: &str, env: &[&str]) -> Process {
    Process {
        pid: 1234,
        ppid: 1200,
        uid: 1000,
        gid: 1000,
        user_name: "app".into(),
        name: exe.rsplit('/').next().unwrap().chars().take(15).collect(),
        exepath: exe.into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: env.iter().map(|s| s.to_string()).collect(),
        cwd: "/app".into(),
        ancestors: vec![parent.into(), "containerd-shim".into()],
        ..Default::default()
    }
}
