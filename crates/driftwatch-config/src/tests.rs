//! The loader end to end: every error kind at its exact `FILE:LINE:COL`, all of them in one
//! pass, `config show` parsing back to the same configuration, and the generated reference
//! and example kept current.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::*;

fn errors(text: &str) -> Vec<String> {
    parse_str(text, "c.yaml", None)
        .expect_err("the text is invalid")
        .iter()
        .map(|d| d.to_string())
        .collect()
}

#[test]
fn no_text_is_the_embedded_defaults() {
    for text in ["", "# nothing\n", "\n\n"] {
        let l = parse_str(text, "c.yaml", None).unwrap();
        assert_eq!(l.config, Config::default());
        assert!(l.set.is_empty());
    }
    // Sections written with nothing under them are their defaults too.
    let l = parse_str("sensor:\noutputs:\n  stdout:\n", "c.yaml", None).unwrap();
    assert_eq!(l.config, Config::default());
}

#[test]
fn values_of_every_type_are_read_and_their_position_kept() {
    let text = "\
engines:
  disabled: true
  containerd_namespaces: [k8s.io]
  podman_socket: /run/podman/podman.sock
rules:
  files: [extra.yaml, /abs/r.yaml]
sensor:
  ring_mib: 64
enforcement:
  mode: prevent
network:
  learning_window: 90s
store:
  max_age: 30d
  max_bytes: 1GiB
outputs:
  json_file:
    max_bytes: 4096
  syslog:
    transport: udp
    address: 127.0.0.1:514
  http:
    - url: http://127.0.0.1:2801/
      headers: {Authorization: Bearer x}
      timeout: 250ms
    - url: https://siem.example/in
      format: defender
logging:
  level: debug
";
    let l = parse_str(text, "/etc/dw/c.yaml", Some(Path::new("/etc/dw"))).unwrap();
    let c = &l.config;
    assert!(c.engines.disabled);
    assert_eq!(c.engines.containerd_namespaces, ["k8s.io"]);
    assert_eq!(
        c.engines.podman_socket.as_deref(),
        Some(Path::new("/run/podman/podman.sock"))
    );
    assert_eq!(
        c.rules.files,
        [
            PathBuf::from("/etc/dw/extra.yaml"),
            PathBuf::from("/abs/r.yaml")
        ],
        "relative paths are the file's directory's"
    );
    assert_eq!(c.sensor.ring_mib, 64);
    assert_eq!(c.enforcement.mode, EnforcementModeSetting::Prevent);
    assert_eq!(c.network.learning_window, Duration::from_secs(90));
    assert_eq!(c.store.max_age, Duration::from_secs(30 * 86400));
    assert_eq!(c.store.max_bytes, 1 << 30);
    assert_eq!(c.outputs.json_file.max_bytes, 4096);
    assert_eq!(c.outputs.syslog.transport, SyslogTransport::Udp);
    assert_eq!(c.outputs.http.len(), 2);
    assert_eq!(c.outputs.http[0].headers["Authorization"], "Bearer x");
    assert_eq!(c.outputs.http[0].timeout, Duration::from_millis(250));
    assert_eq!(c.outputs.http[1].format, HttpFormat::Defender);
    assert_eq!(c.outputs.http[1].retries, 3, "unset item keys are defaults");
    assert_eq!(c.logging.level, "debug");
    assert_eq!(l.set["sensor.ring_mib"], Pos { line: 8, col: 13 });
    assert_eq!(l.set["outputs.http[1].format"], Pos { line: 27, col: 15 });
    assert!(!l.set.contains_key("api.listen"));
}

