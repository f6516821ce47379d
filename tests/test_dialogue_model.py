import pytest
import torch

from modeling_twrvae import TWRCVAEConfig, TWRCVAEModel

from dialogue_helpers import batch_of, dailydialog_pairs, dialogue_tokenizer, tiny_cvae


@pytest.fixture(scope="module")
def dd_tokenizer():
    return dialogue_tokenizer()


@pytest.fixture(scope="module")
def pairs():
    return dailydialog_pairs(40)


@pytest.fixture(scope="module")
def mixed(pairs):
    """Rows with 1, 2, 3 and 4 (the window) context utterances."""
    by_count = {}
    for row in pairs:
        by_count.setdefault(len(row["context"]), row)
    assert sorted(by_count) == [1, 2, 3, 4]
    return [by_count[count] for count in (3, 1, 4, 2)]


def hand_kl(q_mean, q_logvar, p_mean, p_logvar):
    """KL(N(q) || N(p)) of diagonal Gaussians, written out per dimension."""
    total = 0.0
    for qm, qv, pm, pv in zip(q_mean.tolist(), q_logvar.tolist(), p_mean.tolist(), p_logvar.tolist(), strict=True):
        total += 0.5 * (pv - qv + (torch.tensor(qv).exp() + (qm - pm) ** 2) / torch.tensor(pv).exp() - 1.0).item()
    return total


@pytest.mark.parametrize("preset", ["twr-cvae", "cvae"])
def test_shapes_and_finite_losses(preset, dd_tokenizer, mixed):
    model = tiny_cvae(preset, len(dd_tokenizer))
    batch = batch_of(mixed, dd_tokenizer)
    output = model(**batch)
    batch_size, window = batch["context_speakers"].shape
    assert output.logits.shape == (*batch["input_ids"].shape, len(dd_tokenizer))
    assert output.posterior_mean.shape == output.prior_logvar.shape == (batch_size, window, 5)
    assert output.latents.shape == (batch_size, 5) and output.context_vector.shape == (batch_size, 10)
    for name in ("loss", "reconstruction_loss", "kl_regularizer", "kl_decoded"):
        value = getattr(output, name)
        assert value.dim() == 0 and torch.isfinite(value), name
    # the bag-of-words loss as the text model gives it: a number when it is on, None when it is off
    assert (output.bow_loss is not None) == (preset == "cvae")
    expected = output.reconstruction_loss + output.kl_regularizer
    if preset == "cvae":
        assert output.bow_loss.dim() == 0 and output.bow_loss > 0
        expected = expected + model.config.bow_loss_weight * output.bow_loss
    torch.testing.assert_close(output.loss, expected)


@pytest.mark.parametrize("preset", ["twr-cvae", "cvae"])
def test_regulariser_is_the_hand_computed_average_kl_per_dialogue(preset, dd_tokenizer, mixed):
    model = tiny_cvae(preset, len(dd_tokenizer), latent_initializer_range=0.5).eval()
    batch = batch_of(mixed, dd_tokenizer)
    with torch.no_grad():
        output = model(**batch, reduction="none")
    for b, row in enumerate(mixed):
        count = len(row["context"])
        steps = [
            hand_kl(
                output.posterior_mean[b, j],
                output.posterior_logvar[b, j],
                output.prior_mean[b, j],
                output.prior_logvar[b, j],
            )
            for j in range(count)
        ]
        expected = sum(steps) / count if preset == "twr-cvae" else steps[-1]
        assert output.kl_regularizer[b].item() == pytest.approx(expected, rel=1e-4)
        assert output.kl_decoded[b].item() == pytest.approx(steps[-1], rel=1e-4)
        assert expected > 1e-3  # the check is not vacuous


