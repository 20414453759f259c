//! `/v1/domains` at the edge: making a domain's keys (RSA-2048 by the
//! runtime's WebCrypto `generateKey`, Ed25519 from the CSPRNG through the
//! core's own signer), sealing and opening them (AES-256-GCM by WebCrypto
//! under the key `http::domains::seal` derives), storing them, asking DNS
//! for a verification, and answering.
//!
//! A private key is in memory only between its making (or opening) and its
//! sealing (or use); it is never logged, answered or stored in clear. A
//! `DOMAIN_KEYS_SECRET` that opens no stored key fails closed with a
//! configuration error that names the setting, never its value.
//! Must not: decide which records a domain publishes or whether they verify
//! (`http::domains`), or log anything about a key but its selector.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use js_sys::{Array, Object, Reflect, Uint8Array};
use serde_json::{Value, json};
use wasm_bindgen::JsValue;
use worker::{Env, Response};

use crate::accept::{ApiError, AuthenticatedKey};
use crate::events::time::rfc3339_ms;
use crate::http::domains::recheck::{self, Update};
use crate::http::domains::records::{RecordInputs, records};
use crate::http::domains::rotation::{self, KeyRole, Phase, Transition};
use crate::http::domains::seal::{
    DKIM_PRIVATE_KEYS, NONCE_LEN, associated_data, parse_stored, purpose_key, stored,
};
use crate::http::domains::verify::{Report, judge, names};
use crate::http::domains::{
    DomainView, KeyView, Source, configured_domains, parse_add, parse_path, selector,
};
use crate::message::{DkimAlgorithm, DkimKey, Domain};

use super::d1::Db;
use super::d1::domains::{DomainKeyRow, DomainRow, NewDomainKey};
use super::dns;
use super::email_events;
use super::http::{self, internal};
use super::log;
use super::platform::{Loaded, now_ms};
use super::random;
use super::signing::{call, js_error};
use crate::events::log_line::LogValue;

/// The most domains one list answers.
const MAX_LISTED: usize = 500;

fn set(object: &Object, name: &str, value: &JsValue) -> Result<(), String> {
    Reflect::set(object, &JsValue::from_str(name), value)
        .map(|_| ())
        .map_err(|e| js_error("algorithm", e))
}

/// A new RSA-2048 private key as PKCS#8 DER, made by WebCrypto.
async fn generate_rsa_pkcs8() -> Result<Vec<u8>, String> {
    let algorithm = Object::new();
    set(&algorithm, "name", &JsValue::from_str("RSASSA-PKCS1-v1_5"))?;
    set(&algorithm, "modulusLength", &JsValue::from_f64(2048.0))?;
    set(
        &algorithm,
        "publicExponent",
        &Uint8Array::from(&[1u8, 0, 1][..]).into(),
    )?;
    set(&algorithm, "hash", &JsValue::from_str("SHA-256"))?;
    let usages = Array::of2(&JsValue::from_str("sign"), &JsValue::from_str("verify"));
    let pair = call(
        "generateKey",
        &Array::of3(&algorithm.into(), &JsValue::TRUE, &usages.into()),
    )
    .await?;
    let private = Reflect::get(&pair, &JsValue::from_str("privateKey"))
        .map_err(|e| js_error("generateKey", e))?;
    let der = call(
        "exportKey",
        &Array::of2(&JsValue::from_str("pkcs8"), &private),
    )
    .await?;
    Ok(Uint8Array::new(&der).to_vec())
}

/// The AES-GCM key derived from `master` for DKIM keys, for `usage`.
async fn aes_key(master: &str, usage: &str) -> Result<JsValue, String> {
    let raw = purpose_key(master, DKIM_PRIVATE_KEYS);
    let algorithm = Object::new();
    set(&algorithm, "name", &JsValue::from_str("AES-GCM"))?;
    call(
        "importKey",
        &Array::of5(
            &JsValue::from_str("raw"),
            &Uint8Array::from(&raw[..]).into(),
            &algorithm.into(),
            &JsValue::FALSE,
            &Array::of1(&JsValue::from_str(usage)).into(),
        ),
    )
    .await
}

