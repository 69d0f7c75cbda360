"""The runs and fixed inputs of ``benchmarks/prediction_parity.py`` (see its docstring).

A run's arguments are ``transferkit train`` arguments with three placeholders: ``{shared}`` (the shared
data directory), ``{inputs}`` (``OUT/inputs``, the files :func:`write_inputs` derives from the shared data)
and ``{runs}`` (``OUT/runs``, run directories written earlier in the same invocation, e.g. a teacher).
Nothing here imports ``transferkit``: the parent process must not load the code under test.
"""

from __future__ import annotations

import html
import json
import os
import re
from dataclasses import dataclass


def sets(*pairs: str) -> list[str]:
    """``--set`` before every dotted override."""
    return [part for pair in pairs for part in ("--set", pair)]


@dataclass(frozen=True)
class Run:
    kind: str  # classification | ner | qa | summarization (what the main prediction holds)
    suite: str  # small | reference
    args: list[str]
    # (suffix, input key, extra ``predict`` arguments): the first (suffix "") is pred/NAME.jsonl,
    # another is pred/NAME--SUFFIX.jsonl
    predictions: tuple[tuple[str, str, tuple[str, ...]], ...]
    needs: tuple[str, ...] = ()  # runs whose directories this one reads ({runs}/NAME): trained first


SST2_COLUMNS = ["--train", "{shared}/sst2/train.tsv", "--text-column", "sentence", "--label-column", "label"]
CAPS = sets("data.max_train_examples=300", "data.max_eval_examples=200", "training.progress=false")
SMALL = [*CAPS, *sets("data.max_length=64", "training.epochs=1")]
SST2 = ["--model", "minilm-l6", *SST2_COLUMNS, *SMALL]
# books (labelled source) -> dvd (unlabelled target; the prediction input is other dvd reviews)
BOOKS_DVD = ["--model", "minilm-l6", "--train", "{shared}/amazon_multidomain_sentiment/books", *SMALL,
             *sets("data.sources.target_unlabeled={inputs}/dvd_unlabeled_300.jsonl")]
TINY_MLM = sets("strategy.mlm_epochs=1", "strategy.mlm_max_steps=8", "strategy.head_warmup_epochs=1")
ON_SST2 = (("", "sst2_500", ()),)
ON_DVD = (("", "dvd_200", ()),)


def _small(kind: str, args: list[str], predictions=ON_SST2, needs: tuple[str, ...] = ()) -> Run:
    return Run(kind, "small", args, predictions, needs)


RUNS: dict[str, Run] = {
    # -- small suite: one run per registered strategy that trains, plus NER, QA, summarization
    "tfidf": _small("classification", [*SST2, "--strategy", "tfidf"]),
    "word_vectors": _small("classification", ["--model", "glove-6b-50d", *SST2_COLUMNS, *SMALL,
                                                      "--strategy", "word_vectors"]),
    "feature_extraction": _small("classification", [*SST2, "--strategy", "feature_extraction"]),
    "finetune": _small("classification", [*SST2, "--strategy", "finetune"]),
    "scratch": _small("classification", [*SST2, "--strategy", "scratch"]),
    "lora": _small("classification", [*SST2, "--strategy", "lora"]),
    "bitfit": _small("classification", [*SST2, "--strategy", "bitfit"]),
    "tapt": _small("classification", [*SST2, "--strategy", "tapt", *TINY_MLM]),
    "distill": _small("classification", [*SST2, "--strategy", "distill", *sets("teacher={runs}/finetune")],
                      needs=("finetune",)),
    "multitask": _small("classification", [*SST2, "--strategy", "multitask", *sets(
        "data.sources.ner={{path: {inputs}/conll_train_300.conll, task: token_classification}}")],
        predictions=(("", "sst2_500", ()), ("ner", "conll_testa_200", ("--task", "ner")))),
    "contrastive": _small("classification", [  # its own defaults: 256 tokens, 1 epoch, batch 16
        "--model", "minilm-l6", *SST2_COLUMNS, *CAPS, "--strategy", "contrastive", *sets("data.budget=8")]),
    "protonet": _small("classification", [*SST2, "--strategy", "protonet"]),
    "dapt": _small("classification", [*BOOKS_DVD, "--strategy", "dapt", *TINY_MLM], ON_DVD),
    "udalm": _small("classification", [*BOOKS_DVD, "--strategy", "udalm", *TINY_MLM], ON_DVD),
    "dann": _small("classification", [*BOOKS_DVD, "--strategy", "dann"], ON_DVD),
    "coral": _small("classification", [*BOOKS_DVD, "--strategy", "coral"], ON_DVD),
    "mmd": _small("classification", [*BOOKS_DVD, "--strategy", "mmd"], ON_DVD),
    "pseudo_label": _small("classification", [*BOOKS_DVD, "--strategy", "pseudo_label"], ON_DVD),
    "ner_finetune": _small("ner", [
        "--model", "minilm-l6", "--task", "token_classification", "--strategy", "finetune",
        "--train", "{shared}/conll2003_en/eng.train", "--eval", "{shared}/conll2003_en/eng.testa", *SMALL,
        *sets("data.max_train_examples=500", "training.batch_size=16", "training.learning_rate=3e-4")],
        (("", "conll_testa_200", ()),)),
    "qa_finetune": _small("qa", [
        "--model", "minilm-l6", "--task", "question_answering", "--strategy", "finetune",
        "--train", "{shared}/squad_v1.1/dev-v1.1.articles-00-23.json", *CAPS,
        *sets("data.max_length=192", "task.doc_stride=64", "training.epochs=1",
              "data.max_eval_examples=100", "training.batch_size=16",
              "training.learning_rate=3e-4")], (("", "squad_60", ()),)),
    "xsum_bert2bert": _small("summarization", [
        "--config", "examples/xsum_bert2bert.yaml", *sets(
            "data.train={shared}/xsum_sample/sample-000-799.jsonl", "data.max_train_examples=96",
            "data.max_eval_examples=8", "data.max_length=96", "task.max_target_length=24", "task.num_beams=2",
            "training.epochs=1", "training.learning_rate=5e-4", "training.progress=false")],
        (("", "xsum_12", ()),)),
    # -- reference suite: the four original runs (examples/sst2_*.yaml and a CoNLL run; minutes each)
    **{f"sst2_{name}": Run("classification", "reference", [
        "--config", f"examples/sst2_{name}.yaml", *sets("data.train={shared}/sst2/train.tsv")],
        (("", "sst2_2000", ()),)) for name in ("finetune", "feature_extraction", "lora")},
    "conll_ner": Run("ner", "reference", [
        "--model", "minilm-l6", "--task", "token_classification", "--strategy", "finetune",
        "--train", "{shared}/conll2003_en/eng.train", "--eval", "{shared}/conll2003_en/eng.testa",
        *sets("data.max_train_examples=2000", "data.max_eval_examples=500", "training.epochs=1",
              "training.learning_rate=1e-4", "data.max_length=128")], (("", "conll_testa", ()),)),
}
SUITES = {"small": [n for n, r in RUNS.items() if r.suite == "small"],
          "reference": [n for n, r in RUNS.items() if r.suite == "reference"]}
