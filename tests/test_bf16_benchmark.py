"""benchmarks/bf16_training.py: the demo trained in fp32 and bf16 for each seed, the means compared."""

import json

import pytest

from helpers import DATA_DIR, load_benchmark


@pytest.fixture(scope="module")
def bf16_training():
    return load_benchmark("bf16_training")


def test_each_seed_trains_both_precisions_and_the_means_are_compared(bf16_training, tmp_path, capsys):
    argv = ["--device", "cpu", "--max_train_steps", "4", "--seeds", "3", "5", "--results_dir", str(tmp_path)]
    argv += ["--data_dir", str(DATA_DIR)]
    bf16_training.main(argv)
    if not bf16_training.cpu_supports_bf16():  # an AVX2-only CPU: nothing trained, and it says why
        assert "no oneDNN bf16 kernels" in capsys.readouterr().out and not list(tmp_path.iterdir())
        return
    result = json.loads((tmp_path / "bf16_training-cpu.json").read_text())
    assert result["seeds"] == [3, 5]
    for precision in ("no", "bf16"):
        assert [run["seed"] for run in result["runs"][precision]] == [3, 5]
        assert all(run["step"] == 4 for run in result["runs"][precision])
    fp32 = [run["eval_elbo_nll"] for run in result["runs"]["no"]]
    bf16 = [run["eval_elbo_nll"] for run in result["runs"]["bf16"]]
    assert fp32[0] != fp32[1]  # the seed reached the training
    mean_fp32, mean_bf16 = sum(fp32) / 2, sum(bf16) / 2
    assert result["relative_difference"] == pytest.approx((mean_bf16 - mean_fp32) / mean_fp32)
    assert result["fp32_relative_sd_over_seeds"] > 0
    assert "seeds 3 5" in capsys.readouterr().out
