import json

import pytest
import torch
import torch.nn.functional as F
from transformers import GenerationConfig

from modeling_twrvae import TWRVAEDecoderCache, TWRVAEModel, interpolate_latents

from helpers import informative, tiny_model


@pytest.fixture(scope="module")
def model(tokenizer):
    return informative(tiny_model("twr-vae", len(tokenizer), seed=3))


@pytest.fixture(scope="module")
def latents(model):
    return model.sample_prior(4, generator=torch.Generator().manual_seed(0))


def sequence_log_probs(model, latents, sequences, eos_token_id, pad_token_id):
    """Teacher-forced log p(sequence | z), summed over generated tokens up to and including the first <eos>."""
    with torch.no_grad():
        logits = model(input_ids=sequences, latents=latents).logits
    log_probs = F.log_softmax(logits[:, :-1], dim=-1).gather(-1, sequences[:, 1:, None])[..., 0]
    totals = []
    for row, tokens in zip(log_probs, sequences[:, 1:], strict=True):
        total = 0.0
        for value, token in zip(row.tolist(), tokens.tolist(), strict=True):
            total += value
            if token == eos_token_id:
                break
        totals.append(total)
    return torch.tensor(totals)


def test_greedy_generate_equals_a_hand_written_argmax_loop(model, latents):
    generated = model.generate(latents=latents, do_sample=False, max_new_tokens=12)
    ids = torch.full((len(latents), 1), model.config.bos_token_id)
    done = torch.zeros(len(latents), dtype=torch.bool)
    for _ in range(12):
        with torch.no_grad():
            logits = model(input_ids=ids, latents=latents).logits  # no cache: the whole prefix each time
        next_ids = logits[:, -1].argmax(-1)
        next_ids = torch.where(done, torch.full_like(next_ids, model.config.pad_token_id), next_ids)
        ids = torch.cat([ids, next_ids[:, None]], dim=1)
        done |= next_ids == model.config.eos_token_id
        if done.all():
            break
    assert torch.equal(generated, ids)
    assert len({tuple(row) for row in generated.tolist()}) > 1  # different latents, different sentences


@pytest.mark.parametrize(
    "preset, cell",
    [("twr-vae", "lstm"), ("twr-vae", "gru"), ("twr-vae", "rnn"), ("hr-vae", "lstm"), ("hr-vae-inputless", "lstm")],
)
def test_carried_state_gives_the_teacher_forced_logits(preset, cell, tokenizer, ptb_lines):
    model = tiny_model(preset, len(tokenizer), rnn_type=cell).eval()
    batch = tokenizer(ptb_lines[:3], padding=True, return_tensors="pt")
    ids = batch["input_ids"]
    latents = model.encode(**batch).mode()
    with torch.no_grad():
        whole = model(input_ids=ids, latents=latents).logits
        cache, steps = None, []
        for t in range(ids.shape[1]):
            output = model(input_ids=ids[:, t : t + 1], latents=latents, cache=cache)
            cache = output.cache
            steps.append(output.logits)
    assert isinstance(cache, TWRVAEDecoderCache) and cache.get_seq_length() == ids.shape[1]
    torch.testing.assert_close(torch.cat(steps, dim=1), whole, rtol=1e-5, atol=1e-5)


def test_beam_search(model, latents):
    greedy = model.generate(latents=latents, do_sample=False, max_new_tokens=10)
    one_beam = model.generate(latents=latents, num_beams=1, do_sample=False, max_new_tokens=10)
    assert torch.equal(one_beam, greedy)

    beams = model.generate(
        latents=latents,
        num_beams=4,
        num_return_sequences=4,
        length_penalty=0.0,  # scores are plain sums of log-probabilities
        max_new_tokens=10,
        return_dict_in_generate=True,
        output_scores=True,
    )
    assert beams.sequences.shape[0] == 4 * len(latents)
    scores = beams.sequences_scores.view(len(latents), 4)
    assert (scores[:, :-1] >= scores[:, 1:] - 1e-6).all()  # sorted, best first

    eos, pad = model.config.eos_token_id, model.config.pad_token_id
    expanded = latents.repeat_interleave(4, dim=0)
    # every returned beam's score is its teacher-forced log-probability: each beam decoded from its own state
    teacher_forced = sequence_log_probs(model, expanded, beams.sequences, eos, pad)
    torch.testing.assert_close(beams.sequences_scores, teacher_forced, rtol=1e-4, atol=1e-4)
    assert len({tuple(row) for row in beams.sequences[:4].tolist()}) == 4  # the beams really diverged

    greedy_scores = sequence_log_probs(model, latents, greedy, eos, pad)
    assert (scores[:, 0] >= greedy_scores - 1e-4).all()


