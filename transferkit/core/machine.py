"""What this CPU can do, for timings and precision choices: never assumed, read from the OS.

Vector-instruction support decides how fast a CPU runs matrix products: AVX2 only, AVX-512, AVX-512
with native bf16 (``avx512_bf16``) and int8 dot products (``avx512_vnni``), or AMX tiles.  Every timing
transferkit reports is printed beside :func:`cpu_flags`; ``training.mixed_precision: auto`` uses
:func:`native_bf16`.
"""

from __future__ import annotations

import os
import platform
from typing import Any

TIMING_FLAGS = ("avx2", "avx512", "amx")
"""Prefixes of the /proc/cpuinfo flags that matter for timings."""


def _flags() -> list[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return next(line for line in handle if line.startswith("flags")).split(":", 1)[1].split()
    except (OSError, StopIteration, IndexError):
        return []


def cpu_flags() -> str:
    """``"<n> cpus: avx2 avx512f ... avx512_bf16 avx512_vnni"`` (or the processor name when flags are unreadable)."""
    flags = _flags()
    if not flags:
        return f"{os.cpu_count()} cpus: {platform.processor() or 'flags unknown'}"
    return f"{os.cpu_count()} cpus: " + " ".join(f for f in flags if f.startswith(TIMING_FLAGS))


def native_bf16() -> bool:
    """True when the CPU multiplies bf16 natively (AVX-512 BF16 or AMX-BF16), so bf16 autocast can pay off."""
    flags = set(_flags())
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def resolve_precision(requested: str, device_type: str | None = None) -> str:
    """``training.mixed_precision`` as Accelerate takes it: ``auto`` becomes ``bf16`` where the device multiplies
    bf16 natively (a CPU with :func:`native_bf16`, a CUDA GPU that reports bf16 support) and ``no`` elsewhere;
    ``no`` / ``fp16`` / ``bf16`` are kept as asked."""
    if requested != "auto":
        return requested
    import torch

    device_type = device_type or ("cuda" if torch.cuda.is_available() else "cpu")
    if device_type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    return "bf16" if device_type == "cpu" and native_bf16() else "no"


def machine_record(requested_precision: str) -> dict[str, str]:
    """Where a run's timings were taken: the device (a GPU's name, or ``cpu``), the precision ``auto`` resolved to
    and :func:`cpu_flags`, recorded in ``metrics.json`` beside the seconds."""
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return {"device": device, "precision": resolve_precision(requested_precision), "cpu": cpu_flags()}


def autocast(precision: str, device_type: str) -> Any:
    """The autocast context of a resolved precision (``no`` = a disabled one: plain fp32) on ``device_type``."""
    import torch

    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return torch.autocast(device_type, dtype=dtype, enabled=precision in ("fp16", "bf16"))
