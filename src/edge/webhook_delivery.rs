//! The webhooks queue's consumer: one signed POST per task, each attempt
//! recorded, then the verdict carried out (done, endpoint disabled, the next
//! attempt queued with its delay, or given up).
//!
//! Tasks of a batch are sent one after another, in the order they came, so
//! a receiver sees a message's events in the order they were recorded. A
//! task whose endpoint was deleted or disabled is dropped. When D1 cannot
//! record an attempt (or the next attempt cannot be queued) the queue message
//! is retried by the platform instead, so no event is lost while storage or
//! the endpoint is down.
//! Must not: decide anything; `events::webhooks` signs, judges and schedules.

use std::time::Duration;

use futures_util::future::{Either, select};
use worker::{
    AbortController, Delay, Env, Fetch, Headers, MessageBatch, MessageExt, Method,
    QueueRetryOptionsBuilder, Request, RequestInit, RequestRedirect,
};

use crate::events::log_line::LogValue;
use crate::events::webhooks::endpoint::DISABLED_BY_GONE;
use crate::events::webhooks::settings::DEFAULT_QUEUE_NAME;
use crate::events::webhooks::{
    Answer, Verdict, WebhookSettings, WebhookTask, signing, url_policy, verdict,
};
use crate::queue::QueueSecrets;

use super::d1::Db;
use super::d1::webhooks::AttemptRecord;
use super::log;
use super::outage::InHand;
use super::platform::{load, now_ms};
use super::queue_writer;

/// How long a queue message waits before the platform tries it again after
/// storage trouble.
const STORAGE_RETRY_SECONDS: u32 = 30;

/// Whether a batch came from the webhooks queue. With unreadable settings
/// the default name decides, so webhook tasks are never taken for jobs.
pub fn is_webhooks_queue(env: &Env, queue: &str) -> bool {
    match load(env) {
        Ok(l) => l.settings.webhooks.queue_name == queue,
        Err(_) => queue == DEFAULT_QUEUE_NAME,
    }
}

pub async fn consume(batch: MessageBatch<serde_json::Value>, env: Env) -> worker::Result<()> {
    let messages: Vec<InHand> = batch.raw_iter().map(InHand::new).collect();
    let (loaded, db) = match (load(&env), Db::open(&env)) {
        (Ok(l), Ok(db)) => (l, db),
        (Err(e), _) => {
            log::error(
                "webhook_deliveries_wait",
                &[("error", LogValue::Text(&e.to_string()))],
            );
            retry_all(&messages);
            return Ok(());
        }
        (_, Err(e)) => {
            log::error_because("the_database_is_unavailable", &e);
            retry_all(&messages);
            return Ok(());
        }
    };
    for message in &messages {
        let secrets = &loaded.settings.queue_secrets;
        match WebhookTask::open(&message.text, secrets) {
            Ok(task) => {
                if deliver(&env, &db, &loaded.settings.webhooks, secrets, &task).await {
                    message.raw.ack();
                } else {
                    retry(message);
                }
            }
            Err(reason) => {
                log::error(
                    "webhook_message_refused",
                    &[("reason", LogValue::Text(&reason.to_string()))],
                );
                message.raw.ack();
            }
        }
    }
    Ok(())
}

fn retry(message: &InHand) {
    message.raw.retry_with_options(
        &QueueRetryOptionsBuilder::new()
            .with_delay_seconds(STORAGE_RETRY_SECONDS)
            .build(),
    );
}

fn retry_all(messages: &[InHand]) {
    for message in messages {
        retry(message);
    }
}

/// One attempt for one task. `true` once its outcome is recorded (or there
/// is nothing to do); `false` asks for the queue message again later.
async fn deliver(
    env: &Env,
    db: &Db,
    settings: &WebhookSettings,
    secrets: &QueueSecrets,
    task: &WebhookTask,
) -> bool {
    let endpoint = match db.endpoint_for_task(&task.endpoint_id).await {
        Ok(Some(e)) if e.is_enabled() && e.tenant == task.tenant => e,
        // Deleted or disabled since: nothing to send.
        Ok(_) => return true,
        Err(e) => {
            log::error_because("could_not_read_a_webhook_endpoint", &e);
            return false;
        }
    };
    let attempt = task.attempt.saturating_add(1);
    let started = now_ms();
    let headers = signing::headers(
        &endpoint.signing_secrets(started),
        &task.event_id,
        started / 1000,
        task.payload.as_bytes(),
    );
    // The policy as it stands now: the setting may have changed since the
    // endpoint was created.
    let answer = match url_policy::check(&endpoint.url, settings.allow_local_urls) {
        Ok(_) => {
            post(
                &endpoint.url,
                &headers,
                &task.payload,
                settings.timeout_seconds,
            )
            .await
        }
        Err(refused) => Answer::Refused(refused.message),
    };
    let done = now_ms();
    let verdict = verdict(&answer, attempt, &settings.schedule);
    let record = AttemptRecord {
        task,
        attempt,
        at_ms: started,
        status_code: answer.status_code(),
        outcome: verdict.as_str(),
        delivery_state: verdict.delivery_state(),
        error: answer.error(),
        duration_ms: done.saturating_sub(started),
        next_attempt_at_ms: verdict.next_attempt_at_ms(done),
    };
    if let Verdict::Retry { delay_seconds } = verdict {
        // Queued before it is recorded: a retry is never recorded without
        // the message that carries it.
        let sealed = vec![task.next().seal(secrets)];
        if let Err(e) = queue_writer::send_webhook_tasks(env, sealed, Some(delay_seconds)).await {
            log::warn_because("could_not_queue_a_webhook_retry", &e);
            return false;
        }
    }
    if let Err(e) = db.record_webhook_attempt(&record).await {
        log::error_because("could_not_record_a_webhook_attempt", &e);
        // The retry (if any) is on the queue already; asking for this one
        // again would double it.
        return matches!(verdict, Verdict::Retry { .. });
    }
    if verdict == Verdict::Disable
        && let Err(e) = db
            .disable_endpoint(&endpoint.id, DISABLED_BY_GONE, done)
            .await
    {
        log::error_because("could_not_disable_a_webhook_endpoint", &e);
    }
    true
}

/// POSTs the body, waiting at most `timeout_seconds`; redirects are not followed.
async fn post(
    url: &str,
    headers: &[(&'static str, String)],
    body: &str,
    timeout_seconds: u32,
) -> Answer {
    let request = match build_request(url, headers, body) {
        Ok(r) => r,
        Err(e) => return Answer::Network(e.to_string()),
    };
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    let sending = fetch.send_with_signal(&signal);
    let timer = Delay::from(Duration::from_secs(u64::from(timeout_seconds)));
    match select(Box::pin(sending), Box::pin(timer)).await {
        Either::Left((Ok(resp), _)) => Answer::Status(resp.status_code()),
        Either::Left((Err(e), _)) => Answer::Network(e.to_string()),
        Either::Right(_) => {
            controller.abort();
            Answer::Timeout
        }
    }
}

fn build_request(
    url: &str,
    headers: &[(&'static str, String)],
    body: &str,
) -> worker::Result<Request> {
    let h = Headers::new();
    for (name, value) in headers {
        h.set(name, value)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(h)
        .with_body(Some(body.into()))
        .with_redirect(RequestRedirect::Manual);
    Request::new_with_init(url, &init)
}
