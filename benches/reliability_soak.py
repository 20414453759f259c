"""edgerelay's reliability soak: `make soak` runs this after building the worker.

Pushes thousands of messages through the built worker under `wrangler dev`
(workerd, local Queues, D1 and R2, all state persisted in one directory) and
counts, at the servers, every message it accepted. While it runs:

- Two upstreams on loopback, in failover order: Postfix's smtp-sink (a real,
  fast server), restarted every few seconds with another of its own fault
  options (`-Q mail`: 421 and hang up at MAIL; `-q rcpt`: hang up at RCPT;
  `-q .`: hang up after the final dot, message kept; `-W data:1:50`: random
  delays at DATA, past the client's timeout; `-r rcpt`: 4xx at RCPT; stopped
  altogether), and a scripted server (edgerelay_harness.faulty_smtp) that
  injects, at random from a seed, 421 greetings, hang-ups at RCPT, 451 at the
  end of data, hang-ups after the final dot with and without the message
  kept, and stalls past the client's timeout.
- The `wrangler dev` process group (wrangler and workerd) is killed with
  SIGKILL several times and started again on the same persisted state.
- When the diagnostics build has the `FAULT_D1_OUTAGE` switch, one of the
  worker's lives runs that build with every consumer D1 call failing for a
  while. When it does not, the phase is skipped and the report says so.
- When the worker has a cron trigger (the reconciliation sweep), the sweep
  is fired through `wrangler dev`'s local scheduled route every few seconds.
  When it has none, messages whose queue job died with a killed local queue
  are reported as "lost to the killed local queue, awaiting sweep", apart
  from the lost count.

Afterwards every accepted message (202) is looked up in the status API and
its copies at both servers are counted by its unique Subject. Lost: accepted,
never received, and not honestly `unknown` or `failed` (nor, without a sweep,
waiting for one). Duplicated: more than one copy, status not `unknown`.
Exits non-zero when either is above zero. The numbers go into BENCHMARKS.md
(its "Reliability soak" section; the rest of the file is kept).

    .venv/bin/python benches/reliability_soak.py [--quick] [--messages N] [--kills K]
        [--d1-outage S] [--minutes M] [--rate R] [--seed S] [--output FILE | --no-write]

It talks only to loopback and stops by itself: --messages is capped at
MAX_MESSAGES and --minutes at MAX_MINUTES, after which whatever is not final
is reported as such.
"""
import argparse
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import tomllib
from collections import Counter
from pathlib import Path

from edgerelay_harness.client import request
from edgerelay_harness.faulty_smtp import FaultySmtp
from edgerelay_harness.keys import DkimKey, api_key_entry, basic_message, new_api_key, relay_vars
from edgerelay_harness.net import free_port
from edgerelay_harness.paths import DIAGNOSTICS_BUILD, RELEASE_BUILD, ROOT
from edgerelay_harness.smtp_sink import SmtpSink
from edgerelay_harness.wrangler import WranglerDev, migrate, worker_config
from runner.report import load_average, machine

MAX_MESSAGES = 20000
MAX_MINUTES = 15.0
FINAL = {"delivered", "partially_delivered", "failed", "unknown"}
SECTION = "## Reliability soak"
SCHEDULED_PATH = "/cdn-cgi/local/scheduled"
# smtp-sink's fault phases, in turn with clean ones: (kind, options); None
# options: the server is stopped (connections refused).
SINK_FAULTS = [
    ("421 at MAIL (-Q mail)", ["-Q", "mail"]),
    ("hang-up at RCPT (-q rcpt)", ["-q", "rcpt"]),
    ("hang-up after the final dot, kept (-q .)", ["-q", "."]),
    ("random DATA delays (-W data:1:50)", ["-W", "data:1:50"]),
    ("down (connection refused)", None),
    ("4xx at RCPT (-r rcpt)", ["-r", "rcpt"]),
]
# The sweep's summary line in the worker's log.
SWEEP_LINE = re.compile(r'"event":"sweep_done","requeued":(\d+)')
SUBJECT = re.compile(rb"^Subject: ([^\r\n]*)", re.MULTILINE | re.IGNORECASE)


