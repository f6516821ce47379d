"""benchmarks/compare_models.py, the "Table 2, measured here" script: what it passes to each model's training, and
tables that report the settings the runs were trained with, gathered from reused runs."""

import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from helpers import load_benchmark


@pytest.fixture(scope="module")
def compare():
    return load_benchmark("compare_models")


# the settings of fake_run's runs, as compare_models' options
FAKE_SETTINGS = ["--per_device_train_batch_size", "16", "--learning_rate", "0.002", "--max_length", "40",
                 "--max_train_samples", "900", "--iw_samples", "9", "--config_overrides",
                 "embedding_size=64,hidden_size=48"]  # fmt: skip


def fake_run(folder: Path, seed: int, iw_nll: float, steps: int, svi_steps: int = 0, **changes) -> None:
    """A trained and evaluated model's folder, as train.py and evaluate.py leave it (only what the table reads), made
    with FAKE_SETTINGS unless `changes` (batch, learning_rate, max_length, max_train_samples, iw_samples) say."""
    folder.mkdir(parents=True, exist_ok=True)
    results = {"iw_nll": iw_nll, "kl_decoded": 1.0, "mutual_information": 0.5, "num_sentences": 7}
    results["iw_samples"] = changes.get("iw_samples", 9)
    (folder / "test_results.json").write_text(json.dumps(results))
    (folder / "train_seconds.txt").write_text("90.0\n")
    training = {"max_train_steps": steps, "per_device_train_batch_size": changes.get("batch", 16)}
    training.update(learning_rate=changes.get("learning_rate", 0.002), max_length=changes.get("max_length", 40))
    training.update(max_train_samples=changes.get("max_train_samples", 900), seed=seed)
    training["lr_scheduler_type"] = changes.get("lr_scheduler_type", "constant")
    (folder / "training_config.yaml").write_text(yaml.safe_dump(training))
    config = {"embedding_size": 64, "hidden_size": 48, "latent_size": 32, "svi_steps": svi_steps}
    (folder / "config.json").write_text(json.dumps(config))


def comparison_args(compare, tmp_path, **changes):
    """The comparison's arguments as its main() parses them, with small sizes."""
    values = {
        "data_dir": str(tmp_path), "output_dir": str(tmp_path), "budget": 400, "per_device_train_batch_size": 32,
        "learning_rate": 1e-3, "lr_scheduler_type": "constant", "config_overrides": "", "max_grad_norm": None,
        "max_train_samples": None, "checkpointing_steps": None, "only_existing": False,
        "max_length": 50, "sa_vae_steps": 20, "max_eval_samples": 10, "iw_samples": 3, "num_prior_samples": 2,
        "num_interpolation_pairs": 1, "results_dir": str(tmp_path / "results"),
    }  # fmt: skip
    return compare.main.__globals__["argparse"].Namespace(**{**values, **changes})


class FakeCommands:
    """Stands in for compare_models.run: records each command and its options, leaves what train.py (its folder)
    and evaluate.py (a fake_run) leave, and says the command took `seconds`."""

    def __init__(self, seconds: float = 1.0):
        self.calls, self.seconds, self.training_time_seen, self.trained = [], seconds, [], {}

    def __call__(self, command, log, **options):
        self.calls.append((command, options))

        def value(option, default=None):
            return command[command.index(option) + 1] if option in command else default

        if "training/evaluate.py" in command:
            folder = Path(value("--model_name_or_path"))
            self.training_time_seen.append((folder / "train_seconds.txt").read_text())
            fake_run(folder, 1, 1.0, iw_samples=int(value("--iw_samples")), **self.trained.get(folder, {"steps": 400}))
        else:
            folder = Path(value("--output_dir"))
            folder.mkdir(parents=True, exist_ok=True)
            self.trained[folder] = {
                "steps": int(value("--max_train_steps")), "batch": int(value("--per_device_train_batch_size")),
                "learning_rate": float(value("--learning_rate")), "max_length": int(value("--max_length")),
                "max_train_samples": value("--max_train_samples") and int(value("--max_train_samples")),
                # train.py's argparse keeps the last of a repeated option: a row's own schedule
                "lr_scheduler_type": command[len(command) - 1 - command[::-1].index("--lr_scheduler_type") + 1],
            }  # fmt: skip
        return self.seconds

    @property
    def commands(self):
        return [command for command, _ in self.calls]