SUITES["all"] = SUITES["small"] + SUITES["reference"]


def with_dependencies(names: list[str]) -> list[str]:
    """``names`` in order, each preceded by the runs it needs (once)."""
    ordered: list[str] = []

    def add(name: str) -> None:
        for need in RUNS[name].needs:
            add(need)
        if name not in ordered:
            ordered.append(name)

    for name in names:
        add(name)
    return ordered


def _head_lines(path: str, rows: int) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [line for _, line in zip(range(rows), handle, strict=False)]


def _conll_sentences(path: str, skip: int, count: int) -> str:
    """Sentences ``skip .. skip+count`` of a CoNLL file (blank-line separated; -DOCSTART- lines left out)."""
    with open(path, encoding="utf-8") as handle:
        blocks = [b.strip("\n") for b in handle.read().split("\n\n")
                  if b.strip() and not b.strip().startswith("-DOCSTART-")]
    return "\n\n".join(blocks[skip:skip + count]) + "\n\n"


def _reviews(path: str) -> list[str]:
    """``<review_text>`` contents of a Blitzer et al. ``.review`` file, entities unescaped, stripped."""
    with open(path, encoding="utf-8") as handle:
        return [html.unescape(t).strip() for t in re.findall(r"<review_text>(.*?)</review_text>", handle.read(), re.S)]


def _write(path: str, text: str) -> str:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write_inputs(shared: str, directory: str) -> dict[str, str]:
    """Every fixed input, written under ``directory``; returns key -> path (``{inputs}/KEY.EXT``)."""
    os.makedirs(directory, exist_ok=True)
    paths: dict[str, str] = {}

    def path(name: str) -> str:
        return os.path.join(directory, name)

    sst2 = os.path.join(shared, "sst2", "train.tsv")
    for rows in (500, 2000):  # the header and the first rows of SST-2's train.tsv
        paths[f"sst2_{rows}"] = _write(path(f"sst2_{rows}.tsv"), "".join(_head_lines(sst2, rows + 1)))
    conll = os.path.join(shared, "conll2003_en")
    paths["conll_testa"] = os.path.join(conll, "eng.testa")
    paths["conll_testa_200"] = _write(path("conll_testa_200.conll"), _conll_sentences(f"{conll}/eng.testa", 0, 200))
    paths["conll_train_300"] = _write(path("conll_train_300.conll"), _conll_sentences(f"{conll}/eng.train", 0, 300))
    dvd = os.path.join(shared, "amazon_multidomain_sentiment", "dvd")
    positive, negative = _reviews(f"{dvd}/positive.review"), _reviews(f"{dvd}/negative.review")
    # unlabelled target text: the first 150 reviews of each file; prediction input: the last 100 of each
    paths["dvd_unlabeled_300"] = _write(path("dvd_unlabeled_300.jsonl"),
                                        _jsonl([{"text": t} for t in positive[:150] + negative[:150]]))
    paths["dvd_200"] = _write(path("dvd_200.jsonl"), _jsonl(
        [{"text": t, "label": "positive"} for t in positive[-100:]]
        + [{"text": t, "label": "negative"} for t in negative[-100:]]))
    with open(os.path.join(shared, "squad_v1.1", "dev-v1.1.articles-00-23.json"), encoding="utf-8") as handle:
        squad = json.load(handle)
    article = squad["data"][-1]  # the first questions of the last article, up to 60
    paragraphs, count = [], 0
    for paragraph in article["paragraphs"]:
        if count >= 60:
            break
        qas = paragraph["qas"][: 60 - count]
        paragraphs.append({**paragraph, "qas": qas})
        count += len(qas)
    paths["squad_60"] = _write(path("squad_60.json"), json.dumps(
        {"version": squad.get("version", "1.1"), "data": [{**article, "paragraphs": paragraphs}]}))
    xsum = _head_lines(os.path.join(shared, "xsum_sample", "sample-000-799.jsonl"), 800)
    paths["xsum_12"] = _write(path("xsum_12.jsonl"), "".join(xsum[-12:]))  # the last 12 documents
    return paths
