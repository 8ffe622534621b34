//! Real-container fixtures for the integration tests: a Docker container from the offline
//! test images, its overlay layers, and a guard that removes it even when the test fails.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::path::PathBuf;
use std::process::{Command, Output};

use driftwatch_model::OverlayLayers;

pub const DOCKER: &str = "/usr/bin/docker";
pub const DEBIAN: &str = "driftwatch-test/debian:12";
pub const BUSYBOX: &str = "driftwatch-test/busybox:1";

/// Why Docker cannot be used here, or `None` when it can run `image`.
fn docker_unavailable(image: &str) -> Option<String> {
    if !std::path::Path::new(DOCKER).exists() {
        return Some(format!("{DOCKER} not found"));
    }
    match Command::new(DOCKER)
        .args(["image", "inspect", image])
        .output()
    {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "docker image inspect {image} failed (dockerd down, or run tests/images/build.sh): {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run {DOCKER}: {e}")),
    }
}

/// Skips (returns `None`, printing why) when Docker or the image is missing; panics instead
/// under `CI=true` so CI cannot go green by skipping.
pub fn require_docker(image: &str) -> Option<()> {
    let Some(why) = docker_unavailable(image) else {
        return Some(());
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but this test cannot run: {why}");
    }
    eprintln!("skipped: needs Docker: {why}");
    None
}

pub fn docker(args: &[&str]) -> Output {
    let out = Command::new(DOCKER)
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A running container, removed (`docker rm -f`) on drop.
pub struct Container {
    pub id: String,
}

impl Container {
    /// `docker run -d --network none IMAGE sleep 600`.
    pub fn start(image: &str) -> Container {
        let out = docker(&["run", "-d", "--network", "none", image, "sleep", "600"]);
        Container {
            id: String::from_utf8(out.stdout).unwrap().trim().to_string(),
        }
    }

    /// `docker exec CONTAINER sh -c SCRIPT`, asserting success.
    pub fn sh(&self, script: &str) -> Vec<u8> {
        docker(&["exec", &self.id, "sh", "-c", script]).stdout
    }

    /// `docker exec CONTAINER bash -c SCRIPT` (when the script rewrites `sh` itself).
    pub fn bash(&self, script: &str) -> Vec<u8> {
        docker(&["exec", &self.id, "bash", "-c", script]).stdout
    }

    /// Overlay layers from `docker inspect` (LowerDir is colon-separated, top-most first).
    pub fn layers(&self) -> OverlayLayers {
        let out = docker(&["inspect", "-f", "{{json .GraphDriver}}", &self.id]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["Name"], "overlay2", "storage driver");
        let data = &v["Data"];
        let s = |k: &str| {
            data[k]
                .as_str()
                .unwrap_or_else(|| panic!("no {k} in {v}"))
                .to_string()
        };
        OverlayLayers {
            upper: PathBuf::from(s("UpperDir")),
            lowers: s("LowerDir").split(':').map(PathBuf::from).collect(),
            merged: Some(PathBuf::from(s("MergedDir"))),
        }
    }

    /// `docker diff`: (kind, path) with kind `A`, `C` or `D`.
    pub fn docker_diff(&self) -> Vec<(char, String)> {
        let out = docker(&["diff", &self.id]);
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let (k, p) = l.split_once(' ').unwrap();
                (k.chars().next().unwrap(), p.to_string())
            })
            .collect()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new(DOCKER).args(["rm", "-f", &self.id]).output();
    }
}
