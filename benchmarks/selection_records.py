"""Keep the selection and advise benchmarks' finished runs in git, and put them back, so a later session resumes.

``benchmarks/out`` is not committed (run directories, models' features).  What a verdict needs is small: each run's
JSON record (``OUT/truth/NAME/MODEL-sSEED.json``, ``OUT/grid/NAME/CELL.json``, ``OUT/advise/NAME.json``).  ``save``
gathers them into ``benchmarks/results/selection-records.jsonl`` (one line per record, with the path it came from);
``restore`` writes them back under OUT, where ``selection.py`` and ``advise.py`` read them as finished runs.

    python benchmarks/selection_records.py save      # after a benchmark session
    python benchmarks/selection_records.py restore   # on a fresh checkout, before resuming
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "selection-records.jsonl"
PATTERNS = ("truth/*/*.json", "grid/*/*.json", "advise/*.json")


def save(out: Path) -> int:
    records = [{"path": str(path.relative_to(out)), "record": json.loads(path.read_text(encoding="utf-8"))}
               for pattern in PATTERNS for path in sorted(out.glob(pattern))]
    RESULTS.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records), encoding="utf-8")
    return len(records)


def restore(out: Path) -> int:
    count = 0
    for line in RESULTS.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        target = out / entry["path"]
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(entry["record"]), encoding="utf-8")
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["save", "restore"])
    parser.add_argument("--out", default="benchmarks/out/selection")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    count = save(out) if args.action == "save" else restore(out)
    print(f"{args.action}: {count} records ({RESULTS})")


if __name__ == "__main__":
    main()
