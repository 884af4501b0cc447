//! Step parameter templates, rendered once per target.
//!
//! A step's string parameters may name the target they run against: `"{{ target.host }}"`
//! in native files, `"{{ .FQDN }}"` in ConTest descriptors, which use Go's `text/template`
//! with ConTest's functions. This is the subset of that language step parameters use,
//! parsed up front so a descriptor's mistakes are reported before anything runs:
//!
//! * fields: `target.id`, `target.host`, `target.ipv4`, `target.ipv6`, `target.url`, and
//!   ConTest's `.ID`, `.FQDN`, `.PrimaryIPv4`, `.PrimaryIPv6`;
//! * step variables: `steps.LABEL.NAME`, ConTest's `StringVar "label.name"` and
//!   `IntVar "label.name"`;
//! * inside a `scale` step's phases, a runner's saved values: `saved.NAME`;
//! * case functions `ToUpper X`, `ToLower X`, `Title X` (X a field, a quoted string or
//!   a parenthesised call), also as pipeline stages: `.FQDN | ToUpper`, `target.host | upper`
//!   with the native filter names `upper`, `lower`, `title`;
//! * Go's trim markers `{{- ` and ` -}}`, which drop the white space beside the action.
//!
//! Case mapping is Go's: one character to one character (`ß` stays `ß`), and `Title` is
//! `strings.Title`, which starts a word after any ASCII punctuation (`example.org` becomes
//! `Example.Org`). Where ConTest would fail, two things differ on purpose: an empty
//! address renders as nothing rather than Go's `<nil>`, and `StringVar` renders a
//! variable that is not a string as JSON text, as `steps.LABEL.NAME` does.
//!
//! ```
//! use std::collections::BTreeMap;
//! use stampede_api::job::Target;
//! use stampede_job::template::{Context, Template};
//!
//! let target = Target { id: "t1".into(), host: "example.org".into(), ..Default::default() };
//! let vars = BTreeMap::new();
//! let ctx = Context { target: &target, vars: &vars, saved: None };
//! let template = Template::parse("https://{{ target.host }}/{{ .ID | ToUpper }}").unwrap();
//! assert_eq!(template.render(&ctx).unwrap(), "https://example.org/T1");
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

use serde_json::Value;
use stampede_api::job::Target;

use lex::{Tok, Token, is_space, lex_action};

mod lex;

/// What the known-fields list in errors shows.
const KNOWN_FIELDS: &str = ".ID, .FQDN, .PrimaryIPv4, .PrimaryIPv6, target.id, target.host, \
                            target.ipv4, target.ipv6, target.url, steps.LABEL.NAME, saved.NAME (scale phases)";

/// What the known-functions list in errors shows.
const KNOWN_FUNCTIONS: &str =
    "ToUpper, ToLower, Title, StringVar, IntVar, and the filters upper, lower, title";

/// What an action may hold, for syntax errors.
const ACTION_FORMS: &str =
    "an action holds a field (.ID, target.host), a quoted string or a function call";

/// Go's keywords, refused with a message saying why rather than as unknown functions.
const CONTROL_WORDS: [&str; 10] = [
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

/// A problem with a template, when parsing it or rendering it for a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// A `{{` without its `}}`.
    #[error("unclosed action: the {{{{ at {offset} has no matching }}}}")]
    Unclosed {
        /// Byte offset of the `{{`.
        offset: usize,
    },
    /// A field nobody knows, like `.Foo` or `target.name`.
    #[error("unknown field {name} at {offset}; known: {known}", known = KNOWN_FIELDS)]
    UnknownField {
        /// The field as written.
        name: String,
        /// Its byte offset in the template.
        offset: usize,
    },
    /// A function nobody knows, like `printf`.
    #[error("unknown function {name} at {offset}; known: {known}", known = KNOWN_FUNCTIONS)]
    UnknownFunction {
        /// The function as written.
        name: String,
        /// Its byte offset in the template.
        offset: usize,
    },
    /// Any other mistake in an action.
    #[error("{problem} at {offset}; {hint}")]
    Syntax {
        /// What is wrong.
        problem: String,
        /// Byte offset where it is wrong.
        offset: usize,
        /// What to write instead.
        hint: String,
    },
    /// A step variable the target does not have (yet).
    #[error("step variable \"{label}.{name}\" is not set for target \"{target}\"")]
    VariableNotSet {
        /// The step that should have set it.
        label: String,
        /// The variable's name.
        name: String,
        /// The target being rendered for.
        target: String,
    },
    /// A saved value the runner does not have (yet), or `saved.NAME` outside a scale step.
    #[error("saved value \"{name}\" is not set: {why}")]
    SavedNotSet {
        /// The value's name.
        name: String,
        /// Why: no phase saved it yet, or saved values exist in scale phases only.
        why: &'static str,
    },
    /// `IntVar` of a variable that does not hold an integer.
    #[error(
        "step variable \"{label}.{name}\" of target \"{target}\" is {value}, not the integer \
         IntVar needs"
    )]
    NotInteger {
        /// The step that set it.
        label: String,
        /// The variable's name.
        name: String,
        /// The target being rendered for.
        target: String,
        /// The value it holds, as JSON.
        value: String,
    },
}

