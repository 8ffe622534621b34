//! Where alerts go: stdout, Falco JSON lines files, syslog (RFC 5424), HTTP receivers
//! (Falcosidekick, Falco Talon, a SIEM) and Defender-style documents.
//!
//! Each enabled output has its own bounded queue and thread. [`Outputs::emit`] never blocks:
//! when an output's queue is full the alert is dropped for that output and counted. Workers
//! retry with exponential backoff and count what they gave up. [`Outputs::reconfigure`]
//! applies a new configuration without losing what was queued.

mod defender;
mod http;
mod json_file;
mod stdout;
mod syslog;
mod worker;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use driftwatch_config as config;
use driftwatch_model::Alert;

pub use defender::{
    DefenderDriftKind, document as defender_document, severity as defender_severity,
};
pub use json_file::RotatingFile;
pub use stdout::{escape_terminal, format_line, stdout_line, use_color};
pub use syslog::{
    SD_ID, facility_code, format_message as syslog_message, severity as syslog_severity,
};

use worker::{Counters, Deliver, RetryPolicy, Shared};

/// The kinds of output: a closed set, usable as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutputKind {
    Stdout,
    JsonFile,
    Syslog,
    Http,
    Defender,
}

impl OutputKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputKind::Stdout => "stdout",
            OutputKind::JsonFile => "json_file",
            OutputKind::Syslog => "syslog",
            OutputKind::Http => "http",
            OutputKind::Defender => "defender",
        }
    }
}

/// An output that cannot start; names the output and its path, address or URL.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("output {output}: cannot open {}: {source}", path.display())]
    Open {
        output: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("output {output} ({target}): {message}")]
    Invalid {
        output: String,
        target: String,
        message: String,
    },
    #[error("output {output}: cannot start its thread: {source}")]
    Thread {
        output: String,
        source: std::io::Error,
    },
}

/// One output's counters, as of the call to [`Outputs::stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputStats {
    /// `stdout`, `json_file`, `syslog`, `defender`, `http:<url>`.
    pub name: String,
    pub kind: OutputKind,
    /// Alerts accepted into the queue.
    pub queued: u64,
    /// Alerts delivered.
    pub sent: u64,
    /// Alerts not queued because the queue was full.
    pub dropped: u64,
    /// Alerts given up after the retries (or refused: HTTP 4xx).
    pub failed: u64,
    /// Delivery attempts after a failed one.
    pub retries: u64,
    /// Alerts waiting now.
    pub depth: usize,
    pub capacity: usize,
}

/// One output's configuration, compared on reload to tell unchanged outputs from changed ones.
#[derive(Clone, Debug, PartialEq)]
enum Spec {
    Stdout(config::StdoutOutput),
    JsonFile(config::JsonFileOutput),
    Syslog(config::SyslogOutput),
    Http(config::HttpOutput),
    Defender(config::DefenderOutput),
}

impl Spec {
    fn kind(&self) -> OutputKind {
        match self {
            Spec::Stdout(_) => OutputKind::Stdout,
            Spec::JsonFile(_) => OutputKind::JsonFile,
            Spec::Syslog(_) => OutputKind::Syslog,
            Spec::Http(_) => OutputKind::Http,
            Spec::Defender(_) => OutputKind::Defender,
        }
    }

    fn capacity(&self) -> usize {
        match self {
            Spec::Stdout(c) => c.queue_size,
            Spec::JsonFile(c) => c.queue_size,
            Spec::Syslog(c) => c.queue_size,
            Spec::Http(c) => c.queue_size,
            Spec::Defender(c) => c.queue_size,
        }
        .max(1)
    }

    fn target(&self) -> String {
        match self {
            Spec::Stdout(_) => "stdout".into(),
            Spec::JsonFile(c) => c.path.display().to_string(),
            Spec::Syslog(c) => c.address.clone(),
            Spec::Http(c) => c.url.clone(),
            Spec::Defender(c) => c.path.display().to_string(),
        }
    }

