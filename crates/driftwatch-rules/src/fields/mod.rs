//! The field table: every field a condition or output may name, its Falco type, its argument,
//! whether driftwatch fills it (and on which events) and its meaning, and how it is read from a
//! `model::Event`. `docs/fields.md` and `driftwatch rules fields` are generated from this table.

mod extract;
mod formats;
mod syscalls;
mod table;

use driftwatch_model::EventKind;

pub(crate) use extract::extract;
pub(crate) use formats::{Cidr, parse_cidr};
pub use syscalls::evt_type_name;
pub(crate) use syscalls::{arg_names, canonical, evt_type_kinds};
pub use table::FIELDS;
pub(crate) use table::FieldId;

/// A field's value type, which decides the operators it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    String,
    Number,
    Bool,
    /// Nanoseconds since the epoch: compares as a number, prints as RFC 3339.
    Time,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Number => "number",
            FieldType::Bool => "bool",
            FieldType::Time => "time",
        }
    }
}

/// A field's type as Falco declares it (`falco --list` prints these).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FalcoType {
    Charbuf,
    Bytebuf,
    Uint64,
    Int64,
    Uint32,
    Int32,
    Int16,
    Bool,
    Abstime,
    Reltime,
    Ipaddr,
    Ipnet,
    Port,
    Double,
    /// `evt.rawarg`: the argument's own type.
    Dyn,
}

impl FalcoType {
    pub fn as_str(self) -> &'static str {
        match self {
            FalcoType::Charbuf => "CHARBUF",
            FalcoType::Bytebuf => "BYTEBUF",
            FalcoType::Uint64 => "UINT64",
            FalcoType::Int64 => "INT64",
            FalcoType::Uint32 => "UINT32",
            FalcoType::Int32 => "INT32",
            FalcoType::Int16 => "INT16",
            FalcoType::Bool => "BOOL",
            FalcoType::Abstime => "ABSTIME",
            FalcoType::Reltime => "RELTIME",
            FalcoType::Ipaddr => "IPADDR",
            FalcoType::Ipnet => "IPNET",
            FalcoType::Port => "PORT",
            FalcoType::Double => "DOUBLE",
            FalcoType::Dyn => "DYNAMIC",
        }
    }

    /// The value type driftwatch checks operators against. `evt.time` alone is a [`FieldType::Time`]
    /// (Falco prints it as text; driftwatch compares it as nanoseconds and prints Falco's text).
    pub(crate) const fn value_type(self, is_evt_time: bool) -> FieldType {
        if is_evt_time {
            return FieldType::Time;
        }
        match self {
            FalcoType::Charbuf | FalcoType::Bytebuf | FalcoType::Ipaddr | FalcoType::Ipnet => {
                FieldType::String
            }
            FalcoType::Bool => FieldType::Bool,
            FalcoType::Uint64
            | FalcoType::Int64
            | FalcoType::Uint32
            | FalcoType::Int32
            | FalcoType::Int16
            | FalcoType::Abstime
            | FalcoType::Reltime
            | FalcoType::Port
            | FalcoType::Double
            | FalcoType::Dyn => FieldType::Number,
        }
    }
}

/// What may follow a field name in brackets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgSpec {
    None,
    /// `proc.aname[2]`: a number, optional.
    Index,
    /// `proc.env[HOME]`: a name, optional.
    Key,
    /// `k8s.pod.label[app]`: a name, required (Falco's `EPF_ARG_REQUIRED`); also written
    /// `k8s.pod.label.app`.
    KeyRequired,
    /// `proc.aenv[1]` or `proc.aenv[HOME]`: a number or a name, optional.
    IndexOrKey,
    /// `evt.arg[1]`, `evt.arg[flags]` or `evt.arg.flags`; `container.mount[0]` or
    /// `container.mount[/var/run/docker.sock]`: a number or a name, required.
    IndexOrKeyRequired,
}

impl ArgSpec {
    pub fn as_str(self) -> &'static str {
        match self {
            ArgSpec::None => "",
            ArgSpec::Index => "[N] optional",
            ArgSpec::Key => "[NAME] optional",
            ArgSpec::KeyRequired => "[NAME] required",
            ArgSpec::IndexOrKey => "[N] or [NAME] optional",
            ArgSpec::IndexOrKeyRequired => "[N] or [NAME] required",
        }
    }

    /// Whether the field must be named with an argument.
    pub fn required(self) -> bool {
        matches!(self, ArgSpec::KeyRequired | ArgSpec::IndexOrKeyRequired)
    }
}