/// What a template is rendered against: one target and the step variables set for it.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The target the step runs against.
    pub target: &'a Target,
    /// The target's step variables, by step label then name.
    pub vars: &'a BTreeMap<String, BTreeMap<String, Value>>,
    /// A scale runner's saved values (`saved.NAME`); `None` outside a scale step.
    pub saved: Option<&'a BTreeMap<String, String>>,
}

/// A parsed template: text with `{{ … }}` actions.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    /// Empty for text without actions, which renders as a copy of `source`.
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    /// A range of `source`, already shortened by trim markers.
    Text(Range<usize>),
    Action(Expr),
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Field(Field),
    Literal(String),
    Var {
        label: String,
        name: String,
        integer: bool,
    },
    Case(Case, Box<Expr>),
    /// `saved.NAME`.
    Saved(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    Id,
    Host,
    Ipv4,
    Ipv6,
    Url,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Case {
    Upper,
    Lower,
    Title,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Function {
    Case(Case),
    /// `StringVar` (any value) or `IntVar` (`integer`).
    Var {
        integer: bool,
    },
}

impl Template {
    /// Parses `text`, checking every field and function it names.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        if text.contains("{{") {
            let mut text_start = 0;
            while let Some(found) = text[text_start..].find("{{") {
                let open = text_start + found;
                let action = lex_action(text, open)?;
                let mut text_end = open;
                if action.trim_left {
                    text_end = text_start + text[text_start..open].trim_end_matches(is_space).len();
                }
                if text_start < text_end {
                    pieces.push(Piece::Text(text_start..text_end));
                }
                pieces.push(Piece::Action(Parser::parse(action.tokens, open)?));
                text_start = action.end;
                if action.trim_right {
                    text_start = text.len() - text[text_start..].trim_start_matches(is_space).len();
                }
            }
            if text_start < text.len() {
                pieces.push(Piece::Text(text_start..text.len()));
            }
        }
        Ok(Template {
            source: text.to_owned(),
            pieces,
        })
    }

    /// Whether the template has no actions, so it renders as its own text.
    pub fn is_literal(&self) -> bool {
        self.pieces.is_empty()
    }

    /// The saved values (`saved.NAME`) the template reads, in order of appearance.
    pub fn saved_names(&self) -> Vec<&str> {
        fn walk<'e>(expr: &'e Expr, out: &mut Vec<&'e str>) {
            match expr {
                Expr::Saved(name) => out.push(name),
                Expr::Case(_, inner) => walk(inner, out),
                Expr::Field(_) | Expr::Literal(_) | Expr::Var { .. } => {}
            }
        }
        let mut out = Vec::new();
        for piece in &self.pieces {
            if let Piece::Action(expr) = piece {
                walk(expr, &mut out);
            }
        }
        out
    }

    /// Renders the template for one target.
    pub fn render(&self, ctx: &Context<'_>) -> Result<String, TemplateError> {
        if self.is_literal() {
            return Ok(self.source.clone());
        }
        let mut out = String::with_capacity(self.source.len());
        for piece in &self.pieces {
            match piece {
                Piece::Text(range) => out.push_str(&self.source[range.clone()]),
                Piece::Action(expr) => out.push_str(&eval(expr, ctx)?),
            }
        }
        Ok(out)
    }
}

