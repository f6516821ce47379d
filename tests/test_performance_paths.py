"""The fast paths give what the plain ones give: losses without logits, the fused optimiser, the IW-NLL shortcuts."""

from types import SimpleNamespace

import pytest
import torch

from modeling_twrvae.trainer.precision import cpu_supports_bf16
from modeling_twrvae.trainer.steps import build_optimizer

from helpers import informative, tiny_model


@pytest.fixture(scope="module")
def batch(tokenizer, ptb_lines):
    return tokenizer(sorted(ptb_lines[:30], key=len)[::6], padding=True, return_tensors="pt")


@pytest.mark.parametrize("preset", ["twr-vae", "hr-vae", "vae-lstm", "twr-vae-mean"])
def test_losses_and_gradients_do_not_depend_on_return_logits(preset, tokenizer, batch):
    results = {}
    for return_logits in (True, False):
        model = tiny_model(preset, len(tokenizer)).eval()
        output = model(**batch, sample_posterior=False, kl_weight=0.5, return_logits=return_logits)
        output.loss.backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters()}
        results[return_logits] = (output, grads)
    (full, full_grads), (lean, lean_grads) = results[True], results[False]
    assert full.logits.shape == (*batch["input_ids"].shape, len(tokenizer)) and lean.logits is None
    for name in ("loss", "reconstruction_loss", "kl_regularizer", "kl_decoded"):
        torch.testing.assert_close(getattr(lean, name), getattr(full, name), rtol=1e-5, atol=1e-5)
    for name, grad in full_grads.items():
        torch.testing.assert_close(lean_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    assert lean_grads["decoder.lm_head.weight"].abs().sum() > 0


def _step(model, batch, extra=None, **kwargs):
    model.zero_grad(set_to_none=True)
    output = model(**batch, sample_posterior=False, kl_weight=0.5, **kwargs)
    loss = output.loss if extra is None else output.loss + extra(output.logits)
    loss.backward()
    return output, {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("preset", ["twr-vae", "hr-vae"])
@pytest.mark.parametrize("extra", [None, lambda logits: logits.square().mean()], ids=["loss", "loss+logits"])
def test_default_forward_gives_the_explicit_logits_paths_loss_logits_and_gradients(preset, extra, tokenizer, batch,
                                                                                    monkeypatch):  # fmt: skip
    """The default (`return_logits=True`, on CPU one fused product for the logits and the loss) against the plain
    `lm_head` + cross-entropy of the same logits; also when the caller's loss uses the logits."""
    import modeling_twrvae.output_layer_nll as nll

    model = tiny_model(preset, len(tokenizer)).eval()
    default, default_grads = _step(model, batch, extra)
    assert "LinearLogitsNLL" in default.logits.grad_fn.next_functions[0][0].name()  # under the (batch, length) view
    monkeypatch.setattr(nll, "_fusable", lambda *args: False)
    plain, plain_grads = _step(model, batch, extra)
    assert "LinearLogitsNLL" not in plain.logits.grad_fn.next_functions[0][0].name()
    torch.testing.assert_close(default.logits, plain.logits)
    for name in ("loss", "reconstruction_loss", "kl_regularizer", "kl_decoded"):
        torch.testing.assert_close(getattr(default, name), getattr(plain, name), rtol=1e-5, atol=1e-5)
    for name, grad in plain_grads.items():
        torch.testing.assert_close(default_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.skipif(
    not cpu_supports_bf16(), reason="this CPU has no bf16 kernels (AVX512-BF16 or AMX): train.py trains in fp32 on it"
)
@pytest.mark.parametrize("return_logits", [False, True])
def test_bf16_autocast_training_loss_matches_autocasts_plain_output_layer(return_logits, tokenizer, batch,
                                                                         monkeypatch):  # fmt: skip
    """What `--mixed_precision bf16` runs on a CPU (the fused output-layer loss under autocast) against autocast's
    own `lm_head` + fp32 cross-entropy: the same loss and gradients, up to bf16 rounding."""
    import modeling_twrvae.output_layer_nll as nll

    model = tiny_model("twr-vae", len(tokenizer)).eval()
    results = []
    for fusable in (nll._fusable, lambda *args: False):
        monkeypatch.setattr(nll, "_fusable", fusable)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            output, grads = _step(model, batch, return_logits=return_logits)
        results.append((output, grads))
    (fused, fused_grads), (plain, plain_grads) = results
    assert fused.loss.dtype == torch.float32
    torch.testing.assert_close(fused.reconstruction_loss, plain.reconstruction_loss, rtol=2e-3, atol=1e-2)
    for name, grad in plain_grads.items():
        assert fused_grads[name].dtype == torch.float32
        scale = grad.abs().max().item()
        torch.testing.assert_close(fused_grads[name], grad, rtol=3e-2, atol=3e-2 * scale, msg=name)


def test_default_forward_allows_a_second_backward(tokenizer, batch):
    model = tiny_model("twr-vae", len(tokenizer)).eval()
    output = model(**batch, sample_posterior=False)
    output.loss.backward(retain_graph=True)
    first = model.decoder.lm_head.weight.grad.clone()
    output.loss.backward()
    torch.testing.assert_close(model.decoder.lm_head.weight.grad, 2 * first)


def test_without_logits_each_sequence_keeps_its_own_loss_in_a_mixed_length_batch(tokenizer, ptb_lines):
    model = tiny_model("twr-vae", len(tokenizer)).eval()
    texts = [ptb_lines[3], "the market fell", "n"]
    together = model(**tokenizer(texts, padding=True, return_tensors="pt"), reduction="none", return_logits=False)
    for i, text in enumerate(texts):
        alone = model(**tokenizer([text], return_tensors="pt"), reduction="none", return_logits=False)
        torch.testing.assert_close(together.loss[i], alone.loss[0], rtol=1e-5, atol=1e-5)


def test_training_uses_the_fused_adam_on_cpu(tokenizer):
    model = tiny_model("twr-vae", len(tokenizer))
    args = SimpleNamespace(learning_rate=1e-3, adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-6, weight_decay=1e-5)
    optimizer = build_optimizer(model, args, torch.device("cpu"))
    assert optimizer.defaults["fused"] is True
    reference = torch.optim.Adam(
        tiny_model("twr-vae", len(tokenizer)).parameters(), lr=1e-3, eps=1e-6, weight_decay=1e-5, foreach=False
    )
    # the same update as the per-tensor loop
    for opt, params in ((optimizer, list(model.parameters())), (reference, reference.param_groups[0]["params"])):
        for p in params:
            p.grad = torch.ones_like(p)
        opt.step()
    for fused, plain in zip(model.parameters(), reference.param_groups[0]["params"], strict=True):
        torch.testing.assert_close(fused, plain)


@pytest.mark.parametrize("preset, cell", [("twr-vae", "lstm"), ("hr-vae", "lstm"), ("hr-vae-inputless", "lstm"),
                                          ("twr-vae", "gru")])  # fmt: skip
def test_iw_nll_decoder_shares_each_sentence_between_its_samples(preset, cell, tokenizer, ptb_lines):
    from modeling_twrvae.metrics.likelihood import _can_share_sentences, decoder_nll

    model = informative(tiny_model(preset, len(tokenizer), seed=4, rnn_type=cell, num_layers=2))
    batch = tokenizer(ptb_lines[:3], padding=True, return_tensors="pt")
    samples = 5
    z = model.sample_prior(3 * samples, generator=torch.Generator().manual_seed(1))
    assert _can_share_sentences(model, batch["input_ids"]) == (cell == "lstm")
    with torch.no_grad():
        repeated = {name: value.repeat_interleave(samples, dim=0) for name, value in batch.items()}
        expected = model(**repeated, latents=z, reduction="none").reconstruction_loss
        shared = decoder_nll(model, batch["input_ids"], batch["attention_mask"], z.view(3, samples, -1))
    torch.testing.assert_close(shared, expected, rtol=1e-5, atol=1e-4)


def test_bf16_output_layer_stays_close_to_exact(tokenizer, ptb_lines):
    from modeling_twrvae.metrics.likelihood import likelihoods

    model = informative(tiny_model("twr-vae", len(tokenizer), seed=5))
    ids = tokenizer(ptb_lines[:6])["input_ids"]
    exact = likelihoods(model, ids, iw_samples=20, seed=2, progress=False)
    low = likelihoods(model, ids, iw_samples=20, seed=2, progress=False, output_layer_dtype=torch.bfloat16)
    deviation = (low.iw_nll - exact.iw_nll).abs()
    assert deviation.max() < 0.05 and deviation.max() > 0  # rounded, so not bit-equal, but close


def test_cpu_dropout_keeps_each_element_with_probability_one_minus_p_and_rescales():
    from modeling_twrvae.dropout import Dropout

    layer = Dropout(0.3)
    inputs = torch.rand(400, 500) + 0.5
    inputs.requires_grad_()
    torch.manual_seed(0)
    output = layer(inputs)
    kept = output != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.005
    torch.testing.assert_close(output[kept], inputs[kept] / 0.7)
    output.sum().backward()  # the gradient passes the kept elements, scaled, and nothing else
    torch.testing.assert_close(inputs.grad, kept.float() / 0.7)
    assert torch.equal(layer.eval()(inputs), inputs)
    torch.manual_seed(0)
    assert torch.equal(Dropout(0.3)(inputs.detach()) != 0, kept)  # seeded: the same mask again


@pytest.mark.parametrize("p", [0.3, 0.5])
def test_cpu_dropout_mask_is_unbiased_in_every_lane_of_its_random_words(p):
    """Four elements share one 64-bit draw: each lane (position mod 4) keeps with probability 1 - p, neighbours
    independently, also for a size that leaves a partial word."""
    from modeling_twrvae.dropout import keep_mask

    torch.manual_seed(1)
    keep = keep_mask(torch.ones(1001, 999), p).flatten() != 0
    for lane in range(4):
        assert abs(keep[lane::4].float().mean().item() - (1 - p)) < 0.005, lane
    both = (keep[:-1] & keep[1:]).float().mean().item()
    assert abs(both - (1 - p) ** 2) < 0.005


def test_twr_vae_models_use_the_cpu_dropout(tokenizer):
    from modeling_twrvae.dropout import Dropout

    model = tiny_model("twr-vae", len(tokenizer))
    assert isinstance(model.encoder.dropout, Dropout) and isinstance(model.decoder.dropout, Dropout)


@pytest.mark.parametrize("mode, layers, batch", [("LSTM", 1, 1), ("LSTM", 2, 3), ("GRU", 1, 2), ("GRU", 2, 1)])
def test_one_token_cell_step_equals_the_module(mode, layers, batch):
    from modeling_twrvae.recurrence import run_rnn

    torch.manual_seed(0)
    rnn = getattr(torch.nn, mode)(6, 5, num_layers=layers, batch_first=True, dropout=0.2).eval()
    inputs = torch.randn(batch, 1, 6)
    state = torch.randn(layers, batch, 5)
    state = (state, torch.randn(layers, batch, 5)) if mode == "LSTM" else state
    expected_output, expected_state = rnn(inputs, state)
    calls = []
    handle = rnn.register_forward_hook(lambda *args: calls.append(1))
    output, new_state = run_rnn(rnn, inputs, state)
    assert not calls  # the cell functions ran, not the module
    torch.testing.assert_close(output, expected_output)
    for got, want in zip(*(((s,) if mode == "GRU" else s) for s in (new_state, expected_state)), strict=True):
        torch.testing.assert_close(got, want)
    rnn.train()  # inter-layer dropout in training: the module's own path
    run_rnn(rnn, inputs, state)
    handle.remove()
    assert calls == ([1] if layers > 1 else [])


def test_later_generation_steps_pass_the_new_token_the_cache_and_the_latents_only(tokenizer):
    model = tiny_model("twr-vae", len(tokenizer))
    seen = []
    model.register_forward_pre_hook(lambda module, args, inputs: seen.append(inputs), with_kwargs=True)
    z = model.sample_prior(2, generator=torch.Generator().manual_seed(0))
    model.generate(latents=z, max_new_tokens=4, min_new_tokens=4)
    assert len(seen) == 4 and seen[0].get("cache") is None
    for step in seen[1:]:
        assert step["input_ids"].shape == (2, 1) and step["cache"] is not None and "attention_mask" not in step
        assert torch.equal(step["latents"], z)


def test_fused_output_layer_loss_gives_the_plain_values_and_gradients():
    from modeling_twrvae.output_layer_nll import output_layer_nll

    torch.manual_seed(0)
    head = torch.nn.Linear(8, 50)
    features = torch.randn(12, 8, requires_grad=True)
    targets = torch.randint(0, 50, (12,))
    weights = torch.rand(12)  # a different incoming gradient for every row, as a per-sentence loss gives
    results = []
    for fused in (True, False):
        head.zero_grad()
        features.grad = None
        if fused:
            nll = output_layer_nll(features, head, targets)
            assert nll.grad_fn.name() == "_LinearNLLBackward"
        else:
            nll = torch.nn.functional.cross_entropy(head(features), targets, reduction="none")
        (nll * weights).sum().backward()
        results.append((nll.detach(), features.grad.clone(), head.weight.grad.clone(), head.bias.grad.clone()))
    for fused, plain in zip(*results, strict=True):
        torch.testing.assert_close(fused, plain)


def test_fused_output_layer_loss_is_exact_for_targets_far_below_the_smallest_float():
    """The fused loss keeps probabilities, not log-probabilities; a target's -log p is still exact where p itself
    underflows fp32 (here -log p reaches hundreds of nats; fp32 underflows below e^-104)."""
    from modeling_twrvae.output_layer_nll import output_layer_nll

    torch.manual_seed(0)
    head = torch.nn.Linear(16, 300)
    with torch.no_grad():
        head.weight.mul_(100)
    features, targets = torch.randn(40, 16), torch.randint(0, 300, (40,))
    exact = torch.nn.functional.cross_entropy(head.double()(features.double()), targets, reduction="none")
    head.float()
    nll = output_layer_nll(features, head, targets)
    assert exact.max() > 200 and torch.isfinite(nll).all()
    torch.testing.assert_close(nll.double(), exact, rtol=1e-5, atol=1e-4)


def test_fused_output_layer_loss_without_onednn_and_after_a_onednn_failure(monkeypatch):
    """Where oneDNN's linear is missing, or fails on this CPU, and under torch.compile, the products fall back to BLAS
    with the same values; a failure is not retried."""
    import modeling_twrvae.output_layer_nll as nll

    torch.manual_seed(0)
    head = torch.nn.Linear(8, 50)
    features, targets = torch.randn(12, 8), torch.randint(0, 50, (12,))
    expected = torch.nn.functional.cross_entropy(head(features), targets, reduction="none")
    monkeypatch.setattr(nll, "_ONEDNN_LINEAR", None)
    torch.testing.assert_close(nll.output_layer_nll(features, head, targets), expected)
    calls = []

    def failing(*args):
        calls.append(args)
        raise RuntimeError("could not create a primitive")

    monkeypatch.setattr(nll, "_ONEDNN_LINEAR", failing)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)  # inductor cannot lower it for trained weights
    torch.testing.assert_close(nll.output_layer_nll(features, head, targets), expected)
    assert not calls
    monkeypatch.undo()
    monkeypatch.setattr(nll, "_ONEDNN_LINEAR", failing)
    torch.testing.assert_close(nll.output_layer_nll(features, head, targets), expected)
    assert len(calls) == 1 and nll._ONEDNN_LINEAR is None


def test_fused_output_layer_loss_refuses_a_second_backward_with_a_clear_error():
    from modeling_twrvae.output_layer_nll import output_layer_nll

    head = torch.nn.Linear(4, 9)
    nll = output_layer_nll(torch.randn(3, 4), head, torch.tensor([1, 2, 3])).sum()
    nll.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="return_logits=True"):
        nll.backward()


@pytest.mark.parametrize("with_logits", [False, True], ids=["loss", "logits+loss"])
def test_fused_output_layer_loss_under_bf16_autocast_matches_autocasts_plain_path(with_logits):
    """Under CPU bf16 autocast the fused loss keeps autocast's precisions (bf16 products, fp32 log-softmax): its
    values and gradients are those of `F.cross_entropy(lm_head(features).float())` under autocast, up to bf16
    rounding, and every gradient comes back in its input's dtype (the fp32 master weights get fp32 gradients)."""
    from modeling_twrvae.output_layer_nll import output_layer_logits_and_nll, output_layer_nll

    torch.manual_seed(0)
    head = torch.nn.Linear(32, 300)
    features = torch.randn(40, 32).bfloat16().requires_grad_()
    targets = torch.randint(0, 300, (40,))
    weights = torch.rand(40)
    flat = torch.arange(40)
    results = []
    for fused in (True, False):
        head.zero_grad()
        features.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16):
            if fused and with_logits:
                logits, nll = output_layer_logits_and_nll(features, head, flat, targets)
                assert nll.grad_fn.name() == "_LinearLogitsNLLBackward"
            elif fused:
                logits, nll = None, output_layer_nll(features, head, targets)
                assert nll.grad_fn.name() == "_LinearNLLBackward"
            else:
                logits = head(features)
                nll = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="none")
        assert nll.dtype == torch.float32
        loss = (nll * weights).sum()
        if with_logits:
            assert logits.dtype == torch.bfloat16
            loss = loss + logits.float().square().mean()
        loss.backward()
        assert features.grad.dtype == torch.bfloat16 and head.weight.grad.dtype == torch.float32
        results.append((nll.detach(), features.grad.float(), head.weight.grad.clone(), head.bias.grad.clone()))
    # no less accurate than autocast's own path, measured against the same loss in fp32
    head.zero_grad()
    exact_features = features.detach().float().requires_grad_()
    logits = head(exact_features)
    nll = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    ((nll * weights).sum() + (logits.square().mean() if with_logits else 0)).backward()
    exact = (nll.detach(), exact_features.grad, head.weight.grad, head.bias.grad)
    for name, fused, plain, truth in zip(("nll", "features", "weight", "bias"), *results, exact, strict=True):
        torch.testing.assert_close(fused, plain, rtol=2e-2, atol=2e-2 * plain.abs().max().item(), msg=name)
        error, plain_error = (
            ((fused - truth).norm() / truth.norm()).item(),
            ((plain - truth).norm() / truth.norm()).item(),
        )
        assert error <= 1.5 * plain_error + 1e-4, name


