//! What enforcement does, as pure functions of what the guard found: the answer to an exec
//! permission request, what happens to a drifted exec already running, to a process held
//! while no agent ran, and the kernel's flags. The guard gathers the facts (and performs
//! the kill a decision asks for); the tables below say what each combination decides.

use std::time::Duration;

use driftwatch_model::{
    Enforcement, EnforcementAction, EnforcementMechanism, EnforcementMode, Verdict,
};
use driftwatch_sensor::{DW_ENFORCE_HOLD_ALL, DW_ENFORCE_HOLD_SUSPECT, DW_ENFORCE_KILL_MEMFD};

use super::policy::EnforcementPolicy;

/// Without a heartbeat for this long, the kernel holds drift suspects (on_agent_death: hold).
pub(crate) const AGENT_DEAD_AFTER: Duration = Duration::from_secs(3);

/// The kernel's flags for a mount namespace in `mode`.
pub(crate) fn mode_flags(mode: EnforcementMode) -> u32 {
    match mode {
        EnforcementMode::Prevent => DW_ENFORCE_KILL_MEMFD | DW_ENFORCE_HOLD_SUSPECT,
        EnforcementMode::Detect => 0,
    }
}

/// The kernel's flags for a mount namespace not placed yet: hold its execs when some scope
/// prevents and the policy holds new containers.
pub(crate) fn unknown_flags(policy: &EnforcementPolicy) -> u32 {
    if policy.any_prevent() && policy.hold_new_containers {
        DW_ENFORCE_HOLD_ALL
    } else {
        0
    }
}

/// How old the heartbeat may get before the kernel holds suspects: only when the policy
/// fails closed and some scope prevents.
pub(crate) fn dead_after(policy: &EnforcementPolicy) -> Option<Duration> {
    (policy.hold_on_agent_death && policy.any_prevent()).then_some(AGENT_DEAD_AFTER)
}

/// The answer at the deadline: deny only when the policy fails closed (`on_agent_death:
/// hold`) and some scope prevents (only prevent-mode containers have marked mounts).
pub(crate) fn deny_at_deadline(policy: &EnforcementPolicy) -> bool {
    policy.hold_on_agent_death && policy.any_prevent()
}

/// What the guard knows of the namespace of a request answered at the deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NsAtDeadline {
    /// The process's mount namespace cannot be read (it is gone).
    Unknown,
    /// The placement table is locked (by a stuck thread).
    Busy,
    /// Placed in this mode, or not placed.
    Placed(Option<EnforcementMode>),
}

/// The default answer of a request not judged in time: `true` allows.
pub(crate) fn allow_at_deadline(deny_at_deadline: bool, ns: NsAtDeadline) -> bool {
    if !deny_at_deadline {
        return true;
    }
    match ns {
        NsAtDeadline::Unknown => true,
        // Marked mounts are prevent-mode containers': deny.
        NsAtDeadline::Busy => false,
        NsAtDeadline::Placed(mode) => mode != Some(EnforcementMode::Prevent),
    }
}

/// The answer to an exec permission request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExecAnswer {
    /// Not drift (or not a prevent scope). `ignore_until_modified`: the file is the image's,
    /// fanotify need not ask about it again until it is written.
    Allow { ignore_until_modified: bool },
    /// Drift the allowlist permits.
    Permitted,
    /// Denied (EPERM). `alert`: false when the same process was denied the same file within
    /// a second (one alert, not one per retry along `$PATH`).
    Deny { alert: bool },
}

/// Judges an exec in a placed namespace. `permitted` (hashing the file if an allow entry
/// asks) and `repeated` (which records the denial) run only when the decision needs them.
pub(crate) fn answer_exec(
    mode: EnforcementMode,
    verdict: Verdict,
    permitted: impl FnOnce() -> bool,
    repeated: impl FnOnce() -> bool,
) -> ExecAnswer {
    if mode != EnforcementMode::Prevent {
        return ExecAnswer::Allow {
            ignore_until_modified: false,
        };
    }
    if !verdict.is_drift() {
        return ExecAnswer::Allow {
            ignore_until_modified: matches!(verdict, Verdict::Image | Verdict::CopyUp),
        };
    }
    if permitted() {
        return ExecAnswer::Permitted;
    }
    ExecAnswer::Deny { alert: !repeated() }
}

