//! The route table: every path the API answers, the methods each path takes
//! and the endpoint each method reaches. Routing and the `Allow` header of a
//! 405 both read this one table, so they cannot disagree.
//!
//! Owns too: the scope a secret API key needs for each endpoint
//! ([`Endpoint::scope`]), which the edge checks before the endpoint runs.
//!
//! Must not: perform I/O or know what an endpoint does; the edge runs it.

use crate::accept::Scope;
use crate::http::compat::Dialect;

/// What a request reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Health,
    OpenApi,
    SendMessage,
    ListMessages,
    SendBatch,
    /// With the message id from the path.
    GetMessage,
    /// `PATCH /v1/messages/{id}`: a scheduled message's new time.
    RescheduleMessage,
    /// `POST /v1/messages/{id}/cancel`: cancels a scheduled message.
    CancelMessage,
    SubmitForm,
    /// The CORS preflight of [`Endpoint::SubmitForm`].
    FormPreflight,
    ListSuppressions,
    AddSuppressions,
    /// With the address from the path.
    RemoveSuppression,
    /// `POST /v1/suppressions/import?format=`: another provider's export.
    ImportSuppressions,
    /// `GET /unsubscribe/{token}`: the confirmation page (changes nothing).
    UnsubscribePage,
    /// `POST /unsubscribe/{token}`: the one-click unsubscribe (RFC 8058).
    Unsubscribe,
    /// `GET /unsubscribe/{token}/preferences`: the per-topic choices.
    UnsubscribePreferences,
    BenchSigning,
    BenchSmtp,
    /// `POST /bench/accept`: CPU of the accept path's compute, repeated.
    BenchAccept,
    /// `GET /bench/d1`: the D1 statements this isolate has prepared.
    BenchD1,
    ListWebhooks,
    CreateWebhook,
    /// With the endpoint id from the path, as are the four below.
    GetWebhook,
    DeleteWebhook,
    RotateWebhookSecret,
    TestWebhook,
    ListWebhookAttempts,
    /// `GET /v1/inbound-reports`: what came back (reports, provider events).
    ListInboundReports,
    /// With the record id from the path.
    GetInboundReport,
    /// With the record id from the path: the kept raw message.
    GetInboundReportRaw,
    /// `POST /v1/provider-events/{id}`: a smarthost provider's events, to
    /// the receiver the id names. Authenticated by the provider's
    /// signature, not by an API key.
    ProviderEvents,
    /// `GET /v1/privacy/export?email=`: every record about an address.
    PrivacyExport,
    /// `DELETE /v1/privacy/data?email=`: erase an address.
    PrivacyErase,
    /// `GET /v1/keys`: the tenant's keys, issued and from settings.
    ListKeys,
    /// `POST /v1/keys`: issue a key.
    CreateKey,
    /// With the key id from the path, as are the two below.
    GetKey,
    /// Revokes the key.
    RevokeKey,
    RotateKey,
    /// `GET /v1/templates`: the tenant's templates.
    ListTemplates,
    /// `POST /v1/templates`: save a draft.
    CreateTemplate,
    /// With the template id from the path, as are the two below.
    GetTemplate,
    /// Sends use the draft from now on.
    PublishTemplate,
    DeleteTemplate,
    /// `POST /v1/templates/import`: a SendGrid dynamic template as a draft.
    ImportTemplate,
    /// `GET /v1/upstreams`: every upstream's state and latest sessions.
    ListUpstreams,
    /// `POST /v1/upstreams/{name}/resume`: lift a pause or a cool-down.
    ResumeUpstream,
    /// `GET /t/o/{token}`: the open pixel. The token is the credential.
    TrackOpen,
    /// `GET`/`HEAD /t/c/{token}`: a tracked link's redirect.
    TrackClick,
    /// `GET /v1/stats`: counts and rates per hour or day, from rollups.
    GetStats,
    /// `GET /v1/stats/tags`: each tag's totals over a range.
    GetTagStats,
    /// `GET /v1/streams/marketing`: the reputation guard's state.
    GetMarketingStream,
    /// `POST /v1/streams/marketing/resume`: lift the guard's pause.
    ResumeMarketingStream,
    /// `GET /v1/domains`: the tenant's sending domains, added and from settings.
    ListDomains,
    /// `POST /v1/domains`: add a domain (its keys are made in the worker).
    AddDomain,
    /// With the domain from the path, as are the two below.
    GetDomain,
    DeleteDomain,
    /// `POST /v1/domains/{domain}/verify`: look its records up over DNS.
    VerifyDomain,
    /// `POST /v1/domains/{domain}/rotate`: make the next generation's keys.
    RotateDomain,
    /// `GET /dashboard`: the dashboard page.
    Dashboard,
    /// `GET /dashboard/{file}`: its script and style.
    DashboardAsset,
    /// `POST /emails`: Resend's send (see `http::compat`).
    ResendSendEmail,
    /// `POST /emails/batch`: Resend's batch send.
    ResendSendBatch,
    /// `GET /emails/{id}`: Resend's email object.
    ResendGetEmail,
    /// `PATCH /emails/{id}`: Resend's reschedule.
    ResendUpdateEmail,
    /// `POST /emails/{id}/cancel`: Resend's cancel.
    ResendCancelEmail,
    /// `POST /v3/mail/send`: SendGrid's v3 mail send.
    SendGridMailSend,
}

