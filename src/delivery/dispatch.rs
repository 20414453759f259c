//! What the queue consumer does with each queue message, decided once from
//! its body: on the jobs queue, deliver a job, take in a producer's message,
//! or dead-letter what cannot be delivered; on the dead-letter queue, note
//! the end on the message's record. A dead letter found on the jobs queue is
//! noted where it is, never sent on (see [`JobsItem::MisroutedDeadLetter`]).
//!
//! Must not: perform I/O; the edge reads the body's text and runs the action.

use crate::queue::{DeadLetter, DeliveryJob, EventKind, MessageStatus, QueueBody};

/// What to do with one message of the jobs queue.
#[derive(Debug, Clone, PartialEq)]
pub enum JobsItem {
    /// Deliver this job (recipients already recorded are skipped later).
    Deliver(DeliveryJob),
    /// Another Worker's message: accept it like an API request first.
    ProducerSend {
        producer: String,
        message: serde_json::Value,
    },
    /// Cannot be delivered: send this to the dead-letter queue and acknowledge.
    Refuse(DeadLetter),
    /// A dead letter on what edgerelay takes for its jobs queue: the queue
    /// is really the dead-letter queue and `DEAD_LETTER_QUEUE_NAME` does not
    /// name it. Sending it on to the dead-letter queue would bring it back
    /// here, forever; instead it is recorded here once, as the dead-letter
    /// consumer would have, and acknowledged, with [`MISROUTED_DEAD_LETTER`]
    /// in the log.
    MisroutedDeadLetter(DeadLetterItem),
}

/// The log line for a dead letter that arrived on the jobs queue. It names
/// the setting, never its value or the queues' names.
pub const MISROUTED_DEAD_LETTER: &str = "a dead letter arrived on a queue consumed as the jobs \
     queue: DEAD_LETTER_QUEUE_NAME does not name the queue that `dead_letter_queue` points at in \
     wrangler.toml; it was recorded here and acknowledged, not sent on again";

