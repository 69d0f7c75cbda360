"""The Markdown summary of ``selection.py``: per-dataset rankings, correlations per estimator, cost ratio."""

from __future__ import annotations

import numpy as np


def _cpu() -> str:
    from transferkit.core.machine import cpu_flags

    return cpu_flags()


def dataset_table(name: str, result: dict) -> list[str]:
    lines = [f"### {name}", "", "| candidate | LogME (layer mean) | ground truth (test, mean of seeds) | [UNK] | in correlation |",
             "|---|---:|---:|---:|---|"]
    order = sorted(result["truth"], key=lambda m: -result["logme_mean"].get(m, -np.inf))
    for model in order:
        unk = result["unk"].get(model)
        unk_text = "—" if unk is None else f"{unk:.1%}"
        lines.append(f"| {model} | {result['logme_mean'][model]:.4f} | {result['truth'][model]:.4f} | {unk_text} | "
                     f"{'yes' if model in result['included'] else 'no'} |")
    lines.append("")
    lines.append(f"random-bert ranked last among the candidates sharing its tokenizer: {result['control_last']}")
    return [*lines, ""]


def correlation_table(summary: dict) -> list[str]:
    keys = list(next(iter(summary.values()))["correlation"])
    names = list(summary)
    header = "| estimator / layers | " + " | ".join(f"{n} r / τw" for n in names) + " | mean r | mean τw |"
    lines = [header, "|---" * (len(names) + 3) + "|"]
    for key in keys:
        cells = [summary[n]["correlation"][key] for n in names]
        mean_r = np.mean([c["pearson"] for c in cells])
        mean_t = np.mean([c["weighted_tau"] for c in cells])
        lines.append(f"| {key} | " + " | ".join(f"{c['pearson']:.2f} / {c['weighted_tau']:.2f}" for c in cells)
                     + f" | {mean_r:.3f} | {mean_t:.3f} |")
    return [*lines, ""]


def report(summary: dict, cores: int | None) -> str:
    if not summary:
        return "no ground truth yet (--skip-truth)"
    select_cpu = sum(r["select_cpu_seconds"] for r in summary.values())
    truth_cpu = sum(r["truth_cpu_seconds_one_seed"] for r in summary.values())
    lines = ["# Source-model selection: LogME (layer mean) against fine-tuned ground truth", "",
             f"CPU: {cores} cores, flags {_cpu()}", ""]
    lines += correlation_table(summary)
    lines += [f"Cost: select {select_cpu:.0f} CPU s for all candidates of all datasets; ground truth (one seed) "
              f"{truth_cpu:.0f} CPU s; ratio {select_cpu / truth_cpu:.3f}", ""]
    for name, result in summary.items():
        lines += dataset_table(name, result)
    return "\n".join(lines)
