"""Do attribute vectors move an E2E model's reconstructions where they should? Latent arithmetic (Optimus, Li et al.,
2020) measured with E2E's facts.

    python benchmarks/e2e_attribute_shift.py --model outputs/demo [--max_texts 200] [--strengths 0.5 1 1.5 2]

For each fact change (eat type coffee shop -> pub and -> restaurant, area riverside -> city centre, family friendly
yes -> no, food Chinese -> English, price range low -> high, customer rating low -> high), the attribute vector is
the mean posterior mode of texts whose meaning representation (MR) has the target value, and that the text states,
minus that of texts with the source value. The texts come from the model's training texts, E2E's development split,
where it has both values (at least 20 texts each). Its MRs give no eat type but "coffee shop": its texts that say
"restaurant" have MRs without an eat type, and those make the restaurant side; only 6 of its texts say "pub", so that
change takes its vector from the even-numbered texts of the test split and is measured on the odd-numbered ones.
Texts are delexicalised when the model was trained so (`was_delexicalized`).

The vector is added, at each strength, to the posterior modes of held-out texts (E2E test split) whose MR has the
source value and that state it; the shifted latents are decoded greedily. Reported for each change and strength
(strength 0 is the unshifted reconstruction): the share of outputs that state the target value, the share that
still state the source value, and the share of the inputs' other facts (those each input's MR has and its text
states) that the output states alike. Analogies a : b :: c : ? are shown with a = a text with the source value and
b = that text with the source words replaced by the target's, for held-out texts c, with the share of outputs that
state the target. Prints a table and writes RESULTS_DIR/e2e_attribute_shift-DEVICE.json.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

import torch
from environment import add_common_arguments, check_device, describe, results_path
from transformers import AutoModel, AutoTokenizer

import modeling_twrvae  # noqa: F401  (registers the model classes)
from modeling_twrvae.data.e2e import load_e2e, was_delexicalized
from modeling_twrvae.file_utils import atomic_write_json, weights_fingerprint
from modeling_twrvae.latent_arithmetic import analogy_latent, attribute_vector, shift_latents
from modeling_twrvae.metrics.e2e_facts import mr_facts, mr_names, text_facts

# (fact, source value, target value, source words, target words): the words make the analogy's pair a -> b.
CHANGES = [
    ("eat_type", "coffee shop", "pub", "coffee shop", "pub"),
    ("eat_type", "coffee shop", "restaurant", "coffee shop", "restaurant"),
    ("area", "riverside", "city centre", "riverside", "city centre"),
    ("family_friendly", "yes", "no", "family friendly", "not family friendly"),
    ("food", "Chinese", "English", "Chinese", "English"),
    ("price_range", "low", "high", "cheap", "expensive"),
    ("customer_rating", "low", "high", "low customer rating", "high customer rating"),
]
DEFAULT_STRENGTHS = [0.5, 1.0, 1.5, 2.0]
ANALOGY_EXAMPLES = 3
MIN_VECTOR_TEXTS = 20  # on each side of a vector


def vector_rows(development, test, fact: str, source: str, target: str):
    """Where a change's vector comes from: (description, examples, target rows, source rows, held-out test rows)."""
    held_out = test.with_value(fact, source)
    sources = development.with_value(fact, source)
    enough = len(sources) >= MIN_VECTOR_TEXTS
    targets = development.with_value(fact, target)
    if enough and len(targets) >= MIN_VECTOR_TEXTS:
        return "validation", development, targets, sources, held_out
    targets = development.with_value(fact, target, mr_silent=True)
    if enough and len(targets) >= MIN_VECTOR_TEXTS:
        return "validation (target: MR silent)", development, targets, sources, held_out
    # the development split lacks the value: the even rows of the test split, measured on the odd ones
    targets, sources = test.with_value(fact, target, parity=0), test.with_value(fact, source, parity=0)
    return "test (even rows)", test, targets, sources, test.with_value(fact, source, parity=1)


