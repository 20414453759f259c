//! The part of Handlebars that mail templates use, rendered strictly: a
//! template that names a value the data lacks is an error naming it, never
//! an empty gap in a message already on its way.
//!
//! Speaks: `{{path}}` (HTML-escaped when asked) and `{{{path}}}` (as given);
//! paths `name`, `a.b.c`, `this`, `this.name`, `../name`, `@index`,
//! `@first`, `@last`, `@key`; the blocks `{{#if}}`, `{{#unless}}`,
//! `{{#each}}` and `{{#with}}`, each with `{{else}}`; comments `{{! }}` and
//! `{{!-- --}}`; whitespace control `{{~` and `~}}`. Truthiness is
//! Handlebars': `false`, `null`, `""`, `0` and `[]` are false. Custom
//! helpers and partials do not exist: naming one is a syntax error.
//!
//! Owns parsing and rendering. Must not: know what the values are for, or
//! grow without bound (nesting and output are capped).

use serde_json::Value;

/// Blocks nest at most this deep.
pub const MAX_DEPTH: usize = 32;
/// A rendering may produce at most this many bytes.
pub const MAX_OUTPUT: usize = 4 * 1024 * 1024;

/// Why a template cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The template is not well-formed; the text says where and why.
    Syntax(String),
    /// The template uses a value the data does not have (the path, as written).
    Missing(String),
    /// The output would pass [`MAX_OUTPUT`].
    TooLarge,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Value {
        path: Path,
        escape: bool,
    },
    Block {
        kind: BlockKind,
        path: Path,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    If,
    Unless,
    Each,
    With,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Path {
    written: String,
    /// How many `../` lead it.
    up: usize,
    /// `@index` and friends.
    data: Option<String>,
    /// The names after `this` (or the whole path when it has no `this`).
    names: Vec<String>,
}

/// A block being parsed: its kind and path, the nodes before it, and its
/// body once its `{{else}}` is seen.
type Open = (BlockKind, Path, Vec<Node>, Option<Vec<Node>>);

/// One `{{ }}` tag or the text between tags.
enum Token<'a> {
    Text(&'a str),
    Tag { inner: &'a str, raw: bool },
}

impl Template {
    /// Parses `source`.
    pub fn parse(source: &str) -> Result<Template, Error> {
        let tokens = tokenize(source)?;
        let mut stack: Vec<Open> = Vec::new();
        let mut current: Vec<Node> = Vec::new();
        for token in tokens {
            match token {
                Token::Text(t) if !t.is_empty() => current.push(Node::Text(t.to_string())),
                Token::Text(_) => {}
                Token::Tag { inner, raw: true } => current.push(Node::Value {
                    path: path(inner)?,
                    escape: false,
                }),
                Token::Tag { inner, raw: false } => {
                    let inner = inner.trim();
                    if let Some(rest) = inner.strip_prefix('#') {
                        if stack.len() >= MAX_DEPTH {
                            return Err(Error::Syntax(format!(
                                "blocks nest deeper than {MAX_DEPTH}"
                            )));
                        }
                        let (name, arg) =
                            rest.trim().split_once(char::is_whitespace).ok_or_else(|| {
                                Error::Syntax(format!(
                                    "{{{{#{}}}}} needs a value to test",
                                    rest.trim()
                                ))
                            })?;
                        let kind = match name {
                            "if" => BlockKind::If,
                            "unless" => BlockKind::Unless,
                            "each" => BlockKind::Each,
                            "with" => BlockKind::With,
                            other => {
                                return Err(Error::Syntax(format!(
                                    "no helper {other:?} (if, unless, each and with exist)"
                                )));
                            }
                        };
                        stack.push((kind, path(arg)?, std::mem::take(&mut current), None));
                    } else if inner == "else" || inner == "^" {
                        let Some(open) = stack.last_mut() else {
                            return Err(Error::Syntax("{{else}} outside a block".into()));
                        };
                        if open.3.is_some() {
                            return Err(Error::Syntax("a second {{else}} in one block".into()));
                        }
                        open.3 = Some(std::mem::take(&mut current));
                    } else if let Some(name) = inner.strip_prefix('/') {
                        let Some((kind, path, outer, body)) = stack.pop() else {
                            return Err(Error::Syntax(format!(
                                "{{{{/{}}}}} closes no block",
                                name.trim()
                            )));
                        };
                        let want = match kind {
                            BlockKind::If => "if",
                            BlockKind::Unless => "unless",
                            BlockKind::Each => "each",
                            BlockKind::With => "with",
                        };
                        if name.trim() != want {
                            return Err(Error::Syntax(format!(
                                "{{{{/{}}}}} closes the block {{{{#{want}}}}}",
                                name.trim()
                            )));
                        }
                        let (body, otherwise) = match body {
                            Some(body) => (body, std::mem::take(&mut current)),
                            None => (std::mem::take(&mut current), Vec::new()),
                        };
                        current = outer;
                        current.push(Node::Block {
                            kind,
                            path,
                            body,
                            otherwise,
                        });
                    } else if inner.starts_with('>') {
                        return Err(Error::Syntax(
                            "partials ({{> name}}) do not exist here".into(),
                        ));
                    } else {
                        current.push(Node::Value {
                            path: path(inner)?,
                            escape: true,
                        });
                    }
                }
            }
        }
        if let Some((kind, ..)) = stack.last() {
            return Err(Error::Syntax(
                format!("the block {kind:?} is never closed").to_lowercase(),
            ));
        }
        Ok(Template { nodes: current })
    }

    /// Renders with `data`; `escape` HTML-escapes `{{ }}` values.
    pub fn render(&self, data: &Value, escape: bool) -> Result<String, Error> {
        let mut out = String::new();
        let root = Frame {
            value: data,
            data: None,
        };
        render(&self.nodes, &[root], escape, &mut out)?;
        Ok(out)
    }

    /// The names of the root data the template uses, each with its most
    /// demanding use: what a template's variables must be, found from the
    /// template itself (an imported template declares them this way).
    pub fn roots(&self) -> std::collections::BTreeMap<String, RootUse> {
        let mut out = std::collections::BTreeMap::new();
        roots(&self.nodes, 0, &mut out);
        out
    }
}

fn note(
    out: &mut std::collections::BTreeMap<String, RootUse>,
    path: &Path,
    depth: usize,
    used: RootUse,
) {
    // A path of another scope, or `@index` and friends, names no root.
    if path.data.is_some() || path.up != depth {
        return;
    }
    let Some(first) = path.names.first() else {
        return;
    };
    let used = if path.names.len() > 1 {
        used.max(RootUse::Entered)
    } else {
        used
    };
    let slot = out.entry(first.clone()).or_insert(used);
    *slot = (*slot).max(used);
}

/// How a template uses a name of its root data, least demanding first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RootUse {
    /// Only tested by `{{#if}}` / `{{#unless}}`.
    Tested,
    /// Shown as text (`{{name}}`).
    Shown,
    /// Entered: `{{#with name}}` or a path through it (`{{name.first}}`).
    Entered,
    /// Iterated by `{{#each name}}`.
    Listed,
}

/// Records the root names `nodes` use; `depth` is how many scopes
/// (`each`, `with`) the nodes are inside.
fn roots(nodes: &[Node], depth: usize, out: &mut std::collections::BTreeMap<String, RootUse>) {
    for node in nodes {
        match node {
            Node::Text(_) => {}
            Node::Value { path, .. } => note(out, path, depth, RootUse::Shown),
            Node::Block {
                kind,
                path,
                body,
                otherwise,
            } => {
                let (used, inner) = match kind {
                    BlockKind::If | BlockKind::Unless => (RootUse::Tested, depth),
                    BlockKind::With => (RootUse::Entered, depth + 1),
                    BlockKind::Each => (RootUse::Listed, depth + 1),
                };
                note(out, path, depth, used);
                roots(body, inner, out);
                roots(otherwise, depth, out);
            }
        }
    }
}

/// One scope: its value, and the `@` data of an `{{#each}}` step.
#[derive(Clone, Copy)]
struct Frame<'a> {
    value: &'a Value,
    data: Option<Step<'a>>,
}

