//! Queue message formats: delivery jobs, producers' sends and dead letters,
//! and the queue's own limits (largest body, longest delay).
//!
//! Every body carries `"v": 1` and a `"type"`, so the format can change without
//! a flag day: a body of a version this build does not know is refused with
//! that reason (and dead-lettered, see `delivery::dispatch`), never guessed at.
//! Must not: decide what becomes of a body, or perform I/O.

use serde::{Deserialize, Serialize};

use crate::message::Tag;

/// Cloudflare Queues refuse bodies over 128 KB; keep headroom for the envelope.
pub const QUEUE_BODY_LIMIT: usize = 120 * 1024;

/// The longest a queue message may be delayed (12 hours).
pub const QUEUE_MAX_DELAY_SECONDS: u32 = 43_200;

/// A message ready to go: signed MIME plus its envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryJob {
    /// edgerelay's id for the message (what `202 {"id"}` returned).
    pub id: String,
    /// The API key (or producer) that sent it.
    pub key_id: String,
    /// Envelope sender (MAIL FROM).
    pub mail_from: String,
    /// Recipients still to deliver (RCPT TO). Retries carry only the ones left.
    pub rcpt_to: Vec<String>,
    /// The signed message, exactly as it goes on the wire before dot-stuffing.
    pub mime: String,
    /// The message needs SMTPUTF8 (UTF-8 in addresses).
    #[serde(default)]
    pub smtputf8: bool,
    /// When the message was accepted, Unix seconds.
    pub accepted_at: u64,
    /// Delivery attempts made so far.
    #[serde(default)]
    pub attempt: u32,
    /// Set when the signed message was too large for a queue message: the key
    /// of the object in the bodies bucket holding it, and `mime` is empty.
    /// See [`super::body`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_ref: Option<String>,
    /// The caller's tags, carried for delivery events and reports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// The caller's metadata object, carried for delivery events and reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// The safety job of an immediate delivery: enqueued before the request
    /// tries the upstream itself, and delivered only if that attempt left
    /// work to do (see `delivery::immediate`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub safety_net: bool,
}

/// A message that reached the end of the line, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetter {
    pub reason: String,
    /// The job, when the body could be read as one.
    #[serde(default)]
    pub job: Option<DeliveryJob>,
    /// The raw body, when it could not.
    #[serde(default)]
    pub raw: Option<String>,
    /// The message it was recorded as, when there is no job (a producer's
    /// message that failed validation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// Every body edgerelay's queues carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum QueueBody {
    Deliver {
        v: u32,
        job: DeliveryJob,
    },
    DeadLetter {
        v: u32,
        letter: DeadLetter,
    },
    /// From another Worker: a message with the fields of `POST /v1/messages`,
    /// validated and signed by the consumer (see `accept::producer`).
    Send {
        v: u32,
        producer: String,
        message: serde_json::Value,
    },
}

/// The one version this build writes and reads.
pub const QUEUE_FORMAT_VERSION: u32 = 1;

impl QueueBody {
    pub fn deliver(job: DeliveryJob) -> Self {
        QueueBody::Deliver {
            v: QUEUE_FORMAT_VERSION,
            job,
        }
    }

    pub fn dead_letter(
        reason: impl Into<String>,
        job: Option<DeliveryJob>,
        raw: Option<String>,
    ) -> Self {
        QueueBody::letter(DeadLetter {
            reason: reason.into(),
            job,
            raw,
            message_id: None,
        })
    }

    /// A dead letter as the dead-letter queue carries it.
    pub fn letter(letter: DeadLetter) -> Self {
        QueueBody::DeadLetter {
            v: QUEUE_FORMAT_VERSION,
            letter,
        }
    }

    /// Reads a body from its JSON form, naming what is wrong when it cannot.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("queue body is not JSON: {e}"))?;
        match value.get("v").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(QUEUE_FORMAT_VERSION) => {}
            Some(v) => {
                return Err(format!(
                    "queue body version {v} is not supported (this build reads 1)"
                ));
            }
            None => return Err("queue body has no version field `v`".to_string()),
        }
        serde_json::from_value(value).map_err(|e| format!("queue body is not a valid message: {e}"))
    }

    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and lists always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
impl DeliveryJob {
    /// A job from a@example.com to b@example.org, for tests.
    pub(crate) fn sample(id: &str, mime: &str) -> DeliveryJob {
        DeliveryJob {
            id: id.into(),
            key_id: "backend".into(),
            mail_from: "a@example.com".into(),
            rcpt_to: vec!["b@example.org".into()],
            mime: mime.into(),
            smtputf8: false,
            accepted_at: 1_700_000_000,
            attempt: 0,
            body_ref: None,
            tags: Vec::new(),
            metadata: None,
            safety_net: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> DeliveryJob {
        DeliveryJob::sample("msg_1", "Subject: hi\r\n\r\nbody\r\n")
    }

    #[test]
    fn round_trips() {
        let body = QueueBody::deliver(job());
        let json = body.to_json();
        assert!(json.contains(r#""type":"deliver""#));
        assert!(json.contains(r#""v":1"#));
        assert_eq!(QueueBody::from_json(&json).unwrap(), body);
        let dl = QueueBody::dead_letter("550 no such user", Some(job()), None);
        assert_eq!(QueueBody::from_json(&dl.to_json()).unwrap(), dl);
    }

    #[test]
    fn reads_a_producer_send() {
        let body = r#"{"v":1,"type":"send","producer":"billing",
            "message":{"from":"a@example.com","to":"b@example.org","subject":"s","text":"t"}}"#;
        match QueueBody::from_json(body).unwrap() {
            QueueBody::Send {
                producer, message, ..
            } => {
                assert_eq!(producer, "billing");
                assert_eq!(message["to"], "b@example.org");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_with_reasons() {
        let table = [
            ("not json", "not JSON"),
            (r#"{"type":"deliver"}"#, "no version"),
            (r#"{"v":2,"type":"deliver"}"#, "version 2"),
            (r#"{"v":1,"type":"teleport"}"#, "not a valid message"),
            (
                r#"{"v":1,"type":"deliver","job":{"id":"x"}}"#,
                "not a valid message",
            ),
        ];
        for (input, needle) in table {
            let e = QueueBody::from_json(input).unwrap_err();
            assert!(e.contains(needle), "{input}: {e}");
        }
        let e = QueueBody::from_json(r#"{"v":1,"type":"send","message":{}}"#).unwrap_err();
        assert!(e.contains("producer"), "{e}");
        let mut j = serde_json::to_value(QueueBody::deliver(job())).unwrap();
        j["job"]["smuggled"] = serde_json::json!(true);
        assert!(QueueBody::from_json(&j.to_string()).is_err());
    }
}
