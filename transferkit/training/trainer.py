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
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
from tqdm.auto import tqdm

from transferkit.core.config import TRAINING_DEFAULTS, TrainingConfig, fill_unset
from transferkit.core.contracts import Callback, Objective, TrainState
from transferkit.core.machine import autocast, resolve_precision
from transferkit.data.sources import BatchSource
from transferkit.training.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint, trainable_state
from transferkit.training.processes import use_cpu
from transferkit.training.schedule import linear_warmup_decay

logger = logging.getLogger("transferkit.training")
LOG_EVERY = 10


@dataclass
class FitResult:
    """What happened during ``fit``: history (loss and eval entries), best step, step count."""

    history: list[dict[str, Any]]
    best_step: int | None
    steps: int


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Fit ``model`` with an objective on a batch source (``data.sources``: one dataset, zipped or mixed).

    Args:
        objective: supplies ``param_groups``, ``loss`` and ``callbacks`` (``core.contracts.Objective``: a neural
            strategy, or a stage of a method's plan).
        config: the optimisation settings; values left unset (None) take ``TRAINING_DEFAULTS`` (a run resolves
            them with its strategy's defaults first).
        checkpoint_dir: where resumable checkpoints go (None = no checkpoints).
        callbacks: extra callbacks besides the objective's own.
    """

    def __init__(self, objective: Objective, config: TrainingConfig, *, checkpoint_dir: str | None = None,
                 callbacks: Sequence[Callback] = ()) -> None:
        self.objective, self.config = objective, fill_unset(config, TRAINING_DEFAULTS)
        self.checkpoint_dir = checkpoint_dir
        self.callbacks = [*objective.callbacks(), *callbacks]
        # auto: bf16 where the CPU/GPU has it natively.  bf16 autocast is entered around each loss below (it needs
        # no loss scaling), so Accelerate's process-wide state stays "no" and runs of mixed precisions share a process.
        self.precision = resolve_precision(self.config.mixed_precision)
        # Under a launcher (DDP) the batch source is sharded (``shard`` below), so each process's step count is the
        # global one and the schedule is built on it: ``split_batches`` makes Accelerate step it once per optimizer
        # step, not once per process (no dataloader goes through Accelerate, so it changes nothing else).  Unused
        # parameters are the rule, not a bug (a pooler under mean pooling, one task head per multi-task step), and DDP
        # refuses them unless it looks for them.
        self.accelerator = Accelerator(mixed_precision="fp16" if self.precision == "fp16" else "no",
                                       log_with=self.config.log_with, rng_types=[], cpu=use_cpu(),
                                       dataloader_config=DataLoaderConfiguration(split_batches=True),
                                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])

    def fit(self, model: torch.nn.Module, batches: BatchSource,
            evaluate: Callable[[torch.nn.Module], dict[str, Any]] | None = None, resume: bool = False) -> FitResult:
        """Train on ``batches`` (a batch source); ``evaluate(model) -> metrics`` runs after every epoch
        and decides the best state, which is restored at the end."""
        cfg = self.config
        seed_everything(cfg.seed)
        batches.shard(self.accelerator.process_index, self.accelerator.num_processes)
        steps_per_epoch = math.ceil(batches.num_batches / cfg.gradient_accumulation_steps)
        total = cfg.max_steps or steps_per_epoch * cfg.epochs
        groups = self.objective.param_groups(model, cfg.learning_rate, cfg.head_learning_rate or cfg.learning_rate,
                                            cfg.weight_decay)
        # The fused kernel updates all parameters in one pass (CPU and CUDA); same maths as AdamW.
        fused = self.accelerator.device.type in ("cpu", "cuda")
        optimizer = torch.optim.AdamW(groups, fused=fused)
        scheduler = linear_warmup_decay(optimizer, total, cfg.warmup_fraction)
        state, best = TrainState(total_steps=total), None
        if resume:
            state, best = load_checkpoint(self.checkpoint_dir, model, optimizer, scheduler)
            batches.load_state_dict(state.sources)
            for callback in self.callbacks:
                callback.load_state_dict(state.callbacks.get(type(callback).__name__, {}))
            logger.info("resumed at epoch %d, batch %d, step %d", state.epoch, state.batch_in_epoch, state.step)
        model, optimizer, scheduler = self.accelerator.prepare(model, optimizer, scheduler)
        best = self._loop(model, batches, optimizer, scheduler, state, best, evaluate)
        unwrapped = self.accelerator.unwrap_model(model)
        for callback in self.callbacks:
            callback.on_fit_end(state, unwrapped)
        if best is not None:
            unwrapped.load_state_dict(best, strict=False)
        for tracker in self.accelerator.trackers:  # not end_training(): it destroys the process group later stages use
            tracker.finish()
        return FitResult(state.history, state.best_step, state.step)

    def _loop(self, model, batches, optimizer, scheduler, state: TrainState, best, evaluate):
        cfg, unwrapped = self.config, self.accelerator.unwrap_model(model)
        self._running = []
        for callback in self.callbacks:
            callback.on_fit_start(state, unwrapped)
        bar = tqdm(total=state.total_steps, initial=state.step, desc="train", unit="step", leave=False,
                   disable=not (cfg.progress and self.accelerator.is_main_process))
        while state.epoch < cfg.epochs and not state.should_stop and state.step < state.total_steps:
            batches.set_epoch(state.epoch)
            batches.start_batch = state.batch_in_epoch
            for callback in self.callbacks:
                callback.on_epoch_start(state, unwrapped)
            self._epoch(model, batches, optimizer, scheduler, state, best, bar)
            if state.step >= state.total_steps or state.batch_in_epoch >= batches.num_batches:
                best = self._end_epoch(unwrapped, optimizer, scheduler, state, best, evaluate, batches)
        bar.close()
        return best

    def _epoch(self, model, batches, optimizer, scheduler, state: TrainState, best, bar) -> None:
        accum = self.config.gradient_accumulation_steps
        model.train()
        unwrapped = self.accelerator.unwrap_model(model)
        view = model if unwrapped is model else _Wrapped(model, unwrapped)
        for batch in batches:
            batch = _to_device(batch, self.accelerator.device)
            state.batch_in_epoch += 1
            last = state.batch_in_epoch >= batches.num_batches
            boundary = state.batch_in_epoch % accum == 0 or last
            with self.accelerator.no_sync(model) if not boundary else nullcontext():
                with autocast(self.precision, self.accelerator.device.type):
                    losses = self.objective.loss(view, batch)
                self.accelerator.backward(losses.total / accum)
            self._running.append(float(losses.total.detach()))
            for callback in self.callbacks:
                callback.on_batch_end(state, self.accelerator.unwrap_model(model), losses)
            if boundary:
                self._optimizer_step(model, optimizer, scheduler, state, losses, bar, best, batches)
            if state.step >= state.total_steps or state.should_stop:
                return

    def _optimizer_step(self, model, optimizer, scheduler, state: TrainState, losses, bar, best, batches) -> None:
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
            entry = {"step": state.step, "epoch": state.epoch, "loss": loss, "lr": scheduler.get_last_lr()[0]}
            if len(losses.parts) > 1:  # e.g. task + domain: each part of the last step
                entry["parts"] = dict(losses.parts)
            state.history.append(entry)
            bar.set_postfix(loss=f"{loss:.4f}")
            if cfg.log_with:
                self.accelerator.log({"train/loss": loss}, step=state.step)
        for callback in self.callbacks:
            callback.on_step_end(state, self.accelerator.unwrap_model(model), losses)
        if self.checkpoint_dir and cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0:
            self._checkpoint(model, optimizer, scheduler, state, best, batches)

    def _end_epoch(self, model, optimizer, scheduler, state: TrainState, best, evaluate, batches):
        last = state.epoch + 1 >= self.config.epochs or state.step >= state.total_steps
        if evaluate is not None and (self.config.eval_every_epoch is not False or last):  # None = unresolved = true
            metrics = evaluate(model)
            best = self._track_best(model, optimizer, state, metrics, best)
            for callback in self.callbacks:
                callback.on_evaluate(state, model, metrics)
        state.epoch += 1
        state.batch_in_epoch = 0
        if self.checkpoint_dir:
            self._checkpoint(model, optimizer, scheduler, state, best, batches)
        return best

    def _track_best(self, model, optimizer, state: TrainState, metrics: dict[str, Any], best):
        cfg = self.config
        name = cfg.metric_for_best
        if name is None:
            raise ValueError("training.metric_for_best is unset: the composition root fills in the task's primary metric")
        if name not in metrics:
            raise ValueError(f"training.metric_for_best '{name}' is not among the eval metrics {sorted(metrics)}")
        value = float(metrics[name])
        sign = -1.0 if "loss" in name else 1.0
        improved = state.best_metric is None or sign * value > sign * state.best_metric
        scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        state.history.append({"step": state.step, "epoch": state.epoch, "eval": scalars})
        logger.info("epoch %d step %d: %s=%.4f%s", state.epoch + 1, state.step, name, value,
                    " (best)" if improved else "")
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

    def _checkpoint(self, model, optimizer, scheduler, state: TrainState, best, batches) -> None:
        state.sources = {**batches.state_dict(), "epoch": state.epoch, "start_batch": state.batch_in_epoch}
        state.callbacks = {type(callback).__name__: callback.state_dict() for callback in self.callbacks}
        if self.accelerator.is_main_process:
            save_checkpoint(self.checkpoint_dir, self.accelerator.unwrap_model(model), optimizer, scheduler, state, best)
        self.accelerator.wait_for_everyone()


class _Wrapped:
    """The model as an objective sees it when Accelerate wrapped it (DDP under a launcher): a call runs the wrapper's
    forward, so gradients are averaged across processes; every other attribute (``task``, ``auxiliary``, ...) is
    the model's own, which the wrapper does not expose."""

    def __init__(self, wrapper: torch.nn.Module, model: torch.nn.Module) -> None:
        self._wrapper, self._model = wrapper, model

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._wrapper(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def _to_device(batch: Any, device: torch.device) -> Any:
    """Tensors of a batch (or of ``{name: batch}``) on ``device``; other values unchanged."""
    if isinstance(batch, dict):
        return {key: _to_device(value, device) for key, value in batch.items()}
    return batch.to(device) if isinstance(batch, torch.Tensor) else batch


__all__ = ["FitResult", "Trainer", "has_checkpoint", "seed_everything"]
