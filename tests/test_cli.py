"""The `twrvae` command line: each subcommand through a real process (console script and `python -m`), and its
error protocol (one line, exit status 2, a traceback only with --debug)."""

import io
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from accelerate.state import AcceleratorState, GradientState
from safetensors import safe_open
from transformers import AutoModel

from modeling_twrvae.commands.cli import main
from modeling_twrvae.metrics.likelihood import likelihoods

from helpers import DATA_DIR, REPO_ROOT
from saved_text_vaes import MAX_LENGTH, save_text_vae

TOKENS = ["--max-new-tokens", "8"]


@pytest.fixture(scope="module")
def folder(tokenizer, tmp_path_factory):
    return save_text_vae(tmp_path_factory.mktemp("cli") / "tiny-twrvae", tokenizer)


@pytest.fixture(scope="module")
def model(folder):
    return AutoModel.from_pretrained(folder).eval()


@pytest.fixture(scope="module")
def texts(ptb_lines):
    return [line for line in ptb_lines if 5 <= len(line.split()) <= 12 and "<unk>" not in line][:3]


def cli_env(**extra):
    # The repository first, so that this checkout's package runs even where another copy is installed.
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", **extra}
    return env


def run(*args, stdin="", console_script=False, **env):
    command = [shutil.which("twrvae")] if console_script else [sys.executable, "-m", "modeling_twrvae"]
    return subprocess.run(
        [*command, *map(str, args)], input=stdin, capture_output=True, text=True, env=cli_env(**env), timeout=300
    )


def json_lines(stdout):
    return [json.loads(line) for line in stdout.splitlines()]


def test_console_script_reconstructs_as_the_python_api_does(folder, model, tokenizer, texts):
    if shutil.which("twrvae") is None:
        pytest.fail("the `twrvae` console script is not installed: run `pip install -e .` (scripts/setup.sh)")
    result = run("reconstruct", folder, *texts, *TOKENS, "--json", console_script=True)
    assert result.returncode == 0, result.stderr
    expected = model.reconstruct(texts, tokenizer, max_new_tokens=8)
    assert json_lines(result.stdout) == [
        {"text": text, "reconstruction": output} for text, output in zip(texts, expected, strict=True)
    ]
    assert len(set(expected)) == len(texts)  # the outputs depend on the input: the comparison means something


def test_an_error_is_one_line_with_exit_status_2_and_a_traceback_only_with_debug(tmp_path):
    result = run("sample", tmp_path / "missing")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"twrvae sample: error: {tmp_path / 'missing'}: no such folder. MODEL is a folder saved with save_pretrained "
        "or a Hub repo id."
    ]
    with pytest.raises(Exception, match="no such folder"):  # --debug: the exception itself, for its traceback
        main(["sample", str(tmp_path / "missing"), "--debug"])


def test_a_hub_repo_id_loads_from_the_cache_offline(folder, model, tokenizer, tmp_path):
    # The layout huggingface_hub gives a downloaded repository: blobs behind snapshots/<commit>, refs/main.
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someone--tiny-twrvae"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    result = run("sample", "someone/tiny-twrvae", "-n", 2, "--seed", 0, *TOKENS, HF_HUB_CACHE=str(tmp_path / "hub"))
    assert result.returncode == 0, result.stderr
    expected = model.sample(2, tokenizer, generator=torch.Generator().manual_seed(0), max_new_tokens=8)
    assert result.stdout.splitlines() == expected


# Each real process costs seconds of imports on a 2-core machine, so only the three tests above start one (the
# console script; `python -m` for the error protocol and the Hub cache). Those below run the same main() in this
# process (standard input and output replaced), which is what the command's entry point calls.


