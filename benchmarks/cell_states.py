"""Every timestep's LSTM cell state: the package's two exact ways against stepping `nn.LSTM` token by token.

    python benchmarks/cell_states.py [--device cpu|cuda] [--quick] [--results_dir DIR]

HR-VAE's posterior reads [h_t; c_t] at every timestep. "step" calls `nn.LSTM` once per token; "unrolled" and "scan"
are `modeling_twrvae.recurrence.lstm_states_unrolled` and the fused `nn.LSTM` call plus `lstm_cell_states` (see
that module). The model uses unrolled on CPU and scan elsewhere. Prints a table of median milliseconds, forward
and forward+backward, and writes it as JSON.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from environment import add_common_arguments, check_device, describe, results_path
from torch import nn

from modeling_twrvae.file_utils import atomic_write_json
from modeling_twrvae.recurrence import (
    lstm_cell_states,
    lstm_cell_states_stepwise,
    lstm_states_unrolled,
)

METHODS = {"step": lstm_cell_states_stepwise, "unrolled": lstm_states_unrolled, "scan": None}


def scan(lstm, inputs):
    hidden, _ = lstm(inputs)
    return hidden, lstm_cell_states(lstm, inputs, hidden)


def measure(function, lstm, inputs, backward: bool, repeats: int, device: str) -> float:
    def once():
        hidden, cells = function(lstm, inputs)
        if backward:
            (hidden.sum() + cells.sum()).backward()

    once()  # warm-up
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        once()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--input_size", type=int, default=512)
    parser.add_argument("--hidden_size", type=int, default=256)
    parser.add_argument("--lengths", type=int, nargs="+", help="Default 16 32 64 128 (16 64 with --quick).")
    parser.add_argument("--repeats", type=int, help="Default 5 (3 with --quick).")
    parser.add_argument("--output_file", help="Default: RESULTS_DIR/cell_states-DEVICE.json.")
    args = parser.parse_args(argv)
    check_device(args.device)
    args.lengths = args.lengths or ([16, 64] if args.quick else [16, 32, 64, 128])
    args.repeats = args.repeats or (3 if args.quick else 5)
    args.output_file = args.output_file or results_path(args.results_dir, "cell_states", args.device)

    torch.manual_seed(0)
    lstm = nn.LSTM(args.input_size, args.hidden_size, batch_first=True).to(args.device)
    rows = []
    for length in args.lengths:
        inputs = torch.randn(args.batch_size, length, args.input_size, device=args.device, requires_grad=True)
        row = {"length": length}
        for name, function in METHODS.items():
            for backward in (False, True):
                key = f"{name}_{'fwd_bwd' if backward else 'fwd'}_ms"
                row[key] = measure(function or scan, lstm, inputs, backward, args.repeats, args.device)
        rows.append(row)

    print(
        f"LSTM states of every timestep, batch {args.batch_size}, input {args.input_size}, hidden {args.hidden_size}, "
        f"{args.device}, {torch.get_num_threads()} threads, median of {args.repeats} runs (ms; x = step / method)"
    )
    header = f"{'T':>5}"
    for phase in ("fwd", "fwd+bwd"):
        header += "".join(f" {name + ' ' + phase:>17}" for name in METHODS) + f" {'x unrolled':>10} {'x scan':>7}"
    print(header)
    for row in rows:
        line = f"{row['length']:>5}"
        for phase in ("fwd", "fwd_bwd"):
            line += "".join(f" {row[f'{name}_{phase}_ms']:>17.2f}" for name in METHODS)
            step = row[f"step_{phase}_ms"]
            line += f" {step / row[f'unrolled_{phase}_ms']:>10.2f} {step / row[f'scan_{phase}_ms']:>7.2f}"
        print(line)
    result = {
        "benchmark": "lstm_cell_states",
        **describe(args.device),
        "settings": {k: v for k, v in vars(args).items() if k not in ("output_file", "results_dir")},
        "rows": rows,
    }
    output = atomic_write_json(args.output_file, result)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
