//! Drift response: playbooks that map alerts to ordered actions, validated before acting and
//! recorded after.
//!
//! - [`playbook`]: the file format (YAML), loaded with FILE:LINE:COL errors; no I/O but the read.
//! - [`matching`]: an alert's facts and the selectors over them.
//! - [`gate`]: validation before acting: exceptions, dedupe window, rate/blast-radius limits.
//! - [`actions`]: kill, freeze/unfreeze, isolate, capture, stop, evict, label, notify; the
//!   container engine and Kubernetes behind traits ([`actions::engine::ContainerEngine`],
//!   [`actions::kube::KubeApi`]).
//! - [`executor`]: the [`Responder`]: a bounded queue (detection never waits) and one thread.
//! - [`queue`]: that queue, fair across containers (a share each, served in turn).
//! - [`record`]: the actions log (JSON lines, mode 0600) and reading it back.
//! - [`release`]: undoing isolation and freezing (`driftwatch release`).
//!
//! # Playbook file
//!
//! ```yaml
//! exceptions:                      # never act on these (any playbook)
//!   - {images: ["registry.local/debug/*"]}
//! playbooks:
//!   - name: contain-binary-drift
//!     match: {tags: [binary_drift], priority: Critical, containers: ["*"], images: ["*"], namespaces: ["*"]}
//!     except:
//!       - {exepaths: ["/usr/local/bin/approved-reload"]}
//!     dedupe_window: 5m            # same rule + container + executable: act once per window (kill: every time)
//!     actions:
//!       - kill
//!       - {action: isolate, on_failure: abort}
//!       - {action: capture, params: {dir: /var/lib/driftwatch/evidence}}
//!       - {action: evict, params: {grace_period: 30s}, limits: {max: 3, per: namespace, window: 1h}, dry_run: true}
//!       - {action: notify, params: {url: "http://127.0.0.1:2801/"}}
//! ```
//!
//! Selector keys (in `match`, `except`, `exceptions`): `rules` (globs), `tags` (any of),
//! `priority` (minimum), `containers` (name or short id globs), `images` (`repo:tag` or
//! `repo` globs), `namespaces` (Kubernetes namespace globs; outside Kubernetes the namespace
//! is empty and only `*` matches), `exepaths` (globs). All keys given must match.
//!
//! Actions and params: `kill`, `freeze`, `unfreeze`, `isolate` (none); `capture` (`dir`,
//! `max_file_size`); `stop` (`timeout`, default 10s); `evict` (`grace_period`, default 30s;
//! `eviction_api`, default false); `label` (`labels`: map, `null` removes); `notify` (`url`
//! `http://` only, `timeout`, default 5s). Every step also takes `dry_run` (record what would
//! be done), `on_failure` (`continue` or `abort`) and `limits` (`{max, per: namespace |
//! container | image | host, window}`). Unknown keys are errors.

pub mod actions;
pub mod executor;
pub mod gate;
pub mod matching;
pub mod playbook;
pub mod queue;
pub mod record;
pub mod release;
pub mod webhook_url;
mod yaml;

pub use executor::{DEFAULT_QUEUE, Responder, ResponderConfig, ResponderStats};
pub use matching::AlertFacts;
pub use playbook::{Action, ActionSpec, Diagnostic, LoadError, Playbook, PlaybookSet};
pub use record::{
    ActionLog, ActionMirror, ActionRecord, DEFAULT_ACTIONS_LOG, Outcome, read_records,
};