fn gcm(nonce: &[u8], aad: &[u8]) -> Result<Object, String> {
    let algorithm = Object::new();
    set(&algorithm, "name", &JsValue::from_str("AES-GCM"))?;
    set(&algorithm, "iv", &Uint8Array::from(nonce).into())?;
    set(&algorithm, "additionalData", &Uint8Array::from(aad).into())?;
    set(&algorithm, "tagLength", &JsValue::from_f64(128.0))?;
    Ok(algorithm)
}

/// Seals `secret` under the first master secret.
async fn seal(master: &str, aad: &[u8], secret: &[u8]) -> Result<String, String> {
    let nonce = random::secret::<NONCE_LEN>().ok_or("no randomness for a nonce")?;
    let key = aes_key(master, "encrypt").await?;
    let sealed = call(
        "encrypt",
        &Array::of3(
            &gcm(&nonce, aad)?.into(),
            &key,
            &Uint8Array::from(secret).into(),
        ),
    )
    .await?;
    Ok(stored(&nonce, &Uint8Array::new(&sealed).to_vec()))
}

/// Opens a sealed key with whichever master secret opens it.
async fn open(masters: &[String], aad: &[u8], text: &str) -> Option<Vec<u8>> {
    let (nonce, ciphertext) = parse_stored(text)?;
    for master in masters {
        let Ok(key) = aes_key(master, "decrypt").await else {
            continue;
        };
        let Ok(algorithm) = gcm(&nonce, aad) else {
            continue;
        };
        let args = Array::of3(
            &algorithm.into(),
            &key,
            &Uint8Array::from(&ciphertext[..]).into(),
        );
        if let Ok(plain) = call("decrypt", &args).await {
            return Some(Uint8Array::new(&plain).to_vec());
        }
    }
    None
}

fn master_secrets(loaded: &Loaded) -> Result<&[String], ApiError> {
    let secrets = &loaded.settings.domains.master_secrets;
    if secrets.is_empty() {
        return Err(ApiError::misconfigured(
            "configuration setting DOMAIN_KEYS_SECRET is not set: domains cannot be added or their keys opened",
        ));
    }
    Ok(secrets)
}

fn wrong_secret() -> ApiError {
    ApiError::misconfigured(
        "configuration setting DOMAIN_KEYS_SECRET does not open the stored domain keys: restore the secret they were sealed under (it may stay listed after a new one)",
    )
}

/// Opens a stored key and checks it against its public record.
async fn open_key(masters: &[String], row: &DomainKeyRow) -> Result<DkimKey, ApiError> {
    let algorithm = DkimAlgorithm::parse(&row.algorithm)
        .ok_or_else(|| ApiError::unavailable("a stored domain key is unreadable"))?;
    let aad = associated_data(&row.domain, &row.selector, algorithm);
    let der = open(masters, &aad, &row.sealed_key)
        .await
        .ok_or_else(wrong_secret)?;
    let key = DkimKey::from_config(&row.domain, &row.selector, algorithm, &STANDARD.encode(der))
        .map_err(|_| ApiError::unavailable("a stored domain key is unreadable"))?;
    if key.dns_txt_record().ok().as_deref() != Some(row.public_record.as_str()) {
        return Err(ApiError::unavailable(
            "a stored domain key does not match its public record",
        ));
    }
    Ok(key)
}