/// Position of `kind` in [`EventKind::ALL`], the bit order of kind masks.
const fn kind_index(kind: EventKind) -> u32 {
    let mut i = 0;
    while i < EventKind::ALL.len() {
        if EventKind::ALL[i] as u8 == kind as u8 {
            return i as u32;
        }
        i += 1;
    }
    0
}

/// The kind mask of one event kind (the same bit as `eval::kind_bit`).
pub(crate) const fn kind_mask(kind: EventKind) -> u16 {
    1 << kind_index(kind)
}

pub(crate) const K_EXEC: u16 = kind_mask(EventKind::Execve);
pub(crate) const K_OPEN: u16 = kind_mask(EventKind::Open) | kind_mask(EventKind::Creat);
pub(crate) const K_RENAME: u16 = kind_mask(EventKind::Rename);
pub(crate) const K_SYMLINK: u16 = kind_mask(EventKind::Symlink);
/// Every file event.
pub(crate) const K_FILE: u16 = K_OPEN
    | kind_mask(EventKind::Unlink)
    | K_RENAME
    | kind_mask(EventKind::Chmod)
    | kind_mask(EventKind::Chown)
    | kind_mask(EventKind::Mkdir)
    | K_SYMLINK;
pub(crate) const K_CONNECT: u16 = kind_mask(EventKind::Connect);
pub(crate) const K_NET: u16 = kind_mask(EventKind::Listen) | K_CONNECT;
/// Every event that is a system call (all but `container`).
pub(crate) const K_SYSCALL: u16 = K_EXEC | K_FILE | K_NET;

/// Whether driftwatch fills a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filled {
    /// Never: a test on it is never true, and a rule that needs it cannot fire.
    Never,
    /// On events of these kinds (a mask in [`EventKind::ALL`] bit order, see
    /// [`Filled::kinds`]), when the fact is known.
    Events(u16),
    /// On every event, when the fact is known (a process, container or pod fact).
    Always,
}

impl Filled {
    /// The event kinds the field is filled on.
    pub fn kinds(self) -> Vec<EventKind> {
        EventKind::ALL
            .iter()
            .copied()
            .filter(|k| self.covers(*k))
            .collect()
    }

    /// Whether the field is filled on events of `kind`.
    pub fn covers(self, kind: EventKind) -> bool {
        match self {
            Filled::Never => false,
            Filled::Always => true,
            Filled::Events(m) => m & kind_mask(kind) != 0,
        }
    }

    /// As `rules fields` prints it: `no`, `yes`, or the Falco event names (`execve`, ...).
    pub fn describe(self) -> String {
        match self {
            Filled::Never => "no".into(),
            Filled::Always => "yes".into(),
            Filled::Events(_) => {
                let mut names: Vec<&str> = self.kinds().into_iter().map(evt_type_name).collect();
                names.dedup();
                names.join(", ")
            }
        }
    }
}

/// One row of the field table.
#[derive(Debug)]
pub struct FieldInfo {
    pub name: &'static str,
    /// Falco's declared type.
    pub falco_type: FalcoType,
    /// The type operators are checked against.
    pub ty: FieldType,
    pub arg: ArgSpec,
    /// Whether driftwatch fills it, and on which events.
    pub filled: Filled,
    pub desc: &'static str,
    pub(crate) id: FieldId,
}

impl FieldInfo {
    /// Falco's field class, as `falco --list` groups fields (`evt`, `process`, `user`, `group`,
    /// `fd`, `fdlist`, `fs.path`, `container`, `k8s`) and driftwatch's `drift`.
    pub fn class(&self) -> &'static str {
        let first = self.name.split('.').next().unwrap_or("");
        match first {
            "proc" | "thread" => "process",
            "syscall" => "evt",
            "fs" => "fs.path",
            "k8s" => "k8s",
            "container" | "evt" | "user" | "group" | "fd" | "fdlist" | "drift" => FIELD_CLASSES
                .iter()
                .find(|c| **c == first)
                .copied()
                .unwrap_or(""),
            _ => "",
        }
    }

    /// Whether a rule can ever see this field with a value: `false` for [`Filled::Never`].
    pub fn is_filled(&self) -> bool {
        self.filled != Filled::Never
    }
}

