"""Dropout whose mask is drawn from random bits on CPUs.

`nn.Dropout` draws its CPU mask with `bernoulli_`, which fills a tensor several times slower than drawing random
words: at the papers' sizes the two embedding dropouts' masks took about 7% of a TWR-VAE training step on a 2-core
CPU (`benchmarks/training_throughput.py`). Here each element keeps when a uniform 16-bit draw (a quarter of one
64-bit word from the default generator) clears the threshold for p, so one generator call serves four elements.
That is a Bernoulli(1 - p) keep mask whose probability is p rounded to a multiple of 1/65536 (exact for 0.5; within
8e-6 of any p), scaled by 1 / (1 - p) as `nn.Dropout` does; the model is unchanged, only which random numbers are
drawn differs. On other devices, where `nn.Dropout` is one fused kernel, it is used as is.
"""

from __future__ import annotations

import torch
from torch import nn

_LEVELS = 1 << 16  # values of one int16 draw


def keep_mask(input: torch.Tensor, p: float) -> torch.Tensor:
    """1 / (1 - p) where an element is kept (probability 1 - p, to within 1 / 65536), 0 elsewhere; `input`'s shape
    and dtype. The draws come from the default generator, so `torch.manual_seed` fixes them."""
    n = input.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=input.device).random_(-(2**63), None)
    draws = words.view(torch.int16)[:n].view(input.shape)  # uniform over [-32768, 32767]
    keep = torch.empty_like(input)
    torch.ge(draws, round(p * _LEVELS) - _LEVELS // 2, out=keep)
    return keep.mul_(1.0 / (1.0 - p))


class Dropout(nn.Dropout):
    """`nn.Dropout` (same arguments, same behaviour in eval mode and on GPUs) with a faster mask on CPUs."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or input.device.type != "cpu" or self.inplace:
            return super().forward(input)
        if self.p == 1:
            return input * 0
        return input * keep_mask(input, self.p)


__all__ = ["Dropout", "keep_mask"]
