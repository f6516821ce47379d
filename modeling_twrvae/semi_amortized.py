"""Semi-amortized inference (SA-VAE, Kim et al., 2018): the encoder's posterior refined by gradient steps on the ELBO.

Citations `SA:path:line` are the authors' code, harvardnlp/sa-vae at commit e5187a21.

The amortized posterior q_0 = N(mean_0, exp(logvar_0)) that the encoder gives is the starting point of K steps of
gradient descent with momentum on each sentence's negative ELBO, and the decoder reads a latent of the refined q_K.
When gradients are wanted, every step is differentiated (`torch.autograd.grad(..., create_graph=True)`), so the loss
of q_K trains the encoder through the steps, and the decoder both directly and through the steps: this is the exact
derivative that the authors' code approximates with finite-difference Hessian-vector products
(SA:optim_n2n.py:117-169). Without gradients (evaluation under `torch.no_grad()`), the steps run on
detached copies and the refined parameters come back detached.

Each step draws its own reparameterisation noise and, in training, its own dropout masks; autograd keeps them for
the backward pass through the step, which is what the authors get by storing each step's noise and reseeding the
dropout before replaying it (SA:optim_n2n.py:42,82-83). Each sentence is refined on its own objective, so its refined
posterior does not depend on the rest of its batch; see `refine_posterior` for how its step and clip reproduce the
authors' batch-mean ones.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import torch


def refine_posterior(
    mean: torch.Tensor,
    logvar: torch.Tensor,
    negative_elbo: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    steps: int,
    learning_rate: float = 1.0,
    momentum: float = 0.5,
    max_grad_norm: float = 5.0,
    batch_size: int = 32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean_K, logvar_K) after `steps` steps of gradient descent with momentum on each sentence's negative ELBO.

    Args:
        mean, logvar: (batch, latent_size), the amortized posterior's parameters, one row per sentence.
        negative_elbo: `(mean, logvar) -> (batch,)`, each sentence's -ELBO (rec + kl_weight * KL) under that
            posterior, with one fresh reparameterisation noise (and dropout masks, in training) per call, as the
            authors draw one per step (SA:optim_n2n.py:82-84). Row i of the result may depend on row
            i of the parameters only.
        steps: K, the number of gradient steps (the authors' 20).
        learning_rate: the step size on the authors' batch-mean loss (`--svi_lr1`, `--svi_lr2`, 1).
        momentum: m_k = momentum * m_{k-1} - g_k, m_0 = -g_0 (the authors' 0.5, SA:optim_n2n.py:105-109).
        max_grad_norm: the authors' clip of each of the two gradients over the whole batch (5; 0 clips nothing,
            SA:optim_n2n.py:94-96); here each sentence's gradient is clipped alone to its share, see below.
        batch_size: B, the batch size whose batch-mean step each sentence takes (the authors' 32).

    The authors minimise the batch mean of the sentences' -ELBO, so sentence i moves by `learning_rate / B` of its
    own gradient, and they clip each B x latent_size gradient matrix jointly. Here sentence i minimises
    `negative_elbo_i / batch_size`, its share of that mean in a full batch: the same step, whatever the size of the
    batch it is refined in. Its gradients of the mean and of the log-variance are clipped, each, to norm
    `max_grad_norm / sqrt(batch_size)` (clip coefficient `max_norm / (norm + 1e-6)` when below 1, as the authors'
    `clip_grad_norm`, SA:optim_n2n.py:55-70), which is where the joint clip binds for a batch of B sentences whose
    gradients have equal norms. The update is mean_{k+1} = mean_k + learning_rate * m_k, likewise the
    log-variance (SA:optim_n2n.py:110-112).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"`steps` must be an integer >= 0, got {steps!r}.")
    if mean.shape != logvar.shape or mean.dim() != 2:
        raise ValueError(
            f"`mean` {tuple(mean.shape)} and `logvar` {tuple(logvar.shape)} must both be (batch, latent_size)."
        )
    differentiable = torch.is_grad_enabled() and (mean.requires_grad or logvar.requires_grad)
    clip_norm = max_grad_norm / math.sqrt(batch_size)
    if not differentiable:
        mean, logvar = mean.detach(), logvar.detach()
    velocity = None
    with torch.enable_grad(), _twice_differentiable_rnns(mean.device, differentiable):
        for _ in range(steps):
            if not differentiable:
                mean, logvar = mean.detach().requires_grad_(True), logvar.detach().requires_grad_(True)
            loss = negative_elbo(mean, logvar)
            if loss.shape != mean.shape[:1]:
                raise ValueError(
                    f"`negative_elbo` must give one value per sentence, shape ({mean.shape[0]},), got "
                    f"{tuple(loss.shape)}."
                )
            gradients = torch.autograd.grad(loss.sum() / batch_size, (mean, logvar), create_graph=differentiable)
            if max_grad_norm > 0:
                gradients = tuple(clip_rows(gradient, clip_norm) for gradient in gradients)
            if velocity is None:
                velocity = tuple(-gradient for gradient in gradients)
            else:
                velocity = tuple(momentum * v - gradient for v, gradient in zip(velocity, gradients, strict=True))
            mean = mean + learning_rate * velocity[0]
            logvar = logvar + learning_rate * velocity[1]
    if not differentiable:
        mean, logvar = mean.detach(), logvar.detach()
    return mean, logvar


def clip_rows(gradient: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Each row scaled to norm at most `max_norm`, with the coefficient `max_norm / (norm + 1e-6)` of
    `torch.nn.utils.clip_grad_norm_` where it is below 1. Differentiable (where it clips, through the norm)."""
    norms = gradient.norm(dim=-1, keepdim=True)
    return gradient * (max_norm / (norms + 1e-6)).clamp(max=1.0)


@contextlib.contextmanager
def _twice_differentiable_rnns(device: torch.device, differentiable: bool):
    """cuDNN's RNN kernels have no double backward; with gradients through the steps, PyTorch's own kernels run."""
    if not differentiable or device.type != "cuda":
        yield
        return
    enabled = torch.backends.cudnn.enabled
    torch.backends.cudnn.enabled = False
    try:
        yield
    finally:
        torch.backends.cudnn.enabled = enabled


__all__ = ["clip_rows", "refine_posterior"]
