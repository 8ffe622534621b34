//! What can be wrong with a condition once parsed: the compiler reports these, the
//! diagnostics place them in the file.

/// A condition may expand (macros inlined) to at most this many nodes.
pub const MAX_EXPANDED_NODES: usize = 100_000;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("unknown field `{name}`{}", did_you_mean(*suggestion))]
    UnknownField {
        name: String,
        suggestion: Option<&'static str>,
    },
    #[error("field `{field}` takes no argument")]
    UnexpectedArg { field: String },
    #[error("field `{field}` needs an argument: `{field}[NAME]`")]
    MissingArg { field: String },
    #[error("field `{field}` takes a number as argument, not `{arg}`")]
    BadIndex { field: String, arg: String },
    #[error("unknown macro `{name}`{}", if *is_list { " (it is a list: use it inside parentheses, e.g. `proc.name in (NAME)`)" } else { "" })]
    UnknownMacro { name: String, is_list: bool },
    #[error("macro `{name}` is recursive: {chain}")]
    RecursiveMacro { name: String, chain: String },
    #[error("list `{name}` is recursive: {chain}")]
    RecursiveList { name: String, chain: String },
    #[error(
        "operator `{op}` cannot be used on {ty} field `{field}`{}",
        op_hint(ty)
    )]
    BadOperator {
        op: &'static str,
        field: String,
        ty: &'static str,
    },
    #[error("`{value}` is not a number, and `{field}` is a number field")]
    NotANumber { value: String, field: String },
    #[error(
        "`{value}` is not a network (`10.0.0.0/8`, `fd00::/8`) or an address, and `{field}` tests networks"
    )]
    NotANetwork { value: String, field: String },
    #[error("`{value}` is not true or false, and `{field}` is a bool field")]
    NotABool { value: String, field: String },
    #[error("operator `{op}` takes a single value, not a list")]
    ListNotAllowed { op: &'static str },
    #[error("invalid regex {pattern:?}: {error}")]
    BadRegex { pattern: String, error: String },
    #[error("invalid glob {pattern:?}: {error}")]
    BadGlob { pattern: String, error: String },
    #[error(
        "condition is too large: more than {MAX_EXPANDED_NODES} tests once macros are expanded"
    )]
    TooLarge,
    #[error("exception `{name}` has no `fields`")]
    ExceptionWithoutFields { name: String },
    #[error("exception value has {values} entries but `fields` names {fields}")]
    ExceptionArity { values: usize, fields: usize },
    #[error("exception `comps` names {comps} operators but `fields` names {fields}")]
    ExceptionCompsArity { comps: usize, fields: usize },
    #[error("unknown comparison operator `{0}` in exception")]
    BadComp(String),
    #[error("not a field name: `{0}`")]
    BadFieldName(String),
    #[error("exception values for a single field must be strings, not tuples")]
    ExceptionTupleForSingleField,
    #[error("transformer `{xf}` cannot be applied to {ty} `{field}` (it takes strings)")]
    BadTransformer {
        xf: &'static str,
        field: String,
        ty: &'static str,
    },
    #[error("`{value}` is not hex bytes (operator `{op}` takes e.g. `7f454c46`)")]
    NotHex { value: String, op: &'static str },
    #[error("operator `{op}` cannot compare `{left}` ({lty}) with `{right}` ({rty})")]
    FieldTypes {
        op: &'static str,
        left: String,
        lty: &'static str,
        right: String,
        rty: &'static str,
    },
}

fn did_you_mean(s: Option<&'static str>) -> String {
    s.map_or_else(String::new, |s| format!("; did you mean `{s}`?"))
}

fn op_hint(ty: &str) -> &'static str {
    match ty {
        "string" => {
            " (strings take =, !=, contains, icontains, startswith, endswith, glob, iglob, pmatch, regex, in, intersects, exists)"
        }
        "bool" => " (bools take =, !=, exists)",
        "network" => " (networks take =, !=, in, exists)",
        _ => " (numbers take =, !=, <, <=, >, >=, in, intersects, exists)",
    }
}
