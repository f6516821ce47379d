"""SeqGAN for dialogue: its losses recomputed by hand on toy cases (the authors' code is Lua Torch, so there is no
module to compare weights with), what each phase's update trains, `respond` with 10 responses, save/load (also in a
process without the package) and training/train.py's phases."""

import json

import pytest
import torch

from modeling_twrvae import SeqGANConfig, SeqGANModel

from dialogue_helpers import batch_of, dailydialog_pairs, dialogue_tokenizer
from helpers import DATA_DIR, run_offline, without_the_package

TINY = {"embedding_size": 8, "hidden_size": 6, "discriminator_hidden_size": 5, "context_window": 4,
        "max_response_length": 7}  # fmt: skip


@pytest.fixture(scope="module")
def tokenizer():
    return dialogue_tokenizer()


@pytest.fixture(scope="module")
def batch(tokenizer):
    return dict(batch_of(dailydialog_pairs(6), tokenizer))


def tiny(vocab_size: int, seed: int = 0, **overrides) -> SeqGANModel:
    torch.manual_seed(seed)
    return SeqGANModel(SeqGANConfig.from_preset("seqgan", vocab_size=vocab_size, **{**TINY, **overrides}))


def parameters_of(*modules):
    return {id(p) for module in modules for p in module.parameters()}


def changed(before: dict, model) -> set[str]:
    return {name for name, value in model.state_dict().items() if not torch.equal(value, before[name])}


def test_the_likelihood_loss_is_the_sentence_sum_averaged_over_the_batch(tokenizer, batch):
    model = tiny(len(tokenizer)).eval()
    output = model(**batch)
    targets, real = batch["input_ids"][:, 1:], batch["attention_mask"][:, 1:].bool()
    token_nll = -torch.log_softmax(output.logits, -1).gather(-1, targets[..., None]).squeeze(-1) * real
    torch.testing.assert_close(output.loss, token_nll.sum() / len(targets))
    torch.testing.assert_close(model(**batch, reduction="none").reconstruction_loss, token_nll.sum(1))


def test_each_rewarded_token_gets_the_verdict_on_its_completions(tokenizer, batch, monkeypatch):
    """The rewards' bookkeeping against a hand computation: completions that always add (7, <eos>), and a
    discriminator whose P(human) is the share of token 7 in the response. A prefix y_1..y_t gets the verdict on
    y_1..y_t 7 <eos>; the last token gets the verdict on the whole response; nothing after it is rewarded."""
    model = tiny(len(tokenizer))
    eos, pad = model.config.eos_token_id, model.config.pad_token_id

    def completion(state, tokens, steps, generator=None, close=True):
        return torch.tensor([[7, eos]]).expand(tokens.shape[0], 2)

    def verdict(part, responses, contexts=None):
        real = responses != pad
        share = ((responses == 7) & real).sum(1) / real.sum(1)
        return torch.stack([share.log(), (1 - share).clamp_min(1e-9).log()], dim=1)

    monkeypatch.setattr(model, "_continue", completion)
    monkeypatch.setattr(model, "discriminate", verdict)
    rows = batch["input_ids"].shape[0]
    sequences = torch.full((rows, 6), pad)
    sequences[:, 0] = model.config.bos_token_id
    lengths = [1, 2, 3, 4, 5, 3][:rows]
    for row, length in enumerate(lengths):
        sequences[row, 1:length] = torch.tensor([7, 9, 7, 9])[: length - 1]
        sequences[row, length] = eos
    rewards, whole = model.rewards(batch, sequences)

    def share(tokens):
        return sum(t == 7 for t in tokens) / (len(tokens) + 1)  # + 1: <bos>

    for row, length in enumerate(lengths):
        words = sequences[row, 1 : length + 1].tolist()
        assert whole[row].item() == pytest.approx(share(words), abs=1e-5)
        expected = [share(words[:t] + [7, eos]) for t in range(1, length)] + [share(words)]
        assert rewards[row, :length].tolist() == pytest.approx(expected, abs=1e-5)
        assert (rewards[row, length:] == 0).all()

    model.config.monte_carlo_samples = 0  # every token gets the whole response's reward
    rewards, whole = model.rewards(batch, sequences)
    for row, length in enumerate(lengths):
        assert rewards[row, :length].tolist() == pytest.approx([whole[row].item()] * length)


