"""Unsupervised domain adaptation on the Amazon reviews (Blitzer et al. 2007): books, dvd, electronics.

Six ordered pairs S -> T.  Each domain's 2,000 labelled reviews are split once, stratified, into
two halves: the *unlabelled* half (its labels are dropped: the target text a DA method may read,
and the training set of the target oracle) and the *test* half (never read by any method; every
target accuracy below is on it).  Every run trains on all 2,000 labelled source reviews, with 10%
held out for checkpoint selection (source labels only: no target label is used for any choice).

Arms (each per seed):

* ``source_only``: ``finetune`` on S, evaluated on both other domains (one run per source);
* ``dapt``: continued MLM pretraining on T's unlabelled half (once per target domain, cached and
  shared by the seeds), then ``finetune`` on S;
* ``dann`` / ``coral`` / ``mmd`` / ``udalm`` / ``pseudo_label``: per pair, with T's unlabelled half as
  ``data.sources.target_unlabeled``;
* ``oracle``: ``finetune`` on T's unlabelled half *with* its labels (the ceiling).

Every arm shares one model (MiniLM-L6), ``max_length`` 128, batch 32, epochs and learning rate, chosen
for the source-only baseline on books' held-out 10% (source labels only): learning rate in {2e-5, 5e-5,
1e-4} x at most 2 epochs (a CPU budget; best epoch restored) gave 2e-5: 0.770 after epoch 1, 5e-5 with
a 1-epoch schedule: 0.805, 1e-4 with a 2-epoch schedule: 0.835 (0.820 after epoch 1), hence 1e-4 and 2
epochs.  Every run keeps its last epoch's model (``--keep last``): choosing the epoch on the source's
held-out accuracy (``--keep best``) is biased against adaptation, which trades source accuracy for
target accuracy and whose DANN / pseudo-label terms ramp in over training (You et al. 2019, "Towards
Accurate Model Selection in Deep Unsupervised Domain Adaptation").  Measured: every source-only, DAPT
and oracle run picked its last epoch anyway; 2 of 12 CORAL runs and some pseudo-label runs picked
the first.  Runs are resumable: a run with a metrics.json is not redone.

    python benchmarks/amazon_domain_adaptation.py OUT [--arms source_only,dapt,coral] [--seeds 0,1,2]
    python benchmarks/amazon_domain_adaptation.py OUT --summary   # the table, the paired test, PAD, DAPT curves
    python benchmarks/amazon_domain_adaptation.py OUT --pad dapt,coral   # proxy A-distances (seed 0's runs)
    python benchmarks/amazon_domain_adaptation.py OUT --mlm-control dvd  # head-only control for DAPT's curve

``--workers N`` trains N runs at once in separate processes (a GPU holds several MiniLM runs; one DAPT run
per target goes first so the others reuse its cached encoder), ``--deadline S`` starts no run after S
seconds, ``--set KEY=VALUE`` applies to every run (``training.mixed_precision=auto`` for bf16 where the
CPU has it; ``data.budget=8`` with a tiny model for a smoke test).

Sizing, measured (2 cores of a CPU with avx512_bf16 and AMX, ``training.mixed_precision=auto`` = bf16
autocast, 2026-12-05): a ``source_only`` run (1,800 source reviews x 2 epochs + 2 x 1,000 target test
reviews) takes 88-117 s; ``dapt`` the same plus 100-115 s once per target for the MLM stage;
``coral``, ``udalm``, ``dann``, ``mmd`` and ``pseudo_label``, which also run every target batch through the encoder,
160-210 s (the 7-10 min per epoch once seen for dann/mmd was CPU contention).  The full grid (42 runs per
seed) is at least 1.5 CPU hours per seed on such a machine.  An earlier fp32 seed 0 on a CPU
without AMX took 265-271 s per source-only run and gave the same accuracies to within 0.3 points.

A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

DOMAINS = ("books", "dvd", "electronics")
SHARED = os.environ.get("TRANSFERKIT_SHARED") or os.path.join(os.path.dirname(ROOT), "shared")
DATA = os.path.join(SHARED, "data", "amazon_multidomain_sentiment")
PAIR_ARMS = ("dapt", "dann", "coral", "mmd", "udalm", "pseudo_label")


def prepare(out: str) -> dict[str, dict[str, str]]:
    """Per domain: ``unlabeled`` (text only), ``unlabeled_labeled`` (the same half, labelled: the oracle's
    training set) and ``test`` jsonl files under ``OUT/data``; written once."""
    from transferkit.data.amazon_reviews import read_reviews

    folder = os.path.join(out, "data")
    os.makedirs(folder, exist_ok=True)
    files = {}
    for domain in DOMAINS:
        paths = {part: os.path.join(folder, f"{domain}_{part}.jsonl") for part in ("unlabeled", "unlabeled_labeled", "test")}
        files[domain] = paths
        if all(os.path.exists(p) for p in paths.values()):
            continue
        table = read_reviews(os.path.join(DATA, domain))
        texts, labels = table.data["text"], table.data["label"]
        rng = np.random.default_rng(2007)
        halves: dict[str, list[int]] = {"unlabeled": [], "test": []}
        for label in sorted(set(labels)):
            members = rng.permutation([i for i, y in enumerate(labels) if y == label])
            halves["unlabeled"] += sorted(members[: len(members) // 2].tolist())
            halves["test"] += sorted(members[len(members) // 2:].tolist())
        _write(paths["unlabeled"], [{"text": texts[i]} for i in halves["unlabeled"]])
        _write(paths["unlabeled_labeled"], [{"text": texts[i], "label": labels[i]} for i in halves["unlabeled"]])
        _write(paths["test"], [{"text": texts[i], "label": labels[i]} for i in halves["test"]])
    return files


def _write(path: str, records: list[dict]) -> None:
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    os.replace(temporary, path)


def base_config(args: argparse.Namespace, seed: int) -> dict:
    return {"model": args.model, "strategy": "finetune",
            "data": {"max_length": args.max_length, "eval_fraction": 0.1},
            "training": {"epochs": args.epochs, "batch_size": 32, "learning_rate": args.learning_rate, "seed": seed,
                         "checkpoint_every": 0, "progress": False, "eval_every_epoch": args.keep == "best"}}


def run_specs(args: argparse.Namespace, files: dict, arm: str, seed: int) -> list[tuple[str, dict]]:
    """(run name, config) of every run of ``arm`` at ``seed``."""
    specs = []
    for source in args.sources:
        targets = [t for t in DOMAINS if t != source]
        tests = {t: files[t]["test"] for t in targets}
        if arm == "source_only":
            config = base_config(args, seed)
            config["data"].update(train=os.path.join(DATA, source), test=tests)
            specs.append((f"source_only/{source}/seed{seed}", config))
        elif arm == "oracle":
            config = base_config(args, seed)
            config["data"].update(train=files[source]["unlabeled_labeled"], test={source: files[source]["test"]})
            specs.append((f"oracle/{source}/seed{seed}", config))
        else:
            for target in targets:
                config = base_config(args, seed)
                config["strategy"] = arm
                config["data"].update(train=os.path.join(DATA, source), test={target: files[target]["test"]},
                                      sources={"target_unlabeled": files[target]["unlabeled"]})
                specs.append((f"{arm}/{source}-{target}/seed{seed}", config))
    return specs


def _jobs(args: argparse.Namespace, files: dict) -> list[tuple[str, dict]]:
    """Every (run name, config) to do, seed by seed (so a deadline leaves whole seeds done first)."""
    jobs = []
    for seed in args.seeds:
        for arm in args.arms:
            for name, config in run_specs(args, files, arm, seed):
                config["output"] = os.path.join(args.out, "runs", name)
                if not os.path.exists(os.path.join(config["output"], "metrics.json")):
                    jobs.append((name, config))
    return jobs


def _run_job(job: tuple[str, dict, list[str], float]) -> str:
    """Train one run (in a worker process); a line for the log.  Past the deadline the run is skipped."""
    name, config, overrides, deadline = job
    if time.time() > deadline:
        return f"{name}: skipped (deadline)"
    from transferkit.experiments.api import train

    started = time.perf_counter()
    try:
        result = train(config, overrides)
    except Exception as error:  # noqa: BLE001 (a benchmark logs a failed run and goes on with the others)
        return f"{name}: FAILED after {time.perf_counter() - started:.0f} s: {type(error).__name__}: {error}"
    tests = {k: round(v["accuracy"], 4) for k, v in result.metrics.get("test", {}).items()}
    return f"{name}: {tests} in {time.perf_counter() - started:.0f} s"


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_all(args: argparse.Namespace, files: dict) -> None:
    """Every run, in ``--workers`` processes (one model each; a GPU fits several).  DAPT/UDALM stages are cached
    per target domain, so one DAPT run per target goes first and the others reuse its adapted encoder."""
    import multiprocessing

    from transferkit.core.machine import cpu_flags

    print(f"CPU: {cpu_flags()}; workers: {args.workers}", flush=True)
    jobs = _jobs(args, files)
    deadline = time.time() + args.deadline if args.deadline else float("inf")
    first, seen = [], set()
    for name, config in jobs:
        target = next(iter(config["data"]["test"]))
        if name.startswith(("dapt/", "udalm/")) and target not in seen:
            seen.add(target)
            first.append((name, config))
    rest = [j for j in jobs if j not in first]
    started = time.perf_counter()
    if args.workers == 1:  # in this process: nothing is left running if it is stopped
        for name, config in first + rest:
            print(f"[{time.perf_counter() - started:.0f} s] {_run_job((name, config, args.set, deadline))}", flush=True)
        return
    context = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // args.workers)
    with context.Pool(args.workers, _init_worker, (threads,)) as pool:
        for stage in (first, rest):
            for line in pool.imap_unordered(_run_job, [(n, c, args.set, deadline) for n, c in stage]):
                print(f"[{time.perf_counter() - started:.0f} s] {line}", flush=True)


def _texts(path: str, limit: int, seed: int = 0) -> list[str]:
    """Up to ``limit`` texts of a domain directory or jsonl file, shuffled with ``seed`` (file order for seed -1)."""
    if os.path.isdir(path):
        from transferkit.data.amazon_reviews import read_reviews

        texts = list(read_reviews(path).data["text"])
    else:
        with open(path, encoding="utf-8") as handle:
            texts = [json.loads(line)["text"] for line in handle]
    if seed < 0:
        return texts[:limit]
    order = np.random.default_rng(seed).permutation(len(texts))[:limit]
    return [texts[i] for i in order]


def _pretrained_features(model: str, texts: list[str], max_length: int) -> np.ndarray:
    """Mean-pooled last-layer states of the unadapted encoder (the classification head's default pooling)."""
    import torch

    from transferkit.models.loading import load_backbone

    loaded = load_backbone(model)
    rows = []
    with torch.no_grad():
        for start in range(0, len(texts), 64):
            batch = loaded.tokenizer(texts[start:start + 64], truncation=True, max_length=max_length, padding=True,
                                     return_tensors="pt")
            hidden = loaded.backbone(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            rows.append(((hidden * mask).sum(1) / mask.sum(1)).numpy())
    return np.concatenate(rows)


def proxy_distances(args: argparse.Namespace, files: dict, arms: list[str], seed: int = 0, limit: int = 500) -> None:
    """Proxy A-distance between source and target features per pair: unadapted, source-only and each of ``arms``
    (seed ``seed``'s runs); OUT/pad.json."""
    from transferkit.evaluation.domain import proxy_a_distance
    from transferkit.serving import load_predictor

    def run_features(run: str, texts: list[str]) -> np.ndarray:
        return load_predictor(run).text_encoder("pad").encode(texts)

    result = {}
    for source in DOMAINS:
        for target in (t for t in DOMAINS if t != source):
            s_texts, t_texts = _texts(os.path.join(DATA, source), limit), _texts(files[target]["unlabeled"], limit)
            runs = {"source_only": os.path.join(args.out, "runs", "source_only", source, f"seed{seed}")}
            runs.update({arm: os.path.join(args.out, "runs", arm, f"{source}-{target}", f"seed{seed}") for arm in arms})
            entry = {"before": proxy_a_distance(_pretrained_features(args.model, s_texts, args.max_length),
                                                _pretrained_features(args.model, t_texts, args.max_length))}
            for name, run in runs.items():
                if os.path.exists(os.path.join(run, "metrics.json")):
                    entry[name] = proxy_a_distance(run_features(run, s_texts), run_features(run, t_texts))
            result[f"{source}-{target}"] = entry
            print(source, "->", target, {k: round(v, 3) for k, v in entry.items()}, flush=True)
    _write(os.path.join(args.out, "pad.json"), [result])


def mlm_control(args: argparse.Namespace, files: dict, target: str) -> None:
    """Head-only control for DAPT's curve: the unadapted encoder, frozen, with a new MLM head trained for as many
    passes as warm-up + DAPT take, scored on the same held-out texts and masks; prints the held-out loss per pass."""
    from transferkit.core.config import TrainingConfig
    from transferkit.data.collate import PaddingCollator
    from transferkit.data.sources import SingleSource
    from transferkit.models.loading import load_backbone
    from transferkit.modules.masked_lm import MaskedLanguageModel, MaskedLMHead, MaskingVocabulary
    from transferkit.strategies.continued_pretraining.stage import (
        MaskedLMConfig,
        MaskedLMObjective,
        _split,
        heldout_loss,
    )
    from transferkit.training import Trainer

    options = MaskedLMConfig()
    loaded = load_backbone(args.model)
    vocabulary = MaskingVocabulary.from_tokenizer(loaded.tokenizer, loaded.backbone.get_input_embeddings().weight.shape[0])
    train_rows, heldout = _split(loaded.tokenizer, _texts(files[target]["unlabeled"], 10**9, seed=-1),
                                 args.max_length, options, vocabulary)
    model = MaskedLanguageModel(loaded.backbone.requires_grad_(False), MaskedLMHead.for_backbone(loaded.backbone), vocabulary)
    collator = PaddingCollator(loaded.tokenizer.pad_token_id)
    settings = TrainingConfig(epochs=options.head_warmup_epochs + options.epochs, batch_size=options.batch_size,
                              learning_rate=options.head_warmup_learning_rate, seed=options.seed,
                              metric_for_best="mlm_loss", checkpoint_every=0, progress=False)
    fit = Trainer(MaskedLMObjective(), settings).fit(
        model, SingleSource.from_config(train_rows, collator, settings), lambda m: {"mlm_loss": heldout_loss(m, heldout, collator, 128)})
    print(f"{target}: head-only held-out MLM loss per pass:",
          [round(e["eval"]["mlm_loss"], 3) for e in fit.history if "eval" in e], flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("--arms", default="source_only,dapt")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--sources", default=",".join(DOMAINS), help="source domains to run (all three by default)")
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--keep", choices=("last", "best"), default="last",
                        help="which model a run keeps: the last epoch's (default) or the best on the source's held-out 10%%")
    parser.add_argument("--workers", type=int, default=1, help="runs trained at once, one process each")
    parser.add_argument("--deadline", type=float, default=0, help="seconds after which no new run starts (0: none)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override applied to every run (e.g. data.budget=16 for a smoke test)")
    parser.add_argument("--summary", action="store_true", help="print the table from the finished runs")
    parser.add_argument("--mlm-control", metavar="DOMAIN", help="head-only MLM control on DOMAIN's unlabelled half")
    parser.add_argument("--pad", metavar="ARMS", help="proxy A-distance per pair: unadapted, source-only and each of "
                        "ARMS (comma-separated; seed 0)")
    args = parser.parse_args()
    args.arms = [a for a in args.arms.split(",") if a]
    args.seeds = [int(s) for s in args.seeds.split(",") if s]
    args.sources = [d for d in args.sources.split(",") if d]
    files = prepare(args.out)
    if args.summary:
        from amazon_da_summary import summarize  # noqa: PLC0415 (benchmarks/ sibling)

        summarize(args.out, DOMAINS)
        return
    if args.pad:
        proxy_distances(args, files, [a for a in args.pad.split(",") if a])
        return
    if args.mlm_control:
        mlm_control(args, files, args.mlm_control)
        return
    run_all(args, files)


if __name__ == "__main__":
    main()
