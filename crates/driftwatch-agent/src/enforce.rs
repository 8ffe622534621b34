//! Prevention: drifted code stopped before its first instruction, per scope.
//!
//! Three mechanisms, each where it works (docs/platform.md):
//! - fanotify exec permission (`FAN_OPEN_EXEC_PERM`) on every mount of a container in
//!   prevent mode. The kernel asks before a program, a script or an interpreter is opened for
//!   exec; the agent judges the file (same verdicts as detection) and answers deny, so the
//!   caller's `execve` fails with EPERM. Image files judged once are not asked about again
//!   until they are modified (fanotify ignore marks are cleared by writes).
//! - The exec BPF program kills memfd execs at exec (`bpf_send_signal(SIGKILL)`): memfds
//!   live on no mount the agent can mark.
//! - The exec BPF program holds (SIGSTOP at exec, before the first instruction) what loads
//!   code fanotify does not see: the dynamic loader run as a program (`ld.so /tmp/x`) and
//!   execs with `LD_PRELOAD`; and every exec of a mount namespace whose scope the agent has
//!   not decided yet (a container in its first milliseconds). The agent judges the record,
//!   then sends SIGKILL or SIGCONT.
//!
//! If a drifted exec got past all of them (a mount created inside the container after it was
//! marked), the agent kills it as soon as it judges the record, and the alert says so
//! (`drift.action=killed`, `drift.blocked_by=agent_sigkill`).
//!
//! Allowlisted drift (by path, sha256, image) is neither blocked nor alerted.
//!
//! Three jobs, three files: [`policy`] (the file's schema and parser, pure), [`decide`]
//! (what each combination of facts decides, pure and table-tested) and [`guard`] (the
//! runtime: fanotify thread, BPF maps, heartbeat, orphans, kill).

mod decide;
mod guard;
mod policy;

pub use guard::{EnforceStats, Enforcer};
pub use policy::{AllowEntry, EnforcementPolicy, Scope, ScopeMatch};