impl Endpoint {
    /// Endpoints for secret API keys. A page always sends `Origin`, so a
    /// request with one that reaches these carries a leaked key: the edge
    /// refuses it before looking at the key.
    pub fn takes_secret_key(self) -> bool {
        matches!(
            self,
            Endpoint::SendMessage
                | Endpoint::ListMessages
                | Endpoint::SendBatch
                | Endpoint::GetMessage
                | Endpoint::RescheduleMessage
                | Endpoint::CancelMessage
                | Endpoint::ListWebhooks
                | Endpoint::CreateWebhook
                | Endpoint::GetWebhook
                | Endpoint::DeleteWebhook
                | Endpoint::RotateWebhookSecret
                | Endpoint::TestWebhook
                | Endpoint::ListWebhookAttempts
                | Endpoint::ListSuppressions
                | Endpoint::AddSuppressions
                | Endpoint::RemoveSuppression
                | Endpoint::ImportSuppressions
                | Endpoint::ListInboundReports
                | Endpoint::GetInboundReport
                | Endpoint::GetInboundReportRaw
                | Endpoint::PrivacyExport
                | Endpoint::PrivacyErase
                | Endpoint::ListKeys
                | Endpoint::CreateKey
                | Endpoint::GetKey
                | Endpoint::RevokeKey
                | Endpoint::RotateKey
                | Endpoint::ListTemplates
                | Endpoint::CreateTemplate
                | Endpoint::GetTemplate
                | Endpoint::PublishTemplate
                | Endpoint::DeleteTemplate
                | Endpoint::ImportTemplate
                | Endpoint::ListUpstreams
                | Endpoint::ResumeUpstream
                | Endpoint::ListDomains
                | Endpoint::AddDomain
                | Endpoint::GetDomain
                | Endpoint::DeleteDomain
                | Endpoint::VerifyDomain
                | Endpoint::RotateDomain
                | Endpoint::GetStats
                | Endpoint::GetTagStats
                | Endpoint::GetMarketingStream
                | Endpoint::ResumeMarketingStream
                | Endpoint::ResendSendEmail
                | Endpoint::ResendSendBatch
                | Endpoint::ResendGetEmail
                | Endpoint::ResendUpdateEmail
                | Endpoint::ResendCancelEmail
                | Endpoint::SendGridMailSend
        )
    }

    /// The error shape the endpoint answers in: a provider's own for the
    /// doors that speak its API, so its SDK reads the error as its own.
    pub fn dialect(self) -> Dialect {
        match self {
            Endpoint::ResendSendEmail
            | Endpoint::ResendSendBatch
            | Endpoint::ResendGetEmail
            | Endpoint::ResendUpdateEmail
            | Endpoint::ResendCancelEmail => Dialect::Resend,
            Endpoint::SendGridMailSend => Dialect::SendGrid,
            _ => Dialect::Edgerelay,
        }
    }

