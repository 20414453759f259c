//! Reports that come back after the hand-off, applied and kept: the
//! effects a trusted report has on its message (the recipient's state, the
//! event stream and its webhooks, the suppression list), the raw bytes of
//! what matched nothing, the `inbound_reports` record of everything, and
//! `/v1/inbound-reports`.
//!
//! The email handler and the provider receivers both end here, so a bounce
//! reads the same whichever way it came back.
//! Must not: decide what a report means or whether it is trusted
//! (`inbound::matching`), or what its effects write (`delivery::reports`).

use worker::{Env, Response, Result, Url};

use crate::accept::{ApiError, AuthenticatedKey};
use crate::delivery::reports::plan;
use crate::events::log_line::LogValue;
use crate::events::{EmailEvent, MessageFacts};
use crate::http::inbound_reports::{page, parse_list_query, view};
use crate::inbound::Report;
use crate::inbound::matching::{Effect, Naming, Verdict, judge, namings};
use crate::inbound::record::{Outcome, ReportRecord, body_key, is_record_id, naming_to_follow};
use crate::queue::QueueSecrets;

use super::d1::Db;
use super::email_events;
use super::http::{self, internal};
use super::log;
use super::platform::{BODIES_BUCKET, now_ms};
use super::random;

/// What a report did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// The matched message's tenant, when a message was found.
    pub tenant: Option<String>,
    pub message_id: Option<String>,
    pub recipient: Option<String>,
    /// The `email.*` types it produced.
    pub events: Vec<String>,
}

impl Applied {
    /// A report that changed nothing, for `reason`.
    pub fn unmatched(reason: String, message_id: Option<String>) -> Applied {
        Applied {
            outcome: Outcome::Unmatched,
            reason: Some(reason),
            tenant: None,
            message_id,
            recipient: None,
            events: Vec::new(),
        }
    }
}

/// Applies trusted `effects` to the message `facts` describes: each one's
/// writes in one batch, then its events published. An effect already known
/// writes nothing (`Duplicate` when none wrote anything).
pub async fn apply(
    env: &Env,
    db: &Db,
    facts: &MessageFacts,
    effects: &[Effect],
) -> Result<Applied> {
    let now = now_ms();
    let mut events: Vec<EmailEvent> = Vec::new();
    for effect in effects {
        let current = db
            .recipient_state(&effect.message_id, &effect.recipient)
            .await?;
        let Some(changes) = plan(effect, facts, current, now, &random::bytes()) else {
            continue;
        };
        db.apply_report_changes(&effect.message_id, &changes, now)
            .await?;
        events.push(changes.event);
    }
    if !events.is_empty() {
        email_events::publish(env, db, &events).await?;
    }
    let names: Vec<String> = events
        .iter()
        .map(|e| e.event_type.as_str().to_string())
        .collect();
    Ok(Applied {
        outcome: if names.is_empty() {
            Outcome::Duplicate
        } else {
            Outcome::Applied
        },
        reason: None,
        tenant: Some(facts.tenant.clone()),
        message_id: Some(facts.id.clone()),
        recipient: effects.first().map(|e| e.recipient.clone()),
        events: names,
    })
}

/// Judges a mailed-back `report` that arrived for `rcpt_to` and applies it
/// when it is trusted.
pub async fn judge_and_apply(
    env: &Env,
    db: &Db,
    secrets: &QueueSecrets,
    report: &Report,
    rcpt_to: &str,
) -> Result<Applied> {
    let names = namings(report, rcpt_to, secrets);
    let Some(naming) = naming_to_follow(&names) else {
        return Ok(Applied::unmatched(
            "names no message: neither a return path, an envelope id nor a message id".into(),
            None,
        ));
    };
    // An unsigned naming is judged without a lookup: nothing it says is
    // trusted, whatever is stored.
    let facts = match naming {
        Naming::Unsigned(_) => None,
        _ => db.message_facts(naming.message_id()).await?,
    };
    match judge(report, naming, facts.as_ref()) {
        Verdict::Apply(effects) => match &facts {
            Some(facts) => apply(env, db, facts, &effects).await,
            None => Ok(Applied::unmatched(
                "no stored message".into(),
                Some(naming.message_id().to_string()),
            )),
        },
        Verdict::Unmatched(reason) => Ok(Applied {
            tenant: facts.map(|f| f.tenant),
            ..Applied::unmatched(reason, Some(naming.message_id().to_string()))
        }),
    }
}

/// Keeps `raw` in the bucket for record `id`; its key, or `None` when it
/// could not be stored (the record says so by having none).
pub async fn keep_raw(env: &Env, id: &str, raw: &[u8]) -> Option<String> {
    let key = body_key(id);
    let put = match env.bucket(BODIES_BUCKET) {
        Ok(bucket) => bucket.put(&key, raw.to_vec()).execute().await.map(|_| ()),
        Err(e) => Err(e),
    };
    match put {
        Ok(()) => Some(key),
        Err(e) => {
            log::error(
                "could_not_keep_inbound_report",
                &[
                    ("report_id", LogValue::Id(id)),
                    ("error", LogValue::Text(&e.to_string())),
                ],
            );
            None
        }
    }
}

/// Stores a record.
pub async fn record(db: &Db, record: &ReportRecord) -> Result<()> {
    db.insert_report(record).await
}

fn sender_domains(key: &AuthenticatedKey) -> Vec<&str> {
    key.domains.iter().map(String::as_str).collect()
}

/// `GET /v1/inbound-reports`.
pub async fn list(
    env: &Env,
    key: &AuthenticatedKey,
    url: &Url,
) -> std::result::Result<Response, ApiError> {
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let query = parse_list_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let db = Db::open(env).map_err(internal)?;
    let rows = db
        .list_reports(&key.tenant, &sender_domains(key), &query)
        .await
        .map_err(internal)?;
    http::json(200, &page(rows, query.limit)).map_err(internal)
}

/// `GET /v1/inbound-reports/{id}`, and `/raw` for the kept bytes.
pub async fn get(
    env: &Env,
    key: &AuthenticatedKey,
    id: &str,
    raw: bool,
) -> std::result::Result<Response, ApiError> {
    let missing = || ApiError::not_found(format!("no inbound report {id}"));
    if !is_record_id(id) {
        return Err(missing());
    }
    let db = Db::open(env).map_err(internal)?;
    let row = db
        .report(&key.tenant, &sender_domains(key), id)
        .await
        .map_err(internal)?
        .ok_or_else(missing)?;
    if !raw {
        return http::json(200, &view(&row)).map_err(internal);
    }
    let Some(body_key) = &row.body_key else {
        return Err(ApiError::not_found(format!(
            "inbound report {id} has no raw message kept"
        )));
    };
    let object = env
        .bucket(BODIES_BUCKET)
        .map_err(internal)?
        .get(body_key)
        .execute()
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::not_found(format!("inbound report {id}'s raw message is gone")))?;
    let bytes = match object.body() {
        Some(body) => body.bytes().await.map_err(internal)?,
        None => Vec::new(),
    };
    let mut resp = Response::from_bytes(bytes).map_err(internal)?;
    let headers = resp.headers_mut();
    headers
        .set("Content-Type", "message/rfc822")
        .map_err(internal)?;
    headers.set("Cache-Control", "no-store").map_err(internal)?;
    headers
        .set("X-Content-Type-Options", "nosniff")
        .map_err(internal)?;
    headers
        .set(
            "Content-Disposition",
            &format!("attachment; filename=\"{id}.eml\""),
        )
        .map_err(internal)?;
    Ok(resp)
}
