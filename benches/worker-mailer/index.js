// The baseline for edgerelay's SMTP benchmark: worker-mailer, the library
// Workers users pick today, sending N messages over one connection.
//
// POST /worker-mailer/smtp?count=N with a JSON body {from, to, subject, text,
// html} connects once to SMTP_HOST:SMTP_PORT (plaintext, no AUTH, exactly as
// edgerelay's side of the benchmark is configured), sends N copies, closes,
// and answers the elapsed milliseconds. Every other request goes to edgerelay
// through the EDGERELAY service binding, so one workerd runs both workers.
// Benchmark-only: never deploy this worker.
import { WorkerMailer } from "worker-mailer";

async function sendMany(request, env) {
  const url = new URL(request.url);
  const count = Number(url.searchParams.get("count") || "1");
  if (!Number.isInteger(count) || count < 1 || count > 1000) {
    return Response.json({ error: "count must be 1 to 1000" }, { status: 422 });
  }
  const message = await request.json();
  const started = Date.now();
  const mailer = await WorkerMailer.connect({
    host: env.SMTP_HOST,
    port: Number(env.SMTP_PORT),
    secure: false,
    startTls: false,
  });
  const results = await Promise.allSettled(
    Array.from({ length: count }, () => mailer.send(message)),
  );
  await mailer.close();
  const elapsed_ms = Date.now() - started;
  const failed = results.filter((r) => r.status === "rejected");
  return Response.json({
    count,
    delivered: count - failed.length,
    elapsed_ms,
    first_failure: failed.length ? String(failed[0].reason) : null,
  });
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === "/worker-mailer/smtp" && request.method === "POST") {
      return sendMany(request, env);
    }
    if (pathname === "/worker-mailer/health") {
      return Response.json({ ok: true });
    }
    return env.EDGERELAY.fetch(request);
  },
};
