//! Turning core answers into `worker::Response`s: a JSON body with its status,
//! and the one error shape with `Retry-After`, `Allow` and `WWW-Authenticate`
//! where they apply; both are sent with `Cache-Control: no-store`.
//!
//! Must not: choose a status or a body; the core's values do.

use serde::Serialize;
use worker::{Response, Result};

use crate::accept::ApiError;

/// A JSON response with the given status.
pub fn json<T: Serialize>(status: u16, body: &T) -> Result<Response> {
    let text = serde_json::to_string(body).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let mut resp = Response::ok(text)?.with_status(status);
    resp.headers_mut().set("Content-Type", "application/json")?;
    resp.headers_mut().set("Cache-Control", "no-store")?;
    Ok(resp)
}

/// The one error shape, with `Retry-After` and `Allow` when the error carries them.
pub fn error(e: &ApiError) -> Result<Response> {
    let mut resp = Response::ok(e.body())?.with_status(e.status);
    resp.headers_mut().set("Content-Type", "application/json")?;
    resp.headers_mut().set("Cache-Control", "no-store")?;
    if let Some(secs) = e.retry_after {
        resp.headers_mut().set("Retry-After", &secs.to_string())?;
    }
    if let Some(methods) = &e.allow {
        resp.headers_mut().set("Allow", methods)?;
    }
    if e.status == 401 {
        resp.headers_mut().set("WWW-Authenticate", "Bearer")?;
    }
    Ok(resp)
}

pub(crate) fn internal(e: worker::Error) -> ApiError {
    ApiError::unavailable(format!("internal error: {e}"))
}
