"""The Markdown summary of ``continual.py``: per part a table of ACC / BWT / FWT (mean ± 95% t half-width over the
orders or seeds, in points) and CPU seconds, every run's ACC / BWT, and the criteria of the module docstring there."""

from __future__ import annotations

import platform
from dataclasses import dataclass

from advise_report import machine_line
from continual_data import data_notes

MIN_REPLAY_GAIN, MIN_JOINT_SHARE = 0.30, 0.90
"""Class-incremental: replay − sequential ACC ≥ 30 points; replay ≥ 90% of joint's ACC (means over the orders)."""
FORGETTING_FLOOR = 0.01
"""Domain-incremental: below 1 point of forgetting (mean BWT of sequential), the summary says so."""
DOMAIN_CANDIDATES = ["ewc", "replay", "lwf"]


def machine() -> str:
    """CPU model, cores and the flags that matter for timings (``advise_report.machine_line``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            model = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "CPU model unknown"
    return f"{model}; {machine_line()}"


def interval(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high): the 95% Student t interval over runs (nan bounds with one value)."""
    from transferkit.evaluation import mean_ci

    return mean_ci(values)


def points(values: list[float | None]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "—"
    mean, low, high = interval(present)
    half = "—" if high != high else f"{100 * (high - mean):.1f}"  # nan: one run
    return f"{100 * mean:.1f} ± {half}"


def by_strategy(records: list[dict], names: list[str]) -> dict[str, list[dict]]:
    return {name: [r for r in records if r["strategy"] == name] for name in names
            if any(r["strategy"] == name for r in records)}


def part_table(records: list[dict], names: list[str], unit: str) -> list[str]:
    lines = [f"| strategy | {unit}s | ACC | BWT | FWT | CPU s per run | wall s per run |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, runs in by_strategy(records, names).items():
        star = "" if all(r["seconds_complete"] for r in runs) else "*"
        cpu = sum(r["cpu_seconds"] for r in runs) / len(runs)
        wall = sum(r["wall_seconds"] for r in runs) / len(runs)
        lines.append(f"| {name} | {len(runs)} | {points([r['acc'] for r in runs])} | {points([r['bwt'] for r in runs])}"
                     f" | {points([r['fwt'] for r in runs])} | {cpu:.0f}{star} | {wall:.0f}{star} |")
    total = sum(r["cpu_seconds"] for r in records)
    return [*lines, "", f"CPU seconds in all: {total:.0f} ({total / 3600:.1f} h)."]


def run_table(records: list[dict], names: list[str], key: str) -> list[str]:
    """ACC / BWT of every run, one line per order (seed), in points."""
    present = list(by_strategy(records, names))
    lines = [f"| {key} | " + " | ".join(present) + " |", "|---|" + "---:|" * len(present)]
    for value in sorted({r[key] for r in records}):
        row = {r["strategy"]: r for r in records if r[key] == value}
        label = f"{value}: {' → '.join(next(iter(row.values()))['names'])}" if key == "order" else str(value)
        cells = [f"{100 * row[s]['acc']:.1f} / " + ("—" if row[s]["bwt"] is None else f"{100 * row[s]['bwt']:+.1f}")
                 if s in row else "—" for s in present]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def paired(records: list[dict], first: str, second: str, key: str, field: str) -> dict[object, tuple[float, float]]:
    """{order or seed: (first's value, second's value)} where both strategies ran."""
    values = {s: {r[key]: r[field] for r in records if r["strategy"] == s} for s in (first, second)}
    return {k: (values[first][k], values[second][k]) for k in sorted(values[first]) if k in values[second]}


def mark(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def ci_text(low: float, high: float) -> str:
    return "no CI (one run)" if low != low else f"95% CI [{100 * low:+.1f}, {100 * high:+.1f}]"


def class_verdict(records: list[dict], expected: int) -> tuple[list[str], dict]:
    """replay − sequential ≥ 30 points and replay ≥ 90% of joint (ACC, means over the orders); ewc, lwf reported."""
    gains = paired(records, "replay", "sequential", "order", "acc")
    shares = paired(records, "replay", "joint", "order", "acc")
    if not gains or not shares:
        return ["- replay, sequential and joint have not all run on one order yet: no verdict"], {"done": None}
    gain, low, high = interval([a - b for a, b in gains.values()])
    replay = sum(a for a, _ in shares.values()) / len(shares)
    joint = sum(b for _, b in shares.values()) / len(shares)
    sequential = sum(b for _, b in gains.values()) / len(gains)
    ok_gain, ok_share = gain >= MIN_REPLAY_GAIN, replay >= MIN_JOINT_SHARE * joint
    lines = [f"- replay − sequential ACC: {100 * gain:+.1f} points (sequential {100 * sequential:.1f}) over "
             f"{len(gains)} order(s), paired {ci_text(low, high)}; needed ≥ +{100 * MIN_REPLAY_GAIN:.0f}: "
             f"{mark(ok_gain)}",
             f"- replay / joint ACC: {100 * replay / joint:.1f}% (replay {100 * replay:.1f}, joint {100 * joint:.1f}) "
             f"over {len(shares)} order(s); needed ≥ {100 * MIN_JOINT_SHARE:.0f}%: {mark(ok_share)}"]
    for name, runs in by_strategy(records, ["ewc", "lwf"]).items():
        lines.append(f"- {name} (reported as measured, no criterion): ACC {points([r['acc'] for r in runs])}, "
                     f"BWT {points([r['bwt'] for r in runs])}")
    orders = min(len(gains), len(shares))
    done = ok_gain and ok_share and orders == expected
    lines += ["- anchor, d'Autume et al. 2019 (BERT-base, 5 data sets, ACC): sequential 18.4, A-GEM 66.9, MbPA++ 70.6",
              "", f"**Class-incremental: {'DONE' if done else 'NOT DONE'}**"
              + ("" if orders == expected else f" (only {orders} of {expected} orders run)")]
    return lines, {"done": done, "replay_minus_sequential": gain, "ci": [low, high], "replay_over_joint": replay / joint,
                   "orders": orders}


def method_check(records: list[dict], name: str) -> dict | None:
    """Does ``name`` halve sequential's forgetting at equal or better ACC (paired over the seeds)?"""
    bwt = paired(records, name, "sequential", "seed", "bwt")
    acc = paired(records, name, "sequential", "seed", "acc")
    if not bwt:
        return None
    margin = interval([m - min(s, 0.0) / 2 for m, s in bwt.values()])  # ≥ 0: at most half the forgetting
    gain = interval([m - s for m, s in acc.values()])
    halves, not_worse = margin[1] >= 0, gain[2] >= 0  # nan (one seed) compares False: not shown
    return {"method": name, "seeds": list(bwt), "bwt": sum(m for m, _ in bwt.values()) / len(bwt),
            "sequential_bwt": sum(s for _, s in bwt.values()) / len(bwt), "acc": sum(m for m, _ in acc.values()) / len(acc),
            "margin": margin, "acc_gain": gain, "halves": halves, "not_worse": not_worse, "pass": halves and not_worse}


def domain_verdict(records: list[dict], expected: int) -> tuple[list[str], dict]:
    checks = [check for name in DOMAIN_CANDIDATES if (check := method_check(records, name)) is not None]
    if not checks:
        return ["- sequential and none of ewc / replay / lwf have run on one seed yet: no verdict"], {"done": None}
    lines = []
    for c in checks:
        lines.append(f"- {c['method']}: BWT {100 * c['bwt']:+.1f} vs sequential {100 * c['sequential_bwt']:+.1f} points "
                     f"over {len(c['seeds'])} seed(s); BWT − min(BWT_seq, 0)/2 {100 * c['margin'][0]:+.1f} "
                     f"({ci_text(*c['margin'][1:])}): halves {'yes' if c['halves'] else 'no'}; ACC "
                     f"{100 * c['acc']:.1f}, Δ vs sequential {100 * c['acc_gain'][0]:+.1f} ({ci_text(*c['acc_gain'][1:])}):"
                     f" not worse {'yes' if c['not_worse'] else 'no'} → {mark(c['pass'])}")
    sequential = [r["bwt"] for r in records if r["strategy"] == "sequential"]
    if sequential and sum(sequential) / len(sequential) > -FORGETTING_FLOOR:
        lines.append(f"- Sequential forgets less than 1 point here (mean BWT {100 * sum(sequential) / len(sequential):+.2f} "
                     f"points over {len(sequential)} seed(s)): there is little forgetting to halve.")
    passing = sorted((c for c in checks if c["pass"]), key=lambda c: -c["acc"])
    seeds = min(len(c["seeds"]) for c in checks)
    done = bool(passing) and seeds == expected
    best = f"best: {passing[0]['method']}" if passing else "none of ewc / replay / lwf passes"
    lines += ["", f"**Domain-incremental: {'DONE' if done else 'NOT DONE'}** ({best}"
              + ("" if seeds == expected else f"; only {seeds} of {expected} seeds run") + ")"]
    return lines, {"done": done, "best": passing[0]["method"] if passing else None, "checks": checks}


@dataclass
class Part:
    """What the summary says about one part of the benchmark."""

    title: str
    strategies: list[str]
    key: str  # "order" or "seed": what the runs of a strategy differ by
    expected: int  # how many orders (seeds) the protocol has


VERDICTS = {"class": class_verdict, "domain": domain_verdict}


def report(results: dict[str, list[dict]], parts: dict[str, Part], stages: dict[str, dict], errors: list[str]
           ) -> tuple[str, dict]:
    """The Markdown summary and the verdicts."""
    lines = ["# Continual learning on text streams", "", f"Machine: {machine()}", "",
             "Data (`continual_data.py`; train rows before the stream's 10% eval split):", *data_notes(stages), ""]
    verdicts: dict[str, dict] = {}
    for name, records in results.items():
        part = parts[name]
        criteria, verdicts[name] = VERDICTS[name](records, part.expected)
        lines += [f"## {part.title}", "", "Mean ± 95% t half-width over the runs, in points (1 epoch per stage; * = a "
                  "resumed run's seconds miss an attempt):", "", *part_table(records, part.strategies, part.key), "",
                  "ACC / BWT of every run (points):", "", *run_table(records, part.strategies, part.key), "",
                  "### Criteria", "", *criteria, ""]
    if errors:
        lines += ["## Failed runs (a rerun resumes them)", "", *[f"- {error}" for error in errors], ""]
    return "\n".join(lines), verdicts