def test_table_reports_the_settings_the_runs_were_trained_with(compare, tmp_path):
    for seed, value in ((1, 10.0), (2, 14.0)):
        fake_run(tmp_path / "e2e" / f"twr-vae-seed{seed}", seed, value, steps=300)
        fake_run(tmp_path / "e2e" / f"sa-vae-seed{seed}", seed, value + 1, steps=300, svi_steps=5)
    # the gathering call's own command line says 2,000 updates of batch 32: the runs say otherwise, and win
    args = comparison_args(
        compare, tmp_path, budget=2000, iw_samples=100, config_overrides="embedding_size=256", only_existing=True
    )
    rows = {
        name: {seed: compare.train_and_evaluate(args, "e2e", name, seed, tmp_path) for seed in (1, 2)}
        for name in ("TWR-VAE", "SA-VAE")
    }
    header, table = compare.corpus_table(args, "e2e", rows)
    assert ", of which the first 900 texts (10%" in header
    assert "300 updates of batch 16" in header and "2000" not in header
    assert "learning rate 0.002" in header and "embedding 64, hidden 48" in header and "cut at 40 tokens" in header
    assert "SA-VAE refining 5 steps" in header and "seeds 1, 2" in header and "7 test sentences with k = 9" in header
    twr = table["results"]["TWR-VAE"]
    assert twr["mean"]["iw_nll"] == pytest.approx(12.0)
    assert twr["std"]["iw_nll"] == pytest.approx(2.8284271, rel=1e-6)  # sample standard deviation of 10 and 14
    assert twr["seeds"]["2"]["settings"]["seed"] == 2
    assert "| TWR-VAE | 2 | 12.00 ± 2.83 |" in table["table"]
    compare.plot(tmp_path / "plot.png", {"e2e": table})
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_training_commands_share_settings_and_sa_vae_steps(compare, tmp_path, monkeypatch):
    fake = FakeCommands()
    monkeypatch.setattr(compare, "run", fake)
    args = comparison_args(compare, tmp_path, config_overrides="embedding_size=64", sa_vae_steps=5)
    for name in ("SA-VAE", "TWR-VAE", "Lagging VAE"):
        compare.train_and_evaluate(args, "ptb", name, 3, tmp_path)
    commands = fake.commands
    train = {c[c.index("--preset") + 1] + (" aggressive" if "--aggressive" in c else ""): c for c in commands[::2]}
    overrides = {preset: c[c.index("--config_overrides") + 1] for preset, c in train.items()}
    assert overrides == {
        "sa-vae": "embedding_size=64,svi_steps=5",
        "twr-vae": "embedding_size=64",
        "vae-lstm aggressive": "embedding_size=64",
    }
    for command in train.values():
        assert command[command.index("--max_train_steps") + 1] == "400"
        assert command[command.index("--max_length") + 1] == "50"
        assert command[command.index("--seed") + 1] == "3"
    lagging = train["vae-lstm aggressive"]
    assert lagging[lagging.index("--kl_anneal_steps") + 1] == "200"  # the budget's half
    assert all(c[c.index("--iw_samples") + 1] == "3" for c in commands[1::2])  # the same k for every model


