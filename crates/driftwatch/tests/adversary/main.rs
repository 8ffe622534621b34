//! The container is the attacker. Each test runs one attack from an ordinary container (default
//! capabilities, no privileges, unless the attack says otherwise) against a real agent, and
//! asserts three things:
//!
//! 1. the agent is alive and under a memory ceiling afterwards ([`Aftermath::unharmed`]);
//! 2. it still detects a plain drift in another container within seconds
//!    ([`Aftermath::still_detects`]);
//! 3. the attack itself raised the alert it should have (each test's own assertion).
//!
//! One module per attack surface; `docs/threat-model.md` lists what each covers.

mod fairness;

mod files;

use std::time::{Duration, Instant};

use driftwatch_testkit::*;

/// The binary under test (cargo builds it for this crate's integration tests).
pub const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");

mod chroot;
mod response;

/// The agent's resident memory after an attack must stay below this. An idle agent is about
/// 45 MiB, one with the API's alert ring full about 115 MiB.
pub const RSS_CEILING_MIB: u64 = 256;

/// How long a plain drift in another container may take to be alerted after an attack.
pub const DETECT_WITHIN: Duration = Duration::from_secs(10);

/// The checks every attack ends with.
pub struct Aftermath<'a> {
    pub agent: &'a AgentProcess,
}

impl Aftermath<'_> {
    /// The agent process still runs (not a zombie) and its RSS is under `ceiling_mib`.
    pub fn unharmed(&self, ceiling_mib: u64) {
        let pid = self.agent.pid();
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.trim_start().to_string()))
            .and_then(|r| r.chars().next());
        assert!(
            matches!(state, Some('R' | 'S' | 'D')),
            "the agent (pid {pid}) is not running after the attack: state {state:?}; log:\n{}",
            self.agent.log().join("\n")
        );
        let rss = rss_kib(pid).expect("agent RSS");
        assert!(
            rss < ceiling_mib * 1024,
            "the agent's RSS is {} MiB after the attack (ceiling {ceiling_mib} MiB)",
            rss / 1024
        );
    }

    /// A plain dropped binary in a fresh container (not the attacker's) is alerted within
    /// [`DETECT_WITHIN`]: the attack blinded no one else.
    pub fn still_detects(&self) {
        let bystander = TestContainer::run(&[BUSYBOX, "sleep", "300"]);
        let dir = format!("bystander{}", std::process::id());
        let start = Instant::now();
        drop_and_run(&bystander, &dir);
        let want = format!("/tmp/{dir}/true");
        self.agent
            .wait_for("a bystander's dropped binary", DETECT_WITHIN, |a| {
                a["rule"] == "Drop and execute new binary in container"
                    && field(a, "container.id") == bystander.short()
                    && field(a, "drift.path") == want.as_str()
            });
        eprintln!(
            "bystander drift alerted {} ms after its exec",
            start.elapsed().as_millis()
        );
    }

    /// Both checks, with the default ceiling.
    pub fn assert_all(&self) {
        self.unharmed(RSS_CEILING_MIB);
        self.still_detects();
        self.unharmed(RSS_CEILING_MIB);
    }
}

/// The control: with no attack, the checks pass (so a failure elsewhere is the attack's).
#[test]
fn control_without_an_attack_the_checks_pass() {
    if !ready() {
        return;
    }
    let agent = AgentProcess::start(DRIFTWATCH, &[]);
    Aftermath { agent: &agent }.assert_all();
}
