//! `POST /v1/messages` with an `Idempotency-Key`: claim the key, run the
//! accept path once, remember its answer, and replay it to duplicates.
//!
//! A duplicate that arrives while the first request is still running waits a
//! little for its answer (so concurrent retries of one send usually all get
//! the same 202), then answers 409 with `Retry-After`. Must not: decide the
//! rules (see `accept::idempotency`) or accept anything itself.

use std::rc::Rc;
use std::time::Duration;

use worker::{Context, Delay, Env, Response};

use crate::accept::idempotency::{Replay, claim_cutoffs, fingerprint, remembers, replay};
use crate::accept::{ApiError, AuthenticatedKey};
use crate::delivery::immediate::plan;
use crate::http::delivery_mode::DeliveryMode;
use crate::message::Limits;

use super::accept::Call;
use super::d1::Db;
use super::platform::{Loaded, now_ms};
use super::{
    accept,
    http::{self, internal},
    immediate, log,
};

/// How long a duplicate waits for the first request's answer.
const WAIT_FOR_FIRST_MS: u64 = 10_000;
const POLL_MS: u64 = 100;

pub async fn accept_once(
    env: &Env,
    ctx: &Context,
    loaded: &Rc<Loaded>,
    key: &AuthenticatedKey,
    body: &[u8],
    idempotency_key: &str,
    call: Call<'_>,
) -> Result<Response, ApiError> {
    let Call { mode, origin } = call;
    let ledger = Db::open(env).map_err(internal)?;
    let print = mode.fingerprint(fingerprint(body));
    let now = now_ms();
    // The longest a request can run: an immediate one with the most
    // recipients a message may have.
    let longest = plan(&loaded.settings.delivery, Limits::default().max_recipients).lease_ms;
    let won = ledger
        .claim_key(
            &key.id,
            idempotency_key,
            &print,
            now,
            &claim_cutoffs(now, longest),
        )
        .await
        .map_err(|e| ApiError::unavailable(format!("could not store the idempotency key: {e}")))?;
    if !won {
        return answer_duplicate(&ledger, key, idempotency_key, &print).await;
    }

    let answer = match mode {
        DeliveryMode::Queued => accept::accept(env, loaded, key, body, origin).await,
        DeliveryMode::Immediate => {
            immediate::accept_immediate(env, ctx, loaded, key, body, origin).await
        }
    };
    match answer {
        Ok(mut resp) if remembers(resp.status_code()) => {
            let status = resp.status_code();
            let text = resp.text().await.map_err(internal)?;
            if let Err(e) = ledger
                .complete_key(&key.id, idempotency_key, status, &text)
                .await
            {
                // The message is accepted; only the replay record is missing.
                // Answer the truth now; a duplicate will see "in progress".
                log::error_because("could_not_record_an_idempotent_answer", &e);
            }
            replay_response(status, &text)
        }
        other => {
            if let Err(e) = ledger.release_key(&key.id, idempotency_key).await {
                log::error_because("could_not_release_an_idempotency_key", &e);
            }
            other
        }
    }
}

async fn answer_duplicate(
    ledger: &Db,
    key: &AuthenticatedKey,
    idempotency_key: &str,
    print: &str,
) -> Result<Response, ApiError> {
    let deadline = now_ms() + WAIT_FOR_FIRST_MS;
    loop {
        let stored = ledger
            .read_key(&key.id, idempotency_key)
            .await
            .map_err(internal)?;
        let Some(stored) = stored else {
            // The first request failed and gave the key back: nothing was
            // accepted under it, so this caller may simply retry.
            let mut e =
                ApiError::unavailable("an earlier request with this Idempotency-Key failed; retry");
            e.retry_after = Some(1);
            return Err(e);
        };
        match replay(&stored, print) {
            Replay::Answer { status, body } => return replay_response(status, &body),
            Replay::Conflict(e) => return Err(e),
            Replay::InProgress(e) => {
                if now_ms() >= deadline {
                    return Err(e);
                }
                Delay::from(Duration::from_millis(POLL_MS)).await;
            }
        }
    }
}

fn replay_response(status: u16, body: &str) -> Result<Response, ApiError> {
    let value: serde_json::Value =
        serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.to_string()));
    http::json(status, &value).map_err(internal)
}
