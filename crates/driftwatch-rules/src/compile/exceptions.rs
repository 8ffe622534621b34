//! Falco's rule `exceptions` compiled into the `not (...)` they add to a rule's condition:
//! one field with one operator and values, or tuples of fields with `comps`.

use super::{Compiler, Values};
use crate::compile_error::CompileError;
use crate::eval::Expr;
use crate::fields::FieldRef;
use crate::loader::{ExcEntry, ExceptionDef, Shape};
use crate::parser::{FieldTok, Op, parse_field_token};
use crate::source::Pos;

impl Compiler<'_> {
    /// An exception as `not (...)` material: `Some(None)` when it has no values.
    pub(super) fn compile_exception(&mut self, e: &ExceptionDef) -> Option<Option<Expr>> {
        let Some(fields) = &e.fields else {
            self.error(
                e.name.at.pos(),
                CompileError::ExceptionWithoutFields {
                    name: e.name.value.clone(),
                },
            );
            return None;
        };
        match fields {
            Shape::One(fstr) => {
                let fref = self.field_from_str(&fstr.value, fstr.at.pos());
                let (op, op_pos) = match &e.comps {
                    None => (Some(Op::In), fstr.at.pos()),
                    Some(Shape::One(c)) => (self.comp(&c.value, c.at.pos()), c.at.pos()),
                    Some(Shape::Many(cs, at)) => {
                        self.error(
                            at.pos(),
                            CompileError::ExceptionCompsArity {
                                comps: cs.len(),
                                fields: 1,
                            },
                        );
                        (None, at.pos())
                    }
                };
                let (fref, op) = (fref?, op?);
                let mut vals = Vec::new();
                let mut ok = true;
                for row in &e.values {
                    if row.is_tuple {
                        self.error(row.at.pos(), CompileError::ExceptionTupleForSingleField);
                        ok = false;
                        continue;
                    }
                    for entry in &row.entries {
                        vals.extend(self.entry_values(entry, true));
                    }
                }
                if !ok {
                    return None;
                }
                if vals.is_empty() {
                    return Some(None);
                }
                if op.takes_list() {
                    let pos = e.values.first().map_or(op_pos, |r| r.at.pos());
                    return self
                        .test(fref, op, op_pos, Values::List(vals, pos))
                        .map(Some);
                }
                let pos = e.values.first().map_or(op_pos, |r| r.at.pos());
                let tests: Option<Vec<Expr>> = vals
                    .into_iter()
                    .map(|v| self.test(fref.clone(), op, op_pos, Values::One(v, pos)))
                    .collect();
                Some(Some(Expr::Or(tests?.into())))
            }
            Shape::Many(fstrs, _) => {
                let frefs: Vec<Option<FieldRef>> = fstrs
                    .iter()
                    .map(|f| self.field_from_str(&f.value, f.at.pos()))
                    .collect();
                let ops: Vec<(Option<Op>, Pos)> = match &e.comps {
                    None => fstrs.iter().map(|f| (Some(Op::Eq), f.at.pos())).collect(),
                    Some(Shape::Many(cs, at)) => {
                        if cs.len() != fstrs.len() {
                            self.error(
                                at.pos(),
                                CompileError::ExceptionCompsArity {
                                    comps: cs.len(),
                                    fields: fstrs.len(),
                                },
                            );
                            return None;
                        }
                        cs.iter()
                            .map(|c| (self.comp(&c.value, c.at.pos()), c.at.pos()))
                            .collect()
                    }
                    Some(Shape::One(c)) => {
                        self.error(
                            c.at.pos(),
                            CompileError::ExceptionCompsArity {
                                comps: 1,
                                fields: fstrs.len(),
                            },
                        );
                        return None;
                    }
                };
                let frefs: Vec<FieldRef> = frefs.into_iter().collect::<Option<Vec<_>>>()?;
                if ops.iter().any(|(o, _)| o.is_none()) {
                    return None;
                }
                let mut rows = Vec::new();
                let mut ok = true;
                for row in &e.values {
                    if row.entries.len() != frefs.len() {
                        self.error(
                            row.at.pos(),
                            CompileError::ExceptionArity {
                                values: row.entries.len(),
                                fields: frefs.len(),
                            },
                        );
                        ok = false;
                        continue;
                    }
                    let mut tests = Vec::new();
                    for ((entry, f), (op, op_pos)) in row.entries.iter().zip(&frefs).zip(&ops) {
                        let op = op.unwrap_or(Op::Eq);
                        let values = if op.takes_list() {
                            let pos = entry_pos(entry);
                            Values::List(self.entry_values(entry, true), pos)
                        } else {
                            match entry {
                                ExcEntry::One(s) => Values::One(s.value.clone(), s.at.pos()),
                                ExcEntry::Many(_, at) => {
                                    self.error(
                                        at.pos(),
                                        CompileError::ListNotAllowed { op: op.as_str() },
                                    );
                                    ok = false;
                                    continue;
                                }
                            }
                        };
                        match self.test(f.clone(), op, *op_pos, values) {
                            Some(t) => tests.push(t),
                            None => ok = false,
                        }
                    }
                    rows.push(Expr::And(tests.into()));
                }
                if !ok {
                    return None;
                }
                if rows.is_empty() {
                    return Some(None);
                }
                Some(Some(Expr::Or(rows.into())))
            }
        }
    }

    fn entry_values(&mut self, entry: &ExcEntry, expand: bool) -> Vec<String> {
        let items: Vec<(String, Pos)> = match entry {
            ExcEntry::One(s) => vec![(s.value.clone(), s.at.pos())],
            ExcEntry::Many(v, _) => v.iter().map(|s| (s.value.clone(), s.at.pos())).collect(),
        };
        let mut out = Vec::new();
        for (v, pos) in items {
            if expand && let Some(list) = self.list_items(&v, pos) {
                out.extend(list.iter().cloned());
            } else {
                out.push(v);
            }
        }
        out
    }

    fn comp(&mut self, s: &str, pos: Pos) -> Option<Op> {
        let op = Op::parse(s.trim());
        if op.is_none() {
            self.error(pos, CompileError::BadComp(s.to_string()));
        }
        op
    }

    fn field_from_str(&mut self, s: &str, pos: Pos) -> Option<FieldRef> {
        let s = s.trim();
        match parse_field_token(s) {
            Some((name, arg, len)) if len == s.len() => {
                self.resolve_field(&FieldTok { name, arg, pos })
            }
            _ => {
                self.error(pos, CompileError::BadFieldName(s.to_string()));
                None
            }
        }
    }
}

fn entry_pos(e: &ExcEntry) -> Pos {
    match e {
        ExcEntry::One(s) => s.at.pos(),
        ExcEntry::Many(_, at) => at.pos(),
    }
}
