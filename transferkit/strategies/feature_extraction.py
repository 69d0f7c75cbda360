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
from transferkit.core.contracts import Fitted, RunContext
from transferkit.core.errors import UserError
from transferkit.models import get_entry, is_text_encoder, load_text_encoder
from transferkit.models.loading import LoadedModel
from transferkit.modules.inference import run_ragged
from transferkit.strategies.common import LogisticHeadConfig, fit_logistic_head, optimizer_groups, set_trainable
from transferkit.strategies.neural import Built, NeuralStrategy

EVAL_BATCH = 1024
"""Rows per batch when the head alone scores cached eval features."""


@dataclass
class FeatureExtractionConfig(LogisticHeadConfig):
    head: Literal["auto", "logreg", "linear", "mlp"] = option(
        "auto", "auto (logreg for classification, linear for per-token tasks), logreg (scikit-learn), linear or mlp")
    mlp_hidden: int = option(256, "hidden units of the MLP head")


class FeatureExtraction(NeuralStrategy):
    """Frozen encoder + trained head."""

    name: ClassVar[str] = "feature_extraction"
    supports: ClassVar[frozenset[str]] = frozenset({"classification", "token_classification", "question_answering"})
    Config: ClassVar[type] = FeatureExtractionConfig

    def fit(self, ctx: RunContext) -> Fitted:
        """The encoder never changes: its features are computed once, then only the head is fitted."""
        built = self.build(ctx, self.source_model(ctx))
        if ctx.task.feature_kind == "tokens":
            fit = self.fit_on_token_states(ctx, built)
        elif ctx.task.feature_kind == "pooled":
            fit = self.fit_on_pooled(ctx, built)
        else:
            raise UserError(f"strategy '{self.name}' needs a task with encoder features; '{ctx.task.name}' has none")
        return self.finish(ctx, built, fit)

    def fit_on_pooled(self, ctx: RunContext, built: Built) -> Any:
        """``Z = encoder.encode(texts)`` through the embedding cache, then a closed-form or Trainer-fitted head.

        One path for every frozen text encoder (``core.contracts.TextEncoder``): a transformer's pooled states
        (``NeuralPredictor.text_encoder``) or a packaged sentence encoder such as use-multilingual.  Returns the
        Trainer's result, or None for the closed-form head."""
        predictor, model, splits = built.predictor, built.model, ctx.splits
        encoder = predictor.text_encoder(built.fingerprint)

        def encode(examples: Any) -> np.ndarray:
            return encoder.encode(examples.texts, examples.text_pairs)  # (n, dim) float32

        model.eval()
        key = encoder.cache_key()
        train_x, eval_x = ctx.cached(key, splits.train, encode), ctx.cached(key, splits.eval, encode)
        train_y = np.asarray(splits.train.labels)
        if self.fit_head(model, train_x, train_y, ctx.config.training.seed):
            return None
        rows = [{"features": x, "labels": int(y)} for x, y in zip(train_x, train_y, strict=True)]
        eval_rows = [{"features": x} for x in eval_x]
        batches = self.batch_source({"train": rows}, predictor.collator, ctx.config.training)
        return ctx.train(self, model, batches, lambda m: predictor.metrics_on(m, eval_rows, splits.eval, EVAL_BATCH))

    def fit_on_token_states(self, ctx: RunContext, built: Built) -> Any:
        """Per-token tasks: the frozen encoder's token states ``H = h_layer(x)`` (len_i, dim) of every window,
        computed once in memory; the Trainer then fits the token/span head ``W h_t + b`` on them for all epochs.

        Rows keep the original features (``input_ids`` for length grouping and for cutting padded outputs, ``_``
        metadata for decoding); ``TaskModel.forward`` sees ``features`` and skips the encoder."""
        predictor, model = built.predictor, built.model
        model.eval()

        def with_states(examples: Any) -> list[dict[str, Any]]:
            features = predictor.featurize(examples)
            states = run_ragged(model.hidden_states, features, predictor.collator, predictor.batch_size)
            return [{**feature, "features": state} for feature, state in zip(features, states, strict=True)]

        train_rows, eval_rows = with_states(ctx.splits.train), with_states(ctx.splits.eval)
        batches = self.batch_source({"train": train_rows}, predictor.collator, ctx.config.training)
        return ctx.train(self, model, batches, lambda m: predictor.metrics_on(m, eval_rows, ctx.splits.eval))

    @property
    def mlp_hidden(self) -> int:
        """Hidden units the head needs (0 = linear); ``NeuralStrategy.task_model`` builds the head with it."""
        return self.config.mlp_hidden if self.config.head == "mlp" else 0

    def check_task(self, task_cls: type) -> None:
        """Fail before any work when the ``head`` option cannot serve the task (per-token tasks: linear only)."""
        if task_cls.feature_kind == "tokens" and self.config.head in ("logreg", "mlp"):
            raise UserError(f"strategy '{self.name}' with task '{task_cls.name}' supports only a linear token head: "
                            f"set strategy.head to 'linear' or 'auto' (got head={self.config.head})")

    def check_model(self, model_ref: str) -> None:
        """A frozen text encoder must be installed; any other source is checked as a transformer."""
        if is_text_encoder(model_ref):
            get_entry(str(model_ref).strip()).resolve()  # one-line UserError when its package is missing
            return
        super().check_model(model_ref)

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
        """Fit the head on pooled ``features`` (n, dim) in closed form if configured so; False means "train it
        with the Trainer"."""
        if self.config.head not in ("auto", "logreg"):
            return False
        fit_logistic_head(model, features, labels, self.config.C, self.config.max_iter, seed)
        return True
