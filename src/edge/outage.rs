//! The edge side of storage trouble: a queue message in hand with its body's
//! text, and what becomes of it when the settings, D1 or R2 fail
//! (`delivery::outage` decides; this sends the text again, acknowledges,
//! or falls back to the platform's retry).
//!
//! Must not: decide delays or when to give up, or change the body's text.

use worker::{Env, MessageExt, QueueRetryOptionsBuilder, RawMessage};

use crate::delivery::outage::{
    FromQueue, OutageStep, Trouble, after_trouble, age_seconds, give_up_letter,
};
use crate::events::log_line::LogValue;

use crate::queue::QueueSecrets;

use super::log;
use super::platform::now_ms;
use super::{queue_writer, random};

/// A queue message being handled, with its body's text as it arrived.
pub struct InHand {
    pub raw: RawMessage,
    pub text: String,
}

impl InHand {
    /// Reads the body's text: producers may send a JSON string or an object.
    pub fn new(raw: RawMessage) -> InHand {
        let v = raw.body();
        let text = match v.as_string() {
            Some(s) => s,
            None => js_sys::JSON::stringify(&v)
                .ok()
                .and_then(|s| s.as_string())
                .unwrap_or_default(),
        };
        InHand { raw, text }
    }
}

/// Where the consumer is: which queue, and the lifetime messages have.
#[derive(Debug, Clone, Copy)]
pub struct Outage<'a> {
    pub queue: FromQueue,
    pub lifetime_seconds: u64,
    /// The queue secrets, when the settings could be read: only a body
    /// sealed under them has a trustworthy age or job.
    pub secrets: Option<&'a QueueSecrets>,
}

impl Outage<'_> {
    /// The message could not be handled because of `trouble`: send its text
    /// again after a delay and acknowledge it, or give it up once its
    /// lifetime is over. If the send fails, the platform redelivers it after
    /// the same delay instead.
    pub async fn meet(&self, env: &Env, message: &InHand, trouble: Trouble) {
        let age = age_seconds(&message.text, self.secrets, now_ms() / 1000);
        let step = after_trouble(
            trouble,
            self.queue,
            age,
            self.lifetime_seconds,
            random::unit(),
        );
        let retry_after = match step {
            OutageStep::Requeue { delay_seconds } => {
                match queue_writer::resend(env, self.queue, &message.text, delay_seconds).await {
                    Ok(()) => {
                        log::warn(
                            "message_retried_later",
                            &[
                                ("trouble", LogValue::Text(trouble.as_str())),
                                ("delay_seconds", LogValue::Num(u64::from(delay_seconds))),
                            ],
                        );
                        return message.raw.ack();
                    }
                    Err(e) => {
                        log::error_because("could_not_send_a_message_again", &e);
                        delay_seconds
                    }
                }
            }
            OutageStep::GiveUp(reason) => {
                log::error(
                    "message_given_up",
                    &[("reason", LogValue::Text(&reason.to_string()))],
                );
                match queue_writer::send_dead_letter(
                    env,
                    give_up_letter(&message.text, self.secrets, reason),
                )
                .await
                {
                    Ok(()) => return message.raw.ack(),
                    Err(e) => {
                        log::error_because("could_not_dead_letter_a_message", &e);
                        0
                    }
                }
            }
        };
        message.raw.retry_with_options(
            &QueueRetryOptionsBuilder::new()
                .with_delay_seconds(retry_after)
                .build(),
        );
    }
}
