import json
import math

import pytest
import torch

from modeling_twrvae.commands import evaluate
from modeling_twrvae.metrics.likelihood import (
    active_units,
    likelihoods,
    mutual_information,
    sentence_generator,
    summarize_likelihoods,
)
from modeling_twrvae.metrics.text import choose_pairs, distinct_n, interpolation_rouge, reconstruction_quality

from helpers import DATA_DIR, informative, tiny_model


def prior_equals_posterior(model):
    """Every sentence's posterior is exactly N(0, I), and the decoder ignores z: a fully collapsed model."""
    with torch.no_grad():
        for layer in (model.encoder.mean, model.encoder.logvar):
            layer.weight.zero_()
            layer.bias.zero_()
        model.decoder.init_state.weight.zero_()
        model.decoder.rnn.weight_ih_l0[:, model.config.embedding_size :].zero_()  # the z part of each input
    return model.eval()


@pytest.fixture(scope="module")
def sentences(tokenizer, ptb_lines):
    return tokenizer(ptb_lines[:12])["input_ids"]


def test_iw_nll_is_below_the_elbo_and_settles_as_k_grows(tokenizer, sentences):
    model = informative(tiny_model("twr-vae", len(tokenizer), seed=1))
    results = {k: likelihoods(model, sentences, iw_samples=k, seed=3, progress=False) for k in (1, 10, 60, 240)}
    big = results[240]
    assert (big.iw_nll <= big.elbo_nll_mc + 1e-4).all()  # Jensen, with the same samples
    assert (big.iw_nll <= big.elbo_nll).all()  # against the closed-form-KL ELBO
    assert (big.kl_decoded > 1.0).all()  # the posterior is far from the prior: the bound is not trivial
    gaps = {k: (results[k].iw_nll - big.iw_nll).abs().mean().item() for k in (1, 10, 60)}
    assert gaps[1] > gaps[10] > gaps[60]
    # k = 1 is the one-sample ELBO estimate: log p(x|z) + log p(z) - log q(z|x) at one z ~ q
    torch.testing.assert_close(results[1].iw_nll, results[1].elbo_nll_mc)
    one = results[1]
    z = one.posterior_mean + (0.5 * one.posterior_logvar).exp() * torch.stack(
        [torch.randn(2, model.config.latent_size, generator=sentence_generator(3, i))[1] for i in range(len(sentences))]
    )
    batch = tokenizer.pad({"input_ids": sentences}, return_tensors="pt")
    reconstruction = model(**batch, latents=z, reduction="none").reconstruction_loss
    log_q = -0.5 * (
        math.log(2 * math.pi) + one.posterior_logvar + (z - one.posterior_mean) ** 2 / one.posterior_logvar.exp()
    ).sum(-1)
    log_p = -0.5 * (math.log(2 * math.pi) + z**2).sum(-1)
    torch.testing.assert_close(one.iw_nll, reconstruction - log_p + log_q, rtol=1e-5, atol=1e-4)


def test_posterior_equal_to_the_prior_has_no_information(tokenizer, sentences):
    model = prior_equals_posterior(tiny_model("twr-vae", len(tokenizer)))
    result = likelihoods(model, sentences, iw_samples=50, seed=0, progress=False)
    summary = summarize_likelihoods(result, 50)
    assert summary["mutual_information"] == pytest.approx(0.0, abs=1e-6)
    assert summary["active_units"] == 0
    assert summary["kl_decoded"] == pytest.approx(0.0, abs=1e-6)
    torch.testing.assert_close(result.iw_nll, result.elbo_nll, rtol=1e-5, atol=1e-4)
    # and a model that uses z is told apart
    used = summarize_likelihoods(
        likelihoods(informative(tiny_model("twr-vae", len(tokenizer), seed=1)), sentences, 50, progress=False), 50
    )
    assert used["mutual_information"] > 0.5 and used["active_units"] > 0


def test_paper_nll_follows_the_reference_code_on_a_hand_built_case(tokenizer):
    model = informative(tiny_model("twr-vae", len(tokenizer), seed=2))
    ids = tokenizer(["the company said it expects"])["input_ids"]
    result = likelihoods(model, ids, iw_samples=5, progress=False)
    batch = torch.tensor(ids)
    output = model(input_ids=batch, sample_posterior=False)  # decoded from the posterior mean
    log_probs = torch.log_softmax(output.logits[0, :-1], -1)
    reconstruction = -sum(log_probs[t, batch[0, t + 1]].item() for t in range(batch.shape[1] - 1))
    mean, logvar = output.posterior_mean[0], output.posterior_logvar[0]
    kl_per_timestep = 0.5 * (mean**2 + logvar.exp() - logvar - 1).sum(-1)
    expected = reconstruction + kl_per_timestep.mean().item()  # every one of the T timesteps, averaged
    assert result.paper_nll.item() == pytest.approx(expected, rel=1e-5)
    summary = summarize_likelihoods(result, 5)
    tokens = batch.shape[1]  # <bos> and <eos> included
    assert summary["paper_ppl"] == pytest.approx(math.exp(expected / tokens), rel=1e-5)
    assert summary["num_predicted_tokens"] == tokens - 1
    assert summary["iw_ppl"] == pytest.approx(math.exp(summary["iw_nll"] / (tokens - 1)), rel=1e-6)


