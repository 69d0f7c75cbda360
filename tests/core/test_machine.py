"""CPU detection and the ``auto`` precision: read from /proc/cpuinfo, never assumed."""

from __future__ import annotations

import pytest
import torch

from transferkit.core import machine


@pytest.mark.parametrize(("flags", "expected"), [
    (["avx2", "avx512f", "avx512_bf16", "avx512_vnni"], "bf16"),
    (["avx2", "amx_bf16", "amx_tile"], "bf16"),
    (["avx2", "avx512f", "avx512_vnni"], "no"),  # AVX-512 without native bf16: fp32
    (["avx2"], "no"),
    ([], "no"),  # flags unreadable: the safe choice
])
def test_auto_precision_follows_the_cpu_flags(monkeypatch, flags, expected) -> None:
    monkeypatch.setattr(machine, "_flags", lambda: flags)
    assert machine.resolve_precision("auto", "cpu") == expected


@pytest.mark.parametrize("requested", ["no", "bf16", "fp16"])
def test_explicit_precision_is_kept(monkeypatch, requested) -> None:
    monkeypatch.setattr(machine, "_flags", lambda: [])
    assert machine.resolve_precision(requested, "cpu") == requested


def test_cpu_flags_names_the_vector_extensions(monkeypatch) -> None:
    monkeypatch.setattr(machine, "_flags", lambda: ["fpu", "avx2", "avx512_bf16", "sse4_2", "amx_tile"])
    assert machine.cpu_flags().endswith("cpus: avx2 avx512_bf16 amx_tile")


def test_autocast_runs_bf16_only_when_resolved_so() -> None:
    layer = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    with machine.autocast("bf16", "cpu"):
        assert layer(x).dtype == torch.bfloat16
    with machine.autocast("no", "cpu"):
        assert layer(x).dtype == torch.float32
