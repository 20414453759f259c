// The official Node SDKs of Resend and SendGrid, pointed at edgerelay by
// their base URL and nothing else, driven by tests/e2e/test_compat.py.
//
// Usage: node compat_clients.mjs '<json>' with {sdk, op, url, key, args}.
// Prints one JSON line: what the SDK returned, or the error it raised, as
// the SDK's own types carry them.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { sdk, op, url, key, args } = JSON.parse(process.argv[2]);

async function resend() {
  // The documented switch: RESEND_BASE_URL (read when the client is made).
  process.env.RESEND_BASE_URL = url;
  const { Resend } = await import("resend");
  const client = new Resend(key);
  switch (op) {
    case "send":
      return client.emails.send(args.email, args.options);
    case "batch":
      return client.batch.send(args.emails, args.options);
    case "get":
      return client.emails.get(args.id);
    case "cancel":
      return client.emails.cancel(args.id);
    case "update":
      return client.emails.update(args);
    default:
      throw new Error(`unknown op ${op}`);
  }
}

async function sendgrid() {
  const client = require("@sendgrid/client");
  const mail = require("@sendgrid/mail");
  // The documented switch: the client's baseUrl, handed to the mail service.
  client.setApiKey(key);
  client.setDefaultRequest("baseUrl", url);
  mail.setClient(client);
  try {
    const [response] = await mail.send(args.message);
    return { statusCode: response.statusCode, headers: response.headers, body: response.body };
  } catch (error) {
    // @sendgrid's ResponseError: the status and SendGrid's error body.
    return {
      thrown: error.constructor.name,
      code: error.code,
      body: error.response ? error.response.body : null,
    };
  }
}

const result = await (sdk === "resend" ? resend() : sendgrid());
process.stdout.write(JSON.stringify(result) + "\n");
