"""The papers' claim on real data: which models keep using their latent variable?

    python benchmarks/compare_models.py --data_dir ../shared/data [--dataset e2e] [--max_train_steps 2000]

Trains the vanilla VAE-LSTM (no annealing), the vanilla VAE-LSTM with sigmoid KL annealing (Bowman et al., 2016),
TWR-VAE, TWR-VAE-mean and HR-VAE with the same data, sizes, optimiser, budget (updates) and seed, evaluates each with
training/evaluate.py on the corpus's test split, and writes one table (Markdown and JSON) of IW-NLL, PPL, the
reference code's NLL, KL, mutual information and active units, in --output_dir and in
benchmarks/results/compare-DATASET.{md,json}. A model already trained and evaluated in --output_dir is reused, so
an interrupted comparison continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from modeling_twrvae.file_utils import atomic_write_json, atomic_write_text

REPO_ROOT = Path(__file__).resolve().parents[1]

# name -> (preset, extra training arguments); everything else is shared.
MODELS = {
    "VAE-LSTM": ("vae-lstm", []),
    "VAE-LSTM + annealing": ("vae-lstm", ["--kl_schedule", "sigmoid"]),
    "TWR-VAE": ("twr-vae", []),
    "TWR-VAE-mean": ("twr-vae-mean", []),
    "HR-VAE": ("hr-vae", []),
}
COLUMNS = [
    ("iw_nll", "IW-NLL"),
    ("iw_ppl", "IW-PPL"),
    ("elbo_nll", "-ELBO"),
    ("paper_nll", "paper NLL"),
    ("paper_ppl", "paper PPL"),
    ("kl_decoded", "KL"),
    ("mutual_information", "MI"),
    ("active_units", "AU"),
    ("reconstruction_bleu", "rec. BLEU"),
]


def slug(name: str) -> str:
    return name.lower().replace(" + ", "-").replace(" ", "-")


def run(command: list[str], log: Path) -> float:
    start = time.time()
    with log.open("w") as handle:
        result = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    if result.returncode:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(command)}; see {log}")
    return time.time() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=os.environ.get("TWRVAE_DATA_DIR", "../shared/data"))
    parser.add_argument("--dataset", default="e2e")
    parser.add_argument("--train_split", default="validation", help="The training split is not available offline.")
    parser.add_argument("--test_split", default="test")
    parser.add_argument("--max_train_steps", type=int, default=2000)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--per_device_train_batch_size", type=int, default=32)
    parser.add_argument("--config_overrides", default="embedding_size=256,hidden_size=256")
    parser.add_argument("--iw_samples", type=int, default=100)
    parser.add_argument("--max_eval_samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--output_dir", default="outputs/compare")
    args = parser.parse_args(argv)

    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    rows = {}
    for name in args.models:
        preset, extra = MODELS[name]
        folder = output / slug(name)
        results_file = folder / "test_results.json"
        timing_file = folder / "train_seconds.txt"
        if not results_file.is_file():
            seconds = run(
                [
                    sys.executable, "training/train.py", "--dataset", args.dataset, "--data_dir", args.data_dir,
                    "--train_split", args.train_split, "--validation_split_percentage", "10",
                    "--preset", preset, "--config_overrides", args.config_overrides,
                    "--per_device_train_batch_size", str(args.per_device_train_batch_size),
                    "--learning_rate", str(args.learning_rate), "--max_train_steps", str(args.max_train_steps),
                    "--kl_anneal_steps", str(args.max_train_steps // 2), "--eval_steps", str(args.max_train_steps // 8),
                    "--seed", str(args.seed), "--output_dir", str(folder), "--overwrite_output_dir", *extra,
                ],
                output / f"{slug(name)}.train.log",
            )  # fmt: skip
            timing_file.write_text(f"{seconds:.1f}\n")
            run(
                [
                    sys.executable, "training/evaluate.py", "--model_name_or_path", str(folder),
                    "--dataset", args.dataset, "--split", args.test_split, "--data_dir", args.data_dir,
                    "--max_samples", str(args.max_eval_samples), "--iw_samples", str(args.iw_samples),
                    "--seed", str(args.seed), "--output_file", str(results_file), "--no_progress",
                ],
                output / f"{slug(name)}.eval.log",
            )  # fmt: skip
        rows[name] = json.loads(results_file.read_text())
        rows[name]["train_minutes"] = float(timing_file.read_text()) / 60 if timing_file.is_file() else None
        print(f"{name}: IW-NLL {rows[name]['iw_nll']:.2f}, KL {rows[name]['kl_decoded']:.2f}", flush=True)

    first = next(iter(rows.values()))
    header = (
        f"{args.dataset}: trained on the {args.train_split} split (10% held out for model selection), "
        f"{args.max_train_steps} updates of batch {args.per_device_train_batch_size}, learning rate "
        f"{args.learning_rate}, `{args.config_overrides}`, seed {args.seed}; evaluated on the first "
        f"{first['num_sentences']} sentences of the {args.test_split} split with k = {args.iw_samples}."
    )
    lines = [header, "", "| model | " + " | ".join(title for _, title in COLUMNS) + " |"]
    lines.append("|---|" + "---|" * len(COLUMNS))
    for name, row in rows.items():
        cells = [_format(row.get(key)) for key, _ in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    summary = {"settings": vars(args), "results": {n: {k: r.get(k) for k, _ in COLUMNS} for n, r in rows.items()}}
    results = REPO_ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    for folder, stem in ((output, "comparison"), (results, f"compare-{args.dataset}")):
        atomic_write_text(folder / f"{stem}.md", table)
        atomic_write_json(folder / f"{stem}.json", summary)
    print("\n" + table)


def _format(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.2f}"


if __name__ == "__main__":
    main()
