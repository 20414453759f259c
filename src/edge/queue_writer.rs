//! The one place that writes to the queues: jobs (now or delayed) and dead
//! letters. Every other edge file sends through here.
//!
//! Must not: decide what to send or when; the core builds the bodies and
//! says the delay.

use worker::{Env, MessageBuilder};

use crate::queue::{DeadLetter, QueueBody};

use super::platform::{DEAD_LETTER_QUEUE, JOBS_QUEUE};

/// Sends a body to the jobs queue, delivered after `delay` seconds if given.
pub async fn send_job(env: &Env, body: &QueueBody, delay: Option<u32>) -> worker::Result<()> {
    let mut message = MessageBuilder::new(body.to_json());
    if let Some(seconds) = delay {
        message = message.delay_seconds(seconds);
    }
    env.queue(JOBS_QUEUE)?.send(message.build()).await
}

/// Sends a dead letter. Best effort: a failure is logged, and the message's
/// record already says how it ended.
pub async fn dead_letter(env: &Env, letter: DeadLetter) {
    let reason = letter.reason.clone();
    let body = QueueBody::letter(letter);
    let sent = match env.queue(DEAD_LETTER_QUEUE) {
        Ok(q) => q.send(MessageBuilder::new(body.to_json()).build()).await,
        Err(e) => Err(e),
    };
    if let Err(e) = sent {
        worker::console_error!("edgerelay: could not dead-letter a message ({reason}): {e}");
    }
}
