//! Definitions compiled: lists flattened, macros expanded once, every field resolved and
//! type-checked against its operator and values, regexes and globs built, exceptions folded
//! into the condition. Every error is positioned and all of them are collected.

mod exceptions;

use std::collections::HashMap;
use std::rc::Rc;

use regex::Regex;

use crate::compile_error::{CompileError, MAX_EXPANDED_NODES};
use crate::diag::{Diagnostic, Problem, diagnostic_at};
use crate::eval::{Expr, FieldCmp, NO_SLOT, NumOp, Pred, StrSet, Test};
use crate::fields::{
    ArgSpec, FalcoType, FieldArg, FieldId, FieldRef, FieldType, field, parse_cidr, suggest,
};
use crate::glob::Glob;
use crate::loader::{Definitions, ExceptionDef};
use crate::parser::{Ast, FieldTok, Lit, Op, Operand, Transformer, parse_condition};
use crate::source::{Pos, SourceFile, Text};

/// A compiled rule condition (before indexing) or `None` if it had errors.
pub(crate) struct Compiled {
    pub(crate) expr: Option<Expr>,
    /// Errors that were all "unknown field" (for `skip-if-unknown-filter`).
    pub(crate) only_unknown_fields: bool,
    /// `evt.type` names in the condition (macros included) that driftwatch has no event for.
    pub(crate) unmapped: Vec<String>,
}

enum MacroState {
    Pending,
    InProgress,
    Done(Option<Rc<Expr>>),
}

/// Operand values after list references are expanded.
#[derive(Clone)]
enum Values {
    None,
    One(String, Pos),
    List(Vec<String>, Pos),
    /// Another field of the event, with its transformers.
    Field(FieldRef, Box<[Transformer]>, Pos),
}

pub(crate) struct Compiler<'a> {
    files: &'a [SourceFile],
    defs: &'a Definitions,
    errors: Vec<Diagnostic>,
    lists: HashMap<String, Option<Rc<[String]>>>,
    list_stack: Vec<String>,
    macro_asts: Vec<Option<Ast>>,
    macro_state: Vec<MacroState>,
    macro_stack: Vec<usize>,
    expanded: usize,
    /// `evt.type` names met while compiling the current rule that map to no event kind.
    unmapped: Vec<String>,
    /// The same, per compiled macro, added to every rule that uses it.
    macro_unmapped: Vec<Vec<String>>,
}

