"""The worker's local D1 database as Miniflare keeps it under the state
directory: where its SQLite file is, and every text cell in it (for tests
that prove something appears nowhere)."""
import sqlite3
from pathlib import Path


def database(worker) -> Path:
    """The one SQLite file of the worker's local D1."""
    found = [p for p in (worker.state_dir / "v3" / "d1").rglob("*.sqlite")
             if p.name != "metadata.sqlite"]
    assert len(found) == 1, found
    return found[0]


def every_text(worker):
    """Every (table, column, text) of the local D1; blobs read as UTF-8."""
    with sqlite3.connect(database(worker), timeout=10) as db:
        tables = [t for (t,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        for table in tables:
            cursor = db.execute(f'SELECT * FROM "{table}"')
            columns = [c[0] for c in cursor.description]
            for row in cursor:
                for column, value in zip(columns, row):
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", "replace")
                    if isinstance(value, str):
                        yield table, column, value