#[test]
fn every_error_is_reported_at_its_position() {
    let text = "\
sensr:
  ring_mib: 8
sensor:
  ring_mb: 8
network:
  learning_window: [5m]
verify:
  layers: yes
  layer_check_interval: 300
enforcement:
  mode: prevnt
store:
  max_bytes: 12 parsecs
  queue_size: 0
ring_mib: 4
outputs:
  stdout: true
  http:
    - url: ftp://x
      retry: 3
    - format: falco
";
    assert_eq!(
        errors(text),
        [
            r#"c.yaml:1:1: unknown key "sensr"; did you mean "sensor"?"#,
            r#"c.yaml:4:3: unknown key "ring_mb" in sensor; did you mean "ring_mib"?"#,
            "c.yaml:6:20: network.learning_window: expected a duration like 90s, 5m, 1h, 30d, found a list",
            r#"c.yaml:8:11: verify.layers: expected true or false, found the string "yes""#,
            "c.yaml:9:25: verify.layer_check_interval: expected a duration like 90s, 5m, 1h, 30d, found 300 (add a unit: 300s)",
            r#"c.yaml:11:9: enforcement.mode: expected one of detect, prevent, found the string "prevnt" (did you mean "prevent"?)"#,
            r#"c.yaml:13:14: store.max_bytes: "12 parsecs": the unit is one of B, KiB, MiB, GiB, TiB, K, M, G, T, KB, MB, GB, TB"#,
            "c.yaml:14:15: store.queue_size: must be at least 1",
            r#"c.yaml:15:1: unknown key "ring_mib"; did you mean "sensor.ring_mib"?"#,
            "c.yaml:17:11: outputs.stdout: expected a mapping (the keys of outputs.stdout), found true",
            r#"c.yaml:19:12: outputs.http[0].url: "ftp://x" is not an http:// or https:// URL"#,
            r#"c.yaml:20:7: unknown key "retry" in outputs.http[0]; did you mean "retries"?"#,
            "c.yaml:21:7: outputs.http[1]: url is required",
        ]
    );
}

#[test]
fn the_drain_interval_takes_microseconds_and_zero() {
    let read = |text: &str| {
        parse_str(text, "c.yaml", None)
            .unwrap()
            .config
            .sensor
            .drain_interval
    };
    assert_eq!(
        read("sensor:\n  drain_interval: 500us\n"),
        Duration::from_micros(500)
    );
    assert_eq!(read("sensor:\n  drain_interval: 0\n"), Duration::ZERO);
    assert_eq!(read("sensor: {}\n"), Duration::from_millis(1));
}