def test_results_do_not_depend_on_the_batch_size(tokenizer, sentences):
    model = informative(tiny_model("twr-vae-mean", len(tokenizer), seed=4))
    one = likelihoods(model, sentences, iw_samples=30, batch_size=1, samples_per_pass=7, seed=5, progress=False)
    many = likelihoods(model, sentences, iw_samples=30, batch_size=5, samples_per_pass=30, seed=5, progress=False)
    for name in ("iw_nll", "elbo_nll", "paper_nll", "kl_decoded", "posterior_mean"):
        torch.testing.assert_close(getattr(one, name), getattr(many, name), rtol=1e-4, atol=1e-4)
    a, b = summarize_likelihoods(one, 30), summarize_likelihoods(many, 30)
    for key in a:
        assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-4), key


def test_mutual_information_and_active_units_by_hand():
    torch.manual_seed(0)
    mean = torch.randn(300, 4) * torch.tensor([3.0, 0.0, 0.05, 1.0])
    logvar = torch.full((300, 4), -2.0)
    samples = mean + (0.5 * logvar).exp() * torch.randn(300, 4)
    assert active_units(mean) == 2  # variances ~9, 0, 0.0025, ~1
    assert mutual_information(mean, logvar, samples) > 1.0
    same = torch.zeros(300, 4)
    assert mutual_information(same, torch.zeros(300, 4), torch.randn(300, 4)) == pytest.approx(0.0, abs=1e-9)


def test_text_metrics():
    assert distinct_n([["a", "b", "a"], ["a", "b"]], 1) == pytest.approx(2 / 5)
    assert distinct_n([["a", "b", "a"], ["a", "b"]], 2) == pytest.approx(2 / 3)
    quality = reconstruction_quality(["the cat sat", "a dog ran"], ["the cat sat", "a dog ran away"])
    assert quality["reconstruction_exact_match"] == 0.5 and 0 < quality["reconstruction_bleu"] < 100
    # reconstructions that follow their inputs score far lower against another input
    texts = ["the cat sat on the mat", "a dog ran in the park", "prices fell sharply today", "we met at noon again"]
    quality = reconstruction_quality(texts, texts)
    assert quality["reconstruction_bleu"] == pytest.approx(100) and quality["reconstruction_bleu_other_input"] < 10
    assert reconstruction_quality(["one text"], ["one text"])["reconstruction_bleu_other_input"] is None
    table = interpolation_rouge([("a b c d", "w x y z")], [["a b c d", "a b y z", "w x y z"]])
    assert table[0]["rouge1_start"] == 1.0 and table[0]["rouge1_end"] == 0.0
    assert table[1]["rouge1_start"] == pytest.approx(0.5) and table[2]["rouge1_end"] == 1.0
    assert choose_pairs(10, 5, seed=1) == choose_pairs(10, 5, seed=1) and len(choose_pairs(3, 10, seed=1)) == 3


def test_command_line_writes_json_markdown_and_png(tmp_path, tokenizer, capsys):
    model = informative(tiny_model("twr-vae", len(tokenizer), seed=1))
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    output = tmp_path / "out" / "results.json"
    argv = [
        "--model_name_or_path", str(tmp_path / "model"), "--dataset", "ptb", "--split", "test",
        "--data_dir", str(DATA_DIR), "--max_samples", "20", "--iw_samples", "8", "--num_prior_samples", "6",
        "--num_interpolation_pairs", "3", "--max_new_tokens", "8", "--output_file", str(output), "--no_progress",
    ]  # fmt: skip
    results = evaluate.main(argv)
    saved = json.loads(output.read_text())
    for key in (
        "iw_nll", "iw_ppl", "elbo_nll", "reconstruction_loss", "kl_decoded", "kl_regularizer", "paper_nll",
        "paper_ppl", "mutual_information", "active_units", "num_sentences", "num_predicted_tokens", "iw_samples",
    ):  # fmt: skip
        assert key in saved, key
    assert saved["num_sentences"] == 20 and saved["iw_samples"] == 8 and saved == json.loads(json.dumps(results))
    assert saved["iw_nll"] <= saved["elbo_nll"]
    assert len(saved["interpolation"]["rouge"]) == 11 and saved["interpolation"]["num_pairs"] == 3
    assert "predicted tokens" in saved["conventions"]
    assert output.with_suffix(".md").read_text().count("|") > 20
    assert output.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "IW-NLL" in printed and "Prior samples" in printed and "Interpolation" in printed
    again = evaluate.main([*argv, "--overwrite_output_file"])  # --seed fixes every number
    assert {k: v for k, v in again.items()} == results


def test_decoder_nll_equals_the_model_s_reconstruction_loss(tokenizer, ptb_lines):
    from modeling_twrvae.metrics.likelihood import decoder_nll

    model = informative(tiny_model("hr-vae", len(tokenizer), seed=6))
    batch = tokenizer(ptb_lines[:7], padding=True, return_tensors="pt")
    z = model.sample_prior(7, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(**batch, latents=z, reduction="none").reconstruction_loss
        fast = decoder_nll(model, batch["input_ids"], batch["attention_mask"], z, tokens_per_chunk=13)
    torch.testing.assert_close(fast, expected, rtol=1e-5, atol=1e-4)
