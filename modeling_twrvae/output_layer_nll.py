"""-log p(target) of each row through the output layer, with the (rows, vocabulary) work done in as few passes as
the arithmetic allows.

`F.cross_entropy(lm_head(features), targets)` costs, besides its three matrix products, a broadcast copy of the bias
into the (rows, vocabulary) output, a second buffer of that size for the log-softmax, a zero-filled gradient buffer,
the log-softmax backward (two reads and a write of that size) and a separate sum for the bias gradient. Here the
bias is added inside the product (oneDNN's linear, where PyTorch has it), the softmax overwrites the logits (the
target's log-probability taken from the row maxima), and the backward subtracts one at each target of those saved
probabilities and scales by each row's incoming gradient on the small (rows, hidden) side of the products instead of
the large one. Same values and gradients as the plain path, up to float rounding.

Under bf16 autocast on a CPU the same loss runs with autocast's precisions: the three products in bf16 (the weight
cast once a step, as autocast's own cast does) and the log-softmax in fp32, taken a few rows at a time so that the
fp32 copy of the logits stays in cache; the backward's softmax is computed in fp32 from the saved bf16 logits and
rounded once to bf16 (what autocast's backward casts its fp32 gradient to), and the bias gradient is one more column
of the weight's product. Autocast's plain path spent about a fifth of a bf16 step at the papers' sizes on the fp32
copies, zero fills, casts and log-softmax backward of (rows, vocabulary) buffers (`benchmarks/training_throughput.py`,
`docs/performance.md`).

`output_layer_logits_and_nll` does the same while also returning the logits of every row (what the model's
default `return_logits=True` gives): one matrix product for both, the loss's gradient formed in the buffer of its
saved log-probabilities, and the logits' own gradient (when the caller's loss uses them) added to it.

Used on CPUs in fp32 or under bf16 autocast, where it was measured; elsewhere the plain path runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _find_onednn_linear():
    """oneDNN's linear with the bias as a post-op (what inductor calls on x86 CPUs), if this PyTorch has it."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._linear_pointwise.default
    except (AttributeError, RuntimeError):
        return None


_ONEDNN_LINEAR = _find_onednn_linear()


