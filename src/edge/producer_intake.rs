//! Messages other Workers put on the jobs queue (`"type": "send"`): treated
//! as untrusted input, exactly like `POST /v1/messages`.
//!
//! The producer must be listed in `QUEUE_PRODUCERS` and prove its id with
//! its token (`accept::producer::authenticate`); its message is validated,
//! checked against the producer's domains, composed and signed here (RSA
//! through WebCrypto, exactly as on the HTTP path: `signing::sign`), then
//! stored under the producer's owner key and delivered in the same batch. The
//! message id comes from the queue message's own id, so a redelivered queue
//! message maps to the same edgerelay message and its recorded recipients are
//! not sent to again. The row keeps the job like any accepted message's (a
//! body too large for a queue message goes to the bucket first), so the
//! reconciliation sweep can send it again if this batch dies. A message that
//! cannot be accepted, or whose token does not prove the producer it names,
//! is stored as `failed` with the reason (visible to that producer's owner
//! key only) and dead-lettered, its token removed. A producer with `limits`
//! is metered like an API key (one request and one message per queue
//! message, on its own `Meter`); a message over a limit is sent again, as it
//! came, after the refusal's Retry-After (`accept::limits::producer_delay`):
//! never dead-lettered, never lost. A message not accepted after all, or a
//! redelivery of one already stored, gives its count back.
//! Must not: decide validation rules; `accept::send` does.

use sha2::{Digest, Sha256};
use worker::Env;

use crate::accept::commit::NewRow;
use crate::accept::limits::{self, Cost};
use crate::accept::producer::{self, ProducerRefusal};
use crate::accept::{ApiError, AuthenticatedKey, Scope, send};
use crate::events::log_line::LogValue;
use crate::http::listing::tags_json;
use crate::queue::job::without_token;
use crate::queue::{DeadLetter, DeliveryJob, place};

use super::d1::Db;
use super::log;
use super::meter::Usage;
use super::platform::{Loaded, now_ms};
use super::{bodies, queue_writer, signing};

/// A `send` body as it came off the queue.
pub struct Claim<'a> {
    /// The producer id it names.
    pub producer: &'a str,
    /// The token it carries, the proof of that id.
    pub token: Option<&'a str>,
    pub message: &'a serde_json::Value,
    /// The body's text, kept (without its token) in a dead letter.
    pub raw_text: &'a str,
}

/// What became of a producer's queue message.
pub enum Taken {
    /// Stored: deliver it in this batch.
    Job(DeliveryJob),
    /// Refused and recorded: acknowledge it.
    Settled,
    /// Over the producer's limits: send it again after this many seconds.
    Later(u32),
}