#[test]
fn invalid_values_are_refused() {
    assert_eq!(
        errors("sensor:\n  ring_mib: 12\n"),
        ["c.yaml:2:13: sensor.ring_mib: 12 is not a power of two from 1 to 1024 (1, 2, 4, 8, ...)"]
    );
    assert_eq!(
        errors("sensor:\n  ring_mib: -8\n"),
        ["c.yaml:2:13: sensor.ring_mib: expected a whole number, found -8"]
    );
    assert_eq!(
        errors("sensor:\n  drain_interval: 200ms\n"),
        [
            "c.yaml:2:19: sensor.drain_interval: 200ms is not 0 or from 500us to 100ms (alerts wait up to this long)"
        ]
    );
    assert_eq!(
        errors("api:\n  listen: localhost\n"),
        [
            r#"c.yaml:2:11: api.listen: "localhost" is not an address and port like 127.0.0.1:7878 or [::1]:7878"#
        ]
    );
    assert_eq!(
        errors("api:\n  listen: 0.0.0.0:7878\n"),
        [
            "c.yaml:2:11: api.listen: 0.0.0.0:7878 is reachable from other hosts: set api.token_file (a file holding the bearer token), or listen on 127.0.0.1"
        ]
    );
    // With a token, or the API off, any address is fine; IPv6 loopback needs none.
    for ok in [
        "api:\n  listen: 0.0.0.0:7878\n  token_file: /etc/driftwatch/token\n",
        "api:\n  enabled: false\n  listen: 0.0.0.0:7878\n",
        "api:\n  listen: '[::1]:7878'\n",
    ] {
        parse_str(ok, "c.yaml", None).unwrap_or_else(|e| panic!("{ok}: {e:?}"));
    }
    // The metrics-only listener needs no token anywhere: it serves nothing that changes state.
    let l = parse_str(
        "api:\n  metrics_listen: 0.0.0.0:9879\noutputs:\n  stdout:\n    format: json\n",
        "c.yaml",
        None,
    )
    .unwrap();
    assert_eq!(l.config.api.metrics_listen, "0.0.0.0:9879");
    assert_eq!(l.config.outputs.stdout.format, StdoutFormat::Json);
    assert_eq!(
        errors("api:\n  metrics_listen: metrics\n"),
        [
            r#"c.yaml:2:19: api.metrics_listen: "metrics" is not an address and port like 0.0.0.0:9879 or [::]:9879"#
        ]
    );
    assert_eq!(
        errors("api:\n  metrics_listen: 127.0.0.1:7878\n"),
        ["c.yaml:2:19: api.metrics_listen: 127.0.0.1:7878 is api.listen too: choose another port"]
    );
    assert_eq!(
        errors("outputs:\n  stdout:\n    format: jsonl\n"),
        [
            r#"c.yaml:3:13: outputs.stdout.format: expected one of text, json, found the string "jsonl" (did you mean "json"?)"#
        ]
    );
    assert_eq!(
        errors("limits:\n  watched_dirs_container_percent: 0\nstore:\n  container_percent: 101\n"),
        [
            "c.yaml:2:35: limits.watched_dirs_container_percent: 0 is not a percentage from 1 to 100",
            "c.yaml:4:22: store.container_percent: 101 is not a percentage from 1 to 100",
        ]
    );
    assert_eq!(
        errors("enforcement:\n  answer_deadline: 5m\n"),
        [
            "c.yaml:2:20: enforcement.answer_deadline: 300s is not from 10ms to 60s (every exec in a prevent-mode container may wait this long)"
        ]
    );
    assert_eq!(errors("logging:\n  level: loud=verbose=yes\n").len(), 1);
    assert_eq!(
        errors("outputs:\n  syslog:\n    transport: tcp\n    facility: deamon\n"),
        [
            r#"c.yaml:1:1: outputs.syslog.address: "/dev/log" is not host:port (needed for transport tcp)"#,
            r#"c.yaml:4:15: outputs.syslog.facility: "deamon" is not a syslog facility (did you mean "daemon"?)"#,
        ]
    );
    assert_eq!(
        errors(
            "detection:\n  interpreters:\n    names:\n      python3-custom: pyhton\n      /opt/x: shell\n"
        ),
        [
            r#"c.yaml:4:7: detection.interpreters.names: "/opt/x" is not a file name (the executable's name, without a directory)"#,
            r#"c.yaml:4:7: detection.interpreters.names: "python3-custom": "pyhton" is not an interpreter family (shell, python, perl, ruby, node, php, lua, r, java, tcl, or none) (did you mean "python"?)"#,
        ]
    );
    assert_eq!(
        errors("- sensor\n"),
        [
            "c.yaml:1:1: expected a mapping of sections (engines, rules, sensor, enforcement, detection, limits, network, response, verify, tamper, store, outputs, api, logging), found a list"
        ]
    );
    let e = errors("sensor:\n  ring_mib: [1\n");
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("c.yaml:") && e[0].contains("invalid YAML"),
        "{e:?}"
    );
    assert_eq!(
        errors("sensor:\n  ring_mib: 1\n  ring_mib: 2\n").len(),
        1,
        "duplicate keys are refused"
    );
}

#[test]
fn diagnostics_render_the_line_with_a_caret() {
    let text = "sensor:\n  ring_mib: 12\n";
    let d = &parse_str(text, "c.yaml", None).unwrap_err()[0];
    assert_eq!(
        d.render(),
        "c.yaml:2:13: error: sensor.ring_mib: 12 is not a power of two from 1 to 1024 (1, 2, 4, 8, ...)\n2 |   ring_mib: 12\n  |             ^"
    );
}

#[test]
fn show_parses_back_to_the_same_config() {
    let defaults = Loaded::defaults();
    let shown = show_yaml(&defaults);
    let back = parse_str(&shown, "shown.yaml", None).unwrap_or_else(|e| panic!("{shown}\n{e:?}"));
    assert_eq!(back.config, Config::default());
    assert_eq!(back.set.len(), KEYS.len(), "every key is written out");

    let text = "\
engines:
  containerd_socket: /run/x y/containerd.sock
  containerd_namespaces: ['a:b', '#c', 'yes', '1']
enforcement:
  mode: prevent
  policy: /etc/driftwatch/policy.yaml
outputs:
  syslog:
    app_name: 'drift watch'
  http:
    - url: http://127.0.0.1:2801/
      headers: {Authorization: 'Bearer a: b', X-Id: '7'}
    - url: https://h/
      timeout: 1500ms
store:
  max_bytes: 1000
  max_age: 90s
";
    let l = load_text(text);
    let shown = show_yaml(&l);
    assert!(
        shown.contains("  mode: prevent  # from /cfg/c.yaml:5\n"),
        "{shown}"
    );
    assert!(
        shown.contains("  ring_mib: 8\n"),
        "defaults unmarked: {shown}"
    );
    let back = parse_str(&shown, "shown.yaml", None).unwrap_or_else(|e| panic!("{shown}\n{e:?}"));
    assert_eq!(back.config, l.config, "{shown}");

    let j = show_json(&l);
    assert_eq!(j["config"]["enforcement"]["mode"], "prevent");
    assert_eq!(j["config"]["store"]["max_bytes"], 1000);
    assert_eq!(j["config"]["outputs"]["http"][1]["timeout"], "1500ms");
    assert_eq!(j["from_file"]["enforcement.mode"], "/cfg/c.yaml:5:9");
    assert_eq!(j["file"], "/cfg/c.yaml");
}