def log(text: str) -> None:
    print(f"[soak] {text}", flush=True)


def has_sweep() -> bool:
    """The worker declares a cron trigger: the reconciliation sweep."""
    with open(ROOT / "wrangler.toml", "rb") as f:
        return bool(tomllib.load(f).get("triggers", {}).get("crons"))


def has_d1_outage_switch() -> bool:
    wasm = DIAGNOSTICS_BUILD / "index_bg.wasm"
    return wasm.exists() and b"FAULT_D1_OUTAGE" in wasm.read_bytes()


class SinkPhases:
    """smtp-sink on one port, restarted with a new fault option each phase."""

    def __init__(self, dump_dir: Path, phase_seconds: float):
        self.dump_dir = dump_dir
        self.phase_seconds = phase_seconds
        self.port = free_port()
        self.sink: SmtpSink | None = None
        self.seconds: Counter = Counter()  # fault kind -> seconds in force
        self.phases: Counter = Counter()  # fault kind -> times
        self.restarts = 0
        self.aborted = 0  # empty dump files: transactions cut short before the final dot
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"smtp+insecure://127.0.0.1:{self.port}"

    def _start(self, options: list[str] | None) -> None:
        if self.sink is not None:
            self.sink.stop()
            self.sink = None
            self.restarts += 1
        if options is not None:
            self.sink = SmtpSink(*options, port=self.port, dump_dir=self.dump_dir, backlog=64)

    def start(self) -> "SinkPhases":
        self._start([])
        self._thread.start()
        return self

    def _run(self) -> None:
        turn = 0
        while not self._stop.wait(self.phase_seconds):
            kind, options = SINK_FAULTS[turn % len(SINK_FAULTS)]
            self._start(options)
            began = time.monotonic()
            self._stop.wait(self.phase_seconds)
            self.seconds[kind] += time.monotonic() - began
            self.phases[kind] += 1
            self._start([])
            turn += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        if self.sink is not None:
            self.sink.stop()

    def dumped(self) -> int:
        return sum(1 for p in self.dump_dir.iterdir() if p.stat().st_size)

    def subjects(self) -> Counter:
        """Copies kept, by Subject. smtp-sink creates a dump file at DATA and
        fills it at the final dot: an empty one is a transaction cut short
        (counted in `aborted`), not a message."""
        copies: Counter = Counter()
        self.aborted = 0
        for path in self.dump_dir.iterdir():
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if not data:
                self.aborted += 1
                continue
            found = SUBJECT.search(data.split(b"\n\n", 1)[0]) or SUBJECT.search(data)
            copies[found.group(1).decode(errors="replace") if found else ""] += 1
        return copies


class Worker:
    """The worker's lives: each a `wrangler dev` on the same persisted state."""

    def __init__(self, directory: Path, vars_: dict, state: Path):
        self.directory = directory
        self.vars = vars_
        self.state = state
        self.dev: WranglerDev | None = None
        self.url = ""
        self.up = threading.Event()
        self.lives = 0
        self.kills = 0

    def start(self, build_dir: Path = RELEASE_BUILD, **extra_vars) -> float:
        config = worker_config(self.directory, {**self.vars, **extra_vars}, build_dir=build_dir,
                               name=f"edgerelay-{self.lives}.json")
        self.lives += 1
        self.dev = WranglerDev([config], self.directory, state_dir=self.state,
                               port=free_port(), log_level="info")
        seconds = self.dev.wait_ready(timeout=120)
        self.url = self.dev.url
        self.up.set()
        return seconds

    def kill(self) -> None:
        """SIGKILL to wrangler and workerd at once, as a crashed host."""
        self.up.clear()
        assert self.dev is not None
        try:
            os.killpg(self.dev.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.dev.process.wait(timeout=30)
        self.kills += 1

    def stop(self) -> None:
        self.up.clear()
        if self.dev is not None:
            self.dev.stop()

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace")
                       for p in sorted(self.directory.glob("wrangler-*.log")))

    def sweep(self) -> int:
        try:
            s, _, _ = request(self.url + SCHEDULED_PATH, timeout=60)
        except OSError:
            return 0
        return s


