"""The release build (build/, what `wrangler deploy` ships) has no test or
benchmark switch: their names are not in its wasm, and the benchmark routes
do not exist even when BENCH_ROUTES=on. The diagnostics build, built from the
same sources with the cargo feature `diagnostics`, has them: the check below
would see them if they leaked."""
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
