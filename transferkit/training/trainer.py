"""The one training loop, on Hugging Face Accelerate.  Nobody subclasses it.

What changes between methods lives elsewhere: the loss and parameter groups in the
strategy, the head and metrics in the task, optional behaviour in callbacks.  The loop
owns engineering only: AdamW, warmup + linear decay, clipping, accumulation,
length-grouped batches, per-epoch evaluation, early stopping, best-checkpoint restore and
checkpoints that resume to the same result as an uninterrupted run.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from transferkit.core.config import TrainingConfig
from transferkit.core.contracts import Callback, Strategy, TrainState
from transferkit.data.collate import LengthGroupedBatchSampler
from transferkit.training.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint, trainable_state
from transferkit.training.schedule import linear_warmup_decay

logger = logging.getLogger("transferkit.training")
LOG_EVERY = 10


@dataclass
class FitResult:
    """What happened during ``fit``: history (loss and eval entries), best metric, timing."""

    history: list[dict[str, Any]]
    best_metric: float | None
    best_step: int | None
    steps: int
    train_seconds: float
    examples_seen: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Fit ``model`` with ``strategy`` on pre-featurised examples.

    Args:
        strategy: supplies ``param_groups``, ``loss`` and ``callbacks``.
        config: the optimisation settings.
        collator: turns a list of feature dicts into a padded batch.
        checkpoint_dir: where resumable checkpoints go (None = no checkpoints).
        callbacks: extra callbacks besides the strategy's own.
    """

    def __init__(self, strategy: Strategy, config: TrainingConfig, collator: Callable, *,
                 checkpoint_dir: str | None = None, callbacks: Sequence[Callback] = ()) -> None:
        self.strategy, self.config, self.collator = strategy, config, collator
        self.checkpoint_dir = checkpoint_dir
        self.callbacks = [*strategy.callbacks(), *callbacks]
        self.accelerator = Accelerator(mixed_precision=config.mixed_precision, log_with=config.log_with, rng_types=[])

    def fit(self, model: torch.nn.Module, train_features: list[dict[str, Any]],
            evaluate: Callable[[torch.nn.Module], dict[str, Any]] | None = None, resume: bool = False) -> FitResult:
        """Train; ``evaluate(model) -> metrics`` runs after every epoch (and decides the best state)."""
        cfg = self.config
        seed_everything(cfg.seed)
        sampler = LengthGroupedBatchSampler(
            [len(f.get("input_ids", (0,))) for f in train_features], cfg.batch_size, cfg.seed,
            group_by_length=cfg.group_by_length,
        )
        # A private generator: creating a DataLoader iterator must not consume the global RNG,
        # or dropout after a mid-epoch resume would differ from the uninterrupted run.
        loader = DataLoader(train_features, batch_sampler=sampler, collate_fn=self.collator,
                            generator=torch.Generator())
        steps_per_epoch = math.ceil(len(sampler) / cfg.gradient_accumulation_steps)
        total = cfg.max_steps or steps_per_epoch * cfg.epochs
        groups = self.strategy.param_groups(model, cfg.learning_rate, cfg.head_learning_rate or cfg.learning_rate,
                                            cfg.weight_decay)
        # The fused kernel updates all parameters in one pass (CPU and CUDA); same maths as AdamW.
        fused = self.accelerator.device.type in ("cpu", "cuda")
        optimizer = torch.optim.AdamW(groups, fused=fused)
        scheduler = linear_warmup_decay(optimizer, total, cfg.warmup_fraction)
        state, best = TrainState(total_steps=total), None
        if resume:
            state, best = load_checkpoint(self.checkpoint_dir, model, optimizer, scheduler)
            logger.info("resumed at epoch %d, batch %d, step %d", state.epoch, state.batch_in_epoch, state.step)
        model, optimizer, scheduler = self.accelerator.prepare(model, optimizer, scheduler)
        if self.accelerator.num_processes > 1:
            loader = self.accelerator.prepare(loader)
        started = time.perf_counter()
        best = self._loop(model, loader, sampler, optimizer, scheduler, state, best, evaluate)
        unwrapped = self.accelerator.unwrap_model(model)
        if best is not None:
            unwrapped.load_state_dict(best, strict=False)
        self.accelerator.end_training()
        return FitResult(state.history, state.best_metric, state.best_step, state.step,
                         time.perf_counter() - started, examples_seen=self._examples_seen)

    def _loop(self, model, loader, sampler, optimizer, scheduler, state: TrainState, best, evaluate):
        cfg, unwrapped = self.config, self.accelerator.unwrap_model(model)
        self._examples_seen, self._running = 0, []
        for callback in self.callbacks:
            callback.on_fit_start(state, unwrapped)
        bar = tqdm(total=state.total_steps, initial=state.step, desc="train", unit="step", leave=False,
                   disable=not (cfg.progress and self.accelerator.is_main_process))
        while state.epoch < cfg.epochs and not state.should_stop and state.step < state.total_steps:
            sampler.set_epoch(state.epoch)
            sampler.start_batch = state.batch_in_epoch * self.accelerator.num_processes
            for callback in self.callbacks:
                callback.on_epoch_start(state, unwrapped)
            self._epoch(model, loader, len(sampler) + sampler.start_batch, optimizer, scheduler, state, best, bar)
            if state.step >= state.total_steps or state.batch_in_epoch * self.accelerator.num_processes >= len(sampler) + sampler.start_batch:
                best = self._end_epoch(unwrapped, optimizer, scheduler, state, best, evaluate)
        bar.close()
        return best

    def _epoch(self, model, loader, batches_in_epoch: int, optimizer, scheduler, state: TrainState, best, bar) -> None:
        accum = self.config.gradient_accumulation_steps
        model.train()
        for batch in loader:
            batch = {k: v.to(self.accelerator.device) for k, v in batch.items()}
            state.batch_in_epoch += 1
            last = state.batch_in_epoch * self.accelerator.num_processes >= batches_in_epoch
            boundary = state.batch_in_epoch % accum == 0 or last
            with self.accelerator.no_sync(model) if not boundary else nullcontext():
                losses = self.strategy.loss(model, batch)
                self.accelerator.backward(losses.total / accum)
            self._examples_seen += len(batch["labels"]) if "labels" in batch else 0
            self._running.append(float(losses.total.detach()))
            if boundary:
                self._optimizer_step(model, optimizer, scheduler, state, losses, bar, best)
            if state.step >= state.total_steps or state.should_stop:
                return

    def _optimizer_step(self, model, optimizer, scheduler, state: TrainState, losses, bar, best) -> None:
        cfg = self.config
        if cfg.max_grad_norm is not None:
            self.accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state.step += 1
        bar.update(1)
        if state.step % LOG_EVERY == 0 or state.step == state.total_steps:
            loss = float(np.mean(self._running))
            self._running = []
            state.history.append({"step": state.step, "epoch": state.epoch, "loss": loss, "lr": scheduler.get_last_lr()[0]})
            bar.set_postfix(loss=f"{loss:.4f}")
            if cfg.log_with:
                self.accelerator.log({"train/loss": loss}, step=state.step)
        for callback in self.callbacks:
            callback.on_step_end(state, self.accelerator.unwrap_model(model), losses)
        if self.checkpoint_dir and cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0:
            self._checkpoint(model, optimizer, scheduler, state, best)

    def _end_epoch(self, model, optimizer, scheduler, state: TrainState, best, evaluate):
        last = state.epoch + 1 >= self.config.epochs or state.step >= state.total_steps
        if evaluate is not None and (self.config.eval_every_epoch or last):
            metrics = evaluate(model)
            best = self._track_best(model, optimizer, state, metrics, best)
            for callback in self.callbacks:
                callback.on_evaluate(state, model, metrics)
        state.epoch += 1
        state.batch_in_epoch = 0
        if self.checkpoint_dir:
            self._checkpoint(model, optimizer, scheduler, state, best)
        return best

    def _track_best(self, model, optimizer, state: TrainState, metrics: dict[str, Any], best):
        cfg = self.config
        name = cfg.metric_for_best or "accuracy"  # the composition root fills in the task's own metric
        if name not in metrics:
            raise ValueError(f"training.metric_for_best '{name}' is not among the eval metrics {sorted(metrics)}")
        value = float(metrics[name])
        sign = -1.0 if "loss" in name else 1.0
        improved = state.best_metric is None or sign * value > sign * state.best_metric
        scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        state.history.append({"step": state.step, "epoch": state.epoch, "eval": scalars})
        shown = {k: scalars[k] for k in dict.fromkeys((name, "accuracy", "macro_f1", "f1")) if k in scalars}
        logger.info("epoch %d step %d: %s%s", state.epoch + 1, state.step,
                    " ".join(f"{k}={v:.4f}" for k, v in shown.items()), " (best)" if improved else "")
        if cfg.log_with:
            self.accelerator.log({f"eval/{k}": v for k, v in scalars.items()}, step=state.step)
        if improved:
            state.best_metric, state.best_step, state.evals_without_improvement = value, state.step, 0
            return trainable_state(model, optimizer)
        state.evals_without_improvement += 1
        patience = cfg.early_stopping_patience
        if patience is not None and state.evals_without_improvement >= patience:
            logger.info("early stopping: %d evals without improvement", state.evals_without_improvement)
            state.should_stop = True
        return best

    def _checkpoint(self, model, optimizer, scheduler, state: TrainState, best) -> None:
        if self.accelerator.is_main_process:
            save_checkpoint(self.checkpoint_dir, self.accelerator.unwrap_model(model), optimizer, scheduler, state, best)
        self.accelerator.wait_for_everyone()


__all__ = ["FitResult", "Trainer", "has_checkpoint", "seed_everything"]
