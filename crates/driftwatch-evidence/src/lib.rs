//! A container's drift as evidence, as a library: the CLI's `driftwatch diff` and
//! `driftwatch capture` and the response playbooks' `capture` action share it.
//!
//! - [`target`]: a container by name, id or prefix, its engine record and overlay layers.
//! - [`counts`]: a diff's counts by change and class.
//! - [`report`]: its diff against its image as a report (table or JSON).
//! - [`capture`]: the evidence bundle (zstd tar with a sha256 manifest), and verifying one.
//!
//! Errors are `anyhow` with context naming the container and path: they end in a person's
//! terminal or in an action record, never matched on.

pub mod capture;
pub mod counts;
pub mod report;
pub mod target;

pub use capture::{AGENT_CAPTURE_MAX_ENTRIES, CaptureOptions, Summary, capture};
pub use report::{DiffReport, Only, human_size};
pub use target::{Target, container_pids, running_containers};
