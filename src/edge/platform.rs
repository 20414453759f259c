//! The platform, named once: binding names as in wrangler.toml, the clock,
//! and the settings parsed once per isolate.
//!
//! Must not: decide anything. Other edge files take binding names and the
//! settings from here instead of naming or parsing them again.

use std::cell::RefCell;
use std::rc::Rc;

use worker::Env;

use super::log;
use crate::accept::{ApiError, ApiKeys};
use crate::config::ConfigError;
use crate::events::log_line::LogValue;
use crate::settings::Settings;

/// Binding names, as in wrangler.toml.
pub(crate) const JOBS_QUEUE: &str = "JOBS";
pub(crate) const DEAD_LETTER_QUEUE: &str = "DEAD_LETTERS";
pub(crate) const DATABASE: &str = "DB";
pub(crate) const BODIES_BUCKET: &str = "BODIES";
pub(crate) const WEBHOOKS_QUEUE: &str = "WEBHOOKS";
/// The `Meter` Durable Object class: per-key limits (see `edge::meter`).
pub(crate) const METER: &str = "METER";
/// The `Shaper` Durable Object class: limits per upstream (see `edge::shaper`).
pub(crate) const SHAPER: &str = "SHAPER";
/// Optional: every event's payload also goes to this queue, for Workers that consume them.
pub(crate) const EVENTS_QUEUE: &str = "EVENTS";

/// Parsed settings, kept for the isolate's life: env does not change under a
/// running isolate, and parsing keys on every request would waste CPU.
pub(crate) struct Loaded {
    pub settings: Settings,
    pub keys: ApiKeys,
    /// Test and benchmark switches, only in a `diagnostics` build.
    #[cfg(feature = "diagnostics")]
    pub diagnostics: crate::diagnostics::Diagnostics,
}

thread_local! {
    static LOADED: RefCell<Option<Rc<Loaded>>> = const { RefCell::new(None) };
}

pub(crate) fn load(env: &Env) -> std::result::Result<Rc<Loaded>, ConfigError> {
    if let Some(l) = LOADED.with(|c| c.borrow().clone()) {
        return Ok(l);
    }
    let source = |name: &str| -> Option<String> {
        env.secret(name)
            .map(|s| s.to_string())
            .ok()
            .or_else(|| env.var(name).map(|v| v.to_string()).ok())
    };
    let settings = Settings::from_source(&source)?;
    let keys = ApiKeys::new(&settings.accept.api_keys);
    let loaded = Rc::new(Loaded {
        settings,
        keys,
        #[cfg(feature = "diagnostics")]
        diagnostics: crate::diagnostics::Diagnostics::from_source(&source)?,
    });
    LOADED.with(|c| *c.borrow_mut() = Some(loaded.clone()));
    Ok(loaded)
}

/// [`load`] for the HTTP routes: a broken setting is logged with its name and
/// problem, and the caller gets a 500 that names nothing.
pub(crate) fn load_for_request(env: &Env) -> std::result::Result<Rc<Loaded>, ApiError> {
    load(env).map_err(|e| {
        log::error(
            "settings_unreadable",
            &[("error", LogValue::Text(&e.to_string()))],
        );
        ApiError::settings_unreadable()
    })
}

pub(crate) fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}
