//! Which file events some enabled rule can match below a directory, decided from the rules
//! alone: the file sensor marks each directory of a container only for the kinds that can
//! matter there, so the kernel queues no notice for scratch files in `/var/tmp` that no rule
//! can match.
//!
//! Each enabled file rule's condition is folded three-valued (as [`crate::activity`] folds it
//! per kind), with the event's path (`fd.name`, `fs.path.name`, the path argument
//! `evt.arg.name`/`path`/`filename`/`newpath`/..., and `fd.directory`) taken as "some path
//! below D" and every other field unknown. A rule is left out for a kind only when its
//! condition is false for every path below D, so the answer errs towards marking.
//!
//! A rename is judged by its new path alone (its old path unknown): a change the rules can
//! match is then always seen at its destination, whose mark reports the move.

use driftwatch_model::EventKind;

use crate::activity::{Tri, constant, tri};
use crate::eval::{Expr, Pred, Test, icontains, kind_bit};
use crate::fields::{FieldArg, FieldId, FieldRef, Val, arg_names, canonical};
use crate::ruleset::RuleSet;

/// `drift.detail` of an image file's removal (a whiteout), as the file sensor writes it.
/// Keep in sync: crates/driftwatch-agent/src/file_drift.rs (`appeared`).
pub const DETAIL_IMAGE_FILE_REMOVED: &str = "an image file was removed";
/// `drift.detail` of the removal of a file made at runtime (a plain deletion).
/// Keep in sync: crates/driftwatch-agent/src/file_drift.rs (`handle`).
pub const DETAIL_RUNTIME_FILE_REMOVED: &str = "a file created at runtime was removed";
/// `drift.detail` of the removal of a directory made at runtime.
/// Keep in sync: crates/driftwatch-agent/src/file_drift.rs (`handle_dir`).
pub const DETAIL_RUNTIME_DIR_REMOVED: &str = "a directory created at runtime was removed";

/// The file event kinds the file sensor reports.
const FILE_KINDS: [EventKind; 8] = [
    EventKind::Creat,
    EventKind::Open,
    EventKind::Rename,
    EventKind::Unlink,
    EventKind::Mkdir,
    EventKind::Symlink,
    EventKind::Chmod,
    EventKind::Chown,
];

/// What the enabled rules can match for paths below one directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirReach {
    /// File-drift events (`drift.kind=file`) by kind bit; `unlink` here is the removal of an
    /// entry made at runtime.
    kinds: u16,
    /// The removal of an image file (a whiteout, `drift.detail` "an image file was removed").
    pub image_unlink: bool,
    /// A package-drift event (`open`, `drift.kind=package`) about a database below.
    pub package: bool,
}

impl DirReach {
    /// Whether some rule can match a file-drift event of `kind` below the directory.
    pub fn can_match(&self, kind: EventKind) -> bool {
        self.kinds & kind_bit(kind) != 0
    }

    /// The file-drift kinds some rule can match, in [`EventKind::ALL`] order.
    pub fn kinds(&self) -> Vec<EventKind> {
        FILE_KINDS
            .iter()
            .copied()
            .filter(|k| self.can_match(*k))
            .collect()
    }

    /// Nothing at all can match below the directory: it needs no mark.
    pub fn is_empty(&self) -> bool {
        self.kinds == 0 && !self.image_unlink && !self.package
    }
}

/// The enabled file rules of a [`RuleSet`], kept apart so that a sensor can ask about
/// directories without holding the rule set (it is swapped on reloads).
#[derive(Clone, Debug)]
pub struct FileScope {
    /// Each rule's name, kind mask (file kinds only) and condition.
    rules: Vec<(Box<str>, u16, Expr)>,
}

