//! Compiled conditions and their evaluation against one event: a tree of tests on fields,
//! with lists as sets and regexes prebuilt, evaluated without allocating.

use aho_corasick::AhoCorasick;
use driftwatch_model::{Event, EventKind};
use regex::Regex;
use rustc_hash::FxHashSet;

use crate::fields::{FieldRef, Val, extract};
use crate::glob::Glob;

/// Bit of an event kind in a kind mask.
pub(crate) fn kind_bit(kind: EventKind) -> u16 {
    let i = EventKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
    1 << i
}

/// Every kind driftwatch produces.
pub(crate) const ALL_KINDS: u16 = (1 << EventKind::ALL.len()) - 1;

/// A set of strings for `in`: a short list is scanned, a long one hashed.
#[derive(Clone, Debug)]
pub(crate) enum StrSet {
    Small(Box<[Box<str>]>),
    Hashed(FxHashSet<Box<str>>),
}

const SMALL_SET: usize = 8;

impl StrSet {
    pub(crate) fn new(items: impl IntoIterator<Item = String>) -> StrSet {
        let mut v: Vec<Box<str>> = items.into_iter().map(String::into_boxed_str).collect();
        v.sort();
        v.dedup();
        if v.len() <= SMALL_SET {
            StrSet::Small(v.into())
        } else {
            StrSet::Hashed(v.into_iter().collect())
        }
    }

    pub(crate) fn contains(&self, s: &str) -> bool {
        match self {
            StrSet::Small(v) => v.iter().any(|x| &**x == s),
            StrSet::Hashed(h) => h.contains(s),
        }
    }

