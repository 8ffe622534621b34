//! driftwatch's domain vocabulary, shared by every other crate: who (container, image,
//! process), what happened (event), what it means (drift finding), what we say (alert) and
//! how the alerts said are kept and asked for (history).
//! No I/O lives here.

mod alert;
pub mod clock;
mod container;
mod drift;
mod event;
mod history;
mod interpreter;
mod interpreter_run;
mod layers;
pub mod name;
mod origin;
mod process;

pub use alert::{Alert, Priority, PriorityParseError, SOURCE_INTERNAL, SOURCE_SYSCALL};
pub use container::{
    ContainerId, ContainerIdError, ContainerMeta, Engine, ImageRef, KubernetesMeta, Mount,
    is_containerd_identifier,
};
pub use drift::{
    DriftFinding, DriftKind, DriftSubject, Enforcement, EnforcementAction, EnforcementMechanism,
    EnforcementMode, Provenance, Verdict,
};
pub use event::{Event, EventKind, FileRef, NetRef};
pub use history::{AlertQuery, AlertSource, AlertSourceError, Order, RuleMatch, StoredAlert};
pub use interpreter::{InterpreterFamily, Interpreters, Invocation, applet_argv, classify};
pub use interpreter_run::{INLINE_CODE_MAX, InterpreterRun, InvocationKind, StdinSource};
pub use layers::OverlayLayers;
pub use origin::{Content, FileFacts, Identity, Residence, verdict};
pub use process::Process;
