//! Workers glue: the fetch, queue (jobs, dead letters, webhooks) and
//! scheduled (sweep) entry points, routing each request to its endpoint, and
//! the platform (sockets, D1, R2, queues, rate limits, the per-key `Meter`
//! and per-upstream `Shaper` Durable Objects, Turnstile).
//!
//! Thin on purpose: every rule about email lives in the core; this module only
//! moves bytes between the platform and the core. Exists only on wasm32.
//! Must not: decide what the core can decide natively, or be imported by it.

mod accept;
mod accept_ports;
mod api_keys;
mod api_transport;
mod batch;
#[cfg(feature = "diagnostics")]
mod bench;
#[cfg(feature = "diagnostics")]
mod bench_smtp;
mod bodies;
mod compat;
mod consumer;
mod d1;
mod delivery_lease;
mod dns;
mod domains;
pub mod email_events;
mod forms;
#[cfg(all(feature = "diagnostics", target_arch = "wasm32"))]
mod heap;
mod http;
mod idempotent;
mod immediate;
mod inbound_mail;
mod lifecycle;
mod log;
mod message_views;
mod meter;
mod outage;
mod platform;
mod privacy;
mod producer_intake;
mod provenance;
mod provider_events;
mod queue_writer;
mod random;
mod reports;
mod reputation;
mod safety_net;
mod scheduling;
mod screening;
mod shaper;
mod signing;
mod smtp_driver;
mod stats;
mod suppressions;
mod sweep;
mod templates;
mod tracking;
mod unsubscribe;
mod upstreams;
mod webhook_delivery;
mod webhooks;

use worker::{
    Context, Env, ForwardableEmailMessage, MessageBatch, Request, Response, Result,
    ScheduleContext, ScheduledEvent, event,
};

use self::http::internal;
use self::meter::Usage;
use self::platform::{Loaded, load_for_request};

use crate::accept::limits::Cost;
use crate::accept::{ApiError, AuthenticatedKey, send};
use crate::events::tracking::HitKind;
use crate::http::delivery_mode::DeliveryMode;
use crate::http::routes::{self, Endpoint, Routed};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    api_transport::remember_env(&env);
    // What the request charged its key's limits, for the answer's headers.
    let mut usage = Usage::default();
    // The doors that speak another provider's API answer errors in its shape.
    let dialect = match routes::route(&req.inner().method(), &req.path(), false) {
        Routed::Found(endpoint, _) => endpoint.dialect(),
        _ => crate::http::compat::Dialect::Edgerelay,
    };
    let mut resp = match route(req, env, &ctx, &mut usage).await {
        Ok(resp) => resp,
        Err(e) => compat::error(dialect, &e)?,
    };
    usage.stamp(&mut resp);
    Ok(resp)
}

