//! The one error shape every API response uses: [`ApiError`], one constructor
//! per status with its stable rule, and the JSON body.
//!
//! Body: `{"error": {"status", "rule", "field", "message", "details": [...]}}`.
//! `rule` is stable and machine-readable; `field` names the JSON path at fault
//! when there is one; `details` lists every field problem found, not just the first.
//! Must not: build HTTP responses: the edge does, turning `retry_after` and
//! `allow` into headers.

use serde::Serialize;

/// One problem with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    pub field: String,
    pub rule: String,
    pub message: String,
}

/// An error answered to an API caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub rule: &'static str,
    pub field: Option<String>,
    pub message: String,
    pub details: Vec<FieldProblem>,
    /// Seconds the caller should wait before trying again (429, 503).
    pub retry_after: Option<u32>,
    /// The methods the path takes, for the `Allow` header of a 405 (boxed:
    /// every `Result` carrying an `ApiError` pays for its size).
    pub allow: Option<Box<str>>,
}

/// The serialised form of an [`ApiError`].
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub error: ErrorFields<'a>,
}

#[derive(Debug, Serialize)]
pub struct ErrorFields<'a> {
    pub status: u16,
    pub rule: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'a str>,
    pub message: &'a str,
    #[serde(skip_serializing_if = "<[FieldProblem]>::is_empty")]
    pub details: &'a [FieldProblem],
}

impl From<crate::events::unsubscribe::Refusal> for ApiError {
    /// The unsubscribe routes' refusals, in the one error shape.
    fn from(r: crate::events::unsubscribe::Refusal) -> Self {
        ApiError::new(r.status, r.rule, r.message)
    }
}

impl From<crate::events::tracking::hit::Refusal> for ApiError {
    /// The tracking routes' refusals (a 404 with no `Location`).
    fn from(r: crate::events::tracking::hit::Refusal) -> Self {
        ApiError::new(r.status, r.rule, r.message)
    }
}

