//! A process as an event sees it, with what Falco's `proc.*` and `user.*` fields need.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// Thread-group id as seen from the host.
    pub pid: u32,
    /// Parent's thread-group id as seen from the host.
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    /// Resolved against the container's `/etc/passwd` when possible; empty when unknown.
    #[serde(default)]
    pub user_name: String,
    /// The kernel's comm (at most 15 bytes): Falco's `proc.name`.
    pub name: String,
    /// Full path of the executed file, inside the container: Falco's `proc.exepath`.
    pub exepath: String,
    /// argv[0..]: `proc.exe` is argv[0], `proc.args` the rest.
    pub argv: Vec<String>,
    /// Environment (KEY=VALUE) at exec, possibly truncated by the sensor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default)]
    pub cwd: String,
    /// Controlling terminal's device number, 0 when none (Falco's `proc.tty`).
    #[serde(default)]
    pub tty: u32,
    /// Names of the ancestors, parent first: `proc.pname` is `ancestors[0]`,
    /// `proc.aname[N]` is `ancestors[N-1]`.
    #[serde(default)]
    pub ancestors: Vec<String>,
    /// Executable path of the parent, when known.
    #[serde(default)]
    pub pexepath: String,
    /// The executed file lives in the overlay's upper (writable) layer.
    #[serde(default)]
    pub exe_upper_layer: bool,
    #[serde(default)]
    pub exe_from_memfd: bool,
    /// The executed file is writable by the process's user (Falco's `proc.is_exe_writable`).
    #[serde(default)]
    pub exe_writable: bool,
    /// The parent's argv (`proc.pcmdline` is `proc.pname` and `pargv[1..]`, `proc.pexe` is
    /// `pargv[0]`); empty when not known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pargv: Vec<String>,
    /// Host pids of the ancestors, parent first, aligned with `ancestors` (Falco's
    /// `proc.apid[N]`); may be shorter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ancestor_pids: Vec<u32>,
    /// Executable paths of the ancestors, parent first, aligned with `ancestors` (Falco's
    /// `proc.aexepath[N]`); may be shorter, an entry empty when not known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ancestor_exepaths: Vec<String>,
    /// The audit login uid (Falco's `user.loginuid`); `u32::MAX` when the process has none
    /// (Falco prints -1), `None` when not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loginuid: Option<u32>,
    /// `loginuid` resolved against the container's /etc/passwd (Falco's `user.loginname`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub loginname: String,
    /// `gid` resolved against the container's /etc/group (Falco's `group.name`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group_name: String,
    /// The pid in the process's own pid namespace (Falco's `proc.vpid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpid: Option<u32>,
    /// The session id as seen from the host (Falco's `proc.sid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<u32>,
    /// The session leader's name (Falco's `proc.sname`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sname: String,
    /// The process group id in the process's own pid namespace (Falco's `proc.vpgid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpgid: Option<u32>,
    /// The process group leader's name (Falco's `proc.vpgid.name`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vpgid_name: String,
    /// Capability sets after exec, as bit masks (Falco's `thread.cap_permitted`,
    /// `thread.cap_effective`, `thread.cap_inheritable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_permitted: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_effective: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_inheritable: Option<u64>,
    /// When the process (thread group) started, nanoseconds since the epoch
    /// (`proc.duration` is the event's time minus this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ns: Option<u64>,
    /// The executed file's inode number and its change and modification times, nanoseconds
    /// since the epoch (Falco's `proc.exe_ino`, `proc.exe_ino.ctime`, `proc.exe_ino.mtime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe_ino: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe_ctime_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe_mtime_ns: Option<u64>,
    /// For an exec of an interpreter: its family and what it runs (a script, inline code,
    /// stdin, other). Only exec events carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<crate::InterpreterRun>,
}

impl Process {
    /// `proc.cmdline`: the comm followed by the arguments, as Falco prints it.
    pub fn cmdline(&self) -> String {
        let mut s = self.name.clone();
        for a in self.argv.iter().skip(1) {
            s.push(' ');
            s.push_str(a);
        }
        s
    }

    /// `proc.args`: the arguments without argv[0].
    pub fn args(&self) -> String {
        self.argv.get(1..).map(|a| a.join(" ")).unwrap_or_default()
    }

    /// `proc.pname`.
    pub fn pname(&self) -> Option<&str> {
        self.ancestors.first().map(String::as_str)
    }

    /// The value of an environment variable at exec.
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find_map(|kv| kv.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_args_and_env() {
        let p = Process {
            name: "x".into(),
            argv: vec!["/tmp/x".into(), "-v".into(), "a b".into()],
            env: vec![
                "PATH=/bin".into(),
                "LD_PRELOAD=/tmp/a.so".into(),
                "LD_PRELOAD_X=1".into(),
            ],
            ancestors: vec!["sh".into()],
            ..Default::default()
        };
        assert_eq!(p.cmdline(), "x -v a b");
        assert_eq!(p.args(), "-v a b");
        assert_eq!(p.env_var("LD_PRELOAD"), Some("/tmp/a.so"));
        assert_eq!(p.env_var("LD"), None);
        assert_eq!(p.pname(), Some("sh"));
    }
}
