//! The configuration's sections. Durations are [`Duration`]s and sizes are bytes; the file
//! spells them `90s`/`5m`/`1h`/`30d` and `512KiB`/`100MiB`/`1GiB`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    pub engines: EnginesConfig,
    pub rules: RulesConfig,
    pub sensor: SensorConfig,
    pub enforcement: EnforcementConfig,
    pub detection: DetectionConfig,
    pub limits: LimitsConfig,
    pub network: NetworkConfig,
    pub response: ResponseConfig,
    pub verify: VerifyConfig,
    pub tamper: TamperConfig,
    pub store: StoreConfig,
    pub outputs: OutputsConfig,
    pub api: ApiConfig,
    pub logging: LoggingConfig,
}

/// Which container engines the agent asks for names, images and labels.
#[derive(Clone, Debug, PartialEq)]
pub struct EnginesConfig {
    /// Ask no engine at all (alerts then name containers by id only).
    pub disabled: bool,
    pub docker_socket: PathBuf,
    /// `None`: /run/containerd/containerd.sock, else dockerd's own, when present.
    pub containerd_socket: Option<PathBuf>,
    pub containerd_namespaces: Vec<String>,
    pub podman_socket: Option<PathBuf>,
    /// `None`: /var/run/crio/crio.sock (or /run/crio/crio.sock), when present.
    pub crio_socket: Option<PathBuf>,
}

impl Default for EnginesConfig {
    fn default() -> Self {
        EnginesConfig {
            disabled: false,
            docker_socket: PathBuf::from("/var/run/docker.sock"),
            containerd_socket: None,
            containerd_namespaces: vec!["k8s.io".into(), "moby".into(), "default".into()],
            podman_socket: None,
            crio_socket: None,
        }
    }
}

/// Rule files, loaded after the embedded defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct RulesConfig {
    /// Every `*.yaml`/`*.yml` here, in name order.
    pub directory: PathBuf,
    /// Further files, after the directory's.
    pub files: Vec<PathBuf>,
    /// Falco's `append_output` entries, applied to the rules' outputs when they load.
    pub append_output: Vec<driftwatch_rules::AppendOutput>,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            directory: PathBuf::from("/etc/driftwatch/rules.d"),
            files: Vec::new(),
            append_output: driftwatch_rules::AppendOutput::falco_default(),
        }
    }
}

/// The kernel side.
#[derive(Clone, Debug, PartialEq)]
pub struct SensorConfig {
    /// Ring buffer between the kernel and the agent, MiB, a power of two.
    pub ring_mib: u32,
    /// While records flow, the agent drains the ring buffers this often and the kernel does
    /// not wake it per record (zero: a wakeup per record).
    pub drain_interval: Duration,
}

