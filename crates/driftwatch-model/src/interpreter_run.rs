//! The interpreter fact of one exec: which interpreter family ran and what it was asked to
//! run (a script, inline code, code on standard input, something else), with the inline code
//! itself, bounded. Inline code is its own fact: rules read it (`drift.invocation`,
//! `drift.inline_code`), and the per-image baseline learns which inline code an image runs.

use serde::{Deserialize, Serialize};

use crate::{InterpreterFamily, Invocation};

/// At most this many bytes of inline code are kept in an event (the kernel sensor keeps at
/// most 4 KiB of the whole argv): enough to read a one-liner, small enough that a megabyte of
/// `-c` cannot grow every alert.
pub const INLINE_CODE_MAX: usize = 1024;

/// What an interpreter exec runs (the kind of [`Invocation`], without borrowed text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvocationKind {
    Script,
    Inline,
    Stdin,
    Other,
}

impl InvocationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InvocationKind::Script => "script",
            InvocationKind::Inline => "inline",
            InvocationKind::Stdin => "stdin",
            InvocationKind::Other => "other",
        }
    }
}

/// What standard input (fd 0) of an interpreter reading its program from it was, read from
/// `/proc/PID/fd/0` while the process lived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StdinSource {
    /// A pipe or FIFO: `curl ... | sh`, `docker exec -i C sh` fed by a pipe.
    Pipe,
    /// A socket: a reverse shell's `sh -i <&3`, `nc -e sh`.
    Socket,
    /// A terminal: an interactive shell (`docker exec -it C sh`).
    Tty,
    /// `/dev/null`: nothing to run.
    Null,
    /// A file (`sh < script.sh`) or another device.
    File,
    /// No fd 0 at all.
    Closed,
    /// The process had exited (or exec'd away its pid) before the agent looked: it cannot
    /// be told. A shell fed by a short pipe often ends this fast, so this counts as code
    /// that may have come from a pipe.
    Gone,
}

impl StdinSource {
    pub fn as_str(self) -> &'static str {
        match self {
            StdinSource::Pipe => "pipe",
            StdinSource::Socket => "socket",
            StdinSource::Tty => "tty",
            StdinSource::Null => "null",
            StdinSource::File => "file",
            StdinSource::Closed => "closed",
            StdinSource::Gone => "gone",
        }
    }

    /// Reads the target of a `/proc/PID/fd/0` link (`pipe:[123]`, `socket:[9]`,
    /// `/dev/pts/0`, `/dev/null`, a path).
    pub fn from_fd_link(link: &str) -> StdinSource {
        if link.starts_with("pipe:") {
            StdinSource::Pipe
        } else if link.starts_with("socket:") {
            StdinSource::Socket
        } else if link == "/dev/null" {
            StdinSource::Null
        } else if link.starts_with("/dev/pts/")
            || link.starts_with("/dev/tty")
            || link == "/dev/console"
        {
            StdinSource::Tty
        } else {
            StdinSource::File
        }
    }

    /// Whether a program read from here may be code handed over by another process (a pipe,
    /// a socket, or a process gone too soon to tell) rather than a person's terminal or a
    /// file.
    pub fn may_carry_code(self) -> bool {
        matches!(
            self,
            StdinSource::Pipe | StdinSource::Socket | StdinSource::Gone
        )
    }
}

