"""The documentation site builds with `mkdocs build --strict`: a broken link, a missing page or an API object that
the reference names but the package lacks fails it."""

import os
import subprocess
import sys

from helpers import REPO_ROOT


def test_mkdocs_build_strict(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO_ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "reference" / "model" / "index.html").is_file()
    assert "TWRVAEConfig" in (tmp_path / "site" / "reference" / "model" / "index.html").read_text()
