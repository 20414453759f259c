//! The doors other providers' SDKs knock on: Resend's `/emails` routes and
//! SendGrid's `/v3/mail/send`. Each maps the provider's request to
//! edgerelay's send requests (`http::compat`), runs them through the one
//! accept path (with idempotency where Resend asks for it), and answers in
//! the provider's shape.
//!
//! Owns: the order of the steps (charge, map, check every message, accept
//! each, refund what was not accepted). Must not: map or judge anything
//! itself; the core does both.

use std::rc::Rc;

use worker::{Context, Env, Request, Response};

use crate::accept::limits::Cost;
use crate::accept::templates::{self as template_rules, Template};
use crate::accept::{ApiError, AuthenticatedKey, idempotency};
use crate::http::compat::resend::{self, BatchValidation};
use crate::http::compat::sendgrid::{self, MailSend};
use crate::http::compat::{Dialect, Mapped, NOT_SUPPORTED};
use crate::http::delivery_mode::DeliveryMode;
use crate::http::routes::Endpoint;

use super::accept::{self, Call};
use super::d1::Db;
use super::http::{self, internal};
use super::meter::{self, Usage};
use super::platform::Loaded;
use super::{idempotent, scheduling, templates};

/// What a door needs of the request that reached it.
pub struct Door<'a> {
    pub env: &'a Env,
    pub ctx: &'a Context,
    pub loaded: &'a Rc<Loaded>,
    pub key: &'a AuthenticatedKey,
    /// The path's id segment, for `/emails/{id}`.
    pub id: &'a str,
}

