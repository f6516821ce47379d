"""Every command in the bash blocks of the README and of docs/ runs as written on what ../shared/data holds.

Each runs with cheap settings appended (a few updates of a tiny model, a few sentences) and its output folder moved
into a temporary folder; nothing else of the command changes. The training commands run in this process (the
`accelerate launch` and `torchrun` lines as the one process they start on a machine without GPUs; two processes
under torchrun are tested in test_training.py); the main job runs as a script.
"""

import importlib.metadata
import importlib.util
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request

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
    "--num_prior_samples", "2", "--num_interpolation_pairs", "1", "--max_length", "30", "--learning_rate", "1e-3",
    "--config_overrides", "embedding_size=16,hidden_size=8,latent_size=32",
]  # fmt: skip
# (the same settings for every documented comparison: they share one folder, and a comparison refuses to reuse a run
# made with other settings than its own)
TINY_DIALOGUE_TRAINING = [
    "--max_train_steps", "2", "--max_train_samples", "24", "--max_eval_samples", "8", "--logging_steps", "1",
    "--per_device_train_batch_size", "8", "--eval_steps", "2",
    "--config_overrides", "embedding_size=8,utterance_hidden_size=8,context_hidden_size=8,decoder_hidden_size=8,"
    "latent_size=4,prior_hidden_size=8,bow_hidden_size=8",
]  # fmt: skip
TINY_DIALOGWAE_TRAINING = [
    "--max_train_steps", "2", "--max_train_samples", "48", "--max_eval_samples", "8", "--logging_steps", "1",
    "--per_device_train_batch_size", "8", "--eval_steps", "2",
    "--config_overrides", "embedding_size=8,hidden_size=8,latent_size=4",
]  # fmt: skip
TINY_SEQGAN_TRAINING = [
    "--max_train_steps", "2", "--max_train_samples", "48", "--max_eval_samples", "8", "--logging_steps", "1",
    "--per_device_train_batch_size", "8", "--eval_steps", "2", "--generator_pretrain_steps", "1",
    "--discriminator_pretrain_steps", "0", "--critic_updates", "1",
    "--config_overrides", "embedding_size=8,hidden_size=8,discriminator_hidden_size=8,max_response_length=6",
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


def run_setup(command, words, folder, number):
    """The installer is what CI ran before this suite: check that it is valid bash and that what it pins is what the
    suite runs on (running it here would reinstall the package under test)."""
    script = REPO_ROOT / words[1]
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert '"torch==2.13.0"' in script.read_text() and ".[train,dev,demo]" in script.read_text()
    assert importlib.metadata.version("torch").startswith("2.13.0")
    for extra_package in ("accelerate", "sklearn", "matplotlib", "gradio", "pytest", "xdist", "ruff"):
        assert importlib.util.find_spec(extra_package), extra_package


def run_pytest(command, words, folder, number):
    """This suite itself: the documented command line collects every test without an error."""
    done = subprocess.run([sys.executable, *words[1:], "--collect-only", "-p", "no:cacheprovider"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    assert "test_documented_command_runs" in done.stdout


def run_demo_script(command, words, folder, number):
    env = {**os.environ, "TWRVAE_DEMO_TRAIN_ARGS": " ".join(TINY_TRAINING),
           "TWRVAE_DEMO_EVAL_ARGS": " ".join(TINY_EVALUATION), "OMP_NUM_THREADS": "1"}  # fmt: skip
    done = subprocess.run([*as_written(words, folder), f"{folder}/outputs/demo"], env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Latent at work" in done.stdout and "Interpolation" in done.stdout


def run_training(command, words, folder, number):
    argv = as_written(words[words.index("training/train.py") + 1 :], folder)
    family = next((name for name in ("dialogwae", "seqgan") if name in command), "twr-cvae")
    if "--output_dir" not in argv:  # the config's own output folder, moved
        name = f"dialogue/dailydialog-{family}" if "dialogue" in command else f"run-{number}"
        argv += ["--output_dir", f"{folder}/outputs/{name}"]
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    tiny = {"dialogwae": TINY_DIALOGWAE_TRAINING, "seqgan": TINY_SEQGAN_TRAINING}.get(family, TINY_DIALOGUE_TRAINING)
    tiny = tiny if "dialogue" in command else TINY_TRAINING
    summary = train.main(argv + tiny)
    assert summary["global_step"] == 2, command


def run_evaluation(command, words, folder, number):
    if "dailydialog" in words:
        results = evaluate.main(as_written(words[2:], folder) + TINY_DIALOGUE_EVALUATION)
        assert results["num_contexts"] == 3, results.keys()
    else:
        results = evaluate.main(as_written(words[2:], folder) + TINY_EVALUATION)
        assert results["num_sentences"] == 4


def run_cli(command, words, folder, number):
    extra = " ".join(TINY_TRAINING[:-2]) + ' --config_overrides "' + TINY_TRAINING[-1] + '"'
    done = in_shell(command, folder, extra=extra if words[:2] == ["twrvae", "train"] else "")
    if words[0] == "twrvae" and words[1] in ("sample", "reconstruct", "interpolate", "score", "encode"):
        assert done.stdout.strip() or "--output" in words, command


def run_demo_page(command, words, folder, number):
    """A server: it starts on the main job's model and answers; tests/test_demo.py drives the page in Chromium."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "TWRVAE_MODEL": f"{folder}/outputs/demo", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1"}  # fmt: skip
    server = subprocess.Popen([sys.executable, *words[1:]], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
                    assert page.status == 200 and "gradio" in page.read().decode().lower()
                    return
            except OSError:
                time.sleep(1)
        pytest.fail(f"{command} did not serve the page:\n{server.communicate(timeout=30)[0][-3000:]}")
    finally:
        server.kill()
        server.wait()


def run_publish_demo(command, words, folder, number):
    in_shell(command, folder, extra=f"{folder}/outputs/demo")
    assert (folder / "outputs" / "demo" / "hub" / "README.md").is_file()


def run_publish(command, words, folder, number):
    in_shell(command, folder, extra=f"--output_dir {folder}/outputs/demo/hub-2")
    assert (folder / "outputs" / "demo" / "hub-2" / "model.safetensors").is_file()


def run_hub_models(command, words, folder, number):
    cheap = {"TWRVAE_HUB_ROOT": f"{folder}/outputs/hub-models", "TWRVAE_TRAIN_ARGS": " ".join(TINY_TRAINING),
             "TWRVAE_EVAL_ARGS": " ".join(TINY_EVALUATION), "TWRVAE_VECTOR_SENTENCES": "200"}  # fmt: skip
    in_shell(command, folder, env=cheap)
    for name in ("yelp", "e2e", "ptb", "yahoo"):
        assert (folder / "outputs" / "hub-models" / f"{name}-twr-vae" / "hub" / "README.md").is_file()
    yelp = folder / "outputs" / "hub-models" / "yelp-twr-vae"
    assert (yelp / "hub" / "attribute_vectors.safetensors").is_file()  # the sentiment vector ships


def run_dialogue_demo(command, words, folder, number):
    cheap = {"TWRVAE_TRAIN_ARGS": " ".join(TINY_DIALOGUE_TRAINING),
             "TWRVAE_EVAL_ARGS": " ".join(TINY_DIALOGUE_EVALUATION)}  # fmt: skip
    in_shell(command, folder, env=cheap, extra=f"{folder}/outputs/dialogue-demo")
    assert (folder / "outputs" / "dialogue-demo").is_dir()


def run_comparison(command, words, folder, number):
    """Every model of Table 2: two, tiny, here."""
    # one folder for all of them: the page's gathering call (--only_existing) reads what the others trained
    cheap = [*TINY_COMPARISON, "--output_dir", f"{folder}/outputs/compare", "--results_dir", f"{folder}/results"]
    done = subprocess.run([sys.executable, *as_written(words[1:], folder), *cheap], cwd=REPO_ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| SA-VAE |" in (folder / "results" / "table2-e2e.md").read_text(), command


def run_budget_check(command, words, folder, number):
    """The published budget table, made again from the committed records into `folder`: the same table."""
    output = words.index("--output") + 1
    published = REPO_ROOT / f"{words[output]}.md"
    done = subprocess.run([sys.executable, *words[1:output], str(folder / "budget-check")], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (folder / "budget-check.md").read_text() == published.read_text(), command


def run_python_snippet(command, words, folder, number):
    done = in_shell(command, folder)
    assert done.stdout.strip(), command


def runner(words: list[str]):
    """How a documented command is run here, by what it is; None for a command this file does not know."""
    if words[:2] == ["bash", "scripts/setup.sh"]:
        return run_setup
    if words[:3] == ["python", "-m", "pytest"]:
        return run_pytest
    if words[:2] == ["python", "-c"]:
        return run_python_snippet
    if "training/train.py" in words:
        return run_training
    if words[:2] == ["python", "training/evaluate.py"]:
        return run_evaluation
    if words[0] in ("printf", "echo", "twrvae"):
        return run_cli
    return {
        ("bash", "scripts/demo.sh"): run_demo_script,
        ("python", "demo/app.py"): run_demo_page,
        ("bash", "scripts/publish_demo.sh"): run_publish_demo,
        ("python", "training/publish.py"): run_publish,
        ("bash", "scripts/build_hub_models.sh"): run_hub_models,
        ("bash", "scripts/dialogue_demo.sh"): run_dialogue_demo,
        ("python", "benchmarks/compare_models.py"): run_comparison,
        ("python", "benchmarks/budget_check.py"): run_budget_check,
    }.get(tuple(words[:2]))


COMMANDS = readme_commands()


# The commands build on each other, so under pytest-xdist (`--dist loadgroup`) they all run in one worker, in order.
pytestmark = pytest.mark.xdist_group("documented-commands")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """One folder for all the commands: they run in reading order, as a reader would, and a later command (an
    evaluation) uses what an earlier one (its training) made."""
    return tmp_path_factory.mktemp("documented")


@pytest.mark.parametrize("number, command", enumerate(COMMANDS), ids=[f"{n:02d}" for n in range(len(COMMANDS))])
def test_documented_command_runs(number, command, folder, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    words = shlex.split(command)
    run = runner(words)
    if run is None:
        pytest.fail(f"the pages show a command this file does not know how to run: {command!r}")
    run(command, words, folder, number)


def test_the_pages_show_each_way_to_use_the_package():
    shown = {runner(shlex.split(command)) for command in COMMANDS}
    expected = {run_setup, run_pytest, run_demo_script, run_training, run_evaluation, run_cli, run_publish_demo,
                run_publish, run_comparison}  # fmt: skip
    assert expected <= shown, sorted(run.__name__ for run in expected - shown)
    launchers = {shlex.split(command)[0] for command in COMMANDS if "training/train.py" in command}
    assert launchers >= {"python", "accelerate", "torchrun"}, launchers


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
