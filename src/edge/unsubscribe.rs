//! The unsubscribe routes on the edge: `GET /unsubscribe/{token}` (the
//! confirmation page), `GET /unsubscribe/{token}/preferences` and
//! `POST /unsubscribe/{token}` (RFC 8058 one-click).
//!
//! No credential, cookie or `Origin` is looked at: the token is the whole
//! authority, and the core (`events::unsubscribe`) says what it allows. A
//! POST writes the suppression row and, when it is new, the
//! `email.unsubscribed` event, then answers `200` with a small page; never
//! a redirect. Must not: decide scopes, addresses or refusals.

use worker::{Env, Request, Response};

use crate::accept::{ApiError, BodyLimit};
use crate::events::unsubscribe::{self, one_click, page};

use super::d1::Db;
use super::log;
use super::platform::{load_for_request, now_ms};
use super::{email_events, http, http::internal, random};

/// The path of a link's pages, for the forms and the preference link.
fn paths(token: &str) -> (String, String) {
    let action = format!("/{}/{token}", unsubscribe::settings::PATH);
    let preferences = format!("{action}/preferences");
    (action, preferences)
}

/// `GET /unsubscribe/{token}` (and `/preferences`): a page, nothing changed.
/// A link that does not open gets a page saying so, with the refusal's status.
pub async fn show(env: &Env, token: &str, preferences: bool) -> Result<Response, ApiError> {
    let loaded = load_for_request(env)?;
    let settings = &loaded.settings.accept.send.unsubscribe;
    let (action, preferences_path) = paths(token);
    let (status, body) = match unsubscribe::open(settings, token) {
        Ok(claim) if preferences => (200, page::preferences(&claim, &action)),
        Ok(claim) => (200, page::confirm(&claim, &action, &preferences_path)),
        Err(refusal) => (refusal.status, page::problem(&refusal.message)),
    };
    http::html(status, body, page::CONTENT_SECURITY_POLICY).map_err(internal)
}

/// `POST /unsubscribe/{token}`: records the unsubscribe and answers 200.
pub async fn post(mut req: Request, env: &Env, token: &str) -> Result<Response, ApiError> {
    let loaded = load_for_request(env)?;
    let settings = &loaded.settings.accept.send.unsubscribe;
    // The token first: a link edgerelay did not make is refused before the
    // body is read.
    unsubscribe::open(settings, token)?;
    let limit = BodyLimit {
        max_bytes: one_click::MAX_BODY_BYTES,
        source: "the one-click unsubscribe body limit",
    };
    let body = http::read_body(&mut req, &limit).await?;
    let content_type = req.headers().get("Content-Type").ok().flatten();
    let u = unsubscribe::on_post(settings, token, content_type.as_deref(), &body)?;

    let db = Db::open(env).map_err(internal)?;
    let now = now_ms();
    let new = db
        .insert_unsubscribe(&u, now)
        .await
        .map_err(|e| ApiError::unavailable(format!("could not record the unsubscribe: {e}")))?;
    if new {
        let fields = db
            .message_fields(&u.message_id, &u.tenant)
            .await
            .ok()
            .flatten();
        let event = unsubscribe::unsubscribed_event(
            &u,
            fields.as_ref().map(|f| f.mail_from.as_str()),
            fields.as_ref().and_then(|f| f.subject.as_deref()),
            now,
            &random::bytes::<16>(),
        );
        // The suppression is what the recipient asked for and it is stored;
        // an event that could not be written is logged, not refused.
        if let Err(e) = email_events::publish(env, &db, &[event]).await {
            log::error_because("could_not_record_an_unsubscribe_event", &e);
        }
    }
    http::html(
        200,
        page::done(&u.address, &u.stream, u.topic.as_deref()),
        page::CONTENT_SECURITY_POLICY,
    )
    .map_err(internal)
}
