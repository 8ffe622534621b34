//! When a test may run: one definition of "in CI" and one gate that skips locally but fails
//! in CI, for every requirement a test can have of the host.

use std::process::{Command, Stdio};

use crate::docker::{BUSYBOX, DOCKER};

/// True when `CI` is `true` or `1`: a missing requirement then fails the test instead of
/// skipping it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// True when the effective user is root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Something a test needs of the host.
#[derive(Clone, Copy, Debug)]
pub enum Requirement {
    /// Root, for the reason given (`needs root (<why>)`).
    Root(&'static str),
    /// Root, to load BPF programs (what every test of a real agent needs).
    Bpf,
    /// A running dockerd answering `/usr/bin/docker`.
    Docker,
    /// One of the offline test images (tests/images/build.sh), or another image by name.
    Image(&'static str),
    /// A command-line tool that runs (`TOOL --version` succeeds).
    Tool(&'static str),
    /// A file, and how to get it.
    File(&'static str, &'static str),
}

impl Requirement {
    /// `Err(why)` when the host does not meet the requirement.
    pub fn check(self) -> Result<(), String> {
        match self {
            Requirement::Root(why) => root(why),
            Requirement::Bpf => root("loads BPF programs"),
            Requirement::Docker => {
                let out = Command::new(DOCKER)
                    .args(["version", "--format", "{{.Server.Version}}"])
                    .output();
                match out {
                    Ok(o) if o.status.success() => Ok(()),
                    Ok(o) => Err(format!(
                        "needs a running dockerd: {}",
                        String::from_utf8_lossy(&o.stderr).trim()
                    )),
                    Err(e) => Err(format!("needs {DOCKER}: {e}")),
                }
            }
            Requirement::Image(name) => {
                if succeeds(Command::new(DOCKER).args(["image", "inspect", name])) {
                    Ok(())
                } else {
                    Err(format!(
                        "needs the test image {name}: run tests/images/build.sh"
                    ))
                }
            }
            Requirement::Tool(tool) => {
                if succeeds(Command::new(tool).arg("--version")) {
                    Ok(())
                } else {
                    Err(format!("needs the {tool} command"))
                }
            }
            Requirement::File(path, how) => {
                if std::path::Path::new(path).exists() {
                    Ok(())
                } else {
                    Err(format!("needs {path} ({how})"))
                }
            }
        }
    }
}

/// True when `cmd` runs and exits 0 (its output discarded).
fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn root(why: &str) -> Result<(), String> {
    if is_root() {
        Ok(())
    } else {
        Err(format!("needs root ({why})"))
    }
}

/// True when every requirement is met. Otherwise prints why and returns false, or panics
/// with the reason in CI ([`in_ci`]). Most tests say it with [`require!`](crate::require!).
pub fn require(what: &[Requirement]) -> bool {
    what.iter().all(|r| require_that(r.check()))
}

/// [`require`] for a check of the test's own (`Err(why)` when it cannot run).
pub fn require_that(check: Result<(), String>) -> bool {
    match check {
        Ok(()) => true,
        Err(why) if in_ci() => panic!("requirement missing in CI: {why}"),
        Err(why) => {
            skipped(&why);
            false
        }
    }
}

/// A requirement CI does not provide either (a tool the test dependencies do not install):
/// prints why and returns false, in CI too. The caller says why CI may skip it.
pub fn optional(check: Result<(), String>) -> bool {
    match check {
        Ok(()) => true,
        Err(why) => {
            skipped(&why);
            false
        }
    }
}

fn skipped(why: &str) {
    match std::thread::current().name() {
        Some(test) if test != "main" => eprintln!("SKIPPED: {why} ({test})"),
        _ => eprintln!("SKIPPED: {why}"),
    }
}

/// Root (BPF), a running dockerd and the given test images: what a test of a real agent
/// needs. Prints why and returns false otherwise, or panics in CI (see [`require`]).
pub fn ready_with(images: &[&'static str]) -> bool {
    let mut req = vec![Requirement::Bpf, Requirement::Docker];
    req.extend(images.iter().map(|i| Requirement::Image(i)));
    require(&req)
}

/// What most agent tests need: root, dockerd and the busybox test image.
pub fn ready() -> bool {
    ready_with(&[BUSYBOX])
}

/// Returns from the calling test unless every [`Requirement`] is met: prints
/// `SKIPPED: <why>` locally, panics with the reason in CI.
///
/// ```no_run
/// use driftwatch_testkit::{DEBIAN, require};
///
/// fn mounts_a_bpffs() {
///     require!(Root("mounts a bpffs"));
///     // ...
/// }
///
/// fn diffs_a_debian_container() {
///     require!(Docker, Image(DEBIAN));
///     // ...
/// }
/// ```
#[macro_export]
macro_rules! require {
    ($($req:ident $(($($arg:expr),* $(,)?))?),+ $(,)?) => {
        if !$crate::require(&[$($crate::Requirement::$req $(($($arg),*))?),+]) {
            return;
        }
    };
}

/// [`require`] of [`Requirement::Tool`] for each of `tools`.
pub fn require_tools(tools: &[&'static str]) -> bool {
    tools
        .iter()
        .all(|t| require_that(Requirement::Tool(t).check()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_or_file_says_what_and_how_to_get_it() {
        assert_eq!(
            Requirement::Tool("dw-no-such-tool").check(),
            Err("needs the dw-no-such-tool command".into())
        );
        assert_eq!(
            Requirement::File("/nonexistent/dw", "apt-get install dw").check(),
            Err("needs /nonexistent/dw (apt-get install dw)".into())
        );
        assert_eq!(Requirement::File("/", "always there").check(), Ok(()));
    }

    #[test]
    fn an_unmet_requirement_skips_locally_and_fails_in_ci() {
        let mut reached = false;
        let mut gated = || {
            require!(File("/nonexistent/dw", "never there"));
            reached = true;
        };
        if in_ci() {
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut gated));
            assert!(run.is_err(), "CI must fail on a missing requirement");
        } else {
            gated();
        }
        assert!(!reached, "the test body ran without its requirement");
    }

    #[test]
    fn a_met_requirement_runs_the_test() {
        let mut reached = false;
        let mut gated = || {
            require!(File("/", "always there"), Tool("ls"));
            reached = true;
        };
        gated();
        assert!(reached);
    }

    #[test]
    fn optional_skips_in_ci_too() {
        assert!(!optional(Err("not provided anywhere".into())));
        assert!(optional(Ok(())));
    }
}
