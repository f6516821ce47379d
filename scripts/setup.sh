#!/usr/bin/env bash
# Installs twrvae and everything its training, evaluation, demo page and tests use, into the current Python.
# torch is installed first and pinned to 2.13.0 (a CPU build on the project's machines), so that the range in
# pyproject.toml is already satisfied and pip does not fetch a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet "torch==2.13.0"
python3 -m pip install --quiet -e ".[train,dev,demo]"
