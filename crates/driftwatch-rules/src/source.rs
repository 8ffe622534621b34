//! Rule-file sources and positions: a file's line table, and texts assembled from YAML
//! scalars (a condition plus its appends) that map every byte back to FILE:LINE:COL.

/// One rule file handed to the loader: a name for messages and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub text: String,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Source {
        Source {
            name: name.into(),
            text: text.into(),
        }
    }
}

/// A loaded file: its name, text and where each line starts.
#[derive(Debug)]
pub(crate) struct SourceFile {
    pub(crate) name: String,
    pub(crate) text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub(crate) fn new(name: &str, text: &str) -> SourceFile {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            name: name.to_string(),
            text: text.to_string(),
            line_starts,
        }
    }

    /// 1-based line, 1-based character column and the line's text for a byte offset.
    pub(crate) fn locate(&self, offset: usize) -> (u32, u32, String) {
        let offset = offset.min(self.text.len());
        let line_idx = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line_idx];
        let end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let line_text = self.text[start..end].trim_end_matches('\r');
        let mut cut = offset.min(end);
        while !self.text.is_char_boundary(cut) {
            cut -= 1;
        }
        let col = self.text[start..cut].chars().count() + 1;
        (
            u32::try_from(line_idx + 1).unwrap_or(u32::MAX),
            u32::try_from(col).unwrap_or(u32::MAX),
            line_text.to_string(),
        )
    }

    /// Byte offset of a 1-based line and character column (clamped to the text).
    pub(crate) fn offset_of(&self, line: u64, col: u64) -> usize {
        let Some(&start) = usize::try_from(line.saturating_sub(1))
            .ok()
            .and_then(|l| self.line_starts.get(l))
        else {
            return self.text.len();
        };
        let skip = usize::try_from(col.saturating_sub(1)).unwrap_or(usize::MAX);
        self.text[start..]
            .char_indices()
            .take_while(|(_, c)| *c != '\n')
            .nth(skip)
            .map_or_else(
                || {
                    self.text[start..]
                        .find('\n')
                        .map_or(self.text.len(), |i| start + i)
                },
                |(i, _)| start + i,
            )
    }
}

/// Where a YAML scalar sits in its file: byte offset and length of its raw text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct At {
    pub(crate) file: usize,
    pub(crate) offset: usize,
    pub(crate) len: usize,
}

/// A position in a loaded file: file index and byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) file: usize,
    pub(crate) offset: usize,
}

impl At {
    pub(crate) fn pos(self) -> Pos {
        Pos {
            file: self.file,
            offset: self.offset,
        }
    }
}

/// A text built from one or more YAML scalars (Falco appends conditions with a space),
/// keeping for each piece where it came from.
#[derive(Clone, Debug)]
pub(crate) struct Text {
    pub(crate) text: String,
    pieces: Vec<(usize, At)>,
}

impl Text {
    pub(crate) fn new(value: &str, at: At) -> Text {
        Text {
            text: value.to_string(),
            pieces: vec![(0, at)],
        }
    }

    /// Where the text's first piece is.
    pub(crate) fn first_at(&self) -> At {
        self.pieces[0].1
    }

    /// Falco's append: the new text follows the old one after a space.
    pub(crate) fn append(&mut self, value: &str, at: At) {
        self.text.push(' ');
        self.pieces.push((self.text.len(), at));
        self.text.push_str(value);
    }

    /// The file and byte offset in it of a byte offset of this text.
    pub(crate) fn map(&self, offset: usize, files: &[SourceFile]) -> Pos {
        let idx = self
            .pieces
            .iter()
            .rposition(|(start, _)| *start <= offset)
            .unwrap_or(0);
        let (start, at) = self.pieces[idx];
        let end = self
            .pieces
            .get(idx + 1)
            .map_or(self.text.len(), |(s, _)| s.saturating_sub(1));
        let value = &self.text[start..end.max(start)];
        let rel = offset.saturating_sub(start).min(value.len());
        let Some(file) = files.get(at.file) else {
            return at.pos();
        };
        Pos {
            file: at.file,
            offset: align(&file.text, at, value, rel),
        }
    }
}

/// Maps a byte offset of a scalar's value to the file: walks value and raw text together,
/// letting folded line breaks, indentation, quotes and escapes differ.
fn align(source: &str, at: At, value: &str, rel: usize) -> usize {
    let raw_end = (at.offset + at.len).min(source.len());
    let Some(raw) = source.get(at.offset..raw_end) else {
        return at.offset.min(source.len());
    };
    let mut pos = 0usize; // in raw
    for (i, ch) in value.char_indices() {
        let Some(found) = find_from(raw, pos, ch) else {
            return at.offset + pos;
        };
        if i >= rel {
            return at.offset + found;
        }
        pos = found + ch.len_utf8();
    }
    at.offset + pos.min(raw.len())
}

fn find_from(raw: &str, pos: usize, ch: char) -> Option<usize> {
    let rest = raw.get(pos..)?;
    if ch.is_whitespace() {
        rest.find(char::is_whitespace).map(|i| pos + i)
    } else {
        rest.find(ch).map(|i| pos + i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_lines_and_columns() {
        let f = SourceFile::new("f", "ab\ncdé f\n");
        assert_eq!(f.locate(0), (1, 1, "ab".into()));
        assert_eq!(f.locate(4), (2, 2, "cdé f".into()));
        assert_eq!(f.locate(8), (2, 5, "cdé f".into()));
        assert_eq!(f.offset_of(2, 5), 8);
        assert_eq!(f.locate(10_000).0, 3);
    }

    #[test]
    fn folded_scalar_maps_back() {
        let src = "condition: >\n    a and\n    b = 1\n";
        let files = vec![SourceFile::new("f", src)];
        let offset = src.find("a and").unwrap();
        let at = At {
            file: 0,
            offset,
            len: src.len() - offset,
        };
        let t = Text::new("a and b = 1\n", at);
        let off = t.map(6, &files).offset;
        assert_eq!(files[0].locate(off), (3, 5, "    b = 1".into()));
    }
}