/// Classifies a jobs-queue body (its JSON text).
pub fn jobs_item(text: &str) -> JobsItem {
    let refuse = |reason: String| {
        JobsItem::Refuse(DeadLetter {
            reason,
            job: None,
            raw: Some(text.to_string()),
            message_id: None,
        })
    };
    match QueueBody::from_json(text) {
        Ok(QueueBody::Deliver { job, .. }) => JobsItem::Deliver(job),
        Ok(QueueBody::Send {
            producer, message, ..
        }) => JobsItem::ProducerSend { producer, message },
        Ok(QueueBody::DeadLetter { .. }) => JobsItem::MisroutedDeadLetter(dead_letter_item(text)),
        Err(reason) => refuse(reason),
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
    /// No message to note it on: log this line and acknowledge.
    Note(String),
}

/// Classifies a dead-letter-queue body (its JSON text).
pub fn dead_letter_item(text: &str) -> DeadLetterItem {
    let record = |message_id: &str, detail: &str, status, release_body| DeadLetterItem::Record {
        message_id: message_id.to_string(),
        kind: EventKind::DeadLettered,
        detail: detail.to_string(),
        status,
        release_body,
    };
    match QueueBody::from_json(text) {
        Ok(QueueBody::DeadLetter { letter, .. }) => match (&letter.job, &letter.message_id) {
            (Some(job), _) => record(&job.id, &letter.reason, None, job.body_ref.clone()),
            (None, Some(id)) => record(id, &letter.reason, None, None),
            (None, None) => {
                DeadLetterItem::Note(format!("dead letter without a job: {}", letter.reason))
            }
        },
        Ok(QueueBody::Send { producer, .. }) => DeadLetterItem::Note(format!(
            "a message from producer `{producer}` was dead-lettered by the platform"
        )),
        // Moved here by the platform after repeated crashes of the consumer.
        Ok(QueueBody::Deliver { job, .. }) => record(
            &job.id,
            "delivery failed repeatedly without a recorded outcome",
            Some(MessageStatus::Failed),
            job.body_ref.clone(),
        ),
        Err(reason) => DeadLetterItem::Note(format!("unreadable dead letter: {reason}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(body_ref: Option<&str>) -> DeliveryJob {
        DeliveryJob {
            id: "m1".into(),
            key_id: "backend".into(),
            mail_from: "a@example.com".into(),
            rcpt_to: vec!["b@example.org".into()],
            mime: String::new(),
            smtputf8: false,
            accepted_at: 1_700_000_000,
            attempt: 2,
            body_ref: body_ref.map(str::to_string),
            tags: Vec::new(),
            metadata: None,
            safety_net: false,
        }
    }

    #[test]
    fn jobs_queue_table() {
        let deliver = QueueBody::deliver(job(None)).to_json();
        let send = r#"{"v":1,"type":"send","producer":"billing","message":{"to":"b@example.org"}}"#;
        let dead = QueueBody::dead_letter("550", Some(job(Some("bodies/m1.eml"))), None).to_json();
        let dead_no_job = QueueBody::dead_letter("unreadable", None, Some("x".into())).to_json();
        // (body, what it becomes, the dead letter's reason when refused)
        let table: Vec<(&str, &str, &str)> = vec![
            (&deliver, "deliver m1", ""),
            (send, "send from billing", ""),
            // Recorded as the dead-letter consumer would, never re-sent.
            (&dead, "record m1 releasing bodies/m1.eml", ""),
            (
                &dead_no_job,
                "note dead letter without a job: unreadable",
                "",
            ),
            ("not json", "refuse", "queue body is not JSON"),
            (r#"{"v":9,"type":"deliver"}"#, "refuse", "version 9"),
            (
                r#"{"v":1,"type":"teleport"}"#,
                "refuse",
                "not a valid message",
            ),
        ];
        for (body, want, reason) in table {
            let got = match jobs_item(body) {
                JobsItem::Deliver(j) => format!("deliver {}", j.id),
                JobsItem::ProducerSend { producer, message } => {
                    assert_eq!(message["to"], "b@example.org");
                    format!("send from {producer}")
                }
                JobsItem::Refuse(letter) => {
                    assert!(letter.reason.contains(reason), "{body}: {}", letter.reason);
                    // The body travels whole, so nothing is lost.
                    assert_eq!(letter.raw.as_deref(), Some(body));
                    assert_eq!((letter.job, letter.message_id), (None, None));
                    "refuse".into()
                }
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
            };
            assert_eq!(got, want, "{body}");
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
            body.to_json()
        };
        let record =
            |id: &str, detail: &str, status, release: Option<&str>| DeadLetterItem::Record {
                message_id: id.into(),
                kind: EventKind::DeadLettered,
                detail: detail.into(),
                status,
                release_body: release.map(str::to_string),
            };
        let table: Vec<(String, DeadLetterItem)> = vec![
            (
                QueueBody::dead_letter("550 no such user", Some(job(Some("bodies/m1.eml"))), None)
                    .to_json(),
                record("m1", "550 no such user", None, Some("bodies/m1.eml")),
            ),
            (
                with_message("f00d"),
                record("f00d", "producer `p`: invalid", None, None),
            ),
            (
                QueueBody::dead_letter("unreadable", None, Some("x".into())).to_json(),
                DeadLetterItem::Note("dead letter without a job: unreadable".into()),
            ),
            (
                QueueBody::deliver(job(Some("bodies/m1.eml"))).to_json(),
                record(
                    "m1",
                    "delivery failed repeatedly without a recorded outcome",
                    Some(MessageStatus::Failed),
                    Some("bodies/m1.eml"),
                ),
            ),
            (
                r#"{"v":1,"type":"send","producer":"billing","message":{}}"#.into(),
                DeadLetterItem::Note(
                    "a message from producer `billing` was dead-lettered by the platform".into(),
                ),
            ),
        ];
        for (body, want) in table {
            assert_eq!(dead_letter_item(&body), want, "{body}");
        }
        match dead_letter_item("garbage") {
            DeadLetterItem::Note(text) => {
                assert!(text.starts_with("unreadable dead letter: "), "{text}")
            }
            other => panic!("{other:?}"),
        }
    }
}
