//! `GET /bench/signing`: CPU per DKIM signature measured inside the runtime.
//! Exists only in a build with the `diagnostics` feature, and answers only
//! with `BENCH_ROUTES=on` there (it spends CPU on request).
//!
//! `?signer=webcrypto-rsa|rust-rsa|ed25519&n=50` signs the same prepared DKIM
//! data `n` times with the first configured key of that algorithm, after one
//! untimed warm-up (the WebCrypto key import), and answers the elapsed time
//! and the signature, so signers can be compared byte for byte.
//! `POST /bench/accept?n=50` (with an API key) runs the accept path's
//! compute for the posted send request n times, after one untimed warm-up,
//! and answers the elapsed time (`accept::compute`: no storage call).
//! Must not: own the parameters or the answer (`diagnostics::bench` does), or
//! sign with anything but the accept path's own signers.

use worker::{Request, Response};

use crate::accept::{ApiError, AuthenticatedKey, SendSettings};
use crate::diagnostics::bench::{BenchAcceptRequest, BenchSigner, BenchSigningRequest};
use crate::message::{DkimAlgorithm, DkimKey, PendingSignature, UnsignedMessage};

use super::platform::Loaded;
use super::{
    accept,
    http::{self, internal},
    signing,
};

/// A fixed message: the same signed data on every run.
const SAMPLE: &[u8] = b"From: Bench <bench@example.com>\r\nTo: r@example.net\r\nSubject: bench\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <bench@example.com>\r\n\r\nbody\r\n";

fn key_for(settings: &SendSettings, algorithm: DkimAlgorithm) -> Option<(usize, &DkimKey)> {
    settings
        .dkim_keys
        .iter()
        .enumerate()
        .find(|(_, k)| k.identity().algorithm == algorithm)
}

async fn sign_once(
    signer: BenchSigner,
    index: usize,
    key: &DkimKey,
    pending: &PendingSignature,
) -> Result<Vec<u8>, String> {
    match signer {
        BenchSigner::WebCryptoRsa => {
            signing::webcrypto_rsa_sign(Some(index), key, pending.signed_data()).await
        }
        BenchSigner::RustRsa | BenchSigner::Ed25519 => key.sign(pending).map_err(|e| e.to_string()),
    }
}

pub async fn signing(req: &Request, settings: &SendSettings) -> Result<Response, ApiError> {
    let url = req.url().map_err(internal)?;
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let request =
        BenchSigningRequest::from_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let algorithm = request.signer.algorithm();
    let (index, key) = key_for(settings, algorithm)
        .ok_or_else(|| ApiError::not_found(format!("no {algorithm} key in DKIM_KEYS")))?;
    let pending = UnsignedMessage::new(SAMPLE)
        .prepare(key.identity(), 1_700_000_000)
        .map_err(|e| ApiError::misconfigured(e.to_string()))?;

    let signature = sign_once(request.signer, index, key, &pending)
        .await
        .map_err(ApiError::misconfigured)?;
    let started = js_sys::Date::now();
    for _ in 0..request.rounds {
        sign_once(request.signer, index, key, &pending)
            .await
            .map_err(ApiError::misconfigured)?;
    }
    let elapsed_ms = js_sys::Date::now() - started;
    let answer = request.answer(elapsed_ms, pending.signed_data(), &signature);
    http::json(200, &answer).map_err(internal)
}

/// `POST /bench/accept`: the accept path's compute, `n` times.
pub async fn accept(
    env: &worker::Env,
    req: &Request,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    body: &[u8],
) -> Result<Response, ApiError> {
    let url = req.url().map_err(internal)?;
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let request =
        BenchAcceptRequest::from_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    // Warm-up, untimed: the WebCrypto key import, and the answer's sizes.
    let (copies, bytes) = accept::compute(env, loaded, key, body).await?;
    let started = js_sys::Date::now();
    for _ in 0..request.rounds {
        accept::compute(env, loaded, key, body).await?;
    }
    let elapsed_ms = js_sys::Date::now() - started;
    http::json(200, &request.answer(elapsed_ms, copies, bytes)).map_err(internal)
}
