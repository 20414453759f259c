"""DKIM signing CPU per message inside workerd: RSA-2048 through WebCrypto,
RSA-2048 in pure Rust, and Ed25519.

SLOT, NOT YET MEASURED. The bench-only signing route belongs to the WebCrypto
signing work (behind BENCH_ROUTES=on); this runner does not build a second
one. When that route is on main, replace `ROUTE` with its path and fill
`run` in: start edgerelay as smtp.py does, call the route for each algorithm
round by round, and return one Row per algorithm with Ed25519 as baseline.
Until then the section reports itself as pending, so the table says so.
"""
from pathlib import Path

from .report import Row

ROUTE = None  # the signing bench route's path, once it exists on main


def run(base: Path, rounds: int) -> tuple[list[Row], str]:
    rows = [Row(figure=f"DKIM in workerd: {name}", value=None, unit="ms/signature",
                note="pending: the signing bench route is not on main yet")
            for name in ("RSA-2048 WebCrypto", "RSA-2048 pure Rust", "Ed25519")]
    text = ("Not measured in this run: the WebCrypto signer and its bench route are not yet "
            "part of edgerelay. For a native figure of each signer's cost see the Native rows.")
    return rows, text
