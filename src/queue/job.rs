//! Queue message formats: delivery jobs, producers' sends and dead letters,
//! and the queue's own limits (largest body, longest delay).
//!
//! Every body carries `"v": 1` and a `"type"`, so the format can change without
//! a flag day: a body of a version this build does not know is refused with
//! that reason (and dead-lettered, see `delivery::dispatch`), never guessed at.
//! Jobs and dead letters are edgerelay's own: they travel sealed (see
//! [`super::seal`]), and one whose seal does not open is refused as forged.
//! Must not: decide what becomes of a body, or perform I/O.

use serde::{Deserialize, Serialize};

use crate::message::Tag;

use super::seal::{Purpose, QueueSecrets, SEAL_LEN};

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
    /// The tenant the message belongs to (see [`DeliveryJob::tenant`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tenant: String,
    /// The message stream; `None` is `transactional`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// The topic within the stream, for per-topic unsubscribes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// The Subject header, for event payloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The From header's address, for event payloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The signed envelope id (`inbound::envelope_id`) sent as `ENVID` to a
    /// server that offers DSN. A job written before it existed has none and
    /// sends none: its bare id would prove nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envid: Option<String>,
    /// The sender asked for proof of delivery: success notifications too
    /// (`NOTIFY=SUCCESS,FAILURE,DELAY`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notify_delivery: bool,
    /// The message's stream is of the marketing kind: the reputation guard
    /// holds it while the tenant's marketing is paused (`events::reputation`).
    /// A job written before it existed reads `false` and is judged by its
    /// stream's name ([`DeliveryJob::is_marketing`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub marketing: bool,
}

/// The stream a message belongs to when it names none.
pub const DEFAULT_STREAM: &str = "transactional";

/// The built-in marketing stream.
pub const MARKETING_STREAM: &str = "marketing";

impl DeliveryJob {
    /// The tenant the message belongs to: its `tenant`, or (for a job
    /// written before tenants existed) the key that sent it.
    pub fn tenant(&self) -> &str {
        if self.tenant.is_empty() {
            &self.key_id
        } else {
            &self.tenant
        }
    }

    /// The message stream: `transactional` unless it names another.
    pub fn stream(&self) -> &str {
        self.stream.as_deref().unwrap_or(DEFAULT_STREAM)
    }

    /// Marketing mail: a marketing-kind stream (the built-in `marketing`
    /// or a key's named stream of that kind).
    pub fn is_marketing(&self) -> bool {
        self.marketing || self.stream() == MARKETING_STREAM
    }
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
///
/// On the wire (see [`QueueBody::to_wire`]), the bodies edgerelay writes for
/// itself carry their content as a JSON string beside its seal:
/// `{"v": 1, "type": "deliver", "job": "<the job's JSON text>", "seal": "v1:..."}`
/// and `{"v": 1, "type": "dead_letter", "letter": "<JSON text>", "seal": "v1:..."}`.
/// A producer's `send` is a plain object; it proves its producer with a token
/// instead (see `accept::producer`).
#[derive(Debug, Clone, PartialEq, Eq)]
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
        /// The producer's secret token, the proof of `producer`.
        token: Option<String>,
        message: serde_json::Value,
    },
}

/// The one version this build writes and reads.
pub const QUEUE_FORMAT_VERSION: u32 = 1;

/// Why a queue body is not one this build takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// Not JSON, an unknown version or type, or a malformed body.
    Malformed(String),
    /// A `deliver` or `dead_letter` body without a valid seal: edgerelay did
    /// not write it. `claimed_id` is the message id it names, when it names
    /// a plausible one (to note the refusal on that message).
    Unsealed {
        reason: String,
        claimed_id: Option<String>,
    },
}

impl Unreadable {
    pub fn reason(&self) -> &str {
        match self {
            Unreadable::Malformed(reason) | Unreadable::Unsealed { reason, .. } => reason,
        }
    }
}

/// A producer's body as it is read.
#[derive(Deserialize)]
struct SendWire {
    #[serde(rename = "v")]
    _v: u32,
    #[serde(rename = "type")]
    _kind: String,
    producer: String,
    #[serde(default)]
    token: Option<String>,
    message: serde_json::Value,
}

