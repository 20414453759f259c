//! Other Workers as senders: the `QUEUE_PRODUCERS` setting and what a
//! producer may do.
//!
//! A producer Worker binds edgerelay's jobs queue and sends
//! `{"v": 1, "type": "send", "producer": "<id>", "message": {...}}`, where
//! `message` has exactly the fields of `POST /v1/messages`. The queue is not a
//! trust boundary: the message is validated like an HTTP request, and the
//! producer may only send as the domains configured for its id. Its messages
//! belong to the API key named as its `owner`, which sees them through the
//! status API.
//! Must not: read the environment or touch the queue; settings and the edge do.

use serde::Deserialize;

use crate::config::json_problem;

/// One configured producer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueProducer {
    /// What the producer writes in `"producer"`.
    pub id: String,
    /// Sender domains it may use.
    pub domains: Vec<String>,
    /// The API key id that owns its messages (sees them in the status API).
    pub owner: String,
}

/// Parses `QUEUE_PRODUCERS`; `api_key_ids` are the configured keys' ids, one
/// of which each producer's `owner` must be.
pub fn parse_producers(raw: &str, api_key_ids: &[&str]) -> Result<Vec<QueueProducer>, String> {
    if raw.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut producers: Vec<QueueProducer> = serde_json::from_str(raw)
        .map_err(|e| json_problem(&e, "a JSON list of {id, domains, owner}"))?;
    for (i, p) in producers.iter_mut().enumerate() {
        if p.id.trim().is_empty() {
            return Err(format!("producer {i}: id is empty"));
        }
        if p.domains.is_empty() {
            return Err(format!("producer `{}`: lists no sender domains", p.id));
        }
        if !api_key_ids.contains(&p.owner.as_str()) {
            return Err(format!(
                "producer `{}`: owner `{}` is not an API key id in API_KEYS",
                p.id, p.owner
            ));
        }
        p.domains.iter_mut().for_each(|d| d.make_ascii_lowercase());
    }
    for (i, p) in producers.iter().enumerate() {
        if producers[..i].iter().any(|q| q.id == p.id) {
            return Err(format!("producer `{}` is listed twice", p.id));
        }
    }
    Ok(producers)
}

/// The producer with this id, if configured.
pub fn find<'a>(producers: &'a [QueueProducer], id: &str) -> Option<&'a QueueProducer> {
    producers.iter().find(|p| p.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_producers() {
        let keys = ["backend"];
        let ok = parse_producers(
            r#"[{"id":"billing","domains":["Example.COM"],"owner":"backend"}]"#,
            &keys,
        )
        .unwrap();
        assert_eq!(ok[0].domains, vec!["example.com"]);
        assert_eq!(
            find(&ok, "billing").map(|p| p.owner.as_str()),
            Some("backend")
        );
        assert!(find(&ok, "other").is_none());
        assert_eq!(parse_producers("  ", &keys).unwrap(), vec![]);

        let bad = [
            ("not json", "valid JSON"),
            ("{}", "JSON list of {id, domains, owner}"),
            (
                r#"[{"id":"","domains":["a.com"],"owner":"backend"}]"#,
                "id is empty",
            ),
            (
                r#"[{"id":"p","domains":[],"owner":"backend"}]"#,
                "no sender domains",
            ),
            (
                r#"[{"id":"p","domains":["a.com"],"owner":"nobody"}]"#,
                "owner `nobody`",
            ),
            (
                r#"[{"id":"p","domains":["a.com"],"owner":"backend","admin":true}]"#,
                "unknown field",
            ),
            (
                r#"[{"id":"p","domains":["a.com"],"owner":"backend"},{"id":"p","domains":["b.com"],"owner":"backend"}]"#,
                "listed twice",
            ),
        ];
        for (raw, needle) in bad {
            let e = parse_producers(raw, &keys).unwrap_err();
            assert!(e.contains(needle), "{raw}: {e}");
        }
    }
}
