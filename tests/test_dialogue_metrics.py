import math

import numpy as np
import pytest

from modeling_twrvae.metrics.dialogue import (
    WordVectors,
    bleu_precision_recall,
    context_scores,
    corpus_scores,
    distinct,
    embedding_similarities,
    f1,
    papers_sentence_bleu,
    sentence_bleu,
)


def test_sentence_bleu_on_hand_computed_cases():
    assert sentence_bleu(["a", "b", "c", "d"], ["a", "b", "c", "d"]) == pytest.approx(1.0)
    # every n-gram of a 3-token hypothesis matches (4-grams left out: effective order), brevity penalty e^(1 - 4/3)
    assert sentence_bleu(["a", "b", "c"], ["a", "b", "c", "d"]) == pytest.approx(math.exp(1 - 4 / 3))
    # p1 = 1/2, p2 = no match among 1 bigram, smoothed to 1 / (2 * 1)
    assert sentence_bleu(["x", "y"], ["x", "z"]) == pytest.approx(0.5)
    # p1 = 3/4, p2 = 1/3, p3 = 0/2 -> 1/(2*2), p4 = 0/1 -> 1/(4*1): (1/64)^(1/4)
    assert sentence_bleu(["a", "b", "x", "d"], ["a", "b", "c", "d"]) == pytest.approx((1 / 64) ** 0.25)
    assert sentence_bleu([], ["a", "b"]) == 0.0


def test_papers_bleu_is_nltk_method_7_up_to_trigrams_by_hand():
    # method 7 = method 4 (only for orders without a match) then method 5, which replaces each p_n by the mean of
    # (smoothed p_{n-1}, p_n, p_{n+1}), starting from p_0 := p_1 + 1, where nltk takes the order after the last as
    # its 5-gram precision (0 for texts this short). Here p_1 = p_2 = p_3 = 1: 4/3, 10/9, 19/27; brevity penalty
    # e^(1 - 4/3).
    expected = math.exp(1 - 4 / 3) * (4 / 3 * 10 / 9 * 19 / 27) ** (1 / 3)
    assert papers_sentence_bleu(["a", "b", "c"], ["a", "b", "c", "d"]) == pytest.approx(expected)
    # an exact match scores above 1 (the same smoothed precisions, no brevity penalty): one reason Table 5's BLEU
    # runs high
    assert papers_sentence_bleu(list("abcd"), list("abcd")) == pytest.approx((4 / 3 * 10 / 9 * 19 / 27) ** (1 / 3))
    assert papers_sentence_bleu(["x", "y"], list("abcd")) == 0.0 and papers_sentence_bleu([], ["a"]) == 0.0


def test_bleu_precision_is_the_mean_recall_the_max_and_f1_the_harmonic_mean():
    precision, recall = bleu_precision_recall([["a", "b", "c", "d"], ["x", "y"]], ["a", "b", "c", "d"])
    no_match = sentence_bleu(["x", "y"], ["a", "b", "c", "d"])
    assert recall == pytest.approx(1.0)
    assert precision == pytest.approx((1.0 + no_match) / 2)
    assert f1(0.5, 1.0) == pytest.approx(2 / 3) and f1(0.0, 0.0) == 0.0


def test_distinct_intra_and_inter():
    responses = [["a", "a", "b"], ["a", "b"]]
    # unigrams: {a, b}/3 and {a, b}/2 -> intra (2/3 + 1) / 2; all together {a, b} / 5
    assert distinct(responses, 1) == pytest.approx(((2 / 3 + 1) / 2, 2 / 5))
    # bigrams: {aa, ab}/2 and {ab}/1 -> intra 1; all together {aa, ab} / 3
    assert distinct(responses, 2) == pytest.approx((1.0, 2 / 3))
    # one-word answers have no bigram: they score 0, not "undefined" (DialogWAE's script does the same)
    assert distinct([["yeah"], ["yeah"]], 2) == (0.0, 0.0)
    assert distinct([["a", "b"], ["yeah"]], 2) == pytest.approx((0.5, 1.0))


@pytest.fixture
def vectors():
    return WordVectors(
        {"a": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0]), "c": np.array([-2.0, 0.5]), "d": np.array([1.0, 1.0])}
    )


def test_embedding_similarities_by_hand(vectors):
    average, extrema, greedy = embedding_similarities(["a", "b"], ["d"], vectors)
    assert average == pytest.approx(1.0)  # mean (0.5, 0.5) is parallel to (1, 1)
    assert extrema == pytest.approx(1.0)  # extrema (1, 1)
    # a->d and b->d: cos 1/sqrt2 each; d->best of a, b: 1/sqrt2; symmetrised: 1/sqrt2
    assert greedy == pytest.approx(1 / math.sqrt(2))
    # extrema keeps the value farthest from zero, sign included: [a; c] -> (-2, 0.5)
    _, extrema, _ = embedding_similarities(["a", "c"], ["c"], vectors)
    assert extrema == pytest.approx(1.0)
    assert embedding_similarities(["zzz"], ["a"], vectors) is None  # no known word on one side


def test_word_vector_files_with_and_without_header(vectors, tmp_path):
    vectors.save(tmp_path / "w2v.txt")
    glove = tmp_path / "glove.txt"
    glove.write_text("".join(line + "\n" for line in (tmp_path / "w2v.txt").read_text().splitlines()[1:]))
    for path in (tmp_path / "w2v.txt", glove):
        loaded = WordVectors.load(path)
        assert sorted(loaded.vectors) == ["a", "b", "c", "d"]
        np.testing.assert_allclose(loaded.vectors["c"], [-2.0, 0.5])
    with pytest.raises(FileNotFoundError, match="word2vec- or GloVe-format"):
        WordVectors.load(tmp_path / "missing.txt")


def test_trained_vectors_and_context_and_corpus_scores(vectors):
    trained = WordVectors.train([["hello", "there"], ["hello", "you"]] * 5, vector_size=8)
    assert trained.matrix(["hello", "unknown"]).shape == (1, 8)
    per_context = [
        context_scores([["a", "b"], ["a", "a"]], ["a", "b"], vectors),
        context_scores([["d"]], ["d", "d"], vectors),
    ]
    assert per_context[0]["bow_average"] == pytest.approx(1.0)  # max over responses: "a b" itself
    assert per_context[0]["bow_average_mean"] == pytest.approx((1.0 + 1 / math.sqrt(2)) / 2)
    result = corpus_scores(per_context)
    assert result["bleu_recall"] == pytest.approx((per_context[0]["bleu_recall"] + per_context[1]["bleu_recall"]) / 2)
    assert per_context[1]["intra_distinct_2"] == 0.0  # a 1-token response has no bigram
    assert result["intra_distinct_2"] == pytest.approx(per_context[0]["intra_distinct_2"] / 2)
    assert result["bleu_f1"] == pytest.approx(f1(result["bleu_precision"], result["bleu_recall"]))