    /// The scope a secret API key needs to reach this endpoint; `None` for
    /// the routes no secret key authenticates (health, the API description,
    /// unsubscribe pages, forms, provider events, benchmarks). Every
    /// endpoint is named here, so a new one must be classified.
    pub fn scope(self) -> Option<Scope> {
        match self {
            Endpoint::Health
            | Endpoint::OpenApi
            | Endpoint::SubmitForm
            | Endpoint::FormPreflight
            | Endpoint::UnsubscribePage
            | Endpoint::Unsubscribe
            | Endpoint::UnsubscribePreferences
            | Endpoint::ProviderEvents
            | Endpoint::BenchSigning
            | Endpoint::BenchSmtp
            | Endpoint::BenchAccept
            | Endpoint::BenchD1
            | Endpoint::Dashboard
            | Endpoint::DashboardAsset
            | Endpoint::TrackOpen
            | Endpoint::TrackClick => None,
            Endpoint::SendMessage
            | Endpoint::SendBatch
            | Endpoint::RescheduleMessage
            | Endpoint::CancelMessage
            | Endpoint::ResendSendEmail
            | Endpoint::ResendSendBatch
            | Endpoint::ResendUpdateEmail
            | Endpoint::ResendCancelEmail
            | Endpoint::SendGridMailSend => Some(Scope::Send),
            Endpoint::ListMessages
            | Endpoint::GetMessage
            | Endpoint::ListSuppressions
            | Endpoint::ListInboundReports
            | Endpoint::GetInboundReport
            | Endpoint::GetInboundReportRaw
            | Endpoint::GetStats
            | Endpoint::GetTagStats
            | Endpoint::ListTemplates
            | Endpoint::GetTemplate
            | Endpoint::GetMarketingStream
            | Endpoint::ResendGetEmail => Some(Scope::Read),
            Endpoint::ListWebhooks
            | Endpoint::CreateWebhook
            | Endpoint::GetWebhook
            | Endpoint::DeleteWebhook
            | Endpoint::RotateWebhookSecret
            | Endpoint::TestWebhook
            | Endpoint::ListWebhookAttempts
            | Endpoint::AddSuppressions
            | Endpoint::RemoveSuppression
            | Endpoint::ImportSuppressions
            | Endpoint::PrivacyExport
            | Endpoint::PrivacyErase
            | Endpoint::ListKeys
            | Endpoint::CreateKey
            | Endpoint::GetKey
            | Endpoint::RevokeKey
            | Endpoint::RotateKey
            | Endpoint::CreateTemplate
            | Endpoint::PublishTemplate
            | Endpoint::DeleteTemplate
            | Endpoint::ImportTemplate
            | Endpoint::ListUpstreams
            | Endpoint::ResumeUpstream
            | Endpoint::ResumeMarketingStream
            | Endpoint::ListDomains
            | Endpoint::AddDomain
            | Endpoint::GetDomain
            | Endpoint::DeleteDomain
            | Endpoint::VerifyDomain
            | Endpoint::RotateDomain => Some(Scope::Admin),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    Literal(&'static str),
    /// Any one non-empty segment, handed to the endpoint.
    Id,
}

/// One path and what each of its methods reaches.
struct Resource {
    path: &'static [Segment],
    methods: &'static [(&'static str, Endpoint)],
    /// Exists only while the benchmark routes are on (`BENCH_ROUTES`).
    bench: bool,
}

use Segment::{Id, Literal};

/// First match wins: `/v1/messages/batch` comes before `/v1/messages/{id}`.
const ROUTES: &[Resource] = &[
    Resource {
        path: &[Literal("health")],
        methods: &[("GET", Endpoint::Health)],
        bench: false,
    },
    Resource {
        path: &[Literal("openapi.json")],
        methods: &[("GET", Endpoint::OpenApi)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("messages")],
        methods: &[
            ("GET", Endpoint::ListMessages),
            ("POST", Endpoint::SendMessage),
        ],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("messages"), Literal("batch")],
        methods: &[("POST", Endpoint::SendBatch)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("messages"), Id],
        methods: &[
            ("GET", Endpoint::GetMessage),
            ("PATCH", Endpoint::RescheduleMessage),
        ],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("messages"), Id, Literal("cancel")],
        methods: &[("POST", Endpoint::CancelMessage)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("forms"), Literal("submit")],
        methods: &[
            ("POST", Endpoint::SubmitForm),
            ("OPTIONS", Endpoint::FormPreflight),
        ],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("webhooks")],
        methods: &[
            ("GET", Endpoint::ListWebhooks),
            ("POST", Endpoint::CreateWebhook),
        ],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("suppressions")],
        methods: &[
            ("GET", Endpoint::ListSuppressions),
            ("POST", Endpoint::AddSuppressions),
        ],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("webhooks"), Id],
        methods: &[
            ("GET", Endpoint::GetWebhook),
            ("DELETE", Endpoint::DeleteWebhook),
        ],
        bench: false,
    },
    Resource {
        path: &[Literal("unsubscribe"), Id],
        methods: &[
            ("GET", Endpoint::UnsubscribePage),
            ("POST", Endpoint::Unsubscribe),
        ],
        bench: false,
    },
    Resource {
        path: &[
            Literal("v1"),
            Literal("webhooks"),
            Id,
            Literal("rotate-secret"),
        ],
        methods: &[("POST", Endpoint::RotateWebhookSecret)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("webhooks"), Id, Literal("test")],
        methods: &[("POST", Endpoint::TestWebhook)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("webhooks"), Id, Literal("attempts")],
        methods: &[("GET", Endpoint::ListWebhookAttempts)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("suppressions"), Literal("import")],
        methods: &[("POST", Endpoint::ImportSuppressions)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("suppressions"), Id],
        methods: &[("DELETE", Endpoint::RemoveSuppression)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("inbound-reports")],
        methods: &[("GET", Endpoint::ListInboundReports)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("inbound-reports"), Id],
        methods: &[("GET", Endpoint::GetInboundReport)],
        bench: false,
    },
    Resource {
        path: &[
            Literal("v1"),
            Literal("inbound-reports"),
            Id,
            Literal("raw"),
        ],
        methods: &[("GET", Endpoint::GetInboundReportRaw)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("provider-events"), Id],
        methods: &[("POST", Endpoint::ProviderEvents)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("privacy"), Literal("export")],
        methods: &[("GET", Endpoint::PrivacyExport)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("privacy"), Literal("data")],
        methods: &[("DELETE", Endpoint::PrivacyErase)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("keys")],
        methods: &[("GET", Endpoint::ListKeys), ("POST", Endpoint::CreateKey)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("keys"), Id],
        methods: &[("GET", Endpoint::GetKey), ("DELETE", Endpoint::RevokeKey)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("keys"), Id, Literal("rotate")],
        methods: &[("POST", Endpoint::RotateKey)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("templates")],
        methods: &[
            ("GET", Endpoint::ListTemplates),
            ("POST", Endpoint::CreateTemplate),
        ],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("domains")],
        methods: &[
            ("GET", Endpoint::ListDomains),
            ("POST", Endpoint::AddDomain),
        ],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("templates"), Literal("import")],
        methods: &[("POST", Endpoint::ImportTemplate)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("templates"), Id],
        methods: &[
            ("GET", Endpoint::GetTemplate),
            ("DELETE", Endpoint::DeleteTemplate),
        ],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("domains"), Id],
        methods: &[
            ("GET", Endpoint::GetDomain),
            ("DELETE", Endpoint::DeleteDomain),
        ],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("templates"), Id, Literal("publish")],
        methods: &[("POST", Endpoint::PublishTemplate)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("domains"), Id, Literal("verify")],
        methods: &[("POST", Endpoint::VerifyDomain)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("domains"), Id, Literal("rotate")],
        methods: &[("POST", Endpoint::RotateDomain)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("upstreams")],
        methods: &[("GET", Endpoint::ListUpstreams)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("upstreams"), Id, Literal("resume")],
        methods: &[("POST", Endpoint::ResumeUpstream)],
        bench: false,
    },
    Resource {
        path: &[Literal("t"), Literal("o"), Id],
        methods: &[("GET", Endpoint::TrackOpen), ("HEAD", Endpoint::TrackOpen)],
        bench: false,
    },
    Resource {
        path: &[Literal("t"), Literal("c"), Id],
        methods: &[
            ("GET", Endpoint::TrackClick),
            ("HEAD", Endpoint::TrackClick),
        ],
        bench: false,
    },
    Resource {
        path: &[Literal("dashboard")],
        methods: &[("GET", Endpoint::Dashboard)],
        bench: false,
    },
    Resource {
        path: &[Literal("dashboard"), Id],
        methods: &[("GET", Endpoint::DashboardAsset)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("stats")],
        methods: &[("GET", Endpoint::GetStats)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("stats"), Literal("tags")],
        methods: &[("GET", Endpoint::GetTagStats)],
        bench: false,
    },
    Resource {
        path: &[Literal("v1"), Literal("streams"), Literal("marketing")],
        methods: &[("GET", Endpoint::GetMarketingStream)],
        bench: false,
    },
    Resource {
        path: &[
            Literal("v1"),
            Literal("streams"),
            Literal("marketing"),
            Literal("resume"),
        ],
        methods: &[("POST", Endpoint::ResumeMarketingStream)],
        bench: false,
    },
    Resource {
        path: &[Literal("unsubscribe"), Id, Literal("preferences")],
        methods: &[("GET", Endpoint::UnsubscribePreferences)],
        bench: false,
    },
    // Resend's API (`http::compat::resend`); the batch before `{id}`.
    Resource {
        path: &[Literal("emails")],
        methods: &[("POST", Endpoint::ResendSendEmail)],
        bench: false,
    },
    Resource {
        path: &[Literal("emails"), Literal("batch")],
        methods: &[("POST", Endpoint::ResendSendBatch)],
        bench: false,
    },
    Resource {
        path: &[Literal("emails"), Id],
        methods: &[
            ("GET", Endpoint::ResendGetEmail),
            ("PATCH", Endpoint::ResendUpdateEmail),
        ],
        bench: false,
    },
    Resource {
        path: &[Literal("emails"), Id, Literal("cancel")],
        methods: &[("POST", Endpoint::ResendCancelEmail)],
        bench: false,
    },
    // SendGrid's v3 mail send (`http::compat::sendgrid`).
    Resource {
        path: &[Literal("v3"), Literal("mail"), Literal("send")],
        methods: &[("POST", Endpoint::SendGridMailSend)],
        bench: false,
    },
    Resource {
        path: &[Literal("bench"), Literal("signing")],
        methods: &[("GET", Endpoint::BenchSigning)],
        bench: true,
    },
    Resource {
        path: &[Literal("bench"), Literal("smtp")],
        methods: &[("POST", Endpoint::BenchSmtp)],
        bench: true,
    },
    Resource {
        path: &[Literal("bench"), Literal("accept")],
        methods: &[("POST", Endpoint::BenchAccept)],
        bench: true,
    },
    Resource {
        path: &[Literal("bench"), Literal("d1")],
        methods: &[("GET", Endpoint::BenchD1)],
        bench: true,
    },
];

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed<'a> {
    /// The endpoint, and the path's id segment when it has one.
    Found(Endpoint, Option<&'a str>),
    /// The path exists but does not take this method; the value is what it
    /// takes, for the `Allow` header.
    MethodNotAllowed(String),
    NotFound,
}

