//! Independent DKIM verifiers for tests: mail-auth's verifier fed from an
//! in-memory DNS cache, and Python's dkimpy through a subprocess.
//!
//! Must not: be used outside tests, or reach the network: mail-auth answers
//! from the cache (a lookup that would go out fails the test), and dkimpy
//! gets a `dnsfunc` that serves the same records.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::{
    AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt,
};

/// `(dns name, TXT record)` pairs, e.g. from `DkimKey::dns_txt_record`.
pub type Records = Vec<(String, String)>;

struct TxtRecords(HashMap<Box<str>, Txt>);

impl ResolverCache<Box<str>, Txt> for TxtRecords {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.get(name).cloned()
    }

    fn remove<Q>(&self, _: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        None
    }

    // On native targets mail-auth's `web_time::Instant` is `std::time::Instant`.
    fn insert(&self, _: Box<str>, _: Txt, _: std::time::Instant) {}
}

/// Polls a future that must complete without real I/O.
fn run_without_io<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    for _ in 0..1000 {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
    panic!("verifier is waiting on I/O: a DNS record is missing from the test cache");
}

/// mail-auth's verdict for each DKIM-Signature header, top to bottom.
pub fn mail_auth_results(message: &[u8], records: &Records) -> Vec<DkimResult> {
    let cache = TxtRecords(
        records
            .iter()
            .map(|(name, record)| {
                let key = DomainKey::parse(record.as_bytes()).expect("test TXT record parses");
                (
                    format!("{name}.").into_boxed_str(),
                    Txt::DomainKey(Arc::new(key)),
                )
            })
            .collect(),
    );
    let message = AuthenticatedMessage::parse(message).expect("mail-auth parses the message");
    let authenticator = MessageAuthenticator::new_doh_cloudflare();
    let params = Parameters::new(&message).with_txt_cache(&cache);
    run_without_io(authenticator.verify_dkim(params))
        .iter()
        .map(|output| output.result().clone())
        .collect()
}

const DKIMPY_SCRIPT: &str = r#"
import json, sys
import dkim
records = json.loads(sys.argv[1])
message = sys.stdin.buffer.read()
def dns(name, timeout=5):
    return records.get(name.decode().rstrip('.'), '').encode()
def verify(index):
    try:
        return bool(dkim.DKIM(message).verify(idx=index, dnsfunc=dns))
    except dkim.DKIMException:
        return False
count = sum(1 for line in message.split(b'\r\n') if line.lower().startswith(b'dkim-signature:'))
print(json.dumps([verify(i) for i in range(count)]))
"#;

/// dkimpy's verdict per DKIM-Signature header, or `None` when python3 with
/// dkimpy (and PyNaCl for Ed25519) is unavailable. Under `CI` a missing
/// dkimpy is a failure, not a skip: CI must always run this check.
pub fn dkimpy_results(message: &[u8], records: &Records) -> Option<Vec<bool>> {
    let available = Command::new("python3")
        .args(["-c", "import dkim, nacl.signing"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !available {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide python3 with dkimpy and pynacl for the DKIM interop tests"
        );
        eprintln!("skipping dkimpy verification: python3 with dkimpy and pynacl is not installed");
        return None;
    }
    let records: HashMap<&str, &str> = records
        .iter()
        .map(|(n, r)| (n.as_str(), r.as_str()))
        .collect();
    let mut child = Command::new("python3")
        .args([
            "-c",
            DKIMPY_SCRIPT,
            &serde_json::to_string(&records).expect("records serialise"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(message)
        .expect("message is written to dkimpy");
    let output = child.wait_with_output().expect("dkimpy finishes");
    assert!(
        output.status.success(),
        "dkimpy failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).expect("dkimpy prints a JSON list"))
}
