#!/usr/bin/env bash
# Runs edgerelay locally: the worker in workerd (wrangler dev, with local
# Queues and D1) and MailDev as its upstream. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${PORT:-8787}"
MAILDEV_SMTP=1025
MAILDEV_WEB="${MAILDEV_WEB:-1080}"
export WRANGLER_SEND_METRICS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false
export PATH="$PWD/node_modules/.bin:$PATH"   # Node 22 for wrangler

scripts/setup.sh dev
node scripts/dev-keys.mjs

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

maildev --smtp "$MAILDEV_SMTP" --web "$MAILDEV_WEB" --ip 127.0.0.1 --web-ip 127.0.0.1 --silent &
pids+=($!)

wrangler d1 migrations apply DB --local >/dev/null

banner() {
  for _ in $(seq 1 600); do
    if curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then break; fi
    sleep 0.5
  done
  domain="$(cat .dev/sender-domain)"
  cat <<MSG

  edgerelay is running on http://127.0.0.1:$PORT, relaying to MailDev.
  Captured mail: http://127.0.0.1:$MAILDEV_WEB

  Send a message:

  curl -sS http://127.0.0.1:$PORT/v1/messages \\
    -H "Authorization: Bearer $(cat .dev/api-key)" \\
    -H "Content-Type: application/json" \\
    -d '{"from": "Dev <hello@$domain>", "to": "you@example.net", "subject": "Hello from edgerelay", "text": "It works."}'

  Then: curl -sS http://127.0.0.1:$PORT/v1/messages/<id> -H "Authorization: Bearer $(cat .dev/api-key)"
  Run the reconciliation sweep (the cron trigger) now: curl -sS http://127.0.0.1:$PORT/cdn-cgi/local/scheduled
  Ctrl-C stops the worker and MailDev.

MSG
}
banner &
pids+=($!)

wrangler dev --ip 127.0.0.1 --port "$PORT" --show-interactive-dev-session=false &
pids+=($!)
wait "${pids[-1]}"