fn load_text(text: &str) -> Loaded {
    let mut l = parse_str(text, "/cfg/c.yaml", Some(Path::new("/cfg"))).unwrap();
    l.file = Some(PathBuf::from("/cfg/c.yaml"));
    l
}

#[test]
fn a_named_file_must_exist_and_is_read_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    match load(Some(&missing)) {
        Err(LoadError::Unreadable { path, error, .. }) => {
            assert_eq!(path, missing);
            assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    let p = dir.path().join("c.yaml");
    std::fs::write(&p, "sensor:\n  ring_mib: 3\nrules:\n  files: [mine.yaml]\n").unwrap();
    let e = load(Some(&p)).unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.contains(&format!("{}:2:13: error: sensor.ring_mib: 3", p.display())),
        "{shown}"
    );
    std::fs::write(&p, "rules:\n  files: [mine.yaml]\n").unwrap();
    let l = load(Some(&p)).unwrap();
    assert_eq!(l.file.as_deref(), Some(p.as_path()));
    assert_eq!(l.config.rules.files, [dir.path().join("mine.yaml")]);
}

#[test]
fn the_example_is_the_defaults_with_every_key_commented() {
    let text = example_yaml();
    let l = parse_str(&text, "example.yaml", None).unwrap();
    assert_eq!(l.config, Config::default());
    assert!(l.set.is_empty());
    for k in KEYS {
        let name = k.path.rsplit('.').next().unwrap();
        assert!(
            text.contains(&format!("# {name}:")),
            "{} is in the example",
            k.path
        );
    }
    // Uncommenting every key gives the defaults too, each set by the file.
    let uncommented: String = text
        .lines()
        .map(|l| {
            let t = l.trim_start();
            let indent = &l[..l.len() - t.len()];
            match t.strip_prefix("# ") {
                Some(rest)
                    if KEYS.iter().any(|k| {
                        rest.starts_with(&format!("{}: ", k.path.rsplit('.').next().unwrap()))
                    }) =>
                {
                    format!("{indent}{rest}\n")
                }
                _ => format!("{l}\n"),
            }
        })
        .collect();
    let l = parse_str(&uncommented, "example.yaml", None)
        .unwrap_or_else(|e| panic!("{uncommented}\n{e:?}"));
    assert_eq!(l.config, Config::default());
}

#[test]
fn every_key_reaches_its_own_field() {
    // A key wired to the wrong field would read back into another: set each key's
    // non-default value alone and compare the shown text.
    for k in KEYS {
        let defaults = show_yaml(&Loaded::defaults());
        let mut c = Config::default();
        let changed = match &k.access {
            Access::Bool(get, set) => {
                let v = !*get(&c);
                *set(&mut c) = v;
                true
            }
            Access::U32(_, set) => {
                *set(&mut c) = 512;
                true
            }
            Access::Count(_, set) => {
                *set(&mut c) = 77;
                true
            }
            Access::Duration(_, set) => {
                *set(&mut c) = Duration::from_secs(7);
                true
            }
            Access::Str(_, set) => {
                *set(&mut c) = "zz".into();
                true
            }
            _ => false,
        };
        if !changed {
            continue;
        }
        let l = Loaded {
            config: c,
            ..Loaded::defaults()
        };
        let shown = show_yaml(&l);
        let diff: Vec<_> = shown
            .lines()
            .zip(defaults.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(diff.len(), 1, "{}: {diff:?}", k.path);
        let name = k.path.rsplit('.').next().unwrap();
        assert!(
            diff[0].0.trim_start().starts_with(name),
            "{}: {diff:?}",
            k.path
        );
    }
}

fn check_generated(rel: &str, want: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{rel} is stale: regenerate with `UPDATE_DOCS=1 cargo test -p driftwatch-config generated`"
    );
}

