// Writes .dev.vars for local development, unless it exists: a fresh API key
// (only its SHA-256 goes into .dev.vars), an Ed25519 DKIM key for the sender
// domain, a random QUEUE_SECRET (seals the worker's own queue jobs), MailDev
// on 127.0.0.1:1025 as the upstream, and webhooks allowed to local URLs (a
// receiver on this machine). An existing .dev.vars written before one of the
// last two settings existed gets it added; nothing else in it changes.
//
//   node scripts/dev-keys.mjs [sender-domain]
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";

const domain = process.argv[2] || process.env.EDGERELAY_DEV_DOMAIN || "example.com";
const selector = "dev";
const queueSecret = () => randomBytes(36).toString("base64url");
if (existsSync(".dev.vars")) {
  const current = readFileSync(".dev.vars", "utf8");
  const missing = [
    ["QUEUE_SECRET", queueSecret()],
    ["WEBHOOK_ALLOW_LOCAL_URLS", "on"],
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
const { privateKey, publicKey } = generateKeyPairSync("ed25519");
const pkcs8 = privateKey.export({ format: "der", type: "pkcs8" }).toString("base64");
// The raw 32-byte public key is the last 32 bytes of its SPKI encoding.
const spki = publicKey.export({ format: "der", type: "spki" });
const rawPublic = spki.subarray(spki.length - 32).toString("base64");

const vars = {
  API_KEYS: JSON.stringify([
    { id: "dev", sha256: createHash("sha256").update(apiKey).digest("hex"), domains: [domain] },
  ]),
  DKIM_KEYS: JSON.stringify([{ domain, selector, algorithm: "ed25519", private_key: pkcs8 }]),
  SMTP_UPSTREAMS: "smtp+insecure://127.0.0.1:1025",
  QUEUE_SECRET: queueSecret(),
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
  `${selector}._domainkey.${domain}. TXT "v=DKIM1; k=ed25519; p=${rawPublic}"\n`,
);
console.log(`[dev] wrote .dev.vars: API key in .dev/api-key, DKIM record in .dev/dkim-dns.txt`);