/// A producer's body as it is written (by tests and tools; producers write their own).
#[derive(Serialize)]
struct SendWireOut<'a> {
    v: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    producer: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
    message: &'a serde_json::Value,
}

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

    /// The body as it goes on a queue: jobs and dead letters sealed under
    /// the first of `secrets`.
    pub fn to_wire(&self, secrets: &QueueSecrets) -> String {
        match self {
            QueueBody::Deliver { job, .. } => {
                let text = to_json_text(job);
                let seal = secrets.seal(Purpose::Deliver, &text);
                sealed_wire("deliver", "job", text, seal)
            }
            QueueBody::DeadLetter { letter, .. } => {
                let text = to_json_text(letter);
                let seal = secrets.seal(Purpose::DeadLetter, &text);
                sealed_wire("dead_letter", "letter", text, seal)
            }
            QueueBody::Send {
                producer,
                token,
                message,
                ..
            } => to_json_text(&SendWireOut {
                v: QUEUE_FORMAT_VERSION,
                kind: "send",
                producer,
                token: token.as_deref(),
                message,
            }),
        }
    }

    /// Length in bytes of a job's queue body, seal included (every seal
    /// has the same length, so none is computed).
    pub fn deliver_wire_len(job: &DeliveryJob) -> usize {
        let placeholder = "0".repeat(SEAL_LEN);
        sealed_wire("deliver", "job", to_json_text(job), placeholder).len()
    }

    /// Reads a body from its text. A `deliver` or `dead_letter` body must
    /// carry a seal that one of `secrets` opens over its exact text.
    pub fn from_wire(text: &str, secrets: &QueueSecrets) -> Result<Self, Unreadable> {
        let malformed = |reason: String| Unreadable::Malformed(reason);
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| malformed(format!("queue body is not JSON: {e}")))?;
        match value.get("v").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(QUEUE_FORMAT_VERSION) => {}
            Some(v) => {
                return Err(malformed(format!(
                    "queue body version {v} is not supported (this build reads 1)"
                )));
            }
            None => return Err(malformed("queue body has no version field `v`".into())),
        }
        let invalid =
            |e: serde_json::Error| malformed(format!("queue body is not a valid message: {e}"));
        match value.get("type").and_then(serde_json::Value::as_str) {
            Some("deliver") => {
                let text = opened(&value, "job", Purpose::Deliver, secrets)?;
                let job = serde_json::from_str(text).map_err(invalid)?;
                Ok(QueueBody::deliver(job))
            }
            Some("dead_letter") => {
                let text = opened(&value, "letter", Purpose::DeadLetter, secrets)?;
                let letter = serde_json::from_str(text).map_err(invalid)?;
                Ok(QueueBody::letter(letter))
            }
            Some("send") => {
                let send: SendWire = serde_json::from_value(value).map_err(invalid)?;
                Ok(QueueBody::Send {
                    v: QUEUE_FORMAT_VERSION,
                    producer: send.producer,
                    token: send.token,
                    message: send.message,
                })
            }
            Some(other) => {
                let shown: String = other.chars().take(32).collect();
                Err(malformed(format!(
                    "queue body is not a valid message: unknown type `{shown}`"
                )))
            }
            None => Err(malformed(
                "queue body is not a valid message: no `type`".into(),
            )),
        }
    }
}

/// A body as it may be kept in a dead letter: its token replaced,
/// so no secret waits in a queue. A body that is not a JSON object is kept
/// as it is (it has no token field to hide).
pub fn without_token(text: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(mut body)) if body.contains_key("token") => {
            body.insert("token".into(), "(removed)".into());
            serde_json::Value::Object(body).to_string()
        }
        _ => text.to_string(),
    }
}

/// A struct of strings, numbers and lists always serialises.
fn to_json_text(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn sealed_wire(kind: &str, field: &str, text: String, seal: String) -> String {
    let mut body = serde_json::Map::new();
    body.insert("v".into(), QUEUE_FORMAT_VERSION.into());
    body.insert("type".into(), kind.into());
    body.insert(field.into(), text.into());
    body.insert("seal".into(), seal.into());
    serde_json::Value::Object(body).to_string()
}

/// The sealed text in `field`, once its seal opens.
fn opened<'a>(
    body: &'a serde_json::Value,
    field: &str,
    purpose: Purpose,
    secrets: &QueueSecrets,
) -> Result<&'a str, Unreadable> {
    let content = body.get(field);
    let claimed_id = content.and_then(claimed_id);
    let refuse = |why: String| Unreadable::Unsealed {
        reason: why,
        claimed_id: claimed_id.clone(),
    };
    let kind = match purpose {
        Purpose::Deliver => "job",
        Purpose::DeadLetter => "dead letter",
        Purpose::Webhook => "webhook task",
    };
    let Some(text) = content.and_then(serde_json::Value::as_str) else {
        return Err(refuse(format!(
            "forged {kind} refused: it is not sealed (`{field}` must be the sealed JSON text)"
        )));
    };
    let seal = body.get("seal").and_then(serde_json::Value::as_str);
    secrets
        .open(purpose, text, seal)
        .map_err(|e| refuse(format!("forged {kind} refused: {e}")))?;
    Ok(text)
}

