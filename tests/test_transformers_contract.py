"""The transformers contract: configs checked on every path, `forward` refusing unknown
keywords and taking `labels`, resizing the vocabulary, `ignore_mismatched_sizes`, `Trainer`, generation configs,
tokenizer pairs and a saved tokenizer that needs no custom code."""

import json
import logging
import os
import subprocess
import sys

import pytest
import torch
from datasets import Dataset
from safetensors.torch import load_file, save_file
from transformers import (
    AutoConfig,
    DataCollatorForLanguageModeling,
    DataCollatorWithPadding,
    GenerationConfig,
    PreTrainedTokenizerFast,
    Trainer,
    TrainingArguments,
)
from transformers import logging as transformers_logging

from modeling_twrvae import TWRCVAEConfig, TWRCVAEModel, TWRVAEConfig, TWRVAEModel
from modeling_twrvae.trainer.tasks import DialogueCollator

from dialogue_helpers import dailydialog_pairs, dialogue_tokenizer, tiny_cvae
from helpers import read_lines, tiny_model, without_the_package


@pytest.fixture(scope="module")
def lm_folder(tokenizer, tmp_path_factory):
    folder = tmp_path_factory.mktemp("lm")
    tiny_model("twr-vae", len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def batch(tokenizer, ptb_lines):
    return tokenizer(ptb_lines[:5], padding=True, return_tensors="pt")


@pytest.fixture(scope="module")
def dialogue():
    tokenizer = dialogue_tokenizer()
    pairs = dailydialog_pairs(6)
    features = [
        {
            "input_ids": tokenizer(row["response"])["input_ids"],
            "context_input_ids": tokenizer(row["context"])["input_ids"],
            "context_speakers": row["context_speakers"],
        }
        for row in pairs
    ]
    return tokenizer, DialogueCollator(tokenizer)(features)


# ----- item 7: a configuration is checked however it is built or changed -----

BAD_LM_VALUES = [
    ({"word_dropout": 1.7}, "word_dropout"),
    ({"rnn_type": "transformer"}, "rnn_type"),
    ({"pad_token_id": 3}, "must all differ"),
    ({"latent_size": -1}, "latent_size"),
    ({"dropout": "0.5"}, "`dropout` must be a number"),
]


@pytest.mark.parametrize("overrides, message", BAD_LM_VALUES)
def test_lm_config_overrides_are_checked_on_every_path(overrides, message, lm_folder, tmp_path):
    TWRVAEConfig(vocab_size=50).save_pretrained(tmp_path)
    builders = {
        "constructor": lambda: TWRVAEConfig(vocab_size=50, **overrides),
        "from_preset": lambda: TWRVAEConfig.from_preset("twr-vae", vocab_size=50, **overrides),
        "from_pretrained": lambda: TWRVAEConfig.from_pretrained(tmp_path, **overrides),
        "AutoConfig": lambda: AutoConfig.from_pretrained(tmp_path, **overrides),
        "from_dict": lambda: TWRVAEConfig.from_dict({"vocab_size": 50}, **overrides),
        "model from_pretrained": lambda: TWRVAEModel.from_pretrained(lm_folder, **overrides),
    }
    for name, build in builders.items():
        with pytest.raises(ValueError, match=message):
            build()
            pytest.fail(f"{name} accepted {overrides}")

    config = TWRVAEConfig(vocab_size=50)
    before = config.to_dict()
    with pytest.raises(ValueError, match=message):
        config.update(overrides)
    ((key, value),) = overrides.items()
    with pytest.raises(ValueError, match=message):
        setattr(config, key, value)
    assert config.to_dict() == before  # a refused change leaves the configuration as it was


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"word_dropout": 1.7}, "word_dropout"),
        ({"kl_regularizer": "transformer"}, "kl_regularizer"),
        ({"pad_token_id": 3}, "must all differ"),
        ({"latent_size": -1}, "latent_size"),
        ({"dropout": "0.5"}, "`dropout` must be a number"),
        ({"bow_loss_weight": "1"}, "`bow_loss_weight` must be a number"),
    ],
)
def test_dialogue_config_overrides_are_checked_on_every_path(overrides, message, tmp_path):
    TWRCVAEConfig(vocab_size=50).save_pretrained(tmp_path)
    builders = [
        lambda: TWRCVAEConfig(vocab_size=50, **overrides),
        lambda: TWRCVAEConfig.from_preset("cvae", vocab_size=50, **overrides),
        lambda: TWRCVAEConfig.from_pretrained(tmp_path, **overrides),
        lambda: AutoConfig.from_pretrained(tmp_path, **overrides),
        lambda: TWRCVAEConfig(vocab_size=50).update(overrides),
    ]
    for build in builders:
        with pytest.raises(ValueError, match=message):
            build()


