"""A private Postfix instance on loopback, acting as a smarthost that writes
real delivery status notifications (RFC 3464).

The instance has its own configuration, queue and data directories under a
temporary directory, listens on 127.0.0.1 only (smtpd on a free port, no
TLS), looks nothing up in DNS, and retries within a second or two. It relays
for loopback clients (mynetworks 127.0.0.0/8), offers DSN, and routes by a
transport map to next hops, most of them servers in this process (aiosmtpd
on loopback):

- `unknown.test`: a server that answers RCPT with `550 5.1.1 ... User
  unknown` (a failure notice, `Action: failed`);
- `slow.test`: a server that answers RCPT with 451 (a delay warning,
  `Action: delayed`, once the message has waited `delay_warning_time`);
- `full.test`: a server that answers RCPT with `552 5.2.2 ... Mailbox full`
  (a failure notice for an address that is good: a soft bounce);
- `ok.test`: Postfix's own virtual(8) delivery into a Maildir under the
  instance (with NOTIFY=SUCCESS, a success notice with `Action: delivered`:
  final delivery);
- `relay.test`: a server that accepts and offers no DSN (with NOTIFY=SUCCESS,
  a success notice with `Action: relayed`: the message went on to a system
  that will not report). A next hop that offers DSN is passed the NOTIFY
  request instead, and Postfix itself then sends no success notice;
- `rp.example.com`, the return path's domain: a capture server that keeps
  every notice Postfix sends, as the raw bytes that arrived;
- `sink.test`: discarded once queued (discard(8)): for load, where only
  smtpd's side of the conversation matters.

With `rewrite_return_path`, the instance replaces every envelope sender
with that address (as smarthosts that use their own bounce address do), so
its notices go there instead of to the return path the client gave.

`nobody+tag@unknown.test` is aliased to `nobody@unknown.test`, so its notice
names a final recipient other than the original one, as a smarthost that
rewrites an address does.

`start()` returns once smtpd answers; `stop()` stops Postfix and waits until
none of its processes is left (bounded; it aborts and then kills what
remains). A watchdog process aborts the instance if the Python process dies
without stopping it. Use it as a context manager. This module must not decide
whether a missing Postfix skips or fails a test: it raises `PostfixUnavailable`.
"""
import os
import pwd
import shutil
import signal
import smtplib
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from aiosmtpd.controller import Controller

from .net import free_port, port_open
from .poll import wait_for

POSTFIX = Path("/usr/sbin/postfix")
POSTCONF = Path("/usr/sbin/postconf")
DAEMON_DIRECTORY = Path("/usr/lib/postfix/sbin")

# The reply the `unknown.test` next hop gives every RCPT, as Postfix's own
# smtpd words it for an address not in its local recipient table.
UNKNOWN_USER_REPLY = "550 5.1.1 <{address}>: Recipient address rejected: User unknown in local recipient table"
# The reply the `full.test` next hop gives every RCPT.
MAILBOX_FULL_REPLY = "552 5.2.2 <{address}>: Recipient address rejected: Mailbox full"
# The reply the `slow.test` next hop gives every RCPT.
SLOW_REPLY = "451 4.3.0 <{address}>: Temporary lookup failure, try again later"


# What the report fixtures' messages carry: the return path edgerelay would
# set (a VERP address at the return-path domain), the ENVID and Message-ID
# naming the message.
RETURN_PATH = "b+tok@rp.example.com"
ENVID = "4f3c9a0b1d2e3f405162738495a6b7c8"
MESSAGE_ID = f"<{ENVID}@example.com>"


class PostfixUnavailable(RuntimeError):
    """Postfix is not installed (`scripts/setup.sh test` installs it), or
    this process is not root (a Postfix instance starts as root)."""


def postfix_version() -> str:
    """The installed Postfix's `mail_version`, e.g. `3.7.11`."""
    if not POSTCONF.exists():
        raise PostfixUnavailable("postconf is not installed (make setup-test installs Postfix)")
    out = subprocess.run([str(POSTCONF), "-d", "-h", "mail_version"], capture_output=True,
                         text=True, timeout=10, check=True)
    return out.stdout.strip()


@dataclass
class Captured:
    """One message as a next hop or the capture server received it."""
    mail_from: str
    rcpt_tos: list
    data: bytes


