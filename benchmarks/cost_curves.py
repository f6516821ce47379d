"""How a training step's cost grows with batch size (16-256) and sentence length (10-200 tokens).

    python benchmarks/cost_curves.py [--device cpu|cuda] [--quick]

TWR-VAE at the papers' sizes (vocabulary 10k, embedding 512, hidden 256, latent 32), one training step as
`training/train.py` runs it (forward without logits, backward, fused Adam). The batch sweep holds the length at 24
tokens, the length sweep holds the batch at 64. For each sweep, a least-squares line time = a + b x is fitted: the
largest relative residual says whether cost grows linearly, and `a` is the fixed cost of a step (the Adam update over
all weights, per-call overhead) that larger batches amortise. Prints tables, writes
benchmarks/results/cost_curves-DEVICE.{json,png}.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from environment import add_common_arguments, check_device, describe, median_seconds, results_path
from training_throughput import make_batch

from modeling_twrvae import TWRVAEConfig, TWRVAEModel
from modeling_twrvae.file_utils import atomic_write_json
from modeling_twrvae.trainer.memory import reuse_freed_memory


def step_seconds(model, optimizer, batch: int, length: int, device: str, repeats: int) -> float:
    ids = make_batch(batch, length, device)
    mask = torch.ones_like(ids)

    def step():
        model(input_ids=ids, attention_mask=mask, return_logits=False).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return median_seconds(step, device, repeats)


def fit_line(xs, ys) -> dict:
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum((x - mean_x) ** 2 for x in xs)
    intercept = mean_y - slope * mean_x
    residual = max(abs(y - (intercept + slope * x)) / y for x, y in zip(xs, ys, strict=True))
    return {"intercept_s": intercept, "slope_s": slope, "max_relative_residual": residual, "linear": residual < 0.1}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--batch_sizes", type=int, nargs="+")
    parser.add_argument("--lengths", type=int, nargs="+")
    parser.add_argument("--repeats", type=int, help="Timed steps per point (default 3, 1 with --quick).")
    args = parser.parse_args(argv)
    check_device(args.device)
    if args.device == "cpu":
        reuse_freed_memory()  # as training/train.py does
    gpu = args.device == "cuda"
    batch_sizes = args.batch_sizes or ([16, 64, 256] if args.quick and not gpu else [16, 32, 64, 128, 256])
    lengths = args.lengths or ([10, 50, 200] if args.quick and not gpu else [10, 25, 50, 100, 200])
    repeats = args.repeats or (1 if args.quick else 3)
    torch.manual_seed(0)
    model = TWRVAEModel(TWRVAEConfig.from_preset("twr-vae", vocab_size=10000)).to(args.device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, eps=1e-6, weight_decay=1e-5, fused=True)

    sweeps = {}
    for name, values, shape in (
        ("batch_size", batch_sizes, lambda v: (v, 24)),
        ("length", lengths, lambda v: (64, v)),
    ):
        points = []
        for value in values:
            batch, length = shape(value)
            seconds = step_seconds(model, optimizer, batch, length, args.device, repeats)
            tokens = batch * (length - 1)
            points.append(
                {
                    name: value,
                    "batch_size": batch,
                    "length": length,
                    "step_s": seconds,
                    "tokens_per_second": tokens / seconds,
                }
            )
        sweeps[name] = {"points": points, "fit": fit_line([p[name] for p in points], [p["step_s"] for p in points])}

    print(
        f"\nTraining-step cost, TWR-VAE paper sizes, {args.device} ({describe(args.device)['device']}), "
        f"{torch.get_num_threads()} threads, median of {repeats}"
    )
    for name, sweep in sweeps.items():
        print(f"{name:>10} {'step s':>9} {'tokens/s':>9}")
        for point in sweep["points"]:
            print(f"{point[name]:>10} {point['step_s']:>9.3f} {point['tokens_per_second']:>9.0f}")
        fit = sweep["fit"]
        print(
            f"  fit: {fit['intercept_s'] * 1000:.1f} ms + {fit['slope_s'] * 1000:.2f} ms per unit of {name}; largest "
            f"relative residual {fit['max_relative_residual']:.1%} -> "
            + ("linear" if fit["linear"] else "not linear (see the PNG)")
        )
    result = {"benchmark": "cost_curves", **describe(args.device), "repeats": repeats, "sweeps": sweeps}
    output = atomic_write_json(results_path(args.results_dir, "cost_curves", args.device), result)
    print(f"wrote {output}")
    plot(sweeps, results_path(args.results_dir, "cost_curves", args.device, "png"), args.device)


def plot(sweeps: dict, path: Path, device: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(sweeps), figsize=(5 * len(sweeps), 4))
    for axis, (name, sweep) in zip(axes, sweeps.items(), strict=True):
        xs = [p[name] for p in sweep["points"]]
        axis.plot(xs, [p["step_s"] for p in sweep["points"]], "o-", label="measured")
        fit = sweep["fit"]
        axis.plot(xs, [fit["intercept_s"] + fit["slope_s"] * x for x in xs], "--", label="least-squares line")
        axis.set_xlabel(name.replace("_", " ") + (" (length 24)" if name == "batch_size" else " (batch 64)"))
        axis.set_ylabel("seconds per training step")
        axis.legend()
    figure.suptitle(f"TWR-VAE training step cost, {device}")
    figure.tight_layout()
    temporary = path.with_name(path.stem + ".tmp.png")
    figure.savefig(temporary, dpi=100)
    plt.close(figure)
    temporary.replace(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
