//! Compiled conditions and their evaluation against one event: a tree of tests on fields,
//! with lists as sets and regexes prebuilt, evaluated without allocating.

use aho_corasick::AhoCorasick;
use driftwatch_model::{Event, EventKind};
use regex::Regex;
use rustc_hash::FxHashSet;

use crate::fields::{Cidr, FieldArg, FieldId, FieldRef, Val, extract};
use crate::glob::Glob;
use crate::parser::{Op, Transformer};

mod transform;

pub(crate) use transform::Scratch;
use transform::{SideBufs, compare_values, side_value, transform};

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
            StrSet::Small(v) => v.iter().any(|x| fast_eq(x.as_bytes(), s.as_bytes())),
            StrSet::Hashed(h) => h.contains(s),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        match self {
            StrSet::Small(v) => v.is_empty(),
            StrSet::Hashed(h) => h.is_empty(),
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
    /// Several `startswith` merged: an anchored multi-pattern search, and its prefixes (what a
    /// directory's reach reads, `crate::dir_reach`).
    StartsWithAny(AhoCorasick, Box<[Box<str>]>),
    EndsWith(Box<str>),
    Glob(Glob),
    PMatch(Box<[Box<str>]>),
    Regex(Regex),
    Num(NumOp, i64),
    NumIn(Box<[i64]>),
    Bool(bool),
    /// `bcontains`: the bytes, decoded from Falco's hex.
    BContains(Box<[u8]>),
    BStartsWith(Box<[u8]>),
    BEndsWith(Box<[u8]>),
    /// A comparison with another field of the same event (`val(...)` or a transformer).
    Field(Box<FieldCmp>),
    /// `fd.net = "10.0.0.0/8"`, `fd.snet in (...)`: the address is in one of the networks.
    Cidr(Box<[Cidr]>),
}

/// The right-hand side of a field-to-field comparison. `op` is never `!=` (that is `=`,
/// negated by the test).
#[derive(Clone, Debug)]
pub(crate) struct FieldCmp {
    pub(crate) op: Op,
    pub(crate) field: FieldRef,
    pub(crate) xf: Box<[Transformer]>,
}

#[derive(Clone, Debug)]
pub(crate) struct Test {
    pub(crate) field: FieldRef,
    /// Transformers applied to the field's value before the test, innermost first.
    pub(crate) xf: Box<[Transformer]>,
    /// `!=`: true when the value is present and not equal.
    pub(crate) negate: bool,
    pub(crate) pred: Pred,
    /// Slot of this test's result in the per-event [`Memo`] when several rules share it.
    pub(crate) slot: u16,
}

/// No memo slot.
pub(crate) const NO_SLOT: u16 = u16::MAX;
/// Tests shared by several rules get a slot, up to this many.
pub(crate) const MEMO_SLOTS: usize = 512;

/// Results of shared tests for the event being evaluated: each is computed once per event
/// even when every rule starts with `container` or `spawned_process`.
pub(crate) struct Memo {
    done: [u64; MEMO_SLOTS / 64],
    val: [u64; MEMO_SLOTS / 64],
}

impl Memo {
    pub(crate) const fn new() -> Memo {
        Memo {
            done: [0; MEMO_SLOTS / 64],
            val: [0; MEMO_SLOTS / 64],
        }
    }

    pub(crate) fn clear(&mut self) {
        self.done = [0; MEMO_SLOTS / 64];
    }
}

/// What one evaluation needs besides the event: the scratch buffer for composed values and
/// the memo of shared tests. Kept per thread and reused, so evaluation does not allocate.
pub(crate) struct EvalState {
    pub(crate) scratch: Scratch,
    pub(crate) memo: Memo,
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

/// String equality that rejects on length, first and last byte before calling `memcmp`:
/// most mismatches in rule sets (names, paths) differ there.
#[inline(always)]
fn fast_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && match (a.first(), b.first(), a.last(), b.last()) {
            (Some(a0), Some(b0), Some(a1), Some(b1)) => a0 == b0 && a1 == b1 && a == b,
            _ => true,
        }
}