def call(args, capsys, monkeypatch, stdin=""):
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    status = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_reconstruct_reads_standard_input_as_plain_text(folder, model, tokenizer, texts, capsys, monkeypatch):
    status, out, _ = call(["reconstruct", folder, *TOKENS, "--num-beams", 3], capsys, monkeypatch,
                          "\n".join(texts) + "\n\n")  # fmt: skip
    assert status == 0
    assert out.splitlines() == model.reconstruct(texts, tokenizer, max_new_tokens=8, num_beams=3)


def test_sample_is_fixed_by_the_seed(folder, model, tokenizer, capsys, monkeypatch):
    status, out, _ = call(["sample", folder, "-n", 4, "--temperature", 0.8, "--seed", 3, *TOKENS], capsys, monkeypatch)
    assert status == 0
    generator = torch.Generator().manual_seed(3)
    expected = model.sample(4, tokenizer, temperature=0.8, generator=generator, max_new_tokens=8)
    assert out.splitlines() == expected and len(set(expected)) > 1
    status, out, _ = call(["sample", folder, "-n", 2, "--top-p", 0.9, "--seed", 3, "--json", *TOKENS], capsys,
                          monkeypatch)  # fmt: skip
    assert status == 0 and [set(record) for record in json_lines(out)] == [{"text"}, {"text"}]


def test_interpolate_prints_the_path(folder, model, tokenizer, texts, capsys, monkeypatch):
    status, out, _ = call(["interpolate", folder, texts[0], texts[1], "--steps", 5, "--method", "slerp", *TOKENS],
                          capsys, monkeypatch)  # fmt: skip
    assert status == 0
    alphas, expected = model.interpolate(texts[0], texts[1], tokenizer, steps=5, method="slerp", max_new_tokens=8)
    assert out.splitlines() == [f"{a:.2f}\t{t}" for a, t in zip(alphas, expected, strict=True)]
    assert len(set(expected)) > 1


def test_encode_writes_posterior_means_as_json_lines(folder, model, tokenizer, texts, capsys, monkeypatch):
    status, out, _ = call(["encode", folder], capsys, monkeypatch, "\n".join(texts))
    assert status == 0
    records = json_lines(out)
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    expected = model.encode(batch["input_ids"], batch["attention_mask"]).mean
    assert [r["text"] for r in records] == texts
    assert torch.allclose(torch.tensor([r["posterior_mean"] for r in records]), expected, atol=1e-5)


def test_score_gives_iw_nll_per_text(folder, model, tokenizer, texts, capsys, monkeypatch):
    status, out, _ = call(["score", folder, "--iw-samples", 7, "--seed", 1, "--json"], capsys, monkeypatch,
                          "\n".join(texts))  # fmt: skip
    assert status == 0
    expected = likelihoods(model, tokenizer(texts)["input_ids"], iw_samples=7, seed=1, progress=False)
    records = json_lines(out)
    assert [r["text"] for r in records] == texts
    assert [r["iw_nll"] for r in records] == pytest.approx(expected.iw_nll.tolist(), rel=1e-5)
    assert [r["elbo_nll"] for r in records] == pytest.approx(expected.elbo_nll.tolist(), rel=1e-5)


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["reconstruct", "{folder}"], "", "twrvae reconstruct: error: no input: standard input held no text"),
        (["reconstruct", "{folder}", "qqqzz xxyyz"], "", "has no word in the model's vocabulary"),
        (["reconstruct", "{folder}", " ".join(["the"] * MAX_LENGTH)], "", "is 20 words long; this model reads and"),
        (["score", "{folder}", "--iw-samples", "0"], "the company", "--iw-samples must be >= 1, got 0."),
        (["encode", "{folder}", "--output", "{tmp}/means.txt"], "the company", "must name a .safetensors file"),
        (["sample", "{tmp}"], "", "is a folder without config.json: it is not a saved model."),
        (["sample", "{tmp}/bert"], "", "holds a 'bert' model, not a twrvae text VAE."),
        (["sample", "{folder}", "-n", "0"], "", "-n must be >= 1, got 0."),
    ],
)
def test_error_paths(folder, tmp_path, capsys, monkeypatch, args, stdin, message):
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    args = [arg.format(folder=folder, tmp=tmp_path) for arg in args]
    status, out, err = call(args, capsys, monkeypatch, stdin)
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_corrupt_weights_are_one_line(folder, tmp_path, capsys, monkeypatch):
    broken = shutil.copytree(folder, tmp_path / "broken")
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    status, _, err = call(["sample", broken], capsys, monkeypatch)
    assert status == 2 and len(err.strip().splitlines()) == 1 and "not a readable safetensors file" in err


