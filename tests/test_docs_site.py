"""The documentation site builds with `mkdocs build --strict`: a broken link, a missing page or an API object that
the reference names but the package lacks fails it. The API reference shows each object's name and signature, and
reads the transformers docstring convention instead of printing its markup."""

import importlib.util
import os
import re
import subprocess
import sys

import pytest

from helpers import REPO_ROOT


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(folder)],
        cwd=REPO_ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return folder


def test_mkdocs_build_strict(site):
    assert "TWRVAEConfig" in (site / "reference" / "model" / "index.html").read_text()


@pytest.mark.parametrize("page", ["model", "library"])
def test_the_api_reference_names_what_it_documents_and_shows_no_raw_markup(site, page):
    html = (site / "reference" / page / "index.html").read_text()
    text = re.sub(r"<[^>]+>", "", html)
    assert "*optional*" not in text and "defaults to `" not in text
    assert not re.search(r"\[<code>[\w.]+</code>\]", html)  # transformers' [`Name`] links, brackets and all
    if page == "model":
        assert 'id="modeling_twrvae.TWRVAEModel.forward"' in html
        assert re.search(r"forward\(\s*input_ids", text)  # the signature
        assert re.search(r"hidden_size\s*\(\s*int\s*\)", text)  # a config field: its plain type


def test_the_docstring_extension_reads_transformers_parameter_entries():
    spec = importlib.util.spec_from_file_location("hook", REPO_ROOT / "docs" / "hooks" / "transformers_docstrings.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    text = (
        "Runs [`TWRVAEModel`].\n\nArgs:\n"
        "    input_ids (`torch.LongTensor` of shape `(batch, length)`):\n        The ids.\n"
        "    a, b (`int`, *optional*, defaults to 0, 1):\n        Two ids.\n"
        "    kl_weight (`float`, *optional*, defaults to 1.0):\n        Its weight.\n\n"
        "Returns:\n    x (`int`): not a parameter section.\n"
    )
    rewritten = hook.rewrite(text, signature=frozenset({"kl_weight"})).splitlines()
    assert rewritten[0] == "Runs `TWRVAEModel`."
    assert rewritten[3] == "    input_ids (torch.LongTensor): Of shape `(batch, length)`."
    assert rewritten[5] == "    a, b (int): Optional; defaults to 0, 1."
    assert rewritten[7] == "    kl_weight (float):"  # the signature shows its default
    assert rewritten[-1] == "    x (`int`): not a parameter section."