/// What the records of `domain` are made from, besides its keys.
fn record_inputs<'a>(loaded: &'a Loaded, domain: &'a str, keys: &'a [KeyView]) -> RecordInputs<'a> {
    let links_host = loaded
        .settings
        .accept
        .send
        .tracking
        .base_url
        .as_deref()
        .or(loaded.settings.accept.send.unsubscribe.base_url.as_deref())
        .and_then(|base| base.split_once("://").map(|(_, rest)| rest))
        .map(|rest| rest.split([':', '/']).next().unwrap_or(rest));
    RecordInputs {
        domain,
        keys,
        spf_mechanisms: &[],
        return_path: loaded.settings.inbound.return_path_for(domain),
        links_host,
    }
}

fn spf_mechanisms(loaded: &Loaded) -> Vec<String> {
    loaded.settings.domains.spf_mechanisms(
        loaded
            .settings
            .delivery
            .upstreams
            .iter()
            .map(|u| u.host.as_str()),
    )
}

fn key_views(rows: &[DomainKeyRow]) -> Vec<KeyView> {
    rows.iter()
        .filter_map(|r| {
            Some(KeyView {
                selector: r.selector.clone(),
                algorithm: DkimAlgorithm::parse(&r.algorithm)?,
                public_record: r.public_record.clone(),
            })
        })
        .collect()
}

/// Where the rotation of a stored domain is now.
fn phase_of(loaded: &Loaded, row: &DomainRow, now: u64) -> Phase {
    rotation::phase(row.generations(), now, loaded.settings.domains.grace_ms)
}

fn view(
    loaded: &Loaded,
    domain: &str,
    source: Source,
    row: Option<&DomainRow>,
    keys: Vec<KeyView>,
) -> DomainView {
    let phase = row.map(|r| phase_of(loaded, r, now_ms()));
    let keys: Vec<KeyView> = match phase {
        Some(phase) => keys
            .into_iter()
            .filter(|k| rotation::role(phase, &k.selector) != KeyRole::Retired)
            .collect(),
        None => keys,
    };
    let spf = spf_mechanisms(loaded);
    let mut inputs = record_inputs(loaded, domain, &keys);
    inputs.spf_mechanisms = &spf;
    let records = match phase {
        Some(phase) => rotation::annotate(records(&inputs), phase),
        None => records(&inputs),
    };
    DomainView {
        rotation: phase,
        domain: domain.to_string(),
        source,
        status: row.map(|r| r.status.clone()),
        created_at: row.map(|r| rfc3339_ms(r.created_at as u64)),
        verified_at: row
            .and_then(|r| r.verified_at)
            .map(|t| rfc3339_ms(t as u64)),
        keys,
        records,
    }
}

fn settings_domain(loaded: &Loaded, key: &AuthenticatedKey, domain: &str) -> Option<DomainView> {
    configured_domains(&loaded.settings.accept.send.dkim_keys, &key.domains)
        .into_iter()
        .find(|(d, _)| d == domain)
        .map(|(d, keys)| view(loaded, &d, Source::Settings, None, keys))
}

/// The domain in the path, refused when its keys are in `DKIM_KEYS` (the
/// API changes only the domains it added): `verb` says what to do there.
fn api_domain(
    loaded: &Loaded,
    key: &AuthenticatedKey,
    path: &str,
    verb: &str,
) -> Result<Domain, ApiError> {
    let domain = parse_path(path)?;
    if settings_domain(loaded, key, domain.as_str()).is_some() {
        return Err(ApiError::conflict(
            "settings_domain",
            "domain",
            format!("{domain} has keys in the DKIM_KEYS secret: {verb} them there and redeploy"),
        ));
    }
    Ok(domain)
}

fn not_found(domain: &str) -> ApiError {
    ApiError::not_found(format!("no domain {domain} for this tenant"))
}

fn answer(status: u16, body: &Value) -> Result<Response, ApiError> {
    http::json(status, body).map_err(internal)
}

/// The rows that store keys `make_keys` made.
fn new_key_rows(made: &[(String, DkimAlgorithm, String, String)]) -> Vec<NewDomainKey<'_>> {
    made.iter()
        .map(|(selector, algorithm, public, sealed)| NewDomainKey {
            selector,
            algorithm: algorithm.tag(),
            public_record: public,
            sealed_key: sealed,
        })
        .collect()
}

