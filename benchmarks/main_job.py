"""The main job, timed and kept: runs `bash scripts/demo.sh`, then writes its test results with how and where it ran.

    python benchmarks/main_job.py --data_dir ../shared/data [--output_dir outputs/demo]

Writes benchmarks/results/main_job-cpu.json: the machine (and its load average before the run: a run that shared the
machine is not a timing), the commit, the wall-clock seconds of the whole job, the shipped config's settings, and
`training/evaluate.py`'s test results of the model it trained (whose `weights_sha256` names the weights).
`python scripts/render_results.py` writes these numbers into the README and the pages that show them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml
from environment import describe, results_path

from modeling_twrvae.file_utils import atomic_write_json
from modeling_twrvae.trainer.shipped_configs import resolve_config

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default="../shared/data")
    parser.add_argument("--output_dir", default="outputs/demo")
    parser.add_argument("--results_dir", default=str(REPO_ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)

    machine = describe("cpu")  # before the run: its load average says whether the machine was idle
    start = time.perf_counter()
    subprocess.run(["bash", "scripts/demo.sh", args.data_dir, args.output_dir], cwd=REPO_ROOT, check=True)
    seconds = time.perf_counter() - start
    output = Path(args.output_dir) if Path(args.output_dir).is_absolute() else REPO_ROOT / args.output_dir
    record = {
        "command": "bash scripts/demo.sh " + " ".join([args.data_dir, args.output_dir]),
        "extra_arguments": {
            name: os.environ[name]
            for name in ("TWRVAE_DEMO_TRAIN_ARGS", "TWRVAE_DEMO_EVAL_ARGS")
            if os.environ.get(name)
        },
        "machine": machine,
        "seconds": round(seconds, 1),
        "config": yaml.safe_load(resolve_config("demo").read_text()),
        "test_results": json.loads((output / "test_results.json").read_text()),
    }
    path = results_path(args.results_dir, "main_job", "cpu")
    atomic_write_json(path, record)
    minutes, rest = divmod(round(seconds), 60)
    print(f"the main job: {minutes} min {rest} s on {machine['cpu']} (load {machine['load_average_1min']:.2f} before)")
    print(f"wrote {path}")
    return record


if __name__ == "__main__":
    sys.exit(main() and 0)