def test_a_hand_edited_config_json_with_a_quoted_number_is_refused_naming_the_field(lm_folder, tmp_path):
    values = json.loads((lm_folder / "config.json").read_text())
    values["dropout"] = "0.5"
    (tmp_path / "config.json").write_text(json.dumps(values))
    with pytest.raises(ValueError, match=r"`dropout` must be a number, got '0.5'.*quotes in config.json"):
        AutoConfig.from_pretrained(tmp_path)


def test_changes_that_only_fit_together_are_accepted_together(tmp_path):
    TWRVAEConfig(vocab_size=50).save_pretrained(tmp_path)
    # split needs latent_size = 2 * hidden_size (512 for the default LSTM): one at a time, each would be refused
    loaded = TWRVAEConfig.from_pretrained(tmp_path, decoder_init="split", latent_size=512)
    assert (loaded.decoder_init, loaded.latent_size) == ("split", 512)
    config = TWRVAEConfig(vocab_size=50)
    config.update({"decoder_init": "split", "latent_size": 512})
    assert (config.decoder_init, config.latent_size) == ("split", 512)
    config.update_from_string("decoder_init=linear,latent_size=16")
    assert (config.decoder_init, config.latent_size) == ("linear", 16)
    with pytest.raises(ValueError, match="decoder_init='split'"):
        config.decoder_init = "split"
    assert config.decoder_init == "linear"


def test_save_pretrained_checks_a_config_changed_behind_its_back(tmp_path):
    config = TWRVAEConfig(vocab_size=50)
    config.__dict__["word_dropout"] = 2.0
    with pytest.raises(ValueError, match="word_dropout"):
        config.save_pretrained(tmp_path)


# ----- item 8: forward takes explicit arguments and refuses others -----


def test_forward_refuses_an_unknown_keyword_naming_it_and_the_close_match(batch, dialogue):
    model = tiny_model("twr-vae", 1200)
    with pytest.raises(TypeError, match=r"'kl_wieght' \(did you mean 'kl_weight'\?\)"):
        model(**batch, kl_wieght=0.0)
    tokenizer, dialogue_batch = dialogue
    cvae = tiny_cvae("twr-cvae", len(tokenizer))
    with pytest.raises(TypeError, match=r"'sample_posteriour' \(did you mean 'sample_posterior'\?\)"):
        cvae(**dialogue_batch, sample_posteriour=True)


def test_the_training_scripts_call_works_on_both_models(batch, dialogue):
    """training/train.py's call (the options its task gives each model family), on the language model's and the
    dialogue collator's batches."""
    from types import SimpleNamespace

    from modeling_twrvae.trainer.tasks import DialogueTask, LanguageTask

    tokenizer, dialogue_batch = dialogue
    args = SimpleNamespace(sample_posterior=False, free_bits=0.0)
    for model, inputs, task in (
        (tiny_model("twr-vae", 1200), batch, LanguageTask(args)),
        (tiny_cvae("cvae", len(tokenizer)), dialogue_batch, DialogueTask(args)),
    ):
        weighted = model(**inputs, kl_weight=0.25, return_logits=False, **task.forward_kwargs())
        assert weighted.logits is None
        torch.testing.assert_close(
            weighted.loss,
            weighted.reconstruction_loss
            + 0.25 * weighted.kl_regularizer
            + model.config.bow_loss_weight * (0.0 if weighted.bow_loss is None else weighted.bow_loss),
        )
        weighted.loss.backward()


