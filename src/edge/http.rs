//! Turning core answers into `worker::Response`s: a JSON body with its status,
//! an HTML page (the unsubscribe pages), and the one error shape with
//! `Retry-After`, `Allow` and `WWW-Authenticate` where they apply; all are
//! sent with `Cache-Control: no-store`. And the
//! other way: a request body read as a stream under the core's limit.
//!
//! Must not: choose a status, a body or a limit; the core's values do.

use futures_util::StreamExt;
use serde::Serialize;
use worker::{Request, Response, Result};

use crate::accept::{ApiError, BodyLimit};

/// Reads a request body chunk by chunk, refusing it (413, naming the
/// limit) as soon as it passes `limit`: by its `Content-Length` before
/// anything is read, else by what has arrived, so a chunked upload with no
/// length is cut off at the limit, not read whole first.
pub async fn read_body(
    req: &mut Request,
    limit: &BodyLimit,
) -> std::result::Result<Vec<u8>, ApiError> {
    let declared = req.headers().get("Content-Length").ok().flatten();
    limit.admits_declared(declared.as_deref())?;
    // No body at all reads as an empty one.
    let Ok(mut stream) = req.stream() else {
        return Ok(Vec::new());
    };
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::malformed(format!("could not read the body: {e}")))?;
        limit.admits(body.len().saturating_add(chunk.len()))?;
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A JSON response with the given status.
pub fn json<T: Serialize>(status: u16, body: &T) -> Result<Response> {
    let text = serde_json::to_string(body).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let mut resp = Response::ok(text)?.with_status(status);
    resp.headers_mut().set("Content-Type", "application/json")?;
    resp.headers_mut().set("Cache-Control", "no-store")?;
    Ok(resp)
}

/// An HTML page (the unsubscribe pages), never cached or indexed, under
/// the page's `Content-Security-Policy`.
pub fn html(status: u16, body: String, content_security_policy: &str) -> Result<Response> {
    let mut resp = Response::ok(body)?.with_status(status);
    let headers = resp.headers_mut();
    headers.set("Content-Type", "text/html; charset=utf-8")?;
    headers.set("Cache-Control", "no-store")?;
    headers.set("Content-Security-Policy", content_security_policy)?;
    headers.set("Referrer-Policy", "no-referrer")?;
    headers.set("X-Robots-Tag", "noindex")?;
    headers.set("X-Content-Type-Options", "nosniff")?;
    Ok(resp)
}

/// One of the dashboard's files, read from the static assets (the `ASSETS`
/// binding) and answered under the page's policy, never cached (a deploy
/// changes page and script together) or framed.
pub async fn asset(env: &worker::Env, asset: &crate::http::dashboard::Asset) -> Result<Response> {
    let mut found = env
        .assets("ASSETS")?
        .fetch(format!("https://assets.invalid{}", asset.path), None)
        .await?;
    if found.status_code() != 200 {
        return Err(worker::Error::RustError(format!(
            "the static asset {} is missing (status {}): build with scripts/build.sh",
            asset.path,
            found.status_code()
        )));
    }
    let mut resp = Response::from_bytes(found.bytes().await?)?;
    let headers = resp.headers_mut();
    headers.set("Content-Type", asset.content_type)?;
    headers.set("Cache-Control", "no-store")?;
    headers.set(
        "Content-Security-Policy",
        crate::http::dashboard::CONTENT_SECURITY_POLICY,
    )?;
    headers.set("Referrer-Policy", "no-referrer")?;
    headers.set("X-Content-Type-Options", "nosniff")?;
    headers.set("X-Frame-Options", "DENY")?;
    headers.set("X-Robots-Tag", "noindex")?;
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
