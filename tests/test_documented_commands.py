"""Every command in the bash blocks of the README and of docs/ runs as written on what ../shared/data holds.

Each runs with cheap settings appended (a few updates of a tiny model, a few sentences) and its output folder moved
into a temporary folder; nothing else of the command changes. The training commands run in this process (the
`accelerate launch` and `torchrun` lines as the one process they start on a machine without GPUs; two processes
under torchrun are tested in test_training.py); the main job runs as a script.
"""

import os
import re
import shlex
import subprocess
import sys

import pytest
from accelerate.state import AcceleratorState, GradientState

from modeling_twrvae.commands import evaluate, train

from helpers import DATA_DIR, REPO_ROOT, documented_pages

TINY_TRAINING = [
    "--max_train_steps", "2", "--max_train_samples", "48", "--max_eval_samples", "8", "--logging_steps", "1",
    "--per_device_train_batch_size", "8", "--eval_steps", "2",
    "--config_overrides", "embedding_size=16,hidden_size=8,latent_size=32",  # HR-VAE: 2 layers x [h; c]
]  # fmt: skip
TINY_EVALUATION = ["--max_samples", "4", "--iw_samples", "2", "--num_prior_samples", "2",
                   "--num_interpolation_pairs", "1", "--max_new_tokens", "5", "--no_progress"]  # fmt: skip


TINY_COMPARISON = [
    "--datasets", "e2e", "--seeds", "1", "--models", "TWR-VAE", "SA-VAE", "--budget", "2", "--sa_vae_steps", "1",
    "--max_train_samples", "48", "--per_device_train_batch_size", "8", "--max_eval_samples", "4", "--iw_samples", "2",
    "--num_prior_samples", "2", "--num_interpolation_pairs", "1",
    "--config_overrides", "embedding_size=16,hidden_size=8,latent_size=32",
]  # fmt: skip
TINY_DIALOGUE_TRAINING = [
    "--max_train_steps", "2", "--max_train_samples", "24", "--max_eval_samples", "8", "--logging_steps", "1",
    "--per_device_train_batch_size", "8", "--eval_steps", "2",
    "--config_overrides", "embedding_size=8,utterance_hidden_size=8,context_hidden_size=8,decoder_hidden_size=8,"
    "latent_size=4,prior_hidden_size=8,bow_hidden_size=8",
]  # fmt: skip
TINY_DIALOGUE_EVALUATION = ["--max_samples", "3", "--num_responses", "2", "--max_new_tokens", "4",
                            "--word_vectors_size", "8"]  # fmt: skip


def readme_commands() -> list[str]:
    """The bash blocks' commands, each once, in reading order: continued lines joined, a quoted argument may span
    lines, comments dropped."""
    commands = []
    text = "\n".join(page.read_text() for page in documented_pages())
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        pending = ""
        for line in block.replace("\\\n", " ").splitlines():
            if not pending:
                line = line.split(" #")[0].strip()
                if not line or line.startswith("#"):
                    continue
            pending = f"{pending}\n{line}" if pending else line
            try:
                shlex.split(pending)
            except ValueError:  # an open quote: the command goes on on the next line
                continue
            commands += [part.strip() for part in pending.split(" && ") if part.strip() not in commands]
            pending = ""
    return commands


def as_written(words: list[str], tmp_path) -> list[str]:
    """The command's arguments with the data folder of this machine and the outputs in `tmp_path`."""
    return [word.replace("../shared/data", str(DATA_DIR)).replace("outputs/", f"{tmp_path}/outputs/") for word in words]