def test_labels_are_the_reconstruction_targets(batch, dialogue):
    model = tiny_model("twr-vae", 1200).eval()
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    plain = model(**batch, reduction="none")
    torch.testing.assert_close(model(**batch, labels=labels, reduction="none").loss, plain.loss)
    # as a causal LM: -100 takes a token out of the loss (here the first word of every sentence)
    fewer = labels.clone()
    fewer[:, 1] = -100
    out = model(**batch, labels=fewer, reduction="none")
    assert (out.reconstruction_loss < plain.reconstruction_loss).all()
    torch.testing.assert_close(out.kl_regularizer, plain.kl_regularizer)
    other = labels.clone()
    other[0, 2] = (other[0, 2] + 1) % 1200
    with pytest.raises(ValueError, match=r"`labels` differs from `input_ids` at row 0, position 2"):
        model(**batch, labels=other)
    assert model(**batch, labels=labels, return_loss=False).loss is None
    with pytest.raises(ValueError, match="no attention weights"):
        model(**batch, output_attentions=True)

    tokenizer, dialogue_batch = dialogue
    cvae = tiny_cvae("cvae", len(tokenizer)).eval()
    response = dialogue_batch["input_ids"].masked_fill(dialogue_batch["attention_mask"] == 0, -100)
    torch.testing.assert_close(cvae(**dialogue_batch, labels=response).loss, cvae(**dialogue_batch).loss)


def test_generate_keeps_working_with_the_explicit_signature(batch):
    model = tiny_model("twr-vae", 1200).eval()
    latents = model.encode(**batch).mode()
    cached = model.generate(latents=latents, max_new_tokens=5)
    assert torch.equal(model.generate(latents=latents, max_new_tokens=5, use_cache=False), cached)
    assert model.generate(latents=latents, max_new_tokens=5, num_beams=3).shape[0] == latents.shape[0]
    out = model.generate(latents=latents, max_new_tokens=3, output_hidden_states=True, return_dict_in_generate=True)
    assert len(out.hidden_states) == 3 and out.hidden_states[0][0].shape[-1] == model.config.hidden_size
    with pytest.raises(ValueError, match="kl_wieght"):  # generate's own check of model arguments works again
        model.generate(latents=latents, max_new_tokens=3, kl_wieght=1.0)


# ----- item 12: resizing the vocabulary -----


@pytest.mark.parametrize("preset", ["twr-vae", "hr-vae"])
def test_resize_token_embeddings_resizes_every_vocabulary_layer_and_round_trips(preset, batch, tmp_path):
    model = tiny_model(preset, 1200).eval()
    with torch.no_grad():
        before = model(**batch).logits
    model.config.vocab_fingerprint = "sha256:0123456789abcdef"  # of the old tokenizer, as train.py records it
    model.resize_token_embeddings(1205, pad_to_multiple_of=16)
    assert model.config.vocab_size == 1216
    assert not hasattr(model.config, "vocab_fingerprint")  # it no longer describes the vocabulary
    assert model.encoder.embed_tokens.weight.shape[0] == 1216
    assert model.decoder.embed_tokens.weight.shape[0] == 1216
    assert model.decoder.lm_head.weight.shape[0] == model.decoder.lm_head.bias.shape[0] == 1216
    with torch.no_grad():
        after = model(**batch).logits
    torch.testing.assert_close(after[..., :1200], before)  # the old tokens keep their weights
    model.save_pretrained(tmp_path)
    reloaded = TWRVAEModel.from_pretrained(tmp_path).eval()
    assert reloaded.config.vocab_size == 1216
    with torch.no_grad():
        assert torch.equal(reloaded(**batch).logits, after)
    new_token = torch.tensor([[2, 1210, 3]])
    assert reloaded(new_token).loss.isfinite()