#[inline(always)]
fn fast_starts_with(s: &[u8], p: &[u8]) -> bool {
    s.len() >= p.len() && fast_eq(&s[..p.len()], p)
}

/// ASCII case-insensitive `contains` (either side may have capitals).
pub(crate) fn icontains(hay: &str, needle_lower: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle_lower.as_bytes());
    if n.is_empty() {
        return true;
    }
    h.len() >= n.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// Falco's `pmatch`: the path is one of the prefixes or below one of them.
fn pmatch(path: &str, prefixes: &[Box<str>]) -> bool {
    let b = path.as_bytes();
    prefixes.iter().any(|p| {
        let p = p.as_bytes();
        fast_starts_with(b, p)
            && (b.len() == p.len() || p.last() == Some(&b'/') || b[p.len()] == b'/')
    })
}

/// Ancestor fields Falco compares with every ancestor when they have no index.
fn is_ancestor_field(id: FieldId) -> bool {
    matches!(
        id,
        FieldId::ProcAname
            | FieldId::ProcApid
            | FieldId::ProcAexepath
            | FieldId::ProcAexe
            | FieldId::ProcAcmdline
    )
}

impl Pred {
    fn str(&self, s: &str) -> bool {
        match self {
            Pred::Exists => true,
            Pred::StrEq(x) => fast_eq(x.as_bytes(), s.as_bytes()),
            Pred::StrIn(set) => set.contains(s),
            Pred::Contains(x) => s.contains(&**x),
            Pred::IContains(x) => icontains(s, x),
            Pred::StartsWith(x) => fast_starts_with(s.as_bytes(), x.as_bytes()),
            Pred::StartsWithAny(ac, _) => ac
                .find(aho_corasick::Input::new(s).anchored(aho_corasick::Anchored::Yes))
                .is_some(),
            Pred::EndsWith(x) => s.ends_with(&**x),
            Pred::Glob(g) => g.is_match(s),
            Pred::PMatch(p) => pmatch(s, p),
            Pred::Regex(r) => r.is_match(s),
            Pred::BContains(b) => bcontains(s.as_bytes(), b),
            Pred::BStartsWith(b) => s.as_bytes().starts_with(b),
            Pred::BEndsWith(b) => s.as_bytes().ends_with(b),
            Pred::Cidr(nets) => nets.iter().any(|n| n.contains(s)),
            Pred::Num(..) | Pred::NumIn(_) | Pred::Bool(_) | Pred::Field(_) => false,
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
    #[inline(never)]
    fn eval_memo(&self, ev: &Event, st: &mut EvalState) -> bool {
        if self.slot == NO_SLOT {
            return self.eval(ev, &mut st.scratch);
        }
        let (w, b) = (usize::from(self.slot) / 64, 1u64 << (self.slot % 64));
        if st.memo.done[w] & b != 0 {
            return st.memo.val[w] & b != 0;
        }
        let r = self.eval(ev, &mut st.scratch);
        st.memo.done[w] |= b;
        if r {
            st.memo.val[w] |= b;
        } else {
            st.memo.val[w] &= !b;
        }
        r
    }

    /// A key equal for tests that always give the same result.
    pub(crate) fn key(&self) -> String {
        let pred = match &self.pred {
            Pred::StrIn(set) => {
                let mut items = set.items();
                items.sort();
                format!("in{items:?}")
            }
            Pred::StartsWithAny(..) => return String::new(),
            Pred::Regex(r) => format!("re{:?}", r.as_str()),
            other => format!("{other:?}"),
        };
        format!("{}|{}|{}", self.lhs_name(), self.negate, pred)
    }

    /// The test's result for a known value of its (untransformed) field.
    pub(crate) fn eval_const(&self, v: Val<'_>) -> bool {
        let pos = match v {
            Val::Missing => return false,
            Val::Str(s) => self.pred.str(s),
            Val::Num(n) => self.pred.num(n),
            Val::Bool(b) => self.pred.bool(b),
        };
        pos != self.negate
    }

    /// The tested field as written: `tolower(proc.name)`.
    pub(crate) fn lhs_name(&self) -> String {
        side_name(&self.field, &self.xf)
    }

    pub(crate) fn eval(&self, ev: &Event, sc: &mut Scratch) -> bool {
        if matches!(self.field.arg, FieldArg::None) && is_ancestor_field(self.field.info.id) {
            return self.eval_ancestors(ev, sc);
        }
        let Scratch { lhs, rhs } = sc;
        let SideBufs { raw, out, bytes } = lhs;
        let v = extract(&self.field, ev, raw);
        if self.xf.is_empty() {
            return self.test_val(v, ev, rhs);
        }
        let t = transform(&self.xf, v, out, bytes);
        self.test_val(t, ev, rhs)
    }

    /// Falco's test of an ancestor field without an index (`proc.aname`, `proc.apid`, ...):
    /// true when the comparison, whatever its operator, holds for one ancestor from the parent
    /// up. `proc.aname != sh` is true when some ancestor is not `sh`; `not proc.aname = sh`
    /// is true when none is. No known ancestor: false. This is libsinsp's
    /// `sinsp_filter_check_thread::compare_nocache`, which hands these fields to
    /// `compare_full_apid`/`compare_full_aname`/... (userspace/libsinsp/sinsp_filtercheck_thread.cpp,
    /// walking `traverse_parent_state` from the parent). Transformers apply to each ancestor's
    /// value. driftwatch knows the parent's argv alone, so `proc.aexe` and `proc.acmdline`
    /// test the parent only.
    fn eval_ancestors(&self, ev: &Event, sc: &mut Scratch) -> bool {
        let p = &ev.process;
        let Scratch { lhs, rhs } = sc;
        let SideBufs { raw, out, bytes } = lhs;
        let mut one = |v: Val<'_>| {
            let t = if self.xf.is_empty() {
                v
            } else {
                transform(&self.xf, v, out, bytes)
            };
            self.test_val(t, ev, rhs)
        };
        match self.field.info.id {
            FieldId::ProcAname => p.ancestors.iter().any(|s| one(Val::Str(s))),
            FieldId::ProcApid => p.ancestor_pids.iter().any(|n| one(Val::Num(i64::from(*n)))),
            FieldId::ProcAexepath => p.ancestor_exepaths.iter().any(|s| one(Val::Str(s))),
            FieldId::ProcAexe | FieldId::ProcAcmdline => {
                let parent = FieldRef {
                    info: self.field.info,
                    arg: FieldArg::Index(1),
                };
                one(extract(&parent, ev, raw))
            }
            _ => false,
        }
    }

    fn test_val(&self, v: Val<'_>, ev: &Event, rhs: &mut SideBufs) -> bool {
        if matches!(v, Val::Missing) {
            return false;
        }
        if let Pred::Field(cmp) = &self.pred {
            let r = side_value(&cmp.field, &cmp.xf, ev, rhs);
            return compare_values(cmp.op, v, r).is_some_and(|m| m != self.negate);
        }
        self.test_val_pos(v, ev, rhs) != self.negate
    }

    /// Whether the value matches, before `!=` negates it (false when missing).
    fn test_val_pos(&self, v: Val<'_>, ev: &Event, rhs: &mut SideBufs) -> bool {
        match v {
            Val::Missing => false,
            _ if matches!(self.pred, Pred::Field(_)) => {
                let Pred::Field(cmp) = &self.pred else {
                    return false;
                };
                let r = side_value(&cmp.field, &cmp.xf, ev, rhs);
                compare_values(cmp.op, v, r).unwrap_or(false)
            }
            Val::Str(s) => self.pred.str(s),
            Val::Num(n) => self.pred.num(n),
            Val::Bool(b) => self.pred.bool(b),
        }
    }
}

impl Expr {
    /// Whether the expression holds for `ev`, whose kind bit is `kind`. Leaves are handled in
    /// the loops of their parents, so only compound nodes recurse.
    pub(crate) fn eval(&self, ev: &Event, kind: u16, st: &mut EvalState) -> bool {
        match self {
            Expr::And(xs) => xs.iter().all(|x| x.leaf_or_eval(ev, kind, st)),
            Expr::Or(xs) => xs.iter().any(|x| x.leaf_or_eval(ev, kind, st)),
            Expr::Not(x) => !x.leaf_or_eval(ev, kind, st),
            leaf => leaf.leaf_or_eval(ev, kind, st),
        }
    }