/// Renders every string in a JSON tree in place (object keys are left alone).
///
/// Strings are parsed on every call; a template rendered for many targets is cheaper
/// parsed once with [`Template::parse`].
pub fn render_strings(value: &mut Value, ctx: &Context<'_>) -> Result<(), TemplateError> {
    match value {
        Value::String(s) if s.contains("{{") => *s = Template::parse(s)?.render(ctx)?,
        Value::Array(items) => {
            for item in items {
                render_strings(item, ctx)?;
            }
        }
        Value::Object(map) => {
            for item in map.values_mut() {
                render_strings(item, ctx)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A step config (a JSON tree) with every template rendered for one target and its step
/// variables.
pub fn render_config(
    config: &Value,
    target: &Target,
    vars: &BTreeMap<String, BTreeMap<String, Value>>,
) -> Result<Value, TemplateError> {
    let mut value = config.clone();
    render_strings(
        &mut value,
        &Context {
            target,
            vars,
            saved: None,
        },
    )?;
    Ok(value)
}

/// Parses every string in a JSON tree and returns each problem as
/// `"<path>.<key>[i]: <message>"`, `path` naming `value` itself.
pub fn check_strings(value: &Value, path: &str) -> Vec<String> {
    let mut problems = Vec::new();
    check_into(value, path, &mut problems);
    problems
}

fn check_into(value: &Value, path: &str, problems: &mut Vec<String>) {
    match value {
        Value::String(s) if s.contains("{{") => {
            if let Err(e) = Template::parse(s) {
                problems.push(if path.is_empty() {
                    e.to_string()
                } else {
                    format!("{path}: {e}")
                });
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_into(item, &format!("{path}[{i}]"), problems);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                check_into(item, &path, problems);
            }
        }
        _ => {}
    }
}

fn eval<'c>(expr: &'c Expr, ctx: &Context<'c>) -> Result<Cow<'c, str>, TemplateError> {
    Ok(match expr {
        Expr::Field(field) => {
            let t = ctx.target;
            Cow::Borrowed(match field {
                Field::Id => &t.id,
                Field::Host => &t.host,
                Field::Ipv4 => &t.ipv4,
                Field::Ipv6 => &t.ipv6,
                Field::Url => &t.url,
            })
        }
        Expr::Literal(s) => Cow::Borrowed(s),
        Expr::Saved(name) => match ctx.saved.map(|saved| saved.get(name)) {
            Some(Some(value)) => Cow::Borrowed(value),
            Some(None) => {
                return Err(TemplateError::SavedNotSet {
                    name: name.clone(),
                    why: "no earlier phase saved it for this runner",
                });
            }
            None => {
                return Err(TemplateError::SavedNotSet {
                    name: name.clone(),
                    why: "saved values exist only in a scale step's phases",
                });
            }
        },
        Expr::Var {
            label,
            name,
            integer,
        } => {
            let value = ctx.vars.get(label).and_then(|vars| vars.get(name));
            match (value, integer) {
                (None, _) => {
                    return Err(TemplateError::VariableNotSet {
                        label: label.clone(),
                        name: name.clone(),
                        target: ctx.target.id.clone(),
                    });
                }
                (Some(Value::String(s)), false) => Cow::Borrowed(s),
                (Some(v), false) => Cow::Owned(v.to_string()),
                (Some(v), true) => match v.as_i64() {
                    Some(n) => Cow::Owned(n.to_string()),
                    None => {
                        return Err(TemplateError::NotInteger {
                            label: label.clone(),
                            name: name.clone(),
                            target: ctx.target.id.clone(),
                            value: v.to_string(),
                        });
                    }
                },
            }
        }
        Expr::Case(case, inner) => {
            let s = eval(inner, ctx)?;
            Cow::Owned(match case {
                Case::Upper => s.chars().map(|c| one_char(c.to_uppercase(), c)).collect(),
                Case::Lower => s.chars().map(|c| one_char(c.to_lowercase(), c)).collect(),
                Case::Title => go_title(&s),
            })
        }
    })
}

/// Go's simple case mapping: a character maps to one character, or stays as it is
/// (`ß` has no one-character upper case).
fn one_char(mut mapped: impl Iterator<Item = char>, c: char) -> char {
    match (mapped.next(), mapped.next()) {
        (Some(m), None) => m,
        _ => c,
    }
}

/// Go's `strings.Title`: upper-cases every letter that follows a word boundary.
fn go_title(s: &str) -> String {
    let mut prev = ' ';
    s.chars()
        .map(|c| {
            // Go maps to title case, which Rust lacks; upper case differs only for
            // a few digraphs such as `ǆ`.
            let out = if go_is_separator(prev) {
                one_char(c.to_uppercase(), c)
            } else {
                c
            };
            prev = c;
            out
        })
        .collect()
}

/// Go's `strings.isSeparator`: in ASCII anything but letters, digits and `_`; beyond
/// it, only white space.
fn go_is_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    if c.is_alphabetic() || c.is_numeric() {
        return false;
    }
    c.is_whitespace()
}

/// Recursive descent over one action's tokens: `pipeline := command ('|' command)*`.
struct Parser<'t> {
    tokens: Vec<Token<'t>>,
    pos: usize,
}

impl<'t> Parser<'t> {
    fn parse(tokens: Vec<Token<'t>>, open: usize) -> Result<Expr, TemplateError> {
        if tokens.is_empty() {
            return Err(syntax("empty action", open, ACTION_FORMS));
        }
        let mut parser = Parser { tokens, pos: 0 };
        let expr = parser.pipeline()?;
        match parser.peek() {
            None => Ok(expr),
            Some(token) => Err(unexpected(
                token,
                "an action holds one pipeline, like .FQDN | ToUpper",
            )),
        }
    }

    fn peek(&self) -> Option<&Token<'t>> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<&Token<'t>> {
        let token = self.tokens.get(self.pos);
        self.pos += 1;
        token
    }

    fn pipeline(&mut self) -> Result<Expr, TemplateError> {
        let mut expr = self.command(None)?;
        while matches!(
            self.peek(),
            Some(Token {
                kind: Tok::Pipe,
                ..
            })
        ) {
            self.pos += 1;
            expr = self.command(Some(expr))?;
        }
        Ok(expr)
    }

    /// One stage: a function with its arguments (the piped value last), or an operand.
    fn command(&mut self, piped: Option<Expr>) -> Result<Expr, TemplateError> {
        let Some(first) = self.peek() else {
            // Only after `|` or `(`: an empty action is refused before parsing.
            let last = self.tokens.last().expect("the action has tokens");
            let problem = format!("nothing after {}", last.kind.describe());
            return Err(syntax(problem, last.offset, ACTION_FORMS));
        };
        let offset = first.offset;
        let called = match first.kind {
            Tok::Ident(name) => function(name, offset)?.map(|f| (f, name)),
            _ => None,
        };
        if let Some((function, name)) = called {
            self.pos += 1;
            let mut args = Vec::new();
            while self.at_operand() {
                args.push(self.operand()?);
            }
            args.extend(piped);
            return apply(function, name, args, offset);
        }
        let operand = self.operand()?;
        if piped.is_some() {
            let hint = "pipe into ToUpper, ToLower, Title, upper, lower or title";
            return Err(syntax("only a function can follow |", offset, hint));
        }
        match self.peek() {
            Some(token) if self.at_operand() => Err(unexpected(
                token,
                "only a function takes arguments, like ToUpper .FQDN",
            )),
            _ => Ok(operand),
        }
    }

    fn at_operand(&self) -> bool {
        matches!(
            self.peek(),
            Some(Token {
                kind: Tok::Field(_) | Tok::Ident(_) | Tok::Str(_) | Tok::Open,
                ..
            })
        )
    }

    /// A field, a native path, a quoted string or a parenthesised pipeline; the caller
    /// has seen that there is a token.
    fn operand(&mut self) -> Result<Expr, TemplateError> {
        let token = self.next().expect("the caller saw a token");
        let offset = token.offset;
        match &token.kind {
            Tok::Field(name) => go_field(name, offset),
            Tok::Ident(name) => {
                if function(name, offset)?.is_some() {
                    let hint = format!("put it in parentheses to pass its result: ({name} ...)");
                    return Err(syntax(format!("{name} is a function"), offset, hint));
                }
                native_path(name, offset)
            }
            Tok::Str(s) => Ok(Expr::Literal(s.clone())),
            Tok::Open => {
                let inner = self.pipeline()?;
                let hint = format!("close the ( at {offset} with )");
                match self.next() {
                    Some(Token {
                        kind: Tok::Close, ..
                    }) => Ok(inner),
                    Some(token) => Err(unexpected(token, hint)),
                    None => Err(syntax("unclosed (", offset, hint)),
                }
            }
            Tok::Pipe | Tok::Close => Err(unexpected(token, ACTION_FORMS)),
        }
    }
}

fn unexpected(token: &Token<'_>, hint: impl Into<String>) -> TemplateError {
    let problem = format!("unexpected {}", token.kind.describe());
    syntax(problem, token.offset, hint)
}

/// The function `name` names; `None` when it is a native path (it has a dot).
fn function(name: &str, offset: usize) -> Result<Option<Function>, TemplateError> {
    if name.contains('.') {
        return Ok(None);
    }
    Ok(Some(match name {
        "ToUpper" | "upper" => Function::Case(Case::Upper),
        "ToLower" | "lower" => Function::Case(Case::Lower),
        "Title" | "title" => Function::Case(Case::Title),
        "StringVar" => Function::Var { integer: false },
        "IntVar" => Function::Var { integer: true },
        "target" | "steps" | "saved" => return Err(unknown_field(name, offset)),
        _ if CONTROL_WORDS.contains(&name) => {
            let problem = format!("{name} is not supported");
            let hint = "step parameters have no control structures";
            return Err(syntax(problem, offset, hint));
        }
        _ => {
            let name = name.to_owned();
            return Err(TemplateError::UnknownFunction { name, offset });
        }
    }))
}

fn apply(
    function: Function,
    name: &str,
    mut args: Vec<Expr>,
    offset: usize,
) -> Result<Expr, TemplateError> {
    let example = match function {
        Function::Case(_) => format!("{name} .FQDN or .FQDN | {name}"),
        Function::Var { .. } => format!("{name} \"probe.token\""),
    };
    let hint = || format!("write it like {example}");
    let (Some(arg), true) = (args.pop(), args.is_empty()) else {
        let problem = format!("{name} takes one argument");
        return Err(syntax(problem, offset, hint()));
    };
    match (function, arg) {
        (Function::Case(case), arg) => Ok(Expr::Case(case, Box::new(arg))),
        (Function::Var { integer }, Expr::Literal(text)) => match split_var(&text) {
            Some((label, var)) => Ok(Expr::Var {
                label: label.to_owned(),
                name: var.to_owned(),
                integer,
            }),
            None => {
                let problem = format!("{name} needs a quoted \"label.name\", not {text:?}");
                Err(syntax(problem, offset, hint()))
            }
        },
        (Function::Var { .. }, _) => {
            let problem = format!("{name} needs a quoted \"label.name\"");
            Err(syntax(problem, offset, hint()))
        }
    }
}

/// `label.name`, each part made of letters, digits, `_` and `-`.
fn split_var(text: &str) -> Option<(&str, &str)> {
    let (label, name) = text.split_once('.')?;
    let valid = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    (valid(label) && valid(name)).then_some((label, name))
}

fn go_field(name: &str, offset: usize) -> Result<Expr, TemplateError> {
    Ok(Expr::Field(match name {
        ".ID" => Field::Id,
        ".FQDN" => Field::Host,
        ".PrimaryIPv4" => Field::Ipv4,
        ".PrimaryIPv6" => Field::Ipv6,
        _ => return Err(unknown_field(name, offset)),
    }))
}

fn native_path(name: &str, offset: usize) -> Result<Expr, TemplateError> {
    if let Some(field) = name.strip_prefix("target.") {
        return Ok(Expr::Field(match field {
            "id" => Field::Id,
            "host" => Field::Host,
            "ipv4" => Field::Ipv4,
            "ipv6" => Field::Ipv6,
            "url" => Field::Url,
            _ => return Err(unknown_field(name, offset)),
        }));
    }
    if let Some(saved) = name.strip_prefix("saved.") {
        if saved.is_empty() || saved.contains('.') {
            let problem = format!("{name} is not a saved value");
            return Err(syntax(
                problem,
                offset,
                "write saved.NAME, like saved.token",
            ));
        }
        return Ok(Expr::Saved(saved.to_owned()));
    }
    if let Some(var) = name.strip_prefix("steps.") {
        return match split_var(var) {
            Some((label, var)) => Ok(Expr::Var {
                label: label.to_owned(),
                name: var.to_owned(),
                integer: false,
            }),
            None => {
                let problem = format!("{name} is not a step variable");
                let hint = "write steps.LABEL.NAME, like steps.probe.token";
                Err(syntax(problem, offset, hint))
            }
        };
    }
    Err(unknown_field(name, offset))
}

fn syntax(problem: impl Into<String>, offset: usize, hint: impl Into<String>) -> TemplateError {
    TemplateError::Syntax {
        problem: problem.into(),
        offset,
        hint: hint.into(),
    }
}

fn unknown_field(name: &str, offset: usize) -> TemplateError {
    TemplateError::UnknownField {
        name: name.to_owned(),
        offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target() -> Target {
        Target {
            id: "t1".to_owned(),
            host: "example.org".to_owned(),
            ipv4: "10.0.0.1".to_owned(),
            ipv6: "::1".to_owned(),
            url: "http://example.org:8080".to_owned(),
            ..Target::default()
        }
    }

    fn vars() -> BTreeMap<String, BTreeMap<String, Value>> {
        let probe = [
            ("token", json!("abc")),
            ("port", json!(8080)),
            ("ratio", json!(1.5)),
            ("list", json!([1, "x"])),
            ("count", json!("3")),
        ];
        BTreeMap::from([(
            "probe".to_owned(),
            probe.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        )])
    }

    fn render(text: &str) -> Result<String, TemplateError> {
        let (target, vars) = (target(), vars());
        Template::parse(text)?.render(&Context {
            target: &target,
            vars: &vars,
            saved: None,
        })
    }

    fn check(text: &str, want: &str) {
        match render(text) {
            Ok(got) => assert_eq!(got, want, "{text:?}"),
            Err(e) => panic!("{text:?}: {e}"),
        }
    }

    fn error(text: &str) -> String {
        match render(text) {
            Ok(got) => panic!("{text:?} rendered as {got:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn contest_samples() {
        check(
            "Title={{ Title .FQDN }}, ToUpper={{ ToUpper .FQDN }}",
            // Go's strings.Title starts a word after the dot too.
            "Title=Example.Org, ToUpper=EXAMPLE.ORG",
        );
        check(
            "Test 1, Step 1, target {{ .ID }}",
            "Test 1, Step 1, target t1",
        );
        check("{{.ID}}/{{StringVar \"probe.token\"}}", "t1/abc");
        check("{{ToUpper .FQDN}}", "EXAMPLE.ORG");
    }

    #[test]
    fn fields() {
        check(
            "{{ .ID }} {{ .FQDN }} {{ .PrimaryIPv4 }} {{ .PrimaryIPv6 }}",
            "t1 example.org 10.0.0.1 ::1",
        );
        check(
            "{{ target.id }} {{ target.host }} {{ target.ipv4 }} {{ target.ipv6 }} {{ target.url }}",
            "t1 example.org 10.0.0.1 ::1 http://example.org:8080",
        );
        let empty = Target {
            id: "bare".to_owned(),
            ..Target::default()
        };
        let vars = BTreeMap::new();
        let ctx = Context {
            target: &empty,
            vars: &vars,
            saved: None,
        };
        let got = Template::parse("[{{ .PrimaryIPv4 }}]")
            .unwrap()
            .render(&ctx);
        assert_eq!(got.unwrap(), "[]");
    }

    #[test]
    fn functions_filters_and_pipelines() {
        check("{{ .FQDN | ToUpper }}", "EXAMPLE.ORG");
        check("{{ target.host | upper }}", "EXAMPLE.ORG");
        check("{{ target.host | title }}", "Example.Org");
        check("{{ ToLower \"MiXeD\" }}", "mixed");
        check("{{ \"MiXeD\" | lower | title }}", "Mixed");
        check("{{ Title \"her royal_highness\" }}", "Her Royal_highness");
        check("{{ ToUpper (Title .FQDN) }}", "EXAMPLE.ORG");
        check("{{ ToUpper (StringVar \"probe.token\") }}", "ABC");
        check("{{ steps.probe.token | upper }}", "ABC");
        check("{{ `raw \\n` }}", "raw \\n");
        check("{{ \"a\\\"b\\tc\" }}", "a\"b\tc");
        check("{{ \"}}\" }}", "}}");
        // Go's simple case mapping: one character to one character.
        check("{{ ToUpper \"straße\" }}", "STRAßE");
        check("{{ Title \"élan vital\" }}", "Élan Vital");
    }

    #[test]
    fn step_variables() {
        check("{{ steps.probe.token }}", "abc");
        check("{{ steps.probe.port }}", "8080");
        check("{{ steps.probe.list }}", "[1,\"x\"]");
        check("{{ StringVar \"probe.token\" }}", "abc");
        check("{{ StringVar \"probe.port\" }}", "8080");
        check("{{ IntVar \"probe.port\" }}", "8080");
        assert_eq!(
            error("{{ steps.probe.missing }}"),
            "step variable \"probe.missing\" is not set for target \"t1\""
        );
        assert_eq!(
            error("{{ IntVar \"other.x\" }}"),
            "step variable \"other.x\" is not set for target \"t1\""
        );
        for (var, value) in [("ratio", "1.5"), ("count", "\"3\""), ("token", "\"abc\"")] {
            let err = error(&format!("{{{{ IntVar \"probe.{var}\" }}}}"));
            assert_eq!(
                err,
                format!(
                    "step variable \"probe.{var}\" of target \"t1\" is {value}, not the integer \
                     IntVar needs"
                )
            );
        }
    }

    #[test]
    fn trim_markers() {
        check("a  {{- .ID }}  b", "at1  b");
        check("a  {{ .ID -}}  \n b", "a  t1b");
        check("a \t{{- .ID -}}\n b", "at1b");
        check("{{- .ID -}}", "t1");
    }

    #[test]
    fn literal_text() {
        let template = Template::parse("no actions } here }}").unwrap();
        assert!(template.is_literal());
        check("no actions } here }}", "no actions } here }}");
        assert!(!Template::parse("{{ .ID }}").unwrap().is_literal());
    }

    #[test]
    fn unknown_names() {
        assert_eq!(
            error("{{ .Foo }}"),
            format!("unknown field .Foo at 3; known: {KNOWN_FIELDS}")
        );
        assert!(error("{{ .Foo }}").starts_with(
            "unknown field .Foo at 3; known: .ID, .FQDN, .PrimaryIPv4, .PrimaryIPv6, target.id, "
        ));
        assert!(error("x {{ target.name }}").starts_with("unknown field target.name at 5;"));
        assert!(error("{{ target }}").starts_with("unknown field target at 3;"));
        assert!(error("{{ .fqdn }}").starts_with("unknown field .fqdn at 3;"));
        assert_eq!(
            error("{{ printf \"%s\" .ID }}"),
            format!("unknown function printf at 3; known: {KNOWN_FUNCTIONS}")
        );
        assert!(error("{{ .ID | shout }}").starts_with("unknown function shout at 9;"));
    }

    #[test]
    fn syntax_errors() {
        let cases = [
            (
                "abc {{ .ID",
                "unclosed action: the {{ at 4 has no matching }}",
            ),
            ("{{ .ID }} {{", "unclosed action: the {{ at 10"),
            ("{{ }}", "empty action at 0; an action holds a field"),
            (
                "{{ ToUpper }}",
                "ToUpper takes one argument at 3; write it like ToUpper .FQDN",
            ),
            ("{{ ToUpper .ID .FQDN }}", "ToUpper takes one argument at 3"),
            (
                "{{ .ID .FQDN }}",
                "unexpected .FQDN at 7; only a function takes arguments",
            ),
            (
                "{{ .ID | .FQDN }}",
                "only a function can follow | at 9; pipe into ToUpper",
            ),
            ("{{ .ID | }}", "nothing after | at 7; an action holds"),
            ("{{ ToUpper ( }}", "nothing after ( at 11"),
            (
                "{{ StringVar .ID }}",
                "StringVar needs a quoted \"label.name\" at 3",
            ),
            (
                "{{ IntVar \"nodot\" }}",
                "not \"nodot\" at 3; write it like IntVar \"probe.token\"",
            ),
            (
                "{{ steps.probe }}",
                "steps.probe is not a step variable at 3; write steps.LABEL",
            ),
            (
                "{{ ToUpper ToLower .ID }}",
                "ToLower is a function at 11; put it in parentheses",
            ),
            ("{{ (.ID }}", "unclosed ( at 3; close the ( at 3 with )"),
            ("{{ (.ID | upper .FQDN) }}", "upper takes one argument"),
            (
                "{{ .ID) }}",
                "unexpected ) at 6; an action holds one pipeline",
            ),
            (
                "{{ \"abc }}",
                "unterminated string at 3; end it with \" before the }}",
            ),
            ("{{ `abc }}", "unterminated string at 3; end it with `"),
            ("{{ \"\\x41\" }}", "unsupported escape \\x at 4; use"),
            ("{{ 3 }}", "unexpected '3' at 3"),
            ("{{ .ID-}}", "unexpected '-' at 6"),
            ("{{ if .ID }}x{{ end }}", "if is not supported at 3"),
        ];
        for (text, want) in cases {
            let err = error(text);
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn saved_values_render_in_scale_phases_only() {
        let (target, vars) = (target(), vars());
        let saved = BTreeMap::from([("token".to_owned(), "t-1".to_owned())]);
        let template = Template::parse("{{ saved.token | upper }}/{{ saved.id }}").unwrap();
        assert_eq!(template.saved_names(), ["token", "id"]);
        let mut ctx = Context {
            target: &target,
            vars: &vars,
            saved: Some(&saved),
        };
        let err = template.render(&ctx).unwrap_err().to_string();
        assert_eq!(
            err,
            "saved value \"id\" is not set: no earlier phase saved it for this runner"
        );
        let only = Template::parse("{{ saved.token | upper }}").unwrap();
        assert_eq!(only.render(&ctx).unwrap(), "T-1");
        ctx.saved = None;
        let err = only.render(&ctx).unwrap_err().to_string();
        assert!(err.contains("only in a scale step's phases"), "{err}");
        let err = Template::parse("{{ saved.a.b }}").unwrap_err().to_string();
        assert!(err.contains("write saved.NAME"), "{err}");
    }

    #[test]
    fn json_trees() {
        let mut value = json!({
            "url": "{{ target.url }}/{{ steps.probe.token }}",
            "args": ["plain", "{{ .ID }}", 3, {"{{ key }}": "{{ .FQDN | ToUpper }}"}],
        });
        let (target, vars) = (target(), vars());
        let ctx = Context {
            target: &target,
            vars: &vars,
            saved: None,
        };
        render_strings(&mut value, &ctx).unwrap();
        assert_eq!(
            value,
            json!({
                "url": "http://example.org:8080/abc",
                "args": ["plain", "t1", 3, {"{{ key }}": "EXAMPLE.ORG"}],
            })
        );
        let mut bad = json!(["{{ steps.nope.x }}"]);
        assert!(render_strings(&mut bad, &ctx).is_err());
    }

    #[test]
    fn checking_json_trees() {
        let value = json!({
            "executable": "echo",
            "args": ["ok {{ .ID }}", "{{ .Foo }}", {"deep": ["x", "{{ nope }}"]}],
            "env": {"A": "{{ .ID"},
        });
        let problems = check_strings(&value, "tests[0].steps[1].exec");
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(
            problems[0].starts_with("tests[0].steps[1].exec.args[1]: unknown field .Foo at 3;")
        );
        assert!(
            problems[1]
                .starts_with("tests[0].steps[1].exec.args[2].deep[1]: unknown function nope at 3;")
        );
        assert_eq!(
            problems[2],
            "tests[0].steps[1].exec.env.A: unclosed action: the {{ at 0 has no matching }}"
        );
        assert_eq!(check_strings(&json!("{{ .X }}"), "").len(), 1);
        assert!(check_strings(&json!({"a": ["{{ .ID }}", 1, null]}), "p").is_empty());
    }
}
