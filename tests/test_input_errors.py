"""Bad inputs get a clear error that names the problem, not a traceback."""

import errno
import os
import stat

import pytest
import torch
import yaml
from safetensors import safe_open
from test_training import run

from modeling_twrvae import file_utils
from modeling_twrvae.commands import evaluate, train
from modeling_twrvae.data.corpora import load_text_files
from modeling_twrvae.file_utils import atomic_write_text, umask_mode
from modeling_twrvae.storage.locking import remove_temporary_leftovers
from modeling_twrvae.trainer.errors import run_main
from modeling_twrvae.trainer.tasks import get_tokenizer

from helpers import tiny_model


def test_a_folder_as_train_file(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder .*pass a file"):
        load_text_files({"train": tmp_path})


@pytest.mark.parametrize(
    "content, message",
    [
        (b"good line\nstill good\ncaf\xe9 latin-1\n", r"line 3, is not UTF-8 .*iconv"),
        (b"text\n\x00\x01\x02binary\n", r"line 2, holds a NUL byte: it looks like a binary file"),
    ],
)
def test_non_utf8_or_binary_text_names_the_line(tmp_path, content, message):
    path = tmp_path / "data.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        load_text_files({"train": path})


def test_missing_tokenizer_folder(tmp_path, monkeypatch):
    args = train.parse_args(["--output_dir", "x", "--tokenizer_name", str(tmp_path / "nowhere")])
    with pytest.raises(FileNotFoundError, match="--tokenizer_name .*nowhere: no such folder"):
        get_tokenizer(args, [])
    args.tokenizer_name = str(tmp_path)
    with pytest.raises(FileNotFoundError, match="holds no tokenizer"):
        get_tokenizer(args, [])
    (tmp_path / "outputs").mkdir()
    monkeypatch.chdir(tmp_path)  # "outputs/demo" is a local folder here, not a Hub id: no Hub look-up
    args.tokenizer_name = "outputs/demo"
    with pytest.raises(FileNotFoundError, match="outputs/demo: no such folder"):
        get_tokenizer(args, [])


@pytest.mark.parametrize(
    "settings, message",
    [
        ("dataset: [unclosed", "is not valid YAML"),
        ("- a list\n- of things", "must hold a mapping"),
        ("per_device_train_batch_size: 1.5", "'per_device_train_batch_size': expected an integer, got 1.5"),
        ("dataset: nope", "'dataset': 'nope' is not one of"),
        ("learning_rat: 0.1", r"learning_rat \(did you mean learning_rate\?\)"),
        ("overwrite_output_dir: maybe", "expected true or false"),
    ],
)
def test_bad_yaml_settings(tmp_path, capsys, settings, message):
    config = tmp_path / "config.yaml"
    config.write_text(settings)
    with pytest.raises(SystemExit) as raised:
        train.parse_args(["--config", str(config), "--output_dir", "x"])
    assert raised.value.code != 0
    assert pytest.importorskip("re").search(message, str(raised.value.code) + capsys.readouterr().err)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--max_train_steps", "-3"], "--max_train_steps must be at least 1, got -3"),
        (["--per_device_train_batch_size", "0"], "--per_device_train_batch_size must be at least 1"),
        (["--learning_rate=-1e-3"], "--learning_rate must be a finite number >= 0"),
        (["--max_length", "2"], "--max_length must be >= 3"),
    ],
)
def test_out_of_range_training_arguments(capsys, argv, message):
    with pytest.raises(SystemExit):
        train.parse_args(argv + ["--output_dir", "x"])
    assert message in capsys.readouterr().err


def test_learning_rate_zero_warns():
    with pytest.warns(UserWarning, match="--learning_rate is 0"):
        train.parse_args(["--learning_rate", "0", "--output_dir", "x"])