    fn policy(&self) -> RetryPolicy {
        match self {
            Spec::Http(c) => RetryPolicy {
                retries: c.retries,
                base: Duration::from_millis(250),
            },
            _ => RetryPolicy {
                retries: 3,
                base: Duration::from_millis(100),
            },
        }
    }

    /// Checks the configuration and opens what must be open before the agent runs (files).
    fn build(&self, name: &str, hostname: &str) -> Result<Box<dyn Deliver>, OutputError> {
        let invalid = |message: String| OutputError::Invalid {
            output: name.to_string(),
            target: self.target(),
            message,
        };
        let open = |path: &PathBuf, max_bytes, max_files| {
            RotatingFile::open(path, max_bytes, max_files).map_err(|source| OutputError::Open {
                output: name.to_string(),
                path: path.clone(),
                source,
            })
        };
        Ok(match self {
            Spec::Stdout(c) => Box::new(stdout::StdoutOut {
                format: c.format,
                color: use_color(c.color),
            }),
            Spec::JsonFile(c) => Box::new(json_file::FileOut {
                file: open(&c.path, c.max_bytes, c.max_files)?,
                format: json_file::LineFormat::Falco,
            }),
            Spec::Defender(c) => Box::new(json_file::FileOut {
                file: open(&c.path, 0, 0)?,
                format: json_file::LineFormat::Defender {
                    hostname: hostname.to_string(),
                },
            }),
            Spec::Syslog(c) => Box::new(syslog::SyslogOut::new(c, hostname).map_err(invalid)?),
            Spec::Http(c) => Box::new(http::HttpOut::new(c, hostname).map_err(invalid)?),
        })
    }
}

/// The enabled outputs of a configuration, named.
fn specs(c: &config::OutputsConfig) -> Vec<(String, Spec)> {
    let mut out = Vec::new();
    if c.stdout.enabled {
        out.push(("stdout".to_string(), Spec::Stdout(c.stdout.clone())));
    }
    if c.json_file.enabled {
        out.push(("json_file".to_string(), Spec::JsonFile(c.json_file.clone())));
    }
    if c.syslog.enabled {
        out.push(("syslog".to_string(), Spec::Syslog(c.syslog.clone())));
    }
    if c.defender.enabled {
        out.push(("defender".to_string(), Spec::Defender(c.defender.clone())));
    }
    let mut names = HashSet::new();
    for h in &c.http {
        let base = format!("http:{}", h.url);
        let mut name = base.clone();
        let mut n = 1;
        while !names.insert(name.clone()) {
            n += 1;
            name = format!("{base}#{n}");
        }
        out.push((name, Spec::Http(h.clone())));
    }
    out
}

/// A running output: the sending end of its queue and its thread.
struct Running {
    name: String,
    spec: Spec,
    tx: SyncSender<Arc<Alert>>,
    shared: Arc<Shared>,
    capacity: usize,
    thread: JoinHandle<()>,
}

/// A worker whose queue was closed (reconfigured away or shut down); it drains, then ends.
struct Retiring {
    shared: Arc<Shared>,
    thread: JoinHandle<()>,
}

struct State {
    running: Vec<Running>,
    retiring: Vec<Retiring>,
    /// Counters by output name: a reconfigured output keeps counting where it was.
    counters: Vec<(String, Arc<Counters>)>,
    shut_down: bool,
    /// The counters as they stood when shutdown finished (what [`Outputs::stats`] returns then).
    last: Vec<OutputStats>,
}

/// The running outputs. Cheap to share (`Arc<Outputs>`); every method takes `&self`.
pub struct Outputs {
    state: RwLock<State>,
    hostname: String,
    /// Serializes reconfigure/shutdown (the RwLock is held only briefly by them).
    control: Mutex<()>,
}

