//! The payload of a test event (`POST /v1/webhooks/{id}/test`): the shape of
//! a real event of the chosen type, about no real message, marked `test`.
//! Must not: read the clock (the time is an input).

use serde_json::json;

use crate::events::EventType;
use crate::events::model::smtp_field;
use crate::events::time::rfc3339_ms;

/// The test event's body as sent and signed.
pub fn test_payload(event_type: EventType, at_ms: u64) -> String {
    if event_type.is_about_a_stream() {
        return stream_test_payload(event_type, at_ms);
    }
    if event_type.is_about_a_domain() {
        return json!({
            "type": event_type.as_str(),
            "created_at": rfc3339_ms(at_ms),
            "data": {
                "domain": "example.com",
                "reason": "records_changed",
                "records": [{
                    "purpose": "dkim",
                    "name": "er1-rsa._domainkey.example.com",
                    "selector": "er1-rsa",
                    "required": true,
                    "problem": "missing",
                    "problems": ["no DKIM record is published at er1-rsa._domainkey.example.com: publish the TXT record as given"],
                }],
                "test": true,
            },
        })
        .to_string();
    }
    let mut data = json!({
        "email_id": "test",
        "from": "edgerelay@example.com",
        "to": ["recipient@example.com"],
        "subject": "edgerelay test event",
        "stream": "transactional",
        "tags": {},
        "metadata": null,
        "recipient": "recipient@example.com",
        "test": true,
    });
    match event_type {
        EventType::Sent => data["smtp"] = smtp_field(250, Some("2.0.0"), "OK"),
        EventType::DeliveryDelayed => {
            data["smtp"] = smtp_field(451, Some("4.7.1"), "try again later")
        }
        EventType::Bounced => {
            data["smtp"] = smtp_field(550, Some("5.1.1"), "no such user");
            data["bounce"] = json!({"type": "hard"});
        }
        EventType::Failed => data["failed"] = json!({"reason": "test"}),
        _ => {}
    }
    json!({
        "type": event_type.as_str(),
        "created_at": rfc3339_ms(at_ms),
        "data": data,
    })
    .to_string()
}

/// A stream event's test body: the shape of `stream.paused` or
/// `stream.resumed` (see `events::reputation`), marked `test`.
fn stream_test_payload(event_type: EventType, at_ms: u64) -> String {
    let mut data = json!({
        "stream": "marketing",
        "reason": "complaint_rate",
        "window": {"from": rfc3339_ms(at_ms), "to": rfc3339_ms(at_ms)},
        "volume": {"sent": 1000, "complaints": 3, "hard_bounces": 0},
        "rates": {"complaint": 0.003, "hard_bounce": 0.0},
        "thresholds": {
            "complaint_rate": 0.003,
            "hard_bounce_rate": 0.05,
            "min_volume": 1000,
            "window_hours": 24,
        },
        "test": true,
    });
    if event_type == EventType::StreamResumed {
        data["paused_at"] = json!(rfc3339_ms(at_ms));
        data["resumed_by"] = json!("test");
    }
    json!({
        "type": event_type.as_str(),
        "created_at": rfc3339_ms(at_ms),
        "data": data,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn every_type_has_a_test_payload_marked_test() {
        for t in EventType::ALL {
            let payload: Value = serde_json::from_str(&test_payload(t, 0)).unwrap();
            assert_eq!(payload["type"], t.as_str());
            assert_eq!(payload["created_at"], "1970-01-01T00:00:00.000Z");
            assert_eq!(payload["data"]["test"], true);
        }
        let paused: Value =
            serde_json::from_str(&test_payload(EventType::StreamPaused, 0)).unwrap();
        assert!(paused["data"].get("email_id").is_none());
        assert_eq!(paused["data"]["stream"], "marketing");
        let bounced: Value = serde_json::from_str(&test_payload(EventType::Bounced, 0)).unwrap();
        assert_eq!(bounced["data"]["bounce"]["type"], "hard");
    }
}