def _onednn_linear(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor | None:
    """features @ weight.T (+ bias) by oneDNN for contiguous fp32 or bf16 `features`; None under `torch.compile`, and
    where it cannot run (then not tried again)."""
    global _ONEDNN_LINEAR
    if _ONEDNN_LINEAR is None or features.dtype not in (torch.float32, torch.bfloat16) or not features.is_contiguous():
        return None
    if torch.compiler.is_compiling():  # inductor lowers this op only for frozen (constant) weights; it picks its own
        return None
    try:
        return _ONEDNN_LINEAR(features, weight, bias, "none", [], "")
    except (NotImplementedError, RuntimeError):  # a build whose oneDNN lacks it for this CPU: BLAS from now on
        _ONEDNN_LINEAR = None
        return None


def _linear(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """features @ weight.T + bias, the bias added inside the product where oneDNN can (fp32, bf16)."""
    result = _onednn_linear(features, weight, bias)
    return torch.addmm(bias, features, weight.t()) if result is None else result


def _matmul(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """left @ right; in fp32 through oneDNN as `linear(left, right.T)` (right.T a view), a few percent faster than
    the BLAS `torch.mm` calls for the output layer's (rows, vocabulary) x (vocabulary, hidden) product on the AVX-512
    CPU measured; bf16 `torch.mm` is oneDNN already."""
    result = _onednn_linear(left, right.t(), None) if left.dtype == torch.float32 else None
    return left @ right if result is None else result


def _compute_weights(features, weight, bias):
    """(features, weight, bias) in the precision of the products: bf16 under autocast, else as given."""
    if features.dtype == torch.bfloat16 or torch.is_autocast_enabled("cpu"):
        return features.to(torch.bfloat16), weight.to(torch.bfloat16), bias.to(torch.bfloat16)
    return features, weight, bias


def _log_softmax_fp32(logits: torch.Tensor, keep_logits: bool) -> torch.Tensor:
    """fp32 log-softmax of `logits`, written over them when they are fp32 and not needed afterwards."""
    if logits.dtype != torch.float32:
        log_probs = logits.float()
        return torch.log_softmax(log_probs, dim=-1, out=log_probs)
    if keep_logits:
        return torch.log_softmax(logits, dim=-1)
    return torch.log_softmax(logits, dim=-1, out=logits)


def _softmax_and_target_log_probs(logits: torch.Tensor, targets: torch.LongTensor):
    """(softmax of fp32 `logits`, written over them; log p(target) of each row). The backward needs the
    probabilities, so they are what one pass leaves, rather than log-probabilities to exponentiate again. log p(t)
    = x_t - logsumexp(x) with logsumexp(x) = max(x) - log p(argmax): the largest probability is at least 1/vocabulary,
    so its log is as exact as the log-softmax's, however unlikely the target."""
    target_logits = logits.gather(1, targets.unsqueeze(1)).squeeze(1)
    top = logits.amax(dim=-1)  # (amax, not max: max's indices cost a slow pass of their own)
    probs = torch.softmax(logits, dim=-1, out=logits)
    return probs, (target_logits - top) + probs.amax(dim=-1).log()


def _target_log_probs_by_chunks(logits: torch.Tensor, targets: torch.LongTensor, rows: int = 64) -> torch.Tensor:
    """fp32 log-softmax of low-precision `logits` at `targets`, a few rows at a time: the fp32 copy of each chunk
    stays in cache instead of a (rows, vocabulary) fp32 buffer going through memory."""
    result = torch.empty(logits.shape[0], dtype=torch.float32, device=logits.device)
    for start in range(0, logits.shape[0], rows):
        chunk = torch.log_softmax(logits[start : start + rows].float(), dim=-1)
        result[start : start + rows] = chunk.gather(1, targets[start : start + rows].unsqueeze(1)).squeeze(1)
    return result


def _backward_products(grad, weight, features, row_scale, needs):
    """The output layer's gradients from d loss / d logits = grad * row_scale (row_scale: None, or (rows,) fp32 applied
    on the small side). The products run in `weight`'s precision; `grad` is fp32 or already in that precision."""
    compute = grad.to(weight.dtype)
    grad_features = grad_weight = grad_bias = None
    if needs[0]:
        grad_features = _matmul(compute, weight).float()
        if row_scale is not None:
            grad_features.mul_(row_scale.unsqueeze(1))
    scaled = features if row_scale is None else (features.float() * row_scale.unsqueeze(1)).to(weight.dtype)
    if needs[1] and needs[2] and weight.dtype != torch.float32 and row_scale is not None:
        # the bias gradient as one more column of the weight's product: a bf16 matrix-vector product over the
        # (rows, vocabulary) gradient costs a whole pass of its own
        both = compute.t() @ torch.cat([scaled, row_scale.to(weight.dtype).unsqueeze(1)], dim=1)
        return grad_features, both[:, :-1], both[:, -1]
    if needs[1]:
        grad_weight = compute.t() @ scaled
    if needs[2]:
        # row_scale is None only with the logits' own gradient, added to the fp32 probabilities
        grad_bias = grad.sum(0) if row_scale is None else compute.t() @ row_scale.to(compute.dtype)
    return grad_features, grad_weight, grad_bias


class _LinearNLL(torch.autograd.Function):
    @staticmethod
    def forward(ctx, features, weight, bias, targets):
        with torch.autocast("cpu", enabled=False):
            features_c, weight_c, bias_c = _compute_weights(features, weight, bias)
            logits = _linear(features_c, weight_c, bias_c)
            if logits.dtype == torch.float32:  # the probabilities overwrite the logits; the backward starts from them
                saved, target_log_probs = _softmax_and_target_log_probs(logits, targets)
            else:  # keep the bf16 logits, half the size; the backward takes their softmax straight to bf16
                saved, target_log_probs = logits, _target_log_probs_by_chunks(logits, targets)
        ctx.save_for_backward(features_c, weight_c, saved, targets, target_log_probs)
        ctx.dtypes = (features.dtype, weight.dtype, bias.dtype)
        ctx.spent = False
        return -target_log_probs

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_nll):
        if ctx.spent:  # the saved buffer became the gradient in the first backward
            raise RuntimeError(
                "Backward through the output layer's loss ran twice (retain_graph=True). The fused loss keeps no copy "
                "for a second backward; pass `return_logits=True` to the model for that."
            )
        ctx.spent = True
        features, weight, saved, targets, target_log_probs = ctx.saved_tensors
        # bf16: the softmax of the bf16 logits, computed in fp32 and rounded once to bf16 (what autocast's backward
        # casts the fp32 gradient to)
        probs = saved if saved.dtype == torch.float32 else torch.softmax(saved, dim=-1, out=saved)
        # d nll / d logits per unit gradient: softmax - onehot, the target's entry from its fp32 log-probability
        probs[torch.arange(targets.shape[0], device=targets.device), targets] = (target_log_probs.exp() - 1).to(
            probs.dtype
        )
        grads = _backward_products(probs, weight, features, grad_nll.float(), ctx.needs_input_grad)
        return (*_cast(grads, ctx.dtypes), None)


class _LinearLogitsNLL(torch.autograd.Function):
    """(logits of every row, -log p(target) of the rows `flat`) from one product; the backward needs no zero-filled
    (rows, vocabulary) buffer when the logits' gradient is absent (their usual case: the loss is the model's)."""

    @staticmethod
    def forward(ctx, features, weight, bias, flat, targets):
        ctx.set_materialize_grads(False)
        with torch.autocast("cpu", enabled=False):
            features_c, weight_c, bias_c = _compute_weights(features, weight, bias)
            logits = _linear(features_c, weight_c, bias_c)
            log_probs = _log_softmax_fp32(logits, keep_logits=True)
        ctx.save_for_backward(features_c, weight_c, bias_c, flat, targets)
        ctx.dtypes = (features.dtype, weight.dtype, bias.dtype)
        ctx.log_probs = log_probs  # an intermediate, turned into the gradient in place (not version-checked)
        return logits, -log_probs[flat, targets]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_logits, grad_nll):
        features, weight, bias, flat, targets = ctx.saved_tensors
        probs, ctx.log_probs = ctx.log_probs, None
        if probs is None:  # a second backward (retain_graph=True): the first turned the saved buffer into a gradient
            probs = _log_softmax_fp32(_linear(features, weight, bias), keep_logits=False)
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
            grads = _backward_products(probs, weight, features, rows, ctx.needs_input_grad)
        else:
            grad = probs.mul_(rows.unsqueeze(1)).add_(grad_logits)
            grads = _backward_products(grad, weight, features, None, ctx.needs_input_grad)
        return (*_cast(grads, ctx.dtypes), None, None)


def _cast(grads, dtypes):
    return tuple(None if grad is None else grad.to(dtype) for grad, dtype in zip(grads, dtypes, strict=True))


def _fusable(features: torch.Tensor, lm_head: torch.nn.Module) -> bool:
    if not (
        features.device.type == "cpu"
        and type(lm_head) is torch.nn.Linear  # not a wrapped or adapted layer (its own forward must run)
        and lm_head.bias is not None
        and lm_head.weight.dtype == lm_head.bias.dtype == torch.float32
    ):
        return False
    if torch.is_autocast_enabled("cpu"):
        return torch.get_autocast_dtype("cpu") == torch.bfloat16 and features.dtype in (torch.float32, torch.bfloat16)
    return features.dtype == torch.float32


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


def bag_of_words_nll(head, inputs: torch.Tensor, input_ids: torch.LongTensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """The bag-of-words loss of Zhao et al. (2017): -log of every predicted token (after `<bos>`, those of
    `loss_mask`) under one softmax that `head` computes from `inputs` (the decoded z, or [z; c]), summed per
    sequence. The log-softmax runs in fp32 at least, as the reconstruction's does."""
    log_probs = torch.log_softmax(at_least_fp32(head(inputs)), dim=-1)
    token_log_probs = log_probs.gather(1, input_ids[:, 1:])
    return -(token_log_probs * loss_mask[:, 1:].to(token_log_probs.dtype)).sum(1)


def bag_of_words_loss(
    model, inputs: torch.Tensor, input_ids: torch.LongTensor, loss_mask: torch.Tensor, reduction: str
) -> torch.Tensor | None:
    """The forward pass's `bow_loss`: `bag_of_words_nll` of `model.bow_head`, averaged over the batch unless
    `reduction="none"`; None when `config.bow_loss_weight` turns it off (the model then has no head)."""
    if model.config.bow_loss_weight <= 0:
        return None
    nll = bag_of_words_nll(model.bow_head, inputs, input_ids, loss_mask)
    return nll.mean() if reduction == "mean" else nll


__all__ = ["bag_of_words_loss", "bag_of_words_nll", "at_least_fp32", "output_layer_logits_and_nll", "output_layer_nll"]
