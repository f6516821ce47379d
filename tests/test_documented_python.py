"""Every page's Python blocks (the README's and each page of docs/) run in order, as one script, from a temporary
folder, on what ../shared/data holds."""

import re

import pytest

from helpers import DATA_DIR, REPO_ROOT, documented_pages

PAGES = [page for page in documented_pages() if "```python" in page.read_text()]


@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(REPO_ROOT)) for page in PAGES])
def test_the_python_examples_run(page, tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
    monkeypatch.chdir(tmp_path)  # the examples save to ./my-twrvae and the like
    namespace = {}
    source = "\n".join(blocks).replace("../shared/data", str(DATA_DIR))
    exec(compile(source, str(page.relative_to(REPO_ROOT)), "exec"), namespace)
    if page.name == "README.md":
        assert (tmp_path / "my-twrvae" / "model.safetensors").is_file()
        assert len(namespace["sentences"]) == 11 and namespace["ids"].shape[0] == 8


def test_every_page_is_tested():
    assert {page.name for page in PAGES} >= {"README.md", "getting-started.md", "generation.md"}
