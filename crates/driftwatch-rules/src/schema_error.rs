//! What can be wrong with a rules file's shape (Falco's schema): the loader reports these,
//! the diagnostics place them in the file.

/// The Falco rules engine version whose file format and condition language (transformers,
/// `val()`, byte operators) the loader implements; upstream files require 0.57.0.
pub const ENGINE_VERSION: (u64, u64, u64) = (0, 57, 0);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "a rules file must be a list of items (`- rule: ...`, `- macro: ...`, `- list: ...`), not {found}"
    )]
    NotAList { found: &'static str },
    #[error("each item must be a mapping, not {found}")]
    ItemNotAMapping { found: &'static str },
    #[error(
        "unknown item: expected one of `rule`, `macro`, `list`, `required_engine_version`, `required_plugin_versions`"
    )]
    UnknownItem,
    #[error("unknown key `{key}` in {kind} (allowed: {allowed})")]
    UnknownKey {
        key: String,
        kind: &'static str,
        allowed: &'static str,
    },
    #[error("`{key}` must be {expected}, not {found}")]
    WrongType {
        key: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("{kind} `{name}` is missing required key `{key}`")]
    MissingKey {
        kind: &'static str,
        name: String,
        key: &'static str,
    },
    #[error("{0}")]
    BadPriority(String),
    #[error("`{key}` cannot be overridden with `{mode}` in a {kind} (allowed: {allowed})")]
    BadOverride {
        kind: &'static str,
        key: String,
        mode: String,
        allowed: &'static str,
    },
    #[error(
        "key `{key}` is given but not listed under `override`; add `{key}: append` or `{key}: replace`"
    )]
    NotInOverride { key: String },
    #[error("`override` names `{key}` but the item does not give it")]
    OverrideWithoutKey { key: String },
    #[error("`append` and `override` cannot be used together")]
    AppendAndOverride,
    #[error("{kind} `{name}` is appended to or overridden, but no earlier file defines it")]
    UndefinedBase { kind: &'static str, name: String },
    #[error("these rules require engine version {required}, this engine is {}.{}.{}", ENGINE_VERSION.0, ENGINE_VERSION.1, ENGINE_VERSION.2)]
    EngineTooOld { required: String },
    #[error("invalid engine version {0:?} (expected e.g. 0.31.0)")]
    BadEngineVersion(String),
    #[error("an exception needs a `name`")]
    ExceptionWithoutName,
    #[error("duplicate exception name `{0}` in one rule")]
    DuplicateException(String),
}
