"""The fast paths give what the plain ones give: losses without logits, the fused optimiser, the IW-NLL shortcuts."""

from types import SimpleNamespace

import pytest
import torch

from training import train

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
    optimizer = train.build_optimizer(model, args, torch.device("cpu"))
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
    from modeling_twrvae.evaluation import _can_share_sentences, decoder_nll

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
    from modeling_twrvae.evaluation import likelihoods

    model = informative(tiny_model("twr-vae", len(tokenizer), seed=5))
    ids = tokenizer(ptb_lines[:6])["input_ids"]
    exact = likelihoods(model, ids, iw_samples=20, seed=2, progress=False)
    low = likelihoods(model, ids, iw_samples=20, seed=2, progress=False, output_layer_dtype=torch.bfloat16)
    deviation = (low.iw_nll - exact.iw_nll).abs()
    assert deviation.max() < 0.05 and deviation.max() > 0  # rounded, so not bit-equal, but close
