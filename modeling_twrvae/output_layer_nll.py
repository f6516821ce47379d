"""-log p(target) of each row through the output layer, with the (rows, vocabulary) work done in as few passes as
the arithmetic allows.

`F.cross_entropy(lm_head(features), targets)` costs, besides its three matrix products, a zero-filled (rows,
vocabulary) gradient buffer, the log-softmax backward (two reads and a write of that size) and a separate sum for the
bias gradient. Here the backward turns the saved log-probabilities into probabilities in place, subtracts one at each
target, and scales by each row's incoming gradient on the small (rows, hidden) side of the products instead of the
large one. At the papers' sizes on a 2-core CPU that removed about a tenth of a TWR-VAE training step
(`benchmarks/training_throughput.py`). Same values and gradients as the plain path, up to float rounding.

Used on CPUs outside autocast, where it was measured; elsewhere the plain path runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class _LinearNLL(torch.autograd.Function):
    @staticmethod
    def forward(ctx, features, weight, bias, targets):
        log_probs = torch.log_softmax(torch.addmm(bias, features, weight.t()), dim=-1)
        ctx.save_for_backward(features, weight, log_probs, targets)
        ctx.spent = False
        return -log_probs.gather(1, targets.unsqueeze(1)).squeeze(1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_nll):
        if ctx.spent:  # the saved log-probabilities became the gradient in the first backward
            raise RuntimeError(
                "Backward through the output layer's loss ran twice (retain_graph=True). The fused loss keeps no copy "
                "for a second backward; pass `return_logits=True` to the model for that."
            )
        ctx.spent = True
        features, weight, probs, targets = ctx.saved_tensors
        probs.exp_()
        probs[torch.arange(targets.shape[0], device=targets.device), targets] -= 1  # d nll / d logits, per unit grad
        grad_nll = grad_nll.to(probs.dtype)
        grad_features = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_features = (probs @ weight).mul_(grad_nll.unsqueeze(1))
        if ctx.needs_input_grad[1]:
            grad_weight = probs.t() @ (features * grad_nll.unsqueeze(1))
        if ctx.needs_input_grad[2]:
            grad_bias = probs.t() @ grad_nll
        return grad_features, grad_weight, grad_bias, None


def output_layer_nll(features: torch.Tensor, lm_head: torch.nn.Linear, targets: torch.LongTensor) -> torch.Tensor:
    """-log softmax(lm_head(features))[target] of each row, in fp32 whatever the output layer's precision.

    Args:
        features: (rows, hidden_size), what the output layer reads.
        lm_head: the output layer (with a bias).
        targets: (rows,), the token each row predicts.
    """
    fused = (
        features.device.type == "cpu"
        and lm_head.bias is not None
        and not torch.is_autocast_enabled("cpu")
        and features.dtype == lm_head.weight.dtype == torch.float32
    )
    if fused:
        return _LinearNLL.apply(features, lm_head.weight, lm_head.bias, targets)
    return F.cross_entropy(lm_head(features).float(), targets, reduction="none")


__all__ = ["output_layer_nll"]
