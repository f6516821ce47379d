"""Text metrics of a text VAE's outputs: reconstruction BLEU, token accuracy and exact match, distinct-n, and ROUGE
along interpolation paths.

BLEU (`sacrebleu`) and ROUGE (`rouge-score`) are optional dependencies (the `train` extra); they are imported inside
the functions that use them, so that importing this module needs neither.
"""

from __future__ import annotations

import random
from collections.abc import Sequence


def distinct_n(sentences: Sequence[Sequence[str]], n: int) -> float:
    """Distinct n-grams over all n-grams in the sentences (Li et al., 2016)."""
    grams = [tuple(words[i : i + n]) for words in sentences for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def reconstruction_quality(references: Sequence[str], hypotheses: Sequence[str]) -> dict:
    import sacrebleu

    # the texts are already tokenised (word level), so BLEU counts the model's own tokens
    bleu = sacrebleu.corpus_bleu(list(hypotheses), [list(references)], tokenize="none", force=True)
    exact = sum(h.split() == r.split() for h, r in zip(hypotheses, references, strict=True)) / len(references)
    # The same BLEU against another input (the one half the list away, so not a neighbour that may share its
    # meaning): what reconstructions that do not follow their inputs would score. The gap is what z carries.
    half = len(references) // 2
    others = list(references[half:]) + list(references[:half])
    other = sacrebleu.corpus_bleu(list(hypotheses), [others], tokenize="none", force=True).score if half else None
    return {
        "reconstruction_bleu": bleu.score,
        "reconstruction_bleu_other_input": other,
        "reconstruction_exact_match": exact,
        "reconstruction_token_accuracy": token_accuracy(references, hypotheses),
        "reconstruction_distinct": distinct_share(hypotheses),
    }


def token_accuracy(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Share of word positions where the reconstruction has the input's word, over the longer of the two texts of
    each pair (so that a reconstruction that stops early or runs on is not rewarded)."""
    right = total = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        ref, hyp = reference.split(), hypothesis.split()
        right += sum(a == b for a, b in zip(ref, hyp, strict=False))
        total += max(len(ref), len(hyp))
    return right / total if total else 0.0


def distinct_share(texts: Sequence[str]) -> float:
    """Distinct texts over all texts: 1.0 when every input got its own output, 1/n when all collapsed to one."""
    return len(set(texts)) / len(texts) if texts else 0.0


def distinct_along_paths(paths: Sequence[Sequence[str]]) -> float:
    """Mean number of distinct sentences along each interpolation path (1 when the path never moves)."""
    return sum(len(set(path)) for path in paths) / len(paths) if paths else 0.0


def interpolation_rouge(pairs: Sequence[tuple[str, str]], paths: Sequence[Sequence[str]]) -> list[dict]:
    """For each step along the paths: ROUGE-1/2/L F1 against the start and the end sentence, averaged over pairs."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    steps = len(paths[0])
    table = []
    for step in range(steps):
        sums = {}
        for (start, end), path in zip(pairs, paths, strict=True):
            for side, reference in (("start", start), ("end", end)):
                for name, score in scorer.score(reference, path[step]).items():
                    key = f"{name}_{side}"
                    sums[key] = sums.get(key, 0.0) + score.fmeasure
        table.append({key: value / len(pairs) for key, value in sums.items()})
    return table


def choose_pairs(count: int, how_many: int, seed: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    pairs = set()
    while len(pairs) < min(how_many, count * (count - 1) // 2):
        a, b = rng.sample(range(count), 2)
        pairs.add((a, b))
    return sorted(pairs)


__all__ = [
    "choose_pairs",
    "distinct_along_paths",
    "distinct_n",
    "distinct_share",
    "interpolation_rouge",
    "reconstruction_quality",
    "token_accuracy",
]
