//! THE key table: every key of the file, its type, where it lives in [`Config`], whether
//! SIGHUP reloads it, and what it means. Parsing, `config show`, the reference
//! (`docs/config.md`) and the commented example (`docs/config.example.yaml`) are all driven by
//! it, so they cannot disagree. Adding a key: a field in `schema.rs` (with its default) and one
//! `key!` line here.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::schema::*;

/// Whether a running agent applies a changed key on SIGHUP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reload {
    /// Applied on SIGHUP.
    Live,
    /// Read at start; a change is logged as "takes effect after restart".
    Restart,
}

impl Reload {
    pub fn as_str(self) -> &'static str {
        match self {
            Reload::Live => "SIGHUP",
            Reload::Restart => "restart",
        }
    }
}

/// A closed set of names (`detect`/`prevent`, ...).
pub trait Choice: Sized + Copy + 'static {
    const NAMES: &'static [&'static str];
    fn name(self) -> &'static str;
    fn from_name(s: &str) -> Option<Self>;
}

macro_rules! choice {
    ($ty:ty { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl Choice for $ty {
            const NAMES: &'static [&'static str] = &[$($name),+];
            fn name(self) -> &'static str {
                match self { $(<$ty>::$variant => $name),+ }
            }
            fn from_name(s: &str) -> Option<Self> {
                match s { $($name => Some(<$ty>::$variant),)+ _ => None }
            }
        }
    };
}

choice!(EnforcementModeSetting { Detect => "detect", Prevent => "prevent" });
choice!(ColorSetting { Auto => "auto", Always => "always", Never => "never" });
choice!(SyslogTransport { Unix => "unix", Udp => "udp", Tcp => "tcp" });
choice!(HttpFormat { Falco => "falco", Defender => "defender" });
choice!(StdoutFormat { Text => "text", Json => "json" });

type Get<T, V> = fn(&T) -> &V;
type Set<T, V> = fn(&mut T) -> &mut V;

/// How a key's value is typed and reached in `T` (the [`Config`], or one item of a list).
pub enum Access<T: 'static> {
    Bool(Get<T, bool>, Set<T, bool>),
    U32(Get<T, u32>, Set<T, u32>),
    Count(Get<T, usize>, Set<T, usize>),
    /// Bytes; the file may say `512KiB`, `100MiB`, `1GiB`.
    Size(Get<T, u64>, Set<T, u64>),
    Duration(Get<T, Duration>, Set<T, Duration>),
    Str(Get<T, String>, Set<T, String>),
    Path(Get<T, PathBuf>, Set<T, PathBuf>),
    OptPath(Get<T, Option<PathBuf>>, Set<T, Option<PathBuf>>),
    StrList(Get<T, Vec<String>>, Set<T, Vec<String>>),
    PathList(Get<T, Vec<PathBuf>>, Set<T, Vec<PathBuf>>),
    StrMap(
        Get<T, BTreeMap<String, String>>,
        Set<T, BTreeMap<String, String>>,
    ),
    Choice {
        get: fn(&T) -> &'static str,
        set: fn(&mut T, &str) -> bool,
        names: &'static [&'static str],
    },
    /// `outputs.http`: a list of receivers, each a mapping of [`HTTP_KEYS`].
    HttpList(Get<T, Vec<HttpOutput>>, Set<T, Vec<HttpOutput>>),
    /// `rules.append_output`: Falco's `append_output` entries, in Falco's schema.
    AppendOutputList(
        Get<T, Vec<driftwatch_rules::AppendOutput>>,
        Set<T, Vec<driftwatch_rules::AppendOutput>>,
    ),
}

pub struct Key<T: 'static> {
    /// Dotted path in the file (relative to the list item for item keys).
    pub path: &'static str,
    pub access: Access<T>,
    pub reload: Reload,
    pub doc: &'static str,
}

