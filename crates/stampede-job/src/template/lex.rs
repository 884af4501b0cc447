//! The lexer of template actions: `{{ … }}` split into tokens (words, strings, `|`,
//! parentheses), with Go's trim markers.

use super::{ACTION_FORMS, TemplateError, syntax};

/// Go's template white space, which trim markers remove.
pub(super) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

#[derive(Debug)]
pub(super) struct Token<'t> {
    pub(super) kind: Tok<'t>,
    pub(super) offset: usize,
}

#[derive(Debug)]
pub(super) enum Tok<'t> {
    /// `.ID`, with its dot.
    Field(&'t str),
    /// A function name or a native path like `target.host`.
    Ident(&'t str),
    Str(String),
    Pipe,
    Open,
    Close,
}

impl Tok<'_> {
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Field(s) | Tok::Ident(s) => (*s).to_owned(),
            Tok::Str(s) => format!("{s:?}"),
            Tok::Pipe => "|".to_owned(),
            Tok::Open => "(".to_owned(),
            Tok::Close => ")".to_owned(),
        }
    }
}

pub(super) struct Action<'t> {
    pub(super) tokens: Vec<Token<'t>>,
    /// Byte offset just past the closing `}}`.
    pub(super) end: usize,
    pub(super) trim_left: bool,
    pub(super) trim_right: bool,
}

/// Splits the action opening at `open` into tokens, up to its `}}`.
pub(super) fn lex_action(text: &str, open: usize) -> Result<Action<'_>, TemplateError> {
    let bytes = text.as_bytes();
    let mut pos = open + 2;
    // Go's left trim marker needs white space after it: `{{- .ID }}`.
    let trim_left =
        bytes.get(pos) == Some(&b'-') && bytes.get(pos + 1).is_some_and(|&b| is_space(b as char));
    if trim_left {
        pos += 2;
    }
    let mut tokens = Vec::new();
    loop {
        let start = pos;
        pos = text.len() - text[pos..].trim_start_matches(is_space).len();
        let rest = &text[pos..];
        let close = if rest.starts_with("}}") {
            Some((2, false))
        } else if rest.starts_with("-}}") && pos > start {
            Some((3, true))
        } else {
            None
        };
        if let Some((len, trim_right)) = close {
            let end = pos + len;
            return Ok(Action {
                tokens,
                end,
                trim_left,
                trim_right,
            });
        }
        let Some(c) = rest.chars().next() else {
            return Err(TemplateError::Unclosed { offset: open });
        };
        let offset = pos;
        let (kind, len) = match c {
            '|' => (Tok::Pipe, 1),
            '(' => (Tok::Open, 1),
            ')' => (Tok::Close, 1),
            '"' | '`' => lex_string(rest, offset)?,
            '.' => {
                let len = 1 + word_len(&rest[1..], false);
                (Tok::Field(&rest[..len]), len)
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let len = word_len(rest, true);
                (Tok::Ident(&rest[..len]), len)
            }
            _ => return Err(syntax(format!("unexpected {c:?}"), offset, ACTION_FORMS)),
        };
        tokens.push(Token { kind, offset });
        pos += len;
    }
}

/// The length of the name at the start of `s`: word characters and dots, and dashes
/// too in native paths (`steps.warm-up.token`).
pub(super) fn word_len(s: &str, dashes: bool) -> usize {
    s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || (dashes && c == '-')))
        .unwrap_or(s.len())
}

/// A `"quoted"` string (with `\\`, `\"`, `\n`, `\t`, `\r` escapes) or a `` `raw` `` one.
pub(super) fn lex_string(
    rest: &str,
    offset: usize,
) -> Result<(Tok<'static>, usize), TemplateError> {
    let quote = if rest.starts_with('`') { "`" } else { "\"" };
    let unterminated = || {
        let hint = format!("end it with {quote} before the }}}}");
        syntax("unterminated string", offset, hint)
    };
    if let Some(raw) = rest.strip_prefix('`') {
        let end = raw.find('`').ok_or_else(unterminated)?;
        return Ok((Tok::Str(raw[..end].to_owned()), end + 2));
    }
    let mut value = String::new();
    let mut chars = rest.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((Tok::Str(value), i + 1)),
            '\\' => {
                let (j, escaped) = chars.next().ok_or_else(unterminated)?;
                value.push(match escaped {
                    '\\' => '\\',
                    '"' => '"',
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    other => {
                        let problem = format!("unsupported escape \\{other}");
                        let hint = r#"use \\, \", \n, \t or \r, or a `raw string`"#;
                        return Err(syntax(problem, offset + j - 1, hint));
                    }
                });
            }
            '\n' => break,
            c => value.push(c),
        }
    }
    Err(unterminated())
}
