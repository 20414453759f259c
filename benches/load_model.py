"""edgerelay's load model: from the per-message costs measured on this code
(benches/scaling_costs.json) and the platform's published limits and prices,
where the first wall is at 1 M, 10 M and 100 M messages a day, and what the
platform costs per 1,000 messages on the Workers Paid plan beside Cloudflare
Email Service's $0.35 per 1,000.

    .venv/bin/python benches/load_model.py [--costs FILE] [--peak X] [--json]

Each wall is a ratio: demand at the peak rate (the daily average times
`--peak`) over the limit of one queue / one database / one account. Above 1
that single resource is not enough: docs/scaling.md says what to do then.
The limits and prices are the platform's published figures at the time of
writing (see LIMITS and PRICES); the costs file holds what was counted here
(benches/run.py's `e2e` section prints them)."""
import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_COSTS = HERE / "scaling_costs.json"
VOLUMES = [1_000_000, 10_000_000, 100_000_000]
SECONDS_PER_DAY = 86_400
DAYS_PER_MONTH = 30

# Published platform limits (Workers Paid).
LIMITS = {
    # Cloudflare Queues: messages written per second, per queue.
    "queue_messages_per_s": 5_000,
    # Cloudflare Queues: concurrent consumer invocations, per queue.
    "consumer_concurrency": 250,
    # D1: a database runs one query at a time; the docs' own example is
    # 1 ms per query, about 1,000 queries per second.
    "d1_statement_ms": 1.0,
    # D1: size of one database, bytes (10 GB on the paid plan).
    "d1_database_bytes": 10 * 10**9,
    # Workers: simultaneous outbound connections per invocation.
    "sockets_per_invocation": 6,
}

# Published prices (USD), Workers Paid: $5 a month with allowances.
PRICES = {
    "base_per_month": 5.00,
    "requests_included": 10_000_000, "per_million_requests": 0.30,
    "cpu_ms_included": 30_000_000, "per_million_cpu_ms": 0.02,
    "queue_ops_included": 1_000_000, "per_million_queue_ops": 0.40,
    "d1_rows_read_included": 25_000_000_000, "per_million_rows_read": 0.001,
    "d1_rows_written_included": 50_000_000, "per_million_rows_written": 1.00,
    "d1_storage_included_gb": 5, "per_gb_month": 0.75,
    "r2_class_a_included": 1_000_000, "per_million_r2_class_a": 4.50,
    "r2_class_b_included": 10_000_000, "per_million_r2_class_b": 0.36,
}

EMAIL_SERVICE_PER_1000 = 0.35


def walls(costs: dict, per_day: int, peak: float) -> dict:
    """Each resource's demand over its limit at the peak rate (or, for
    storage, at the retention period's end)."""
    rate = per_day / SECONDS_PER_DAY * peak
    batch = costs["consumer"]["batch_size"]
    invocations_per_s = rate / batch
    retained = per_day * costs["retention_days"] * costs["d1"]["bytes_retained"]
    return {
        "queue writes (jobs queue)":
            rate * costs["queue"]["jobs_writes"] / LIMITS["queue_messages_per_s"],
        "consumer concurrency (jobs queue)":
            invocations_per_s * costs["consumer"]["batch_seconds"] / LIMITS["consumer_concurrency"],
        "D1 statement time (one database)":
            rate * costs["d1"]["statements"] * LIMITS["d1_statement_ms"] / 1000,
        "D1 size (one database)": retained / LIMITS["d1_database_bytes"],
    }