/// Routes a request. `method` is compared as sent (methods are
/// case-sensitive), so one the table does not list is never taken for
/// another. Leading and trailing slashes are ignored.
pub fn route<'a>(method: &str, path: &'a str, bench_routes: bool) -> Routed<'a> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    for resource in ROUTES.iter().filter(|r| bench_routes || !r.bench) {
        let Some(id) = matches(resource.path, &segments) else {
            continue;
        };
        return match resource.methods.iter().find(|(m, _)| *m == method) {
            Some((_, endpoint)) => Routed::Found(*endpoint, id),
            None => Routed::MethodNotAllowed(
                resource
                    .methods
                    .iter()
                    .map(|(m, _)| *m)
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        };
    }
    Routed::NotFound
}

/// `Some(id segment, if any)` when the segments fit the pattern.
fn matches<'a>(pattern: &[Segment], segments: &[&'a str]) -> Option<Option<&'a str>> {
    if pattern.len() != segments.len() {
        return None;
    }
    let mut id = None;
    for (want, got) in pattern.iter().zip(segments) {
        match want {
            Literal(text) if text == got => {}
            Id if !got.is_empty() => id = Some(*got),
            _ => return None,
        }
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_table() {
        use Endpoint::*;
        let found = |e, id| Routed::Found(e, id);
        let allow = |m: &str| Routed::MethodNotAllowed(m.to_string());
        let table: &[(&str, &str, Routed<'_>)] = &[
            ("GET", "/health", found(Health, None)),
            ("GET", "/openapi.json", found(OpenApi, None)),
            ("POST", "/v1/messages", found(SendMessage, None)),
            ("GET", "/v1/messages/", found(ListMessages, None)),
            ("POST", "/v1/messages/batch", found(SendBatch, None)),
            (
                "GET",
                "/v1/messages/abc123",
                found(GetMessage, Some("abc123")),
            ),
            (
                "PATCH",
                "/v1/messages/abc123",
                found(RescheduleMessage, Some("abc123")),
            ),
            (
                "POST",
                "/v1/messages/abc123/cancel",
                found(CancelMessage, Some("abc123")),
            ),
            ("POST", "/v1/forms/submit", found(SubmitForm, None)),
            ("OPTIONS", "/v1/forms/submit", found(FormPreflight, None)),
            ("GET", "/v1/webhooks", found(ListWebhooks, None)),
            ("POST", "/v1/webhooks", found(CreateWebhook, None)),
            ("GET", "/v1/webhooks/wh_1", found(GetWebhook, Some("wh_1"))),
            (
                "DELETE",
                "/v1/webhooks/wh_1",
                found(DeleteWebhook, Some("wh_1")),
            ),
            (
                "POST",
                "/v1/webhooks/wh_1/rotate-secret",
                found(RotateWebhookSecret, Some("wh_1")),
            ),
            (
                "POST",
                "/v1/webhooks/wh_1/test",
                found(TestWebhook, Some("wh_1")),
            ),
            (
                "GET",
                "/v1/webhooks/wh_1/attempts",
                found(ListWebhookAttempts, Some("wh_1")),
            ),
            ("PUT", "/v1/webhooks/wh_1", allow("GET, DELETE")),
            ("GET", "/v1/webhooks/wh_1/test", allow("POST")),
            ("GET", "/v1/webhooks/wh_1/other", Routed::NotFound),
            ("GET", "/v1/suppressions", found(ListSuppressions, None)),
            ("POST", "/v1/suppressions", found(AddSuppressions, None)),
            (
                "DELETE",
                "/v1/suppressions/bob%40x.net",
                found(RemoveSuppression, Some("bob%40x.net")),
            ),
            ("DELETE", "/v1/suppressions", allow("GET, POST")),
            ("GET", "/v1/suppressions/bob@x.net", allow("DELETE")),
            (
                "GET",
                "/v1/inbound-reports",
                found(ListInboundReports, None),
            ),
            (
                "GET",
                "/v1/inbound-reports/rpt_1",
                found(GetInboundReport, Some("rpt_1")),
            ),
            (
                "GET",
                "/v1/inbound-reports/rpt_1/raw",
                found(GetInboundReportRaw, Some("rpt_1")),
            ),
            ("POST", "/v1/inbound-reports", allow("GET")),
            ("GET", "/v1/privacy/export", found(PrivacyExport, None)),
            ("DELETE", "/v1/privacy/data", found(PrivacyErase, None)),
            ("POST", "/v1/privacy/export", allow("GET")),
            ("GET", "/v1/privacy/data", allow("DELETE")),
            ("DELETE", "/v1/privacy/export", allow("GET")),
            ("GET", "/v1/privacy", Routed::NotFound),
            ("GET", "/v1/stats", found(GetStats, None)),
            ("POST", "/v1/stats", allow("GET")),
            ("GET", "/v1/stats/tags", found(GetTagStats, None)),
            (
                "GET",
                "/v1/streams/marketing",
                found(GetMarketingStream, None),
            ),
            (
                "POST",
                "/v1/streams/marketing/resume",
                found(ResumeMarketingStream, None),
            ),
            ("POST", "/v1/streams/marketing", allow("GET")),
            ("GET", "/v1/streams/marketing/resume", allow("POST")),
            ("GET", "/v1/streams/transactional", Routed::NotFound),
            ("GET", "/dashboard", found(Dashboard, None)),
            (
                "GET",
                "/dashboard/app.js",
                found(DashboardAsset, Some("app.js")),
            ),
            ("POST", "/dashboard", allow("GET")),
            ("DELETE", "/v1/privacy/data/x", Routed::NotFound),
            ("GET", "/v1/domains", found(ListDomains, None)),
            ("POST", "/v1/domains", found(AddDomain, None)),
            (
                "GET",
                "/v1/domains/example.com",
                found(GetDomain, Some("example.com")),
            ),
            (
                "DELETE",
                "/v1/domains/example.com",
                found(DeleteDomain, Some("example.com")),
            ),
            (
                "POST",
                "/v1/domains/example.com/verify",
                found(VerifyDomain, Some("example.com")),
            ),
            (
                "POST",
                "/v1/domains/example.com/rotate",
                found(RotateDomain, Some("example.com")),
            ),
            ("PUT", "/v1/domains", allow("GET, POST")),
            ("GET", "/v1/domains/example.com/verify", allow("POST")),
            ("GET", "/v1/upstreams", found(ListUpstreams, None)),
            (
                "POST",
                "/v1/upstreams/smtp.example.net%3A465/resume",
                found(ResumeUpstream, Some("smtp.example.net%3A465")),
            ),
            (
                "POST",
                "/v1/upstreams/127.0.0.1:2525/resume",
                found(ResumeUpstream, Some("127.0.0.1:2525")),
            ),
            ("POST", "/v1/upstreams", allow("GET")),
            ("GET", "/v1/upstreams/a:465/resume", allow("POST")),
            ("GET", "/v1/upstreams/a:465", Routed::NotFound),
            ("POST", "/v1/upstreams//resume", Routed::NotFound),
            (
                "POST",
                "/v1/provider-events/sg-main",
                found(ProviderEvents, Some("sg-main")),
            ),
            ("GET", "/v1/provider-events/sg-main", allow("POST")),
            ("POST", "/v1/provider-events", Routed::NotFound),
            ("POST", "/v1/provider-events/sg/x", Routed::NotFound),
            (
                "GET",
                "/unsubscribe/t0k",
                found(UnsubscribePage, Some("t0k")),
            ),
            ("POST", "/unsubscribe/t0k", found(Unsubscribe, Some("t0k"))),
            (
                "GET",
                "/unsubscribe/t0k/preferences",
                found(UnsubscribePreferences, Some("t0k")),
            ),
            ("PUT", "/unsubscribe/t0k", allow("GET, POST")),
            ("DELETE", "/unsubscribe/t0k", allow("GET, POST")),
            ("POST", "/unsubscribe/t0k/preferences", allow("GET")),
            ("GET", "/unsubscribe", Routed::NotFound),
            ("POST", "/unsubscribe/", Routed::NotFound),
            ("GET", "/unsubscribe/t0k/other", Routed::NotFound),
            ("GET", "/v1/keys", found(ListKeys, None)),
            ("POST", "/v1/keys", found(CreateKey, None)),
            ("GET", "/v1/keys/key_1", found(GetKey, Some("key_1"))),
            ("DELETE", "/v1/keys/key_1", found(RevokeKey, Some("key_1"))),
            (
                "POST",
                "/v1/keys/key_1/rotate",
                found(RotateKey, Some("key_1")),
            ),
            ("DELETE", "/v1/keys", allow("GET, POST")),
            ("POST", "/v1/keys/key_1", allow("GET, DELETE")),
            ("GET", "/v1/keys/key_1/rotate", allow("POST")),
            ("GET", "/v1/keys/key_1/other", Routed::NotFound),
            ("GET", "/t/o/t0k", found(TrackOpen, Some("t0k"))),
            ("HEAD", "/t/o/t0k", found(TrackOpen, Some("t0k"))),
            ("GET", "/t/c/t0k", found(TrackClick, Some("t0k"))),
            ("HEAD", "/t/c/t0k", found(TrackClick, Some("t0k"))),
            ("POST", "/t/c/t0k", allow("GET, HEAD")),
            ("GET", "/t/c", Routed::NotFound),
            ("GET", "/t/x/t0k", Routed::NotFound),
            ("GET", "/t/c/t0k/more", Routed::NotFound),
            ("POST", "/emails", found(ResendSendEmail, None)),
            ("POST", "/emails/batch", found(ResendSendBatch, None)),
            ("GET", "/emails/em_1", found(ResendGetEmail, Some("em_1"))),
            (
                "PATCH",
                "/emails/em_1",
                found(ResendUpdateEmail, Some("em_1")),
            ),
            (
                "POST",
                "/emails/em_1/cancel",
                found(ResendCancelEmail, Some("em_1")),
            ),
            ("GET", "/emails", allow("POST")),
            ("GET", "/emails/batch", allow("POST")),
            ("DELETE", "/emails/em_1", allow("GET, PATCH")),
            ("GET", "/emails/em_1/cancel", allow("POST")),
            ("POST", "/v3/mail/send", found(SendGridMailSend, None)),
            ("GET", "/v3/mail/send", allow("POST")),
            ("POST", "/v3/mail", Routed::NotFound),
            // Every other method on a known path: 405 with what it takes.
            ("TRACE", "/health", allow("GET")),
            ("HEAD", "/health", allow("GET")),
            ("POST", "/openapi.json", allow("GET")),
            ("TRACE", "/openapi.json", allow("GET")),
            ("DELETE", "/v1/messages", allow("GET, POST")),
            ("OPTIONS", "/v1/messages", allow("GET, POST")),
            ("TRACE", "/v1/messages/batch", allow("POST")),
            ("GET", "/v1/messages/batch", allow("POST")),
            ("PUT", "/v1/messages/abc123", allow("GET, PATCH")),
            ("GET", "/v1/forms/submit", allow("POST, OPTIONS")),
            // Methods outside the table are never another method.
            ("QUERY", "/v1/messages", allow("GET, POST")),
            ("get", "/v1/messages", allow("GET, POST")),
            // Unknown paths, whatever the method.
            ("GET", "/", Routed::NotFound),
            ("GET", "/v1", Routed::NotFound),
            ("GET", "/v1/messages/abc/events", Routed::NotFound),
            ("GET", "/v1//messages", Routed::NotFound),
            ("TRACE", "/nowhere", Routed::NotFound),
            // Benchmark routes do not exist while they are off.
            ("GET", "/bench/signing", Routed::NotFound),
            ("TRACE", "/bench/smtp", Routed::NotFound),
            ("POST", "/bench/accept", Routed::NotFound),
            ("GET", "/bench/d1", Routed::NotFound),
        ];
        for (method, path, want) in table {
            assert_eq!(&route(method, path, false), want, "{method} {path}");
        }
        assert_eq!(
            route("GET", "/bench/signing", true),
            found(BenchSigning, None)
        );
        assert_eq!(route("POST", "/bench/smtp", true), found(BenchSmtp, None));
        assert_eq!(
            route("POST", "/bench/accept", true),
            found(BenchAccept, None)
        );
        assert_eq!(route("GET", "/bench/d1", true), found(BenchD1, None));
        assert_eq!(route("GET", "/bench/smtp", true), allow("POST"));
    }

    #[test]
    fn the_provider_doors_answer_in_their_providers_shapes() {
        use crate::http::compat::Dialect::*;
        for (method, path, dialect) in [
            ("POST", "/emails", Resend),
            ("POST", "/emails/batch", Resend),
            ("GET", "/emails/x", Resend),
            ("PATCH", "/emails/x", Resend),
            ("POST", "/emails/x/cancel", Resend),
            ("POST", "/v3/mail/send", SendGrid),
            ("POST", "/v1/messages", Edgerelay),
            ("GET", "/health", Edgerelay),
        ] {
            let Routed::Found(endpoint, _) = route(method, path, false) else {
                panic!("{method} {path} is not routed");
            };
            assert_eq!(endpoint.dialect(), dialect, "{method} {path}");
        }
    }

    #[test]
    fn only_the_api_routes_take_secret_keys() {
        for (method, path) in [
            ("POST", "/v1/messages"),
            ("GET", "/v1/messages"),
            ("POST", "/v1/messages/batch"),
            ("GET", "/v1/messages/x"),
            ("GET", "/v1/webhooks"),
            ("POST", "/v1/webhooks"),
            ("GET", "/v1/webhooks/x"),
            ("DELETE", "/v1/webhooks/x"),
            ("POST", "/v1/webhooks/x/rotate-secret"),
            ("POST", "/v1/webhooks/x/test"),
            ("GET", "/v1/webhooks/x/attempts"),
            ("GET", "/v1/suppressions"),
            ("POST", "/v1/suppressions"),
            ("DELETE", "/v1/suppressions/a@x.net"),
            ("GET", "/v1/inbound-reports"),
            ("GET", "/v1/inbound-reports/x"),
            ("GET", "/v1/inbound-reports/x/raw"),
            ("GET", "/v1/privacy/export"),
            ("DELETE", "/v1/privacy/data"),
            ("GET", "/v1/keys"),
            ("POST", "/v1/keys"),
            ("GET", "/v1/keys/x"),
            ("DELETE", "/v1/keys/x"),
            ("POST", "/v1/keys/x/rotate"),
            ("GET", "/v1/templates"),
            ("POST", "/v1/templates"),
            ("GET", "/v1/templates/x"),
            ("DELETE", "/v1/templates/x"),
            ("POST", "/v1/templates/x/publish"),
            ("GET", "/v1/upstreams"),
            ("POST", "/v1/upstreams/a:465/resume"),
            ("GET", "/v1/domains"),
            ("POST", "/v1/domains"),
            ("GET", "/v1/domains/example.com"),
            ("DELETE", "/v1/domains/example.com"),
            ("POST", "/v1/domains/example.com/verify"),
            ("POST", "/v1/domains/example.com/rotate"),
            ("POST", "/emails"),
            ("POST", "/emails/batch"),
            ("GET", "/emails/x"),
            ("PATCH", "/emails/x"),
            ("POST", "/emails/x/cancel"),
            ("POST", "/v3/mail/send"),
        ] {
            let Routed::Found(endpoint, _) = route(method, path, false) else {
                panic!("{method} {path} is not routed");
            };
            assert!(endpoint.takes_secret_key(), "{method} {path}");
        }
        for endpoint in [
            Endpoint::Health,
            Endpoint::OpenApi,
            Endpoint::SubmitForm,
            Endpoint::FormPreflight,
            Endpoint::BenchSigning,
            Endpoint::BenchSmtp,
            Endpoint::BenchAccept,
            Endpoint::BenchD1,
            Endpoint::UnsubscribePage,
            Endpoint::Unsubscribe,
            Endpoint::UnsubscribePreferences,
            // The token is the credential of a tracked link or pixel.
            Endpoint::TrackOpen,
            Endpoint::TrackClick,
            // Providers sign their requests; no API key reaches it.
            Endpoint::ProviderEvents,
        ] {
            assert!(!endpoint.takes_secret_key(), "{endpoint:?}");
        }
    }

    /// Every route and the scope it needs, and which of four keys may call
    /// it: one with only `send`, only `read`, only `admin`, and all three.
    const SCOPE_TABLE: &[(&str, &str, Option<Scope>, [bool; 4])] = {
        use Scope::*;
        const NONE: [bool; 4] = [true; 4];
        const SEND: [bool; 4] = [true, false, false, true];
        const READ: [bool; 4] = [false, true, true, true];
        const ADMIN: [bool; 4] = [false, false, true, true];
        &[
            ("GET", "/health", None, NONE),
            ("GET", "/openapi.json", None, NONE),
            ("POST", "/v1/messages", Some(Send), SEND),
            ("GET", "/v1/messages", Some(Read), READ),
            ("POST", "/v1/messages/batch", Some(Send), SEND),
            ("GET", "/v1/messages/x", Some(Read), READ),
            ("PATCH", "/v1/messages/x", Some(Send), SEND),
            ("POST", "/v1/messages/x/cancel", Some(Send), SEND),
            ("POST", "/v1/forms/submit", None, NONE),
            ("OPTIONS", "/v1/forms/submit", None, NONE),
            ("GET", "/v1/webhooks", Some(Admin), ADMIN),
            ("POST", "/v1/webhooks", Some(Admin), ADMIN),
            ("GET", "/v1/webhooks/x", Some(Admin), ADMIN),
            ("DELETE", "/v1/webhooks/x", Some(Admin), ADMIN),
            ("POST", "/v1/webhooks/x/rotate-secret", Some(Admin), ADMIN),
            ("POST", "/v1/webhooks/x/test", Some(Admin), ADMIN),
            ("GET", "/v1/webhooks/x/attempts", Some(Admin), ADMIN),
            ("GET", "/v1/suppressions", Some(Read), READ),
            ("POST", "/v1/suppressions", Some(Admin), ADMIN),
            ("DELETE", "/v1/suppressions/a@x.net", Some(Admin), ADMIN),
            ("POST", "/v1/suppressions/import", Some(Admin), ADMIN),
            ("GET", "/unsubscribe/t", None, NONE),
            ("POST", "/unsubscribe/t", None, NONE),
            ("GET", "/unsubscribe/t/preferences", None, NONE),
            ("GET", "/v1/templates", Some(Read), READ),
            ("POST", "/v1/templates", Some(Admin), ADMIN),
            ("GET", "/v1/templates/x", Some(Read), READ),
            ("DELETE", "/v1/templates/x", Some(Admin), ADMIN),
            ("POST", "/v1/templates/x/publish", Some(Admin), ADMIN),
            ("POST", "/v1/templates/import", Some(Admin), ADMIN),
            ("GET", "/v1/inbound-reports", Some(Read), READ),
            ("GET", "/v1/inbound-reports/x", Some(Read), READ),
            ("GET", "/v1/inbound-reports/x/raw", Some(Read), READ),
            ("POST", "/v1/provider-events/x", None, NONE),
            ("GET", "/v1/privacy/export", Some(Admin), ADMIN),
            ("DELETE", "/v1/privacy/data", Some(Admin), ADMIN),
            ("GET", "/v1/stats", Some(Read), READ),
            ("GET", "/v1/stats/tags", Some(Read), READ),
            ("GET", "/v1/domains", Some(Admin), ADMIN),
            ("POST", "/v1/domains", Some(Admin), ADMIN),
            ("GET", "/v1/domains/example.com", Some(Admin), ADMIN),
            ("DELETE", "/v1/domains/example.com", Some(Admin), ADMIN),
            ("POST", "/v1/domains/example.com/verify", Some(Admin), ADMIN),
            ("POST", "/v1/domains/example.com/rotate", Some(Admin), ADMIN),
            ("GET", "/dashboard", None, NONE),
            ("GET", "/dashboard/app.js", None, NONE),
            ("GET", "/t/o/t0k", None, NONE),
            ("HEAD", "/t/c/t0k", None, NONE),
            ("GET", "/v1/keys", Some(Admin), ADMIN),
            ("POST", "/v1/keys", Some(Admin), ADMIN),
            ("GET", "/v1/keys/x", Some(Admin), ADMIN),
            ("DELETE", "/v1/keys/x", Some(Admin), ADMIN),
            ("POST", "/v1/keys/x/rotate", Some(Admin), ADMIN),
            ("GET", "/v1/upstreams", Some(Admin), ADMIN),
            ("POST", "/v1/upstreams/a:465/resume", Some(Admin), ADMIN),
            ("GET", "/v1/streams/marketing", Some(Read), READ),
            ("POST", "/v1/streams/marketing/resume", Some(Admin), ADMIN),
            ("POST", "/emails", Some(Send), SEND),
            ("POST", "/emails/batch", Some(Send), SEND),
            ("GET", "/emails/x", Some(Read), READ),
            ("PATCH", "/emails/x", Some(Send), SEND),
            ("POST", "/emails/x/cancel", Some(Send), SEND),
            ("POST", "/v3/mail/send", Some(Send), SEND),
            ("GET", "/bench/signing", None, NONE),
            ("POST", "/bench/smtp", None, NONE),
            ("POST", "/bench/accept", None, NONE),
            ("GET", "/bench/d1", None, NONE),
        ]
    };

    #[test]
    fn every_route_needs_its_scope() {
        use crate::accept::keys::require_scope;
        use crate::accept::{AuthenticatedKey, KeyLimits};
        let key = |scopes: &[Scope]| AuthenticatedKey {
            id: "k".into(),
            domains: vec![],
            tenant: "t".into(),
            streams: Default::default(),
            unsubscribe_base_url: None,
            scopes: scopes.to_vec(),
            limits: KeyLimits::default(),
        };
        let keys = [
            key(&[Scope::Send]),
            key(&[Scope::Read]),
            key(&[Scope::Admin]),
            key(&Scope::ALL),
        ];
        let mut seen = Vec::new();
        for (method, path, scope, may) in SCOPE_TABLE {
            let Routed::Found(endpoint, _) = route(method, path, true) else {
                panic!("{method} {path} is not routed");
            };
            seen.push(endpoint);
            assert_eq!(endpoint.scope(), *scope, "{method} {path}");
            // A route needs a scope exactly when a secret key reaches it.
            assert_eq!(
                endpoint.takes_secret_key(),
                scope.is_some(),
                "{method} {path}"
            );
            for (key, may) in keys.iter().zip(may) {
                let allowed = endpoint
                    .scope()
                    .is_none_or(|s| require_scope(key, s).is_ok());
                assert_eq!(allowed, *may, "{method} {path} with {:?}", key.scopes);
            }
        }
        // The table names every endpoint of the route table.
        for resource in ROUTES {
            for (method, endpoint) in resource.methods {
                assert!(
                    seen.contains(endpoint),
                    "{method} {endpoint:?} is not in the table"
                );
            }
        }
    }

    /// openapi.json documents exactly the routes (benchmarks aside), each
    /// with the scope it needs in `x-edgerelay-scope` and in words.
    #[test]
    fn the_api_description_lists_every_route_with_its_scope() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../openapi.json")).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let template = |path: &str| -> String {
            path.split('/')
                .map(|s| if s.starts_with('{') { "{}" } else { s })
                .collect::<Vec<_>>()
                .join("/")
        };
        let mut documented: Vec<(String, String)> = paths
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .filter(|m| *m != "parameters")
                    .map(move |m| (m.to_ascii_uppercase(), template(path)))
            })
            .collect();
        documented.sort();
        let mut routed: Vec<(String, String)> = Vec::new();
        for resource in ROUTES.iter().filter(|r| !r.bench) {
            let path: String = resource
                .path
                .iter()
                .map(|s| match s {
                    Literal(text) => format!("/{text}"),
                    Id => "/{}".to_string(),
                })
                .collect();
            for (method, endpoint) in resource.methods {
                routed.push((method.to_string(), path.clone()));
                let (_, op) = paths
                    .iter()
                    .find(|(p, _)| template(p) == path)
                    .unwrap_or_else(|| panic!("{path} is not documented"));
                let op = &op[method.to_ascii_lowercase()];
                let marked = op.get("x-edgerelay-scope").and_then(|s| s.as_str());
                assert_eq!(
                    marked,
                    endpoint.scope().map(Scope::as_str),
                    "{method} {path}: x-edgerelay-scope"
                );
                if let Some(scope) = endpoint.scope() {
                    let words = format!("Needs an API key with the `{}` scope", scope.as_str());
                    let description = op["description"].as_str().unwrap_or_default();
                    assert!(
                        description.contains(&words),
                        "{method} {path}: {description}"
                    );
                    assert!(
                        op["responses"].get("403").is_some(),
                        "{method} {path}: 403 is not documented"
                    );
                }
            }
        }
        routed.sort();
        assert_eq!(documented, routed);
    }
}
