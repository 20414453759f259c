//! `POST /v1/messages/batch` without the HTTP: splitting a batch body into
//! items, and the per-item answer.
//!
//! A batch is a JSON array of up to [`MAX_BATCH_ITEMS`] send requests, each
//! judged on its own: one invalid item never holds back the others. Once the
//! array itself is readable the answer is `207 Multi-Status` with one result
//! per item, in request order: `{"index", "status": 202, "id"}` for an
//! accepted item, `{"index", "status", "error": {...}}` (the one error shape)
//! for a refused one. The whole batch is refused only when it cannot be read
//! (400), is empty (422) or has too many items (413).
//!
//! Must not: perform I/O; the edge accepts each item.

use serde::Serialize;
use serde_json::value::RawValue;

use super::accepted::AcceptedIds;
use crate::accept::error::{ApiError, ErrorFields, FieldProblem};

/// Most items in one batch, as with other providers' batch endpoints.
pub const MAX_BATCH_ITEMS: usize = 100;

/// The items of a batch body, each still raw JSON (validated one by one later).
pub fn split(body: &[u8]) -> Result<Vec<&RawValue>, ApiError> {
    let value: &RawValue = serde_json::from_slice(body)
        .map_err(|e| ApiError::malformed(format!("the batch is not JSON: {e}")))?;
    let items: Vec<&RawValue> = serde_json::from_str(value.get()).map_err(|_| {
        ApiError::invalid(vec![FieldProblem {
            field: String::new(),
            rule: "invalid_type".into(),
            message: "a batch is a JSON array of send requests".into(),
        }])
    })?;
    if items.is_empty() {
        return Err(ApiError::invalid(vec![FieldProblem {
            field: String::new(),
            rule: "required".into(),
            message: "a batch needs at least one send request".into(),
        }]));
    }
    if items.len() > MAX_BATCH_ITEMS {
        return Err(ApiError::too_large(
            "",
            format!(
                "the batch has {} items; at most {MAX_BATCH_ITEMS} are accepted, send the rest in another batch",
                items.len()
            ),
        ));
    }
    Ok(items)
}

/// One item's answer.
#[derive(Debug, Serialize)]
pub struct ItemResult<'a> {
    pub index: usize,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    /// The item's copies, when it went out as one copy per recipient.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copies: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorFields<'a>>,
}

/// The batch answer.
#[derive(Debug, Serialize)]
pub struct BatchResponse<'a> {
    pub accepted: usize,
    pub rejected: usize,
    pub results: Vec<ItemResult<'a>>,
}

/// HTTP status of a batch whose items were judged: always 207, so a client
/// reads every item's own status.
pub const BATCH_STATUS: u16 = 207;

/// Builds the answer from each item's outcome (its ids, or the error).
pub fn response(outcomes: &[Result<AcceptedIds, ApiError>]) -> BatchResponse<'_> {
    let results: Vec<ItemResult<'_>> = outcomes
        .iter()
        .enumerate()
        .map(|(index, outcome)| match outcome {
            Ok(ids) => ItemResult {
                index,
                status: 202,
                id: Some(&ids.id),
                copies: ids.copies_json(),
                error: None,
            },
            Err(e) => ItemResult {
                index,
                status: e.status,
                id: None,
                copies: None,
                error: Some(e.fields()),
            },
        })
        .collect();
    let accepted = outcomes.iter().filter(|o| o.is_ok()).count();
    BatchResponse {
        accepted,
        rejected: outcomes.len() - accepted,
        results,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body, and either the item count or the refusal's status and rule.
    type SplitCase<'a> = (&'a str, Result<usize, (u16, &'a str)>);

    #[test]
    fn the_batch_itself_is_refused_only_when_unreadable_empty_or_too_long() {
        let item = r#"{"from":"a@example.com"}"#;
        let many = format!("[{}]", vec![item; MAX_BATCH_ITEMS + 1].join(","));
        let full = format!("[{}]", vec![item; MAX_BATCH_ITEMS].join(","));
        let table: &[SplitCase] = &[
            ("[", Err((400, "malformed_json"))),
            ("", Err((400, "malformed_json"))),
            (r#"{"from":"a@example.com"}"#, Err((422, "invalid_request"))),
            ("[]", Err((422, "invalid_request"))),
            (&many, Err((413, "too_large"))),
            (&full, Ok(MAX_BATCH_ITEMS)),
            // Items are not judged here: anything inside the array is an item.
            (r#"[{"from":"a@example.com"}, 5, "x", {}]"#, Ok(4)),
        ];
        for (body, expected) in table {
            let got = split(body.as_bytes());
            match (expected, got) {
                (Ok(n), Ok(items)) => assert_eq!(items.len(), *n),
                (Err((status, rule)), Err(e)) => {
                    assert_eq!((e.status, e.rule), (*status, *rule), "{body:.40}")
                }
                (exp, got) => panic!("{body:.40}: expected {exp:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn items_keep_their_raw_text() {
        let items = split(br#"[ {"a": 1} , {"b": "\u00e9"} ]"#).unwrap();
        assert_eq!(items[0].get(), r#"{"a": 1}"#);
        assert_eq!(items[1].get(), r#"{"b": "\u00e9"}"#);
    }

    #[test]
    fn every_item_is_answered_in_order_with_its_own_status() {
        let outcomes = vec![
            Ok(AcceptedIds {
                id: "id-one".to_string(),
                copies: None,
            }),
            Err(ApiError::forbidden("domain_not_allowed", "from", "no")),
            Err(ApiError::invalid(vec![FieldProblem {
                field: "to".into(),
                rule: "required".into(),
                message: "to is required".into(),
            }])),
            Ok(AcceptedIds {
                id: "id-two".to_string(),
                copies: Some(vec![("id-two-1".into(), "a@example.org".into())]),
            }),
        ];
        let body = serde_json::to_value(response(&outcomes)).unwrap();
        assert_eq!(body["accepted"], 2);
        assert_eq!(body["rejected"], 2);
        let results = body["results"].as_array().unwrap();
        assert_eq!(results[0].get("copies"), None);
        assert_eq!(
            results[3]["copies"],
            serde_json::json!([{"id": "id-two-1", "to": "a@example.org"}])
        );
        let summary: Vec<(u64, u64, Option<&str>, Option<&str>)> = results
            .iter()
            .map(|r| {
                (
                    r["index"].as_u64().unwrap(),
                    r["status"].as_u64().unwrap(),
                    r["id"].as_str(),
                    r["error"]["rule"].as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (0, 202, Some("id-one"), None),
                (1, 403, None, Some("domain_not_allowed")),
                (2, 422, None, Some("invalid_request")),
                (3, 202, Some("id-two"), None),
            ]
        );
        assert_eq!(results[2]["error"]["details"][0]["field"], "to");
        assert!(results[0].get("error").is_none());
    }
}
