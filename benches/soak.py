"""edgerelay's soak run: `make soak` runs this after building the worker.

Pushes thousands of messages through the release build under `wrangler dev`
while the upstream (aiosmtpd with AUTH, on loopback) injects faults at the end
of data (451, 421, dropped connections with and without the message kept,
stalls past the reply timeout), and kills the whole `wrangler dev` process
group with SIGKILL mid-delivery several times, restarting it on the same
persisted state (whose local queue is lost each time: the reconciliation
sweep brings the jobs back). Then it fires the sweep until every message is
final, or the time is up, and counts at the server: every accepted message
must have arrived exactly once, except those recorded `unknown` (at most
once). It stops by itself: bounded by --messages and --minutes.

    .venv/bin/python benches/soak.py [--messages N] [--kills K] [--fault-rate R] [--minutes M]

Exits non-zero when a message was lost, duplicated outside `unknown`, failed,
or not final in time. Prints a Markdown summary for docs/reliability.md.
"""
import argparse
import logging
import re
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from pathlib import Path

from edgerelay_harness.client import request
from edgerelay_harness.keys import DkimKey, api_key_entry, basic_message, new_api_key, relay_vars
from edgerelay_harness.paths import RELEASE_BUILD
from edgerelay_harness.pki import make_ca_and_server_cert
from edgerelay_harness.upstream import Behaviour, Upstream
from edgerelay_harness.wrangler import WranglerDev, migrate, worker_config

FINAL = {"delivered", "partially_delivered", "failed", "unknown"}
SUBJECT = re.compile(rb"Subject: (soak \d+)\r\n")