/// Makes the keys of one generation of a domain (RSA, and Ed25519 when
/// asked) and seals them: `(selector, algorithm, public record, sealed
/// key)` each.
async fn make_keys(
    master: &str,
    domain: &str,
    generation: u32,
    with_ed25519: bool,
) -> Result<Vec<(String, DkimAlgorithm, String, String)>, ApiError> {
    let failed =
        |what: &str| ApiError::unavailable(format!("could not make a key: {what}; try again"));
    let rsa_der = generate_rsa_pkcs8().await.map_err(|_| failed("RSA"))?;
    let seed = random::secret::<32>().ok_or_else(|| failed("no randomness"))?;
    let mut out = Vec::new();
    for (algorithm, text) in [
        (DkimAlgorithm::RsaSha256, STANDARD.encode(&rsa_der)),
        (DkimAlgorithm::Ed25519Sha256, STANDARD.encode(seed)),
    ]
    .into_iter()
    .filter(|(a, _)| with_ed25519 || *a == DkimAlgorithm::RsaSha256)
    {
        let selector = selector(generation, algorithm);
        let key = DkimKey::from_config(domain, &selector, algorithm, &text)
            .map_err(|_| failed("unusable key"))?;
        let public = key.dns_txt_record().map_err(|_| failed("no public key"))?;
        let der = key.pkcs8_der().map_err(|_| failed("no PKCS#8 form"))?;
        let aad = associated_data(domain, &selector, algorithm);
        let sealed = seal(master, &aad, &der)
            .await
            .map_err(|_| failed("sealing"))?;
        out.push((selector, algorithm, public, sealed));
    }
    Ok(out)
}

pub async fn create(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    body: &[u8],
) -> Result<Response, ApiError> {
    let domain = parse_add(body)?;
    let domain = domain.as_str();
    if !key.may_send_as(domain) {
        return Err(ApiError::forbidden(
            "domain_not_allowed",
            "domain",
            format!("this API key may not send as {domain}, so it may not add it"),
        ));
    }
    if settings_domain(loaded, key, domain).is_some()
        || loaded
            .settings
            .accept
            .send
            .dkim_keys
            .iter()
            .any(|k| k.identity().domain.as_str() == domain)
    {
        return Err(ApiError::conflict(
            "settings_domain",
            "domain",
            format!("{domain} has keys in the DKIM_KEYS secret: it is managed there"),
        ));
    }
    let masters = master_secrets(loaded)?;
    let db = Db::open(env).map_err(internal)?;
    if db
        .domain(&key.tenant, domain)
        .await
        .map_err(internal)?
        .is_some()
    {
        return Err(exists(domain));
    }
    let made = make_keys(&masters[0], domain, 1, true).await?;
    let rows = new_key_rows(&made);
    let now = now_ms();
    if !db
        .insert_domain(domain, &key.tenant, &key.id, &rows, now)
        .await
        .map_err(internal)?
    {
        return Err(exists(domain));
    }
    one(env, loaded, key, domain, 201).await
}

fn exists(domain: &str) -> ApiError {
    ApiError::conflict(
        "domain_exists",
        "domain",
        format!("{domain} has already been added"),
    )
}

async fn one(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    domain: &str,
    status: u16,
) -> Result<Response, ApiError> {
    if let Some(view) = settings_domain(loaded, key, domain) {
        return answer(status, &view.to_json());
    }
    let db = Db::open(env).map_err(internal)?;
    let row = db
        .domain(&key.tenant, domain)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found(domain))?;
    let keys = db.domain_keys(domain).await.map_err(internal)?;
    let mut body = view(loaded, domain, Source::Api, Some(&row), key_views(&keys)).to_json();
    if let Some(report) = row
        .report
        .as_deref()
        .and_then(|r| serde_json::from_str::<Value>(r).ok())
    {
        body["last_report"] = report;
    }
    answer(status, &body)
}

