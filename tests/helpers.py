"""Shared test helpers: where the real corpora are, and tiny models of every preset."""

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from modeling_twrvae import TWRVAEConfig, TWRVAEModel

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("TWRVAE_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))

# Small sizes keep the suite fast; every other setting is the preset's own.
TINY = {"embedding_size": 16, "hidden_size": 12, "latent_size": 6, "dropout": 0.0}


def load_benchmark(name: str, folder=None):
    """benchmarks/NAME.py (or FOLDER/NAME.py) as a module of its own (with its folder importable while it loads, as
    when it is run)."""
    import importlib.util

    benchmarks = folder or REPO_ROOT / "benchmarks"
    sys.path.insert(0, str(benchmarks))
    try:
        spec = importlib.util.spec_from_file_location(f"{name}_under_test", benchmarks / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(benchmarks))
    return module


def read_lines(relative_path: str, count: int) -> list[str]:
    path = DATA_DIR / relative_path
    if not path.is_file():
        pytest.fail(f"{path} is missing: the tests read the real corpora from ../shared/data or $TWRVAE_DATA_DIR.")
    with path.open(encoding="utf-8") as handle:
        lines = [line.strip() for line in handle if line.strip()]
    return lines[:count]


def tiny_config(preset: str, vocab_size: int, **overrides) -> TWRVAEConfig:
    sizes = dict(TINY)
    if TWRVAEConfig.from_preset(preset, vocab_size=vocab_size).decoder_init == "split":
        del sizes["latent_size"]  # the preset derives it from the sizes, as HR-VAE's code does
    return TWRVAEConfig.from_preset(preset, vocab_size=vocab_size, **{**sizes, **overrides})


def tiny_model(preset: str, vocab_size: int, seed: int = 0, **overrides) -> TWRVAEModel:
    torch.manual_seed(seed)
    return TWRVAEModel(tiny_config(preset, vocab_size, **overrides))


def informative(model: TWRVAEModel) -> TWRVAEModel:
    """A random tiny model made to behave like a trained one that uses z: posteriors that differ between sentences
    (freshly initialised hidden states are ~0.005) and a decoder whose output depends strongly on z."""
    with torch.no_grad():
        model.encoder.embed_tokens.weight.mul_(30.0)
        model.encoder.mean.weight.mul_(30.0)
        model.encoder.logvar.bias.fill_(-2.0)
        if model.config.decoder_init == "linear":
            model.decoder.init_state.weight.mul_(20.0)
        model.decoder.lm_head.weight.mul_(5.0)
    return model.eval()


def run_offline(script: str, cwd) -> subprocess.CompletedProcess:
    """Run a Python `script` (e.g. from `without_the_package`) in a fresh interpreter, off the Hub and without
    PYTHONPATH, capturing its output."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_HUB_OFFLINE"] = "1"
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def without_the_package(body: str) -> str:
    """A Python script that runs `body` where this package cannot be imported: the repository is off `sys.path`, and
    a finder refuses the package, which also hides an installed (e.g. editable) copy. It checks that it worked."""
    prelude = f"""
import importlib.abc, json, sys
sys.path[:] = [p for p in sys.path if p not in ("", ".", {str(REPO_ROOT)!r})]

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "modeling_twrvae" or name.startswith("modeling_twrvae."):
            raise ImportError("blocked: " + name)

sys.meta_path.insert(0, Block())
try:
    import modeling_twrvae  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("the package is importable; the test would prove nothing")
"""
    return prelude + textwrap.dedent(body)


def folder_digest(folder):
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def run_without_package(script, tmp_path, **env_extra):
    """Run `script` in a fresh Python where modeling_twrvae cannot be imported (an installed copy is blocked too)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"), **env_extra)
    result = subprocess.run(
        [sys.executable, "-c", without_the_package(script)],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def documented_pages() -> list:
    """The README, then docs/'s pages in the order of mkdocs.yml's nav (a page's commands may use what an earlier
    page's made, as a reader following them would), then any page the nav does not list."""
    nav = re.findall(r":\s*([\w/.-]+\.md)\s*$", (REPO_ROOT / "mkdocs.yml").read_text(), re.M)
    pages = [REPO_ROOT / "docs" / name for name in nav]
    pages += sorted(set((REPO_ROOT / "docs").rglob("*.md")) - set(pages))
    return [REPO_ROOT / "README.md", *pages]