def test_a_dialogue_gets_the_same_loss_in_a_mixed_batch_as_alone(dd_tokenizer, mixed):
    model = tiny_cvae("twr-cvae", len(dd_tokenizer), latent_initializer_range=0.5).eval()
    with torch.no_grad():
        together = model(**batch_of(mixed, dd_tokenizer), reduction="none")
        for b, row in enumerate(mixed):
            alone = model(**batch_of([row], dd_tokenizer), reduction="none")
            for name in ("loss", "reconstruction_loss", "kl_regularizer", "kl_decoded"):
                torch.testing.assert_close(getattr(together, name)[b], getattr(alone, name)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("preset", ["twr-cvae", "cvae"])
def test_gradients_reach_every_context_step_only_for_twr(preset, dd_tokenizer, mixed):
    model = tiny_cvae(preset, len(dd_tokenizer), latent_initializer_range=0.5).train()
    output = model(**batch_of(mixed, dd_tokenizer), sample_posterior=False)
    tensors = [output.posterior_mean, output.posterior_logvar, output.prior_mean, output.prior_logvar]
    for tensor in tensors:
        tensor.retain_grad()
    output.loss.backward()
    for b, row in enumerate(mixed):
        count = len(row["context"])
        for tensor in tensors:
            reached = tensor.grad[b].abs().sum(-1) > 0
            if preset == "twr-cvae":
                expected = [j < count for j in range(reached.shape[0])]
            else:
                expected = [j == count - 1 for j in range(reached.shape[0])]
            assert reached.tolist() == expected
    for layer in (model.recognition, model.prior_hidden, model.prior_output):
        assert layer.weight.grad.abs().sum() > 0


def test_greedy_generate_equals_a_step_by_step_loop(dd_tokenizer, mixed):
    model = tiny_cvae("twr-cvae", len(dd_tokenizer), seed=2).eval()
    context = {key: value for key, value in batch_of(mixed, dd_tokenizer).items() if key.startswith("context")}
    prior, _ = model.prior_distribution(**context)
    latents = prior.sample(generator=torch.Generator().manual_seed(0))
    generated = model.generate(**context, latents=latents, do_sample=False, max_new_tokens=10)
    ids = torch.full((len(mixed), 1), model.config.bos_token_id)
    done = torch.zeros(len(mixed), dtype=torch.bool)
    for _ in range(10):
        with torch.no_grad():
            logits = model(input_ids=ids, latents=latents, **context).logits  # whole prefix, no cache
        next_ids = logits[:, -1].argmax(-1)
        next_ids = torch.where(done, torch.full_like(next_ids, model.config.pad_token_id), next_ids)
        ids = torch.cat([ids, next_ids[:, None]], dim=1)
        done |= next_ids == model.config.eos_token_id
        if done.all():
            break
    assert torch.equal(generated, ids)


def test_default_generation_decodes_one_prior_sample_per_response(dd_tokenizer, mixed):
    model = tiny_cvae("twr-cvae", len(dd_tokenizer), seed=2, latent_initializer_range=0.5).eval()
    with torch.no_grad():
        model.decoder_init.weight.mul_(20.0)  # make the response depend visibly on z
        model.lm_head.weight.mul_(5.0)
    context = {key: value for key, value in batch_of(mixed[:2], dd_tokenizer).items() if key.startswith("context")}
    generated = model.generate(
        **context, num_return_sequences=3, max_new_tokens=8, generator=torch.Generator().manual_seed(5)
    )
    assert generated.shape[0] == 6
    prior, _ = model.prior_distribution(**context)
    expanded = {key: value.repeat_interleave(3, dim=0) for key, value in context.items()}
    mean, logvar = prior.mean.repeat_interleave(3, dim=0), prior.logvar.repeat_interleave(3, dim=0)
    noise = torch.randn(mean.shape, generator=torch.Generator().manual_seed(5))
    by_hand = model.generate(**expanded, latents=mean + (0.5 * logvar).exp() * noise, max_new_tokens=8)
    assert torch.equal(generated, by_hand)
    assert len({tuple(row) for row in generated[:3].tolist()}) > 1  # greedy, yet different responses


def test_beam_search_and_sampling(dd_tokenizer, mixed):
    model = tiny_cvae("cvae", len(dd_tokenizer), seed=1).eval()
    context = {key: value for key, value in batch_of(mixed, dd_tokenizer).items() if key.startswith("context")}
    prior, _ = model.prior_distribution(**context)
    beams = model.generate(**context, latents=prior.mean, num_beams=3, num_return_sequences=2, max_new_tokens=6)
    assert beams.shape[0] == 2 * len(mixed)
    torch.manual_seed(0)
    first = model.generate(**context, do_sample=True, top_k=20, num_return_sequences=2, max_new_tokens=6)
    torch.manual_seed(0)
    assert torch.equal(
        first, model.generate(**context, do_sample=True, top_k=20, num_return_sequences=2, max_new_tokens=6)
    )


def test_respond_returns_strings(dd_tokenizer):
    model = tiny_cvae("twr-cvae", len(dd_tokenizer)).eval()
    responses = model.respond(["how are you ?", "fine , thanks ."], dd_tokenizer, max_new_tokens=5)
    assert len(responses) == 10 and all(isinstance(text, str) for text in responses)
    with pytest.raises(ValueError, match="list of turns"):
        model.respond("how are you ?", dd_tokenizer)


def test_bad_inputs_are_clear_errors(dd_tokenizer, mixed):
    model = tiny_cvae("twr-cvae", len(dd_tokenizer))
    batch = batch_of(mixed, dd_tokenizer)
    with pytest.raises(ValueError, match="needs the context"):
        model(input_ids=batch["input_ids"])
    too_long = {**batch, "context_input_ids": batch["context_input_ids"].repeat(1, 2, 1)}
    too_long["context_attention_mask"] = batch["context_attention_mask"].repeat(1, 2, 1)
    with pytest.raises(ValueError, match="at most context_window=4"):
        model(**too_long)
    with pytest.raises(ValueError, match=r"floors in \[0, num_floors=2\)"):
        model(**{**batch, "context_speakers": batch["context_speakers"] + 2})
    with pytest.raises(ValueError, match="generate\\(\\) writes a response"):
        model.generate(max_new_tokens=3)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("latent_size", 0, "positive integer"),
        ("context_window", -1, "positive integer"),
        ("kl_regularizer", "first", "kl_regularizer"),
        ("bow_loss_weight", -1.0, "bow_loss_weight"),
        ("dropout", 1.0, "dropout"),
        ("context_dropout", -0.1, "context_dropout"),
        ("latent_initializer_range", 0.0, "latent_initializer_range"),
    ],
)
def test_config_range_checks(field, value, message):
    with pytest.raises(ValueError, match=message):
        TWRCVAEConfig(**{field: value})