/// What became of a drifted exec the exec sensor reports (it already runs, or is held).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Settled {
    /// Detect mode: alerted only.
    Alerted,
    /// The exec BPF program killed it at exec (a memfd).
    KilledByBpf,
    /// Held by the kernel before its first instruction, then killed by the agent.
    HeldThenKilled,
    /// It ran (nothing caught it earlier); killed by the agent as soon as judged.
    KilledLate,
    /// Prevent mode, but the process could not be killed.
    Failed,
}

impl Settled {
    /// What the alert says about it.
    pub(crate) fn enforcement(self, mode: EnforcementMode) -> Enforcement {
        let (action, by) = match self {
            Settled::Alerted => (EnforcementAction::Alerted, None),
            Settled::KilledByBpf => (
                EnforcementAction::Blocked,
                Some(EnforcementMechanism::BpfSigkill),
            ),
            Settled::HeldThenKilled => (
                EnforcementAction::Blocked,
                Some(EnforcementMechanism::BpfHold),
            ),
            Settled::KilledLate => (
                EnforcementAction::Killed,
                Some(EnforcementMechanism::AgentSigkill),
            ),
            Settled::Failed => (EnforcementAction::Failed, None),
        };
        Enforcement { mode, action, by }
    }

    /// The agent killed it (a held process is then not let go).
    pub(crate) fn killed_by_agent(self) -> bool {
        matches!(self, Settled::HeldThenKilled | Settled::KilledLate)
    }
}

/// Settles a drifted exec: `kill` (through a pidfd proved in the container) runs only in
/// prevent mode when the kernel did not kill it already.
pub(crate) fn settle_drift(
    mode: EnforcementMode,
    killed_by_bpf: bool,
    held: bool,
    kill: impl FnOnce() -> bool,
) -> Settled {
    if mode == EnforcementMode::Detect {
        Settled::Alerted
    } else if killed_by_bpf {
        Settled::KilledByBpf
    } else if !kill() {
        Settled::Failed
    } else if held {
        Settled::HeldThenKilled
    } else {
        Settled::KilledLate
    }
}

/// A process the kernel held while no agent ran: killed only when its program is drift
/// in a prevent scope and not permitted (`permitted` runs only then).
pub(crate) fn kill_orphan(
    mode: EnforcementMode,
    verdict: Verdict,
    permitted: impl FnOnce() -> bool,
) -> bool {
    mode == EnforcementMode::Prevent && verdict.is_drift() && !permitted()
}

#[cfg(test)]
mod tests {
    use super::*;
    use EnforcementMode::{Detect, Prevent};

    const DRIFT: Verdict = Verdict::Added;

    #[test]
    fn exec_permission_answers() {
        let allow = |ignore| ExecAnswer::Allow {
            ignore_until_modified: ignore,
        };
        // (mode, verdict, permitted, repeated) -> answer
        let table = [
            (Detect, DRIFT, false, false, allow(false)),
            (Prevent, Verdict::Image, false, false, allow(true)),
            (Prevent, Verdict::CopyUp, false, false, allow(true)),
            (Prevent, DRIFT, true, false, ExecAnswer::Permitted),
            (
                Prevent,
                DRIFT,
                false,
                false,
                ExecAnswer::Deny { alert: true },
            ),
            (
                Prevent,
                DRIFT,
                false,
                true,
                ExecAnswer::Deny { alert: false },
            ),
            (
                Prevent,
                Verdict::Memfd,
                false,
                false,
                ExecAnswer::Deny { alert: true },
            ),
        ];
        for (mode, verdict, permitted, repeated, want) in table {
            assert_eq!(
                answer_exec(mode, verdict, || permitted, || repeated),
                want,
                "{mode:?} {verdict:?} permitted={permitted} repeated={repeated}"
            );
        }
        // Nothing is hashed or recorded for an exec that is not drift.
        answer_exec(
            Prevent,
            Verdict::Image,
            || panic!("hashed"),
            || panic!("recorded"),
        );
        answer_exec(
            Prevent,
            DRIFT,
            || true,
            || panic!("recorded a permitted exec"),
        );
    }