def test_table_3_s_basic_vaes_are_annealed_as_the_paper_trains_them_and_differ_from_twr_vae_only_there(
    compare, tmp_path, monkeypatch
):
    fake = FakeCommands()
    monkeypatch.setattr(compare, "run", fake)
    args = comparison_args(compare, tmp_path, config_overrides="hidden_size=64")
    names = ("VAE-RNN + annealing", "TWR-VAE-RNN", "VAE-GRU + annealing", "TWR-VAE-GRU", "TWR-VAE-last-25%")
    for name in names:
        compare.train_and_evaluate(args, "ptb", name, 1, tmp_path)
    train = dict(zip(names, fake.commands[::2], strict=True))

    def option(command, name):
        return command[command.index(name) + 1] if name in command else None

    for cell in ("RNN", "GRU"):
        basic, twr = train[f"VAE-{cell} + annealing"], train[f"TWR-VAE-{cell}"]
        assert (
            option(basic, "--config_overrides")
            == option(twr, "--config_overrides")
            == (f"hidden_size=64,rnn_type={cell.lower()}")
        )
        assert (option(basic, "--preset"), option(twr, "--preset")) == ("vae-lstm", "twr-vae")
        assert option(basic, "--kl_schedule") == "sigmoid" and option(basic, "--kl_anneal_steps") == "200"
        assert option(twr, "--kl_schedule") is None  # TWR-VAE's constant weight 1
    assert option(train["TWR-VAE-last-25%"], "--config_overrides") == "hidden_size=64,kl_timestep_fraction=0.25"


def test_only_existing_gathers_what_was_run_and_trains_nothing(compare, tmp_path, monkeypatch):
    fake_run(tmp_path / "e2e" / "twr-vae-seed1", 1, 10.0, steps=300)
    fake_run(tmp_path / "e2e" / "twr-vae-seed2", 2, 12.0, steps=300)
    fake_run(tmp_path / "e2e" / "bn-vae-0.7-seed1", 1, 20.0, steps=300)
    monkeypatch.setattr(compare, "run", lambda command, log: pytest.fail(f"trained: {command}"))
    compare.main(
        ["--data_dir", str(tmp_path), "--output_dir", str(tmp_path), "--results_dir", str(tmp_path / "results"),
         "--seeds", "1", "2", "--models", "BN-VAE (0.7)", "TWR-VAE", "SA-VAE", "--only_existing"]
    )  # fmt: skip
    table = (tmp_path / "results" / "table2-e2e.md").read_text()
    assert "| BN-VAE (0.7) | 1 | 20.00 |" in table and "| TWR-VAE | 2 | 11.00 ± 1.41 |" in table
    assert "| SA-VAE |" not in table  # never run: left out, not trained, and named as missing
    assert table.rstrip().endswith("No finished run yet: SA-VAE.")
    summary = json.loads((tmp_path / "results" / "table2-e2e.json").read_text())
    assert set(summary["corpora"]["e2e"]["results"]) == {"BN-VAE (0.7)", "TWR-VAE"}


def test_a_finished_run_is_kept_beside_the_tables_and_reused_without_its_model(compare, tmp_path, monkeypatch):
    fake_run(tmp_path / "models" / "e2e" / "twr-vae-seed1", 1, 10.0, steps=300)
    fake_run(tmp_path / "models" / "e2e" / "twr-vae-seed2", 2, 12.0, steps=300)
    monkeypatch.setattr(compare, "run", lambda command, log: pytest.fail(f"trained: {command}"))
    common = ["--data_dir", str(tmp_path), "--results_dir", str(tmp_path / "results"), "--seeds", "1", "2",
              "--models", "TWR-VAE", "--budget", "300", *FAKE_SETTINGS]  # fmt: skip
    compare.main([*common, "--output_dir", str(tmp_path / "models"), "--only_existing"])
    records = sorted(path.name for path in (tmp_path / "results" / "table2-e2e-runs").iterdir())
    assert records == ["twr-vae-seed1.json", "twr-vae-seed2.json"]
    first = (tmp_path / "results" / "table2-e2e.md").read_text()
    # the models are gone (another machine, a fresh checkout): the kept rows make the same table, and nothing trains
    compare.main([*common, "--output_dir", str(tmp_path / "elsewhere")])
    assert (tmp_path / "results" / "table2-e2e.md").read_text() == first
    assert "| TWR-VAE | 2 | 11.00 ± 1.41 |" in first