impl Outputs {
    /// Starts a thread and a queue for each enabled output. Files are opened (and their
    /// directories created) now; network outputs connect at their first alert.
    pub fn start(c: &config::OutputsConfig, hostname: &str) -> Result<Outputs, OutputError> {
        let mut state = State {
            running: Vec::new(),
            retiring: Vec::new(),
            counters: Vec::new(),
            shut_down: false,
            last: Vec::new(),
        };
        for (name, spec) in specs(c) {
            let r = start_one(&mut state.counters, name, spec, hostname)?;
            state.running.push(r);
        }
        Ok(Outputs {
            state: RwLock::new(state),
            hostname: hostname.to_string(),
            control: Mutex::new(()),
        })
    }

    /// Queues the alert on every output without blocking; a full queue drops (and counts).
    pub fn emit(&self, alert: &Alert) {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        if state.running.is_empty() {
            return;
        }
        let alert = Arc::new(alert.clone());
        for r in &state.running {
            let c = &r.shared.counters;
            r.shared.depth.fetch_add(1, Ordering::Relaxed);
            match r.tx.try_send(alert.clone()) {
                Ok(()) => {
                    c.queued.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    r.shared.depth.fetch_sub(1, Ordering::Relaxed);
                    c.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Applies a new configuration (SIGHUP): unchanged outputs keep running untouched;
    /// changed and removed ones deliver what they had queued, then stop; new ones start.
    /// On an error nothing changes.
    pub fn reconfigure(&self, c: &config::OutputsConfig) -> Result<(), OutputError> {
        let _control = self.control.lock().unwrap_or_else(|p| p.into_inner());
        let wanted = specs(c);
        // Build the new and changed outputs before touching anything.
        let mut counters = {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            if state.shut_down {
                return Ok(());
            }
            state.counters.clone()
        };
        let mut started = Vec::new();
        {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            for (name, spec) in &wanted {
                let same = state
                    .running
                    .iter()
                    .any(|r| &r.name == name && &r.spec == spec);
                if !same {
                    match start_one(&mut counters, name.clone(), spec.clone(), &self.hostname) {
                        Ok(r) => started.push(r),
                        Err(e) => {
                            // Close the ones just started; nothing was sent to them.
                            drop(state);
                            for r in started {
                                drop(r.tx);
                                let _ = r.thread.join();
                            }
                            return Err(e);
                        }
                    }
                }
            }
        }
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        state.counters = counters;
        let old = std::mem::take(&mut state.running);
        for r in old {
            let keep = wanted
                .iter()
                .any(|(name, spec)| &r.name == name && &r.spec == spec);
            if keep {
                state.running.push(r);
            } else {
                tracing::info!("output {}: configuration changed; draining", r.name);
                // Dropping the sender closes the queue: the worker delivers what is in it.
                drop(r.tx);
                state.retiring.push(Retiring {
                    shared: r.shared,
                    thread: r.thread,
                });
            }
        }
        for r in started {
            tracing::info!("output {}: started", r.name);
            state.running.push(r);
        }
        // Keep the configuration's order (stable stats).
        let order: Vec<&String> = wanted.iter().map(|(n, _)| n).collect();
        state
            .running
            .sort_by_key(|r| order.iter().position(|n| **n == r.name));
        state.retiring.retain(|r| !r.thread.is_finished());
        Ok(())
    }

    /// Every running output's counters: atomics read under a shared lock, no allocation
    /// beyond the result. After [`shutdown`](Self::shutdown): the final counts.
    pub fn stats(&self) -> Vec<OutputStats> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        if state.shut_down {
            return state.last.clone();
        }
        snapshot(&state.running)
    }

    /// Closes every queue and waits up to `timeout` for the outputs to deliver what they
    /// hold. Past it, retries stop and what is left counts as failed. True when everything
    /// queued was delivered or given up in time. Later calls return true at once.
    pub fn shutdown(&self, timeout: Duration) -> bool {
        let _control = self.control.lock().unwrap_or_else(|p| p.into_inner());
        let deadline = Instant::now() + timeout;
        let (workers, mut last) = {
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            if state.shut_down {
                return true;
            }
            state.shut_down = true;
            let last = snapshot(&state.running);
            state.last = last.clone();
            let mut all: Vec<Retiring> = std::mem::take(&mut state.retiring);
            for r in std::mem::take(&mut state.running) {
                drop(r.tx);
                all.push(Retiring {
                    shared: r.shared,
                    thread: r.thread,
                });
            }
            (all, last)
        };
        for w in &workers {
            *w.shared.deadline.lock().unwrap_or_else(|p| p.into_inner()) = Some(deadline);
        }
        // Stopped retrying at the deadline, a worker still finishes the attempt in flight
        // (at most the output's timeout) and counts the rest; a little grace for that.
        let hard = deadline + Duration::from_millis(500);
        let mut all_done = true;
        for w in workers {
            while !w.thread.is_finished() && Instant::now() < hard {
                std::thread::sleep(Duration::from_millis(10));
            }
            if w.thread.is_finished() {
                let _ = w.thread.join();
            } else {
                all_done = false;
            }
        }
        for s in &mut last {
            if let Some((_, c)) = self
                .state
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .counters
                .iter()
                .find(|(n, _)| *n == s.name)
            {
                s.sent = c.sent.load(Ordering::Relaxed);
                s.failed = c.failed.load(Ordering::Relaxed);
                s.retries = c.retries.load(Ordering::Relaxed);
                s.depth = 0;
            }
        }
        self.state.write().unwrap_or_else(|p| p.into_inner()).last = last;
        all_done
    }
}

impl Drop for Outputs {
    fn drop(&mut self) {
        self.shutdown(Duration::from_secs(2));
    }
}

fn snapshot(running: &[Running]) -> Vec<OutputStats> {
    running
        .iter()
        .map(|r| {
            let c = &r.shared.counters;
            OutputStats {
                name: r.name.clone(),
                kind: r.spec.kind(),
                queued: c.queued.load(Ordering::Relaxed),
                sent: c.sent.load(Ordering::Relaxed),
                dropped: c.dropped.load(Ordering::Relaxed),
                failed: c.failed.load(Ordering::Relaxed),
                retries: c.retries.load(Ordering::Relaxed),
                depth: r.shared.depth.load(Ordering::Relaxed),
                capacity: r.capacity,
            }
        })
        .collect()
}

fn start_one(
    counters: &mut Vec<(String, Arc<Counters>)>,
    name: String,
    spec: Spec,
    hostname: &str,
) -> Result<Running, OutputError> {
    let deliver = spec.build(&name, hostname)?;
    let c = match counters.iter().find(|(n, _)| *n == name) {
        Some((_, c)) => c.clone(),
        None => {
            let c = Arc::new(Counters::default());
            counters.push((name.clone(), c.clone()));
            c
        }
    };
    let shared = Arc::new(Shared {
        counters: c,
        ..Shared::default()
    });
    let capacity = spec.capacity();
    let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
    let policy = spec.policy();
    let thread = {
        let shared = shared.clone();
        let worker_name = name.clone();
        std::thread::Builder::new()
            .name(format!("dw-out-{}", spec.kind().as_str()))
            .spawn(move || worker::run(&worker_name, deliver, rx, shared, policy))
            .map_err(|source| OutputError::Thread {
                output: name.clone(),
                source,
            })?
    };
    Ok(Running {
        name,
        spec,
        tx,
        shared,
        capacity,
        thread,
    })
}

// The agent shares one `Outputs` between the sensors' threads, the API and the reload.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Outputs>();
};

#[cfg(test)]
pub(crate) mod tests {
    use driftwatch_model::{Alert, Priority};

    pub fn alert(output: &str) -> Alert {
        Alert {
            time: "2026-11-28T12:00:00.123456789Z".into(),
            rule: "r".into(),
            priority: Priority::Critical,
            source: "syscall".into(),
            hostname: "h".into(),
            output: format!("12:00:00.123456789: Critical {output}"),
            tags: vec![],
            output_fields: Default::default(),
        }
    }
}
