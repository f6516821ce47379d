"""The baselines of TWR-VAE Table 2 as options of the model: BN-VAE's normalised posterior mean and SA-VAE's
refinement, each rule on a tiny model (and failing without it)."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from modeling_twrvae import PRESETS, DiagonalGaussianDistribution, TWRVAEConfig, TWRVAEModel
from modeling_twrvae.semi_amortized import clip_rows, refine_posterior

from helpers import informative, run_without_package, tiny_config, tiny_model

EPS = 1e-5  # BatchNorm1d's, as BN-VAE keeps it


@pytest.fixture(scope="module")
def batch(tokenizer, ptb_lines):
    # mixed lengths, so that padding is there to be ignored
    return tokenizer(sorted(ptb_lines[:48], key=len)[::6], padding=True, return_tensors="pt")


def raw_means(model, batch):
    """The posterior layer's output before the normalisation, at every timestep (a hook on `encoder.mean`)."""
    seen = []
    handle = model.encoder.mean.register_forward_hook(lambda module, args, output: seen.append(output.detach()))
    try:
        output = model(**batch)
    finally:
        handle.remove()
    return seen[0], output


def bn_model(tokenizer, scale=None, seed=0, **overrides):
    """A tiny bn-vae whose raw posterior means spread over sentences (batch variance far above eps)."""
    model = tiny_model("bn-vae", len(tokenizer), seed=seed, **overrides)
    with torch.no_grad():
        model.encoder.embed_tokens.weight.mul_(30.0)
        model.encoder.mean.weight.mul_(30.0 if scale is None else scale)
    return model


def last_rows(timesteps, lengths):
    return timesteps[torch.arange(len(lengths)), lengths - 1]


# ----------------------------------------------------------------------------------------------------------------
# BN-VAE


def test_bn_vae_preset_is_the_vae_lstm_with_gamma_0_7():
    config = TWRVAEConfig.from_preset("bn-vae", vocab_size=100)
    assert config.posterior_mean_batch_norm_gamma == 0.7 and config.kl_regularizer == "last"
    assert config.latent_mode == "last" and config.svi_steps == 0
    vae_lstm = TWRVAEConfig.from_preset("vae-lstm", vocab_size=100).to_dict()
    differs = {k for k, v in config.to_dict().items() if vae_lstm.get(k) != v}
    assert differs == {"posterior_mean_batch_norm_gamma"}
    assert "bn-vae" in PRESETS and "bn-vae" in TWRVAEConfig.presets()


def test_bn_adds_only_the_shift_and_the_running_statistics_to_the_weights(tokenizer):
    plain = set(tiny_model("vae-lstm", len(tokenizer)).state_dict())
    model = tiny_model("bn-vae", len(tokenizer))
    prefix = "encoder.mean_batch_norm."
    assert set(model.state_dict()) - plain == {
        prefix + name for name in ("bias", "running_mean", "running_var", "num_batches_tracked")
    }
    norm = model.encoder.mean_batch_norm
    assert torch.equal(norm.bias, torch.zeros(6)) and torch.equal(norm.running_var, torch.ones(6))
    assert norm.eps == 1e-5 and norm.momentum == 0.1


def test_bn_kl_lower_bound_holds_on_a_random_batch_in_training(tokenizer, batch):
    gamma, size = 0.7, 6
    bound = size * gamma**2 / 2
    lengths = batch["attention_mask"].sum(1)
    for seed in range(3):
        model = bn_model(tokenizer, scale=10.0, seed=seed).train()
        with torch.no_grad():
            model.encoder.mean_batch_norm.bias.normal_(0, 0.3)  # a trained shift only raises the bound
        raw, output = raw_means(model, batch)
        mean = last_rows(output.posterior_mean, lengths)
        mean_term = 0.5 * mean.pow(2).sum(-1).mean()
        decoded_raw = last_rows(raw, lengths)
        variance = decoded_raw.var(0, unbiased=False)
        shrinkage = (variance / (variance + EPS)).min()  # BatchNorm's eps: 1 - shrinkage is ~1e-2 here
        assert shrinkage > 0.98
        beta = model.encoder.mean_batch_norm.bias.detach()
        exact = 0.5 * (beta.pow(2) + gamma**2 * variance / (variance + EPS)).sum()
        torch.testing.assert_close(mean_term.detach(), exact, rtol=1e-5, atol=1e-6)
        assert mean_term >= shrinkage * bound
        assert output.kl_decoded >= mean_term  # the rest of the KL is >= 0
        assert output.kl_regularizer >= shrinkage * bound
        # the same weights without the normalisation sit far below it: the bound is the rule's doing
        plain = tiny_model("vae-lstm", len(tokenizer), seed=seed).train()
        plain.load_state_dict(model.state_dict(), strict=False)
        assert 0.5 * plain(**batch).posterior_mean.detach().pow(2).sum(-1).mean() < 0.2 * bound


