import math

import pytest
import torch
import torch.nn.functional as F

from modeling_twrvae import PRESETS, TWRVAEOutput
from modeling_twrvae.recurrence import lstm_cell_states_stepwise

from helpers import tiny_model

CELLS = ["lstm", "gru", "rnn"]


def presets_for(cell):
    # HR-VAE reads the LSTM cell state, so it exists for LSTMs only.
    return [name for name in sorted(PRESETS) if cell == "lstm" or PRESETS[name].get("posterior_input") != "hc"]


CASES = [(cell, preset) for cell in CELLS for preset in presets_for(cell)]


@pytest.fixture(scope="module")
def batch(tokenizer, ptb_lines):
    # Lengths from 3 to 30+ tokens: the padding matters.
    texts = sorted(ptb_lines[:40], key=len)[::5]
    return tokenizer(texts, padding=True, return_tensors="pt")


@pytest.mark.parametrize("cell, preset", CASES)
def test_forward_backward_shapes_and_finite_losses(cell, preset, tokenizer, batch):
    model = tiny_model(preset, len(tokenizer), rnn_type=cell)
    model.train()
    output = model(**batch)
    assert isinstance(output, TWRVAEOutput)
    size, length = batch["input_ids"].shape
    config = model.config
    assert output.logits.shape == (size, length, len(tokenizer))
    assert output.latents.shape == (size, config.latent_size)
    assert output.posterior_mean.shape == output.posterior_logvar.shape == (size, length, config.latent_size)
    for name in ("loss", "reconstruction_loss", "kl_regularizer", "kl_decoded"):
        value = getattr(output, name)
        assert value.dim() == 0 and torch.isfinite(value), name
    output.loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.encoder.mean.weight.grad.abs().sum() > 0
    assert model.decoder.lm_head.weight.grad.abs().sum() > 0


def spread_posterior(model):
    """Freshly initialised posteriors sit at KL ~ 1e-6, where float32 rounding dominates; move them away from 0."""
    with torch.no_grad():
        for layer in (model.encoder.mean, model.encoder.logvar):
            layer.weight.mul_(30.0)
            layer.bias.uniform_(-0.5, 0.5)
    return model


def hand_losses(output, input_ids, attention_mask, config):
    """The papers' objective computed sentence by sentence with plain Python, from the model's own outputs."""
    output = output.__class__(**{k: v.detach().double() for k, v in output.items() if torch.is_tensor(v)})
    rows = []
    for b in range(input_ids.shape[0]):
        length = int(attention_mask[b].sum())
        kls = []
        for t in range(length):
            mean, logvar = output.posterior_mean[b, t], output.posterior_logvar[b, t]
            kls.append(0.5 * sum(float(m**2 + math.exp(v) - v - 1) for m, v in zip(mean, logvar, strict=True)))
        # the papers' code's rounding: Python's round, half to even
        count = 1 if config.kl_regularizer == "last" else max(1, round(length * config.kl_timestep_fraction))
        regularizer = sum(kls[length - count :]) / count
        log_probs = F.log_softmax(output.logits[b], dim=-1)
        reconstruction = -sum(float(log_probs[t, input_ids[b, t + 1]]) for t in range(length - 1))
        rows.append((reconstruction, regularizer, count, length))
    return rows


@pytest.mark.parametrize("preset", ["twr-vae", "twr-vae-last-50", "vae-lstm", "twr-vae-mean", "twr-vae-sum"])
@pytest.mark.parametrize("fraction", [None, 0.25, 0.75])
def test_loss_equals_hand_computation(preset, fraction, tokenizer, batch):
    overrides = {"kl_timestep_fraction": fraction} if fraction else {}
    model = spread_posterior(tiny_model(preset, len(tokenizer), **overrides).eval())
    kl_weight = 0.3
    output = model(**batch, kl_weight=kl_weight, sample_posterior=False)
    rows = hand_losses(output, batch["input_ids"], batch["attention_mask"], model.config)
    reconstruction = sum(r[0] for r in rows) / len(rows)
    regularizer = sum(r[1] for r in rows) / len(rows)
    assert output.reconstruction_loss.item() == pytest.approx(reconstruction, rel=1e-5)
    assert output.kl_regularizer.item() == pytest.approx(regularizer, rel=1e-5)
    assert output.loss.item() == pytest.approx(reconstruction + kl_weight * regularizer, rel=1e-5)
    if fraction == 0.25:
        # the selection really is the last quarter, e.g. 2 of 8 timesteps, and always at least the last one
        assert {r[2] for r in rows if r[3] == 8} <= {2}
        assert min(r[2] for r in rows) >= 1


