"""The official Node SDKs edgerelay is compatible with (`resend`,
`@sendgrid/mail`, `@sendgrid/client`), driven one call at a time through
tests/e2e/sdk/compat_clients.mjs, changed only in their base URL."""
import json
import subprocess

from .paths import NODE_BIN, ROOT

CLIENTS = ROOT / "tests" / "e2e" / "sdk" / "compat_clients.mjs"


def node_sdk(sdk: str, op: str, url: str, key: str, **args) -> dict:
    """Runs one call of `sdk` (`resend` or `sendgrid`) against the worker at
    `url`; answers what the script printed last (the SDK's data or error)."""
    run = subprocess.run(
        [str(NODE_BIN / "node"), str(CLIENTS),
         json.dumps({"sdk": sdk, "op": op, "url": url, "key": key, "args": args})],
        capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])