def test_an_interrupted_training_resumes_from_its_checkpoint_and_counts_all_its_time(compare, tmp_path, monkeypatch):
    fake = FakeCommands(seconds=250.0)
    monkeypatch.setattr(compare, "run", fake)
    args = comparison_args(compare, tmp_path)
    stopped = tmp_path / "ptb" / "twr-vae-seed1"
    (stopped / "checkpoint-120").mkdir(parents=True)  # what a training stopped after its third checkpoint leaves
    compare.train_and_evaluate(args, "ptb", "TWR-VAE", 1, tmp_path)
    (train, options), (evaluate, _) = fake.calls
    assert train[train.index("--resume_from_checkpoint") + 1] == "latest" and "--overwrite_output_dir" not in train
    assert train[train.index("--checkpointing_steps") + 1] == "40"  # a checkpoint at every tenth of the budget
    assert options["append"] and options["clock"] == tmp_path / "ptb" / "twr-vae-seed1.train_seconds"
    assert "training/evaluate.py" in evaluate
    assert fake.training_time_seen == ["250.0\n"]

    # a slow row saved more often: the validations stay at every tenth, and the run is still the one asked for
    shutil.rmtree(stopped)
    (tmp_path / "results" / "table2-ptb-runs" / "twr-vae-seed1.json").unlink()
    fake.calls.clear()
    compare.train_and_evaluate(comparison_args(compare, tmp_path, checkpointing_steps=7), "ptb", "TWR-VAE", 1, tmp_path)
    train = fake.commands[0]
    assert train[train.index("--checkpointing_steps") + 1] == "7" and train[train.index("--eval_steps") + 1] == "40"
    fake.calls.clear()
    compare.train_and_evaluate(args, "ptb", "TWR-VAE", 1, tmp_path)
    assert fake.calls == []  # kept: how often a run saved is not one of its settings

    # a training that finished but whose evaluation was stopped is evaluated, not trained again
    (stopped / "test_results.json").unlink()
    (tmp_path / "results" / "table2-ptb-runs" / "twr-vae-seed1.json").unlink()
    fake.calls.clear()
    compare.train_and_evaluate(args, "ptb", "TWR-VAE", 1, tmp_path)
    assert len(fake.calls) == 1 and "training/evaluate.py" in fake.commands[0]

    # a folder without a checkpoint starts again
    fake.calls.clear()
    compare.train_and_evaluate(args, "ptb", "TWR-VAE", 2, tmp_path)
    (train, options), _ = fake.calls
    assert "--overwrite_output_dir" in train and "--resume_from_checkpoint" not in train and not options["append"]


def test_each_run_records_the_cpus_that_trained_it_and_the_table_names_them(compare, tmp_path, monkeypatch):
    fake = FakeCommands()
    monkeypatch.setattr(compare, "run", fake)
    args = comparison_args(compare, tmp_path)
    monkeypatch.setattr(compare, "cpu_label", lambda: "CPU A")
    stopped = tmp_path / "ptb" / "twr-vae-seed1"
    (stopped / "checkpoint-120").mkdir(parents=True)
    compare.atomic_write_json(tmp_path / "ptb" / "twr-vae-seed1.training_cpus.json", ["CPU B"])  # its first attempt
    resumed = compare.train_and_evaluate(args, "ptb", "TWR-VAE", 1, tmp_path)
    fresh = compare.train_and_evaluate(args, "ptb", "TWR-VAE", 2, tmp_path)
    assert resumed["training_cpus"] == ["CPU B", "CPU A"] and fresh["training_cpus"] == ["CPU A"]
    record = json.loads((tmp_path / "results" / "table2-ptb-runs" / "twr-vae-seed2.json").read_text())
    assert record["training_cpus"] == ["CPU A"]  # kept with the run, for a gathering elsewhere

    header, table = compare.corpus_table(args, "ptb", {"TWR-VAE": {1: resumed, 2: fresh}})
    assert "Trained on CPU A (1 run), CPU B then CPU A (1 run): compare training minutes only" in header
    assert table["results"]["TWR-VAE"]["seeds"]["1"]["training_cpus"] == ["CPU B", "CPU A"]
    header, _ = compare.corpus_table(args, "ptb", {"TWR-VAE": {2: fresh}})
    assert header.endswith(" Trained on CPU A.")
    fresh.pop("training_cpus")  # a run kept before CPUs were recorded
    header, _ = compare.corpus_table(args, "ptb", {"TWR-VAE": {2: fresh}})
    assert "Trained on" not in header