def test_completions_start_from_the_prefix_s_own_decoder_state(tokenizer, batch, monkeypatch):
    """The state a completion starts from, fed the prefix's last token, predicts what the decoder reading the whole
    prefix predicts."""
    model = tiny(len(tokenizer)).eval()
    _, sequences = model._sampled_batch(batch, torch.Generator().manual_seed(0))
    calls, original = [], model._continue

    def recording(state, tokens, steps, generator=None, close=True):
        calls.append((state, tokens))
        return original(state, tokens, steps, generator, close)

    monkeypatch.setattr(model, "_continue", recording)
    model.rewards(batch, sequences)
    assert calls
    context = model.context_vector(batch["context_input_ids"], batch["context_attention_mask"])
    with torch.no_grad():
        full = model.decode(context, sequences)
    samples = model.config.monte_carlo_samples
    lengths = (sequences[:, 1:] != model.config.pad_token_id).sum(1)
    for t, (state, tokens) in enumerate(calls, start=1):
        rows = (lengths > t).nonzero().squeeze(1)
        with torch.no_grad():
            output, _ = model.decoder(model.embed_tokens(tokens), state)
        torch.testing.assert_close(model.lm_head(output[:, -1]), full[rows, t].repeat_interleave(samples, 0))


def test_the_policy_loss_by_hand_and_its_step_makes_rewarded_responses_likelier(tokenizer, batch):
    model = tiny(len(tokenizer), dropout=0.0, context_dropout=0.0)
    _, sequences = model._sampled_batch(batch, torch.Generator().manual_seed(0))
    rows, steps = sequences.shape[0], sequences.shape[1] - 1
    rewards = torch.rand(rows, steps, generator=torch.Generator().manual_seed(1)) * (sequences[:, 1:] != 0)
    baseline = torch.rand(rows, generator=torch.Generator().manual_seed(2))
    loss = model.policy_loss(batch, sequences, rewards, baseline)
    context = model.context_vector(batch["context_input_ids"], batch["context_attention_mask"])
    log_probs = torch.log_softmax(model.decode(context, sequences[:, :-1]), -1)
    expected = 0.0
    for i in range(rows):
        for t in range(steps):
            token = sequences[i, t + 1].item()
            if token != 0:
                expected += 0.5 * (baseline[i] - rewards[i, t]) * log_probs[i, t, token]
    torch.testing.assert_close(loss, expected / rows**2)

    # rewards above the baseline: one SGD step raises the sampled responses' likelihood
    def likelihood():
        log_p = torch.log_softmax(model.decode(model.context_vector(batch["context_input_ids"],
                                                                    batch["context_attention_mask"]),
                                                sequences[:, :-1]), -1)  # fmt: skip
        return (log_p.gather(-1, sequences[:, 1:, None]).squeeze(-1) * (sequences[:, 1:] != 0)).sum()

    before = likelihood().item()
    optimizer = torch.optim.SGD(model.generator_parameters(), lr=5.0)
    model.policy_loss(
        batch, sequences, torch.ones_like(rewards) * (sequences[:, 1:] != 0), torch.zeros(rows)
    ).backward()
    optimizer.step()
    assert likelihood().item() > before


def test_encoded_contexts_once_give_the_verdicts_of_the_whole_discriminator(tokenizer, batch):
    model = tiny(len(tokenizer)).eval()
    _, sampled = model._sampled_batch(batch, torch.Generator().manual_seed(5))
    twice = sampled.repeat_interleave(2, 0)
    with torch.no_grad():
        cached = model.discriminate(batch, twice, model.encode_discriminator_contexts(batch))
        whole = model.discriminator(batch["context_input_ids"].repeat_interleave(2, 0),
                                    batch["context_attention_mask"].repeat_interleave(2, 0), twice, twice != 0)  # fmt: skip
    torch.testing.assert_close(cached, whole)