/// Field classes in listing order.
pub const FIELD_CLASSES: [&str; 10] = [
    "evt",
    "process",
    "user",
    "group",
    "fd",
    "fdlist",
    "fs.path",
    "container",
    "k8s",
    "drift",
];

/// Looks a field up by name.
pub fn field(name: &str) -> Option<&'static FieldInfo> {
    FIELDS.iter().find(|f| f.name == name)
}

/// The known field closest to a misspelled one, for "did you mean".
pub(crate) fn suggest(name: &str) -> Option<&'static str> {
    FIELDS
        .iter()
        .map(|f| (driftwatch_yaml::edit_distance(name, f.name), f.name))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// The argument a field was named with.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum FieldArg {
    None,
    Index(usize),
    Key(Box<str>),
}

/// A field as a condition or output names it: `proc.aname[2]`.
#[derive(Clone, Debug)]
pub(crate) struct FieldRef {
    pub(crate) info: &'static FieldInfo,
    pub(crate) arg: FieldArg,
}

impl PartialEq for FieldRef {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.info, other.info) && self.arg == other.arg
    }
}

impl Eq for FieldRef {}

impl FieldRef {
    /// As written in outputs and `output_fields` keys.
    pub(crate) fn display_name(&self) -> String {
        match &self.arg {
            FieldArg::None => self.info.name.to_string(),
            FieldArg::Index(i) => format!("{}[{i}]", self.info.name),
            FieldArg::Key(k) => format!("{}[{k}]", self.info.name),
        }
    }

    /// Whether driftwatch fills the field as named: `evt.arg.NAME` and `evt.rawarg.NAME` only on
    /// the events that have that argument (never for `evt.arg.request`, a ptrace argument).
    pub(crate) fn filled(&self) -> Filled {
        match (self.info.id, &self.arg) {
            (FieldId::EvtArg | FieldId::EvtRawarg, FieldArg::Key(name)) => {
                match syscalls::arg_kinds(name) {
                    0 => Filled::Never,
                    m => Filled::Events(m),
                }
            }
            _ => self.info.filled,
        }
    }

    /// For Falco's fields that test both ends of a connection (`fd.ip`, `fd.port`, `fd.proto`,
    /// `fd.net`),
    /// the client and server fields a test on them is an `or` of.
    pub(crate) fn either_side(&self) -> Option<(FieldRef, FieldRef)> {
        let (c, s) = match self.info.id {
            FieldId::FdIp => ("fd.cip", "fd.sip"),
            // Falco's `fd.proto` is a port (names are resolved only when asked): the ports.
            FieldId::FdPort | FieldId::FdProto => ("fd.cport", "fd.sport"),
            FieldId::FdNet => ("fd.cnet", "fd.snet"),
            _ => return None,
        };
        let side = |name| {
            field(name).map(|info| FieldRef {
                info,
                arg: FieldArg::None,
            })
        };
        Some((side(c)?, side(s)?))
    }
}

/// A field's value in one event. Borrowed from the event or the scratch buffer: no allocation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Val<'e> {
    Missing,
    Str(&'e str),
    Num(i64),
    Bool(bool),
}

