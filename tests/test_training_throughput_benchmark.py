"""benchmarks/training_throughput.py --profile: where one row's training step spends its time."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def throughput():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(
            "training_throughput_under_test", BENCHMARKS / "training_throughput.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_profile_of_a_row_lists_its_operators_by_time(throughput, tmp_path, capsys):
    throughput.main(["--device", "cpu", "--presets", "twr-vae", "--profile", "package", "--results_dir", str(tmp_path)])
    result = json.loads((tmp_path / "training_throughput-profile-cpu.json").read_text())
    assert result["variant"] == "package" and result["steps"] == 5 and result["git_commit"]
    times = [row["ms_per_step"] for row in result["operators"]]
    assert times == sorted(times, reverse=True) and sum(times) == pytest.approx(result["self_ms_per_step"])
    names = {row["operator"] for row in result["operators"]}
    assert "_LinearNLLBackward" in names and "aten::_fused_adam_" in names  # train.py's step: fused loss, fused Adam
    assert "ms of self time a step" in capsys.readouterr().out


def test_profile_of_an_unknown_row_names_the_rows(throughput, tmp_path):
    with pytest.raises(SystemExit, match="no row 'pakage' for twr-vae; the rows are: package, "):
        throughput.main(
            ["--device", "cpu", "--presets", "twr-vae", "--profile", "pakage", "--results_dir", str(tmp_path)]
        )