@pytest.mark.parametrize("mode", ["last", "mean", "sum"])
def test_decoded_latent_and_its_kl(mode, tokenizer, batch):
    model = spread_posterior(tiny_model("twr-vae", len(tokenizer), latent_mode=mode).eval())
    mask = batch["attention_mask"]
    lengths = mask.sum(1)
    output = model(**batch, sample_posterior=False)
    mean, logvar = output.posterior_mean, output.posterior_logvar
    weights = mask.unsqueeze(-1).float()
    if mode == "last":
        expected_mean = mean[torch.arange(len(lengths)), lengths - 1]
        expected_var = logvar[torch.arange(len(lengths)), lengths - 1].exp()
    else:
        divisor = lengths[:, None].float() if mode == "mean" else 1.0
        expected_mean = (mean * weights).sum(1) / divisor
        expected_var = (logvar.exp() * weights).sum(1) / (divisor**2 if mode == "mean" else 1.0)
    torch.testing.assert_close(output.latents, expected_mean)
    expected_kl = 0.5 * (expected_mean**2 + expected_var - expected_var.log() - 1).sum(-1)
    assert output.kl_decoded.item() == pytest.approx(expected_kl.mean().item(), rel=1e-5)

    # Sampled: mean/sum of independently sampled z_t (one noise draw per timestep), z_T alone for "last".
    torch.manual_seed(123)
    sampled = model(**batch, sample_posterior=True).latents
    torch.manual_seed(123)
    if mode == "last":
        noise = torch.randn(expected_mean.shape)
        expected = expected_mean + expected_var.sqrt() * noise
    else:
        noise = torch.randn(mean.shape)
        draws = (mean + (0.5 * logvar).exp() * noise) * weights
        expected = draws.sum(1) / (lengths[:, None].float() if mode == "mean" else 1.0)
    torch.testing.assert_close(sampled, expected)


