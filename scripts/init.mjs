// edgerelay's one-step set-up: creates what the worker needs on an account
// (its queues, D1 database and R2 bucket), applies the D1 migrations, makes
// the first API key (only its SHA-256 is stored), the master secret that
// seals sending domains' keys and the queue secret, and puts them with
// `wrangler secret put`: nothing is pasted by hand. It prints the API key
// once, then the next step (add a sending domain).
//
//   node scripts/init.mjs --domain example.com --upstream smtps://user:pass@smtp.example.net
//   node scripts/init.mjs --local [--persist-to DIR] --domain example.com [--upstream URL]
//
// --local does the same against wrangler's local state (`wrangler dev
// --persist-to DIR`): the migrations are applied there, local queues and
// buckets need no creating, and the secrets go into .dev.vars beside the
// config (an existing .dev.vars is left alone and the set-up stops).
// Other options: --config PATH (default wrangler.toml), --tenant NAME.
// Needs: wrangler (node_modules/.bin, from `npm ci`), and for the account
// `wrangler login` or CLOUDFLARE_API_TOKEN.
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

function options(argv) {
  const out = { config: join(root, "wrangler.toml"), local: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) fail(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === "--local") out.local = true;
    else if (arg === "--persist-to") out.persistTo = resolve(value());
    else if (arg === "--config" || arg === "-c") out.config = resolve(value());
    else if (arg === "--domain") out.domain = value().trim().toLowerCase();
    else if (arg === "--upstream") out.upstream = value();
    else if (arg === "--tenant") out.tenant = value();
    else fail(`unknown option ${arg} (see the comment at the top of scripts/init.mjs)`);
  }
  if (!out.domain || !/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(out.domain)) {
    fail("--domain names the domain you send from, e.g. --domain example.com");
  }
  if (!out.local && !out.upstream) {
    fail("--upstream names your smarthost, e.g. --upstream smtps://user:pass@smtp.example.net");
  }
  if (out.persistTo && !out.local) fail("--persist-to goes with --local");
  return out;
}

function fail(message) {
  console.error(`init: ${message}`);
  process.exit(2);
}

const opts = options(process.argv.slice(2));
const wranglerBin = join(root, "node_modules", ".bin", "wrangler");
const wrangler = existsSync(wranglerBin) ? wranglerBin : "wrangler";
const env = { ...process.env, WRANGLER_SEND_METRICS: "false" };

/** Runs wrangler; returns { ok, out } (stdout and stderr together). */
function run(args, input) {
  const r = spawnSync(wrangler, [...args, "-c", opts.config], {
    cwd: dirname(opts.config),
    env,
    input,
    encoding: "utf8",
  });
  return { ok: r.status === 0, out: `${r.stdout || ""}${r.stderr || ""}` };
}

/** Runs a step that may find its resource already there. */
function create(what, args) {
  const r = run(args);
  if (r.ok) console.log(`[init] created ${what}`);
  else if (/already (exists|taken)|already in use/i.test(r.out)) console.log(`[init] ${what} exists`);
  else fail(`could not create ${what}:\n${r.out}`);
  return r;
}

const toml = readFileSync(opts.config, "utf8");
// Names in wrangler.toml (`name = "value"`) or a JSON config (`"name": "value"`).
const names = (key) => {
  const re = new RegExp(`^\\s*"?(?:${key})"?\\s*[=:]\\s*"([^"]+)"`, "gm");
  return [...new Set([...toml.matchAll(re)].map((m) => m[1]))];
};
const queues = names("queue|dead_letter_queue");
const [database] = names("database_name");
const [bucket] = names("bucket_name");

// 1. The account's resources (local state needs none: wrangler dev makes them).
if (!opts.local) {
  if (!database) fail(`${opts.config} names no D1 database`);
  for (const queue of queues) create(`queue ${queue}`, ["queues", "create", queue]);
  const made = create(`D1 database ${database}`, ["d1", "create", database]);
  const id = made.out.match(/database_id\s*[=:]\s*"?([0-9a-f-]{36})/i);
  if (id && /database_id\s*=\s*"0{8}-0{4}-0{4}-0{4}-0{12}"/.test(toml)) {
    writeFileSync(opts.config, toml.replace(/0{8}-0{4}-0{4}-0{4}-0{12}/, id[1]));
    console.log(`[init] wrote the database id into ${opts.config}`);
  }
  if (bucket) create(`R2 bucket ${bucket}`, ["r2", "bucket", "create", bucket]);
}

// 2. The D1 migrations.
const where = opts.local
  ? ["--local", ...(opts.persistTo ? ["--persist-to", opts.persistTo] : [])]
  : ["--remote"];
const migrated = run(["d1", "migrations", "apply", "DB", ...where]);
if (!migrated.ok) fail(`the D1 migrations did not apply:\n${migrated.out}`);
console.log(`[init] applied the D1 migrations (${opts.local ? "local" : "remote"})`);

// 3. The secrets, made here.
const secret = () => randomBytes(36).toString("base64url");
const apiKey = `er_${randomBytes(24).toString("base64url")}`;
const keyEntry = {
  id: "admin",
  sha256: createHash("sha256").update(apiKey).digest("hex"),
  domains: [opts.domain],
};
if (opts.tenant) keyEntry.tenant = opts.tenant;
const secrets = {
  API_KEYS: JSON.stringify([keyEntry]),
  QUEUE_SECRET: secret(),
  DOMAIN_KEYS_SECRET: secret(),
};
if (opts.upstream) secrets.SMTP_UPSTREAMS = opts.upstream;

if (opts.local) {
  const devVars = join(dirname(opts.config), ".dev.vars");
  if (existsSync(devVars)) fail(`${devVars} exists: remove it to start afresh`);
  const quote = (v) => `'${v.replaceAll("'", "'\\''")}'`;
  writeFileSync(
    devVars,
    Object.entries(secrets)
      .map(([k, v]) => `${k}=${quote(v)}\n`)
      .join(""),
    { mode: 0o600 },
  );
  console.log(`[init] wrote ${Object.keys(secrets).join(", ")} to ${devVars}`);
} else {
  for (const [name, value] of Object.entries(secrets)) {
    const put = run(["secret", "put", name], value);
    if (!put.ok) fail(`wrangler secret put ${name} failed:\n${put.out.replaceAll(value, "***")}`);
    console.log(`[init] put the secret ${name}`);
  }
}

// 4. What to do next.
const base = opts.local ? "http://127.0.0.1:8787" : "https://<your worker's URL>";
console.log(`
API key (shown once; only its SHA-256 is stored): ${apiKey}
${opts.local ? "Start the worker: make dev (or wrangler dev --persist-to the same state)." : "Deploy the worker: npx wrangler deploy"}
Next step, add your sending domain and publish the records it answers:
  curl -sS -X POST ${base}/v1/domains -H "Authorization: Bearer $API_KEY" \\
    -H "Content-Type: application/json" -d '{"domain": "${opts.domain}"}'
then verify it: curl -sS -X POST ${base}/v1/domains/${opts.domain}/verify -H "Authorization: Bearer $API_KEY"
See docs/domains.md.`);