impl<'a> Compiler<'a> {
    /// Parses every macro (reporting syntax errors even for unused ones).
    pub(crate) fn new(files: &'a [SourceFile], defs: &'a Definitions) -> Compiler<'a> {
        let mut c = Compiler {
            files,
            defs,
            errors: Vec::new(),
            lists: HashMap::new(),
            list_stack: Vec::new(),
            macro_asts: Vec::new(),
            macro_state: Vec::new(),
            macro_stack: Vec::new(),
            expanded: 0,
            unmapped: Vec::new(),
            macro_unmapped: vec![Vec::new(); defs.macros.len()],
        };
        for m in &defs.macros {
            let ast = c.parse(&m.condition);
            c.macro_asts.push(ast);
            c.macro_state.push(MacroState::Pending);
        }
        c
    }

    /// Compiles every macro, so errors in unused macros are reported too.
    pub(crate) fn compile_all_macros(&mut self) {
        for i in 0..self.defs.macros.len() {
            self.expanded = 0;
            self.macro_expr(i, None);
        }
    }

    pub(crate) fn take_errors(&mut self) -> Vec<Diagnostic> {
        std::mem::take(&mut self.errors)
    }

    fn error(&mut self, pos: Pos, e: CompileError) {
        self.errors
            .push(diagnostic_at(&self.files[pos.file], pos.offset, e));
    }

    fn parse(&mut self, text: &Text) -> Option<Ast> {
        let files = self.files;
        let map = |o: usize| text.map(o, files);
        match parse_condition(&text.text, &map) {
            Ok(ast) => Some(ast),
            Err((pos, e)) => {
                self.errors
                    .push(diagnostic_at(&files[pos.file], pos.offset, e));
                None
            }
        }
    }

    /// Compiles a rule: its condition and exceptions.
    pub(crate) fn compile_rule(
        &mut self,
        condition: &Text,
        exceptions: &[ExceptionDef],
    ) -> Compiled {
        let before = self.errors.len();
        self.expanded = 0;
        self.unmapped.clear();
        let cond = self.parse(condition).and_then(|ast| self.compile_ast(&ast));
        let mut exc = Vec::new();
        let mut exc_ok = true;
        for e in exceptions {
            match self.compile_exception(e) {
                Some(Some(x)) => exc.push(x),
                Some(None) => {}
                None => exc_ok = false,
            }
        }
        let only_unknown_fields = self.errors[before..].iter().all(|d| {
            matches!(
                d.message,
                Problem::Compile(CompileError::UnknownField { .. })
            )
        });
        let expr = match (cond, exc_ok) {
            (Some(c), true) if exc.is_empty() => Some(c),
            (Some(c), true) => Some(Expr::And(
                vec![c, Expr::Not(Box::new(Expr::Or(exc.into())))].into(),
            )),
            _ => None,
        };
        Compiled {
            expr: expr.map(|e| e.simplify().order_by_cost()),
            only_unknown_fields,
            unmapped: std::mem::take(&mut self.unmapped),
        }
    }

    fn macro_expr(&mut self, idx: usize, at: Option<Pos>) -> Option<Rc<Expr>> {
        match &self.macro_state[idx] {
            MacroState::Done(e) => {
                let e = e.clone();
                self.unmapped
                    .extend(self.macro_unmapped[idx].iter().cloned());
                return e;
            }
            MacroState::InProgress => {
                let name = self.defs.macros[idx].name.value.clone();
                let start = self.macro_stack.iter().position(|&m| m == idx).unwrap_or(0);
                let mut chain: Vec<&str> = self.macro_stack[start..]
                    .iter()
                    .map(|&m| self.defs.macros[m].name.value.as_str())
                    .collect();
                chain.push(&name);
                let chain = chain.join(" -> ");
                let pos = at.unwrap_or(self.defs.macros[idx].name.at.pos());
                self.error(pos, CompileError::RecursiveMacro { name, chain });
                return None;
            }
            MacroState::Pending => {}
        }
        self.macro_state[idx] = MacroState::InProgress;
        self.macro_stack.push(idx);
        let ast = self.macro_asts[idx].clone();
        let saved = std::mem::replace(&mut self.expanded, 0);
        let saved_unmapped = std::mem::take(&mut self.unmapped);
        let e = ast
            .and_then(|a| self.compile_ast(&a))
            .map(|e| Rc::new(e.simplify()));
        self.expanded = saved;
        let mine = std::mem::replace(&mut self.unmapped, saved_unmapped);
        self.unmapped.extend(mine.iter().cloned());
        self.macro_unmapped[idx] = mine;
        self.macro_stack.pop();
        self.macro_state[idx] = MacroState::Done(e.clone());
        e
    }

    fn compile_ast(&mut self, ast: &Ast) -> Option<Expr> {
        match ast {
            Ast::And(items) | Ast::Or(items) => {
                let compiled: Vec<Option<Expr>> =
                    items.iter().map(|a| self.compile_ast(a)).collect();
                let all: Option<Vec<Expr>> = compiled.into_iter().collect();
                let all = all?.into_boxed_slice();
                Some(if matches!(ast, Ast::And(_)) {
                    Expr::And(all)
                } else {
                    Expr::Or(all)
                })
            }
            Ast::Not(inner) => self.compile_ast(inner).map(|e| Expr::Not(Box::new(e))),
            Ast::Macro { name, pos } => {
                let Some(idx) = self.defs.macro_index(name) else {
                    let is_list = self.defs.list(name).is_some();
                    self.error(
                        *pos,
                        CompileError::UnknownMacro {
                            name: name.clone(),
                            is_list,
                        },
                    );
                    return None;
                };
                let e = self.macro_expr(idx, Some(*pos))?;
                self.expanded += e.size();
                if self.expanded > MAX_EXPANDED_NODES {
                    self.error(*pos, CompileError::TooLarge);
                    return None;
                }
                Some((*e).clone())
            }
            Ast::Check {
                field,
                xf,
                xf_pos,
                op,
                op_pos,
                value,
            } => {
                let fref = self.resolve_field(field);
                let values = self.operand(value, *op_pos);
                self.expanded += 1;
                self.test_xf(fref?, xf, *xf_pos, *op, *op_pos, values?)
            }
        }
    }

    fn resolve_field(&mut self, f: &FieldTok) -> Option<FieldRef> {
        // Falco's other spelling of a key: `k8s.pod.label.app` is `k8s.pod.label[app]`,
        // `evt.arg.flags` is `evt.arg[flags]`; a field of that whole name wins.
        let dotted = (f.arg.is_none() && field(&f.name).is_none())
            .then(|| dotted_key(&f.name))
            .flatten();
        if let Some((info, key)) = dotted {
            return Some(FieldRef {
                info,
                arg: FieldArg::Key(key.into()),
            });
        }
        let Some(info) = field(&f.name) else {
            self.error(
                f.pos,
                CompileError::UnknownField {
                    name: f.name.clone(),
                    suggestion: suggest(&f.name),
                },
            );
            return None;
        };
        // `fd.types[]`: an empty argument is no argument.
        let given = f.arg.as_deref().filter(|a| !a.trim().is_empty());
        let arg = match (info.arg, given) {
            (ArgSpec::KeyRequired | ArgSpec::IndexOrKeyRequired, None) => {
                self.error(
                    f.pos,
                    CompileError::MissingArg {
                        field: f.name.clone(),
                    },
                );
                return None;
            }
            (_, None) => FieldArg::None,
            (ArgSpec::None, Some(_)) => {
                self.error(
                    f.pos,
                    CompileError::UnexpectedArg {
                        field: f.name.clone(),
                    },
                );
                return None;
            }
            (ArgSpec::Index, Some(a)) => match a.trim().parse::<usize>() {
                Ok(n) => FieldArg::Index(n),
                Err(_) => {
                    self.error(
                        f.pos,
                        CompileError::BadIndex {
                            field: f.name.clone(),
                            arg: a.to_string(),
                        },
                    );
                    return None;
                }
            },
            (ArgSpec::Key | ArgSpec::KeyRequired, Some(a)) => FieldArg::Key(a.trim().into()),
            (ArgSpec::IndexOrKey | ArgSpec::IndexOrKeyRequired, Some(a)) => {
                match a.trim().parse::<usize>() {
                    Ok(n) => FieldArg::Index(n),
                    Err(_) => FieldArg::Key(a.trim().into()),
                }
            }
        };
        Some(FieldRef { info, arg })
    }

    /// A list's items with nested list references expanded.
    fn list_items(&mut self, name: &str, at: Pos) -> Option<Rc<[String]>> {
        if let Some(done) = self.lists.get(name) {
            return done.clone();
        }
        let defs = self.defs;
        let def = defs.list(name)?;
        if self.list_stack.iter().any(|n| n == name) {
            let mut chain = self.list_stack.clone();
            chain.push(name.to_string());
            self.error(
                at,
                CompileError::RecursiveList {
                    name: name.to_string(),
                    chain: chain.join(" -> "),
                },
            );
            return Some(Rc::from(Vec::new()));
        }
        self.list_stack.push(name.to_string());
        let mut out = Vec::with_capacity(def.items.len());
        for item in &def.items {
            if item.value != name && defs.list(&item.value).is_some() {
                if let Some(sub) = self.list_items(&item.value, item.at.pos()) {
                    out.extend(sub.iter().cloned());
                }
            } else {
                out.push(unquote_item(&item.value));
            }
        }
        self.list_stack.pop();
        let rc: Rc<[String]> = out.into();
        self.lists.insert(name.to_string(), Some(rc.clone()));
        Some(rc)
    }

    fn expand_lits(&mut self, lits: &[Lit]) -> Vec<String> {
        let mut out = Vec::with_capacity(lits.len());
        for l in lits {
            if !l.quoted
                && let Some(items) = self.list_items(&l.text, l.pos)
            {
                out.extend(items.iter().cloned());
                continue;
            }
            out.push(l.text.clone());
        }
        out
    }

    fn operand(&mut self, v: &Operand, op_pos: Pos) -> Option<Values> {
        Some(match v {
            Operand::None => Values::None,
            Operand::One(l) => Values::One(l.text.clone(), l.pos),
            Operand::List(lits) => {
                let pos = lits.first().map_or(op_pos, |l| l.pos);
                Values::List(self.expand_lits(lits), pos)
            }
            Operand::Field(fe) => {
                let f = self.resolve_field(&fe.field)?;
                self.xf_type(&f, &fe.xf, fe.pos)?;
                Values::Field(f, fe.xf.clone().into(), fe.pos)
            }
        })
    }

    /// The type of a field once its transformers are applied; an error if one does not fit.
    fn xf_type(&mut self, f: &FieldRef, xf: &[Transformer], at: Pos) -> Option<FieldType> {
        let mut ty = f.info.ty;
        let mut name = f.display_name();
        for t in xf {
            if ty != FieldType::String {
                self.error(
                    at,
                    CompileError::BadTransformer {
                        xf: t.as_str(),
                        field: name,
                        ty: ty.as_str(),
                    },
                );
                return None;
            }
            if *t == Transformer::Len {
                ty = FieldType::Number;
            }
            name = format!("{}({name})", t.as_str());
        }
        Some(ty)
    }

    /// A test on a field with transformers (none for a plain field).
    fn test_xf(
        &mut self,
        f: FieldRef,
        xf: &[Transformer],
        xf_pos: Pos,
        op: Op,
        op_pos: Pos,
        values: Values,
    ) -> Option<Expr> {
        if xf.is_empty() {
            return self.test(f, op, op_pos, values);
        }
        let ty = self.xf_type(&f, xf, xf_pos)?;
        self.test_typed(f, xf.into(), ty, op, op_pos, values)
    }

    fn test(&mut self, f: FieldRef, op: Op, op_pos: Pos, values: Values) -> Option<Expr> {
        if let Some(sides) = f.either_side() {
            return self.test_either_side(sides, op, op_pos, values);
        }
        if f.info.falco_type == FalcoType::Ipnet && op != Op::Exists {
            return self.test_networks(f, op, op_pos, values);
        }
        let ty = f.info.ty;
        self.test_typed(f, Box::default(), ty, op, op_pos, values)
    }

    fn test_typed(
        &mut self,
        f: FieldRef,
        xf: Box<[Transformer]>,
        ty: FieldType,
        op: Op,
        op_pos: Pos,
        values: Values,
    ) -> Option<Expr> {
        let name = crate::eval::side_name(&f, &xf);
        let test_expr = |f: FieldRef, negate: bool, pred: Pred| {
            Expr::Test(Box::new(Test {
                field: f,
                xf: xf.clone(),
                negate,
                pred,
                slot: NO_SLOT,
            }))
        };
        let bad_op = |c: &mut Self| {
            c.error(
                op_pos,
                CompileError::BadOperator {
                    op: op.as_str(),
                    field: name.clone(),
                    ty: ty.as_str(),
                },
            );
            None
        };
        if op == Op::Exists {
            return Some(test_expr(f, false, Pred::Exists));
        }
        let negate = op == Op::Ne;
        if let Values::Field(rf, rxf, rpos) = values {
            return self.field_cmp(f, &name, ty, op, (rf, rxf, rpos), negate, test_expr);
        }
        // evt.type compiles to a bit test on the event kind.
        if f.info.id == FieldId::EvtType
            && xf.is_empty()
            && matches!(op, Op::Eq | Op::Ne | Op::In | Op::Intersects)
        {
            let names = match &values {
                Values::One(v, _) => std::slice::from_ref(v),
                Values::List(vs, _) => vs.as_slice(),
                Values::None | Values::Field(..) => &[],
            };
            let mask = names_mask(names);
            for n in names {
                if names_mask(std::slice::from_ref(n)) == 0 && !self.unmapped.contains(n) {
                    self.unmapped.push(n.clone());
                }
            }
            let e = Expr::EvtType(mask);
            return Some(if negate { Expr::Not(Box::new(e)) } else { e });
        }
        match ty {
            FieldType::String => {
                let pred = match (op, values) {
                    (Op::In | Op::Intersects, Values::List(vs, _)) => Pred::StrIn(StrSet::new(vs)),
                    (Op::PMatch, Values::List(vs, _)) => {
                        Pred::PMatch(vs.into_iter().map(String::into_boxed_str).collect())
                    }
                    (Op::Lt | Op::Le | Op::Gt | Op::Ge, _) => return bad_op(self),
                    (_, Values::List(..) | Values::None | Values::Field(..)) => {
                        self.error(op_pos, CompileError::ListNotAllowed { op: op.as_str() });
                        return None;
                    }
                    (Op::Eq | Op::Ne, Values::One(v, _)) => Pred::StrEq(v.into()),
                    (Op::Contains, Values::One(v, _)) => Pred::Contains(v.into()),
                    (Op::IContains, Values::One(v, _)) => {
                        Pred::IContains(v.to_ascii_lowercase().into())
                    }
                    (Op::StartsWith, Values::One(v, _)) => Pred::StartsWith(v.into()),
                    (Op::EndsWith, Values::One(v, _)) => Pred::EndsWith(v.into()),
                    (Op::BContains | Op::BStartsWith | Op::BEndsWith, Values::One(v, pos)) => {
                        let Some(bytes) = hex_bytes(&v) else {
                            self.error(
                                pos,
                                CompileError::NotHex {
                                    value: v,
                                    op: op.as_str(),
                                },
                            );
                            return None;
                        };
                        match op {
                            Op::BContains => Pred::BContains(bytes),
                            Op::BStartsWith => Pred::BStartsWith(bytes),
                            _ => Pred::BEndsWith(bytes),
                        }
                    }
                    (Op::Glob | Op::IGlob, Values::One(v, pos)) => {
                        match Glob::new(&v, op == Op::IGlob) {
                            Ok(g) => Pred::Glob(g),
                            Err(e) => {
                                self.error(
                                    pos,
                                    CompileError::BadGlob {
                                        pattern: v,
                                        error: e.to_string(),
                                    },
                                );
                                return None;
                            }
                        }
                    }
                    // Falco's regex is a full match (RE2::FullMatch).
                    (Op::Regex, Values::One(v, pos)) => match Regex::new(&format!("^(?:{v})$")) {
                        Ok(r) => Pred::Regex(r),
                        Err(e) => {
                            let error = e
                                .to_string()
                                .lines()
                                .last()
                                .unwrap_or("")
                                .trim()
                                .to_string();
                            self.error(pos, CompileError::BadRegex { pattern: v, error });
                            return None;
                        }
                    },
                    _ => return bad_op(self),
                };
                Some(test_expr(f, negate, pred))
            }
            FieldType::Number | FieldType::Time => {
                let num = |c: &mut Self, v: &str, pos: Pos| -> Option<i64> {
                    let parsed = v.parse::<i64>().ok().or_else(|| {
                        v.strip_prefix("0x")
                            .and_then(|h| i64::from_str_radix(h, 16).ok())
                    });
                    if parsed.is_none() {
                        c.error(
                            pos,
                            CompileError::NotANumber {
                                value: v.to_string(),
                                field: name.clone(),
                            },
                        );
                    }
                    parsed
                };
                let pred = match (op, values) {
                    (Op::In | Op::Intersects, Values::List(vs, pos)) => {
                        let nums: Vec<Option<i64>> = vs.iter().map(|v| num(self, v, pos)).collect();
                        Pred::NumIn(nums.into_iter().collect::<Option<Vec<_>>>()?.into())
                    }
                    (Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge, Values::One(v, pos)) => {
                        let n = num(self, &v, pos)?;
                        let nop = match op {
                            Op::Lt => NumOp::Lt,
                            Op::Le => NumOp::Le,
                            Op::Gt => NumOp::Gt,
                            Op::Ge => NumOp::Ge,
                            _ => NumOp::Eq,
                        };
                        Pred::Num(nop, n)
                    }
                    (Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge, _) => {
                        self.error(op_pos, CompileError::ListNotAllowed { op: op.as_str() });
                        return None;
                    }
                    _ => return bad_op(self),
                };
                Some(test_expr(f, negate, pred))
            }
            FieldType::Bool => match (op, values) {
                (Op::Eq | Op::Ne, Values::One(v, pos)) => {
                    let b = if v.eq_ignore_ascii_case("true") {
                        true
                    } else if v.eq_ignore_ascii_case("false") {
                        false
                    } else {
                        self.error(
                            pos,
                            CompileError::NotABool {
                                value: v,
                                field: name,
                            },
                        );
                        return None;
                    };
                    Some(test_expr(f, negate, Pred::Bool(b)))
                }
                (Op::Eq | Op::Ne, _) => {
                    self.error(op_pos, CompileError::ListNotAllowed { op: op.as_str() });
                    None
                }
                _ => bad_op(self),
            },
        }
    }

    /// A comparison with another field (`val(...)` or a transformer on the right-hand side).
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site; the parts of a check already taken apart by test_typed"
    )]
    fn field_cmp(
        &mut self,
        f: FieldRef,
        name: &str,
        ty: FieldType,
        op: Op,
        (rf, rxf, rpos): (FieldRef, Box<[Transformer]>, Pos),
        negate: bool,
        test_expr: impl Fn(FieldRef, bool, Pred) -> Expr,
    ) -> Option<Expr> {
        let rty = rxf.iter().fold(rf.info.ty, |t, x| {
            if *x == Transformer::Len {
                FieldType::Number
            } else {
                t
            }
        });
        let numeric = |t: FieldType| matches!(t, FieldType::Number | FieldType::Time);
        let string_op = matches!(
            op,
            Op::Contains | Op::IContains | Op::StartsWith | Op::EndsWith
        );
        let cmp = match op {
            Op::Eq | Op::Ne | Op::In | Op::Intersects => Some(Op::Eq),
            Op::Lt | Op::Le | Op::Gt | Op::Ge => Some(op),
            _ if string_op && ty == FieldType::String => Some(op),
            _ => None,
        };
        let ordered = matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge);
        let fits = ty == rty || (numeric(ty) && numeric(rty));
        match cmp {
            Some(cmp) if fits && (!ordered || numeric(ty)) => Some(test_expr(
                f,
                negate,
                Pred::Field(Box::new(FieldCmp {
                    op: cmp,
                    field: rf,
                    xf: rxf,
                })),
            )),
            _ => {
                self.error(
                    rpos,
                    CompileError::FieldTypes {
                        op: op.as_str(),
                        left: name.to_string(),
                        lty: ty.as_str(),
                        right: crate::eval::side_name(&rf, &rxf),
                        rty: rty.as_str(),
                    },
                );
                None
            }
        }
    }

    /// `fd.ip`, `fd.port` and `fd.net` test both ends of a connection: `fd.ip = X` is
    /// `fd.cip = X or fd.sip = X`, and `fd.ip != X` is `not (fd.cip = X or fd.sip = X)`.
    fn test_either_side(
        &mut self,
        (client, server): (FieldRef, FieldRef),
        op: Op,
        op_pos: Pos,
        values: Values,
    ) -> Option<Expr> {
        let (op, negate) = match op {
            Op::Ne => (Op::Eq, true),
            other => (other, false),
        };
        let c = self.test(client, op, op_pos, values.clone())?;
        let s = self.test(server, op, op_pos, values)?;
        let e = Expr::Or(vec![c, s].into());
        Some(if negate { Expr::Not(Box::new(e)) } else { e })
    }

    /// A test of an `IPNET` field (`fd.snet`...): `=`, `!=` or `in` with networks.
    fn test_networks(&mut self, f: FieldRef, op: Op, op_pos: Pos, values: Values) -> Option<Expr> {
        let name = f.display_name();
        let items: Vec<(String, Pos)> = match (op, values) {
            (Op::Eq | Op::Ne, Values::One(v, pos)) => vec![(v, pos)],
            (Op::In | Op::Intersects, Values::List(vs, pos)) => {
                vs.into_iter().map(|v| (v, pos)).collect()
            }
            (Op::Eq | Op::Ne | Op::In | Op::Intersects, _) => {
                self.error(op_pos, CompileError::ListNotAllowed { op: op.as_str() });
                return None;
            }
            _ => {
                self.error(
                    op_pos,
                    CompileError::BadOperator {
                        op: op.as_str(),
                        field: name,
                        ty: "network",
                    },
                );
                return None;
            }
        };
        let mut nets = Vec::with_capacity(items.len());
        for (v, pos) in items {
            match parse_cidr(&v) {
                Some(n) => nets.push(n),
                None => {
                    self.error(
                        pos,
                        CompileError::NotANetwork {
                            value: v,
                            field: name.clone(),
                        },
                    );
                    return None;
                }
            }
        }
        Some(test_expr(f, op == Op::Ne, Pred::Cidr(nets.into())))
    }

    /// Resolves a field named in an output (`%proc.aname[2]`).
    pub(crate) fn output_field(
        &mut self,
        name: &str,
        arg: Option<String>,
        pos: Pos,
    ) -> Option<FieldRef> {
        self.resolve_field(&FieldTok {
            name: name.to_string(),
            arg,
            pos,
        })
    }
}