impl Default for SensorConfig {
    fn default() -> Self {
        SensorConfig {
            ring_mib: 8,
            // keep in sync: driftwatch_sensor::DEFAULT_DRAIN_INTERVAL
            drain_interval: Duration::from_millis(1),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EnforcementModeSetting {
    #[default]
    Detect,
    Prevent,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EnforcementConfig {
    /// The mode of every container the policy file does not scope.
    pub mode: EnforcementModeSetting,
    /// Scopes and allowlist (the format of `run --enforcement-policy`).
    pub policy: Option<PathBuf>,
    /// Every fanotify permission request is answered within this.
    pub answer_deadline: Duration,
}

impl Default for EnforcementConfig {
    fn default() -> Self {
        EnforcementConfig {
            mode: EnforcementModeSetting::default(),
            policy: None,
            answer_deadline: Duration::from_secs(1),
        }
    }
}

/// What detection judges beyond the executed file.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectionConfig {
    /// Keep the embedded list of interpreters.
    pub interpreters_default: bool,
    /// Executable file name -> interpreter family (`shell`, `python`, ...), or `none` to drop
    /// a name of the embedded list.
    pub interpreters: BTreeMap<String, String>,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        DetectionConfig {
            interpreters_default: true,
            interpreters: BTreeMap::new(),
        }
    }
}

impl DetectionConfig {
    /// The interpreters whose script argument is judged like a shebang script. Families
    /// were checked when the file was read (unknown ones are skipped here).
    pub fn interpreters(&self) -> driftwatch_model::Interpreters {
        let mut list = if self.interpreters_default {
            driftwatch_model::Interpreters::default()
        } else {
            driftwatch_model::Interpreters::none()
        };
        for (name, family) in &self.interpreters {
            match driftwatch_model::InterpreterFamily::parse(family) {
                Some(f) => list.insert(name.clone(), f),
                None => {
                    list.remove(name);
                }
            }
        }
        list
    }
}

/// Per-container budgets: one noisy container cannot starve the others.
#[derive(Clone, Debug, PartialEq)]
pub struct LimitsConfig {
    /// Directories marked for file drift, over all containers.
    pub watched_dirs: usize,
    /// The share (percent) of `watched_dirs` one container may hold.
    pub watched_dirs_container_percent: u32,
    /// Alerts per second one container may raise (a token bucket; 0: unlimited).
    pub container_alerts_per_second: u32,
    /// Alerts one container may raise in a burst above the rate.
    pub container_alert_burst: u32,
    /// One alert per (rule, container, executable, file) per window; repeats are counted
    /// into the next one's `driftwatch.repeats` (zero: every alert is sent).
    pub dedup_window: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            watched_dirs: 200_000,
            watched_dirs_container_percent: 25,
            container_alerts_per_second: 20,
            container_alert_burst: 200,
            dedup_window: Duration::ZERO,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct NetworkConfig {
    pub baseline_file: PathBuf,
    pub learning_window: Duration,
    /// Learn behaviour that raised a drift alert during the learning window (the old
    /// behaviour: an attack then becomes the baseline).
    pub learn_alerted: bool,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            baseline_file: PathBuf::from("/var/lib/driftwatch/baselines.json"),
            learning_window: Duration::from_secs(300),
            learn_alerted: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ResponseConfig {
    pub playbook: Option<PathBuf>,
    pub actions_log: PathBuf,
    /// Pod actions (evict, label) through this kubeconfig's current context.
    pub kubeconfig: Option<PathBuf>,
    /// Pod actions through the pod's service account (the agent runs as a DaemonSet).
    pub in_cluster: bool,
}

impl Default for ResponseConfig {
    fn default() -> Self {
        ResponseConfig {
            playbook: None,
            actions_log: PathBuf::from("/var/lib/driftwatch/actions.jsonl"),
            kubeconfig: None,
            in_cluster: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct VerifyConfig {
    /// Approved image digests (the formats of `driftwatch verify --approved`).
    pub approved: Option<PathBuf>,
    /// Alert on containers started from a mutable tag.
    pub allow_mutable: bool,
    /// Check image layers on disk against their digests.
    pub layers: bool,
    pub layer_check_interval: Duration,
    /// Docker's data root, where the image layers are.
    pub docker_root: PathBuf,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig {
            approved: None,
            allow_mutable: false,
            layers: true,
            layer_check_interval: Duration::from_secs(6 * 3600),
            docker_root: PathBuf::from("/var/lib/docker"),
        }
    }
}

/// Tamper protection: the agent's own process and files against the containers it watches.
#[derive(Clone, Debug, PartialEq)]
pub struct TamperConfig {
    /// Signals from containers ignored, ptrace hardening, the file guard.
    pub enabled: bool,
    /// Paths containers may not open besides the agent's own (its binary and the
    /// directories of its configuration, store, baselines, actions log and JSON alerts).
    pub protect: Vec<PathBuf>,
}

impl Default for TamperConfig {
    fn default() -> Self {
        TamperConfig {
            enabled: true,
            protect: Vec::new(),
        }
    }
}

/// The embedded database of alerts, actions and baselines.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreConfig {
    pub enabled: bool,
    /// SQLite database file.
    pub path: PathBuf,
    /// Alerts older than this are deleted.
    pub max_age: Duration,
    /// The database is kept under this many bytes (oldest alerts deleted first).
    pub max_bytes: u64,
    /// Alerts waiting to be written; beyond it they are dropped and counted (detection never
    /// waits for the disk).
    pub queue_size: usize,
    /// When the database is over `max_bytes`, the oldest alerts of containers holding more
    /// than this share (percent) of the stored alerts are deleted first.
    pub container_percent: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            enabled: true,
            path: PathBuf::from("/var/lib/driftwatch/driftwatch.db"),
            max_age: Duration::from_secs(30 * 86400),
            max_bytes: 512 * 1024 * 1024,
            queue_size: 65536,
            container_percent: 25,
        }
    }
}

/// Where alerts go. Each output has its own bounded queue and thread.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutputsConfig {
    /// One human line per alert on stdout (`TIME: Priority output`), as Falco prints them.
    pub stdout: StdoutOutput,
    /// Falco JSON alerts, one per line, in a rotated file.
    pub json_file: JsonFileOutput,
    /// RFC 5424 messages to a local socket or a remote collector.
    pub syslog: SyslogOutput,
    /// Any number of HTTP receivers (Falcosidekick, Falco Talon, a SIEM); each entry is an
    /// enabled output.
    pub http: Vec<HttpOutput>,
    /// Defender-for-Containers-style documents, one per line, in a file.
    pub defender: DefenderOutput,
}

/// Whether the stdout line's priority is coloured (ANSI).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ColorSetting {
    /// Colour when stdout is a terminal.
    #[default]
    Auto,
    /// Always colour (e.g. for a log viewer that renders ANSI).
    Always,
    /// Never colour.
    Never,
}

/// What one alert's stdout line is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StdoutFormat {
    /// Falco's human line: `TIME: Priority output`.
    #[default]
    Text,
    /// Falco's JSON alert, one object a line (Falco's `json_output`): what `kubectl logs` and
    /// log shippers (Fluent Bit, Vector) parse.
    Json,
}

