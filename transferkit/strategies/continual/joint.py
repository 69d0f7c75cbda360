"""``joint``: every stage's examples at once, the upper bound of continual learning (multi-task training on the
union, as the "multitask" reference of d'Autume et al. 2019 and LAMOL, Sun et al. 2020).

It sees no stream: one training over the stages' examples shuffled together (``training.epochs`` passes over all of
them, the same number of passes per example as a stream method), then every stage's test set.  ``R`` therefore has
only its last row: ACC is measured, BWT and FWT are not defined (null).
"""

from __future__ import annotations

from typing import ClassVar

from transferkit.core.contracts import Fitted, RunContext
from transferkit.strategies.continual.plan import ContinualStrategy, StreamFit, stream_of
from transferkit.strategies.continual.task_setting import stage_features, stage_metrics
from transferkit.strategies.finetune import FinetuneConfig


class Joint(ContinualStrategy):
    """All stages' training examples in one run (per-epoch evaluation on all stages' eval splits; in the task setting
    each example's loss and prediction over its own stage's classes)."""

    name: ClassVar[str] = "joint"
    Config: ClassVar[type] = FinetuneConfig

    def fit(self, ctx: RunContext) -> Fitted:
        stream = stream_of(ctx)
        built = self.build(ctx, self.source_model(ctx))
        stages = list(enumerate(stream.stages))  # ctx.splits' train and eval: the stages' examples, in this order
        features = [f for s, stage in stages for f in stage_features(built.predictor, stream, s, stage.train)]
        eval_features = [f for s, stage in stages for f in stage_features(built.predictor, stream, s, stage.eval)]
        evaluate = lambda model: stage_metrics(built.predictor, model, eval_features, ctx.splits.eval)  # noqa: E731
        fit = self.train(ctx, built, {"train": features}, evaluate)
        tests = [built.predictor.featurize(stage.test) for stage in stream.stages]
        rows = [None] * (len(stream.stages) - 1) + [self.accuracies(built, stream, tests, None)]
        record = StreamFit()
        record.add("all", fit)
        return self.finished(built, stream, rows, None, record)