#[derive(Clone, Copy)]
struct Step<'a> {
    index: usize,
    last: bool,
    key: Option<&'a str>,
}

fn render(
    nodes: &[Node],
    scopes: &[Frame<'_>],
    escape: bool,
    out: &mut String,
) -> Result<(), Error> {
    for node in nodes {
        match node {
            Node::Text(t) => push(out, t)?,
            Node::Value { path, escape: e } => {
                let text = display(lookup(path, scopes)?.as_ref());
                if escape && *e {
                    push(out, &html_escape(&text))?;
                } else {
                    push(out, &text)?;
                }
            }
            Node::Block {
                kind,
                path,
                body,
                otherwise,
            } => {
                let value = lookup(path, scopes)?;
                let value = value.as_ref();
                match kind {
                    BlockKind::If | BlockKind::Unless => {
                        let go = truthy(value) == (*kind == BlockKind::If);
                        render(if go { body } else { otherwise }, scopes, escape, out)?;
                    }
                    BlockKind::With => {
                        if truthy(value) {
                            let mut inner = scopes.to_vec();
                            inner.push(Frame { value, data: None });
                            render(body, &inner, escape, out)?;
                        } else {
                            render(otherwise, scopes, escape, out)?;
                        }
                    }
                    BlockKind::Each => {
                        let items: Vec<(Option<&str>, &Value)> = match value {
                            Value::Array(a) => a.iter().map(|v| (None, v)).collect(),
                            Value::Object(m) => {
                                m.iter().map(|(k, v)| (Some(k.as_str()), v)).collect()
                            }
                            _ => Vec::new(),
                        };
                        if items.is_empty() {
                            render(otherwise, scopes, escape, out)?;
                        }
                        let count = items.len();
                        for (index, (key, item)) in items.into_iter().enumerate() {
                            let mut inner = scopes.to_vec();
                            inner.push(Frame {
                                value: item,
                                data: Some(Step {
                                    index,
                                    last: index + 1 == count,
                                    key,
                                }),
                            });
                            render(body, &inner, escape, out)?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn push(out: &mut String, text: &str) -> Result<(), Error> {
    if out.len() + text.len() > MAX_OUTPUT {
        return Err(Error::TooLarge);
    }
    out.push_str(text);
    Ok(())
}

/// The value `path` names; a name the data lacks is [`Error::Missing`].
fn lookup<'a>(path: &Path, scopes: &[Frame<'a>]) -> Result<std::borrow::Cow<'a, Value>, Error> {
    let missing = || Error::Missing(path.written.clone());
    let at = scopes.len().checked_sub(1 + path.up).ok_or_else(missing)?;
    let frame = scopes.get(at).ok_or_else(missing)?;
    if let Some(name) = &path.data {
        let step = frame.data.ok_or_else(missing)?;
        return Ok(std::borrow::Cow::Owned(match name.as_str() {
            "index" => Value::from(step.index),
            "first" => Value::Bool(step.index == 0),
            "last" => Value::Bool(step.last),
            "key" => Value::String(step.key.ok_or_else(missing)?.to_string()),
            _ => return Err(missing()),
        }));
    }
    let mut value = frame.value;
    for name in &path.names {
        value = match value {
            Value::Object(m) => m.get(name),
            Value::Array(a) => name.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
        .ok_or_else(missing)?;
    }
    Ok(std::borrow::Cow::Borrowed(value))
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(_) => true,
    }
}

fn display(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(display).collect::<Vec<_>>().join(","),
        Value::Object(_) => "[object]".into(),
        other => other.to_string(),
    }
}

/// Handlebars' escaping: `& < > " ' ` =`.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            '`' => out.push_str("&#x60;"),
            '=' => out.push_str("&#x3D;"),
            c => out.push(c),
        }
    }
    out
}

fn path(text: &str) -> Result<Path, Error> {
    let written = text.trim().to_string();
    let bad = || {
        Error::Syntax(format!(
            "{written:?} is not a path (name, a.b, this, ../name, @index)"
        ))
    };
    let mut rest = written.as_str();
    if rest.is_empty() || rest.contains(char::is_whitespace) {
        return Err(bad());
    }
    let mut up = 0;
    while let Some(r) = rest.strip_prefix("../") {
        up += 1;
        rest = r;
    }
    if let Some(name) = rest.strip_prefix('@') {
        if !["index", "first", "last", "key"].contains(&name) {
            return Err(bad());
        }
        return Ok(Path {
            data: Some(name.to_string()),
            written,
            up,
            names: Vec::new(),
        });
    }
    let rest = match rest {
        "this" | "." => "",
        r => r
            .strip_prefix("this.")
            .or_else(|| r.strip_prefix("./"))
            .unwrap_or(r),
    };
    let names: Vec<String> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split(['.', '/']).map(str::to_string).collect()
    };
    let plain = |n: &String| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '$')
    };
    if !names.iter().all(plain) {
        return Err(bad());
    }
    Ok(Path {
        written,
        up,
        data: None,
        names,
    })
}

