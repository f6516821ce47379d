"""What a text VAE's latent does for sentiment on the Yelp sentences: an independent judge, the label kept by
reconstructions, and sentiment transfer by latent arithmetic alone.

The judge is scikit-learn's tf-idf (word uni- and bigrams) with logistic regression, trained on the training split
only, so it never saw a test sentence; its own accuracy on the test split is reported beside everything it judges.
Transfer moves each test sentence's posterior mode along the model's attribute vector `positive` (the mean posterior
mode of positive training sentences minus that of negative ones; no label is used in training the VAE), towards the
other label: z + s v for a negative sentence, z - s v for a positive one, at strength s, then decodes greedily.
Transfer accuracy is the share the judge gives the target label; content BLEU is corpus BLEU of the transferred
sentences against their inputs (sacrebleu, tokenisation off: the corpus is tokenised).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

VECTOR_NAME = "positive"
STRENGTHS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
# the operating point: the first strength whose transfer accuracy reaches this, else the best geometric mean
TARGET_ACCURACY = 0.85


class SentimentJudge:
    """tf-idf (word 1-2-grams, sublinear tf) + logistic regression over sentences labelled 0 (negative) / 1."""

    def __init__(self, texts: Sequence[str], labels: Sequence[int], seed: int = 0):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        self.pipeline = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, token_pattern=r"\S+"),
            LogisticRegression(C=4.0, max_iter=1000, random_state=seed),
        )
        self.pipeline.fit(list(texts), list(labels))

    def predict(self, texts: Sequence[str]) -> list[int]:
        return [int(label) for label in self.pipeline.predict(list(texts))]

    def accuracy(self, texts: Sequence[str], labels: Sequence[int]) -> float:
        predicted = self.predict(texts)
        return sum(p == y for p, y in zip(predicted, labels, strict=True)) / max(len(labels), 1)


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    import sacrebleu

    # force: the corpus is tokenised on purpose (sacrebleu would warn that it looks un-detokenised)
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)], tokenize="none", force=True).score)


def transfer_curve(
    latents: torch.Tensor,
    labels: Sequence[int],
    inputs: Sequence[str],
    vector: torch.Tensor,
    decode: Callable[[torch.Tensor], list[str]],
    judge: SentimentJudge,
    strengths: Sequence[float] = STRENGTHS,
) -> dict:
    """Transfer accuracy and content BLEU at each strength, each sentence moved towards the other label, and the
    operating point; with the first rows of each strength as examples."""
    direction = torch.tensor([1.0 if label == 0 else -1.0 for label in labels], dtype=latents.dtype)[:, None]
    targets = [1 - label for label in labels]
    rows, examples = [], {}
    for strength in strengths:
        moved = latents + strength * direction * vector.to(latents.dtype)[None]
        outputs = decode(moved)
        judged = judge.predict(outputs)
        accuracy = sum(j == t for j, t in zip(judged, targets, strict=True)) / max(len(targets), 1)
        rows.append({"strength": strength, "accuracy": accuracy, "content_bleu": corpus_bleu(outputs, inputs)})
        examples[str(strength)] = outputs
    return {"rows": rows, "operating_point": operating_point(rows), "outputs": examples}


def operating_point(rows: list[dict]) -> dict:
    """The first strength whose accuracy reaches TARGET_ACCURACY (the least change that transfers), else the one
    with the best geometric mean of accuracy and BLEU / 100."""
    for row in rows:
        if row["accuracy"] >= TARGET_ACCURACY:
            return {**row, "rule": f"the first strength with transfer accuracy >= {TARGET_ACCURACY:.0%}"}
    best = max(rows, key=lambda row: (row["accuracy"] * row["content_bleu"] / 100) ** 0.5)
    return {**best, "rule": f"no strength reached {TARGET_ACCURACY:.0%}: the best geometric mean of accuracy and BLEU"}


__all__ = ["STRENGTHS", "SentimentJudge", "VECTOR_NAME", "corpus_bleu", "operating_point", "transfer_curve"]
