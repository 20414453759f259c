//! Asking a DNS-over-HTTPS resolver (`DNS_RESOLVER_URL`) for TXT records,
//! in its JSON form, for the dry run's DMARC and BIMI lint.
//!
//! Every name is asked at once; each answer is bounded in size and time, and
//! a resolver that fails, hangs or answers nonsense gives
//! [`TxtAnswer::Unavailable`] for that name, never an error of the request.
//! Must not: judge the records (`message::lint::dns` does).

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::{Either, join_all, select};
use worker::{Delay, Fetch, Headers, Method, Request, RequestInit};

use crate::message::lint::dns::{TxtAnswer, read_doh_json};

/// How long one lookup may take.
const TIMEOUT: Duration = Duration::from_secs(3);
/// The most of an answer read (TXT answers for these names are small).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Each name's TXT answer, in the order asked.
pub async fn txt_all(resolver: &str, names: &[String]) -> Vec<(String, TxtAnswer)> {
    let lookups = names.iter().map(|name| async move {
        let answer = match select(
            Box::pin(txt(resolver, name)),
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

async fn txt(resolver: &str, name: &str) -> TxtAnswer {
    let Ok(mut url) = url::Url::parse(resolver) else {
        return TxtAnswer::Unavailable;
    };
    url.query_pairs_mut()
        .append_pair("name", name)
        .append_pair("type", "TXT");
    let headers = Headers::new();
    if headers.set("Accept", "application/dns-json").is_err() {
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
    read_doh_json(&body)
}