async fn route(
    mut req: Request,
    env: Env,
    ctx: &Context,
    usage: &mut Usage,
) -> std::result::Result<Response, ApiError> {
    let path = req.path();
    // The method as sent: `Request::method` reads any method it does not
    // know as GET.
    let method = req.inner().method();
    // The benchmark routes exist only in a `diagnostics` build.
    #[cfg(feature = "diagnostics")]
    let bench_routes = path.starts_with("/bench/")
        && platform::load(&env).is_ok_and(|loaded| bench_smtp::enabled(&loaded));
    #[cfg(not(feature = "diagnostics"))]
    let bench_routes = false;
    let (endpoint, id) = match routes::route(&method, &path, bench_routes) {
        Routed::Found(endpoint, id) => (endpoint, id.unwrap_or_default()),
        Routed::MethodNotAllowed(allowed) => return Err(ApiError::method_not_allowed(&allowed)),
        Routed::NotFound => return Err(ApiError::not_found(format!("no route for {path}"))),
    };
    // Secret keys belong on servers. A page (which always sends Origin)
    // holding one has leaked it; refuse before looking at the key.
    if endpoint.takes_secret_key() && header(&req, "Origin").is_some() {
        return Err(ApiError::forbidden(
            "secret_key_in_browser",
            "Authorization",
            "secret API keys must not be used from a browser; use a publishable key with /v1/forms/submit",
        ));
    }
    match endpoint {
        // A route that does nothing: the floor the accept path is measured against.
        Endpoint::Health => http::json(200, &serde_json::json!({"ok": true})).map_err(internal),
        // The API description is a static asset (`[assets]` in wrangler.toml),
        // read through the binding.
        Endpoint::OpenApi => env
            .assets("ASSETS")
            .map_err(internal)?
            .fetch_request(req)
            .await
            .map_err(internal),
        Endpoint::FormPreflight => {
            let loaded = load_for_request(&env)?;
            forms::preflight(&req, &loaded).map_err(internal)
        }
        Endpoint::SubmitForm => {
            let loaded = load_for_request(&env)?;
            forms::submit(req, &env, &loaded).await.map_err(internal)
        }
        Endpoint::SendMessage => {
            let loaded = load_for_request(&env)?;
            let key = authorize(&env, &loaded, &req, endpoint).await?;
            let url = req.url().map_err(internal)?;
            let pairs: Vec<_> = url.query_pairs().collect();
            let pairs = || pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref()));
            let dry_run = crate::http::dry_run::from_query(pairs());
            // A dry run accepts no message; a request refused before it
            // could send gives its message back below.
            let sends = matches!(dry_run, Ok(false));
            // The meter's answer and the request body arrive together: the
            // body is only read here, nothing is accepted before the charge.
            let (charged, body) = futures_util::future::join(
                usage.charge(&env, &key, Cost::sending(u32::from(sends))),
                read_body(&mut req, &loaded),
            )
            .await;
            charged?;
            let answer = async {
                let idempotency_key = crate::accept::idempotency::parse_key(
                    header(&req, crate::accept::idempotency::HEADER).as_deref(),
                )?;
                let mode = DeliveryMode::from_query(pairs())?;
                let dry_run = dry_run?;
                let origin = url.origin().ascii_serialization();
                let origin = Some(origin.as_str());
                let body = body?;
                let body = templates::fill_in(&env, &key, &body).await?;
                if dry_run {
                    // Stores nothing, so an Idempotency-Key is neither claimed
                    // nor recorded: the real send under that key comes later.
                    let call = accept::Call { mode, origin };
                    return accept::dry_run(&env, &loaded, &key, &body, call).await;
                }
                match (idempotency_key, mode) {
                    (Some(k), _) => {
                        let call = accept::Call { mode, origin };
                        idempotent::accept_once(&env, ctx, &loaded, &key, &body, &k, call).await
                    }
                    (None, DeliveryMode::Queued) => {
                        accept::accept(&env, &loaded, &key, &body, origin).await
                    }
                    (None, DeliveryMode::Immediate) => {
                        immediate::accept_immediate(&env, ctx, &loaded, &key, &body, origin).await
                    }
                }
            }
            .await;
            if sends && !meter::accepted(&answer) {
                usage.refund(&env, 1).await;
            }
            answer
        }
        Endpoint::ListMessages => {
            let loaded = load_for_request(&env)?;
            let key = authorize(&env, &loaded, &req, endpoint).await?;
            usage.charge(&env, &key, Cost::REQUEST).await?;
            let url = req.url().map_err(internal)?;
            message_views::list(&env, &key, &url).await
        }
        Endpoint::SendBatch => {
            let loaded = load_for_request(&env)?;
            let key = authorize(&env, &loaded, &req, endpoint).await?;
            let origin = req.url().map_err(internal)?.origin().ascii_serialization();
            let body = read_body(&mut req, &loaded).await;
            let items = match &body {
                Ok(body) => crate::http::batch::split(body),
                Err(e) => Err(e.clone()),
            };
            // The whole batch is reserved, or none of it.
            let count = items.as_ref().map_or(0, Vec::len);
            let count = u32::try_from(count).unwrap_or(u32::MAX);
            usage.charge(&env, &key, Cost::sending(count)).await?;
            let items = items?;
            match batch::accept_batch(&env, &loaded, &key, items, Some(&origin)).await {
                Ok((resp, refused)) => {
                    usage.refund(&env, refused).await;
                    Ok(resp)
                }
                Err(e) => {
                    usage.refund(&env, count).await;
                    Err(e)
                }
            }
        }
        Endpoint::ResendSendEmail
        | Endpoint::ResendSendBatch
        | Endpoint::ResendGetEmail
        | Endpoint::ResendUpdateEmail
        | Endpoint::ResendCancelEmail
        | Endpoint::SendGridMailSend => {
            let loaded = load_for_request(&env)?;
            let key = authorize(&env, &loaded, &req, endpoint).await?;
            let door = compat::Door {
                env: &env,
                ctx,
                loaded: &loaded,
                key: &key,
                id,
            };
            compat::serve(endpoint, &mut req, door, usage).await
        }
        Endpoint::GetMessage => {
            let loaded = load_for_request(&env)?;
            let key = authorize(&env, &loaded, &req, endpoint).await?;
            usage.charge(&env, &key, Cost::REQUEST).await?;
            message_views::detail(&env, &key, id).await
        }
        Endpoint::RescheduleMessage | Endpoint::CancelMessage => {
            let loaded = load_for_request(&env)?;
            let key = authorize(&env, &loaded, &req, endpoint).await?;
            usage.charge(&env, &key, Cost::REQUEST).await?;
            let answer = if endpoint == Endpoint::CancelMessage {
                scheduling::cancel(&env, &key, id).await?;
                serde_json::json!({"id": id, "status": "canceled"})
            } else {
                let body = read_body(&mut req, &loaded).await?;
                let at = crate::accept::schedule::reschedule_body(&body)?;
                let due = scheduling::reschedule(&env, &key, id, (&at).into()).await?;
                serde_json::json!({
                    "id": id,
                    "status": "scheduled",
                    "scheduled_at": crate::events::time::rfc3339_ms(due * 1000),
                })
            };
            self::http::json(200, &answer).map_err(internal)
        }
        Endpoint::ListWebhooks
        | Endpoint::CreateWebhook
        | Endpoint::GetWebhook
        | Endpoint::DeleteWebhook
        | Endpoint::RotateWebhookSecret
        | Endpoint::TestWebhook
        | Endpoint::ListWebhookAttempts => {
            let loaded = load_for_request(&env)?;
            let key = authorize(&env, &loaded, &req, endpoint).await?;
            usage.charge(&env, &key, Cost::REQUEST).await?;
            match endpoint {
                Endpoint::ListWebhooks => webhooks::list(&env, &key).await,
                Endpoint::CreateWebhook => {
                    let body = read_body(&mut req, &loaded).await?;
                    webhooks::create(&env, &loaded, &key, &body).await
                }
                Endpoint::GetWebhook => webhooks::get(&env, &key, id).await,
                Endpoint::DeleteWebhook => webhooks::delete(&env, &key, id).await,
                Endpoint::RotateWebhookSecret => webhooks::rotate(&env, &key, id).await,
                Endpoint::TestWebhook => {
                    let body = read_body(&mut req, &loaded).await?;
                    webhooks::test(&env, &key, id, &body).await
                }
                _ => {
                    let url = req.url().map_err(internal)?;
                    webhooks::attempts(&env, &key, id, &url).await
                }
            }
        }
        Endpoint::ListSuppressions
        | Endpoint::AddSuppressions
        | Endpoint::RemoveSuppression
        | Endpoint::ImportSuppressions => {
            let loaded = load_for_request(&env)?;
            let key = authorize(&env, &loaded, &req, endpoint).await?;
            usage.charge(&env, &key, Cost::REQUEST).await?;
            let url = req.url().map_err(internal)?;
            let db = d1::Db::open(&env).map_err(internal)?;
            match endpoint {
                Endpoint::ListSuppressions => suppressions::list(&db, &key, &url).await,
                Endpoint::AddSuppressions => {
                    let body = read_body(&mut req, &loaded).await?;
                    suppressions::add(&db, &key, &body).await
                }
                Endpoint::ImportSuppressions => {
                    let limit = crate::http::suppressions::import::body_limit();
                    let body = http::read_body(&mut req, &limit).await?;
                    suppressions::import(&db, &key, &url, &body).await
                }
                _ => suppressions::remove(&db, &key, id, &url).await,
            }
        }
        Endpoint::ListInboundReports
        | Endpoint::GetInboundReport
        | Endpoint::GetInboundReportRaw => {
            let loaded = load_for_request(&env)?;
            let key = authorize(&env, &loaded, &req, endpoint).await?;
            usage.charge(&env, &key, Cost::REQUEST).await?;
            match endpoint {
                Endpoint::ListInboundReports => {
                    let url = req.url().map_err(internal)?;
                    reports::list(&env, &key, &url).await
                }
                Endpoint::GetInboundReport => reports::get(&env, &key, id, false).await,
                _ => reports::get(&env, &key, id, true).await,
            }
        }
        Endpoint::ProviderEvents => {
            let loaded = load_for_request(&env)?;
            provider_events::receive(&mut req, &env, &loaded, id).await
        }
        Endpoint::ListKeys
        | Endpoint::CreateKey
        | Endpoint::GetKey
        | Endpoint::RevokeKey
        | Endpoint::RotateKey => {
            let loaded = load_for_request(&env)?;
            let key = authorize(&env, &loaded, &req, endpoint).await?;
            usage.charge(&env, &key, Cost::REQUEST).await?;
            match endpoint {
                Endpoint::ListKeys => api_keys::list(&env, &loaded, &key).await,
                Endpoint::CreateKey => {
                    let body = read_body(&mut req, &loaded).await?;
                    api_keys::create(&env, &key, &body).await
                }
                Endpoint::GetKey => api_keys::get(&env, &loaded, &key, id).await,
                Endpoint::RevokeKey => api_keys::revoke(&env, &loaded, &key, id).await,
                _ => {
                    let body = read_body(&mut req, &loaded).await?;
                    api_keys::rotate(&env, &loaded, &key, id, &body).await
                }
            }
        }
        Endpoint::ListTemplates
        | Endpoint::CreateTemplate
        | Endpoint::GetTemplate
        | Endpoint::PublishTemplate
        | Endpoint::DeleteTemplate
        | Endpoint::ImportTemplate => {
            let loaded = load_for_request(&env)?;
            let key = authorize(&env, &loaded, &req, endpoint).await?;
            usage.charge(&env, &key, Cost::REQUEST).await?;
            match endpoint {
                Endpoint::ListTemplates => templates::list(&env, &key).await,
                Endpoint::CreateTemplate => {
                    let body = read_body(&mut req, &loaded).await?;
                    templates::create(&env, &key, &body).await
                }
                Endpoint::ImportTemplate => {
                    let body = read_body(&mut req, &loaded).await?;
                    templates::import(&env, &key, &body).await
                }
                Endpoint::GetTemplate => templates::get(&env, &key, id).await,
                Endpoint::PublishTemplate => templates::publish(&env, &key, id).await,
                _ => templates::delete(&env, &key, id).await,
            }
        }
        Endpoint::PrivacyExport | Endpoint::PrivacyErase => {
            let loaded = load_for_request(&env)?;
            let key = authorize(&env, &loaded, &req, endpoint).await?;
            usage.charge(&env, &key, Cost::REQUEST).await?;
            let url = req.url().map_err(internal)?;
            match endpoint {
                Endpoint::PrivacyExport => privacy::export(&env, &key, &url).await,
                _ => {
                    let issued = api_keys::issued_ids(&env, &key.tenant).await?;
                    let key_ids: Vec<&str> = loaded
                        .settings
                        .accept
                        .api_keys
                        .iter()
                        .filter(|k| k.tenant() == key.tenant)
                        .map(|k| k.id.as_str())
                        .chain(issued.iter().map(String::as_str))
                        .collect();
                    privacy::erase(&env, &key, &key_ids, &url).await
                }
            }
        }
        Endpoint::ListDomains
        | Endpoint::AddDomain
        | Endpoint::GetDomain
        | Endpoint::DeleteDomain
        | Endpoint::VerifyDomain
        | Endpoint::RotateDomain => {
            let loaded = load_for_request(&env)?;
            let key = authorize(&env, &loaded, &req, endpoint).await?;
            usage.charge(&env, &key, Cost::REQUEST).await?;
            match endpoint {
                Endpoint::ListDomains => domains::list(&env, &loaded, &key).await,
                Endpoint::AddDomain => {
                    let body = read_body(&mut req, &loaded).await?;
                    domains::create(&env, &loaded, &key, &body).await
                }
                Endpoint::GetDomain => domains::get(&env, &loaded, &key, id).await,
                Endpoint::DeleteDomain => domains::delete(&env, &loaded, &key, id).await,
                Endpoint::RotateDomain => domains::rotate(&env, &loaded, &key, id).await,
                _ => domains::verify(&env, &loaded, &key, id).await,
            }
        }
        Endpoint::ListUpstreams | Endpoint::ResumeUpstream => {
            let loaded = load_for_request(&env)?;
            let key = authorize(&env, &loaded, &req, endpoint).await?;
            usage.charge(&env, &key, Cost::REQUEST).await?;
            let db = d1::Db::open(&env).map_err(internal)?;
            match endpoint {
                Endpoint::ListUpstreams => upstreams::list(&env, &db, &loaded, &key).await,
                _ => upstreams::resume(&env, &db, &loaded, &key, id).await,
            }
        }
        Endpoint::GetStats | Endpoint::GetTagStats => {
            let loaded = load_for_request(&env)?;
            let key = authorize(&env, &loaded, &req, endpoint).await?;
            usage.charge(&env, &key, Cost::REQUEST).await?;
            let url = req.url().map_err(internal)?;
            let which = if endpoint == Endpoint::GetStats {
                stats::Report::Buckets
            } else {
                stats::Report::Tags
            };
            stats::get(&env, &key, &url, which).await
        }
        Endpoint::GetMarketingStream | Endpoint::ResumeMarketingStream => {
            let loaded = load_for_request(&env)?;
            let key = authorize(&env, &loaded, &req, endpoint).await?;
            usage.charge(&env, &key, Cost::REQUEST).await?;
            match endpoint {
                Endpoint::GetMarketingStream => reputation::get(&env, &loaded, &key).await,
                _ => reputation::resume(&env, &loaded, &key).await,
            }
        }
        Endpoint::Dashboard | Endpoint::DashboardAsset => {
            let name = (endpoint == Endpoint::DashboardAsset).then_some(id);
            match crate::http::dashboard::asset(name) {
                Some(asset) => http::asset(&env, &asset).await.map_err(internal),
                None => Err(ApiError::not_found(format!("no route for {path}"))),
            }
        }
        Endpoint::UnsubscribePage => unsubscribe::show(&env, id, false).await,
        Endpoint::UnsubscribePreferences => unsubscribe::show(&env, id, true).await,
        Endpoint::Unsubscribe => unsubscribe::post(req, &env, id).await,
        Endpoint::TrackOpen => tracking::hit(&req, &env, ctx, HitKind::Open, id).await,
        Endpoint::TrackClick => tracking::hit(&req, &env, ctx, HitKind::Click, id).await,
        #[cfg(feature = "diagnostics")]
        Endpoint::BenchSigning => {
            let loaded = load_for_request(&env)?;
            bench::signing(&req, &loaded.settings.accept.send).await
        }
        #[cfg(feature = "diagnostics")]
        Endpoint::BenchAccept => {
            let loaded = load_for_request(&env)?;
            // A benchmark route (no scope in the route table) that signs.
            let key = api_keys::authorize(&env, &loaded, &req, crate::accept::Scope::Send).await?;
            let body = read_body(&mut req, &loaded).await?;
            bench::accept(&env, &req, &loaded, &key, &body).await
        }
        #[cfg(feature = "diagnostics")]
        Endpoint::BenchD1 => http::json(200, &d1::counts()).map_err(internal),
        #[cfg(not(feature = "diagnostics"))]
        Endpoint::BenchSigning
        | Endpoint::BenchSmtp
        | Endpoint::BenchAccept
        | Endpoint::BenchD1 => Err(ApiError::not_found(format!("no route for {path}"))),
        #[cfg(feature = "diagnostics")]
        Endpoint::BenchSmtp => {
            let loaded = load_for_request(&env)?;
            // A benchmark route (no scope in the route table) that sends.
            let key = api_keys::authorize(&env, &loaded, &req, crate::accept::Scope::Send).await?;
            usage.charge(&env, &key, Cost::REQUEST).await?;
            let query = req
                .url()
                .map_err(internal)?
                .query()
                .unwrap_or("")
                .to_string();
            let body = read_body(&mut req, &loaded).await?;
            bench_smtp::smtp(&env, &loaded, &key, &query, &body).await
        }
    }
}