impl RuleSet {
    /// The enabled, active rules that can match a file event, for [`FileScope::below`].
    pub fn file_scope(&self) -> FileScope {
        let files: u16 = FILE_KINDS
            .iter()
            .map(|k| kind_bit(*k))
            .fold(0, |a, b| a | b);
        FileScope {
            rules: self
                .rule_conditions()
                .filter(|(_, mask, _)| mask & files != 0)
                .map(|(name, mask, expr)| (name.into(), mask & files, expr.clone()))
                .collect(),
        }
    }
}

/// The abstract event a fold runs on: a path below `dir`, with what is known of the drift
/// finding.
struct Below<'a> {
    /// The directory, without a trailing `/` (`/` itself for the root).
    dir: &'a str,
    /// `dir` followed by `/`: every path below starts with it and is longer.
    prefix: String,
    /// Only the entries directly in `dir` (no `/` after the prefix), not deeper ones.
    children: bool,
    drift_kind: &'static str,
    /// The `drift.detail` values the event may start with; empty when unknown.
    details: &'a [&'static str],
}

impl FileScope {
    /// What some rule can match for a path below the container directory `dir` (absolute;
    /// a trailing `/` is ignored), at any depth: whether its subdirectories need watching.
    pub fn below(&self, dir: &str) -> DirReach {
        self.rules_reaching(dir, false).0
    }

    /// What some rule can match for an entry directly in `dir`: what a mark on `dir` (which
    /// reports its own entries only) must report.
    pub fn children(&self, dir: &str) -> DirReach {
        self.rules_reaching(dir, true).0
    }

    /// [`FileScope::below`] or [`FileScope::children`], with the rules that reach and what
    /// each reaches: why a directory is marked.
    pub fn explain(&self, dir: &str, children: bool) -> Vec<(String, DirReach)> {
        self.rules_reaching(dir, children).1
    }

    fn rules_reaching(&self, dir: &str, children: bool) -> (DirReach, Vec<(String, DirReach)>) {
        let dir = match dir.trim_end_matches('/') {
            "" => "/",
            d => d,
        };
        let prefix = if dir == "/" {
            "/".to_string()
        } else {
            format!("{dir}/")
        };
        let mut reach = DirReach::default();
        let mut why = Vec::new();
        let runtime = [DETAIL_RUNTIME_FILE_REMOVED, DETAIL_RUNTIME_DIR_REMOVED];
        let image = [DETAIL_IMAGE_FILE_REMOVED];
        let at = |drift_kind, details| Below {
            dir,
            prefix: prefix.clone(),
            children,
            drift_kind,
            details,
        };
        let file_any = at("file", &[]);
        let file_runtime = at("file", &runtime);
        let file_image = at("file", &image);
        let package = at("package", &[]);
        let open = kind_bit(EventKind::Open);
        for (name, mask, expr) in &self.rules {
            let mut one = DirReach::default();
            for k in FILE_KINDS.iter().map(|k| kind_bit(*k)) {
                if mask & k == 0 {
                    continue;
                }
                let unlink = k == kind_bit(EventKind::Unlink);
                let file = if unlink { &file_runtime } else { &file_any };
                if file.fold(expr, k) != Tri::False {
                    one.kinds |= k;
                }
                if unlink && file_image.fold(expr, k) != Tri::False {
                    one.image_unlink = true;
                }
                if k == open && package.fold(expr, k) != Tri::False {
                    one.package = true;
                }
            }
            if !one.is_empty() {
                reach.kinds |= one.kinds;
                reach.image_unlink |= one.image_unlink;
                reach.package |= one.package;
                why.push((name.to_string(), one));
            }
        }
        (reach, why)
    }
}

/// What a field is on the abstract event.
enum Role {
    /// The event's path: some path below the directory.
    Path,
    /// `fd.directory`: the directory itself or some path below it.
    Dir,
    DriftKind,
    DriftDetail,
    Other,
}

/// The path argument of each file kind (`evt.arg.NAME`), as [`canonical`] names it.
fn path_arg(kind: EventKind) -> Option<&'static str> {
    Some(match kind {
        EventKind::Open | EventKind::Creat | EventKind::Unlink => "name",
        EventKind::Chmod => "filename",
        EventKind::Chown => "pathname",
        EventKind::Mkdir => "path",
        EventKind::Rename => "newpath",
        EventKind::Symlink => "linkpath",
        _ => return None,
    })
}

