"""Measure a trained model on a corpus with honest metrics (modeling_twrvae/metrics/).

    python training/evaluate.py --model_name_or_path outputs/demo --dataset e2e --split test \
        --data_dir ../shared/data --iw_samples 500 --output_file outputs/demo/test_results.json --seed 0

Writes the JSON results, a Markdown table beside them (`.md`), and a PNG of interpolation ROUGE (like TWR-VAE's
Figure 2), and prints a summary with reconstructions, prior samples and one interpolation. A dialogue model
(`twr-cvae`, `cvae`) is evaluated by modeling_twrvae/commands/evaluate_dialogue.py instead (see there for its arguments).
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel

from modeling_twrvae import check_tokenizer
from modeling_twrvae.commands import evaluate_dialogue, evaluate_sentiment
from modeling_twrvae.commands.evaluate_sentiment import measure_sentiment
from modeling_twrvae.commands.output_files import check_output_files
from modeling_twrvae.commands.tokenizer_files import check_tokenizer_json, load_tokenizer
from modeling_twrvae.data.corpora import CORPORA, DATA_DIR_ENV, check_local_path, load_corpus
from modeling_twrvae.data.e2e import load_e2e, was_delexicalized
from modeling_twrvae.file_utils import atomic_write_json, atomic_write_text, weights_fingerprint
from modeling_twrvae.generation_twrvae import decode_text
from modeling_twrvae.metrics.attribute_shift import measure_attribute_shift
from modeling_twrvae.metrics.e2e_facts import FACTS, facts_kept
from modeling_twrvae.metrics.likelihood import (
    CONVENTIONS,
    MIN_SENTENCES_FOR_LATENT_STATISTICS,
    likelihoods,
    summarize_likelihoods,
)
from modeling_twrvae.metrics.text import (
    choose_pairs,
    distinct_along_paths,
    distinct_n,
    interpolation_rouge,
    reconstruction_quality,
)
from modeling_twrvae.trainer.errors import run_main
from modeling_twrvae.trainer.memory import reuse_freed_memory
from modeling_twrvae.trainer.plots import plot_interpolation_rouge

TABLE_KEYS = [
    ("iw_nll", "IW-NLL"),
    ("iw_ppl", "IW-PPL"),
    ("elbo_nll", "-ELBO"),
    ("reconstruction_loss", "reconstruction"),
    ("kl_decoded", "KL (decoded z)"),
    ("kl_regularizer", "KL regulariser"),
    ("paper_nll", "paper NLL"),
    ("paper_ppl", "paper PPL"),
    ("mutual_information", "MI"),
    ("active_units", "active units"),
    ("reconstruction_bleu", "rec. BLEU"),
    ("reconstruction_bleu_other_input", "rec. BLEU vs another input"),
    ("reconstruction_exact_match", "rec. exact"),
    ("reconstruction_token_accuracy", "rec. token acc."),
    ("reconstruction_distinct", "rec. distinct"),
    ("facts_kept_mean", "facts kept"),
    ("facts_kept_chance_mean", "facts kept by chance"),
    ("interpolation_distinct", "interp. distinct"),
    ("prior_distinct_1", "distinct-1"),
    ("prior_distinct_2", "distinct-2"),
    ("prior_mean_length", "sample length"),
    ("aggregate_distinct_2", "distinct-2 (aggregate sampler)"),
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", required=True, help="A folder saved by training/train.py, or a Hub id.")
    parser.add_argument("--trust_remote_code", action="store_true", help="Load the model's own code (package absent).")
    parser.add_argument("--tokenizer_name", help="Default: the tokenizer saved with the model.")
    parser.add_argument("--dataset", choices=sorted(CORPORA), help="A corpus known by name, read from --data_dir.")
    parser.add_argument("--split", default="test", help="Split of --dataset to evaluate on.")
    parser.add_argument("--data_dir", help=f"Folder of the named corpora (default: ${DATA_DIR_ENV}).")
    parser.add_argument("--validation_file", help="A local file to evaluate on instead of --dataset.")
    parser.add_argument("--dataset_name", help="A Hub dataset to evaluate on.")
    parser.add_argument("--dataset_config_name")
    parser.add_argument("--text_column", help="Column holding the text in CSV, JSON or Hub data.")
    parser.add_argument("--max_samples", type=int, help="Evaluate on the first N texts only.")
    parser.add_argument(
        "--max_length", type=int, help="Truncate longer texts (tokens, with specials; default: the tokenizer's limit)."
    )
    parser.add_argument("--iw_samples", type=int, default=500, help="Importance samples per sentence (k).")
    parser.add_argument("--per_device_eval_batch_size", type=int, default=4, help="Sentences scored together.")
    parser.add_argument("--samples_per_pass", type=int, default=125, help="Of the k samples, decoded per pass.")
    parser.add_argument("--generation_batch_size", type=int, default=64)
    parser.add_argument("--max_new_tokens", type=int, default=60)
    parser.add_argument("--num_prior_samples", type=int, default=100)
    parser.add_argument("--num_interpolation_pairs", type=int, default=20)
    parser.add_argument("--interpolation_steps", type=int, default=11)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--refine_steps",
        type=int,
        help="SA-VAE: refine each posterior by this many steps (the model's svi_* settings) and use the refined one "
        "as the proposal of the IW-NLL and the ELBO. Default: the model's `svi_steps` (0 for every other preset).",
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--output_file",
        help="JSON results, with a Markdown table (.md) and a plot (.png) of the same name beside them (default: "
        "eval_<split>.json in the model folder).",
    )
    parser.add_argument(
        "--overwrite_output_file",
        action="store_true",
        help="Replace --output_file (and its .md and .png) if they exist. A model's own files, the evaluated data "
        "and anything inside a training checkpoint are never replaced.",
    )
    parser.add_argument("--no_progress", action="store_true", help="No progress bars.")
    args = parser.parse_args(argv)
    for name, minimum in MINIMUMS.items():
        value = getattr(args, name)
        if value is not None and value < minimum:
            parser.error(f"--{name} must be at least {minimum}, got {value}.")
    if not 0 <= args.seed < 2**32:
        parser.error(f"--seed must be in [0, 2**32 - 1], got {args.seed}.")
    return args


MINIMUMS = {
    "max_samples": 1,
    "max_length": 3,  # <bos>, a word, <eos>
    "iw_samples": 1,
    "per_device_eval_batch_size": 1,
    "samples_per_pass": 1,
    "generation_batch_size": 1,
    "max_new_tokens": 1,
    "num_prior_samples": 1,
    "num_interpolation_pairs": 0,
    "interpolation_steps": 2,
}


class NonFiniteMetricError(ValueError):
    pass


def non_finite_metrics(results: dict) -> list[str]:
    return [key for key, value in results.items() if isinstance(value, float) and not math.isfinite(value)]


def _generate_text(model, tokenizer, latents, batch_size, max_new_tokens):
    texts = []
    for start in range(0, len(latents), batch_size):
        chunk = latents[start : start + batch_size].to(model.device)
        texts += model.decode_latents(chunk, tokenizer, do_sample=False, max_new_tokens=max_new_tokens)
    return texts


def load_model(path: str, trust_remote_code: bool):
    """`AutoModel.from_pretrained`, with what a damaged config.json does to it as a ValueError (one `error:` line)."""
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except TypeError as error:  # a value of the wrong type ("dropout": "0.5") that the config's checks let through
        raise ValueError(
            f"--model_name_or_path {path}: config.json holds a value of the wrong type ({error})."
        ) from error
    try:
        return AutoModel.from_pretrained(path, config=config, trust_remote_code=trust_remote_code)
    except (RuntimeError, MemoryError, OverflowError) as error:  # sizes that cannot be allocated
        message = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(
            f"--model_name_or_path {path}: the model could not be built from its config.json ({message}); its sizes "
            "are damaged or too large for this machine's memory."
        ) from error


def evaluate(args) -> dict:
    torch.manual_seed(args.seed)
    tokenizer_source = args.tokenizer_name or args.model_name_or_path
    check_local_path(args.model_name_or_path, "--model_name_or_path", needs_tokenizer=not args.tokenizer_name)
    if args.tokenizer_name:
        check_local_path(args.tokenizer_name, "--tokenizer_name")
    # before the model, whose loading parses the model folder's tokenizer.json too (with a bare Exception)
    check_tokenizer_json(tokenizer_source)
    check_tokenizer_json(args.model_name_or_path, required=False)
    # which weights these results belong to (None for a Hub id): publish.py puts them only on their card
    fingerprint = weights_fingerprint(args.model_name_or_path)
    model = load_model(args.model_name_or_path, args.trust_remote_code).to(args.device).eval()
    if weights_fingerprint(args.model_name_or_path) != fingerprint:
        # train.py replaced the weights while they loaded: the results would carry another model's fingerprint
        raise ValueError(
            f"The weights in {args.model_name_or_path} changed while they were loaded (a training run is saving "
            "into the folder): run the evaluation again once it has finished saving."
        )
    tokenizer = load_tokenizer(tokenizer_source)
    check_tokenizer(tokenizer, model.config)

    # E2E from its CSVs is read with its meaning representations, to count the facts reconstructions keep
    with_mrs = args.dataset == "e2e" and not args.validation_file and (args.data_dir or DATA_DIR_ENV in os.environ)
    delexicalized = was_delexicalized(args.model_name_or_path)
    if delexicalized and not with_mrs:
        raise ValueError(
            f"{args.model_name_or_path} was trained on delexicalised E2E (training_config.yaml: delexicalize: true): "
            "evaluate it with --dataset e2e and --data_dir, so that its inputs are delexicalised the same way."
        )
    if with_mrs:
        data = load_e2e(args.split, args.data_dir, delexicalized=delexicalized)
    else:
        data = load_corpus(
            {"eval": args.split},
            dataset=args.dataset,
            data_dir=args.data_dir,
            files={"eval": args.validation_file},
            dataset_name=args.dataset_name,
            dataset_config_name=args.dataset_config_name,
            text_column=args.text_column,
        )["eval"]
    # a list, not the dataset's Column (datasets >= 4), which the tokenizer does not take
    texts = list(data["text"][: args.max_samples] if args.max_samples else data["text"])
    ids = tokenizer(texts, verbose=False)["input_ids"]  # longer texts are cut here, keeping <eos>, and counted
    max_length = args.max_length or (tokenizer.model_max_length if tokenizer.model_max_length < 1e6 else None)
    truncated = 0
    if max_length:
        truncated = sum(len(row) > max_length for row in ids)
        ids = [row[: max_length - 1] + [tokenizer.eos_token_id] if len(row) > max_length else row for row in ids]
        if truncated:
            print(f"{truncated} of {len(ids)} texts were longer than {max_length} tokens and were truncated")
    references = decode_text(tokenizer, ids, model.config)  # the text as the model sees it, <unk> included

    refine_steps = getattr(model.config, "svi_steps", 0) if args.refine_steps is None else args.refine_steps
    if refine_steps < 0:
        raise ValueError(f"--refine_steps must be >= 0, got {refine_steps}.")
    result = likelihoods(
        model,
        ids,
        iw_samples=args.iw_samples,
        batch_size=args.per_device_eval_batch_size,
        samples_per_pass=args.samples_per_pass,
        seed=args.seed,
        progress=not args.no_progress,
        refine_steps=refine_steps,
    )
    metrics = summarize_likelihoods(result, args.iw_samples)
    metrics["refine_steps"] = refine_steps
    bad = non_finite_metrics(metrics)
    if bad:
        broken = sum(int((~torch.isfinite(p)).any()) for p in model.parameters())
        raise NonFiniteMetricError(
            f"The model gives non-finite {', '.join(bad)} on this data"
            + (f"; {broken} of its weight tensors hold NaN or infinite values" if broken else "")
            + ". Its weights are broken (e.g. a diverged run): evaluate an earlier checkpoint."
        )

    reconstructions = _generate_text(
        model, tokenizer, result.posterior_mean, args.generation_batch_size, args.max_new_tokens
    )
    metrics.update(reconstruction_quality(references, reconstructions))
    mrs = list(data["mr"][: len(texts)]) if with_mrs else None
    facts = facts_kept(texts, mrs, reconstructions, seed=args.seed) if mrs else None
    metrics.update(
        facts_kept=facts,
        facts_kept_mean=facts["mean"]["kept"] if facts else None,
        facts_kept_chance_mean=facts["mean"]["chance"] if facts else None,
        delexicalized=delexicalized,
    )

    shift = measure_attribute_shift(
        result.posterior_mean,
        texts,
        reconstructions,
        lambda latents: _generate_text(model, tokenizer, latents, args.generation_batch_size, args.max_new_tokens),
        mrs=mrs,
    )

    prior = model.sample_prior(args.num_prior_samples, generator=torch.Generator().manual_seed(args.seed))
    samples = _generate_text(model, tokenizer, prior.cpu(), args.generation_batch_size, args.max_new_tokens)
    words = [sample.split() for sample in samples]
    metrics.update(
        prior_distinct_1=distinct_n(words, 1),
        prior_distinct_2=distinct_n(words, 2),
        prior_mean_length=sum(map(len, words)) / max(1, len(words)),
    )
    aggregate_samples = None
    if getattr(model, "aggregate_posterior", None) is not None:  # a mixture fitted by train.py: its samples too
        drawn = model.sample_aggregate_posterior(
            args.num_prior_samples, generator=torch.Generator().manual_seed(args.seed)
        )
        aggregate_samples = _generate_text(
            model, tokenizer, drawn.cpu(), args.generation_batch_size, args.max_new_tokens
        )
        words = [sample.split() for sample in aggregate_samples]
        metrics.update(aggregate_distinct_1=distinct_n(words, 1), aggregate_distinct_2=distinct_n(words, 2))

    sentiment = None
    if args.dataset == "yelp-sentiment" and not args.validation_file:  # labelled: what the latent does for sentiment
        sentiment = measure_sentiment(
            model,
            tokenizer,
            data_dir=args.data_dir,
            texts=texts,
            labels=list(data["label"][: len(texts)]),
            references=references,
            reconstructions=reconstructions,
            posterior_means=result.posterior_mean,
            samples={"prior": samples, **({"aggregate_posterior": aggregate_samples} if aggregate_samples else {})},
            decode=lambda latents: _generate_text(
                model, tokenizer, latents, args.generation_batch_size, args.max_new_tokens
            ),
            seed=args.seed,
        )

    pairs = choose_pairs(len(ids), args.num_interpolation_pairs, args.seed)
    alphas = torch.linspace(0, 1, args.interpolation_steps)
    paths = []
    for a, b in pairs:
        start, end = result.posterior_mean[a], result.posterior_mean[b]
        latents = (1 - alphas[:, None]) * start + alphas[:, None] * end
        paths.append(_generate_text(model, tokenizer, latents, args.generation_batch_size, args.max_new_tokens))
    rouge = interpolation_rouge([(references[a], references[b]) for a, b in pairs], paths) if pairs else []
    metrics["interpolation_distinct"] = distinct_along_paths(paths) if pairs else None

    return {
        "model": str(args.model_name_or_path),
        "weights_sha256": fingerprint,
        "data": args.validation_file or f"{args.dataset or args.dataset_name}:{args.split}",
        "seed": args.seed,
        "num_truncated": truncated,
        "conventions": CONVENTIONS,
        **metrics,
        "sentiment": sentiment,
        "interpolation": {
            "alphas": alphas.tolist(),
            "rouge": rouge,
            "num_pairs": len(pairs),
            "distinct_sentences": [len(set(path)) for path in paths],
        },
        "examples": {
            "reconstructions": [
                {"input": r, "output": o} for r, o in zip(references[:10], reconstructions[:10], strict=False)
            ],
            "prior_samples": samples[:10],
            "aggregate_samples": aggregate_samples[:10] if aggregate_samples else None,
            "attribute_shift": shift,
            "interpolation": {"start": references[pairs[0][0]], "end": references[pairs[0][1]], "path": paths[0]}
            if pairs
            else None,
        },
    }


def markdown(results: dict) -> str:
    lines = [
        f"Evaluation of `{results['model']}` on {results['data']} ({results['num_sentences']} sentences, "
        f"{results['num_predicted_tokens']} predicted tokens, k = {results['iw_samples']}, seed {results['seed']}).",
        "",
        "| " + " | ".join(title for _, title in TABLE_KEYS) + " |",
        "|" + "---|" * len(TABLE_KEYS),
        "| " + " | ".join(_format(results.get(key)) for key, _ in TABLE_KEYS) + " |",
        "",
        results["conventions"],
    ]
    if results.get("mutual_information") is None or results.get("active_units") is None:
        lines += [
            "",
            f"MI and active units are not measured (null in the JSON): they compare sentences with each other and "
            f"need at least {MIN_SENTENCES_FOR_LATENT_STATISTICS}; this set has {results['num_sentences']}.",
        ]
    if results.get("facts_kept"):
        lines += ["", facts_table(results["facts_kept"])]
    if results.get("sentiment"):
        lines += ["", evaluate_sentiment.markdown(results["sentiment"])]
    rouge = results["interpolation"]["rouge"]
    if rouge:
        lines += [
            "",
            f"Interpolation ROUGE F1, averaged over {results['interpolation']['num_pairs']} pairs:",
            "",
            "| alpha | R-1 start | R-2 start | R-L start | R-1 end | R-2 end | R-L end |",
            "|---|---|---|---|---|---|---|",
        ]
        for alpha, row in zip(results["interpolation"]["alphas"], rouge, strict=True):
            cells = [row[f"{name}_{side}"] for side in ("start", "end") for name in ("rouge1", "rouge2", "rougeL")]
            lines.append(f"| {alpha:.1f} | " + " | ".join(f"{value:.3f}" for value in cells) + " |")
    return "\n".join(lines) + "\n"


def facts_table(facts: dict) -> str:
    """How often reconstructions state their input's E2E facts, beside the chance level, as Markdown."""
    lines = [
        "E2E facts kept: among the inputs that state a fact of their meaning representation, the share whose "
        "reconstruction states the same value; chance: the same share for the reconstruction of a random other input.",
        "",
        "| fact | inputs stating it | kept | chance |",
        "|---|---|---|---|",
    ]
    for fact in (*FACTS, "mean"):
        row = facts[fact]
        name = "mean over the facts stated" if fact == "mean" else fact.replace("_", " ")
        lines.append(f"| {name} | {row['count']} | {_format(row['kept'])} | {_format(row['chance'])} |")
    return "\n".join(lines)


