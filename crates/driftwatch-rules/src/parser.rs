//! The condition language, parsed by hand with recursive descent into a positioned tree:
//! `or` < `and` < `not` < comparisons, macros and parentheses, as Falco's libsinsp parser does.

use crate::source::Pos;

/// Nesting deeper than this (parentheses, `not`) is refused rather than risk the stack.
pub const MAX_NESTING: usize = 200;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("empty condition")]
    Empty,
    #[error("unbalanced parentheses: this `(` is never closed")]
    UnclosedParen,
    #[error("unbalanced parentheses: `)` without a matching `(`")]
    UnmatchedParen,
    #[error("unexpected {found}; expected {expected}")]
    Unexpected {
        found: String,
        expected: &'static str,
    },
    #[error("expected an operator after field `{field}`, found {found}")]
    MissingOperator { field: String, found: String },
    #[error("unknown operator `{0}`")]
    UnknownOperator(String),
    #[error("operator `{op}` needs a value")]
    MissingValue { op: &'static str },
    #[error("operator `{op}` needs a list in parentheses, e.g. `{op} (a, b)`")]
    ExpectedList { op: &'static str },
    #[error("unterminated string")]
    UnterminatedString,
    #[error("unterminated field argument: `[` without `]`")]
    UnterminatedArg,
    #[error("macro reference `{0}` cannot take an argument")]
    MacroWithArg(String),
    #[error("conditions nest deeper than {MAX_NESTING} levels")]
    TooDeep,
    #[error("`{0}(` needs a field, e.g. `{0}(proc.name)`")]
    TransformerWithoutField(&'static str),
    #[error("`{0}(` is not closed: expected `)` after its field")]
    UnclosedTransformer(&'static str),
}

/// Falco's field transformers: `tolower(proc.name)`, nested as `toupper(basename(fd.name))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transformer {
    ToLower,
    ToUpper,
    /// Decodes base64.
    B64,
    Basename,
    /// The length of a string, or the number of values of a list field.
    Len,
}

impl Transformer {
    pub fn as_str(self) -> &'static str {
        match self {
            Transformer::ToLower => "tolower",
            Transformer::ToUpper => "toupper",
            Transformer::B64 => "b64",
            Transformer::Basename => "basename",
            Transformer::Len => "len",
        }
    }

    fn parse(s: &str) -> Option<Transformer> {
        Some(match s {
            "tolower" => Transformer::ToLower,
            "toupper" => Transformer::ToUpper,
            "b64" => Transformer::B64,
            "basename" => Transformer::Basename,
            "len" => Transformer::Len,
            _ => return None,
        })
    }
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    IContains,
    StartsWith,
    EndsWith,
    Glob,
    IGlob,
    PMatch,
    In,
    Intersects,
    Exists,
    Regex,
    /// Byte operators: the value is hex (`bcontains 7f454c46`).
    BContains,
    BStartsWith,
    BEndsWith,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "contains",
            Op::IContains => "icontains",
            Op::StartsWith => "startswith",
            Op::EndsWith => "endswith",
            Op::Glob => "glob",
            Op::IGlob => "iglob",
            Op::PMatch => "pmatch",
            Op::In => "in",
            Op::Intersects => "intersects",
            Op::Exists => "exists",
            Op::Regex => "regex",
            Op::BContains => "bcontains",
            Op::BStartsWith => "bstartswith",
            Op::BEndsWith => "bendswith",
        }
    }

    /// Operators whose operand is a parenthesized list.
    pub fn takes_list(self) -> bool {
        matches!(self, Op::In | Op::Intersects | Op::PMatch)
    }

    /// Parses an operator as written in conditions and exception `comps`.
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "=" | "==" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "contains" => Op::Contains,
            "icontains" => Op::IContains,
            "startswith" => Op::StartsWith,
            "endswith" => Op::EndsWith,
            "glob" => Op::Glob,
            "iglob" => Op::IGlob,
            "pmatch" => Op::PMatch,
            "in" => Op::In,
            "intersects" => Op::Intersects,
            "exists" => Op::Exists,
            "regex" => Op::Regex,
            "bcontains" => Op::BContains,
            "bstartswith" => Op::BStartsWith,
            "bendswith" => Op::BEndsWith,
            _ => return None,
        })
    }
}