/// Turns a producer's queue message into a stored delivery job, records why
/// not, or says when to take it again. `Err` means the store or the meter was
/// unreachable: retry the queue message later.
pub async fn intake(
    env: &Env,
    loaded: &Loaded,
    db: &Db,
    queue_message_id: &str,
    claim: Claim<'_>,
) -> Result<Taken, ()> {
    let now = now_ms();
    let entropy: [u8; 32] = Sha256::digest(queue_message_id.as_bytes()).into();
    let producer_id = claim.producer;
    let raw = without_token(claim.raw_text);

    let accept = &loaded.settings.accept;
    let p = match producer::authenticate(&accept.queue_producers, producer_id, claim.token) {
        Ok(p) => p,
        Err(ProducerRefusal::Unknown) => {
            let reason = format!(
                "queue producer `{producer_id}` is not listed in QUEUE_PRODUCERS; message refused"
            );
            let letter = DeadLetter {
                reason,
                job: None,
                raw: Some(raw),
                message_id: None,
            };
            queue_writer::dead_letter(env, letter).await;
            return Ok(Taken::Settled);
        }
        Err(ProducerRefusal::Unproven { producer, reason }) => {
            log::warn(
                "producer_message_refused",
                &[("reason", LogValue::Text(&reason.to_string()))],
            );
            let refusal = Refusal {
                owner: &producer.owner,
                tenant: producer.tenant(),
                producer_id,
                reason,
            };
            refuse(env, db, refusal, &entropy, raw, now).await;
            return Ok(Taken::Settled);
        }
    };
    let mut usage = Usage::default();
    let meter = limits::producer_meter_name(&p.id);
    match usage
        .charge_meter(env, meter, p.limits, Cost::sending(1))
        .await
    {
        Ok(()) => {}
        Err(e) if e.status == 429 => {
            let delay = limits::producer_delay(&e);
            log::warn(
                "producer_over_limit",
                &[
                    ("producer_id", LogValue::Id(producer_id)),
                    ("limit", LogValue::Id(e.field.as_deref().unwrap_or(""))),
                    ("delay_seconds", LogValue::Num(u64::from(delay))),
                ],
            );
            return Ok(Taken::Later(delay));
        }
        Err(_) => return Err(()),
    }
    let key = AuthenticatedKey {
        id: p.owner.clone(),
        domains: p.domains.clone(),
        tenant: p.tenant().to_string(),
        streams: Default::default(),
        unsubscribe_base_url: None,
        scopes: vec![Scope::Send],
        limits: Default::default(),
    };
    let body = serde_json::to_vec(claim.message).unwrap_or_default();
    let job = match send::prepare(&body, &key, &accept.send, now / 1000, &entropy) {
        // A producer's message goes out as it is taken in (its queue
        // message is its job): scheduling is for the HTTP API.
        Ok(prepared) if prepared.send_at.is_some() => Err(ApiError::invalid_field(
            "scheduled_at",
            "not_supported",
            "queue producers cannot schedule a message; send it through the HTTP API, or enqueue it with a delay",
        )),
        Ok(prepared) => signing::sign(prepared, &accept.send).await,
        Err(e) => Err(e),
    };
    match job {
        Ok(job) => {
            let placed = place(job.clone());
            let job = DeliveryJob {
                body_ref: placed.job.body_ref.clone(),
                ..job
            };
            // A redelivery finds the row already there: keep it, and give
            // back the count it took again.
            let stored = db.status_of(&job.id).await;
            if !matches!(stored, Ok(None)) {
                usage.refund(env, 1).await;
            }
            if let Ok(None) = stored {
                if let Some(external) = &placed.external
                    && let Err(e) = bodies::store(env, external).await
                {
                    log::error_because("could_not_store_a_producer_body", &e);
                    return Err(());
                }
                let row = NewRow {
                    job: &placed.job,
                    accepted_at_ms: now,
                    lease_until_ms: None,
                    warnings: &[],
                    send_at: None,
                };
                if let Err(e) = db.insert_accepted(&row).await {
                    log::error_because("could_not_store_a_producer_message", &e);
                    return Err(());
                }
                // The validated tags, not a second parse of the message.
                let tags = tags_json(&job.tags);
                let _ = db
                    .annotate(&job.id, tags.as_deref(), Some(producer_id))
                    .await;
            }
            Ok(Taken::Job(job))
        }
        Err(e) => {
            usage.refund(env, 1).await;
            let reason = format!("producer `{producer_id}`: {} ({})", e.message, e.rule);
            let refusal = Refusal {
                owner: &p.owner,
                tenant: p.tenant(),
                producer_id,
                reason,
            };
            refuse(env, db, refusal, &entropy, raw, now).await;
            Ok(Taken::Settled)
        }
    }
}

/// The refusal of a producer's message, as its owner sees it.
struct Refusal<'a> {
    owner: &'a str,
    tenant: &'a str,
    producer_id: &'a str,
    reason: String,
}

/// Records a refused producer message as `failed` under the owner key (and
/// the producer's tenant), with
/// the reason, and dead-letters it. Its id comes from the queue message's,
/// so a redelivery records it once.
async fn refuse(
    env: &Env,
    db: &Db,
    refusal: Refusal<'_>,
    entropy: &[u8; 32],
    raw: String,
    now: u64,
) {
    let Refusal {
        owner,
        tenant,
        producer_id,
        reason,
    } = refusal;
    let id: String = entropy[..16].iter().map(|b| format!("{b:02x}")).collect();
    if let Err(err) = db
        .insert_rejected(&id, (owner, tenant), producer_id, &reason, now)
        .await
    {
        log::error_because("could_not_record_a_rejected_message", &err);
    }
    let letter = DeadLetter {
        reason,
        job: None,
        raw: Some(raw),
        message_id: Some(id),
    };
    queue_writer::dead_letter(env, letter).await;
}