/// A list item as the condition reads it: Falco pastes items into the condition's text, so an
/// item written with quotes (`'"10.0.0.0/8"'`) is the quoted string's content.
fn unquote_item(item: &str) -> String {
    let b = item.as_bytes();
    match (b.first(), b.last()) {
        (Some(q @ (b'"' | b'\'')), Some(l)) if b.len() >= 2 && q == l => {
            item[1..item.len() - 1].to_string()
        }
        _ => item.to_string(),
    }
}

/// A test on a field as written, without transformers.
fn test_expr(field: FieldRef, negate: bool, pred: Pred) -> Expr {
    Expr::Test(Box::new(Test {
        field,
        xf: Box::default(),
        negate,
        pred,
        slot: NO_SLOT,
    }))
}

/// Falco's hex byte values: `7f454c46` (an even number of hex digits).
fn hex_bytes(v: &str) -> Option<Box<[u8]>> {
    let v = v.trim();
    if v.is_empty() || !v.len().is_multiple_of(2) {
        return None;
    }
    (0..v.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(v.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The kinds named by `evt.type` values (every Falco name of a change driftwatch sees matches
/// its kind); a call driftwatch does not see is accepted and matches nothing.
fn names_mask(names: &[String]) -> u16 {
    names
        .iter()
        .fold(0, |m, n| m | crate::fields::evt_type_kinds(n))
}

/// A `name.key` spelling of a field that takes a key (`k8s.pod.label.app`): the field and
/// the key. The key keeps Falco's characters (alphanumerics, `/`, `_`, `-`, `.`).
fn dotted_key(name: &str) -> Option<(&'static crate::fields::FieldInfo, &str)> {
    // `container.mount.dest` is a field, not `container.mount[dest]`.
    if field(name).is_some() {
        return None;
    }
    crate::fields::FIELDS
        .iter()
        .filter(|f| f.arg.required())
        .find_map(|f| {
            let key = name.strip_prefix(f.name)?.strip_prefix('.')?;
            let ok = !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '.'));
            ok.then_some((f, key))
        })
}
