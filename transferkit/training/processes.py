"""The processes a launcher started (``accelerate launch``, ``torchrun``): their group, which one writes, a barrier.

One process (no launcher) is a group of one: it is the main process and ``wait_for_everyone`` returns at once.
"""

from __future__ import annotations

import os

import torch
from accelerate import PartialState
from accelerate.utils import parse_flag_from_env


def use_cpu() -> bool:
    """Whether the processes must form their group on the CPU (gloo).

    Accelerate forms a gloo group only when told to use the CPU (``--cpu``, ``ACCELERATE_USE_CPU``); on a machine
    without a GPU, the processes ``torchrun`` or ``accelerate launch --multi_gpu`` start would otherwise each train
    alone on all the data.  So several processes (``WORLD_SIZE`` > 1) without CUDA mean the CPU.
    """
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return parse_flag_from_env("ACCELERATE_USE_CPU") or (several and not torch.cuda.is_available())


def process_state() -> PartialState:
    """Accelerate's process state (a singleton: the first call forms the process group, NCCL or gloo)."""
    return PartialState(cpu=use_cpu())


def is_main_process() -> bool:
    """True in the one process that writes run files (rank 0; the only process without a launcher)."""
    return process_state().is_main_process


def wait_for_everyone() -> None:
    """Barrier: return when every process got here (at once for one process)."""
    process_state().wait_for_everyone()
