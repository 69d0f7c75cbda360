"""A real MiniLM continual run killed with SIGKILL at five random moments ends with the same R as an uninterrupted one.

Protocol, fixed before any result was seen: the class-incremental stream of ``continual.py`` in its first order
(SST-2 → TREC → BBC News → Amazon electronics, ``minilm-l6``, ``replay`` at its defaults, training seed 42), with
``training.checkpoint_every: 20`` so that kills land between checkpoints.  The reference is ``continual.py``'s own run
of that cell (trained here when it is not on disk).  The killed copy runs as ``python -m transferkit.cli.main train
--config``, restarted after each kill with the same command plus ``--resume``; after the fifth kill it runs to the end.
Passes when all five kills landed (the process was still running) and its ``continual.matrix`` equals the
reference's exactly (the same floats, not approximately).

Kill moments (revised after the first run, in which only 1 of 5 kills landed: each attempt's moment was drawn afresh
in [20 s, 0.9 × the reference's wall seconds], and the first resumed attempt finished inside its 308 s): five points
are drawn with ``random.Random(0)`` uniformly in [20 s, 0.9 × the reference's wall seconds] and sorted, positions on
the uninterrupted run's timeline; attempt ``k`` is killed ``max(p_k − p_{k−1}, 20 s)`` after it starts (``p_0`` = 0),
so the five kills spread over the stream while every attempt can still make progress past its restart.

    python benchmarks/continual_kill.py                 # OUT = benchmarks/out/continual (shared with continual.py)
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from continual import CLASS_STAGES, execute, plan, run_config  # noqa: E402
from continual_data import prepare  # noqa: E402
from continual_report import machine  # noqa: E402

KILLS = 5


def killed_run(out: Path, reference: dict, files: dict[str, dict]) -> tuple[list[float], int, list[list[float]]]:
    """The killed copy: the kill moments (seconds after each start), how many landed, and its final matrix."""
    planned = plan(out, "class", 1, [], ["replay"])[0]
    config = run_config(planned, files)
    output = out / "kill" / "replay"
    config["output"] = str(output)
    config["training"]["checkpoint_every"] = 20
    config_file = out / "kill" / "replay.yaml"
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    command = [sys.executable, "-m", "transferkit.cli.main", "train", "--config", str(config_file)]
    rng = random.Random(0)
    points = sorted(rng.uniform(20.0, 0.9 * reference["wall_seconds"]) for _ in range(KILLS))
    moments = [round(max(point - before, 20.0), 1) for before, point in zip([0.0, *points[:-1]], points, strict=True)]
    landed = 0
    with open(out / "kill" / "replay.log", "a", encoding="utf-8") as log:
        for index, moment in enumerate(moments):
            if output.exists():
                break
            process = subprocess.Popen([*command, *(["--resume"] if index else [])], stdout=log, stderr=log)
            try:
                process.wait(timeout=moment)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait()
                landed += 1
                print(f"killed at {moment} s after start {index + 1}", flush=True)
        if not output.exists():
            subprocess.run([*command, "--resume"], stdout=log, stderr=log, check=True)
    metrics = json.loads((output / "metrics.json").read_text(encoding="utf-8"))
    return moments, landed, metrics["continual"]["matrix"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/out/continual")
    out = Path(parser.parse_args().out).resolve()
    files = prepare(str(out), CLASS_STAGES)
    print(f"Machine: {machine()}", flush=True)
    started = time.perf_counter()
    reference = execute(plan(out, "class", 1, [], ["replay"])[0], files)
    moments, landed, matrix = killed_run(out, reference, files)
    same = matrix == reference["matrix"]
    print(json.dumps({"kill_moments_s": moments, "kills_landed": landed, "same_matrix": same,
                      "reference": reference["matrix"],
                      "killed": matrix, "wall_seconds": round(time.perf_counter() - started, 1)}, indent=1))
    if not same:
        raise SystemExit("the killed run's R differs from the uninterrupted run's")
    if landed < KILLS:
        raise SystemExit(f"only {landed} of {KILLS} kills landed: the run finished first")


if __name__ == "__main__":
    main()
