"""benchmarks/compare_dialogue_models.py, Table 5 measured here: what it passes to each model's training, the same
number of training batches for every model, and runs kept beside the table and reused."""

import json
from pathlib import Path

import pytest

from helpers import load_benchmark


@pytest.fixture(scope="module")
def compare():
    return load_benchmark("compare_dialogue_models")


def test_every_model_reads_the_same_batches_and_kept_runs_are_reused(compare, tmp_path, monkeypatch):
    commands = []

    def fake_run(command, log):
        commands.append(command)
        folder = Path(command[command.index("--output_dir" if "training/train.py" in command else
                                            "--model_name_or_path") + 1])  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
        if "training/evaluate.py" in command:
            seed = int(command[command.index("--seed") + 1])
            results = {"num_contexts": 3, "bleu_f1_papers": 0.1 * seed, "inter_distinct_2": 0.5}
            Path(command[command.index("--output_file") + 1]).write_text(json.dumps(results))
        else:
            (folder / "config.json").write_text(json.dumps({"model_type": "x"}))
            logged = [{"step": s, "loss": 10.0 - s, "critic_loss": 0.5} for s in range(1, 11)]
            logged.insert(5, {"step": 5, "eval_reconstruction_loss": 3.0})
            (folder / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in logged) + "\n")
        return 60.0

    monkeypatch.setattr(compare, "run", fake_run)
    common = ["--data_dir", "DATA", "--output_dir", str(tmp_path / "models"), "--results_dir", str(tmp_path / "out"),
              "--batches", "100", "--seeds", "1", "2"]  # fmt: skip
    compare.main([*common, "--datasets", "dailydialog", "switchboard"])
    train = [c for c in commands if "training/train.py" in c]
    steps = {(c[c.index("--dataset") + 1], c[c.index("--config") + 1]): c[c.index("--max_train_steps") + 1]
             for c in train}  # fmt: skip
    assert steps[("dailydialog", "dialogue/dailydialog-twr-cvae")] == "100"
    assert steps[("dailydialog", "dialogue/dailydialog-dialogwae")] == "20"  # 5 batches an update
    assert steps[("dailydialog", "dialogue/dailydialog-ivae")] == "100"
    assert steps[("dailydialog", "dialogue/dailydialog-seqgan")] == "16"  # 6 batches a round
    seqgan = next(c for c in train if "dialogue/dailydialog-seqgan" in c)
    assert seqgan[seqgan.index("--generator_pretrain_steps") + 1] == "8"
    assert seqgan[seqgan.index("--discriminator_pretrain_steps") + 1] == "4"
    switchboard_wae = next(c for c in train if "switchboard" in c and "dialogue/dailydialog-dialogwae" in c)
    assert switchboard_wae[switchboard_wae.index("--config_overrides") + 1] == "num_prior_components=3"
    assert len(train) == 2 * 5 * 2
    table = (tmp_path / "out" / "table5.md").read_text()
    assert "| TWR-CVAE | 2 | - | - | 0.150 ± 0.071 |" in table and "switchboard" in table
    assert len(list((tmp_path / "out" / "table5-runs").iterdir())) == 20
    kept = json.loads((tmp_path / "out" / "table5-runs" / "dailydialog-seqgan-seed1.json").read_text())
    assert kept["training_log_last_fifth"] == {"loss": 0.5, "critic_loss": 0.5}  # updates 9 and 10

    # the models are gone: the kept rows make the same table, and nothing is trained
    monkeypatch.setattr(compare, "run", lambda command, log: pytest.fail(f"trained: {command}"))
    common[common.index("--output_dir") + 1] = str(tmp_path / "elsewhere")
    compare.main([*common, "--datasets", "dailydialog", "switchboard"])
    assert (tmp_path / "out" / "table5.md").read_text() == table


@pytest.mark.parametrize("model", ["twr-cvae", "cvae", "dialogwae", "ivae", "seqgan"])
def test_each_shipped_switchboard_config_trains_what_the_comparison_trains_on_switchboard(compare, model):
    """The comparison trains Switchboard with each DailyDialog config and `--dataset switchboard` (and DialogWAE's
    Switchboard mixture): the shipped Switchboard config is that run, field by field."""
    import yaml

    folder = Path(compare.REPO_ROOT) / "modeling_twrvae" / "trainer" / "configs" / "dialogue"
    daily = yaml.safe_load((folder / f"dailydialog-{model}.yaml").read_text())
    switchboard = yaml.safe_load((folder / f"switchboard-{model}.yaml").read_text())
    assert switchboard.pop("dataset") == "switchboard" and daily.pop("dataset") == "dailydialog"
    assert switchboard.pop("output_dir").endswith(f"switchboard-{model}") and daily.pop("output_dir")
    name = next(name for name, spec in compare.MODELS.items() if spec[0] == f"dialogue/dailydialog-{model}")
    extra = compare.MODELS[name][2]
    if extra:  # DialogWAE-GMP: 3 components on Switchboard (WAE:configs.py:37)
        key, value = extra[1].split("=")
        daily["config_overrides"][key] = int(value)
    assert switchboard == daily


def test_the_budget_check_gives_dialogwae_as_many_rounds_as_the_others_updates(compare, tmp_path, monkeypatch):
    commands = []

    def fake_run(command, log):
        commands.append(command)
        raise SystemExit("stop after the first command")

    monkeypatch.setattr(compare, "run", fake_run)
    with pytest.raises(SystemExit):
        compare.main(["--output_dir", str(tmp_path), "--results_dir", str(tmp_path / "out"), "--batches", "100",
                      "--datasets", "dailydialog", "--seeds", "1", "--models", "DialogWAE-GMP, equal updates"])  # fmt: skip
    command = commands[0]
    assert command[command.index("--max_train_steps") + 1] == "100"
    assert command[command.index("--output_dir") + 1].endswith("dialogwae-gmp-equal-updates-seed1")
    assert "DialogWAE-GMP, equal updates" not in compare.TABLE_ROWS  # not run unless asked