    #[inline(always)]
    fn leaf_or_eval(&self, ev: &Event, kind: u16, st: &mut EvalState) -> bool {
        match self {
            Expr::Const(b) => *b,
            Expr::EvtType(m) => m & kind != 0,
            Expr::Test(t) => t.eval_memo(ev, st),
            compound => compound.eval(ev, kind, st),
        }
    }

    /// Drops top-level `evt.type` conjuncts that hold for every kind in `mask`: the rule index
    /// already guarantees them.
    pub(crate) fn strip_kind_checks(self, mask: u16) -> Expr {
        match self {
            Expr::And(xs) => {
                let v: Vec<Expr> = xs
                    .into_vec()
                    .into_iter()
                    .filter(|x| !matches!(x, Expr::EvtType(m) if mask & !m == 0))
                    .collect();
                match v.len() {
                    0 => Expr::Const(true),
                    1 => v.into_iter().next().unwrap_or(Expr::Const(true)),
                    _ => Expr::And(v.into()),
                }
            }
            Expr::EvtType(m) if mask & !m == 0 => Expr::Const(true),
            other => other,
        }
    }

    /// Calls `f` on every test.
    pub(crate) fn for_each_test(&mut self, f: &mut impl FnMut(&mut Test)) {
        match self {
            Expr::And(xs) | Expr::Or(xs) => xs.iter_mut().for_each(|x| x.for_each_test(f)),
            Expr::Not(x) => x.for_each_test(f),
            Expr::Test(t) => f(t),
            Expr::Const(_) | Expr::EvtType(_) => {}
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
            Expr::Test(t) => fold_test(*t),
            other => other,
        }
    }

