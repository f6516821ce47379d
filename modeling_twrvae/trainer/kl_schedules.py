"""KL weight schedules of the baselines: constant (TWR-VAE, HR-VAE), linear and sigmoid annealing (Bowman et al.,
2016) and cyclical annealing (Fu et al., 2019). Each maps an optimisation step to the weight of the KL term."""

from __future__ import annotations

import math
from dataclasses import dataclass

SCHEDULES = ("constant", "linear", "sigmoid", "cyclical")


@dataclass(frozen=True)
class KLSchedule:
    """The KL weight at each step.

    Args:
        name: `"constant"` (always `max_weight`); `"linear"` (`start_weight` to `max_weight` over `anneal_steps`,
            then flat);
            `"sigmoid"` (`max_weight / (1 + exp(-k (step - anneal_steps / 2)))`, with k = 10 / anneal_steps, so the
            weight is ~0.7% of the maximum at step 0, half at `anneal_steps / 2`, ~99.3% at `anneal_steps`);
            `"cyclical"` (`cycles` cycles over `total_steps`; in each, linear growth from `start_weight` to
            `max_weight` during the first `ratio` of the cycle, then flat at `max_weight`).
        max_weight: the weight after annealing.
        anneal_steps: the length of the warm-up of `"linear"` and `"sigmoid"`.
        total_steps: the length of training, which `"cyclical"` divides into cycles.
        cycles: number of cycles of `"cyclical"` (Fu et al. use 4).
        ratio: the share of each cycle spent increasing the weight (Fu et al.'s paper and README use 0.5; their
            PTB code, CYC:language_model/train_text_cyc_ptb.py:54-55,167-178, ramps over 4.5 of each 10 epochs, 0.45).
        start_weight: where `"linear"` starts (0 for Bowman et al.; the TWR-VAE authors' dialogue code starts at 0.1
            and adds 1 / (10 epochs of batches) per batch), or each cycle of `"cyclical"` (0 in Fu et al.'s paper,
            0.1 in their PTB code, which resets the weight to 0.1 at each cycle's first epoch).
    """

    name: str = "constant"
    max_weight: float = 1.0
    anneal_steps: int = 10000
    total_steps: int | None = None
    cycles: int = 4
    ratio: float = 0.5
    start_weight: float = 0.0

    def __post_init__(self):
        if self.name not in SCHEDULES:
            raise ValueError(f"`kl_schedule` must be one of {list(SCHEDULES)}, got {self.name!r}.")
        if self.max_weight < 0:
            raise ValueError(f"`kl_weight` must be >= 0, got {self.max_weight}.")
        if not 0.0 <= self.start_weight <= self.max_weight:
            raise ValueError(f"`kl_start_weight` must be in [0, kl_weight={self.max_weight}], got {self.start_weight}.")
        if self.start_weight and self.name not in ("linear", "cyclical"):
            raise ValueError(f"`kl_start_weight` applies to linear or cyclical annealing only, not {self.name!r}.")
        if self.name in ("linear", "sigmoid") and self.anneal_steps < 1:
            raise ValueError(f"`kl_anneal_steps` must be >= 1 for {self.name} annealing, got {self.anneal_steps}.")
        if self.name == "cyclical":
            if not self.total_steps or self.total_steps < 1:
                raise ValueError("cyclical annealing needs the number of training steps (`total_steps` >= 1).")
            if self.cycles < 1:
                raise ValueError(f"`kl_cycles` must be >= 1, got {self.cycles}.")
            if not 0.0 < self.ratio <= 1.0:
                raise ValueError(f"`kl_cycle_ratio` must be in (0, 1], got {self.ratio}.")

    def __call__(self, step: int) -> float:
        if self.name == "constant":
            return self.max_weight
        if self.name == "linear":
            progress = min(1.0, step / self.anneal_steps)
            return self.start_weight + (self.max_weight - self.start_weight) * progress
        if self.name == "sigmoid":
            slope = 10.0 / self.anneal_steps
            return self.max_weight / (1.0 + math.exp(-slope * (step - self.anneal_steps / 2)))
        period = self.total_steps / self.cycles
        position = (step % period) / period
        return self.start_weight + (self.max_weight - self.start_weight) * min(1.0, position / self.ratio)


__all__ = ["KLSchedule", "SCHEDULES"]
