//! Whether a rule can ever be true on the events driftwatch produces, decided at load time:
//! its condition is folded once per event kind it names, with the fields driftwatch does not
//! fill on that kind as missing (a test on a missing field is false, `not` of it true) and the
//! facts driftwatch never reports (reads, failed calls) as constants. A rule that folds to false
//! on every kind is inactive, and the reason says what it needs.

use driftwatch_model::EventKind;

use crate::eval::{ALL_KINDS, Expr, Pred, Test, kind_bit};
use crate::fields::{FieldRef, Filled, Val, evt_type_name};

/// A three-valued fold: known true, known false, or decided only by the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tri {
    True,
    False,
    Unknown,
}

impl Tri {
    pub(crate) fn not(self) -> Tri {
        match self {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Unknown => Tri::Unknown,
        }
    }
}

/// The event kinds on which driftwatch fills `f` as named (`evt.arg.request` on none).
fn filled_kinds(f: &FieldRef) -> u16 {
    match f.filled() {
        Filled::Never => 0,
        Filled::Always => ALL_KINDS,
        Filled::Events(m) => m,
    }
}

/// Why a fact is never what a test wants, in words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fact {
    /// A field driftwatch does not fill (on the kinds folded).
    Unfilled,
    /// Failed calls: driftwatch reports completed changes and successful execs.
    Failed,
    /// File reads: the file sensor sees changes, not reads.
    Read,
}

/// The constant value driftwatch gives `f` on events of kind bit `k`, if any: missing where
/// the field is not filled, and the facts it never varies where it is (`fd.num` is 0 on the
/// file and network events that fill it; an open is never reported as a read).
pub(crate) fn constant(f: &FieldRef, k: u16) -> Option<(Val<'static>, Fact)> {
    if filled_kinds(f) & k == 0 {
        return Some((Val::Missing, Fact::Unfilled));
    }
    match f.info.name {
        "evt.res" => Some((Val::Str("SUCCESS"), Fact::Failed)),
        "evt.rawres" | "fd.num" => Some((Val::Num(0), Fact::Failed)),
        "evt.failed" => Some((Val::Bool(false), Fact::Failed)),
        "evt.is_open_read" => Some((Val::Bool(false), Fact::Read)),
        _ => None,
    }
}

/// What made a test false: the field (as written, or the test for a fact), why, on which
/// kinds, and whether it sat under an odd number of `not`s.
struct Found {
    what: String,
    fact: Fact,
    never: bool,
    kinds: u16,
    negated: bool,
}

struct Folder {
    found: Vec<Found>,
}

impl Folder {
    fn test(&mut self, t: &Test, k: u16, negated: bool) -> Tri {
        let mut sides = vec![(&t.field, t.xf.is_empty())];
        if let Pred::Field(c) = &t.pred {
            sides.push((&c.field, c.xf.is_empty()));
        }
        for (i, (f, plain)) in sides.into_iter().enumerate() {
            let Some((v, fact)) = constant(f, k) else {
                continue;
            };
            let result = if matches!(v, Val::Missing) {
                false
            } else if i == 0 && plain && !matches!(t.pred, Pred::Field(_)) {
                t.eval_const(v)
            } else {
                continue;
            };
            if !result {
                let what = match fact {
                    Fact::Unfilled => f.display_name(),
                    Fact::Failed | Fact::Read => t.lhs_name(),
                };
                let never = filled_kinds(f) == 0;
                match self
                    .found
                    .iter_mut()
                    .find(|x| x.what == what && x.fact == fact && x.negated == negated)
                {
                    Some(x) => x.kinds |= k,
                    None => self.found.push(Found {
                        what,
                        fact,
                        never,
                        kinds: k,
                        negated,
                    }),
                }
            }
            return if result { Tri::True } else { Tri::False };
        }
        Tri::Unknown
    }

    fn fold(&mut self, e: &Expr, k: u16, negated: bool) -> Tri {
        match e {
            Expr::Const(b) => tri(*b),
            Expr::EvtType(m) => tri(m & k != 0),
            Expr::Test(t) => self.test(t, k, negated),
            Expr::Not(x) => self.fold(x, k, !negated).not(),
            Expr::And(xs) => {
                let mut all_true = true;
                for x in xs.iter() {
                    match self.fold(x, k, negated) {
                        Tri::False => return Tri::False,
                        Tri::Unknown => all_true = false,
                        Tri::True => {}
                    }
                }
                if all_true { Tri::True } else { Tri::Unknown }
            }
            Expr::Or(xs) => {
                let mut all_false = true;
                for x in xs.iter() {
                    match self.fold(x, k, negated) {
                        Tri::True => return Tri::True,
                        Tri::Unknown => all_false = false,
                        Tri::False => {}
                    }
                }
                if all_false { Tri::False } else { Tri::Unknown }
            }
        }
    }
}

pub(crate) fn tri(b: bool) -> Tri {
    if b { Tri::True } else { Tri::False }
}

fn reason(f: &Found) -> String {
    let what = &f.what;
    match f.fact {
        Fact::Unfilled if f.never => format!("needs {what}, which driftwatch does not fill"),
        Fact::Unfilled => format!(
            "needs {what} on {} events, where driftwatch does not fill it",
            kind_names(f.kinds).join(", ")
        ),
        Fact::Failed => {
            format!("needs failed system calls ({what}), which driftwatch does not report")
        }
        Fact::Read => "needs file reads (evt.is_open_read), which driftwatch does not see".into(),
    }
}

/// The kinds of `mask` by the names Falco prints for them (`openat` once for open and creat).
fn kind_names(mask: u16) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for k in EventKind::ALL.iter().filter(|k| mask & kind_bit(**k) != 0) {
        let n = evt_type_name(*k);
        if !names.contains(&n) {
            names.push(n);
        }
    }
    names
}

/// `None` if the rule can be true on some event of the kinds in `mask`; otherwise why not.
/// `unmapped` are the `evt.type` names in the condition that driftwatch has no event for.
pub(crate) fn inactive_reason(expr: &Expr, mask: u16, unmapped: &[String]) -> Option<String> {
    if mask == 0 {
        let mut names: Vec<&str> = unmapped.iter().map(String::as_str).collect();
        names.sort_unstable();
        names.dedup();
        return Some(if names.is_empty() {
            "its evt.type tests exclude every event driftwatch produces".to_string()
        } else {
            format!(
                "needs {} events, which driftwatch does not trace",
                names.join(", ")
            )
        });
    }
    let mut folder = Folder { found: Vec::new() };
    for k in EventKind::ALL.iter().map(|k| kind_bit(*k)) {
        if mask & k != 0 && folder.fold(expr, k, false) != Tri::False {
            return None;
        }
    }
    let mut reasons: Vec<String> = Vec::new();
    for f in folder.found.iter().filter(|f| !f.negated) {
        let r = reason(f);
        if !reasons.contains(&r) {
            reasons.push(r);
        }
    }
    Some(if reasons.is_empty() {
        "its condition can never be true on driftwatch's events".to_string()
    } else {
        reasons.join("; ")
    })
}
