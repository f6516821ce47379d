"""training/train.py never loses what a user saved and never mixes runs, and its command line's errors: what it
refuses to write into, what --overwrite_output_dir removes, resumes from other folders
and with other settings, the folder lock, the best model after a rewind, and Ctrl-C."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml
from test_training import TINY, run

from modeling_twrvae import TWRVAEConfig, TWRVAEModel
from modeling_twrvae.commands import train
from modeling_twrvae.file_utils import weights_fingerprint
from modeling_twrvae.storage.locking import LOCK_FILE, LOCK_OWNER_FILE
from modeling_twrvae.trainer.tasks import LanguageTask

from helpers import DATA_DIR, REPO_ROOT, folder_digest, tiny_model

OPTIONS = {"checkpointing_steps": 2, "save_total_limit": 5, "eval_steps": 2}
SCRIPT = str(REPO_ROOT / "training" / "train.py")
COMMON_ARGV = [
    "--dataset", "e2e", "--data_dir", str(DATA_DIR), "--train_split", "validation",
    "--validation_split_percentage", "20", "--max_train_samples", "80", "--max_eval_samples", "20",
    "--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "16", "--config_overrides", TINY,
    "--learning_rate", "0.003", "--logging_steps", "1",
]  # fmt: skip


def environment():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory):
    """Six updates, validated and checkpointed every two."""
    root = tmp_path_factory.mktemp("earlier")
    run(root, "run", **OPTIONS)
    return root / "run"


def files(folder):
    """The folder's files and their digests, but for the lock's (whose owner file names the last holder)."""
    return {name: digest for name, digest in folder_digest(folder).items() if name not in (LOCK_FILE, LOCK_OWNER_FILE)}


def copy_run(source, tmp_path, name="run"):
    shutil.copytree(source, tmp_path / name, symlinks=True)
    return tmp_path / name


def log(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def saved_model_folder(tmp_path):
    folder = tmp_path / "saved"
    tiny_model("twr-vae", 60).save_pretrained(folder)
    (folder / "README.md").write_text("the card of the saved model")
    return folder


# Item 2: a folder that holds a model (or anything but an earlier run of train.py) needs --overwrite_output_dir


def test_a_saved_model_folder_is_never_written_into_without_overwrite(tmp_path):
    folder = saved_model_folder(tmp_path)
    before = folder_digest(folder)
    with pytest.raises(FileExistsError, match=r"holds a saved model \(config\.json, model\.safetensors\).*"
                       r"--overwrite_output_dir.*only what train\.py writes"):  # fmt: skip
        run(tmp_path, "saved", max_train_steps=2)
    assert folder_digest(folder) == before  # nothing replaced, nothing added (not even the lock files)

    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.txt").write_text("years of work")
    with pytest.raises(
        FileExistsError, match=r"not empty: it holds files that train\.py did not write \(thesis\.txt\)"
    ):
        run(tmp_path, "other", max_train_steps=2)
    assert sorted(p.name for p in other.iterdir()) == ["thesis.txt"]

    (tmp_path / "empty").mkdir()  # an empty folder, or none, is fine
    assert run(tmp_path, "empty", max_train_steps=2)["global_step"] == 2
    assert run(tmp_path, "missing", max_train_steps=2)["global_step"] == 2


def test_a_run_that_failed_before_writing_anything_leaves_the_folder_usable(tmp_path):
    with pytest.raises(FileNotFoundError):
        run(tmp_path, "run", train_file=tmp_path / "missing.txt", validation_file=tmp_path / "missing.txt",
            validation_split_percentage=None)  # fmt: skip
    assert run(tmp_path, "run", max_train_steps=2)["global_step"] == 2  # no --overwrite_output_dir needed


def test_overwriting_a_saved_model_keeps_the_files_train_py_did_not_write(tmp_path, caplog):
    folder = saved_model_folder(tmp_path)
    (folder / "thesis.txt").write_text("years of work")
    old_weights = weights_fingerprint(folder)
    with caplog.at_level("WARNING"):
        run(tmp_path, "saved", "--overwrite_output_dir", max_train_steps=2)
    assert "kept README.md, thesis.txt" in caplog.text and "train.py did not write them" in caplog.text
    assert (folder / "thesis.txt").read_text() == "years of work"
    assert (folder / "README.md").read_text() == "the card of the saved model"  # kept, and the log says so
    results = json.loads((folder / "eval_results.json").read_text())
    assert weights_fingerprint(folder) != old_weights and results["weights_sha256"] == weights_fingerprint(folder)


def test_overwrite_removes_only_an_earlier_run_s_files_and_leaves_no_stale_result(earlier_run, tmp_path):
    out = copy_run(earlier_run, tmp_path)
    old = json.loads((out / "eval_results.json").read_text())
    (out / "notes.txt").write_text("mine")
    (out / "drafts").mkdir()
    (out / "drafts" / "paper.tex").write_text("mine too")
    for name in ("test_results.json", "test_results.md", "eval_test.json"):  # evaluate.py's, on the old model
        (out / name).write_text("{}")
    run(tmp_path, "run", "--overwrite_output_dir", max_train_steps=3, eval_steps=3, checkpointing_steps=3)
    assert (out / "notes.txt").read_text() == "mine" and (out / "drafts" / "paper.tex").read_text() == "mine too"
    for name in ("test_results.json", "test_results.md", "eval_test.json"):
        assert not (out / name).exists(), name
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-3"]  # the earlier run's are gone
    assert [r["step"] for r in log(out) if "loss" in r] == [1, 2, 3]
    results = json.loads((out / "eval_results.json").read_text())
    assert results["step"] == 3 and results != old
    assert results["weights_sha256"] == weights_fingerprint(out)


# Item 3: a rewind is a rewind only within one folder


def test_resuming_another_folder_s_checkpoint_never_rewinds_this_one(earlier_run, tmp_path):
    other = copy_run(earlier_run, tmp_path, "other")
    this = copy_run(earlier_run, tmp_path, "this")
    before = files(this)
    with pytest.raises(FileExistsError, match=r"is not in --output_dir .*this, which holds an earlier run.*"
                       r"new or empty --output_dir.*--overwrite_output_dir"):  # fmt: skip
        run(tmp_path, "this", resume_from_checkpoint=other / "checkpoint-2", **OPTIONS)
    assert files(this) == before  # checkpoints 4 and 6 and the whole log are still there

    other_before = files(other)
    run(tmp_path, "new", resume_from_checkpoint=other / "checkpoint-2", **OPTIONS)  # an empty folder: a clean start
    new = tmp_path / "new"
    assert [r["step"] for r in log(new) if "loss" in r] == [3, 4, 5, 6]  # nothing of the other folder's log
    assert sorted(p.name for p in new.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-6"]
    assert files(other) == other_before
    assert json.loads((new / "eval_results.json").read_text())["weights_sha256"] == weights_fingerprint(new)

    # with --overwrite_output_dir, this folder's earlier run goes first, then the other's run continues here
    run(tmp_path, "this", "--overwrite_output_dir", resume_from_checkpoint=other / "checkpoint-2", **OPTIONS)
    assert [r["step"] for r in log(this) if "loss" in r] == [3, 4, 5, 6]


# Item 4: a lock on the output folder, taken before anything in it is touched


def test_a_second_run_on_a_folder_in_use_fails_at_once_and_touches_nothing(tmp_path):
    out, ready, go = tmp_path / "run", tmp_path / "ready", tmp_path / "go"
    # The first run stops inside its first best-model save (its .best.tmp written, not yet moved) until told to go on.
    first_script = f"""