pub async fn get(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    domain: &str,
) -> Result<Response, ApiError> {
    let domain = parse_path(domain)?;
    one(env, loaded, key, domain.as_str(), 200).await
}

pub async fn list(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
) -> Result<Response, ApiError> {
    let db = Db::open(env).map_err(internal)?;
    let rows = db
        .domains_of(&key.tenant, MAX_LISTED)
        .await
        .map_err(internal)?;
    let mut data = Vec::new();
    for row in &rows {
        let keys = db.domain_keys(&row.domain).await.map_err(internal)?;
        data.push(
            view(
                loaded,
                &row.domain,
                Source::Api,
                Some(row),
                key_views(&keys),
            )
            .to_json(),
        );
    }
    for (domain, keys) in configured_domains(&loaded.settings.accept.send.dkim_keys, &key.domains) {
        data.push(view(loaded, &domain, Source::Settings, None, keys).to_json());
    }
    answer(200, &json!({ "data": data }))
}

pub async fn delete(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    domain: &str,
) -> Result<Response, ApiError> {
    let domain = api_domain(loaded, key, domain, "remove")?;
    let domain = domain.as_str();
    let db = Db::open(env).map_err(internal)?;
    db.domain(&key.tenant, domain)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found(domain))?;
    db.delete_domain(&key.tenant, domain)
        .await
        .map_err(internal)?;
    answer(200, &json!({ "domain": domain, "deleted": true }))
}

/// The opened keys of `domain` when the tenant added it through the API
/// and its RSA DKIM record has verified; `None` when the tenant has no such
/// domain. A domain not verified yet is refused (403
/// `domain_not_verified`): it sends only once its record is in DNS.
pub async fn signing_keys(
    env: &Env,
    loaded: &Loaded,
    tenant: &str,
    domain: &str,
) -> Result<Option<Vec<DkimKey>>, ApiError> {
    let db = Db::open(env).map_err(internal)?;
    let Some(row) = db.domain(tenant, domain).await.map_err(internal)? else {
        return Ok(None);
    };
    if row.status != "verified" {
        return Err(ApiError::forbidden(
            "domain_not_verified",
            "from",
            format!(
                "{domain} was added through /v1/domains but its RSA DKIM record has not verified yet: publish the records and POST /v1/domains/{domain}/verify"
            ),
        ));
    }
    let masters = master_secrets(loaded)?;
    let phase = phase_of(loaded, &row, now_ms());
    let mut keys = Vec::new();
    for r in &db.domain_keys(domain).await.map_err(internal)? {
        if rotation::role(phase, &r.selector) == KeyRole::Signing {
            keys.push(open_key(masters, r).await?);
        }
    }
    Ok(Some(keys))
}

/// Opens the keys of a stored domain (a wrong master secret fails here),
/// asks DNS for every TXT record it should publish, and judges them.
async fn check(
    db: &Db,
    loaded: &Loaded,
    row: &DomainRow,
) -> Result<(Report, DomainView), ApiError> {
    let rows = db.domain_keys(&row.domain).await.map_err(internal)?;
    let masters = master_secrets(loaded)?;
    let mut keys = Vec::new();
    for r in &rows {
        let opened = open_key(masters, r).await?;
        keys.extend(KeyView::of(&opened));
    }
    let built = view(loaded, &row.domain, Source::Api, Some(row), keys);
    let asked = dns::txt_all(
        &loaded.settings.accept.dns_resolver_url,
        loaded.settings.accept.dns_wire_format,
        &names(&built.records),
    )
    .await;
    Ok((judge(&built.records, &asked), built))
}

