"""A real DNS server on loopback behind a real DNS-over-HTTPS front: Unbound
serves a test zone (static local data, changed while it runs through
`unbound-control`), and dnsdist answers RFC 8484 DoH for it over plain HTTP
(no certificate: loopback only). Tests publish records, break them and take
them away; the worker asks through dnsdist exactly as it would ask a public
resolver, and `txt()` asks the same way for verifiers such as dkimpy.

Must not: reach any other server (Unbound resolves nothing outside its
zone: no root hints are reachable, and queries outside the zone are
refused).
"""
import base64
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import dns.message
import dns.rdatatype

from .poll import wait_for


class DnsServerMissing(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _quoted(text: str) -> str:
    """A TXT value as Unbound's local-data reads it: quoted strings of at
    most 255 characters each."""
    chunks = [text[i:i + 255] for i in range(0, len(text), 255)] or [""]
    return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


class DohServer:
    """Unbound with `zone` (e.g. `example.org`) behind dnsdist's DoH."""

    def __init__(self, directory: Path, zone: str):
        for binary in ("unbound", "unbound-control", "dnsdist"):
            if shutil.which(binary) is None:
                raise DnsServerMissing(f"{binary} is not installed (scripts/setup.sh installs it)")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.zone = zone.rstrip(".").lower()
        self.dns_port, self.doh_port, self.local_port = _free_port(), _free_port(), _free_port()
        self.unbound_conf = self.directory / "unbound.conf"
        self.unbound_conf.write_text(f"""server:
  interface: 127.0.0.1
  port: {self.dns_port}
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{self.directory}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  local-zone: "{self.zone}." static
  local-zone: "." refuse
remote-control:
  control-enable: yes
  control-interface: {self.directory}/control.sock
  control-use-cert: no
""")
        dnsdist_conf = self.directory / "dnsdist.conf"
        dnsdist_conf.write_text(f"""setLocal("127.0.0.1:{self.local_port}")
newServer({{address="127.0.0.1:{self.dns_port}", checkName="{self.zone}.", checkType="TXT", mustResolve=false}})
addDOHLocal("127.0.0.1:{self.doh_port}", nil, nil, "/dns-query")
setSecurityPollSuffix("")
""")
        self.url = f"http://127.0.0.1:{self.doh_port}/dns-query"
        self._logs = [open(self.directory / "unbound.log", "wb"), open(self.directory / "dnsdist.log", "wb")]
        self.processes = [
            subprocess.Popen(["unbound", "-d", "-c", str(self.unbound_conf)],
                             stdout=self._logs[0], stderr=subprocess.STDOUT),
            subprocess.Popen(["dnsdist", "--supervised", "--disable-syslog", "-C", str(dnsdist_conf)],
                             stdout=self._logs[1], stderr=subprocess.STDOUT),
        ]
        try:
            wait_for(self._answers, timeout=20, what="dnsdist and Unbound to answer")
        except BaseException:
            self.stop()
            raise

    def _answers(self) -> bool:
        for p in self.processes:
            if p.poll() is not None:
                raise RuntimeError(f"{p.args[0]} exited: see {self.directory}")
        try:
            return self._ask(self.zone) is not None
        except OSError:
            return False

    def _ask(self, name: str):
        query = dns.message.make_query(name, dns.rdatatype.TXT)
        query.id = 0
        wire = base64.urlsafe_b64encode(query.to_wire()).decode().rstrip("=")
        request = urllib.request.Request(f"{self.url}?dns={wire}",
                                         headers={"Accept": "application/dns-message"})
        with urllib.request.urlopen(request, timeout=5) as resp:
            return dns.message.from_wire(resp.read())

    def txt(self, name: str) -> list[str]:
        """The TXT records of `name` as the DoH front answers them."""
        answer = self._ask(name)
        return [b"".join(r.strings).decode() for rrset in answer.answer
                if rrset.rdtype == dns.rdatatype.TXT for r in rrset]

    def _control(self, *args: str) -> None:
        subprocess.run(["unbound-control", "-c", str(self.unbound_conf), *args], check=True,
                       capture_output=True, timeout=10)

    def publish(self, name: str, *texts: str) -> None:
        """Sets the TXT records of `name` in the zone (none: removes them)."""
        name = name.rstrip(".").lower() + "."
        self._control("local_data_remove", name)
        for text in texts:
            self._control("local_data", f"{name} 60 IN TXT {_quoted(text)}")

    def stop(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                p.terminate()
        for p in self.processes:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in self._logs:
            log.close()
