//! Amazon SES v2 `SendEmail` with `Content.Raw`: the entry
//! `ses://KEY_ID:SECRET@REGION[?endpoint=URL]`, the SigV4-signed request
//! (`POST /v2/email/outbound-emails`, service `ses`) and SES's answers
//! classified (its error codes first, then the HTTP status).
//! Must not: perform I/O or read the clock.

use base64::Engine;
use serde_json::{Value, json};

use super::common::{
    Class, Classified, HttpAnswer, HttpRequest, decode, endpoint_override, one_line,
};
use super::sigv4::{self, Credentials};
use crate::inbound::providers::MESSAGE_ID_FIELD;

/// SES v2 takes at most 50 recipients per message.
pub const MAX_RECIPIENTS: u32 = 50;

/// SES v2 takes a raw message of up to 40 MB (its documented limit,
/// counted after base64 encoding): 30 MB of MIME stays under it.
pub const MAX_MESSAGE_BYTES: usize = 30 * 1024 * 1024;

#[derive(Clone, PartialEq, Eq)]
pub struct SesUpstream {
    pub region: String,
    pub credentials: Credentials,
    /// `https://email.REGION.amazonaws.com`, or the `endpoint` override.
    pub base_url: String,
}

impl SesUpstream {
    pub fn parse(rest: &str) -> Result<SesUpstream, String> {
        let (userinfo, region, query) = super::common::split_entry(rest);
        let (key_id, secret) = userinfo
            .and_then(|u| u.split_once(':'))
            .ok_or_else(|| "an ses:// entry needs KEY_ID:SECRET@ before the region".to_string())?;
        let (access_key_id, secret_access_key) = (decode(key_id)?, decode(secret)?);
        if access_key_id.is_empty() || secret_access_key.is_empty() {
            return Err("an ses:// entry needs a key id and a secret".into());
        }
        let region = region.to_ascii_lowercase();
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("an ses:// entry needs a region such as eu-west-1 as its host".into());
        }
        let mut base_url = format!("https://email.{region}.amazonaws.com");
        for (name, value) in super::common::query_pairs(query.unwrap_or_default()) {
            match name {
                "endpoint" => base_url = endpoint_override(value)?,
                _ => {
                    return Err(
                        "has a query parameter ses:// does not read (only `endpoint`)".into(),
                    );
                }
            }
        }
        Ok(SesUpstream {
            region,
            credentials: Credentials {
                access_key_id,
                secret_access_key,
            },
            base_url,
        })
    }

    /// The signed request that sends `message` from `mail_from` to
    /// `recipients`, tagged with edgerelay's message id so SES's events name
    /// it, at `now_ms`.
    pub fn request(
        &self,
        mail_from: &str,
        recipients: &[String],
        message_id: &str,
        message: &[u8],
        now_ms: u64,
    ) -> HttpRequest {
        let mut body = json!({
            "Destination": { "ToAddresses": recipients },
            "Content": { "Raw": {
                "Data": base64::engine::general_purpose::STANDARD.encode(message)
            } },
        });
        if !mail_from.is_empty() {
            body["FromEmailAddress"] = json!(mail_from);
        }
        if super::super::provider_header::header(
            crate::inbound::providers::Provider::Ses,
            message_id,
        )
        .is_some()
        {
            body["EmailTags"] = json!([{ "Name": MESSAGE_ID_FIELD, "Value": message_id }]);
        }
        let body = body.to_string().into_bytes();
        let path = "/v2/email/outbound-emails";
        let host = self
            .base_url
            .split_once("://")
            .map_or(self.base_url.as_str(), |(_, h)| h)
            .to_string();
        let amz_date = sigv4::amz_date(now_ms);
        let headers = [
            ("content-type", "application/json"),
            ("host", host.as_str()),
            ("x-amz-date", amz_date.as_str()),
        ];
        let auth = sigv4::authorization(
            &self.credentials,
            &sigv4::Scope {
                region: &self.region,
                service: "ses",
                amz_date: &amz_date,
            },
            &sigv4::Request {
                method: "POST",
                path,
                query: &[],
                headers: &headers,
                body: &body,
            },
        );
        HttpRequest {
            url: format!("{}{path}", self.base_url),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-amz-date".into(), amz_date),
                ("authorization".into(), auth),
            ],
            body,
        }
    }
}

/// SES's answer: `MessageId` on success; on failure its error code (the
/// `x-amzn-ErrorType` header, or `__type`/`code` in the body) decides,
/// then the status.
pub fn classify(answer: &HttpAnswer) -> Classified {
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    if (200..300).contains(&answer.status) {
        let id = body.get("MessageId").and_then(Value::as_str).map(one_line);
        return Classified::new(Class::Delivered(id), "accepted");
    }
    let code = answer
        .error_type
        .as_deref()
        .or_else(|| body.get("__type").and_then(Value::as_str))
        .or_else(|| body.get("code").and_then(Value::as_str))
        .map(|t| {
            // `Throttling:http://internal…` or `com.amazon…#MessageRejected`.
            let t = t.split(':').next().unwrap_or(t);
            t.rsplit('#').next().unwrap_or(t).to_string()
        })
        .unwrap_or_default();
    let message = body
        .get("message")
        .or_else(|| body.get("Message"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let class = match code.as_str() {
        "Throttling"
        | "ThrottlingException"
        | "TooManyRequestsException"
        | "LimitExceededException" => Class::Throttled,
        "MessageRejected" | "BadRequestException" => {
            let lower = message.to_ascii_lowercase();
            if lower.contains("not verified") || lower.contains("not authorized") {
                Class::Configuration
            } else if lower.contains("maximum sending rate")
                || lower.contains("daily message quota")
            {
                Class::Throttled
            } else {
                Class::Permanent
            }
        }
        "MailFromDomainNotVerifiedException"
        | "AccountSuspendedException"
        | "SendingPausedException"
        | "AccountSendingPausedException"
        | "ConfigurationSetSendingPausedException"
        | "ConfigurationSetDoesNotExist"
        | "NotFoundException"
        | "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "ExpiredToken" => Class::Configuration,
        "InternalFailure" | "InternalServerError" | "ServiceUnavailable" | "RequestTimeout" => {
            Class::Transient
        }
        _ => super::common::class_of_status(answer.status),
    };
    let class = match class {
        // A success status with an error body is not a success.
        Class::Delivered(_) => Class::Transient,
        c => c,
    };
    let text = match (code.is_empty(), message.is_empty()) {
        (true, true) => format!("HTTP {}", answer.status),
        (false, true) => format!("HTTP {} {code}", answer.status),
        (_, false) => format!("HTTP {} {code}: {}", answer.status, one_line(message)),
    };
    Classified::new(class, text)
}