@pytest.mark.parametrize("cell, preset", CASES)
def test_mixed_length_batch_gives_each_sequence_its_own_loss(cell, preset, tokenizer, ptb_lines):
    model = spread_posterior(tiny_model(preset, len(tokenizer), rnn_type=cell).eval())
    texts = [ptb_lines[3], "the market fell", ptb_lines[10], "n"]
    together = model(**tokenizer(texts, padding=True, return_tensors="pt"), sample_posterior=False, reduction="none")
    assert together.loss.shape == (len(texts),)
    for i, text in enumerate(texts):
        alone = model(**tokenizer([text], return_tensors="pt"), sample_posterior=False, reduction="none")
        for name in ("loss", "reconstruction_loss", "kl_regularizer", "kl_decoded"):
            torch.testing.assert_close(getattr(together, name)[i], getattr(alone, name)[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(together.latents[i], alone.latents[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("preset, every_timestep", [("twr-vae", True), ("hr-vae", True), ("vae-lstm", False)])
def test_gradients_reach_posterior_layers_through_the_regularised_timesteps(preset, every_timestep, tokenizer, batch):
    model = tiny_model(preset, len(tokenizer)).eval()
    torch.manual_seed(0)
    output = model(**batch, sample_posterior=True)
    output.posterior_mean.retain_grad()
    output.posterior_logvar.retain_grad()
    output.loss.backward()
    mask = batch["attention_mask"].bool()
    lengths = mask.sum(1)
    for grad in (output.posterior_mean.grad, output.posterior_logvar.grad):
        per_timestep = grad.abs().sum(-1)
        assert (per_timestep[~mask] == 0).all()  # padding never contributes
        last = per_timestep[torch.arange(len(lengths)), lengths - 1]
        assert (last > 0).all()
        before_last = mask.clone()
        before_last[torch.arange(len(lengths)), lengths - 1] = False
        if every_timestep:
            assert (per_timestep[before_last] > 0).all()
        else:
            assert (per_timestep[before_last] == 0).all()
    assert model.encoder.mean.weight.grad.abs().sum() > 0
    assert model.encoder.logvar.weight.grad.abs().sum() > 0


def test_hr_vae_posterior_reads_h_and_c_of_every_layer(tokenizer, batch):
    model = tiny_model("hr-vae", len(tokenizer)).eval()
    output = model(**batch, sample_posterior=False)
    hidden = model.encoder.embed_tokens(batch["input_ids"])
    hiddens, cells = [], []
    for layer in model.encoder.layers:
        hidden, cell = lstm_cell_states_stepwise(layer, hidden)
        hiddens.append(hidden)
        cells.append(cell)
    # HR-VAE's code (`ziphidden`) lays the posterior input out layer by layer: [h_1; c_1; h_2; c_2].
    features = torch.cat([hiddens[0], cells[0], hiddens[1], cells[1]], dim=-1)
    torch.testing.assert_close(output.posterior_mean, model.encoder.mean(features), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(output.posterior_logvar, model.encoder.logvar(features), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_decoder_initial_state(cell, tokenizer):
    linear = tiny_model("twr-vae", len(tokenizer), rnn_type=cell, num_layers=2)
    z = torch.randn(3, linear.config.latent_size)
    state = linear.decoder.initial_state(z)
    expected = (z @ linear.decoder.init_state.weight.T).view(3, 2, -1).transpose(0, 1)
    if cell == "lstm":
        torch.testing.assert_close(state[0], expected)
        torch.testing.assert_close(state[1], expected)  # h_0 = c_0 = W z
    else:
        torch.testing.assert_close(state, expected)
    split = tiny_model(
        "twr-vae",
        len(tokenizer),
        rnn_type=cell,
        decoder_init="split",
        latent_size=(2 if cell == "lstm" else 1) * 12,
    )
    z = torch.randn(3, split.config.latent_size)
    state = split.decoder.initial_state(z)
    if cell == "lstm":
        torch.testing.assert_close(state[0][0], z[:, :12])
        torch.testing.assert_close(state[1][-1], z[:, 12:])
    else:
        torch.testing.assert_close(state[0], z)


def test_hr_vae_decoder_starts_each_layer_from_its_slice_and_reads_the_last_slice(tokenizer):
    # HR-VAE's code: z = [h_0; c_0 of layer 1; h_0; c_0 of layer 2], and each step reads [word; last layer's slice].
    model = tiny_model("hr-vae", len(tokenizer)).eval()
    config, hidden = model.config, model.config.hidden_size
    assert config.latent_size == 2 * 2 * hidden
    z = torch.randn(3, config.latent_size)
    h0, c0 = model.decoder.initial_state(z)
    for layer in range(2):
        torch.testing.assert_close(h0[layer], z[:, 2 * layer * hidden : (2 * layer + 1) * hidden])
        torch.testing.assert_close(c0[layer], z[:, (2 * layer + 1) * hidden : (2 * layer + 2) * hidden])
    assert model.decoder.rnn.input_size == config.embedding_size + 2 * hidden
    seen = []
    handle = model.decoder.rnn.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    ids = tokenizer(["the market fell", "a dog ran"], return_tensors="pt")["input_ids"]
    model.decoder(ids, z[:2])
    handle.remove()
    step_inputs = seen[0][..., config.embedding_size :]
    torch.testing.assert_close(step_inputs, z[:2, None, 2 * hidden :].expand_as(step_inputs))
    # z's first slice reaches the decoder only through layer 1's initial state
    changed = z[:2].clone()
    changed[:, : 2 * hidden] += 1.0
    assert not torch.allclose(model.decoder(ids, z[:2])[0], model.decoder(ids, changed)[0])


def test_hr_vae_preset_derives_its_latent_size_from_the_sizes():
    from modeling_twrvae import TWRVAEConfig

    assert TWRVAEConfig.from_preset("hr-vae").latent_size == 1024  # 2 x layers x hidden at the paper's sizes
    assert TWRVAEConfig.from_preset("hr-vae", hidden_size=64).latent_size == 256
    assert TWRVAEConfig.from_preset("hr-vae-inputless", hidden_size=64, num_layers=3).latent_size == 384
    with pytest.raises(ValueError, match="decoder_latent_input='last_layer'.*latent_size=256"):
        TWRVAEConfig.from_preset("hr-vae", hidden_size=64, latent_size=128)
    shared = TWRVAEConfig.from_preset("hr-vae", decoder_latent_input="full", latent_size=512)
    assert shared.decoder_step_latent_size == 512  # the earlier behaviour: one slice for every layer, all of z read


def test_inputless_decoder_reads_bos_first_then_unk(tokenizer):
    model = tiny_model("hr-vae-inputless", len(tokenizer)).eval()
    config = model.config
    ids = tokenizer(["the market fell sharply"], return_tensors="pt")["input_ids"]
    read = model.decoder.decoder_input_ids(ids)
    assert read[0, 0] == config.bos_token_id and (read[0, 1:] == config.unk_token_id).all()
    # continuing from a state (generation), no step is the first
    assert (model.decoder.decoder_input_ids(ids[:, 1:], starts_sentence=False) == config.unk_token_id).all()
    seen = []
    handle = model.decoder.embed_tokens.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    model(input_ids=ids)
    z = torch.randn(1, config.latent_size)
    model.generate(latents=z, max_new_tokens=3, do_sample=False)
    handle.remove()
    assert seen[0][0, 0] == config.bos_token_id and (seen[0][0, 1:] == config.unk_token_id).all()
    generated = seen[1:]
    assert generated[0].tolist() == [[config.bos_token_id]]
    assert all((step == config.unk_token_id).all() for step in generated[1:]) and len(generated) >= 2


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_papers_presets_have_no_dropout_on_the_decoder_output(preset, tokenizer):
    model = tiny_model(preset, len(tokenizer), dropout=0.5).train()
    assert isinstance(model.decoder.output_dropout, torch.nn.Identity)
    seen = []
    handle = model.decoder.lm_head.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    ids = tokenizer(["the market fell sharply"], return_tensors="pt")["input_ids"]
    z = torch.randn(1, model.config.latent_size)
    model.decoder(ids, z)
    handle.remove()
    assert (seen[0] != 0).all()  # dropout at 0.5 would zero about half of the output units
    with_dropout = tiny_model(preset, len(tokenizer), dropout=0.5, decoder_output_dropout=0.5).train()
    assert isinstance(with_dropout.decoder.output_dropout, torch.nn.Dropout)
    seen.clear()
    handle = with_dropout.decoder.lm_head.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    with_dropout.decoder(ids, z)
    handle.remove()
    assert (seen[0] == 0).float().mean() > 0.2


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.75])
def test_partial_kl_keeps_the_references_round_of_each_length(fraction, tokenizer):
    model = tiny_model("twr-vae", len(tokenizer), kl_timestep_fraction=fraction)
    lengths = torch.arange(1, 21)
    mean = torch.zeros(20, 20, model.config.latent_size)
    logvar = torch.zeros_like(mean)
    mean[:, :, 0] = 1.0  # KL 0.5 at every timestep, so each sequence's sum counts its regularised steps
    kl = model.timestep_kl_per_dimension(mean, logvar, lengths).sum(-1)
    counts = [max(1, round(length * fraction)) for length in range(1, 21)]  # the papers' code: Python's round
    # The average over the kept steps is 0.5 whatever their count; which steps are kept shows in the gradient.
    torch.testing.assert_close(kl, torch.full((20,), 0.5))
    mean.requires_grad_(True)
    model.timestep_kl_per_dimension(mean, logvar, lengths).sum().backward()
    kept = (mean.grad[:, :, 0] != 0).sum(1).tolist()
    assert kept == counts
    for row, length in enumerate(range(1, 21)):  # the kept steps end at each sentence's own last one
        assert mean.grad[row, length - 1, 0] != 0 and (mean.grad[row, length:, 0] == 0).all()


def test_inputless_decoder_ignores_previous_words(tokenizer):
    model = tiny_model("hr-vae-inputless", len(tokenizer)).eval()
    z = torch.randn(1, model.config.latent_size)
    a = tokenizer(["the market fell sharply"], return_tensors="pt")["input_ids"]
    b = tokenizer(["a dog ran home"], return_tensors="pt")["input_ids"]
    torch.testing.assert_close(model.decoder(a, z)[0], model.decoder(b, z)[0])
    standard = tiny_model("hr-vae", len(tokenizer)).eval()
    assert not torch.allclose(standard.decoder(a, z)[0], standard.decoder(b, z)[0])


def test_word_dropout_replaces_words_with_unk_only_in_training(tokenizer, batch):
    model = tiny_model("twr-vae", len(tokenizer), word_dropout=1.0)
    ids = batch["input_ids"]
    model.train()
    dropped = model.decoder.decoder_input_ids(ids)
    keep = (ids == model.config.bos_token_id) | (ids == model.config.pad_token_id)
    assert (dropped[keep] == ids[keep]).all() and (dropped[~keep] == model.config.unk_token_id).all()
    model.eval()
    assert torch.equal(model.decoder.decoder_input_ids(ids), ids)


def test_bad_inputs_raise_clear_errors(tokenizer, batch):
    model = tiny_model("twr-vae", len(tokenizer)).eval()
    with pytest.raises(ValueError, match="tokenizer does not match this model"):
        model(input_ids=torch.tensor([[2, len(tokenizer) + 5, 3]]))
    with pytest.raises(ValueError, match="right-padded"):
        model(input_ids=torch.tensor([[0, 2, 5, 3]]), attention_mask=torch.tensor([[0, 1, 1, 1]]))
    with pytest.raises(ValueError, match="at least one real token"):
        model(input_ids=torch.tensor([[0, 0]]), attention_mask=torch.tensor([[0, 0]]))
    with pytest.raises(ValueError, match="`reduction` must be"):
        model(**batch, reduction="sum")


def test_tuple_output_and_seeded_training_forward_is_reproducible(tokenizer, batch):
    model = tiny_model("twr-vae", len(tokenizer), dropout=0.5, word_dropout=0.3).train()
    torch.manual_seed(7)
    first = model(**batch).loss
    torch.manual_seed(7)
    second = model(**batch, return_dict=False)[0]
    assert torch.equal(first, second)


def test_free_bits_clamp_each_dimension_of_the_batch_mean_regulariser(tokenizer, batch):
    model = spread_posterior(tiny_model("twr-vae", len(tokenizer)).eval())
    plain = model(**batch, sample_posterior=False)
    per_sequence = model(**batch, sample_posterior=False, reduction="none")
    lengths = batch["attention_mask"].sum(1)
    dims = model.timestep_kl_per_dimension(plain.posterior_mean, plain.posterior_logvar, lengths)  # (batch, latent)
    torch.testing.assert_close(dims.sum(-1), per_sequence.kl_regularizer)
    threshold = float(dims.mean(0).median().detach())  # some dimensions below it, some above
    clamped = model(**batch, sample_posterior=False, free_bits=threshold)
    expected = plain.reconstruction_loss + dims.mean(0).clamp(min=threshold).sum()
    torch.testing.assert_close(clamped.loss, expected)
    assert clamped.loss > plain.loss
    torch.testing.assert_close(clamped.kl_regularizer, plain.kl_regularizer)  # reported unclamped