def test_training_text_of_only_unknown_words_is_refused(tmp_path):
    data = tmp_path / "rare.txt"
    data.write_text("\n".join(f"word{i} other{i}" for i in range(20)) + "\n")  # every word seen once
    with pytest.raises(ValueError, match="only the 4 special tokens.*lower --min_frequency"):
        run(tmp_path, "rare", train_file=data, validation_file=data, validation_split_percentage=None, min_frequency=3)


def test_generation_and_forward_refuse_empty_or_zero_length_requests(tokenizer):
    model = tiny_model("twr-vae", len(tokenizer)).eval()
    z = torch.zeros(2, model.config.latent_size)
    with pytest.raises(ValueError, match="`max_new_tokens` must be a positive integer, got 0"):
        model.generate(latents=z, max_new_tokens=0)
    with pytest.raises(ValueError, match="`latents` is empty"):
        model.generate(latents=z[:0])
    with pytest.raises(ValueError, match="`input_ids` is empty"):
        model(input_ids=torch.zeros(0, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="at least one text"):
        model.reconstruct([], tokenizer)


def test_float64_latents_decode_like_float32(tokenizer):
    model = tiny_model("twr-vae", len(tokenizer)).eval()
    ids = torch.tensor([[2, 5, 6, 3]])
    z = torch.randn(1, model.config.latent_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids, latents=z.double()).logits, model(input_ids=ids, latents=z).logits)


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--max_length", "1", "--max_length must be at least 3"),
        ("--samples_per_pass", "0", "--samples_per_pass must be at least 1"),
        ("--max_samples", "-1", "--max_samples must be at least 1"),
    ],
)
def test_out_of_range_evaluation_arguments(capsys, option, value, message):
    with pytest.raises(SystemExit):
        evaluate.parse_args(["--model_name_or_path", "m", option, value])
    assert message in capsys.readouterr().err


def test_full_disk_is_said_and_leaves_the_old_file_whole(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    target.write_text("old")

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(file_utils.os, "fsync", no_space)
    with pytest.raises(OSError, match="The disk is full: could not write .*results.json"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_temporary_leftovers_are_removed(tmp_path):
    (tmp_path / ".checkpoint-4.tmp").mkdir()
    (tmp_path / ".config.json.99.tmp").write_text("half")
    (tmp_path / "keep.tmp").write_text("not ours")
    removed = remove_temporary_leftovers(tmp_path)
    assert len(removed) == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["keep.tmp"]


def test_command_lines_print_the_message_not_a_traceback(capsys):
    def main():
        raise FileNotFoundError("trainset.csv not found in DATA/e2e/")

    with pytest.raises(SystemExit) as raised:
        run_main(main)
    assert raised.value.code == "error: trainset.csv not found in DATA/e2e/"


def test_overwriting_a_model_folder_replaces_files_by_rename(tmp_path, tokenizer):
    folder = tmp_path / "model"
    first = tiny_model("twr-vae", len(tokenizer), seed=0)
    first.save_pretrained(folder)
    weights = folder / "model.safetensors"
    assert stat.S_IMODE(weights.stat().st_mode) == umask_mode()  # not the temporary file's 600
    before = {name: os.stat(folder / name).st_ino for name in ("model.safetensors", "config.json")}
    with safe_open(str(weights), framework="pt") as reader:  # a reader that memory-maps the old weights
        old = reader.get_tensor("decoder.lm_head.weight").clone()
        tiny_model("twr-vae", len(tokenizer), seed=1).save_pretrained(folder)
        assert torch.equal(reader.get_tensor("decoder.lm_head.weight"), old)  # still whole: no SIGBUS
    after = {name: os.stat(folder / name).st_ino for name in before}
    assert all(before[name] != after[name] for name in before)  # replaced, not truncated in place
    assert not list(folder.glob(".*tmp"))


def test_yaml_values_pass_through_unchanged(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"per_device_train_batch_size": 8, "learning_rate": 1, "use_cpu": True}))
    args = train.parse_args(["--config", str(config), "--output_dir", "x"])
    assert args.per_device_train_batch_size == 8 and args.learning_rate == 1.0 and args.use_cpu is True
