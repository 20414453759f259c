//! The worker's one way to log: each line one JSON object, built by
//! `events::log_line` (addresses masked, text cut), written to the console
//! stream of its level.
//!
//! Must not: format a line itself, or be handed a body, a subject, a key or
//! a token.

use std::fmt::Display;

use crate::events::log_line::{Level, LogValue, line};

fn write(level: Level, event: &str, fields: &[(&str, LogValue<'_>)]) {
    let text = line(level, event, fields);
    match level {
        // `console.info`, not `console.log`: local dev at `--log-level
        // info` shows it, and Workers Logs keep the level.
        Level::Info => worker::web_sys::console::info_1(&text.into()),
        Level::Warn => worker::console_warn!("{text}"),
        Level::Error => worker::console_error!("{text}"),
    }
}

pub fn info(event: &str, fields: &[(&str, LogValue<'_>)]) {
    write(Level::Info, event, fields);
}

pub fn warn(event: &str, fields: &[(&str, LogValue<'_>)]) {
    write(Level::Warn, event, fields);
}

pub fn error(event: &str, fields: &[(&str, LogValue<'_>)]) {
    write(Level::Error, event, fields);
}

/// A warning whose only detail is the error `e`.
pub fn warn_because(event: &str, e: &dyn Display) {
    warn(event, &[("error", LogValue::Text(&e.to_string()))]);
}

/// An error whose only detail is the error `e`.
pub fn error_because(event: &str, e: &dyn Display) {
    error(event, &[("error", LogValue::Text(&e.to_string()))]);
}

/// A line a core module built with `events::log_line::line` (its own
/// fields, already masked), written as an info line.
pub fn built(text: &str) {
    worker::web_sys::console::info_1(&text.into());
}
