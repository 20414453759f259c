// A Worker that sends mail through edgerelay's queue instead of its HTTP API.
//
// POST /enqueue with a JSON body shaped like edgerelay's POST /v1/messages
// puts {"v": 1, "type": "send", "producer": PRODUCER_ID, "token": PRODUCER_TOKEN,
// "message": body} on the jobs queue. The token is this producer's secret
// (`wrangler secret put PRODUCER_TOKEN`); edgerelay keeps only its SHA-256 (the
// producer's `token_sha256` in QUEUE_PRODUCERS) and refuses a message whose
// token does not match the producer it names. edgerelay then validates the
// message like an HTTP request, checks the From domain against this
// producer's domains, signs and delivers it. Other requests go to edgerelay
// itself through the optional service binding, so the status API is
// reachable from here too.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (request.method === "POST" && url.pathname === "/enqueue") {
      if (!env.PRODUCER_TOKEN) {
        return Response.json({ error: "PRODUCER_TOKEN is not set" }, { status: 500 });
      }
      let message;
      try {
        message = await request.json();
      } catch {
        return Response.json({ error: "the body must be JSON" }, { status: 400 });
      }
      await env.EDGERELAY_JOBS.send(
        { v: 1, type: "send", producer: env.PRODUCER_ID, token: env.PRODUCER_TOKEN, message },
        { contentType: "json" },
      );
      return Response.json({ enqueued: true }, { status: 202 });
    }
    if (env.EDGERELAY) {
      return env.EDGERELAY.fetch(request);
    }
    return new Response("not found", { status: 404 });
  },
};