def test_bn_normalises_like_the_authors_batchnorm1d_and_updates_its_running_statistics(tokenizer, batch):
    model = bn_model(tokenizer).train()
    lengths = batch["attention_mask"].sum(1)
    reference = torch.nn.BatchNorm1d(6)  # the authors' layer: eps 1e-5, momentum 0.1, weight filled with gamma
    with torch.no_grad():
        reference.weight.fill_(0.7)
    for _ in range(3):
        raw, output = raw_means(model, batch)
        expected = reference.train()(last_rows(raw, lengths))
        torch.testing.assert_close(last_rows(output.posterior_mean, lengths), expected, rtol=1e-5, atol=1e-5)
    norm = model.encoder.mean_batch_norm
    torch.testing.assert_close(norm.running_mean, reference.running_mean)
    torch.testing.assert_close(norm.running_var, reference.running_var)
    assert int(norm.num_batches_tracked) == 3
    # every timestep gets the same affine map as the decoded latent's
    scale = 0.7 / (last_rows(raw, lengths).var(0, unbiased=False) + EPS).sqrt()
    shift = -last_rows(raw, lengths).mean(0) * scale
    mask = batch["attention_mask"].bool()
    torch.testing.assert_close(output.posterior_mean[mask], (raw * scale + shift)[mask], rtol=1e-5, atol=1e-5)


def test_bn_gamma_is_not_trained_and_the_shift_is(tokenizer, batch):
    model = bn_model(tokenizer).train()
    norm = model.encoder.mean_batch_norm
    names = [name for name, p in model.named_parameters() if name.startswith("encoder.mean_batch_norm")]
    assert names == ["encoder.mean_batch_norm.bias"]  # gamma is no parameter at all
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    lengths = batch["attention_mask"].sum(1)
    for _ in range(3):
        optimizer.zero_grad()
        model(**batch).loss.backward()
        assert norm.bias.grad.abs().sum() > 0
        optimizer.step()
    assert norm.gamma == 0.7 and model.config.posterior_mean_batch_norm_gamma == 0.7
    assert norm.bias.detach().abs().sum() > 0  # the shift learned
    # after training, the normalised decoded means still have batch variance gamma^2 v / (v + eps)
    raw, output = raw_means(model, batch)
    variance = last_rows(raw, lengths).var(0, unbiased=False)
    torch.testing.assert_close(
        last_rows(output.posterior_mean, lengths).var(0, unbiased=False).detach(),
        0.49 * variance / (variance + EPS),
        rtol=1e-4,
        atol=1e-6,
    )