/// Alerts on stdout, one line each, control characters escaped.
#[derive(Clone, Debug, PartialEq)]
pub struct StdoutOutput {
    /// Print alerts on stdout.
    pub enabled: bool,
    /// `text` (the human line) or `json` (Falco JSON lines).
    pub format: StdoutFormat,
    /// Colour the priority: `auto` (when stdout is a terminal), `always`, `never`.
    pub color: ColorSetting,
    /// Alerts waiting to be written; beyond it new alerts are dropped (and counted).
    pub queue_size: usize,
}

impl Default for StdoutOutput {
    fn default() -> Self {
        StdoutOutput {
            enabled: true,
            format: StdoutFormat::Text,
            color: ColorSetting::Auto,
            queue_size: 4096,
        }
    }
}

/// Falco JSON, one object per line.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonFileOutput {
    /// Write the file.
    pub enabled: bool,
    /// The file (mode 0600; its directory is created). Reopened when logrotate moves it.
    pub path: PathBuf,
    /// Rotate when the file would exceed this (0: never).
    pub max_bytes: u64,
    /// Rotated files kept (`alerts.json.1` .. `.N`).
    pub max_files: u32,
    /// Alerts waiting to be written; beyond it new alerts are dropped (and counted).
    pub queue_size: usize,
}

impl Default for JsonFileOutput {
    fn default() -> Self {
        JsonFileOutput {
            enabled: false,
            path: PathBuf::from("/var/log/driftwatch/alerts.json"),
            max_bytes: 100 * 1024 * 1024,
            max_files: 5,
            queue_size: 65536,
        }
    }
}

/// How syslog messages travel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyslogTransport {
    /// A local datagram socket (`/dev/log`).
    #[default]
    Unix,
    /// One datagram per message.
    Udp,
    /// RFC 6587 octet counting.
    Tcp,
}

/// RFC 5424 messages.
#[derive(Clone, Debug, PartialEq)]
pub struct SyslogOutput {
    /// Send alerts to syslog.
    pub enabled: bool,
    /// `unix`, `udp` or `tcp`.
    pub transport: SyslogTransport,
    /// A socket path for `unix`, `host:port` for `udp`/`tcp`.
    pub address: String,
    /// Facility name (`daemon`, `local0` .. `local7`, ...).
    pub facility: String,
    /// The APP-NAME of each message.
    pub app_name: String,
    /// Alerts waiting to be sent; beyond it new alerts are dropped (and counted).
    pub queue_size: usize,
}