class _Recorder:
    """An aiosmtpd handler: an optional reply template for every RCPT
    (`{address}` is the address), and every accepted message recorded."""

    def __init__(self, rcpt_reply: str | None = None):
        self.rcpt_reply = rcpt_reply
        self.messages: list[Captured] = []
        self.rcpt_commands: list[tuple[str, list]] = []
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            self.rcpt_commands.append((address, list(rcpt_options)))
        if self.rcpt_reply is not None:
            return self.rcpt_reply.format(address=address)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(Captured(envelope.mail_from, list(envelope.rcpt_tos),
                                          envelope.original_content))
        return "250 2.0.0 Ok: queued"


class _Hop:
    """One aiosmtpd server on a loopback port, in a thread."""

    def __init__(self, name: str, rcpt_reply: str | None = None):
        self.name = name
        self.handler = _Recorder(rcpt_reply)
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                     server_hostname=f"{name}.hop.test", ready_timeout=10)

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()

    @property
    def messages(self) -> list[Captured]:
        with self.handler.lock:
            return list(self.handler.messages)


# The Postfix services the instance runs: no chroot, nothing else.
MASTER_CF = """\
{smtpd_listen} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
virtual   unix  -       n       n       -       -       virtual
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
retry     unix  -       -       n       -       -       error
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def instance_processes(config_directory: Path) -> list[int]:
    """The processes of the Postfix instance configured in
    `config_directory`: the master and its daemons, which run from Postfix's
    daemon directory with that directory in MAIL_CONFIG."""
    marker = f"MAIL_CONFIG={config_directory}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            exe = os.readlink(f"/proc/{entry}/exe")
            if not exe.startswith(f"{DAEMON_DIRECTORY}/"):
                continue
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry))
    return found


class PostfixInstance:
    """A private Postfix on 127.0.0.1 with the next hops described above.

    `myhostname` is what its notices name as the Reporting-MTA.
    """

    def __init__(self, myhostname: str = "mx.example.net",
                 delay_warning_seconds: int = 2, rewrite_return_path: str | None = None):
        if not (POSTFIX.exists() and (DAEMON_DIRECTORY / "master").exists()):
            raise PostfixUnavailable("Postfix is not installed (make setup-test installs it)")
        if os.geteuid() != 0:
            raise PostfixUnavailable("a Postfix instance must be started as root")
        self.myhostname = myhostname
        self.delay_warning_seconds = delay_warning_seconds
        self.rewrite_return_path = rewrite_return_path
        self.port = free_port()
        self.root: Path | None = None
        self.hops: dict[str, _Hop] = {}
        self._watchdog: subprocess.Popen | None = None
        self._started = False

    # -- layout ---------------------------------------------------------

    @property
    def config_directory(self) -> Path:
        return self.root / "etc"

    @property
    def queue_directory(self) -> Path:
        return self.root / "spool"

    @property
    def data_directory(self) -> Path:
        return self.root / "lib"

    @property
    def mailbox_directory(self) -> Path:
        """Where ok.test's mailboxes are (Maildirs)."""
        return self.root / "mail"

    @property
    def log_file(self) -> Path:
        return self.root / "maillog"

    @property
    def capture(self) -> _Hop:
        """The server that receives the notices sent to `rp.example.com`."""
        return self.hops["capture"]

    def log(self) -> str:
        """What Postfix logged so far."""
        try:
            return self.log_file.read_text(errors="replace")
        except (FileNotFoundError, TypeError):
            return ""

    def _main_cf(self) -> str:
        hop = {name: h.port for name, h in self.hops.items()}
        owner = pwd.getpwnam("postfix")
        uid, gid = owner.pw_uid, owner.pw_gid
        transports = ", ".join([
            f"unknown.test=smtp:[127.0.0.1]:{hop['unknown']}",
            f"slow.test=smtp:[127.0.0.1]:{hop['slow']}",
            f"full.test=smtp:[127.0.0.1]:{hop['full']}",
            "ok.test=virtual:",
            f"relay.test=smtp:[127.0.0.1]:{hop['relay']}",
            f"rp.example.com=smtp:[127.0.0.1]:{hop['capture']}",
            "sink.test=discard:",
        ])
        settings = {
            "compatibility_level": "3.6",
            "config_directory": str(self.config_directory),
            "queue_directory": str(self.queue_directory),
            "data_directory": str(self.data_directory),
            "meta_directory": "/etc/postfix",
            "daemon_directory": str(DAEMON_DIRECTORY),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "maillog_file": str(self.log_file),
            # Postfix writes its log only under a listed prefix.
            "maillog_file_prefixes": str(self.root),
            "myhostname": self.myhostname,
            "mydomain": "example.net",
            "myorigin": "$myhostname",
            "mydestination": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "smtpd_tls_security_level": "none",
            "smtp_tls_security_level": "none",
            "smtp_dns_support_level": "disabled",
            "smtp_host_lookup": "native",
            "smtpd_peername_lookup": "no",
            "transport_maps": f"inline:{{ {transports} }}",
            "virtual_alias_maps": "inline:{ nobody+tag@unknown.test=nobody@unknown.test }",
            # ok.test's mailboxes: Maildirs under the instance, owned by
            # `postfix`.
            "virtual_mailbox_domains": "ok.test",
            "virtual_mailbox_base": str(self.mailbox_directory),
            "virtual_mailbox_maps": "inline:{ someone@ok.test=someone/ }",
            "virtual_uid_maps": f"static:{uid}",
            "virtual_gid_maps": f"static:{gid}",
            "virtual_minimum_uid": "1",
            # Anything else fails at once instead of waiting for DNS.
            "default_transport": "error:5.1.2 no route outside the test domains",
            "relay_transport": "error:5.1.2 no route outside the test domains",
            # Retries within seconds, a delay warning after a few, and a
            # short life for what cannot be delivered.
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "delay_warning_time": f"{self.delay_warning_seconds}s",
            "maximal_queue_lifetime": "5m",
            "bounce_queue_lifetime": "5m",
            "smtp_connect_timeout": "5s",
            "daemon_timeout": "60s",
            "notify_classes": "",
        }
        if self.rewrite_return_path:
            settings["sender_canonical_maps"] = f"static:{self.rewrite_return_path}"
            settings["sender_canonical_classes"] = "envelope_sender"
        return "".join(f"{k} = {v}\n" for k, v in settings.items())

    # -- life -----------------------------------------------------------

    def _postfix(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run([str(POSTFIX), "-c", str(self.config_directory), *args],
                              capture_output=True, text=True, timeout=timeout)

    def start(self) -> "PostfixInstance":
        self.root = Path(tempfile.mkdtemp(prefix="edgerelay-postfix-"))
        try:
            # Postfix's daemons run as `postfix` and must reach the queue.
            os.chmod(self.root, 0o755)
            self.hops = {
                "unknown": _Hop("unknown", rcpt_reply=UNKNOWN_USER_REPLY),
                "slow": _Hop("slow", rcpt_reply=SLOW_REPLY),
                "full": _Hop("full", rcpt_reply=MAILBOX_FULL_REPLY),
                "relay": _Hop("relay"),
                "capture": _Hop("capture"),
            }
            for hop in self.hops.values():
                hop.start()
            self.config_directory.mkdir()
            self.queue_directory.mkdir()
            for owned in (self.data_directory, self.mailbox_directory):
                owned.mkdir()
                shutil.chown(owned, "postfix", "postfix")
            (self.config_directory / "main.cf").write_text(self._main_cf())
            (self.config_directory / "master.cf").write_text(
                MASTER_CF.format(smtpd_listen=f"127.0.0.1:{self.port}"))
            # `check` creates the queue's directories with their owners.
            checked = self._postfix("check")
            if checked.returncode != 0:
                raise RuntimeError(f"postfix check failed: {checked.stderr}{self.log()}")
            self._start_watchdog()
            started = self._postfix("start")
            self._started = True
            if started.returncode != 0:
                raise RuntimeError(f"postfix start failed: {started.stderr}\n{self.log()}")
            wait_for(lambda: port_open(self.port), timeout=20, interval=0.05,
                     what="Postfix's smtpd to listen")
        except BaseException:
            self.stop()
            raise
        return self

    def _start_watchdog(self) -> None:
        """A process that aborts the instance once this one's end of its
        pipe closes: when `stop()` closes it, or when this process dies."""
        script = (
            'cat >/dev/null; '
            f'"{POSTFIX}" -c "$1" abort >/dev/null 2>&1 || true'
        )
        self._watchdog = subprocess.Popen(
            ["sh", "-c", script, "watchdog", str(self.config_directory)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)

    def processes(self) -> list[int]:
        """The ids of this instance's running processes."""
        return instance_processes(self.config_directory) if self.root else []

    def stop(self) -> None:
        """Stops Postfix and the next hops; returns once no process of the
        instance is left. Bounded: at most about 30 seconds."""
        if self.root is None:
            return
        try:
            if self._started and self.config_directory.exists():
                try:
                    self._postfix("stop", timeout=15)
                except subprocess.TimeoutExpired:
                    pass
                try:
                    wait_for(lambda: not self.processes(), timeout=10, interval=0.05,
                             what="Postfix to stop")
                except AssertionError:
                    try:
                        self._postfix("abort", timeout=10)
                    except subprocess.TimeoutExpired:
                        pass
                    for pid in self.processes():
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                    wait_for(lambda: not self.processes(), timeout=5, interval=0.05,
                             what="Postfix's processes to end")
            self._started = False
        finally:
            if self._watchdog is not None:
                self._watchdog.stdin.close()
                try:
                    self._watchdog.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self._watchdog.kill()
                    self._watchdog.wait(timeout=5)
                self._watchdog = None
            for hop in self.hops.values():
                try:
                    hop.stop()
                except Exception:  # a hop that never started
                    pass
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> "PostfixInstance":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- use ------------------------------------------------------------

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def notices(self) -> list[Captured]:
        """Every notice that reached the capture server so far."""
        return self.capture.messages

    def wait_for_notice(self, predicate, timeout: float = 30, what: str = "a notice") -> Captured:
        """The first captured notice for which `predicate(raw_bytes)` holds,
        polled for at most `timeout` seconds."""
        def found():
            return next((n for n in self.notices() if predicate(n.data)), None)
        try:
            return wait_for(found, timeout=timeout, interval=0.1, what=what)
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- Postfix log ---\n{self.log()[-4000:]}") from None

    def submit(self, recipient: str, notify: str, mail_from: str = RETURN_PATH,
               envid: str = ENVID, ret: str = "HDRS") -> None:
        """Submits the report fixtures' message to `recipient` over SMTP, with
        the DSN parameters edgerelay sends: `RET`, `ENVID`, `NOTIFY` and an
        xtext-encoded `ORCPT`."""
        with smtplib.SMTP(self.host, self.port, local_hostname="relay.example.com",
                          timeout=20) as client:
            client.ehlo()
            if not client.has_extn("dsn"):
                raise AssertionError("Postfix does not offer DSN")
            client.sendmail(
                mail_from, [recipient], report_message(recipient),
                mail_options=[f"RET={ret}", f"ENVID={envid}"],
                rcpt_options=[f"NOTIFY={notify}", f"ORCPT=rfc822;{xtext(recipient)}"])


# The notices `produce_reports` collects: fixture name -> (recipient, NOTIFY,
# the Action the notice must carry).
REPORTS = {
    "postfix-unknown-user.eml": ("nobody+tag@unknown.test", "FAILURE,DELAY", "failed"),
    "postfix-delayed.eml": ("later@slow.test", "FAILURE,DELAY", "delayed"),
    "postfix-success.eml": ("someone@ok.test", "SUCCESS,FAILURE,DELAY", "delivered"),
    "postfix-relayed.eml": ("someone@relay.test", "SUCCESS,FAILURE,DELAY", "relayed"),
}


def xtext(text: str) -> str:
    """xtext (RFC 3461 §4): `+`, `=`, controls and non-ASCII as `+HH`."""
    return "".join(
        c if 33 <= ord(c) <= 126 and c not in "+=" else "".join(f"+{b:02X}" for b in c.encode())
        for c in text)


def report_message(recipient: str) -> bytes:
    """The message whose notices become the fixtures."""
    return (
        "From: News <news@example.com>\r\n"
        f"To: {recipient}\r\n"
        "Subject: Spring offers\r\n"
        "Date: Sun, 29 Nov 2026 21:40:00 +0000\r\n"
        f"Message-ID: {MESSAGE_ID}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "Spring offers inside.\r\n"
    ).encode()


def notice_for(raw: bytes, recipient: str, action: str) -> bool:
    """Whether `raw` is a delivery report for `recipient` (as its
    Original-Recipient, which Postfix writes as the decoded ORCPT) that says
    `action`."""
    text = raw.decode(errors="replace")
    return (f"\r\nOriginal-Recipient: rfc822;{recipient}\r\n" in text
            and f"\r\nAction: {action}\r\n" in text)


def produce_reports(instance: "PostfixInstance", timeout: float = 60) -> dict[str, bytes]:
    """Submits one message per entry of REPORTS and returns each notice as
    the raw bytes that reached the return path, by fixture name."""
    for recipient, notify, _ in REPORTS.values():
        instance.submit(recipient, notify)
    return {
        name: instance.wait_for_notice(lambda raw, r=recipient, a=action: notice_for(raw, r, a),
                                       timeout=timeout, what=f"the {action} notice for {recipient}"
                                       ).data
        for name, (recipient, _, action) in REPORTS.items()
    }
