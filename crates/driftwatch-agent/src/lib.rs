//! The agent: sensors feed exec records; each is tied to its container, judged against the
//! container's image, turned into an event, run through the rules, and alerted on.

mod containers;
mod emitter;
mod exec_verdict;
mod outputs;
mod pipeline;
mod proctable;

pub use containers::{ContainerFs, ContainerRegistry, RegistryStats};
pub use emitter::{Emitter, SharedEmitter, emit};
pub use exec_verdict::{ExecAnalysis, analyze_exec, loader_target};
pub use outputs::{AlertSink, JsonFileSink, StdoutSink};
pub use pipeline::{Agent, AgentConfig, AgentStats};
pub use proctable::{ProcInfo, ProcTable};