def test_machines_of_one_name_with_different_vector_units_are_told_apart(compare, tmp_path, monkeypatch):
    environment = sys.modules["environment"]
    monkeypatch.setattr(compare, "run", FakeCommands())
    monkeypatch.setattr(environment, "cpu_model", lambda: "AMD EPYC")
    args = comparison_args(compare, tmp_path)
    rows = {}
    for seed, unit in [(1, "AVX512"), (2, "AVX2")]:
        monkeypatch.setattr(environment.torch.backends.cpu, "get_cpu_capability", lambda unit=unit: unit)
        rows[seed] = compare.train_and_evaluate(args, "ptb", "TWR-VAE", seed, tmp_path)
    assert rows[1]["training_cpus"] == ["AMD EPYC with AVX512"] and rows[2]["training_cpus"] == ["AMD EPYC with AVX2"]
    header, _ = compare.corpus_table(args, "ptb", {"TWR-VAE": rows})
    assert "Trained on AMD EPYC with AVX2 (1 run), AMD EPYC with AVX512 (1 run): compare training minutes" in header


def test_run_keeps_the_time_of_earlier_attempts_and_their_log(compare, tmp_path):
    log, clock = tmp_path / "train.log", tmp_path / "train_seconds"
    log.write_text("the first attempt\n")
    clock.write_text("100.0\n")  # what the stopped attempt had spent
    seconds = compare.run([compare.sys.executable, "-c", "print('the second')"], log, clock=clock, append=True)
    assert 100.0 < seconds < 160.0
    assert log.read_text().splitlines() == ["the first attempt", "the second"]
    # a fresh start counts from zero and replaces the log
    seconds = compare.run([compare.sys.executable, "-c", "print('again')"], log, clock=clock)
    assert seconds < 60.0 and log.read_text() == "again\n"
    with pytest.raises(SystemExit, match="failed \\(3\\)"):
        compare.run([compare.sys.executable, "-c", "raise SystemExit(3)"], log)


def test_the_yelp_command_on_the_page_names_only_models_the_comparison_has(compare, tmp_path, capsys):
    import shlex

    page = (Path(compare.__file__).parents[1] / "docs" / "table2.md").read_text()
    command = next(block for block in page.split("```text\n")[1:] if "--datasets yelp-sentiment" in block)
    words = shlex.split(command.split("```")[0].replace("\\\n", " "))
    models = words[words.index("--models") + 1 :]
    assert "VAE-GRU + annealing" in models and "SA-VAE" in models and "Lagging VAE" in models
    assert set(models) <= set(compare.MODELS)
    with pytest.raises(SystemExit, match="holds no evaluated model"):  # the page's arguments parse; nothing is run
        compare.main([*words[2:], "--output_dir", str(tmp_path), "--results_dir", str(tmp_path), "--only_existing"])


