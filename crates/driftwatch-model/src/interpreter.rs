//! What an interpreter was asked to run: a script file named on its command line, code given
//! inline (`-c`, `-e`), code on standard input, or something that is not a file of the
//! container (`python3 -m pkg`, `java Main`). Interpreter drift judges the script file the
//! way a shebang script is judged; inline code is its own fact.
//!
//! The parsing follows each interpreter's own option grammar (which options take an argument,
//! which may be glued to it, where options end), so that `bash -o pipefail /tmp/x.sh` names
//! `/tmp/x.sh` and `python3 -W ignore -c CODE` is inline code, not a script named `ignore`.
//! The argv is the container's: nothing here trusts it beyond naming a path to judge.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// An interpreter's option grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InterpreterFamily {
    /// POSIX shells and bash: sh, bash, dash, ash, ksh, mksh, zsh, busybox sh.
    Shell,
    Python,
    Perl,
    Ruby,
    /// node, nodejs, bun, deno run.
    Node,
    Php,
    Lua,
    /// Rscript and R.
    R,
    /// java: `-jar FILE` and single-file source programs (`java Hello.java`).
    Java,
    /// tclsh, wish.
    Tcl,
}

impl InterpreterFamily {
    pub fn as_str(self) -> &'static str {
        match self {
            InterpreterFamily::Shell => "shell",
            InterpreterFamily::Python => "python",
            InterpreterFamily::Perl => "perl",
            InterpreterFamily::Ruby => "ruby",
            InterpreterFamily::Node => "node",
            InterpreterFamily::Php => "php",
            InterpreterFamily::Lua => "lua",
            InterpreterFamily::R => "r",
            InterpreterFamily::Java => "java",
            InterpreterFamily::Tcl => "tcl",
        }
    }

    pub const ALL: [InterpreterFamily; 10] = [
        InterpreterFamily::Shell,
        InterpreterFamily::Python,
        InterpreterFamily::Perl,
        InterpreterFamily::Ruby,
        InterpreterFamily::Node,
        InterpreterFamily::Php,
        InterpreterFamily::Lua,
        InterpreterFamily::R,
        InterpreterFamily::Java,
        InterpreterFamily::Tcl,
    ];

    pub fn parse(s: &str) -> Option<InterpreterFamily> {
        InterpreterFamily::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

impl fmt::Display for InterpreterFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one interpreter exec runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invocation<'a> {
    /// A program file named on the command line (`python3 /tmp/e.py`, `sh s.sh`,
    /// `java -jar app.jar`): `argv[index]`, relative to the process's working directory when
    /// not absolute.
    Script { path: &'a str, index: usize },
    /// Code on the command line: `sh -c`, `python3 -c`, `perl -e`, `node -e`, `php -r`, ...
    /// `flag` is the option as written (`-c`, `-e`, `--eval`, `-ec`).
    Inline { flag: &'a str, code: &'a str },
    /// The program comes from standard input: an explicit `-` or `-s`, or no program at all
    /// (an interactive shell, or `curl ... | sh`; whether stdin is a pipe is for the caller,
    /// who can see the process's descriptors).
    Stdin,
    /// Nothing the container's files hold by that name: a module or class looked up on a
    /// search path (`python3 -m http.server`, `java -cp x Main`), or a query (`--version`).
    Other,
}

/// Which executables are interpreters, by file name, and with which option grammar.
/// The defaults cover the interpreters of common images; `python3.11`-style versioned names
/// match their family without being listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interpreters {
    names: BTreeMap<String, InterpreterFamily>,
}

impl Default for Interpreters {
    fn default() -> Self {
        use InterpreterFamily::*;
        let names = [
            ("sh", Shell),
            ("bash", Shell),
            ("dash", Shell),
            ("ash", Shell),
            ("ksh", Shell),
            ("mksh", Shell),
            ("zsh", Shell),
            ("python", Python),
            ("python2", Python),
            ("python3", Python),
            ("pypy", Python),
            ("pypy3", Python),
            ("perl", Perl),
            ("ruby", Ruby),
            ("node", Node),
            ("nodejs", Node),
            ("bun", Node),
            ("php", Php),
            ("lua", Lua),
            ("luajit", Lua),
            ("Rscript", R),
            ("R", R),
            ("java", Java),
            ("tclsh", Tcl),
            ("wish", Tcl),
        ];
        Interpreters {
            names: names.iter().map(|(n, f)| (n.to_string(), *f)).collect(),
        }
    }
}

impl Interpreters {
    /// No interpreter at all (interpreter drift off).
    pub fn none() -> Interpreters {
        Interpreters {
            names: BTreeMap::new(),
        }
    }