def in_shell(command: str, tmp_path, env=None, extra: str = "") -> subprocess.CompletedProcess:
    """A command line that needs the shell (pipes, redirections), with its files moved into `tmp_path`."""
    for name in ("sentences.txt", "means.safetensors"):
        command = command.replace(name, f"{tmp_path}/{name}")
    command = command.replace("../shared/data", str(DATA_DIR)).replace("outputs/", f"{tmp_path}/outputs/")
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", **(env or {})}
    done = subprocess.run(f"{command} {extra}", shell=True, cwd=REPO_ROOT, env=environment, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
    return done


def test_every_documented_command_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    seen = set()
    for number, command in enumerate(readme_commands()):
        words = shlex.split(command)
        if words[:2] == ["bash", "scripts/setup.sh"]:  # installs: what CI runs before the tests
            assert (REPO_ROOT / "scripts" / "setup.sh").is_file()
            seen.add("setup")
        elif words[:3] == ["python", "-m", "pytest"]:  # this suite itself
            seen.add("tests")
        elif words[:2] == ["bash", "scripts/demo.sh"]:
            env = {**os.environ, "TWRVAE_DEMO_TRAIN_ARGS": " ".join(TINY_TRAINING),
                   "TWRVAE_DEMO_EVAL_ARGS": " ".join(TINY_EVALUATION), "OMP_NUM_THREADS": "1"}  # fmt: skip
            done = subprocess.run([*as_written(words, tmp_path), f"{tmp_path}/outputs/demo"], env=env,
                                  capture_output=True, text=True, timeout=600)  # fmt: skip
            assert done.returncode == 0, done.stderr[-3000:]
            assert "Latent at work" in done.stdout and "Interpolation" in done.stdout
            seen.add("demo")
        elif "training/train.py" in words:
            argv = as_written(words[words.index("training/train.py") + 1 :], tmp_path)
            if "--output_dir" not in argv:  # the config's own output folder, moved
                name = "dialogue/dailydialog-twr-cvae" if "dialogue" in command else f"run-{number}"
                argv += ["--output_dir", f"{tmp_path}/outputs/{name}"]
            AcceleratorState._reset_state(True)
            GradientState._reset_state()
            summary = train.main(argv + (TINY_DIALOGUE_TRAINING if "dialogue" in command else TINY_TRAINING))
            assert summary["global_step"] == 2, command
            seen.add(words[0])
        elif words[:2] == ["python", "training/evaluate.py"] and "dailydialog" in words:
            results = evaluate.main(as_written(words[2:], tmp_path) + TINY_DIALOGUE_EVALUATION)
            assert results["num_contexts"] == 3, results.keys()
            seen.add("evaluate dialogue")
        elif words[:2] == ["python", "training/evaluate.py"]:
            results = evaluate.main(as_written(words[2:], tmp_path) + TINY_EVALUATION)
            assert results["num_sentences"] == 4
            seen.add("evaluate")
        elif words[0] in ("printf", "echo") or words[:2] == ["twrvae", "train"] or words[0] == "twrvae":
            extra = " ".join(TINY_TRAINING[:-2]) + ' --config_overrides "' + TINY_TRAINING[-1] + '"'
            done = in_shell(command, tmp_path, extra=extra if words[:2] == ["twrvae", "train"] else "")
            if words[0] == "twrvae" and words[1] in ("sample", "reconstruct", "interpolate", "score", "encode"):
                assert done.stdout.strip() or "--output" in words, command
            seen.add(words[0])
        elif words == ["python", "demo/app.py"]:  # a server: tests/test_demo.py starts it and drives it in Chromium
            assert "def test_the_page_in_headless_chromium" in (REPO_ROOT / "tests" / "test_demo.py").read_text()
            seen.add("demo page")
        elif words[:2] == ["bash", "scripts/publish_demo.sh"]:
            in_shell(command, tmp_path, extra=f"{tmp_path}/outputs/demo")
            assert (tmp_path / "outputs" / "demo" / "hub" / "README.md").is_file()
            seen.add("publish")
        elif words[:2] == ["python", "training/publish.py"]:
            in_shell(command, tmp_path, extra=f"--output_dir {tmp_path}/outputs/demo/hub-2")
            assert (tmp_path / "outputs" / "demo" / "hub-2" / "model.safetensors").is_file()
        elif words[:2] == ["bash", "scripts/build_hub_models.sh"]:
            cheap = {"TWRVAE_HUB_ROOT": f"{tmp_path}/outputs/hub-models", "TWRVAE_TRAIN_ARGS": " ".join(TINY_TRAINING),
                     "TWRVAE_EVAL_ARGS": " ".join(TINY_EVALUATION)}  # fmt: skip
            in_shell(command, tmp_path, env=cheap)
            for name in ("yelp", "e2e", "ptb", "yahoo"):
                assert (tmp_path / "outputs" / "hub-models" / f"{name}-twr-vae" / "hub" / "README.md").is_file()
            yelp = tmp_path / "outputs" / "hub-models" / "yelp-twr-vae"
            assert (yelp / "hub" / "attribute_vectors.safetensors").is_file()  # the sentiment vector ships
            seen.add("hub models")
        elif words[:2] == ["bash", "scripts/dialogue_demo.sh"]:
            cheap = {"TWRVAE_TRAIN_ARGS": " ".join(TINY_DIALOGUE_TRAINING),
                     "TWRVAE_EVAL_ARGS": " ".join(TINY_DIALOGUE_EVALUATION)}  # fmt: skip
            in_shell(command, tmp_path, env=cheap, extra=f"{tmp_path}/outputs/dialogue-demo")
            seen.add("dialogue demo")
        elif words[:2] == ["python", "benchmarks/compare_models.py"]:  # every model of Table 2: two, tiny, here
            cheap = [*TINY_COMPARISON, "--output_dir", f"{tmp_path}/outputs/compare", "--results_dir", str(tmp_path)]
            done = subprocess.run([sys.executable, *as_written(words[1:], tmp_path), *cheap], cwd=REPO_ROOT,
                                  env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                                  timeout=600)  # fmt: skip
            assert done.returncode == 0, done.stderr[-3000:]
            assert "| SA-VAE |" in (tmp_path / "table2-e2e.md").read_text(), command
            seen.add("compare models")
        elif words[:2] == ["python", "-c"]:
            done = in_shell(command, tmp_path)
            assert done.stdout.strip(), command
            seen.add("python -c")
        else:
            pytest.fail(f"the README shows a command this test does not run: {command!r}")
    assert seen >= {"setup", "tests", "demo", "python", "accelerate", "torchrun", "evaluate", "twrvae", "publish"}, seen


def test_license_matches_pyproject():
    import tomllib

    declared = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["license"]["text"]
    assert declared == "Apache-2.0"
    assert (
        (REPO_ROOT / "LICENSE")
        .read_text()
        .lstrip()
        .startswith("Apache License\n                           Version 2.0")
    )