    /// A rough evaluation cost, used to test cheap (and usually selective) conditions first.
    fn cost(&self) -> u32 {
        match self {
            Expr::Const(_) | Expr::EvtType(_) => 0,
            Expr::Not(x) => x.cost(),
            // Optimistic: a compound usually ends at its cheapest part (an `evt.type` test).
            Expr::And(xs) | Expr::Or(xs) => xs.iter().map(Expr::cost).min().unwrap_or(0) + 1,
            Expr::Test(t) => {
                let field = match t.field.info.id {
                    FieldId::DriftKind | FieldId::DriftSubject | FieldId::DriftVerdict => 1,
                    FieldId::ProcCmdline | FieldId::ProcArgs | FieldId::ContainerImage => 8,
                    FieldId::ProcEnv => 4,
                    _ => 2,
                };
                let pred = match &t.pred {
                    Pred::Exists | Pred::StrEq(_) | Pred::Num(..) | Pred::Bool(_) => 0,
                    Pred::StrIn(StrSet::Small(_))
                    | Pred::NumIn(_)
                    | Pred::StartsWith(_)
                    | Pred::EndsWith(_) => 1,
                    Pred::StrIn(StrSet::Hashed(_)) => 2,
                    Pred::Regex(_) => 10,
                    Pred::Field(_) => 6,
                    _ => 3,
                };
                let xf = 2 * u32::try_from(t.xf.len()).unwrap_or(8);
                field + pred + xf
            }
        }
    }

