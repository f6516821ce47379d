"""TWR-VAE's Table 2, measured here: every model of the table trained and measured with one protocol.

    python benchmarks/compare_models.py --data_dir ../shared/data [--datasets e2e ptb yahoo] [--seeds 1 2 3]
        [--budget 2000]

Trains Table 2's rows (VAE-LSTM with KL annealing, SA-VAE, the cyclical VAE, the lagging-encoder VAE, BN-VAE with
gamma 0.7, TWR-VAE-sum, TWR-VAE-mean, TWR-VAE) and HR-VAE with the same data, sizes, optimiser and budget (updates)
for each seed, evaluates each with training/evaluate.py on held-out text, and writes per corpus a table (Markdown and
JSON: every seed, and the mean and standard deviation over seeds) of IW-NLL (the same k for all), -ELBO, the papers'
NLL and PPL (the TWR-VAE reference code's number, not a bound), the KL of the decoded latent, mutual information,
active units, reconstruction BLEU against its own and against another input, and the training time, in --output_dir
and --results_dir, and a plot of IW-NLL against MI (one panel per corpus, every model and seed).

The data of each corpus, as ../shared/data has it: E2E trains on the development split (10% held out for model
selection) and is tested on the test split; PTB trains on the validation split (10% held out) and is tested on the
test split; Yahoo trains on the validation split but its last 1,000 documents (10% of the rest held out), which are
the test set. A model already trained and evaluated in --output_dir is reused, and so is a run whose row is kept in
--results_dir (table2-<corpus>-runs/, one JSON per model and seed), so an interrupted comparison continues where it
stopped, on this machine or another. Each training saves a checkpoint at every tenth of the budget: a training that
was stopped resumes from its last one (and ends as it would have without the stop), and its reported time is the
wall time of all its attempts.

What each baseline adds to the shared settings is in MODELS, with its source: the annealing its authors' code uses
(the budget's half for the linear and sigmoid ramps), the option of the package that is the method.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from environment import cpu_label, describe

from modeling_twrvae.file_utils import atomic_write_json, atomic_write_text

REPO_ROOT = Path(__file__).resolve().parents[1]
RESTARTS = "cosine_with_restarts"
SCHEDULES = {"constant": "constant", "cosine": "cosine decay to 0 over the budget", "linear": "linear decay to 0"}
HALF = "{half}"  # replaced by half the budget: the length of the linear and sigmoid KL ramps
ANNEALING = ["--kl_schedule", "sigmoid", "--kl_anneal_steps", HALF]  # Bowman et al.'s sigmoid, over half the budget

# name -> (preset, extra training arguments); everything else is shared.
MODELS = {
    # Bowman et al., 2016 (the TWR-VAE authors' vae-lstm-annealing configs): sigmoid annealing
    "VAE-LSTM + annealing": ("vae-lstm", ANNEALING),
    # Kim et al., 2018: 20 refinement steps (the preset; --sa_vae_steps); KL warm-up from 0.1 (SA:train_text.py:104-107)
    "SA-VAE": ("sa-vae", ["--kl_schedule", "linear", "--kl_start_weight", "0.1", "--kl_anneal_steps", HALF]),
    # Fu et al., 2019: 4 cycles from 0.1, ramp 0.45, cosine learning rate restarted with each cycle (the cyclical-vae
    # configs; CYC:language_model/train_text_cyc_ptb.py:54-55,167-178)
    "Cyclical VAE": (
        "vae-lstm",
        [
            "--kl_schedule",
            "cyclical",
            "--kl_cycles",
            "4",
            "--kl_cycle_ratio",
            "0.45",
            "--kl_start_weight",
            "0.1",
            "--lr_scheduler_type",
            RESTARTS,
            "--lr_scheduler_cycles",
            "4",
        ],
    ),  # fmt: skip
    # He et al., 2019: aggressive training; KL warm-up from 0.1 (LAG:README.md:53,66-67)
    "Lagging VAE": (
        "vae-lstm",
        ["--aggressive", "true", "--kl_schedule", "linear", "--kl_start_weight", "0.1", "--kl_anneal_steps", HALF],
    ),
    # Zhu et al., 2020: gamma 0.7 (the preset); KL warm-up from 0 (BN:README.md:38-48)
    "BN-VAE (0.7)": ("bn-vae", ["--kl_schedule", "linear", "--kl_anneal_steps", HALF]),
    "TWR-VAE-sum": ("twr-vae-sum", []),
    "TWR-VAE-mean": ("twr-vae-mean", []),
    "TWR-VAE": ("twr-vae", []),
    "HR-VAE": ("hr-vae", []),
    # not in Table 2: the collapsed model the others are measured against
    "VAE-LSTM": ("vae-lstm", []),
}
# TWR-VAE's Table 3: the basic VAE and TWR-VAE with a vanilla RNN and with a GRU (the package's `rnn_type` sets the
# cell of the encoder and the decoder alike), and TWR-VAE regularising only the last 25, 50 or 75% of the timesteps
# (`kl_timestep_fraction`). The paper's basic VAEs are trained "with KL annealing" (its section on the ablations),
# here the annealing of VAE-LSTM + annealing. name -> (preset, training arguments, config overrides)
TABLE_3_MODELS = {
    "VAE-RNN + annealing": ("vae-lstm", ANNEALING, "rnn_type=rnn"),
    "TWR-VAE-RNN": ("twr-vae", [], "rnn_type=rnn"),
    "VAE-GRU + annealing": ("vae-lstm", ANNEALING, "rnn_type=gru"),
    "TWR-VAE-GRU": ("twr-vae", [], "rnn_type=gru"),
    "TWR-VAE-last-25%": ("twr-vae", [], "kl_timestep_fraction=0.25"),
    "TWR-VAE-last-50%": ("twr-vae", [], "kl_timestep_fraction=0.5"),
    "TWR-VAE-last-75%": ("twr-vae", [], "kl_timestep_fraction=0.75"),
}
MODELS.update({name: (preset, extra) for name, (preset, extra, _) in TABLE_3_MODELS.items()})
MODEL_OVERRIDES = {name: overrides for name, (_, _, overrides) in TABLE_3_MODELS.items()}
TABLE_2 = [name for name in MODELS if name != "VAE-LSTM" and name not in TABLE_3_MODELS]
DATASETS = ["e2e", "ptb", "yahoo", "yelp-sentiment"]
COLUMNS = [
    ("iw_nll", "IW-NLL"),
    ("iw_ppl", "IW-PPL"),
    ("elbo_nll", "-ELBO"),
    ("paper_nll", "paper NLL (not a bound)"),
    ("paper_ppl", "paper PPL (not a bound)"),
    ("kl_decoded", "KL"),
    ("mutual_information", "MI"),
    ("active_units", "AU"),
    ("reconstruction_bleu", "rec. BLEU"),
    ("reconstruction_bleu_other_input", "rec. BLEU vs another input"),
    ("reconstruction_distinct", "rec. distinct"),
    ("transfer_accuracy", "transfer acc. (strength 1.5)"),
    ("transfer_bleu", "transfer BLEU (strength 1.5)"),
    ("last_fifth_improvement", "-ELBO gain, last fifth (%)"),
    ("train_minutes", "training (min)"),
]
# shares shown in percent with one decimal: the convergence test's threshold (1%) is not readable from 0.01
PERCENT = {"last_fifth_improvement"}
# The TWR-VAE paper's Yelp15 column (NLL, PPL, MI, KL) of its Table 2 and Table 3, shown beside the Yelp sentences'
# rows for orientation: Yelp15 is whole reviews (NLL per review), and the TWR-VAE rows' NLL is the reference code's
# number, not a bound.
PAPER_YELP15 = {
    "VAE-LSTM + annealing": "357.9, 40.6, 0.0, 0.0",
    "SA-VAE": "355.9, 39.7, 2.8, 1.7",
    "Cyclical VAE": "359.5, 41.3, 1.0, 2.0",
    "Lagging VAE": "355.9, 39.7, 2.4, 3.8",
    "BN-VAE (0.7)": "355.9, 39.7, 7.4, 9.1",
    "TWR-VAE-sum": "378.3, 47.4, 3.8, 3.9",
    "TWR-VAE-mean": "361.7, 40.0, 3.9, 3.5",
    "TWR-VAE": "344.3, 33.5, 4.1, 3.1",
    "VAE-RNN + annealing": "399.2, 58.7, 0.0, 0.0",
    "TWR-VAE-RNN": "395.4, 56.4, 3.9, 0.5",
    "VAE-GRU + annealing": "389.6, 53.2, 0.6, 0.6",
    "TWR-VAE-GRU": "360.9, 39.7, 4.2, 3.3",
    "TWR-VAE-last-25%": "360.4, 39.5, 4.1, 8.3",
    "TWR-VAE-last-50%": "356.2, 37.9, 4.1, 5.1",
    "TWR-VAE-last-75%": "352.6, 36.5, 4.1, 3.7",
}
PAPER_COLUMN = "the paper on Yelp15 reviews: NLL, PPL, MI, KL"
TRANSFER_STRENGTH = 1.5  # the one strength of the Yelp comparison's transfer columns (the twrvae-yelp operating point)
YAHOO_TEST_DOCUMENTS = 1000


def slug(name: str) -> str:
    return name.lower().replace(" + ", "-").replace(" ", "-").replace("(", "").replace(")", "")


def run(command: list[str], log: Path, clock: Path | None = None, append: bool = False) -> float:
    """Runs `command` with its output in `log`; returns the seconds it took. With `clock`, the seconds spent so far
    (those of earlier, interrupted attempts included) are kept there every half minute, so a run stopped and
    resumed still reports the time it cost."""
    earlier = float(clock.read_text()) if append and clock is not None and clock.is_file() else 0.0
    start = time.time()
    with log.open("a" if append else "w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        while True:
            try:
                returncode = process.wait(timeout=30)
                break
            except subprocess.TimeoutExpired:
                if clock is not None:
                    atomic_write_text(clock, f"{earlier + time.time() - start:.1f}\n")
    if returncode:
        raise SystemExit(f"failed ({returncode}): {' '.join(command)}; see {log}")
    return earlier + time.time() - start


def corpus_data(dataset: str, data_dir: str, folder: Path) -> tuple[list[str], list[str]]:
    """(train.py's data arguments, evaluate.py's) for `dataset`; Yahoo's split files are written into `folder`."""
    if dataset == "yahoo":
        lines = (Path(data_dir) / "yahoo" / "yahoo.valid.txt").read_text(encoding="utf-8").splitlines()
        train, test = folder / "yahoo-train.txt", folder / "yahoo-test.txt"
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(train, "\n".join(lines[:-YAHOO_TEST_DOCUMENTS]) + "\n")
        atomic_write_text(test, "\n".join(lines[-YAHOO_TEST_DOCUMENTS:]) + "\n")
        return ["--train_file", str(train)], ["--validation_file", str(test)]
    common = ["--dataset", dataset, "--data_dir", data_dir]
    if dataset == "yelp-sentiment":  # the corpus's own splits: train, validation (model selection), test
        return [*common, "--train_split", "train", "--validation_split", "validation"], [*common, "--split", "test"]
    return [*common, "--train_split", "validation", "--validation_split_percentage", "10"], [*common, "--split", "test"]