class Senders:
    """Threads that POST numbered messages at a bounded rate while the
    worker is up; each answer is kept by message number."""

    def __init__(self, worker: Worker, auth: dict, run: str, count: int, rate: float,
                 deadline: float, threads: int = 4):
        self.worker, self.auth, self.run, self.count = worker, auth, run, count
        self.deadline = deadline
        self.interval = threads / rate
        self.next = 0
        self.lock = threading.Lock()
        self.accepted: dict[str, str] = {}  # message id -> subject
        self.answers: Counter = Counter()  # HTTP status (0: no answer) -> count
        self.unanswered: set[str] = set()  # subjects whose request got no answer
        self.attempted: set[str] = set()  # subjects POSTed
        self.threads = [threading.Thread(target=self._work, daemon=True) for _ in range(threads)]

    def subject(self, n: int) -> str:
        return f"soak {self.run} {n:06d}"

    def sent(self) -> int:
        """Requests begun (or about to begin)."""
        with self.lock:
            return self.next

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self, deadline: float) -> None:
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def _work(self) -> None:
        while True:
            with self.lock:
                if self.next >= self.count or time.monotonic() > self.deadline:
                    return
                n = self.next
                self.next += 1
            if not self.worker.up.wait(max(0.0, self.deadline - time.monotonic())):
                return
            began = time.monotonic()
            subject = self.subject(n)
            with self.lock:
                self.attempted.add(subject)
            message = basic_message(subject=subject, text=f"soak message {n}\n.\nend")
            message.pop("html")
            try:
                s, body, _ = request(self.worker.url + "/v1/messages", "POST", message,
                                     self.auth, timeout=30)
            except Exception:  # a killed worker: reset, refused, cut short
                s, body = 0, None
            with self.lock:
                self.answers[s] += 1
                if s == 202:
                    self.accepted[body["id"]] = subject
                elif s == 0:
                    self.unanswered.add(subject)
            time.sleep(max(0.0, self.interval - (time.monotonic() - began)))


def statuses(worker: Worker, auth: dict) -> dict[str, str]:
    found, cursor = {}, None
    while True:
        path = "/v1/messages?limit=100" + (f"&cursor={cursor}" if cursor else "")
        s, page, _ = request(worker.url + path, headers=auth, timeout=60)
        if s != 200:
            raise RuntimeError(f"listing messages answered {s}: {page}")
        found.update({m["id"]: m["status"] for m in page["data"]})
        cursor = page.get("next_cursor")
        if not cursor:
            return found


def settled_recipients(worker: Worker, auth: dict, accepted: dict, final: dict,
                       copies: Counter) -> set[str]:
    """Of the messages that arrived while their status is not final, those
    whose every recipient is recorded final (`delivered` or `unknown`): the
    message's status lags its recipients, and a retry would skip them."""
    done = set()
    for message_id, subject in accepted.items():
        if final.get(message_id) in FINAL or not copies[subject]:
            continue
        s, body, _ = request(f"{worker.url}/v1/messages/{message_id}", headers=auth, timeout=30)
        states = {r.get("state") for r in body.get("recipients", [])} if s == 200 else {"?"}
        if states and states <= {"delivered", "unknown"}:
            done.add(message_id)
    return done