impl ApiError {
    fn new(status: u16, rule: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            rule,
            field: None,
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
            allow: None,
        }
    }

    /// 400: the body is not JSON, or not the shape of a request at all.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(400, "malformed_json", message)
    }

    /// 401: no key, or a key that is not valid.
    pub fn unauthorized(rule: &'static str, message: impl Into<String>) -> Self {
        Self::new(401, rule, message)
    }

    /// 403: the key may not do this (for example, send as this domain).
    pub fn forbidden(rule: &'static str, field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(403, rule, message);
        e.field = Some(field.to_string());
        e
    }

    /// 404: no such route or resource.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found", message)
    }

    /// 405: the route exists, the method does not. `allowed` lists the
    /// methods it takes, as the `Allow` header will (RFC 9110 15.5.6).
    pub fn method_not_allowed(allowed: &str) -> Self {
        let mut e = Self::new(405, "method_not_allowed", format!("allowed: {allowed}"));
        e.allow = Some(allowed.into());
        e
    }

    /// 409: the request collides with an earlier one (for example, an
    /// idempotency key reused with a different body).
    pub fn conflict(rule: &'static str, field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(409, rule, message);
        e.field = Some(field.to_string());
        e
    }

    /// 422 naming one field and rule, for query parameters and headers.
    pub fn invalid_field(field: &str, rule: &str, message: impl Into<String>) -> Self {
        Self::invalid(vec![FieldProblem {
            field: field.to_string(),
            rule: rule.to_string(),
            message: message.into(),
        }])
    }

    /// 413: the request or the message is too large.
    pub fn too_large(field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(413, "too_large", message);
        e.field = Some(field.to_string());
        e
    }

    /// 422: well-formed JSON whose content breaks one or more rules.
    pub fn invalid(problems: Vec<FieldProblem>) -> Self {
        let first = problems.first().cloned();
        let mut e = Self::new(
            422,
            "invalid_request",
            first
                .as_ref()
                .map(|p| format!("{}: {}", p.field, p.message))
                .unwrap_or_else(|| "the request is invalid".to_string()),
        );
        if let Some(p) = first {
            e.field = Some(p.field);
        }
        e.details = problems;
        e
    }

    /// 500: the relay's own configuration is broken; the caller cannot fix it.
    pub fn misconfigured(message: impl Into<String>) -> Self {
        Self::new(500, "server_misconfigured", message)
    }

    /// 500 for an unreadable setting. The answer names nothing: the caller
    /// may not be authenticated (the keys are settings too), and a setting's
    /// name, let alone its value, is the operator's business. The operator's
    /// log names the setting and the problem.
    pub fn settings_unreadable() -> Self {
        Self::misconfigured(
            "edgerelay cannot read its settings; the operator's log names the setting at fault",
        )
    }

    /// 503: a dependency (queue, store) failed; nothing was accepted, retry later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut e = Self::new(503, "temporarily_unavailable", message);
        e.retry_after = Some(5);
        e
    }

    /// 429: the caller is sending too fast; retry after `retry_after` seconds.
    /// Browser forms are limited per form and per client (see `edge::forms`).
    pub fn rate_limited(retry_after: u32) -> Self {
        let mut e = Self::new(429, "rate_limited", "too many requests; slow down");
        e.retry_after = Some(retry_after);
        e
    }

    /// The fields of the error object, as nested in bodies (also per batch item).
    pub fn fields(&self) -> ErrorFields<'_> {
        ErrorFields {
            status: self.status,
            rule: self.rule,
            field: self.field.as_deref(),
            message: &self.message,
            details: &self.details,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        let body = ErrorBody {
            error: self.fields(),
        };
        serde_json::to_string(&body).unwrap_or_else(|_| {
            // Serialising plain strings and numbers cannot fail; keep a body anyway.
            format!(
                r#"{{"error":{{"status":{},"rule":"{}"}}}}"#,
                self.status, self.rule
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_names_first_field_and_lists_all() {
        let e = ApiError::invalid(vec![
            FieldProblem {
                field: "to[0]".into(),
                rule: "invalid_address".into(),
                message: "not an address".into(),
            },
            FieldProblem {
                field: "subject".into(),
                rule: "required".into(),
                message: "is required".into(),
            },
        ]);
        assert_eq!(e.status, 422);
        let v: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(v["error"]["field"], "to[0]");
        assert_eq!(v["error"]["rule"], "invalid_request");
        assert_eq!(v["error"]["details"][1]["field"], "subject");
        assert_eq!(v["error"]["details"][1]["rule"], "required");
    }

    #[test]
    fn statuses() {
        assert_eq!(ApiError::malformed("x").status, 400);
        assert_eq!(ApiError::unauthorized("r", "x").status, 401);
        assert_eq!(ApiError::forbidden("r", "from", "x").status, 403);
        assert_eq!(ApiError::too_large("f", "x").status, 413);
        assert_eq!(ApiError::conflict("r", "f", "x").status, 409);
        assert_eq!(ApiError::invalid_field("limit", "range", "x").status, 422);
        assert_eq!(ApiError::unavailable("x").status, 503);
        assert_eq!(ApiError::unavailable("x").retry_after, Some(5));
        assert_eq!(ApiError::rate_limited(30).status, 429);
        assert_eq!(ApiError::rate_limited(30).retry_after, Some(30));
        let e = ApiError::method_not_allowed("GET, POST");
        assert_eq!((e.status, e.allow.as_deref()), (405, Some("GET, POST")));
        assert_eq!(e.message, "allowed: GET, POST");
        let body: serde_json::Value =
            serde_json::from_str(&ApiError::malformed("bad json at line 1").body()).unwrap();
        assert_eq!(body["error"]["message"], "bad json at line 1");
        assert!(body["error"].get("details").is_none());
    }
}
