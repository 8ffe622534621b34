//! Transformers (`tolower`, `toupper`, `b64`, `basename`, `len`) and field-to-field
//! comparisons (`val()`), applied to extracted values in buffers kept between events.

use driftwatch_model::Event;

use super::icontains;
use crate::fields::{FieldRef, Val, extract};
use crate::parser::{Op, Transformer};

/// Reusable buffers for one side of a comparison: the extracted value, the transformed one,
/// and decoded bytes.
pub(crate) struct SideBufs {
    pub(super) raw: String,
    pub(super) out: String,
    pub(super) bytes: Vec<u8>,
}

impl SideBufs {
    const fn new() -> SideBufs {
        SideBufs {
            raw: String::new(),
            out: String::new(),
            bytes: Vec::new(),
        }
    }
}

/// Buffers for composed and transformed values, kept between events so evaluation does not
/// allocate: one set for a test's field, one for the field it is compared with.
pub(crate) struct Scratch {
    pub(super) lhs: SideBufs,
    pub(super) rhs: SideBufs,
}

impl Scratch {
    pub(crate) const fn new() -> Scratch {
        Scratch {
            lhs: SideBufs::new(),
            rhs: SideBufs::new(),
        }
    }
}

/// A field's value with its transformers applied.
pub(super) fn side_value<'e>(
    field: &FieldRef,
    xf: &[Transformer],
    ev: &'e Event,
    b: &'e mut SideBufs,
) -> Val<'e> {
    let SideBufs { raw, out, bytes } = b;
    let v = extract(field, ev, raw);
    if xf.is_empty() {
        v
    } else {
        transform(xf, v, out, bytes)
    }
}

/// Applies transformers (innermost first) in `out`, reusing its capacity. `len` is the
/// string's length in bytes; the compiler only lets `len` be the outermost transformer.
pub(super) fn transform<'e>(
    xf: &[Transformer],
    v: Val<'_>,
    out: &'e mut String,
    bytes: &mut Vec<u8>,
) -> Val<'e> {
    let s = match v {
        Val::Str(s) => s,
        _ => return Val::Missing,
    };
    out.clear();
    out.push_str(s);
    for t in xf {
        match t {
            Transformer::ToLower => out.make_ascii_lowercase(),
            Transformer::ToUpper => out.make_ascii_uppercase(),
            // Falco's basename: what follows the last `/` (empty for a trailing slash).
            Transformer::Basename => {
                if let Some(i) = out.rfind('/') {
                    out.replace_range(..=i, "");
                }
            }
            Transformer::B64 => {
                if !b64_decode(out.as_bytes(), bytes) {
                    return Val::Missing;
                }
                out.clear();
                match std::str::from_utf8(bytes) {
                    Ok(d) => out.push_str(d),
                    Err(_) => out.push_str(&String::from_utf8_lossy(bytes)),
                }
            }
            Transformer::Len => return Val::Num(i64::try_from(out.len()).unwrap_or(i64::MAX)),
        }
    }
    let out: &'e String = out;
    Val::Str(out)
}

/// Standard base64 (padding optional) into `out`; false on a character outside the alphabet.
pub(crate) fn b64_decode(s: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in s {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return false,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).unwrap_or(0));
        }
    }
    true
}

/// A field-to-field comparison; `None` when either value is missing or they do not compare.
pub(super) fn compare_values(op: Op, l: Val<'_>, r: Val<'_>) -> Option<bool> {
    match (l, r) {
        (Val::Missing, _) | (_, Val::Missing) => None,
        (Val::Str(a), Val::Str(b)) => Some(match op {
            Op::Eq => a == b,
            Op::Contains => a.contains(b),
            Op::IContains => icontains(a, b),
            Op::StartsWith => a.starts_with(b),
            Op::EndsWith => a.ends_with(b),
            _ => return None,
        }),
        (Val::Num(a), Val::Num(b)) => Some(match op {
            Op::Eq => a == b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            _ => return None,
        }),
        (Val::Bool(a), Val::Bool(b)) => (op == Op::Eq).then_some(a == b),
        _ => None,
    }
}
