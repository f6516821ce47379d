"""Every command in the README's bash blocks runs as written on what ../shared/data holds.

Each runs with cheap settings appended (a few updates of a tiny model, a few sentences) and its output folder moved
into a temporary folder; nothing else of the command changes. The training commands run in this process (the
`accelerate launch` and `torchrun` lines as the one process they start on a machine without GPUs; two processes
under torchrun are tested in test_training.py); the main job runs as a script.
"""

import os
import re
import shlex
import subprocess

import pytest
from accelerate.state import AcceleratorState, GradientState

from training import evaluate, train

from helpers import DATA_DIR, REPO_ROOT

TINY_TRAINING = [
    "--max_train_steps", "2", "--max_train_samples", "48", "--max_eval_samples", "8", "--logging_steps", "1",
    "--per_device_train_batch_size", "8", "--eval_steps", "2",
    "--config_overrides", "embedding_size=16,hidden_size=8,latent_size=32",  # HR-VAE: 2 layers x [h; c]
]  # fmt: skip
TINY_EVALUATION = ["--max_samples", "4", "--iw_samples", "2", "--num_prior_samples", "2",
                   "--num_interpolation_pairs", "1", "--max_new_tokens", "5", "--no_progress"]  # fmt: skip


def readme_commands() -> list[str]:
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", (REPO_ROOT / "README.md").read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                commands += [part.strip() for part in line.split("&&")]
    return commands


def as_written(words: list[str], tmp_path) -> list[str]:
    """The command's arguments with the data folder of this machine and the outputs in `tmp_path`."""
    return [word.replace("../shared/data", str(DATA_DIR)).replace("outputs/", f"{tmp_path}/outputs/") for word in words]


def test_every_readme_command_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    seen = set()
    for command in readme_commands():
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
                argv += ["--output_dir", f"{tmp_path}/outputs/{len(seen)}"]
            AcceleratorState._reset_state(True)
            GradientState._reset_state()
            summary = train.main(argv + TINY_TRAINING)
            assert summary["global_step"] == 2, command
            seen.add(words[0])
        elif words[:2] == ["python", "training/evaluate.py"]:
            results = evaluate.main(as_written(words[2:], tmp_path) + TINY_EVALUATION)
            assert results["num_sentences"] == 4
            seen.add("evaluate")
        else:
            pytest.fail(f"the README shows a command this test does not run: {command!r}")
    assert seen >= {"setup", "tests", "demo", "python", "accelerate", "torchrun", "evaluate"}, seen


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
