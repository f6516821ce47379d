"""Prior samples against aggregate-posterior samples: how diverse, how novel, how fluent.

    python benchmarks/samplers.py --model outputs/demo --lm LM_FOLDER [--num_samples 1000] [--components 8 16 32]

For each sampler (the prior N(0, I); the model's saved aggregate-posterior mixture, where it has one; and, for each
`--components K`, a mixture of K components fitted here, seed 0, on the posterior means of the model's training
texts, read as its training_config.yaml says, not saved), decodes `--num_samples` latents (greedily, or by nucleus
sampling with `--top_p`) and reports: distinct-1/2 (distinct n-grams over all n-grams of
the samples, Li et al., 2016), the share of samples that exactly copy a training text, the mean length in words,
and fluency: the perplexity that a language model trained on the same training texts gives the samples. The LM
(`--lm`) is a folder of this package, e.g. a `vae-lstm` model trained by train.py with the demo's settings
(`training/train.py --config demo --preset vae-lstm --output_dir LM_FOLDER`), whose KL is under a nat, so it is
effectively a language model; its perplexity here is exp(IW-NLL / predicted tokens) with `--iw_samples` importance
samples (an upper bound on its NLL, close to it for so small a KL), words and `<eos>` counted. A last sampler row
decodes the posterior modes of the first `--num_samples` training texts (their reconstructions): no sampler of
latents gives more diverse texts under the same decoding than the decoder makes of the training texts' own latents.

Copies are counted against the whole of the model's E2E training split (`train_split` of its training_config.yaml,
its held-out tenth included; delexicalised if the model was), and the reference is the first `--num_samples` texts of E2E's test split: their own distinct-1/2 and perplexity. Every text
is compared in the model's view of it (its tokenizer's words, lower-cased, rare words as `<unk>`), the view the
samples are in. Prints a table and writes RESULTS_DIR/samplers-DEVICE.json (samplers-top-p-P-DEVICE.json).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import torch
import yaml
from environment import add_common_arguments, check_device, describe, results_path
from transformers import AutoModel, AutoTokenizer

import modeling_twrvae  # noqa: F401  (registers the model classes)
from modeling_twrvae.data.e2e import load_e2e, was_delexicalized
from modeling_twrvae.file_utils import atomic_write_json
from modeling_twrvae.generation_twrvae import decode_text
from modeling_twrvae.metrics.likelihood import likelihoods
from modeling_twrvae.metrics.text import distinct_n

GOAL = "aggregate distinct-2 within 20% of the held-out texts', at most 5% exact copies, perplexity <= the prior's"


def model_view(texts: list[str], tokenizer, config, max_length: int | None) -> list[str]:
    """Each text as the model sees it: its tokenizer's words (lower-cased, `<unk>` for rare ones)."""
    options = {"truncation": True, "max_length": max_length} if max_length else {}
    ids = tokenizer(texts, **options)["input_ids"]
    return [" ".join(text.split()) for text in decode_text(tokenizer, ids, config)]


def fitting_texts(model_dir: str, data_dir: str, fallback: list[str]) -> tuple[list[str], str]:
    """The texts train.py fitted the model on (its training_config.yaml's data, the validation part held out), as
    `--aggregate_posterior_components` fits them; the whole development split where that config cannot be read."""
    from modeling_twrvae.trainer.arguments import parse_args_and_task

    config = Path(model_dir) / "training_config.yaml"
    try:
        _, task = parse_args_and_task(["--config", str(config), "--data_dir", data_dir, "--output_dir", model_dir])
        return list(task.tokenizer_texts(task.load_splits()["train"])), "train.py's training split"
    except (SystemExit, Exception):  # a config of another version, or no config: the split it was taken from
        return fallback, "E2E development split"


def perplexity(lm, lm_tokenizer, texts: list[str], iw_samples: int, batch_size: int) -> float:
    ids = [row for row in lm_tokenizer(texts)["input_ids"]]
    result = likelihoods(lm, ids, iw_samples=iw_samples, batch_size=batch_size, samples_per_pass=iw_samples,
                         seed=0, progress=False)  # fmt: skip
    return math.exp(float(result.iw_nll.sum()) / float(result.num_predicted_tokens.sum()))