class Soak:
    def __init__(self, directory: Path, args):
        self.args = args
        self.api_key = new_api_key("er_soak_")
        self.auth = {"Authorization": f"Bearer {self.api_key}"}
        (directory / "pki").mkdir()
        tls = make_ca_and_server_cert(directory / "pki")
        self.server = Upstream(tls, require_tls=False, behaviour=Behaviour(
            fault_rate=args.fault_rate, fault_seed=args.seed, stall_seconds=8.0)).start()
        vars_ = relay_vars(
            [api_key_entry(self.api_key, "soak")], [DkimKey.ed25519("soak")], self.server.url,
            RETRY_BASE_DELAY_SECONDS="1", RETRY_MAX_DELAY_SECONDS="10",
            SMTP_TIMEOUT_SECONDS="3", DELIVERY_LEASE_SECONDS="30", SWEEP_GRACE_SECONDS="10",
            SWEEP_LIMIT="1000",
        )
        config = worker_config(directory, vars_, build_dir=RELEASE_BUILD)
        state = migrate(config, directory / "state")
        self.dev = WranglerDev([config], directory, state_dir=state, log_level="warn")
        self.dev.wait_ready(timeout=90)
        self.accepted: dict[str, str] = {}  # id -> subject
        self.refused = 0  # requests answered other than 202 (or not at all)
        self.lock = threading.Lock()
        self.kills = 0
        self.requeued = 0

    def send_range(self, numbers: range, threads: int = 4) -> None:
        def worker(part):
            for n in part:
                subject = f"soak {n}"
                try:
                    s, body, _ = request(self.dev.url + "/v1/messages", "POST",
                                         basic_message(subject=subject), self.auth, timeout=30)
                except OSError:
                    s, body = 0, None
                with self.lock:
                    if s == 202:
                        self.accepted[body["id"]] = subject
                    else:
                        self.refused += 1
        parts = [numbers[i::threads] for i in range(threads)]
        running = [threading.Thread(target=worker, args=(p,)) for p in parts]
        for t in running:
            t.start()
        for t in running:
            t.join()

    def arrived(self) -> int:
        return len(self.server.messages)

    def kill_and_restart(self) -> None:
        self.count_sweeps()
        self.dev.kill()
        self.kills += 1
        self.dev.restart()
        self.dev.wait_ready(timeout=90)

    def count_sweeps(self) -> None:
        for n in re.findall(r"edgerelay: sweep: (\d+) re-enqueued", self.dev.log()):
            self.requeued += int(n)

    def statuses(self) -> dict[str, str]:
        found, cursor = {}, None
        while True:
            path = "/v1/messages?limit=100" + (f"&cursor={cursor}" if cursor else "")
            s, page, _ = request(self.dev.url + path, headers=self.auth, timeout=30)
            if s != 200:
                raise RuntimeError(f"listing answered {s}: {page}")
            found.update({m["id"]: m["status"] for m in page["data"]})
            cursor = page["next_cursor"]
            if not cursor:
                return found

    def settle(self, deadline: float) -> dict[str, str]:
        """Fires the sweep until every accepted message is final, or the deadline."""
        while True:
            self.dev.scheduled()
            statuses = self.statuses()
            open_ = [i for i in self.accepted if statuses.get(i) not in FINAL]
            if not open_ or time.monotonic() > deadline:
                return statuses
            time.sleep(2.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    # The upstream requires AUTH without TLS on loopback, on purpose: keep
    # aiosmtpd's warnings about it out of the report.
    warnings.filterwarnings("ignore", module="aiosmtpd")
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    started = time.monotonic()
    deadline = started + args.minutes * 60

    with tempfile.TemporaryDirectory(prefix="edgerelay-soak-") as tmp:
        soak = Soak(Path(tmp), args)
        try:
            rounds = args.kills + 1
            per_round = args.messages // rounds
            for r in range(rounds):
                first = r * per_round
                last = args.messages if r == rounds - 1 else first + per_round
                before = soak.arrived()
                soak.send_range(range(first, last))
                print(f"[soak] round {r + 1}: sent {last - first}, accepted so far "
                      f"{len(soak.accepted)}", flush=True)
                if r < args.kills:
                    # Kill while the round's messages are being delivered.
                    goal = before + (last - first) // 3
                    while soak.arrived() < goal and time.monotonic() < deadline:
                        time.sleep(0.02)
                    soak.kill_and_restart()
                    print(f"[soak] kill {soak.kills}: {soak.arrived()} at the server", flush=True)
            statuses = soak.settle(deadline)
            soak.count_sweeps()
        finally:
            soak.dev.stop()
            soak.server.stop()

    copies = Counter()
    for m in soak.server.messages:
        found = SUBJECT.search(m.data)
        if found:
            copies[found.group(1).decode()] += 1
    by_status = Counter(statuses.get(i, "missing") for i in soak.accepted)
    lost, duplicated, unknown_arrived, failed, open_ = [], [], 0, [], []
    for message_id, subject in soak.accepted.items():
        status, n = statuses.get(message_id), copies[subject]
        if status not in FINAL:
            open_.append(message_id)
        elif status == "unknown":
            unknown_arrived += n
            if n > 1:
                duplicated.append(subject)
        elif status == "delivered":
            if n == 0:
                lost.append(subject)
            elif n > 1:
                duplicated.append(subject)
        else:
            failed.append(message_id)
    accepted_subjects = set(soak.accepted.values())
    # Requests whose answer the caller never got (a kill mid-request) may
    # still have been accepted; they are not counted either way.
    unanswered = sum(n for s, n in copies.items() if s not in accepted_subjects)
    faults = soak.server.handler.faults
    elapsed = time.monotonic() - started
    rows = [
        ("messages sent / accepted (202)", f"{args.messages} / {len(soak.accepted)}"),
        ("SIGKILL + restart of wrangler dev", str(soak.kills)),
        ("upstream faults injected", f"{sum(faults.values())} ({', '.join(f'{k} {v}' for k, v in sorted(faults.items()))})"),
        ("jobs re-enqueued by the sweep", str(soak.requeued)),
        ("final statuses", ", ".join(f"{k} {v}" for k, v in sorted(by_status.items()))),
        ("lost (delivered on record, not at the server)", str(len(lost))),
        ("duplicated outside `unknown`", str(sum(1 for s in duplicated))),
        ("`unknown`: arrived at the server", f"{unknown_arrived} of {by_status.get('unknown', 0)}"),
        ("failed / not final in time", f"{len(failed)} / {len(open_)}"),
        ("copies of unanswered requests at the server", str(unanswered)),
        ("duration", f"{elapsed / 60:.1f} min"),
    ]
    print("\n| Soak | Result |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")
    ok = not (lost or duplicated or failed or open_)
    print("\n[soak] " + ("every accepted message accounted for" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