    #[test]
    fn drifted_execs_already_running() {
        use Settled::*;
        // (mode, killed by bpf, held, kill succeeds) -> settled, alert's action and mechanism
        let table = [
            (
                Detect,
                false,
                false,
                true,
                Alerted,
                EnforcementAction::Alerted,
                None,
            ),
            (
                Detect,
                true,
                true,
                true,
                Alerted,
                EnforcementAction::Alerted,
                None,
            ),
            (
                Prevent,
                true,
                false,
                true,
                KilledByBpf,
                EnforcementAction::Blocked,
                Some(EnforcementMechanism::BpfSigkill),
            ),
            (
                Prevent,
                false,
                true,
                true,
                HeldThenKilled,
                EnforcementAction::Blocked,
                Some(EnforcementMechanism::BpfHold),
            ),
            (
                Prevent,
                false,
                false,
                true,
                KilledLate,
                EnforcementAction::Killed,
                Some(EnforcementMechanism::AgentSigkill),
            ),
            (
                Prevent,
                false,
                true,
                false,
                Failed,
                EnforcementAction::Failed,
                None,
            ),
            (
                Prevent,
                false,
                false,
                false,
                Failed,
                EnforcementAction::Failed,
                None,
            ),
        ];
        for (mode, bpf, held, kill_ok, want, action, by) in table {
            let mut tried = false;
            let got = settle_drift(mode, bpf, held, || {
                tried = true;
                kill_ok
            });
            assert_eq!(got, want, "{mode:?} bpf={bpf} held={held} kill={kill_ok}");
            assert_eq!(got.enforcement(mode), Enforcement { mode, action, by });
            assert_eq!(
                tried,
                mode == Prevent && !bpf,
                "kill attempted only when needed"
            );
            assert_eq!(
                got.killed_by_agent(),
                matches!(got, HeldThenKilled | KilledLate)
            );
        }
    }

    #[test]
    fn orphans_and_deadline_defaults() {
        // (mode, verdict, permitted) -> killed
        for (mode, verdict, permitted, want) in [
            (Prevent, DRIFT, false, true),
            (Prevent, DRIFT, true, false),
            (Prevent, Verdict::Image, false, false),
            (Detect, DRIFT, false, false),
        ] {
            assert_eq!(
                kill_orphan(mode, verdict, || permitted),
                want,
                "{mode:?} {verdict:?} {permitted}"
            );
        }
        // (fails closed, namespace) -> allowed
        for (closed, ns, want) in [
            (false, NsAtDeadline::Busy, true),
            (false, NsAtDeadline::Placed(Some(Prevent)), true),
            (true, NsAtDeadline::Unknown, true),
            (true, NsAtDeadline::Busy, false),
            (true, NsAtDeadline::Placed(Some(Prevent)), false),
            (true, NsAtDeadline::Placed(Some(Detect)), true),
            (true, NsAtDeadline::Placed(None), true),
        ] {
            assert_eq!(allow_at_deadline(closed, ns), want, "{closed} {ns:?}");
        }
    }

    #[test]
    fn kernel_flags_follow_the_policy() {
        let mut p = EnforcementPolicy::everywhere(Prevent);
        assert_eq!(
            mode_flags(Prevent),
            DW_ENFORCE_KILL_MEMFD | DW_ENFORCE_HOLD_SUSPECT
        );
        assert_eq!(mode_flags(Detect), 0);
        assert_eq!(unknown_flags(&p), DW_ENFORCE_HOLD_ALL);
        assert_eq!((dead_after(&p), deny_at_deadline(&p)), (None, false));
        p.hold_on_agent_death = true;
        assert_eq!(
            (dead_after(&p), deny_at_deadline(&p)),
            (Some(AGENT_DEAD_AFTER), true)
        );
        p.hold_new_containers = false;
        assert_eq!(unknown_flags(&p), 0);
        let mut d = EnforcementPolicy::everywhere(Detect);
        d.hold_on_agent_death = true;
        assert_eq!(
            (unknown_flags(&d), dead_after(&d), deny_at_deadline(&d)),
            (0, None, false)
        );
    }
}