def test_sampling_is_reproducible_and_num_return_sequences_shapes(model, latents):
    kwargs = {"do_sample": True, "top_k": 20, "top_p": 0.9, "temperature": 0.8, "max_new_tokens": 8}
    torch.manual_seed(11)
    first = model.generate(latents=latents, num_return_sequences=3, **kwargs)
    torch.manual_seed(11)
    second = model.generate(latents=latents, num_return_sequences=3, **kwargs)
    assert torch.equal(first, second)
    assert first.shape[0] == 3 * len(latents) and first.shape[1] <= 1 + 8
    torch.manual_seed(12)
    assert not torch.equal(first, model.generate(latents=latents, num_return_sequences=3, **kwargs))


def test_standard_decoding_options(model, latents):
    eos = model.config.eos_token_id
    out = model.generate(latents=latents, max_new_tokens=15, no_repeat_ngram_size=1, do_sample=False)
    for row in out.tolist():
        words = [t for t in row[1:] if t not in (eos, model.config.pad_token_id)]
        assert len(words) == len(set(words))
    penalised = model.generate(latents=latents, max_new_tokens=15, repetition_penalty=5.0, do_sample=False)
    assert penalised.shape[0] == len(latents)
    result = model.generate(latents=latents, max_new_tokens=5, return_dict_in_generate=True, output_scores=True)
    assert len(result.scores) == result.sequences.shape[1] - 1
    assert result.scores[0].shape == (len(latents), model.config.vocab_size)
    # the default generation config: bos/eos/pad of the model, and a useful max length
    config = model.generation_config
    assert (config.bos_token_id, config.eos_token_id, config.pad_token_id) == (2, 3, 0)
    assert config.max_length == 64
    assert model.generate(latents=latents[:1]).shape[1] <= 64


def test_eos_ends_and_pads_finished_sequences(tokenizer):
    model = tiny_model("twr-vae", len(tokenizer)).eval()
    with torch.no_grad():
        model.decoder.lm_head.bias[model.config.eos_token_id] = 50.0  # <eos> always wins
    out = model.generate(latents=model.sample_prior(2), max_new_tokens=10)
    assert out.tolist() == [[2, 3], [2, 3]]


def test_inputless_model_generates_from_z_alone(tokenizer):
    model = informative(tiny_model("hr-vae-inputless", len(tokenizer)))
    z = model.sample_prior(2, generator=torch.Generator().manual_seed(1))
    greedy = model.generate(latents=z, max_new_tokens=6, do_sample=False)
    with torch.no_grad():
        # with only <unk> as input, the decoder's logits depend on z and the step count, never on earlier words
        forced = model(input_ids=greedy, latents=z).logits
        other = model(input_ids=torch.full_like(greedy, 7), latents=z).logits
    torch.testing.assert_close(forced, other)


def test_generation_config_is_saved_and_loaded(model, tmp_path):
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "generation_config.json").read_text())
    assert saved["bos_token_id"] == 2 and saved["eos_token_id"] == 3 and saved["pad_token_id"] == 0
    assert saved["max_length"] == 64
    loaded = TWRVAEModel.from_pretrained(tmp_path)
    assert isinstance(loaded.generation_config, GenerationConfig) and loaded.generation_config.max_length == 64