impl Default for SyslogOutput {
    fn default() -> Self {
        SyslogOutput {
            enabled: false,
            transport: SyslogTransport::Unix,
            address: "/dev/log".into(),
            facility: "daemon".into(),
            app_name: "driftwatch".into(),
            queue_size: 4096,
        }
    }
}

/// What an HTTP output posts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HttpFormat {
    /// Falco's JSON alert, as Falcosidekick and Falco Talon read it.
    #[default]
    Falco,
    /// The Defender-style document (see [`DefenderOutput`]).
    Defender,
}

/// One HTTP receiver: each alert is POSTed as `application/json`, retried with exponential
/// backoff on connection errors, 5xx and 429 (honouring `Retry-After`); other 4xx are not
/// retried.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpOutput {
    /// `http://host:port/path` or `https://...`.
    pub url: String,
    /// `falco` (Falco's JSON alert) or `defender`.
    pub format: HttpFormat,
    /// Extra request headers (e.g. `Authorization`).
    pub headers: BTreeMap<String, String>,
    /// Whole-request timeout (connect, send, answer).
    pub timeout: Duration,
    /// Attempts after the first, with exponential backoff.
    pub retries: u32,
    /// Alerts waiting to be posted; beyond it new alerts are dropped (and counted).
    pub queue_size: usize,
    /// For `https://`: a PEM file of the CA certificates that sign the receiver's
    /// certificate, trusted instead of the public (Mozilla) roots. `None`: the public roots.
    pub ca_file: Option<PathBuf>,
}

impl Default for HttpOutput {
    fn default() -> Self {
        HttpOutput {
            url: String::new(),
            format: HttpFormat::Falco,
            headers: BTreeMap::new(),
            timeout: Duration::from_secs(5),
            retries: 3,
            queue_size: 8192,
            ca_file: None,
        }
    }
}

/// A Microsoft-Defender-style document per alert (`alertType`, `severity`, `description`,
/// `remediationSteps`, ...), JSON lines, for users migrating from Defender for Containers.
#[derive(Clone, Debug, PartialEq)]
pub struct DefenderOutput {
    /// Write the file.
    pub enabled: bool,
    /// The file (mode 0600; its directory is created). Reopened when logrotate moves it.
    pub path: PathBuf,
    /// Alerts waiting to be written; beyond it new alerts are dropped (and counted).
    pub queue_size: usize,
}

impl Default for DefenderOutput {
    fn default() -> Self {
        DefenderOutput {
            enabled: false,
            path: PathBuf::from("/var/log/driftwatch/defender.json"),
            queue_size: 8192,
        }
    }
}

/// The HTTP API, Prometheus metrics, health check and web UI.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiConfig {
    pub enabled: bool,
    /// `127.0.0.1:7878` by default; any other address requires a token.
    pub listen: String,
    /// A file holding the bearer token (first line). Required when `listen` is not loopback.
    /// Unset: `/var/lib/driftwatch/api.token`, created with a random token on first start.
    pub token_file: Option<PathBuf>,
    /// Reads (`/api` GETs, `/metrics`) need the token on loopback too. State-changing requests
    /// always do. When not set in the file: true when `token_file` is.
    pub token_for_reads: bool,
    /// Serve the web UI at `/`.
    pub ui: bool,
    /// A second listener that serves `/metrics` and `/healthz` only, without a token: for
    /// Prometheus on the pod network while the API stays on loopback. Empty: no such listener.
    pub metrics_listen: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            enabled: true,
            listen: "127.0.0.1:7878".into(),
            token_file: None,
            token_for_reads: false,
            ui: true,
            metrics_listen: String::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LoggingConfig {
    /// `error`, `warn`, `info`, `debug`, `trace`, or a tracing filter; `DRIFTWATCH_LOG` wins.
    pub level: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "info".into(),
        }
    }
}
