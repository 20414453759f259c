"""The figures the runner measured, and BENCHMARKS.md written from them.
Nothing here measures: it only formats what the sections returned."""
import datetime
import os
import platform
import statistics
from dataclasses import dataclass, field


@dataclass
class Row:
    figure: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    # ratio = value / baseline; "target" says what ratio (or value) must hold
    target: str = ""
    met: bool | None = None
    runs: int = 0
    samples: list = field(default_factory=list)
    baseline_samples: list = field(default_factory=list)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline


def median(values: list) -> float | None:
    return statistics.median(values) if values else None


def fmt(x: float | None, unit: str = "") -> str:
    if x is None:
        return "—"
    if abs(x) >= 100:
        s = f"{x:,.0f}"
    elif abs(x) >= 10:
        s = f"{x:.1f}"
    else:
        s = f"{x:.2f}"
    return f"{s} {unit}".strip()


def machine() -> dict:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def load_average() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def verdict(row: Row) -> str:
    if row.met is None:
        return "—"
    return "met" if row.met else "**MISSED**"


def render(sections: list[tuple[str, list[Row], str]], info: dict, command: str,
           load_before: str, load_after: str) -> str:
    out = [
        "# edgerelay benchmarks",
        "",
        "Every figure below comes from one run of the command underneath, on the machine",
        "named here, and is measured side by side with its baseline in the same run.",
        "Written by the runner (`benches/run.py`); do not edit by hand, run it again.",
        "",
        f"- Command: `{command}`",
        f"- Date: {info['date']}",
        f"- Machine: {info['cpu']}, {info['cores']} cores, {info['os']}",
        f"- Load average (1/5/15 min) before: {load_before}; after: {load_after}. "
        "The machine is shared: other builds and tests were running on it during the run,"
        " so absolute figures are noisy; the ratios to each same-run baseline are the claim.",
        "- Each figure is the median of the runs counted in its row; every run's value is listed"
        " under Details.",
        "",
        "## Summary",
        "",
        "| Figure | edgerelay | Baseline | Ratio | Target | Met? | Runs |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for _, rows, _ in sections:
        for r in rows:
            base = f"{fmt(r.baseline, r.unit)} ({r.baseline_label})" if r.baseline_label else "—"
            ratio = f"{r.ratio:.2f}×" if r.ratio is not None else "—"
            out.append(f"| {r.figure} | {fmt(r.value, r.unit)} | {base} | {ratio} | "
                       f"{r.target or '—'} | {verdict(r)} | {r.runs or '—'} |")
    out += ["", "## Details", ""]
    for title, rows, text in sections:
        out += [f"### {title}", "", text.strip(), ""]
        for r in rows:
            samples = ", ".join(fmt(s) for s in r.samples) or "—"
            line = f"- {r.figure}: runs [{samples}] {r.unit}"
            if r.baseline_samples:
                line += f"; baseline runs [{', '.join(fmt(s) for s in r.baseline_samples)}]"
            if r.note:
                line += f". {r.note}"
            out.append(line)
        out.append("")
    return "\n".join(out).rstrip() + "\n"