def test_the_yelp_table_shows_the_paper_s_yelp15_row_beside_each_model(compare, tmp_path):
    fake_run(tmp_path / "yelp-sentiment" / "twr-vae-seed1", 1, 40.0, steps=300)
    fake_run(tmp_path / "yelp-sentiment" / "vae-lstm-seed1", 1, 36.0, steps=300)
    args = comparison_args(compare, tmp_path, iw_samples=100, only_existing=True)
    rows = {name: {1: compare.train_and_evaluate(args, "yelp-sentiment", name, 1, tmp_path)}
            for name in ("TWR-VAE", "VAE-LSTM")}  # fmt: skip
    header, table = compare.corpus_table(args, "yelp-sentiment", rows)
    lines = table["table"].splitlines()
    assert lines[2].endswith("| the paper on Yelp15 reviews: NLL, PPL, MI, KL |")
    assert lines[4].startswith("| TWR-VAE | 1 | 40.00 |") and lines[4].endswith("| 344.3, 33.5, 4.1, 3.1 |")
    assert lines[5].endswith("| - |")  # VAE-LSTM without annealing is not in the paper
    assert "whole reviews, not sentences" in header
    e2e_header, e2e = compare.corpus_table(args, "e2e", {"TWR-VAE": rows["TWR-VAE"]})
    assert "Yelp15" not in e2e["table"] and "Yelp15" not in e2e_header


def test_the_curves_keep_the_axis_on_the_models_that_fit_and_name_those_off_it(compare, tmp_path, monkeypatch):
    def curve(*values):
        return [{"step": 100 * (i + 1), "elbo_nll": v} for i, v in enumerate(values)]

    def rouge(value):
        return {f"{m}_{side}": value for m in ("rouge1", "rouge2", "rougeL") for side in ("start", "end")}

    results = {
        "TWR-VAE": {"seeds": {"1": {"validation_curve": curve(50, 45, 44)}, "2": {"validation_curve": curve(52, 46)}}},
        "TWR-VAE-sum": {"seeds": {"1": {"validation_curve": curve(250, 300, 400)}}},
        "BN-VAE (0.7)": {"seeds": {"1": {"validation_curve": curve(55, 42, 40)}}},
    }
    for seed, value in (("1", 0.2), ("2", 0.4)):
        results["TWR-VAE"]["seeds"][seed]["interpolation"] = {"alphas": [0.0, 1.0], "rouge": [rouge(value)] * 2}
    saved = {}
    monkeypatch.setattr(compare, "save_figure", lambda figure, axes, path, **options: saved.update(axis=axes[0][0]))
    compare.plot_curves(tmp_path / "curves.png", {"yelp-sentiment": {"results": results}})
    axis = saved["axis"]
    low, high = axis.get_ylim()
    assert 38 < low < 40 and 55 < high < 60  # 400 would flatten the others
    labels = axis.get_legend_handles_labels()[1]
    assert labels == ["TWR-VAE", "TWR-VAE-sum (off the scale)", "BN-VAE (0.7)"]  # one entry a model, not a seed

    compare.plot_interpolation(tmp_path / "interpolation.png", {"yelp-sentiment": {"results": results}})
    axis = saved["axis"]
    assert "TWR-VAE rouge1, range over seeds" in axis.get_legend_handles_labels()[1]
    start = next(line for line in axis.get_lines() if line.get_label() == "TWR-VAE rouge1 vs start")
    assert list(start.get_ydata()) == pytest.approx([0.3, 0.3])  # the mean of the two seeds