    /// Whether the expression is an exclusion (`not ...`, `!=`): in a rule's `and` it is true
    /// for almost every event (Falco's rules are a condition followed by `and not` exceptions),
    /// so it rarely ends the `and`.
    fn usually_true(&self) -> bool {
        match self {
            Expr::Not(_) => true,
            Expr::Test(t) => t.negate,
            _ => false,
        }
    }

    /// Orders every `and` so the tests that can end it run first: conditions before
    /// exclusions, then cheaper before dearer (stable, so equal keys keep their written
    /// order). Conditions have no side effects and a missing value is simply false, so the
    /// order does not change results. Upstream Falco rules list their exceptions first
    /// (`open_write and not proc.name in (...) and not ... and fd.directory in (...)`): taking
    /// the condition first halves their cost on benign events.
    pub(crate) fn order_by_cost(self) -> Expr {
        match self {
            Expr::And(xs) => {
                let mut v: Vec<Expr> = xs.into_vec().into_iter().map(Expr::order_by_cost).collect();
                v.sort_by_key(|x| (x.usually_true(), x.cost()));
                Expr::And(v.into())
            }
            Expr::Or(xs) => {
                let mut v: Vec<Expr> = xs.into_vec().into_iter().map(Expr::order_by_cost).collect();
                v.sort_by_key(Expr::cost);
                Expr::Or(v.into())
            }
            Expr::Not(x) => Expr::Not(Box::new(x.order_by_cost())),
            other => other,
        }
    }

    /// Every `and` and `or` with its operands in reverse order: a test's check that the
    /// evaluation order chosen by [`Expr::order_by_cost`] cannot change a result.
    #[cfg(test)]
    pub(crate) fn reversed(self) -> Expr {
        let rev = |xs: Box<[Expr]>| -> Box<[Expr]> {
            xs.into_vec()
                .into_iter()
                .rev()
                .map(Expr::reversed)
                .collect()
        };
        match self {
            Expr::And(xs) => Expr::And(rev(xs)),
            Expr::Or(xs) => Expr::Or(rev(xs)),
            Expr::Not(x) => Expr::Not(Box::new(x.reversed())),
            other => other,
        }
    }
}

impl std::fmt::Display for Expr {
    /// The compiled condition in condition syntax (macros and lists expanded, evaluation
    /// order), for `rules list --explain` and debugging.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let join = |f: &mut std::fmt::Formatter<'_>, xs: &[Expr], sep: &str| {
            f.write_str("(")?;
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    write!(f, " {sep} ")?;
                }
                write!(f, "{x}")?;
            }
            f.write_str(")")
        };
        match self {
            Expr::Const(b) => write!(f, "{b}"),
            Expr::And(xs) => join(f, xs, "and"),
            Expr::Or(xs) => join(f, xs, "or"),
            Expr::Not(x) => write!(f, "not {x}"),
            Expr::EvtType(m) => {
                let names: Vec<&str> = EventKind::ALL
                    .iter()
                    .filter(|k| m & kind_bit(**k) != 0)
                    .map(|k| k.as_str())
                    .collect();
                write!(f, "evt.type in ({})", names.join(", "))
            }
            Expr::Test(t) => {
                let name = t.lhs_name();
                let ne = if t.negate { "!" } else { "" };
                match &t.pred {
                    Pred::Exists => write!(f, "{name} exists"),
                    Pred::StrEq(v) => write!(f, "{name} {ne}= {v:?}"),
                    Pred::StrIn(set) => {
                        let mut items = set.items();
                        items.sort();
                        write!(f, "{name} in ({})", items.join(", "))
                    }
                    Pred::Contains(v) => write!(f, "{name} contains {v:?}"),
                    Pred::IContains(v) => write!(f, "{name} icontains {v:?}"),
                    Pred::StartsWith(v) => write!(f, "{name} startswith {v:?}"),
                    Pred::StartsWithAny(..) => write!(f, "{name} startswith (...)"),
                    Pred::EndsWith(v) => write!(f, "{name} endswith {v:?}"),
                    Pred::Glob(_) => write!(f, "{name} glob ..."),
                    Pred::PMatch(v) => write!(f, "{name} pmatch ({})", v.join(", ")),
                    Pred::Regex(r) => write!(f, "{name} regex {:?}", r.as_str()),
                    Pred::Cidr(nets) => write!(f, "{name} {ne}in {nets:?}"),
                    Pred::Num(op, n) => write!(f, "{name} {ne}{op:?} {n}"),
                    Pred::NumIn(v) => write!(f, "{name} in {v:?}"),
                    Pred::Bool(b) => write!(f, "{name} {ne}= {b}"),
                    Pred::BContains(b) => write!(f, "{name} bcontains {}", hex(b)),
                    Pred::BStartsWith(b) => write!(f, "{name} bstartswith {}", hex(b)),
                    Pred::BEndsWith(b) => write!(f, "{name} bendswith {}", hex(b)),
                    Pred::Field(c) => {
                        let op = if t.negate { "!=" } else { c.op.as_str() };
                        let rhs = side_name(&c.field, &c.xf);
                        if c.xf.is_empty() {
                            write!(f, "{name} {op} val({rhs})")
                        } else {
                            write!(f, "{name} {op} {rhs}")
                        }
                    }
                }
            }
        }
    }
}

