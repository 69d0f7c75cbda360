"""Feature extraction: a frozen pretrained encoder, only a head is fitted.

The encoder never changes, so its outputs are computed once and the head is trained on them.

Classification: one vector ``z = encode(x)`` per distinct text from a frozen text encoder
(``core.contracts.TextEncoder``; cached on disk by the experiment layer): for a transformer the
pooled states ``z = pool(h_layer(x))``, for a packaged sentence encoder (catalog kind
``text_encoder``, e.g. ``use-multilingual``: Yang et al. 2020) its own vectors.  The head is either

* ``logreg`` (``auto``): multinomial logistic regression (scikit-learn, L2, inverse strength ``C``),
  fitted in closed form and copied into the linear head, so the saved model is an ordinary
  ``TaskModel``: ``softmax(W z + b)`` reproduces ``predict_proba`` exactly; or
* ``linear`` / ``mlp``: trained with the shared Trainer on the cached features.

Token classification and question answering: the token states ``H = h_layer(x)`` (len, dim) of
every subword window are computed once (in memory) and a linear token head ``W h_t + b`` (tags,
or start/end logits for QA) is trained on them with the shared Trainer for all epochs, without
running the encoder again.  ``auto`` means ``linear`` here; ``logreg`` and ``mlp`` are refused.
The saved model is the full ``TaskModel`` (encoder + head), whose logits equal the cached path's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from transferkit.core.config import option
from transferkit.core.errors import UserError
from transferkit.models import get_entry, is_text_encoder, load_text_encoder
from transferkit.models.loading import LoadedModel
from transferkit.strategies.base import Strategy
from transferkit.strategies.common import LogisticHeadConfig, fit_logistic_head, optimizer_groups, set_trainable


@dataclass
class FeatureExtractionConfig(LogisticHeadConfig):
    head: Literal["auto", "logreg", "linear", "mlp"] = option(
        "auto", "auto (logreg for classification, linear for per-token tasks), logreg (scikit-learn), linear or mlp")
    mlp_hidden: int = option(256, "hidden units of the MLP head")


class FeatureExtraction(Strategy):
    """Frozen encoder + trained head."""

    name: ClassVar[str] = "feature_extraction"
    supports: ClassVar[frozenset[str]] = frozenset({"classification", "token_classification", "question_answering"})
    kind: ClassVar[str] = "frozen"
    Config: ClassVar[type] = FeatureExtractionConfig

    @property
    def mlp_hidden(self) -> int:
        """Hidden units the head needs (0 = linear); the composition root builds the head with it."""
        return self.config.mlp_hidden if self.config.head == "mlp" else 0

    def check_task(self, task_cls: type) -> None:
        """Fail before any work when the ``head`` option cannot serve the task (per-token tasks: linear only)."""
        if task_cls.feature_kind == "tokens" and self.config.head in ("logreg", "mlp"):
            raise UserError(f"strategy '{self.name}' with task '{task_cls.name}' supports only a linear token head: "
                            f"set strategy.head to 'linear' or 'auto' (got head={self.config.head})")

    def check_source(self, model_ref: str) -> None:
        """A frozen text encoder must be installed; any other source is checked as a transformer."""
        if is_text_encoder(model_ref):
            get_entry(str(model_ref).strip()).resolve()  # one-line UserError when its package is missing
            return
        super().check_source(model_ref)

    def load_source(self, model_ref: str, train: Any, seq2seq: bool = False) -> LoadedModel:
        """A frozen text encoder (no tokenizer; ``LoadedModel.encoder`` maps texts to vectors) or a transformer."""
        if is_text_encoder(model_ref):
            return load_text_encoder(model_ref)
        return super().load_source(model_ref, train, seq2seq)

    def prepare(self, model: Any) -> Any:
        set_trainable(list(model.backbone.named_parameters()), False)
        model.backbone.eval()
        return model

    def param_groups(self, model: Any, learning_rate: float, head_learning_rate: float, weight_decay: float) -> list[dict]:
        return optimizer_groups([("head", list(model.head.named_parameters()))], {"head": head_learning_rate}, weight_decay)

    def fit_head(self, model: Any, features: np.ndarray, labels: np.ndarray, seed: int) -> bool:
        """Fit the head in closed form if configured so; False means "train it with the Trainer"."""
        if self.config.head not in ("auto", "logreg"):
            return False
        fit_logistic_head(model, features, labels, self.config.C, self.config.max_iter, seed)
        return True
