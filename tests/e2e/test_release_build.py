"""The release build (build/, what `wrangler deploy` ships) has no test or
benchmark switch: their names are not in its wasm, and the benchmark routes
do not exist even when BENCH_ROUTES=on. The diagnostics build, built from the
same sources with the cargo feature `diagnostics`, has them: the check below
would see them if they leaked."""
import gzip

import pytest

from edgerelay_harness.keys import basic_message
from edgerelay_harness.paths import DIAGNOSTICS_BUILD, RELEASE_BUILD
from edgerelay_harness.poll import wait_for

SWITCHES = [b"FAULT_", b"BENCH_", b"FAULT_ACCEPT", b"FAULT_CONSUMER_CRASH_AFTER",
            b"FAULT_D1_OUTAGE", b"SNS_LOOPBACK_URLS", b"FIXED_ACCEPT"]


def wasm(build_dir):
    files = sorted(build_dir.rglob("*.wasm"))
    assert files, f"no wasm in {build_dir}: run `make build build-diagnostics`"
    return b"".join(p.read_bytes() for p in files)


def test_the_release_wasm_stays_under_one_mib_gzipped():
    """The size budget (BENCHMARKS.md's size section): a dependency that
    drags in large tables, or a name section, shows here first."""
    files = sorted(RELEASE_BUILD.rglob("*.wasm"))
    assert files, f"no wasm in {RELEASE_BUILD}: run `make build`"
    for path in files:
        size = len(gzip.compress(path.read_bytes(), compresslevel=9))
        assert size < 1024 * 1024, f"{path.name} is {size / 1024:,.0f} KiB gzipped"
        # Only the few names wasm-bindgen gives its own glue: the crate's
        # function names are stripped (profile.release strip).
        names = custom_sections(path.read_bytes()).get("name", 0)
        assert names < 16 * 1024, f"{path.name} has a {names:,}-byte name section"


def custom_sections(module):
    """A wasm module's custom sections: name -> size in bytes."""
    def leb(at):
        value = shift = 0
        while True:
            byte = module[at]
            at += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value, at
    sizes, at = {}, 8
    while at < len(module):
        section, at = module[at], at + 1
        size, at = leb(at)
        if section == 0:
            length, start = leb(at)
            sizes[module[start:start + length].decode()] = size
        at += size
    return sizes


@pytest.mark.parametrize("switch", SWITCHES)
def test_the_release_wasm_names_no_switch(switch):
    release = wasm(RELEASE_BUILD)
    at = release.find(switch)
    assert at < 0, f"{switch!r} in the release wasm: {release[max(0, at - 40):at + 60]!r}"
    # The same search finds the switch where it belongs.
    assert switch in wasm(DIAGNOSTICS_BUILD)


def test_the_release_build_has_no_benchmark_routes(start_worker, upstream):
    server = upstream().start()
    worker = start_worker(server.url, BENCH_ROUTES="on", FAULT_ACCEPT="store",
                          FAULT_D1_OUTAGE="600")
    auth = {"Authorization": f"Bearer {worker.api_key}"}
    status, body, _ = worker.request("GET", "/bench/signing?signer=ed25519&n=1")
    assert status == 404, body
    assert body["error"]["rule"] == "not_found"
    status, body, _ = worker.request("POST", "/bench/smtp?count=2", basic_message(), auth)
    assert status == 404, body
    assert body["error"]["rule"] == "not_found"
    assert server.connections == [] and server.messages == []
    # FAULT_ACCEPT is not read either: the message is accepted; nor is
    # FAULT_D1_OUTAGE: the consumer delivers it at once.
    status, body, _ = worker.send(basic_message())
    assert status == 202, body
    wait_for(lambda: worker.status(body["id"])["status"] == "delivered",
             what="the message delivered despite FAULT_D1_OUTAGE")
    assert "FAULT_D1_OUTAGE" not in worker.log()