def test_encode_describes_the_decoded_latent(tokenizer, ptb_lines):
    for mode in ("last", "mean", "sum"):
        model = tiny_model("twr-vae", len(tokenizer), latent_mode=mode).eval()
        batch = tokenizer(ptb_lines[:5], padding=True, return_tensors="pt")
        posterior = model.encode(**batch)
        output = model(**batch, sample_posterior=False)
        torch.testing.assert_close(posterior.mode(), output.latents)
        torch.testing.assert_close(posterior.kl(), model(**batch, reduction="none").kl_decoded)
        assert posterior.std.shape == posterior.mean.shape == (5, model.config.latent_size)
        torch.manual_seed(0)
        first = posterior.sample()
        assert first.shape == posterior.mean.shape and not torch.equal(first, posterior.mean)
        assert torch.equal(
            posterior.sample(generator=torch.Generator().manual_seed(4)),
            posterior.sample(generator=torch.Generator().manual_seed(4)),
        )


def test_sample_prior(model):
    a = model.sample_prior(1000, generator=torch.Generator().manual_seed(0))
    assert a.shape == (1000, model.config.latent_size)
    assert abs(a.std().item() - 1.0) < 0.05
    b = model.sample_prior(1000, temperature=0.5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(b, 0.5 * a)
    with pytest.raises(ValueError, match="num_samples"):
        model.sample_prior(0)


def test_forward_with_latents_scores_a_sentence_under_any_latent(model, tokenizer, ptb_lines):
    batch = tokenizer(ptb_lines[:2], padding=True, return_tensors="pt")
    z = model.sample_prior(2, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        scored = model(**batch, latents=z, reduction="none")
        logits = model.decoder(batch["input_ids"], z)[0]
    log_probs = F.log_softmax(logits[:, :-1], -1).gather(-1, batch["input_ids"][:, 1:, None])[..., 0]
    expected = -(log_probs * batch["attention_mask"][:, 1:]).sum(1)
    torch.testing.assert_close(scored.loss, expected)
    assert scored.kl_regularizer is None and scored.posterior_mean is None  # the encoder was skipped


def test_text_helpers_and_interpolation_endpoints(model, tokenizer, ptb_lines):
    a, b = ptb_lines[0], ptb_lines[5]
    rebuilt = model.reconstruct([a, b], tokenizer, max_new_tokens=12)
    assert len(rebuilt) == 2 and all(isinstance(text, str) for text in rebuilt)
    for method in ("linear", "slerp"):
        alphas, texts = model.interpolate(a, b, tokenizer, steps=11, method=method, max_new_tokens=12)
        assert len(alphas) == len(texts) == 11
        assert alphas[0] == 0.0 and alphas[-1] == 1.0
        assert texts[0] == rebuilt[0] and texts[-1] == rebuilt[1]
    samples = model.sample(3, tokenizer, generator=torch.Generator().manual_seed(0), max_new_tokens=8)
    assert len(samples) == 3
    with pytest.raises(ValueError, match="`method` must be 'linear' or 'slerp'"):
        model.interpolate(a, b, tokenizer, method="cubic")


def test_slerp_keeps_the_norm_between_orthogonal_ends():
    start, end = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 3.0])
    points = interpolate_latents(start, end, torch.linspace(0, 1, 5), "slerp")
    torch.testing.assert_close(points.norm(dim=1), torch.full((5,), 3.0))
    torch.testing.assert_close(points[0], start)
    torch.testing.assert_close(points[-1], end)
    linear = interpolate_latents(start, end, torch.linspace(0, 1, 5), "linear")
    assert linear[2].norm() < 3.0


def test_collapsed_model_gives_the_same_text_for_every_sentence(tokenizer, ptb_lines):
    healthy = informative(tiny_model("twr-vae", len(tokenizer), seed=3))
    texts = ptb_lines[:6]
    assert len(set(healthy.reconstruct(texts, tokenizer, max_new_tokens=10))) > 1
    collapsed = informative(tiny_model("twr-vae", len(tokenizer), seed=3))
    with torch.no_grad():  # the encoder's output no longer depends on the sentence
        collapsed.encoder.mean.weight.zero_()
        collapsed.encoder.logvar.weight.zero_()
    assert len(set(collapsed.reconstruct(texts, tokenizer, max_new_tokens=10))) == 1


def test_generate_needs_latents(model):
    with pytest.raises(ValueError, match="generate\\(\\) decodes from latents"):
        model.generate(max_new_tokens=3)
    with pytest.raises(ValueError, match="`latents` must have shape"):
        model.generate(latents=torch.zeros(2, model.config.latent_size + 1))
