"""The table of ``benchmarks/amazon_domain_adaptation.py``: per pair and arm, target accuracy (mean over seeds,
95% bootstrap CI over the pooled test predictions' accuracies), the paired test of each method against
source-only over (pair, seed), domain diagnostics (vocabulary overlap; proxy A-distance of the pooled
features before and after adaptation) and the DAPT held-out MLM loss curves, written to
``OUT/report.md`` (+ ``OUT/report_files/*.png``) and printed.
"""

from __future__ import annotations

import glob
import json
import os
import sys

import numpy as np

ARM_ORDER = ("source_only", "dapt", "udalm", "dann", "coral", "mmd", "pseudo_label", "oracle")
PUBLISHED = "UDALM (Karouzos et al. 2021, BERT-base): 91.7 mean target accuracy over the 12 Amazon pairs"


def _runs(out: str) -> dict[tuple[str, str, str, int], dict]:
    """(arm, source, target, seed) -> metrics of every finished run; a source-only run serves both of its targets."""
    found = {}
    for path in glob.glob(os.path.join(out, "runs", "*", "*", "seed*", "metrics.json")):
        arm, name, seed_dir = path.split(os.sep)[-4:-1]
        seed = int(seed_dir[4:])
        with open(path, encoding="utf-8") as handle:
            metrics = json.load(handle)
        for target, result in metrics.get("test", {}).items():
            source = target if arm == "oracle" else name.split("-")[0]
            found[(arm, source, target, seed)] = {**metrics, "target_result": result, "run": os.path.dirname(path)}
    return found


def _pairs(runs: dict) -> list[tuple[str, str]]:
    return sorted({(s, t) for (arm, s, t, _) in runs if arm != "oracle"})


def _cell(runs: dict, arm: str, source: str, target: str) -> tuple[float, float, float, int] | None:
    """(mean accuracy over seeds, CI low, CI high, seeds): the CI is the mean of the per-seed bootstrap bounds."""
    source = target if arm == "oracle" else source
    values = [v["target_result"] for (a, s, t, _), v in runs.items() if (a, s, t) == (arm, source, target)]
    if not values:
        return None
    acc = float(np.mean([v["accuracy"] for v in values]))
    low = float(np.mean([v["ci95"]["accuracy"][0] for v in values]))
    high = float(np.mean([v["ci95"]["accuracy"][1] for v in values]))
    return acc, low, high, len(values)


