//! `POST /v1/provider-events/{id}`: the smarthost providers' event
//! webhooks, each verified the provider's way, judged and applied through
//! `reports` like a report that came back by mail, and recorded one
//! `inbound_reports` row per event.
//!
//! Mailgun's one-time tokens are taken in D1 after the signature verifies
//! (and given back when the request could not be handled, so the
//! provider's retry is not taken for a replay). For SES the SNS signing
//! certificate is fetched from Amazon SNS's own https URL only (cached per
//! isolate), and a subscription confirmation is answered by fetching its
//! `SubscribeURL` once the topic is listed and the signature verifies.
//! An event applied once is not applied again when the provider sends it
//! again (its key is kept in D1 for three days).
//! Must not: verify, judge or decide anything itself (`inbound::providers`,
//! `http::provider_events`), or apply effects other than through `reports`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::{Either, select};
use worker::{Delay, Env, Fetch, Method, Request, RequestInit, RequestRedirect, Response};

use crate::accept::ApiError;
use crate::events::MessageFacts;
use crate::events::log_line::LogValue;
use crate::http::provider_events::{
    Summary, body_limit, refusal, replayed, topic_not_listed, url_not_allowed,
};
use crate::inbound::matching::{Effect, Verdict};
use crate::inbound::providers::endpoints::{ProviderEndpoint, Verification};
use crate::inbound::providers::matching::{event_key, judge, lookup_id, record_tenant};
use crate::inbound::providers::ses::{self, SnsMessage};
use crate::inbound::providers::{
    MAX_SIGNATURE_AGE_SECONDS, ProviderEvent, Refused, mailgun, postmark, sendgrid,
};
use crate::inbound::record::{Channel, Kind, Outcome, ReportRecord, one_line, record_id};

use super::d1::Db;
use super::http::{self, internal};
use super::log;
use super::platform::{Loaded, now_ms};
use super::random;
use super::reports::{self, Applied};

/// The largest SNS certificate read.
const MAX_CERT_BYTES: usize = 16 * 1024;
/// How long a fetch from SNS may take.
const FETCH_TIMEOUT_MS: u64 = 10_000;
/// Certificates kept per isolate.
const CACHED_CERTS: usize = 8;