def test_resize_refuses_to_cut_off_special_tokens_and_leaves_the_model_whole():
    model = tiny_model("twr-vae", 30)
    with pytest.raises(ValueError, match=r"Cannot resize the vocabulary to 3 tokens: `eos_token_id`"):
        model.resize_token_embeddings(3)
    assert model.config.vocab_size == 30
    assert model.encoder.embed_tokens.weight.shape[0] == model.decoder.lm_head.weight.shape[0] == 30


def test_set_input_and_output_embeddings_keep_the_model_consistent():
    model = tiny_model("twr-vae", 30)
    embedding = torch.nn.Embedding(30, model.config.embedding_size)
    model.set_input_embeddings(embedding)
    assert model.get_input_embeddings() is embedding is model.encoder.embed_tokens
    head = torch.nn.Linear(model.config.hidden_size, 30)
    model.set_output_embeddings(head)
    assert model.get_output_embeddings() is head is model.decoder.lm_head
    with pytest.raises(ValueError, match="use `resize_token_embeddings`"):
        model.set_input_embeddings(torch.nn.Embedding(40, model.config.embedding_size))
    with pytest.raises(ValueError, match="use `resize_token_embeddings`"):
        model.set_output_embeddings(torch.nn.Linear(model.config.hidden_size, 40))


def test_a_resized_cvae_resizes_its_bag_of_words_head_and_reloads(dialogue, tmp_path):
    tokenizer, dialogue_batch = dialogue
    model = tiny_cvae("cvae", len(tokenizer)).eval()
    model.resize_token_embeddings(len(tokenizer) + 3)
    size = len(tokenizer) + 3
    assert model.embed_tokens.weight.shape[0] == model.lm_head.weight.shape[0] == size
    assert model.bow_head[2].weight.shape[0] == model.bow_head[2].bias.shape[0] == size
    assert model.config.vocab_size == size
    with torch.no_grad():
        expected = model(**dialogue_batch)
    model.save_pretrained(tmp_path)
    reloaded = TWRCVAEModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        got = reloaded(**dialogue_batch)
    assert torch.equal(got.logits, expected.logits) and torch.equal(got.bow_loss, expected.bow_loss)


# ----- item 13: ignore_mismatched_sizes -----


def test_ignore_mismatched_sizes_reinitialises_the_mismatched_weights(lm_folder, tokenizer, tmp_path):
    size = len(tokenizer) + 8
    with pytest.raises((RuntimeError, OSError), match="mismatch"):
        TWRVAEModel.from_pretrained(lm_folder, vocab_size=size)
    model, info = TWRVAEModel.from_pretrained(
        lm_folder, vocab_size=size, ignore_mismatched_sizes=True, output_loading_info=True
    )
    assert model.config.vocab_size == size and model.decoder.lm_head.weight.shape[0] == size
    assert {key[0] for key in info["mismatched_keys"]} == {
        "encoder.embed_tokens.weight",
        "decoder.embed_tokens.weight",
        "decoder.lm_head.weight",
        "decoder.lm_head.bias",
    }
    saved = load_file(lm_folder / "model.safetensors")
    assert torch.equal(model.encoder.mean.weight, saved["encoder.mean.weight"])  # the rest is the checkpoint's

    # the flag does not excuse a weight that is missing from the checkpoint
    for name in os.listdir(lm_folder):
        if name != "model.safetensors":
            (tmp_path / name).write_bytes((lm_folder / name).read_bytes())
    del saved["encoder.mean.weight"]
    save_file(saved, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(OSError, match="missing keys: encoder.mean.weight"):
        TWRVAEModel.from_pretrained(tmp_path, ignore_mismatched_sizes=True)


# ----- item 14: transformers' Trainer -----


@pytest.fixture(scope="module")
def ptb_datasets():
    texts = read_lines("ptb/ptb.valid.txt", 48)
    from modeling_twrvae import train_tokenizer

    tokenizer = train_tokenizer(texts, vocab_size=300)
    encoded = Dataset.from_dict({"text": texts}).map(lambda rows: tokenizer(rows["text"]), batched=True)
    return tokenizer, encoded.select(range(32)), encoded.select(range(32, 48))


def _train(tmp_path, tokenizer, train, evaluation, collator, **arguments):
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=6,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="steps",
        save_steps=2,
        load_best_model_at_end=True,
        report_to=[],
        use_cpu=True,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=8,
        learning_rate=1e-2,
        logging_steps=2,
        disable_tqdm=True,
        **arguments,
    )
    model = tiny_model("twr-vae", len(tokenizer))
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=evaluation, data_collator=collator)
    trainer.train()
    return trainer


