//! Asking a DNS-over-HTTPS resolver (`DNS_RESOLVER_URL`) for TXT records,
//! in its JSON form or RFC 8484's wire format (`DNS_RESOLVER_FORMAT`), for
//! the dry run's DMARC and BIMI lint and for domain verification.
//!
//! Every name is asked at once; each answer is bounded in size and time, and
//! a resolver that fails, hangs or answers nonsense gives
//! [`TxtAnswer::Unavailable`] for that name, never an error of the request.
//! Must not: judge the records (`message::lint::dns` does).

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::{Either, join_all, select};
use worker::{Delay, Fetch, Headers, Method, Request, RequestInit};

use crate::message::lint::dns::wire::{read_txt_response, txt_query_param};
use crate::message::lint::dns::{TxtAnswer, read_doh_json};

/// How long one lookup may take.
const TIMEOUT: Duration = Duration::from_secs(3);
/// The most of an answer read (TXT answers for these names are small).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Each name's TXT answer, in the order asked; `wire`: in RFC 8484's
/// wire format, else the JSON form.
pub async fn txt_all(resolver: &str, wire: bool, names: &[String]) -> Vec<(String, TxtAnswer)> {
    let lookups = names.iter().map(|name| async move {
        let answer = match select(
            Box::pin(txt(resolver, wire, name)),
            Box::pin(Delay::from(TIMEOUT)),
        )
        .await
        {
            Either::Left((answer, _)) => answer,
            Either::Right(_) => TxtAnswer::Unavailable,
        };
        (name.clone(), answer)
    });
    join_all(lookups).await
}

async fn txt(resolver: &str, wire: bool, name: &str) -> TxtAnswer {
    let Ok(mut url) = url::Url::parse(resolver) else {
        return TxtAnswer::Unavailable;
    };
    let accept = if wire {
        let Some(query) = txt_query_param(name) else {
            return TxtAnswer::Unavailable;
        };
        url.query_pairs_mut().append_pair("dns", &query);
        "application/dns-message"
    } else {
        url.query_pairs_mut()
            .append_pair("name", name)
            .append_pair("type", "TXT");
        "application/dns-json"
    };
    let headers = Headers::new();
    if headers.set("Accept", accept).is_err() {
        return TxtAnswer::Unavailable;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let Ok(request) = Request::new_with_init(url.as_str(), &init) else {
        return TxtAnswer::Unavailable;
    };
    let Ok(mut resp) = Fetch::Request(request).send().await else {
        return TxtAnswer::Unavailable;
    };
    if resp.status_code() != 200 {
        return TxtAnswer::Unavailable;
    }
    let Ok(mut stream) = resp.stream() else {
        return TxtAnswer::Unavailable;
    };
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return TxtAnswer::Unavailable;
        };
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return TxtAnswer::Unavailable;
        }
        body.extend_from_slice(&chunk);
    }
    if wire {
        read_txt_response(&body)
    } else {
        read_doh_json(&body)
    }
}