thread_local! {
    static CERTS: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

/// Handles one request to the endpoint `id` names.
pub async fn receive(
    req: &mut Request,
    env: &Env,
    loaded: &Loaded,
    id: &str,
) -> Result<Response, ApiError> {
    let Some(endpoint) = loaded.settings.inbound.provider_endpoint(id) else {
        return Err(ApiError::not_found(format!(
            "no provider event endpoint {}",
            one_line(id, 64)
        )));
    };
    let body = http::read_body(req, &body_limit()).await?;
    let provider = endpoint.provider();
    let refused = |r: Refused| refusal(provider, &r);
    let now = now_ms();
    let db = Db::open(env).map_err(internal)?;
    let mut token = None;
    let events = match &endpoint.verification {
        Verification::Mailgun { signing_keys } => {
            let event =
                mailgun::verify_and_read(&body, signing_keys, now / 1000).map_err(refused)?;
            let t = mailgun::signed_token(&body).ok_or_else(|| refused(Refused::Unsigned))?;
            // Kept for twice the freshness window: a signature is fresh
            // that long either side of now.
            let keep_ms = 2 * MAX_SIGNATURE_AGE_SECONDS * 1000;
            let first = db
                .claim_provider_token(&endpoint.id, &t, now, now.saturating_sub(keep_ms))
                .await
                .map_err(internal)?;
            if !first {
                return Err(replayed());
            }
            token = Some(t);
            vec![event]
        }
        Verification::SendGrid { public_keys } => sendgrid::verify_and_read(
            header(req, sendgrid::SIGNATURE_HEADER).as_deref(),
            header(req, sendgrid::TIMESTAMP_HEADER).as_deref(),
            &body,
            public_keys,
            now / 1000,
        )
        .map_err(refused)?,
        Verification::Postmark { credential_digests } => vec![
            postmark::verify_and_read(
                header(req, "Authorization").as_deref(),
                &body,
                credential_digests,
            )
            .map_err(refused)?,
        ],
        Verification::Ses { topic_arns } => match sns(loaded, topic_arns, &body).await? {
            Sns::Events(events) => events,
            Sns::Answered(resp) => return Ok(resp),
        },
    };
    match handle(env, &db, endpoint, &events, &body, now).await {
        Ok(summary) => http::json(200, &summary).map_err(internal),
        Err(e) => {
            if let Some(t) = token
                && let Err(e) = db.release_provider_token(&endpoint.id, &t).await
            {
                log::warn_because("could_not_release_a_provider_token", &e);
            }
            Err(internal(e))
        }
    }
}

/// Judges, applies and records each event.
async fn handle(
    env: &Env,
    db: &Db,
    endpoint: &ProviderEndpoint,
    events: &[ProviderEvent],
    body: &[u8],
    now: u64,
) -> worker::Result<Summary> {
    let mut summary = Summary {
        received: events.len(),
        ..Summary::default()
    };
    // One batch often names one message many times.
    let mut facts_of: HashMap<String, Option<MessageFacts>> = HashMap::new();
    // The raw body, kept once for all the request's unmatched events.
    let mut kept: Option<Option<String>> = None;
    for event in events {
        if event.event_type().is_none() {
            summary.count(None);
            continue;
        }
        let facts = match lookup_id(event) {
            Some(id) => {
                if !facts_of.contains_key(id) {
                    facts_of.insert(id.to_string(), db.message_facts(id).await?);
                }
                facts_of.get(id).cloned().flatten()
            }
            None => None,
        };
        let named = event.message_id.as_deref().map(|id| one_line(id, 64));
        let applied = match judge(event, endpoint.tenant.as_deref(), facts.as_ref()) {
            None => {
                summary.count(None);
                continue;
            }
            Some(Verdict::Apply(effects)) => match &facts {
                Some(facts) => apply_once(env, db, endpoint, event, facts, &effects, now).await?,
                None => Applied::unmatched("no stored message".into(), named.clone()),
            },
            Some(Verdict::Unmatched(reason)) => Applied::unmatched(reason, named.clone()),
        };
        let id = record_id(&random::bytes());
        let body_key = if applied.outcome == Outcome::Unmatched {
            match &kept {
                Some(key) => key.clone(),
                None => {
                    let key = reports::keep_raw(env, &id, body).await;
                    kept = Some(key.clone());
                    key
                }
            }
        } else {
            None
        };
        let record = ReportRecord {
            id,
            received_at_ms: now,
            channel: Channel::Provider(endpoint.provider()),
            kind: Kind::ProviderEvent,
            outcome: applied.outcome,
            reason: applied.reason,
            tenant: record_tenant(endpoint.tenant.as_deref(), facts.as_ref()),
            domain: None,
            message_id: applied.message_id.or(named),
            recipient: applied
                .recipient
                .or_else(|| Some(one_line(&event.recipient, 320))),
            events: applied.events,
            mail_from: None,
            rcpt_to: None,
            subject: None,
            size: body.len() as u64,
            body_key,
        };
        reports::record(db, &record).await?;
        summary.count(Some(applied.outcome));
    }
    Ok(summary)
}

/// How long an applied event's key is kept: longer than providers retry
/// (SendGrid for 24 hours, SNS and Mailgun for less).
const EVENT_KEY_KEEP_MS: u64 = 3 * 24 * 60 * 60 * 1000;

/// Applies a trusted event's effects unless the same event was applied
/// before (a provider's retry): then it is a duplicate, and nothing is
/// written or emitted again.
async fn apply_once(
    env: &Env,
    db: &Db,
    endpoint: &ProviderEndpoint,
    event: &ProviderEvent,
    facts: &MessageFacts,
    effects: &[Effect],
    now: u64,
) -> worker::Result<Applied> {
    let Some(key) = event_key(event) else {
        return reports::apply(env, db, facts, effects).await;
    };
    let first = db
        .claim_provider_event(
            &endpoint.id,
            &key,
            now,
            now.saturating_sub(EVENT_KEY_KEEP_MS),
        )
        .await?;
    if !first {
        return Ok(Applied {
            outcome: Outcome::Duplicate,
            reason: Some("the provider sent this event before".into()),
            tenant: Some(facts.tenant.clone()),
            message_id: Some(facts.id.clone()),
            recipient: effects.first().map(|e| e.recipient.clone()),
            events: Vec::new(),
        });
    }
    match reports::apply(env, db, facts, effects).await {
        Ok(applied) => Ok(applied),
        Err(e) => {
            if let Err(release) = db.release_provider_event(&endpoint.id, &key).await {
                log::warn(
                    "could_not_release_a_provider_event_key",
                    &[("error", LogValue::Text(&release.to_string()))],
                );
            }
            Err(e)
        }
    }
}

enum Sns {
    Events(Vec<ProviderEvent>),
    /// A subscription confirmed (or an unsubscription noted): answered.
    Answered(Response),
}

/// An SNS message: topic, certificate URL, signature, then what it says.
async fn sns(loaded: &Loaded, topic_arns: &[String], body: &[u8]) -> Result<Sns, ApiError> {
    let refused = |r: Refused| refusal(crate::inbound::providers::Provider::Ses, &r);
    let message = SnsMessage::parse(body).map_err(refused)?;
    if !topic_arns.contains(&message.topic_arn) {
        return Err(topic_not_listed());
    }
    if !url_ok(loaded, &message.signing_cert_url, ses::cert_url_allowed) {
        return Err(url_not_allowed("SigningCertURL"));
    }
    let pem = certificate(&message.signing_cert_url).await?;
    message.verify(&pem).map_err(refused)?;
    match message.kind.as_str() {
        "Notification" => Ok(Sns::Events(
            ses::read_notification(&message.message).map_err(refused)?,
        )),
        "SubscriptionConfirmation" => {
            let url = message.subscribe_url.as_deref().unwrap_or_default();
            if !url_ok(loaded, url, ses::subscribe_url_allowed) {
                return Err(url_not_allowed("SubscribeURL"));
            }
            get(url, MAX_CERT_BYTES).await.map_err(|e| {
                ApiError::unavailable(format!("could not confirm the subscription: {e}"))
            })?;
            log::info(
                "sns_subscription_confirmed",
                &[("topic_arn", LogValue::Id(&message.topic_arn))],
            );
            let answer = serde_json::json!({"confirmed": true, "topic_arn": message.topic_arn});
            Ok(Sns::Answered(http::json(200, &answer).map_err(internal)?))
        }
        _ => Ok(Sns::Answered(
            http::json(200, &Summary::default()).map_err(internal)?,
        )),
    }
}

/// Whether an SNS URL may be fetched: Amazon SNS's own, or, in a
/// diagnostics build with `SNS_LOOPBACK_URLS=on`, one on loopback.
fn url_ok(loaded: &Loaded, url: &str, allowed: fn(&str) -> bool) -> bool {
    #[cfg(feature = "diagnostics")]
    if loaded.diagnostics.sns_loopback_urls && crate::diagnostics::sns_loopback::loopback_url(url) {
        return true;
    }
    #[cfg(not(feature = "diagnostics"))]
    let _ = loaded;
    allowed(url)
}

/// The certificate at `url`, from the isolate's cache or fetched.
async fn certificate(url: &str) -> Result<String, ApiError> {
    let cached = CERTS.with(|c| {
        c.borrow()
            .iter()
            .find(|(u, _)| u == url)
            .map(|(_, pem)| pem.clone())
    });
    if let Some(pem) = cached {
        return Ok(pem);
    }
    let bytes = get(url, MAX_CERT_BYTES).await.map_err(|e| {
        ApiError::unavailable(format!("could not fetch the SNS signing certificate: {e}"))
    })?;
    let pem = String::from_utf8(bytes)
        .map_err(|_| ApiError::unavailable("the SNS signing certificate is not text"))?;
    CERTS.with(|c| {
        let mut certs = c.borrow_mut();
        if certs.len() >= CACHED_CERTS {
            certs.remove(0);
        }
        certs.push((url.to_string(), pem.clone()));
    });
    Ok(pem)
}

/// GETs `url` (no redirects), reading at most `limit` bytes of a 200.
async fn get(url: &str, limit: usize) -> Result<Vec<u8>, String> {
    let mut init = RequestInit::new();
    init.with_method(Method::Get)
        .with_redirect(RequestRedirect::Manual);
    let request = Request::new_with_init(url, &init).map_err(|e| e.to_string())?;
    let fetch = async {
        let mut resp = Fetch::Request(request)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if resp.status_code() != 200 {
            return Err(format!("answered {}", resp.status_code()));
        }
        let mut stream = resp.stream().map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            if out.len().saturating_add(chunk.len()) > limit {
                return Err(format!("more than {limit} bytes"));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    };
    let timer = Delay::from(Duration::from_millis(FETCH_TIMEOUT_MS));
    match select(Box::pin(fetch), Box::pin(timer)).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => Err("timed out".into()),
    }
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}