def test_top_p_and_beams_exclude_each_other(folder, capsys, monkeypatch):
    with pytest.raises(SystemExit) as exit_info:
        call(["sample", folder, "--top-p", "0.9", "--num-beams", "2"], capsys, monkeypatch)
    assert exit_info.value.code == 2


def test_encode_to_safetensors(folder, model, tokenizer, texts, tmp_path, capsys, monkeypatch):
    target = tmp_path / "out" / "means.safetensors"
    status, out, err = call(["encode", folder, "--output", target], capsys, monkeypatch, "\n".join(texts))
    assert status == 0 and out == "" and "posterior_mean (3, 6)" in err
    with safe_open(str(target), framework="pt") as stored:
        means = stored.get_tensor("posterior_mean")
        assert json.loads(stored.metadata()["texts"]) == texts
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    assert torch.allclose(means, model.encode(batch["input_ids"], batch["attention_mask"]).mean, atol=1e-6)
    assert [p.name for p in target.parent.iterdir()] == ["means.safetensors"]  # no temporary file left


def test_score_defaults_to_the_elbo_as_plain_text(folder, model, tokenizer, texts, capsys, monkeypatch):
    status, out, _ = call(["score", folder, "--seed", "2"], capsys, monkeypatch, "\n".join(texts))
    expected = likelihoods(model, tokenizer(texts)["input_ids"], iw_samples=1, seed=2, progress=False).elbo_nll
    assert status == 0
    assert out.splitlines() == [f"{value:.3f}\t{text}" for value, text in zip(expected.tolist(), texts, strict=True)]


def test_train_and_evaluate_run_the_training_scripts(tmp_path, capsys, monkeypatch):
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    output = tmp_path / "trained"
    train_args = ["train", "--dataset", "e2e", "--data_dir", DATA_DIR, "--train_split", "validation",
                  "--validation_split_percentage", "20", "--max_train_samples", "48", "--max_eval_samples", "8",
                  "--per_device_train_batch_size", "16", "--config_overrides",
                  "embedding_size=16,hidden_size=12,latent_size=4", "--max_train_steps", "3", "--output_dir", output]  # fmt: skip
    status, _, err = call(train_args, capsys, monkeypatch)
    assert status == 0, err
    assert (output / "model.safetensors").is_file() and (output / "pipeline_twrvae.py").is_file()

    results = tmp_path / "results.json"
    status, out, err = call(["evaluate", "--model_name_or_path", output, "--dataset", "e2e", "--data_dir", DATA_DIR,
                             "--max_samples", "6", "--iw_samples", "3", "--num_prior_samples", "4",
                             "--num_interpolation_pairs", "1", "--interpolation_steps", "3", "--no_progress",
                             "--output_file", results], capsys, monkeypatch)  # fmt: skip
    assert status == 0, err
    assert json.loads(results.read_text())["num_sentences"] == 6 and "IW-NLL" in out

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    status, _, err = call(train_args, capsys, monkeypatch)  # the same output folder again: the script's own error
    assert status == 2 and "holds an earlier run" in err and len(err.strip().splitlines()) == 1


def test_every_script_prints_its_help():
    import subprocess
    import sys

    from helpers import REPO_ROOT

    for script in ("train", "evaluate", "publish"):
        done = subprocess.run([sys.executable, str(REPO_ROOT / "training" / f"{script}.py"), "--help"],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0 and "usage:" in done.stdout, done.stderr[-2000:]
