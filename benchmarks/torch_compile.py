"""`--torch_compile`: train.py's training step compiled (`model.compile(dynamic=True)`) against eager.

    python benchmarks/torch_compile.py [--device cpu|cuda] [--quick] [--lengths 20 24 28]

TWR-VAE at the papers' sizes (vocabulary 10k, embedding 512, hidden 256, latent 32, batch 64), the step train.py
runs (`return_logits=False`, fused Adam, on CPU freed memory reused). The compiled model first runs one batch of each
length in `--lengths` (as length-grouped batches bring them), which is where it compiles; the time of that and the
number of compilations are recorded (dynamo's counters: with dynamic shapes a new length should not compile again).
Then eager and compiled steps are timed round-robin at the middle length. Writes
benchmarks/results/torch_compile-DEVICE.json.
"""

from __future__ import annotations

import argparse
import time

import torch
from environment import add_common_arguments, check_device, describe, interleaved_medians, results_path
from training_throughput import VOCAB, make_batch

from modeling_twrvae import TWRVAEConfig, TWRVAEModel
from modeling_twrvae.file_utils import atomic_write_json
from modeling_twrvae.trainer.memory import reuse_freed_memory

BATCH = 64


def build(device: str, compiled: bool):
    torch.manual_seed(0)
    model = TWRVAEModel(TWRVAEConfig.from_preset("twr-vae", vocab_size=VOCAB)).to(device).train()
    if compiled:
        model.compile(dynamic=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, eps=1e-6, weight_decay=1e-5, fused=True)

    def step(ids):
        output = model(input_ids=ids, attention_mask=torch.ones_like(ids), return_logits=False)
        output.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return output.loss.detach()

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--lengths", type=int, nargs="+", default=[20, 24, 28])
    parser.add_argument("--repeats", type=int, help="Timed rounds (default 10, 4 with --quick).")
    args = parser.parse_args(argv)
    check_device(args.device)
    if args.device == "cpu":
        reuse_freed_memory()
    repeats = args.repeats or (4 if args.quick else 10)
    from torch._dynamo.utils import counters

    counters.clear()
    eager, compiled = build(args.device, False), build(args.device, True)
    batches = {length: make_batch(BATCH, length, args.device) for length in args.lengths}
    compile_seconds = {}
    for length, ids in batches.items():
        start = time.perf_counter()
        loss = compiled(ids)
        compile_seconds[length] = time.perf_counter() - start
        assert torch.isfinite(loss), loss
    compiles_after_first = dict(counters["stats"])
    again = time.perf_counter()
    for ids in batches.values():  # every length a second time: nothing may compile now
        compiled(ids)
    second_pass = time.perf_counter() - again
    frames = dict(counters["stats"])
    middle = args.lengths[len(args.lengths) // 2]
    ids = batches[middle]
    seconds = interleaved_medians(
        {"eager": lambda: eager(ids), "compiled": lambda: compiled(ids)}, args.device, repeats, warmup=1, settle=1
    )
    result = {
        "benchmark": "torch_compile",
        **describe(args.device),
        "batch_size": BATCH,
        "lengths": args.lengths,
        "timed_length": middle,
        "repeats": repeats,
        "first_step_seconds_by_length": compile_seconds,
        "second_pass_seconds_all_lengths": second_pass,
        "dynamo_stats_after_first_pass": compiles_after_first,
        "dynamo_stats_after_second_pass": frames,
        "graph_breaks": dict(counters["graph_break"]),
        "recompiles": dict(counters.get("recompiles", {})),
        "eager_step_ms": seconds["eager"] * 1000,
        "compiled_step_ms": seconds["compiled"] * 1000,
        "speedup": seconds["eager"] / seconds["compiled"],
    }
    print(
        f"\ntorch.compile(dynamic=True), TWR-VAE train.py step, batch {BATCH}, {args.device} "
        f"({describe(args.device)['device']}), {torch.get_num_threads()} threads, median of {repeats} rounds"
    )
    print("  first step of each length (s):", {k: round(v, 1) for k, v in compile_seconds.items()})
    print(f"  dynamo stats after the first pass: {compiles_after_first}; after a second pass: {frames}")
    print(f"  graph breaks: {sum(result['graph_breaks'].values())} ({len(result['graph_breaks'])} kinds)")
    print(
        f"  length {middle}: eager {result['eager_step_ms']:.1f} ms, compiled {result['compiled_step_ms']:.1f} ms: "
        f"compiled {result['speedup']:.2f}x eager"
    )
    output = atomic_write_json(results_path(args.results_dir, "torch_compile", args.device), result)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
