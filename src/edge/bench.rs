//! `GET /bench/signing`: CPU per DKIM signature measured inside the runtime,
//! served only with `BENCH_ROUTES=on` (off by default; never enable it in
//! production, it spends CPU on request).
//!
//! `?signer=webcrypto-rsa|rust-rsa|ed25519&n=50` signs the same prepared DKIM
//! data `n` times with the first configured key of that algorithm, after one
//! untimed warm-up (the WebCrypto key import), and answers the elapsed time
//! and the signature, so signers can be compared byte for byte.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use worker::{Request, Response};

use crate::accept::ApiError;
use crate::message::{DkimAlgorithm, DkimKey, PendingSignature, UnsignedMessage};
use crate::settings::Settings;

use super::{
    http::{self, internal},
    signing,
};

/// Most signatures per request, so one call stays well inside a CPU limit.
const MAX_ROUNDS: u32 = 500;

/// A fixed message: the same signed data on every run.
const SAMPLE: &[u8] = b"From: Bench <bench@example.com>\r\nTo: r@example.net\r\nSubject: bench\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <bench@example.com>\r\n\r\nbody\r\n";

#[derive(Clone, Copy, PartialEq)]
enum Signer {
    WebCryptoRsa,
    RustRsa,
    Ed25519,
}

fn key_for(settings: &Settings, algorithm: DkimAlgorithm) -> Option<(usize, &DkimKey)> {
    settings
        .dkim_keys
        .iter()
        .enumerate()
        .find(|(_, k)| k.identity().algorithm == algorithm)
}

async fn sign_once(
    signer: Signer,
    index: usize,
    key: &DkimKey,
    pending: &PendingSignature,
) -> Result<Vec<u8>, String> {
    match signer {
        Signer::WebCryptoRsa => {
            signing::webcrypto_rsa_sign(index, key, pending.signed_data()).await
        }
        Signer::RustRsa | Signer::Ed25519 => key.sign(pending).map_err(|e| e.to_string()),
    }
}

pub async fn signing(req: &Request, settings: &Settings) -> Result<Response, ApiError> {
    let url = req.url().map_err(internal)?;
    let mut signer_name = String::new();
    let mut rounds: u32 = 50;
    for (name, value) in url.query_pairs() {
        match name.as_ref() {
            "signer" => signer_name = value.into_owned(),
            "n" => rounds = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    let signer = match signer_name.as_str() {
        "webcrypto-rsa" => Signer::WebCryptoRsa,
        "rust-rsa" => Signer::RustRsa,
        "ed25519" => Signer::Ed25519,
        _ => {
            return Err(ApiError::not_found(
                "signer must be webcrypto-rsa, rust-rsa or ed25519",
            ));
        }
    };
    let rounds = rounds.min(MAX_ROUNDS);
    let algorithm = if signer == Signer::Ed25519 {
        DkimAlgorithm::Ed25519Sha256
    } else {
        DkimAlgorithm::RsaSha256
    };
    let (index, key) = key_for(settings, algorithm)
        .ok_or_else(|| ApiError::not_found(format!("no {algorithm} key in DKIM_KEYS")))?;
    let pending = UnsignedMessage::new(SAMPLE)
        .prepare(key.identity(), 1_700_000_000)
        .map_err(|e| ApiError::misconfigured(e.to_string()))?;

    let signature = sign_once(signer, index, key, &pending)
        .await
        .map_err(ApiError::misconfigured)?;
    let started = js_sys::Date::now();
    for _ in 0..rounds {
        sign_once(signer, index, key, &pending)
            .await
            .map_err(ApiError::misconfigured)?;
    }
    let elapsed_ms = js_sys::Date::now() - started;
    http::json(
        200,
        &serde_json::json!({
            "signer": signer_name,
            "n": rounds,
            "elapsed_ms": elapsed_ms,
            "per_signature_ms": if rounds > 0 { elapsed_ms / f64::from(rounds) } else { 0.0 },
            "signed_data": STANDARD.encode(pending.signed_data()),
            "signature": STANDARD.encode(signature),
        }),
    )
    .map_err(internal)
}