fn tokenize(source: &str) -> Result<Vec<Token<'_>>, Error> {
    let mut tokens = Vec::new();
    let mut rest = source;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let mut text = &rest[..open];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[open + 2..];
        let raw = after.starts_with('{');
        let body = if raw { &after[1..] } else { after };
        let trim_before = body.starts_with('~');
        if trim_before {
            text = text.trim_end();
        }
        tokens.push(Token::Text(text));
        let body = if trim_before { &body[1..] } else { body };
        // Long comments may hold `}}`.
        if let Some(comment) = body.strip_prefix("!--") {
            let end = comment
                .find("--}}")
                .ok_or_else(|| Error::Syntax("a {{!-- comment is never closed".into()))?;
            let tail = &comment[end + 4..];
            trim_next = comment[..end].ends_with('~');
            rest = tail;
            continue;
        }
        let close = if raw { "}}}" } else { "}}" };
        let end = body
            .find(close)
            .ok_or_else(|| Error::Syntax("a {{ is never closed".into()))?;
        let mut inner = &body[..end];
        trim_next = inner.ends_with('~');
        if trim_next {
            inner = &inner[..inner.len() - 1];
        }
        rest = &body[end + close.len()..];
        if inner.trim_start().starts_with('!') {
            continue;
        }
        if inner.contains("{{") {
            return Err(Error::Syntax("a {{ inside a tag".into()));
        }
        tokens.push(Token::Tag { inner, raw });
    }
    tokens.push(Token::Text(if trim_next {
        rest.trim_start()
    } else {
        rest
    }));
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(source: &str, data: Value) -> Result<String, Error> {
        Template::parse(source)?.render(&data, true)
    }

    #[test]
    fn renders_the_handlebars_mail_templates_use() {
        let data = json!({
            "name": "<Ada & \"Bo\">", "n": 0, "items": [{"t": "a"}, {"t": "b"}],
            "order": {"total": 12.5, "lines": []}, "vip": true, "none": null, "map": {"x": 1}
        });
        let cases: &[(&str, &str)] = &[
            ("Hi {{name}}!", "Hi &lt;Ada &amp; &quot;Bo&quot;&gt;!"),
            ("Hi {{{name}}}!", "Hi <Ada & \"Bo\">!"),
            ("{{ order.total }}", "12.5"),
            ("{{#if vip}}VIP{{else}}no{{/if}}", "VIP"),
            ("{{#if n}}yes{{else}}zero{{/if}}", "zero"),
            ("{{#unless none}}empty{{/unless}}", "empty"),
            (
                "{{#each items}}{{@index}}:{{t}}{{#unless @last}},{{/unless}}{{/each}}",
                "0:a,1:b",
            ),
            ("{{#each items}}{{this.t}}{{../vip}}{{/each}}", "atruebtrue"),
            (
                "{{#each order.lines}}x{{else}}no lines{{/each}}",
                "no lines",
            ),
            ("{{#each map}}{{@key}}={{this}}{{/each}}", "x=1"),
            ("{{#with order}}{{total}}{{/with}}", "12.5"),
            ("a {{! note }}b{{!-- }} --}}c", "a bc"),
            ("a   {{~vip~}}   b", "atrueb"),
            ("{{items.1.t}}", "b"),
            ("{{none}}|", "|"),
        ];
        for (source, want) in cases {
            assert_eq!(run(source, data.clone()).as_deref(), Ok(*want), "{source}");
        }
        let plain = Template::parse("{{name}}")
            .unwrap()
            .render(&data, false)
            .unwrap();
        assert_eq!(plain, "<Ada & \"Bo\">");
    }

    #[test]
    fn strict_and_well_formed_or_an_error() {
        let data = json!({"a": {"b": 1}, "list": [1]});
        let cases: &[(&str, Error)] = &[
            ("{{missing}}", Error::Missing("missing".into())),
            ("{{a.c}}", Error::Missing("a.c".into())),
            ("{{#if nope}}x{{/if}}", Error::Missing("nope".into())),
            (
                "{{#each list}}{{../../x}}{{/each}}",
                Error::Missing("../../x".into()),
            ),
            ("{{@index}}", Error::Missing("@index".into())),
        ];
        for (source, want) in cases {
            assert_eq!(run(source, data.clone()).as_ref(), Err(want), "{source}");
        }
        for source in [
            "{{#if a}}x",
            "{{#if a}}x{{/each}}",
            "{{/if}}",
            "{{else}}",
            "{{#if a}}{{else}}{{else}}{{/if}}",
            "{{#foo a}}{{/foo}}",
            "{{#if}}{{/if}}",
            "{{> partial}}",
            "{{a b}}",
            "{{a",
            "{{{a}}",
            "{{!-- open",
            "{{a..b}}",
            "{{@nope}}",
        ] {
            assert!(
                matches!(Template::parse(source), Err(Error::Syntax(_))),
                "{source}"
            );
        }
        let deep = "{{#if a}}".repeat(MAX_DEPTH + 1);
        assert!(matches!(Template::parse(&deep), Err(Error::Syntax(_))));
    }

    #[test]
    fn output_is_bounded() {
        let list: Vec<Value> = (0..2000).map(|_| json!("x".repeat(4096))).collect();
        assert_eq!(
            run("{{#each l}}{{this}}{{/each}}", json!({ "l": list })),
            Err(Error::TooLarge)
        );
    }
}
