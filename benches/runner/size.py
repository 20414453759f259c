"""Size and startup: the built wasm and the worker's script bundle in build/
(everything but the static assets, which the platform keeps apart from the
script and does not count against its size limit), raw and gzipped, and the
assets beside them; the time from starting `wrangler dev` to the first 200 on /health,
beside the same for a trivial JS worker, alternating round by round; and the
time V8 (Node 22, the engine workerd embeds) takes to compile the wasm, a
cleaner view of the isolate start-up edgerelay adds than wrangler's own."""
import gzip
import json
import subprocess
from pathlib import Path

from edgerelay_harness.net import free_port
from edgerelay_harness.paths import NODE_BIN, RELEASE_BUILD
from edgerelay_harness.wrangler import WranglerDev, migrate, worker_config

from . import relay
from .report import Row, median

MIB = 1024 * 1024
COMPILE_JS = ("const b=require('fs').readFileSync(process.argv[1]);"
              "const t=performance.now();"
              "WebAssembly.compile(b).then(()=>console.log(performance.now()-t));")


def _gz(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9))


def _trivial_config(directory: Path) -> Path:
    """A worker that answers 200 and does nothing else: the startup baseline."""
    script = directory / "trivial.js"
    script.write_text("export default { fetch() { return new Response('ok'); } };\n")
    path = directory / "trivial.json"
    path.write_text(json.dumps({"name": "trivial", "main": str(script),
                                "compatibility_date": "2026-11-01"}))
    return path


def _compile_ms(wasm: Path) -> float:
    node = NODE_BIN / "node"
    out = subprocess.run([str(node), "-e", COMPILE_JS, str(wasm)], check=True,
                         capture_output=True, text=True).stdout
    return float(out.strip())


def run(base: Path, rounds: int) -> tuple[list[Row], str]:
    build = RELEASE_BUILD
    every = [p for p in build.rglob("*") if p.is_file()]
    assets = [p for p in every if (build / "assets") in p.parents]
    files = [p for p in every if p not in assets]
    wasms = [p for p in files if p.suffix == ".wasm"]
    if not wasms:
        raise RuntimeError("no wasm in build/: run `make build` first")
    wasm = max(wasms, key=lambda p: p.stat().st_size)
    bundle_raw = sum(p.stat().st_size for p in files)
    bundle_gz = sum(_gz(p) for p in files)
    assets_gz = sum(_gz(p) for p in assets)

    directory = relay.workdir(base, "startup")
    config = worker_config(directory, relay.vars_for(free_port()), build_dir=RELEASE_BUILD)
    state = migrate(config, directory / "state")
    trivial = _trivial_config(directory)
    ours, theirs = [], []
    for _ in range(rounds):
        for configs, path, into in (([config], "/health", ours), ([trivial], "/", theirs)):
            w = WranglerDev(configs, directory, state_dir=state if into is ours else None,
                            log_level="warn")
            try:
                into.append(w.wait_ready(path) * 1000)
            finally:
                w.stop()
    compiles = [_compile_ms(wasm) for _ in range(rounds)]

    rows = [
        Row(figure=f"Size: wasm ({wasm.name}), gzipped", value=_gz(wasm) / 1024, unit="KiB",
            target="< 1 MiB gzipped", met=_gz(wasm) < MIB, runs=1,
            samples=[_gz(wasm) / 1024], note=f"raw {wasm.stat().st_size / 1024:,.0f} KiB"),
        Row(figure=f"Size: worker script (build/ but assets/, {len(files)} files), gzipped",
            value=bundle_gz / 1024, unit="KiB", target="< 1 MiB gzipped",
            met=bundle_gz < MIB, runs=1, samples=[bundle_gz / 1024],
            note=f"raw {bundle_raw / 1024:,.0f} KiB; each file gzipped -9 on its own"),
        Row(figure=f"Size: static assets (build/assets/, {len(assets)} files), gzipped",
            value=assets_gz / 1024, unit="KiB", runs=1, samples=[assets_gz / 1024],
            note="openapi.json and the dashboard; served through the ASSETS binding, "
                 "not part of the script's size limit"),
        Row(figure="Startup: `wrangler dev` start → first 200", value=median(ours), unit="ms",
            baseline=median(theirs), baseline_label="trivial JS worker", runs=rounds,
            samples=ours, baseline_samples=theirs,
            note="includes wrangler's own start-up and edgerelay's settings parse on first request"),
        Row(figure="Startup: V8 compile of the wasm (Node 22)", value=median(compiles),
            unit="ms", runs=rounds, samples=compiles,
            note="one fresh node process per run, so no compiled-module cache is reused"),
    ]
    text = ("Sizes are of the release build in build/ as deployed (worker-build, wasm-opt). "
            f"Start-up: {rounds} rounds, each starting `wrangler dev` for edgerelay (migrated "
            "local D1) and then for a one-line JS worker, polling every 20 ms until the first 200.")
    return rows, text