pub async fn serve(
    endpoint: Endpoint,
    req: &mut Request,
    door: Door<'_>,
    usage: &mut Usage,
) -> Result<Response, ApiError> {
    let origin = req.url().map_err(internal)?.origin().ascii_serialization();
    let origin = Some(origin.as_str());
    match endpoint {
        Endpoint::ResendSendEmail => resend_send(req, &door, usage, origin).await,
        Endpoint::ResendSendBatch => resend_batch(req, &door, usage, origin).await,
        Endpoint::ResendGetEmail => {
            usage.charge(door.env, door.key, Cost::REQUEST).await?;
            resend_get(&door).await
        }
        Endpoint::ResendUpdateEmail => {
            usage.charge(door.env, door.key, Cost::REQUEST).await?;
            let body = read_body(req, door.loaded).await?;
            let at = crate::accept::schedule::reschedule_body(&body)?;
            scheduling::reschedule(door.env, door.key, door.id, (&at).into()).await?;
            http::json(200, &resend::updated(door.id)).map_err(internal)
        }
        Endpoint::ResendCancelEmail => {
            usage.charge(door.env, door.key, Cost::REQUEST).await?;
            scheduling::cancel(door.env, door.key, door.id).await?;
            http::json(200, &resend::updated(door.id)).map_err(internal)
        }
        Endpoint::SendGridMailSend => sendgrid_send(req, &door, usage, origin).await,
        _ => Err(ApiError::misconfigured(format!(
            "{endpoint:?} is not a provider's door"
        ))),
    }
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// The request body, refused with 413 as soon as it is over the limit.
async fn read_body(req: &mut Request, loaded: &Loaded) -> Result<Vec<u8>, ApiError> {
    let limit = crate::accept::send::request_body_limit(&loaded.settings.accept.send);
    http::read_body(req, &limit).await
}

/// The last template a request's messages named, read once for all of them.
#[derive(Default)]
struct TemplateCache(Option<(String, Template)>);

/// A mapped message as the body the accept path reads: its template, if it
/// names one, loaded (once per request) and rendered in by the core.
async fn encode(
    door: &Door<'_>,
    mapped: Mapped,
    cache: &mut TemplateCache,
) -> Result<Vec<u8>, ApiError> {
    let Mapped {
        mut request,
        template,
    } = mapped;
    if let Some(asked) = template {
        let stored = match cache.0.take() {
            Some((id, t)) if id == asked.id => t,
            _ => templates::published(door.env, door.key, &asked.id).await?,
        };
        let filled = template_rules::fill(&mut request, &stored, &asked.variables);
        cache.0 = Some((asked.id, stored));
        filled?;
    }
    serde_json::to_vec(&request)
        .map_err(|e| ApiError::misconfigured(format!("could not encode a request: {e}")))
}

/// The id of a message the accept path accepted, from its `202` answer.
async fn accepted_id(resp: &mut Response) -> Result<String, ApiError> {
    let answer: serde_json::Value = resp.json().await.map_err(internal)?;
    answer["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| ApiError::misconfigured("an accepted message without an id"))
}

async fn resend_send(
    req: &mut Request,
    door: &Door<'_>,
    usage: &mut Usage,
    origin: Option<&str>,
) -> Result<Response, ApiError> {
    usage.charge(door.env, door.key, Cost::sending(1)).await?;
    let answer = async {
        let idempotency_key = idempotency::parse_key(header(req, idempotency::HEADER).as_deref())?;
        let body = read_body(req, door.loaded).await?;
        let request = resend::email_request(&body)?;
        let mapped = encode(door, request, &mut TemplateCache::default()).await?;
        match idempotency_key {
            Some(k) => {
                let call = Call {
                    mode: DeliveryMode::Queued,
                    origin,
                };
                idempotent::accept_once(
                    door.env,
                    door.ctx,
                    door.loaded,
                    door.key,
                    &mapped,
                    &k,
                    call,
                )
                .await
            }
            None => accept::accept(door.env, door.loaded, door.key, &mapped, origin).await,
        }
    }
    .await;
    if !meter::accepted(&answer) {
        usage.refund(door.env, 1).await;
    }
    let id = accepted_id(&mut answer?).await?;
    http::json(200, &resend::sent(&id)).map_err(internal)
}

async fn resend_batch(
    req: &mut Request,
    door: &Door<'_>,
    usage: &mut Usage,
    origin: Option<&str>,
) -> Result<Response, ApiError> {
    let mode = BatchValidation::parse(header(req, BatchValidation::HEADER).as_deref())?;
    if header(req, idempotency::HEADER).is_some() {
        return Err(ApiError::invalid_field(
            idempotency::HEADER,
            NOT_SUPPORTED,
            "an Idempotency-Key on /emails/batch is not supported by edgerelay yet; send the emails one by one with their keys",
        ));
    }
    let body = read_body(req, door.loaded).await?;
    let items = resend::batch_requests(&body)?;
    let count = u32::try_from(items.len()).unwrap_or(u32::MAX);
    usage
        .charge(door.env, door.key, Cost::sending(count))
        .await?;
    let mut bodies = Vec::with_capacity(items.len());
    let mut cache = TemplateCache::default();
    for (index, item) in items.into_iter().enumerate() {
        let mapped = match item {
            Ok(m) => encode(door, m, &mut cache).await,
            Err(e) => Err(e),
        };
        // Strict: every email must pass before any is sent.
        let checked = match mapped {
            Ok(b) => accept::check(door.env, door.loaded, door.key, &b, origin)
                .await
                .map(|()| b),
            Err(e) => Err(e),
        };
        match (mode, checked) {
            (BatchValidation::Strict, Err(e)) => {
                usage.refund(door.env, count).await;
                return Err(resend::strict_refusal(index, &e));
            }
            (_, checked) => bodies.push(checked),
        }
    }
    let mut outcomes = Vec::with_capacity(bodies.len());
    // One at a time: each is a store and an enqueue, and the platform caps
    // simultaneous outgoing calls per invocation.
    for body in bodies {
        let outcome = match body {
            Ok(b) => accept::accept_one(door.env, door.loaded, door.key, &b, origin)
                .await
                .map(|ids| ids.id),
            Err(e) => Err(e),
        };
        outcomes.push(outcome);
    }
    let refused = outcomes.iter().filter(|o| o.is_err()).count();
    usage
        .refund(door.env, u32::try_from(refused).unwrap_or(u32::MAX))
        .await;
    http::json(200, &resend::batch_answer(&outcomes, mode)?).map_err(internal)
}

async fn resend_get(door: &Door<'_>) -> Result<Response, ApiError> {
    let db = Db::open(door.env).map_err(internal)?;
    let row = match db
        .message(door.id, &door.key.tenant)
        .await
        .map_err(internal)?
    {
        Some(row) => Some(row),
        // A message sent as one copy per recipient: its first copy.
        None if crate::http::copies::is_parent_id(door.id) => db
            .copies(door.id, &door.key.tenant)
            .await
            .map_err(internal)?
            .into_iter()
            .next(),
        None => None,
    };
    let Some(row) = row else {
        return Err(ApiError::not_found(format!(
            "Email with id {} not found",
            door.id
        )));
    };
    let events = db.email_events(&row.id).await.map_err(internal)?;
    let mut view = resend::email_view(&row, &events);
    view["id"] = serde_json::json!(door.id);
    http::json(200, &view).map_err(internal)
}

async fn sendgrid_send(
    req: &mut Request,
    door: &Door<'_>,
    usage: &mut Usage,
    origin: Option<&str>,
) -> Result<Response, ApiError> {
    let body = read_body(req, door.loaded).await?;
    let max_bytes = door.loaded.settings.accept.send.max_message_bytes;
    let send = MailSend::parse(&body, max_bytes)?;
    drop(body);
    let count = if send.sandbox {
        0
    } else {
        u32::try_from(send.len()).unwrap_or(u32::MAX)
    };
    usage
        .charge(door.env, door.key, Cost::sending(count))
        .await?;
    // Every personalization's message must pass before any is sent; each is
    // built again to be sent, so only one is in memory at a time. The
    // template, if any, is read once.
    let mut cache = TemplateCache::default();
    for i in 0..send.len() {
        let body = match send.message(i) {
            Ok(m) => encode(door, m, &mut cache).await,
            Err(e) => Err(e),
        };
        let checked = match body {
            Ok(b) => accept::check(door.env, door.loaded, door.key, &b, origin).await,
            Err(e) => Err(e),
        };
        if let Err(e) = checked {
            usage.refund(door.env, count).await;
            return Err(sendgrid::about_personalization(e, i));
        }
    }
    if send.sandbox {
        return empty(200, None);
    }
    let mut first = None;
    for i in 0..send.len() {
        let body = match send.message(i) {
            Ok(m) => encode(door, m, &mut cache).await,
            Err(e) => Err(e),
        };
        let accepted = match body {
            Ok(b) => accept::accept_one(door.env, door.loaded, door.key, &b, origin).await,
            Err(e) => Err(e),
        };
        match accepted {
            Ok(ids) => {
                first.get_or_insert(ids.id);
            }
            Err(e) => {
                // Those before it are accepted and will be sent; the rest are not.
                let left = u32::try_from(send.len() - i).unwrap_or(u32::MAX);
                usage.refund(door.env, left).await;
                return Err(sendgrid::about_personalization(e, i));
            }
        }
    }
    empty(202, first.as_deref())
}

/// SendGrid's success: an empty body, and the message id when one was sent.
fn empty(status: u16, message_id: Option<&str>) -> Result<Response, ApiError> {
    let mut resp = Response::empty().map_err(internal)?.with_status(status);
    let headers = resp.headers_mut();
    headers.set("Cache-Control", "no-store").map_err(internal)?;
    if let Some(id) = message_id {
        headers.set("X-Message-Id", id).map_err(internal)?;
    }
    Ok(resp)
}

/// An error in the shape of the door it came through.
pub fn error(dialect: Dialect, e: &ApiError) -> worker::Result<Response> {
    let (status, body) = match dialect {
        Dialect::Edgerelay => return http::error(e),
        Dialect::Resend => resend::error(e),
        Dialect::SendGrid => sendgrid::error(e),
    };
    let mut resp = http::json(status, &body)?;
    let headers = resp.headers_mut();
    if let Some(secs) = e.retry_after {
        headers.set("Retry-After", &secs.to_string())?;
    }
    if let Some(methods) = &e.allow {
        headers.set("Allow", methods)?;
    }
    if status == 401 {
        headers.set("WWW-Authenticate", "Bearer")?;
    }
    Ok(resp)
}
