// Runs the built worker (build/index.js + wasm) in workerd through Miniflare,
// configured from wrangler.toml: the same queues, consumers and D1 database,
// with vars and secrets given on the command line as JSON.
//
//   node tests/e2e/worker_runner.mjs '{"vars": {...}, "port": 0}'
//
// Prints one JSON line, {"url": "http://127.0.0.1:PORT"}, once the worker
// answers, then runs until stdin closes or it receives SIGTERM.
import { readFileSync, readdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare, Log, LogLevel } from "miniflare";
import { parse } from "smol-toml";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const options = JSON.parse(process.argv[2] ?? "{}");
const toml = parse(readFileSync(join(root, "wrangler.toml"), "utf8"));

const queueProducers = Object.fromEntries(
  (toml.queues?.producers ?? []).map((p) => [p.binding, { queueName: p.queue }]),
);
const queueConsumers = Object.fromEntries(
  (toml.queues?.consumers ?? []).map((c) => [
    c.queue,
    {
      maxBatchSize: c.max_batch_size,
      maxBatchTimeout: c.max_batch_timeout,
      maxRetries: c.max_retries,
      deadLetterQueue: c.dead_letter_queue,
      retryDelay: c.retry_delay,
    },
  ]),
);
const d1Databases = Object.fromEntries(
  (toml.d1_databases ?? []).map((d) => [d.binding, d.database_id]),
);

const mf = new Miniflare({
  host: "127.0.0.1",
  port: options.port ?? 0,
  modules: true,
  scriptPath: join(root, "build", "index.js"),
  modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
  compatibilityDate: toml.compatibility_date,
  compatibilityFlags: toml.compatibility_flags ?? [],
  bindings: { ...(toml.vars ?? {}), ...(options.vars ?? {}) },
  queueProducers,
  queueConsumers,
  d1Databases,
  log: new Log(options.verbose ? LogLevel.DEBUG : LogLevel.INFO),
});

const url = await mf.ready;

// Apply the D1 migrations, in order, as `wrangler d1 migrations apply` would.
for (const d of toml.d1_databases ?? []) {
  const db = await mf.getD1Database(d.binding);
  const dir = join(root, d.migrations_dir ?? "migrations");
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
    const sql = readFileSync(join(dir, file), "utf8").replace(/--.*$/gm, "");
    for (const statement of sql.split(";").map((s) => s.trim()).filter(Boolean)) {
      await db.prepare(statement).run();
    }
  }
}

process.stdout.write(JSON.stringify({ url: url.toString().replace(/\/$/, "") }) + "\n");

const stop = async () => {
  await mf.dispose().catch(() => {});
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.resume();