def test_the_convergence_column_reads_against_the_protocol_s_one_percent(compare, tmp_path):
    # validation -ELBO 50 at update 400 (four fifths of 500), then 49.8 or 48.5 at the end: 0.4% and 3.0% better
    for seed, end in ((1, 49.8), (2, 48.5)):
        folder = tmp_path / "ptb" / f"twr-vae-seed{seed}"
        fake_run(folder, seed, 40.0, steps=500)
        points = [(100, 60.0), (400, 50.0), (500, end)]
        (folder / "metrics.jsonl").write_text("".join(
            json.dumps({"step": step, "eval_elbo_nll": value, "eval_reconstruction_loss": value, "eval_kl_decoded": 1})
            + "\n" for step, value in points))  # fmt: skip
    args = comparison_args(compare, tmp_path, only_existing=True)
    rows = {"TWR-VAE": {seed: compare.train_and_evaluate(args, "ptb", "TWR-VAE", seed, tmp_path) for seed in (1, 2)}}
    _, table = compare.corpus_table(args, "ptb", rows)
    header, row = table["table"].splitlines()[2], table["table"].splitlines()[4]
    column = header.split(" | ").index("-ELBO gain, last fifth (%)")
    assert row.split(" | ")[column] == "1.7 ± 1.8"  # mean of 0.4 and 3.0, in percent
    assert table["results"]["TWR-VAE"]["seeds"]["1"]["last_fifth_improvement"] == pytest.approx(0.004)


def test_a_run_made_with_other_settings_is_refused_unless_the_call_only_gathers(compare, tmp_path, monkeypatch):
    fake_run(tmp_path / "models" / "ptb" / "twr-vae-seed1", 1, 10.0, steps=300)
    monkeypatch.setattr(compare, "run", lambda command, log, **options: pytest.fail(f"ran: {command}"))
    common = ["--data_dir", str(tmp_path), "--results_dir", str(tmp_path / "results"), "--datasets", "ptb",
              "--seeds", "1", "--models", "TWR-VAE", "--output_dir", str(tmp_path / "models"), *FAKE_SETTINGS]  # fmt: skip
    # the run in the folder had 300 updates: a call asking for 600 would otherwise report it as its own
    with pytest.raises(SystemExit, match=r"twr-vae-seed1 holds a run with max_train_steps 300 \(this command: 600\)"):
        compare.main([*common, "--budget", "600"])
    assert not (tmp_path / "results" / "table2-ptb.md").exists()
    compare.main([*common, "--budget", "600", "--only_existing"])  # gathered as it is, its own settings reported
    assert "300 updates of batch 16" in (tmp_path / "results" / "table2-ptb.md").read_text()
    # the kept record is held to the same rule once the model is gone
    other = [*common[: -len(FAKE_SETTINGS) - 2], "--output_dir", str(tmp_path / "elsewhere"), *FAKE_SETTINGS]
    with pytest.raises(SystemExit, match=r"twr-vae-seed1.json holds a run with iw_samples 9 \(this command: 50\)"):
        compare.main([*other, "--budget", "300", "--iw_samples", "50"])
    compare.main([*other, "--budget", "300"])


def test_the_schedule_is_shared_but_the_cyclical_vae_keeps_its_own_and_a_run_of_another_is_refused(
    compare, tmp_path, monkeypatch
):
    fake = FakeCommands()
    monkeypatch.setattr(compare, "run", fake)
    args = comparison_args(compare, tmp_path, lr_scheduler_type="cosine")
    rows = {
        name: {1: compare.train_and_evaluate(args, "ptb", name, 1, tmp_path)} for name in ("TWR-VAE", "Cyclical VAE")
    }
    schedules = [fake.trained[tmp_path / "ptb" / f"{compare.slug(n)}-seed1"]["lr_scheduler_type"] for n in rows]
    assert schedules == ["cosine", "cosine_with_restarts"]
    header, _ = compare.corpus_table(args, "ptb", rows)
    assert "learning rate 0.001 (cosine decay to 0 over the budget)" in header
    # the same folder asked for with a constant learning rate: the cosine run is not passed off as a constant one
    with pytest.raises(SystemExit, match=r"lr_scheduler_type cosine \(this command: constant\)"):
        compare.train_and_evaluate(comparison_args(compare, tmp_path), "ptb", "TWR-VAE", 1, tmp_path)
    compare.train_and_evaluate(comparison_args(compare, tmp_path), "ptb", "Cyclical VAE", 1, tmp_path)  # its own