impl<T> Access<T> {
    /// The type as the reference names it.
    pub fn type_name(&self) -> String {
        match self {
            Access::Bool(..) => "boolean".into(),
            Access::U32(..) | Access::Count(..) => "integer".into(),
            Access::Size(..) => "size".into(),
            Access::Duration(..) => "duration".into(),
            Access::Str(..) => "string".into(),
            Access::Path(..) => "path".into(),
            Access::OptPath(..) => "path or null".into(),
            Access::StrList(..) => "list of strings".into(),
            Access::PathList(..) => "list of paths".into(),
            Access::StrMap(..) => "mapping of strings".into(),
            Access::Choice { names, .. } => names.join(" \\| "),
            Access::HttpList(..) => "list of receivers".into(),
            Access::AppendOutputList(..) => "list of Falco append_output entries".into(),
        }
    }
}

macro_rules! key {
    ($path:literal, choice($ty:ty), $($f:ident).+, $reload:ident, $doc:literal) => {
        Key {
            path: $path,
            access: Access::Choice {
                get: |c| Choice::name(c.$($f).+),
                set: |c, s| match Choice::from_name(s) {
                    Some(v) => {
                        c.$($f).+ = v;
                        true
                    }
                    None => false,
                },
                names: <$ty as Choice>::NAMES,
            },
            reload: Reload::$reload,
            doc: $doc,
        }
    };
    ($path:literal, $kind:ident, $($f:ident).+, $reload:ident, $doc:literal) => {
        Key {
            path: $path,
            access: Access::$kind(|c| &c.$($f).+, |c| &mut c.$($f).+),
            reload: Reload::$reload,
            doc: $doc,
        }
    };
}

/// Sections in file order, with what they are for (nested ones too).
pub static SECTIONS: &[(&str, &str)] = &[
    (
        "engines",
        "Which container engines the agent asks for names, images and labels.",
    ),
    (
        "rules",
        "Rule files (Falco's rule YAML), loaded after the embedded default rules.",
    ),
    ("sensor", "The kernel side."),
    (
        "enforcement",
        "Prevention: stop drifted code before its first instruction.",
    ),
    (
        "detection",
        "What detection judges beyond the executed file.",
    ),
    (
        "detection.interpreters",
        "Interpreters whose script argument is judged like a shebang script (`sh /tmp/s.sh`, `python3 /tmp/e.py`, `java -jar x.jar`): `drift.subject=script`, the rule \"Run runtime-written script in container\", held and judged in prevent mode (docs/detection.md).",
    ),
    (
        "limits",
        "Per-container budgets, so that one noisy container cannot starve the others; a container over a budget gets a \"Driftwatch budget exceeded\" alert naming it.",
    ),
    (
        "network",
        "Network drift: per-image baselines of listeners and outbound destinations.",
    ),
    ("response", "Response playbooks run on alerts."),
    (
        "verify",
        "Image drift: approved digests and image layers on disk.",
    ),
    (
        "tamper",
        "Tamper protection: the agent's process and files against the containers it watches.",
    ),
    (
        "store",
        "The embedded database of alerts, actions and baselines.",
    ),
    (
        "outputs",
        "Where alerts go. Each output has its own bounded queue and thread.",
    ),
    ("outputs.stdout", "One line per alert on standard output."),
    (
        "outputs.json_file",
        "Falco JSON, one object per line, rotated by size.",
    ),
    ("outputs.syslog", "RFC 5424 syslog messages."),
    (
        "outputs.defender",
        "A Microsoft-Defender-style document per alert (JSON lines), for users migrating from Defender for Containers.",
    ),
    (
        "api",
        "The HTTP API, Prometheus metrics, health check and web UI.",
    ),
    ("logging", "The agent's own log (standard error)."),
];

