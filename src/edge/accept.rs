//! The accept path: store, then enqueue, then answer 202. Nothing is accepted
//! until both have succeeded; if the enqueue fails the stored row is removed.
//! A body too large for a queue message is put in the bodies bucket first.

use worker::{Env, MessageBuilder, Response};

use crate::api::{ApiError, AuthenticatedKey, send};
use crate::delivery::{QueueBody, place};

use super::store::Store;
use super::{DATABASE, JOBS_QUEUE, Loaded, bodies, http, internal, now_ms, random, signing};

pub async fn accept(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    body: &[u8],
) -> Result<Response, ApiError> {
    let id = accept_one(env, loaded, key, body).await?;
    http::json(202, &serde_json::json!({"id": id, "status": "queued"})).map_err(internal)
}

/// Validates, signs, stores and enqueues one send request; returns its id.
pub async fn accept_one(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    body: &[u8],
) -> Result<String, ApiError> {
    let now = now_ms();
    let entropy = random::bytes::<32>();
    let prepared = send::prepare(body, key, &loaded.settings, now / 1000, &entropy)?;
    let job = signing::sign(prepared, &loaded.settings).await?;
    let placed = place(job);
    let job = placed.job;
    if let Some(external) = &placed.external {
        bodies::store(env, external)
            .await
            .map_err(|e| ApiError::unavailable(format!("could not store the message body: {e}")))?;
    }

    let store = Store::new(env.d1(DATABASE).map_err(internal)?);
    if let Err(e) = store
        .insert_accepted(&job.id, &job.key_id, &job.mail_from, &job.rcpt_to, now)
        .await
    {
        bodies::release(env, job.body_ref.as_deref()).await;
        return Err(ApiError::unavailable(format!(
            "could not store the message: {e}"
        )));
    }

    let id = job.id.clone();
    tag(env, &id, body).await;
    let queue = env.queue(JOBS_QUEUE).map_err(internal)?;
    let sent = queue
        .send(MessageBuilder::new(QueueBody::deliver(job.clone()).to_json()).build())
        .await;
    if let Err(e) = sent {
        // Best effort: if this fails too, the row stays "queued" with no job,
        // and the caller, who got an error, retries with a fresh id.
        let _ = store.delete(&id).await;
        bodies::release(env, job.body_ref.as_deref()).await;
        return Err(ApiError::unavailable(format!(
            "could not enqueue the message: {e}"
        )));
    }
    Ok(id)
}

/// Stores the request's tags for `GET /v1/messages?tag=`. Tags are metadata:
/// failing to store them does not refuse the message.
async fn tag(env: &Env, id: &str, body: &[u8]) {
    let tags = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("tags").and_then(crate::api::listing::tags_object));
    if let (Some(tags), Ok(db)) = (tags, env.d1(DATABASE)) {
        let _ = super::ledger::Ledger::new(db)
            .annotate(id, Some(&tags), None)
            .await;
    }
}

#[allow(dead_code)]
pub async fn status(env: &Env, key: &AuthenticatedKey, id: &str) -> Result<Response, ApiError> {
    let store = Store::new(env.d1(DATABASE).map_err(internal)?);
    match store.get(id, &key.id).await.map_err(internal)? {
        Some(record) => http::json(200, &record).map_err(internal),
        None => Err(ApiError::not_found(format!("no message {id} for this key"))),
    }
}
