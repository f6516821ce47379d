"""Wrong results that could pass silently, one test each."""

import json
import os
import shutil

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file
from test_training import run
from transformers import AutoConfig, AutoModel, AutoTokenizer

from modeling_twrvae import TWRVAEModel, check_tokenizer
from modeling_twrvae.checkpoint_checks import vocabulary_fingerprint
from modeling_twrvae.commands import evaluate, train
from modeling_twrvae.file_utils import atomic_write_text, move_files_into
from modeling_twrvae.trainer import tasks
from modeling_twrvae.trainer.checkpointing import resolve_checkpoint

from helpers import informative, tiny_model


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """Six updates with checkpoints at 2, 4 and 6, on a vocabulary capped at 40 words."""
    root = tmp_path_factory.mktemp("base")
    out = root / "run"
    out.mkdir()
    # what an interrupted write (a crash, a full disk) leaves behind: removed at the next start
    (out / ".best.tmp").mkdir()
    (out / ".metrics.jsonl.123.tmp").write_text("half")
    run(root, "run", "--overwrite_output_dir", checkpointing_steps=2, save_total_limit=5, eval_steps=3, vocab_size=40)
    assert not list(out.glob(".*tmp"))
    return out


def copy_run(base_run, tmp_path, name="run"):
    shutil.copytree(base_run, tmp_path / name, symlinks=True)
    return tmp_path / name


