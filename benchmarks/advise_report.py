"""The Markdown summary of ``advise.py``: per dataset, the grid's best arm against advise's pick, and the verdict."""

from __future__ import annotations

import os

MAX_GAP_POINTS = 1.0
MAX_COST_RATIO = 1 / 3
NEEDED = 3


def machine_line() -> str:
    from transferkit.core.machine import cpu_flags

    return f"CPU ({os.cpu_count()} cores) — {cpu_flags()}"


def _arm(record: dict) -> str:
    return record["strategy"] if record.get("model") is None else f"{record['strategy']} / {record['model']}"


def _mark(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def dataset_row(name: str, result: dict) -> str:
    if "error" in result:
        return f"| {name} | failed: {result['error']} |" + " |" * 12
    best, pick, advise = result["best"], result["pick"], result["advise"]
    options = "" if pick.get("default_options", True) else " (own options)"
    return (f"| {name} | {result['metric']} | {_arm(best)} | {best['test']:.4f} | {_arm(pick)}{options} | "
            f"{pick['test']:.4f} | {result['gap_points']:.2f} | {advise['cpu_seconds']:.0f} | "
            f"{result['grid_cpu_seconds']:.0f} | {result['cpu_ratio']:.3f} ({result['cpu_ratio_with_final']:.3f}) | "
            f"{advise['minutes_used']:.1f} | {'yes' if advise['cut_by_time'] else 'no'} | "
            f"{_mark(result['pass_gap'])} | {_mark(result['pass_cost'])} |")


def grid_lines(name: str, result: dict) -> list[str]:
    if "error" in result:
        return []
    lines = [f"### {name}: the grid ({len(result['grid'])} arms, seed 42, test {result['metric']})", "",
             "| arm | test | CPU s |", "|---|---:|---:|"]
    for cell in sorted(result["grid"], key=lambda c: -c["test"]):
        lines.append(f"| {_arm(cell)} | {cell['test']:.4f} | {cell['cpu_seconds']:.0f} |")
    return [*lines, ""]


def report(summary: dict, minutes: float) -> tuple[str, dict]:
    """(the Markdown report, the verdict for advise_summary.json)."""
    from transferkit.core.machine import cpu_flags

    passing = [name for name, result in summary.items() if result.get("pass")]
    verdict = {"cpu": cpu_flags(), "cores": os.cpu_count(), "minutes": minutes, "max_gap_points": MAX_GAP_POINTS,
               "max_cost_ratio": MAX_COST_RATIO, "passing": passing, "needed": NEEDED, "done": len(passing) >= NEEDED}
    lines = [f"# advise --minutes {minutes:g} against the exhaustive grid", "", machine_line(), "",
             "| dataset | metric | grid best arm | its test | advise's pick | its test | gap (points) | advise CPU s | "
             "grid CPU s | ratio (with final training) | minutes used | cut by time | gap ≤ 1 | ratio ≤ 1/3 |",
             "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|---|"]
    lines += [dataset_row(name, result) for name, result in summary.items()]
    lines += ["", f"Datasets passing both: {len(passing)} of {len(summary)} ({', '.join(passing) or 'none'}); "
              f"needed ≥ {NEEDED}: {'DONE' if verdict['done'] else 'NOT DONE'}", ""]
    for name, result in summary.items():
        lines += grid_lines(name, result)
    return "\n".join(lines), verdict