    /// Adds (or re-families) an executable name, e.g. a site's own `python3-custom`.
    pub fn insert(&mut self, name: impl Into<String>, family: InterpreterFamily) {
        self.names.insert(name.into(), family);
    }

    pub fn remove(&mut self, name: &str) -> bool {
        self.names.remove(name).is_some()
    }

    /// The names listed, with their family.
    pub fn iter(&self) -> impl Iterator<Item = (&str, InterpreterFamily)> {
        self.names.iter().map(|(n, f)| (n.as_str(), *f))
    }

    /// The family of an executable, by the last component of its path: listed names, and
    /// versioned names of a listed one (`python3.12`, `perl5.36.0`, `lua5.4`, `ruby3.1`).
    /// `busybox` and its copies count as a shell when run under a shell's name (`argv0`).
    pub fn family_of(&self, exe_path: &str, argv0: &str) -> Option<InterpreterFamily> {
        let name = base_name(exe_path);
        if let Some(f) = self.lookup(name) {
            return Some(f);
        }
        // busybox runs the applet its argv[0] names: `sh`, `ash`.
        if name == "busybox" || name.starts_with("busybox.") {
            let applet = base_name(argv0);
            return match self.names.get(applet) {
                Some(InterpreterFamily::Shell) => Some(InterpreterFamily::Shell),
                _ => None,
            };
        }
        None
    }

    fn lookup(&self, name: &str) -> Option<InterpreterFamily> {
        if let Some(f) = self.names.get(name) {
            return Some(*f);
        }
        // A versioned name: a listed name followed by digits and dots (`python3.12`).
        let stem = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
        if stem.len() < name.len() && !stem.is_empty() {
            return self.names.get(stem).copied();
        }
        None
    }
}

/// The argv the program behind `exe_path` acts on: busybox run by its own name
/// (`busybox sh /tmp/s.sh`) runs the applet its first argument names, with the arguments
/// after it, so `sh /tmp/s.sh`; anything else, `argv` itself. Pass the result to
/// [`Interpreters::family_of`] (its first item as `argv0`) and [`classify`].
pub fn applet_argv<'a>(exe_path: &str, argv: &'a [String]) -> &'a [String] {
    let is_busybox = |n: &str| n == "busybox" || n.starts_with("busybox.");
    match argv.first() {
        Some(a0) if is_busybox(base_name(exe_path)) && is_busybox(base_name(a0)) => {
            argv.get(1..).unwrap_or_default()
        }
        _ => argv,
    }
}

fn base_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// Options of a family: which take a separate argument, which mean inline code, which mean
/// "run a module or class, not a file", and whether single-letter options group (`-ec`).
struct Grammar {
    /// Options whose next argument is theirs (`-W ignore`).
    with_arg: &'static [&'static str],
    /// Options whose argument is the program text.
    inline: &'static [&'static str],
    /// Options whose argument names a program file (`php -f FILE`, `java -jar FILE`).
    file: &'static [&'static str],
    /// Options after which the rest is not a file of the container (`python3 -m mod`).
    other: &'static [&'static str],
    /// Options meaning "read the program from stdin".
    stdin: &'static [&'static str],
    /// Single-letter flags group, and the last of a group may take the argument
    /// (`sh -ec CMD`, `python3 -uc CODE`, `perl -lne CODE`).
    grouped: bool,
    /// Letters of options whose argument may be glued on (`-Wignore`, `-Idir`, `-le`).
    glued: &'static str,
}

