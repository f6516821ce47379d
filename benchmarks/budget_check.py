"""How long a comparison must train: one model and seed at several budgets and learning-rate schedules, side by side.

    python benchmarks/budget_check.py RECORD [RECORD ...] --output benchmarks/results/yelp-budget-check/budget-check

Each RECORD is a run's row as benchmarks/compare_models.py keeps it (`table2-<corpus>-runs/<model>-seed<N>.json`):
its settings, test results and validation curve. Writes OUTPUT.md (a table: budget, schedule, test IW-NLL, -ELBO,
KL, MI and how much the validation -ELBO improved over the run's last fifth, the comparison protocol's convergence
test), OUTPUT.json (the same numbers, with the records they came from) and OUTPUT.png (the validation curves).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from compare_models import label_axis, last_fifth_improvement, pyplot, save_figure

from modeling_twrvae.file_utils import atomic_write_json, atomic_write_text

COLUMNS = ("updates", "schedule", "IW-NLL", "-ELBO", "KL", "MI", "validation -ELBO gain, last fifth (%)", "minutes")


def describe_run(path: Path) -> dict:
    record = json.loads(path.read_text(encoding="utf-8"))
    settings = record["settings"]
    return {
        "record": path.name,
        "model": path.stem.rsplit("-seed", 1)[0],  # compare_models names its records <model>-seed<N>
        "seed": settings["seed"],
        "updates": settings["max_train_steps"],
        "schedule": settings.get("lr_scheduler_type") or "constant",
        "iw_nll": record["iw_nll"],
        "elbo_nll": record["elbo_nll"],
        "kl_decoded": record["kl_decoded"],
        "mutual_information": record["mutual_information"],
        "last_fifth_improvement": last_fifth_improvement(record["validation_curve"]),
        "train_minutes": record.get("train_minutes"),
        "validation_curve": record["validation_curve"],
    }


def table(runs: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for run in runs:
        gain = run["last_fifth_improvement"]
        cells = [
            f"{run['updates']:,}", run["schedule"], f"{run['iw_nll']:.2f}", f"{run['elbo_nll']:.2f}",
            f"{run['kl_decoded']:.2f}", f"{run['mutual_information']:.2f}",
            "-" if gain is None else f"{100 * gain:.1f}",
            "-" if run["train_minutes"] is None else f"{run['train_minutes']:.0f}",
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(path: Path, runs: list[dict], title: str) -> None:
    plt = pyplot()
    figure, axes = plt.subplots(1, 1, figsize=(8.5, 4.8), squeeze=False)
    for run in runs:
        curve = run["validation_curve"]
        axes[0][0].plot([p["step"] for p in curve], [p["elbo_nll"] for p in curve], marker=".",
                        label=f"{run['updates']:,} updates, {run['schedule']}")  # fmt: skip
    label_axis(axes[0][0], title, "update", "validation -ELBO (nats per sentence)")
    save_figure(figure, axes, path, legend_size=10)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("records", nargs="+", type=Path, help="compare_models.py's run records, one per budget.")
    parser.add_argument("--output", type=Path, required=True, help="Path stem of the .md, .json and .png written.")
    parser.add_argument("--title", help="The model's name in the plot (default: from the records' file names).")
    args = parser.parse_args(argv)
    missing = [str(path) for path in args.records if not path.is_file()]
    if missing:
        raise SystemExit(f"no run record at {', '.join(missing)}: give compare_models.py's table2-<corpus>-runs/ files")
    runs = sorted(map(describe_run, args.records), key=lambda run: (run["updates"], run["schedule"]))
    if len({(run["model"], run["seed"]) for run in runs}) != 1:
        raise SystemExit("the records are of different models or seeds: give one model and seed at several budgets")
    title = f"{args.title or runs[0]['model']}, seed {runs[0]['seed']}"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    text = table(runs)
    atomic_write_text(args.output.with_suffix(".md"), text)
    atomic_write_json(args.output.with_suffix(".json"), {"title": title, "runs": runs})
    plot(args.output.with_suffix(".png"), runs, title)
    print(text, end="")


if __name__ == "__main__":
    main()
