"""How long importance-weighted NLL takes on the PTB test split, and what the opt-in bf16 output layer changes.

    python benchmarks/iw_nll_speed.py [--device cpu|cuda] [--quick] [--model_name_or_path DIR]

Times `modeling_twrvae.metrics.likelihood.likelihoods` at the paper's TWR-VAE sizes (embedding 512, hidden 256, latent 32,
10k vocabulary) on the first --sentences test sentences, for k = 50 and 500 samples per sentence, exact (fp32, the
default) and, where bf16 has kernels (GPUs, CPUs with AVX-512/AMX), with `output_layer_dtype=torch.bfloat16`; and
projects each to the whole split (3,761 sentences). It also times the path this package took before (sentence
repeated for every sample, no sharing) on the same sentences, in the same process.

The bf16 deviation, |IW-NLL(bf16) - IW-NLL(fp32)| per sentence, is measured on --deviation_sentences (>= 200)
sentences. Random weights give near-uniform softmaxes that hide rounding, so without --model_name_or_path the
weights are spread to trained-like scales (posteriors that differ between sentences, confident softmaxes); a trained
model is the better judge. The option is worth offering only if the mean deviation stays under 0.05 nats.
Prints tables, writes benchmarks/results/iw_nll_speed-DEVICE.json.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path

import torch
from environment import add_common_arguments, check_device, describe, results_path

import modeling_twrvae.metrics.likelihood as evaluation
from modeling_twrvae import TWRVAEConfig, TWRVAEModel, train_tokenizer
from modeling_twrvae.file_utils import atomic_write_json
from modeling_twrvae.trainer.memory import reuse_freed_memory
from modeling_twrvae.trainer.precision import cpu_supports_bf16

PTB_TEST_SENTENCES = 3761
DEVIATION_LIMIT = 0.05


def spread_weights(model: TWRVAEModel) -> TWRVAEModel:
    """Random weights at the scales of a trained model that uses z (see the docstring)."""
    with torch.no_grad():
        model.encoder.embed_tokens.weight.mul_(30.0)
        model.encoder.mean.weight.mul_(30.0)
        model.encoder.logvar.bias.fill_(-2.0)
        if model.config.decoder_init == "linear":
            model.decoder.init_state.weight.mul_(20.0)
        model.decoder.lm_head.weight.mul_(20.0)
    return model


@contextlib.contextmanager
def without_sharing():
    """The path before sentences were shared between their samples: each sentence repeated for `nn.LSTM`."""
    original = evaluation._can_share_sentences
    evaluation._can_share_sentences = lambda model, input_ids: False
    try:
        yield
    finally:
        evaluation._can_share_sentences = original


def timed(model, ids, k, batch_size, per_pass, device, dtype=None):
    start = time.perf_counter()
    result = evaluation.likelihoods(
        model, ids, k, batch_size, per_pass, seed=0, progress=False, output_layer_dtype=dtype
    )
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--data_dir", default=os.environ.get("TWRVAE_DATA_DIR", "../shared/data"))
    parser.add_argument("--model_name_or_path", help="A trained model (with its tokenizer) instead of random weights.")
    parser.add_argument("--sentences", type=int, help="Sentences timed (default 40; 8 on CPU / 200 on GPU if --quick).")
    parser.add_argument("--samples", type=int, nargs="+", default=[50, 500], help="k values timed.")
    parser.add_argument("--batch_size", type=int, default=4, help="Sentences scored together.")
    parser.add_argument("--samples_per_pass", type=int, default=125)
    parser.add_argument("--deviation_sentences", type=int, default=200)
    parser.add_argument("--deviation_samples", type=int, default=50, help="k for the bf16 deviation.")
    args = parser.parse_args(argv)
    check_device(args.device)
    if args.device == "cpu":
        reuse_freed_memory()  # as training/evaluate.py does
    sentences = args.sentences or ((200 if args.device == "cuda" else 8) if args.quick else 40)

    data = Path(args.data_dir) / "ptb"
    test = [line.strip() for line in (data / "ptb.test.txt").read_text().splitlines() if line.strip()]
    torch.manual_seed(0)
    if args.model_name_or_path:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path)
        model = TWRVAEModel.from_pretrained(args.model_name_or_path)
    else:
        tokenizer = train_tokenizer((data / "ptb.valid.txt").read_text().splitlines(), vocab_size=10000)
        model = spread_weights(TWRVAEModel(TWRVAEConfig.from_preset("twr-vae", vocab_size=10000)))
    model = model.to(args.device).eval()
    ids = tokenizer(test[:sentences])["input_ids"]
    bf16_ok = args.device == "cuda" or cpu_supports_bf16()

    rows = []
    for k in args.samples:
        per_pass = min(args.samples_per_pass, k)
        variants = {"exact": (None, contextlib.nullcontext)}
        variants["exact, before sharing"] = (None, without_sharing)
        if bf16_ok:
            variants["bf16 output layer"] = (torch.bfloat16, contextlib.nullcontext)
        for name, (dtype, context) in variants.items():
            with context():
                timed(model, ids[: args.batch_size], k, args.batch_size, per_pass, args.device, dtype)  # warm-up
                seconds, _ = timed(model, ids, k, args.batch_size, per_pass, args.device, dtype)
            rows.append(
                {
                    "iw_samples": k,
                    "variant": name,
                    "sentences": len(ids),
                    "seconds": seconds,
                    "sentences_per_second": len(ids) / seconds,
                    "projected_minutes_ptb_test": PTB_TEST_SENTENCES * seconds / len(ids) / 60,
                }
            )

    deviation = None
    if bf16_ok:
        deviation_ids = tokenizer(test[: args.deviation_sentences])["input_ids"]
        k = args.deviation_samples
        _, exact = timed(model, deviation_ids, k, args.batch_size, min(args.samples_per_pass, k), args.device)
        _, low = timed(
            model, deviation_ids, k, args.batch_size, min(args.samples_per_pass, k), args.device, torch.bfloat16
        )
        difference = (low.iw_nll.double() - exact.iw_nll.double()).abs()
        deviation = {
            "sentences": len(deviation_ids),
            "iw_samples": k,
            "mean_abs_nats_per_sentence": float(difference.mean()),
            "max_abs_nats_per_sentence": float(difference.max()),
            "mean_iw_nll_exact": float(exact.iw_nll.double().mean()),
            "mean_iw_nll_bf16": float(low.iw_nll.double().mean()),
            "offered": float(difference.mean()) < DEVIATION_LIMIT,
        }

    tokens = sum(len(row) - 1 for row in ids)
    weights = args.model_name_or_path or "random weights at trained-like scales"
    print(
        f"\nIW-NLL, TWR-VAE paper sizes (10k vocabulary, {weights}), first {len(ids)} PTB test sentences "
        f"({tokens} predicted tokens), {args.device} ({describe(args.device)['device']}), "
        f"{torch.get_num_threads()} threads, {args.batch_size} sentences x {args.samples_per_pass} samples per pass"
    )
    print(f"{'k':>5} {'variant':<24} {'seconds':>9} {'sent/s':>8} {'projected PTB test (min)':>26}")
    for row in rows:
        print(
            f"{row['iw_samples']:>5} {row['variant']:<24} {row['seconds']:>9.1f} {row['sentences_per_second']:>8.2f} "
            f"{row['projected_minutes_ptb_test']:>26.1f}"
        )
    if deviation:
        print(
            f"bf16 output layer vs exact on {deviation['sentences']} sentences (k = {deviation['iw_samples']}): "
            f"mean |difference| {deviation['mean_abs_nats_per_sentence']:.4f} nats/sentence, max "
            f"{deviation['max_abs_nats_per_sentence']:.4f} -> "
            + ("under" if deviation["offered"] else "NOT under")
            + f" the {DEVIATION_LIMIT} limit"
        )
    else:
        print(
            "bf16 output layer skipped: this CPU has no oneDNN bf16 kernels (needs AVX-512 or AMX), so bf16 products "
            "are emulated and slower than fp32; run with --device cuda or on such a CPU."
        )
    result = {
        "benchmark": "iw_nll_speed",
        **describe(args.device),
        "weights": weights,
        "predicted_tokens": tokens,
        "batch_size": args.batch_size,
        "samples_per_pass": args.samples_per_pass,
        "rows": rows,
        "bf16_deviation": deviation,
    }
    output = atomic_write_json(results_path(args.results_dir, "iw_nll_speed", args.device), result)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
