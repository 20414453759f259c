//! The route table: every path the API answers, the methods each path takes
//! and the endpoint each method reaches. Routing and the `Allow` header of a
//! 405 both read this one table, so they cannot disagree.
//!
//! Must not: perform I/O or know what an endpoint does; the edge runs it.

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
    SubmitForm,
    /// The CORS preflight of [`Endpoint::SubmitForm`].
    FormPreflight,
    ListSuppressions,
    AddSuppressions,
    /// With the address from the path.
    RemoveSuppression,
    /// `GET /unsubscribe/{token}`: the confirmation page (changes nothing).
    UnsubscribePage,
    /// `POST /unsubscribe/{token}`: the one-click unsubscribe (RFC 8058).
    Unsubscribe,
    /// `GET /unsubscribe/{token}/preferences`: the per-topic choices.
    UnsubscribePreferences,
    BenchSigning,
    BenchSmtp,
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
    /// `GET /t/o/{token}`: the open pixel. The token is the credential.
    TrackOpen,
    /// `GET`/`HEAD /t/c/{token}`: a tracked link's redirect.
    TrackClick,
    /// `GET /v1/stats`: counts and rates per hour or day, from rollups.
    GetStats,
    /// `GET /v1/stats/tags`: each tag's totals over a range.
    GetTagStats,
    /// `GET /dashboard`: the dashboard page.
    Dashboard,
    /// `GET /dashboard/{file}`: its script and style.
    DashboardAsset,
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
                | Endpoint::ListInboundReports
                | Endpoint::GetInboundReport
                | Endpoint::GetInboundReportRaw
                | Endpoint::PrivacyExport
                | Endpoint::PrivacyErase
                | Endpoint::GetStats
                | Endpoint::GetTagStats
        )
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
        methods: &[("GET", Endpoint::GetMessage)],
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
        path: &[Literal("unsubscribe"), Id, Literal("preferences")],
        methods: &[("GET", Endpoint::UnsubscribePreferences)],
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
            ("GET", "/dashboard", found(Dashboard, None)),
            (
                "GET",
                "/dashboard/app.js",
                found(DashboardAsset, Some("app.js")),
            ),
            ("POST", "/dashboard", allow("GET")),
            ("DELETE", "/v1/privacy/data/x", Routed::NotFound),
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
            ("GET", "/t/o/t0k", found(TrackOpen, Some("t0k"))),
            ("HEAD", "/t/o/t0k", found(TrackOpen, Some("t0k"))),
            ("GET", "/t/c/t0k", found(TrackClick, Some("t0k"))),
            ("HEAD", "/t/c/t0k", found(TrackClick, Some("t0k"))),
            ("POST", "/t/c/t0k", allow("GET, HEAD")),
            ("GET", "/t/c", Routed::NotFound),
            ("GET", "/t/x/t0k", Routed::NotFound),
            ("GET", "/t/c/t0k/more", Routed::NotFound),
            // Every other method on a known path: 405 with what it takes.
            ("TRACE", "/health", allow("GET")),
            ("HEAD", "/health", allow("GET")),
            ("POST", "/openapi.json", allow("GET")),
            ("TRACE", "/openapi.json", allow("GET")),
            ("DELETE", "/v1/messages", allow("GET, POST")),
            ("OPTIONS", "/v1/messages", allow("GET, POST")),
            ("TRACE", "/v1/messages/batch", allow("POST")),
            ("GET", "/v1/messages/batch", allow("POST")),
            ("PUT", "/v1/messages/abc123", allow("GET")),
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
        ];
        for (method, path, want) in table {
            assert_eq!(&route(method, path, false), want, "{method} {path}");
        }
        assert_eq!(
            route("GET", "/bench/signing", true),
            found(BenchSigning, None)
        );
        assert_eq!(route("POST", "/bench/smtp", true), found(BenchSmtp, None));
        assert_eq!(route("GET", "/bench/smtp", true), allow("POST"));
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
}