/// The message id a body's content names (`id`, or a dead letter's job's or
/// `message_id`), when it looks like one of edgerelay's ids: nothing else is
/// worth a lookup.
fn claimed_id(content: &serde_json::Value) -> Option<String> {
    let parsed;
    let object = match content {
        serde_json::Value::String(text) => {
            parsed = serde_json::from_str::<serde_json::Value>(text).ok()?;
            &parsed
        }
        other => other,
    };
    let id = object
        .get("id")
        .or_else(|| object.get("job").and_then(|j| j.get("id")))
        .or_else(|| object.get("message_id"))
        .and_then(serde_json::Value::as_str)?;
    let plausible = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    plausible.then(|| id.to_string())
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
            tenant: String::new(),
            stream: None,
            topic: None,
            subject: None,
            from: None,
            envid: None,
            notify_delivery: false,
            marketing: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::seal::tests::secrets;

    fn job() -> DeliveryJob {
        DeliveryJob::sample("msg_1", "Subject: hi\r\n\r\nbody\r\n")
    }

    fn read(text: &str) -> Result<QueueBody, Unreadable> {
        QueueBody::from_wire(text, &secrets())
    }

    #[test]
    fn round_trips_sealed() {
        let body = QueueBody::deliver(job());
        let wire = body.to_wire(&secrets());
        let outer: serde_json::Value = serde_json::from_str(&wire).unwrap();
        assert_eq!(outer["type"], "deliver");
        assert_eq!(outer["v"], 1);
        // The job travels as its exact JSON text, beside the seal.
        assert!(
            outer["job"]
                .as_str()
                .unwrap()
                .starts_with(r#"{"id":"msg_1""#)
        );
        assert!(outer["seal"].as_str().unwrap().starts_with("v1:"));
        assert_eq!(wire.len(), QueueBody::deliver_wire_len(&job()));
        assert_eq!(read(&wire).unwrap(), body);
        let dl = QueueBody::dead_letter("550 no such user", Some(job()), None);
        assert_eq!(read(&dl.to_wire(&secrets())).unwrap(), dl);
        // The outer object may be re-serialised (keys reordered, spaced):
        // the sealed text inside it is a string, and stays exact.
        let reordered = serde_json::json!({
            "seal": outer["seal"], "job": outer["job"], "type": "deliver", "v": 1
        });
        assert_eq!(read(&format!("{reordered:#}")).unwrap(), body);
    }

    #[test]
    fn reads_a_producer_send() {
        let body = r#"{"v":1,"type":"send","producer":"billing","token":"t0k",
            "message":{"from":"a@example.com","to":"b@example.org","subject":"s","text":"t"}}"#;
        match read(body).unwrap() {
            QueueBody::Send {
                producer,
                token,
                message,
                ..
            } => {
                assert_eq!(producer, "billing");
                assert_eq!(token.as_deref(), Some("t0k"));
                assert_eq!(message["to"], "b@example.org");
            }
            other => panic!("{other:?}"),
        }
        let written = QueueBody::Send {
            v: 1,
            producer: "billing".into(),
            token: None,
            message: serde_json::json!({"to": "b@example.org"}),
        };
        assert_eq!(read(&written.to_wire(&secrets())).unwrap(), written);
    }

    #[test]
    fn rejects_with_reasons() {
        let table = [
            ("not json", "not JSON"),
            (r#"{"type":"deliver"}"#, "no version"),
            (r#"{"v":2,"type":"deliver"}"#, "version 2"),
            (r#"{"v":1,"type":"teleport"}"#, "unknown type `teleport`"),
            (r#"{"v":1}"#, "no `type`"),
            (r#"{"v":1,"type":"send","message":{}}"#, "producer"),
        ];
        for (input, needle) in table {
            let e = read(input).unwrap_err();
            assert!(matches!(e, Unreadable::Malformed(_)), "{input}: {e:?}");
            assert!(e.reason().contains(needle), "{input}: {e:?}");
        }
        // Sealed, but not a job this build reads.
        let text = r#"{"id":"x"}"#;
        let seal = secrets().seal(Purpose::Deliver, text);
        let body = sealed_wire("deliver", "job", text.into(), seal);
        let e = read(&body).unwrap_err();
        assert!(e.reason().contains("not a valid message"), "{e:?}");
        let mut j: serde_json::Value = serde_json::to_value(job()).unwrap();
        j["smuggled"] = serde_json::json!(true);
        let text = j.to_string();
        let seal = secrets().seal(Purpose::Deliver, &text);
        assert!(read(&sealed_wire("deliver", "job", text, seal)).is_err());
    }

    #[test]
    fn unsealed_bodies_are_refused_as_forged() {
        let wire = QueueBody::deliver(job()).to_wire(&secrets());
        let mut outer: serde_json::Value = serde_json::from_str(&wire).unwrap();
        let job_text = outer["job"].as_str().unwrap().to_string();
        let job_object: serde_json::Value = serde_json::from_str(&job_text).unwrap();
        let other = QueueSecrets::parse(&"o".repeat(40)).unwrap();
        let with = |field: &str, value: serde_json::Value| {
            let mut b = outer.clone();
            b[field] = value;
            b.to_string()
        };
        let without_seal = {
            let mut b = outer.clone();
            b.as_object_mut().unwrap().remove("seal");
            b.to_string()
        };
        let tampered = job_text.replace("a@example.com", "ceo@example.com");
        let letter = QueueBody::dead_letter("x", Some(job()), None).to_wire(&secrets());
        let letter_as_job = {
            let l: serde_json::Value = serde_json::from_str(&letter).unwrap();
            with("job", l["letter"].clone())
                .replace(outer["seal"].as_str().unwrap(), l["seal"].as_str().unwrap())
        };
        // (body, words of the reason, claimed id)
        let table: Vec<(String, &str, Option<&str>)> = vec![
            // The old, plain form: the job as an object, no seal.
            (
                serde_json::json!({"v": 1, "type": "deliver", "job": job_object}).to_string(),
                "not sealed",
                Some("msg_1"),
            ),
            (without_seal, "carries no seal", Some("msg_1")),
            (
                with("job", tampered.into()),
                "does not verify",
                Some("msg_1"),
            ),
            (
                QueueBody::deliver(job()).to_wire(&other),
                "does not verify",
                Some("msg_1"),
            ),
            (with("seal", "v7:00".into()), "version `v7`", Some("msg_1")),
            (with("seal", "v1:00".into()), "malformed", Some("msg_1")),
            (letter_as_job, "does not verify", Some("msg_1")),
            (
                QueueBody::dead_letter("x", Some(job()), None).to_wire(&other),
                "forged dead letter",
                Some("msg_1"),
            ),
            (
                with("job", serde_json::json!({"id": "not an id; DROP"})),
                "not sealed",
                None,
            ),
        ];
        for (body, needle, id) in table {
            match read(&body) {
                Err(Unreadable::Unsealed { reason, claimed_id }) => {
                    assert!(reason.contains(needle), "{body}: {reason}");
                    assert_eq!(claimed_id.as_deref(), id, "{body}");
                }
                other => panic!("{body}: {other:?}"),
            }
        }
        outer["seal"] = serde_json::Value::Null;
        assert!(matches!(
            read(&outer.to_string()),
            Err(Unreadable::Unsealed { .. })
        ));
    }

    #[test]
    fn a_token_never_waits_in_a_dead_letter() {
        const TOKEN: &str = "pt_billing_0123456789abcdef";
        let body = format!(
            r#"{{"v":1,"type":"send","producer":"billing","token":"{TOKEN}","message":{{}}}}"#
        );
        let kept = without_token(&body);
        assert!(!kept.contains(TOKEN), "{kept}");
        assert!(kept.contains(r#""producer":"billing""#), "{kept}");
        assert_eq!(without_token("not json"), "not json");
        let no_token = r#"{"v":1,"type":"send","producer":"billing","message":{}}"#;
        assert_eq!(without_token(no_token), no_token);
    }
}
