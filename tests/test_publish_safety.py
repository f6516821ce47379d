"""training/publish.py never loses what a user saved, puts only the checkpoint's own results on its card, and fails
with one `error: ...` line, never a traceback.

The command-line cases run training/publish.py as a real process: its stderr must be one line starting `error:`, its
exit status non-zero, and the folders it was given exactly as they were.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from modeling_twrvae.commands import evaluate, publish
from modeling_twrvae.file_utils import weights_fingerprint
from modeling_twrvae.storage.locking import LOCK_FILE, locked_folder

from dialogue_helpers import dialogue_tokenizer, tiny_cvae
from helpers import DATA_DIR, REPO_ROOT, tiny_model

REPO_ID = "org/twrvae-safety"


@pytest.fixture(scope="module")
def saved(tokenizer, tmp_path_factory):
    """A checkpoint as save_pretrained leaves it, and a second model of other weights (as after a new training)."""
    root = tmp_path_factory.mktemp("saved")
    folders = {}
    for name, seed in (("checkpoint", 0), ("other", 1)):
        folders[name] = root / name
        tiny_model("twr-vae", len(tokenizer), seed=seed).save_pretrained(folders[name])
        tokenizer.save_pretrained(folders[name])
    assert weights_fingerprint(folders["checkpoint"]) != weights_fingerprint(folders["other"])
    return folders


@pytest.fixture
def workspace(saved, tmp_path):
    """A user's folder: runs/checkpoint (the model to publish), runs/other (another model), runs/thesis.txt."""
    runs = tmp_path / "runs"
    for name in ("checkpoint", "other"):
        shutil.copytree(saved[name], runs / name)
    (runs / "thesis.txt").write_text("three years of work\n")
    return runs


def snapshot(folder):
    """Every path under `folder` (folders and hidden files too), with each file's SHA-256."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        for path in sorted(folder.rglob("*"))
    }


def run_publish(*args, cwd):
    env = {key: value for key, value in os.environ.items() if key != "TWRVAE_TRACEBACK"}
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "training" / "publish.py"), *map(str, args), "--repo-id", REPO_ID],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )


def assert_one_error_line(result, *words):
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0, result.stdout + result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def results_of(folder, **extra):
    """A minimal training/evaluate.py JSON measured on `folder`'s weights."""
    results = {
        "model": str(folder),
        "weights_sha256": weights_fingerprint(folder),
        "data": "ptb:test",
        "seed": 0,
        "iw_samples": 10,
        "num_sentences": 4,
        "num_predicted_tokens": 40,
        "iw_nll": 77.7777,
        "elbo_nll": 80.0,
        "reconstruction_loss": 75.0,
        "kl_decoded": 5.0,
        "kl_regularizer": 1.0,
        "examples": {"reconstructions": []},
    }
    return {**results, **extra}


# Item 1: an --output_dir that publishing would replace is refused, whatever it holds.


@pytest.mark.parametrize(
    "target, words",
    [
        (".", ["holds the checkpoint"]),  # the parent of the checkpoint: the checkpoint, another model, a thesis
        ("thesis.txt", ["is not a folder", "remove it yourself"]),
        ("checkpoint", ["the checkpoint folder itself"]),
        ("other", ["is not a Hub folder that training/publish.py wrote", ".twrvae-hub-folder"]),
    ],
)
def test_an_output_dir_that_is_not_a_hub_folder_of_this_command_is_refused_and_kept(workspace, target, words):
    before = snapshot(workspace)
    result = run_publish(workspace / "checkpoint", "--output_dir", workspace / target, cwd=workspace)
    assert_one_error_line(result, "--output_dir", "choose another --output_dir", "nothing was written", *words)
    assert snapshot(workspace) == before  # the thesis, the other model and the checkpoint are all still there