/// Switches a rotating domain to its next generation when `report` says
/// its records verify; the phase afterwards.
async fn maybe_switch(
    db: &Db,
    loaded: &Loaded,
    row: &DomainRow,
    report: &Report,
    now: u64,
) -> Result<Option<Phase>, ApiError> {
    let Some(Transition::Switch(to)) = rotation::after_verification(row.generations(), report, now)
    else {
        return Ok(None);
    };
    db.switch_generation(&row.tenant, &row.domain, to, now)
        .await
        .map_err(internal)?;
    log::info(
        "domain_key_switched",
        &[
            ("domain", LogValue::Text(&row.domain)),
            ("generation", LogValue::Num(u64::from(to.signing))),
        ],
    );
    Ok(Some(rotation::phase(
        to,
        now,
        loaded.settings.domains.grace_ms,
    )))
}

/// `POST /v1/domains/{domain}/verify`: asks DNS for every TXT record the
/// domain should publish, records and answers the report, and switches a
/// rotating domain to its new keys once their records verify.
pub async fn verify(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    domain: &str,
) -> Result<Response, ApiError> {
    let domain = parse_path(domain)?;
    let domain = domain.as_str();
    if let Some(built) = settings_domain(loaded, key, domain) {
        let asked = dns::txt_all(
            &loaded.settings.accept.dns_resolver_url,
            loaded.settings.accept.dns_wire_format,
            &names(&built.records),
        )
        .await;
        let report = judge(&built.records, &asked);
        return answer(200, &report_body(domain, &report, None));
    }
    let db = Db::open(env).map_err(internal)?;
    let row = db
        .domain(&key.tenant, domain)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found(domain))?;
    let (report, built) = check(&db, loaded, &row).await?;
    let now = now_ms();
    let status = if report.verified {
        "verified"
    } else {
        "pending"
    };
    db.record_verification(
        &key.tenant,
        domain,
        Some(status),
        Some(&report.to_json().to_string()),
        now,
    )
    .await
    .map_err(internal)?;
    let phase = maybe_switch(&db, loaded, &row, &report, now)
        .await?
        .or(built.rotation);
    answer(200, &report_body(domain, &report, phase))
}

fn report_body(domain: &str, report: &Report, phase: Option<Phase>) -> Value {
    let status = if report.verified {
        "verified"
    } else {
        "pending"
    };
    let mut body = json!({
        "domain": domain,
        "status": status,
        "verified": report.verified,
        "records": report.to_json()["records"],
    });
    if let Some(phase) = phase {
        body["rotation"] = rotation::to_json(phase);
    }
    body
}

/// `POST /v1/domains/{domain}/rotate`: makes the next generation's keys
/// (RSA, and Ed25519 when the domain signs with one) beside the signing
/// ones, which keep signing until the new records verify. Answers the
/// domain with the records to publish now.
pub async fn rotate(
    env: &Env,
    loaded: &Loaded,
    key: &AuthenticatedKey,
    domain: &str,
) -> Result<Response, ApiError> {
    let domain = api_domain(loaded, key, domain, "rotate")?;
    let domain = domain.as_str();
    let masters = master_secrets(loaded)?;
    let db = Db::open(env).map_err(internal)?;
    let row = db
        .domain(&key.tenant, domain)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found(domain))?;
    let now = now_ms();
    let grace = loaded.settings.domains.grace_ms;
    let started = rotation::start(row.generations(), now, grace).map_err(|refusal| {
        ApiError::conflict("rotation_in_progress", "domain", refusal.message(domain))
    })?;
    let Some(next) = started.next else {
        return Err(ApiError::unavailable(
            "a rotation without a next generation",
        ));
    };
    let phase = phase_of(loaded, &row, now);
    let stored = db.domain_keys(domain).await.map_err(internal)?;
    let with_ed25519 = stored.iter().any(|k| {
        rotation::role(phase, &k.selector) == KeyRole::Signing
            && DkimAlgorithm::parse(&k.algorithm) == Some(DkimAlgorithm::Ed25519Sha256)
    });
    let retired: Vec<String> = stored
        .iter()
        .filter(|k| rotation::role(phase, &k.selector) == KeyRole::Retired)
        .map(|k| k.selector.clone())
        .collect();
    let made = make_keys(&masters[0], domain, next, with_ed25519).await?;
    let rows = new_key_rows(&made);
    if db
        .start_rotation(&key.tenant, domain, next, &rows, &retired, now)
        .await
        .is_err()
    {
        return Err(ApiError::conflict(
            "rotation_in_progress",
            "domain",
            format!(
                "{domain} started rotating at the same time: GET /v1/domains/{domain} shows its records"
            ),
        ));
    }
    log::info(
        "domain_rotation_started",
        &[
            ("domain", LogValue::Text(domain)),
            ("generation", LogValue::Num(u64::from(next))),
        ],
    );
    one(env, loaded, key, domain, 200).await
}