class Examples:
    """A split's texts, their MR facts and the facts each text states, and the posterior modes (computed once)."""

    def __init__(self, split: str, data_dir: str, delexicalized: bool, names: list[str] | None = None):
        data = load_e2e(split, data_dir, delexicalized=delexicalized)
        self.texts, self.mrs = list(data["text"]), list(data["mr"])
        self.names = names if names is not None else mr_names(self.mrs)
        self.facts = [mr_facts(mr) for mr in self.mrs]
        self.stated = [text_facts(text, self.names) for text in self.texts]
        self.modes: torch.Tensor | None = None

    def with_value(self, fact: str, value: str, parity: int | None = None, mr_silent: bool = False) -> list[int]:
        """Rows whose text states `fact` = `value` and whose MR has that value (every row, or the even / odd ones);
        with `mr_silent`, rows whose MR does not give the fact at all (E2E's development MRs never say
        "restaurant", though hundreds of its texts do)."""
        return [
            index
            for index, (facts, stated) in enumerate(zip(self.facts, self.stated, strict=True))
            if stated.get(fact) == value
            and facts.get(fact) == (None if mr_silent else value)
            and (parity is None or index % 2 == parity)
        ]

    def encode(self, model, tokenizer, batch_size: int) -> torch.Tensor:
        if self.modes is None:
            self.modes = model.posterior_modes(self.texts, tokenizer, batch_size=batch_size)
        return self.modes


def decode(model, tokenizer, latents: torch.Tensor, batch_size: int, max_new_tokens: int) -> list[str]:
    outputs = []
    for start in range(0, len(latents), batch_size):
        outputs += model.decode_latents(latents[start : start + batch_size], tokenizer, do_sample=False,
                                        max_new_tokens=max_new_tokens)  # fmt: skip
    return outputs


def scores(outputs, rows, test: Examples, fact: str, source: str, target: str) -> dict:
    found = [text_facts(output, test.names) for output in outputs]
    other_kept = other_total = 0
    for index, facts in zip(rows, found, strict=True):
        for name, value in test.facts[index].items():
            if name != fact and test.stated[index].get(name) == value:
                other_total += 1
                other_kept += facts.get(name) == value
    return {
        "target": sum(facts.get(fact) == target for facts in found) / len(found),
        "source": sum(facts.get(fact) == source for facts in found) / len(found),
        "other_facts_kept": other_kept / other_total if other_total else None,
        "other_facts": other_total,
        "distinct": len(set(outputs)) / len(outputs),
    }


