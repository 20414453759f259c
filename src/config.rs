//! One setting at a time: where values come from and the error that names
//! the setting at fault.
//!
//! Owns: the [`ConfigSource`] seam (the worker's env in production, a map in
//! tests), [`ConfigError`], and the small value parsers every module's own
//! settings use. Must not: know any setting's name or meaning (each module
//! owns its settings; `settings` gathers them), or put a setting's value into
//! an error: values can be secrets.

use std::fmt;

/// Where settings come from: the worker's env in production, a map in tests.
pub trait ConfigSource {
    /// The value of a var or secret, if set.
    fn get(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> ConfigSource for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// A setting that is missing or malformed. Always names the setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The var or secret at fault.
    pub setting: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "configuration setting {}: {}",
            self.setting, self.problem
        )
    }
}

impl std::error::Error for ConfigError {}

pub fn err(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        problem: problem.into(),
    }
}

/// The non-empty items of a comma-separated list.
pub fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty())
}

/// A comma-separated list of secrets, each at least `min_bytes` long; the
/// error says `when_empty` for an empty list and names a short entry by its
/// position only, never its text.
pub fn secret_list<'a>(
    raw: &'a str,
    min_bytes: usize,
    when_empty: &str,
) -> Result<Vec<&'a str>, String> {
    let secrets: Vec<&str> = split_list(raw).collect();
    if secrets.is_empty() {
        return Err(when_empty.to_string());
    }
    if let Some(i) = secrets.iter().position(|s| s.len() < min_bytes) {
        return Err(format!(
            "secret {} of {} is shorter than {min_bytes} characters",
            i + 1,
            secrets.len()
        ));
    }
    Ok(secrets)
}

/// A whole number, or `default` when unset or empty.
pub fn number(
    src: &impl ConfigSource,
    name: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    match src.get(name) {
        None => Ok(default),
        Some(v) if v.trim().is_empty() => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map_err(|_| err(name, "is not a whole number")),
    }
}

/// What is wrong with a JSON setting, without quoting it: serde's messages
/// for a wrong type or value quote the offending text, which may be a secret.
/// Missing and unknown fields are named (field names belong to the format,
/// not to the value); anything else is located by line and column. `shape`
/// says what the setting should be, e.g. "a JSON list of {id, domains}".
pub fn json_problem(e: &serde_json::Error, shape: &str) -> String {
    use serde_json::error::Category;
    let at = format!("line {}, column {}", e.line(), e.column());
    match e.classify() {
        Category::Data => {
            let text = e.to_string();
            let kind = ["missing field", "unknown field"]
                .into_iter()
                .find(|k| text.starts_with(k));
            match kind {
                // "unknown field `x`, expected one of ...": `x` is a key name.
                Some(kind) => {
                    let field = text.split('`').nth(1).unwrap_or("");
                    format!("is not {shape}: {kind} `{field}` ({at})")
                }
                None => format!("is not {shape}: a value has the wrong type or form ({at})"),
            }
        }
        Category::Syntax => format!("is not valid JSON ({at})"),
        Category::Eof => "is not valid JSON (it ends too early)".to_string(),
        Category::Io => "could not be read".to_string(),
    }
}

/// A source over fixed pairs, for tests: a later pair for the same name wins.
#[cfg(test)]
pub fn pairs_source<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl ConfigSource + 'a {
    move |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_problems_never_quote_the_value() {
        let secret = "s3cr3t-value-0123456789";
        let cases = [
            (format!(r#""{secret}""#), "wrong type"),
            (format!(r#"[{{"id": {secret}}}]"#), "valid JSON"),
            (format!(r#"[{{"{secret}": 1}}]"#), "unknown field"),
            (format!(r#"[{{"id": "{secret}""#), "ends too early"),
            (format!(r#"[{{"id": ["{secret}"]}}]"#), "wrong type"),
            (r#"[{}]"#.to_string(), "missing field `id`"),
        ];
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Entry {
            id: String,
        }
        for (text, expected) in cases {
            let e = serde_json::from_str::<Vec<Entry>>(&text).unwrap_err();
            let problem = json_problem(&e, "a JSON list of {id}");
            assert!(problem.contains(expected), "{text}: {problem}");
            if expected != "unknown field" {
                assert!(!problem.contains(secret), "{text}: {problem}");
            }
        }
        let good: Vec<Entry> = serde_json::from_str(r#"[{"id": "a"}]"#).unwrap();
        assert_eq!(good[0].id, "a");
    }
}
