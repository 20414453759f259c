//! `POST /v1/forms/submit` and its preflight: a page sends a form with a
//! publishable key.
//!
//! Order matters: origin and key first (cheap, and a refusal needs no body),
//! then the rate limits (before any work a spammer could make us do), then the
//! form itself, the honeypot, Turnstile, and finally the ordinary accept path.
//! Owns: that order and the calls to the rate limiters and Turnstile. Must not:
//! decide what a form may send (`accept::publishable`), or answer with CORS
//! headers an origin no form allows.

use wasm_bindgen::JsValue;
use worker::{Env, Fetch, Headers, Method, Request, RequestInit, Response};

use crate::accept::publishable::{FormConfig, FormOutcome};
use crate::accept::{ApiError, AuthenticatedKey, FormSettings, Scope};
use crate::http::accepted::{ACCEPTED, queued};
use crate::http::cors;

use super::platform::Loaded;
use super::{
    accept,
    http::{self, internal},
    random,
};

/// Rate Limiting bindings, as in wrangler.toml.
const KEY_LIMITER: &str = "FORM_KEY_LIMITER";
const IP_LIMITER: &str = "FORM_IP_LIMITER";
/// The limiters count per minute; a refused caller waits at most that long.
const LIMIT_PERIOD_SECONDS: u32 = 60;

fn with_cors(resp: worker::Result<Response>, origin: Option<&str>) -> worker::Result<Response> {
    let mut resp = resp?;
    if let Some(origin) = origin {
        for (name, value) in cors::response_headers(origin) {
            resp.headers_mut().set(name, &value)?;
        }
    }
    Ok(resp)
}

/// Answers a preflight: only for origins some form allows, and only for what the route uses.
pub fn preflight(req: &Request, loaded: &Loaded) -> worker::Result<Response> {
    let origin = header(req, "Origin");
    let method = header(req, "Access-Control-Request-Method");
    let headers = header(req, "Access-Control-Request-Headers");
    match origin {
        Some(o)
            if loaded
                .settings
                .accept
                .forms
                .publishable
                .any_allows_origin(&o)
                && cors::preflight_acceptable(method.as_deref(), headers.as_deref()) =>
        {
            let mut resp = Response::empty()?.with_status(204);
            for (name, value) in cors::preflight_headers(&o) {
                resp.headers_mut().set(name, &value)?;
            }
            Ok(resp)
        }
        _ => http::error(&ApiError::forbidden(
            "origin_not_allowed",
            "Origin",
            "this origin may not call edgerelay from a browser",
        )),
    }
}

pub async fn submit(mut req: Request, env: &Env, loaded: &Loaded) -> worker::Result<Response> {
    let origin = header(&req, "Origin");
    // Errors carry CORS headers only for origins some form allows, so a page
    // can show them; anyone else learns nothing.
    let forms = &loaded.settings.accept.forms;
    let cors_origin = origin
        .clone()
        .filter(|o| forms.publishable.any_allows_origin(o));
    let result = async {
        let form = forms
            .publishable
            .authenticate(header(&req, "Authorization").as_deref())?;
        match origin.as_deref() {
            Some(o) if form.allows_origin(o) => {}
            _ => {
                return Err(ApiError::forbidden(
                    "origin_not_allowed",
                    "Origin",
                    "this publishable key may not be used from this origin",
                ));
            }
        }
        let ip = header(&req, "CF-Connecting-IP");
        let (per_form, per_client) = form.rate_limit_keys(ip.as_deref());
        // The client's own limit first: a client over it is refused before
        // it can use up the form's budget for everyone else.
        limit(env, IP_LIMITER, per_client).await?;
        limit(env, KEY_LIMITER, per_form).await?;

        // An oversized body is refused as soon as it passes the limit.
        let body = http::read_body(&mut req, &form.body_limit()).await?;
        match form.submission(&body)? {
            FormOutcome::Discard => {
                // Indistinguishable from an accepted submission.
                let id: String = random::bytes::<16>()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                http::json(ACCEPTED, &queued(&id)).map_err(internal)
            }
            FormOutcome::Send {
                request,
                turnstile_token,
            } => {
                if form.turnstile {
                    let token = turnstile_token.as_deref().unwrap_or("");
                    verify_turnstile(forms, token, ip.as_deref()).await?;
                }
                let key = form_sender(form);
                accept::accept(env, loaded, &key, request.to_string().as_bytes(), None).await
            }
        }
    }
    .await;
    let resp = match result {
        Ok(r) => Ok(r),
        Err(e) => http::error(&e),
    };
    with_cors(resp, cors_origin.as_deref())
}

/// A form sends as its own From domain and nothing else.
fn form_sender(form: &FormConfig) -> AuthenticatedKey {
    AuthenticatedKey {
        id: format!("form:{}", form.id),
        domains: vec![form.from_domain()],
        tenant: form.tenant(),
        streams: Default::default(),
        unsubscribe_base_url: None,
        scopes: vec![Scope::Send],
        limits: Default::default(),
    }
}

async fn limit(env: &Env, binding: &str, key: String) -> Result<(), ApiError> {
    let limiter = env.rate_limiter(binding).map_err(|_| {
        ApiError::misconfigured(format!("the rate limiting binding {binding} is missing"))
    })?;
    let outcome = limiter.limit(key).await.map_err(internal)?;
    if outcome.success {
        Ok(())
    } else {
        let mut e = ApiError::rate_limited(LIMIT_PERIOD_SECONDS);
        e.message = "too many submissions; try again later".to_string();
        Err(e)
    }
}

async fn verify_turnstile(
    forms: &FormSettings,
    token: &str,
    ip: Option<&str>,
) -> Result<(), ApiError> {
    let secret = forms
        .turnstile_secret
        .as_deref()
        .ok_or_else(|| ApiError::misconfigured("TURNSTILE_SECRET is not set"))?;
    let mut body = format!(
        "secret={}&response={}",
        form_encode(secret),
        form_encode(token)
    );
    if let Some(ip) = ip {
        body.push_str(&format!("&remoteip={}", form_encode(ip)));
    }
    let headers = Headers::new();
    headers
        .set("Content-Type", "application/x-www-form-urlencoded")
        .map_err(internal)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(JsValue::from_str(&body)));
    let request = Request::new_with_init(&forms.turnstile_verify_url, &init).map_err(internal)?;
    let mut resp = Fetch::Request(request)
        .send()
        .await
        .map_err(|e| ApiError::unavailable(format!("Turnstile verification failed: {e}")))?;
    let verdict: serde_json::Value = resp.json().await.map_err(|e| {
        ApiError::unavailable(format!("Turnstile answered something unreadable: {e}"))
    })?;
    if verdict.get("success").and_then(serde_json::Value::as_bool) == Some(true) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "turnstile_failed",
            "turnstile_token",
            "the challenge was not passed; reload the page and try again",
        ))
    }
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}
