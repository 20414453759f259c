//! Workers glue: entry points, bindings, sockets, D1 and queues.
//!
//! Thin on purpose: every rule about email lives in the core; this module only
//! moves bytes between the platform and the core. Exists only on wasm32.

mod accept;
mod bench;
mod consumer;
mod health_store;
mod http;
mod random;
mod smtp_driver;
mod store;

use std::cell::RefCell;
use std::rc::Rc;

use worker::{Context, Env, MessageBatch, Method, Request, Response, Result, event};

use crate::api::{ApiError, ApiKeys};
use crate::config::{ConfigError, Settings};

/// Binding names, as in wrangler.toml.
pub(crate) const JOBS_QUEUE: &str = "JOBS";
pub(crate) const DEAD_LETTER_QUEUE: &str = "DEAD_LETTERS";
pub(crate) const DATABASE: &str = "DB";

/// Parsed settings, kept for the isolate's life: env does not change under a
/// running isolate, and parsing keys on every request would waste CPU.
pub(crate) struct Loaded {
    pub settings: Settings,
    pub keys: ApiKeys,
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
    let keys = ApiKeys::new(&settings.api_keys);
    let loaded = Rc::new(Loaded { settings, keys });
    LOADED.with(|c| *c.borrow_mut() = Some(loaded.clone()));
    Ok(loaded)
}

pub(crate) fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    match route(req, env).await {
        Ok(resp) => Ok(resp),
        Err(e) => http::error(&e),
    }
}

async fn route(mut req: Request, env: Env) -> std::result::Result<Response, ApiError> {
    let path = req.path();
    let method = req.method();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        // A route that does nothing: the floor the accept path is measured against.
        (Method::Get, ["health"]) => {
            http::json(200, &serde_json::json!({"ok": true})).map_err(internal)
        }
        (Method::Post, ["v1", "messages"]) => {
            let loaded = load(&env).map_err(|e| ApiError::misconfigured(e.to_string()))?;
            let key = loaded
                .keys
                .authenticate(header(&req, "Authorization").as_deref())?;
            let body = req
                .bytes()
                .await
                .map_err(|e| ApiError::malformed(e.to_string()))?;
            accept::accept(&env, &loaded, &key, &body).await
        }
        (Method::Get, ["v1", "messages", id]) => {
            let loaded = load(&env).map_err(|e| ApiError::misconfigured(e.to_string()))?;
            let key = loaded
                .keys
                .authenticate(header(&req, "Authorization").as_deref())?;
            accept::status(&env, &key, id).await
        }
        (Method::Post, ["bench", "smtp"]) => {
            let loaded = load(&env).map_err(|e| ApiError::misconfigured(e.to_string()))?;
            if !bench::enabled(&loaded) {
                return Err(ApiError::not_found(format!("no route for {path}")));
            }
            let key = loaded
                .keys
                .authenticate(header(&req, "Authorization").as_deref())?;
            let query = req
                .url()
                .map_err(internal)?
                .query()
                .unwrap_or("")
                .to_string();
            let body = req
                .bytes()
                .await
                .map_err(|e| ApiError::malformed(e.to_string()))?;
            bench::smtp(&env, &loaded, &key, &query, &body).await
        }
        (_, ["v1", "messages"]) => Err(ApiError::method_not_allowed("POST")),
        (_, ["v1", "messages", _]) => Err(ApiError::method_not_allowed("GET")),
        _ => Err(ApiError::not_found(format!("no route for {path}"))),
    }
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

pub(crate) fn internal(e: worker::Error) -> ApiError {
    ApiError::unavailable(format!("internal error: {e}"))
}

#[event(queue)]
async fn queue(batch: MessageBatch<serde_json::Value>, env: Env, _ctx: Context) -> Result<()> {
    consumer::consume(batch, env).await
}