/// `detection.interpreters`: the embedded list kept or dropped, names added, re-familied or
/// removed.
#[test]
fn interpreters_are_configured() {
    use driftwatch_model::InterpreterFamily::{Python, Shell};
    let dir = tempfile::tempdir().unwrap();
    let read = |text: &str| {
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, text).unwrap();
        crate::load(Some(&p))
            .unwrap()
            .config
            .detection
            .interpreters()
    };
    let i = read("detection:\n  interpreters:\n    names: {py-custom: python, dash: none}\n");
    assert_eq!(i.family_of("/opt/py-custom", "py-custom"), Some(Python));
    assert_eq!(i.family_of("/bin/dash", "sh"), None);
    assert_eq!(i.family_of("/bin/bash", "bash"), Some(Shell));
    let i = read("detection:\n  interpreters:\n    default: false\n    names: {mysh: shell}\n");
    assert_eq!(i.iter().collect::<Vec<_>>(), [("mysh", Shell)]);
}

#[test]
fn generated_reference_is_current() {
    let md = reference_markdown();
    for k in KEYS {
        assert!(md.contains(&format!("| `{}` |", k.path)), "{}", k.path);
    }
    check_generated("docs/config.md", &md);
}

#[test]
fn generated_example_is_current() {
    check_generated("docs/config.example.yaml", &example_yaml());
}

fn flag(flag: &'static str, key: &'static str, value: &str) -> FlagSetting {
    FlagSetting::scalar(flag, key, value)
}

#[test]
fn flags_are_the_last_layer_checked_as_the_file_is() {
    let mut file = parse_str(
        "rules:\n  files: [/r/a.yaml]\nnetwork:\n  learning_window: 5m\nsensor:\n  ring_mib: 16\n",
        "c.yaml",
        None,
    )
    .unwrap();
    file.file = Some(PathBuf::from("c.yaml"));
    let l = with_flags(
        &file,
        &[
            flag("--learning-window", "network.learning_window", "1d"),
            flag("--dedup-window", "limits.dedup_window", "250ms"),
            FlagSetting {
                flag: "--rules",
                key: "rules.files",
                value: FlagValue::Append(vec!["/r/b.yaml".into()]),
            },
            FlagSetting {
                flag: "--http-out",
                key: "outputs.http",
                value: FlagValue::Append(vec!["http://receiver:2801".into()]),
            },
            flag("--no-stdout", "outputs.stdout.enabled", "false"),
        ],
    )
    .unwrap();
    assert_eq!(l.config.network.learning_window, Duration::from_secs(86400));
    assert_eq!(l.config.limits.dedup_window, Duration::from_millis(250));
    assert_eq!(
        l.config.sensor.ring_mib, 16,
        "a key no flag sets keeps the file's value"
    );
    assert_eq!(
        l.config.rules.files,
        [PathBuf::from("/r/a.yaml"), PathBuf::from("/r/b.yaml")]
    );
    assert_eq!(l.config.outputs.http[0].url, "http://receiver:2801");
    assert!(!l.config.outputs.stdout.enabled);
    assert!(l.is_set("network.learning_window") && l.is_set("limits.dedup_window"));
    assert_eq!(l.flags["network.learning_window"], "--learning-window 1d");
    assert!(l.is_set("sensor.ring_mib") && !l.flags.contains_key("sensor.ring_mib"));

    // Every problem, each at its flag and value; the same checks and words as the file's.
    let errs: Vec<String> = with_flags(
        &file,
        &[
            flag("--ring-mib", "sensor.ring_mib", "3"),
            FlagSetting {
                flag: "--http-out",
                key: "outputs.http",
                value: FlagValue::Append(vec!["ftp://x".into()]),
            },
            flag("--api-listen", "api.listen", "0.0.0.0:7878"),
            flag("--enforce", "enforcement.mode", "block"),
        ],
    )
    .unwrap_err()
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(
        errs,
        [
            r#"--enforce block: enforcement.mode: expected one of detect, prevent, found the string "block""#,
            "--ring-mib 3: sensor.ring_mib: 3 is not a power of two from 1 to 1024 (1, 2, 4, 8, ...)",
            "--api-listen 0.0.0.0:7878: api.listen: 0.0.0.0:7878 is reachable from other hosts: set api.token_file (a file holding the bearer token), or listen on 127.0.0.1",
            r#"--http-out ftp://x: outputs.http[0].url: "ftp://x" is not an http:// or https:// URL"#,
        ]
    );
}

