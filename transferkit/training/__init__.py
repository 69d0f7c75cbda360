"""The single training loop and its pieces (schedule, checkpoints, batched inference)."""

from transferkit.training.trainer import FitResult, Trainer, has_checkpoint, seed_everything

__all__ = ["FitResult", "Trainer", "has_checkpoint", "seed_everything"]