fn kind_of(bit: u16) -> EventKind {
    EventKind::ALL
        .iter()
        .copied()
        .find(|k| kind_bit(*k) == bit)
        .unwrap_or(EventKind::Container)
}

fn role(f: &FieldRef, bit: u16) -> Role {
    let kind = kind_of(bit);
    match (f.info.id, &f.arg) {
        (
            FieldId::FdName | FieldId::FdNameraw | FieldId::FsPathName | FieldId::FsPathNameraw,
            FieldArg::None,
        ) => Role::Path,
        (FieldId::FsPathTarget | FieldId::FsPathTargetraw, FieldArg::None)
            if matches!(kind, EventKind::Rename | EventKind::Symlink) =>
        {
            Role::Path
        }
        (FieldId::EvtArg, FieldArg::Key(name)) if path_arg(kind) == Some(canonical(kind, name)) => {
            Role::Path
        }
        (FieldId::EvtArg, FieldArg::Index(i))
            if arg_names(kind).get(*i).copied() == path_arg(kind) =>
        {
            Role::Path
        }
        (FieldId::FdDirectory, FieldArg::None) => Role::Dir,
        (FieldId::DriftKind, FieldArg::None) => Role::DriftKind,
        (FieldId::DriftDetail, FieldArg::None) => Role::DriftDetail,
        _ => Role::Other,
    }
}

/// `startswith x` over `prefix` and every string that starts with it.
fn starts(prefix: &str, x: &str) -> Tri {
    if prefix.starts_with(x) {
        Tri::True
    } else if x.starts_with(prefix) {
        Tri::Unknown
    } else {
        Tri::False
    }
}

/// The first `True`, else `Unknown` if any, else `False`.
fn any(items: impl Iterator<Item = Tri>) -> Tri {
    let mut out = Tri::False;
    for t in items {
        match t {
            Tri::True => return Tri::True,
            Tri::Unknown => out = Tri::Unknown,
            Tri::False => {}
        }
    }
    out
}

/// Two facts about one value: the same when they agree, else unknown.
fn both(a: Tri, b: Tri) -> Tri {
    if a == b { a } else { Tri::Unknown }
}

fn negated(t: Tri, negate: bool) -> Tri {
    if negate { t.not() } else { t }
}

