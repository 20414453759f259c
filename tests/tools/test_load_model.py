"""benches/load_model.py, run as a subprocess as a user runs it: the walls
scale with the volume, the first wall is the resource with the highest
demand over its limit, and the bill adds up from the published prices."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benches" / "load_model.py"
COSTS = Path(__file__).resolve().parents[2] / "benches" / "scaling_costs.json"


def costs(**changes) -> dict:
    base = {
        "retention_days": 30,
        "queue": {"jobs_writes": 1, "jobs_ops": 3, "webhook_ops": 0},
        "consumer": {"batch_size": 100, "batch_seconds": 1.0},
        "d1": {"statements": 10, "rows_read": 20, "rows_written": 10, "bytes_retained": 1000},
        "workers": {"requests": 1.01, "cpu_ms": 2.0},
        "r2": {"share_of_messages": 0.0, "class_a": 1, "class_b": 1},
    }
    for path, value in changes.items():
        section, key = path.split("__")
        base[section][key] = value
    return base


def run(tmp_path: Path, data: dict | None, *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, str(SCRIPT), *args]
    if data is not None:
        path = tmp_path / "costs.json"
        path.write_text(json.dumps(data))
        argv += ["--costs", str(path)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def model(tmp_path: Path, data: dict, peak: float = 1.0) -> list[dict]:
    result = run(tmp_path, data, "--json", "--peak", str(peak))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_walls_scale_with_volume_and_the_first_is_the_largest(tmp_path):
    rows = model(tmp_path, costs())
    assert [r["per_day"] for r in rows] == [1_000_000, 10_000_000, 100_000_000]
    for small, large in zip(rows, rows[1:]):
        for name, ratio in small["walls"].items():
            assert abs(large["walls"][name] - 10 * ratio) < 1e-9 * max(ratio, 1), name
    for r in rows:
        assert r["first_wall"] == max(r["walls"], key=r["walls"].get)
    # 1 M/day at peak 1 is 11.57 msg/s: 10 statements of 1 ms each take
    # 0.1157 of one database's time.
    assert abs(rows[0]["walls"]["D1 statement time (one database)"] - 1e6 / 86400 * 10 / 1000) < 1e-9
    # 30 days of 1 KB a message at 1 M/day: 30 GB against 10 GB.
    assert abs(rows[0]["walls"]["D1 size (one database)"] - 3.0) < 1e-9
    assert rows[0]["first_wall"] == "D1 size (one database)"


def test_a_costlier_resource_becomes_the_first_wall(tmp_path):
    rows = model(tmp_path, costs(d1__statements=2000, d1__bytes_retained=1))
    assert rows[0]["first_wall"] == "D1 statement time (one database)"
    rows = model(tmp_path, costs(d1__bytes_retained=1, queue__jobs_writes=500))
    assert rows[0]["first_wall"] == "queue writes (jobs queue)"


def test_the_bill_takes_allowances_off_and_adds_up(tmp_path):
    rows = model(tmp_path, costs(d1__bytes_retained=1))
    bill = rows[1]["bill"]  # 10 M/day: 300 M messages a month
    month = 300_000_000
    assert bill["base"] == 5.0
    assert abs(bill["requests"] - (month * 1.01 - 10e6) / 1e6 * 0.30) < 1e-6
    assert abs(bill["queues"] - (month * 3 - 1e6) / 1e6 * 0.40) < 1e-6
    assert abs(bill["d1 rows written"] - (month * 10 - 50e6) / 1e6 * 1.00) < 1e-6
    assert bill["r2"] == 0
    parts = sum(v for k, v in bill.items() if k not in ("total", "per_1000"))
    assert abs(bill["total"] - parts) < 1e-6
    assert abs(bill["per_1000"] - bill["total"] / (month / 1000)) < 1e-12
    # Inside every allowance, only the base is paid.
    tiny = model(tmp_path, costs(d1__rows_written=0, d1__rows_read=0, workers__requests=0,
                                 workers__cpu_ms=0, queue__jobs_ops=0, d1__bytes_retained=0))
    assert tiny[0]["bill"]["total"] == 5.0


def test_the_checked_in_costs_render_a_table(tmp_path):
    result = run(tmp_path, None, "--costs", str(COSTS))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "| **first wall** |" in out and "| **per 1,000 messages** |" in out
    assert "Cloudflare Email Service, per 1,000 | 0.35 | 0.35 | 0.35 |" in out


def test_a_bad_peak_is_refused(tmp_path):
    result = run(tmp_path, costs(), "--peak", "0")
    assert result.returncode == 2
    assert "--peak" in result.stderr