def log(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


# 1. the whole split (no --max_samples): datasets gives a Column, which the tokenizer refused


def test_evaluate_on_a_whole_file_without_max_samples(tmp_path, tokenizer, ptb_lines):
    model = informative(tiny_model("twr-vae", len(tokenizer), seed=1))
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    data = tmp_path / "held_out.txt"
    data.write_text("\n".join(ptb_lines[:9]) + "\n")
    output = tmp_path / "results.json"
    argv = ["--model_name_or_path", str(tmp_path / "model"), "--validation_file", str(data), "--iw_samples", "4",
            "--num_prior_samples", "3", "--num_interpolation_pairs", "2", "--max_new_tokens", "6",
            "--output_file", str(output), "--no_progress"]  # fmt: skip
    results = evaluate.main(argv)
    assert results["num_sentences"] == 9
    assert 0 < results["reconstruction_distinct"] <= 1 and 0 <= results["reconstruction_token_accuracy"] <= 1
    assert 1 <= results["interpolation_distinct"] <= 11
    assert len(results["interpolation"]["distinct_sentences"]) == 2
    assert "rec. distinct" in output.with_suffix(".md").read_text()


# 2. a new --learning_rate on resume was replaced by the checkpoint's


def test_resume_uses_the_new_learning_rate(base_run, tmp_path):
    out = copy_run(base_run, tmp_path)
    assert {r["learning_rate"] for r in log(out) if "loss" in r} == {0.003}
    run(tmp_path, "run", resume_from_checkpoint=out / "checkpoint-4", learning_rate=0.0005, vocab_size=40,
        checkpointing_steps=2, save_total_limit=5, eval_steps=3)  # fmt: skip
    rates = {r["step"]: r["learning_rate"] for r in log(out) if "loss" in r}
    assert rates == {1: 0.003, 2: 0.003, 3: 0.003, 4: 0.003, 5: 0.0005, 6: 0.0005}
    assert yaml.safe_load((out / "training_config.yaml").read_text())["learning_rate"] in (0.003, 0.0005)


# 3. resuming retrained the tokenizer on whatever --train_file was given: same size, other ids (other training texts
#    are now refused on resume: tests/test_run_folder_safety.py)


def test_resume_reuses_the_checkpoint_s_tokenizer(base_run, tmp_path, monkeypatch):
    out = copy_run(base_run, tmp_path)
    saved = json.loads((out / "checkpoint-4" / "tokenizer" / "tokenizer.json").read_text())["model"]["vocab"]

    def no_training(*args, **kwargs):
        raise AssertionError("the tokenizer was trained again")

    monkeypatch.setattr(tasks, "train_tokenizer", no_training)
    run(tmp_path, "run", resume_from_checkpoint=out / "checkpoint-4", vocab_size=40, checkpointing_steps=2,
        save_total_limit=5)  # fmt: skip
    resumed = json.loads((out / "checkpoint-6" / "tokenizer" / "tokenizer.json").read_text())["model"]["vocab"]
    assert resumed == saved


# 4. folder checks were shallow: a reordered vocabulary of the same size, weights with keys missing or extra


def test_a_reordered_vocabulary_of_the_same_size_is_refused(base_run, tmp_path):
    out = copy_run(base_run, tmp_path)
    config = json.loads((out / "config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert config["vocab_fingerprint"] == vocabulary_fingerprint(tokenizer.get_vocab())
    assert tokenizer.model_max_length == 100  # --max_length, saved with the tokenizer
    document = json.loads((out / "tokenizer.json").read_text())
    vocab = document["model"]["vocab"]
    words = sorted((w for w, i in vocab.items() if i >= 4), key=vocab.get)
    vocab.update({words[0]: vocab[words[1]], words[1]: vocab[words[0]]})  # two words swap ids
    (out / "tokenizer.json").write_text(json.dumps(document))
    with pytest.raises(ValueError, match="has the model's vocabulary size but not its vocabulary"):
        AutoModel.from_pretrained(out)
    with pytest.raises(ValueError, match="not its vocabulary"):
        check_tokenizer(AutoTokenizer.from_pretrained(out), AutoConfig.from_pretrained(out))


@pytest.mark.parametrize("change", ["missing", "unexpected"])
def test_weights_with_missing_or_unexpected_keys_are_an_error(tmp_path, tokenizer, change):
    folder = tmp_path / "model"
    tiny_model("twr-vae", len(tokenizer)).save_pretrained(folder)
    weights = load_file(str(folder / "model.safetensors"))
    if change == "missing":
        del weights["decoder.lm_head.weight"]
    else:
        weights["decoder.extra.weight"] = torch.zeros(2)
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    key = "decoder.lm_head.weight" if change == "missing" else "decoder.extra.weight"
    with pytest.raises(OSError, match=f"do not fit the model.*{change} keys: {key}"):
        AutoModel.from_pretrained(folder)


# 5. a misspelt --config_overrides field was stored, and the command line replaced the YAML's mapping


def test_unknown_config_override_is_an_error_naming_the_close_field(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--config_overrides", "latnet_size=4", "--output_dir", "x"])
    assert "no field 'latnet_size'; did you mean 'latent_size'" in capsys.readouterr().err


def test_command_line_overrides_merge_with_the_yaml_s(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"config_overrides": {"hidden_size": 32, "latent_size": 4}}))
    args = train.parse_args(["--config", str(config), "--config_overrides", "latent_size=9", "--output_dir", "x"])
    assert args.config_overrides == {"hidden_size": 32, "latent_size": 9}


# 6. NaN / inf latents decoded to empty text; NaN weights evaluated to NaN with exit status 0


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_latents_are_rejected(tokenizer, value):
    model = tiny_model("twr-vae", len(tokenizer)).eval()
    latents = torch.zeros(3, model.config.latent_size)
    latents[1, 2] = value
    with pytest.raises(ValueError, match=r"NaN or infinite values \(rows \[1\]\)"):
        model.generate(latents=latents, max_new_tokens=4)
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.decode_latents(latents, tokenizer, do_sample=True, max_new_tokens=4)
    with pytest.raises(ValueError, match="NaN or infinite"):
        model(input_ids=torch.tensor([[2, 5, 3]] * 3), latents=latents)


def test_evaluating_nan_weights_is_an_error_and_a_non_zero_exit(tmp_path, tokenizer, ptb_lines):
    model = tiny_model("twr-vae", len(tokenizer))
    with torch.no_grad():
        model.decoder.lm_head.weight[0, 0] = float("nan")
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    data = tmp_path / "data.txt"
    data.write_text("\n".join(ptb_lines[:4]) + "\n")
    argv = ["--model_name_or_path", str(tmp_path / "model"), "--validation_file", str(data), "--iw_samples", "2",
            "--output_file", str(tmp_path / "r.json"), "--no_progress"]  # fmt: skip
    with pytest.raises(evaluate.NonFiniteMetricError, match="1 of its weight tensors hold NaN"):
        evaluate.main(argv)
    assert not (tmp_path / "r.json").exists()
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(evaluate.__file__), *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "error: The model gives non-finite" in done.stderr
    assert "Traceback" not in done.stderr


# 7. after a rewind, `latest` picked the earlier run's later checkpoint, and metrics.jsonl mixed both runs


def test_latest_after_a_rewind_is_this_run_s_checkpoint(base_run, tmp_path, monkeypatch):
    out = copy_run(base_run, tmp_path)
    original = TWRVAEModel.forward
    calls = {"training": 0}

    def crash_at_the_second_update(self, *args, **kwargs):
        output = original(self, *args, **kwargs)
        if "kl_weight" in kwargs:
            calls["training"] += 1
            if calls["training"] == 2:
                output.loss = output.loss * float("nan")
        return output

    monkeypatch.setattr(TWRVAEModel, "forward", crash_at_the_second_update)
    with pytest.raises(train.NonFiniteLossError):  # rewound to step 2, then the run dies at update 4
        run(tmp_path, "run", resume_from_checkpoint=out / "checkpoint-2", vocab_size=40, checkpointing_steps=2,
            save_total_limit=5, eval_steps=3, learning_rate=0.001)  # fmt: skip
    assert resolve_checkpoint("latest", out) == out / "checkpoint-2"
    steps = [r["step"] for r in log(out) if "loss" in r]
    assert steps == [1, 2, 3]  # the earlier run's 4-6 are gone; 3 is the rewound run's
    assert [r["learning_rate"] for r in log(out) if "loss" in r][-1] == 0.001


# 8. a missing or corrupt RNG state was ignored; a torn metrics line or a corrupt checkpoint was a traceback;
#    renames were not preceded by fsync


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_missing_or_corrupt_rng_state_is_an_error_naming_the_previous_checkpoint(base_run, tmp_path, damage):
    out = copy_run(base_run, tmp_path)
    rng = out / "checkpoint-6" / "random_states_0.pkl"
    rng.unlink() if damage == "missing" else rng.write_bytes(b"\x80\x04not a pickle")
    with pytest.raises(train.CheckpointError, match=rf"checkpoint-6 cannot be resumed exactly: .*random_states_0\.pkl "
                       rf"is {damage}.*--resume_from_checkpoint .*checkpoint-4"):  # fmt: skip
        run(tmp_path, "run", resume_from_checkpoint="latest", vocab_size=40)


def test_corrupt_latest_checkpoint_is_a_message_offering_the_previous_one(base_run, tmp_path):
    out = copy_run(base_run, tmp_path)
    weights = out / "checkpoint-6" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(train.CheckpointError, match=r"checkpoint-6 could not be loaded.*checkpoint-4"):
        run(tmp_path, "run", resume_from_checkpoint="latest", vocab_size=40)


def test_a_torn_last_metrics_line_is_dropped_and_a_damaged_one_named(base_run, tmp_path):
    out = copy_run(base_run, tmp_path)
    lines = (out / "metrics.jsonl").read_text()
    (out / "metrics.jsonl").write_text(lines + '{"step": 7, "lo')
    run(tmp_path, "run", resume_from_checkpoint="latest", vocab_size=40, checkpointing_steps=2, save_total_limit=5)
    assert (out / "metrics.jsonl").read_text() == lines
    (out / "metrics.jsonl").write_text("garbage\n" + lines)
    with pytest.raises(ValueError, match=r"metrics\.jsonl, line 1, is not a metrics record"):
        run(tmp_path, "run", resume_from_checkpoint="latest", vocab_size=40)


def test_files_are_flushed_before_they_are_renamed(tmp_path, monkeypatch):
    from modeling_twrvae import file_utils

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(file_utils.os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(file_utils.os, "replace", lambda a, b: events.append("replace") or real_replace(a, b))
    atomic_write_text(tmp_path / "a.txt", "text")
    assert events[:2] == ["fsync", "replace"] and (tmp_path / "a.txt").read_text() == "text"
    events.clear()
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "x").write_text("1")
    (tmp_path / "new" / "y").write_text("2")
    move_files_into(tmp_path / "new", tmp_path / "target")
    assert events.index("replace") > events.index("fsync") and events.count("fsync") >= 2