def analogy_pair(examples: Examples, rows: list[int], source_words: str, target_words: str):
    """(a, b): the first text of `rows` that holds `source_words`, and that text with them replaced by the target's."""
    pattern = re.compile(rf"\b{re.escape(source_words)}\b", re.IGNORECASE)
    for index in rows:
        if pattern.search(examples.texts[index]):
            return examples.texts[index], pattern.sub(target_words, examples.texts[index], count=1)
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="outputs/demo", help="A folder written by training/train.py on E2E.")
    parser.add_argument("--data_dir", default=os.environ.get("TWRVAE_DATA_DIR", "../shared/data"))
    parser.add_argument("--max_texts", type=int, default=300, help="Held-out texts shifted per change.")
    parser.add_argument("--strengths", type=float, nargs="+", default=DEFAULT_STRENGTHS)
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--max_new_tokens", type=int, default=60)
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    check_device(args.device)
    if args.quick:
        args.max_texts, args.strengths = min(args.max_texts, 50), [1.0, 2.0]
    started = time.perf_counter()
    model = AutoModel.from_pretrained(args.model).to(args.device).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    delexicalized = was_delexicalized(args.model)
    development = Examples("validation", args.data_dir, delexicalized)
    test = Examples("test", args.data_dir, delexicalized)
    names = sorted(set(development.names) | set(test.names), key=len, reverse=True)
    development.names = test.names = names
    strengths = [0.0, *sorted(set(args.strengths) - {0.0})]

    rows, analogies = [], []
    for fact, source, target, source_words, target_words in CHANGES:
        vector_from, pool, targets, sources, held_out = vector_rows(development, test, fact, source, target)
        held_out = held_out[: args.max_texts]
        if not targets or not sources or not held_out:
            print(f"skipped {fact} {source} -> {target}: no texts with one of the values")
            continue
        pool_modes = pool.encode(model, tokenizer, args.batch_size)
        vector = attribute_vector(pool_modes[targets], pool_modes[sources])
        latents = test.encode(model, tokenizer, args.batch_size)[held_out]
        row = {"fact": fact, "source": source, "target": target, "vector_from": vector_from,
               "vector_texts": {"target": len(targets), "source": len(sources)}, "vector_norm": float(vector.norm()),
               "held_out_texts": len(held_out), "strengths": {}}  # fmt: skip
        for strength in strengths:
            outputs = decode(model, tokenizer, shift_latents(latents, vector, strength), args.batch_size,
                             args.max_new_tokens)  # fmt: skip
            row["strengths"][strength] = scores(outputs, held_out, test, fact, source, target)
            if strength == 1.0:
                row["examples"] = [{"text": test.texts[i], "shifted": outputs[n]} for n, i in enumerate(held_out[:3])]
        rows.append(row)

        pair = analogy_pair(pool, sources, source_words, target_words)
        if pair is not None:
            z_a, z_b = model.posterior_modes(list(pair), tokenizer)
            outputs = decode(model, tokenizer, analogy_latent(z_a, z_b, latents), args.batch_size, args.max_new_tokens)
            found = scores(outputs, held_out, test, fact, source, target)
            examples = [{"c": test.texts[i], "d": outputs[n]} for n, i in enumerate(held_out[:ANALOGY_EXAMPLES])]
            analogies.append({"fact": fact, "source": source, "target": target, "a": pair[0], "b": pair[1],
                              **{f"outputs_{key}": value for key, value in found.items()}, "examples": examples})  # fmt: skip

    print(f"\nE2E attribute vectors on {args.model} ({'delexicalised' if delexicalized else 'names as words'}); "
          f"held-out texts from the test split, greedy decoding of z + strength * vector (strength 0: unshifted)")  # fmt: skip
    header = (
        f"{'change':<38} {'vector from':<30} {'n':>4} {'strength':>8} {'target':>7} {'source':>7} {'others kept':>11}"
    )
    print(header)
    for row in rows:
        change = f"{row['fact']}: {row['source']} -> {row['target']}"
        for strength, result in row["strengths"].items():
            others = "-" if result["other_facts_kept"] is None else f"{result['other_facts_kept']:.2f}"
            print(f"{change:<38} {row['vector_from']:<30} {row['held_out_texts']:>4} {strength:>8g} "
                  f"{result['target']:>7.2f} {result['source']:>7.2f} {others:>11}")  # fmt: skip
            change = ""
    print("\nAnalogies a : b :: c : ? (z_c + z_b - z_a); target = share of the held-out c whose output states it")
    for analogy in analogies:
        print(f"{analogy['fact']}: {analogy['source']} -> {analogy['target']}: target {analogy['outputs_target']:.2f}, "
              f"others kept {analogy['outputs_other_facts_kept'] or 0:.2f}\n  a: {analogy['a']}\n  b: {analogy['b']}")  # fmt: skip
        for example in analogy["examples"]:
            print(f"  c: {example['c']}\n  d: {example['d']}")
    result = {"benchmark": "e2e_attribute_shift", **describe(args.device), "model": args.model,
              "weights_sha256": weights_fingerprint(Path(args.model)), "delexicalized": delexicalized,
              "max_texts": args.max_texts, "strengths": strengths, "rows": rows, "analogies": analogies,
              "seconds": time.perf_counter() - started}  # fmt: skip
    output = atomic_write_json(results_path(args.results_dir, "e2e_attribute_shift", args.device), result)
    print(f"wrote {output} ({result['seconds']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
