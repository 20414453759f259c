//! What the queue consumer does with each queue message, decided once from
//! its body: on the jobs queue, deliver a job, take in a producer's message,
//! or dead-letter what cannot be delivered; on the dead-letter queue, note
//! the end on the message's record. A dead letter found on the jobs queue is
//! noted where it is, never sent on (see [`JobsItem::MisroutedDeadLetter`]).
//!
//! Any Worker of the account can write to the queues, so a job is delivered
//! only if it is edgerelay's own: sealed (`queue::seal`), naming its own
//! body (`body_ref` is exactly the key its id gives), and matching the
//! message stored when it was accepted (same key and MAIL FROM, recipients
//! among the stored ones). Anything else is refused as forged: nothing is
//! sent, the refusal is noted on the message it names (its status is left
//! alone), and the body is dead-lettered with the reason. A dead letter
//! is acted on (a record, a body deleted) only if it is sealed too.
//! Must not: perform I/O; the edge reads the body's text and runs the action.

use crate::queue::body::body_key;
use crate::queue::job::without_token;
use crate::queue::{
    DeadLetter, DeliveryJob, EventKind, MessageStatus, QueueBody, QueueSecrets, Unreadable,
};

/// What to do with one message of the jobs queue.
#[derive(Debug, Clone, PartialEq)]
pub enum JobsItem {
    /// A sealed job: check it against its stored message
    /// ([`screen_against_record`]), then deliver it (recipients already
    /// recorded are skipped later).
    Deliver(DeliveryJob),
    /// Another Worker's message: prove its producer and accept it like an
    /// API request first.
    ProducerSend {
        producer: String,
        token: Option<String>,
        message: serde_json::Value,
    },
    /// Cannot be delivered: send this to the dead-letter queue and acknowledge.
    Refuse(DeadLetter),
    /// Not edgerelay's own job: see [`Forgery`].
    Forged(Forgery),
    /// A dead letter on what edgerelay takes for its jobs queue: the queue
    /// is really the dead-letter queue and `DEAD_LETTER_QUEUE_NAME` does not
    /// name it. Sending it on to the dead-letter queue would bring it back
    /// here, forever; instead it is recorded here once, as the dead-letter
    /// consumer would have, and acknowledged, with [`MISROUTED_DEAD_LETTER`]
    /// in the log.
    MisroutedDeadLetter(DeadLetterItem),
}

/// A job refused as not edgerelay's own. Send nothing; note the refusal (a
/// [`EventKind::ForgedJobRefused`] event with the letter's reason) on
/// `claimed_id` if such a message exists, without changing its status;
/// dead-letter `letter` and acknowledge. The letter never carries a job or
/// a message id, so the dead-letter consumer acts on none of its claims.
#[derive(Debug, Clone, PartialEq)]
pub struct Forgery {
    pub claimed_id: Option<String>,
    pub letter: DeadLetter,
}

/// The log line for a dead letter that arrived on the jobs queue. It names
/// the setting, never its value or the queues' names.
pub const MISROUTED_DEAD_LETTER: &str = "a dead letter arrived on a queue consumed as the jobs \
     queue: DEAD_LETTER_QUEUE_NAME does not name the queue that `dead_letter_queue` points at in \
     wrangler.toml; it was recorded here and acknowledged, not sent on again";

/// Classifies a jobs-queue body (its JSON text).
pub fn jobs_item(text: &str, secrets: &QueueSecrets) -> JobsItem {
    let refuse = |reason: String| {
        JobsItem::Refuse(DeadLetter {
            reason,
            job: None,
            // A producer's token never waits in a queue.
            raw: Some(without_token(text)),
            message_id: None,
        })
    };
    match QueueBody::from_wire(text, secrets) {
        Ok(QueueBody::Deliver { job, .. }) => match own_body(&job) {
            Ok(()) => JobsItem::Deliver(job),
            Err(reason) => JobsItem::Forged(forged(Some(job.id), reason, Some(text))),
        },
        Ok(QueueBody::Send {
            producer,
            token,
            message,
            ..
        }) => JobsItem::ProducerSend {
            producer,
            token,
            message,
        },
        // Sealed, so edgerelay wrote it: the dead-letter queue is consumed
        // under the jobs queue's name.
        Ok(QueueBody::DeadLetter { .. }) => {
            JobsItem::MisroutedDeadLetter(dead_letter_item(text, secrets))
        }
        Err(Unreadable::Unsealed { reason, claimed_id }) => {
            JobsItem::Forged(forged(claimed_id, reason, Some(text)))
        }
        Err(Unreadable::Malformed(reason)) => refuse(reason),
    }
}