/// The field reference as Markdown, generated from [`FIELDS`]: one table per class.
pub fn fields_markdown() -> String {
    let mut out = String::from(
        "# Rule fields\n\n\
         <!-- Generated from crates/driftwatch-rules/src/fields/table.rs by `fields_markdown()`; \
         do not edit. The test `fields_doc_is_current` fails when this file is stale; \
         regenerate with `UPDATE_DOCS=1 cargo test -p driftwatch-rules fields_doc`. -->\n\n\
         Fields a rule's `condition` may test and its `output` may print as `%field`: every field \
         of Falco's `syscall` source (as `falco --list=syscall` lists them, with the container \
         plugin's `container.*` and `k8s.*`) and driftwatch's `drift.*`. `driftwatch rules fields` \
         prints the same list (`--json`, `--filled`, `--unfilled`).\n\n\
         **Filled** says whether driftwatch gives the field a value: `yes` on every event (when the \
         fact is known), the Falco event types it is filled on, or `no`. A field driftwatch never \
         fills is known (rules naming it load), but a test on it is never true: a rule that needs \
         it loads inactive, with a warning naming the field. A missing value (no container, no \
         file, no drift finding) makes every comparison false (`not` of it true, `exists` false) \
         and prints as `<NA>`.\n\n\
         Operators by type: `string` takes `=` `!=` `contains` `icontains` `startswith` \
         `endswith` `glob` `pmatch` `regex` `in` `intersects` `exists`; `number` and `time` take \
         `=` `!=` `<` `<=` `>` `>=` `in` `intersects` `exists`; `bool` takes `=` `!=` `exists` \
         (values `true`, `false`). `IPNET` fields (`fd.net`, `fd.snet`...) take `=`, `!=` and `in` \
         with networks (`\"10.0.0.0/8\"`).\n",
    );
    for class in FIELD_CLASSES {
        out.push_str(&format!(
            "\n## `{class}`\n\n| Field | Falco type | Type | Argument | Filled | Description |\n\
             | --- | --- | --- | --- | --- | --- |\n"
        ));
        for f in FIELDS.iter().filter(|f| f.class() == class) {
            let arg = match f.arg {
                ArgSpec::None => String::new(),
                a => format!("`{}`", a.as_str()),
            };
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} |\n",
                f.name,
                f.falco_type.as_str(),
                f.ty.as_str(),
                arg,
                f.filled.describe(),
                f.desc.replace('|', "\\|")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_dotted() {
        for (i, f) in FIELDS.iter().enumerate() {
            assert!(f.name.contains('.'), "{}", f.name);
            assert!(
                FIELDS[i + 1..].iter().all(|g| g.name != f.name),
                "{}",
                f.name
            );
        }
    }

    #[test]
    fn every_field_has_a_class_and_a_description() {
        for f in FIELDS {
            assert!(FIELD_CLASSES.contains(&f.class()), "{}", f.name);
            assert!(f.desc.ends_with('.') || f.desc.ends_with(')'), "{}", f.name);
            assert_eq!(
                f.id == FieldId::Unfilled,
                f.filled == Filled::Never,
                "{}: an extraction exactly for filled fields",
                f.name
            );
        }
    }

    #[test]
    fn kind_masks_follow_the_evaluator() {
        for k in EventKind::ALL {
            assert_eq!(kind_mask(k), crate::eval::kind_bit(k), "{k:?}");
        }
        assert_eq!(
            K_SYSCALL | kind_mask(EventKind::Container),
            crate::eval::ALL_KINDS
        );
    }

    #[test]
    fn falco_fields_the_upstream_rules_use_are_known_and_filled() {
        for name in [
            "user.loginuid",
            "proc.pcmdline",
            "proc.pexe",
            "fd.type",
            "evt.res",
            "thread.cap_effective",
            "fd.num",
            "fd.nameraw",
            "user.loginname",
            "container.mount.dest",
            "fd.net",
            "proc.sid",
            "proc.vpgid",
            "container.privileged",
            "k8s.pod.labels",
        ] {
            let f = field(name).unwrap_or_else(|| panic!("{name} unknown"));
            assert!(f.is_filled(), "{name}");
        }
        for name in ["fd.sip.name", "evt.buffer", "proc.aenv", "fdlist.names"] {
            assert_eq!(field(name).map(|f| f.filled), Some(Filled::Never), "{name}");
        }
        assert_eq!(field("evt.time").map(|f| f.ty), Some(FieldType::Time));
        assert_eq!(field("evt.rawtime").map(|f| f.ty), Some(FieldType::Number));
    }

    #[test]
    fn argument_fields_are_filled_per_argument() {
        let arg = |name: &str| FieldRef {
            info: field("evt.arg").unwrap(),
            arg: FieldArg::Key(name.into()),
        };
        assert_eq!(arg("request").filled(), Filled::Never);
        assert_eq!(arg("flags").filled(), Filled::Events(K_OPEN));
        assert_eq!(
            Filled::Events(K_OPEN).describe(),
            "openat",
            "open and creat print as one call"
        );
        assert_eq!(Filled::Events(K_NET).describe(), "listen, connect");
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("proc.nme"), Some("proc.name"));
        assert_eq!(suggest("zzzzzzzzzz"), None);
    }

    #[test]
    fn fields_doc_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/fields.md");
        let want = fields_markdown();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/docs")).unwrap();
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "{path} is stale: regenerate with `UPDATE_DOCS=1 cargo test -p driftwatch-rules fields_doc`"
        );
    }
}
