//! The one place that writes to the queues: jobs (now or delayed), dead
//! letters, webhook tasks and, when bound, events. Every other edge file
//! sends through here, so every job, dead letter and webhook task edgerelay
//! writes is sealed under `QUEUE_SECRET` (see `queue::seal`): the consumers
//! refuse whatever is not.
//!
//! Must not: decide what to send or when; the core builds the bodies and
//! says the delay.

use worker::{Env, MessageBuilder};

use crate::delivery::outage::FromQueue;
use crate::events::log_line::LogValue;
use crate::queue::{DeadLetter, QueueBody};

use super::log;
use super::platform::{DEAD_LETTER_QUEUE, EVENTS_QUEUE, JOBS_QUEUE, WEBHOOKS_QUEUE, load};

/// A body's sealed text. Without readable settings nothing can be sealed:
/// the error names the setting at fault, never a value.
fn sealed(env: &Env, body: &QueueBody) -> worker::Result<String> {
    let loaded = load(env).map_err(|e| worker::Error::RustError(e.to_string()))?;
    Ok(body.to_wire(&loaded.settings.queue_secrets))
}

/// Sends a body to the jobs queue, delivered after `delay` seconds if given.
pub async fn send_job(env: &Env, body: &QueueBody, delay: Option<u32>) -> worker::Result<()> {
    let mut message = MessageBuilder::new(sealed(env, body)?);
    if let Some(seconds) = delay {
        message = message.delay_seconds(seconds);
    }
    env.queue(JOBS_QUEUE)?.send(message.build()).await
}

/// Sends a queue body's text again, unchanged, to the queue it came from,
/// after `delay` seconds: storage trouble (see `delivery::outage`). The text
/// goes as it came, so nothing in it needs reading, checking or signing.
pub async fn resend(env: &Env, queue: FromQueue, text: &str, delay: u32) -> worker::Result<()> {
    let binding = match queue {
        FromQueue::Jobs => JOBS_QUEUE,
        FromQueue::DeadLetters => DEAD_LETTER_QUEUE,
    };
    let message = MessageBuilder::new(text.to_string())
        .delay_seconds(delay)
        .build();
    env.queue(binding)?.send(message).await
}

/// Sends a dead letter. Best effort: a failure is logged, and the message's
/// record already says how it ended.
pub async fn dead_letter(env: &Env, letter: DeadLetter) {
    let reason = letter.reason.clone();
    if let Err(e) = send_dead_letter(env, letter).await {
        log::error(
            "could_not_dead_letter_a_message",
            &[
                ("reason", LogValue::Text(&reason.to_string())),
                ("error", LogValue::Text(&e.to_string())),
            ],
        );
    }
}

/// Sends a dead letter, saying whether it went.
pub async fn send_dead_letter(env: &Env, letter: DeadLetter) -> worker::Result<()> {
    let text = sealed(env, &QueueBody::letter(letter))?;
    env.queue(DEAD_LETTER_QUEUE)?
        .send(MessageBuilder::new(text).build())
        .await
}

/// Sends sealed webhook tasks (`events::webhooks::WebhookTask::seal`) to the
/// webhooks queue, in order, delivered after `delay` seconds if given. At
/// most 100 at once (the queue's batch limit).
pub async fn send_webhook_tasks(
    env: &Env,
    sealed: Vec<String>,
    delay: Option<u32>,
) -> worker::Result<()> {
    let messages: Vec<_> = sealed
        .into_iter()
        .map(|text| {
            let message = MessageBuilder::new(text);
            match delay {
                Some(seconds) => message.delay_seconds(seconds).build(),
                None => message.build(),
            }
        })
        .collect();
    env.queue(WEBHOOKS_QUEUE)?.send_batch(messages).await
}

/// Sends event payloads to the optional `EVENTS` queue; nothing to do when
/// it is not bound.
pub async fn send_events(env: &Env, payloads: Vec<String>) -> worker::Result<()> {
    let Ok(queue) = env.queue(EVENTS_QUEUE) else {
        return Ok(());
    };
    if payloads.is_empty() {
        return Ok(());
    }
    let messages: Vec<_> = payloads
        .into_iter()
        .map(|p| MessageBuilder::new(p).build())
        .collect();
    queue.send_batch(messages).await
}
