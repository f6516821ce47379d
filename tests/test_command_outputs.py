"""Every command that writes a file the user names keeps what the user saved: evaluate.py's --output_file and the
`twrvae encode` / `attribute-vector` --output never replace a model's files, the evaluated data, a file they did not
create (without the overwrite flag), or anything in a training checkpoint; and they refuse before any work."""

import json

import pytest
import torch

from modeling_twrvae.commands import evaluate
from modeling_twrvae.commands.cli import EXIT_ERROR
from modeling_twrvae.commands.cli import main as cli_main

from helpers import DATA_DIR, folder_digest
from saved_text_vaes import save_text_vae


@pytest.fixture
def folder(tokenizer, tmp_path):
    return save_text_vae(tmp_path / "model", tokenizer)


def evaluate_argv(folder, output, *extra):
    return [
        "--model_name_or_path", str(folder), "--dataset", "ptb", "--split", "test", "--data_dir", str(DATA_DIR),
        "--max_samples", "8", "--iw_samples", "2", "--num_prior_samples", "2", "--num_interpolation_pairs", "1",
        "--max_new_tokens", "5", "--device", "cpu", "--no_progress", "--output_file", str(output), *extra,
    ]  # fmt: skip


@pytest.fixture
def no_evaluation(monkeypatch):
    """Fail the test if the evaluation itself starts: the refusals must come before any work."""

    def refuse(args):
        raise AssertionError("the evaluation ran before the output was checked")

    monkeypatch.setattr(evaluate, "evaluate", refuse)


@pytest.mark.parametrize(
    "name, error",
    [
        ("model.safetensors", r"must end in \.json"),
        ("modeling_twrvae.py", r"must end in \.json"),
        ("config.json", r"part of the saved model"),
        ("tokenizer.json", r"part of the saved model"),
        ("generation_config.json", r"part of the saved model"),
    ],
)
def test_evaluate_never_writes_over_a_models_files(folder, name, error, no_evaluation):
    before = folder_digest(folder)
    with pytest.raises((FileExistsError, ValueError), match=error):
        evaluate.main(evaluate_argv(folder, folder / name, "--overwrite_output_file"))
    assert folder_digest(folder) == before


def test_evaluate_refuses_to_write_over_the_model_even_with_overwrite(folder, no_evaluation):
    before = folder_digest(folder)
    with pytest.raises(FileExistsError, match=r"never replaced"):
        evaluate.main(evaluate_argv(folder, folder / "config.json", "--overwrite_output_file"))
    assert folder_digest(folder) == before


def test_evaluate_never_writes_over_its_own_data(folder, tmp_path, no_evaluation):
    data = tmp_path / "data.json"
    data.write_text('{"text": "the company said"}\n')
    argv = evaluate_argv(folder, data, "--overwrite_output_file")
    argv[argv.index("--dataset") : argv.index("--dataset") + 2] = ["--validation_file", str(data)]
    with pytest.raises(FileExistsError, match=r"the data it reads"):
        evaluate.main(argv)
    assert data.read_text() == '{"text": "the company said"}\n'


def test_evaluate_refuses_a_markdown_output_that_would_hold_both_results(folder, tmp_path, no_evaluation):
    with pytest.raises(ValueError, match=r"must end in \.json.*results\.md"):
        evaluate.main(evaluate_argv(folder, tmp_path / "results.md"))


def test_evaluate_keeps_files_beside_the_output_unless_told(folder, tmp_path, no_evaluation):
    table = tmp_path / "results.md"
    table.write_text("my own notes")
    with pytest.raises(FileExistsError, match=r"results\.md \(written beside --output_file .*results\.json\) exists.*"
                       r"--overwrite_output_file"):  # fmt: skip
        evaluate.main(evaluate_argv(folder, tmp_path / "results.json"))
    assert table.read_text() == "my own notes"


@pytest.mark.parametrize("case", ["folder", "read-only"])
def test_evaluate_checks_its_output_before_the_work(folder, tmp_path, no_evaluation, case, monkeypatch):
    if case == "folder":
        (tmp_path / "out.json").mkdir()
        with pytest.raises(IsADirectoryError, match=r"out\.json is a folder"):
            evaluate.main(evaluate_argv(folder, tmp_path / "out.json"))
    else:
        # root may write anywhere, so the permission check is what is exercised: its answer says read-only
        monkeypatch.setattr("os.access", lambda path, mode: False)
        with pytest.raises(PermissionError, match=r"is not writable"):
            evaluate.main(evaluate_argv(folder, tmp_path / "out.json"))


def test_evaluate_replaces_its_results_with_overwrite(folder, tmp_path):
    output = tmp_path / "results.json"
    evaluate.main(evaluate_argv(folder, output))
    first = json.loads(output.read_text())
    with pytest.raises(FileExistsError, match=r"--overwrite_output_file"):
        evaluate.main(evaluate_argv(folder, output))
    evaluate.main(evaluate_argv(folder, output, "--overwrite_output_file"))
    assert json.loads(output.read_text())["weights_sha256"] == first["weights_sha256"]