def test_fused_output_layer_loss_is_not_taken_under_fp16_autocast():
    from modeling_twrvae.output_layer_nll import output_layer_nll

    head = torch.nn.Linear(4, 9)
    with torch.autocast("cpu", dtype=torch.float16):
        nll = output_layer_nll(torch.randn(3, 4), head, torch.tensor([1, 2, 3]))
    assert nll.dtype == torch.float32 and nll.grad_fn.name() != "_LinearNLLBackward"


@pytest.mark.parametrize("return_logits", [True, False])
def test_a_float64_model_keeps_float64_in_its_reconstruction(return_logits, tokenizer, batch):
    """The output layer's log-softmax runs in fp32 or higher: an fp64 model (as the conversion checks against the
    baselines' code use) is not rounded to fp32 there; its per-sentence loss is the fp64 sum of the word losses."""
    model = tiny_model("twr-vae", len(tokenizer)).double().eval()
    output = model(**batch, sample_posterior=False, return_logits=True, reduction="none")
    assert output.reconstruction_loss.dtype == torch.float64
    log_probs = torch.log_softmax(output.logits[:, :-1], dim=-1)
    targets, mask = batch["input_ids"][:, 1:], batch["attention_mask"][:, 1:].bool()
    by_hand = -(log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1) * mask).sum(-1)
    lean = model(**batch, sample_posterior=False, return_logits=return_logits, reduction="none")
    torch.testing.assert_close(lean.reconstruction_loss, by_hand, rtol=1e-12, atol=1e-10)
