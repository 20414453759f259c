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
