//! Fixtures for tests against the real dockerd: requirement checks and RAII containers.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the support module"
)]

use std::process::Command;

pub const DOCKER: &str = "/usr/bin/docker";
pub const BUSYBOX: &str = "driftwatch-test/busybox:1";

/// True when the test can run. When it cannot: prints why and returns false, except under
/// `CI=true`, where a missing requirement fails the test instead of skipping it.
pub fn require_docker(test: &str) -> bool {
    let why = if !nix_is_root() {
        Some("needs root (the docker socket, /proc/<pid> of container processes)".to_string())
    } else {
        match Command::new(DOCKER)
            .args(["image", "inspect", BUSYBOX])
            .output()
        {
            Err(e) => Some(format!("needs the docker client at {DOCKER}: {e}")),
            Ok(o) if !o.status.success() => Some(format!(
                "needs a running dockerd with image {BUSYBOX} ({})",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Ok(_) => None,
        }
    };
    match why {
        None => true,
        Some(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{test}: CI=true and requirement missing: {why}")
        }
        Some(why) => {
            eprintln!("SKIPPED {test}: {why}");
            false
        }
    }
}

fn nix_is_root() -> bool {
    // /proc/self/status "Uid:" real uid; avoids a libc dependency for one call.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

pub fn docker(args: &[&str]) -> String {
    let out = Command::new(DOCKER)
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A container removed (`docker rm -f`) when dropped, also when the test panics.
pub struct TestContainer {
    pub id: String,
}

impl TestContainer {
    /// `docker create`: not started.
    pub fn create(args: &[&str]) -> Self {
        let mut all = vec![
            "create",
            "--network",
            "none",
            "--label",
            "driftwatch-test=runtime",
        ];
        all.extend_from_slice(args);
        Self { id: docker(&all) }
    }

    /// `docker run -d`.
    pub fn run(args: &[&str]) -> Self {
        let mut all = vec![
            "run",
            "-d",
            "--network",
            "none",
            "--label",
            "driftwatch-test=runtime",
        ];
        all.extend_from_slice(args);
        Self { id: docker(&all) }
    }

    pub fn inspect(&self, format: &str) -> String {
        docker(&["inspect", "-f", format, &self.id])
    }

    pub fn pid(&self) -> u32 {
        self.inspect("{{.State.Pid}}").parse().unwrap()
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        let _ = Command::new(DOCKER).args(["rm", "-f", &self.id]).output();
    }
}
