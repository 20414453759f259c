-- Sending domains added through /v1/domains, and their DKIM keys. A key's
-- private half is kept only sealed (AES-256-GCM under a key derived from
-- the DOMAIN_KEYS_SECRET setting; see docs/domains.md), never in clear.
CREATE TABLE IF NOT EXISTS domains (
  domain TEXT PRIMARY KEY,              -- lower-case ASCII (A-labels)
  tenant TEXT NOT NULL,
  created_at INTEGER NOT NULL,          -- Unix ms
  created_by TEXT NOT NULL,             -- the id of the admin key that added it
  status TEXT NOT NULL,                 -- pending | verified
  verified_at INTEGER,                  -- Unix ms of the last verification that passed
  checked_at INTEGER,                   -- Unix ms of the last verification
  report TEXT                           -- JSON: the last verification's report
);
CREATE INDEX IF NOT EXISTS domains_tenant ON domains (tenant, created_at);

CREATE TABLE IF NOT EXISTS domain_keys (
  domain TEXT NOT NULL,
  selector TEXT NOT NULL,
  algorithm TEXT NOT NULL,              -- rsa-sha256 | ed25519-sha256
  public_record TEXT NOT NULL,          -- the DKIM TXT record's value
  sealed_key TEXT NOT NULL,             -- v1:<base64 nonce || ciphertext>
  created_at INTEGER NOT NULL,
  PRIMARY KEY (domain, selector)
);
