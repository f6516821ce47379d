"""The diagonal Gaussian posterior, in the shape diffusers' `DiagonalGaussianDistribution` made familiar."""

from __future__ import annotations

import math

import torch


class DiagonalGaussianDistribution:
    """N(mean, diag(exp(logvar))) over the last dimension, batched over the leading ones.

    `kl()` is KL(self || N(0, I)) summed over the last dimension; `kl(other)` is KL(self || other).
    """

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor):
        if mean.shape != logvar.shape:
            raise ValueError(f"`mean` {tuple(mean.shape)} and `logvar` {tuple(logvar.shape)} must have one shape.")
        self.mean = mean
        self.logvar = logvar

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    @property
    def var(self) -> torch.Tensor:
        return torch.exp(self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        if generator is None:  # the same draws as randn(shape); and traceable by torch.compile with dynamic shapes
            noise = torch.randn_like(self.mean)
        else:
            noise = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.std * noise

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl_per_dimension(self) -> torch.Tensor:
        """KL(self || N(0, I)) of each dimension, not summed: the terms the timestep-wise regulariser averages."""
        return 0.5 * (self.mean.pow(2) + self.var - 1.0 - self.logvar)

    def kl(self, other: DiagonalGaussianDistribution | None = None) -> torch.Tensor:
        if other is None:
            return self.kl_per_dimension().sum(dim=-1)
        return 0.5 * torch.sum(
            (self.mean - other.mean).pow(2) / other.var + self.var / other.var - 1.0 - self.logvar + other.logvar,
            dim=-1,
        )

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """log density of `value` (broadcast against the parameters), summed over the last dimension."""
        return -0.5 * torch.sum(math.log(2 * math.pi) + self.logvar + (value - self.mean).pow(2) / self.var, dim=-1)

    def __repr__(self) -> str:
        return f"DiagonalGaussianDistribution(shape={tuple(self.mean.shape)})"


__all__ = ["DiagonalGaussianDistribution"]