def explain(worker: Worker, auth: dict, accepted: dict, final: dict, at_sink: Counter,
            at_scripted: Counter) -> None:
    """Prints the records of a few messages whose count or status is odd,
    for whoever reads the run's output."""
    copies = at_sink + at_scripted
    odd = Counter()
    for message_id, subject in accepted.items():
        status, n = final.get(message_id), copies[subject]
        kind = ("copies>1" if n > 1 and status != "unknown" else
                "not final, arrived" if status not in FINAL and n else
                "delivered, not arrived" if status == "delivered" and not n else
                "failed, arrived" if status == "failed" and n else None)
        if kind is None or odd[kind] >= 4:
            continue
        odd[kind] += 1
        s, body, _ = request(f"{worker.url}/v1/messages/{message_id}", headers=auth, timeout=30)
        record = body if isinstance(body, dict) else {"answer": s, "body": body}
        log(f"{kind}: {subject} ({message_id}; copies: smtp-sink {at_sink[subject]}, "
            f"scripted {at_scripted[subject]}): {status}; recipients "
            f"{record.get('recipients')}; events {record.get('events')}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a short run: 300 messages, 1 kill, 10 s D1 outage, 6 minutes")
    parser.add_argument("--messages", type=int, help="messages to send (default 3000)")
    parser.add_argument("--kills", type=int, help="SIGKILLs of the worker (default 3)")
    parser.add_argument("--d1-outage", type=int, help="seconds of D1 outage (default 30)")
    parser.add_argument("--minutes", type=float, help=f"time bound (default and max {MAX_MINUTES:g})")
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second sent")
    parser.add_argument("--fault-rate", type=float, default=0.1,
                        help="the scripted server's share of faulty transactions")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--no-write", action="store_true", help="print the report only")
    args = parser.parse_args()
    quick = args.quick
    args.messages = args.messages or (300 if quick else 3000)
    args.kills = args.kills if args.kills is not None else (1 if quick else 3)
    args.d1_outage = args.d1_outage if args.d1_outage is not None else (10 if quick else 30)
    args.minutes = args.minutes or (6.0 if quick else MAX_MINUTES)
    if not 1 <= args.messages <= MAX_MESSAGES:
        parser.error(f"--messages must be 1..{MAX_MESSAGES}")
    if not 0 < args.minutes <= MAX_MINUTES:
        parser.error(f"--minutes must be above 0 and at most {MAX_MINUTES:g}")
    if not 0 <= args.kills <= 20 or not 0 <= args.d1_outage <= 300:
        parser.error("--kills must be 0..20 and --d1-outage 0..300")
    return args


