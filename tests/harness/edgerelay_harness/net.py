"""Loopback ports: a free one, and whether one is listening."""
import socket


def free_port() -> int:
    """A port nothing listens on right now. Prefer letting a server bind
    port 0 itself where it can: another process may take this one first."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