/// Every key of the file, in file order.
pub static KEYS: &[Key<Config>] = &[
    key!(
        "engines.disabled",
        Bool,
        engines.disabled,
        Restart,
        "Ask no container engine at all (alerts then name containers by id only)."
    ),
    key!(
        "engines.docker_socket",
        Path,
        engines.docker_socket,
        Restart,
        "Docker's (or podman's) API socket."
    ),
    key!(
        "engines.containerd_socket",
        OptPath,
        engines.containerd_socket,
        Restart,
        "containerd's API socket; null: /run/containerd/containerd.sock, else dockerd's own /run/docker/containerd/containerd.sock, when present."
    ),
    key!(
        "engines.containerd_namespaces",
        StrList,
        engines.containerd_namespaces,
        Restart,
        "containerd namespaces to ask (`moby` is left to Docker when both are asked)."
    ),
    key!(
        "engines.podman_socket",
        OptPath,
        engines.podman_socket,
        Restart,
        "podman's Docker-compatible API socket (`podman system service`), asked next to Docker and containerd."
    ),
    key!(
        "engines.crio_socket",
        OptPath,
        engines.crio_socket,
        Restart,
        "CRI-O's CRI socket; null: /var/run/crio/crio.sock (or /run/crio/crio.sock), when present."
    ),
    key!(
        "rules.directory",
        Path,
        rules.directory,
        Live,
        "Every `*.yaml`/`*.yml` file here is loaded, in name order (a missing directory is no rules)."
    ),
    key!(
        "rules.files",
        PathList,
        rules.files,
        Live,
        "Further rule files, loaded after the directory's."
    ),
    key!(
        "rules.append_output",
        AppendOutputList,
        rules.append_output,
        Live,
        "Falco's `append_output` entries (falco.yaml), in Falco's schema: each `match`es rules by `source`, `tags` (all of them) and `rule` name, and appends `extra_output` to their output, `extra_fields` (`- name: \"FORMAT\"` or `- field.name`) to their `output_fields` only, and with `suggested_output: true` the fields Falco 0.41+'s container plugin suggests (`container_id=%container.id container_name=%container.name container_image_repository=... container_image_tag=... k8s_pod_name=... k8s_ns_name=...`), except to rules that print the container's id and name already (the default rules). The default is Falco's. `[]` appends nothing."
    ),
    key!(
        "sensor.ring_mib",
        U32,
        sensor.ring_mib,
        Restart,
        "Ring buffer between the kernel and the agent, in MiB (a power of two). Larger absorbs longer bursts of execs."
    ),
    key!(
        "sensor.drain_interval",
        Duration,
        sensor.drain_interval,
        Restart,
        "While exec records flow, the agent drains the exec ring buffer this often (`500us` to `100ms`) and the kernel writes them without waking it (each wakeup is an irq_work interrupt in the process that execs); idle, the agent sleeps until the first record wakes it. Adds at most this much alert latency; records something waits for (a held or killed process) wake it at once. The network sensor drains every 1ms. `0`: a wakeup per record."
    ),
    key!(
        "enforcement.mode",
        choice(EnforcementModeSetting),
        enforcement.mode,
        Live,
        "`detect` (alert only) or `prevent` (drifted code is stopped before it runs). The mode of every container the policy does not scope; on SIGHUP, containers already running are placed in their new mode."
    ),
    key!(
        "enforcement.policy",
        OptPath,
        enforcement.policy,
        Live,
        "Enforcement policy file: a mode per scope (image, container name, label, Kubernetes namespace) and an allowlist of permitted drift. `enforcement.mode`, when this file sets it, replaces the policy's `default`."
    ),
    key!(
        "enforcement.answer_deadline",
        Duration,
        enforcement.answer_deadline,
        Restart,
        "Every exec in a prevent-mode container and every open of a protected path waits for the agent's answer at most this long; then it gets the policy's default (allow; deny with `on_agent_death: hold`), counted and alerted."
    ),
    key!(
        "detection.interpreters.default",
        Bool,
        detection.interpreters_default,
        Restart,
        "Keep the embedded list: sh, bash, dash, ash, ksh, mksh, zsh (and busybox run as one of them), python, python2, python3, pypy, pypy3, perl, ruby, node, nodejs, bun, php, lua, luajit, Rscript, R, java, tclsh, wish; versioned names (`python3.12`, `perl5.36.0`) match their stem. `false`: only the names below."
    ),
    key!(
        "detection.interpreters.names",
        StrMap,
        detection.interpreters,
        Restart,
        "Executable file name to family (`shell`, `python`, `perl`, `ruby`, `node`, `php`, `lua`, `r`, `java`, `tcl`: which option grammar finds the script in its arguments), or `none` to drop a name of the embedded list. Example: `{python3-custom: python, zsh: none}`."
    ),
    key!(
        "limits.watched_dirs",
        Count,
        limits.watched_dirs,
        Restart,
        "Directories marked for file drift, over all containers."
    ),
    key!(
        "limits.watched_dirs_container_percent",
        U32,
        limits.watched_dirs_container_percent,
        Restart,
        "The share of `limits.watched_dirs` (percent, 1-100) one container may hold; directories beyond it are not watched."
    ),
    key!(
        "limits.container_alerts_per_second",
        U32,
        limits.container_alerts_per_second,
        Restart,
        "Alerts per second one container may send to the outputs and the store (0: unlimited); the rest are dropped and counted."
    ),
    key!(
        "limits.container_alert_burst",
        U32,
        limits.container_alert_burst,
        Restart,
        "Alerts one container may send at once above its rate."
    ),
    key!(
        "limits.dedup_window",
        Duration,
        limits.dedup_window,
        Live,
        "Send one alert per (rule, container, executable, file) per window; repeats within it are counted, and the next window's first alert carries the number in `driftwatch.repeats` (0: every alert is sent)."
    ),
    key!(
        "network.baseline_file",
        Path,
        network.baseline_file,
        Restart,
        "A JSON file for the per-image network baselines (see `driftwatch baseline`). Unset, with the store on, they live in the store's database (a file left from before is taken in once); set, or with the store off, in this file."
    ),
    key!(
        "network.learning_window",
        Duration,
        network.learning_window,
        Live,
        "How long each image learns its outbound destinations and extra listeners after its first container is seen (on SIGHUP: for images first seen afterwards)."
    ),
    key!(
        "network.learn_alerted",
        Bool,
        network.learn_alerted,
        Live,
        "Learn a listener or destination that raised a drift alert during the learning window (the behaviour of earlier versions; it lets an attack in the window become the baseline). Off, it stays pending until `driftwatch baseline approve`, and alerts again."
    ),
    key!(
        "response.playbook",
        OptPath,
        response.playbook,
        Live,
        "Respond to alerts with the playbooks in this file (see `driftwatch playbook validate`)."
    ),
    key!(
        "response.actions_log",
        Path,
        response.actions_log,
        Restart,
        "Where every action taken is recorded (JSON lines, mode 0600; `driftwatch actions`)."
    ),
    key!(
        "response.kubeconfig",
        OptPath,
        response.kubeconfig,
        Restart,
        "Pod actions (evict, label) and the API's pod lookups through this kubeconfig's current context."
    ),
    key!(
        "response.in_cluster",
        Bool,
        response.in_cluster,
        Restart,
        "Pod actions through the pod's service account (the agent runs as a DaemonSet); not with `response.kubeconfig`."
    ),
    key!(
        "verify.approved",
        OptPath,
        verify.approved,
        Live,
        "Approved image digests (the formats of `driftwatch verify --approved`): alert when a container starts from an image not in it."
    ),
    key!(
        "verify.allow_mutable",
        Bool,
        verify.allow_mutable,
        Live,
        "Do not alert on containers started from a mutable tag (with an approved list)."
    ),
    key!(
        "verify.layers",
        Bool,
        verify.layers,
        Restart,
        "Check image layers on disk against their digests (each new image once, then on the schedule)."
    ),
    key!(
        "verify.layer_check_interval",
        Duration,
        verify.layer_check_interval,
        Restart,
        "How often the layers of the images seen are checked again."
    ),
    key!(
        "verify.docker_root",
        Path,
        verify.docker_root,
        Restart,
        "Docker's data root, where the image layers are."
    ),
    key!(
        "tamper.enabled",
        Bool,
        tamper.enabled,
        Restart,
        "Tamper protection: signals from containers are ignored, the agent cannot be traced, and containers may not open its files."
    ),
    key!(
        "tamper.protect",
        PathList,
        tamper.protect,
        Restart,
        "Further files or directories containers may not open (the agent's binary and the directories of its configuration, store, baselines, actions log and JSON alerts are protected already)."
    ),
    key!(
        "store.enabled",
        Bool,
        store.enabled,
        Restart,
        "Keep alerts, actions and baselines in the embedded database."
    ),
    key!(
        "store.path",
        Path,
        store.path,
        Restart,
        "The SQLite database file."
    ),
    key!(
        "store.max_age",
        Duration,
        store.max_age,
        Restart,
        "Alerts older than this are deleted."
    ),
    key!(
        "store.max_bytes",
        Size,
        store.max_bytes,
        Restart,
        "The database is kept under this size (oldest alerts deleted first)."
    ),
    key!(
        "store.queue_size",
        Count,
        store.queue_size,
        Restart,
        "Alerts waiting to be written; beyond it they are dropped and counted (detection never waits for the disk)."
    ),
    key!(
        "store.container_percent",
        U32,
        store.container_percent,
        Restart,
        "When the database is over `max_bytes`, the oldest alerts of containers holding more than this share (percent, 1-100) of the stored alerts are deleted first, so one container's alert storm does not push out everyone else's."
    ),
    key!(
        "outputs.stdout.enabled",
        Bool,
        outputs.stdout.enabled,
        Live,
        "Print alerts on standard output."
    ),
    key!(
        "outputs.stdout.format",
        choice(StdoutFormat),
        outputs.stdout.format,
        Live,
        "`text`: Falco's line `TIME: Priority output`; `json`: Falco's JSON alert, one object a line (Falco's `json_output`), for `kubectl logs` and log shippers. `color` applies to `text` only."
    ),
    key!(
        "outputs.stdout.color",
        choice(ColorSetting),
        outputs.stdout.color,
        Live,
        "`auto`: colour when standard output is a terminal."
    ),
    key!(
        "outputs.stdout.queue_size",
        Count,
        outputs.stdout.queue_size,
        Live,
        "Alerts waiting for this output; beyond it they are dropped and counted."
    ),
    key!(
        "outputs.json_file.enabled",
        Bool,
        outputs.json_file.enabled,
        Live,
        "Append alerts to `path`."
    ),
    key!(
        "outputs.json_file.path",
        Path,
        outputs.json_file.path,
        Live,
        "The alerts file."
    ),
    key!(
        "outputs.json_file.max_bytes",
        Size,
        outputs.json_file.max_bytes,
        Live,
        "Rotate when the file would exceed this (0: never)."
    ),
    key!(
        "outputs.json_file.max_files",
        U32,
        outputs.json_file.max_files,
        Live,
        "Rotated files kept (`alerts.json.1` .. `.N`)."
    ),
    key!(
        "outputs.json_file.queue_size",
        Count,
        outputs.json_file.queue_size,
        Live,
        "Alerts waiting for this output; beyond it they are dropped and counted."
    ),
    key!(
        "outputs.syslog.enabled",
        Bool,
        outputs.syslog.enabled,
        Live,
        "Send alerts to syslog."
    ),
    key!(
        "outputs.syslog.transport",
        choice(SyslogTransport),
        outputs.syslog.transport,
        Live,
        "`unix` (a local datagram socket), `udp`, or `tcp` (RFC 6587 octet counting)."
    ),
    key!(
        "outputs.syslog.address",
        Str,
        outputs.syslog.address,
        Live,
        "A socket path for `unix`, `host:port` for `udp`/`tcp`."
    ),
    key!(
        "outputs.syslog.facility",
        Str,
        outputs.syslog.facility,
        Live,
        "Facility name: `kern`, `user`, `daemon`, `auth`, `local0` .. `local7`, ..."
    ),
    key!(
        "outputs.syslog.app_name",
        Str,
        outputs.syslog.app_name,
        Live,
        "APP-NAME of the messages."
    ),
    key!(
        "outputs.syslog.queue_size",
        Count,
        outputs.syslog.queue_size,
        Live,
        "Alerts waiting for this output; beyond it they are dropped and counted."
    ),
    key!(
        "outputs.http",
        HttpList,
        outputs.http,
        Live,
        "Any number of HTTP receivers (Falcosidekick, Falco Talon, a SIEM); each item takes the `outputs.http[].*` keys."
    ),
    key!(
        "outputs.defender.enabled",
        Bool,
        outputs.defender.enabled,
        Live,
        "Write Defender-style alert documents to `path`."
    ),
    key!(
        "outputs.defender.path",
        Path,
        outputs.defender.path,
        Live,
        "The Defender-style alerts file."
    ),
    key!(
        "outputs.defender.queue_size",
        Count,
        outputs.defender.queue_size,
        Live,
        "Alerts waiting for this output; beyond it they are dropped and counted."
    ),
    key!(
        "api.enabled",
        Bool,
        api.enabled,
        Restart,
        "Serve the HTTP API, `/metrics` and `/healthz`."
    ),
    key!(
        "api.listen",
        Str,
        api.listen,
        Restart,
        "Address and port to listen on. Any address other than loopback requires `token_file`."
    ),
    key!(
        "api.token_file",
        OptPath,
        api.token_file,
        Restart,
        "A file holding the bearer token (first line), mode 0600 (refused when group or others may read it). Unset: `/var/lib/driftwatch/api.token`, created with a random token on first start. Required when `listen` is not loopback; when set, reads need the token too."
    ),
    key!(
        "api.token_for_reads",
        Bool,
        api.token_for_reads,
        Restart,
        "Require the token for reads (`/api` GETs, `/metrics`) on loopback too (off loopback they always do). Unset: true when `token_file` is set (as before every agent had a token), false otherwise. State-changing requests (release, isolate, capture) always need the token."
    ),
    key!("api.ui", Bool, api.ui, Restart, "Serve the web UI at `/`."),
    key!(
        "api.metrics_listen",
        Str,
        api.metrics_listen,
        Restart,
        "A second address and port serving only `/metrics` and `/healthz`, without a token (every other path is 404 there): for Prometheus on the pod network while the API and its state-changing requests stay on `listen`. Empty: no such listener."
    ),
    key!(
        "logging.level",
        Str,
        logging.level,
        Live,
        "`error`, `warn`, `info`, `debug`, `trace`, or a tracing filter (`info,driftwatch_agent=debug`). The DRIFTWATCH_LOG environment variable wins."
    ),
];