fn grammar(f: InterpreterFamily) -> Grammar {
    match f {
        InterpreterFamily::Shell => Grammar {
            with_arg: &["-o", "+o", "-O", "+O", "--rcfile", "--init-file"],
            inline: &["-c"],
            file: &[],
            other: &["--version", "--help"],
            stdin: &["-s"],
            grouped: true,
            glued: "",
        },
        InterpreterFamily::Python => Grammar {
            with_arg: &["-W", "-X", "--check-hash-based-pycs"],
            inline: &["-c"],
            file: &[],
            other: &["-m", "--version", "-V", "--help", "-h"],
            stdin: &["-"],
            grouped: true,
            glued: "WXcm",
        },
        InterpreterFamily::Perl => Grammar {
            with_arg: &["-I", "-M", "-m", "-x", "-C", "-d", "-D", "-i"],
            inline: &["-e", "-E"],
            file: &[],
            other: &["-v", "--version", "-V", "-h", "--help"],
            stdin: &["-"],
            grouped: true,
            // Options whose value is optional and glued; never separate (handled below).
            glued: "IMmxCdDieE",
        },
        InterpreterFamily::Ruby => Grammar {
            with_arg: &["-I", "-r", "-C", "-E", "--encoding"],
            inline: &["-e"],
            file: &[],
            other: &["-v", "--version", "-h", "--help"],
            stdin: &["-"],
            grouped: true,
            glued: "IrCEe",
        },
        InterpreterFamily::Node => Grammar {
            with_arg: &[
                "-r",
                "--require",
                "--import",
                "--loader",
                "--experimental-loader",
                "--input-type",
                "-C",
                "--conditions",
                "--env-file",
                "--title",
            ],
            inline: &["-e", "--eval", "-p", "--print"],
            file: &[],
            other: &["-v", "--version", "-h", "--help"],
            stdin: &["-"],
            grouped: false,
            glued: "",
        },
        InterpreterFamily::Php => Grammar {
            with_arg: &["-c", "-d", "-z", "-t", "-S"],
            inline: &["-r", "-B", "-R", "-E"],
            file: &["-f"],
            other: &["-v", "--version", "-h", "--help", "-m", "-i", "-l"],
            stdin: &["-"],
            grouped: false,
            glued: "cdrf",
        },
        InterpreterFamily::Lua => Grammar {
            with_arg: &["-l"],
            inline: &["-e"],
            file: &[],
            other: &["-v"],
            stdin: &["-"],
            grouped: false,
            glued: "le",
        },
        InterpreterFamily::R => Grammar {
            with_arg: &[],
            inline: &["-e"],
            file: &["-f"],
            other: &["--version", "--help"],
            stdin: &["-"],
            grouped: false,
            glued: "",
        },
        InterpreterFamily::Java => Grammar {
            with_arg: &[],
            inline: &[],
            file: &["-jar"],
            other: &[
                "-cp",
                "-classpath",
                "--class-path",
                "-m",
                "--module",
                "-version",
                "--version",
                "-help",
                "--help",
            ],
            stdin: &[],
            grouped: false,
            glued: "",
        },
        InterpreterFamily::Tcl => Grammar {
            with_arg: &["-encoding"],
            inline: &[],
            file: &[],
            other: &[],
            stdin: &["-"],
            grouped: false,
            glued: "",
        },
    }
}

/// What `argv` (as the kernel passed it, `argv[0]` first) asks `family` to run.
pub fn classify(family: InterpreterFamily, argv: &[String]) -> Invocation<'_> {
    let g = grammar(family);
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        if a == "--" {
            return match argv.get(i + 1) {
                Some(s) if !s.is_empty() => script(family, s, i + 1),
                _ => Invocation::Stdin,
            };
        }
        if g.stdin.contains(&a) {
            return Invocation::Stdin;
        }
        if g.inline.contains(&a) {
            return match argv.get(i + 1) {
                Some(code) => Invocation::Inline { flag: a, code },
                None => Invocation::Other,
            };
        }
        if g.file.contains(&a) {
            return match argv.get(i + 1) {
                Some(p) if !p.is_empty() => Invocation::Script {
                    path: p,
                    index: i + 1,
                },
                _ => Invocation::Other,
            };
        }
        if g.other.contains(&a) {
            return Invocation::Other;
        }
        if g.with_arg.contains(&a) {
            i += 2;
            continue;
        }
        if let Some(long) = a.strip_prefix("--") {
            // `--opt=value` carries its value; other long options take none.
            let name = long.split('=').next().unwrap_or(long);
            let full = &a[..2 + name.len()];
            if (g.inline.contains(&full)) && long.contains('=') {
                return Invocation::Inline {
                    flag: full,
                    code: &a[full.len() + 1..],
                };
            }
            i += 1;
            continue;
        }
        let is_option = (a.starts_with('-')
            || (family == InterpreterFamily::Shell && a.starts_with('+')))
            && a.len() > 1;
        if !is_option {
            return script(family, a, i);
        }
        // A single-dash option, maybe a group (`-ec`, `-uc`, `-lne`) or a glued value
        // (`-Wignore`, `-Idir`, `-e'code'`).
        let letters = &a[1..];
        let mut consumed_next = false;
        let mut skip_digits = false;
        for (k, c) in letters.char_indices() {
            if skip_digits && (c.is_ascii_hexdigit() || c == 'x') {
                continue;
            }
            skip_digits = false;
            if family == InterpreterFamily::Perl && matches!(c, 'l' | '0') {
                // perl's `-l[octal]` and `-0[digits]`: an optional numeric value, then
                // more flags of the group (`-lne`).
                skip_digits = true;
                continue;
            }
            let opt = format!("{}{c}", &a[..1]);
            let rest = &letters[k + c.len_utf8()..];
            if g.inline.contains(&opt.as_str()) {
                if !rest.is_empty() && g.glued.contains(c) {
                    return Invocation::Inline {
                        flag: a,
                        code: rest,
                    };
                }
                return match argv.get(i + 1) {
                    Some(code) => Invocation::Inline { flag: a, code },
                    None => Invocation::Other,
                };
            }
            if g.other.contains(&opt.as_str()) {
                return Invocation::Other;
            }
            if g.file.contains(&opt.as_str()) {
                if !rest.is_empty() && g.glued.contains(c) {
                    return Invocation::Script {
                        path: rest,
                        index: i,
                    };
                }
                return match argv.get(i + 1) {
                    Some(p) => Invocation::Script {
                        path: p,
                        index: i + 1,
                    },
                    None => Invocation::Other,
                };
            }
            if g.with_arg.contains(&opt.as_str()) {
                if !rest.is_empty() && g.glued.contains(c) {
                    break; // the rest of this word is the option's value
                }
                if family == InterpreterFamily::Perl && g.glued.contains(c) {
                    // perl's -I, -M, -x, -i, -0, -l, -C, -d, -D take only a glued value
                    // (`-I dir` also works for -I and -M/-m).
                    if matches!(c, 'I' | 'M' | 'm') && rest.is_empty() {
                        consumed_next = true;
                    }
                    break;
                }
                consumed_next = true;
                break;
            }
            if !g.grouped {
                break;
            }
        }
        i += if consumed_next { 2 } else { 1 };
    }
    Invocation::Stdin
}