/// The cron trigger's re-verification: the domains due (oldest check
/// first, at most `DOMAIN_RECHECK_LIMIT`) are checked over DNS; a record
/// that matched and no longer does raises `domain.updated`, and so does a
/// rotation that switches. A domain whose keys do not open, or that DNS did
/// not fully answer about, is left for the next run (only its check time
/// moves, so it does not block the others).
pub async fn recheck(env: &Env, db: &Db, loaded: &Loaded) {
    let settings = &loaded.settings.domains;
    if settings.master_secrets.is_empty() {
        return;
    }
    let now = now_ms();
    let due = match db
        .domains_due(
            recheck::checked_before(now, settings.recheck_after_ms),
            settings.recheck_limit,
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            log::error_because("domain_recheck_could_not_read", &e);
            return;
        }
    };
    for row in &due {
        recheck_one(env, db, loaded, row, now).await;
    }
}

async fn recheck_one(env: &Env, db: &Db, loaded: &Loaded, row: &DomainRow, now: u64) {
    let domain = LogValue::Text(&row.domain);
    let (report, _) = match check(db, loaded, row).await {
        Ok(checked) => checked,
        Err(e) => {
            log::warn(
                "domain_recheck_failed",
                &[("domain", domain), ("error", LogValue::Text(&e.message))],
            );
            let _ = db
                .record_verification(&row.tenant, &row.domain, None, None, now)
                .await;
            return;
        }
    };
    if !recheck::complete(&report) {
        let _ = db
            .record_verification(&row.tenant, &row.domain, None, None, now)
            .await;
        return;
    }
    let mut updates = Vec::new();
    let changes = recheck::changes(row.report.as_deref(), &report);
    if !changes.is_empty() {
        updates.push(Update::Records(changes));
    }
    let status = report.verified.then_some("verified");
    if let Err(e) = db
        .record_verification(
            &row.tenant,
            &row.domain,
            status,
            Some(&report.to_json().to_string()),
            now,
        )
        .await
    {
        log::error_because("domain_recheck_could_not_record", &e);
        return;
    }
    match maybe_switch(db, loaded, row, &report, now).await {
        Ok(Some(phase)) => updates.push(Update::KeySwitched(phase)),
        Ok(None) => {}
        Err(e) => log::warn(
            "domain_recheck_could_not_switch",
            &[("domain", domain), ("error", LogValue::Text(&e.message))],
        ),
    }
    let events: Vec<_> = updates
        .iter()
        .map(|u| recheck::updated_event(&row.tenant, &row.domain, u, now, &random::bytes()))
        .collect();
    if events.is_empty() {
        return;
    }
    log::warn(
        "domain_updated",
        &[
            ("domain", domain),
            ("events", LogValue::Num(events.len() as u64)),
        ],
    );
    if let Err(e) = email_events::publish(env, db, &events).await {
        log::error_because("could_not_publish_domain_updated", &e);
    }
}