def test_evaluate_refuses_weights_replaced_while_they_load(folder, tmp_path, monkeypatch):
    """The fingerprint is of the weights loaded: a save into the folder during the load is caught."""
    load = evaluate.load_model

    def load_then_replace(path, trust_remote_code):
        model = load(path, trust_remote_code)
        weights = folder / "model.safetensors"
        weights.write_bytes(weights.read_bytes() + b" ")  # another process saved new weights meanwhile
        return model

    monkeypatch.setattr(evaluate, "load_model", load_then_replace)
    with pytest.raises(ValueError, match=r"changed while they were loaded"):
        evaluate.main(evaluate_argv(folder, tmp_path / "results.json"))
    assert not (tmp_path / "results.json").exists()


def test_cli_encode_and_vector_never_write_over_the_weights(folder, tmp_path, monkeypatch, capsys):
    before = folder_digest(folder)
    texts = tmp_path / "texts.txt"
    texts.write_text("the company said\n")
    monkeypatch.setattr("sys.stdin", open(texts))  # noqa: SIM115
    status = cli_main(["encode", str(folder), "--output", str(folder / "model.safetensors"), "--overwrite"])
    assert status == EXIT_ERROR
    assert "part of the saved model" in capsys.readouterr().err
    for extra in ([], ["--overwrite"]):
        status = cli_main(["attribute-vector", str(folder), "--with", str(texts), "--without", str(texts),
                           "--output", str(folder / "model.safetensors"), *extra])  # fmt: skip
        assert status == EXIT_ERROR
        assert "part of the saved model" in capsys.readouterr().err
    assert folder_digest(folder) == before


def test_cli_vector_needs_overwrite_to_replace_a_file(folder, tmp_path, capsys):
    texts = tmp_path / "texts.txt"
    texts.write_text("the company said\n")
    vector = tmp_path / "vector.safetensors"
    vector.write_bytes(b"mine")
    argv = ["attribute-vector", str(folder), "--with", str(texts), "--without", str(texts), "--output", str(vector)]
    assert cli_main(argv) == EXIT_ERROR
    assert "--overwrite" in capsys.readouterr().err
    assert vector.read_bytes() == b"mine"
    assert cli_main([*argv, "--overwrite"]) == 0
    assert vector.read_bytes() != b"mine"


def test_nothing_is_written_inside_a_training_checkpoint(tmp_path):
    from modeling_twrvae.commands.output_files import check_output_files, enclosing_checkpoint

    run = tmp_path / "run"
    checkpoint = run / "checkpoint-2"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text("{}")
    assert enclosing_checkpoint(checkpoint / "B" / "x.json") == checkpoint.absolute()
    with pytest.raises(PermissionError, match=r"inside .*checkpoint-2, a checkpoint of a training run"):
        check_output_files([checkpoint / "B" / "x.json"], "--output", True, "--overwrite")


def test_model_api_refuses_counts_and_temperatures_that_are_not_numbers(folder, tokenizer):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(folder).eval()
    for count in (2.5, True, "3"):
        with pytest.raises(ValueError, match=r"`num_samples` must be a whole number >= 1"):
            model.sample(count, tokenizer)
    with pytest.raises(ValueError, match=r"`steps` must be a whole number >= 2"):
        model.interpolate("the company said", "the market fell", tokenizer, steps=2.5)
    for temperature in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"`temperature` must be a finite number"):
            model.sample(1, tokenizer, temperature=temperature)
    assert len(model.sample(torch.tensor(2).item(), tokenizer, max_new_tokens=3)) == 2


@pytest.mark.parametrize(
    "argv, words",
    [
        (["sample", "{m}", "-n", "100000000", "--max-new-tokens", "2"], r"-n must be at most 10,000"),
        (["sample", "{m}", "-n", "1", "--max-new-tokens", "100000000"], r"--max-new-tokens must be at most 20\b"),
        (["interpolate", "{m}", "a", "b", "--steps", "100000000"], r"--steps must be at most 1,000"),
        (["sample", "{m}", "--temperature", "nan"], r"--temperature must be a finite number"),
        (["sample", "{m}", "--device", "meta"], r"--device meta holds no values"),
    ],
)
def test_cli_refuses_unbounded_requests_at_once(folder, argv, words, capsys):
    status = cli_main([item.replace("{m}", str(folder)) for item in argv])
    assert status == EXIT_ERROR
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert __import__("re").search(words, error), error


def test_cli_score_refuses_an_unbounded_number_of_samples(folder, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("the company said\n"))
    assert cli_main(["score", str(folder), "--iw-samples", "1000000000"]) == EXIT_ERROR
    assert "--iw-samples must be at most 100,000" in capsys.readouterr().err


def test_pipeline_without_a_tokenizer_says_so(folder, tmp_path):
    from transformers import pipeline

    bare = tmp_path / "bare"
    bare.mkdir()
    for path in folder.iterdir():
        if not path.name.startswith(("tokenizer", "special_tokens")):
            (bare / path.name).write_bytes(path.read_bytes())
    with pytest.raises(ValueError, match=r"needs the model's tokenizer.*tokenizer\.save_pretrained"):
        pipeline("text-vae", model=str(bare), trust_remote_code=True)


def test_a_config_without_vocab_size_is_called_damaged(folder, tokenizer):
    from modeling_twrvae.checkpoint_checks import check_tokenizer_file

    config = json.loads((folder / "config.json").read_text())
    del config["vocab_size"]
    with pytest.raises(ValueError, match=r"config\.json has no vocab_size: it is damaged"):
        check_tokenizer_file(folder / "tokenizer.json", config)