/// The most of a forged body its dead letter keeps: enough to see what it
/// was, while the dead letter stays well within a queue message.
const FORGED_RAW_KEPT: usize = 16 * 1024;

fn forged(claimed_id: Option<String>, reason: String, raw: Option<&str>) -> Forgery {
    let kept = raw.map(|text| {
        if text.len() <= FORGED_RAW_KEPT {
            return text.to_string();
        }
        let mut end = FORGED_RAW_KEPT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}... ({} bytes in all)", &text[..end], text.len())
    });
    Forgery {
        claimed_id,
        letter: DeadLetter {
            reason,
            job: None,
            raw: kept,
            message_id: None,
        },
    }
}

/// A job's body, if kept in the bucket, must be the one its own id names:
/// no job may fetch (or, when it ends, delete) another message's body.
fn own_body(job: &DeliveryJob) -> Result<(), String> {
    match &job.body_ref {
        Some(key) if *key != body_key(&job.id) => Err(format!(
            "job for message `{}` refused: its body_ref is not the key of its own body",
            job.id
        )),
        _ => Ok(()),
    }
}

/// A message's envelope as stored when it was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEnvelope {
    pub key_id: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
}

/// Checks a sealed job against its stored message: the job is delivered
/// only if the message exists with the same key and MAIL FROM, and every
/// recipient of the job is one of the message's. Anything else is refused
/// as forged (a stolen secret, or a job whose message was removed when its
/// enqueue was reported failed).
pub fn screen_against_record(
    job: DeliveryJob,
    stored: Option<&StoredEnvelope>,
) -> Result<DeliveryJob, Box<Forgery>> {
    let mismatch = match stored {
        None => Some("no message with its id is stored".to_string()),
        Some(row) if row.key_id != job.key_id => Some("its key is not the message's".into()),
        Some(row) if row.mail_from != job.mail_from => {
            Some("its MAIL FROM is not the message's".into())
        }
        Some(row) if job.rcpt_to.iter().any(|r| !row.rcpt_to.contains(r)) => {
            Some("it names recipients the message does not have".into())
        }
        Some(_) => None,
    };
    match mismatch {
        None => Ok(job),
        Some(why) => {
            let reason = format!(
                "job for message `{}` refused: {why} (it does not match the stored message)",
                job.id
            );
            Err(Box::new(forged(Some(job.id), reason, None)))
        }
    }
}

/// What to do with one message of the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterItem {
    /// Note the end on the message's record: a `dead_lettered` event with
    /// this detail and, when `status` is set, the message's new status. Then
    /// delete the stored body, if any, and acknowledge; if the record cannot
    /// be written, ask for the queue message again later.
    Record {
        message_id: String,
        kind: EventKind,
        detail: String,
        status: Option<MessageStatus>,
        release_body: Option<String>,
    },
    /// A job ended here: settle its message from the recipients' recorded
    /// states (`settle::dead_lettered`), never forcing `failed` on a
    /// recipient recorded delivered or unknown.
    Settle {
        job: Box<DeliveryJob>,
        reason: String,
    },
    /// No message to note it on: log this line and acknowledge.
    Note(String),
}

