"""The single training loop and its pieces (schedule, checkpoints, batched inference, launched processes)."""

from transferkit.training.processes import is_main_process, use_cpu, wait_for_everyone
from transferkit.training.trainer import FitResult, Trainer, has_checkpoint, seed_everything

__all__ = ["FitResult", "Trainer", "has_checkpoint", "is_main_process", "seed_everything", "use_cpu",
           "wait_for_everyone"]
