//! The agent: sensors feed exec records; each is tied to its container, judged against the
//! container's image, turned into an event, run through the rules, and alerted on.

mod alert_names;
mod baseline;
mod config_drift;
mod container_lookup;
mod containers;
mod deadline;
mod emitter;
mod enforce;
mod exec_verdict;
mod fairness;
mod file_drift;
mod finding_provenance;
mod histogram;
mod image_verify;
mod inline_code;
mod loss;
mod net_drift;
mod outputs;
mod pipeline;
mod proctable;
mod record_file;
mod reload;
mod snapshot;
pub use snapshot::FinalCounts;
mod stats;
mod tamper;

pub use baseline::{
    BaselineBackend, BaselineError, BaselineFile, BaselineStore, DEFAULT_BASELINE_FILE,
    DEFAULT_LEARNING_WINDOW, FileBackend, ImageBaseline, InlineKey,
};
pub use config_drift::{ConfigDrift, ConfigDriftStats};
pub use container_lookup::ContainerLookup;
pub use containers::{ContainerEntry, ContainerFs, ContainerRegistry, RegistryStats};
pub use deadline::{DEFAULT_ANSWER_DEADLINE, DeadlineStats, STALL_ENV};
pub use emitter::{Emitter, SharedEmitter, emit, emit_alert};
pub use enforce::{AllowEntry, EnforceStats, EnforcementPolicy, Enforcer, Scope, ScopeMatch};
pub use exec_verdict::{ExecAnalysis, analyze_exec, loader_target};
pub use fairness::{BUDGET_RULE, Limits};
pub use file_drift::{FileDrift, FileDriftConfig, FileStats};
pub use histogram::{Histogram, LATENCY_BOUNDS_US};
pub use image_verify::{DEFAULT_LAYER_CACHE, ImageVerifier, ImageVerifyConfig, ImageVerifyStats};
pub use loss::{LOSS_ALERT_MIN_INTERVAL, LOSS_RULE, LossCounts, loss_alert};
pub use net_drift::{NetDrift, NetDriftConfig, NetDriftRuntime, NetDriftStats};
pub use outputs::AlertSink;
pub use pipeline::{Agent, AgentConfig};
pub use proctable::{ProcInfo, ProcTable};
pub use reload::ReloadStats;
pub use stats::{
    AgentSnapshot, AgentStats, AnswerSnapshot, EnforcementSnapshot, FileSnapshot,
    HistogramSnapshot, ModeCounts, NetSnapshot, ReloadSnapshot, RingSnapshot, TamperSnapshot,
};
pub use tamper::{
    SignalOrigin, TamperGuard, TamperGuardConfig, TamperStats, default_protected, set_non_dumpable,
};
