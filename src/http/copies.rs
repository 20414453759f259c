//! How a message sent as one copy per recipient looks in the status API.
//!
//! A marketing message (or any with a one-click unsubscribe) to several
//! recipients is stored as one message per copy, `<id>-1`, `<id>-2`, ...
//! (see `accept::send`). `GET /v1/messages/<id>` then answers the parent:
//! its id, a status summing up its copies, and each copy's summary; each
//! copy is also a message of its own (`GET /v1/messages/<id>-1`), naming
//! its `parent_id`.
//! Owns: telling a copy's id from a parent's, the parent's shape and its
//! summed-up status. Must not: perform I/O.

use serde_json::{Value, json};

use crate::queue::MessageStatus;

pub use crate::accept::send::{is_parent_id, parent_of};

use super::views::{MessageRow, summary};

/// The copy number of a copy's id, for ordering (`-10` after `-9`).
fn copy_number(id: &str) -> u64 {
    id.rsplit_once('-')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(u64::MAX)
}

/// One status for all copies: theirs when they agree; while any is still
/// under way, `deferred` if one waits for a retry, else `queued`; once all
/// are final, `partially_delivered` if any copy got through, else `unknown`
/// if any may have, else `failed`.
pub fn summed_status(statuses: &[&str]) -> String {
    if let Some(first) = statuses.first()
        && statuses.iter().all(|s| s == first)
    {
        return first.to_string();
    }
    let parsed: Vec<Option<MessageStatus>> =
        statuses.iter().map(|s| MessageStatus::parse(s)).collect();
    let any = |status: MessageStatus| parsed.contains(&Some(status));
    let status = if any(MessageStatus::Deferred) {
        MessageStatus::Deferred
    } else if any(MessageStatus::Queued) {
        MessageStatus::Queued
    } else if any(MessageStatus::Delivered) || any(MessageStatus::PartiallyDelivered) {
        MessageStatus::PartiallyDelivered
    } else if any(MessageStatus::Unknown) {
        MessageStatus::Unknown
    } else {
        MessageStatus::Failed
    };
    status.as_str().to_string()
}

/// `GET /v1/messages/<id>` for a message of several copies.
pub fn parent(id: &str, copies: &[MessageRow]) -> Value {
    let mut copies: Vec<&MessageRow> = copies.iter().collect();
    copies.sort_by_key(|c| copy_number(&c.id));
    let statuses: Vec<&str> = copies.iter().map(|c| c.status.as_str()).collect();
    let first = copies.first();
    json!({
        "id": id,
        "status": summed_status(&statuses),
        "subject": first.and_then(|c| c.subject.clone()),
        "stream": first.map(|c| summary(c)["stream"].clone()),
        "created_at": first.map(|c| c.created_at as u64),
        "copies": copies.iter().map(|c| summary(c)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "0123456789abcdef0123456789abcdef";

    fn copy(n: u32, status: &str) -> MessageRow {
        MessageRow {
            id: format!("{PARENT}-{n}"),
            status: status.into(),
            mail_from: "news@example.com".into(),
            rcpt_to: format!(r#"["r{n}@example.org"]"#),
            attempts: 1.0,
            last_error: None,
            created_at: 1_700_000_000.0,
            updated_at: 1_700_000_001.0,
            next_attempt_at: None,
            producer_id: None,
            tags: None,
            stream: Some("marketing".into()),
            subject: Some("Spring sale".into()),
            scheduled_at: None,
        }
    }

    #[test]
    fn copy_ids_and_parent_ids() {
        assert!(is_parent_id(PARENT));
        for not_parent in ["", "abc", "0123456789ABCDEF0123456789ABCDEF", "x%"] {
            assert!(!is_parent_id(not_parent), "{not_parent}");
        }
        assert_eq!(parent_of(&format!("{PARENT}-12")), Some(PARENT));
        for not_copy in [
            PARENT,
            "abc-1",
            &format!("{PARENT}-"),
            &format!("{PARENT}-x"),
        ] {
            assert_eq!(parent_of(not_copy), None, "{not_copy}");
        }
    }

    #[test]
    fn statuses_sum_up_by_table() {
        for (statuses, expected) in [
            (&["delivered", "delivered"][..], "delivered"),
            (&["failed"], "failed"),
            (&["queued", "delivered"], "queued"),
            (&["queued", "deferred", "delivered"], "deferred"),
            (&["delivered", "failed"], "partially_delivered"),
            (&["partially_delivered", "failed"], "partially_delivered"),
            (&["unknown", "failed"], "unknown"),
            (&["failed", "suppressed"], "failed"),
        ] {
            assert_eq!(summed_status(statuses), expected, "{statuses:?}");
        }
    }

    #[test]
    fn the_parent_lists_its_copies_in_order() {
        let rows: Vec<MessageRow> = [10, 2, 1]
            .iter()
            .map(|n| copy(*n, if *n == 2 { "failed" } else { "delivered" }))
            .collect();
        let view = parent(PARENT, &rows);
        assert_eq!(view["id"], PARENT);
        assert_eq!(view["status"], "partially_delivered");
        assert_eq!(view["stream"], "marketing");
        assert_eq!(view["subject"], "Spring sale");
        let ids: Vec<&str> = view["copies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [1, 2, 10]
                .map(|n| format!("{PARENT}-{n}"))
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
        );
    }
}
