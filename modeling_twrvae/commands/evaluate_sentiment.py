"""evaluate.py's measurements for a corpus with sentiment labels (`--dataset yelp-sentiment`): reconstructions
judged for the label they keep, sentiment transfer by the model's attribute vector over strengths, and samples from
the prior and the aggregate posterior judged for diversity, copies of training sentences and fluency. See
metrics/sentiment.py and metrics/fluency.py for each measure."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import torch

from modeling_twrvae.data.yelp import LABEL_NAMES, load_yelp_sentiment
from modeling_twrvae.metrics.fluency import KneserNeyTrigram, copy_rate
from modeling_twrvae.metrics.sentiment import VECTOR_NAME, SentimentJudge, transfer_curve
from modeling_twrvae.metrics.text import distinct_n

# sentences of each label whose mean posterior modes make the vector when the model ships none
VECTOR_SENTENCES = 5000
NUM_EXAMPLES = 8


def sentiment_vector(model, tokenizer, train) -> tuple[torch.Tensor, str]:
    """The model's own `positive` vector, else one made from the first training sentences of each label."""
    if VECTOR_NAME in model.attribute_vectors:
        return model.attribute_vectors[VECTOR_NAME], f"the model's own attribute vector {VECTOR_NAME!r}"
    positive = [t for t, y in zip(train["text"], train["label"], strict=True) if y == 1][:VECTOR_SENTENCES]
    negative = [t for t, y in zip(train["text"], train["label"], strict=True) if y == 0][:VECTOR_SENTENCES]
    vector = model.attribute_vector(positive, negative, tokenizer)
    return vector, f"made here from the first {VECTOR_SENTENCES} training sentences of each label"


def sample_statistics(samples: Sequence[str], training: set[str], language_model: KneserNeyTrigram) -> dict:
    words = [sample.split() for sample in samples]
    return {
        "distinct_1": distinct_n(words, 1),
        "distinct_2": distinct_n(words, 2),
        "copies_of_training": copy_rate(samples, training),
        "fluency_perplexity": language_model.perplexity(samples),
        "num_samples": len(samples),
    }


def measure_sentiment(
    model,
    tokenizer,
    *,
    data_dir: str | None,
    texts: Sequence[str],
    labels: Sequence[int],
    references: Sequence[str],
    reconstructions: Sequence[str],
    posterior_means: torch.Tensor,
    samples: dict[str, list[str]],
    decode: Callable[[torch.Tensor], list[str]],
    seed: int,
) -> dict:
    """The sentiment section of evaluate.py's results (see the module's docstring)."""
    train = load_yelp_sentiment("train", data_dir)
    judge = SentimentJudge(train["text"], train["label"], seed=seed)
    training = set(train["text"])
    language_model = KneserNeyTrigram(train["text"])

    kept = judge.predict(reconstructions)
    vector, vector_source = sentiment_vector(model, tokenizer, train)
    transfer = transfer_curve(posterior_means, labels, references, vector, decode, judge)
    held_out = list(references)
    if samples:  # as many held-out sentences as samples, for the diversity and fluency they are compared with
        held_out = random.Random(seed).sample(list(references), min(len(references), len(next(iter(samples.values())))))

    chosen = sorted(random.Random(seed).sample(range(len(texts)), min(NUM_EXAMPLES, len(texts))))
    point = str(transfer["operating_point"]["strength"])
    judged = judge.predict([transfer["outputs"][point][i] for i in chosen])  # one call for the examples
    return {
        "judge": {
            "model": "tf-idf (word 1-2-grams) + logistic regression, trained on the training split",
            "test_accuracy": judge.accuracy(references, labels),
        },
        "reconstruction_label_kept": sum(k == y for k, y in zip(kept, labels, strict=True)) / max(len(labels), 1),
        "vector": {"name": VECTOR_NAME, "source": vector_source, "norm": float(vector.norm())},
        "transfer": {key: value for key, value in transfer.items() if key != "outputs"},
        "samples": {
            "held_out": sample_statistics(held_out, training, language_model),
            **{name: sample_statistics(texts_, training, language_model) for name, texts_ in samples.items()},
        },
        "examples": [
            {
                "input": references[i],
                "label": LABEL_NAMES[labels[i]],
                "reconstruction": reconstructions[i],
                "transferred": transfer["outputs"][point][i],
                "judged": LABEL_NAMES[verdict],
            }
            for i, verdict in zip(chosen, judged, strict=True)
        ],
    }


def markdown(section: dict) -> str:
    transfer = section["transfer"]
    point = transfer["operating_point"]
    lines = [
        f"Sentiment: the judge ({section['judge']['model']}) gives {section['judge']['test_accuracy']:.1%} of these "
        f"sentences their label; it gives {section['reconstruction_label_kept']:.1%} of the reconstructions their "
        f"input's label. Transfer along the vector {section['vector']['name']!r} ({section['vector']['source']}), "
        "towards the other label:",
        "",
        "| strength | transfer accuracy | content BLEU |",
        "|---|---|---|",
        *(f"| {r['strength']:g} | {r['accuracy']:.1%} | {r['content_bleu']:.1f} |" for r in transfer["rows"]),
        "",
        f"Operating point: strength {point['strength']:g} ({point['rule']}).",
        "",
        "| sentences | distinct-1 | distinct-2 | copies of training | fluency (KN trigram perplexity) |",
        "|---|---|---|---|---|",
    ]
    for name, row in section["samples"].items():
        lines.append(
            f"| {name.replace('_', ' ')} ({row['num_samples']}) | {row['distinct_1']:.3f} | {row['distinct_2']:.3f} | "
            f"{row['copies_of_training']:.1%} | {row['fluency_perplexity']:.1f} |"
        )
    return "\n".join(lines)


def plot_transfer(section: dict, path) -> None:
    """Transfer accuracy and content BLEU against strength, the operating point marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = section["transfer"]["rows"]
    strengths = [r["strength"] for r in rows]
    figure, accuracy_axis = plt.subplots(figsize=(5.5, 3.6))
    accuracy_axis.plot(strengths, [100 * r["accuracy"] for r in rows], "o-", color="tab:blue", label="accuracy (%)")
    accuracy_axis.set_xlabel("strength along the sentiment vector")
    accuracy_axis.set_ylabel("transfer accuracy (%)", color="tab:blue")
    accuracy_axis.set_ylim(0, 100)
    bleu_axis = accuracy_axis.twinx()
    bleu_axis.plot(strengths, [r["content_bleu"] for r in rows], "s--", color="tab:orange", label="content BLEU")
    bleu_axis.set_ylabel("content BLEU against the input", color="tab:orange")
    bleu_axis.set_ylim(0, 100)
    accuracy_axis.axvline(section["transfer"]["operating_point"]["strength"], color="grey", linestyle=":")
    accuracy_axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


__all__ = ["markdown", "measure_sentiment", "plot_transfer", "sentiment_vector"]