/// A literal value: a bare word or a quoted string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Lit {
    pub(crate) text: String,
    pub(crate) pos: Pos,
    /// Quoted values are never list references.
    pub(crate) quoted: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Operand {
    None,
    One(Lit),
    List(Vec<Lit>),
    /// `val(field)` or a transformed field on the right-hand side: compared with the
    /// left-hand side's value in the same event.
    Field(FieldExpr),
}

/// A field with the transformers applied to it, innermost first:
/// `toupper(basename(fd.name))` is `fd.name` with `[Basename, ToUpper]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FieldExpr {
    pub(crate) field: FieldTok,
    pub(crate) xf: Vec<Transformer>,
    pub(crate) pos: Pos,
}

/// A field as written: `proc.aname[2]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FieldTok {
    pub(crate) name: String,
    pub(crate) arg: Option<String>,
    pub(crate) pos: Pos,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ast {
    And(Vec<Ast>),
    Or(Vec<Ast>),
    Not(Box<Ast>),
    Macro {
        name: String,
        pos: Pos,
    },
    Check {
        field: FieldTok,
        /// Transformers on the field, innermost first.
        xf: Vec<Transformer>,
        /// Where the outermost transformer starts (the field's position without one).
        xf_pos: Pos,
        op: Op,
        op_pos: Pos,
        value: Operand,
    },
}

struct Parser<'a, 'm> {
    s: &'a str,
    pos: usize,
    depth: usize,
    map: &'m dyn Fn(usize) -> Pos,
}

type PResult<T> = Result<T, (Pos, SyntaxError)>;

/// Parses a condition. `map` turns a byte offset of `text` into a file position.
pub(crate) fn parse_condition(text: &str, map: &dyn Fn(usize) -> Pos) -> PResult<Ast> {
    let mut p = Parser {
        s: text,
        pos: 0,
        depth: 0,
        map,
    };
    p.skip_ws();
    if p.at_end() {
        return Err((map(0), SyntaxError::Empty));
    }
    let ast = p.parse_or()?;
    p.skip_ws();
    if !p.at_end() {
        let err = if p.peek() == Some(')') {
            SyntaxError::UnmatchedParen
        } else {
            SyntaxError::Unexpected {
                found: p.describe_here(),
                expected: "`and`, `or` or the end of the condition",
            }
        };
        return Err(((p.map)(p.pos), err));
    }
    Ok(ast)
}

/// Parses a field name with its optional `[arg]` (exception `fields`, output placeholders).
pub(crate) fn parse_field_token(text: &str) -> Option<(String, Option<String>, usize)> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
        i += 1;
    }
    while i > 0 && b[i - 1] == b'.' {
        i -= 1;
    }
    if i == 0 || !b[0].is_ascii_alphabetic() {
        return None;
    }
    let name = text[..i].to_string();
    if b.get(i) == Some(&b'[') {
        let close = text[i..].find(']')? + i;
        let arg = text[i + 1..close].to_string();
        return Some((name, Some(arg), close + 1));
    }
    Some((name, None, i))
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn is_bare_end(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | ',' | '=' | '"' | '\'')
}

