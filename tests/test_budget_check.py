"""benchmarks/budget_check.py: one model and seed at several budgets, read from compare_models' run records."""

import json

import pytest

from helpers import load_benchmark


@pytest.fixture(scope="module")
def budget_check():
    return load_benchmark("budget_check")


def record(path, updates, schedule, curve, iw_nll):
    settings = {"seed": 1, "max_train_steps": updates, "lr_scheduler_type": schedule}
    points = [{"step": step, "elbo_nll": value} for step, value in curve]
    row = {"settings": settings, "iw_nll": iw_nll, "elbo_nll": iw_nll + 2, "kl_decoded": 8.0,
           "mutual_information": 5.0, "train_minutes": 30.0, "validation_curve": points}  # fmt: skip
    path.write_text(json.dumps(row))
    return path


def test_the_table_orders_the_budgets_and_reads_the_convergence_test(budget_check, tmp_path):
    long = record(tmp_path / "bn-vae-0.7-seed1-200.json", 200, "constant", [(40, 60.0), (160, 50.0), (200, 49.8)], 34.0)
    short = record(tmp_path / "bn-vae-0.7-seed1.json", 100, "constant", [(20, 70.0), (80, 50.0), (100, 48.5)], 36.0)
    budget_check.main([str(long), str(short), "--output", str(tmp_path / "out" / "check"), "--title", "BN-VAE"])
    lines = (tmp_path / "out" / "check.md").read_text().splitlines()
    assert lines[2].startswith("| 100 | constant | 36.00 |") and lines[2].split(" | ")[6] == "3.0"  # 50 -> 48.5
    assert lines[3].startswith("| 200 | constant | 34.00 |") and lines[3].split(" | ")[6] == "0.4"  # 50 -> 49.8
    saved = json.loads((tmp_path / "out" / "check.json").read_text())
    assert saved["title"] == "BN-VAE, seed 1" and [run["updates"] for run in saved["runs"]] == [100, 200]
    assert (tmp_path / "out" / "check.png").read_bytes()[:4] == b"\x89PNG"


def test_records_of_two_models_or_a_missing_one_are_refused(budget_check, tmp_path):
    one = record(tmp_path / "bn-vae-0.7-seed1.json", 100, "constant", [(20, 70.0), (100, 48.5)], 36.0)
    other = record(tmp_path / "twr-vae-seed1.json", 100, "constant", [(20, 70.0), (100, 48.5)], 40.0)
    with pytest.raises(SystemExit, match="different models or seeds"):
        budget_check.main([str(one), str(other), "--output", str(tmp_path / "check")])
    with pytest.raises(SystemExit, match="no run record at .*absent.json"):
        budget_check.main([str(one), str(tmp_path / "absent.json"), "--output", str(tmp_path / "check")])
