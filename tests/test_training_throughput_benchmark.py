"""benchmarks/training_throughput.py --profile: where one row's training step spends its time."""

import json

import pytest

from helpers import load_benchmark


@pytest.fixture(scope="module")
def throughput():
    return load_benchmark("training_throughput")


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
