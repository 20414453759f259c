"""The benchmark-only SMTP route, in the diagnostics build (the release build
has no such route: see test_release_build): absent unless BENCH_ROUTES=on;
when on, N copies over exactly one SMTP connection, each a real signed message."""
import dkim
import pytest

from conftest import DIAGNOSTICS_BUILD, basic_message
from test_walking_skeleton import dns_for


def bench(worker, query, key=None, body=None):
    headers = {"Authorization": f"Bearer {key or worker.api_key}"}
    return worker.request("POST", f"/bench/smtp?{query}", body or basic_message(), headers)


def test_bench_route_does_not_exist_by_default(start_worker, upstream):
    server = upstream().start()
    worker = start_worker(server.url, build_dir=DIAGNOSTICS_BUILD)
    status, body, _ = bench(worker, "count=3")
    assert status == 404, body
    assert body["error"]["rule"] == "not_found"
    assert server.messages == [] and server.connections == []


@pytest.mark.parametrize("pipelining", ["on", "off"])
def test_bench_route_sends_n_signed_copies_over_one_connection(start_worker, upstream,
                                                               dkim_ed25519, pipelining):
    server = upstream().start()
    worker = start_worker(server.url, build_dir=DIAGNOSTICS_BUILD, BENCH_ROUTES="on")
    status, body, _ = bench(worker, f"count=4&pipelining={pipelining}&chunking={pipelining}")
    assert status == 200, body
    assert body["count"] == 4 and body["delivered"] == 4, body
    assert body["pipelining"] is (pipelining == "on")
    assert body["first_failure"] is None
    assert isinstance(body["elapsed_ms"], int) and body["elapsed_ms"] >= 0
    received = server.messages
    assert len(received) == 4
    assert len(server.connections) == 1
    # Distinct messages (fresh Message-IDs), each with a valid signature.
    assert len({m.data for m in received}) == 4
    assert all(dkim.verify(m.data, dnsfunc=dns_for(dkim_ed25519)) for m in received)


def test_bench_route_refuses_bad_parameters_and_keys(start_worker, upstream):
    server = upstream().start()
    worker = start_worker(server.url, build_dir=DIAGNOSTICS_BUILD, BENCH_ROUTES="on")
    cases = [("count=0", "count"), ("count=5000", "count"),
             ("pipelining=maybe", "pipelining"), ("speed=max", "speed")]
    for query, field in cases:
        status, body, _ = bench(worker, query)
        assert status == 422, (query, body)
        assert body["error"]["field"] == field, (query, body)
    status, body, _ = bench(worker, "count=2", key="er_wrong_key")
    assert status == 401, body
    assert server.connections == [] and server.messages == []
