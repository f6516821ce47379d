"""Do an E2E model's reconstructions keep their inputs' content? A sceptical reader's check of the main job.

    python benchmarks/e2e_attributes.py --model outputs/demo [--split test] [--max_samples 1000]

Reconstructs the first sentences of an E2E split greedily from the posterior mode and, for each attribute of the
restaurant that E2E texts state in fixed words (eat type, area, food, family friendliness), reports how often a
reconstruction states the same value as its input, next to how often a random other input's reconstruction does
(the chance level). Prints a table and writes RESULTS_DIR/e2e_attributes-SPLIT.json.
"""

from __future__ import annotations

import argparse
import os
import random

import torch
from environment import add_common_arguments, check_device, describe, results_path
from transformers import AutoModel, AutoTokenizer

import modeling_twrvae  # noqa: F401  (registers the model classes)
from modeling_twrvae.data.corpora import load_corpus
from modeling_twrvae.file_utils import atomic_write_json

# The first of these words that a (lower-cased) text contains is its value of the attribute.
ATTRIBUTES = {
    "eat type": ["coffee shop", "restaurant", "pub"],
    "area": ["riverside", "city centre"],
    "food": ["chinese", "english", "french", "fast food", "indian", "italian", "japanese"],
    "family friendly": ["not family", "not kid", "non family", "family friendly", "kid friendly", "children"],
}


def value(text: str, words: list[str]) -> str | None:
    text = text.lower()
    return next((word for word in words if word in text), None)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="outputs/demo", help="A folder written by training/train.py.")
    parser.add_argument("--split", default="test", choices=["validation", "test"])
    parser.add_argument("--max_samples", type=int, default=1000)
    parser.add_argument("--data_dir", default=os.environ.get("TWRVAE_DATA_DIR", "../shared/data"))
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    check_device(args.device)
    model = AutoModel.from_pretrained(args.model).to(args.device).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    texts = load_corpus({"eval": args.split}, dataset="e2e", data_dir=args.data_dir)["eval"]["text"][: args.max_samples]
    outputs = []
    with torch.no_grad():
        for start in range(0, len(texts), 100):
            outputs += model.reconstruct(texts[start : start + 100], tokenizer, do_sample=False, max_new_tokens=60)
    others = outputs[:]
    random.Random(0).shuffle(others)
    rows = []
    for name, words in ATTRIBUTES.items():
        triples = zip(texts, outputs, others, strict=True)
        stated = [(value(text, words), out, other) for text, out, other in triples if value(text, words)]
        rows.append(
            {
                "attribute": name,
                "inputs_stating_it": len(stated),
                "kept": sum(value(out, words) == wanted for wanted, out, _ in stated) / max(len(stated), 1),
                "chance": sum(value(other, words) == wanted for wanted, _, other in stated) / max(len(stated), 1),
            }
        )
    print(f"\nE2E {args.split}, first {len(texts)} sentences, reconstructions of {args.model} (posterior mode, greedy)")
    print(f"{'attribute':<16} {'inputs stating it':>18} {'kept':>6} {'chance (another input)':>24}")
    for row in rows:
        print(f"{row['attribute']:<16} {row['inputs_stating_it']:>18} {row['kept']:>6.2f} {row['chance']:>24.2f}")
    result = {"benchmark": "e2e_attributes", **describe(args.device), "model": args.model, "split": args.split,
              "num_sentences": len(texts), "rows": rows}  # fmt: skip
    output = atomic_write_json(results_path(args.results_dir, f"e2e_attributes-{args.split}", args.device), result)
    print(f"wrote {output}")
    return result


if __name__ == "__main__":
    main()