/// Falco's `append_output` entries, as falco.yaml writes them, under `rules.append_output`;
/// every problem at its position, formats and fields checked against the field catalogue.
#[test]
fn append_output_reads_falcos_schema_and_positions_its_errors() {
    use driftwatch_rules::{AppendOutput, ExtraField};
    let text = "\
rules:
  append_output:
    - match:
        source: syscall
        tags: [container, shell]
        rule: Terminal shell in container
      extra_output: \"on CPU %evt.cpu\"
      extra_fields:
        - home_directory: \"/home/%user.name\"
        - evt.hostname
    - suggested_output: true
";
    let l = load_text(text);
    assert_eq!(
        l.config.rules.append_output,
        vec![
            AppendOutput {
                source: Some("syscall".into()),
                tags: vec!["container".into(), "shell".into()],
                rule: Some("Terminal shell in container".into()),
                extra_output: "on CPU %evt.cpu".into(),
                extra_fields: vec![
                    ExtraField::Formatted {
                        name: "home_directory".into(),
                        format: "/home/%user.name".into()
                    },
                    ExtraField::Field("evt.hostname".into()),
                ],
                suggested_output: false,
            },
            AppendOutput {
                suggested_output: true,
                ..AppendOutput::default()
            },
        ]
    );
    let shown = show_yaml(&l);
    let back = parse_str(&shown, "shown.yaml", None).unwrap_or_else(|e| panic!("{shown}\n{e:?}"));
    assert_eq!(back.config, l.config, "{shown}");
    let j = show_json(&l);
    assert_eq!(
        j["config"]["rules"]["append_output"][0]["match"]["tags"][1],
        "shell"
    );
    assert_eq!(
        j["config"]["rules"]["append_output"][0]["extra_fields"][0]["home_directory"],
        "/home/%user.name"
    );
    // Falco's default, and none at all.
    assert_eq!(
        Config::default().rules.append_output,
        AppendOutput::falco_default()
    );
    let none = parse_str("rules:\n  append_output: []\n", "c.yaml", None).unwrap();
    assert!(none.config.rules.append_output.is_empty());

    let bad = "\
rules:
  append_output:
    - match: {source: syscall, tag: [x], rule: [a]}
      extra_output: \"on %evt.cpux\"
      extra_fields:
        - proc.nope
        - a: \"%proc.name\"
        - a: x
        - [1]
      suggested_output: yes
      extra: 1
    - 3
";
    assert_eq!(
        errors(bad),
        [
            r#"c.yaml:3:32: unknown key "tag" in rules.append_output[0].match; did you mean "tags"?"#,
            "c.yaml:3:48: rules.append_output[0].match.rule: expected a string, found a list",
            "c.yaml:4:21: rules.append_output[0].extra_output: unknown field `evt.cpux`; did you mean `evt.cpu`?",
            "c.yaml:6:11: rules.append_output[0].extra_fields[0]: unknown field `proc.nope`; did you mean `proc.name`?",
            r#"c.yaml:8:11: rules.append_output[0].extra_fields[2]: "a" is given twice"#,
            r#"c.yaml:9:11: rules.append_output[0].extra_fields[3]: expected a field name or one `name: "FORMAT"`, found a list"#,
            r#"c.yaml:10:25: rules.append_output[0].suggested_output: expected true or false, found the string "yes""#,
            r#"c.yaml:11:7: unknown key "extra" in rules.append_output[0]; did you mean "extra_output"?"#,
            "c.yaml:12:7: rules.append_output[1]: expected a mapping, found 3",
        ]
    );
    assert_eq!(
        errors("rules:\n  append_output: {suggested_output: true}\n"),
        [
            "c.yaml:2:18: rules.append_output: expected a list of entries (each a mapping with match, extra_output, extra_fields, suggested_output), found a mapping"
        ]
    );
}