def latent_summary(results: dict) -> str:
    """One line on whether the decoder uses z: collapse shows as one reconstruction for every input."""
    line = (
        f"Latent at work: {results['reconstruction_distinct']:.0%} of {results['num_sentences']} reconstructions are "
        f"distinct, token accuracy {results['reconstruction_token_accuracy']:.1%}, BLEU "
        f"{results['reconstruction_bleu']:.1f}"
    )
    if results.get("reconstruction_bleu_other_input") is not None:
        line += f" (against another input: {results['reconstruction_bleu_other_input']:.1f})"
    if results.get("interpolation_distinct") is not None:
        steps = len(results["interpolation"]["alphas"])
        line += f"; {results['interpolation_distinct']:.1f} distinct sentences along a {steps}-step interpolation"
    return line + "."


def _format(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def output_paths(args) -> list[Path]:
    """The JSON results, and the Markdown table and plot written beside them, checked before the evaluation runs."""
    output = Path(args.output_file or Path(args.model_name_or_path) / f"eval_{args.split}.json")
    if output.suffix != ".json":
        raise ValueError(
            f"--output_file {output} must end in .json: the results are JSON, and their Markdown table and plot are "
            f"written beside them as {output.stem}.md and {output.stem}.png."
        )
    paths = [output, output.with_suffix(".md"), output.with_suffix(".png")]
    if args.dataset == "yelp-sentiment" and not args.validation_file:
        paths.append(transfer_plot(output))
    check_output_files(
        paths, "--output_file", args.overwrite_output_file, "--overwrite_output_file", inputs=(args.validation_file,)
    )
    return paths


def transfer_plot(output: Path) -> Path:
    return output.with_name(f"{output.stem}-transfer.png")


def main(argv=None) -> dict:
    if evaluate_dialogue.wanted(argv):  # a dialogue model: commands/evaluate_dialogue.py has its own metrics
        return evaluate_dialogue.main(argv)
    args = parse_args(argv)
    output = output_paths(args)[0]
    if args.device == "cpu":
        reuse_freed_memory()
    results = evaluate(args)
    bad = non_finite_metrics(results)
    if bad:
        raise NonFiniteMetricError(f"Non-finite results: {', '.join(bad)}; nothing was written.")
    atomic_write_json(output, results)
    atomic_write_text(output.with_suffix(".md"), markdown(results))
    if results["interpolation"]["rouge"]:
        plot_interpolation_rouge(results["interpolation"], output.with_suffix(".png"))
    if results.get("sentiment"):
        evaluate_sentiment.plot_transfer(results["sentiment"], transfer_plot(output))

    print(markdown(results))
    examples = results["examples"]
    print(latent_summary(results) + "\n")
    print("Reconstructions (posterior mode, greedy):")
    for pair in examples["reconstructions"][:5]:
        print(f"  in:  {pair['input']}\n  out: {pair['output']}")
    print("\nPrior samples (greedy):")
    for sample in examples["prior_samples"][:5]:
        print(f"  {sample}")
    if examples.get("aggregate_samples"):
        print("\nAggregate-posterior samples (greedy):")
        for sample in examples["aggregate_samples"][:5]:
            print(f"  {sample}")
    shift = examples.get("attribute_shift")
    if shift:
        print(
            f"\nAttribute shift ({shift['description']}, strength {shift['strength']}): "
            f"{shift['states_target_shifted']:.0%} of {shift['num_texts']} shifted reconstructions state it, against "
            f"{shift['states_target_unshifted']:.0%} unshifted"
        )
        for row in shift["rows"][:3]:
            print(f"  in:      {row['input']}\n  out:     {row['reconstruction']}\n  shifted: {row['shifted']}")
    if examples["interpolation"]:
        print("\nInterpolation (linear, posterior modes):")
        for alpha, text in zip(results["interpolation"]["alphas"], examples["interpolation"]["path"], strict=True):
            print(f"  {alpha:.1f}  {text}")
    print(
        f"\nwrote {output}, {output.with_suffix('.md')}"
        + (", " + str(output.with_suffix(".png")) if results["interpolation"]["rouge"] else "")
    )
    return results


def cli(argv=None) -> None:
    """`training/evaluate.py` and `twrvae evaluate`: `main` with the commands' way of failing (one `error:` line)."""
    run_main(lambda: main(argv))


if __name__ == "__main__":
    cli()