def test_trainer_reports_eval_loss_and_loads_the_best_model(ptb_datasets, tmp_path):
    tokenizer, train, evaluation = ptb_datasets
    # greater_is_better=True makes the worst (earliest) evaluation "best", so loading it is visible
    trainer = _train(
        tmp_path,
        tokenizer,
        train,
        evaluation,
        DataCollatorForLanguageModeling(tokenizer, mlm=False),
        metric_for_best_model="eval_loss",
        greater_is_better=True,
    )
    evaluations = {entry["step"]: entry["eval_loss"] for entry in trainer.state.log_history if "eval_loss" in entry}
    assert sorted(evaluations) == [2, 4, 6]
    best_step = max(evaluations, key=evaluations.get)
    assert trainer.state.best_model_checkpoint == str(tmp_path / f"checkpoint-{best_step}")
    best = load_file(tmp_path / f"checkpoint-{best_step}" / "model.safetensors")
    state = trainer.model.state_dict()
    assert all(torch.equal(state[name], tensor) for name, tensor in best.items())
    last = load_file(tmp_path / "checkpoint-6" / "model.safetensors")
    if best_step != 6:
        assert not all(torch.equal(state[name], tensor) for name, tensor in last.items())
    assert trainer.evaluate()["eval_loss"] == pytest.approx(evaluations[best_step], rel=1e-5)
    assert isinstance(TWRVAEModel.from_pretrained(trainer.state.best_model_checkpoint), TWRVAEModel)


def test_trainer_with_a_padding_collator_and_no_label_names(ptb_datasets, tmp_path):
    """DataCollatorWithPadding makes no `labels`: `label_names=[]` has Trainer take the loss the model returns."""
    tokenizer, train, evaluation = ptb_datasets
    trainer = _train(tmp_path, tokenizer, train, evaluation, DataCollatorWithPadding(tokenizer), label_names=[])
    assert [entry["step"] for entry in trainer.state.log_history if "eval_loss" in entry] == [2, 4, 6]
    assert trainer.state.best_model_checkpoint is not None


# ----- item 15: generation configs, tokenizer pairs, a tokenizer without custom code -----


def _transformers_warnings(run):
    """What transformers logs at warning level while `run()` runs (its `warning_once` cache cleared first)."""
    logging.Logger.warning_once.cache_clear()
    records = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = records.append
    logger = transformers_logging.get_logger("transformers")
    logger.addHandler(handler)
    try:
        result = run()
    finally:
        logger.removeHandler(handler)
    return result, [record.getMessage() for record in records]


def test_a_generation_config_with_max_new_tokens_alone_gives_no_warning(batch, dialogue):
    model = tiny_model("twr-vae", 1200).eval()
    latents = model.encode(**batch).mode()
    config = GenerationConfig(max_new_tokens=6)
    sequences, warnings = _transformers_warnings(lambda: model.generate(latents=latents, generation_config=config))
    assert warnings == []
    assert sequences.shape[1] == 7  # <bos> and 6 new tokens
    assert config.max_new_tokens == 6  # the caller's config is left alone

    tokenizer, dialogue_batch = dialogue
    cvae = tiny_cvae("twr-cvae", len(tokenizer)).eval()
    contexts = {key: value for key, value in dialogue_batch.items() if key.startswith("context_")}
    sequences, warnings = _transformers_warnings(lambda: cvae.generate(**contexts, generation_config=config))
    assert warnings == [] and sequences.shape[1] == 7


