"""Evaluate a dialogue model (`twr-cvae`, `cvae`) on a dialogue corpus; training/evaluate.py runs this for them.

    python training/evaluate.py --model_name_or_path outputs/dialogue/dailydialog-twr-cvae --dataset dailydialog \
        --split test --data_dir ../shared/data --word_vectors_split validation --max_samples 500 --seed 0

For each (context, response) pair: the honest -ELBO (reconstruction from one sample of q(z | x, c) plus
KL(q(z | x, c) || p(z | c)) of the decoded latent) and `num_responses` responses, each decoded greedily from its own
sample of the prior p(z | c) (the papers' setting). The responses are scored against the reference with the metrics
of modeling_twrvae/metrics/dialogue.py; BOW embedding metrics need word vectors: a word2vec/GloVe text file
(`--word_vectors`), or vectors trained with gensim on a split of the corpus (`--word_vectors_split`, e.g. the one the
model was trained on). Writes JSON and a Markdown table beside it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from transformers import AutoModel, AutoTokenizer

from modeling_twrvae import DialogWAEConfig, IVAEConfig, SeqGANConfig, check_tokenizer
from modeling_twrvae.commands.output_files import check_output_files
from modeling_twrvae.data.dialogue_corpora import DIALOGUE_CORPORA, dialogue_pairs, load_dialogues
from modeling_twrvae.file_utils import atomic_write_json, atomic_write_text, weights_fingerprint
from modeling_twrvae.generation_twrvae import decode_text
from modeling_twrvae.metrics.dialogue import (
    BLEU_DESCRIPTION,
    PAPERS_BLEU_DESCRIPTION,
    WordVectors,
    context_scores,
    corpus_scores,
)
from modeling_twrvae.metrics.likelihood import elbo_summary
from modeling_twrvae.trainer.tasks import DialogueCollator, DialogueTask

TABLE_KEYS = [
    ("bleu_recall", "BLEU-R"),
    ("bleu_precision", "BLEU-P"),
    ("bleu_f1", "BLEU-F1"),
    ("bleu_recall_papers", "BLEU-R (papers')"),
    ("bleu_precision_papers", "BLEU-P (papers')"),
    ("bleu_f1_papers", "BLEU-F1 (papers')"),
    ("bow_average", "BOW-A"),
    ("bow_extrema", "BOW-E"),
    ("bow_greedy", "BOW-G"),
    ("intra_distinct_1", "intra-dist1"),
    ("intra_distinct_2", "intra-dist2"),
    ("inter_distinct_1", "inter-dist1"),
    ("inter_distinct_2", "inter-dist2"),
    ("elbo_nll", "-ELBO"),
    ("elbo_ppl", "PPL"),
    ("kl_decoded", "KL (decoded z)"),
]
CONVENTIONS = (
    "-ELBO: nats per response, reconstruction of its words and <eos> (not <bos>) from one sample of q(z|x,c) plus "
    "KL(q(z|x,c) || p(z|c)) of the decoded latent, averaged over responses; PPL = exp(total / predicted tokens). "
    "Responses: greedy decoding, each from its own sample of p(z|c). BLEU: "
    + BLEU_DESCRIPTION
    + ". BLEU (papers'): "
    + PAPERS_BLEU_DESCRIPTION
    + ". BOW-A/E/G: max over a context's responses (DialogWAE's script), averaged over contexts; *_mean: mean over "
    "responses. Distinct: intra = per response, inter = over a context's responses together, averaged over contexts."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", required=True)
    parser.add_argument("--trust_remote_code", action="store_true")
    parser.add_argument("--tokenizer_name", help="Default: the tokenizer saved with the model.")
    parser.add_argument("--dataset", choices=sorted(DIALOGUE_CORPORA), help="A dialogue corpus under --data_dir.")
    parser.add_argument("--split", default="test")
    parser.add_argument("--data_dir")
    parser.add_argument("--validation_file", help="A local dialogue file (.utts.txt or .jsonl) instead of --dataset.")
    parser.add_argument("--max_samples", type=int, help="Evaluate the first N (context, response) pairs only.")
    parser.add_argument("--max_length", type=int, default=1000, help="Cut longer utterances (tokens, with specials).")
    parser.add_argument("--num_responses", type=int, default=10, help="Responses per context (the papers: 10).")
    parser.add_argument("--max_new_tokens", type=int, default=40)
    parser.add_argument("--generation_batch_size", type=int, default=32, help="Contexts per generate() call.")
    parser.add_argument("--per_device_eval_batch_size", type=int, default=64)
    parser.add_argument("--word_vectors", help="word2vec- or GloVe-format text file for the BOW embedding metrics.")
    parser.add_argument(
        "--word_vectors_split", help="Else: train word2vec (gensim) on this split of --dataset, e.g. the training one."
    )
    parser.add_argument("--word_vectors_size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--output_file",
        help="JSON results, with a Markdown table (.md) of the same name beside them (default: eval_<split>.json in "
        "the model folder).",
    )
    parser.add_argument(
        "--overwrite_output_file",
        action="store_true",
        help="Replace --output_file (and its .md) if they exist; a model's own files, the evaluated data and "
        "anything inside a training checkpoint are never replaced.",
    )
    return parser


ADVERSARIAL_CONVENTIONS = (
    "DialogWAE and iVAE: no closed-form KL and so no -ELBO; the reconstruction is -log p(x|z,c) of a response's words and <eos> for one "
    "draw of the posterior's z, per response and per token, not a bound on the likelihood. SeqGAN: no latent; the "
    "reconstruction is its exact -log p(x|c); its responses are sampled token by token. The rest as below. "
)


@torch.no_grad()
def likelihoods(model, encoded, collator, batch_size: int, seed: int) -> dict:
    sums = torch.zeros(4, dtype=torch.float64)
    count = tokens = 0
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    loader = DataLoader(encoded.remove_columns("length"), batch_size=batch_size, collate_fn=collator)
    adversarial = hasattr(model, "adversarial_update")  # DialogWAE, iVAE, SeqGAN: no closed-form KL, no -ELBO
    for batch in loader:
        batch = {key: value.to(model.device) for key, value in batch.items()}
        if adversarial:
            output = model(**batch, reduction="none")
            sums[0] += output.reconstruction_loss.double().sum().cpu()
            count += batch["input_ids"].shape[0]
            tokens += int((batch["attention_mask"].sum(1) - 1).sum())
            continue
        output = model(**batch, sample_posterior=True, reduction="none")
        bow_loss = output.bow_loss if output.bow_loss is not None else torch.zeros_like(output.kl_decoded)
        sums += (
            torch.stack([output.reconstruction_loss, output.kl_decoded, output.kl_regularizer, bow_loss])
            .double()
            .sum(1)
            .cpu()
        )
        count += batch["input_ids"].shape[0]
        tokens += int((batch["attention_mask"].sum(1) - 1).sum())
    torch.random.set_rng_state(generator_state)
    if adversarial:  # -log p(x | z, c) for a posterior draw: no bound on the likelihood, said as such
        return {
            "reconstruction_loss": (sums[0] / count).item(),
            "reconstruction_token_nll": (sums[0] / tokens).item(),
            "num_responses_scored": count,
            "num_predicted_tokens": tokens,
        }
    return {
        **elbo_summary(sums, count, tokens),
        "bow_loss": (sums[3] / count).item(),
        "num_responses_scored": count,
        "num_predicted_tokens": tokens,
    }


@torch.no_grad()
def generate_responses(model, tokenizer, encoded, collator, args) -> list[list[str]]:
    generator = torch.Generator(device=model.device).manual_seed(args.seed)
    responses = []
    loader = DataLoader(encoded.remove_columns("length"), batch_size=args.generation_batch_size, collate_fn=collator)
    for batch in loader:
        context = {key: value.to(model.device) for key, value in batch.items() if key.startswith("context")}
        if hasattr(model, "sample_responses"):  # DialogWAE, iVAE, SeqGAN: no `generate`, their own decoding
            sequences = model.sample_responses(
                **context, num_return_sequences=args.num_responses, max_new_tokens=args.max_new_tokens,
                generator=generator,
            )  # fmt: skip
        else:
            sequences = model.generate(
                **context,
                num_return_sequences=args.num_responses,
                do_sample=False,
                max_new_tokens=args.max_new_tokens,
                generator=generator,
            )
        texts = decode_text(tokenizer, sequences, model.config)
        responses += [texts[i : i + args.num_responses] for i in range(0, len(texts), args.num_responses)]
    return responses


def word_vectors(args, tokenizer, model_config) -> tuple[WordVectors | None, str | None]:
    if args.word_vectors:
        return WordVectors.load(args.word_vectors), args.word_vectors
    if not args.word_vectors_split:
        return None, None
    dialogues = load_dialogues({"vectors": args.word_vectors_split}, dataset=args.dataset, data_dir=args.data_dir)
    turns = [turn for row in dialogues["vectors"]["turns"] for turn in row]
    sentences = [text.split() for text in decode_text(tokenizer, tokenizer(turns)["input_ids"], model_config)]
    vectors = WordVectors.train(sentences, vector_size=args.word_vectors_size, seed=args.seed)
    return (
        vectors,
        f"word2vec (gensim, skip-gram, {args.word_vectors_size} dims) trained on {args.dataset}:{args.word_vectors_split}",
    )


def evaluate(args) -> dict:
    torch.manual_seed(args.seed)
    started = time.time()
    # which weights these results belong to (None for a Hub id): training/publish.py puts them only on their card
    fingerprint = weights_fingerprint(args.model_name_or_path)
    model = AutoModel.from_pretrained(args.model_name_or_path, trust_remote_code=args.trust_remote_code)
    model = model.to(args.device).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer_name or args.model_name_or_path)
    check_tokenizer(tokenizer, model.config)

    dialogues = load_dialogues(
        {"eval": args.split}, dataset=args.dataset, data_dir=args.data_dir, files={"eval": args.validation_file}
    )["eval"]
    pairs = dialogue_pairs(dialogues, context_window=model.config.context_window)
    if args.max_samples:
        pairs = pairs.select(range(min(args.max_samples, len(pairs))))
    encoded, truncated = DialogueTask.tokenize(pairs, tokenizer, args.max_length, "evaluation")
    collator = DialogueCollator(tokenizer)

    metrics = likelihoods(model, encoded, collator, args.per_device_eval_batch_size, args.seed)
    responses = generate_responses(model, tokenizer, encoded, collator, args)
    references = decode_text(tokenizer, encoded["input_ids"], model.config)  # as the model sees them, <unk> included
    vectors, vectors_source = word_vectors(args, tokenizer, model.config)
    per_context = [
        context_scores([response.split() for response in group], reference.split(), vectors)
        for group, reference in zip(responses, references, strict=True)
    ]
    metrics.update(corpus_scores(per_context))
    contexts = [decode_text(tokenizer, turns, model.config) for turns in encoded.select(range(3))["context_input_ids"]]
    return {
        "model": str(args.model_name_or_path),
        "weights_sha256": fingerprint,
        "data": args.validation_file or f"{args.dataset}:{args.split}",
        "num_contexts": len(per_context),
        "num_responses": args.num_responses,
        "truncated_pairs": truncated,
        "word_vectors": vectors_source,
        "seed": args.seed,
        "seconds": round(time.time() - started, 1),
        "conventions": (ADVERSARIAL_CONVENTIONS if "elbo_nll" not in metrics else "") + CONVENTIONS,
        **metrics,
        "examples": [
            {"context": context, "reference": reference, "responses": group[:5]}
            for context, reference, group in zip(contexts, references, responses, strict=False)
        ],
    }


def markdown(results: dict) -> str:
    keys = [(key, title) for key, title in TABLE_KEYS if results.get(key) is not None]
    lines = [
        f"Evaluation of `{results['model']}` on {results['data']} ({results['num_contexts']} contexts, "
        f"{results['num_responses']} responses each, seed {results['seed']}; word vectors: "
        f"{results['word_vectors'] or 'none, no BOW metrics'}).",
        "",
        "| " + " | ".join(title for _, title in keys) + " |",
        "|" + "---|" * len(keys),
        "| " + " | ".join(_format(results[key]) for key, _ in keys) + " |",
        "",
        results["conventions"],
        "",
    ]
    for example in results["examples"]:
        lines += ["Context:", *(f"> {turn}" for turn in example["context"])]
        lines += [f"Reference: {example['reference']}", "Responses:", *(f"- {r}" for r in example["responses"]), ""]
    return "\n".join(lines)


def _format(value) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.2f}" if abs(value) >= 10 else f"{value:.3f}"


def wanted(argv=None) -> bool:
    """Whether `argv` (training/evaluate.py's arguments) names a dialogue model."""
    from transformers import AutoConfig

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--model_name_or_path")
    parser.add_argument("--trust_remote_code", action="store_true")
    known, _ = parser.parse_known_args(argv)
    if not known.model_name_or_path:
        return False
    try:
        config = AutoConfig.from_pretrained(known.model_name_or_path, trust_remote_code=known.trust_remote_code)
    except Exception:
        return False  # training/evaluate.py reports the problem
    return config.model_type in ("twrcvae", DialogWAEConfig.model_type, IVAEConfig.model_type, SeqGANConfig.model_type)


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    if not (args.dataset or args.validation_file):
        raise SystemExit("Pass --dataset (dailydialog or switchboard) with --data_dir, or --validation_file.")
    output = Path(args.output_file or Path(args.model_name_or_path) / f"eval_{args.split}.json")
    if output.suffix != ".json":
        raise ValueError(
            f"--output_file {output} must end in .json: the results are JSON, and their Markdown table is written "
            f"beside them as {output.stem}.md."
        )
    check_output_files(
        [output, output.with_suffix(".md")],
        "--output_file",
        args.overwrite_output_file,
        "--overwrite_output_file",
        inputs=(args.validation_file,),
    )
    results = evaluate(args)
    atomic_write_json(output, results)
    atomic_write_text(output.with_suffix(".md"), markdown(results))
    print(markdown(results))
    print(f"wrote {output}, {output.with_suffix('.md')}")
    return results


if __name__ == "__main__":
    main()
