"""Where the repository and its tools are, found once.

The package is installed in editable mode from tests/harness, so the
repository is found from this file; EDGERELAY_ROOT overrides that for a
copy installed elsewhere.
"""
import os
from pathlib import Path


def _find_root() -> Path:
    override = os.environ.get("EDGERELAY_ROOT")
    if override:
        return Path(override).resolve()
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for candidate in (start, *start.parents):
            if (candidate / "wrangler.toml").is_file() and (candidate / "Cargo.toml").is_file():
                return candidate
    raise RuntimeError("cannot find the edgerelay repository: set EDGERELAY_ROOT")


ROOT = _find_root()
NODE_BIN = ROOT / "node_modules" / ".bin"
WRANGLER = NODE_BIN / "wrangler"
OPENAPI_PATH = ROOT / "openapi.json"

# The release build: what users deploy, and what most tests run.
RELEASE_BUILD = ROOT / "build"
# The same worker built with the cargo feature `diagnostics`
# (`make build-diagnostics`): the only build with the test fault switches
# (FAULT_ACCEPT, FAULT_CONSUMER_CRASH_AFTER) and the bench routes.
DIAGNOSTICS_BUILD = ROOT / "build-diagnostics"