/// The keys of one `outputs.http` item.
pub static HTTP_KEYS: &[Key<HttpOutput>] = &[
    key!(
        "url",
        Str,
        url,
        Live,
        "`http://host:port/path` or `https://...` (required)."
    ),
    key!(
        "format",
        choice(HttpFormat),
        format,
        Live,
        "`falco`: Falco's JSON alert (Falcosidekick, Falco Talon); `defender`: the Defender-style document."
    ),
    key!(
        "headers",
        StrMap,
        headers,
        Live,
        "Extra request headers (e.g. `Authorization`)."
    ),
    key!("timeout", Duration, timeout, Live, "Per request."),
    key!(
        "retries",
        U32,
        retries,
        Live,
        "Attempts after the first, with exponential backoff."
    ),
    key!(
        "queue_size",
        Count,
        queue_size,
        Live,
        "Alerts waiting for this receiver; beyond it they are dropped and counted."
    ),
    key!(
        "ca_file",
        OptPath,
        ca_file,
        Live,
        "PEM certificates to trust for `https://` instead of the built-in roots (a private CA)."
    ),
];

/// The key at `path` (`sensor.ring_mib`).
pub fn key(path: &str) -> Option<&'static Key<Config>> {
    KEYS.iter().find(|k| k.path == path)
}