def measure(name, texts, training, lm, lm_tokenizer, args) -> dict:
    words = [text.split() for text in texts]
    return {
        "sampler": name,
        "num_texts": len(texts),
        "distinct_1": distinct_n(words, 1),
        "distinct_2": distinct_n(words, 2),
        "distinct_texts": len(set(texts)) / len(texts),
        "copies_of_training_texts": sum(text in training for text in texts) / len(texts),
        "mean_length": sum(map(len, words)) / len(words),
        "lm_perplexity": perplexity(lm, lm_tokenizer, texts, args.iw_samples, args.lm_batch_size),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="outputs/demo", help="A folder written by training/train.py (E2E).")
    parser.add_argument("--lm", required=True, help="The language model's folder (see above).")
    parser.add_argument("--num_samples", type=int, default=1000)
    parser.add_argument("--components", type=int, nargs="*", default=[], help="Also fit mixtures of K components.")
    parser.add_argument("--covariance", choices=["diagonal", "full"], default="diagonal", help="Of those mixtures.")
    parser.add_argument("--iw_samples", type=int, default=10, help="Importance samples of the LM's IW-NLL.")
    parser.add_argument("--lm_batch_size", type=int, default=50)
    parser.add_argument("--max_new_tokens", type=int, default=60)
    parser.add_argument("--top_p", type=float, help="Decode by nucleus sampling with this p (default: greedy).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data_dir", default=os.environ.get("TWRVAE_DATA_DIR", "../shared/data"))
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    check_device(args.device)
    if args.num_samples < 1:
        parser.error(f"--num_samples must be >= 1, got {args.num_samples}.")
    started = time.perf_counter()
    model = AutoModel.from_pretrained(args.model).to(args.device).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    lm = AutoModel.from_pretrained(args.lm).to(args.device).eval()
    lm_tokenizer = AutoTokenizer.from_pretrained(args.lm)
    config_file = Path(args.model) / "training_config.yaml"
    settings = yaml.safe_load(config_file.read_text()) if config_file.is_file() else {}
    max_length = settings.get("max_length")
    delexicalized = was_delexicalized(args.model)
    # the model's own training split ("validation" for the earlier demo, "validation+test[1012:]" now)
    train_split = settings.get("train_split") or "validation"
    raw_training = list(load_e2e(train_split, args.data_dir, delexicalized=delexicalized)["text"])
    training_view = model_view(raw_training, tokenizer, model.config, max_length)
    training = set(training_view)
    held_out = list(load_e2e("test", args.data_dir, delexicalized=delexicalized)["text"])[: args.num_samples]

    fit_on, fit_what = fitting_texts(args.model, args.data_dir, raw_training)
    samplers = [("prior", None)]
    if model.aggregate_posterior is not None:
        samplers.append((f"aggregate (saved, K={model.aggregate_posterior.num_components})", None))
    for k in args.components:
        samplers.append((f"aggregate (K={k}, {args.covariance})", k))
    decoding = {} if args.top_p is None else {"do_sample": True, "top_p": args.top_p}
    rows = []
    for name, k in samplers:
        if k is not None:
            model.fit_aggregate_posterior(
                fit_on, tokenizer, num_components=k, seed=0, max_length=max_length, covariance=args.covariance
            )
        torch.manual_seed(args.seed)  # for --top_p
        generator = torch.Generator(device=args.device).manual_seed(args.seed)
        texts = []
        for start in range(0, args.num_samples, 200):
            count = min(200, args.num_samples - start)
            texts += model.sample(count, tokenizer, generator=generator, sampler="prior" if name == "prior" else
                                  "aggregate", max_new_tokens=args.max_new_tokens, **decoding)  # fmt: skip
        rows.append({**measure(name, texts, training, lm, lm_tokenizer, args), "examples": texts[:5]})
        if k is not None:
            rows[-1]["mixture"] = model.aggregate_posterior.settings
    # the ceiling of any latent sampler under this decoding: the training texts' own posterior modes, decoded
    torch.manual_seed(args.seed)
    sources, reconstructions = fit_on[: args.num_samples], []
    for start in range(0, len(sources), 200):
        reconstructions += model.reconstruct(sources[start : start + 200], tokenizer,
                                             max_new_tokens=args.max_new_tokens, **decoding)  # fmt: skip
    rows.append({**measure("reconstructions of training texts", reconstructions, training, lm, lm_tokenizer, args),
                 "examples": reconstructions[:5]})  # fmt: skip
    reference = model_view(held_out, tokenizer, model.config, max_length)
    rows.append({**measure("held-out texts (E2E test)", reference, training, lm, lm_tokenizer, args),
                 "examples": reference[:5]})  # fmt: skip

    held = rows[-1]
    how = "greedy" if args.top_p is None else f"top-p {args.top_p}"
    print(f"\n{args.model}: {args.num_samples} samples per sampler ({how}); LM {args.lm} (IW-NLL, k={args.iw_samples})")
    header = f"{'sampler':<34} {'distinct-1':>10} {'distinct-2':>10} {'vs held-out':>11} {'copies':>7} {'length':>7}"
    print(header + f" {'LM PPL':>7}")
    for row in rows:
        ratio = row["distinct_2"] / held["distinct_2"] if held["distinct_2"] else float("nan")
        row["distinct_2_vs_held_out"] = ratio
        print(f"{row['sampler']:<34} {row['distinct_1']:>10.3f} {row['distinct_2']:>10.3f} {ratio:>11.2f} "
              f"{row['copies_of_training_texts']:>7.1%} {row['mean_length']:>7.1f} {row['lm_perplexity']:>7.2f}")  # fmt: skip
    print(f"goal: {GOAL}")
    result = {
        "benchmark": "samplers",
        **describe(args.device),
        "model": args.model,
        "lm": args.lm,
        "num_samples": args.num_samples,
        "decoding": how,
        "fluency": f"exp(IW-NLL / predicted tokens) under --lm, k={args.iw_samples}",
        "delexicalized": delexicalized,
        "mixtures_fitted_on": f"{len(fit_on)} texts, {fit_what}",
        "goal": GOAL,
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    name = "samplers" + ("" if args.top_p is None else f"-top-p-{args.top_p:g}")
    name += "-full" if args.components and args.covariance == "full" else ""
    output = atomic_write_json(results_path(args.results_dir, name, args.device), result)
    print(f"wrote {output}")
    return result


if __name__ == "__main__":
    main()
