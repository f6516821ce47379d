"""How long importance-weighted NLL takes: k = 500 samples per sentence on the PTB test split.

    python benchmarks/iw_nll_speed.py [--sentences 40] [--device cpu|cuda]

Times `modeling_twrvae.evaluation.likelihoods` for the paper's TWR-VAE sizes (embedding 512, hidden 256, latent 32,
10k vocabulary; random weights: the speed does not depend on them) on the first test sentences, for several ways of
batching the k samples, and projects the time for the whole split (3,761 sentences). Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from environment import describe  # noqa: E402

from modeling_twrvae import TWRVAEConfig, TWRVAEModel, train_tokenizer  # noqa: E402
from modeling_twrvae.evaluation import likelihoods  # noqa: E402
from modeling_twrvae.file_utils import atomic_write_json  # noqa: E402

PTB_TEST_SENTENCES = 3761


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=os.environ.get("TWRVAE_DATA_DIR", "../shared/data"))
    parser.add_argument("--sentences", type=int, default=40)
    parser.add_argument("--iw_samples", type=int, default=500)
    parser.add_argument("--settings", default="1x500,4x125,8x64,16x32", help="batch_size x samples_per_pass, ...")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--output_file", default="benchmarks/results/iw_nll_speed-cpu.json")
    args = parser.parse_args(argv)

    data = Path(args.data_dir) / "ptb"
    tokenizer = train_tokenizer((data / "ptb.valid.txt").read_text().splitlines(), vocab_size=10000)
    test = [line.strip() for line in (data / "ptb.test.txt").read_text().splitlines() if line.strip()]
    ids = tokenizer(test[: args.sentences])["input_ids"]
    torch.manual_seed(0)
    model = TWRVAEModel(TWRVAEConfig.from_preset("twr-vae", vocab_size=10000)).to(args.device).eval()

    rows = []
    for setting in args.settings.split(","):
        batch_size, per_pass = (int(part) for part in setting.split("x"))
        start = time.perf_counter()
        likelihoods(model, ids, args.iw_samples, batch_size, per_pass, seed=0, progress=False)
        if args.device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        rows.append(
            {
                "batch_size": batch_size,
                "samples_per_pass": per_pass,
                "seconds": seconds,
                "sentences_per_second": len(ids) / seconds,
                "projected_minutes_ptb_test": PTB_TEST_SENTENCES * seconds / len(ids) / 60,
            }
        )
    tokens = sum(len(row) - 1 for row in ids)
    print(
        f"IW-NLL, k = {args.iw_samples}, TWR-VAE paper sizes (10k vocabulary), first {len(ids)} PTB test sentences "
        f"({tokens} predicted tokens), {args.device}, {torch.get_num_threads()} threads"
    )
    print(f"{'batch x samples/pass':>22} {'seconds':>9} {'sent/s':>8} {'projected PTB test (min)':>26}")
    for row in rows:
        print(
            f"{row['batch_size']:>12} x {row['samples_per_pass']:<7} {row['seconds']:>9.1f} "
            f"{row['sentences_per_second']:>8.2f} {row['projected_minutes_ptb_test']:>26.1f}"
        )
    result = {
        "benchmark": "iw_nll_speed",
        **describe(args.device),
        "sentences": len(ids),
        "predicted_tokens": tokens,
        "iw_samples": args.iw_samples,
        "rows": rows,
    }
    output = atomic_write_json(args.output_file, result)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