/// The request's secret API key, holding the scope `endpoint` needs
/// (checked before the endpoint runs).
async fn authorize(
    env: &Env,
    loaded: &Loaded,
    req: &Request,
    endpoint: Endpoint,
) -> std::result::Result<AuthenticatedKey, ApiError> {
    let scope = endpoint.scope().ok_or_else(|| {
        ApiError::misconfigured(format!("{endpoint:?} is not reached with an API key"))
    })?;
    api_keys::authorize(env, loaded, req, scope).await
}

/// The request body, refused with 413 as soon as it is over the limit.
async fn read_body(req: &mut Request, loaded: &Loaded) -> std::result::Result<Vec<u8>, ApiError> {
    http::read_body(req, &send::request_body_limit(&loaded.settings.accept.send)).await
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

#[event(queue)]
async fn queue(batch: MessageBatch<serde_json::Value>, env: Env, _ctx: Context) -> Result<()> {
    api_transport::remember_env(&env);
    if webhook_delivery::is_webhooks_queue(&env, &batch.queue()) {
        return webhook_delivery::consume(batch, env).await;
    }
    #[cfg(all(feature = "diagnostics", target_arch = "wasm32"))]
    {
        use crate::events::log_line::LogValue;
        // The benchmarks read each invocation's heap from this log line.
        let messages = batch.raw_iter().count() as u64;
        let mark = heap::start();
        let result = consumer::consume(batch, env).await;
        let usage = heap::usage(mark);
        log::info(
            "consumer_heap",
            &[
                ("messages", LogValue::Num(messages)),
                ("heap_at_start", LogValue::Num(usage.held_at_start as u64)),
                ("heap_peak", LogValue::Num(usage.peak as u64)),
                ("linear_memory", LogValue::Num(usage.linear_memory as u64)),
            ],
        );
        result
    }
    #[cfg(not(all(feature = "diagnostics", target_arch = "wasm32")))]
    consumer::consume(batch, env).await
}

/// Mail routed to the worker by Email Routing: reports that come back
/// (see `inbound_mail`).
#[event(email)]
async fn email(message: ForwardableEmailMessage, env: Env, _ctx: Context) -> Result<()> {
    inbound_mail::receive(message, env).await
}

/// The cron trigger: the reconciliation sweep (see `delivery::recovery`),
/// the reputation guard's review (see `events::reputation`), the sending
/// domains' re-verification (see `http::domains::recheck`), then the
/// retention purge (see `events::retention`).
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    api_transport::remember_env(&env);
    sweep::run(&env).await;
}
