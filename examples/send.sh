#!/usr/bin/env bash
# Sends one message through edgerelay and follows it to delivery.
#
#   EDGERELAY_URL=http://127.0.0.1:8787 EDGERELAY_KEY=$(cat .dev/api-key) examples/send.sh you@example.net
set -euo pipefail
url="${EDGERELAY_URL:-http://127.0.0.1:8787}"
key="${EDGERELAY_KEY:?set EDGERELAY_KEY to an API key}"
from="${EDGERELAY_FROM:-hello@$(cat .dev/sender-domain 2>/dev/null || echo example.com)}"
to="${1:-you@example.net}"

answer="$(curl -sS "$url/v1/messages" \
  -H "Authorization: Bearer $key" \
  -H "Content-Type: application/json" \
  -d "{\"from\": \"edgerelay example <$from>\", \"to\": \"$to\",
       \"subject\": \"Hello from edgerelay\",
       \"text\": \"Sent through edgerelay.\", \"html\": \"<p>Sent through <b>edgerelay</b>.</p>\"}")"
echo "$answer"
id="$(printf %s "$answer" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')"
[ -n "$id" ] || exit 1
for _ in $(seq 1 30); do
  status="$(curl -sS "$url/v1/messages/$id" -H "Authorization: Bearer $key")"
  case "$status" in
    *'"status":"queued"'*|*'"status":"deferred"'*) sleep 1 ;;
    *) echo "$status"; exit 0 ;;
  esac
done
echo "$status"