def paired(runs: dict, arm: str, baseline: str = "source_only") -> dict | None:
    """Mean difference of ``arm`` − ``baseline`` over matching (pair, seed), bootstrap CI and sign-flip p-value."""
    from transferkit.reporting.stats import sign_flip_p_value

    diffs = []
    for (a, s, t, seed), v in runs.items():
        other = runs.get((baseline, s, t, seed))
        if a == arm and other is not None:
            diffs.append(v["target_result"]["accuracy"] - other["target_result"]["accuracy"])
    if not diffs:
        return None
    d = np.array(diffs)
    boot = d[np.random.default_rng(0).integers(0, len(d), size=(10_000, len(d)))].mean(axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    return {"n": len(d), "mean": float(d.mean()), "low": float(low), "high": float(high),
            "p": sign_flip_p_value(d), "wins": int((d > 0).sum())}


def table(runs: dict) -> list[str]:
    arms = [a for a in ARM_ORDER if any(k[0] == a for k in runs)]
    lines = ["| pair | " + " | ".join(arms) + " |", "|---|" + "---|" * len(arms)]
    means: dict[str, list[float]] = {a: [] for a in arms}
    for source, target in _pairs(runs):
        row = []
        for arm in arms:
            cell = _cell(runs, arm, source, target)
            if cell is None:
                row.append("—")
                continue
            means[arm].append(cell[0])
            row.append(f"{100 * cell[0]:.1f} [{100 * cell[1]:.1f}, {100 * cell[2]:.1f}] (n={cell[3]})")
        lines.append(f"| {source} → {target} | " + " | ".join(row) + " |")
    lines.append("| **mean** | " + " | ".join(f"**{100 * np.mean(v):.1f}** ({len(v)} pairs)" if v else "—"
                                             for v in means.values()) + " |")
    return lines


def diagnostics(out: str, runs: dict) -> list[str]:
    """Vocabulary overlap per domain pair and the proxy A-distances recorded by the diagnostics pass (if run):
    unadapted encoder, source-only, and the method with the largest mean gain over source-only."""
    from transferkit.evaluation.domain import vocabulary_overlap

    texts = {}
    for path in glob.glob(os.path.join(out, "data", "*_unlabeled.jsonl")):
        with open(path, encoding="utf-8") as handle:
            texts[os.path.basename(path).split("_")[0]] = [json.loads(line)["text"] for line in handle]
    pad = {}
    if os.path.exists(os.path.join(out, "pad.json")):
        with open(os.path.join(out, "pad.json"), encoding="utf-8") as handle:
            pad = json.load(handle)
    measured = {arm for entry in pad.values() for arm in entry}
    gains = {arm: r["mean"] for arm in ARM_ORDER[1:-1] if arm in measured and (r := paired(runs, arm))}
    best = max(gains, key=gains.get) if gains else "best"
    lines = ["| pair | vocabulary overlap (top 5,000 words) | PAD before | PAD after (source-only) | "
             f"PAD after ({best}: of the methods measured, the largest mean gain) |", "|---|---|---|---|---|"]
    for source, target in _pairs(runs):
        overlap = vocabulary_overlap(texts[source], texts[target]) if source in texts and target in texts else None
        p = pad.get(f"{source}-{target}", {})
        cells = [f"{overlap:.2f}" if overlap is not None else "—"] + [
            f"{p[k]:.2f}" if k in p else "—" for k in ("before", "source_only", best)]
        lines.append(f"| {source} → {target} | " + " | ".join(cells) + " |")
    return lines


def curves(out: str, runs: dict) -> list[str]:
    """The DAPT held-out MLM loss curve per target domain, as a PNG beside the report."""
    from transferkit.core.results import Cell
    from transferkit.reporting.plots import pretraining_curves

    cells = [Cell(f"{a}-{s}-{t}-{seed}", {"target": t}, {}, status="done", metrics=v)
             for (a, s, t, seed), v in runs.items() if a in ("dapt", "udalm")]
    if not cells:
        return []
    folder = os.path.join(out, "report_files")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "dapt_mlm_loss.png"), "wb") as handle:
        handle.write(pretraining_curves(cells))
    lines = ["![DAPT held-out MLM loss](report_files/dapt_mlm_loss.png)", "",
             "| target | texts | held-out texts | MLM loss before | after | steps | seconds |", "|---|---|---|---|---|---|---|"]
    seen = set()
    for cell in cells:
        stage = cell.metrics["encoder"]["continued_pretraining"]
        if cell.axes["target"] in seen:
            continue
        seen.add(cell.axes["target"])
        lines.append(f"| {cell.axes['target']} | {stage['texts']} | {stage['heldout_texts']} | {stage['before']:.3f} | "
                     f"{stage['after']:.3f} | {stage['steps']} | {stage['seconds']:.0f} |")
    return lines


def summarize(out: str, domains: tuple[str, ...]) -> str:
    runs = _runs(out)
    seconds = sum(v.get("train_seconds", 0) + v.get("eval_seconds", 0) for v in
                  {v["run"]: v for v in runs.values()}.values())
    parts = ["# Domain adaptation on Amazon reviews (books, dvd, electronics)", "",
             "Target accuracy (%) on the target's test half, mean over seeds [95% bootstrap CI, mean of the seeds' "
             "bounds]; oracle = trained on the target's other half with labels.", "", *table(runs), "",
             f"Published context: {PUBLISHED}.", "", "## Paired test against source-only over (pair, seed)", "",
             "| method | pairs×seeds | mean Δ (points) | 95% CI | sign-flip p | wins |", "|---|---|---|---|---|---|"]
    for arm in ARM_ORDER[1:-1]:
        r = paired(runs, arm)
        if r:
            parts.append(f"| {arm} | {r['n']} | {100 * r['mean']:+.2f} | [{100 * r['low']:+.2f}, {100 * r['high']:+.2f}] | "
                         f"{r['p']:.4f} | {r['wins']}/{r['n']} |")
    parts += ["", "## Domain distance", "", *diagnostics(out, runs), "", "## DAPT: held-out target MLM loss", "",
              *curves(out, runs), "", f"Training + evaluation time of the runs: {seconds / 60:.0f} min "
              "(DAPT stages counted once each in their first run)."]
    text = "\n".join(parts) + "\n"
    with open(os.path.join(out, "report.md.tmp"), "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(os.path.join(out, "report.md.tmp"), os.path.join(out, "report.md"))
    print(text)
    return text


if __name__ == "__main__":
    summarize(sys.argv[1], ("books", "dvd", "electronics"))
