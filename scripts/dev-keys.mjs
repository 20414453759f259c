// Writes .dev.vars for local development, unless it exists: a fresh API key
// (only its SHA-256 goes into .dev.vars), DKIM keys for the sender domain (the
// RSA-2048 key every sending domain needs and an Ed25519 one beside it), a
// random QUEUE_SECRET (seals the worker's own queue jobs), a random
// DOMAIN_KEYS_SECRET (seals the keys of domains added through /v1/domains),
// MailDev on 127.0.0.1:1025 as the upstream, and webhooks allowed to local
// URLs (a receiver on this machine). An existing .dev.vars written before one
// of the last three settings existed gets it added; nothing else in it
// changes.
//
//   node scripts/dev-keys.mjs [sender-domain]
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";

const domain = process.argv[2] || process.env.EDGERELAY_DEV_DOMAIN || "example.com";
const rsaSelector = "dev-rsa";
const edSelector = "dev-ed";
const queueSecret = () => randomBytes(36).toString("base64url");
if (existsSync(".dev.vars")) {
  const current = readFileSync(".dev.vars", "utf8");
  const missing = [
    ["QUEUE_SECRET", queueSecret()],
    ["WEBHOOK_ALLOW_LOCAL_URLS", "on"],
    ["DOMAIN_KEYS_SECRET", queueSecret()],
  ].filter(([name]) => !new RegExp(`^${name}=`, "m").test(current));
  for (const [i, [name, value]] of missing.entries()) {
    const separator = i > 0 || current.endsWith("\n") || current === "" ? "" : "\n";
    appendFileSync(".dev.vars", `${separator}${name}='${value}'\n`);
    console.log(`[dev] added ${name} to .dev.vars`);
  }
  process.exit(0);
}
mkdirSync(".dev", { recursive: true });

const apiKey = "er_dev_" + randomBytes(24).toString("base64url");
const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const rsaPkcs8 = rsa.privateKey.export({ format: "der", type: "pkcs8" }).toString("base64");
const rsaPublic = rsa.publicKey.export({ format: "der", type: "spki" }).toString("base64");
const ed = generateKeyPairSync("ed25519");
const edPkcs8 = ed.privateKey.export({ format: "der", type: "pkcs8" }).toString("base64");
// The raw 32-byte public key is the last 32 bytes of its SPKI encoding.
const edSpki = ed.publicKey.export({ format: "der", type: "spki" });
const edPublic = edSpki.subarray(edSpki.length - 32).toString("base64");

const vars = {
  API_KEYS: JSON.stringify([
    { id: "dev", sha256: createHash("sha256").update(apiKey).digest("hex"), domains: [domain] },
  ]),
  DKIM_KEYS: JSON.stringify([
    { domain, selector: rsaSelector, algorithm: "rsa", private_key: rsaPkcs8 },
    { domain, selector: edSelector, algorithm: "ed25519", private_key: edPkcs8 },
  ]),
  SMTP_UPSTREAMS: "smtp+insecure://127.0.0.1:1025",
  QUEUE_SECRET: queueSecret(),
  DOMAIN_KEYS_SECRET: queueSecret(),
  EHLO_NAME: "edgerelay.localhost",
  RETRY_BASE_DELAY_SECONDS: "5",
  // Development only: webhooks may go to a receiver on this machine.
  WEBHOOK_ALLOW_LOCAL_URLS: "on",
};
// Single quotes: dotenv keeps the JSON inside them verbatim.
const lines = Object.entries(vars).map(([k, v]) => `${k}='${v}'`);
writeFileSync(".dev.vars", lines.join("\n") + "\n", { mode: 0o600 });
writeFileSync(".dev/api-key", apiKey + "\n", { mode: 0o600 });
writeFileSync(".dev/sender-domain", domain + "\n");
writeFileSync(
  ".dev/dkim-dns.txt",
  `${rsaSelector}._domainkey.${domain}. TXT "v=DKIM1; k=rsa; p=${rsaPublic}"\n` +
    `${edSelector}._domainkey.${domain}. TXT "v=DKIM1; k=ed25519; p=${edPublic}"\n`,
);
console.log(`[dev] wrote .dev.vars: API key in .dev/api-key, DKIM records in .dev/dkim-dns.txt`);