def test_presets_are_the_paper_sizes_and_the_baseline():
    paper = TWRCVAEConfig.from_preset("twr-cvae")
    assert (paper.embedding_size, paper.utterance_hidden_size, paper.context_hidden_size) == (200, 300, 300)
    assert (paper.decoder_hidden_size, paper.latent_size, paper.context_window) == (300, 200, 10)
    assert paper.kl_regularizer == "timestep_wise" and paper.bow_loss_weight == 0
    baseline = TWRCVAEConfig.from_preset("cvae")
    assert baseline.kl_regularizer == "last" and baseline.bow_loss_weight == 1.0
    assert isinstance(
        TWRCVAEModel(TWRCVAEConfig.from_preset("cvae", vocab_size=30, **{"latent_size": 4})), TWRCVAEModel
    )


def test_twr_cvae_preset_has_the_authors_dropouts_and_prior_size():
    paper = TWRCVAEConfig.from_preset("twr-cvae")
    assert (paper.dropout, paper.context_dropout, paper.prior_hidden_size) == (0.5, 0.25, 200)
    assert TWRCVAEConfig.from_preset("twr-cvae", latent_size=48).prior_hidden_size == 48  # derived from z
    assert TWRCVAEConfig.from_preset("twr-cvae", latent_size=48, prior_hidden_size=96).prior_hidden_size == 96
    zhao = TWRCVAEConfig.from_preset("cvae")
    assert (zhao.dropout, zhao.context_dropout, zhao.prior_hidden_size) == (0.0, 0.0, 400)


def test_context_dropout_acts_on_the_context_encoder_inputs_and_nothing_on_the_decoder_output(dd_tokenizer, mixed):
    inputs = batch_of(mixed, dd_tokenizer)
    batch = {key: value for key, value in inputs.items() if key.startswith("context")}
    states, inputs_read = {}, {}
    for rate in (0.0, 0.5):
        model = tiny_cvae("twr-cvae", len(dd_tokenizer), dropout=0.0, context_dropout=rate).train()
        seen = []
        model.context_encoder.register_forward_pre_hook(lambda module, args, seen=seen: seen.append(args[0]))
        states[rate] = model.encode_context(**batch)[0]
        inputs_read[rate] = seen[0]
    real = inputs_read[0.0] != 0  # padding utterances' slots are zero either way
    dropped = (inputs_read[0.5][real] == 0).float().mean().item()
    assert 0.4 < dropped < 0.6
    torch.testing.assert_close(
        inputs_read[0.5][real & (inputs_read[0.5] != 0)], 2 * inputs_read[0.0][real & (inputs_read[0.5] != 0)]
    )
    assert not torch.allclose(states[0.0], states[0.5])
    model = tiny_cvae("twr-cvae", len(dd_tokenizer)).train()  # dropout 0.5 on embeddings
    read, written = [], []
    model.lm_head.register_forward_pre_hook(lambda module, args: read.append(args[0]))
    model.decoder.register_forward_hook(lambda module, args, output: written.append(output[0]))
    model.decode(inputs["input_ids"], torch.randn(len(mixed), model.config.condition_size))
    assert torch.equal(read[0], written[0])  # the decoder's output reaches the softmax undropped