def test_the_hub_folder_is_replaced_only_while_it_holds_exactly_what_this_command_wrote(workspace):
    checkpoint, hub = workspace / "checkpoint", workspace / "release"
    hub.mkdir()  # an empty folder holds nothing to lose: it may be the target
    assert publish.build_hub_folder(checkpoint, REPO_ID, output_dir=hub) == hub
    marker = json.loads((hub / publish.HUB_MARKER).read_text())
    assert set(marker["files"]) == {name for name in snapshot(hub) if name != publish.HUB_MARKER}
    assert {"model.safetensors", "config.json", "README.md"} <= set(marker["files"])
    assert not any(name.startswith("tmp_") for name in os.listdir(workspace))  # built beside, renamed into place

    publish.build_hub_folder(checkpoint, REPO_ID, output_dir=hub)  # its own, unchanged folder: replaced
    assert (hub / publish.HUB_MARKER).is_file()

    (hub / "notes.txt").write_text("my notes\n")  # the user's file inside the Hub folder
    with pytest.raises(publish.PublishError, match=r"holds notes\.txt, which training/publish\.py did not write"):
        publish.build_hub_folder(checkpoint, REPO_ID, output_dir=hub)
    assert (hub / "notes.txt").read_text() == "my notes\n"
    (hub / "notes.txt").unlink()

    with (hub / "README.md").open("a") as card:
        card.write("\nMy own words about this model.\n")
    edited = snapshot(hub)
    with pytest.raises(publish.PublishError, match=r"holds README\.md, which was changed since"):
        publish.build_hub_folder(checkpoint, REPO_ID, output_dir=hub)
    assert snapshot(hub) == edited


def test_a_publish_into_a_locked_folder_fails_at_once_naming_the_holder(workspace):
    before = snapshot(workspace / "checkpoint")
    with locked_folder(workspace / "checkpoint", "training/train.py"):  # e.g. a run still writing there
        result = run_publish(workspace / "checkpoint", cwd=workspace)
        assert_one_error_line(result, "is in use by training/train.py", "nothing was written")
    assert not (workspace / "checkpoint" / "hub").exists()
    assert set(snapshot(workspace / "checkpoint")) - set(before) <= {LOCK_FILE, LOCK_FILE + ".owner"}


# Item 9: results go on the card only when they were measured on the checkpoint's weights.


def test_evaluate_records_the_weights_and_publish_refuses_its_results_once_the_model_is_trained_again(
    workspace, ptb_lines
):
    checkpoint = workspace / "checkpoint"
    (workspace / "test.txt").write_text("\n".join(ptb_lines[:8]) + "\n")
    results = evaluate.main(
        ["--model_name_or_path", str(checkpoint), "--validation_file", str(workspace / "test.txt")]
        + ["--output_file", str(checkpoint / "test_results.json"), "--device", "cpu", "--max_samples", "4"]
        + ["--iw_samples", "2", "--num_prior_samples", "2", "--num_interpolation_pairs", "1"]
        + ["--max_new_tokens", "5", "--no_progress"]
    )
    assert results["weights_sha256"] == weights_fingerprint(checkpoint)
    assert json.loads((checkpoint / "test_results.json").read_text())["weights_sha256"] == results["weights_sha256"]
    hub = publish.build_hub_folder(checkpoint, REPO_ID)
    card = ModelCard.load(hub / "README.md")
    assert {entry.metric_type: entry.metric_value for entry in card.data.eval_results}["iw_nll"] == round(
        results["iw_nll"], 4
    )

    # train.py --overwrite_output_dir: new weights, the old test_results.json still beside them
    shutil.copyfile(workspace / "other" / "model.safetensors", checkpoint / "model.safetensors")
    card_before = (hub / "README.md").read_text()
    result = run_publish(checkpoint, cwd=workspace)
    message = assert_one_error_line(result, "test_results.json was measured on other weights", "evaluate this")
    assert "training/evaluate.py --model_name_or_path" in message and "move the file away" in message
    assert (hub / "README.md").read_text() == card_before  # the old card stays; the new model got no wrong one


@pytest.mark.parametrize(
    "case, words",
    [
        ("test results without a fingerprint", ["test_results.json does not say which weights"]),
        ("explicit results of another model", ["measured on other weights", "--output_file"]),
        ("validation results of another model", ["eval_results.json was measured on other weights", "move it away"]),
    ],
)
def test_results_not_measured_on_these_weights_are_refused(workspace, case, words):
    checkpoint = workspace / "checkpoint"
    arguments = [checkpoint]
    if case == "test results without a fingerprint":
        unmarked = results_of(checkpoint)
        del unmarked["weights_sha256"]  # written by an older evaluate.py
        (checkpoint / "test_results.json").write_text(json.dumps(unmarked))
    elif case == "explicit results of another model":
        (workspace / "results.json").write_text(json.dumps(results_of(workspace / "other")))
        arguments += ["--eval_results", workspace / "results.json"]
    else:
        (checkpoint / "test_results.json").write_text(json.dumps(results_of(checkpoint)))
        validation = {"step": 80, "elbo_nll": 80.0, "reconstruction_loss": 75.0, "kl_decoded": 5.0}
        validation["weights_sha256"] = weights_fingerprint(workspace / "other")  # e.g. an abandoned continuation
        (checkpoint / "eval_results.json").write_text(json.dumps(validation))
    before = snapshot(workspace)
    result = run_publish(*arguments, cwd=workspace)
    assert_one_error_line(result, "cannot go on this model's card", "nothing was written", *words)
    assert snapshot(workspace) == before