def test_text_pairs_get_the_special_tokens_of_two_sentences(tokenizer, tmp_path):
    a, b = "the company said", "it was"
    pair = tokenizer(a, b)["input_ids"]
    assert pair == tokenizer(a)["input_ids"] + tokenizer(b)["input_ids"]
    first = len(tokenizer(a)["input_ids"])  # <bos> the company said <eos>
    assert pair[0] == pair[first] == tokenizer.bos_token_id
    assert pair[first - 1] == pair[-1] == tokenizer.eos_token_id
    tokenizer.save_pretrained(tmp_path)
    assert PreTrainedTokenizerFast.from_pretrained(tmp_path)(a, b)["input_ids"] == pair


def test_a_saved_tokenizer_loads_without_custom_code(lm_folder, tokenizer, tmp_path):
    """Without the package, `PreTrainedTokenizerFast` (or `AutoTokenizer` with `trust_remote_code=True`) loads the
    folder's tokenizer without a prompt; with the package imported, `AutoTokenizer` needs no flag."""
    expected = tokenizer("the company said", "it was")["input_ids"]
    script = without_the_package(
        f"""
        from transformers import AutoTokenizer, PreTrainedTokenizerFast
        plain = PreTrainedTokenizerFast.from_pretrained({str(lm_folder)!r})
        auto = AutoTokenizer.from_pretrained({str(lm_folder)!r}, trust_remote_code=True)
        print([t("the company said", "it was")["input_ids"] for t in (plain, auto)])
        """
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "Do you wish to run the custom code" not in result.stdout + result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [expected, expected]

    with_package = subprocess.run(
        [sys.executable, "-c", f"import modeling_twrvae; from transformers import AutoTokenizer; "
         f"print(AutoTokenizer.from_pretrained({str(lm_folder)!r})('the company said', 'it was')['input_ids'])"],
        cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True,
    )  # fmt: skip
    assert with_package.returncode == 0, with_package.stderr
    assert "Do you wish" not in with_package.stdout + with_package.stderr
    assert json.loads(with_package.stdout.strip().splitlines()[-1]) == expected


# ----- item 11: a corrupt generation_config.json -----


@pytest.mark.parametrize(
    "text, error, message",
    [
        ('{"max_length": 20, ', OSError, "is not a readable JSON file"),
        ('\ufeff{"max_length": 20}', OSError, "BOM"),
        ("", OSError, "is not a readable JSON file"),
        ("[20]", OSError, "holds a JSON list"),
        ('{"max_length": "20"}', ValueError, "`max_length` must be a positive integer, got '20'"),
    ],
)
def test_a_corrupt_generation_config_is_an_error_naming_the_file(text, error, message, lm_folder, tmp_path):
    for name in os.listdir(lm_folder):
        (tmp_path / name).write_bytes((lm_folder / name).read_bytes())
    (tmp_path / "generation_config.json").write_text(text, encoding="utf-8")
    with pytest.raises(error, match=message) as raised:
        TWRVAEModel.from_pretrained(tmp_path)
    assert str(tmp_path / "generation_config.json") in str(raised.value)
    # a generation config given to from_pretrained replaces the file, which is then not read
    given = TWRVAEModel.from_pretrained(tmp_path, generation_config=GenerationConfig(max_length=9))
    assert given.generation_config.max_length == 9


def test_a_folder_without_generation_config_keeps_the_default_length(lm_folder, tmp_path):
    for name in os.listdir(lm_folder):
        if name != "generation_config.json":
            (tmp_path / name).write_bytes((lm_folder / name).read_bytes())
    assert TWRVAEModel.from_pretrained(tmp_path).generation_config.max_length == 64