fn script(family: InterpreterFamily, arg: &str, index: usize) -> Invocation<'_> {
    if family == InterpreterFamily::Java && !arg.ends_with(".java") {
        // A class name looked up on the class path.
        return Invocation::Other;
    }
    Invocation::Script { path: arg, index }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InterpreterFamily::*;

    fn run(f: InterpreterFamily, a: &[&str]) -> String {
        let argv: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        match classify(f, &argv) {
            Invocation::Script { path, index } => format!("script {path} @{index}"),
            Invocation::Inline { flag, code } => format!("inline {flag} {code}"),
            Invocation::Stdin => "stdin".into(),
            Invocation::Other => "other".into(),
        }
    }

    #[test]
    fn shells() {
        assert_eq!(run(Shell, &["sh", "/tmp/s.sh"]), "script /tmp/s.sh @1");
        assert_eq!(run(Shell, &["sh", "s.sh", "a", "b"]), "script s.sh @1");
        assert_eq!(run(Shell, &["bash", "-x", "-e", "s.sh"]), "script s.sh @3");
        assert_eq!(
            run(Shell, &["bash", "-o", "pipefail", "/x.sh"]),
            "script /x.sh @3"
        );
        assert_eq!(
            run(Shell, &["bash", "+o", "posix", "/x.sh"]),
            "script /x.sh @3"
        );
        assert_eq!(run(Shell, &["sh", "-c", "echo hi"]), "inline -c echo hi");
        assert_eq!(run(Shell, &["sh", "-ec", "echo hi"]), "inline -ec echo hi");
        assert_eq!(run(Shell, &["sh", "-e", "-c", "x", "name"]), "inline -c x");
        assert_eq!(run(Shell, &["sh"]), "stdin");
        assert_eq!(run(Shell, &["sh", "-s", "arg"]), "stdin");
        assert_eq!(run(Shell, &["bash", "-i"]), "stdin");
        assert_eq!(run(Shell, &["bash", "--norc", "--", "/s"]), "script /s @3");
        assert_eq!(
            run(Shell, &["bash", "--rcfile", "/r", "/s"]),
            "script /s @3"
        );
        assert_eq!(run(Shell, &["bash", "--version"]), "other");
        assert_eq!(run(Shell, &["sh", "-c"]), "other");
    }

    #[test]
    fn python() {
        assert_eq!(
            run(Python, &["python3", "/tmp/e.py"]),
            "script /tmp/e.py @1"
        );
        assert_eq!(
            run(Python, &["python3", "-u", "e.py", "-c"]),
            "script e.py @2"
        );
        assert_eq!(
            run(Python, &["python3", "-W", "ignore", "e.py"]),
            "script e.py @3"
        );
        assert_eq!(
            run(Python, &["python3", "-Wignore", "e.py"]),
            "script e.py @2"
        );
        assert_eq!(
            run(Python, &["python3", "-c", "print(1)"]),
            "inline -c print(1)"
        );
        assert_eq!(
            run(Python, &["python3", "-uc", "print(1)"]),
            "inline -uc print(1)"
        );
        assert_eq!(
            run(Python, &["python3", "-cprint(1)"]),
            "inline -cprint(1) print(1)"
        );
        assert_eq!(run(Python, &["python3", "-m", "http.server"]), "other");
        assert_eq!(run(Python, &["python3", "-I", "-m", "pip"]), "other");
        assert_eq!(run(Python, &["python3", "-"]), "stdin");
        assert_eq!(run(Python, &["python3"]), "stdin");
        assert_eq!(
            run(Python, &["python3", "-X", "dev", "a.py"]),
            "script a.py @3"
        );
    }

    #[test]
    fn perl_ruby_node_php_lua_r_java() {
        assert_eq!(run(Perl, &["perl", "-e", "print 1"]), "inline -e print 1");
        assert_eq!(run(Perl, &["perl", "-lne", "print"]), "inline -lne print");
        assert_eq!(run(Perl, &["perl", "-I", "/l", "x.pl"]), "script x.pl @3");
        assert_eq!(run(Perl, &["perl", "-I/l", "-w", "x.pl"]), "script x.pl @3");
        assert_eq!(run(Perl, &["perl", "-MPOSIX", "x.pl"]), "script x.pl @2");
        assert_eq!(run(Ruby, &["ruby", "-e", "puts 1"]), "inline -e puts 1");
        assert_eq!(run(Ruby, &["ruby", "-r", "json", "x.rb"]), "script x.rb @3");
        assert_eq!(run(Node, &["node", "-e", "1"]), "inline -e 1");
        assert_eq!(run(Node, &["node", "--eval=1+1"]), "inline --eval 1+1");
        assert_eq!(
            run(Node, &["node", "--inspect", "app.js"]),
            "script app.js @2"
        );
        assert_eq!(
            run(Node, &["node", "-r", "x", "app.js"]),
            "script app.js @3"
        );
        assert_eq!(run(Php, &["php", "-r", "echo 1;"]), "inline -r echo 1;");
        assert_eq!(run(Php, &["php", "-f", "/x.php"]), "script /x.php @2");
        assert_eq!(
            run(Php, &["php", "-d", "a=b", "/x.php"]),
            "script /x.php @3"
        );
        assert_eq!(run(Lua, &["lua", "-e", "print(1)"]), "inline -e print(1)");
        assert_eq!(run(Lua, &["lua", "-l", "m", "x.lua"]), "script x.lua @3");
        assert_eq!(run(R, &["Rscript", "-e", "1"]), "inline -e 1");
        assert_eq!(run(R, &["Rscript", "x.R"]), "script x.R @1");
        assert_eq!(run(R, &["R", "-f", "x.R"]), "script x.R @2");
        assert_eq!(
            run(Java, &["java", "-jar", "/app.jar"]),
            "script /app.jar @2"
        );
        assert_eq!(
            run(Java, &["java", "-Xmx1g", "-jar", "a.jar"]),
            "script a.jar @3"
        );
        assert_eq!(run(Java, &["java", "-cp", "x", "Main"]), "other");
        assert_eq!(run(Java, &["java", "Main"]), "other");
        assert_eq!(run(Java, &["java", "Hello.java"]), "script Hello.java @1");
    }

    #[test]
    fn families_by_name() {
        let i = Interpreters::default();
        assert_eq!(i.family_of("/usr/bin/python3.12", "python3"), Some(Python));
        assert_eq!(i.family_of("/usr/bin/perl5.36.0", "perl"), Some(Perl));
        assert_eq!(i.family_of("/bin/busybox", "sh"), Some(Shell));
        assert_eq!(i.family_of("/bin/busybox", "ls"), None);
        assert_eq!(i.family_of("/usr/bin/ls", "ls"), None);
        assert_eq!(i.family_of("/usr/bin/3", "3"), None);
        let argv: Vec<String> = ["busybox", "sh", "/tmp/s.sh"].map(String::from).to_vec();
        let applet = applet_argv("/bin/busybox", &argv);
        assert_eq!(i.family_of("/bin/busybox", &applet[0]), Some(Shell));
        assert_eq!(
            classify(Shell, applet),
            Invocation::Script {
                path: "/tmp/s.sh",
                index: 1
            }
        );
        assert_eq!(applet_argv("/bin/sh", &argv), &argv[..]);
        assert!(applet_argv("/bin/busybox", &argv[..1]).is_empty());
        let mut j = Interpreters::none();
        assert_eq!(j.family_of("/bin/sh", "sh"), None);
        j.insert("mysh", Shell);
        assert_eq!(j.family_of("/opt/mysh", "mysh"), Some(Shell));
    }
}