/// Folds tests whose result is known at load time: `evt.dir` is always `<`, and an empty
/// set matches nothing.
fn fold_test(t: Test) -> Expr {
    if t.field.info.id == FieldId::EvtDir
        && t.xf.is_empty()
        && let Pred::StrEq(v) = &t.pred
    {
        return Expr::Const((&**v == "<") != t.negate);
    }
    match &t.pred {
        Pred::StrIn(set) if set.is_empty() => Expr::Const(false),
        Pred::NumIn(xs) if xs.is_empty() => Expr::Const(false),
        Pred::PMatch(xs) if xs.is_empty() => Expr::Const(false),
        _ => Expr::Test(Box::new(t)),
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
            Expr::Test(t)
                if !t.negate
                    && t.xf.is_empty()
                    && matches!(t.pred, Pred::StrEq(_) | Pred::StrIn(_)) =>
            {
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
            Expr::Test(t)
                if !t.negate && t.xf.is_empty() && matches!(t.pred, Pred::StartsWith(_)) =>
            {
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
            xf: Box::default(),
            negate: false,
            pred,
            slot: NO_SLOT,
        }));
    }
    for (field, vals, slot) in prefixes {
        let pred = if vals.len() < 3 {
            let tests: Vec<Expr> = vals
                .into_iter()
                .map(|p| {
                    Expr::Test(Box::new(Test {
                        field: field.clone(),
                        xf: Box::default(),
                        negate: false,
                        pred: Pred::StartsWith(p.into()),
                        slot: NO_SLOT,
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
                Ok(ac) => {
                    Pred::StartsWithAny(ac, vals.into_iter().map(String::into_boxed_str).collect())
                }
                Err(_) => {
                    let tests: Vec<Expr> = vals
                        .into_iter()
                        .map(|p| {
                            Expr::Test(Box::new(Test {
                                field: field.clone(),
                                xf: Box::default(),
                                negate: false,
                                pred: Pred::StartsWith(p.into()),
                                slot: NO_SLOT,
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
            xf: Box::default(),
            negate: false,
            pred,
            slot: NO_SLOT,
        }));
    }
    out
}

/// `tolower(basename(fd.name))`, as written.
pub(crate) fn side_name(field: &FieldRef, xf: &[Transformer]) -> String {
    let mut s = field.display_name();
    for t in xf {
        s = format!("{}({s})", t.as_str());
    }
    s
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn bcontains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
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
