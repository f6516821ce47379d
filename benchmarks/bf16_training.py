"""Does bf16 autocast train as well as fp32? The demo run with `--mixed_precision no` and `bf16`, same seeds.

    python benchmarks/bf16_training.py [--device cpu|cuda] [--quick] [--seeds 42 43 44] [--data_dir ../shared/data]

Runs `training/train.py --config demo` (TWR-VAE on E2E) with each precision and each seed and compares the last
validation -ELBO (target: bf16 within 1% of fp32, the means over the seeds) and the wall time of the training
loop. One run's -ELBO moves by a few percent with the seed alone (a rounding difference changes the whole
trajectory as a seed does), so with several seeds the fp32 runs' own spread is printed beside the difference.
Skipped with a message on a CPU without oneDNN bf16 kernels (AVX-512 or AMX), where train.py falls back to fp32.
Writes benchmarks/results/bf16_training-DEVICE.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from accelerate.state import AcceleratorState, GradientState
from environment import add_common_arguments, check_device, describe, results_path

from modeling_twrvae.commands import train
from modeling_twrvae.file_utils import atomic_write_json
from modeling_twrvae.trainer.precision import cpu_supports_bf16

REPO_ROOT = Path(__file__).resolve().parents[1]


def last_validation(output_dir: Path) -> dict:
    records = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines() if line]
    return [record for record in records if "eval_elbo_nll" in record][-1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--data_dir", default=os.environ.get("TWRVAE_DATA_DIR", "../shared/data"))
    parser.add_argument("--max_train_steps", type=int, help="Default: the demo's 2000 (1000 with --quick).")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42], help="train.py --seed of each pair of runs.")
    args = parser.parse_args(argv)
    check_device(args.device)
    if args.device == "cpu" and not cpu_supports_bf16():
        print(
            "bf16 training skipped: this CPU has no oneDNN bf16 kernels (needs AVX-512 or AMX); train.py would fall "
            "back to fp32. Run with --device cuda or on such a CPU."
        )
        return
    steps = args.max_train_steps or (1000 if args.quick else 2000)
    runs = {"no": [], "bf16": []}
    with tempfile.TemporaryDirectory() as scratch:
        for seed in args.seeds:
            for precision in ("no", "bf16"):
                output_dir = Path(scratch) / f"{precision}-{seed}"
                argv = ["--config", "demo", "--data_dir", args.data_dir, "--output_dir", str(output_dir)]
                argv += ["--mixed_precision", precision, "--seed", str(seed), "--max_train_steps", str(steps)]
                argv += ["--eval_steps", str(steps // 4), "--checkpointing_steps", str(steps)]
                if args.device == "cpu":
                    argv.append("--use_cpu")
                # accelerate's state is a per-process singleton that fixes the precision: start each run as a new
                # process would
                AcceleratorState._reset_state(True)
                GradientState._reset_state()
                start = time.perf_counter()
                train.main(argv)
                seconds = time.perf_counter() - start
                runs[precision].append({"seed": seed, "seconds": seconds, **last_validation(output_dir)})
    fp32s, bf16s = ([run["eval_elbo_nll"] for run in runs[key]] for key in ("no", "bf16"))
    fp32, bf16 = statistics.mean(fp32s), statistics.mean(bf16s)
    relative = (bf16 - fp32) / fp32
    spread = statistics.stdev(fp32s) / fp32 if len(fp32s) > 1 else None
    seconds = {key: sum(run["seconds"] for run in runs[key]) for key in runs}
    pairs = ", ".join(f"{a:.3f}/{b:.3f}" for a, b in zip(fp32s, bf16s, strict=True))
    print(
        f"\nDemo training ({steps} updates, seeds {' '.join(map(str, args.seeds))}), {args.device} "
        f"({describe(args.device)['device']}): validation -ELBO fp32/bf16 {pairs}; mean fp32 {fp32:.3f}, bf16 "
        f"{bf16:.3f} ({relative:+.2%}; target within 1%: "
        + ("met" if abs(relative) <= 0.01 else "NOT met")
        + ")"
        + (f"; the fp32 runs' own spread (sd over seeds) {spread:.2%}" if spread is not None else "")
        + f"; run time fp32 {seconds['no']:.0f} s, bf16 {seconds['bf16']:.0f} s (x{seconds['no'] / seconds['bf16']:.2f})"
    )
    result = {
        "benchmark": "bf16_training",
        **describe(args.device),
        "max_train_steps": steps,
        "seeds": args.seeds,
        "runs": runs,
        "mean_eval_elbo_nll": {"fp32": fp32, "bf16": bf16},
        "relative_difference": relative,
        "fp32_relative_sd_over_seeds": spread,
    }
    output = atomic_write_json(results_path(args.results_dir, "bf16_training", args.device), result)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
