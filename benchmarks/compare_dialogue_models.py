"""TWR-VAE's Table 5, measured here: the dialogue models trained and measured with one protocol.

    python benchmarks/compare_dialogue_models.py --data_dir ../shared/data [--datasets dailydialog switchboard]
        [--seeds 1 2 3] [--batches 2000]

Each model (SeqGAN, the CVAE of Zhao et al., DialogWAE-GMP, iVAE, TWR-CVAE: Table 5's rows) is trained with its
shipped DailyDialog config (`modeling_twrvae/trainer/configs/dialogue/dailydialog-*.yaml`: the same data, sizes and
batch size, each model's own optimiser and schedule) on each corpus's validation split (10% of its dialogues held
out for selection; the training splits are not available offline) for the same number of training batches
(`--batches`: an update of DialogWAE reads 5 batches, so it makes a fifth of the updates; a round of SeqGAN reads 6),
and evaluated with training/evaluate.py on the first `--max_eval_samples` pairs of the test split: 10 responses per
context (SeqGAN's sampled, the others' decoded greedily from their own latent draws), BLEU-R/P/F1 in both
conventions, BOW embedding metrics (word2vec trained on the validation split), intra/inter-distinct.

A run already evaluated in --output_dir is reused, and so is a run whose row is kept in --results_dir
(`table5-runs/`, one JSON per corpus, model and seed), so the comparison continues where it stopped, on any
machine. Writes `table5.md` and `table5.json` (every seed's numbers and settings, mean and standard deviation).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from compare_models import mean_std
from environment import describe

from modeling_twrvae.file_utils import atomic_write_json, atomic_write_text

REPO_ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("dailydialog", "switchboard")
# name -> (shipped config, training batches an update reads, extra arguments for Switchboard)
MODELS = {
    "SeqGAN": ("dialogue/dailydialog-seqgan", 6, []),
    "CVAE": ("dialogue/dailydialog-cvae", 1, []),
    # WAE:configs.py:37: 3 mixture components for Switchboard, 5 for DailyDialog
    "DialogWAE-GMP": ("dialogue/dailydialog-dialogwae", 5, ["--config_overrides", "num_prior_components=3"]),
    "iVAE": ("dialogue/dailydialog-ivae", 1, []),
    "TWR-CVAE": ("dialogue/dailydialog-twr-cvae", 1, []),
    # a check of the budget, not one of Table 5's rows: as many rounds as the others' updates, so that DialogWAE's
    # autoencoder makes as many updates as theirs (it reads five times the batches)
    "DialogWAE-GMP, equal updates": (
        "dialogue/dailydialog-dialogwae",
        1,
        ["--config_overrides", "num_prior_components=3"],
    ),
}
TABLE_ROWS = ["SeqGAN", "CVAE", "DialogWAE-GMP", "iVAE", "TWR-CVAE"]


def phases(name: str, updates: int) -> list[str]:
    """SeqGAN's phases in the shares of its shipped config: half the rounds pre-train the generator, a quarter the
    discriminator, the rest are adversarial."""
    if name != "SeqGAN":
        return []
    return ["--generator_pretrain_steps", str(updates // 2), "--discriminator_pretrain_steps", str(updates // 4)]


COLUMNS = [
    ("bleu_recall_papers", "BLEU-R"), ("bleu_precision_papers", "BLEU-P"), ("bleu_f1_papers", "BLEU-F1"),
    ("bleu_f1", "BLEU-F1 (sacreBLEU)"), ("bow_average", "BOW-A"), ("bow_extrema", "BOW-E"), ("bow_greedy", "BOW-G"),
    ("intra_distinct_1", "intra-dist1"), ("intra_distinct_2", "intra-dist2"), ("inter_distinct_1", "inter-dist1"),
    ("inter_distinct_2", "inter-dist2"), ("train_minutes", "training (min)"),
]  # fmt: skip


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def run(command: list[str], log: Path) -> float:
    started = time.time()
    with log.open("w") as handle:
        subprocess.run(command, cwd=REPO_ROOT, stdout=handle, stderr=subprocess.STDOUT, check=True,
                       env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})  # fmt: skip
    return time.time() - started


def record_path(args, dataset: str, name: str, seed: int) -> Path:
    return Path(args.results_dir) / "table5-runs" / f"{dataset}-{slug(name)}-seed{seed}.json"


def train_and_evaluate(args, dataset: str, name: str, seed: int) -> dict | None:
    """The test results of `name` trained with `seed` on `dataset`: kept, found finished, or trained and evaluated
    (None with --only_existing when there are none)."""
    record = record_path(args, dataset, name, seed)
    if record.is_file():
        return json.loads(record.read_text())
    folder = Path(args.output_dir) / dataset / f"{slug(name)}-seed{seed}"
    results_file = folder / "test_results.json"
    if not results_file.is_file():
        if args.only_existing:
            return None
        config, batches_per_update, switchboard = MODELS[name]
        folder.parent.mkdir(parents=True, exist_ok=True)
        updates = max(1, args.batches // batches_per_update)
        seconds = run(
            [sys.executable, "training/train.py", "--config", config, "--data_dir", args.data_dir,
             "--dataset", dataset, "--seed", str(seed), "--max_train_steps", str(updates),
             "--eval_steps", str(max(1, updates // 4)), "--checkpointing_steps", str(updates),
             "--output_dir", str(folder), "--overwrite_output_dir", *(switchboard if dataset == "switchboard" else []),
             *phases(name, updates), *args.train_args],
            folder.parent / f"{folder.name}.train.log",
        )  # fmt: skip
        (folder / "train_seconds.txt").write_text(f"{seconds:.1f}\n")
        run(
            [sys.executable, "training/evaluate.py", "--model_name_or_path", str(folder), "--dataset", dataset,
             "--split", "test", "--data_dir", args.data_dir, "--max_samples", str(args.max_eval_samples),
             "--num_responses", "10", "--word_vectors_split", "validation", "--seed", str(seed),
             "--output_file", str(results_file), *args.eval_args],
            folder.parent / f"{folder.name}.eval.log",
        )  # fmt: skip
    row = json.loads(results_file.read_text())
    timing = folder / "train_seconds.txt"
    row["train_minutes"] = float(timing.read_text()) / 60 if timing.is_file() else None
    training = (folder / "training_config.yaml").read_text() if (folder / "training_config.yaml").is_file() else ""
    row["settings"] = {"training_config": training, "config": json.loads((folder / "config.json").read_text())}
    row["training_log_last_fifth"] = last_fifth(folder / "metrics.jsonl")
    record.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(record, row)
    return row


def last_fifth(metrics_file: Path) -> dict[str, float] | None:
    """The mean of each logged training value over the run's last fifth of logged updates (train.py's
    metrics.jsonl): where the training ended, e.g. whether SeqGAN's discriminator still sat at chance, ln 2."""
    if not metrics_file.is_file():
        return None
    records = [json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()]
    records = [r for r in records if "loss" in r]
    if not records:
        return None
    tail = records[len(records) - max(1, len(records) // 5) :]
    keys = [key for key in tail[0] if key not in ("step", "epoch") and isinstance(tail[0][key], (int, float))]
    return {key: sum(r[key] for r in tail) / len(tail) for key in keys}


def cell(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "-"
    return f"{mean:.3f}" if std is None else f"{mean:.3f} ± {std:.3f}"


def table(args, rows: dict[str, dict[str, dict[int, dict]]]) -> tuple[str, dict]:
    lines, summary = [], {}
    for dataset, models in rows.items():
        first = next(iter(next(iter(models.values())).values()))
        lines += [
            f"{dataset}: trained on the validation split (10% of its dialogues held out), {args.batches:,} training "
            f"batches per run; tested on {first['num_contexts']} test contexts, 10 responses each. BLEU-R/P/F1: the "
            "papers' convention (nltk, n <= 3, smoothing 7); mean ± standard deviation over seeds.",
            "",
            "| model | seeds | " + " | ".join(title for _, title in COLUMNS) + " |",
            "|---|---|" + "---|" * len(COLUMNS),
        ]
        summary[dataset] = {}
        for name, seeds in models.items():
            statistics = {key: mean_std([row.get(key) for row in seeds.values()]) for key, _ in COLUMNS}
            lines.append(
                f"| {name} | {len(seeds)} | " + " | ".join(cell(*statistics[key]) for key, _ in COLUMNS) + " |"
            )
            summary[dataset][name] = {
                "mean": {key: value[0] for key, value in statistics.items()},
                "std": {key: value[1] for key, value in statistics.items()},
                "seeds": {str(seed): row for seed, row in seeds.items()},
            }
        lines.append("")
    return "\n".join(lines), summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=os.environ.get("TWRVAE_DATA_DIR", "../shared/data"))
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--models", nargs="+", default=TABLE_ROWS, choices=list(MODELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--batches", type=int, default=2000, help="Training batches every run reads.")
    parser.add_argument("--max_eval_samples", type=int, default=500)
    parser.add_argument("--train_args", default="", help='More training arguments, one string ("--x 1 --y 2").')
    parser.add_argument("--eval_args", default="", help="More evaluation arguments, one string.")
    parser.add_argument("--output_dir", default="outputs/compare-dialogue")
    parser.add_argument("--results_dir", default=str(REPO_ROOT / "benchmarks" / "results"))
    parser.add_argument("--only_existing", action="store_true", help="Train nothing: gather what has run.")
    args = parser.parse_args(argv)
    if args.batches < 1:
        parser.error(f"--batches must be at least 1, got {args.batches}.")
    args.train_args, args.eval_args = shlex.split(args.train_args), shlex.split(args.eval_args)
    rows = {}
    for dataset in args.datasets:
        rows[dataset] = {}
        for name in args.models:
            seeds = {seed: train_and_evaluate(args, dataset, name, seed) for seed in args.seeds}
            seeds = {seed: row for seed, row in seeds.items() if row is not None}
            if seeds:
                rows[dataset][name] = seeds
        if not rows[dataset]:
            del rows[dataset]
    if not rows:
        raise SystemExit("No run of those asked for has finished.")
    text, summary = table(args, rows)
    results = Path(args.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    atomic_write_text(results / "table5.md", text)
    atomic_write_json(results / "table5.json", {"command_line": vars(args), "machine": describe("cpu"),
                                                "corpora": summary})  # fmt: skip
    print(text)


if __name__ == "__main__":
    main()