import sys, time
from pathlib import Path
from modeling_twrvae.commands import train
from modeling_twrvae.trainer import output_folder
original = output_folder.move_files_into
def held(*args, **kwargs):
    Path({str(ready)!r}).write_text("saving")
    deadline = time.monotonic() + 600
    while not Path({str(go)!r}).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return original(*args, **kwargs)
output_folder.move_files_into = held
train.main(sys.argv[1:])
"""
    argv = COMMON_ARGV + ["--max_train_steps", "6", "--eval_steps", "3", "--checkpointing_steps", "3"]
    first = subprocess.Popen(
        [sys.executable, "-c", first_script, *argv, "--output_dir", str(out)],
        env=environment(), cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while not ready.exists():
            assert first.poll() is None, first.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "the first run never reached its save"
            time.sleep(0.05)
        leftovers = sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp"))
        assert ".best.tmp" in leftovers
        # the most dangerous second run: --overwrite_output_dir on the live run's folder
        second = subprocess.run(
            [sys.executable, SCRIPT, *argv, "--overwrite_output_dir", "--output_dir", str(out)],
            env=environment(), capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert second.returncode == 1, second.stderr[-3000:]
        assert f"is in use by training/train.py (pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr and "tokenizing" not in second.stderr  # failed before reading data
        assert sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp")) == leftovers  # the live run's survive
        assert f"pid {first.pid}" in (out / LOCK_OWNER_FILE).read_text()
    finally:
        go.write_text("go")
        _, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr[-3000:]
    records = log(out)
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4, 5, 6]  # one run's log, not two interleaved
    assert [r["step"] for r in records if "eval_elbo_nll" in r] == [3, 6]


# Item 9: the best model and eval_results.json belong together, and to the run's steps


def test_a_rewind_restores_the_best_model_of_the_checkpoint_s_time(earlier_run, tmp_path, monkeypatch):
    out = copy_run(earlier_run, tmp_path)
    results = json.loads((out / "eval_results.json").read_text())
    assert results["step"] > 2 and results["weights_sha256"] == weights_fingerprint(out)
    at_two = json.loads((out / "checkpoint-2" / "best_model" / "eval_results.json").read_text())
    assert at_two["step"] == 2
    (out / "test_results.json").write_text(json.dumps({"iw_nll": 1.0}))  # evaluate.py's, on the later best model

    def crash(self, *args, **kwargs):
        raise train.NonFiniteLossError("stopped right after the rewind")

    monkeypatch.setattr(TWRVAEModel, "forward", crash)
    with pytest.raises(train.NonFiniteLossError):
        run(tmp_path, "run", resume_from_checkpoint=out / "checkpoint-2", **OPTIONS)
    assert [r["step"] for r in log(out)] == [1, 2, 2]  # the log says the best was at step 2 ...
    assert json.loads((out / "eval_results.json").read_text()) == at_two  # ... and so do the model and its results
    assert weights_fingerprint(out) == at_two["weights_sha256"]
    assert not (out / "test_results.json").exists()


def test_a_resume_ends_with_the_uninterrupted_run_s_log_and_best_model(tmp_path):
    # --logging_steps 4 does not divide --checkpointing_steps 3: the running average crosses the checkpoint
    options = {"logging_steps": 4, "checkpointing_steps": 3, "save_total_limit": 5, "eval_steps": 4,
               "max_train_steps": 8, "config_overrides": TINY + ",dropout=0.3"}  # fmt: skip
    run(tmp_path, "whole", **options)
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(whole / "checkpoint-3", resumed / "checkpoint-3")
    kept = [line for line in (whole / "metrics.jsonl").read_text().splitlines() if json.loads(line)["step"] <= 3]
    (resumed / "metrics.jsonl").write_text("".join(line + "\n" for line in kept))
    run(tmp_path, "resumed", resume_from_checkpoint="latest", **options)
    assert (resumed / "metrics.jsonl").read_text() == (whole / "metrics.jsonl").read_text()
    assert json.loads((resumed / "eval_results.json").read_text()) == json.loads(
        (whole / "eval_results.json").read_text()
    )


# Item 10: a resume continues the recorded run, or is refused


@pytest.mark.parametrize(
    "change, message",
    [
        ({"seed": 7}, "--seed 7 (the run: 42)"),
        ({"preset": "vae-lstm"}, "--preset 'vae-lstm' (the run: 'twr-vae')"),
        ({"per_device_train_batch_size": 8}, "the batch size (--per_device_train_batch_size x processes) 8"),
        ({"kl_weight": 0.5}, "--kl_weight 0.5 (the run: 1.0)"),
        ({"config_overrides": TINY + ",dropout=0.2"}, "--config_overrides"),
    ],
)
def test_resume_refuses_settings_that_would_change_the_run(earlier_run, tmp_path, monkeypatch, change, message):
    out = copy_run(earlier_run, tmp_path)
    before = files(out)
    monkeypatch.setattr(LanguageTask, "load_splits", lambda self: pytest.fail("the data was read before the check"))
    with pytest.raises(ValueError, match="continues a run made with other settings.*" + re.escape(message)):
        run(tmp_path, "run", resume_from_checkpoint="latest", **{**OPTIONS, **change})
    assert files(out) == before


def test_resume_refuses_other_data_and_allows_what_leaves_the_run_as_it_was(earlier_run, tmp_path):
    out = copy_run(earlier_run, tmp_path)
    moved = tmp_path / "data"
    (moved / "e2e").mkdir(parents=True)
    text = (DATA_DIR / "e2e" / "devset.csv").read_text(encoding="utf-8")
    (moved / "e2e" / "devset.csv").write_text(text.replace(" is ", " was "), encoding="utf-8")
    with pytest.raises(ValueError, match="texts are not those the run was trained on"):
        run(tmp_path, "run", resume_from_checkpoint="latest", data_dir=moved, **OPTIONS)
    with pytest.raises(ValueError, match=re.escape("--max_train_samples 70 (the run: 80)")):
        run(tmp_path, "run", resume_from_checkpoint="latest", max_train_samples=70, **OPTIONS)
    # the same texts elsewhere, a longer run, another learning rate, other logging and checkpointing: the same run
    (moved / "e2e" / "devset.csv").write_text(text, encoding="utf-8")
    summary = run(tmp_path, "run", resume_from_checkpoint="latest", data_dir=moved, max_train_steps=8,
                  learning_rate=0.001, logging_steps=2, checkpointing_steps=4, eval_steps=4, save_total_limit=5)  # fmt: skip
    assert summary["global_step"] == 8
    state = json.loads((out / "checkpoint-8" / "trainer_state.json").read_text())
    assert state["resumes"][0]["step"] == 6
    assert state["resumes"][0]["changed"]["learning_rate"] == [0.003, 0.001]
    assert state["settings"]["seed"] == 42 and state["total_steps"] == 8


def test_a_longer_run_is_refused_when_a_schedule_spreads_over_its_length(tmp_path):
    run(tmp_path, "run", kl_schedule="cyclical", checkpointing_steps=3)
    with pytest.raises(ValueError, match="set for 6 updates and --kl_schedule cyclical spreads over them"):
        run(tmp_path, "run", resume_from_checkpoint="latest", kl_schedule="cyclical", max_train_steps=9)


# Item 11: what training_config.yaml records is what ran


def test_fp16_on_a_cpu_is_recorded_as_the_fp32_it_trains_in(tmp_path):
    with pytest.warns(UserWarning, match="fp16.*Training in fp32"):
        run(tmp_path, "run", "--use_cpu", mixed_precision="fp16", max_train_steps=1)
    assert yaml.safe_load((tmp_path / "run" / "training_config.yaml").read_text())["mixed_precision"] == "no"


# Settings errors: found before any data is read, as one line


def test_config_override_numbers_yaml_reads_as_strings_are_numbers(tmp_path):
    args = train.parse_args(["--config_overrides", "dropout=1e-1,kl_timestep_fraction=5e-1", "--output_dir", "x"])
    assert args.config_overrides == {"dropout": 0.1, "kl_timestep_fraction": 0.5}
    assert isinstance(args.config_overrides["dropout"], float)
    config = tmp_path / "config.yaml"
    config.write_text("config_overrides:\n  dropout: 1e-1\n")
    assert train.parse_args(["--config", str(config), "--output_dir", "x"]).config_overrides == {"dropout": 0.1}
    TWRVAEConfig.from_preset("twr-vae", vocab_size=50, **args.config_overrides)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ("vocab_size=50", r"vocabulary size is its tokenizer's.*--vocab_size N"),
        ("hidden_size=10**12", r"hidden_size='10\*\*12': expected an integer"),
        ("dropout=lots", r"dropout='lots': expected a number"),
        ("dropout=1.5", r"`dropout` must be in \[0, 1\)"),
    ],
)
def test_bad_config_overrides_are_usage_errors(capsys, overrides, message):
    with pytest.raises(SystemExit) as raised:
        train.parse_args(["--config_overrides", overrides, "--output_dir", "x"])
    assert raised.value.code == 2
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ("hidden_size=1000000000000", "would not fit in a tensor"),
        ("hidden_size=1000000", r"makes a model of [\d,]+ parameters: training it takes about [\d,]+ GB"),
    ],
)
def test_absurd_sizes_are_refused_before_the_data_is_read(tmp_path, monkeypatch, overrides, message):
    monkeypatch.setattr(LanguageTask, "load_splits", lambda self: pytest.fail("the data was read before the check"))
    with pytest.raises(ValueError, match=message):
        run(tmp_path, "run", config_overrides=overrides)
    assert not (tmp_path / "run").exists()


def test_exit_status_2_for_settings_1_for_what_running_finds(earlier_run):
    usage = subprocess.run([sys.executable, SCRIPT, "--max_train_steps", "-3", "--output_dir", "x"],
                           env=environment(), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert usage.returncode == 2 and "--max_train_steps must be at least 1" in usage.stderr
    refused = subprocess.run([sys.executable, SCRIPT, *COMMON_ARGV, "--output_dir", str(earlier_run)],
                             env=environment(), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert refused.returncode == 1 and refused.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "holds an earlier run" in refused.stderr and "Traceback" not in refused.stderr


# Ctrl-C: one line, status 130


def interrupt_when(command, started, cwd):
    """Run `command`, send it SIGINT once `started(stderr so far)` holds, and return (status, stderr)."""
    process = subprocess.Popen(command, env=environment(), cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)  # fmt: skip
    chunks = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: process.stderr.read1(4096), b"")))
    reader.start()
    try:
        deadline = time.monotonic() + 600
        while not started(b"".join(chunks).decode(errors="replace")):
            assert process.poll() is None, b"".join(chunks).decode(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "never started"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
        reader.join()
    return process.returncode, b"".join(chunks).decode(errors="replace")


def test_ctrl_c_in_train_and_evaluate_is_one_line_and_status_130(tmp_path, tokenizer, ptb_lines):
    out = tmp_path / "run"
    argv = [sys.executable, SCRIPT, *COMMON_ARGV, "--max_train_steps", "100000", "--output_dir", str(out)]
    status, stderr = interrupt_when(argv, lambda _: (out / "metrics.jsonl").is_file(), REPO_ROOT)
    assert status == 130, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == "interrupted; resume with --resume_from_checkpoint latest"
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr

    model = tmp_path / "model"
    tiny_model("twr-vae", len(tokenizer)).save_pretrained(model)
    tokenizer.save_pretrained(model)
    data = tmp_path / "data.txt"
    data.write_text("\n".join(ptb_lines) + "\n")
    argv = [sys.executable, str(REPO_ROOT / "training" / "evaluate.py"), "--model_name_or_path", str(model),
            "--validation_file", str(data), "--iw_samples", "100000", "--output_file", str(tmp_path / "r.json")]  # fmt: skip
    status, stderr = interrupt_when(argv, lambda text: "IW-NLL (k=" in text, REPO_ROOT)
    assert status == 130, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == "interrupted"
    assert "Traceback" not in stderr and not (tmp_path / "r.json").exists()


# Nothing lost, round 2: a run inside another run's checkpoint, a full disk, a changed process count, a run with no
# checkpoint, and settings whose errors named the wrong thing


def test_a_run_is_never_trained_inside_another_run_s_checkpoint(earlier_run, tmp_path):
    run_a = copy_run(earlier_run, tmp_path, "A")
    checkpoint = sorted(run_a.glob("checkpoint-*"))[0]
    with pytest.raises(ValueError, match=r"inside .*checkpoint-\d+, a checkpoint of another run"):
        run(checkpoint, "B", max_train_steps=2)
    assert not (checkpoint / "B").exists()


def test_rotation_keeps_a_checkpoint_that_holds_what_train_py_did_not_write(tmp_path, caplog):
    run(tmp_path, "A", max_train_steps=4, checkpointing_steps=2, save_total_limit=1)
    first = tmp_path / "A" / "checkpoint-2"
    assert not first.exists()  # rotated away: the limit is one
    run(tmp_path, "C", max_train_steps=2, checkpointing_steps=2, save_total_limit=1)
    (tmp_path / "C" / "checkpoint-2" / "mine").mkdir()
    (tmp_path / "C" / "checkpoint-2" / "mine" / "notes.txt").write_text("keep me")
    run(tmp_path, "C", max_train_steps=4, checkpointing_steps=2, save_total_limit=1, resume_from_checkpoint="latest")
    assert (tmp_path / "C" / "checkpoint-2" / "mine" / "notes.txt").read_text() == "keep me"
    assert "kept" in caplog.text and "mine" in caplog.text


@pytest.mark.parametrize(
    "where, error",
    [
        ("checkpoint", RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos 64 vs 0")),
        ("model", None),  # safetensors' own error
    ],
)
def test_a_full_disk_while_saving_is_one_line_that_says_so(tmp_path, monkeypatch, capsys, where, error):
    import shutil as shell
    from collections import namedtuple

    from accelerate import Accelerator
    from safetensors import SafetensorError

    from modeling_twrvae import TWRVAEModel

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shell, "disk_usage", lambda path: usage(10 << 30, 10 << 30, 0))

    def full(*args, **kwargs):
        raise error or SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
                                       'message: "No space left on device" })')  # fmt: skip

    if where == "checkpoint":
        monkeypatch.setattr(Accelerator, "save_state", full)
    else:
        monkeypatch.setattr(TWRVAEModel, "save_pretrained", full)
    argv = [*COMMON_ARGV, "--max_train_steps", "2", "--eval_steps", "2", "--checkpointing_steps", "2",
            "--output_dir", str(tmp_path / "run")]  # fmt: skip
    with pytest.raises(SystemExit) as stopped:
        train.cli(argv)
    message = str(stopped.value.code)
    assert message.startswith("error: The disk is full") and message.count("The disk is full") == 1, message
    assert "--resume_from_checkpoint latest" in message


def test_evaluate_on_a_full_disk_says_so_once_without_train_s_advice(tokenizer, tmp_path, monkeypatch):
    import errno

    from modeling_twrvae.commands import evaluate

    from saved_text_vaes import save_text_vae

    folder = save_text_vae(tmp_path / "model", tokenizer)

    def full(path, value):
        from modeling_twrvae.file_utils import disk_full_error

        raise disk_full_error(OSError(errno.ENOSPC, "No space left on device"), path)

    monkeypatch.setattr(evaluate, "atomic_write_json", full)
    argv = ["--model_name_or_path", str(folder), "--dataset", "ptb", "--split", "test", "--data_dir", str(DATA_DIR),
            "--max_samples", "4", "--iw_samples", "2", "--num_prior_samples", "2", "--num_interpolation_pairs", "0",
            "--max_new_tokens", "3", "--device", "cpu", "--no_progress", "--output_file", str(tmp_path / "r.json")]  # fmt: skip
    with pytest.raises(SystemExit) as stopped:
        evaluate.cli(argv)
    message = str(stopped.value.code)
    assert message.count("The disk is full") == 1, message
    assert "--resume_from_checkpoint" not in message


def test_a_checkpoint_of_fewer_processes_resumes_under_more_with_the_same_batch(earlier_run, caplog):
    from modeling_twrvae.trainer.checkpointing import read_checkpoint

    checkpoint = sorted(earlier_run.glob("checkpoint-*"))[-1]
    assert not (checkpoint / "random_states_1.pkl").exists()
    state = read_checkpoint(checkpoint, earlier_run, num_processes=2)
    assert state["global_step"] == int(checkpoint.name.split("-")[1])
    assert "saved by 1 process(es) and is resumed by 2" in caplog.text


def test_a_run_without_a_checkpoint_offers_a_way_that_keeps_its_model(tmp_path):
    run(tmp_path, "run", max_train_steps=2, eval_steps=2)  # validated and saved, never checkpointed
    folder = tmp_path / "run"
    before = files(folder)
    with pytest.raises(FileExistsError, match=r"before its first checkpoint.*--model_name_or_path .*run "
                       r"--output_dir NEW_FOLDER \(it is kept\)"):  # fmt: skip
        run(tmp_path, "run", max_train_steps=4, eval_steps=2)
    with pytest.raises(FileNotFoundError, match=r"no complete checkpoint.*--model_name_or_path .*run"):
        run(tmp_path, "run", max_train_steps=4, eval_steps=2, resume_from_checkpoint="latest")
    assert files(folder) == before
    run(tmp_path, "further", max_train_steps=2, model_name_or_path=folder)  # the offered way works
    assert (tmp_path / "further" / "model.safetensors").is_file() and files(folder) == before


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--vocab_size", "2"], r"--vocab_size 2 leaves no room for words: .*4 special tokens"),
        (["--seed", "1180591620717411303424"], r"--seed must be in \[0, 2\*\*32 - 1\]"),
    ],
)
def test_settings_errors_name_the_setting(tmp_path, capsys, argv, words):
    with pytest.raises(SystemExit):
        train.parse_args([*COMMON_ARGV, "--output_dir", str(tmp_path / "run"), *argv])
    assert re.search(words, capsys.readouterr().err)


def test_a_dangling_symlink_output_dir_is_named(tmp_path):
    (tmp_path / "link").symlink_to(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match=r"symbolic link to .*missing, which does not exist"):
        run(tmp_path, "link", max_train_steps=2)
