"""Fluency of generated sentences as forward perplexity under a language model of the training sentences, and how
often samples copy a training sentence.

The language model is an interpolated Kneser-Ney trigram model (Chen and Goodman, 1999, section 3.5, with one
discount D = 0.75 at every order) over whitespace tokens, `<s> <s>` before and `</s>` after each sentence, and an
unknown-word floor of 1/|V| for a word the training sentences never hold. nltk's `KneserNeyInterpolated` computes
the same estimate but scores about two sentences a second here, too slow to score a thousand samples; counting the
n-grams once in dictionaries scores thousands a second.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

BOS, EOS = "<s>", "</s>"


class KneserNeyTrigram:
    """Interpolated Kneser-Ney trigram model of whitespace-tokenised sentences."""

    def __init__(self, sentences: Iterable[str], discount: float = 0.75):
        self.discount = discount
        trigrams = Counter()
        for sentence in sentences:
            words = [BOS, BOS, *sentence.split(), EOS]
            for i in range(2, len(words)):
                trigrams[tuple(words[i - 2 : i + 1])] += 1
        self.trigrams = trigrams
        self.context_counts = Counter()  # c(u v .)
        self.context_types = Counter()  # N1+(u v .)
        continuation_bigrams = Counter()  # N1+(. v w)
        for (u, v, w), count in trigrams.items():
            self.context_counts[(u, v)] += count
            self.context_types[(u, v)] += 1
            continuation_bigrams[(v, w)] += 1
        self.bigrams = continuation_bigrams
        self.middle_counts = Counter()  # N1+(. v .)
        self.middle_types = Counter()  # N1+(v .) among continuation bigrams
        continuation_unigrams = Counter()  # N1+(. w)
        for (v, w), count in continuation_bigrams.items():
            self.middle_counts[v] += count
            self.middle_types[v] += 1
            continuation_unigrams[w] += 1
        self.unigrams = continuation_unigrams
        self.total_bigram_types = sum(continuation_unigrams.values())
        self.vocabulary = len(continuation_unigrams) + 1  # the words, and one for the unknown

    def _unigram(self, word: str) -> float:
        return (self.unigrams.get(word, 0) + 1.0 / self.vocabulary) / (self.total_bigram_types + 1.0)

    def _bigram(self, v: str, word: str) -> float:
        total = self.middle_counts.get(v, 0)
        if not total:
            return self._unigram(word)
        seen = max(self.bigrams.get((v, word), 0) - self.discount, 0.0) / total
        return seen + self.discount * self.middle_types[v] / total * self._unigram(word)

    def probability(self, u: str, v: str, word: str) -> float:
        """p(word | u v)."""
        total = self.context_counts.get((u, v), 0)
        if not total:
            return self._bigram(v, word)
        seen = max(self.trigrams.get((u, v, word), 0) - self.discount, 0.0) / total
        return seen + self.discount * self.context_types[(u, v)] / total * self._bigram(v, word)

    def perplexity(self, sentences: Sequence[str]) -> float:
        """exp of the mean negative log-probability per predicted token (the words and `</s>`)."""
        nll, tokens = 0.0, 0
        for sentence in sentences:
            words = [BOS, BOS, *sentence.split(), EOS]
            for i in range(2, len(words)):
                nll -= math.log(self.probability(words[i - 2], words[i - 1], words[i]))
                tokens += 1
        return math.exp(nll / max(tokens, 1))


def copy_rate(samples: Sequence[str], training: Iterable[str]) -> float:
    """The share of `samples` whose text is exactly a training sentence."""
    known = set(training)
    return sum(sample in known for sample in samples) / max(len(samples), 1)


__all__ = ["KneserNeyTrigram", "copy_rate"]
