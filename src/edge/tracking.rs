//! The tracking routes on the edge: `GET /t/o/{token}` (the open pixel) and
//! `GET`/`HEAD /t/c/{token}` (a tracked link's redirect).
//!
//! No credential, cookie or `Origin` is looked at: the token is the whole
//! authority, and the core (`events::tracking::hit`) says whether it is
//! valid, where a click goes and what the hit records. A token that is not
//! valid gets a 404 with no `Location`. The count and the event are written
//! under `waitUntil`, after the answer: a reader never waits on D1, and a
//! write that fails is logged, never refused.
//! Must not: decide validity, targets, consent or machine detection.

use worker::{Context, Env, Request, Response};

use crate::accept::ApiError;
use crate::events::tracking::hit::{self, NO_STORE, Seen};
use crate::events::tracking::{HitKind, TrackingClaim};

use crate::events::rollup::anonymous_hit_keys;

use super::d1::Db;
use super::platform::{load_for_request, now_ms};
use super::{email_events, http::internal, log, random};

/// Answers a hit on a tracking route and records it.
pub async fn hit(
    req: &Request,
    env: &Env,
    ctx: &Context,
    kind: HitKind,
    token: &str,
) -> Result<Response, ApiError> {
    let loaded = load_for_request(env)?;
    let secrets = loaded.settings.accept.send.tracking.secrets.as_ref();
    let claim = hit::open_token(secrets, kind, token)?;

    let header = |name: &str| req.headers().get(name).ok().flatten();
    let method = req.inner().method();
    let user_agent = header("User-Agent");
    let purposes = [
        header("Purpose"),
        header("Sec-Purpose"),
        header("X-Purpose"),
        header("X-Moz"),
    ];
    let prefetch = hit::is_prefetch(&purposes.iter().map(Option::as_deref).collect::<Vec<_>>());
    let client_ip = header("CF-Connecting-IP").and_then(|ip| ip.trim().parse().ok());
    let at_ms = now_ms();
    let (env, recorded) = (env.clone(), claim.clone());
    ctx.wait_until(async move {
        let seen = Seen {
            method: &method,
            user_agent: user_agent.as_deref(),
            client_ip,
            prefetch,
            sent_at_ms: None,
            first: false,
            at_ms,
        };
        if let Err(e) = record(&env, &recorded, seen).await {
            log::error_because("tracking_hit_not_recorded", &e);
        }
    });

    let mut resp = match &claim.target {
        Some(target) => {
            let mut resp = Response::empty().map_err(internal)?.with_status(302);
            resp.headers_mut()
                .set("Location", &hit::location(target))
                .map_err(internal)?;
            resp
        }
        None => {
            let mut resp = Response::from_bytes(hit::PIXEL.to_vec()).map_err(internal)?;
            resp.headers_mut()
                .set("Content-Type", "image/gif")
                .map_err(internal)?;
            resp
        }
    };
    let headers = resp.headers_mut();
    for (name, value) in [
        ("Cache-Control", NO_STORE),
        ("Pragma", "no-cache"),
        ("Expires", "0"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Robots-Tag", "noindex"),
    ] {
        headers.set(name, value).map_err(internal)?;
    }
    Ok(resp)
}

/// Stores what the core says a hit records: the count, and the event when
/// the token names a consenting recipient. Nothing for a message no longer
/// stored (past retention): the link still works. One read (the message's
/// facts, whether the hit is the first of its kind, when the message was
/// handed over), then one write batch (the count with its event or its
/// statistics): two round trips, plus the endpoints read and the queue
/// sends of an event's fan-out.
async fn record(env: &Env, claim: &TrackingClaim, seen: Seen<'_>) -> worker::Result<()> {
    let db = Db::open(env)?;
    let event_type = hit::event_type(claim.kind);
    let Some((facts, seen_before, sent_at_ms)) =
        db.hit_facts(&claim.message_id, event_type).await?
    else {
        return Ok(());
    };
    // Only a hit that names its recipient becomes an event, and only then
    // does it matter whether it is the first of its kind.
    let seen = Seen {
        sent_at_ms,
        first: claim.recipient.is_some() && !seen_before,
        ..seen
    };
    let recording = hit::record(claim, &facts, &seen, &random::bytes::<16>());
    // The count and its event are written in one batch: once a hit is
    // counted, its event (if it has one) is stored. An event moves the
    // statistics itself; a hit that names no one moves them with its count.
    let count = db.tracking_count_statement(&recording.count)?;
    match recording.event {
        Some(event) => email_events::publish_with(env, &db, &[event], vec![count]).await,
        None => {
            let keys = anonymous_hit_keys(
                &facts,
                recording.count.event_type,
                recording.count.machine,
                seen.at_ms,
            );
            let mut statements = vec![count];
            statements.extend(db.rollup_statements(&keys, 1)?);
            db.run_batch(statements).await
        }
    }
}