impl Parser<'_, '_> {
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn skip_ws(&mut self) {
        let rest = &self.s[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn here(&self) -> Pos {
        (self.map)(self.pos)
    }

    fn describe_here(&self) -> String {
        match self.peek() {
            None => "end of condition".to_string(),
            Some(_) => {
                let rest = &self.s[self.pos..];
                let word: String = rest
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .take(24)
                    .collect();
                format!("`{word}`")
            }
        }
    }

    /// Consumes `kw` if it is the next word.
    fn keyword(&mut self, kw: &str) -> bool {
        self.skip_ws();
        let rest = &self.s[self.pos..];
        if rest.starts_with(kw) && !rest[kw.len()..].starts_with(is_ident) {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err((self.here(), SyntaxError::TooDeep));
        }
        Ok(())
    }

    fn parse_or(&mut self) -> PResult<Ast> {
        let first = self.parse_and()?;
        let mut items = vec![first];
        while self.keyword("or") {
            items.push(self.parse_and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Ast::Or(items)
        })
    }

    fn parse_and(&mut self) -> PResult<Ast> {
        let first = self.parse_not()?;
        let mut items = vec![first];
        while self.keyword("and") {
            items.push(self.parse_not()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Ast::And(items)
        })
    }

    fn parse_not(&mut self) -> PResult<Ast> {
        if self.keyword("not") {
            self.enter()?;
            let inner = self.parse_not()?;
            self.depth -= 1;
            return Ok(Ast::Not(Box::new(inner)));
        }
        self.parse_primary()
    }

    fn parse_primary(&mut self) -> PResult<Ast> {
        self.skip_ws();
        match self.peek() {
            None => Err((
                self.here(),
                SyntaxError::Unexpected {
                    found: "end of condition".into(),
                    expected: "a field, a macro, `not` or `(`",
                },
            )),
            Some('(') => {
                let open = self.pos;
                self.pos += 1;
                self.enter()?;
                let inner = self.parse_or()?;
                self.depth -= 1;
                self.skip_ws();
                if self.peek() == Some(')') {
                    self.pos += 1;
                    Ok(inner)
                } else if self.at_end() {
                    Err(((self.map)(open), SyntaxError::UnclosedParen))
                } else {
                    Err((
                        self.here(),
                        SyntaxError::Unexpected {
                            found: self.describe_here(),
                            expected: "`and`, `or` or `)`",
                        },
                    ))
                }
            }
            Some(')') => Err((self.here(), SyntaxError::UnmatchedParen)),
            Some(c) if c.is_ascii_alphabetic() || c == '_' => self.parse_check_or_macro(),
            Some(_) => Err((
                self.here(),
                SyntaxError::Unexpected {
                    found: self.describe_here(),
                    expected: "a field, a macro, `not` or `(`",
                },
            )),
        }
    }

    /// A transformer's name and `(` at the cursor: consumed, with the transformer.
    fn transformer_open(&mut self, allow_val: bool) -> Option<(Option<Transformer>, usize)> {
        let rest = &self.s[self.pos..];
        let len = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
        if !rest[len..].starts_with('(') {
            return None;
        }
        let word = &rest[..len];
        let t = match (Transformer::parse(word), word) {
            (Some(t), _) => Some(t),
            (None, "val") if allow_val => None,
            _ => return None,
        };
        let start = self.pos;
        self.pos += len + 1;
        Some((t, start))
    }

    /// A name of identifier characters and dots (a field or a macro), consumed.
    fn dotted_name(&mut self) -> String {
        let rest = &self.s[self.pos..];
        let len = rest
            .find(|c: char| !(is_ident(c) || c == '.'))
            .unwrap_or(rest.len());
        self.pos += len;
        rest[..len].to_string()
    }

    /// A field name with its optional `[arg]` (bare, or quoted as Falco allows).
    fn field_tok(&mut self) -> PResult<Option<FieldTok>> {
        let start = self.pos;
        if !self.s[start..].starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Ok(None);
        }
        let name = self.dotted_name();
        let arg = self.field_arg()?;
        Ok(Some(FieldTok {
            name,
            arg,
            pos: (self.map)(start),
        }))
    }

    fn field_arg(&mut self) -> PResult<Option<String>> {
        if self.peek() != Some('[') {
            return Ok(None);
        }
        let open = self.pos;
        self.pos += 1;
        if matches!(self.peek(), Some('"' | '\'')) {
            let lit = self.parse_lit()?;
            if self.peek() != Some(']') {
                return Err(((self.map)(open), SyntaxError::UnterminatedArg));
            }
            self.pos += 1;
            return Ok(Some(lit.text));
        }
        let close = self.s[self.pos..]
            .find(']')
            .ok_or_else(|| ((self.map)(open), SyntaxError::UnterminatedArg))?;
        let arg = self.s[self.pos..self.pos + close].to_string();
        self.pos += close + 1;
        Ok(Some(arg))
    }

    /// The rest of `name(`: a field or a nested transformer, then `)`.
    fn transformer_rest(&mut self, t: Option<Transformer>, start: usize) -> PResult<FieldExpr> {
        let what = t.map_or("val", Transformer::as_str);
        self.enter()?;
        self.skip_ws();
        let mut inner = match self.transformer_open(false) {
            Some((t2, s2)) if t.is_some() => self.transformer_rest(t2, s2)?,
            _ => match self.field_tok()? {
                Some(field) => FieldExpr {
                    pos: field.pos,
                    field,
                    xf: Vec::new(),
                },
                None => {
                    return Err((self.here(), SyntaxError::TransformerWithoutField(what)));
                }
            },
        };
        self.skip_ws();
        if self.peek() != Some(')') {
            return Err(((self.map)(start), SyntaxError::UnclosedTransformer(what)));
        }
        self.pos += 1;
        self.depth -= 1;
        inner.xf.extend(t);
        inner.pos = (self.map)(start);
        Ok(inner)
    }

    fn parse_check_or_macro(&mut self) -> PResult<Ast> {
        let start = self.pos;
        let xf_pos = (self.map)(start);
        let (field, xf) = if let Some((Some(t), s)) = self.transformer_open(false) {
            let fe = self.transformer_rest(Some(t), s)?;
            (fe.field, fe.xf)
        } else {
            let name = self.dotted_name();
            let arg = self.field_arg()?;
            let pos = (self.map)(start);
            if !name.contains('.') {
                if arg.is_some() {
                    return Err((pos, SyntaxError::MacroWithArg(name)));
                }
                return Ok(Ast::Macro { name, pos });
            }
            (FieldTok { name, arg, pos }, Vec::new())
        };
        self.skip_ws();
        let op_start = self.pos;
        let op = self.parse_op(&field.name)?;
        let op_pos = (self.map)(op_start);
        self.skip_ws();
        let value = if op == Op::Exists {
            Operand::None
        } else if let Some((t, s)) = self.transformer_open(true) {
            Operand::Field(self.transformer_rest(t, s)?)
        } else if op.takes_list() {
            self.parse_list(op)?
        } else {
            match self.peek() {
                None | Some(')' | '(' | ',' | '=') => {
                    return Err((self.here(), SyntaxError::MissingValue { op: op.as_str() }));
                }
                _ => Operand::One(self.parse_lit()?),
            }
        };
        Ok(Ast::Check {
            field,
            xf,
            xf_pos,
            op,
            op_pos,
            value,
        })
    }

    fn parse_op(&mut self, field: &str) -> PResult<Op> {
        let rest = &self.s[self.pos..];
        for sym in ["==", "!=", "<=", ">=", "=", "<", ">"] {
            if rest.starts_with(sym) {
                self.pos += sym.len();
                return Ok(Op::parse(sym).unwrap_or(Op::Eq));
            }
        }
        let len = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
        let word = &rest[..len];
        if word.is_empty() || word == "and" || word == "or" {
            return Err((
                self.here(),
                SyntaxError::MissingOperator {
                    field: field.to_string(),
                    found: self.describe_here(),
                },
            ));
        }
        match Op::parse(word) {
            Some(op) => {
                self.pos += len;
                Ok(op)
            }
            None => Err((self.here(), SyntaxError::UnknownOperator(word.to_string()))),
        }
    }

    fn parse_list(&mut self, op: Op) -> PResult<Operand> {
        self.skip_ws();
        if self.peek() != Some('(') {
            // Falco also takes a list's name without parentheses: `proc.name in shell_binaries`.
            let rest = &self.s[self.pos..];
            let len = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
            if len > 0 && rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
                return Ok(Operand::List(vec![self.parse_lit()?]));
            }
            return Err((self.here(), SyntaxError::ExpectedList { op: op.as_str() }));
        }
        let open = self.pos;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(')') {
            self.pos += 1;
            return Ok(Operand::List(items));
        }
        loop {
            self.skip_ws();
            match self.peek() {
                None => return Err(((self.map)(open), SyntaxError::UnclosedParen)),
                Some(',' | ')' | '(' | '=') => {
                    return Err((
                        self.here(),
                        SyntaxError::Unexpected {
                            found: self.describe_here(),
                            expected: "a list item",
                        },
                    ));
                }
                _ => items.push(self.parse_lit()?),
            }
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    return Ok(Operand::List(items));
                }
                None => return Err(((self.map)(open), SyntaxError::UnclosedParen)),
                Some(_) => {
                    return Err((
                        self.here(),
                        SyntaxError::Unexpected {
                            found: self.describe_here(),
                            expected: "`,` or `)`",
                        },
                    ));
                }
            }
        }
    }

    fn parse_lit(&mut self) -> PResult<Lit> {
        let start = self.pos;
        let pos = self.here();
        match self.peek() {
            Some(q @ ('"' | '\'')) => {
                self.pos += 1;
                let mut text = String::new();
                loop {
                    let Some(c) = self.peek() else {
                        return Err((pos, SyntaxError::UnterminatedString));
                    };
                    self.pos += c.len_utf8();
                    if c == q {
                        break;
                    }
                    if c == '\\' {
                        let Some(n) = self.peek() else {
                            return Err((pos, SyntaxError::UnterminatedString));
                        };
                        self.pos += n.len_utf8();
                        match n {
                            '\\' | '"' | '\'' => text.push(n),
                            'n' => text.push('\n'),
                            't' => text.push('\t'),
                            'r' => text.push('\r'),
                            // Unknown escapes stay as written, so regexes keep `\.`.
                            other => {
                                text.push('\\');
                                text.push(other);
                            }
                        }
                    } else {
                        text.push(c);
                    }
                }
                Ok(Lit {
                    text,
                    pos,
                    quoted: true,
                })
            }
            _ => {
                let rest = &self.s[start..];
                let len = rest.find(is_bare_end).unwrap_or(rest.len());
                self.pos += len;
                Ok(Lit {
                    text: rest[..len].to_string(),
                    pos,
                    quoted: false,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Ast, (usize, SyntaxError)> {
        parse_condition(s, &|o| Pos { file: 0, offset: o }).map_err(|(p, e)| (p.offset, e))
    }

    fn check(ast: &Ast) -> (&str, Op, &Operand) {
        match ast {
            Ast::Check {
                field, op, value, ..
            } => (field.name.as_str(), *op, value),
            other => panic!("not a check: {other:?}"),
        }
    }

    #[test]
    fn precedence_not_and_or() {
        let a = p("a or b and not c").unwrap();
        let Ast::Or(items) = a else { panic!() };
        assert!(matches!(&items[0], Ast::Macro { name, .. } if name == "a"));
        let Ast::And(inner) = &items[1] else { panic!() };
        assert!(matches!(&inner[1], Ast::Not(_)));
    }

    #[test]
    fn every_operator_parses() {
        for (src, op) in [
            ("proc.name = x", Op::Eq),
            ("proc.name==x", Op::Eq),
            ("proc.name != x", Op::Ne),
            ("proc.pid < 1", Op::Lt),
            ("proc.pid <= 1", Op::Le),
            ("proc.pid > 1", Op::Gt),
            ("proc.pid >= 1", Op::Ge),
            ("proc.name contains x", Op::Contains),
            ("proc.name icontains x", Op::IContains),
            ("proc.name startswith x", Op::StartsWith),
            ("proc.name endswith x", Op::EndsWith),
            ("proc.name glob 'x*'", Op::Glob),
            ("proc.name iglob 'x*'", Op::IGlob),
            ("fd.name pmatch (/etc)", Op::PMatch),
            ("proc.name in (a, b)", Op::In),
            ("proc.name intersects (a)", Op::Intersects),
            ("proc.name exists", Op::Exists),
            ("proc.name regex '^a\\.b$'", Op::Regex),
        ] {
            let ast = p(src).unwrap_or_else(|e| panic!("{src}: {e:?}"));
            assert_eq!(check(&ast).1, op, "{src}");
        }
    }

    #[test]
    fn values_bare_quoted_and_lists() {
        let ast = p("evt.dir=<").unwrap();
        assert_eq!(
            check(&ast).2,
            &Operand::One(Lit {
                text: "<".into(),
                pos: Pos { file: 0, offset: 8 },
                quoted: false
            })
        );
        let ast = p("proc.name in (runc:[0:PARENT], \"a b\", 'c\\'d')").unwrap();
        let Operand::List(items) = check(&ast).2 else {
            panic!()
        };
        let texts: Vec<_> = items.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["runc:[0:PARENT]", "a b", "c'd"]);
        let ast = p("proc.aname[2] = sh").unwrap();
        let Ast::Check { field, .. } = ast else {
            panic!()
        };
        assert_eq!(field.arg.as_deref(), Some("2"));
        assert!(p("proc.name in ()").is_ok());
        assert!(p("proc.name regex 'a\\.b'").is_ok());
    }

    #[test]
    fn errors_are_positioned() {
        assert_eq!(p("(proc.name = a"), Err((0, SyntaxError::UnclosedParen)));
        assert_eq!(p("proc.name = a)"), Err((13, SyntaxError::UnmatchedParen)));
        assert_eq!(p(""), Err((0, SyntaxError::Empty)));
        assert!(matches!(
            p("proc.name"),
            Err((9, SyntaxError::MissingOperator { .. }))
        ));
        assert!(matches!(
            p("proc.name bogus x"),
            Err((10, SyntaxError::UnknownOperator(_)))
        ));
        assert!(matches!(
            p("proc.name = "),
            Err((12, SyntaxError::MissingValue { .. }))
        ));
        assert!(matches!(
            p("proc.name in 1"),
            Err((13, SyntaxError::ExpectedList { .. }))
        ));
        assert!(matches!(
            p("proc.name in (a, b"),
            Err((13, SyntaxError::UnclosedParen))
        ));
        assert!(matches!(
            p("proc.name = 'abc"),
            Err((12, SyntaxError::UnterminatedString))
        ));
        assert!(matches!(
            p("a and"),
            Err((5, SyntaxError::Unexpected { .. }))
        ));
        assert!(matches!(p("a b"), Err((2, SyntaxError::Unexpected { .. }))));
        assert!(matches!(
            p("proc.aname[2 = x"),
            Err((10, SyntaxError::UnterminatedArg))
        ));
        assert!(matches!(p("m[1]"), Err((0, SyntaxError::MacroWithArg(_)))));
        let deep = format!("{}a{}", "(".repeat(500), ")".repeat(500));
        assert!(matches!(p(&deep), Err((_, SyntaxError::TooDeep))));
        let nots = "not ".repeat(500) + "a";
        assert!(matches!(p(&nots), Err((_, SyntaxError::TooDeep))));
    }

    #[test]
    fn keywords_need_word_boundaries() {
        let ast = p("notice and origin").unwrap();
        let Ast::And(items) = ast else { panic!() };
        assert!(matches!(&items[0], Ast::Macro { name, .. } if name == "notice"));
        assert!(matches!(&items[1], Ast::Macro { name, .. } if name == "origin"));
        assert!(p("not(a)").is_ok());
    }

    #[test]
    fn field_tokens() {
        assert_eq!(
            parse_field_token("proc.name)"),
            Some(("proc.name".into(), None, 9))
        );
        assert_eq!(
            parse_field_token("fd.name."),
            Some(("fd.name".into(), None, 7))
        );
        assert_eq!(
            parse_field_token("proc.aname[2] x"),
            Some(("proc.aname".into(), Some("2".into()), 13))
        );
        assert_eq!(parse_field_token("1abc"), None);
    }
}
