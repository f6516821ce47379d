"""Metrics of dialogue response generation, as in Zhao et al. (2017), Gu et al. (2019, DialogWAE) and TWR-VAE Table 5.

For each context, n responses (10 in the papers) are compared with the one reference; every number is then averaged
over contexts. Texts are compared as lists of tokens (white-space split of the model's own tokenisation).

- BLEU: smoothed sentence BLEU with n-grams up to 4, from sacrebleu (`BLEU(tokenize="none", smooth_method="exp",
  effective_order=True)`): an n-gram order with no match counts as precision 1 / (2^k * its n-gram count), k = 1, 2,
  ... for successive such orders (the NIST geometric smoothing, Chen & Cherry 2014 method 3), and orders longer than
  the hypothesis are left out. BLEU-P is the mean over a context's responses, BLEU-R the maximum, BLEU-F1 the harmonic
  mean of the corpus-level P and R (Zhao et al.).
- BLEU as the papers' code computes it (`*_papers`): the TWR-VAE authors' evaluation (after DialogWAE's) scores
  with nltk's `sentence_bleu`, n-grams up to 3 with weights 1/3 each and `SmoothingFunction().method7`, which gives
  short responses far higher scores than the 4-gram NIST smoothing above. Table 5's numbers are of this kind, so
  this is the column to set beside them.
- BOW embedding (Liu et al. 2016): cosine of the mean word vectors (average), of the per-dimension extreme values
  (extrema, Forgues et al. 2014), and the greedy matching score (Rus & Lintean 2012, symmetrised). Reported as the
  maximum over a context's responses (as DialogWAE's script, which TWR-VAE follows) and as the mean. Words without a
  vector are left out; a pair in which one side has no word with a vector is skipped.
- Distinct (Li et al. 2016; Gu et al. 2019): intra-distinct-n is a response's distinct n-grams over its n-grams
  (0 for a response shorter than n tokens), averaged over the responses; inter-distinct-n is the distinct n-grams
  over all n-grams of a context's responses together (0 if they have none).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

BLEU_DESCRIPTION = (
    "sacrebleu sentence BLEU, n-grams up to 4, tokenize='none', smooth_method='exp' (NIST geometric smoothing, "
    "Chen & Cherry 2014 method 3), effective_order=True; BLEU-P = mean and BLEU-R = max over each context's responses, "
    "averaged over contexts; BLEU-F1 = 2PR/(P+R)"
)


PAPERS_BLEU_DESCRIPTION = (
    "nltk sentence_bleu, n-grams up to 3 (weights 1/3 each), SmoothingFunction().method7, as the TWR-VAE authors' "
    "dialogue evaluation (after DialogWAE's); P, R and F1 as above"
)


def papers_sentence_bleu(hypothesis: Sequence[str], reference: Sequence[str]) -> float:
    """Sentence BLEU in [0, 1] as the TWR-VAE authors' dialogue code computes it (nltk, n <= 3, method 7); their
    code scores a hypothesis nltk cannot score as 0, and so does this."""
    if not hypothesis or not reference:
        return 0.0
    from nltk.translate.bleu_score import SmoothingFunction
    from nltk.translate.bleu_score import sentence_bleu as nltk_sentence_bleu

    return float(
        nltk_sentence_bleu(
            [list(reference)],
            list(hypothesis),
            weights=(1 / 3, 1 / 3, 1 / 3),
            smoothing_function=SmoothingFunction().method7,
        )
    )


def sentence_bleu(hypothesis: Sequence[str], reference: Sequence[str]) -> float:
    """Smoothed sentence BLEU in [0, 1] of one tokenised hypothesis against one tokenised reference."""
    if not hypothesis or not reference:
        return 0.0
    return _bleu().sentence_score(" ".join(hypothesis), [" ".join(reference)]).score / 100.0


_BLEU = None


def _bleu():
    global _BLEU
    if _BLEU is None:
        from sacrebleu.metrics import BLEU

        _BLEU = BLEU(tokenize="none", smooth_method="exp", effective_order=True, max_ngram_order=4)
    return _BLEU


def bleu_precision_recall(
    hypotheses: Sequence[Sequence[str]], reference: Sequence[str], score=sentence_bleu
) -> tuple[float, float]:
    """(BLEU-P, BLEU-R) of one context: the mean and the maximum sentence BLEU (`score`) of its responses."""
    if not hypotheses:
        raise ValueError("No responses to score.")
    scores = [score(hypothesis, reference) for hypothesis in hypotheses]
    return float(np.mean(scores)), float(np.max(scores))


def f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def distinct(responses: Sequence[Sequence[str]], n: int) -> tuple[float, float]:
    """(intra-distinct-n, inter-distinct-n) of one context's responses. A response shorter than n tokens scores 0
    (it has no n-gram), and so do responses that have no n-gram together, as in DialogWAE's script: one-word answers
    are not diverse."""
    if not responses:
        raise ValueError("No responses to score.")
    intra, all_ngrams, total = [], set(), 0
    for tokens in responses:
        ngrams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        intra.append(len(set(ngrams)) / len(ngrams) if ngrams else 0.0)
        all_ngrams.update(ngrams)
        total += len(ngrams)
    return float(np.mean(intra)), (len(all_ngrams) / total if total else 0.0)


class WordVectors:
    """Word vectors from a word2vec- or GloVe-format text file (GloVe has no `count dimension` header line)."""

    def __init__(self, vectors: dict[str, np.ndarray]):
        if not vectors:
            raise ValueError("No word vectors given.")
        self.vectors = vectors
        self.dimension = len(next(iter(vectors.values())))

    @classmethod
    def load(cls, path: str | Path) -> WordVectors:
        from gensim.models import KeyedVectors

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: give a word2vec- or GloVe-format text file of vectors.")
        with path.open(encoding="utf-8") as handle:
            first = handle.readline().split()
        no_header = not (len(first) == 2 and all(part.isdigit() for part in first))
        try:
            keyed = KeyedVectors.load_word2vec_format(str(path), binary=False, no_header=no_header)
        except Exception as error:
            raise ValueError(f"{path} is not a word2vec or GloVe text file of vectors ({error}).") from error
        return cls({word: keyed[word] for word in keyed.index_to_key})

    @classmethod
    def train(cls, sentences: Sequence[Sequence[str]], vector_size: int = 100, seed: int = 0, **kwargs) -> WordVectors:
        """word2vec vectors (gensim, skip-gram) trained on tokenised sentences, e.g. the training split."""
        from gensim.models import Word2Vec

        settings = {"min_count": 1, "window": 5, "sg": 1, "epochs": 10, "workers": 1, **kwargs}
        model = Word2Vec(sentences=[list(s) for s in sentences], vector_size=vector_size, seed=seed, **settings)
        return cls({word: model.wv[word] for word in model.wv.index_to_key})

    def save(self, path: str | Path) -> None:
        """word2vec text format (with the header line)."""
        from ..file_utils import atomic_write_text

        lines = [f"{len(self.vectors)} {self.dimension}"]
        lines += [word + " " + " ".join(f"{value:.6f}" for value in vector) for word, vector in self.vectors.items()]
        atomic_write_text(path, "\n".join(lines) + "\n")

    def matrix(self, tokens: Sequence[str]) -> np.ndarray:
        rows = [self.vectors[token] for token in tokens if token in self.vectors]
        return np.asarray(rows, dtype=np.float64).reshape(len(rows), self.dimension)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return 0.0 if norm == 0 else float(a @ b / norm)


def _extrema(matrix: np.ndarray) -> np.ndarray:
    high, low = matrix.max(0), matrix.min(0)
    return np.where(high >= np.abs(low), high, low)


def embedding_similarities(hypothesis: Sequence[str], reference: Sequence[str], vectors: WordVectors):
    """(average, extrema, greedy) cosine similarities, or None if either side has no word with a vector."""
    hyp, ref = vectors.matrix(hypothesis), vectors.matrix(reference)
    if len(hyp) == 0 or len(ref) == 0:
        return None
    average = _cosine(hyp.mean(0), ref.mean(0))
    extrema = _cosine(_extrema(hyp), _extrema(ref))
    unit_hyp = hyp / np.maximum(np.linalg.norm(hyp, axis=1, keepdims=True), 1e-12)
    unit_ref = ref / np.maximum(np.linalg.norm(ref, axis=1, keepdims=True), 1e-12)
    cosines = unit_hyp @ unit_ref.T
    greedy = (cosines.max(1).mean() + cosines.max(0).mean()) / 2
    return average, extrema, float(greedy)


def context_scores(
    responses: Sequence[Sequence[str]], reference: Sequence[str], vectors: WordVectors | None = None
) -> dict[str, float | None]:
    """Every metric of one context (its n tokenised responses against its tokenised reference)."""
    precision, recall = bleu_precision_recall(responses, reference)
    scores: dict[str, float | None] = {"bleu_precision": precision, "bleu_recall": recall}
    scores["bleu_precision_papers"], scores["bleu_recall_papers"] = bleu_precision_recall(
        responses, reference, papers_sentence_bleu
    )
    for n in (1, 2):
        scores[f"intra_distinct_{n}"], scores[f"inter_distinct_{n}"] = distinct(responses, n)
    if vectors is not None:
        similarities = [embedding_similarities(response, reference, vectors) for response in responses]
        similarities = [value for value in similarities if value is not None]
        for index, name in enumerate(("average", "extrema", "greedy")):
            values = [value[index] for value in similarities]
            scores[f"bow_{name}"] = max(values) if values else None
            scores[f"bow_{name}_mean"] = float(np.mean(values)) if values else None
    return scores


def corpus_scores(per_context: Sequence[dict]) -> dict[str, float | None]:
    """Means over contexts (each metric over the contexts where it is defined), and BLEU-F1."""
    keys = sorted({key for scores in per_context for key in scores})
    result = {}
    for key in keys:
        values = [scores[key] for scores in per_context if scores.get(key) is not None]
        result[key] = float(np.mean(values)) if values else None
    result["bleu_f1"] = f1(result["bleu_precision"], result["bleu_recall"])
    if "bleu_precision_papers" in result:
        result["bleu_f1_papers"] = f1(result["bleu_precision_papers"], result["bleu_recall_papers"])
    return result


__all__ = [
    "BLEU_DESCRIPTION",
    "PAPERS_BLEU_DESCRIPTION",
    "WordVectors",
    "bleu_precision_recall",
    "context_scores",
    "corpus_scores",
    "distinct",
    "embedding_similarities",
    "f1",
    "papers_sentence_bleu",
    "sentence_bleu",
]
