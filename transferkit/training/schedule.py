"""Learning-rate schedule: linear warmup, then linear decay to zero."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def linear_warmup_decay(optimizer: Optimizer, total_steps: int, warmup_fraction: float) -> LambdaLR:
    """``lr(t) = lr · t/w`` for ``t < w``, then ``lr · (T - t)/(T - w)``; w = warmup_fraction · T."""
    warmup = int(round(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return LambdaLR(optimizer, factor)