def test_the_dialogue_evaluation_records_the_weights_it_measured(tmp_path):
    checkpoint = tmp_path / "dialogue"
    tokenizer = dialogue_tokenizer()
    tiny_cvae("twr-cvae", len(tokenizer)).save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    results = evaluate.main(
        ["--model_name_or_path", str(checkpoint), "--validation_file", str(DATA_DIR / "dailydialog" / "valid.utts.txt")]
        + ["--output_file", str(tmp_path / "results.json"), "--device", "cpu", "--max_samples", "3"]
        + ["--num_responses", "2", "--max_new_tokens", "4"]
    )
    assert results["num_contexts"] == 3
    assert results["weights_sha256"] == weights_fingerprint(checkpoint) is not None
    assert json.loads((tmp_path / "results.json").read_text())["weights_sha256"] == results["weights_sha256"]


# Every failure: one `error: ...` line, a non-zero status, nothing written.


def _damage(workspace, case):
    checkpoint = workspace / "checkpoint"
    if case == "a list as --eval_results":
        (workspace / "list.json").write_text("[1, 2]\n")
        return ["--eval_results", workspace / "list.json"], ["list.json holds a JSON list"]
    if case == "eval_results.json is not an object":
        (checkpoint / "eval_results.json").write_text('"best"\n')
        return [], ["eval_results.json holds a JSON str"]
    if case == "malformed training_config.yaml":
        (checkpoint / "training_config.yaml").write_text("learning_rate: [0.001,\n  seed: 1\n")
        return [], ["training_config.yaml is not readable YAML", "line"]
    if case == "training_config.yaml is a list":
        (checkpoint / "training_config.yaml").write_text("- learning_rate\n- seed\n")
        return [], ["training_config.yaml holds a YAML list"]
    if case == "missing weights":
        (checkpoint / "model.safetensors").unlink()
        return [], ["model.safetensors is missing"]
    if case == "truncated weights":
        weights = checkpoint / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:100])
        return [], ["model.safetensors is not a readable safetensors file"]
    if case == "corrupt config.json":
        (checkpoint / "config.json").write_text('{"model_type": "twrvae",\n')
        return [], ["config.json is not a readable JSON file"]
    if case == "corrupt tokenizer.json":
        (checkpoint / "tokenizer.json").write_text('{"model": {"vocab\n')
        return [], ["tokenizer.json is not a readable JSON file"]
    if case == "missing tokenizer.json":
        (checkpoint / "tokenizer.json").unlink()
        return [], ["has no tokenizer.json"]
    if case == "missing checkpoint":
        shutil.rmtree(checkpoint)
        return [], ["has no config.json"]
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "a list as --eval_results",
        "eval_results.json is not an object",
        "malformed training_config.yaml",
        "training_config.yaml is a list",
        "missing weights",
        "truncated weights",
        "corrupt config.json",
        "corrupt tokenizer.json",
        "missing tokenizer.json",
        "missing checkpoint",
    ],
)
def test_every_bad_input_is_one_error_line_and_writes_nothing(workspace, case):
    arguments, words = _damage(workspace, case)
    before = snapshot(workspace)
    result = run_publish(workspace / "checkpoint", *arguments, cwd=workspace)
    assert_one_error_line(result, *words)
    assert snapshot(workspace) == before


def _unwritable_folder(tmp_path):
    """A folder this process cannot write into: a read-only one, or (for root, whom modes do not stop) /sys."""
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    for folder in (read_only, Path("/sys")):
        try:
            (folder / ".probe").mkdir()
        except OSError:
            return folder
        (folder / ".probe").rmdir()
    pytest.skip("no folder here refuses writing to this user")


def test_a_read_only_output_folder_is_one_error_line(workspace, tmp_path):
    folder = _unwritable_folder(tmp_path)
    try:
        before = snapshot(workspace)
        result = run_publish(workspace / "checkpoint", "--output_dir", folder / "hub", cwd=workspace)
        assert_one_error_line(result, "could not write the Hub folder", "choose an --output_dir", "nothing was written")
        assert snapshot(workspace) == before and not (folder / "hub").exists()
    finally:
        (tmp_path / "read-only").chmod(0o755)