def corpus_description(dataset: str) -> str:
    """A sentence saying what `corpus_data` trains and tests on."""
    if dataset == "yahoo":
        return f"trained on yahoo.valid.txt without its last {YAHOO_TEST_DOCUMENTS} documents (the test set)"
    if dataset == "yelp-sentiment":
        return "trained on the training split, selected on the validation split, tested on the test split"
    return f"trained on the {'development' if dataset == 'e2e' else 'validation'} split, tested on the test split"


def train_and_evaluate(args, dataset: str, name: str, seed: int, output: Path) -> dict | None:
    """The test results of `name` trained with `seed` on `dataset`, trained and evaluated unless `output` has them
    (`None` if it has not and `--only_existing` says to train nothing)."""
    preset, extra = MODELS[name]
    extra = [value.replace(HALF, str(max(1, args.budget // 2))) for value in extra]
    overrides = ",".join(filter(None, [args.config_overrides, MODEL_OVERRIDES.get(name)]))
    if preset == "sa-vae" and args.sa_vae_steps != 20:
        overrides = ",".join(filter(None, [overrides, f"svi_steps={args.sa_vae_steps}"]))
    folder = output / dataset / f"{slug(name)}-seed{seed}"
    results_file = folder / "test_results.json"
    timing_file = folder / "train_seconds.txt"
    cpus_file = output / dataset / f"{slug(name)}-seed{seed}.training_cpus.json"
    record = run_record(args, dataset, name, seed)
    gathering = args.only_existing
    if not results_file.is_file() and record.is_file():
        kept = json.loads(record.read_text())
        if not gathering:
            refuse_other_settings(record, differences(args, overrides, extra, kept["settings"], kept.get("iw_samples")))
        return kept
    if not results_file.is_file() and gathering:
        return None
    if timing_file.is_file() and not gathering:
        # a finished training (evaluated or not) is reused only for the command that would have trained it
        evaluated = json.loads(results_file.read_text()).get("iw_samples") if results_file.is_file() else None
        refuse_other_settings(folder, differences(args, overrides, extra, run_settings(folder), evaluated))
    if not results_file.is_file():
        (output / dataset).mkdir(parents=True, exist_ok=True)
        train_data, test_data = corpus_data(dataset, args.data_dir, output / dataset)
    if not results_file.is_file() and not timing_file.is_file():
        # an interrupted training continues from its last checkpoint (train.py's resume ends as the uninterrupted
        # run would); a folder without one starts again
        resume = folder.is_dir() and any(folder.glob("checkpoint-*"))
        # which CPUs trained it, for the table to say where its minutes were measured
        cpus = json.loads(cpus_file.read_text()) if resume and cpus_file.is_file() else []
        here = cpu_label()
        atomic_write_json(cpus_file, cpus if here in cpus else [*cpus, here])
        interval = str(max(1, args.budget // 10))
        saving = str(args.checkpointing_steps or interval)
        seconds = run(
            [
                sys.executable, "training/train.py", *train_data,
                "--preset", preset, "--config_overrides", overrides, "--max_length", str(args.max_length),
                "--per_device_train_batch_size", str(args.per_device_train_batch_size),
                "--learning_rate", str(args.learning_rate), "--lr_scheduler_type", args.lr_scheduler_type,
                "--max_train_steps", str(args.budget),
                "--eval_steps", interval, "--checkpointing_steps", saving, "--seed", str(seed),
                *(["--max_grad_norm", str(args.max_grad_norm)] if args.max_grad_norm else []),
                *(["--max_train_samples", str(args.max_train_samples)] if args.max_train_samples else []),
                "--output_dir", str(folder),
                *(["--resume_from_checkpoint", "latest"] if resume else ["--overwrite_output_dir"]), *extra,
            ],
            output / dataset / f"{slug(name)}-seed{seed}.train.log",
            clock=output / dataset / f"{slug(name)}-seed{seed}.train_seconds",
            append=resume,
        )  # fmt: skip
        atomic_write_text(timing_file, f"{seconds:.1f}\n")
    if not results_file.is_file():
        run(
            [
                sys.executable, "training/evaluate.py", "--model_name_or_path", str(folder), *test_data,
                "--max_samples", str(args.max_eval_samples), "--iw_samples", str(args.iw_samples),
                "--num_prior_samples", str(args.num_prior_samples),
                "--num_interpolation_pairs", str(args.num_interpolation_pairs),
                "--seed", str(seed), "--output_file", str(results_file), "--no_progress",
            ],
            output / dataset / f"{slug(name)}-seed{seed}.eval.log",
        )  # fmt: skip
    row = json.loads(results_file.read_text())
    row["settings"] = run_settings(folder)
    row["train_minutes"] = float(timing_file.read_text()) / 60 if timing_file.is_file() else None
    row["training_cpus"] = json.loads(cpus_file.read_text()) if cpus_file.is_file() else None
    row["validation_curve"] = validation_curve(folder)
    row["last_fifth_improvement"] = last_fifth_improvement(row["validation_curve"])
    transfer = transfer_at(row.get("sentiment"), TRANSFER_STRENGTH)
    row["transfer_accuracy"], row["transfer_bleu"] = transfer if transfer else (None, None)
    record.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(record, row)
    return row


def differences(args, overrides: str, extra: list[str], settings: dict, iw_samples: int | None) -> list[str]:
    """How a finished run's settings differ from those this command trains and evaluates with (empty: none do)."""
    own = extra.index("--lr_scheduler_type") + 1 if "--lr_scheduler_type" in extra else None
    wanted = {
        "max_train_steps": args.budget,
        "per_device_train_batch_size": args.per_device_train_batch_size,
        "learning_rate": args.learning_rate,
        "lr_scheduler_type": extra[own] if own else args.lr_scheduler_type,
        "max_length": args.max_length,
        "max_train_samples": args.max_train_samples,
    }
    for item in filter(None, overrides.split(",")):
        key, _, value = item.partition("=")
        if key.strip() in settings:
            wanted[key.strip()] = value.strip()
    if settings.get("lr_scheduler_type") is None:  # kept before the schedule was recorded
        del wanted["lr_scheduler_type"]

    def same(kept, asked) -> bool:  # 0.001 from YAML and 1e-3 from the command line are one learning rate
        return str(kept) == str(asked) or (isinstance(asked, float) and kept is not None and float(kept) == asked)

    found = [f"{key} {settings.get(key)} (this command: {value})" for key, value in wanted.items()
             if not same(settings.get(key), value)]  # fmt: skip
    if iw_samples is not None and iw_samples != args.iw_samples:
        found.append(f"iw_samples {iw_samples} (this command: {args.iw_samples})")
    return found


def refuse_other_settings(path: Path, found: list[str]) -> None:
    """Stops before a run made with other settings stands in a table for the run this command asked for."""
    if found:
        raise SystemExit(
            f"{path} holds a run with {', '.join(found)}: give another --output_dir and --results_dir for these "
            "settings, or --only_existing to gather the runs as they are"
        )


def run_record(args, dataset: str, name: str, seed: int) -> Path:
    """Where a finished run's row is kept beside the tables: the comparison reuses it when the trained model is gone
    (a fresh checkout, another machine), so the results of a long comparison survive the models they came from."""
    return Path(args.results_dir) / f"table2-{dataset}-runs" / f"{slug(name)}-seed{seed}.json"


def validation_curve(folder: Path) -> list[dict]:
    """The run's validations (update, -ELBO, reconstruction, KL), from its metrics.jsonl."""
    log = folder / "metrics.jsonl"
    if not log.is_file():
        return []
    curve = []
    for line in log.read_text().splitlines():
        record = json.loads(line)
        if "eval_elbo_nll" in record:
            curve.append({"step": record["step"], "elbo_nll": record["eval_elbo_nll"],
                          "reconstruction_loss": record["eval_reconstruction_loss"],
                          "kl_decoded": record["eval_kl_decoded"]})  # fmt: skip
    return curve


def last_fifth_improvement(curve: list[dict]) -> float | None:
    """How much validation -ELBO improved over the run's last fifth, as a share of its value there (the protocol's
    convergence test: under 1%); negative when it got worse."""
    if len(curve) < 2:
        return None
    end = curve[-1]["step"]
    start = min(curve, key=lambda point: abs(point["step"] - 0.8 * end))
    return (start["elbo_nll"] - curve[-1]["elbo_nll"]) / start["elbo_nll"]


def transfer_at(sentiment: dict | None, strength: float) -> tuple[float, float] | None:
    """(accuracy, content BLEU) of evaluate.py's sentiment transfer at `strength`, where it was measured."""
    for row in (sentiment or {}).get("transfer", {}).get("rows", []):
        if row["strength"] == strength:
            return row["accuracy"], row["content_bleu"]
    return None


def run_settings(folder: Path) -> dict:
    """What a trained model was trained with, read from its own folder (so a table made from reused runs reports the
    runs' settings, not the command line of the call that gathered them)."""
    import yaml

    training = yaml.safe_load((folder / "training_config.yaml").read_text())
    config = json.loads((folder / "config.json").read_text())
    keys = (
        "max_train_steps",
        "per_device_train_batch_size",
        "learning_rate",
        "lr_scheduler_type",
        "max_length",
        "max_train_samples",
        "seed",
    )
    settings = {key: training.get(key) for key in keys}
    settings.update({key: config.get(key) for key in ("embedding_size", "hidden_size", "latent_size", "svi_steps")})
    return settings


def mean_std(values: list) -> tuple[float | None, float | None]:
    numbers = [float(v) for v in values if v is not None]
    if not numbers:
        return None, None
    mean = sum(numbers) / len(numbers)
    if len(numbers) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in numbers) / (len(numbers) - 1))


def _format(value, std=None, percent: bool = False) -> str:
    if value is None:
        return "-"
    if percent:
        return f"{100 * value:.1f}" + ("" if std is None else f" ± {100 * std:.1f}")
    text = str(value) if isinstance(value, int) else f"{value:.2f}"
    return text if std is None else f"{text} ± {std:.2f}"


def training_machines(rows: dict[str, dict[int, dict]]) -> str:
    """Which CPUs trained the table's runs, and how many runs each: a training time compares only with others
    measured on the same CPU."""
    counts = Counter(
        " then ".join(row.get("training_cpus") or ["no recorded CPU"])
        for seeds in rows.values()
        for row in seeds.values()
    )
    if len(counts) < 2:
        return f" Trained on {next(iter(counts))}." if counts and "no recorded CPU" not in counts else ""
    runs = [f"{cpu} ({count} run{'s' if count > 1 else ''})" for cpu, count in sorted(counts.items())]
    return f" Trained on {', '.join(runs)}: compare training minutes only between runs on one CPU."


def corpus_table(args, dataset: str, rows: dict[str, dict[int, dict]]) -> tuple[str, dict]:
    first = next(iter(next(iter(rows.values())).values()))
    data = corpus_description(dataset)
    runs = [row["settings"] for seeds in rows.values() for row in seeds.values()]
    shared = {key: sorted({str(run[key]) for run in runs}) for key in runs[0]}
    seeds = ", ".join(shared["seed"])
    refinement = sorted({run["svi_steps"] for run in runs if run.get("svi_steps")})
    samples = sorted({str(row.get("iw_samples", args.iw_samples)) for seeds in rows.values() for row in seeds.values()})
    subset = sorted({run["max_train_samples"] for run in runs if run.get("max_train_samples")})
    # the cyclical VAE's own restarted cosine is part of its method (MODELS), not of the shared protocol
    schedules = sorted({run["lr_scheduler_type"] for run in runs if run.get("lr_scheduler_type")} - {RESTARTS})
    schedule = f" ({' or '.join(SCHEDULES.get(name, name) for name in schedules)})" if schedules else ""
    header = (
        f"{dataset}: {data}"
        + (f", of which the first {' or '.join(map(str, subset))} texts" if subset else "")
        + ("" if dataset == "yelp-sentiment" else " (10% of the training text held out for model selection)")
        + "; "
        f"{' or '.join(shared['max_train_steps'])} updates of batch {' or '.join(shared['per_device_train_batch_size'])}"
        f", Adam, learning rate {' or '.join(shared['learning_rate'])}{schedule}"
        f", embedding {' or '.join(shared['embedding_size'])}"
        f", hidden {' or '.join(shared['hidden_size'])}, texts cut at {' or '.join(shared['max_length'])} tokens"
        + (f", SA-VAE refining {' or '.join(map(str, refinement))} steps" if refinement else "")
        + f"; seeds {seeds} (mean ± standard deviation); evaluated on {first['num_sentences']} test sentences with "
        f"k = {' or '.join(samples)}. The paper NLL/PPL is the TWR-VAE reference code's number, not a bound on the "
        "likelihood."
        + training_machines(rows)
        + (
            " The last column is the TWR-VAE paper's Yelp15 row (its Tables 2 and 3): whole reviews, not sentences, "
            "NLL per review, the TWR-VAE rows' NLL the reference code's number; for orientation, not comparison."
            if dataset == "yelp-sentiment"
            else ""
        )
    )
    # a column no run of this corpus has (the sentiment transfer outside Yelp) is left out
    shown = [
        (key, title) for key, title in COLUMNS if any(r.get(key) is not None for s in rows.values() for r in s.values())
    ]
    paper = PAPER_YELP15 if dataset == "yelp-sentiment" else None
    titles = [title for _, title in shown] + ([PAPER_COLUMN] if paper else [])
    lines = [header, "", "| model | seeds | " + " | ".join(titles) + " |"]
    lines.append("|---|---|" + "---|" * len(titles))
    summary = {}
    for name, seeds in rows.items():
        statistics = {key: mean_std([row.get(key) for row in seeds.values()]) for key, _ in COLUMNS}
        summary[name] = {
            "mean": {key: value[0] for key, value in statistics.items()},
            "std": {key: value[1] for key, value in statistics.items()},
            "seeds": {
                str(seed): {
                    **{key: row.get(key) for key, _ in COLUMNS},
                    "settings": row["settings"],
                    "training_cpus": row.get("training_cpus"),
                    "validation_curve": row.get("validation_curve"),
                    "interpolation": row.get("interpolation"),
                }
                for seed, row in seeds.items()
            },
        }
        cells = [_format(*statistics[key], percent=key in PERCENT) for key, _ in shown] + (
            [paper.get(name, "-")] if paper else []
        )
        lines.append(f"| {name} | {len(seeds)} | " + " | ".join(cells) + " |")
    return header, {"header": header, "table": "\n".join(lines) + "\n", "results": summary}


# sizes that stay readable when a page scales three panels side by side down to its width
READABLE = {"font.size": 13, "axes.titlesize": 14, "axes.labelsize": 13, "xtick.labelsize": 12,
            "ytick.labelsize": 12, "legend.fontsize": 10}  # fmt: skip


def pyplot():
    """matplotlib's pyplot without a display, with READABLE's font sizes."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update(READABLE)
    import matplotlib.pyplot as plt

    return plt


def plot(path: Path, tables: dict) -> None:
    """IW-NLL against MI, one panel per corpus, a point for every model and seed. A point far above the rest (more
    than 1.3 times the panel's median IW-NLL, as TWR-VAE-sum's) is drawn as a triangle at the top edge with its value,
    so that it does not flatten the others into a line."""
    plt = pyplot()
    figure, axes = plt.subplots(1, len(tables), figsize=(5.5 * len(tables) + 3.5, 4.8), squeeze=False)
    for axis, (dataset, table) in zip(axes[0], tables.items(), strict=True):
        points = {
            name: [(r["mutual_information"], r["iw_nll"]) for r in result["seeds"].values()]
            for name, result in table["results"].items()
        }
        points = {name: [p for p in values if None not in p] for name, values in points.items()}
        values = sorted(y for pairs in points.values() for _, y in pairs)
        if not values:
            continue
        ceiling = 1.3 * values[len(values) // 2]
        shown = [y for y in values if y <= ceiling]
        top = max(shown) + 0.15 * (max(shown) - min(shown) + 1.0)
        labels = 0
        for index, (name, pairs) in enumerate(points.items()):
            colour, marker = model_style(index)
            inside = [(x, y) for x, y in pairs if y <= ceiling]
            above = [(x, y) for x, y in pairs if y > ceiling]
            if inside:
                axis.scatter(*zip(*inside, strict=True), color=colour, marker=marker, label=name, s=32)
            for x, y in above:
                axis.scatter([x], [top], color=colour, marker="^", s=40, label=None if inside else name)
                axis.annotate(
                    f"{y:.0f}", (x, top), textcoords="offset points", xytext=(4, -12 - 11 * labels), fontsize=10
                )
                labels += 1
                inside = inside or [(x, top)]  # one legend entry per model
        axis.set_ylim(min(shown) - 0.05 * (top - min(shown) + 1.0), top + 0.05 * (top - min(shown) + 1.0))
        axis.set_title(dataset)
        axis.set_xlabel("mutual information (nats)")
        axis.set_ylabel("IW-NLL (nats per sentence; ▲ off the scale)")
        axis.grid(alpha=0.3)
    save_figure(figure, axes, path, legend_size=9, outside=True)


def model_style(index: int) -> tuple:
    """A colour and a marker per model that stay distinct for the 17 models of Tables 2 and 3 (tab10 alone repeats
    after ten)."""
    import matplotlib

    return matplotlib.colormaps["tab10"](index % 10), "osDvP"[(index // 10) % 5]


def plot_curves(path: Path, tables: dict) -> None:
    """Validation -ELBO against updates, a panel per corpus, a line per model and seed: whether the runs had
    converged (the protocol asks for under 1% over the last fifth)."""
    plt = pyplot()
    figure, axes = plt.subplots(1, len(tables), figsize=(5.5 * len(tables) + 3.5, 4.8), squeeze=False)
    styles = ("-", "--", ":")
    for axis, (dataset, table) in zip(axes[0], tables.items(), strict=True):
        curves = {
            name: [run.get("validation_curve") or [] for run in result["seeds"].values()]
            for name, result in table["results"].items()
        }
        # a model whose curve ends far above the others' (TWR-VAE-sum's KL of hundreds of nats) would flatten them
        # into one line: the axis stops at the others, and the legend says which are off the scale
        ends = sorted(curve[-1]["elbo_nll"] for runs in curves.values() for curve in runs if curve)
        ceiling = 1.3 * ends[len(ends) // 2] if ends else math.inf
        shown = []
        for index, (name, runs) in enumerate(curves.items()):
            colour, _ = model_style(index)
            off = any(curve and curve[-1]["elbo_nll"] > ceiling for curve in runs)
            for number, curve in enumerate(runs):
                if curve and not off:
                    shown += [p["elbo_nll"] for p in curve]
                if curve:
                    axis.plot([p["step"] for p in curve], [p["elbo_nll"] for p in curve], styles[(index // 10) % 3],
                              color=colour, label=(f"{name} (off the scale)" if off else name) if number == 0 else None,
                              linewidth=1)  # fmt: skip
        if shown:
            low, high = min(shown), max(shown)
            axis.set_ylim(low - 0.05 * (high - low + 1.0), high + 0.05 * (high - low + 1.0))
        label_axis(axis, dataset, "update", "validation -ELBO (nats per sentence)")
    save_figure(figure, axes, path, legend_size=9, outside=True)


def label_axis(axis, title: str, xlabel: str, ylabel: str) -> None:
    axis.set_title(title)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)


def save_figure(figure, axes, path: Path, legend_size: int | None = None, outside: bool = False) -> None:
    """The legend in the last panel (or beside it, where it would hide the lines), then the PNG."""
    plt = pyplot()
    if outside:
        axes[0][-1].legend(fontsize=legend_size, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    else:
        axes[0][-1].legend(fontsize=legend_size, loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_interpolation(path: Path, tables: dict, models: tuple[str, ...] = ("TWR-VAE", "BN-VAE (0.7)")) -> None:
    """TWR-VAE's Figure 2: ROUGE-1/2/L F1 of each point of an interpolation against its start and its end, over the
    mixture weight, for TWR-VAE and BN-VAE (mean over seeds, and ROUGE-1's range over seeds as a band); a panel per
    corpus."""
    plt = pyplot()
    figure, axes = plt.subplots(1, len(tables), figsize=(5.5 * len(tables) + 3.5, 4.8), squeeze=False)
    styles = {"rouge1": "-", "rouge2": "--", "rougeL": ":"}
    for axis, (dataset, table) in zip(axes[0], tables.items(), strict=True):
        for colour, name in zip(("tab:blue", "tab:orange"), models, strict=True):
            runs = [r.get("interpolation") for r in table["results"].get(name, {}).get("seeds", {}).values()]
            runs = [r for r in runs if r and r.get("rouge")]
            if not runs:
                continue
            alphas = runs[0]["alphas"]
            for metric, style in styles.items():
                for side, marker in (("start", "o"), ("end", "s")):
                    seeds = [[r["rouge"][i][f"{metric}_{side}"] for r in runs] for i in range(len(alphas))]
                    axis.plot(alphas, [sum(v) / len(v) for v in seeds], style, marker=marker, markersize=3,
                              color=colour, label=f"{name} {metric} vs {side}")  # fmt: skip
                    if metric == "rouge1" and len(runs) > 1:  # the seeds' spread, on one metric to stay readable
                        axis.fill_between(alphas, [min(v) for v in seeds], [max(v) for v in seeds], color=colour,
                                          alpha=0.12, linewidth=0,
                                          label=f"{name} rouge1, range over seeds" if side == "start" else None)  # fmt: skip
        label_axis(axis, f"{dataset}: interpolation", "mixture weight (0: start, 1: end)",
                   "ROUGE F1, mean over seeds")  # fmt: skip
    save_figure(figure, axes, path, legend_size=9, outside=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=os.environ.get("TWRVAE_DATA_DIR", "../shared/data"))
    parser.add_argument("--datasets", "--dataset", nargs="+", default=["e2e"], choices=DATASETS)
    parser.add_argument("--seeds", "--seed", nargs="+", type=int, default=[42])
    parser.add_argument("--budget", "--max_train_steps", type=int, default=2000, help="Updates of every model.")
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--per_device_train_batch_size", type=int, default=32)
    parser.add_argument("--max_grad_norm", type=float, help="Clip every model's gradients (the baselines' code: 5).")
    parser.add_argument(
        "--checkpointing_steps",
        type=int,
        help="Save each training's state every N updates (default: at each validation, a tenth of the budget). "
        "A slow row (SA-VAE, the lagging VAE) saved more often loses less when stopped; the result is the same.",
    )
    parser.add_argument(
        "--config_overrides",
        default="embedding_size=256,hidden_size=256",
        help="Sizes of every model (no latent_size: HR-VAE derives its own from hidden_size; the others keep 32).",
    )
    parser.add_argument(
        "--lr_scheduler_type",
        default="constant",
        help="The learning-rate schedule of every row but the cyclical VAE, which restarts a cosine with each cycle "
        "(train.py's option: constant, cosine (to 0 over the budget), linear, ...).",
    )
    parser.add_argument("--max_train_samples", type=int, help="Train on the first N texts only (quick checks).")
    parser.add_argument("--max_length", type=int, default=100, help="Cut longer texts (tokens), in training and test.")
    parser.add_argument(
        "--sa_vae_steps",
        type=int,
        default=20,
        help="SA-VAE's refinement steps in training and evaluation (the authors' 20, SA:train_text.py:55; fewer is a "
        "smaller budget, and the table says so).",
    )
    parser.add_argument("--iw_samples", type=int, default=100)
    parser.add_argument("--max_eval_samples", type=int, default=1000)
    parser.add_argument("--num_prior_samples", type=int, default=100)
    parser.add_argument("--num_interpolation_pairs", type=int, default=20)
    parser.add_argument("--models", nargs="+", default=TABLE_2, choices=list(MODELS))
    parser.add_argument("--output_dir", default="outputs/compare")
    parser.add_argument(
        "--only_existing",
        action="store_true",
        help="Train nothing: gather the models already trained and evaluated in --output_dir (a row lists its seeds).",
    )
    parser.add_argument("--results_dir", default=str(REPO_ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)

    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    tables = {}
    for dataset in args.datasets:
        rows = {}
        for name in args.models:
            rows[name] = {}
            for seed in args.seeds:
                row = train_and_evaluate(args, dataset, name, seed, output)
                if row is None:
                    continue
                rows[name][seed] = row
                print(
                    f"{dataset} {name} seed {seed}: IW-NLL {row['iw_nll']:.2f}, KL {row['kl_decoded']:.2f}, "
                    f"MI {_format(row.get('mutual_information'))}, {row['train_minutes']:.2f} min",
                    flush=True,
                )
        missing = [name for name, seeds in rows.items() if not seeds]
        rows = {name: seeds for name, seeds in rows.items() if seeds}
        if not rows:
            raise SystemExit(f"{output / dataset} holds no evaluated model of those asked for.")
        _, tables[dataset] = corpus_table(args, dataset, rows)
        if missing:  # a gathering call says which of the rows it was asked for have no finished run
            tables[dataset]["table"] += f"\nNo finished run yet: {', '.join(missing)}.\n"
            tables[dataset]["missing"] = missing
    results = Path(args.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    stem = "table2-" + "-".join(args.datasets)
    summary = {"command_line": vars(args), "machine": describe("cpu"), "corpora": tables}
    for folder in (output, results):
        atomic_write_text(folder / f"{stem}.md", "\n".join(t["table"] for t in tables.values()))
        atomic_write_json(folder / f"{stem}.json", summary)
        plot(folder / f"{stem}.png", tables)
        plot_curves(folder / f"{stem}-curves.png", tables)
        plot_interpolation(folder / f"{stem}-interpolation.png", tables)
    print("\n" + "\n".join(t["table"] for t in tables.values()))


if __name__ == "__main__":
    main()