impl Below<'_> {
    fn fold(&self, e: &Expr, k: u16) -> Tri {
        match e {
            Expr::Const(b) => tri(*b),
            Expr::EvtType(m) => tri(m & k != 0),
            Expr::Test(t) => self.test(t, k),
            Expr::Not(x) => self.fold(x, k).not(),
            Expr::And(xs) => {
                let mut out = Tri::True;
                for x in xs.iter() {
                    match self.fold(x, k) {
                        Tri::False => return Tri::False,
                        Tri::Unknown => out = Tri::Unknown,
                        Tri::True => {}
                    }
                }
                out
            }
            Expr::Or(xs) => any(xs.iter().map(|x| self.fold(x, k))),
        }
    }

    fn test(&self, t: &Test, k: u16) -> Tri {
        // Fields driftwatch does not fill on this kind are missing (every test on them is
        // false), and the facts it never varies are constants.
        if let Some((v, _)) = constant(&t.field, k) {
            if matches!(v, Val::Missing) {
                return Tri::False;
            }
            if t.xf.is_empty() && !matches!(t.pred, Pred::Field(_)) {
                return tri(t.eval_const(v));
            }
            return Tri::Unknown;
        }
        if !t.xf.is_empty() || matches!(t.pred, Pred::Field(_)) {
            return Tri::Unknown;
        }
        match role(&t.field, k) {
            Role::Path => negated(self.below_pred(&t.pred), t.negate),
            Role::Dir if self.children => tri(t.eval_const(Val::Str(self.dir))),
            Role::Dir => both(
                tri(t.eval_const(Val::Str(self.dir))),
                negated(self.below_pred(&t.pred), t.negate),
            ),
            Role::DriftKind => tri(t.eval_const(Val::Str(self.drift_kind))),
            Role::DriftDetail if !self.details.is_empty() => {
                let mut out: Option<Tri> = None;
                for d in self.details {
                    let one = negated(prefixed_pred(d, &t.pred), t.negate);
                    out = Some(out.map_or(one, |o| if o == one { o } else { Tri::Unknown }));
                }
                match out {
                    // Any of the details may be the event's: the test is known only when
                    // all agree.
                    Some(Tri::True) => Tri::True,
                    Some(Tri::False) => Tri::False,
                    _ => Tri::Unknown,
                }
            }
            Role::DriftDetail | Role::Other => Tri::Unknown,
        }
    }

    /// The predicate (before `!=`) over every path below the directory (directly in it, for
    /// `children`).
    fn below_pred(&self, pred: &Pred) -> Tri {
        let p = self.prefix.as_str();
        // Whether a string beginning with `s`, or `s` itself when `whole`, can be a path
        // in the set: below the prefix, and with no further `/` for children.
        let reachable = |s: &str, whole: bool| {
            let Some(rest) = s.strip_prefix(p) else {
                return false;
            };
            !((whole && rest.is_empty()) || (self.children && rest.contains('/')))
        };
        let starts = |x: &str| {
            if p.starts_with(x) {
                Tri::True
            } else if reachable(x, false) {
                Tri::Unknown
            } else {
                Tri::False
            }
        };
        let pmatch = |q: &str| {
            let below = if q.ends_with('/') {
                q.to_string()
            } else {
                format!("{q}/")
            };
            let exact = q.trim_end_matches('/');
            if p.starts_with(&below) {
                Tri::True
            } else if reachable(exact, true) || (!self.children && below.starts_with(p)) {
                Tri::Unknown
            } else {
                Tri::False
            }
        };
        match pred {
            Pred::Exists => Tri::True,
            Pred::StrEq(s) => {
                if reachable(s, true) {
                    Tri::Unknown
                } else {
                    Tri::False
                }
            }
            Pred::StrIn(set) => {
                if set.items().iter().any(|s| reachable(s, true)) {
                    Tri::Unknown
                } else {
                    Tri::False
                }
            }
            Pred::StartsWith(x) => starts(x),
            Pred::StartsWithAny(_, xs) => any(xs.iter().map(|x| starts(x))),
            Pred::PMatch(qs) => any(qs.iter().map(|q| pmatch(q))),
            // A match starts with the pattern's literal text.
            Pred::Glob(g) => match g.literal_prefix() {
                Some(lit) if !p.starts_with(&lit) && !reachable(&lit, false) => Tri::False,
                _ => Tri::Unknown,
            },
            Pred::Contains(x) if p.contains(&**x) => Tri::True,
            Pred::IContains(x) if icontains(p, x) => Tri::True,
            Pred::Num(..) | Pred::NumIn(_) | Pred::Bool(_) => Tri::False,
            _ => Tri::Unknown,
        }
    }
}

/// The predicate (before `!=`) over `value` and every string that starts with it (a detail
/// may be followed by a note on its actor).
fn prefixed_pred(value: &str, pred: &Pred) -> Tri {
    match pred {
        Pred::Exists => Tri::True,
        Pred::StartsWith(x) => starts(value, x),
        Pred::StartsWithAny(_, xs) => any(xs.iter().map(|x| starts(value, x))),
        Pred::StrEq(s) if !s.starts_with(value) => Tri::False,
        Pred::Contains(x) if value.contains(&**x) => Tri::True,
        Pred::Num(..) | Pred::NumIn(_) | Pred::Bool(_) => Tri::False,
        _ => Tri::Unknown,
    }
}

#[cfg(test)]
mod tests;
