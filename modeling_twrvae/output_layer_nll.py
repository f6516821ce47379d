"""-log p(target) of each row through the output layer, with the (rows, vocabulary) work done in as few passes as
the arithmetic allows.

`F.cross_entropy(lm_head(features), targets)` costs, besides its three matrix products, a zero-filled (rows,
vocabulary) gradient buffer, the log-softmax backward (two reads and a write of that size) and a separate sum for the
bias gradient. Here the backward turns the saved log-probabilities into probabilities in place, subtracts one at each
target, and scales by each row's incoming gradient on the small (rows, hidden) side of the products instead of the
large one. At the papers' sizes on a 2-core CPU that removed about a tenth of a TWR-VAE training step
(`benchmarks/training_throughput.py`). Same values and gradients as the plain path, up to float rounding.

`output_layer_logits_and_nll` does the same while also returning the logits of every row (what the model's
default `return_logits=True` gives): one matrix product for both, the loss's gradient formed in the buffer of its
saved log-probabilities, and the logits' own gradient (when the caller's loss uses them) added to it.

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


class _LinearLogitsNLL(torch.autograd.Function):
    """(logits of every row, -log p(target) of the rows `flat`) from one product; the backward needs no zero-filled
    (rows, vocabulary) buffer when the logits' gradient is absent (their usual case: the loss is the model's)."""

    @staticmethod
    def forward(ctx, features, weight, bias, flat, targets):
        ctx.set_materialize_grads(False)
        logits = torch.addmm(bias, features, weight.t())
        log_probs = torch.log_softmax(logits, dim=-1)
        ctx.save_for_backward(features, weight, bias, flat, targets)
        ctx.log_probs = log_probs  # an intermediate, turned into the gradient in place (not version-checked)
        return logits, -log_probs[flat, targets]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_logits, grad_nll):
        features, weight, bias, flat, targets = ctx.saved_tensors
        probs, ctx.log_probs = ctx.log_probs, None
        if probs is None:  # a second backward (retain_graph=True): the first turned the saved buffer into a gradient
            probs = torch.log_softmax(torch.addmm(bias, features, weight.t()), dim=-1)
        if grad_nll is None and grad_logits is None:
            return None, None, None, None, None
        # d nll_r / d logits_r = softmax_r - onehot(target_r), weighted by each row's incoming gradient (0 for rows
        # that predict no counted token)
        rows = probs.new_zeros(probs.shape[0])
        if grad_nll is not None:
            rows.index_put_((flat,), grad_nll.to(probs.dtype))
        probs.exp_()
        probs[flat, targets] -= 1
        if grad_logits is None:  # scale on the small (rows, hidden) side of the products
            scaled_features = features * rows.unsqueeze(1)
            grad_features = (probs @ weight).mul_(rows.unsqueeze(1)) if ctx.needs_input_grad[0] else None
            grad_weight = probs.t() @ scaled_features if ctx.needs_input_grad[1] else None
            grad_bias = probs.t() @ rows if ctx.needs_input_grad[2] else None
        else:
            grad = probs.mul_(rows.unsqueeze(1)).add_(grad_logits)
            grad_features = grad @ weight if ctx.needs_input_grad[0] else None
            grad_weight = grad.t() @ features if ctx.needs_input_grad[1] else None
            grad_bias = grad.sum(0) if ctx.needs_input_grad[2] else None
        return grad_features, grad_weight, grad_bias, None, None


def _fusable(features: torch.Tensor, lm_head: torch.nn.Module) -> bool:
    return (
        features.device.type == "cpu"
        and type(lm_head) is torch.nn.Linear  # not a wrapped or adapted layer (its own forward must run)
        and lm_head.bias is not None
        and not torch.is_autocast_enabled("cpu")
        and features.dtype == lm_head.weight.dtype == torch.float32
    )


def at_least_fp32(values: torch.Tensor) -> torch.Tensor:
    """`values` in fp32 if they are in a lower precision (bf16, fp16 under autocast); fp64 stays fp64."""
    return values if values.dtype in (torch.float32, torch.float64) else values.float()


def output_layer_logits_and_nll(
    features: torch.Tensor, lm_head: torch.nn.Module, flat: torch.LongTensor, targets: torch.LongTensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """`lm_head(features)` of every row, and -log softmax of it at `targets` for the rows `flat` (fp32).

    Args:
        features: (rows, hidden_size), what the output layer reads.
        lm_head: the output layer.
        flat: (n,), distinct rows of `features` whose target counts.
        targets: (n,), the token each of those rows predicts.
    """
    if _fusable(features, lm_head):
        return _LinearLogitsNLL.apply(features, lm_head.weight, lm_head.bias, flat, targets)
    logits = lm_head(features)
    # fp32 log-softmax whatever the output layer's precision (bf16 under autocast)
    return logits, F.cross_entropy(at_least_fp32(logits.index_select(0, flat)), targets, reduction="none")


def output_layer_nll(features: torch.Tensor, lm_head: torch.nn.Linear, targets: torch.LongTensor) -> torch.Tensor:
    """-log softmax(lm_head(features))[target] of each row, in fp32 or higher (fp64 stays fp64).

    Args:
        features: (rows, hidden_size), what the output layer reads.
        lm_head: the output layer (with a bias).
        targets: (rows,), the token each row predicts.
    """
    if _fusable(features, lm_head):
        return _LinearNLL.apply(features, lm_head.weight, lm_head.bias, targets)
    return F.cross_entropy(at_least_fp32(lm_head(features)), targets, reduction="none")


__all__ = ["at_least_fp32", "output_layer_logits_and_nll", "output_layer_nll"]