    pub(crate) fn items(&self) -> Vec<String> {
        match self {
            StrSet::Small(v) => v.iter().map(|s| s.to_string()).collect(),
            StrSet::Hashed(h) => h.iter().map(|s| s.to_string()).collect(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NumOp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// The test applied to a field's value.
#[derive(Clone, Debug)]
pub(crate) enum Pred {
    Exists,
    StrEq(Box<str>),
    StrIn(StrSet),
    Contains(Box<str>),
    /// Needle already lowercased (ASCII).
    IContains(Box<str>),
    StartsWith(Box<str>),
    /// Several `startswith` merged: an anchored multi-pattern search.
    StartsWithAny(AhoCorasick),
    EndsWith(Box<str>),
    Glob(Glob),
    PMatch(Box<[Box<str>]>),
    Regex(Regex),
    Num(NumOp, i64),
    NumIn(Box<[i64]>),
    Bool(bool),
}

#[derive(Clone, Debug)]
pub(crate) struct Test {
    pub(crate) field: FieldRef,
    /// `!=`: true when the value is present and not equal.
    pub(crate) negate: bool,
    pub(crate) pred: Pred,
}

#[derive(Clone, Debug)]
pub(crate) enum Expr {
    Const(bool),
    And(Box<[Expr]>),
    Or(Box<[Expr]>),
    Not(Box<Expr>),
    /// `evt.type` in a set of kinds.
    EvtType(u16),
    Test(Box<Test>),
}

fn icontains(hay: &str, needle_lower: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle_lower.as_bytes());
    if n.is_empty() {
        return true;
    }
    h.len() >= n.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// Falco's `pmatch`: the path is one of the prefixes or below one of them.
fn pmatch(path: &str, prefixes: &[Box<str>]) -> bool {
    prefixes.iter().any(|p| {
        path.strip_prefix(&**p)
            .is_some_and(|rest| rest.is_empty() || p.ends_with('/') || rest.starts_with('/'))
    })
}

impl Pred {
    fn str(&self, s: &str) -> bool {
        match self {
            Pred::Exists => true,
            Pred::StrEq(x) => &**x == s,
            Pred::StrIn(set) => set.contains(s),
            Pred::Contains(x) => s.contains(&**x),
            Pred::IContains(x) => icontains(s, x),
            Pred::StartsWith(x) => s.starts_with(&**x),
            Pred::StartsWithAny(ac) => ac
                .find(aho_corasick::Input::new(s).anchored(aho_corasick::Anchored::Yes))
                .is_some(),
            Pred::EndsWith(x) => s.ends_with(&**x),
            Pred::Glob(g) => g.is_match(s),
            Pred::PMatch(p) => pmatch(s, p),
            Pred::Regex(r) => r.is_match(s),
            Pred::Num(..) | Pred::NumIn(_) | Pred::Bool(_) => false,
        }
    }

    fn num(&self, n: i64) -> bool {
        match self {
            Pred::Exists => true,
            Pred::Num(op, x) => match op {
                NumOp::Eq => n == *x,
                NumOp::Lt => n < *x,
                NumOp::Le => n <= *x,
                NumOp::Gt => n > *x,
                NumOp::Ge => n >= *x,
            },
            Pred::NumIn(xs) => xs.contains(&n),
            _ => false,
        }
    }

    fn bool(&self, b: bool) -> bool {
        match self {
            Pred::Exists => true,
            Pred::Bool(x) => *x == b,
            _ => false,
        }
    }
}

impl Test {
    pub(crate) fn eval(&self, ev: &Event, scratch: &mut String) -> bool {
        let v = extract(&self.field, ev, scratch);
        match v {
            Val::Missing => false,
            Val::Str(s) => self.pred.str(s) != self.negate,
            Val::Strs(xs) => xs.iter().any(|s| self.pred.str(s)) != self.negate,
            Val::Num(n) => self.pred.num(n) != self.negate,
            Val::Bool(b) => self.pred.bool(b) != self.negate,
        }
    }
}

impl Expr {
    pub(crate) fn eval(&self, ev: &Event, kind: u16, scratch: &mut String) -> bool {
        match self {
            Expr::Const(b) => *b,
            Expr::And(xs) => xs.iter().all(|x| x.eval(ev, kind, scratch)),
            Expr::Or(xs) => xs.iter().any(|x| x.eval(ev, kind, scratch)),
            Expr::Not(x) => !x.eval(ev, kind, scratch),
            Expr::EvtType(m) => m & kind != 0,
            Expr::Test(t) => t.eval(ev, scratch),
        }
    }

    /// The event kinds this expression can match, and whether that set is exact
    /// (the expression tests nothing but `evt.type`).
    pub(crate) fn kinds(&self) -> (u16, bool) {
        match self {
            Expr::Const(true) => (ALL_KINDS, true),
            Expr::Const(false) => (0, true),
            Expr::EvtType(m) => (*m, true),
            Expr::Test(_) => (ALL_KINDS, false),
            Expr::Not(x) => match x.kinds() {
                (m, true) => (!m & ALL_KINDS, true),
                _ => (ALL_KINDS, false),
            },
            Expr::And(xs) => xs.iter().fold((ALL_KINDS, true), |(m, e), x| {
                let (xm, xe) = x.kinds();
                (m & xm, e && xe)
            }),
            Expr::Or(xs) => xs.iter().fold((0, true), |(m, e), x| {
                let (xm, xe) = x.kinds();
                (m | xm, e && xe)
            }),
        }
    }

    /// Number of nodes, to bound macro expansion.
    pub(crate) fn size(&self) -> usize {
        match self {
            Expr::And(xs) | Expr::Or(xs) => 1 + xs.iter().map(Expr::size).sum::<usize>(),
            Expr::Not(x) => 1 + x.size(),
            _ => 1,
        }
    }

    /// Flattens nested `and`/`or`, folds constants, and merges `or`s of equality tests on one
    /// field into one set lookup and of `startswith` tests into one multi-prefix search.
    pub(crate) fn simplify(self) -> Expr {
        match self {
            Expr::And(xs) => {
                let mut out = Vec::with_capacity(xs.len());
                for x in xs.into_vec() {
                    match x.simplify() {
                        Expr::Const(true) => {}
                        Expr::Const(false) => return Expr::Const(false),
                        Expr::And(inner) => out.extend(inner.into_vec()),
                        other => out.push(other),
                    }
                }
                match out.len() {
                    0 => Expr::Const(true),
                    1 => out.remove(0),
                    _ => Expr::And(out.into()),
                }
            }
            Expr::Or(xs) => {
                let mut out = Vec::with_capacity(xs.len());
                for x in xs.into_vec() {
                    match x.simplify() {
                        Expr::Const(false) => {}
                        Expr::Const(true) => return Expr::Const(true),
                        Expr::Or(inner) => out.extend(inner.into_vec()),
                        other => out.push(other),
                    }
                }
                let out = merge_or(out);
                match out.len() {
                    0 => Expr::Const(false),
                    1 => out.into_iter().next().unwrap_or(Expr::Const(false)),
                    _ => Expr::Or(out.into()),
                }
            }
            Expr::Not(x) => match x.simplify() {
                Expr::Const(b) => Expr::Const(!b),
                Expr::Not(inner) => *inner,
                other => Expr::Not(Box::new(other)),
            },
            other => other,
        }
    }
}

/// Merges, within one `or`, the `evt.type` tests, the equality tests per field, and the
/// `startswith` tests per field.
fn merge_or(items: Vec<Expr>) -> Vec<Expr> {
    let mut out: Vec<Expr> = Vec::with_capacity(items.len());
    let mut evt: Option<usize> = None;
    let mut eq: Vec<(FieldRef, Vec<String>, usize)> = Vec::new();
    let mut prefixes: Vec<(FieldRef, Vec<String>, usize)> = Vec::new();
    for x in items {
        match x {
            Expr::EvtType(m) => match evt {
                Some(i) => {
                    if let Expr::EvtType(old) = &mut out[i] {
                        *old |= m;
                    }
                }
                None => {
                    evt = Some(out.len());
                    out.push(Expr::EvtType(m));
                }
            },
            Expr::Test(t) if !t.negate && matches!(t.pred, Pred::StrEq(_) | Pred::StrIn(_)) => {
                let vals = match &t.pred {
                    Pred::StrEq(s) => vec![s.to_string()],
                    Pred::StrIn(set) => set.items(),
                    _ => Vec::new(),
                };
                match eq.iter_mut().find(|(f, _, _)| *f == t.field) {
                    Some((_, v, _)) => v.extend(vals),
                    None => {
                        eq.push((t.field.clone(), vals, out.len()));
                        out.push(Expr::Const(false));
                    }
                }
            }
            Expr::Test(t) if !t.negate && matches!(t.pred, Pred::StartsWith(_)) => {
                let Pred::StartsWith(p) = &t.pred else {
                    continue;
                };
                match prefixes.iter_mut().find(|(f, _, _)| *f == t.field) {
                    Some((_, v, _)) => v.push(p.to_string()),
                    None => {
                        prefixes.push((t.field.clone(), vec![p.to_string()], out.len()));
                        out.push(Expr::Const(false));
                    }
                }
            }
            other => out.push(other),
        }
    }
    for (field, vals, slot) in eq {
        let pred = if vals.len() == 1 {
            Pred::StrEq(vals.into_iter().next().unwrap_or_default().into())
        } else {
            Pred::StrIn(StrSet::new(vals))
        };
        out[slot] = Expr::Test(Box::new(Test {
            field,
            negate: false,
            pred,
        }));
    }
    for (field, vals, slot) in prefixes {
        let pred = if vals.len() < 3 {
            let tests: Vec<Expr> = vals
                .into_iter()
                .map(|p| {
                    Expr::Test(Box::new(Test {
                        field: field.clone(),
                        negate: false,
                        pred: Pred::StartsWith(p.into()),
                    }))
                })
                .collect();
            out[slot] = if tests.len() == 1 {
                tests.into_iter().next().unwrap_or(Expr::Const(false))
            } else {
                Expr::Or(tests.into())
            };
            continue;
        } else {
            match AhoCorasick::builder()
                .start_kind(aho_corasick::StartKind::Anchored)
                .build(&vals)
            {
                Ok(ac) => Pred::StartsWithAny(ac),
                Err(_) => {
                    let tests: Vec<Expr> = vals
                        .into_iter()
                        .map(|p| {
                            Expr::Test(Box::new(Test {
                                field: field.clone(),
                                negate: false,
                                pred: Pred::StartsWith(p.into()),
                            }))
                        })
                        .collect();
                    out[slot] = Expr::Or(tests.into());
                    continue;
                }
            }
        };
        out[slot] = Expr::Test(Box::new(Test {
            field,
            negate: false,
            pred,
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pmatch_respects_path_boundaries() {
        let p: Vec<Box<str>> = vec!["/var/run".into(), "/etc/".into()];
        assert!(pmatch("/var/run", &p));
        assert!(pmatch("/var/run/docker.sock", &p));
        assert!(!pmatch("/var/running", &p));
        assert!(pmatch("/etc/passwd", &p));
        assert!(!pmatch("/etcx", &p));
    }

    #[test]
    fn icontains_is_ascii_case_insensitive() {
        assert!(icontains("Hello World", "o w"));
        assert!(icontains("x", ""));
        assert!(!icontains("ab", "abc"));
    }

    #[test]
    fn sets() {
        let small = StrSet::new(["a".to_string(), "b".to_string()]);
        assert!(small.contains("a") && !small.contains("c"));
        let big = StrSet::new((0..100).map(|i| i.to_string()));
        assert!(matches!(big, StrSet::Hashed(_)));
        assert!(big.contains("42") && !big.contains("100"));
    }
}
