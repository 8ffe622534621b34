//! Glob patterns for the `glob`/`iglob` operators, matched without allocating: `*` (any run of
//! characters, `/` included, as Falco's glob), `?` (one character), `[abc]`, `[a-z]`, `[!a]`
//! and `[^a]`, and `\` to escape.

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Char(char),
    Any,
    Star,
    Class {
        negated: bool,
        ranges: Box<[(char, char)]>,
    },
}

/// A compiled glob pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    toks: Box<[Tok]>,
    case_insensitive: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    #[error("unclosed `[` in glob pattern")]
    UnclosedClass,
    #[error("trailing `\\` in glob pattern")]
    TrailingEscape,
}

impl Glob {
    pub fn new(pattern: &str, case_insensitive: bool) -> Result<Glob, GlobError> {
        let fold = |c: char| {
            if case_insensitive {
                c.to_ascii_lowercase()
            } else {
                c
            }
        };
        let mut toks = Vec::new();
        let mut it = pattern.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '*' => {
                    if toks.last() != Some(&Tok::Star) {
                        toks.push(Tok::Star);
                    }
                }
                '?' => toks.push(Tok::Any),
                '\\' => toks.push(Tok::Char(fold(it.next().ok_or(GlobError::TrailingEscape)?))),
                '[' => {
                    let negated = matches!(it.peek(), Some('!' | '^'));
                    if negated {
                        it.next();
                    }
                    let mut ranges = Vec::new();
                    let mut first = true;
                    loop {
                        let c = it.next().ok_or(GlobError::UnclosedClass)?;
                        if c == ']' && !first {
                            break;
                        }
                        first = false;
                        let lo = fold(c);
                        let mut look = it.clone();
                        if look.next() == Some('-') && look.peek().is_some_and(|n| *n != ']') {
                            it.next();
                            let hi = fold(it.next().ok_or(GlobError::UnclosedClass)?);
                            ranges.push((lo, hi));
                        } else {
                            ranges.push((lo, lo));
                        }
                    }
                    toks.push(Tok::Class {
                        negated,
                        ranges: ranges.into(),
                    });
                }
                c => toks.push(Tok::Char(fold(c))),
            }
        }
        Ok(Glob {
            toks: toks.into(),
            case_insensitive,
        })
    }

    /// The literal text every match starts with (up to the first wildcard or class); `None`
    /// for a case-insensitive pattern.
    pub(crate) fn literal_prefix(&self) -> Option<String> {
        if self.case_insensitive {
            return None;
        }
        Some(
            self.toks
                .iter()
                .map_while(|t| match t {
                    Tok::Char(c) => Some(*c),
                    _ => None,
                })
                .collect(),
        )
    }

    fn tok_matches(&self, t: &Tok, c: char) -> bool {
        let c = if self.case_insensitive {
            c.to_ascii_lowercase()
        } else {
            c
        };
        match t {
            Tok::Char(x) => *x == c,
            Tok::Any => true,
            Tok::Star => false,
            Tok::Class { negated, ranges } => {
                ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
            }
        }
    }

    /// Whole-string match; backtracks only to the last `*`, so it is linear in practice
    /// and O(pattern × text) at worst.
    pub fn is_match(&self, text: &str) -> bool {
        let (mut p, mut t) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            let c = text[t..].chars().next().unwrap_or('\0');
            match self.toks.get(p) {
                Some(Tok::Star) => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(tok) if self.tok_matches(tok, c) => {
                    p += 1;
                    t += c.len_utf8();
                }
                _ => match star {
                    Some((sp, st)) => {
                        let skipped = text[st..].chars().next().map_or(1, char::len_utf8);
                        star = Some((sp, st + skipped));
                        p = sp + 1;
                        t = st + skipped;
                    }
                    None => return false,
                },
            }
        }
        self.toks[p..].iter().all(|t| *t == Tok::Star)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Glob::new(p, false).unwrap().is_match(t)
    }

    #[test]
    fn globbing() {
        assert!(m("/etc/*", "/etc/passwd"));
        assert!(m("/etc/*", "/etc/a/b"));
        assert!(!m("/etc/*", "/usr/etc"));
        assert!(m("*.so*", "/lib/libc.so.6"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[!a-c]x", "bx"));
        assert!(m("[^a-c]x", "dx"));
        assert!(m("a\\*", "a*"));
        assert!(!m("a\\*", "ab"));
        assert!(m("**", ""));
        assert!(m("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaab"));
        assert!(!m("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaa"));
        assert!(m("é*", "été"));
        assert!(Glob::new("ABC*", true).unwrap().is_match("abcdef"));
        assert_eq!(Glob::new("[ab", false), Err(GlobError::UnclosedClass));
        assert_eq!(Glob::new("a\\", false), Err(GlobError::TrailingEscape));
        assert!(m("[]]", "]"));
    }
}