/// Classifies a dead-letter-queue body (its JSON text). Only sealed bodies
/// are recorded; an unsealed one is only logged, so no other Worker can
/// fail a message or delete its body through this queue.
pub fn dead_letter_item(text: &str, secrets: &QueueSecrets) -> DeadLetterItem {
    let record = |job_id: &str, detail: &str, status, body_ref: Option<&String>| {
        DeadLetterItem::Record {
            message_id: job_id.to_string(),
            kind: EventKind::DeadLettered,
            detail: detail.to_string(),
            status,
            // Only the message's own body: see `own_body`.
            release_body: body_ref.filter(|key| **key == body_key(job_id)).cloned(),
        }
    };
    // A job's message is settled; the body released is only its own.
    let settle = |mut job: DeliveryJob, reason: &str| {
        if job.body_ref.as_deref() != Some(body_key(&job.id).as_str()) {
            job.body_ref = None;
        }
        DeadLetterItem::Settle {
            job: Box::new(job),
            reason: reason.to_string(),
        }
    };
    match QueueBody::from_wire(text, secrets) {
        Ok(QueueBody::DeadLetter { letter, .. }) => match (&letter.job, &letter.message_id) {
            (Some(job), _) => settle(job.clone(), &letter.reason),
            (None, Some(id)) => record(id, &letter.reason, None, None),
            (None, None) => {
                DeadLetterItem::Note(format!("dead letter without a job: {}", letter.reason))
            }
        },
        Ok(QueueBody::Send { producer, .. }) => DeadLetterItem::Note(format!(
            "a message from producer `{producer}` was dead-lettered by the platform"
        )),
        // Moved here by the platform after repeated crashes of the consumer.
        Ok(QueueBody::Deliver { job, .. }) => {
            settle(job, "delivery failed repeatedly without a recorded outcome")
        }
        Err(Unreadable::Unsealed { reason, .. }) => {
            DeadLetterItem::Note(format!("unsealed dead letter ignored: {reason}"))
        }
        Err(Unreadable::Malformed(reason)) => {
            DeadLetterItem::Note(format!("unreadable dead letter: {reason}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::seal::tests::secrets;

    fn job(body_ref: Option<&str>) -> DeliveryJob {
        DeliveryJob {
            attempt: 2,
            body_ref: body_ref.map(str::to_string),
            ..DeliveryJob::sample("m1", "")
        }
    }

    fn wire(body: QueueBody) -> String {
        body.to_wire(&secrets())
    }

    /// A short name for what `jobs_item` decided, and the checks every
    /// decision must pass.
    fn decided(body: &str, item: JobsItem, reason: &str) -> String {
        match item {
            JobsItem::Deliver(j) => format!("deliver {}", j.id),
            JobsItem::ProducerSend {
                producer,
                token,
                message,
            } => {
                assert_eq!(message["to"], "b@example.org");
                format!("send from {producer} with {token:?}")
            }
            JobsItem::Refuse(letter) => {
                assert!(letter.reason.contains(reason), "{body}: {}", letter.reason);
                assert_eq!((letter.job, letter.message_id), (None, None));
                let raw = letter.raw.unwrap_or_default();
                if body.contains("pt_secret") {
                    // A token is removed from the body it keeps.
                    assert!(
                        !raw.contains("pt_secret") && raw.contains("(removed)"),
                        "{raw}"
                    );
                    return "refuse without token".into();
                }
                // The body travels whole, so nothing is lost.
                assert_eq!(raw, body);
                "refuse".into()
            }
            JobsItem::Forged(Forgery { claimed_id, letter }) => {
                assert!(letter.reason.contains(reason), "{body}: {}", letter.reason);
                // A forged letter never carries a job or a message id: the
                // dead-letter consumer must not act on its claims.
                assert_eq!((letter.job, letter.message_id), (None, None));
                format!("forged {}", claimed_id.unwrap_or_default())
            }
            JobsItem::MisroutedDeadLetter(DeadLetterItem::Settle { job, .. }) => format!(
                "settle {} releasing {}",
                job.id,
                job.body_ref.unwrap_or_default()
            ),
            JobsItem::MisroutedDeadLetter(DeadLetterItem::Record {
                message_id,
                status,
                release_body,
                ..
            }) => {
                assert_eq!(status, None, "a dead letter never changes the status");
                format!(
                    "record {message_id} releasing {}",
                    release_body.unwrap_or_default()
                )
            }
            JobsItem::MisroutedDeadLetter(DeadLetterItem::Note(text)) => format!("note {text}"),
        }
    }

    #[test]
    fn jobs_queue_table() {
        let deliver = wire(QueueBody::deliver(job(None)));
        let own_body = wire(QueueBody::deliver(job(Some("bodies/m1.eml"))));
        let other_body = wire(QueueBody::deliver(job(Some("bodies/victim.eml"))));
        let plain = serde_json::json!({"v": 1, "type": "deliver", "job": job(None)}).to_string();
        let send = r#"{"v":1,"type":"send","producer":"billing","message":{"to":"b@example.org"}}"#;
        let send_token = r#"{"v":1,"type":"send","producer":"billing","token":"t","message":{"to":"b@example.org"}}"#;
        let dead = wire(QueueBody::dead_letter(
            "550",
            Some(job(Some("bodies/m1.eml"))),
            None,
        ));
        let dead_no_job = wire(QueueBody::dead_letter("unreadable", None, Some("x".into())));
        let forged_dead =
            serde_json::json!({"v": 1, "type": "dead_letter", "letter": "{}"}).to_string();
        // (body, what it becomes, words of the dead letter's reason)
        let table: Vec<(&str, &str, &str)> = vec![
            (&deliver, "deliver m1", ""),
            (&own_body, "deliver m1", ""),
            (
                &other_body,
                "forged m1",
                "body_ref is not the key of its own body",
            ),
            (&plain, "forged m1", "forged job refused: it is not sealed"),
            (send, "send from billing with None", ""),
            (send_token, "send from billing with Some(\"t\")", ""),
            // A dead letter here is settled as the dead-letter consumer
            // would, never sent on again.
            (&dead, "settle m1 releasing bodies/m1.eml", ""),
            (&forged_dead, "forged ", "carries no seal"),
            (
                &dead_no_job,
                "note dead letter without a job: unreadable",
                "",
            ),
            ("not json", "refuse", "queue body is not JSON"),
            (
                r#"{"v":1,"type":"send","token":"pt_secret","message":{}}"#,
                "refuse without token",
                "missing field `producer`",
            ),
            (r#"{"v":9,"type":"deliver"}"#, "refuse", "version 9"),
            (r#"{"v":1,"type":"teleport"}"#, "refuse", "unknown type"),
        ];
        for (body, want, reason) in table {
            let got = decided(body, jobs_item(body, &secrets()), reason);
            assert_eq!(got, want, "{body}");
        }
    }

    #[test]
    fn a_large_forged_body_is_kept_in_part() {
        let mut large = job(None);
        large.mime = "é".repeat(60_000);
        let body = serde_json::json!({"v": 1, "type": "deliver", "job": large}).to_string();
        let JobsItem::Forged(Forgery { letter, .. }) = jobs_item(&body, &secrets()) else {
            panic!("not refused as forged");
        };
        let raw = letter.raw.unwrap();
        assert!(raw.len() < FORGED_RAW_KEPT + 64, "{}", raw.len());
        assert!(body.starts_with(raw.split("...").next().unwrap()));
        assert!(
            raw.ends_with(&format!("({} bytes in all)", body.len())),
            "{raw}"
        );
    }

    #[test]
    fn a_sealed_job_must_match_its_stored_message() {
        let row = StoredEnvelope {
            key_id: "backend".into(),
            mail_from: "a@example.com".into(),
            rcpt_to: vec!["b@example.org".into(), "c@example.org".into()],
        };
        let with = |f: &dyn Fn(&mut DeliveryJob)| {
            let mut j = job(None);
            f(&mut j);
            j
        };
        let table: Vec<(DeliveryJob, Option<&StoredEnvelope>, &str)> = vec![
            (job(None), Some(&row), "deliver m1"),
            // A retry carries fewer recipients: still the message's.
            (
                with(&|j| j.rcpt_to = vec!["c@example.org".into()]),
                Some(&row),
                "deliver m1",
            ),
            (job(None), None, "no message with its id is stored"),
            (
                with(&|j| j.key_id = "other".into()),
                Some(&row),
                "its key is not the message's",
            ),
            (
                with(&|j| j.mail_from = "ceo@example.com".into()),
                Some(&row),
                "its MAIL FROM is not the message's",
            ),
            (
                with(&|j| j.rcpt_to.push("thief@example.net".into())),
                Some(&row),
                "recipients the message does not have",
            ),
            (
                with(&|j| j.rcpt_to = vec!["B@example.org".into()]),
                Some(&row),
                "recipients the message does not have",
            ),
        ];
        for (j, stored, want) in table {
            let shown = format!("{j:?}");
            match screen_against_record(j, stored) {
                Ok(d) => assert_eq!(format!("deliver {}", d.id), want, "{shown}"),
                Err(forgery) => {
                    let Forgery { claimed_id, letter } = *forgery;
                    assert!(letter.reason.contains(want), "{shown}: {}", letter.reason);
                    assert_eq!(claimed_id.as_deref(), Some("m1"));
                    assert_eq!((letter.job, letter.message_id), (None, None));
                }
            }
        }
    }

    #[test]
    fn the_misrouting_note_names_the_setting() {
        assert!(MISROUTED_DEAD_LETTER.contains("DEAD_LETTER_QUEUE_NAME"));
        assert!(!MISROUTED_DEAD_LETTER.contains("edgerelay-dead-letters"));
    }

    #[test]
    fn dead_letter_queue_table() {
        let with_message = |id: &str| {
            let mut body = QueueBody::dead_letter("producer `p`: invalid", None, Some("{}".into()));
            if let QueueBody::DeadLetter { letter, .. } = &mut body {
                letter.message_id = Some(id.into());
            }
            wire(body)
        };
        let record =
            |id: &str, detail: &str, status, release: Option<&str>| DeadLetterItem::Record {
                message_id: id.into(),
                kind: EventKind::DeadLettered,
                detail: detail.into(),
                status,
                release_body: release.map(str::to_string),
            };
        let other = QueueSecrets::parse(&"o".repeat(40)).unwrap();
        let table: Vec<(String, DeadLetterItem)> = vec![
            (
                wire(QueueBody::dead_letter(
                    "550 no such user",
                    Some(job(Some("bodies/m1.eml"))),
                    None,
                )),
                DeadLetterItem::Settle {
                    job: Box::new(job(Some("bodies/m1.eml"))),
                    reason: "550 no such user".into(),
                },
            ),
            // A sealed letter naming another message's body deletes nothing.
            (
                wire(QueueBody::dead_letter(
                    "550",
                    Some(job(Some("bodies/victim.eml"))),
                    None,
                )),
                DeadLetterItem::Settle {
                    job: Box::new(job(None)),
                    reason: "550".into(),
                },
            ),
            (
                with_message("f00d"),
                record("f00d", "producer `p`: invalid", None, None),
            ),
            (
                wire(QueueBody::dead_letter("unreadable", None, Some("x".into()))),
                DeadLetterItem::Note("dead letter without a job: unreadable".into()),
            ),
            (
                wire(QueueBody::deliver(job(Some("bodies/m1.eml")))),
                DeadLetterItem::Settle {
                    job: Box::new(job(Some("bodies/m1.eml"))),
                    reason: "delivery failed repeatedly without a recorded outcome".into(),
                },
            ),
            (
                r#"{"v":1,"type":"send","producer":"billing","message":{}}"#.into(),
                DeadLetterItem::Note(
                    "a message from producer `billing` was dead-lettered by the platform".into(),
                ),
            ),
            // Forged: written by another Worker, or sealed under another secret.
            (
                QueueBody::dead_letter("x", Some(job(Some("bodies/m1.eml"))), None)
                    .to_wire(&other),
                DeadLetterItem::Note(
                    "unsealed dead letter ignored: forged dead letter refused: its seal does not verify"
                        .into(),
                ),
            ),
            (
                serde_json::json!({"v": 1, "type": "deliver", "job": job(None)}).to_string(),
                DeadLetterItem::Note(
                    "unsealed dead letter ignored: forged job refused: it is not sealed \
                     (`job` must be the sealed JSON text)"
                        .into(),
                ),
            ),
        ];
        for (body, want) in table {
            assert_eq!(dead_letter_item(&body, &secrets()), want, "{body}");
        }
        match dead_letter_item("garbage", &secrets()) {
            DeadLetterItem::Note(text) => {
                assert!(text.starts_with("unreadable dead letter: "), "{text}")
            }
            other => panic!("{other:?}"),
        }
    }
}
