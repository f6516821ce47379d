"""The wheel check: `bash scripts/check_wheel.sh` builds the wheel, installs it into a fresh virtual
environment and runs `twrvae train`, `twrvae evaluate` and `twrvae publish` from a folder outside the clone."""

import os
import subprocess
import sys

import pytest

from helpers import DATA_DIR, REPO_ROOT


def test_the_installed_wheel_trains_evaluates_and_publishes():
    if not (DATA_DIR / "e2e").is_dir():
        pytest.fail(
            f"{DATA_DIR / 'e2e'} is missing: the tests read the real corpora from ../shared/data or $TWRVAE_DATA_DIR."
        )
    env = {**os.environ, "PYTHON": sys.executable, "TWRVAE_DATA_DIR": str(DATA_DIR)}
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "check_wheel.sh"), str(DATA_DIR)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    assert "=== check_wheel: passed" in done.stdout
