"""The classical baseline: TF-IDF n-grams + logistic regression (no pretrained model).

``x = tfidf(text)`` with sublinear term frequency, ``p(y|x) = softmax(W x + b)``.
Saved without pickle: vocabulary as JSON, idf and weights as safetensors.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
from safetensors.numpy import load_file, save_file

from transferkit.core.config import option
from transferkit.core.contracts import Fitted, RunContext, TextExamples
from transferkit.core.errors import UserError
from transferkit.strategies.base import Strategy


@dataclass
class TfidfConfig:
    ngram_max: int = option(2, "use word n-grams of length 1..ngram_max")
    min_df: int = option(1, "ignore n-grams seen in fewer documents")
    max_features: int = option(200_000, "keep at most this many n-grams (by frequency)")
    sublinear_tf: bool = option(True, "use 1 + log(tf) instead of raw counts")
    C: float = option(10.0, "inverse L2 regularisation strength of the logistic regression")


def _documents(examples: TextExamples) -> list[str]:
    if examples.text_pairs is None:
        return examples.texts
    return [f"{a} [SEP] {b}" for a, b in zip(examples.texts, examples.text_pairs, strict=True)]


class TfidfPredictor:
    """A fitted TF-IDF + logistic-regression classifier."""

    def __init__(self, vectorizer: Any, classifier: Any, labels: list[str], config: TfidfConfig) -> None:
        self.vectorizer, self.classifier, self.labels, self.config = vectorizer, classifier, labels, config

    def check_inputs(self, examples: TextExamples, where: str) -> None:
        """Nothing to check: words outside the fitted vocabulary are simply not counted."""

    def predict(self, examples: TextExamples) -> np.ndarray:
        """Class probabilities (n, num_labels), as the classification task decodes them."""
        probabilities = self.classifier.predict_proba(self.vectorizer.transform(_documents(examples)))
        full = np.zeros((len(examples), len(self.labels)), dtype=np.float64)
        full[:, self.classifier.classes_] = probabilities  # classes absent from training stay 0
        return full

    def parameter_count(self) -> int:
        """Weights and biases of the logistic regression (everything that was fitted besides the idf)."""
        return int(self.classifier.coef_.size + self.classifier.intercept_.size)

    def save(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        vocabulary = {term: int(index) for term, index in self.vectorizer.vocabulary_.items()}
        meta = {"strategy": "tfidf", "labels": self.labels, "config": asdict(self.config), "vocabulary": vocabulary}
        with open(os.path.join(directory, "tfidf.json"), "w", encoding="utf-8") as handle:
            json.dump(meta, handle)
        arrays = {
            "idf": self.vectorizer.idf_.astype(np.float64),
            "coef": np.ascontiguousarray(self.classifier.coef_),
            "intercept": self.classifier.intercept_,
            "classes": self.classifier.classes_.astype(np.int64),
        }
        save_file(arrays, os.path.join(directory, "tfidf.safetensors"))

    @classmethod
    def load(cls, directory: str) -> TfidfPredictor:
        from sklearn.linear_model import LogisticRegression

        with open(os.path.join(directory, "tfidf.json"), encoding="utf-8") as handle:
            meta = json.load(handle)
        arrays = load_file(os.path.join(directory, "tfidf.safetensors"))
        config = TfidfConfig(**meta["config"])
        vectorizer = _vectorizer(config)
        vectorizer.vocabulary_ = meta["vocabulary"]
        vectorizer.idf_ = arrays["idf"]
        classifier = LogisticRegression()
        classifier.coef_, classifier.intercept_, classifier.classes_ = arrays["coef"], arrays["intercept"], arrays["classes"]
        return cls(vectorizer, classifier, meta["labels"], config)


def _vectorizer(config: TfidfConfig) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        ngram_range=(1, config.ngram_max), min_df=config.min_df, max_features=config.max_features,
        sublinear_tf=config.sublinear_tf, dtype=np.float64,
    )


class Tfidf(Strategy):
    """Bag-of-n-grams baseline: what you get with no transfer and no neural network."""

    name: ClassVar[str] = "tfidf"
    supports: ClassVar[frozenset[str]] = frozenset({"classification"})
    uses_source_model: ClassVar[bool] = False
    Config: ClassVar[type] = TfidfConfig

    def check(self, task_cls: type, config: Any) -> None:
        super().check(task_cls, config)
        if config.init_from:
            raise UserError(f"init_from {config.init_from}: strategy '{self.name}' trains no encoder to start from a run")

    def check_model(self, model_ref: str) -> None:
        """No pretrained model is read: ``model`` is ignored."""

    def fit(self, ctx: RunContext) -> Fitted:
        predictor = self.fit_examples(ctx.splits.train, ctx.task.labels, ctx.config.training.seed)
        size = predictor.parameter_count()
        return Fitted(predictor, None, (size, size), no_source_model="TF-IDF baseline")

    def fit_examples(self, examples: TextExamples, labels: list[str], seed: int) -> TfidfPredictor:
        """The vectorizer and the logistic regression fitted on ``examples``."""
        from sklearn.linear_model import LogisticRegression

        vectorizer = _vectorizer(self.config)
        features = vectorizer.fit_transform(_documents(examples))
        classifier = LogisticRegression(C=self.config.C, max_iter=2000, random_state=seed)
        classifier.fit(features, np.asarray(examples.labels))
        return TfidfPredictor(vectorizer, classifier, labels, self.config)
