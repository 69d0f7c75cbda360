"""The evidence behind an ``advise`` recommendation, as one self-contained HTML page.

Built from the stored recommendation (``recommendation.json``) alone: the pick and the command that trains it,
each arm's held-out score by rung (successive halving, Jamieson & Talwalkar 2016) with a plot, each arm's cost,
what was pruned at which rung and why, and the shortlist's transferability scores (LogME, You et al. 2021).
Every text is escaped; the plot is an inline PNG; the file is written atomically.
"""

from __future__ import annotations

import base64
import html
from typing import Any

import yaml

from transferkit.core.atomic import write_bytes_atomic
from transferkit.reporting import plots
from transferkit.reporting.report import _CSS, _html_table

__all__ = ["render_advice"]


def _number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _ci(ci: list[float] | None) -> str:
    return "—" if not ci else f"[{ci[0]:.4f}, {ci[1]:.4f}]"


def _budget(budget: int | None, unit: str) -> str:
    return "all training labels" if budget is None else f"{budget} {unit}"


def _arm_rows(advice: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    """(score rows, cost rows): one row per arm, one column per rung ("pruned" after the rung that dropped it)."""
    by_arm: dict[str, dict[int, dict[str, Any]]] = {arm: {} for arm in advice["arms"]}
    for rung in advice["rungs"]:
        for record in rung["arms"]:
            by_arm.setdefault(record["arm"], {})[rung["rung"]] = record
    dropped = {p["arm"]: p["rung"] for p in advice["pruned"]}
    scores, costs = [], []
    for arm, runs in by_arm.items():
        score_row, cost_row = [arm], [arm]
        for rung in advice["rungs"]:
            record = runs.get(rung["rung"])
            if record is None:
                gone = arm in dropped and dropped[arm] < rung["rung"]
                score_row.append("pruned" if gone else "not run")
                cost_row.append("")
            else:
                score_row.append("failed" if record["error"] else _number(record["score"]) + (
                    " (reused)" if record["reused"] else ""))
                cost_row.append(f"{record['seconds']:.1f}")
        total = sum(r["seconds"] for r in runs.values())
        scores.append(score_row)
        costs.append([*cost_row, f"{total:.1f}"])
    return scores, costs


def _plot(advice: dict[str, Any]) -> bytes:
    """Held-out score against the rung's budget, one line per arm: where each arm stopped is where it was pruned."""
    lines: dict[str, list[tuple[int, float]]] = {}
    for rung in advice["rungs"]:
        for record in rung["arms"]:
            if record["score"] is not None:
                lines.setdefault(record["arm"], []).append((rung["rung"], record["score"]))
    style = plots._style(list(lines))
    fig = plots._figure(6.4, 3.8, layout="constrained")
    ax = fig.add_subplot()
    for arm, points in lines.items():
        color, marker = style[arm]
        ax.plot(*zip(*points, strict=True), marker=marker, color=color, label=arm)
    ticks = [rung["rung"] for rung in advice["rungs"]]
    ax.set_xticks(ticks, [f"rung {r}\n{advice['budgets'][r] or 'all'}" for r in ticks])
    ax.set_ylabel(f"held-out {advice['metric']}")
    ax.set_title(f"Successive halving (η = {advice['eta']}): {advice['budget_unit']} per rung", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return plots._png(fig)


def _meta(advice: dict[str, Any]) -> str:
    skipped = [p["arm"] for p in advice["pruned"] if p["rank"] is None]
    cuts = ([f"rung 0 skipped {', '.join(skipped)} (not started: too dear for the time left)"] if skipped else []) + (
        [f"cut by the time limit before {advice['cut_at']['arm']} at rung {advice['cut_at']['rung']}"]
        if advice["cut_at"] else [])
    cut = "; ".join(cuts) if cuts else "every rung completed"
    return (f"{advice['train']} ({advice['task']}): {len(advice['arms'])} arms, η = {advice['eta']}, "
            f"{advice['holdout']:.0%} held out for scoring; {advice['minutes_used']:.2f} of {advice['minutes']:g} "
            f"minutes used, {cut}")


def _sections(advice: dict[str, Any]) -> list[str]:
    esc = html.escape
    unit = advice["budget_unit"]
    rung_titles = [f"rung {r['rung']} ({_budget(r['budget'], unit)})" for r in advice["rungs"]]
    scores, costs = _arm_rows(advice)
    pick = advice["strategy"] if advice["model"] is None else f"{advice['strategy']} on {advice['model']}"
    parts = [f"<h2>Recommendation: {esc(pick)}</h2>",
             _html_table(["model", "strategy", f"held-out {advice['metric']}", "95% CI", "scored at"],
                         [[advice["model"] or "none (no source model)", advice["strategy"], _number(advice["score"]),
                           _ci(advice["ci"]), f"rung {advice['rung']}, {_budget(advice['budget'], unit)}"]], left=2),
             "<p>Train it on all the data:</p>", f"<pre>{esc(advice['command'])}</pre>",
             f"<details><summary>strategy options</summary><pre>{esc(yaml.safe_dump(advice['options']))}</pre>"
             "</details>",
             f"<h2>Held-out {esc(advice['metric'])} by rung</h2>",
             _html_table(["arm", *rung_titles], scores, caption="Each arm's score on the same held-out part of the "
                         "data; an arm stops at the rung that pruned it.")]
    if any(r["score"] is not None for rung in advice["rungs"] for r in rung["arms"]):
        png = base64.b64encode(_plot(advice)).decode("ascii")
        parts.append(f"<img alt=\"held-out score by rung\" src=\"data:image/png;base64,{png}\">")
    parts += ["<h2>Cost per arm (seconds)</h2>",
              _html_table(["arm", *rung_titles, "total"], costs, caption="Train + eval seconds each run measured; a "
                          "reused run shows the cost it had when it was trained."),
              "<h2>Pruned</h2>",
              _html_table(["arm", "rung", "rank", "reason"],
                          [[p["arm"], str(p["rung"]), f"{p['rank']} of {p['of']}" if p["rank"] else "—", p["reason"]]
                           for p in advice["pruned"]], left=4)
              if advice["pruned"] else "<p>No arm was pruned.</p>"]
    return parts + _shortlist(advice)


def _shortlist(advice: dict[str, Any]) -> list[str]:
    records = advice["shortlist"]
    if not records:
        return ["<h2>Shortlist</h2><p>No strategy that reads a source model: nothing to shortlist.</p>"]
    kept = {arm_model for arm_model in (r["model"] for rung in advice["rungs"] for r in rung["arms"]) if arm_model}
    rows = [[str(r["rank"]), r["model"], f"{r['score']:.4f}", f"{r['feature_seconds']:.2f}",
             "yes" if r["model"] in kept else "no"] for r in records]
    return ["<h2>Shortlist: transferability scores</h2>",
            _html_table(["rank", "model", f"{records[0]['estimator']} ({records[0]['layers']} of layers)",
                         "feature seconds", "searched"], rows, left=2,
                        caption="Scored on frozen features before any training; the top models go on to the search.")]


def render_advice(advice: dict[str, Any], path: str) -> str:
    """Write the page for the recommendation ``advice`` (as ``advise`` returns it) to ``path``; return the path."""
    title = "transferkit advise"
    page = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{title}</title>",
            f"<style>{_CSS}</style></head><body><h1>{title}</h1><p class=meta>{html.escape(_meta(advice))}</p>",
            *_sections(advice), "</body></html>"]
    write_bytes_atomic(path, "\n".join(page).encode("utf-8"))
    return path