def test_the_discriminator_loss_is_the_mean_cross_entropy_of_human_against_sampled(tokenizer, batch):
    model = tiny(len(tokenizer), discriminator_dropout=0.0)
    loss = model.discriminator_loss(batch, torch.Generator().manual_seed(4))
    _, sampled = model._sampled_batch(batch, torch.Generator().manual_seed(4))
    human = torch.log_softmax(model.discriminate(batch, batch["input_ids"]), -1)[:, 0]
    fake = torch.log_softmax(model.discriminate(batch, sampled), -1)[:, 1]
    torch.testing.assert_close(loss, -(human.sum() + fake.sum()) / (2 * len(human)))


def test_each_phase_updates_what_it_trains(tokenizer, batch):
    model = tiny(len(tokenizer))
    optimizers = model.adversarial_optimizers()
    generator = {n for n, _ in model.named_parameters() if n.split(".")[0] not in ("discriminator", "baseline")}
    discriminator = {n for n, _ in model.named_parameters() if n.startswith("discriminator.")}
    for phase, expected in (
        ("generator_pretraining", generator),
        ("discriminator_pretraining", discriminator),
        ("adversarial", generator | discriminator | {"baseline.weight", "baseline.bias"}),
    ):
        before = {name: value.clone() for name, value in model.state_dict().items()}
        values = model.adversarial_update([batch, batch], optimizers, phase=phase)
        assert changed(before, model) == expected, phase
        assert all(torch.isfinite(torch.tensor(v)) for v in values.values())
    assert values["generator_loss"] < 0 and values["critic_loss"] > 0 and values["autoencoder_loss"] > 0
    with pytest.raises(ValueError, match="`phase` must be one of"):
        model.adversarial_update([batch], optimizers, phase="pretraining")


def test_a_drawn_token_follows_its_distribution_and_never_one_of_probability_zero():
    from modeling_twrvae.modeling_seqgan import _draw

    probabilities = torch.tensor([[0.0, 0.5, 0.0, 0.3, 0.2], [0.0, 0.0, 0.0, 0.0, 1.0]]).repeat(20000, 1)
    drawn = _draw(probabilities, torch.Generator().manual_seed(0)).squeeze(1)
    first, second = drawn[0::2], drawn[1::2]
    assert (second == 4).all() and not torch.isin(first, torch.tensor([0, 2])).any()
    shares = torch.bincount(first, minlength=5).float() / len(first)
    torch.testing.assert_close(shares, probabilities[0], atol=0.015, rtol=0)


def test_sampled_responses_stay_in_the_vocabulary_they_may_draw(tokenizer, batch):
    model = tiny(len(tokenizer))
    sequences = model.sample_responses(batch["context_input_ids"], batch["context_attention_mask"],
                                       num_return_sequences=3, max_new_tokens=9,
                                       generator=torch.Generator().manual_seed(0))  # fmt: skip
    config = model.config
    assert sequences.shape[0] == 3 * batch["input_ids"].shape[0] and sequences.shape[1] <= 10
    drawn = sequences[:, 1:]
    assert not torch.isin(drawn, torch.tensor([config.unk_token_id, config.bos_token_id])).any()
    for row in drawn.tolist():  # nothing but padding after <eos>
        if config.eos_token_id in row:
            assert set(row[row.index(config.eos_token_id) + 1 :]) <= {config.pad_token_id}
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.sample_responses(batch["context_input_ids"], max_new_tokens=0)
    with pytest.raises(ValueError, match="monte_carlo_samples"):
        SeqGANConfig(monte_carlo_samples=-1)