def monthly_cost(costs: dict, per_day: int) -> dict:
    """The month's bill by resource, allowances taken off."""
    month = per_day * DAYS_PER_MONTH

    def billed(amount: float, included: float, per_million: float) -> float:
        return max(amount - included, 0) / 1e6 * per_million

    p = PRICES
    requests = month * costs["workers"]["requests"]
    cpu = month * costs["workers"]["cpu_ms"]
    queue_ops = month * (costs["queue"]["jobs_ops"] + costs["queue"]["webhook_ops"])
    rows_read = month * costs["d1"]["rows_read"]
    rows_written = month * costs["d1"]["rows_written"]
    stored_gb = per_day * costs["retention_days"] * costs["d1"]["bytes_retained"] / 1e9
    large = month * costs["r2"]["share_of_messages"]
    bill = {
        "base": p["base_per_month"],
        "requests": billed(requests, p["requests_included"], p["per_million_requests"]),
        "cpu": billed(cpu, p["cpu_ms_included"], p["per_million_cpu_ms"]),
        "queues": billed(queue_ops, p["queue_ops_included"], p["per_million_queue_ops"]),
        "d1 rows read": billed(rows_read, p["d1_rows_read_included"], p["per_million_rows_read"]),
        "d1 rows written": billed(rows_written, p["d1_rows_written_included"],
                                  p["per_million_rows_written"]),
        "d1 storage": max(stored_gb - p["d1_storage_included_gb"], 0) * p["per_gb_month"],
        "r2": billed(large * costs["r2"]["class_a"], p["r2_class_a_included"],
                     p["per_million_r2_class_a"])
        + billed(large * costs["r2"]["class_b"], p["r2_class_b_included"],
                 p["per_million_r2_class_b"]),
    }
    bill["total"] = sum(bill.values())
    bill["per_1000"] = bill["total"] / (month / 1000)
    return bill


def model(costs: dict, peak: float) -> list[dict]:
    rows = []
    for per_day in VOLUMES:
        w = walls(costs, per_day, peak)
        first = max(w, key=w.get)
        bill = monthly_cost(costs, per_day)
        rows.append({"per_day": per_day, "peak_per_s": per_day / SECONDS_PER_DAY * peak,
                     "walls": w, "first_wall": first, "first_wall_ratio": w[first],
                     "bill": bill})
    return rows


def render(rows: list[dict], peak: float) -> str:
    names = list(rows[0]["walls"])
    out = [f"Demand over limit at the peak rate (daily average x {peak:g}); above 1.00 one "
           "queue / database is not enough.", "",
           "| Resource | " + " | ".join(f"{r['per_day'] // 10**6} M/day" for r in rows) + " |",
           "|---|" + "---:|" * len(rows)]
    for name in names:
        out.append(f"| {name} | " + " | ".join(f"{r['walls'][name]:.2f}" for r in rows) + " |")
    out.append("| **first wall** | " + " | ".join(
        f"{r['first_wall']} ({r['first_wall_ratio']:.2f})" for r in rows) + " |")
    out += ["", "Platform cost on Workers Paid (USD a month, allowances taken off):", "",
            "| Item | " + " | ".join(f"{r['per_day'] // 10**6} M/day" for r in rows) + " |",
            "|---|" + "---:|" * len(rows)]
    for item in rows[0]["bill"]:
        if item == "per_1000":
            continue
        out.append(f"| {item} | " + " | ".join(f"{r['bill'][item]:,.2f}" for r in rows) + " |")
    out.append("| **per 1,000 messages** | " + " | ".join(
        f"{r['bill']['per_1000']:.4f}" for r in rows) + " |")
    out.append(f"| Cloudflare Email Service, per 1,000 | "
               + " | ".join(f"{EMAIL_SERVICE_PER_1000:.2f}" for _ in rows) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--costs", type=Path, default=DEFAULT_COSTS,
                        help="per-message costs (JSON, see benches/scaling_costs.json)")
    parser.add_argument("--peak", type=float, default=3.0,
                        help="peak rate over the daily average (default 3)")
    parser.add_argument("--json", action="store_true", help="print the model as JSON")
    args = parser.parse_args(argv)
    if args.peak <= 0:
        parser.error("--peak must be above 0")
    costs = json.loads(args.costs.read_text())
    rows = model(costs, args.peak)
    print(json.dumps(rows, indent=2) if args.json else render(rows, args.peak))
    return 0


if __name__ == "__main__":
    sys.exit(main())