/// The interpreter fact of an exec (`Process::interpreter`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterpreterRun {
    pub family: InterpreterFamily,
    pub invocation: InvocationKind,
    /// For `script`: the program file as named on the command line.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub script: String,
    /// For `inline`: the option as written (`-c`, `-e`, `--eval`, `-ec`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub flag: String,
    /// For `inline`: the code, its first [`INLINE_CODE_MAX`] bytes (cut on a character
    /// boundary), exactly as passed: quotes, newlines and control characters included.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub code: String,
    /// The code was longer than what is kept (or than what the sensor captured).
    #[serde(default, skip_serializing_if = "is_false")]
    pub code_truncated: bool,
    /// For `stdin`: what fd 0 was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<StdinSource>,
    /// For inline code (and code on stdin from a pipe, a socket, or unknown): whether the
    /// image's baseline has this invocation (learned now or before); `false` once the image's
    /// learning window is over and it never ran it. `None` when not inline code or when the
    /// container's image is not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learned: Option<bool>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl InterpreterRun {
    /// The fact for `invocation` of `family`; `stdin` is asked only for [`Invocation::Stdin`].
    /// `args_truncated`: the sensor cut the argv, so inline code at its end may be cut too.
    pub fn new(
        family: InterpreterFamily,
        invocation: &Invocation<'_>,
        args_truncated: bool,
        stdin: impl FnOnce() -> StdinSource,
    ) -> InterpreterRun {
        let mut run = InterpreterRun {
            family,
            invocation: InvocationKind::Other,
            script: String::new(),
            flag: String::new(),
            code: String::new(),
            code_truncated: false,
            stdin: None,
            learned: None,
        };
        match invocation {
            Invocation::Script { path, .. } => {
                run.invocation = InvocationKind::Script;
                run.script = bounded(path, INLINE_CODE_MAX).0.to_string();
            }
            Invocation::Inline { flag, code } => {
                run.invocation = InvocationKind::Inline;
                run.flag = bounded(flag, 64).0.to_string();
                let (kept, cut) = bounded(code, INLINE_CODE_MAX);
                run.code = kept.to_string();
                run.code_truncated = cut || args_truncated;
            }
            Invocation::Stdin => {
                run.invocation = InvocationKind::Stdin;
                run.stdin = Some(stdin());
            }
            Invocation::Other => {}
        }
        run
    }

    /// Code handed to the interpreter rather than a program file of the container: `-c`-style
    /// inline code, or a program read from a pipe, a socket, or a stdin that could not be
    /// told.
    pub fn is_inline_code(&self) -> bool {
        match self.invocation {
            InvocationKind::Inline => true,
            InvocationKind::Stdin => self.stdin.is_some_and(StdinSource::may_carry_code),
            InvocationKind::Script | InvocationKind::Other => false,
        }
    }
}

/// The first `max` bytes of `s`, cut on a character boundary, and whether anything was cut.
fn bounded(s: &str, max: usize) -> (&str, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (&s[..end], true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(family: InterpreterFamily, argv: &[&str]) -> InterpreterRun {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        InterpreterRun::new(family, &crate::classify(family, &argv), false, || {
            StdinSource::Pipe
        })
    }

    #[test]
    fn each_invocation_kind() {
        let r = run(InterpreterFamily::Python, &["python3", "-c", "print(1)"]);
        assert_eq!(
            (r.invocation, r.flag.as_str(), r.code.as_str()),
            (InvocationKind::Inline, "-c", "print(1)")
        );
        assert!(r.is_inline_code() && r.stdin.is_none());
        let r = run(InterpreterFamily::Shell, &["sh", "/tmp/s.sh"]);
        assert_eq!(
            (r.invocation, r.script.as_str()),
            (InvocationKind::Script, "/tmp/s.sh")
        );
        assert!(!r.is_inline_code());
        let r = run(InterpreterFamily::Shell, &["sh"]);
        assert_eq!(
            (r.invocation, r.stdin),
            (InvocationKind::Stdin, Some(StdinSource::Pipe))
        );
        assert!(r.is_inline_code());
        let r = run(InterpreterFamily::Python, &["python3", "-m", "http.server"]);
        assert_eq!(r.invocation, InvocationKind::Other);
        assert!(!r.is_inline_code());
    }

    #[test]
    fn code_is_bounded_on_a_char_boundary_and_kept_exact() {
        let long = format!("echo {}", "é".repeat(INLINE_CODE_MAX));
        let r = run(InterpreterFamily::Shell, &["sh", "-c", &long]);
        assert!(r.code_truncated);
        assert!(r.code.len() <= INLINE_CODE_MAX && r.code.len() > INLINE_CODE_MAX - 2);
        assert!(long.starts_with(&r.code));
        let odd = "printf '\x1b[31m\"q\"\\n'\n\techo\u{7f} done";
        let r = run(InterpreterFamily::Shell, &["sh", "-c", odd]);
        assert_eq!(r.code, odd);
        assert!(!r.code_truncated);
        let json = serde_json::to_string(&r).unwrap();
        let back: InterpreterRun = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r, "the code round-trips through JSON: {json}");
    }

    #[test]
    fn stdin_sources() {
        assert_eq!(StdinSource::from_fd_link("pipe:[123]"), StdinSource::Pipe);
        assert_eq!(StdinSource::from_fd_link("socket:[9]"), StdinSource::Socket);
        assert_eq!(StdinSource::from_fd_link("/dev/pts/3"), StdinSource::Tty);
        assert_eq!(StdinSource::from_fd_link("/dev/null"), StdinSource::Null);
        assert_eq!(StdinSource::from_fd_link("/tmp/x.sh"), StdinSource::File);
        assert!(StdinSource::Gone.may_carry_code());
        assert!(!StdinSource::Tty.may_carry_code() && !StdinSource::Null.may_carry_code());
    }
}