def test_respond_gives_ten_responses_and_save_load_keeps_them(tokenizer, batch, tmp_path):
    model = tiny(len(tokenizer))
    model.adversarial_update([batch, batch], model.adversarial_optimizers())
    turns = ["how are you ?", "fine , thanks ."]
    responses = model.respond(turns, tokenizer, generator=torch.Generator().manual_seed(0), max_new_tokens=6)
    assert len(responses) == 10 and len(set(responses)) > 1
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "seqgan" and config["auto_map"]["AutoModel"] == "modeling_seqgan.SeqGANModel"
    loaded = SeqGANModel.from_pretrained(folder)
    assert loaded.respond(turns, tokenizer, generator=torch.Generator().manual_seed(0), max_new_tokens=6) == responses

    torch.save({"batch": batch, "loss": loaded.eval()(**batch).reconstruction_loss.detach()}, tmp_path / "ref.pt")
    script = without_the_package(
        f"""
        import torch
        from transformers import AutoModel, AutoTokenizer
        reference = torch.load({str(tmp_path / "ref.pt")!r})
        model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        with torch.no_grad():
            loss = model(**reference["batch"]).reconstruction_loss
        assert torch.equal(loss, reference["loss"]), (loss, reference["loss"])
        tokenizer = AutoTokenizer.from_pretrained({str(folder)!r}, trust_remote_code=True)
        print(len(model.respond(["hello !"], tokenizer, max_new_tokens=4)))
        """
    )
    done = run_offline(script, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "10"


# ----- training/train.py and training/evaluate.py -----


def train_seqgan(output_dir, **options):
    from accelerate.state import AcceleratorState, GradientState

    from modeling_twrvae.commands import train

    settings = {"config": "dialogue/dailydialog-seqgan", "data_dir": str(DATA_DIR), "max_train_samples": "96",
                "max_eval_samples": "16",
                "config_overrides": "embedding_size=12,hidden_size=10,discriminator_hidden_size=8,max_response_length=6",
                "max_train_steps": "6", "generator_pretrain_steps": "2", "discriminator_pretrain_steps": "2",
                "critic_updates": "2", "eval_steps": "3", "checkpointing_steps": "3", "logging_steps": "1",
                "per_device_train_batch_size": "8", "output_dir": str(output_dir),
                **{key: str(value) for key, value in options.items()}}  # fmt: skip
    argv = [item for key, value in settings.items() for item in (f"--{key}", value)]
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    return train.main(argv)


def test_train_py_runs_the_three_phases_and_resumes_exactly(tmp_path):
    from safetensors.torch import load_file

    summary = train_seqgan(tmp_path / "run")
    assert summary["global_step"] == 6
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train_records = [r for r in records if "critic_loss" in r]
    # rounds 1-2 train the generator alone, 3-4 the discriminator alone, 5-6 are adversarial
    assert [r["critic_loss"] > 0 for r in train_records] == [False, False, True, True, True, True]
    assert [r["generator_loss"] < 0 for r in train_records] == [False] * 4 + [True, True]
    assert all(r["autoencoder_loss"] > 0 for r in train_records)
    assert isinstance(SeqGANModel.from_pretrained(tmp_path / "run"), SeqGANModel)

    # stopped after the checkpoint of round 3 (in the discriminator's phase) and resumed: the same weights
    resumed = tmp_path / "resumed"
    train_seqgan(resumed, max_train_steps=3)
    train_seqgan(resumed, resume_from_checkpoint="latest")
    ours, theirs = load_file(tmp_path / "run" / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)

    from modeling_twrvae.commands import evaluate

    results = evaluate.main(["--model_name_or_path", str(tmp_path / "run"), "--dataset", "dailydialog", "--split",
                             "test", "--data_dir", str(DATA_DIR), "--max_samples", "3", "--num_responses", "10",
                             "--max_new_tokens", "4", "--output_file", str(tmp_path / "eval.json")])  # fmt: skip
    assert results["num_contexts"] == 3 and results["reconstruction_loss"] > 0 and "elbo_nll" not in results
    assert results["inter_distinct_1"] > 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"generator_learning_rate": 0.1}, "SeqGAN's generator takes --learning_rate"),
        ({"metric_for_best_model": "elbo_nll"}, "DialogWAE, iVAE and SeqGAN have no ELBO"),
        ({"generator_pretrain_steps": -1}, "--generator_pretrain_steps must be a finite number >= 0"),
    ],
)
def test_train_py_refuses_what_seqgan_cannot_take(options, message, tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_seqgan(tmp_path / "run", **options)
    assert message in capsys.readouterr().err


def test_the_pretraining_options_are_seqgan_s_alone(tmp_path, capsys):
    from test_dialogwae import train_dialogwae

    with pytest.raises(SystemExit):
        train_dialogwae(tmp_path / "run", generator_pretrain_steps=2)
    assert "--generator_pretrain_steps applies to SeqGAN only" in capsys.readouterr().err