def main() -> int:
    args = parse_args()
    started = time.monotonic()
    deadline = started + args.minutes * 60
    info, load_before = machine(), load_average()
    sweep = has_sweep()
    outage = args.d1_outage if args.d1_outage and has_d1_outage_switch() else 0
    notes = []
    if not sweep:
        notes.append("This build has no cron trigger (reconciliation sweep): a message whose "
                     "queue job died with a killed local queue stays `queued`; such messages "
                     "are counted as \"lost to the killed local queue, awaiting sweep\", "
                     "not healed and not hidden.")
    if args.d1_outage and not outage:
        notes.append("The diagnostics build has no `FAULT_D1_OUTAGE` switch: the D1 outage "
                     "phase was skipped (0 s of outage).")
    for note in notes:
        log("note: " + note)

    run = f"{int(time.time()) % 100000:05d}"
    api_key = new_api_key("er_soak_")
    auth = {"Authorization": f"Bearer {api_key}"}
    kill_log: list[str] = []
    sweeps = Counter()
    outage_errors = requeued = storage_requeues = 0
    recipients_done: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="edgerelay-soak-") as tmp:
        tmp_path = Path(tmp)
        os.chmod(tmp_path, 0o755)  # smtp-sink drops to `nobody` and writes its dumps below
        phase_seconds = 6.0 if args.quick else 12.0
        sink = SinkPhases(tmp_path / "sink", phase_seconds).start()
        scripted = FaultySmtp(rate=args.fault_rate, seed=args.seed, stall_seconds=8.0).start()
        extra = {"RETRY_BASE_DELAY_SECONDS": "1", "RETRY_MAX_DELAY_SECONDS": "10",
                 "SMTP_TIMEOUT_SECONDS": "3"}
        if sweep:
            extra.update(DELIVERY_LEASE_SECONDS="30", SWEEP_GRACE_SECONDS="10",
                         SWEEP_LIMIT="1000")
        vars_ = relay_vars([api_key_entry(api_key, "soak")], [DkimKey.ed25519("soak"), DkimKey.rsa("soak-rsa")],
                           f"{sink.url},{scripted.url}", **extra)
        directory = tmp_path / "worker"
        directory.mkdir()
        state = migrate(worker_config(directory, vars_), directory / "state")
        worker = Worker(directory, vars_, state)
        senders = Senders(worker, auth, run, args.messages, args.rate, deadline)
        final: dict[str, str] = {}
        try:
            worker.start()
            log(f"worker up at {worker.url}; upstreams {sink.url} (smtp-sink), "
                f"{scripted.url} (scripted)")
            senders.start()
            # Kills spread over the sending; the D1 outage runs in the life
            # after the first kill (or the first life when there is none).
            marks = [args.messages * (k + 1) // (args.kills + 1) for k in range(args.kills)]
            outage_ends = 0.0
            if outage and not marks:
                worker.stop()
                worker.start(DIAGNOSTICS_BUILD, FAULT_D1_OUTAGE=str(outage))
                outage_ends = time.monotonic() + outage
            next_sweep = time.monotonic()
            for k, mark in enumerate(marks):
                while senders.sent() < mark and time.monotonic() < deadline:
                    if sweep and time.monotonic() >= next_sweep:
                        sweeps[worker.sweep()] += 1
                        next_sweep = time.monotonic() + 5
                    time.sleep(0.05)
                while time.monotonic() < min(outage_ends + 5, deadline):
                    time.sleep(0.1)
                if time.monotonic() >= deadline:
                    break
                worker.kill()
                at_servers = sink.dumped() + sum(scripted.subjects.values())
                kill_log.append(f"kill {worker.kills} after {senders.sent()} requests, "
                                f"{len(senders.accepted)} accepted, {at_servers} at the servers")
                log(kill_log[-1])
                if outage and k == 0:
                    worker.start(DIAGNOSTICS_BUILD, FAULT_D1_OUTAGE=str(outage))
                    outage_ends = time.monotonic() + outage
                    log(f"restarted with a {outage} s D1 outage in the consumer")
                else:
                    worker.start()
                    log("restarted on the same state")
            senders.join(deadline)
            log(f"sending done: {senders.answers.get(202, 0)} accepted of {senders.sent()}")

            # Drain: until every accepted message is final, or nothing has
            # changed for a while (without a sweep, a message whose job died
            # stays queued for good), or the time is up.
            quiet_needed = 20.0 if args.quick else 45.0
            last, quiet_since = None, time.monotonic()
            while time.monotonic() < deadline:
                if sweep:
                    sweeps[worker.sweep()] += 1
                now_statuses = statuses(worker, auth)
                open_ = [i for i in senders.accepted if now_statuses.get(i) not in FINAL]
                snapshot = (Counter(now_statuses.values()), sum(scripted.subjects.values()),
                            sink.dumped())
                if snapshot != last:
                    last, quiet_since = snapshot, time.monotonic()
                    log(f"draining: {len(open_)} not final; {dict(snapshot[0])}")
                final = now_statuses
                if not open_ or time.monotonic() - quiet_since > quiet_needed:
                    break
                time.sleep(3)
            logs = worker.logs()
            outage_errors = logs.count("FAULT_D1_OUTAGE")
            storage_requeues = logs.count('"event":"message_retried_later"')
            requeued = sum(int(n) for n in SWEEP_LINE.findall(logs))
            explain(worker, auth, senders.accepted, final, sink.subjects(), scripted.subjects)
            recipients_done = settled_recipients(worker, auth, senders.accepted, final,
                                                 sink.subjects() + scripted.subjects)
        finally:
            worker.stop()
            sink.stop()
            scripted.stop()
        copies = sink.subjects() + scripted.subjects
        if os.environ.get("SOAK_KEEP_LOGS"):
            shutil.copytree(directory, os.environ["SOAK_KEEP_LOGS"],
                            ignore=shutil.ignore_patterns("state"), dirs_exist_ok=True)

    elapsed = time.monotonic() - started
    by_status = Counter(final.get(i, "missing") for i in senders.accepted)
    lost, duplicated, awaiting_sweep, untrue, arrived_not_final = [], [], [], [], []
    status_lags = []
    delivered = unknown_arrived = failed = 0
    for message_id, subject in senders.accepted.items():
        status, n = final.get(message_id, "missing"), copies[subject]
        if n > 1 and status != "unknown":
            duplicated.append(subject)
        if status in ("delivered", "partially_delivered"):
            delivered += 1
            if n == 0:
                lost.append(subject)
        elif status == "unknown":
            unknown_arrived += n
        elif status == "failed":
            failed += 1
            if n:
                untrue.append(subject)
        elif n == 0:
            (lost if sweep else awaiting_sweep).append(subject)
        elif message_id in recipients_done:
            status_lags.append(subject)
        else:
            arrived_not_final.append(subject)
    asked = senders.attempted
    strangers = sum(n for s, n in copies.items() if s not in asked)
    if strangers:
        log("copies of subjects never sent: " + ", ".join(
            repr(s) for s in list(copies) if s not in asked)[:1000])
    unanswered_arrived = sum(1 for s in senders.unanswered if copies[s])
    accepted = len(senders.accepted)
    not_final = sum(1 for i in senders.accepted if final.get(i) not in FINAL)
    rows = [
        ("Messages sent / accepted (202)", f"{len(senders.attempted)} / {accepted}"),
        ("503 answers (nothing accepted)", str(senders.answers.get(503, 0))),
        ("Other answers", ", ".join(f"{s or 'no answer'}: {n}" for s, n in
                                    sorted(senders.answers.items()) if s not in (202, 503))
         or "none"),
        ("SIGKILLs of wrangler dev + workerd, restarted on the same state", str(worker.kills)),
        ("D1 outage (consumer, diagnostics build)",
         f"{outage} s in one life; {outage_errors} log lines name it; {storage_requeues} "
         "messages sent again with a delay for storage trouble" if outage
         else "skipped: no switch"),
        ("Reconciliation sweep", f"fired {sum(sweeps.values())} times "
         f"({', '.join(f'HTTP {s}: {n}' for s, n in sorted(sweeps.items()))}); "
         f"{requeued} jobs re-enqueued (its log lines)"
         if sweep else "absent from this build"),
        ("Scripted-server faults", ", ".join(f"{k} {v}" for k, v in sorted(scripted.faults.items()))
         + f" (of {scripted.connections} connections)"),
        ("smtp-sink fault phases", ", ".join(
            f"{k} {sink.phases[k]}× ({sink.seconds[k]:.0f} s)" for k, _ in SINK_FAULTS
            if sink.phases[k]) + f"; {sink.restarts} restarts; {sink.aborted} transactions cut "
         "short before the final dot"),
        ("Final statuses", ", ".join(f"{k} {v}" for k, v in sorted(by_status.items()))),
        ("Delivered (status) / arrived at a server", f"{delivered} / "
         f"{sum(1 for s in senders.accepted.values() if copies[s])}"),
        ("Unknown (copies at the servers)", f"{by_status.get('unknown', 0)} ({unknown_arrived})"),
        ("Failed", str(failed)),
        ("Not final at the end (queued or deferred)", str(not_final)),
        ("**Lost** (accepted, never received, not `unknown`/`failed`)", f"**{len(lost)}**"),
        ("**Duplicated** outside `unknown`", f"**{len(duplicated)}**"),
        ("Lost to the killed local queue, awaiting sweep",
         str(len(awaiting_sweep)) if not sweep else "n/a (sweep present)"),
        ("Arrived, recipient recorded final, message status not", str(len(status_lags))),
        ("Arrived, recipient not recorded final (a retry would send it again)",
         str(len(arrived_not_final))),
        ("Status `failed` but arrived", str(len(untrue))),
        ("Requests killed before an answer: arrived anyway",
         f"{unanswered_arrived} of {len(senders.unanswered)}"),
        ("Copies of subjects never sent", str(strangers)),
        ("Wall time", f"{elapsed / 60:.1f} min"),
    ]
    command = "make soak" + (" SOAK_ARGS='--quick'" if args.quick else "")
    extra_args = [a for a in sys.argv[1:] if a != "--quick"]
    if extra_args:
        command = "make soak SOAK_ARGS='" + " ".join(sys.argv[1:]) + "'"
    # Anything but "final and true" is named in the verdict and fails the run.
    problems = [f"{n} {what}" for n, what in [
        (len(lost), "lost"),
        (len(duplicated), "duplicated outside `unknown`"),
        (len(untrue), "`failed` but arrived"),
        (len(arrived_not_final), "arrived while their recipient is not recorded final (a "
                                 "retry would send them again)"),
        (len(status_lags), "arrived with their recipient recorded final but a message "
                           "status that is not"),
        (len(awaiting_sweep), "lost to the killed local queue, awaiting a sweep this build "
                              "does not have"),
        (strangers, "copies of messages never sent"),
    ] if n]
    ok = not problems
    verdict = ("every accepted message accounted for: final, none lost, none duplicated "
               "outside `unknown`" if ok else "**NOT MET**: " + "; ".join(problems))
    setup = ("release build" + (f"; the life after the first kill on the diagnostics build with "
                                 f"FAULT_D1_OUTAGE={outage}" if outage else "")
             + ("; the sweep fired every 3 to 5 s (the deployed cron runs every 5 min), "
                "SWEEP_GRACE_SECONDS=10, DELIVERY_LEASE_SECONDS=30, SWEEP_LIMIT=1000"
                if sweep else "; no sweep in this build"))
    text = render(rows, notes, kill_log, command, info, load_before, load_average(), verdict, args,
                  setup)
    print(text, flush=True)
    if not args.no_write:
        write_section(Path(args.output), text)
        log(f"wrote the {SECTION!r} section of {args.output}")
    log(verdict)
    return 0 if ok else 1


def render(rows, notes, kill_log, command, info, load_before, load_after, verdict, args,
           setup) -> str:
    out = [
        SECTION,
        "",
        "Written by `benches/reliability_soak.py` (`make soak`); do not edit by hand, run it "
        "again. The rest of this file is the benchmark runner's.",
        "",
        f"- Command: `{command}`",
        f"- Date: {info['date']}",
        f"- Machine: {info['cpu']}, {info['cores']} cores, {info['os']}; load average "
        f"before {load_before}, after {load_after} (shared machine)",
        f"- Sent at up to {args.rate:g} messages/s from 4 clients; one recipient each; "
        f"upstreams: smtp-sink (fault phases) then the scripted server "
        f"(fault rate {args.fault_rate:g}, seed {args.seed}); SMTP_TIMEOUT_SECONDS=3, "
        "RETRY_BASE_DELAY_SECONDS=1, RETRY_MAX_DELAY_SECONDS=10",
        f"- Worker: {setup}",
        f"- Result: {verdict}",
        "",
        "| Figure | Value |",
        "| --- | --- |",
        *[f"| {k} | {v} |" for k, v in rows],
        "",
    ]
    if kill_log:
        out += ["Kills: " + "; ".join(kill_log) + ".", ""]
    out += [f"Note: {n}" for n in notes] + ([""] if notes else [])
    return "\n".join(out)


def write_section(path: Path, text: str) -> None:
    """Replaces the soak section (from its heading to the end) and keeps the rest."""
    old = path.read_text() if path.exists() else ""
    kept = old.split("\n" + SECTION + "\n", 1)[0].rstrip("\n")
    path.write_text((kept + "\n\n" if kept else "") + text)


if __name__ == "__main__":
    sys.exit(main())
