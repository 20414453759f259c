//! Where a signed message travels: inside the queue message, or, when it is
//! too large for one, as an object in the bodies bucket (R2) that the queue
//! message names.
//!
//! Owns the decision and the object naming. Must not: talk to R2 or the queue;
//! the edge stores and fetches what this module says.

use super::job::{DeliveryJob, QUEUE_BODY_LIMIT, QueueBody};

/// A signed message to store in the bodies bucket before the job is enqueued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalBody {
    /// Object key, also written into the job's `body_ref`.
    pub key: String,
    /// The signed message, exactly as it goes on the wire.
    pub mime: String,
}

/// A job in the form it is enqueued, with the body to store first, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePlacement {
    pub job: DeliveryJob,
    pub external: Option<ExternalBody>,
}

/// The object key of a message's body. Ids are hex, so the key needs no escaping.
pub fn body_key(id: &str) -> String {
    format!("bodies/{id}.eml")
}

/// Keeps the job whole when its queue message fits [`QUEUE_BODY_LIMIT`];
/// otherwise moves the MIME out. The limit is checked on the sealed queue
/// message, not the MIME, because JSON escaping grows it, twice over: the job
/// travels as a JSON string inside the body (a CRLF becomes `\\r\\n`, six
/// bytes; quotes and backslashes grow too).
pub fn place(job: DeliveryJob) -> QueuePlacement {
    if job.body_ref.is_some() || queue_message_len(&job) <= QUEUE_BODY_LIMIT {
        return QueuePlacement {
            job,
            external: None,
        };
    }
    let key = body_key(&job.id);
    let mut job = job;
    let mime = std::mem::take(&mut job.mime);
    job.body_ref = Some(key.clone());
    QueuePlacement {
        job,
        external: Some(ExternalBody { key, mime }),
    }
}

/// Length in bytes of the job's queue message, sealed.
pub fn queue_message_len(job: &DeliveryJob) -> usize {
    QueueBody::deliver_wire_len(job)
}

impl DeliveryJob {
    /// The job with its body put back, for delivery. The stored reference is
    /// kept so the consumer knows what to delete once the message is done.
    pub fn with_body(&self, mime: String) -> DeliveryJob {
        DeliveryJob {
            mime,
            ..self.clone()
        }
    }

    /// The job as it may travel through a queue again (a retry, a dead
    /// letter): a body kept in the bucket stays there, only its reference travels.
    pub fn for_queue(&self) -> DeliveryJob {
        match self.body_ref {
            Some(_) => self.with_body(String::new()),
            None => self.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::seal::tests::secrets;

    #[test]
    fn a_stored_body_never_travels_again() {
        let mut stored = job("x".repeat(200_000));
        stored.body_ref = Some("bodies/0123abcd".into());
        assert_eq!(stored.for_queue().mime, "");
        assert_eq!(
            stored.for_queue().body_ref.as_deref(),
            Some("bodies/0123abcd")
        );
        let inline = job("small".into());
        assert_eq!(inline.for_queue(), inline);
    }

    fn job(mime: String) -> DeliveryJob {
        DeliveryJob::sample("0123abcd", &mime)
    }

    #[test]
    fn placement_follows_the_serialised_size() {
        // Each CRLF costs six bytes once escaped twice, so a MIME body under
        // the limit can still overflow the queue message.
        let crlf_heavy = "\r\n".repeat(QUEUE_BODY_LIMIT / 5);
        assert!(crlf_heavy.len() < QUEUE_BODY_LIMIT);
        let table = [
            ("small".to_string(), false),
            ("x".repeat(QUEUE_BODY_LIMIT - 1024), false),
            ("\"".repeat(QUEUE_BODY_LIMIT / 3), true),
            ("x".repeat(QUEUE_BODY_LIMIT), true),
            (crlf_heavy, true),
        ];
        for (mime, external) in table {
            let len = mime.len();
            let placed = place(job(mime.clone()));
            assert_eq!(placed.external.is_some(), external, "{len} bytes");
            if external {
                let body = placed.external.unwrap();
                assert_eq!(body.mime, mime);
                assert_eq!(body.key, "bodies/0123abcd.eml");
                assert_eq!(placed.job.body_ref.as_deref(), Some("bodies/0123abcd.eml"));
                assert!(placed.job.mime.is_empty());
            } else {
                assert_eq!(placed.job.mime, mime);
                assert_eq!(placed.job.body_ref, None);
            }
            assert!(queue_message_len(&placed.job) <= QUEUE_BODY_LIMIT);
        }
    }

    #[test]
    fn a_stored_body_round_trips_through_the_queue_format() {
        let placed = place(job("y".repeat(QUEUE_BODY_LIMIT + 1)));
        let keys = secrets();
        let json = QueueBody::deliver(placed.job.clone()).to_wire(&keys);
        assert!(json.contains(r#"\"body_ref\":\"bodies/0123abcd.eml\""#));
        let Ok(QueueBody::Deliver { job: read, .. }) = QueueBody::from_wire(&json, &keys) else {
            panic!("not a deliver body: {json}");
        };
        let mime = placed.external.unwrap().mime;
        let whole = read.with_body(mime.clone());
        assert_eq!(whole.mime, mime);
        assert_eq!(whole.body_ref.as_deref(), Some("bodies/0123abcd.eml"));
        // A small job's wire form is unchanged: no body_ref key at all.
        let small = QueueBody::deliver(job("hi".into())).to_wire(&keys);
        assert!(!small.contains("body_ref"));
    }
}
