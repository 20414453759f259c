// A hostile Worker beside edgerelay, for the end-to-end tests: it binds
// edgerelay's queues (any Worker of the account can) and puts on them
// exactly what it is told.
//
// POST /forge with {"queue": "jobs" | "dead_letters", "body": <any JSON>}
// sends `body` to that queue as it is (an object, or a string of JSON text,
// the form edgerelay writes its own jobs in). Other requests go to edgerelay
// through the service binding, so a test reaches edgerelay's API through
// this Worker.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (request.method === "POST" && url.pathname === "/forge") {
      const { queue, body } = await request.json();
      const target = queue === "dead_letters" ? env.DEAD_LETTERS : env.JOBS;
      await target.send(body, { contentType: "json" });
      return Response.json({ sent: true }, { status: 202 });
    }
    return env.EDGERELAY.fetch(request);
  },
};
