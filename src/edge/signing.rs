//! DKIM signatures on the edge: RSA through the runtime's WebCrypto, Ed25519
//! with the core's own signer.
//!
//! The pure-Rust RSA-2048 signature costs about 10 ms of CPU in wasm, the
//! whole budget of a free-plan invocation; the runtime's native RSA takes a
//! fraction of that. The core's two-phase interface makes the swap possible:
//! [`PendingSignature::signed_data`] is exactly what RSASSA-PKCS1-v1_5 with
//! SHA-256 signs, and PKCS#1 v1.5 is deterministic, so both signers produce
//! the same bytes. Imported keys are cached for the isolate's life (settings
//! never change under a running isolate).
//!
//! Must not: decide which keys sign (the core does), or sign anything but
//! prepared DKIM data.

use std::cell::RefCell;
use std::collections::HashMap;

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::accept::send::{self, Prepared, Signed};
use crate::accept::{ApiError, SendSettings};
use crate::message::DkimKey;
use crate::queue::DeliveryJob;

thread_local! {
    /// Imported CryptoKeys by their index in `SendSettings::dkim_keys`.
    static IMPORTED: RefCell<HashMap<usize, JsValue>> = RefCell::new(HashMap::new());
}

pub(super) fn js_error(what: &str, e: JsValue) -> String {
    let detail = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"));
    format!("WebCrypto {what}: {detail}")
}

/// `crypto.subtle` and one of its methods.
fn subtle_method(name: &str) -> Result<(JsValue, Function), String> {
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))
        .map_err(|e| js_error("lookup", e))?;
    let subtle =
        Reflect::get(&crypto, &JsValue::from_str("subtle")).map_err(|e| js_error("lookup", e))?;
    let method = Reflect::get(&subtle, &JsValue::from_str(name))
        .map_err(|e| js_error("lookup", e))?
        .dyn_into::<Function>()
        .map_err(|_| format!("WebCrypto: crypto.subtle.{name} is not a function"))?;
    Ok((subtle, method))
}

pub(super) async fn call(name: &str, args: &Array) -> Result<JsValue, String> {
    let (subtle, method) = subtle_method(name)?;
    let promise = Reflect::apply(&method, &subtle, args)
        .map_err(|e| js_error(name, e))?
        .dyn_into::<Promise>()
        .map_err(|_| format!("WebCrypto: {name} did not return a promise"))?;
    JsFuture::from(promise).await.map_err(|e| js_error(name, e))
}

fn rsa_algorithm() -> Result<Object, String> {
    let algorithm = Object::new();
    Reflect::set(
        &algorithm,
        &JsValue::from_str("name"),
        &JsValue::from_str("RSASSA-PKCS1-v1_5"),
    )
    .map_err(|e| js_error("algorithm", e))?;
    Reflect::set(
        &algorithm,
        &JsValue::from_str("hash"),
        &JsValue::from_str("SHA-256"),
    )
    .map_err(|e| js_error("algorithm", e))?;
    Ok(algorithm)
}

/// The key as a non-extractable CryptoKey, imported once per isolate when
/// `index` names a key of the settings (`None`: a domain's key opened for
/// one message, imported for it alone).
async fn imported(index: Option<usize>, key: &DkimKey) -> Result<JsValue, String> {
    if let Some(found) = index.and_then(|i| IMPORTED.with(|c| c.borrow().get(&i).cloned())) {
        return Ok(found);
    }
    let der = key.pkcs8_der().map_err(|e| e.to_string())?;
    let args = Array::of5(
        &JsValue::from_str("pkcs8"),
        &Uint8Array::from(der.as_slice()).into(),
        &rsa_algorithm()?.into(),
        &JsValue::FALSE,
        &Array::of1(&JsValue::from_str("sign")).into(),
    );
    let crypto_key = call("importKey", &args).await?;
    if let Some(index) = index {
        IMPORTED.with(|c| c.borrow_mut().insert(index, crypto_key.clone()));
    }
    Ok(crypto_key)
}

/// RSASSA-PKCS1-v1_5 / SHA-256 over `data` with WebCrypto.
pub async fn webcrypto_rsa_sign(
    index: Option<usize>,
    key: &DkimKey,
    data: &[u8],
) -> Result<Vec<u8>, String> {
    let crypto_key = imported(index, key).await?;
    let args = Array::of3(
        &rsa_algorithm()?.into(),
        &crypto_key,
        &Uint8Array::from(data).into(),
    );
    let signature = call("sign", &args).await?;
    Ok(Uint8Array::new(&signature).to_vec())
}

/// Signs every pending signature (RSA by WebCrypto, Ed25519 natively) and
/// builds the delivery job. Any failure refuses the message: nothing leaves
/// unsigned that should have been signed. Every entrance signs here: the API,
/// forms and queue producers alike.
pub async fn sign(prepared: Prepared, settings: &SendSettings) -> Result<DeliveryJob, ApiError> {
    let signatures = signatures(&prepared, settings).await?;
    send::finish(prepared, signatures)
}

/// [`sign`] for a message of any number of copies (one per recipient when
/// each carries its own unsubscribe link).
pub async fn sign_all(prepared: Prepared, settings: &SendSettings) -> Result<Signed, ApiError> {
    let signatures = signatures(&prepared, settings).await?;
    send::finish_all(prepared, signatures)
}

async fn signatures(
    prepared: &Prepared,
    settings: &SendSettings,
) -> Result<Vec<Vec<u8>>, ApiError> {
    let mut signatures = Vec::with_capacity(prepared.pending.len());
    for (index, pending) in &prepared.pending {
        let key = prepared.signing_key(settings, *index)?;
        let cached = prepared
            .is_configured_key(settings, *index)
            .then_some(*index);
        let signature = if key.is_rsa() {
            webcrypto_rsa_sign(cached, key, pending.signed_data()).await
        } else {
            key.sign(pending).map_err(|e| e.to_string())
        };
        signatures.push(
            signature.map_err(|e| ApiError::misconfigured(format!("DKIM signing failed: {e}")))?,
        );
    }
    Ok(signatures)
}