def test_bn_eval_uses_the_running_statistics(tokenizer, batch, ptb_lines):
    model = bn_model(tokenizer).train()
    for _ in range(2):
        model(**batch)
    norm = model.encoder.mean_batch_norm
    train_raw, train_output = raw_means(model, batch)  # (a third update of the statistics)
    model.eval()
    raw, output = raw_means(model, batch)
    torch.testing.assert_close(raw, train_raw)
    scale = 0.7 / (norm.running_var + EPS).sqrt()
    expected = (raw - norm.running_mean) * scale + norm.bias
    torch.testing.assert_close(output.posterior_mean, expected.detach(), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(output.posterior_mean, train_output.posterior_mean, atol=1e-3)
    assert int(norm.num_batches_tracked) == 3  # evaluation leaves the statistics alone
    again = model(**batch)
    assert torch.equal(again.posterior_mean, output.posterior_mean) and torch.equal(again.loss, output.loss)
    # and so a sentence's evaluation does not depend on its batch
    texts = [ptb_lines[3], "the market fell", ptb_lines[10]]
    together = model(**tokenizer(texts, padding=True, return_tensors="pt"), reduction="none")
    for i, text in enumerate(texts):
        alone = model(**tokenizer([text], return_tensors="pt"), reduction="none")
        torch.testing.assert_close(together.loss[i], alone.loss[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("latent_mode", ["last", "mean"])
def test_bn_batch_statistics_come_from_the_real_positions_only(latent_mode, tokenizer, batch):
    lengths = batch["attention_mask"].sum(1)
    padded = {key: F.pad(value, (0, 7), value=0) for key, value in batch.items()}  # 7 more padding columns
    outputs = []
    for inputs in (batch, padded):
        model = bn_model(tokenizer, latent_mode=latent_mode).train()
        raw, output = raw_means(model, inputs)
        outputs.append((raw, output, model.encoder.mean_batch_norm))
    (raw, output, norm), (_, padded_output, padded_norm) = outputs
    length = batch["input_ids"].shape[1]
    mask = batch["attention_mask"].bool()
    torch.testing.assert_close(padded_output.posterior_mean[:, :length][mask], output.posterior_mean[mask])
    torch.testing.assert_close(padded_norm.running_mean, norm.running_mean)
    torch.testing.assert_close(padded_norm.running_var, norm.running_var)
    # the statistics are the decoded latent's: the last real timestep, or the mean over the real ones
    decoded = model_posterior_mean_of(raw, lengths, latent_mode)
    torch.testing.assert_close(norm.running_mean, 0.1 * decoded.mean(0))
    torch.testing.assert_close(norm.running_var, 0.9 + 0.1 * decoded.var(0, unbiased=True))
    decoded_mean = model_posterior_mean_of(output.posterior_mean.detach(), lengths, latent_mode)
    torch.testing.assert_close(decoded_mean.var(0, unbiased=False), 0.49 * torch.ones(6), rtol=1e-3, atol=0)


def model_posterior_mean_of(timesteps, lengths, latent_mode):
    """The decoded latent's row of per-timestep values: the last real timestep's, or the mean over the real ones."""
    if latent_mode == "last":
        return last_rows(timesteps, lengths)
    mask = torch.arange(timesteps.shape[1]) < lengths[:, None]
    return (timesteps * mask.unsqueeze(-1)).sum(1) / lengths[:, None]


def test_bn_training_needs_two_sentences_and_other_settings_are_refused(tokenizer, batch):
    model = bn_model(tokenizer).train()
    one = {key: value[:1] for key, value in batch.items()}
    with pytest.raises(ValueError, match="at least 2 sentences per batch"):
        model(**one)
    model.eval()(**one)  # evaluation reads the running statistics
    for value, message in ((0.0, "must be > 0"), (-1.0, "must be > 0"), ("0.7", "must be a number")):
        with pytest.raises(ValueError, match=message):
            TWRVAEConfig.from_preset("bn-vae", posterior_mean_batch_norm_gamma=value)
    with pytest.raises(ValueError, match="latent_mode='sum'"):
        TWRVAEConfig.from_preset("bn-vae", latent_mode="sum")
    assert TWRVAEConfig.from_preset("twr-vae", posterior_mean_batch_norm_gamma=0.5).latent_mode == "last"


def test_bn_round_trip_keeps_the_running_statistics(tokenizer, batch, tmp_path):
    model = bn_model(tokenizer).train()
    with torch.no_grad():
        model.encoder.mean_batch_norm.bias.uniform_(-0.5, 0.5)
    for _ in range(3):
        model(**batch)
    model.eval()
    with torch.no_grad():
        expected = model(**batch)
    model.save_pretrained(tmp_path)
    loaded = TWRVAEModel.from_pretrained(tmp_path).eval()
    for name, value in model.encoder.mean_batch_norm.state_dict().items():
        assert torch.equal(loaded.encoder.mean_batch_norm.state_dict()[name], value), name
    assert loaded.encoder.mean_batch_norm.gamma == 0.7
    with torch.no_grad():
        output = loaded(**batch)
    assert torch.equal(output.logits, expected.logits) and torch.equal(output.loss, expected.loss)
    assert json.loads((tmp_path / "config.json").read_text())["posterior_mean_batch_norm_gamma"] == 0.7


# ----------------------------------------------------------------------------------------------------------------
# SA-VAE


def test_sa_vae_preset_has_the_authors_settings():
    config = TWRVAEConfig.from_preset("sa-vae", vocab_size=100)
    assert (config.svi_steps, config.svi_learning_rate, config.svi_momentum) == (20, 1.0, 0.5)
    assert (config.svi_max_grad_norm, config.svi_batch_size) == (5.0, 32)
    assert config.kl_regularizer == "last" and config.latent_mode == "last"
    assert config.posterior_mean_batch_norm_gamma is None
    vae_lstm = TWRVAEConfig.from_preset("vae-lstm", vocab_size=100).to_dict()
    assert {k for k, v in config.to_dict().items() if vae_lstm.get(k) != v} == {"svi_steps"}
    default = TWRVAEConfig()
    assert default.svi_steps == 0 and default.posterior_mean_batch_norm_gamma is None


def test_refinement_follows_the_momentum_and_clipping_rules():
    """On a quadratic objective, whose gradient is known, the steps are the authors' recursion per sentence."""
    torch.manual_seed(0)
    targets = torch.randn(3, 4) * torch.tensor([[0.1], [3.0], [300.0]])  # the last row's gradient is clipped
    weights = torch.tensor([1.0, 2.0, 0.5, 1.5])

    def objective(mean, logvar):
        return 0.5 * ((mean - targets).pow(2) * weights).sum(-1) + 0.5 * (logvar - 1.0).pow(2).sum(-1)

    mean0, logvar0 = torch.zeros(3, 4), torch.zeros(3, 4)
    steps, lr, momentum, max_norm, size = 5, 1.0, 0.5, 5.0, 32
    mean, logvar = refine_posterior(mean0, logvar0, objective, steps, lr, momentum, max_norm, size)
    # by hand: gradient of the sentence's share of a batch-mean loss, clipped to its share of the joint norm
    expected_mean, expected_logvar = mean0.clone(), logvar0.clone()
    velocity = None
    for _ in range(steps):
        gradients = [(expected_mean - targets) * weights / size, (expected_logvar - 1.0) / size]
        clipped = []
        for gradient in gradients:
            norms = gradient.norm(dim=-1, keepdim=True)
            coefficient = max_norm / math.sqrt(size) / (norms + 1e-6)
            clipped.append(torch.where(coefficient < 1, gradient * coefficient, gradient))
        velocity = (
            [-g for g in clipped]
            if velocity is None
            else [momentum * v - g for v, g in zip(velocity, clipped, strict=True)]
        )
        expected_mean = expected_mean + lr * velocity[0]
        expected_logvar = expected_logvar + lr * velocity[1]
    torch.testing.assert_close(mean, expected_mean)
    torch.testing.assert_close(logvar, expected_logvar)
    # the first step of an unclipped sentence moves it by lr / 32 of its own gradient, the authors' step in a full batch
    one_step, _ = refine_posterior(mean0, logvar0, objective, 1, lr, momentum, max_norm, size)
    torch.testing.assert_close(one_step[0], (targets[0] * weights) / size)
    assert one_step[2].norm() == pytest.approx(max_norm / math.sqrt(size), rel=1e-5)
    # each sentence is refined alone: the same result in a batch of one
    alone, _ = refine_posterior(
        mean0[1:2], logvar0[1:2], lambda m, v: objective_row(m, v, targets[1:2], weights), steps
    )
    torch.testing.assert_close(alone[0], mean[1])
    assert clip_rows(torch.tensor([[3.0, 4.0]]), 1.0).norm() == pytest.approx(1.0, rel=1e-5)


def objective_row(mean, logvar, targets, weights):
    return 0.5 * ((mean - targets).pow(2) * weights).sum(-1) + 0.5 * (logvar - 1.0).pow(2).sum(-1)


def sampled_elbo(model, batch, posterior, samples=64, seed=0):
    """Each sentence's ELBO under `posterior`, with the same noise for every posterior compared."""
    size = posterior.mean.shape[0]
    noise = torch.randn(samples, *posterior.mean.shape, generator=torch.Generator().manual_seed(seed))
    latents = (posterior.mean + posterior.std * noise).reshape(samples * size, -1)
    repeated = {key: value.repeat(samples, 1) for key, value in batch.items()}
    with torch.no_grad():
        reconstruction = model(**repeated, latents=latents, reduction="none", return_logits=False).loss
    return -(reconstruction.view(samples, size).mean(0) + posterior.kl())


def test_refinement_increases_the_elbo_of_every_sentence(tokenizer, batch):
    model = informative(tiny_model("sa-vae", len(tokenizer), seed=3))
    amortized = model.encode(batch["input_ids"], batch["attention_mask"])
    torch.manual_seed(0)
    refined = model.encode(batch["input_ids"], batch["attention_mask"], refine_steps=model.config.svi_steps)
    assert not torch.equal(refined.mean, amortized.mean) and not refined.mean.requires_grad
    gain = sampled_elbo(model, batch, refined) - sampled_elbo(model, batch, amortized)
    assert (gain > 0.1).all(), gain
    # the forward pass says the same, with the refined posterior in its output
    torch.manual_seed(0)
    output = model(**batch, refine_steps=model.config.svi_steps, reduction="none", sample_posterior=False)
    torch.testing.assert_close(output.refined_posterior_mean, refined.mean)
    torch.testing.assert_close(output.refined_posterior_logvar, refined.logvar)


def test_the_loss_uses_the_refined_posterior(tokenizer, batch):
    model = informative(tiny_model("sa-vae", len(tokenizer), seed=1))
    torch.manual_seed(0)
    output = model(**batch, refine_steps=5, reduction="none", sample_posterior=False, kl_weight=0.5)
    refined = DiagonalGaussianDistribution(output.refined_posterior_mean, output.refined_posterior_logvar)
    amortized = model.posterior(output.posterior_mean, output.posterior_logvar, batch["attention_mask"].sum(1))
    assert not torch.allclose(refined.kl(), amortized.kl())
    torch.testing.assert_close(output.kl_decoded, refined.kl())
    torch.testing.assert_close(output.kl_regularizer, refined.kl())
    torch.testing.assert_close(output.latents, refined.mean)
    decoded = model(**batch, latents=refined.mean, reduction="none")
    torch.testing.assert_close(output.reconstruction_loss, decoded.reconstruction_loss)
    torch.testing.assert_close(output.loss, decoded.reconstruction_loss + 0.5 * refined.kl())
    # evaluation refines only when asked, and is then deterministic without refinement
    plain = model(**batch, reduction="none")
    assert plain.refined_posterior_mean is None
    torch.testing.assert_close(plain.kl_decoded, amortized.kl())
    assert torch.equal(model(**batch, reduction="none").loss, plain.loss)
    # under no_grad the steps still run (on detached copies) and give the same numbers
    torch.manual_seed(0)
    with torch.no_grad():
        detached = model(**batch, refine_steps=5, reduction="none", sample_posterior=False, kl_weight=0.5)
    torch.testing.assert_close(detached.refined_posterior_mean, output.refined_posterior_mean)
    torch.testing.assert_close(detached.loss, output.loss.detach())


def counting(method, calls):
    def counted(*args, **kwargs):
        calls.append(args[3])  # the number of steps
        return method(*args, **kwargs)

    return counted


def test_training_refines_with_the_configs_steps_and_its_gradient_reaches_the_encoder(tokenizer, batch):
    calls = []
    grads = {}
    for steps in (0, 5):
        model = informative(tiny_model("sa-vae", len(tokenizer), seed=2, svi_steps=steps)).train()
        model.refine_posterior = counting(model.refine_posterior, calls)
        torch.manual_seed(0)
        output = model(**batch)
        assert (output.refined_posterior_mean is None) == (steps == 0)
        output.loss.backward()
        grads[steps] = {name: p.grad.clone() for name, p in model.named_parameters()}
    assert calls == [5]  # the config's steps in training; none when off
    for name in ("encoder.mean.weight", "encoder.logvar.weight", "encoder.layers.0.weight_ih_l0"):
        assert grads[5][name].abs().sum() > 0, name
        assert not torch.allclose(grads[5][name], grads[0][name], atol=1e-6), name


def test_the_gradient_through_the_refinement_is_exact(tokenizer):
    """gradcheck: autograd through the steps against finite differences of the refined loss (float64)."""
    model = informative(tiny_model("sa-vae", len(tokenizer), seed=5, embedding_size=6, hidden_size=5, latent_size=3))
    model = model.double().eval()
    ids = tokenizer(["the market fell", "n"], padding=True, return_tensors="pt")
    mask = ids["attention_mask"]
    noises = torch.randn(5, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def negative_elbo_with(noise):
        def negative_elbo(mean, logvar):  # in float64 throughout (the model's loss takes its log-softmax in fp32)
            z = mean + (0.5 * logvar).exp() * noise
            features, _ = model.decoder.hidden_states(ids["input_ids"][:, :-1], z)
            log_probs = F.log_softmax(model.decoder.lm_head(features), dim=-1)
            token_nll = -log_probs.gather(2, ids["input_ids"][:, 1:, None]).squeeze(-1) * mask[:, 1:]
            return token_nll.sum(1) + DiagonalGaussianDistribution(mean, logvar).kl()

        return negative_elbo

    def refined_loss(mean, logvar):
        step_noise = iter(noises[:4])
        mean, logvar = refine_posterior(mean, logvar, lambda m, v: negative_elbo_with(next(step_noise))(m, v), 4,
                                        learning_rate=30.0, batch_size=32)  # fmt: skip
        return negative_elbo_with(noises[4])(mean, logvar).sum()

    mean0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    logvar0 = (torch.randn(2, 3, dtype=torch.float64) - 1).requires_grad_(True)
    assert torch.autograd.gradcheck(refined_loss, (mean0, logvar0), eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True)
    # and the steps matter: the refined loss's gradient is not the amortized one's
    refined = torch.autograd.grad(refined_loss(mean0, logvar0), mean0)[0]
    amortized = torch.autograd.grad(negative_elbo_with(noises[4])(mean0, logvar0).sum(), mean0)[0]
    assert not torch.allclose(refined, amortized, atol=1e-4)


def test_refinement_is_refused_where_it_does_not_fit(tokenizer, batch):
    for overrides in ({"kl_regularizer": "timestep_wise"}, {"latent_mode": "mean"}):
        with pytest.raises(ValueError, match="kl_regularizer='last'` and `latent_mode='last'"):
            TWRVAEConfig.from_preset("sa-vae", **overrides)
    model = tiny_model("twr-vae", len(tokenizer))
    with pytest.raises(ValueError, match="needs `kl_regularizer='last'`"):
        model(**batch, refine_steps=3)
    for value in (-1, 1.5, True):
        with pytest.raises(ValueError, match="`refine_steps` must be an integer"):
            tiny_model("sa-vae", len(tokenizer))(**batch, refine_steps=value)
    for name, value in (("svi_steps", -1), ("svi_momentum", 1.0), ("svi_learning_rate", 0.0),
                        ("svi_max_grad_norm", -1.0), ("svi_batch_size", 0)):  # fmt: skip
        with pytest.raises(ValueError, match=f"`{name}`"):
            TWRVAEConfig.from_preset("sa-vae", **{name: value})


def test_with_both_options_off_the_model_computes_what_it_did_before(tokenizer, batch, monkeypatch):
    """The fields off: no new weights, no refinement, the same random draws and the same losses as the forward pass
    before the options existed (recomputed here from the model's parts), and a config.json without the fields loads
    with them off."""
    import modeling_twrvae.modeling_twrvae as modeling

    monkeypatch.setattr(modeling, "refine_gaussian_posterior", lambda *a, **k: pytest.fail("refined while off"))
    config = tiny_config("vae-lstm", len(tokenizer), dropout=0.3, word_dropout=0.2)
    old = {k: v for k, v in config.to_dict().items() if not k.startswith("svi_") and "batch_norm" not in k}
    rebuilt = TWRVAEConfig.from_dict(old)
    assert rebuilt.svi_steps == 0 and rebuilt.posterior_mean_batch_norm_gamma is None
    torch.manual_seed(0)
    model = TWRVAEModel(rebuilt).train()
    assert model.encoder.mean_batch_norm is None
    assert not any("batch_norm" in name for name in model.state_dict())
    ids, mask = batch["input_ids"], batch["attention_mask"]
    lengths = mask.sum(1)
    torch.manual_seed(7)
    output = model(**batch, kl_weight=0.3)
    torch.manual_seed(7)
    mean, logvar = model.encoder(ids)
    mean, logvar = last_rows(mean, lengths), last_rows(logvar, lengths)
    z = mean + (0.5 * logvar).exp() * torch.randn(mean.shape)
    top, _ = model.decoder.hidden_states(ids, z)
    log_probs = F.log_softmax(model.decoder.lm_head(top)[:, :-1], dim=-1)
    token_nll = -log_probs.gather(2, ids[:, 1:, None]).squeeze(-1) * mask[:, 1:]
    kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum(-1)
    torch.testing.assert_close(output.latents, z)
    torch.testing.assert_close(output.reconstruction_loss, token_nll.sum(1).mean())
    torch.testing.assert_close(output.loss, token_nll.sum(1).mean() + 0.3 * kl.mean())
    assert output.refined_posterior_mean is None and output.refined_posterior_logvar is None
    assert len(output.to_tuple()) == len(model.eval()(**batch, return_dict=False))


def test_both_presets_round_trip_and_load_with_remote_code_without_the_package(tokenizer, batch, tmp_path):
    references = {}
    for preset in ("bn-vae", "sa-vae"):
        model = informative(tiny_model(preset, len(tokenizer), seed=1)).train()
        for _ in range(2):
            model(**batch)  # BN-VAE's running statistics move away from their start
        model.eval()
        folder = tmp_path / preset
        model.save_pretrained(folder)
        assert (folder / "semi_amortized.py").is_file() and (folder / "modeling_twrvae.py").is_file()
        torch.manual_seed(0)
        with torch.no_grad():
            expected = model(**batch, refine_steps=3 if preset == "sa-vae" else None, reduction="none").loss
        loaded = TWRVAEModel.from_pretrained(folder).eval()
        for name in TWRVAEConfig.__annotations__:
            assert getattr(loaded.config, name) == getattr(model.config, name), name
        torch.manual_seed(0)
        with torch.no_grad():
            again = loaded(**batch, refine_steps=3 if preset == "sa-vae" else None, reduction="none").loss
        assert torch.equal(again, expected)
        references[preset] = expected.tolist()
    torch.save(dict(batch), tmp_path / "batch.pt")
    script = f"""
        import json, torch
        from transformers import AutoModel
        batch = torch.load({str(tmp_path / "batch.pt")!r})
        result = {{}}
        for preset in ("bn-vae", "sa-vae"):
            model = AutoModel.from_pretrained({str(tmp_path)!r} + "/" + preset, trust_remote_code=True).eval()
            assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
            torch.manual_seed(0)
            with torch.no_grad():
                steps = 3 if preset == "sa-vae" else None
                result[preset] = model(**batch, refine_steps=steps, reduction="none").loss.tolist()
        print(json.dumps(result))
        """
    assert run_without_package(script, tmp_path) == references


def test_the_iw_nll_of_an_sa_vae_uses_the_refined_posterior_as_its_proposal():
    from modeling_twrvae.metrics.likelihood import likelihoods

    model = informative(tiny_model("sa-vae", vocab_size=30, seed=3))
    torch.manual_seed(0)
    sentences = [[2, *torch.randint(4, 30, (n,)).tolist(), 3] for n in (4, 6, 7)]
    amortized = likelihoods(model, sentences, iw_samples=8, progress=False)
    refined = likelihoods(model, sentences, iw_samples=8, progress=False, refine_steps=20)
    assert (refined.elbo_nll < amortized.elbo_nll).all()  # the refinement raises each sentence's ELBO
    assert not torch.allclose(refined.posterior_mean, amortized.posterior_mean)
    assert (refined.iw_nll <= refined.elbo_nll_mc + 1e-4).all()  # still a bound: the proposal is a density


@pytest.mark.parametrize(("preset", "title"), [("bn-vae", "BN-VAE (gamma 0.7)"), ("sa-vae", "SA-VAE")])
def test_the_model_card_names_the_baseline(preset, title):
    from modeling_twrvae.hub.model_card import describe_model, identify_preset

    config = TWRVAEConfig.from_preset(preset, vocab_size=50).to_dict()
    assert identify_preset(config) == preset
    assert describe_model(config)["title"] == title
