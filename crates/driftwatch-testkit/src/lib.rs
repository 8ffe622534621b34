//! What driftwatch's tests share, so that each thing is said once: when a test may run
//! ([`require!`]), the agent as a real process ([`AgentProcess`]), containers and images that
//! clean up after themselves ([`TestContainer`], [`TestImage`]; through containerd's `ctr`:
//! [`CtrImage`], [`CtrContainer`]), an HTTP receiver for the outputs ([`HttpReceiver`]), and
//! a Kubernetes node made of a containerd of the test's own driven through CRI as a kubelet
//! drives it ([`CriNode`], [`Pod`]).
//!
//! # Skipping, and CI
//!
//! A test that needs something of the host (root, BPF, dockerd, a test image, a tool) starts
//! with [`require!`]. When the requirement is missing it prints `SKIPPED: <why> (<test>)` and
//! returns, except in CI, where it panics with the same reason: CI can never go green by
//! skipping.
//!
//! "In CI" means the environment variable `CI` is `true` or `1` ([`in_ci`]): `true` is what
//! CI services set, `1` what people type. Any other value, or none, is a local run.
//!
//! A few requirements are not provided by CI either (a tool the test dependencies do not
//! install); those tests use [`optional`] and say why.
//!
//! # The agent
//!
//! `CARGO_BIN_EXE_driftwatch` is only set when the `driftwatch` crate's own tests are
//! compiled, so the binary is passed in: `AgentProcess::start(DRIFTWATCH, &[...])` with
//! `const DRIFTWATCH: &str = env!("CARGO_BIN_EXE_driftwatch");` in the test file.

mod agent;
mod agent_image;
mod cli;
mod cri_client;
mod cri_node;
mod cri_pod;
mod ctr;
mod docker;
mod falco_upstream;
mod host;
mod netns;
mod pod_alerts;
mod receiver;
mod require;

pub use agent::{
    AgentProcess, drop_and_run, drop_and_run_detached, field, has_tag, only_bundle, read_alerts,
    recorded_events, sleep_past_learning, wait_for_baseline, watched_container,
};
pub use agent_image::{agent_image_flags, agent_run_args, build_agent_image, wait_until_watching};
pub use cli::{cli, run_cli, text};
pub use cri_node::{CRI_NAMESPACE, CriNode, PAUSE, cri_image};
pub use cri_pod::{ContainerSpec, Pod, PodContainer, PodSpec};
pub use ctr::{CTR, CTR_SOCKETS, CtrContainer, CtrImage, ctr_in, ctr_ready, ctr_socket};
pub use docker::{
    BUSYBOX, DEBIAN, DOCKER, TestContainer, TestImage, Thaw, docker, docker_bytes, docker_ok,
    dpkg_install_script,
};
pub use falco_upstream::{FALCO_UPSTREAM_FILES, falco_upstream_dir, falco_upstream_rule_args};
pub use host::{free_port, repo_root, rss_kib, serial};
pub use netns::{TestNetns, run_ok};
pub use pod_alerts::{
    agent_on_node, assert_every_alert_names_the_pod, assert_pod_alert, pod_alert, until_pod_watched,
};
pub use receiver::{HttpReceiver, ReceivedRequest, ReceiverReply};
pub use require::{
    Requirement, in_ci, is_root, optional, ready, ready_with, require, require_that, require_tools,
};
